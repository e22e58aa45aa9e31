"""Throughput of a unit in Verilator: back-to-back frames of one size, no idles, no
backpressure; reports output bytes per cycle over W/8 (the fraction of line rate).

Environment: ``NICOFFLOAD_BENCH_SIZE`` (frame bytes), ``NICOFFLOAD_FRAMES`` (count),
``NICOFFLOAD_BENCH_OUT`` (a JSON file the figures are written to).
"""

from __future__ import annotations

import json
import os
import random

import cocotb

from nicoffload.model.checksum import ALL_ENABLED
from nicoffload.model.transport import prepare_checksum
from nicoffload.model import nbl
from nicoffload.tb import common
from nicoffload.tb.tb_checksum import TB


def tcp_frame(rng: random.Random, size: int) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    return bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP() /
                 rng.randbytes(max(0, size - 54)))[:size]


@cocotb.test()
async def throughput(dut):
    width = common.params()["width"]
    size = int(os.environ.get("NICOFFLOAD_BENCH_SIZE", "1500"))
    count = common.frames(64)
    rng = random.Random(1)
    tb = await TB.start(dut)
    if dut._name == "rxcsum":
        dut.enables.value = common.enables_value(ALL_ENABLED)
    frames = []
    for _ in range(count):
        frame = tcp_frame(rng, size)
        user = 0
        if dut._name == "txcsum":
            frame, info = prepare_checksum(frame, ALL_ENABLED)
            user = nbl.TxUser.for_frame(frame, info)
        frames.append((frame, user))
    meter = tb.meter(tb.out).start()
    for frame, user in frames:
        tb.send(frame, user)

    async def drain():
        for frame, _ in frames:
            got, _ = await tb.frame()
            assert len(got) == len(frame)

    await tb.guard(drain(), "bench", 200000 * len(frames))
    meter.stop()
    result = {"unit": dut._name, "width": width, "size": size, "frames": count,
              "bytes": meter.bytes, "cycles": meter.span, "fraction": meter.fraction(width)}
    with open(os.environ["NICOFFLOAD_BENCH_OUT"], "w") as f:
        json.dump(result, f)
