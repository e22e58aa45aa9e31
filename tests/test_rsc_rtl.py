"""RscUnit (hdl/rsc.py) in Verilator at every width against model/rsc.py (tb/tb_rsc.py):
interleaved flows, every coalescing case, markers, idle timer, idles and backpressure."""

import os

import pytest

from nicoffload.sim import runner, units

# Random segments per run, over four tests (idle x backpressure).
FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "600"))


def run(width, frames, seed=None):
    result = runner.run("rsc", {"width": width}, lambda: units.make("rsc", width),
                        "nicoffload.tb.tb_rsc", seed=seed, tag=f"s{seed}",
                        extra_env={"NICOFFLOAD_FRAMES": str(frames)})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 5


# Soak only (CI time): tests/test_rxpath_rtl.py runs the same five tests of tb/tb_rsc.py
# through the whole RX path (parser, checksum verdict, this engine) at W=64 and 512 with
# 2,000 random segments each.
@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                    reason="the RX path test runs the same tests through this engine; "
                           "NICOFFLOAD_SOAK=1 runs it")
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_rsc_unit(width):
    run(width, -(-FRAMES // 4))
