"""Stream a file of frames through a Verilated unit and record what comes out.

The ``--engine rtl`` path of ``nicoffload tx/rx``. Environment:

``NICOFFLOAD_STREAM_IN``    JSON lines ``{"data": hex, "tuser": int}``, one per input frame
                            (``tuser`` on the frame's first beat, DESIGN 2)
``NICOFFLOAD_STREAM_OUT``   written: JSON lines ``{"data": hex, "tuser": int}`` per output
                            frame (``tuser`` of the frame's last beat)
``NICOFFLOAD_STREAM_PORTS`` ``IN,OUT[,COMPLETIONS]`` port prefixes (default
                            ``s_axis,m_axis``); with a completion stream, one completion per
                            input frame is awaited and written to ``NICOFFLOAD_STREAM_TXC``
                            (JSON lines ``{"tdata": int}``), and the output is taken until it
                            has been idle for ``DRAIN_CYCLES``
``NICOFFLOAD_EXPECT``       without a completion stream: output frames to wait for
``NICOFFLOAD_ENABLES``      JSON ``{"rx_active": 1, ...}`` for units with an ``enables`` port
``NICOFFLOAD_LIMITS``       int value for a ``limits`` port (``hdl.lso.config_value``)
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamFrame

from nicoffload.model.checksum import RX_ENABLE_NAMES
from nicoffload.tb import common

DRAIN_CYCLES = 6000     # longer than a frame can wait in the TX checksum stage's buffer


class TB(common.StreamTB):
    """Any unit: a frame source on ``ports[0]``, a frame sink on ``ports[1]`` and, if named,
    a completion sink on ``ports[2]``."""

    def __init__(self, dut, ports):
        super().__init__(dut)
        self.src = self.source(ports[0])
        self.out = self.sink(ports[1])
        self.txc = self.word_sink(ports[2]) if len(ports) > 2 else None

    def send(self, data: bytes, user: int):
        self.src.send_nowait(AxiStreamFrame(
            data, tuser=common.first_beat_user(len(data), self.width, user)))


@cocotb.test()
async def stream(dut):
    inputs = [json.loads(line) for line in open(os.environ["NICOFFLOAD_STREAM_IN"])]
    ports = os.environ.get("NICOFFLOAD_STREAM_PORTS", "s_axis,m_axis").split(",")
    enables = json.loads(os.environ.get("NICOFFLOAD_ENABLES", "{}"))
    if enables:     # one bit per name, in RX_ENABLE_NAMES order from bit 0
        dut.enables.value = sum(int(bool(enables.get(name))) << i
                                for i, name in enumerate(RX_ENABLE_NAMES))
    if "NICOFFLOAD_LIMITS" in os.environ:
        dut.limits.value = int(os.environ["NICOFFLOAD_LIMITS"])
    tb = TB(dut, ports)
    await tb.reset()
    beats = sum(common.beats_of(len(x["data"]) // 2, tb.width) for x in inputs)
    out = open(os.environ["NICOFFLOAD_STREAM_OUT"], "w")

    def record(got):
        data, users = common.beats(got, tb.width, "output frame")
        out.write(json.dumps({"data": data.hex(), "tuser": int(users[-1])}) + "\n")

    for item in inputs:
        tb.send(bytes.fromhex(item["data"]), item["tuser"])

    async def collect_counted():
        for _ in range(int(os.environ.get("NICOFFLOAD_EXPECT", len(inputs)))):
            record(await tb.out.recv(compact=False))

    async def collect_until_done():
        with open(os.environ["NICOFFLOAD_STREAM_TXC"], "w") as done:
            for _ in inputs:
                word = common.word(await tb.txc.recv())
                done.write(json.dumps({"tdata": word}) + "\n")
        idle = 0
        while idle < DRAIN_CYCLES:
            await RisingEdge(dut.clk)
            if not tb.out.empty():
                record(tb.out.recv_nowait(compact=False))
                idle = 0
            elif tb.out.active or int(tb.out.bus.tvalid.value):
                idle = 0
            else:
                idle += 1

    collect = collect_until_done() if tb.txc else collect_counted()
    # Large sends make many wire beats per host beat: the budget follows the payload.
    await tb.guard(collect, "stream", 40 * beats + 20 * DRAIN_CYCLES)
    while not tb.out.empty():
        record(tb.out.recv_nowait(compact=False))
    out.close()
