"""What every cocotb testbench here shares: the run parameters, pause patterns for idles and
backpressure, the AXI4-Stream conventions of DESIGN 2 on top of cocotbext-axi, one watchdog
and one line-rate meter, and the base of the per-unit ``TB`` classes.

One driving style (as in Corundum's and taxi's testbenches): a ``TB`` class per device under
test owns the clock, the reset and cocotbext-axi ``AxiStreamSource``/``AxiStreamSink``
endpoints bound with ``AxiStreamBus.from_prefix``; idles and backpressure are pause
generators (``set_pause_generator``) of :func:`random_pauses` or :func:`cycle_pauses`.

cocotbext-axi drives each beat's ``tuser`` from the per-byte ``tuser`` entry of the beat's
last byte and records the beat's ``tuser`` for every byte it receives, so per-beat sideband is
a per-byte list both ways: :func:`first_beat_user` (TX info, DESIGN 2: first beat only) and
:func:`beats` (data, tkeep rules and each beat's ``tuser`` of a received frame). A stream
whose payload is a word (completions, parse records) has no ``tkeep``: bind it with
:meth:`StreamTB.word_sink` (one lane as wide as ``tdata``; every beat is one word).

The source keeps ``tvalid`` up and loads the next beat (of the same or the next frame) on the
edge that takes the last one, so with no pause generator it drives back to back at one beat
per cycle, which the line-rate tests measure.

Environment (set by ``nicoffload.sim.runner.run``):

``NICOFFLOAD_PARAMS``  JSON of the build parameters (``{"width": 64}``).
``NICOFFLOAD_FRAMES``  frames per test (each testbench has its own default).
``NICOFFLOAD_SEED``    seed of the traffic generator (default: cocotb's random seed).
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import (AxiStreamBus, AxiStreamFrame, AxiStreamMonitor, AxiStreamSink,
                           AxiStreamSource)

__all__ = ["CLOCK_NS", "params", "frames", "seed", "random_pauses", "cycle_pauses",
           "beats_of", "first_beat_user", "beat_users", "beats", "word", "StreamTB",
           "Watchdog", "ArrivalRecorder", "LineMeter", "tally"]

CLOCK_NS = 4


def params() -> dict:
    return json.loads(os.environ.get("NICOFFLOAD_PARAMS", "{}"))


def frames(default: int) -> int:
    return int(os.environ.get("NICOFFLOAD_FRAMES", default))


def seed() -> int:
    value = os.environ.get("NICOFFLOAD_SEED")
    return int(value) if value else cocotb.RANDOM_SEED


# --- pause patterns ----------------------------------------------------------------------

def random_pauses(rng: random.Random):
    """Endless pause flags in random bursts of 1..7 cycles, about one cycle in three paused:
    the idles of a source or the backpressure of a sink, reproducible from ``rng``."""
    while True:
        paused = rng.random() < 0.35
        for _ in range(rng.choice((1, 1, 2, 3, 7))):
            yield paused


def cycle_pauses(pattern=(1, 1, 1, 0)):
    """A fixed pause pattern, repeated (Corundum's ``itertools.cycle([1, 1, 1, 0])``)."""
    return itertools.cycle(bool(p) for p in pattern)


# --- beats -------------------------------------------------------------------------------

def beats_of(nbytes: int, width: int) -> int:
    return max(1, -(-nbytes // (width // 8)))


def first_beat_user(nbytes: int, width: int, user: int) -> list[int]:
    """Per-byte ``tuser`` of a frame whose ``tuser`` is ``user`` on the first beat and 0 on
    every other (cocotbext-axi drives a beat's ``tuser`` from its last byte's entry)."""
    nb = width // 8
    return [user] * min(nbytes, nb) + [0] * max(0, nbytes - nb)


def beat_users(nbytes: int, width: int, users: list[int]) -> list[int]:
    """Per-byte ``tuser`` of a frame whose beat ``k`` carries ``users[k]``."""
    nb = width // 8
    return [users[i // nb] for i in range(nbytes)]


def beats(frame: AxiStreamFrame, width: int, what: str = "frame") -> tuple[bytes, list[int]]:
    """The bytes of a frame received with ``recv(compact=False)`` and each beat's ``tuser``,
    after checking DESIGN 2's rule: ``tkeep`` contiguous from byte 0, full on every beat but
    the last."""
    nb = width // 8
    keep = frame.tkeep
    n = len(frame.tdata)
    assert n and n % nb == 0, f"{what}: {n} byte lanes received, not whole beats of {nb}"
    count = sum(keep)
    assert all(keep[:count]) and not any(keep[count:]) and count > n - nb, (
        f"{what}: tkeep not contiguous from byte 0 and full on every beat but the last "
        f"(last beat's tkeep {sum(k << i for i, k in enumerate(keep[n - nb:])):#x}, "
        f"{count} bytes in {n // nb} beats)")
    users = frame.tuser[::nb] if frame.tuser else [0] * (n // nb)
    return bytes(frame.tdata[:count]), users


def word(frame: AxiStreamFrame) -> int:
    """The value of a one-beat frame from a :meth:`StreamTB.word_sink`."""
    return int(frame.tdata[0])


# --- what a run cross-checked -------------------------------------------------------------

_TALLY: collections.Counter = collections.Counter()


def tally(frame: bytes, *, send: bool = False):
    """Count one input frame whose output the scoreboard has compared with the model: every
    frame, and NVGRE ones (``model.nvgre.follow`` finds GRE 0x6558 and an inner frame) and
    large sends apart. At the simulator's exit the process prints one line,
    ``NICOFFLOAD_TALLY {"unit": ..., "width": ..., "frames": ..., "nvgre": ..., ...}``,
    into the run's ``sim.log``: how many encapsulated frames each width's CI run checked."""
    if not _TALLY:
        atexit.register(_print_tally)
    _TALLY["frames"] += 1
    nvgre = _is_nvgre(frame)
    _TALLY["nvgre"] += nvgre
    if send:
        _TALLY["sends"] += 1
        _TALLY["nvgre_sends"] += nvgre


def _is_nvgre(frame: bytes) -> bool:
    from nicoffload.model.nvgre import follow
    for from_buffer in (False, True):       # a large send's IP lengths may be left 0
        try:
            if follow(frame, lengths_from_buffer=from_buffer).inner_offset is not None:
                return True
        except Exception:   # a malformed frame the scoreboard checked anyway: not NVGRE
            pass
    return False


def _print_tally():
    print("NICOFFLOAD_TALLY " + json.dumps(
        {"unit": os.environ.get("TOPLEVEL", "") or os.environ.get("COCOTB_TOPLEVEL", ""),
         **params(), **dict(_TALLY)}), flush=True)


# --- watchdog and line-rate meter ----------------------------------------------------------

def _moved(bus) -> bool:
    return bool(int(bus.tvalid.value)) and bool(int(bus.tready.value))


class Watchdog:
    """Fails a test whose streams stop moving: none of ``buses`` took a beat for ``quiet``
    cycles, or a step is not done within its ``budget`` of cycles. Nothing in this design may
    hang, so every wait on the device under test goes through :meth:`guard`.
    """

    def __init__(self, clk, buses, quiet: int = 20000):
        self.clk, self.buses, self.quiet = clk, list(buses), quiet

    async def _watch(self, budget):
        edge = RisingEdge(self.clk)
        still = cycles = 0
        while True:
            await edge
            cycles += 1
            still = 0 if any(_moved(b) for b in self.buses) else still + 1
            if still >= self.quiet:
                return f"no stream moved for {still} cycles"
            if budget is not None and cycles >= budget:
                return f"not done after {budget} cycles"

    async def guard(self, coro, what, budget: int | None = None):
        """Run ``coro`` to completion under the watchdog; its result. ``what`` (a string, or
        a function that gives one) says what was awaited when the watchdog fires."""
        task = cocotb.start_soon(coro)
        dog = cocotb.start_soon(self._watch(budget))
        await First(task.complete, dog.complete)
        if not task.done():
            task.cancel()
            raise AssertionError(f"watchdog: {dog.result()}; "
                                 f"{what() if callable(what) else what}")
        dog.cancel()
        return task.result()


class ArrivalRecorder:
    """Cycle by cycle, what a model of the RX side must be fed, in order, with its cycle:
    ``("enables", t, bits)`` when the RSC enables ``enables`` (a signal) change (logged
    before a frame of the same cycle), ``("frame", t)`` when the input ``frame_in`` (a port
    prefix) takes a frame's last beat, ``("eoi", t)`` on an end-of-indication marker's
    handshake at ``eoi`` (a port prefix). :meth:`sample` is called once a cycle after those,
    for what a bench records besides.
    """

    def __init__(self, dut, frame_in: str, eoi: str, enables):
        self.dut = dut
        self.valid, self.ready, self.last = (getattr(dut, f"{frame_in}_{name}")
                                             for name in ("tvalid", "tready", "tlast"))
        self.eoi_valid = getattr(dut, f"{eoi}_tvalid")
        self.eoi_ready = getattr(dut, f"{eoi}_tready")
        self.enables_signal = enables
        self.enables = int(enables.value)
        self.cycle = 0
        self.log = []
        cocotb.start_soon(self._run())

    def sample(self):
        """Called every cycle after the log's events; nothing here."""

    async def _run(self):
        edge = RisingEdge(self.dut.clk)
        while True:
            await edge
            self.cycle += 1
            enables = int(self.enables_signal.value)
            if enables != self.enables:
                self.enables = enables
                self.log.append(("enables", self.cycle, enables))
            if int(self.valid.value) and int(self.ready.value) and int(self.last.value):
                self.log.append(("frame", self.cycle))
            if int(self.eoi_valid.value) and int(self.eoi_ready.value):
                self.log.append(("eoi", self.cycle))
            self.sample()


class LineMeter:
    """One stream's transfers, cycle by cycle: the measure of line rate.

    ``beats`` and ``bytes`` (by ``tkeep``) taken, ``first``/``last``: the cycles of the first
    and the last transfer (``span`` cycles from one to the other), ``starts``: the cycles of
    each frame's first beat, ``stalls``: cycles with ``tvalid`` and not ``tready`` once the
    stream has moved, ``stalls_before``: such cycles before its first transfer.
    ``start()``, run traffic, ``stop()``.
    """

    def __init__(self, clk, bus):
        self.clk, self.bus = clk, bus
        self.keep = getattr(bus, "tkeep", None)
        self.tlast = getattr(bus, "tlast", None)
        self.lanes = len(bus.tdata) // 8
        self.cycle = self.beats = self.bytes = self.stalls = self.stalls_before = 0
        self.first = self.last = None
        self.starts: list[int] = []
        self._task = None

    async def _run(self):
        edge = RisingEdge(self.clk)
        bus, head = self.bus, True
        while True:
            await edge
            self.cycle += 1
            if not int(bus.tvalid.value):
                continue
            if not int(bus.tready.value):
                if self.first is None:
                    self.stalls_before += 1
                else:
                    self.stalls += 1
                continue
            self.beats += 1
            self.bytes += bin(int(self.keep.value)).count("1") if self.keep is not None \
                else self.lanes
            if self.first is None:
                self.first = self.cycle
            self.last = self.cycle
            if head:
                self.starts.append(self.cycle)
            head = self.tlast is None or bool(int(self.tlast.value))

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        self._task.cancel()

    @property
    def span(self) -> int:
        return self.last - self.first + 1 if self.first is not None else 0

    def fraction(self, width: int) -> float:
        """Bytes per cycle from the first transfer to the last, over W/8."""
        return self.bytes / (self.span * width / 8) if self.span else 0.0


# --- the testbench base ----------------------------------------------------------------------

class _OncePerStep:
    """A signal that a sink or monitor reads, read from the simulator once per time step.

    cocotbext-axi's receivers read ``tdata``, ``tkeep`` and ``tuser`` again for every byte
    lane of a beat (``int(bus.tdata.value) >> (lane * 8)``): 64 reads of each a beat at
    W=512. They only read them at the clock edge, where the value cannot change, so the first
    read of a time step stands for the rest; ``value`` is that read as an integer.
    """

    __slots__ = ("handle", "_time", "_value")

    def __init__(self, handle):
        self.handle, self._time, self._value = handle, None, 0

    @property
    def value(self) -> int:
        now = get_sim_time()
        if now != self._time:
            self._time, self._value = now, int(self.handle.value)
        return self._value

    def __len__(self):
        return len(self.handle)


class StreamTB:
    """Clock, reset and AXI4-Stream endpoints of one device under test (``dut.clk``,
    ``dut.rst``); a unit's ``TB`` class makes its endpoints with :meth:`source`,
    :meth:`sink` and :meth:`word_sink` and lists them in ``self.streams`` (the watchdog's)."""

    def __init__(self, dut, quiet: int = 20000):
        self.dut = dut
        self.log = dut._log
        self.width = params()["width"]
        self.streams = []
        self.quiet = quiet
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())

    def _bind(self, cls, prefix, **kw):
        end = cls(AxiStreamBus.from_prefix(self.dut, prefix), self.dut.clk, self.dut.rst, **kw)
        end.log.setLevel(logging.WARNING)
        if isinstance(end, AxiStreamMonitor):       # sinks too: they read, never drive, these
            for name in ("tdata", "tkeep", "tuser"):
                if hasattr(end.bus, name):
                    setattr(end.bus, name, _OncePerStep(getattr(end.bus, name)))
        self.streams.append(end)
        return end

    def source(self, prefix: str) -> AxiStreamSource:
        return self._bind(AxiStreamSource, prefix)

    def sink(self, prefix: str, cls=AxiStreamSink) -> AxiStreamSink:
        return self._bind(cls, prefix)

    def word_sink(self, prefix: str) -> AxiStreamSink:
        """A sink of a stream whose payload is one word in ``tdata`` (no tkeep, no tlast):
        every beat is a frame of one lane; :func:`word` reads it."""
        return self._bind(AxiStreamSink, prefix, byte_lanes=1)

    @property
    def watchdog(self) -> Watchdog:
        return Watchdog(self.dut.clk, [s.bus for s in self.streams], self.quiet)

    def meter(self, end) -> LineMeter:
        return LineMeter(self.dut.clk, end.bus)

    @staticmethod
    def set_pauses(end, kind, rng: random.Random | None = None):
        """Idles of a source or backpressure of a sink: none (``kind`` false), random bursts
        seeded from ``rng`` (``True``, :func:`random_pauses`) or a pattern of 0/1 flags,
        repeated (:func:`cycle_pauses`)."""
        if not kind:
            end.set_pause_generator(None)
            end.pause = False
        elif kind is True:
            end.set_pause_generator(random_pauses(random.Random(rng.random())))
        else:
            end.set_pause_generator(cycle_pauses(kind))

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    @staticmethod
    def cycles() -> int:
        """Clock cycles since the simulation began."""
        return int(get_sim_time("ns")) // CLOCK_NS

    async def guard(self, coro, what, budget: int | None = None):
        return await self.watchdog.guard(coro, what, budget)

    async def settle(self, cycles: int = 50):
        """Wait ``cycles``, then check that no sink holds, takes or is offered a beat nobody
        asked for."""
        await ClockCycles(self.dut.clk, cycles)
        for end in self.streams:
            if isinstance(end, AxiStreamSink):
                name = end.bus._name
                assert end.empty() and not end.active, f"{name}: more out than expected"
                assert not int(end.bus.tvalid.value), f"{name}: a beat with nowhere to go"


def enables_value(enables) -> int:
    """The ``enables`` port's value (``hdl.checksum.RX_ENABLES``) for ``enables`` (a
    ``checksum.ChecksumEnables`` or anything with its names): one bit per name of
    ``checksum.RX_ENABLE_NAMES``, in order from bit 0."""
    from nicoffload.model.checksum import RX_ENABLE_NAMES
    return sum(int(bool(getattr(enables, name, False))) << i
               for i, name in enumerate(RX_ENABLE_NAMES))
