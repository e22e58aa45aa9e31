"""The NIC top level (hdl/nic.py) in Verilator against model.nic.Nic (tb/tb_nic.py): TX and
RX traffic at once with idles and backpressure, configuration over AXI4-Lite, changes
between phases (LSO off, checksum TX off, RSC off with SCUs open, checksum RX off, NVGRE
off, all on), NVGRE frames both ways, every byte, info word and statistics counter.

CI runs every width (about 1,030 input frames each, TX and RX; each width is another build of
the whole NIC, and W=64 shares its build with the other users of the top: ``xdist_group``).
A fresh-clone ``make test`` with W=64 and 512 took 18:59 on two idle cores, nic[512] 137 s of
it."""

import os

import pytest

from nicoffload.sim import runner, units

FRAMES = int(os.environ.get("NICOFFLOAD_FRAMES", "950"))


@pytest.mark.rtl
@pytest.mark.parametrize("width", [pytest.param(64, marks=pytest.mark.xdist_group("nic")),
                                   128, 256, 512])
def test_nic(width):
    result = runner.run("nic", {"width": width}, lambda: units.make("nic", width),
                        "nicoffload.tb.tb_nic", extra_env={"NICOFFLOAD_FRAMES": str(FRAMES)},
                        by_sources=True)
    assert result.ok, f"failed: {result.failures} (log: {result.test_dir / 'sim.log'})"
    assert result.tests == 1
