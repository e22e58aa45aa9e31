"""The ``nicoffload`` command line (DESIGN.md section 4; scripts depend on it).

Errors are one clear line on stderr and a non-zero exit, bad options included (click's usage
block is not printed: ``-h`` shows it); malformed frames inside a capture are not errors.
``tx`` and ``rx`` on the model engine stream the capture record by record; the RTL engine
collects the frames it runs in one simulation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys

import click


class CliError(click.ClickException):
    """One line on stderr, exit status 1."""

    def show(self, file=None):
        click.echo(f"nicoffload: error: {self.format_message()}", err=True)


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Group(click.Group):
    """A click group whose every error, a bad option or argument too, is one line on stderr:
    ``nicoffload: error: ...``, exit status 2 for usage errors and 1 for the rest."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  **extra)
        except _NO_ARGS_IS_HELP as e:      # no subcommand: the help, as click shows it
            e.show()
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"nicoffload: error: {_one_line(e.format_message())}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("nicoffload: error: aborted", err=True)
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)


keyword_option = click.option(
    "--keyword", "keywords", multiple=True, metavar="NAME=VALUE",
    help="Standardized registry keyword, e.g. '*LsoV2IPv4=0' (repeatable).")
engine_option = click.option(
    "--engine", type=click.Choice(["model", "rtl"]), default="model", show_default=True,
    help="Golden model or the Verilated RTL.")
width_option = click.option(
    "--width", type=click.Choice(["64", "128", "256", "512"]), default="64",
    show_default=True, help="RTL data width W in bits.")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nicoffload")
def main():
    """nicoffload: NDIS task offload datapath (RTL, golden model, cross-checks)."""


@main.command()
@keyword_option
@click.option("--json", "as_json", is_flag=True, help="Print the config as JSON.")
@click.option("--revision", type=click.IntRange(1, 3), default=3, show_default=True,
              help="NDIS_OFFLOAD revision to report.")
def config(keywords, as_json, revision):
    """Apply registry keywords and print the resulting current offload config."""
    from nicoffload.sim import config_cmd
    config_cmd.run(keywords, as_json=as_json, revision=revision)


@main.command()
@click.argument("inp", metavar="IN.pcap", type=click.Path(dir_okay=False))
@click.argument("out", metavar="OUT.pcap", type=click.Path(dir_okay=False))
@engine_option
@click.option("--mss", type=click.IntRange(1, (1 << 20) - 1), default=None,
              help="LSO MSS: TCP frames with more payload are segmented.")
@click.option("--lso", type=click.Choice(["v1", "v2"]), default="v2", show_default=True)
@keyword_option
@width_option
def tx(inp, out, engine, mss, lso, keywords, width):
    """TX path: act as the TCP/IP transport, offload, write wire frames.

    Every wire frame carries the time of the capture record it was made from."""
    from nicoffload.model.nbl import TxStatus
    from nicoffload.model.nic import Nic
    from nicoffload.sim import datapath
    adapter = _bind(keywords)
    dp = adapter.datapath()

    def report(host, completion):
        if completion.Status:   # a dropped send is not an error of the command: say so, go on
            click.echo(f"tx: host frame {host} dropped: {TxStatus(completion.Status).name}",
                       err=True)

    with _captures(inp, out) as (reader, writer):
        if engine == "model":
            nic = Nic(adapter)
            for host, (time_ns, frame) in enumerate(reader):
                for request in datapath.prepare_send(frame, dp, mss=mss, lso=lso, host=host):
                    segments, completion = nic.transmit(request)
                    report(host, completion)
                    for segment in segments:
                        writer.write(time_ns, segment)
        else:
            records = list(reader)
            requests = datapath.prepare_tx([frame for _, frame in records], dp, mss=mss,
                                           lso=lso)
            wire, completions = _rtl(lambda: datapath.tx_rtl(requests, int(width), dp,
                                                             keywords))
            for request, completion in zip(requests, completions):
                report(request.host, completion)
            times = datapath.wire_times(requests, [t for t, _ in records], len(wire), dp)
            for time_ns, frame in zip(times, wire):
                writer.write(time_ns, frame)
        hosts, sent = reader.records, writer.count
    click.echo(f"tx: {hosts} host frames -> {sent} wire frames ({engine})", err=True)


@main.command()
@click.argument("inp", metavar="IN.pcap", type=click.Path(dir_okay=False))
@click.argument("out", metavar="OUT.pcap", type=click.Path(dir_okay=False))
@engine_option
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write one JSON object per output frame with its RX info.")
@keyword_option
@click.option("--rsc-contexts", type=click.IntRange(min=1), default=8, show_default=True,
              help="RSC flow contexts (SCUs open at once).")
