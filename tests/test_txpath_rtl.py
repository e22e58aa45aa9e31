"""The TX path (segmenter + checksum insert) in Verilator at every width (tb/tb_txpath.py)."""

import os

import pytest

from nicoffload.hdl.axis import AxiTop
from nicoffload.sim import runner

FRAMES = {64: 340, 128: 340, 256: 340, 512: 340}   # x 4 tests, ~77% large sends
BIG = {64: 1, 128: 2, 256: 2, 512: 3}


def make(width):
    from nicoffload.hdl.txpath import TxPath
    return AxiTop(TxPath(width))


def run(width, *, frames, big, testcase=None, tag="", extra=None):
    env = {"NICOFFLOAD_FRAMES": str(frames), "NICOFFLOAD_BIG": str(big)}
    env.update(extra or {})
    return runner.run("txpath", {"width": width}, lambda: make(width),
                      "nicoffload.tb.tb_txpath", testcase=testcase, tag=tag, extra_env=env)


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_txpath(width):
    result = run(width, frames=int(os.environ.get("NICOFFLOAD_FRAMES", FRAMES[width])),
                 big=BIG[width])
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 8     # line_rate is skipped without NICOFFLOAD_BENCH_SIZE


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1", reason="NICOFFLOAD_SOAK=1 runs it")
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_txpath_soak(width):
    result = run(width, frames=4000, big=12, tag="soak")
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"


# --- bench figures (not a test: `python tests/test_txpath_rtl.py [W ...]`) ----------------

BENCH_SIZES = (1024, 16384, 65536)
BENCH_MSS = (536, 1460, 8960)


def bench_fraction(width, size, mss, unit="txpath"):
    """Wire bytes per cycle over W/8 for back-to-back sends of ``size`` payload bytes."""
    import json
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory(prefix="nicoffload-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        env = {"NICOFFLOAD_BENCH_SIZE": str(size), "NICOFFLOAD_BENCH_MSS": str(mss),
               "NICOFFLOAD_BENCH_OUT": str(out)}
        if unit == "txpath":
            result = runner.run("txpath", {"width": width}, lambda: make(width),
                                "nicoffload.tb.tb_txpath", testcase="line_rate",
                                extra_env=env, tag=f"bench{size}-{mss}")
        else:
            from nicoffload.hdl.lso import LsoSegmenter
            result = runner.run("lso", {"width": width},
                                lambda: AxiTop(LsoSegmenter(width)), "nicoffload.tb.tb_lso",
                                testcase="line_rate", extra_env=env, tag=f"bench{size}-{mss}")
        if not result.ok or not out.exists():
            raise RuntimeError(f"bench run failed: {result.test_dir / 'sim.log'}")
        return json.loads(out.read_text())["fraction"]


def bench_table(widths=(64, 128, 256, 512), unit="txpath"):
    rows = []
    header = "W    " + "".join(f"{s // 1024:>4} KB/{m:<5}" for s in BENCH_SIZES for m in BENCH_MSS)
    print(f"{unit}: output bytes per cycle / (W/8), back-to-back LSOv2 IPv4 sends")
    print(header, flush=True)
    for width in widths:
        row = [bench_fraction(width, s, m, unit) for s in BENCH_SIZES for m in BENCH_MSS]
        rows.append((width, row))
        print(f"{width:<5}" + "".join(f"{f:>13.3f}" for f in row), flush=True)
    return rows


if __name__ == "__main__":
    import sys
    args = sys.argv[1:]
    unit = "txpath"
    if args and args[0] in ("txpath", "lso"):
        unit, args = args[0], args[1:]
    bench_table(tuple(int(a) for a in args) or (64, 128, 256, 512), unit)
