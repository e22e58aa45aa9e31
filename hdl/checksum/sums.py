"""The sums of a frame's checksum regions, taken as it streams (:class:`SumPipeline`), and
the beat-lane helpers the units that mask byte ranges of a beat share."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.parse import ParseError

from ..axis import AxisSignature, axis_layout, check_width
from ..layouts import word_layout
from ..onesum import add_tree, beat_words, fold16, group_sums
from ..parse import HEADERS_LAYOUT
from ..stream import StreamFIFO, stage_layout

__all__ = ["range_mask", "beat_lane", "lane_mask", "field_lane_layout", "field_lane",
           "field_mask", "SumPipeline", "effective_error"]


def range_mask(pos, lo, hi, nbytes):
    """Bits ``i`` of a beat at frame offset ``pos`` whose byte ``pos + i`` is in [lo, hi)."""
    a = Signal(signed(22))
    b = Signal(signed(22))
    mask = Signal(nbytes)
    stmts = [a.eq(lo - pos), b.eq(hi - pos)]
    for i in range(nbytes):
        stmts.append(mask[i].eq((a <= i) & (b > i)))
    return mask, stmts


def beat_lane(rel, nbytes):
    """Where a frame offset falls in a beat, from ``rel`` (signed: the offset less the beat's
    frame offset): its lane; 0 when it is before the beat, ``nbytes`` when past it
    (``range(nbytes + 1)``). A byte range [lo, hi) holds lane ``i`` when
    ``beat_lane(lo) <= i < beat_lane(hi)`` (:func:`lane_mask`)."""
    return Mux(rel < 0, 0, Mux(rel > nbytes, nbytes, rel[:nbytes.bit_length()]))


def lane_mask(lo_lane, hi_lane, nbytes):
    """The beat's bytes in a range whose ends are ``beat_lane`` values."""
    return Cat(*[(lo_lane <= i) & (hi_lane > i) for i in range(nbytes)])


def field_lane_layout(nbytes):
    """Where a 16-bit field at an even frame offset is in a beat (:func:`field_lane`)."""
    return data.StructLayout({"in_beat": 1, "word": range(nbytes // 2)})


def field_lane(rel, nbytes):
    """The ``field_lane_layout`` value of the field at an even frame offset in a beat, from
    ``rel`` (signed: that offset less the beat's frame offset)."""
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
        ends, s1 = self._lanes(m, s0)
        s2 = self._masks(m, s1)
        s3, s4 = self._group_sums(m, s2)
        s5, s6 = self._totals(m, s4, out_fifo.s)
        stages = (s0, ends, s1, s2, s3, s4, s5, s6)
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
        """Stages 1 and 2 (``ends``, then ``lanes``): where each byte range and 16-bit field
        the masks need falls in the beat, registered (:func:`beat_lane`,
        :func:`field_lane`): the additions in the first, the subtraction of the beat's
        position in the second, so that the masks (stage 3) are
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
        # The range ends and field offsets less the beat's position, in registers of a stage
        # of their own (an addition and a subtraction each, two carry chains), so that the
        # lanes stage only clamps (it subtracted too: the insert unit's critical path).
        offsets = {**{f"{name}_{end}": value for name, pair in ranges.items()
                      for end, value in zip(("lo", "hi"), pair)}, **fields}
        pos_bits = 20
        carried = {"beat": axis_layout(self.width), "hdr": HEADERS_LAYOUT(self.user_width),
                   "pos": pos_bits, "first": 1, "view": self.VIEW_LAYOUT,
                   "tx": self.TX_FIELDS_LAYOUT}
        ends = Signal(stage_layout({**carried, "rel": data.StructLayout(
            {name: signed(pos_bits + 1) for name in offsets})}), name="ends")
        m.d.sync += [ends.valid.eq(s0.valid), ends.beat.eq(s0.beat), ends.hdr.eq(hdr),
                     ends.pos.eq(pos), ends.first.eq(s0.first), ends.view.eq(view),
                     ends.tx.eq(s0.tx)]
        # exact: offsets narrower than the position less the 20-bit position
        assert all(len(Value.cast(value)) < pos_bits for value in offsets.values())
        m.d.sync += [getattr(ends.rel, name).eq(value - pos) for name, value in offsets.items()]

        lanes_layout = data.StructLayout({
            **{f"{name}_{end}": range(nbytes + 1) for name in ranges for end in ("lo", "hi")},
            **{name: field_lane_layout(nbytes) for name in fields}})
        s1 = Signal(stage_layout({**carried, "lanes": lanes_layout}), name="lanes")
        m.d.sync += [s1.valid.eq(ends.valid), s1.beat.eq(ends.beat), s1.hdr.eq(ends.hdr),
                     s1.pos.eq(ends.pos), s1.first.eq(ends.first), s1.view.eq(ends.view),
                     s1.tx.eq(ends.tx)]
        for name in ranges:
            for end in ("lo", "hi"):
                m.d.sync += getattr(s1.lanes, f"{name}_{end}").eq(
                    beat_lane(getattr(ends.rel, f"{name}_{end}"), nbytes))
        for name in fields:
            m.d.sync += getattr(s1.lanes, name).eq(field_lane(getattr(ends.rel, name), nbytes))
        return ends, s1

    def _masks(self, m, s1):
        """Stage 3: the beat's byte masks of each sum and its word at ``l4 + 6`` (the UDP
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
        """Stages 4 and 5: the masked lane words summed in groups of four, then the groups
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
        """Stage 6 accumulates per frame; stage 7 folds the 40-bit totals once (their 16-bit
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
