"""The header parser in Verilator at every width, against model.parse."""

import os

import pytest

from nicoffload.sim import runner, units


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_parse(width):
    frames = os.environ.get("NICOFFLOAD_FRAMES", "300")
    # The unit as `nicoffload regress` builds it: the TX path's 96-bit tuser rides along.
    result = runner.run("parse", {"width": width}, lambda: units.make("parse", width),
                        "nicoffload.tb.tb_parse",
                        extra_env={"NICOFFLOAD_FRAMES": frames})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 11
