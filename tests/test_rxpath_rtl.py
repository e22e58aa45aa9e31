"""RxPath (hdl/rxpath.py: parse, checksum, RSC) in Verilator at every width against the
model (tb/tb_rxpath.py): interleaved flows, every coalescing case, bad checksums, markers,
idle timer, idles and backpressure."""

import os

import pytest

from nicoffload.sim import runner, units

# Segments per random-traffic test; four such tests (idle x backpressure) per run, so at
# least 2,000 random segments per width.
FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "2000"))


# CI runs the narrowest and the widest data path; W=128 and 256 (which pass, run by hand and
# under NICOFFLOAD_SOAK=1) wait until the RX path is line rate and cheaper to simulate, to keep
# `make test` within its 30 minutes on two cores.
_SOAK = pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                           reason="NICOFFLOAD_SOAK=1 runs the middle widths")


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, pytest.param(128, marks=[pytest.mark.slow, _SOAK]),
                                   pytest.param(256, marks=[pytest.mark.slow, _SOAK]), 512])
def test_rxpath(width):
    result = runner.run("rxpath", {"width": width}, lambda: units.make("rxpath", width),
                        "nicoffload.tb.tb_rxpath",
                        extra_env={"NICOFFLOAD_FRAMES": str(-(-FRAMES // 4))})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 6     # 5 run; line_rate is skipped without NICOFFLOAD_BENCH_SIZE