@click.option("--rsc-timeout-us", type=click.IntRange(min=1), default=None,
              help="RSC idle time in microseconds of capture time: an SCU nothing has "
                   "joined for this long is indicated. Default: no idle timer.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Input frames per receive indication; the end of the capture always "
                   "ends one.")
@width_option
def rx(inp, out, engine, report, keywords, rsc_contexts, rsc_timeout_us, batch, width):
    """RX path: validate checksums, coalesce (RSC), write host frames and a report.

    RSC is on when *RscIPv4 / *RscIPv6 say so (default 1). Each host frame carries the time
    the NIC indicates it: a frame alone, or an SCU an arrival ends, the time of that arrival;
    an SCU the idle timer ends, the moment the timer runs out; an SCU the end of a receive
    indication ends, the time of the indication's last frame.

    --engine rtl runs the NIC top level (unit nic at --width): its RSC engine has the 8
    contexts it is built with (--rsc-contexts must be 8) and no idle timer here
    (--rsc-timeout-us is refused: the RTL's timer counts clock cycles, which a capture's
    times do not give); --batch places the end-of-indication marker (s_axis_eoi)."""
    from nicoffload.model.nic import Nic
    from nicoffload.sim import datapath
    adapter = _bind(keywords)
    dp = adapter.datapath()
    rsc_on = [name for name, on in (("IPv4", dp.rsc_ipv4), ("IPv6", dp.rsc_ipv6)) if on]
    if engine == "rtl" and rsc_contexts != datapath.RTL_RSC_CONTEXTS:
        raise CliError(f"--engine rtl: the NIC top is built with "
                       f"{datapath.RTL_RSC_CONTEXTS} RSC contexts; --rsc-contexts "
                       f"{rsc_contexts} runs only with --engine model")
    if engine == "rtl" and rsc_timeout_us is not None:
        raise CliError("--engine rtl: --rsc-timeout-us needs capture times replayed clock "
                       "cycle for cycle, which the RTL engine does not do; use --engine model")
    scus = multi = segments = 0
    with _captures(inp, out) as (reader, writer), _report(report) as lines:
        if engine == "model":
            # The NIC's clock is the capture's, in nanoseconds.
            nic = Nic(adapter, rsc_contexts=rsc_contexts,
                      rsc_idle_timeout=None if rsc_timeout_us is None else rsc_timeout_us * 1000)
            results = ((time_ns, *indication) for time_ns, indication
                       in nic.receive_stream(reader, batch=batch))
        else:
            results = _rtl(lambda: datapath.rx_rtl(reader, int(width), keywords, batch=batch,
                                                   rsc_contexts=rsc_contexts))
        for time_ns, host_frame, flags, info, delta in results:
            writer.write(time_ns, host_frame)
            lines(datapath.rx_report_line(flags, info, delta))
            if info.CoalescedSegCount:
                scus += 1
                multi += info.CoalescedSegCount > 1
                segments += info.CoalescedSegCount
        wire, indicated = reader.records, writer.count
    click.echo(f"rx: {wire} wire frames -> {indicated} host frames ({engine})", err=True)
    if rsc_on:
        stats = "" if engine != "model" else "; OID_TCP_RSC_STATISTICS: " + ", ".join(
            f"{name} {value}" for name, value in dataclasses.asdict(nic.rsc_statistics).items())
        click.echo(f"rx: RSC ({' and '.join(rsc_on)}): {scus} SCUs ({multi} of several "
                   f"segments) holding {segments} segments, {indicated - scus} frames "
                   f"alone{stats}", err=True)
    else:
        click.echo("rx: RSC off: every frame indicated alone", err=True)


def _bind(keywords):
    from nicoffload.model import config
    try:
        return config.bind(keywords)
    except ValueError as e:
        raise CliError(str(e)) from None


@contextlib.contextmanager
def _captures(inp, out):
    """The input capture's reader and the output's writer (with the input's time
    resolution); a capture error is a ``CliError``, and no output is left behind by a run
    that fails."""
    from nicoffload.sim import pcapio
    try:
        with pcapio.CaptureReader(inp) as reader, \
                pcapio.CaptureWriter(out, nanosecond=reader.nanosecond) as writer:
            yield reader, writer
    except pcapio.PcapError as e:
        raise CliError(str(e)) from None


