"""``nicoffload bench``: line-rate figures of the RTL units and the model's throughput.

RTL: per unit, width W and frame size, output bytes per cycle over W/8 for back-to-back
frames with no idles and no backpressure (1.0 = line rate), measured in Verilator.
Model: Gb/s of the golden model's checksum stages on the same frames, in this process.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SIZES = (64, 128, 256, 576, 1500, 9000)


def model_gbps(size: int, seconds: float = 0.5) -> dict:
    from nicoffload.model.checksum import ALL_ENABLED, rx_validate, tx_fill
    from nicoffload.model.transport import prepare_checksum
    from nicoffload.tb.tb_bench import tcp_frame
    rng = random.Random(1)
    frames = [prepare_checksum(tcp_frame(rng, size), ALL_ENABLED) for _ in range(64)]
    out = {}
    for name, fn in (("tx_fill", lambda f, i: tx_fill(f, i)),
                     ("rx_validate", lambda f, i: rx_validate(f))):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for frame, info in frames:
                fn(frame, info)
            n += len(frames)
        out[name] = n * size * 8 / (time.perf_counter() - t0) / 1e9
    return out


def rtl_fraction(unit: str, width: int, size: int, frames: int = 48) -> float:
    from nicoffload.sim import runner, units
    with tempfile.TemporaryDirectory(prefix="nicoffload-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        result = runner.run(unit, {"width": width}, lambda: units.make(unit, width),
                            "nicoffload.tb.tb_bench", tag=f"bench{size}",
                            extra_env={"NICOFFLOAD_BENCH_SIZE": str(size),
                                       "NICOFFLOAD_FRAMES": str(frames),
                                       "NICOFFLOAD_BENCH_OUT": str(out)})
        if not result.ok:
            raise RuntimeError(f"bench run failed: {result.test_dir / 'sim.log'}")
        return json.loads(out.read_text())["fraction"]


def run(units=("txcsum", "rxcsum"), widths=(64, 128, 256, 512), sizes=SIZES, rtl=True,
        console=None):
    console = console or Console()
    if rtl:
        for unit in units:
            table = Table(title=f"{unit}: output bytes per cycle / (W/8), back to back")
            table.add_column("W", justify="right")
            for size in sizes:
                table.add_column(f"{size} B", justify="right")
            for width in widths:
                row = [str(width)]
                for size in sizes:
                    row.append(f"{rtl_fraction(unit, width, size):.3f}")
                table.add_row(*row)
            console.print(table)
    table = Table(title="golden model throughput (Gb/s, this machine, one core)")
    table.add_column("frame bytes", justify="right")
    table.add_column("tx_fill", justify="right")
    table.add_column("rx_validate", justify="right")
    for size in sizes:
        g = model_gbps(size)
        table.add_row(str(size), f"{g['tx_fill']:.2f}", f"{g['rx_validate']:.2f}")
    console.print(table)
