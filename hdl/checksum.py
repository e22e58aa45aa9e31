"""Checksum offload RTL: the twin of ``nicoffload.model.checksum``.

:class:`TxChecksum` fills the IPv4 header and TCP/UDP checksums that each frame's
NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO word (first-beat ``tuser``) asks for;
:class:`RxChecksum` validates them and puts the receive info word on each frame's last beat.
Both follow the model's rules exactly (see that module's docstring for every decision).

Structure, one beat per cycle throughout::

    s_axis ─► FrameParser ─► SumPipeline ─┬─► (RX) flags on the last beat ─► m_axis
              (hdl/parse)                 └─► (TX) frame FIFO + result FIFO ─► patch ─► m_axis

:class:`SumPipeline` sums while the frame streams ("sum while buffering"): each beat's bytes
are masked by the byte ranges the header record names (IPv4 header; L4 header to ``l4_end``;
for RX also the pseudo-header addresses) and added by the ``hdl.onesum`` trees, so the sums
are ready a fixed few cycles after a frame's last beat. RX is cut-through behind the parser's
header window; TX stores each frame (it must, to write a header after summing the payload)
in a FIFO of two maximum frames, so the next frame streams in while this one goes out.
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, TX_MAX_FRAME
from nicoffload.model.parse import IPPROTO_TCP, IPPROTO_UDP, ParseError

from .axis import AxisSignature, axis_layout, check_width, connect_beats
from .layouts import word_layout
from .onesum import add_tree, beat_words, fold16, group_sums
from .parse import HEADERS_LAYOUT, FrameParser
from .stream import RegisterSlice, StreamFIFO, stage_layout

__all__ = ["TX_MAX_FRAME", "RX_ENABLES", "SumPipeline", "rx_flags", "RxChecksum", "TxChecksum",
           "TxChecksumInsert"]


#: The receive enables, one bit each, named as the model's ChecksumEnables.
RX_ENABLES = data.StructLayout({name: 1 for name in RX_ENABLE_NAMES})


def range_mask(pos, lo, hi, nbytes):
    """Bits ``i`` of a beat at frame offset ``pos`` whose byte ``pos + i`` is in [lo, hi)."""
    a = Signal(signed(22))
    b = Signal(signed(22))
    mask = Signal(nbytes)
    stmts = [a.eq(lo - pos), b.eq(hi - pos)]
    for i in range(nbytes):
        stmts.append(mask[i].eq((a <= i) & (b > i)))
    return mask, stmts


class SumPipeline(wiring.Component):
    """Sums of each frame's checksum regions, computed as the frame streams through.

    Parameters
    ----------
    width : int
        Data width W.
    user_width : int
        Bits of ``tuser`` carried with the frame (in its header record).
    rx : bool
        RX: the L4 sum includes the pseudo-header (addresses from the frame, protocol and
        length added at the end) and the IPv4 checksum field; TX: the L4 sum is of the L4
        bytes only (the transport pre-filled the pseudo-header sum) and the IPv4 checksum field
        is taken as zero.

    Attributes
    ----------
    s_axis : In(AxisSignature(W))
        Beats from the parser (``FrameParser.m_axis``).
    s_headers : In(stream.Signature(HEADERS_LAYOUT(user_width)))
        The frame's header record; taken with the frame's first beat.
    m_axis : Out(stream.Signature(SumPipeline.beat_layout(...)))
        Each beat with its frame's header record; on the last beat also the frame length and
        the folded sums ``ip_sum``, ``l4_sum`` and the L4 word at ``l4 + 6`` (UDP checksum).
        RX, for an NVGRE frame (``hdr.is_nvgre``): ``l4_sum`` and the UDP word are the inner
        TCP/UDP header's (the outer L4 is GRE, which has none), and ``inner_ip_sum`` is the
        inner IPv4 header's; whether they count is the verdict's (:func:`rx_flags`: the
        ``encap`` enable). TX: ``inner_ip_sum`` is 0.
    """

    #: The headers the L4 sum is of (RX: the inner ones of an NVGRE frame).
    VIEW_LAYOUT = data.StructLayout({"l3": 8, "is_ipv4": 1, "is_ipv6": 1, "l4": 9,
                                     "l4_end": 17, "l4_proto": 8, "pseudo_dst": 9})

    @staticmethod
    def beat_layout(width, user_width):
        return data.StructLayout({
            "beat": axis_layout(width),
            "hdr": HEADERS_LAYOUT(user_width),
            "frame_len": 20,
            "ip_sum": 16,
            "l4_sum": 16,
            "udp_field": 16,
            "inner_ip_sum": 16,
        })

    def __init__(self, width, user_width, *, rx):
        self.width = check_width(width)
        self.user_width = user_width
        self.rx = rx
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(user_width))),
            "m_axis": Out(stream.Signature(self.beat_layout(width, user_width))),
        })

    #: Stage registers between the input and the output FIFO; the FIFO's depth.
    STAGES, OUT_DEPTH = 6, 16

    def elaborate(self, platform):
        m = Module()
        w, nbytes = self.width, self.width // 8
        hdr_layout = HEADERS_LAYOUT(self.user_width)
        beat_layout = axis_layout(w)

        # The stages never stall: every stage register loads every cycle (no enable fans out
        # from the consumer's ``ready``). A beat is taken only while the output FIFO has room
        # for it and every beat in the stages (``room``, a flip-flop a cycle late: the level
        # grows by at most one a cycle).
        m.submodules.out_fifo = out_fifo = StreamFIFO(self.beat_layout(w, self.user_width),
                                                      self.OUT_DEPTH)
        wiring.connect(m, out_fifo.m, wiring.flipped(self.m_axis))
        room = Signal()
        m.d.sync += room.eq(out_fifo.level < self.OUT_DEPTH - self.STAGES - 1)

        # Stage 0: a beat and its frame's header record (taken with the first beat).
        first = Signal(init=1)
        pos = Signal(20)
        hdr_reg = Signal(hdr_layout)
        hdr = Signal(hdr_layout)
        m.d.comb += hdr.eq(Mux(first, self.s_headers.payload, hdr_reg))
        ready = room & (~first | self.s_headers.valid)
        accept = Signal()
        m.d.comb += [
            accept.eq(self.s_axis.valid & ready),
            self.s_axis.ready.eq(ready),
            self.s_headers.ready.eq(room & self.s_axis.valid & first),
        ]
        beat = self.s_axis.payload
        with m.If(first):
            m.d.sync += hdr_reg.eq(self.s_headers.payload)
        with m.If(accept):
            m.d.sync += first.eq(beat.last)
            m.d.sync += pos.eq(Mux(beat.last, 0, Mux(pos[-1], pos, pos + nbytes)))

        # Stage 0 registers what it took, so that the masks start from flip-flops and not
        # from the parser's FIFO read ports (the longest paths on an ECP5 before this stage).
        s0 = Signal(stage_layout({"beat": beat_layout, "hdr": hdr_layout, "pos": 20,
                                  "first": 1, "view": self.VIEW_LAYOUT}))
        m.d.sync += [s0.valid.eq(accept), s0.beat.data.eq(beat.data),
                     s0.beat.keep.eq(beat.keep), s0.beat.last.eq(beat.last),
                     s0.hdr.eq(hdr), s0.pos.eq(pos), s0.first.eq(first)]
        self._view(m, s0.view, hdr)
        s1 = self._masks(m, s0)
        s2, s3 = self._group_sums(m, s1)
        self._totals(m, s3, out_fifo.s)
        return m

    def _view(self, m, view, hdr):
        """Into ``view`` (a register): the headers the L4 sum is of."""
        fields = ("l3", "is_ipv4", "is_ipv6", "l4", "l4_end", "l4_proto", "pseudo_dst")
        for name in fields:
            outer = getattr(hdr, name)
            if self.rx:
                m.d.sync += getattr(view, name).eq(
                    Mux(hdr.is_nvgre, getattr(hdr, f"inner_{name}"), outer))
            else:
                m.d.sync += getattr(view, name).eq(outer)

    def _masks(self, m, s0):
        """Stage 1: the beat's byte masks of the IP header and the L4 sum, and its word at
        ``l4 + 6`` (the UDP checksum field), from stage 0's registers."""
        w, nbytes = self.width, self.width // 8
        beat, hdr, pos, view = s0.beat, s0.hdr, s0.pos, s0.view
        l3, l4 = hdr.l3, view.l4
        ip_mask, stmts = range_mask(pos, l3, l3 + hdr.ip_header_len, nbytes)
        m.d.comb += stmts
        inner_ip_mask = C(0, nbytes)
        if self.rx:         # the inner IPv4 header of an NVGRE frame
            inner_ip_mask, stmts = range_mask(pos, hdr.inner_l3,
                                              hdr.inner_l3 + hdr.inner_ip_header_len, nbytes)
            m.d.comb += stmts
        if not self.rx:     # the IPv4 checksum field arrives zero and is ignored: mask it
            field_mask, stmts = range_mask(pos, l3 + 10, l3 + 12, nbytes)
            m.d.comb += stmts
            ip_mask = ip_mask & ~field_mask
        l4_mask, stmts = range_mask(pos, l4, view.l4_end, nbytes)
        m.d.comb += stmts
        if self.rx:         # pseudo-header addresses: source (and IPv4 destination), dest
            src_lo = Mux(view.is_ipv4, view.l3 + 12, view.l3 + 8)
            src_hi = Mux(view.is_ipv4, view.l3 + 20, view.l3 + 24)
            src_mask, stmts = range_mask(pos, src_lo, src_hi, nbytes)
            m.d.comb += stmts
            dst_mask, stmts = range_mask(pos, view.pseudo_dst, view.pseudo_dst + 16, nbytes)
            m.d.comb += stmts
            dst_mask = Mux(view.is_ipv6, dst_mask, 0)
            l4_mask = l4_mask | src_mask | dst_mask

        udp_rel = Signal(signed(22))
        m.d.comb += udp_rel.eq(l4 + 6 - pos)
        words_all = beat_words(beat.data, Const(-1, nbytes), w)
        udp_hit = (udp_rel >= 0) & (udp_rel < nbytes)
        udp_word = Array(words_all)[udp_rel[1:1 + max(1, (w // 16 - 1).bit_length())]]
        count = add_tree([beat.keep[i] for i in range(nbytes)])

        s1 = Signal(stage_layout({
            "beat": axis_layout(w), "hdr": HEADERS_LAYOUT(self.user_width), "first": 1,
            "ip_mask": nbytes, "l4_mask": nbytes, "udp_hit": 1, "udp_word": 16, "end": 20,
            "view": self.VIEW_LAYOUT, "inner_ip_mask": nbytes}))
        m.d.sync += [
            s1.valid.eq(s0.valid), s1.beat.eq(beat), s1.hdr.eq(hdr), s1.first.eq(s0.first),
            s1.view.eq(view), s1.inner_ip_mask.eq(inner_ip_mask & beat.keep),
            s1.ip_mask.eq(ip_mask & beat.keep), s1.l4_mask.eq(l4_mask & beat.keep),
            s1.udp_hit.eq(udp_hit), s1.udp_word.eq(udp_word), s1.end.eq(pos + count),
        ]
        return s1

    def _group_sums(self, m, s1):
        """Stages 2 and 3: the masked lane words summed in groups of four, then the groups
        in groups of four (two adder levels a stage); the L4 sum's start (RX: the
        pseudo-header's protocol and L4 length, once per frame)."""
        w = self.width
        carried = {"beat": axis_layout(w), "hdr": HEADERS_LAYOUT(self.user_width), "first": 1,
                   "udp_hit": 1, "udp_word": 16, "end": 20, "start": 21}

        # The sums: the IP header, the L4 bytes and (RX) the inner IPv4 header of an NVGRE
        # frame.
        sums = ("ip", "l4", "inner") if self.rx else ("ip", "l4")

        def stage(prev, groups, name):
            gw = max(len(g) for gs in groups.values() for g in gs)
            st = Signal(stage_layout({**carried, **{k: data.ArrayLayout(gw, len(gs))
                                                    for k, gs in groups.items()}}), name=name)
            m.d.sync += [st.valid.eq(prev.valid)]
            m.d.sync += [getattr(st, k).eq(getattr(prev, k)) for k in carried if k != "start"]
            for k, gs in groups.items():
                m.d.sync += [getattr(st, k)[i].eq(g) for i, g in enumerate(gs)]
            return st

        masks = {"ip": s1.ip_mask, "l4": s1.l4_mask, "inner": s1.inner_ip_mask}
        s2 = stage(s1, {k: group_sums(beat_words(s1.beat.data, masks[k], w), 4) for k in sums},
                   "sums_grouped")
        if self.rx:
            v1 = s1.view
            m.d.sync += s2.start.eq(v1.l4_proto + (v1.l4_end - v1.l4))
        s3 = stage(s2, {k: group_sums(_elements(getattr(s2, k)), 4) for k in sums},
                   "sums_regrouped")
        m.d.sync += s3.start.eq(s2.start)
        return s2, s3

    def _totals(self, m, s3, fifo_in):
        """Stage 4 accumulates per frame; stage 5 folds the 40-bit totals once (their 16-bit
        slices added) and the write into the output FIFO folds the rest; each fold keeps the
        value mod 0xFFFF and never turns a non-zero total into 0. The last beat carries the
        totals."""
        w = self.width
        sums = ("ip", "l4", "inner") if self.rx else ("ip", "l4")
        acc = {k: Signal(40, name=f"{k}_acc") for k in sums}
        udp_acc = Signal(16)
        start = {"ip": 0, "l4": s3.start, "inner": 0}
        total = {k: add_tree([Mux(s3.first, start[k], acc[k])] + _elements(getattr(s3, k)))
                 for k in sums}
        udp_total = Mux(s3.udp_hit, s3.udp_word, Mux(s3.first, 0, udp_acc))
        carried = {"beat": axis_layout(w), "hdr": HEADERS_LAYOUT(self.user_width), "end": 20}
        s4 = Signal(stage_layout({**carried, **dict.fromkeys(sums, 40), "udp": 16}),
                    name="sums_total")
        m.d.sync += [s4.valid.eq(s3.valid), s4.udp.eq(udp_total)]
        m.d.sync += [getattr(s4, k).eq(total[k]) for k in sums]
        m.d.sync += [getattr(s4, k).eq(getattr(s3, k)) for k in carried]
        with m.If(s3.valid):
            m.d.sync += [acc[k].eq(total[k]) for k in sums]
            m.d.sync += udp_acc.eq(udp_total)

        def slices(v):
            return add_tree([v[i:i + 16] for i in range(0, len(v), 16)])
        s5 = Signal(stage_layout({**carried, **dict.fromkeys(sums, 18), "udp": 16}),
                    name="sums_folded")
        m.d.sync += [s5.valid.eq(s4.valid), s5.udp.eq(s4.udp)]
        m.d.sync += [getattr(s5, k).eq(slices(getattr(s4, k))) for k in sums]
        m.d.sync += [getattr(s5, k).eq(getattr(s4, k)) for k in carried]
        out = fifo_in.payload
        m.d.comb += [
            fifo_in.valid.eq(s5.valid),     # never refused: ``room`` kept a place for it
            out.beat.eq(s5.beat), out.hdr.eq(s5.hdr), out.frame_len.eq(s5.end),
            out.ip_sum.eq(fold16(s5.ip)), out.l4_sum.eq(fold16(s5.l4)),
            out.inner_ip_sum.eq(fold16(s5.inner) if self.rx else 0),
            out.udp_field.eq(s5.udp),
        ]


def _elements(array_view):
    """The elements of an ``ArrayLayout`` view, as a list."""
    return [array_view[i] for i in range(array_view.shape().length)]


def effective_error(hdr, frame_len):
    """The parse error after the deferred "datagram runs past the frame" check."""
    late = (hdr.error == 0) | (hdr.error > ParseError.BAD_IP_LENGTH)
    past = hdr.ip_end_unchecked & (hdr.ip_end > frame_len)
    return Mux(past & late, ParseError.BAD_IP_LENGTH, hdr.error)


def rx_flags(m, sums, enables):
    """The ChecksumRx word of a frame from its :class:`SumPipeline` totals (``sums``: a
    ``SumPipeline.beat_layout`` payload of its last beat) and the receive ``enables``: the
    model's ``checksum.rx_validate`` rules, in one place for every RX unit."""
    hdr, en = sums.hdr, enables
    flags = Signal(word_layout(nbl.ChecksumRx))
    ok = en.rx_active & (effective_error(hdr, sums.frame_len) == 0)
    # NVGRE with the encapsulated packet task offload on: the inner IPv4 header is checked
    # too, and the TCP/UDP flags are the inner transport header's (``l4_sum`` and the UDP
    # word are of it). Else the outer headers only (a GRE frame has no TCP/UDP flags).
    inner = en.encap & hdr.is_nvgre

    def pick(name):
        return Mux(inner, getattr(hdr, f"inner_{name}"), getattr(hdr, name))

    is_ipv4 = pick("is_ipv4")       # the transport header's IP version
    l4 = (pick("l4_header_len") != 0) & ~pick("is_fragment")
    is_tcp = l4 & (pick("l4_proto") == IPPROTO_TCP)
    is_udp = l4 & (pick("l4_proto") == IPPROTO_UDP)
    tcp_on = Mux(is_ipv4, en.rx_tcp_ipv4, en.rx_tcp_ipv6)
    udp_on = Mux(is_ipv4, en.rx_udp_ipv4, en.rx_udp_ipv6)
    inner_ip = inner & hdr.inner_is_ipv4
    ip_check = ok & (hdr.is_ipv4 | inner_ip) & en.rx_ipv4_checksum
    tcp_check = ok & is_tcp & tcp_on
    udp_zero = sums.udp_field == 0
    udp_check = ok & is_udp & udp_on & ~(udp_zero & is_ipv4)
    ip_good = (~hdr.is_ipv4 | (sums.ip_sum == 0xFFFF)) & \
        (~inner_ip | (sums.inner_ip_sum == 0xFFFF))
    l4_good = sums.l4_sum == 0xFFFF
    m.d.comb += [
        flags.IpChecksumSucceeded.eq(ip_check & ip_good),
        flags.IpChecksumFailed.eq(ip_check & ~ip_good),
        flags.TcpChecksumSucceeded.eq(tcp_check & l4_good),
        flags.TcpChecksumFailed.eq(tcp_check & ~l4_good),
        flags.UdpChecksumSucceeded.eq(udp_check & l4_good & ~udp_zero),
        flags.UdpChecksumFailed.eq(udp_check & (~l4_good | udp_zero)),
    ]
    return flags


class RxChecksum(wiring.Component):
    """Receive checksum validation, cut-through; the info word rides on the last beat.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W))
        Frames from the wire.
    m_axis : Out(AxisSignature(W, 96))
        The same frames, unchanged; ``user`` on the last beat is ``nbl.RxUser``: the
        ChecksumRx word in bits 0..31 (RSC words zero). Registered: a beat, ``user``
        included, does not change while it waits for ``ready``.
    enables : In(RX_ENABLES)
        The receive enables (``rx_active``, one per checksum, ``encap``: NVGRE), from the
        configuration.
        A frame's flags follow the enables of the cycle its last beat enters the output
        register; a change reaches no beat already on ``m_axis``.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "m_axis": Out(AxisSignature(width, nbl.RxUser.width())),
            "enables": In(RX_ENABLES),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = FrameParser(self.width, 0)
        m.submodules.sums = sums = SumPipeline(self.width, 0, rx=True)
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        wiring.connect(m, parser.m_axis, sums.s_axis)
        wiring.connect(m, parser.m_headers, sums.s_headers)

        p = sums.m_axis.payload
        flags = rx_flags(m, p, self.enables)
        # The output beat is a register, loaded only when the output is empty or taken: the
        # flags depend on ``enables``, which may change at any time, and a beat on ``m_axis``
        # must not change while it waits (AXI4-Stream: tvalid && !tready holds the payload).
        out = self.m_axis
        advance = Signal()
        m.d.comb += [
            advance.eq(~out.valid | out.ready),
            sums.m_axis.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [
                out.valid.eq(sums.m_axis.valid),
                out.payload.data.eq(p.beat.data),
                out.payload.keep.eq(p.beat.keep),
                out.payload.last.eq(p.beat.last),
                out.payload.user.eq(Mux(p.beat.last, flags.as_value(), 0)),
            ]
        return m


class TxChecksum(wiring.Component):
    """Transmit checksum insertion as a unit of its own: the TX parser, then
    :class:`TxChecksumInsert` (in the TX path the parser is the path's, ``hdl/txpath.py``).

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 128))
        Host frames; ``user`` on the first beat is ``nbl.TxUser`` (checksum word in bits
        0..31; the LSO, supplemental and length words above it are ignored here).
    m_axis : Out(AxisSignature(W))
        As :class:`TxChecksumInsert`'s.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, nbl.TxUser.width())),
            "m_axis": Out(AxisSignature(width)),
        })

    def elaborate(self, platform):
        m = Module()
        w, uw = self.width, nbl.TxUser.width()
        m.submodules.parser = parser = FrameParser(w, uw)
        m.submodules.beats_in = beats_in = RegisterSlice(axis_layout(w))
        m.submodules.records_in = records_in = RegisterSlice(HEADERS_LAYOUT(uw))
        m.submodules.insert = insert = TxChecksumInsert(w)
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        connect_beats(m, parser.m_axis, beats_in.s)
        wiring.connect(m, parser.m_headers, records_in.s)
        wiring.connect(m, beats_in.m, insert.s_axis)
        wiring.connect(m, records_in.m, insert.s_headers)
        wiring.connect(m, insert.m_axis, wiring.flipped(self.m_axis))
        return m


class TxChecksumInsert(wiring.Component):
    """Transmit checksum insertion, store-and-forward with a two-frame buffer.

    It parses nothing: each frame's header record arrives beside it (``s_headers``), from
    the TX path's parser or from the segmenter for the segments it makes.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W))
        Frames to send (their ``tuser`` is in their records).
    s_headers : In(stream.Signature(HEADERS_LAYOUT(128)))
        Each frame's header record, ``user`` its first beat's ``nbl.TxUser`` (checksum word
        in bits 0..31); taken with the frame's first beat.
    m_axis : Out(AxisSignature(W))
        Wire frames with the requested checksums written, or unchanged where the model
        leaves them so (``model.checksum.tx_checksum`` and :data:`TX_MAX_FRAME`).
    """

    #: Entries of the FIFO behind the frame buffer's read register.
    READ_DEPTH = 6

    def __init__(self, width=64):
        self.width = check_width(width)
        self.max_beats = TX_MAX_FRAME * 8 // width
        uw = nbl.TxUser.width()
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(uw))),
            "m_axis": Out(AxisSignature(width)),
        })

    def elaborate(self, platform):
        m = Module()
        w, nbytes = self.width, self.width // 8
        uw = nbl.TxUser.width()
        m.submodules.sums = sums = SumPipeline(w, uw, rx=False)
        wiring.connect(m, wiring.flipped(self.s_axis), sums.s_axis)
        wiring.connect(m, wiring.flipped(self.s_headers), sums.s_headers)

        beat_w = len(Signal(axis_layout(w)).as_value())
        m.submodules.frames = frames = fifo.SyncFIFOBuffered(width=beat_w,
                                                             depth=2 * self.max_beats)
        record = data.StructLayout({
            "fill_ip": 1, "fill_l4": 1, "ip_at": 9, "ip_value": 16, "l4_at": 10,
            "l4_value": 16,
        })
        m.submodules.records = records = fifo.SyncFIFOBuffered(width=record.size, depth=4)

        # Decide what to write, from the info word and the record (model.checksum rules).
        p = sums.m_axis.payload
        hdr = p.hdr
        info = Signal(word_layout(nbl.ChecksumTx))
        m.d.comb += info.eq(hdr.user[:32])
        want_ip = info.IsIPv4 & info.IpHeaderChecksum
        want_tcp, want_udp = info.TcpChecksum, info.UdpChecksum
        any_l4 = want_tcp | want_udp
        version_ok = Mux(info.IsIPv4, hdr.is_ipv4, hdr.is_ipv6)
        proto_ok = Mux(want_tcp, hdr.l4_proto == IPPROTO_TCP, hdr.l4_proto == IPPROTO_UDP)
        l4_ok = ~hdr.is_fragment & (hdr.l4_header_len != 0) & proto_ok & \
            ~(want_tcp & (info.TcpHeaderOffset != 0) & (info.TcpHeaderOffset != hdr.l4))
        act = (info.IsIPv4 ^ info.IsIPv6) & ~(want_tcp & want_udp) & \
            (effective_error(hdr, p.frame_len) == 0) & version_ok & (~any_l4 | l4_ok)
        l4_value = ~p.l4_sum & 0xFFFF
        rec = Signal(record)
        m.d.comb += [
            rec.fill_ip.eq(act & want_ip),
            rec.fill_l4.eq(act & any_l4),
            rec.ip_at.eq(hdr.l3 + 10),
            rec.ip_value.eq(~p.ip_sum),
            rec.l4_at.eq(hdr.l4 + Mux(want_tcp, 16, 6)),
            rec.l4_value.eq(Mux(want_udp & (l4_value == 0), 0xFFFF, l4_value)),
        ]

        # Into the buffer; the record goes when the frame is complete, or as a pass-through
        # record as soon as the frame proves longer than TX_MAX_FRAME (then nothing waits).
        count = Signal(range(self.max_beats + 1))
        early = Signal()            # this frame's pass-through record has been sent
        take = Signal()
        beat = p.beat
        oversize = count == self.max_beats
        push_record = Mux(early, 0, beat.last | oversize)
        m.d.comb += [
            take.eq(sums.m_axis.valid & frames.w_rdy & (~push_record | records.w_rdy)),
            sums.m_axis.ready.eq(frames.w_rdy & (~push_record | records.w_rdy)),
            frames.w_en.eq(take),
            frames.w_data.eq(beat.as_value()),
            records.w_en.eq(take & push_record),
            records.w_data.eq(Mux(oversize, 0, rec.as_value())),   # oversize: pass through
        ]
        with m.If(take):
            with m.If(beat.last):
                m.d.sync += [count.eq(0), early.eq(0)]
            with m.Else():
                m.d.sync += count.eq(Mux(oversize, count, count + 1))
                with m.If(oversize):
                    m.d.sync += early.eq(1)

        # Out of the buffer, patching the fields on their beats.
        out = self.m_axis
        cur = Signal(record)
        out_first = Signal(init=1)
        out_pos = Signal(20)
        # The buffer's read data goes straight into a register (a block RAM's output is slow
        # on its own: nothing stands between it and the flip-flops), then into a small FIFO
        # that never refuses it: an entry is read only while that FIFO has room for it and
        # every entry on the way (``read_room``, a flip-flop a cycle late).
        depth = self.READ_DEPTH
        m.submodules.buffered = buffered = StreamFIFO(axis_layout(w), depth)
        read, read_valid, read_room = Signal(), Signal(), Signal()
        read_data = Signal(beat_w)
        m.d.sync += [read_room.eq(buffered.level < depth - 2),
                     read_valid.eq(read), read_data.eq(frames.r_data)]
        m.d.comb += [read.eq(frames.r_rdy & read_room), frames.r_en.eq(read),
                     buffered.s.valid.eq(read_valid), buffered.s.payload.eq(read_data)]
        rd = buffered.m.payload
        use = Signal(record)
        m.d.comb += use.eq(Mux(out_first, records.r_data, cur))
        ready_to_send = buffered.m.valid & (~out_first | records.r_rdy)
        m.d.comb += [
            out.valid.eq(ready_to_send),
            buffered.m.ready.eq(out.ready & ready_to_send),
            records.r_en.eq(out.ready & ready_to_send & out_first),
        ]
        with m.If(out.ready & ready_to_send):
            m.d.sync += [out_first.eq(rd.last),
                         out_pos.eq(Mux(rd.last, 0, Mux(out_pos[-1], out_pos,
                                                        out_pos + nbytes)))]
            with m.If(out_first):
                m.d.sync += cur.eq(records.r_data)

        patched = Signal(w)
        nwords = w // 16
        for k in range(nwords):
            orig = Cat(rd.data[16 * k + 8:16 * k + 16], rd.data[16 * k:16 * k + 8])  # BE word
            at = out_pos + 2 * k
            value = Mux(use.fill_ip & (at == use.ip_at), use.ip_value,
                        Mux(use.fill_l4 & (at == use.l4_at), use.l4_value, orig))
            m.d.comb += patched[16 * k:16 * k + 16].eq(Cat(value[8:16], value[0:8]))
        m.d.comb += [
            out.payload.data.eq(patched),
            out.payload.keep.eq(rd.keep),
            out.payload.last.eq(rd.last),
        ]
        return m
