"""RscUnit (hdl/rsc.py) in Verilator at every width against model/rsc.py (tb/tb_rsc.py):
interleaved flows, every coalescing case, markers, idle timer, idles and backpressure."""

import os

import pytest

from nicoffload.sim import runner, units

# Segments per random-traffic test; four such tests (idle x backpressure) per run, so at
# least 2,000 random segments per width.
FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "2000"))


def run(width, frames, seed=None):
    result = runner.run("rsc", {"width": width}, lambda: units.make("rsc", width),
                        "nicoffload.tb.tb_rsc", seed=seed, tag=f"s{seed}",
                        extra_env={"NICOFFLOAD_FRAMES": str(frames)})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 5


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64] + [
    pytest.param(w, marks=[pytest.mark.slow, pytest.mark.skipif(
        os.environ.get("NICOFFLOAD_SOAK") != "1",
        reason="the RX path test runs the engine at every width; NICOFFLOAD_SOAK=1 runs it")])
    for w in (128, 256, 512)])
def test_rsc_unit(width):
    run(width, -(-FRAMES // 4))
