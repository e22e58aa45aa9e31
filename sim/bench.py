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
OFFLOADS = ("checksum", "lso", "nvgre")


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
    """Print the tables of ``offloads``; ``sizes`` are frame bytes (checksum) or payload
    bytes per send (LSO), each offload's defaults when None."""
    console = console or Console()
    if "checksum" in offloads:
        checksum_tables(widths, sizes or SIZES, rtl, console)
    if "lso" in offloads:
        lso_tables(widths, sizes or LSO_SIZES, rtl, console)
    if "nvgre" in offloads:
        lso_tables(widths, sizes or NVGRE_SIZES, rtl, console, NVGRE_MSS, encap=True)
