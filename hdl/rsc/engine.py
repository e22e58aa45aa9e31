"""The RSC engine put together, and the RSC stage as a unit of its own (with a parser)."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import rsc as model

from ..axis import AxisSignature, axis_layout, check_width
from ..parse import HEADERS_LAYOUT, FrameParser
from ..stream import RegisterSlice

from .common import (DEFAULT_MAX_FRAME_BYTES, LANDING_SLOTS, default_regions, resolve_regions,
                     EVENT_LAYOUT, RSC_IN_LAYOUT, RSC_STATS_LAYOUT, RXU,
                     TIME_BITS, WINDOW)
from .ingress import RscEvents, RscIngress
from .mover import RscMover
from .sequencer import RscSequencer


def buffer_beats(width, max_scu_bytes=model.DEFAULT_MAX_SCU_BYTES,
                 max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """The beats of a landing slot and of an SCU region at ``width``: the largest frame or
    SCU, and one beat more (a realigned copy may spill into it)."""
    nb = width // 8
    return -(-max_frame_bytes // nb) + 1, -(-max(max_scu_bytes, max_frame_bytes) // nb) + 1


def buffer_rams(width, contexts=model.DEFAULT_CONTEXTS, max_scu_bytes=model.DEFAULT_MAX_SCU_BYTES,
                max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """The engine's large RAMs as ``(name, words, bits, read ports)``: the SCU RAM (the
    regions, read by the emitter) and the landing RAM (its slots, read by the copier and the
    emitter). What block RAM they take is the target's business (``sim/synth.py`` counts the
    ECP5's DP16KD from them, a copy per read port as Yosys maps them)."""
    slot_beats, region_beats = buffer_beats(width, max_scu_bytes, max_frame_bytes)
    return [("scu", default_regions(contexts) * region_beats, width, 1),
            ("landing", LANDING_SLOTS * slot_beats, width, 2)]


