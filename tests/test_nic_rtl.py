"""The NIC top level (hdl/nic.py) in Verilator against model.nic.Nic (tb/tb_nic.py): TX and
RX traffic at once with idles and backpressure, configuration over AXI4-Lite, changes
between phases (LSO off, checksum TX off, RSC off with SCUs open, checksum RX off, NVGRE
off, all on), NVGRE frames both ways, every byte, info word and statistics counter.

CI runs W=64 (about 1,030 input frames, TX and RX; the build about 2m40s and the run
about 1m40s (70 s of simulation) on two busy cores); 128, 256 and 512 run the same test under NICOFFLOAD_SOAK=1
(each is another build of the whole NIC)."""

import os

import pytest

from nicoffload.sim import runner, units

FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "950"))

_SOAK = pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                           reason="NICOFFLOAD_SOAK=1 runs the wider data paths")


@pytest.mark.rtl
@pytest.mark.xdist_group("nic")
@pytest.mark.parametrize("width", [64] + [pytest.param(w, marks=[pytest.mark.slow, _SOAK])
                                          for w in (128, 256, 512)])
def test_nic(width):
    result = runner.run("nic", {"width": width}, lambda: units.make("nic", width),
                        "nicoffload.tb.tb_nic", extra_env={"NICOFFLOAD_FRAMES": str(FRAMES)},
                        by_sources=True)
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 1
