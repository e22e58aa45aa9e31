"""Checksum offload RTL: the twin of ``nicoffload.model.checksum``.

:class:`TxChecksum` fills the IPv4 header and TCP/UDP checksums that each frame's
NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO word (first-beat ``tuser``) asks for;
:class:`RxChecksum` validates them and puts the receive info word on each frame's last beat.
Both follow the model's rules exactly (see that module's docstring for every decision).

Structure, one beat per cycle throughout::

    s_axis ─► FrameParser ─► SumPipeline ─┬─► (RX) flags on the last beat ─► m_axis
              (hdl/parse)                 └─► (TX) frame FIFO + result FIFO ─► patch ─► m_axis

TX writes up to four fields a frame (:data:`TX_RECORD`); an NVGRE frame asking for the
encapsulated offload (``model.checksum`` rule 8) gets the outer and inner IPv4 header
checksums, the inner TCP/UDP checksum and, last, the GRE checksum, worked out from the sum of
the GRE region and the new inner field values (:class:`TxRecordPipe`).

:class:`SumPipeline` sums while the frame streams ("sum while buffering"): each beat's bytes
are masked by the byte ranges the header record names (IPv4 header; L4 header to ``l4_end``;
the inner IPv4 header of an NVGRE frame; for RX also the pseudo-header addresses; for TX the
GRE region of an NVGRE frame asking for the encapsulated offload) and added by the ``hdl.onesum`` trees, so the sums
are ready a fixed few cycles after a frame's last beat. RX is cut-through behind the parser's
header window; TX stores each frame (it must, to write a header after summing the payload)
in a FIFO of a maximum frame and more (a power of two of beats, one block RAM deep), so the
next frame streams in while this one goes out.
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
           "TxChecksumInsert", "TX_RECORD", "tx_decision", "TxRecordPipe"]


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


def beat_lane(pos, at, nbytes):
    """Where frame offset ``at`` falls in a beat at frame offset ``pos``: its lane; 0 when it
    is before the beat, ``nbytes`` when past it (``range(nbytes + 1)``). A byte range
    [lo, hi) holds lane ``i`` when ``beat_lane(lo) <= i < beat_lane(hi)``
    (:func:`lane_mask`)."""
    rel = (at - pos).as_signed()        # exact: both unsigned, one bit wider than either
    return Mux(rel < 0, 0, Mux(rel > nbytes, nbytes, rel[:nbytes.bit_length()]))


def lane_mask(lo_lane, hi_lane, nbytes):
    """The beat's bytes in a range whose ends are ``beat_lane`` values."""
    return Cat(*[(lo_lane <= i) & (hi_lane > i) for i in range(nbytes)])


