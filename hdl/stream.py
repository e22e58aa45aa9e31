"""Shared stream pieces: the register slice every unit boundary has, and a FIFO as a stream.

DESIGN.md 2: "Every unit boundary is registered both ways (a skid buffer or FIFO): no
combinational path runs from one unit's ``tready`` into another's logic." Both pieces here
meet that rule on both sides: ``valid`` and ``payload`` leave from flip-flops (or a FIFO's
registered read port) and ``ready`` leaves from a flip-flop.

:class:`RegisterSlice`
    A two-entry skid buffer: full throughput (a beat every cycle), one cycle of latency, and
    ``s.ready`` is a register, so the producer never sees the consumer's ``ready``.
:class:`StreamFIFO`
    ``amaranth.lib.fifo.SyncFIFOBuffered`` with stream ports of a payload shape, for the
    boundaries that need depth (a frame's beats, records that wait for their frame).
:func:`stage_layout`
    A pipeline stage register described by a ``data.StructLayout`` with a ``valid`` bit,
    for stages that are not streams (a stage register moves when the stage behind it moves).
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterSlice", "StreamFIFO", "stage_layout"]


def stage_layout(fields):
    """A stage register: ``fields`` (a dict or StructLayout) and a ``valid`` bit."""
    members = dict(fields.members if isinstance(fields, data.StructLayout) else fields)
    if "valid" in members:
        raise ValueError("a stage layout has its own 'valid' member")
    return data.StructLayout({"valid": 1, **members})


class RegisterSlice(wiring.Component):
    """A skid buffer: a stream boundary registered both ways.

    Parameters
    ----------
    shape : shape-castable
        The payload.

    Attributes
    ----------
    s : In(stream.Signature(shape))
        Input. ``s.ready`` is a flip-flop: 1 while the skid register is empty.
    m : Out(stream.Signature(shape))
        Output. ``m.valid`` and ``m.payload`` are flip-flops.

    Throughput and latency
        A beat every cycle in steady state (the skid register holds the beat that arrives in
        the cycle the consumer stops); a beat taken on ``s`` is on ``m`` the next cycle.
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({
            "s": In(stream.Signature(shape)),
            "m": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self.shape)
        skid_full = Signal()
        taken = Signal()
        m.d.comb += [
            self.s.ready.eq(~skid_full),
            taken.eq(self.s.valid & ~skid_full),
        ]
        with m.If(~self.m.valid | self.m.ready):
            # The output register is free this cycle: the skid beat goes first.
            m.d.sync += [
                self.m.valid.eq(skid_full | taken),
                self.m.payload.eq(Mux(skid_full, skid, self.s.payload)),
                skid_full.eq(0),
            ]
        with m.Elif(taken):
            m.d.sync += [skid.eq(self.s.payload), skid_full.eq(1)]
        return m


class StreamFIFO(wiring.Component):
    """A synchronous FIFO with stream ports (``SyncFIFOBuffered``: the read port is a register).

    Parameters
    ----------
    shape : shape-castable
        The payload.
    depth : int
        Entries.

    Attributes
    ----------
    s : In(stream.Signature(shape))
        Write side; ``s.ready`` is a flip-flop: "not full", worked out a cycle ahead from
        the level and this cycle's write and read (the FIFO's own ``w_rdy`` is a comparison
        of its level registers, which would put logic in front of every producer's
        decisions).
    m : Out(stream.Signature(shape))
        Read side; ``m.valid`` and ``m.payload`` come from the FIFO's output register.
    level : Out(range(depth + 1))
        Entries held.

    Throughput and latency
        An entry taken on ``s`` is on ``m`` two cycles later; from depth 3 an entry can go in
        and one out every cycle (a 2-deep FIFO takes two in three cycles).
    """

    def __init__(self, shape, depth):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.shape = shape
        self.depth = depth
        super().__init__({
            "s": In(stream.Signature(shape)),
            "m": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width
        # One entry more than ``depth`` inside: ``not_full`` counts to ``depth``, and the
        # buffered FIFO's own ``w_rdy`` can drop for a cycle while its output register
        # refills; with the spare entry it never does while ``not_full`` is set.
        m.submodules.queue = storage = fifo.SyncFIFOBuffered(width=width, depth=self.depth + 1)
        # The level the FIFO will have next cycle, and from it whether it will have room.
        held = Signal(range(self.depth + 1))
        not_full = Signal(init=1)
        written = self.s.valid & not_full
        read = self.m.valid & self.m.ready
        held_next = held + written - read
        m.d.sync += [held.eq(held_next), not_full.eq(held_next != self.depth)]
        m.d.comb += [
            storage.w_data.eq(self.s.payload.as_value() if hasattr(self.s.payload, "as_value")
                              else self.s.payload),
            storage.w_en.eq(written),
            self.s.ready.eq(not_full),
            self.m.payload.eq(storage.r_data),
            self.m.valid.eq(storage.r_rdy),
            storage.r_en.eq(self.m.ready),
            self.level.eq(storage.level),
        ]
        return m