@contextlib.contextmanager
def _report(path):
    """A function writing one line to the report ``path`` (nothing without a path)."""
    if not path:
        yield lambda line: None
        return
    try:
        f = open(path, "w")
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}") from None

    def line(text):
        try:
            f.write(text + "\n")
        except OSError as e:
            raise CliError(f"cannot write {path}: {e.strerror}") from None
    with f:
        yield line


def _rtl(run):
    try:
        return run()
    except (RuntimeError, OSError, ValueError) as e:
        raise CliError(f"RTL engine: {e}") from None


@main.command()
@click.option("--format", "fmt", type=click.Choice(["md", "c"]), default="md", show_default=True,
              help="A Markdown register-map page or a C header for drivers.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: stdout).")
def regmap(fmt, output):
    """Print the AXI4-Lite register map (generated from model/regmap.py)."""
    from nicoffload.model import regmap as regmap_mod
    text = regmap_mod.markdown() if fmt == "md" else regmap_mod.c_header()
    _write_text(output, text)


def _write_text(output, text):
    """``text`` to the file ``output``, or to stdout without one."""
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w") as f:
            f.write(text)
    except OSError as e:
        raise CliError(f"cannot write {output}: {e.strerror}") from None


@main.command()
@click.option("--width", "widths", multiple=True,
              type=click.Choice(["64", "128", "256", "512"]),
              help="Data width W (repeatable). Default 64; with --units all four.")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Input frames, TX and RX together (default 1000); with --units frames "
                   "per check (default: each check's own).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--offload", "offloads", multiple=True,
              type=click.Choice(["checksum", "lso", "rsc", "nvgre"]),
              help="Offloads on (repeatable; default all four): checksum (TX insertion and "
                   "RX validation, IPv4/TCP/UDP, both IP versions), lso (LSOv1 IPv4, LSOv2 "
                   "IPv4/IPv6), rsc (RSC IPv4/IPv6), nvgre (the encapsulated packet task "
                   "offload: checksums and LSOv2 on NVGRE's inner headers). The others are "
                   "off throughout.")
@click.option("--changes/--no-changes", default=True, show_default=True,
              help="Configuration changes between phases (OID_TCP_OFFLOAD_PARAMETERS).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default build/regress/<timestamp>/).")
@click.option("--waves", is_flag=True,
              help="Dump waveforms (VCD of every signal, some 14 kB a clock cycle at W=64: "
                   "use a small --frames) into the run folder (--units: into the build dir).")
@click.option("--units", is_flag=True,
              help="The per-unit cross-checks instead (--width, --frames, --seed, --waves).")
def regress(widths, frames, seed, offloads, changes, out, waves, units):
    """The main job: the whole NIC in Verilator against the model NIC, TX and RX traffic
    with every offload on, then with configuration changes; every frame and info bit
    cross-checked, a summary table and a run folder (pcaps, JSON reports). Exit status 1
    on any mismatch."""
    if units:
        if offloads or out or not changes:
            raise CliError("--offload, --out and --no-changes are for the NIC run, not --units")
        from nicoffload.sim import regress as regress_mod
        ok = regress_mod.run_units(frames=frames, widths=[int(w) for w in widths] or None,
                                   seed=seed, waves=waves)
    else:
        from nicoffload.sim import regress_nic
        ok = regress_nic.run(widths=[int(w) for w in widths] or [64],
                             frames=frames or regress_nic.DEFAULT_FRAMES, seed=seed,
                             offloads=offloads or regress_nic.OFFLOADS, out=out,
                             waves=waves, changes=changes)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--offload", "offloads", multiple=True,
              type=click.Choice(["checksum", "lso", "nvgre", "rsc"]),
              help="Which offload's figures (default: all four; nvgre is LSO over NVGRE, "
                   "rsc the RX path with RSC on).")
@click.option("--model-only", is_flag=True, help="Only the model's throughput.")
@click.option("--width", "widths", multiple=True, type=click.Choice(["64", "128", "256", "512"]))
@click.option("--size", "sizes", multiple=True, type=click.IntRange(1, 262144),
              help="Frame bytes (checksum; default 64..9000), payload bytes per send "
                   "(LSO; default 1 KB, 16 KB, 64 KB) or frame bytes per segment (RSC; "
                   "default 64, 1500; 1, 8 and 64 flows each).")
def bench(offloads, model_only, widths, sizes):
    """Print line-rate figures of the RTL and the model's throughput."""
    from nicoffload.sim import bench as bench_mod
    try:
        bench_mod.run(offloads=offloads or bench_mod.OFFLOADS,
                      widths=[int(w) for w in widths] or (64, 128, 256, 512),
                      sizes=sizes or None, rtl=not model_only)
    except (RuntimeError, ValueError) as e:
        raise CliError(str(e)) from None