def field_lane_layout(nbytes):
    """Where a 16-bit field at an even frame offset is in a beat (:func:`field_lane`)."""
    return data.StructLayout({"in_beat": 1, "word": range(nbytes // 2)})


def field_lane(pos, at, nbytes):
    """The ``field_lane_layout`` value of the field at the even frame offset ``at`` in a beat
    at frame offset ``pos``."""
    rel = (at - pos).as_signed()
    return Cat((rel >= 0) & (rel < nbytes), rel[1:(nbytes // 2 - 1).bit_length() + 1])


def field_mask(lane, nbytes):
    """The beat's two bytes of a field whose ``field_lane`` is ``lane``."""
    return Cat(*[lane.in_beat & (lane.word == k) for k in range(nbytes // 2)
                 for _ in range(2)])


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
        ``encap`` enable). TX: ``inner_ip_sum`` is the inner IPv4 header's with its checksum
        field taken as zero; for an NVGRE frame whose supplemental word says
        IsEncapsulatedPacket, ``l4_sum`` is the inner TCP/UDP header's and, when its GRE
        header has C=1, ``gre_sum`` (TX only) is of the GRE header to the outer datagram's
        end without the GRE checksum field and without the inner IPv4 / inner TCP/UDP
        checksum fields the info word asks for (``TX_FIELDS_LAYOUT``): the NIC adds their
        new values (:class:`TxRecordPipe`).
    """

    #: The headers the L4 sum is of (RX: the inner ones of an NVGRE frame).
    VIEW_LAYOUT = data.StructLayout({"l3": 8, "is_ipv4": 1, "is_ipv6": 1, "l4": 9,
                                     "l4_end": 17, "l4_proto": 8, "pseudo_dst": 9})

    #: TX, registered in stage 0: where the GRE sum's region and the fields it leaves out
    #: are (``gre_on``: an NVGRE frame asking for the encapsulated offload; the inner IPv4
    #: checksum field and the inner L4 checksum field are left out when the NIC writes them).
    TX_FIELDS_LAYOUT = data.StructLayout({
        "gre_on": 1, "gre_lo": 9, "gre_hi": 17, "gre_field": 8,
        "inner_field": 9, "inner_excl": 1, "l4_field": 10, "l4_excl": 1,
    })

    @staticmethod
    def beat_layout(width, user_width, *, tx=False):
        fields = {
            "beat": axis_layout(width),
            "hdr": HEADERS_LAYOUT(user_width),
            "frame_len": 20,
            "ip_sum": 16,
            "l4_sum": 16,
            "udp_field": 16,
            "inner_ip_sum": 16,
        }
        if tx:
            fields["gre_sum"] = 16
        return data.StructLayout(fields)

    def __init__(self, width, user_width, *, rx):
        self.width = check_width(width)
        self.user_width = user_width
        self.rx = rx
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(user_width))),
            "m_axis": Out(stream.Signature(self.beat_layout(width, user_width, tx=not rx))),
        })

    @property
    def sums(self):
        """The sums taken: the IP header, the L4 bytes, the inner IPv4 header of an NVGRE
        frame and (TX) the GRE region."""
        return ("ip", "l4", "inner") if self.rx else ("ip", "l4", "inner", "gre")

    #: The output FIFO's depth (the stage registers before it: ``elaborate`` counts them).
    OUT_DEPTH = 16

    def elaborate(self, platform):
        m = Module()
        w, nbytes = self.width, self.width // 8
        hdr_layout = HEADERS_LAYOUT(self.user_width)
        beat_layout = axis_layout(w)

        # The stages never stall: every stage register loads every cycle (no enable fans out
        # from the consumer's ``ready``). A beat is taken only while the output FIFO has room
        # for it and every beat in the stages (``room``, a flip-flop a cycle late: the level
        # grows by at most one a cycle).
        m.submodules.out_fifo = out_fifo = StreamFIFO(
            self.beat_layout(w, self.user_width, tx=not self.rx), self.OUT_DEPTH)
        wiring.connect(m, out_fifo.m, wiring.flipped(self.m_axis))
        room = Signal(init=1)     # the FIFO starts empty

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
                                  "first": 1, "view": self.VIEW_LAYOUT,
                                  "tx": self.TX_FIELDS_LAYOUT}))
        m.d.sync += [s0.valid.eq(accept), s0.beat.data.eq(beat.data),
                     s0.beat.keep.eq(beat.keep), s0.beat.last.eq(beat.last),
                     s0.hdr.eq(hdr), s0.pos.eq(pos), s0.first.eq(first)]
        self._view(m, s0.view, hdr)
        if not self.rx:
            self._tx_fields(m, s0.tx, hdr)
        s1 = self._lanes(m, s0)
        s2 = self._masks(m, s1)
        s3, s4 = self._group_sums(m, s2)
        s5, s6 = self._totals(m, s4, out_fifo.s)
        stages = (s0, s1, s2, s3, s4, s5, s6)
        m.d.sync += room.eq(out_fifo.level < self.OUT_DEPTH - len(stages) - 1)
        return m

    @staticmethod
    def tx_encapsulated(hdr):
        """TX: an NVGRE frame whose supplemental word says IsEncapsulatedPacket (the L4 sum
        is the inner transport header's; whether it is used is ``TxChecksumInsert``'s)."""
        supp = data.View(word_layout(nbl.SendSupplemental), hdr.user[64:96])
        return hdr.is_nvgre & supp.IsEncapsulatedPacket

    def _view(self, m, view, hdr):
        """Into ``view`` (a register): the headers the L4 sum is of (the inner ones of an
        NVGRE frame: RX always, TX when the frame asks for the encapsulated offload)."""
        fields = ("l3", "is_ipv4", "is_ipv6", "l4", "l4_end", "l4_proto", "pseudo_dst")
        inner = hdr.is_nvgre if self.rx else self.tx_encapsulated(hdr)
        for name in fields:
            m.d.sync += getattr(view, name).eq(
                Mux(inner, getattr(hdr, f"inner_{name}"), getattr(hdr, name)))

    def _tx_fields(self, m, tx, hdr):
        """Into ``tx`` (a register, ``TX_FIELDS_LAYOUT``): the GRE sum's region [GRE header,
        outer datagram's end) and the fields it leaves out: the GRE checksum field, and the
        inner IPv4 / inner L4 checksum fields when the info word asks for them (their new
        values are added at the frame's end; ``model.checksum.fill_encapsulated``)."""
        info = data.View(word_layout(nbl.ChecksumTx), hdr.user[:32])
        m.d.sync += [
            tx.gre_on.eq(self.tx_encapsulated(hdr) & (hdr.gre_checksum_offset != 0)),
            tx.gre_lo.eq(hdr.l4), tx.gre_hi.eq(hdr.ip_end),
            tx.gre_field.eq(hdr.gre_checksum_offset),
            tx.inner_field.eq(hdr.inner_l3 + 10),
            tx.inner_excl.eq(info.IpHeaderChecksum & hdr.inner_is_ipv4),
            tx.l4_field.eq(hdr.inner_l4 + Mux(info.TcpChecksum, 16, 6)),
            tx.l4_excl.eq(info.TcpChecksum | info.UdpChecksum),
        ]

    def _lanes(self, m, s0):
        """Stage 1: where each byte range and 16-bit field the masks need falls in the beat,
        registered (:func:`beat_lane`, :func:`field_lane`): the additions and the
        subtraction of the beat's position are made here, so that stage 2's masks are
        comparisons of a few bits each. Ranges: the IP header, the L4 sum's bytes, the inner
        IPv4 header of an NVGRE frame, RX the pseudo-header addresses, TX the GRE region;
        fields: the word at ``l4 + 6`` (the UDP checksum), TX the checksum fields the sums
        leave out."""
        nbytes = self.width // 8
        hdr, pos, view = s0.hdr, s0.pos, s0.view
        ranges = {"ip": (hdr.l3, hdr.l3 + hdr.ip_header_len),
                  "inner_ip": (hdr.inner_l3, hdr.inner_l3 + hdr.inner_ip_header_len),
                  "l4": (view.l4, view.l4_end)}
        fields = {"udp": view.l4 + 6}
        if self.rx:
            ranges["src"] = (Mux(view.is_ipv4, view.l3 + 12, view.l3 + 8),
                             Mux(view.is_ipv4, view.l3 + 20, view.l3 + 24))
            ranges["dst"] = (view.pseudo_dst, view.pseudo_dst + 16)
        else:
            tx = s0.tx
            ranges["gre"] = (tx.gre_lo, tx.gre_hi)
            fields.update(ip_field=hdr.l3 + 10, inner_field=tx.inner_field,
                          gre_field=tx.gre_field, l4_field=tx.l4_field)
        lanes_layout = data.StructLayout({
            **{f"{name}_{end}": range(nbytes + 1) for name in ranges for end in ("lo", "hi")},
            **{name: field_lane_layout(nbytes) for name in fields}})
        s1 = Signal(stage_layout({"beat": axis_layout(self.width),
                                  "hdr": HEADERS_LAYOUT(self.user_width), "pos": 20,
                                  "first": 1, "view": self.VIEW_LAYOUT,
                                  "tx": self.TX_FIELDS_LAYOUT, "lanes": lanes_layout}),
                    name="lanes")
        m.d.sync += [s1.valid.eq(s0.valid), s1.beat.eq(s0.beat), s1.hdr.eq(hdr),
                     s1.pos.eq(pos), s1.first.eq(s0.first), s1.view.eq(view),
                     s1.tx.eq(s0.tx)]
        for name, (lo, hi) in ranges.items():
            m.d.sync += [getattr(s1.lanes, f"{name}_lo").eq(beat_lane(pos, lo, nbytes)),
                         getattr(s1.lanes, f"{name}_hi").eq(beat_lane(pos, hi, nbytes))]
        for name, at in fields.items():
            m.d.sync += getattr(s1.lanes, name).eq(field_lane(pos, at, nbytes))
        return s1

    def _masks(self, m, s1):
        """Stage 2: the beat's byte masks of each sum and its word at ``l4 + 6`` (the UDP
        checksum field), from stage 1's lanes."""
        w, nbytes = self.width, self.width // 8
        beat, lanes, view = s1.beat, s1.lanes, s1.view

        def bytes_of(name):
            return lane_mask(getattr(lanes, f"{name}_lo"), getattr(lanes, f"{name}_hi"), nbytes)

        ip_mask, inner_ip_mask, l4_mask = bytes_of("ip"), bytes_of("inner_ip"), bytes_of("l4")
        gre_mask = C(0, nbytes)
        if not self.rx:     # the IPv4 checksum fields are taken as zero: mask them
            tx = s1.tx
            inner_field = field_mask(lanes.inner_field, nbytes)
            ip_mask = ip_mask & ~field_mask(lanes.ip_field, nbytes)
            inner_ip_mask = inner_ip_mask & ~inner_field
            # the GRE region but its checksum field, and the inner checksum fields the NIC
            # writes (``TX_FIELDS_LAYOUT``)
            gre = bytes_of("gre") & ~field_mask(lanes.gre_field, nbytes)
            gre = gre & ~Mux(tx.inner_excl, inner_field, 0)
            gre = gre & ~Mux(tx.l4_excl, field_mask(lanes.l4_field, nbytes), 0)
            gre_mask = Mux(tx.gre_on, gre, 0)
        if self.rx:         # pseudo-header addresses: source (and IPv4 destination), dest
            l4_mask = l4_mask | bytes_of("src") | Mux(view.is_ipv6, bytes_of("dst"), 0)

        words_all = beat_words(beat.data, Const(-1, nbytes), w)
        udp_word = Array(words_all)[lanes.udp.word]
        count = add_tree([beat.keep[i] for i in range(nbytes)])

        s2 = Signal(stage_layout({
            "beat": axis_layout(w), "hdr": HEADERS_LAYOUT(self.user_width), "first": 1,
            "ip_mask": nbytes, "l4_mask": nbytes, "udp_hit": 1, "udp_word": 16, "end": 20,
            "view": self.VIEW_LAYOUT, "inner_ip_mask": nbytes, "gre_mask": nbytes}),
            name="masks")
        m.d.sync += [
            s2.valid.eq(s1.valid), s2.beat.eq(beat), s2.hdr.eq(s1.hdr), s2.first.eq(s1.first),
            s2.view.eq(view), s2.inner_ip_mask.eq(inner_ip_mask & beat.keep),
            s2.gre_mask.eq(gre_mask & beat.keep),
            s2.ip_mask.eq(ip_mask & beat.keep), s2.l4_mask.eq(l4_mask & beat.keep),
            s2.udp_hit.eq(lanes.udp.in_beat), s2.udp_word.eq(udp_word),
            s2.end.eq(s1.pos + count),
        ]
        return s2

    def _group_sums(self, m, s1):
        """Stages 3 and 4: the masked lane words summed in groups of four, then the groups
        in groups of four (two adder levels a stage); the L4 sum's start (RX: the
        pseudo-header's protocol and L4 length, once per frame)."""
        w = self.width
        carried = {"beat": axis_layout(w), "hdr": HEADERS_LAYOUT(self.user_width), "first": 1,
                   "udp_hit": 1, "udp_word": 16, "end": 20, "start": 21}

        # The sums: the IP header, the L4 bytes and (RX) the inner IPv4 header of an NVGRE
        # frame.
        sums = self.sums

        def stage(prev, groups, name):
            gw = max(len(g) for gs in groups.values() for g in gs)
            st = Signal(stage_layout({**carried, **{k: data.ArrayLayout(gw, len(gs))
                                                    for k, gs in groups.items()}}), name=name)
            m.d.sync += [st.valid.eq(prev.valid)]
            m.d.sync += [getattr(st, k).eq(getattr(prev, k)) for k in carried if k != "start"]
            for k, gs in groups.items():
                m.d.sync += [getattr(st, k)[i].eq(g) for i, g in enumerate(gs)]
            return st

        masks = {"ip": s1.ip_mask, "l4": s1.l4_mask, "inner": s1.inner_ip_mask,
                 "gre": s1.gre_mask}
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
        """Stage 5 accumulates per frame; stage 6 folds the 40-bit totals once (their 16-bit
        slices added) and the write into the output FIFO folds the rest; each fold keeps the
        value mod 0xFFFF and never turns a non-zero total into 0. The last beat carries the
        totals."""
        w = self.width
        sums = self.sums
        acc = {k: Signal(40, name=f"{k}_acc") for k in sums}
        udp_acc = Signal(16)
        start = {"ip": 0, "l4": s3.start, "inner": 0, "gre": 0}
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
            out.inner_ip_sum.eq(fold16(s5.inner)),
            out.udp_field.eq(s5.udp),
        ]
        if not self.rx:
            m.d.comb += out.gre_sum.eq(fold16(s5.gre))
        return s4, s5


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
        0..31, supplemental word in bits 64..95; the LSO and length words are ignored here).
    m_axis : Out(AxisSignature(W))
        As :class:`TxChecksumInsert`'s.
    encap : In(1)
        As :class:`TxChecksumInsert`'s.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, nbl.TxUser.width())),
            "m_axis": Out(AxisSignature(width)),
            "encap": In(1),
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
        m.d.comb += insert.encap.eq(self.encap)
        return m


#: What :class:`TxChecksumInsert` writes into a frame: up to four 16-bit fields, each with
#: whether it is written, its offset and its value (``gre_value``: on the way to the FIFO it
#: holds the GRE sum, then that sum with the new inner fields added, then folded; the record
#: in the FIFO holds the value written).
TX_RECORD = data.StructLayout({
    "fill_ip": 1, "fill_inner_ip": 1, "fill_l4": 1, "fill_gre": 1,
    "ip_at": 9, "inner_ip_at": 9, "l4_at": 10, "gre_at": 8,
    "ip_value": 16, "inner_ip_value": 16, "l4_value": 16, "gre_value": 18,
})


def tx_decision(m, p, encap):
    """The fields the model writes into a frame (``model.checksum.tx_checksum``, rules 1-8),
    from its :class:`SumPipeline` totals ``p`` (its last beat's payload) and the ``encap``
    enable: a :data:`TX_RECORD` whose ``gre_value`` is still the GRE sum."""
    hdr = p.hdr
    info = Signal(word_layout(nbl.ChecksumTx))
    supp = Signal(word_layout(nbl.SendSupplemental))
    m.d.comb += [info.eq(hdr.user[:32]), supp.eq(hdr.user[64:96])]
    want_tcp, want_udp = info.TcpChecksum, info.UdpChecksum
    any_l4 = want_tcp | want_udp
    version_ok = Mux(info.IsIPv4, hdr.is_ipv4, hdr.is_ipv6)
    # Rules 1, 2: one IP version named and it is the (outer) frame's, one L4 protocol, parsed.
    base = (info.IsIPv4 ^ info.IsIPv6) & ~(want_tcp & want_udp) & version_ok & \
        (effective_error(hdr, p.frame_len) == 0)
    enc = supp.IsEncapsulatedPacket

    def l4_ok(prefix):          # rule 2: the TCP/UDP header asked for is there (no fragment)
        proto = getattr(hdr, f"{prefix}l4_proto")
        return ~getattr(hdr, f"{prefix}is_fragment") & \
            (getattr(hdr, f"{prefix}l4_header_len") != 0) & \
            Mux(want_tcp, proto == IPPROTO_TCP, proto == IPPROTO_UDP)
    plain = base & ~enc & (~any_l4 | (l4_ok("") & ~(want_tcp & (info.TcpHeaderOffset != 0) &
                                                    (info.TcpHeaderOffset != hdr.l4))))
    # Rule 8: followed as NVGRE (the encapsulated packet task offload on), the supplemental
    # offsets agreeing with the headers (``nvgre.offsets_disagree``) ...
    inner_tcp_options = (hdr.inner_l4_proto == IPPROTO_TCP) & (hdr.inner_l4_header_len > 20)
    offsets_ok = ~supp.EncapsulatedPacketOffsetsValid | (
        (supp.InnerFrameOffset == hdr.inner_offset) &
        (supp.TransportIpHeaderRelativeOffset == hdr.inner_l3 - hdr.inner_offset) &
        (supp.TcpHeaderRelativeOffset == hdr.inner_l4 - hdr.inner_l3) &
        (supp.IsInnerIPv6 == hdr.inner_is_ipv6) &
        (supp.TcpOptionsPresent == inner_tcp_options))
    followed = encap & hdr.is_nvgre
    full = base & enc & followed & offsets_ok & (~any_l4 | l4_ok("inner_"))
    # ... else the outer IPv4 header only.
    outer_only = base & enc & ~followed
    l4_value = Signal(16)
    m.d.comb += l4_value.eq(~p.l4_sum)
    rec = Signal(TX_RECORD)
    m.d.comb += [
        rec.fill_ip.eq((plain | full | outer_only) & info.IpHeaderChecksum & hdr.is_ipv4),
        rec.fill_inner_ip.eq(full & info.IpHeaderChecksum & hdr.inner_is_ipv4),
        rec.fill_l4.eq((plain | full) & any_l4),
        rec.fill_gre.eq(full & (hdr.gre_checksum_offset != 0)),
        rec.ip_at.eq(hdr.l3 + 10),
        rec.inner_ip_at.eq(hdr.inner_l3 + 10),
        rec.l4_at.eq(Mux(enc, hdr.inner_l4, hdr.l4) + Mux(want_tcp, 16, 6)),
        rec.gre_at.eq(hdr.gre_checksum_offset),
        rec.ip_value.eq(~p.ip_sum),
        rec.inner_ip_value.eq(~p.inner_ip_sum),
        rec.l4_value.eq(Mux(want_udp & (l4_value == 0), 0xFFFF, l4_value)),
        rec.gre_value.eq(p.gre_sum),
    ]
    return rec


class TxRecordPipe(wiring.Component):
    """The GRE checksum from the GRE sum, worked out on the way into the record FIFO, one
    adder level a stage (no adder tree in front of a comparison): stage 1 adds the new inner
    field values to the GRE sum (it leaves out what those fields held), stage 2 folds; the
    FIFO write takes the complement. The GRE region's sum is never zero (its protocol word
    is 0x6558), so the fold is in 1..0xFFFF and its complement is the model's
    ``~ones_sum(...) & 0xFFFF`` (``nvgre.fill_gre_checksum``).

    ``s`` is taken every cycle it is valid (stage registers load every cycle); ``room`` says
    whether the FIFO has a place for a record pushed now and every record on the way
    (a flip-flop).
    """

    STAGES, DEPTH = 3, 16

    def __init__(self):
        super().__init__({
            "s": In(stream.Signature(TX_RECORD)),
            "m": Out(stream.Signature(TX_RECORD)),
            "room": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layout = stage_layout({"rec": TX_RECORD})
        d0, d1, d2 = (Signal(layout, name=f"record_d{i}") for i in range(3))
        m.d.sync += [d0.valid.eq(self.s.valid), d0.rec.eq(self.s.payload)]
        m.d.sync += [d1.valid.eq(d0.valid), d1.rec.eq(d0.rec)]
        r0 = d0.rec
        m.d.sync += d1.rec.gre_value.eq(r0.gre_value[:16] +
                                        Mux(r0.fill_inner_ip, r0.inner_ip_value, 0) +
                                        Mux(r0.fill_l4, r0.l4_value, 0))
        m.d.sync += [d2.valid.eq(d1.valid), d2.rec.eq(d1.rec),
                     d2.rec.gre_value.eq(fold16(d1.rec.gre_value))]
        m.submodules.fifo = records = StreamFIFO(TX_RECORD, self.DEPTH)
        out = records.s.payload
        m.d.comb += [records.s.valid.eq(d2.valid), out.eq(d2.rec),
                     out.gre_value.eq(~d2.rec.gre_value[:16])]
        m.d.sync += self.room.eq(records.level < self.DEPTH - self.STAGES - 3)
        wiring.connect(m, records.m, wiring.flipped(self.m))
        return m


class TxChecksumInsert(wiring.Component):
    """Transmit checksum insertion, store-and-forward with a buffer of more than a frame.

    It parses nothing: each frame's header record arrives beside it (``s_headers``), from
    the TX path's parser or from the segmenter for the segments it makes.

    Up to four fields a frame are written (:data:`TX_RECORD`): the (outer) IPv4 header
    checksum, the TCP/UDP checksum and, for an NVGRE frame asking for the encapsulated
    offload, the inner IPv4 header checksum and, last, the GRE checksum, which covers the
    inner fields written (``model.checksum`` rule 8).

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
        in bits 0..31, supplemental word in bits 64..95); taken with the frame's first beat.
    m_axis : Out(AxisSignature(W))
        Wire frames with the requested checksums written, or unchanged where the model
        leaves them so (``model.checksum.tx_checksum`` and :data:`TX_MAX_FRAME`).
    encap : In(1)
        The encapsulated packet task offload is operational (``tx_checksum``'s ``encap``);
        a frame follows the value of the cycle its last beat leaves the sums.
    """

    #: Entries of the FIFO behind the frame buffer's read register: with 6 (reads stop at 4
    #: held) the FIFO ran dry once while reads restarted after the first record came
    #: (64-byte frames at W=64: 64 beats in 65 cycles, ``tests/test_bench.py``).
    READ_DEPTH = 8

    @staticmethod
    def buffer_depth(max_beats):
        """Entries of the frame buffer's memory: the power of two above a maximum frame (the
        next frame streams in while one goes out; the read waits only for a record, a few
        cycles after a frame's last beat). A power of two of at most 2048 entries is one
        ECP5 block RAM deep at every W (9 bits x 2048, 18 x 1024, 36 x 512), so the RAM's
        outputs go into the read register with no mux between RAMs in front of it (the
        RAM's clock-to-out is most of a cycle)."""
        return 1 << max_beats.bit_length()

    def __init__(self, width=64):
        self.width = check_width(width)
        self.max_beats = TX_MAX_FRAME * 8 // width
        self.buffer_beats = self.buffer_depth(self.max_beats)
        uw = nbl.TxUser.width()
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(uw))),
            "m_axis": Out(AxisSignature(width)),
            "encap": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        uw = nbl.TxUser.width()
        m.submodules.sums = sums = SumPipeline(w, uw, rx=False)
        wiring.connect(m, wiring.flipped(self.s_axis), sums.s_axis)
        wiring.connect(m, wiring.flipped(self.s_headers), sums.s_headers)

        beat_w = len(Signal(axis_layout(w)).as_value())
        # ``SyncFIFOBuffered`` keeps ``depth - 1`` entries in its memory and reads it straight
        # into ``r_data`` (``_send`` registers that).
        m.submodules.frames = frames = fifo.SyncFIFOBuffered(width=beat_w,
                                                             depth=self.buffer_beats + 1)
        m.submodules.records = records = TxRecordPipe()
        p = sums.m_axis.payload
        rec = tx_decision(m, p, self.encap)

        # Into the buffer; the record goes when the frame is complete, or as a pass-through
        # record as soon as the frame proves longer than TX_MAX_FRAME (then nothing waits).
        count = Signal(range(self.max_beats + 1))
        early = Signal()            # this frame's pass-through record has been sent
        take = Signal()
        beat = p.beat
        oversize = count == self.max_beats
        push_record = Mux(early, 0, beat.last | oversize)
        # A beat is taken while the buffer and the record FIFO both have room, each a
        # flip-flop (a cycle late: the buffer's level grows by at most one a cycle), whether
        # or not the beat pushes a record: ``ready`` fans out to the sums' output register,
        # so nothing but an AND of two flip-flops decides it.
        frames_room = Signal(init=1)
        m.d.sync += frames_room.eq(frames.level < self.buffer_beats - 1)
        m.d.comb += [
            take.eq(sums.m_axis.valid & frames_room & records.room),
            sums.m_axis.ready.eq(frames_room & records.room),
            frames.w_en.eq(take),
            frames.w_data.eq(beat.as_value()),
            records.s.valid.eq(take & push_record),
            records.s.payload.eq(Mux(oversize, 0, rec.as_value())),   # oversize: pass through
        ]
        with m.If(take):
            with m.If(beat.last):
                m.d.sync += [count.eq(0), early.eq(0)]
            with m.Else():
                m.d.sync += count.eq(Mux(oversize, count, count + 1))
                with m.If(oversize):
                    m.d.sync += early.eq(1)
        self._send(m, frames, records.m, beat_w)
        return m

    #: The fields a record writes, from the first written to the last (a later one wins
    #: where two would share a word).
    FIELDS = ("ip", "inner_ip", "l4", "gre")

    def _send(self, m, frames, records, beat_w):
        """Out of the buffer, patching the fields on their beats."""
        w = self.width
        out = self.m_axis
        # The buffer's read data goes straight into a register (a block RAM's output is slow
        # on its own: nothing stands between it and the flip-flops), then into a small FIFO
        # that never refuses it: an entry is read only while that FIFO has room for it and
        # every entry on the way (``read_room``, a flip-flop a cycle late).
        depth = self.READ_DEPTH
        m.submodules.buffered = buffered = StreamFIFO(axis_layout(w), depth)
        read, read_valid, read_room = Signal(), Signal(), Signal(init=1)
        read_data = Signal(beat_w)
        m.d.sync += [read_room.eq(buffered.level < depth - 2),
                     read_valid.eq(read), read_data.eq(frames.r_data)]
        m.d.comb += [read.eq(frames.r_rdy & read_room), frames.r_en.eq(read),
                     buffered.s.valid.eq(read_valid), buffered.s.payload.eq(read_data)]
        rd = buffered.m.payload

        # The frame going out has its record in a register (``current``), loaded from the
        # record FIFO before its first beat or as its last beat leaves; which field each
        # 16-bit word of the beat at the FIFO's head takes (``picks``) is a register too,
        # worked out for the next beat as a beat leaves. The output beat is then an AND-OR
        # of registers.
        current = Signal(TX_RECORD)
        current_valid = Signal()
        words = w // 16
        picks = Signal(data.ArrayLayout(len(self.FIELDS), words))
        following = Signal(range(self.max_at_beat + 2))  # the beat after the head's
        send = Signal()
        load = Signal()
        m.d.comb += [
            send.eq(buffered.m.valid & current_valid & out.ready),
            load.eq((~current_valid | (send & rd.last)) & records.valid),
            out.valid.eq(buffered.m.valid & current_valid),
            buffered.m.ready.eq(send),
            records.ready.eq(load),
        ]
        with m.If(load):
            m.d.sync += [current.eq(records.payload), current_valid.eq(1), following.eq(1),
                         picks.eq(self._picks(records.payload, 0))]
        with m.Elif(send):
            with m.If(rd.last):
                m.d.sync += [current_valid.eq(0), following.eq(1)]
            with m.Else():
                m.d.sync += [picks.eq(self._picks(current, following)),
                             following.eq(Mux(following > self.max_at_beat, following,
                                              following + 1))]

        patched = Signal(w)
        for k in range(words):
            value = Mux(picks[k].any(), 0, Cat(rd.data[16 * k + 8:16 * k + 16],
                                               rd.data[16 * k:16 * k + 8]))   # BE word
            for f, name in enumerate(self.FIELDS):
                value = value | Mux(picks[k][f], getattr(current, f"{name}_value")[:16], 0)
            m.d.comb += patched[16 * k:16 * k + 16].eq(Cat(value[8:16], value[0:8]))
        m.d.comb += [
            out.payload.data.eq(patched),
            out.payload.keep.eq(rd.keep),
            out.payload.last.eq(rd.last),
        ]

    @property
    def max_at_beat(self):
        """The last beat a field of :data:`TX_RECORD` can be on (its offsets' widths)."""
        widest = max(Shape.cast(TX_RECORD[f"{name}_at"].shape).width for name in self.FIELDS)
        return ((1 << widest) - 1) // (self.width // 8)

    def _picks(self, record, beat):
        """For each 16-bit word of beat number ``beat`` of the frame of ``record``: one-hot,
        the field written there (none: the word is the frame's), the last of ``FIELDS``
        where two share a word."""
        nbytes = self.width // 8
        shift = (nbytes - 1).bit_length()
        on_beat = {name: getattr(record, f"fill_{name}") &
                   (getattr(record, f"{name}_at")[shift:] == beat) for name in self.FIELDS}
        result = []
        for k in range(self.width // 16):
            taken = C(0)
            word = []
            for name in reversed(self.FIELDS):
                here = on_beat[name] & (getattr(record, f"{name}_at")[1:shift] == k) & ~taken
                word.append(here)
                taken = taken | here
            result.append(Cat(*reversed(word)))
        return Cat(*result)
