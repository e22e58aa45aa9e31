"""``nicoffload regress``: the main job. The whole NIC (unit ``nic``, ``hdl/nic.py``) in
Verilator against the model NIC (``model.nic.Nic``).

For each width (default 64) it builds the top (cached under ``build/sim/nic-width<W>``) and
runs the NIC bench's cross-check (``tb/tb_nic.py``, the same test ``tests/test_nic_rtl.py``
runs): registers programmed over AXI4-Lite, mixed TX and RX traffic at once with every
offload on (or those ``offloads`` names), then in one phase per configuration change, with
random idles and backpressure; every frame, TX completion and RX info word is compared with
the model, then every statistics counter. The bench's scoreboard alone decides pass or
fail; this module shows its progress (the bench appends JSON lines to a progress file that
is read here while the simulator runs), prints the summary table from the bench's
``summary.json`` and says where the run folder is (``tb/nic_report.py`` lists its files:
input and output pcaps of both paths, ``rx_report.jsonl``, ``tx_completions.jsonl``,
``summary.json``; plus ``sim.log`` and, with ``waves``, ``dump.vcd``).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from nicoffload.sim import runner, units

#: Input frames (TX host frames and RX wire frames together) of the default run: the RX mix
#: adds some 8% to it. About 1m45s of simulation at W=64 on a busy core.
DEFAULT_FRAMES = 1000
#: The waveform file ``waves`` leaves in the run folder: a VCD of every signal of the top,
#: 573 MB for ``--frames 40`` at W=64 (39,553 cycles, about 14.5 kB a cycle; measured
#: 2026-12-02), so a traced run wants few frames.
WAVES_FILE = "dump.vcd"
OFFLOADS = ("checksum", "lso", "rsc", "nvgre")


def default_folder() -> Path:
    return runner.BUILD_ROOT / "regress" / time.strftime("%Y%m%d-%H%M%S")


class _ProgressFile:
    """The bench's progress lines, read as they are appended."""

    def __init__(self, path: Path):
        self.path, self.offset, self.last = path, 0, None

    def poll(self) -> dict | None:
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.last
        end = chunk.rfind("\n")
        if end >= 0:
            self.offset += len(chunk[:end + 1].encode())
            for line in chunk[:end + 1].splitlines():
                try:
                    self.last = json.loads(line)
                except ValueError:
                    pass
        return self.last


def _simulate(width, env, seed, waves, box):
    try:
        box["result"] = runner.run("nic", {"width": width}, lambda: units.make("nic", width),
                                   "nicoffload.tb.tb_nic", seed=seed, waves=waves,
                                   extra_env=env, tag="regress", by_sources=True)
    except Exception as e:      # reported in the main thread
        box["error"] = f"{type(e).__name__}: {e}"


