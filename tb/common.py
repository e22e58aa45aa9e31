"""Pieces every cocotb testbench here shares: clock/reset, AXI stream endpoints with random
idle and backpressure, a watchdog, the run parameters, and the scoreboard's bookkeeping.

Environment (set by ``nicoffload.sim.runner.run``):

``NICOFFLOAD_PARAMS``  JSON of the build parameters (``{"width": 64}``).
``NICOFFLOAD_FRAMES``  frames per test (each testbench has its own default).
``NICOFFLOAD_SEED``    seed of the traffic generator (default: cocotb's random seed).
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource

__all__ = ["params", "frames", "seed", "pause_pattern", "setup", "watchdog", "beats_of"]

CLOCK_NS = 4


def params() -> dict:
    return json.loads(os.environ.get("NICOFFLOAD_PARAMS", "{}"))


def frames(default: int) -> int:
    return int(os.environ.get("NICOFFLOAD_FRAMES", default))


def seed() -> int:
    value = os.environ.get("NICOFFLOAD_SEED")
    return int(value) if value else cocotb.RANDOM_SEED


def pause_pattern(rng: random.Random, busy: bool):
    """Endless pause flags: none, or random bursts (about one cycle in three paused)."""
    if not busy:
        while True:
            yield False
    while True:
        run = rng.choice((1, 1, 2, 3, 7))
        paused = rng.random() < 0.35
        for _ in range(run):
            yield paused


def beats_of(nbytes: int, width: int) -> int:
    return max(1, -(-nbytes // (width // 8)))


async def setup(dut, *, sources=(), sinks=(), idle=False, backpressure=False, rng=None):
    """Start the clock, build endpoints by prefix, reset. Returns (sources, sinks) as dicts."""
    rng = rng or random.Random(seed())
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    srcs = {}
    for prefix in sources:
        src = AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix), dut.clk, dut.rst)
        src.set_pause_generator(pause_pattern(random.Random(rng.random()), idle))
        src.log.setLevel(logging.WARNING)
        srcs[prefix] = src
    snks = {}
    for prefix in sinks:
        snk = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix), dut.clk, dut.rst)
        snk.set_pause_generator(pause_pattern(random.Random(rng.random()), backpressure))
        snk.log.setLevel(logging.WARNING)
        snks[prefix] = snk
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return srcs, snks


async def watchdog(dut, cycles: int, what: str):
    """Fail the test if ``cycles`` pass: nothing in this design may hang."""
    await ClockCycles(dut.clk, cycles)
    raise AssertionError(f"watchdog: {what} not done after {cycles} cycles")


async def with_watchdog(dut, coro, cycles: int, what: str):
    """Run ``coro`` to completion, or fail after ``cycles`` clock cycles."""
    task = cocotb.start_soon(coro)
    dog = cocotb.start_soon(watchdog(dut, cycles, what))
    result = await task
    dog.cancel()
    return result


class OutputMeter:
    """Counts a stream's transfers (beats, bytes by tkeep) and the cycles from its first to
    its last transfer: the measure of line rate. ``start()``, run traffic, ``stop()``."""

    def __init__(self, dut, prefix: str = "m_axis"):
        self.dut = dut
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.keep = getattr(dut, f"{prefix}_tkeep", None)
        self.cycle = self.beats = self.bytes = 0
        self.first = self.last = None
        self._task = None

    async def _run(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1
            if int(self.valid.value) and int(self.ready.value):
                self.beats += 1
                if self.keep is not None:
                    self.bytes += bin(int(self.keep.value)).count("1")
                self.first = self.cycle if self.first is None else self.first
                self.last = self.cycle

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        self._task.cancel()

    @property
    def span(self) -> int:
        return self.last - self.first + 1 if self.first is not None else 0
