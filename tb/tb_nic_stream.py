"""Stream a file of frames through the NIC top level: the ``--engine rtl`` path of
``nicoffload tx`` / ``nicoffload rx`` (``sim/datapath.py``: ``tx_rtl``, ``rx_rtl``).

The NIC bench (``tb/nic_bench.py``) does the work: it binds the model NIC with the registry
keywords, programs the registers over AXI4-Lite from it, sends the frames back to back (no
idles, no backpressure), feeds the model alongside and scores every output against it; the
outputs are written as the RTL gave them. Environment:

``NICOFFLOAD_STREAM_IN``    JSON lines, in order: ``{"data": hex, "tuser": int}`` a host frame
                            for ``s_axis_tx`` (``tuser`` on its first beat, DESIGN 2),
                            ``{"data": hex}`` a wire frame for ``s_axis_wire``, ``{"eoi": 1}``
                            the end of a receive indication (``s_axis_eoi``, after every wire
                            frame before it has been taken)
``NICOFFLOAD_STREAM_OUT``   written: JSON lines ``{"data": hex, "tuser": int}``, the wire frames
                            (TX) then the host frames (RX, ``tuser`` of the last beat) in order,
                            each with ``"port"``: ``wire`` or ``host``
``NICOFFLOAD_STREAM_TXC``   written: JSON lines ``{"tdata": int}``, one TX completion a host frame
``NICOFFLOAD_STREAM_SCORE`` written: JSON ``{"mismatches": n, "messages": [...]}``
``NICOFFLOAD_KEYWORDS``     JSON list of ``NAME=VALUE`` registry keywords (default none)

RSC runs with the build's contexts and no idle timer (the RTL's timer counts clock cycles,
which a capture's times do not give).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from nicoffload.model import nbl
from nicoffload.model.nic import TxRequest
from nicoffload.tb.nic_bench import TB, Recorder


@cocotb.test()
async def stream(dut):
    items = [json.loads(line) for line in open(os.environ["NICOFFLOAD_STREAM_IN"])]
    keywords = json.loads(os.environ.get("NICOFFLOAD_KEYWORDS", "[]"))
    tb = TB(dut, random.Random(1), keywords=keywords, pauses=False, rsc_idle_timeout=None)
    await tb.reset()
    tb.rec = Recorder(dut)
    await tb.program()
    txs, rxs = [], []
    for item in items:
        if "tuser" in item:
            frame, user = bytes.fromhex(item["data"]), item["tuser"]
            csum, lso, supp, _ = nbl.TxUser.unpack_raw(user)
            tb.expect_tx(TxRequest(frame, nbl.ChecksumTx.from_int(csum), lso, supp),
                         f"host frame {len(txs)}")
            txs.append((frame, user))
        elif "eoi" in item:
            rxs.append(("eoi",))
        else:
            rxs.append(("frame", bytes.fromhex(item["data"])))
    tx = cocotb.start_soon(tb.drive_tx(txs))
    rx = cocotb.start_soon(tb.drive_rx(rxs))

    async def both():
        await tx
        await rx
    try:
        await tb.guard(both(), "input", 50 * sum(len(i.get("data", "")) for i in items) + 10000)
        await ClockCycles(dut.clk, 2)
        tb.replay()
        await tb.collect()
    except AssertionError as e:
        tb.error = str(e)
    tb.score()
    with open(os.environ["NICOFFLOAD_STREAM_OUT"], "w") as out:
        for data, _ in tb.got_wire:
            out.write(json.dumps({"port": "wire", "data": data.hex(), "tuser": 0}) + "\n")
        for data, user, _ in tb.got_host:
            out.write(json.dumps({"port": "host", "data": data.hex(), "tuser": user}) + "\n")
    with open(os.environ["NICOFFLOAD_STREAM_TXC"], "w") as out:
        for word, _ in tb.got_txc:
            out.write(json.dumps({"tdata": word}) + "\n")
    with open(os.environ["NICOFFLOAD_STREAM_SCORE"], "w") as out:
        json.dump({"mismatches": sum(tb.mismatches.values()), "error": tb.error,
                   "messages": tb.messages}, out)
    assert tb.passed(), tb.error or tb.messages[0]
