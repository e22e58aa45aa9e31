"""The receive path: one parse, checksum verification, then RSC (DESIGN.md 1, 2).

::

    s_axis_wire ═► FrameParser ─► SumPipeline ─► RxVerdict ═► RscEngine ═► m_axis_rx
       │            (one parse:     (sums while     (ChecksumRx     (records
       │             records beside  streaming)      on the last     beside the
       │             the beats)                      beat)           beats)
       └─► RscEvents: each frame's arrival (its last beat taken here), s_eoi markers and
           RSC enables falling, stamped with the cycle, in order ─────────► RscEngine

``═►`` is a register slice (``hdl/stream.py``): every unit boundary is registered both ways.
The frame is parsed once: the parser's record travels with the frame through the checksum
stage (``SumPipeline`` carries it on every beat) into the RSC engine, which parses nothing.
The whole path is checked against ``model.checksum.rx_validate`` followed by
``model.rsc.RscEngine`` by ``tb/tb_rxpath.py``, with the arrival cycles taken at
``s_axis_wire``.
"""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import rsc as rsc_model
from nicoffload.model.checksum import ALL_ENABLED, RX_ENABLE_NAMES

from .axis import AxisSignature, axis_layout, check_width
from .checksum import RX_ENABLES, SumPipeline, rx_flags
from .layouts import word_layout
from .parse import FrameParser
from .rsc import RSC_IN_LAYOUT, RSC_STATS_LAYOUT, TIME_BITS, DEFAULT_MAX_FRAME_BYTES, \
    RscEngine, RscEvents
from .stream import RegisterSlice

__all__ = ["RxVerdict", "RxPath"]

RXU = nbl.RxUser.width()


