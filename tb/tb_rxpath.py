"""RxPath (hdl/rxpath.py) against model.checksum.rx_validate + model.rsc.RscEngine, in
Verilator: the tests of ``tb/tb_rsc.py`` (same traffic, recorder and scoreboard) driven
through ``s_axis_wire`` (no ``tuser``: the path's checksum stage makes the word) out of
``m_axis_rx``.

``line_rate`` (run by ``nicoffload bench --offload rsc``, skipped without
``NICOFFLOAD_BENCH_SIZE``): back-to-back in-order IPv4 TCP data segments of one size,
round-robin across ``NICOFFLOAD_BENCH_FLOWS`` flows (``rsc_traffic.bench_segments``), RSC on,
no idle timer, no idles at the input and no backpressure at the output, one
end-of-indication marker after the last segment. It measures only at the unit's ports, so it
holds whatever the RSC engine inside does: the window is from the cycle the first input beat
is taken to the cycle the last output beat is taken (fill and drain included), and the
figures are input bytes and output bytes per cycle of that window over W/8, and input bytes
per cycle over W/8 from the first input beat to the last (``in_arrival_fraction``). Every output
frame and its RxUser are compared with the model's (``tb_rsc.replay``/``compare``, the
arrival cycles recorded at ``s_axis_wire``), and the ``rsc_stats`` sums with its statistics.
The figures go to ``NICOFFLOAD_BENCH_OUT`` (JSON).
"""

import json
import os
import random

import cocotb
from cocotbext.axi import AxiStreamFrame

from nicoffload.model import nbl
from nicoffload.model.checksum import rx_validate
from nicoffload.tb import common, rsc_traffic
from nicoffload.tb.tb_rsc import (RX_ENABLES, Recorder, check_statistics, compare, replay,
                                  reset, send_eoi)
from nicoffload.tb.tb_rsc import no_timer_long_runs, random_traffic

__all__ = ["random_traffic", "no_timer_long_runs", "line_rate"]


@cocotb.test(skip=os.environ.get("NICOFFLOAD_BENCH_SIZE") is None)
async def line_rate(dut):
    """Back-to-back segments of one size over some flows: bytes per cycle in and out."""
    width = common.params()["width"]
    size = int(os.environ["NICOFFLOAD_BENCH_SIZE"])
    flows = int(os.environ.get("NICOFFLOAD_BENCH_FLOWS", "8"))
    frames = rsc_traffic.bench_segments(random.Random(1), size, flows, common.frames(256))
    sent = [(frame, rx_validate(frame, enables=RX_ENABLES)) for frame in frames]
    tb = common.StreamTB(dut)
    src, snk = tb.source("s_axis_wire"), tb.sink("m_axis_rx")
    await reset(tb)
    rec = Recorder(dut, "s_axis_wire")
    meter_in, meter_out = tb.meter(src).start(), tb.meter(snk).start()   # one cycle count
    for frame in frames:
        await src.send(AxiStreamFrame(frame))
    await src.wait()
    await send_eoi(dut)
    engine, want = replay(rec.log, sent)
    in_beats = sum(common.beats_of(len(f), width) for f in frames)
    users = await tb.guard(compare(snk, want), "RSC bench output", 40 * in_beats + 20000)
    meter_in.stop()
    meter_out.stop()
    await tb.settle()
    assert snk.empty(), "more frames out than the model indicates"
    check_statistics(rec, engine)
    counts = [nbl.RscInfo.from_int(nbl.RxUser.unpack_raw(u)[1]).CoalescedSegCount
              for u in users]
    window = meter_out.last - meter_in.first + 1
    result = {
        "width": width, "size": size, "flows": flows, "segments": len(frames),
        "in_bytes": meter_in.bytes, "out_bytes": meter_out.bytes, "cycles": window,
        "in_fraction": meter_in.bytes / (window * width / 8),
        "out_fraction": meter_out.bytes / (window * width / 8),
        # the input alone: its first beat to its last (the SCUs the marker ends come after)
        "in_arrival_fraction": meter_in.bytes / ((meter_in.last - meter_in.first + 1)
                                                 * width / 8),
        "outputs": len(users), "model_outputs": len(want),
        # from the RTL's RxUser words (each checked equal to the model's)
        "scus": sum(1 for c in counts if c > 1),
        "coalesced": sum(c for c in counts if c > 1),
        "alone": sum(1 for c in counts if c <= 1),
        "segments_out": sum(max(c, 1) for c in counts),
        "stats": rec.stats,
    }
    dut._log.info(f"bench: {result}")
    with open(os.environ["NICOFFLOAD_BENCH_OUT"], "w") as f:
        json.dump(result, f)