@main.command()
@click.option("--unit", default="onesum", show_default=True, help="Unit to export.")
@click.option("--width", type=click.Choice(["64", "128", "256", "512"]), default="64",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: stdout).")
@click.argument("out_dir", required=False, type=click.Path(file_okay=False))
def verilog(unit, width, output, out_dir):
    """Export a unit's Verilog: to stdout, to -o FILE, or into OUT_DIR as UNIT.v (one
    file, top module UNIT) and UNIT.f (its filelist)."""
    from pathlib import Path

    from nicoffload.sim import units
    if output and out_dir:
        raise CliError("give -o FILE or OUT_DIR, not both")
    try:
        text = units.verilog_text(unit, int(width))
    except ValueError as e:
        raise CliError(str(e)) from None
    if out_dir is None:
        _write_text(output, text)
        return
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot write {folder}: {e.strerror}") from None
    _write_text(str(folder / f"{unit}.v"), text)
    _write_text(str(folder / f"{unit}.f"), f"{unit}.v\n")


@main.command()
@click.option("--unit", default="onesum", show_default=True,
              help="A unit, or a part of one (lso.sequencer, lso.assembler, ...: placed on "
                   "its own to measure its paths quickly).")
@click.option("--width", type=click.Choice(["64", "128", "256", "512"]), default="64",
              show_default=True)
@click.option("--mapping", type=click.Choice(["auto", "flat", "partitioned", "per-module"]),
              default="auto", show_default=True,
              help="flat: the design in one piece (the quoted figures); partitioned: each "
                   "large piece of the unit (a module of 1/32 to 1/4 of it: the NIC's parsers, "
                   "LSO, RSC parts, ...) in one piece, then flattened (gives each one's "
                   "share); per-module: each module on its own, then flattened (gives each "
                   "unit's share); auto: flat, then partitioned, then per-module, each if the "
                   "one before fails (partitioned first for the NIC).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the figures as JSON.")
@click.option("--rsc-scu-bytes", type=click.IntRange(min=1), default=None,
              help="The RSC engine's SCU region in bytes, for units that hold it (rsc, "
                   "rxpath, nic, rsc.engine). Default: the engine's (65,664 bytes, which "
                   "the ECP5-85k's block RAM cannot hold for 8 contexts; 16,384 for the "
                   "rsc.engine part).")
@click.option("--seeds", default="1", show_default=True,
              help="nextpnr placement seeds, comma-separated (e.g. 1,2,3): one place and "
                   "route each after one Yosys run; Fmax and the critical path are the "
                   "median run's, every seed's Fmax is printed. One seed's figure can be a "
                   "fifth off another's for the same netlist.")
@click.option("--pnr-timeout", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="Stop a seed's place and route after this many seconds (a router that "
                   "does not converge can run for hours); that seed gets no figure and "
                   "counts as the slowest. Default: no limit.")
@click.option("--no-place", is_flag=True,
              help="Yosys only: the counts, the nets with the most loads and the logic "
                   "levels, in minutes, no Fmax (the levels do not change with the seed).")
@click.option("--wire-delay", type=click.IntRange(min=1), default=None, metavar="PS",
              help="What a net between two LUTs costs in ABC9's mapping, in ps. Default: "
                   "Yosys' own (300). ABC9 lets paths grow to the design's deepest delay by "
                   "its model, so a low figure leaves paths deeper than they need be.")
def synth(unit, width, mapping, json_path, rsc_scu_bytes, seeds, pnr_timeout, no_place,
          wire_delay):
    """Synthesize a unit for ECP5-85k (yowasp): LUT4/FF/EBR/DSP counts, logic levels, Fmax,
    critical path."""
    from nicoffload.sim import synth as synth_mod
    try:
        seed_list = [int(seed) for seed in seeds.split(",")]
    except ValueError:
        raise CliError(f"--seeds: {seeds!r} is not a comma-separated list of integers") from None
    if len(set(seed_list)) != len(seed_list) or min(seed_list) < 0:
        raise CliError(f"--seeds: {seeds!r}: give each seed once, each 0 or more")
    if no_place:
        seed_list = []
    try:
        result = synth_mod.run(unit, int(width), mapping=mapping, rsc_scu_bytes=rsc_scu_bytes,
                               seeds=seed_list, pnr_timeout=pnr_timeout,
                               wire_delay=wire_delay or synth_mod.YOSYS_WIRE_DELAY_PS)
    except (ValueError, RuntimeError) as e:
        raise CliError(str(e)) from None
    if json_path:
        _write_text(json_path, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
