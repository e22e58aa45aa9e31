"""The header parser in Verilator at every width, against model.parse."""

import os

import pytest

from nicoffload.hdl.axis import AxiTop
from nicoffload.sim import runner

USER_WIDTH = 96     # the TX path's tuser (three NBL info words)


def make_parser(width):
    from nicoffload.hdl.parse import FrameParser
    return AxiTop(FrameParser(width, USER_WIDTH))


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_parse(width):
    frames = os.environ.get("NICOFFLOAD_FRAMES", "500")
    result = runner.run("parse", {"width": width, "user_width": USER_WIDTH},
                        lambda: make_parser(width), "nicoffload.tb.tb_parse",
                        extra_env={"NICOFFLOAD_FRAMES": frames})
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 9
