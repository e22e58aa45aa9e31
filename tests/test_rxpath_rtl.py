"""RxPath (hdl/rxpath.py: parse, checksum, RSC) in Verilator at every width against the
model (tb/tb_rxpath.py): interleaved flows, every coalescing case, bad checksums, markers,
idle timer, idles and backpressure."""

import os

import pytest

from nicoffload.sim import runner, units

# Segments per random-traffic test; four such tests (idle x backpressure) per run, so at
# least 2,000 random segments per width.
FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "2000"))


# Every width in CI (W=128 and 256 were soak-only until the builds stopped making every signal
# public: sim/runner.py).
@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_rxpath(width):
    result = runner.run("rxpath", {"width": width}, lambda: units.make("rxpath", width),
                        "nicoffload.tb.tb_rxpath",
                        extra_env={"NICOFFLOAD_FRAMES": str(-(-FRAMES // 4))})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 6     # 5 run; line_rate is skipped without NICOFFLOAD_BENCH_SIZE
