"""``nicoffload bench``: line-rate figures of the RTL and the golden model's throughput.

Checksum offload (``--offload checksum``): per unit (TX insertion, RX validation), width W and
frame size, output bytes per cycle over W/8 for back-to-back frames with no idles and no
backpressure (1.0 = line rate), measured in Verilator (``tb/tb_bench.py``); and the Gb/s of
the model's ``tx_fill`` / ``rx_validate`` on the same frames.

Large send offload (``--offload lso``): per W, send size and MSS, wire bytes per cycle over W/8
at the output of the whole TX path (segmenter + checksum insertion, ``tb_txpath.line_rate``)
for back-to-back LSOv2 IPv4 sends; and the Gb/s of host bytes that ``model.lso.segment`` turns
into segments.

NVGRE (``--offload nvgre``): the same at the TX path's output for back-to-back LSOv2 sends
over NVGRE (outer and inner IPv4, a GRE key; ``tb_lso.bench_frames``), the outer and inner
headers rewritten per segment; and the Gb/s of ``model.nvgre_lso.cut`` on the same sends.

RSC (``--offload rsc``): per W, segment size (frame bytes) and number of flows, the whole RX
path (``rxpath``: parse, checksum verification, RSC) in Verilator with RSC on, fed
back-to-back in-order IPv4 TCP data segments, Ethernet II, no options (no IPv6: its headers
alone are 74 bytes, more than a 64-byte frame; a 64-byte IPv4 one carries 10 payload
bytes), round-robin across 1, 8 or 64 flows (the engine has 8 contexts), no idle timer, no
output backpressure, one end-of-indication marker after the last segment
(``tb_rxpath.line_rate``). The window is from the first input beat taken to the last output
beat taken, fill and drain included (not a steady state); the figures are input bytes per
cycle of that window over W/8 and output bytes per cycle over W/8 (fewer bytes: an SCU
carries one set of headers); "in (arrival)", the input bytes per cycle over W/8 from the
first input beat to the last (the wire rate the path sustains while the segments come: the
window also holds the SCUs the marker ends, which the model indicates only after the last
segment); the SCUs (outputs of two segments or more) and the segments they coalesced. The bench sees only the unit's ports, so it
measures any RSC engine behind them. Beside it, the segments/s and Gb/s (of frame bytes in)
of ``model.checksum.rx_validate`` then ``model.rsc.RscEngine`` on the same segments.

Each RTL figure is one simulation run (every output byte is also checked against the model),
so a whole table takes minutes; ``--width`` and ``--size`` narrow it.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SIZES = (64, 128, 256, 576, 1500, 9000)        # checksum: frame bytes
LSO_SIZES = (1024, 16384, 65536)               # LSO: payload bytes per send
LSO_MSS = (536, 1460, 8960)
NVGRE_SIZES = (16384, 65536)                   # NVGRE LSO: payload bytes per send
NVGRE_MSS = (1400,)
RSC_SIZES = (64, 1500)                         # RSC: frame bytes per segment
RSC_FLOWS = (1, 8, 64)
RSC_SEGMENTS = 256
OFFLOADS = ("checksum", "lso", "nvgre", "rsc")


def _rtl_run(unit: str, width: int, module: str, env: dict, tag: str,
             testcase: str | None = None) -> dict:
    """Run one bench testcase; the figures it wrote to ``NICOFFLOAD_BENCH_OUT``."""
    from nicoffload.sim import runner, units
    with tempfile.TemporaryDirectory(prefix="nicoffload-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        env = dict(env, NICOFFLOAD_BENCH_OUT=str(out))
        result = runner.run(unit, {"width": width}, lambda: units.make(unit, width), module,
                            testcase=testcase, tag=tag, extra_env=env)
        if not result.ok or not out.exists():
            raise RuntimeError(f"bench run of {unit} W={width} failed: "
                               f"{result.test_dir / 'sim.log'}")
        return json.loads(out.read_text())


def rtl_fraction(unit: str, width: int, size: int, frames: int = 48) -> float:
    """Checksum units: output bytes per cycle over W/8 for back-to-back ``size``-byte frames."""
    return _rtl_run(unit, width, "nicoffload.tb.tb_bench",
                    {"NICOFFLOAD_BENCH_SIZE": str(size), "NICOFFLOAD_FRAMES": str(frames)},
                    f"bench{size}")["fraction"]


def lso_fraction(width: int, size: int, mss: int, unit: str = "txpath", *,
                 encap: bool = False) -> float:
    """TX path (or the segmenter alone, ``unit="lso"``): wire bytes per cycle over W/8 for
    back-to-back LSOv2 IPv4 sends of ``size`` payload bytes at ``mss`` (over NVGRE when
    ``encap``)."""
    module = {"txpath": "nicoffload.tb.tb_txpath", "lso": "nicoffload.tb.tb_lso"}[unit]
    tag = f"bench{size}-{mss}" + ("-nvgre" if encap else "")
    return _rtl_run(unit, width, module,
                    {"NICOFFLOAD_BENCH_SIZE": str(size), "NICOFFLOAD_BENCH_MSS": str(mss),
                     "NICOFFLOAD_BENCH_ENCAP": "1" if encap else "0"},
                    tag, testcase="line_rate")["fraction"]


def rsc_figures(width: int, size: int, flows: int, segments: int = RSC_SEGMENTS) -> dict:
    """RX path with RSC on ``segments`` back-to-back ``size``-byte segments over ``flows``
    flows: the figures of ``tb_rxpath.line_rate`` (``in_fraction``, ``out_fraction``,
    ``scus``, ``coalesced``, ``outputs``, ...; module docstring)."""
    return _rtl_run("rxpath", width, "nicoffload.tb.tb_rxpath",
                    {"NICOFFLOAD_BENCH_SIZE": str(size), "NICOFFLOAD_BENCH_FLOWS": str(flows),
                     "NICOFFLOAD_FRAMES": str(segments)},
                    f"bench{size}-{flows}", testcase="line_rate")


def _gbps(fn, items, nbytes: int, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for item in items:
            fn(*item)
        n += len(items)
    return n * nbytes * 8 / (time.perf_counter() - t0) / 1e9


def model_gbps(size: int, seconds: float = 0.5) -> dict:
    """Gb/s of frame bytes through the model's checksum stages, ``size``-byte TCP frames."""
    from nicoffload.model.checksum import ALL_ENABLED, rx_validate, tx_fill
    from nicoffload.model.transport import prepare_checksum
    from nicoffload.tb.tb_bench import tcp_frame
    rng = random.Random(1)
    frames = [prepare_checksum(tcp_frame(rng, size), ALL_ENABLED) for _ in range(64)]
    return {"tx_fill": _gbps(tx_fill, frames, size, seconds),
            "rx_validate": _gbps(lambda f, i: rx_validate(f), frames, size, seconds)}


