"""TX checksum insertion and RX checksum validation in Verilator at every width, against the
golden model, with random traffic, idles and backpressure (tb/tb_checksum.py)."""

import os

import pytest

from nicoffload.sim import runner, units

FRAMES = os.environ.get("NICOFFLOAD_FRAMES", "2000")
SOAK = os.environ.get("NICOFFLOAD_SOAK") == "1"


def run(unit, width, frames, seed=None):
    result = runner.run(unit, {"width": width}, lambda: units.make(unit, width),
                        "nicoffload.tb.tb_checksum", seed=seed, tag=f"s{seed}",
                        extra_env={"NICOFFLOAD_FRAMES": str(frames)})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 7


_SOAK_ONLY = [pytest.mark.slow,
              pytest.mark.skipif(not SOAK, reason="soak: set NICOFFLOAD_SOAK=1 (make soak)")]


# W=128 and 256 with the soaks (CI time, stop 18): both units run inside the TX path, the RX
# path and the NIC top at those widths in CI, every frame against the model; here the extremes.
@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, pytest.param(128, marks=_SOAK_ONLY),
                                   pytest.param(256, marks=_SOAK_ONLY), 512])
@pytest.mark.parametrize("unit", ["txcsum", "rxcsum"])
def test_checksum_units(unit, width):
    # FRAMES per random-traffic test; four such tests (idle x backpressure) per run.
    run(unit, width, int(FRAMES) // (4 if width in (64, 512) else 8))


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.skipif(not SOAK, reason="soak: set NICOFFLOAD_SOAK=1 (make soak)")
@pytest.mark.parametrize("width", [64, 512])
@pytest.mark.parametrize("unit", ["txcsum", "rxcsum"])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_checksum_soak(unit, width, seed):
    run(unit, width, 5000, seed)