class RscEngine(wiring.Component):
    """The RSC coalescer: ingress, flow table and rules, data mover (module docstring).

    Parameters
    ----------
    width : int
        Data width W: 64, 128, 256 or 512.
    contexts : int
        Flow contexts (``model.rsc.RscEngine(contexts=...)``); default 8.
    regions : int
        SCU regions in the SCU RAM, at least ``contexts``; default
        :func:`~.common.default_regions` (two more than the contexts).
    max_scu_bytes : int
        Largest SCU frame (``model.rsc.RscEngine(max_scu_bytes=...)``); default the model's.
    max_frame_bytes : int
        Largest frame taken in (a landing slot).

    Attributes
    ----------
    s : In(stream.Signature(RSC_IN_LAYOUT(W)))
        Frames (``beat.user`` = ``nbl.RxUser`` on the last beat) with their parse records.
    events, now : In
        From :class:`RscEvents`, which the owner stamps at its input.
    idle_timeout : In(32)
        T in cycles (``model.rsc.RscEngine(idle_timeout=T)``); 0: no timer (None).
    m : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    stats : Out(RSC_STATS_LAYOUT)
        OID_TCP_RSC_STATISTICS increments, registered (``RscSequencer.stats``).
    """

    def __init__(self, width=64, *, contexts=model.DEFAULT_CONTEXTS, regions=None,
                 max_scu_bytes=model.DEFAULT_MAX_SCU_BYTES,
                 max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
        self.width = check_width(width)
        for name, value in (("contexts", contexts), ("max_scu_bytes", max_scu_bytes),
                            ("max_frame_bytes", max_frame_bytes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if max_frame_bytes < WINDOW or max_frame_bytes > 65535:
            raise ValueError(f"max_frame_bytes must be in {WINDOW}..65535")
        self.contexts, self.regions = contexts, resolve_regions(contexts, regions)
        self.max_scu_bytes = max_scu_bytes
        self.max_frame_bytes = max_frame_bytes
        self.slot_beats, self.region_beats = buffer_beats(width, max_scu_bytes, max_frame_bytes)
        super().__init__({
            "s": In(stream.Signature(RSC_IN_LAYOUT(width))),
            "events": In(stream.Signature(EVENT_LAYOUT)), "now": In(TIME_BITS),
            "idle_timeout": In(TIME_BITS),
            "m": Out(AxisSignature(width, RXU)),
            "stats": Out(RSC_STATS_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ingress = ingress = RscIngress(self.width, self.slot_beats)
        m.submodules.rules = rules = RscSequencer(self.contexts, self.max_scu_bytes, self.regions)
        m.submodules.mover = mover = RscMover(self.width, self.regions, self.region_beats,
                                              self.slot_beats)
        wiring.connect(m, wiring.flipped(self.s), ingress.s)
        wiring.connect(m, ingress.m_desc, rules.desc)
        wiring.connect(m, wiring.flipped(self.events), rules.events)
        wiring.connect(m, rules.cmd, mover.cmd)
        wiring.connect(m, mover.m, wiring.flipped(self.m))
        m.d.comb += [
            rules.now.eq(self.now), rules.idle_timeout.eq(self.idle_timeout),
            rules.regions_busy.eq(mover.regions_busy),
            ingress.release.eq(rules.release | mover.release),
            mover.land_addr.eq(ingress.land_addr), mover.land_data.eq(ingress.land_data),
            mover.land_en.eq(ingress.land_en), self.stats.eq(rules.stats),
        ]
        return m


class Attach(wiring.Component):
    """Puts each frame's parse record beside every beat of the frame (taken with the first).

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
    s_headers : In(stream.Signature(HEADERS_LAYOUT(user_width)))
    m : Out(stream.Signature(RSC_IN_LAYOUT(W)))
    """

    def __init__(self, width, user_width):
        self.width = width
        super().__init__({
            "s_axis": In(AxisSignature(width, RXU)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(user_width))),
            "m": Out(stream.Signature(RSC_IN_LAYOUT(width))),
        })

    def elaborate(self, platform):
        m = Module()
        first = Signal(init=1)
        held = Signal(HEADERS_LAYOUT(0))
        rec = self.s_headers.payload.as_value()[:HEADERS_LAYOUT(0).size]
        go = self.s_axis.valid & (~first | self.s_headers.valid) & self.m.ready
        m.d.comb += [
            self.m.valid.eq(self.s_axis.valid & (~first | self.s_headers.valid)),
            self.m.payload.beat.eq(self.s_axis.payload),
            self.m.payload.hdr.eq(Mux(first, rec, held)),
            self.s_axis.ready.eq(go),
            self.s_headers.ready.eq(go & first),
        ]
        with m.If(go):
            m.d.sync += first.eq(self.s_axis.payload.last)
            with m.If(first):
                m.d.sync += held.eq(rec)
        return m


class RscUnit(wiring.Component):
    """RSC as a unit of its own: a parser for the records, then :class:`RscEngine`
    (in the RX path the parser is the path's, ``hdl/rxpath.py``).

    Parameters
    ----------
    width : int
    contexts, max_scu_bytes, max_frame_bytes : int
        As :class:`RscEngine`.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
        Frames from the checksum stage; ``user`` on the last beat is ``nbl.RxUser`` (the
        ChecksumRx word in bits 0..31). A frame's arrival time is the cycle its last beat is
        taken here.
    m_axis : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    s_eoi : In(stream.Signature(1))
        End-of-indication markers: one handshake, one ``end_indication()`` at that cycle,
        after any frame whose last beat is taken in the same cycle.
    rsc_enables : In(2)
        RscIPv4 (bit 0), RscIPv6 (bit 1); sampled per frame at its arrival; a bit falling
        flushes every open SCU before the next frame (``set_enables``).
    rsc_idle_timeout : In(32)
        Idle time T in cycles; 0: no timer.
    rsc_stats : Out(RSC_STATS_LAYOUT)
        OID_TCP_RSC_STATISTICS increments (``RscEngine.stats``).
    """

    def __init__(self, width=64, **engine_kw):
        self.width = check_width(width)
        self.engine_kw = engine_kw
        super().__init__({
            "s_axis": In(AxisSignature(width, RXU)),
            "m_axis": Out(AxisSignature(width, RXU)),
            "s_eoi": In(stream.Signature(1)),
            "rsc_enables": In(2, init=0b11),
            "rsc_idle_timeout": In(TIME_BITS),
            "rsc_stats": Out(RSC_STATS_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.parser = parser = FrameParser(w, RXU)
        m.submodules.attach = attach = Attach(w, RXU)
        m.submodules.parsed = parsed = RegisterSlice(RSC_IN_LAYOUT(w))
        m.submodules.log = log = RscEvents()
        m.submodules.engine = engine = RscEngine(w, **self.engine_kw)
        m.submodules.out = out = RegisterSlice(axis_layout(w, RXU))
        s = self.s_axis
        m.d.comb += [
            parser.s_axis.payload.eq(s.payload),
            parser.s_axis.valid.eq(s.valid & log.room),
            s.ready.eq(parser.s_axis.ready & log.room),
            log.frame_end.eq(s.valid & s.ready & s.payload.last),
            log.enables.eq(self.rsc_enables),
            engine.now.eq(log.now), engine.idle_timeout.eq(self.rsc_idle_timeout),
            self.rsc_stats.eq(engine.stats),
        ]
        wiring.connect(m, wiring.flipped(self.s_eoi), log.s_eoi)
        wiring.connect(m, parser.m_axis, attach.s_axis)
        wiring.connect(m, parser.m_headers, attach.s_headers)
        wiring.connect(m, attach.m, parsed.s)
        wiring.connect(m, parsed.m, engine.s)
        wiring.connect(m, log.events, engine.events)
        wiring.connect(m, engine.m, out.s)
        wiring.connect(m, out.m, wiring.flipped(self.m_axis))
        return m

