"""Stream a file of frames through a Verilated unit and record what comes out.

The ``--engine rtl`` path of ``nicoffload tx/rx``. Environment:

``NICOFFLOAD_STREAM_IN``   JSON lines ``{"data": hex, "tuser": int}``, one per input frame
``NICOFFLOAD_STREAM_OUT``  written: JSON lines ``{"data": hex, "tuser": int}`` per output frame
                           (``tuser`` of the frame's last beat)
``NICOFFLOAD_ENABLES``     JSON ``{"rx_active": 1, ...}`` for units with an ``enables`` port
``NICOFFLOAD_EXPECT``      number of output frames to wait for
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotbext.axi import AxiStreamFrame

from nicoffload.model.checksum import RX_ENABLE_NAMES
from nicoffload.tb import common


@cocotb.test()
async def stream(dut):
    inputs = [json.loads(line) for line in open(os.environ["NICOFFLOAD_STREAM_IN"])]
    expect = int(os.environ.get("NICOFFLOAD_EXPECT", len(inputs)))
    enables = json.loads(os.environ.get("NICOFFLOAD_ENABLES", "{}"))
    if enables:     # one bit per name, in RX_ENABLE_NAMES order from bit 0
        dut.enables.value = sum(int(bool(enables[name])) << i
                                for i, name in enumerate(RX_ENABLE_NAMES))
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_axis"])
    src, snk = srcs["s_axis"], snks["m_axis"]
    width = common.params()["width"]
    beats = sum(common.beats_of(len(x["data"]) // 2, width) for x in inputs)

    async def drive():
        for item in inputs:
            await src.send(AxiStreamFrame(bytes.fromhex(item["data"]), tuser=item["tuser"]))

    async def collect():
        with open(os.environ["NICOFFLOAD_STREAM_OUT"], "w") as out:
            for _ in range(expect):
                got = await snk.recv(compact=False)
                user = got.tuser[-1] if isinstance(got.tuser, list) and got.tuser else 0
                got.compact()       # drop the bytes tkeep leaves out
                out.write(json.dumps({"data": bytes(got.tdata).hex(), "tuser": int(user)}) + "\n")

    cocotb.start_soon(drive())
    await common.with_watchdog(dut, collect(), 10 * beats + 10000, "stream")