def model_lso_gbps(size: int, mss: int, seconds: float = 0.5, *, encap: bool = False) -> float:
    """Gb/s of host bytes (headers + payload of each send) through ``model.lso.segment`` on
    the bench's sends (over NVGRE when ``encap``: the checks and cut of ``model.nvgre_lso``)."""
    from nicoffload.model.lso import segment
    from nicoffload.model.nbl import TxUser
    from nicoffload.tb.tb_lso import PHASES, bench_frames
    items = []
    for frame, user in bench_frames(size, mss, 8, random.Random(1), encap=encap):
        _, word, supp, _ = TxUser.unpack_raw(user)
        items.append((frame, word, PHASES[0], supp))

    def run(frame, word, limits, supp):
        return segment(frame, word, limits, supplemental=supp)
    for frame, word, limits, supp in items:   # the figure is of real segmentation, not drops
        if not run(frame, word, limits, supp).segments:
            raise RuntimeError(f"bench send of {size} bytes at MSS {mss} was dropped")
    return _gbps(run, items, len(items[0][0]), seconds)


def model_rsc_rate(size: int, flows: int, seconds: float = 0.5,
                   segments: int = RSC_SEGMENTS) -> tuple[float, float]:
    """Segments per second and Gb/s of frame bytes through ``rx_validate`` then
    ``RscEngine.receive`` (one arrival per segment, a fresh engine per pass, its SCUs
    indicated at the end of each pass), on the RTL bench's segments, one core. Timed in CPU
    time of this process (``time.process_time``), so the figure holds on a shared machine."""
    from nicoffload.model.checksum import rx_validate
    from nicoffload.model.rsc import RscEngine
    from nicoffload.tb.rsc_traffic import bench_segments
    from nicoffload.tb.tb_rsc import RX_ENABLES
    frames = bench_segments(random.Random(1), size, flows, segments)

    def one_pass():
        engine = RscEngine()
        for t, frame in enumerate(frames):
            engine.receive(frame, rx_validate(frame, enables=RX_ENABLES), t)
        engine.end_indication()
    passes, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        one_pass()
        passes += 1
    elapsed = time.process_time() - t0
    return passes * segments / elapsed, passes * segments * size * 8 / elapsed / 1e9


