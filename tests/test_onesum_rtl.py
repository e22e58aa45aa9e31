"""The one's-complement sum unit in Verilator at every width, against the model."""

import pytest

from nicoffload.sim import runner, units


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_onesum(width):
    result = runner.run("onesum", {"width": width}, lambda: units.make("onesum", width),
                        "nicoffload.tb.tb_onesum", extra_env={"NICOFFLOAD_FRAMES": "150"})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 7
