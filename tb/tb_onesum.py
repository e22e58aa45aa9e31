"""OnesSum (hdl/onesum.py) against model.onesum.ones_sum, in Verilator.

Random frames (1..9018 bytes) with random start offsets, plus adversarial frames for the
end-around carry: all-ones payloads, sums that fold more than once, totals that are 0 mod
0xFFFF (the 0x0000/0xFFFF encodings), all-zero frames, odd starts. Every test runs with and
without source idles and sink backpressure; frames are sent back to back.

:class:`TB`: frames on ``s_axis`` (the start offset in the first beat's ``tuser``), sums on
``m_sum`` (one 16-bit word per frame).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import ClockCycles
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


class TB(common.StreamTB):
    """OnesSum with a frame source on ``s_axis`` and a sum sink on ``m_sum``."""

    def __init__(self, dut):
        super().__init__(dut)
        self.src = self.source("s_axis")
        self.sums = self.word_sink("m_sum")

    @classmethod
    async def start(cls, dut, rng: random.Random | None = None, *, idle=False,
                    backpressure=False) -> TB:
        tb = cls(dut)
        tb.set_pauses(tb.src, idle, rng)
        tb.set_pauses(tb.sums, backpressure, rng)
        await tb.reset()
        return tb

    def send(self, data: bytes, start: int):
        self.src.send_nowait(AxiStreamFrame(
            data, tuser=common.first_beat_user(len(data), self.width, start)))

    async def sum(self) -> int:
        return common.word(await self.sums.recv())


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_sums(dut, idle, backpressure):
    width = common.params()["width"]
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    tb = await TB.start(dut, rng, idle=idle, backpressure=backpressure)
    count = common.frames(200)
    cases = [random_frame(rng) for _ in range(count)]
    total_beats = sum(common.beats_of(len(f), width) for f, _ in cases)
    for data, start in cases:
        tb.send(data, start)

    async def check():
        for i, (data, start) in enumerate(cases):
            value = await tb.sum()
            want = ones_sum(data, start)
            assert value == want, (f"frame {i}: {len(data)} bytes from {start}: "
                                   f"RTL {value:#06x}, model {want:#06x}")

    await tb.guard(check(), "sums", 20 * total_beats + 1000)
    await tb.settle()


@cocotb.test()
async def line_rate(dut):
    """Back-to-back frames, no idles, no backpressure: a beat is taken every cycle."""
    width = common.params()["width"]
    rng = random.Random(common.seed())
    tb = await TB.start(dut, rng)
    cases = [(rng.randbytes(rng.choice([64, 1500, 9000])), 14) for _ in range(20)]
    beats = sum(common.beats_of(len(f), width) for f, _ in cases)
    meter = tb.meter(tb.src).start()
    for data, start in cases:
        tb.send(data, start)

    async def check():
        for data, start in cases:
            assert await tb.sum() == ones_sum(data, start)

    await tb.guard(check(), "line-rate sums", 20 * beats + 1000)
    meter.stop()
    stalled = meter.stalls + meter.stalls_before
    assert meter.beats == beats, f"{meter.beats} beats taken, {beats} sent"
    assert stalled == 0, f"input stalled {stalled} cycles with an idle output"
    assert meter.span == beats, f"{beats} beats took {meter.span} cycles"


@cocotb.test()
async def huge_frame(dut):
    """A 136 KB frame of ones: the 32-bit accumulator wraps and its end-around carry counts."""
    rng = random.Random(common.seed())
    tb = await TB.start(dut, rng)
    data = b"\xff" * (136 * 1024) + rng.randbytes(7)
    tb.send(data, 0)
    got = await tb.guard(tb.sum(), "huge frame", 40000)
    assert got == ones_sum(data)


@cocotb.test()
async def watchdog_fires(dut):
    """The shared watchdog fails a wait on a hung stream: sums held back for good, the input
    backs up, nothing moves; the wait ends in a watchdog failure, not a hang."""
    tb = await TB.start(dut)
    tb.set_pauses(tb.sums, (1,))        # m_sum never ready
    for _ in range(64):
        tb.send(bytes(64), 0)
    tb.quiet = 500
    try:
        await tb.guard(tb.sum(), "a sum that cannot come")
    except AssertionError as e:
        assert "watchdog: no stream moved for 500 cycles" in str(e), str(e)
    else:
        raise AssertionError("a sum came out of a unit whose output was never ready")
    try:
        await tb.guard(ClockCycles(dut.clk, 1000), "a long wait", budget=100)
    except AssertionError as e:
        assert "not done after 100 cycles" in str(e), str(e)
    else:
        raise AssertionError("the watchdog let a wait run past its budget")
