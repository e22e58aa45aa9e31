"""RscUnit's rate on back-to-back in-order 1,500-byte segments (IPv4, TCP timestamps,
1,448 payload bytes), one flow and eight flows taking turns, cross-checked against the model
as ``tb/tb_rsc.py`` does (no source idles, no sink backpressure, no idle timer).

It logs the input rate: the frames' bytes over the cycles from the first input beat to the
last, in units of W/8 bytes a cycle (1.0: one full beat every cycle), and the same over the
cycles to the last output beat. ``NICOFFLOAD_FRAMES`` segments per test (default 120;
``tests/test_rsc_rtl.py`` passes ``NICOFFLOAD_RATE_FRAMES``, default 360).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import RisingEdge

from nicoffload.tb import common, rsc_traffic
from nicoffload.tb.tb_rsc import run


async def span(dut, marks):
    """Record the cycles of the first and last input beats and of the last output beat."""
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        cycle += 1
        if int(dut.s_axis_tvalid.value) and int(dut.s_axis_tready.value):
            marks.setdefault("in_first", cycle)
            marks["in_last"] = cycle
        if int(dut.m_axis_tvalid.value) and int(dut.m_axis_tready.value) and \
                int(dut.m_axis_tlast.value):
            marks["out_last"] = cycle


@cocotb.test()
@cocotb.parametrize(flows=[1, 8])
async def rate(dut, flows):
    rng = random.Random(common.seed() + flows)
    senders = [rsc_traffic.Flow(rng, k, 4, False) for k in range(flows)]
    for f in senders:
        f.l2, f.vlan, f.ts = "eth", None, True
    frames = [senders[i % flows].data(1448) for i in range(common.frames(120))]
    assert all(len(f) == 1514 for f in frames)
    marks = {}
    cocotb.start_soon(span(dut, marks))
    await run(dut, [("frame", f) for f in frames], idle=False, backpressure=False, rng=rng,
              unverified=0)
    nb = common.params()["width"] // 8
    total = sum(len(f) for f in frames)
    to_in = total / nb / (marks["in_last"] - marks["in_first"] + 1)
    to_out = total / nb / (marks["out_last"] - marks["in_first"] + 1)
    cycles = marks["in_last"] - marks["in_first"] + 1
    dut._log.info(f"RATE flows={flows} W={8 * nb}: {len(frames)} frames, {total} bytes; "
                  f"input {to_in:.3f} of W/8 a cycle ({cycles} cycles), to the last output "
                  f"{to_out:.3f}")