class RxVerdict(wiring.Component):
    """The receive checksum word of each frame, on its last beat, beside the parse record
    (the rules of ``model.checksum.rx_validate``; the same decisions as
    ``hdl.checksum.RxChecksum``, which keeps its own parser for the standalone unit).

    Attributes
    ----------
    s : In(stream.Signature(SumPipeline.beat_layout(W, 0)))
    m : Out(stream.Signature(RSC_IN_LAYOUT(W)))
    enables : In(RX_ENABLES)
    """

    def __init__(self, width):
        self.width = width
        super().__init__({
            "s": In(stream.Signature(SumPipeline.beat_layout(width, 0))),
            "m": Out(stream.Signature(RSC_IN_LAYOUT(width))),
            "enables": In(RX_ENABLES),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.s.payload
        flags = rx_flags(m, p, self.enables)
        out = self.m.payload
        m.d.comb += [
            self.m.valid.eq(self.s.valid), self.s.ready.eq(self.m.ready),
            out.beat.data.eq(p.beat.data), out.beat.keep.eq(p.beat.keep),
            out.beat.last.eq(p.beat.last),
            out.beat.user.eq(Mux(p.beat.last, flags.as_value(), 0)),
            out.hdr.eq(p.hdr),
        ]
        return m


class RxPath(wiring.Component):
    """Wire frames in, host frames with their receive info out.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.
    contexts, max_scu_bytes, max_frame_bytes : int
        The RSC engine's (``hdl.rsc.RscEngine``; the model takes the same first two).

    Attributes
    ----------
    s_axis_wire : In(AxisSignature(W))
        Frames from the wire (no FCS). A frame arrives (the time the RSC model is given) in
        the cycle its last beat is taken here.
    m_axis_rx : Out(AxisSignature(W, 96))
        Host frames: the frames and SCUs ``model.rsc`` indicates, in its order; ``user`` on
        the last beat is ``nbl.RxUser`` (ChecksumRx, RscInfo, RscTcpTimestampDelta).
    s_eoi : In(stream.Signature(1))
        End-of-indication markers (the end of each receive indication, DESIGN 4 ``--batch``):
        each handshake is ``end_indication()`` at that cycle, after a frame whose last beat
        is taken in the same cycle. Payload ignored.
    enables : In(RX_ENABLES)
        The receive checksum enables (at reset ``checksum.ALL_ENABLED``'s: all on but
        NVGRE's ``encap``).
    rsc_enables : In(2)
        RscIPv4 (bit 0) and RscIPv6 (bit 1), sampled per frame at its arrival; a bit falling
        flushes every open SCU (``model.rsc.RscEngine.set_enables``).
    rsc_idle_timeout : In(32)
        The idle time T in cycles; 0: no timer.
    checked : Out(1)
        A frame's last beat left the checksum verdict this cycle (for the top level: frames
        between ``s_axis_wire`` and here still obey ``enables``; statistics).
    checked_flags : Out(word_layout(nbl.ChecksumRx))
        That frame's receive checksum word (valid with ``checked``).
    rsc_stats : Out(RSC_STATS_LAYOUT)
        OID_TCP_RSC_STATISTICS increments from the RSC engine, registered there
        (``hdl.rsc.RSC_STATS_LAYOUT``; ``model.rsc.RscEngine.statistics``).
    """

    def __init__(self, width=64, *, contexts=rsc_model.DEFAULT_CONTEXTS,
                 max_scu_bytes=rsc_model.DEFAULT_MAX_SCU_BYTES,
                 max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
        self.width = check_width(width)
        self.engine_kw = dict(contexts=contexts, max_scu_bytes=max_scu_bytes,
                              max_frame_bytes=max_frame_bytes)
        super().__init__({
            "s_axis_wire": In(AxisSignature(width)),
            "m_axis_rx": Out(AxisSignature(width, RXU)),
            "s_eoi": In(stream.Signature(1)),
            "enables": In(RX_ENABLES, init={name: int(getattr(ALL_ENABLED, name))
                                            for name in RX_ENABLE_NAMES}),
            "rsc_enables": In(2, init=0b11),
            "rsc_idle_timeout": In(TIME_BITS),
            "checked": Out(1),
            "checked_flags": Out(word_layout(nbl.ChecksumRx)),
            "rsc_stats": Out(RSC_STATS_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.wire = wire = RegisterSlice(axis_layout(w))
        m.submodules.log = log = RscEvents()
        m.submodules.parser = parser = FrameParser(w, 0)
        m.submodules.sums = sums = SumPipeline(w, 0, rx=True)
        m.submodules.verdict = verdict = RxVerdict(w)
        m.submodules.verified = verified = RegisterSlice(RSC_IN_LAYOUT(w))
        m.submodules.rsc = rsc = RscEngine(w, **self.engine_kw)
        m.submodules.host = host = RegisterSlice(axis_layout(w, RXU))
        s = self.s_axis_wire
        m.d.comb += [
            wire.s.payload.eq(s.payload),
            wire.s.valid.eq(s.valid & log.room),
            s.ready.eq(wire.s.ready & log.room),
            log.frame_end.eq(s.valid & s.ready & s.payload.last),
            log.enables.eq(self.rsc_enables),
            verdict.enables.eq(self.enables),
            rsc.now.eq(log.now), rsc.idle_timeout.eq(self.rsc_idle_timeout),
            self.checked.eq(verdict.m.valid & verdict.m.ready & verdict.m.payload.beat.last),
            self.checked_flags.eq(verdict.m.payload.beat.user),
            self.rsc_stats.eq(rsc.stats),
        ]
        wiring.connect(m, wiring.flipped(self.s_eoi), log.s_eoi)
        wiring.connect(m, wire.m, parser.s_axis)
        wiring.connect(m, parser.m_axis, sums.s_axis)
        wiring.connect(m, parser.m_headers, sums.s_headers)
        wiring.connect(m, sums.m_axis, verdict.s)
        wiring.connect(m, verdict.m, verified.s)
        wiring.connect(m, verified.m, rsc.s)
        wiring.connect(m, log.events, rsc.events)
        wiring.connect(m, rsc.m, host.s)
        wiring.connect(m, host.m, wiring.flipped(self.m_axis_rx))
        return m
