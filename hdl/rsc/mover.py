"""The RSC engine's data mover: the landing and SCU RAMs, a copy engine and an emit engine."""

from amaranth.hdl import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axis import AxisSignature
from ..stream import StreamFIFO

from .common import (CMD_LAYOUT, EMIT_LAYOUT, LANDING_SLOTS, BufferPart, OP_COPY, OP_EMIT_SCU,
                     RXU, TICKET_BITS)
from .copier import RscCopier
from .emitter import RscEmitter


class RscMover(BufferPart):
    """The data mover: landing RAM, SCU RAM, copies and emissions side by side.

    Commands (``CMD_LAYOUT``) come in the sequencer's order and go to one of two queues:
    ``COPY`` to the copier (:class:`RscCopier`: landing bytes into an SCU region,
    realigned, payload summed), ``EMIT_LAND`` and ``EMIT_SCU`` to the emitter
    (:class:`RscEmitter`), which sends them in their order: every output leaves in the order
    the sequencer decided it. The two run at once; what keeps them apart:

    - an ``EMIT_SCU`` carries a ticket, the copies dispatched before it, and the emitter reads
      the region only once that many copies are written and summed;
    - ``regions_busy`` has a bit per region from the dispatch of its ``EMIT_SCU`` until the
      emitter has read the region for the last time; the sequencer opens no SCU in it;
    - a landing slot is released by whoever reads the frame out (the copier, or the emitter
      for a frame sent alone), with the last read.

    The landing RAM has a write port (the ingress) and two read ports (copier, emitter); the
    SCU RAM a write port (copier, byte enables) and a read port (emitter).

    Attributes
    ----------
    cmd : In(stream.Signature(CMD_LAYOUT(regions)))
    regions_busy : Out(regions)
        Regions with an emission dispatched and not yet read out.
    release : Out(LANDING_SLOTS)
        Slots read out (registered, one cycle).
    land_addr, land_data, land_en : In
        The landing RAM's write port (from :class:`RscIngress`).
    m : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    """

    COPY_DEPTH = LANDING_SLOTS      # a copy holds a slot: no more can wait
    EMIT_DEPTH = 8

    def __init__(self, width, regions, region_beats, slot_beats):
        super().__init__(width, regions, region_beats, slot_beats, {
            "cmd": In(stream.Signature(CMD_LAYOUT(regions))),
            "regions_busy": Out(regions), "release": Out(LANDING_SLOTS),
            "land_addr": In(range(LANDING_SLOTS * slot_beats)), "land_data": In(width),
            "land_en": In(1),
            "m": Out(AxisSignature(width, RXU)),
        })

    def elaborate(self, platform):
        m = Module()
        w, n = self.width, self.regions
        sizes = (w, n, self.region_beats, self.slot_beats)
        m.submodules.copier = copier = RscCopier(*sizes)
        m.submodules.emitter = emitter = RscEmitter(*sizes)
        m.submodules.copies = copies = StreamFIFO(CMD_LAYOUT(n), self.COPY_DEPTH)
        m.submodules.emits = emits = StreamFIFO(EMIT_LAYOUT(n), self.EMIT_DEPTH)
        wiring.connect(m, copies.m, copier.cmd)
        wiring.connect(m, emits.m, emitter.cmd)
        wiring.connect(m, emitter.m, wiring.flipped(self.m))

        m.submodules.land = land = memory.Memory(
            shape=unsigned(w), depth=LANDING_SLOTS * self.slot_beats, init=[])
        lw, copy_read, emit_read = land.write_port(), land.read_port(), land.read_port()
        m.submodules.scu = scu = memory.Memory(
            shape=unsigned(w), depth=n * self.region_beats, init=[])
        sw, sr = scu.write_port(granularity=8), scu.read_port()
        m.d.comb += [
            lw.addr.eq(self.land_addr), lw.data.eq(self.land_data), lw.en.eq(self.land_en),
            copy_read.addr.eq(copier.land_addr), copier.land_data.eq(copy_read.data),
            emit_read.addr.eq(emitter.land_addr), emitter.land_data.eq(emit_read.data),
            sw.addr.eq(copier.scu_addr), sw.data.eq(copier.scu_data), sw.en.eq(copier.scu_en),
            sr.addr.eq(emitter.scu_addr), emitter.scu_data.eq(sr.data),
            emitter.sums.eq(copier.sums), emitter.copies.eq(copier.done),
            self.release.eq(copier.release | emitter.release),
        ]

        # Dispatch: each command to its queue; an emission's ticket is the copies before it.
        p = self.cmd.payload
        is_copy = p.op == OP_COPY
        dispatched = Signal(TICKET_BITS)
        m.d.comb += [
            self.cmd.ready.eq(Mux(is_copy, copies.s.ready, emits.s.ready)),
            copies.s.payload.eq(p), copies.s.valid.eq(self.cmd.valid & is_copy),
            emits.s.payload.cmd.eq(p), emits.s.payload.ticket.eq(dispatched),
            emits.s.valid.eq(self.cmd.valid & ~is_copy),
        ]
        taken = self.cmd.valid & self.cmd.ready
        opened = Signal(n)
        with m.If(taken & is_copy):
            m.d.sync += dispatched.eq(dispatched + 1)
        with m.If(taken & (p.op == OP_EMIT_SCU)):
            m.d.comb += opened.eq(1 << p.region)
        m.d.sync += self.regions_busy.eq((self.regions_busy | opened) & ~emitter.region_done)
        return m