def rsc_tables(widths, sizes, rtl, console, flows_list=RSC_FLOWS):
    """The RX path's rates with RSC on and the model's on the same segments."""
    from nicoffload.hdl.rsc import DEFAULT_MAX_FRAME_BYTES
    from nicoffload.tb.rsc_traffic import BENCH_HEADER_BYTES
    for size in sizes:
        if not BENCH_HEADER_BYTES < size <= DEFAULT_MAX_FRAME_BYTES:
            raise ValueError(f"RSC bench: a segment of {size} bytes; frames of "
                             f"{BENCH_HEADER_BYTES + 1}..{DEFAULT_MAX_FRAME_BYTES} bytes "
                             f"(the RX path's longest)")
    if rtl:
        table = Table(title="RX path with RSC: bytes per cycle / (W/8), back-to-back IPv4 TCP "
                            "segments, first input beat to last output beat")
        for col in ("W", "frame", "flows", "in", "out", "in (arrival)", "SCUs", "coalesced",
                    "outputs"):
            table.add_column(col, justify="right")
        rows = [(s, f) for s in sizes for f in flows_list]
        for width in widths:
            for i, (size, flows) in enumerate(rows):
                r = rsc_figures(width, size, flows)
                table.add_row(str(width) if i == 0 else "", f"{size} B", str(flows),
                              f"{r['in_fraction']:.3f}", f"{r['out_fraction']:.3f}",
                              f"{r['in_arrival_fraction']:.3f}", str(r["scus"]), f"{r['coalesced']}/{r['segments']}",
                              str(r["outputs"]), end_section=i == len(rows) - 1)
        console.print(table)
    table = Table(title="RSC model throughput (rx_validate + RscEngine, one core)")
    for col in ("frame", "flows", "segments/s", "Gb/s"):
        table.add_column(col, justify="right")
    for size in sizes:
        for flows in flows_list:
            rate, gbps = model_rsc_rate(size, flows)
            table.add_row(f"{size} B", str(flows), f"{rate:,.0f}", f"{gbps:.3f}")
    console.print(table)


def checksum_tables(widths, sizes, rtl, console):
    if rtl:
        for unit in ("txcsum", "rxcsum"):
            table = Table(title=f"{unit}: output bytes per cycle / (W/8), back to back")
            table.add_column("W", justify="right")
            for size in sizes:
                table.add_column(f"{size} B", justify="right")
            for width in widths:
                table.add_row(str(width), *(f"{rtl_fraction(unit, width, size):.3f}"
                                            for size in sizes))
            console.print(table)
    table = Table(title="checksum model throughput (Gb/s of frame bytes, one core)")
    for col in ("frame bytes", "tx_fill", "rx_validate"):
        table.add_column(col, justify="right")
    for size in sizes:
        g = model_gbps(size)
        table.add_row(str(size), f"{g['tx_fill']:.2f}", f"{g['rx_validate']:.2f}")
    console.print(table)


def lso_tables(widths, sizes, rtl, console, mss_list=LSO_MSS, *, encap=False):
    """The TX path's line rate on LSOv2 sends (over NVGRE when ``encap``) and the model's
    throughput on the same sends."""
    what = ("LSO over NVGRE", "LSOv2 sends, outer and inner IPv4", "NVGRE LSO") if encap \
        else ("LSO", "LSOv2 IPv4 sends", "LSO")
    if rtl:
        table = Table(title=f"TX path with {what[0]}: wire bytes per cycle / (W/8), "
                            f"back-to-back {what[1]}")
        table.add_column("W", justify="right")
        table.add_column("send payload", justify="right")
        for m in mss_list:
            table.add_column(f"MSS {m}", justify="right")
        for width in widths:
            for i, s in enumerate(sizes):
                table.add_row(str(width) if i == 0 else "", f"{s} B",
                              *(f"{lso_fraction(width, s, m, encap=encap):.3f}"
                                for m in mss_list),
                              end_section=i == len(sizes) - 1)
        console.print(table)
    table = Table(title=f"{what[2]} model throughput (Gb/s of host bytes, one core)")
    table.add_column("send payload", justify="right")
    for m in mss_list:
        table.add_column(f"MSS {m}", justify="right")
    for s in sizes:
        table.add_row(f"{s} B", *(f"{model_lso_gbps(s, m, encap=encap):.2f}"
                                  for m in mss_list))
    console.print(table)


def run(offloads=OFFLOADS, widths=(64, 128, 256, 512), sizes=None, rtl=True, console=None):
    """Print the tables of ``offloads``; ``sizes`` are frame bytes (checksum, RSC) or
    payload bytes per send (LSO), each offload's defaults when None."""
    console = console or Console()
    if "checksum" in offloads:
        checksum_tables(widths, sizes or SIZES, rtl, console)
    if "lso" in offloads:
        lso_tables(widths, sizes or LSO_SIZES, rtl, console)
    if "nvgre" in offloads:
        lso_tables(widths, sizes or NVGRE_SIZES, rtl, console, NVGRE_MSS, encap=True)
    if "rsc" in offloads:
        rsc_tables(widths, sizes or RSC_SIZES, rtl, console)
