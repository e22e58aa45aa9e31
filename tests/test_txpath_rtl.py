"""The TX path (segmenter + checksum insert) in Verilator at every width (tb/tb_txpath.py)."""

import os

import pytest

from nicoffload.hdl.axis import AxiTop
from nicoffload.sim import runner

FRAMES = {64: 240, 128: 180, 256: 180, 512: 340}   # x 4 tests, ~77% large sends
BIG = {64: 1, 128: 1, 256: 1, 512: 3}
# Random LSOv2-over-NVGRE sends (tb_txpath.nvgre_random; ~17 s per 150 at W=128): with the
# corners, the random traffic's eighth and the NIC's, at least 1,000 per width in CI (issue
# 10); W=64 has the LSO unit's besides.
NVGRE_SENDS = {64: 320, 128: 680, 256: 680, 512: 640}


def make(width):
    from nicoffload.hdl.txpath import TxPath
    return AxiTop(TxPath(width))


def run(width, *, frames, big, testcase=None, tag="", extra=None):
    env = {"NICOFFLOAD_FRAMES": str(frames), "NICOFFLOAD_BIG": str(big),
           "NICOFFLOAD_NVGRE_SENDS": str(NVGRE_SENDS[width])}
    env.update(extra or {})
    return runner.run("txpath", {"width": width}, lambda: make(width),
                      "nicoffload.tb.tb_txpath", testcase=testcase, tag=tag, extra_env=env)


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_txpath(width):
    result = run(width, frames=int(os.environ.get("NICOFFLOAD_FRAMES", FRAMES[width])),
                 big=BIG[width])
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 14     # line_rate is skipped without NICOFFLOAD_BENCH_SIZE


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1", reason="NICOFFLOAD_SOAK=1 runs it")
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_txpath_soak(width):
    result = run(width, frames=4000, big=12, tag="soak")
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