def run_width(width: int, folder: Path, *, frames: int, seed: int, offloads, changes: bool,
              waves: bool, console: Console) -> tuple[bool, dict | None]:
    """One cross-check of the top at ``width`` into ``folder``: (passed, summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    progress_path = folder / "progress.jsonl"
    progress_path.unlink(missing_ok=True)
    env = {"NICOFFLOAD_FRAMES": str(frames), "NICOFFLOAD_SEED": str(seed),
           "NICOFFLOAD_OFFLOADS": ",".join(offloads),
           "NICOFFLOAD_CHANGES": "1" if changes else "0",
           "NICOFFLOAD_RUN_DIR": str(folder.resolve()),
           "NICOFFLOAD_PROGRESS": str(progress_path.resolve())}
    box: dict = {}
    worker = threading.Thread(target=_simulate, args=(width, env, seed, waves, box),
                              daemon=True)
    reader = _ProgressFile(progress_path)
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"W={width}: building the top (Verilator; cached)",
                                 total=None, counts="")
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            p = reader.poll()
            if p is None:
                continue
            phase = f"phase {p['phase']}/{p['phases']}" if p["phase"] else "programming"
            progress.update(task, description=f"W={width}: {phase} {p['name']}",
                            total=max(p["planned"], p["sent"], 1), completed=p["sent"],
                            counts=f"{p['sent']} frames in, {p['out']} out, "
                                   f"cycle {p['cycle']:,}")
        done = (reader.last or {}).get("sent", 0) or 1
        progress.update(task, description=f"W={width}: finished", total=done, completed=done)
    result = box.get("result")
    if result is not None:
        shutil.copy(result.test_dir / "sim.log", folder / "sim.log")
        dump = result.test_dir / WAVES_FILE
        if dump.exists():
            shutil.move(str(dump), folder / WAVES_FILE)
            console.print(f"W={width}: waveforms {folder / WAVES_FILE} "
                          f"({(folder / WAVES_FILE).stat().st_size / 1e6:,.0f} MB)")
        shutil.rmtree(result.test_dir, ignore_errors=True)
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if "error" in box:
        console.print(f"[bold red]W={width}: {box['error']}[/]")
    ok = result is not None and result.ok
    return ok, summary


def table(summary: dict, passed: bool) -> Table:
    """The summary table of one width: a column per path, a row per figure."""
    tx, rx, rsc = summary["tx"], summary["rx"], summary["rsc"]
    t = Table(title=f"NIC top W={summary['width']} vs model: seed {summary['seed']}, "
                    f"{len(summary['phases'])} phase(s)")
    t.add_column("")
    t.add_column("TX", justify="right")
    t.add_column("RX", justify="right")

    def row(name, a, b="", style=None):
        t.add_row(name, *(f"{v:,}" if isinstance(v, int) else str(v) for v in (a, b)),
                  style=style)
    row("frames in", tx["frames_in"], rx["frames_in"])
    row("frames out", tx["frames_out"], rx["frames_out"])
    row("bytes in", tx["bytes_in"], rx["bytes_in"])
    row("bytes out", tx["bytes_out"], rx["bytes_out"])
    bad = tx["mismatches"] + rx["mismatches"]
    row("mismatches", tx["mismatches"], rx["mismatches"], "bold red" if bad else "green")
    row("drops", sum(tx["drops"].values()), sum(rx["drops"].values()))
    for reason, n in tx["drops"].items():
        row(f"  {reason}", n, "")
    failed = rx.get("checksum_failed_counted", rx["checksum_failed_indicated"])
    row("checksum failed", "", ", ".join(f"{k} {v}" for k, v in failed.items()))
    row("cycles", tx["cycles"], rx["cycles"])
    row("bytes/cycle", f"{tx['bytes_per_cycle']:.2f}", f"{rx['bytes_per_cycle']:.2f}")
    row("RSC SCUs", "", rsc["scus"])
    row("  of 2+ segments", "", rsc["scus_of_2_or_more"])
    row("RSC coalesced segs", "", rsc["coalesced_segments"])
    t.caption = (f"offloads {', '.join(summary['offloads'])}; counters: "
                 f"{summary['counter_mismatches']} mismatches; bytes/cycle under random idles, "
                 f"backpressure and RSC gaps (not line rate); "
                 f"{'[green]PASS[/]' if passed else '[bold red]FAIL[/]'}")
    return t


def run(widths=(64,), frames: int = DEFAULT_FRAMES, seed: int = 1, offloads=OFFLOADS,
        out: str | Path | None = None, waves: bool = False, changes: bool = True,
        console: Console | None = None) -> bool:
    """The main job at each of ``widths``; True when every run passed."""
    console = console or Console()
    folder = Path(out) if out else default_folder()
    ok_all = True
    for width in widths:
        where = folder if len(widths) == 1 else folder / f"w{width}"
        t0 = time.monotonic()
        ok, summary = run_width(width, where, frames=frames, seed=seed, offloads=offloads,
                                changes=changes, waves=waves, console=console)
        ok_all &= ok
        if summary is not None:
            console.print(table(summary, ok))
            for text in summary["mismatch_messages"][:5]:
                console.print(f"[red]  {text}[/]")
            if summary["error"]:
                console.print(f"[bold red]  {summary['error']}[/]")
        else:
            console.print(f"[bold red]W={width}: no summary (see {where / 'sim.log'})[/]")
        console.print(f"W={width}: {'[green]PASS[/]' if ok else '[bold red]FAIL[/]'} in "
                      f"{time.monotonic() - t0:.0f} s; run folder {where}")
    return ok_all
