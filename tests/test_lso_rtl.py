"""The LSO segmenter in Verilator at every width, against model.lso (tb/tb_lso.py)."""

import os

import pytest

from nicoffload.hdl.axis import AxiTop
from nicoffload.sim import runner

FRAMES = {64: 120, 128: 340, 256: 340, 512: 340}   # x 4 tests, ~77% large sends
BIG = {64: 1, 128: 2, 256: 2, 512: 3}


def make(width):
    from nicoffload.hdl.lso import LsoUnit
    return AxiTop(LsoUnit(width))


def run(width, *, frames, big, testcase=None, tag=""):
    return runner.run("lso", {"width": width}, lambda: make(width), "nicoffload.tb.tb_lso",
                      testcase=testcase, tag=tag,
                      extra_env={"NICOFFLOAD_FRAMES": str(frames),
                                 "NICOFFLOAD_BIG": str(big)})


_SOAK = pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                           reason="NICOFFLOAD_SOAK=1 runs it")


# W=128, 256 and 512 with the soaks (CI time): CI runs the same cases through the same
# segmenter at every width in the TX path's bench (tests/test_txpath_rtl.py, tb/tb_txpath.py),
# wire bytes and completions compared with the model; here the segmenter's own output at W=64.
@pytest.mark.rtl
@pytest.mark.parametrize("width", [64] + [pytest.param(w, marks=[pytest.mark.slow, _SOAK])
                                          for w in (128, 256, 512)])
def test_lso(width):
    result = run(width, frames=int(os.environ.get("NICOFFLOAD_FRAMES", FRAMES[width])),
                 big=BIG[width])
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 11     # line_rate is skipped without NICOFFLOAD_BENCH_SIZE


@pytest.mark.rtl
@pytest.mark.slow
@_SOAK
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_lso_soak(width):
    result = run(width, frames=4000, big=12, tag="soak")
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
