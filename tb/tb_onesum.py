"""OnesSum (hdl/onesum.py) against model.onesum.ones_sum, in Verilator.

Random frames (1..9018 bytes) with random start offsets, plus adversarial frames for the
end-around carry: all-ones payloads, sums that fold more than once, totals that are 0 mod
0xFFFF (the 0x0000/0xFFFF encodings), all-zero frames, odd starts. Every test runs with and
without source idles and sink backpressure; frames are sent back to back.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamFrame

from nicoffload.model.onesum import ones_sum
from nicoffload.tb import common


def adversarial(rng: random.Random) -> tuple[bytes, int]:
    kind = rng.randrange(6)
    n = rng.choice([1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 1500, 1501, 9000])
    if kind == 0:       # all ones: every word 0xFFFF, total folds again and again
        return b"\xff" * n, rng.randrange(0, min(n, 64))
    if kind == 1:       # all zero: the only frame whose sum is 0
        return bytes(n), rng.randrange(0, min(n, 64))
    if kind == 2:       # a total that is 0 mod 0xFFFF but not 0: the result must be 0xFFFF
        body = bytearray(rng.randbytes(n | 1) if n > 2 else b"\x12\x34\x56")
        body = bytearray(body[:len(body) & ~1])
        if len(body) < 2:
            body = bytearray(b"\x00\x01")
        s = ones_sum(body)
        fix = (~s) & 0xFFFF      # add the complement: total becomes 0xFFFF mod 0xFFFF
        body += fix.to_bytes(2, "big")
        return bytes(body), 0
    if kind == 3:       # 0xFF.. with one word that brings the sum to exactly 0x10000
        return b"\xff\xfe" + b"\x00\x02" + rng.randbytes(n), 0
    if kind == 4:       # odd start offsets over random data
        data = rng.randbytes(n + 64)
        return data, rng.randrange(1, 64, 2)
    return b"\xff" * n + rng.randbytes(rng.randrange(0, 9)), rng.randrange(0, 3)


def random_frame(rng: random.Random) -> tuple[bytes, int]:
    if rng.random() < 0.3:
        return adversarial(rng)
    n = rng.choice([rng.randrange(1, 129), rng.randrange(1, 1519), rng.randrange(1, 9019)])
    return rng.randbytes(n), rng.randrange(0, min(n, 300) + 1)


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_sums(dut, idle, backpressure):
    width = common.params()["width"]
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_sum"], idle=idle,
                                    backpressure=backpressure, rng=rng)
    src, snk = srcs["s_axis"], snks["m_sum"]
    count = common.frames(200)
    cases = [random_frame(rng) for _ in range(count)]
    total_beats = sum(common.beats_of(len(f), width) for f, _ in cases)

    async def drive():
        for data, start in cases:
            await src.send(AxiStreamFrame(data, tuser=start))

    async def check():
        for i, (data, start) in enumerate(cases):
            got = await snk.recv()
            value = int.from_bytes(bytes(got.tdata), "little")
            want = ones_sum(data, start)
            assert value == want, (f"frame {i}: {len(data)} bytes from {start}: "
                                   f"RTL {value:#06x}, model {want:#06x}")

    cocotb.start_soon(drive())
    await common.with_watchdog(dut, check(), 20 * total_beats + 1000, "sums")
    assert snk.empty(), "RTL produced more sums than frames"


@cocotb.test()
async def line_rate(dut):
    """Back-to-back frames, no idles, no backpressure: a beat is taken every cycle."""
    width = common.params()["width"]
    rng = random.Random(common.seed())
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_sum"], rng=rng)
    src, snk = srcs["s_axis"], snks["m_sum"]
    cases = [(rng.randbytes(rng.choice([64, 1500, 9000])), 14) for _ in range(20)]
    beats = sum(common.beats_of(len(f), width) for f, _ in cases)
    taken = stalled = 0

    async def count():
        nonlocal taken, stalled
        while True:
            await RisingEdge(dut.clk)
            if int(dut.s_axis_tvalid.value):
                if int(dut.s_axis_tready.value):
                    taken += 1
                else:
                    stalled += 1

    counter = cocotb.start_soon(count())
    for data, start in cases:
        await src.send(AxiStreamFrame(data, tuser=start))
    for data, start in cases:
        got = await snk.recv()
        assert int.from_bytes(bytes(got.tdata), "little") == ones_sum(data, start)
    counter.cancel()
    assert taken == beats, f"{taken} beats taken, {beats} sent"
    assert stalled == 0, f"input stalled {stalled} cycles with an idle output"


@cocotb.test()
async def huge_frame(dut):
    """A 136 KB frame of ones: the 32-bit accumulator wraps and its end-around carry counts."""
    rng = random.Random(common.seed())
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_sum"], rng=rng)
    data = b"\xff" * (136 * 1024) + rng.randbytes(7)
    await srcs["s_axis"].send(AxiStreamFrame(data, tuser=0))
    got = await common.with_watchdog(dut, snks["m_sum"].recv(), 40000, "huge frame")
    assert int.from_bytes(bytes(got.tdata), "little") == ones_sum(data)
