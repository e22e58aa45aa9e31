"""Stream a file of frames through a Verilated unit and record what comes out.

The ``--engine rtl`` path of ``nicoffload tx/rx``. Environment:

``NICOFFLOAD_STREAM_IN``    JSON lines ``{"data": hex, "tuser": int}``, one per input frame
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
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink

from nicoffload.model.checksum import RX_ENABLE_NAMES
from nicoffload.tb import common

DRAIN_CYCLES = 6000     # longer than a frame can wait in the TX checksum stage's buffer


@cocotb.test()
async def stream(dut):
    inputs = [json.loads(line) for line in open(os.environ["NICOFFLOAD_STREAM_IN"])]
    ports = os.environ.get("NICOFFLOAD_STREAM_PORTS", "s_axis,m_axis").split(",")
    enables = json.loads(os.environ.get("NICOFFLOAD_ENABLES", "{}"))
    if enables:     # one bit per name, in RX_ENABLE_NAMES order from bit 0
        dut.enables.value = sum(int(bool(enables[name])) << i
                                for i, name in enumerate(RX_ENABLE_NAMES))
    if "NICOFFLOAD_LIMITS" in os.environ:
        dut.limits.value = int(os.environ["NICOFFLOAD_LIMITS"])
    srcs, snks = await common.setup(dut, sources=[ports[0]], sinks=[ports[1]])
    src, snk = srcs[ports[0]], snks[ports[1]]
    txc = None
    if len(ports) > 2:
        txc = AxiStreamSink(AxiStreamBus.from_prefix(dut, ports[2]), dut.clk, dut.rst)
        txc.log.setLevel("WARNING")
    width = common.params()["width"]
    beats = sum(common.beats_of(len(x["data"]) // 2, width) for x in inputs)
    out = open(os.environ["NICOFFLOAD_STREAM_OUT"], "w")

    def record(got):
        user = got.tuser[-1] if isinstance(got.tuser, list) and got.tuser else 0
        got.compact()       # drop the bytes tkeep leaves out
        out.write(json.dumps({"data": bytes(got.tdata).hex(), "tuser": int(user)}) + "\n")

    async def drive():
        for item in inputs:
            await src.send(AxiStreamFrame(bytes.fromhex(item["data"]), tuser=item["tuser"]))

    async def collect_counted():
        for _ in range(int(os.environ.get("NICOFFLOAD_EXPECT", len(inputs)))):
            record(await snk.recv(compact=False))

    async def collect_until_done():
        with open(os.environ["NICOFFLOAD_STREAM_TXC"], "w") as done:
            for _ in inputs:
                got = await txc.recv()
                done.write(json.dumps({"tdata": int.from_bytes(bytes(got.tdata), "little")})
                           + "\n")
        idle = 0
        while idle < DRAIN_CYCLES:
            await RisingEdge(dut.clk)
            if not snk.empty():
                record(snk.recv_nowait(compact=False))
                idle = 0
            elif int(getattr(dut, f"{ports[1]}_tvalid").value):
                idle = 0
            else:
                idle += 1

    cocotb.start_soon(drive())
    collect = collect_until_done() if txc else collect_counted()
    # Large sends make many wire beats per host beat: the budget follows the payload.
    await common.with_watchdog(dut, collect, 40 * beats + 20 * DRAIN_CYCLES, "stream")
    while not snk.empty():
        record(snk.recv_nowait(compact=False))
    out.close()
