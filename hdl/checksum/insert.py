"""Transmit checksum insertion: what the model writes into a frame (:func:`tx_decision`,
:data:`TX_RECORD`), the GRE checksum on the way to the record FIFO (:class:`TxRecordPipe`) and
the store-and-forward unit that writes the fields (:class:`TxChecksumInsert`)."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.parse import IPPROTO_TCP, IPPROTO_UDP

from ..axis import AxisSignature, axis_layout, check_width
from ..layouts import word_layout
from ..onesum import fold16
from ..parse import HEADERS_LAYOUT
from ..stream import FrameBuffer, RegisterSlice, StreamFIFO, stage_layout
from .sums import SumPipeline

__all__ = ["TX_RECORD", "TX_FACTS", "TX_CASES", "tx_facts", "tx_cases", "tx_decision",
           "TxRecordPipe", "TxChecksumInsert"]


#: What :class:`TxChecksumInsert` writes into a frame: up to four 16-bit fields, each with
#: whether it is written, its offset and its value (``gre_value``: on the way to the FIFO it
#: holds the GRE sum, then that sum with the new inner fields added, then folded; the record
#: in the FIFO holds the value written).
TX_RECORD = data.StructLayout({
    "fill_ip": 1, "fill_inner_ip": 1, "fill_l4": 1, "fill_gre": 1,
    "ip_at": 9, "inner_ip_at": 9, "l4_at": 10, "gre_at": 8,
    "ip_value": 16, "inner_ip_value": 16, "l4_value": 16, "gre_value": 18,
})


#: The facts :func:`tx_decision` makes a frame's record from, each a comparison or two of
#: its :class:`SumPipeline` totals, registered (``TxRecordPipe``'s first stage) so that the
#: decision and the comparisons are not one path: ``header_ok`` (rule 1: one IP version named
#: and it is the frame's, not both TCP and UDP), ``parsed`` (no parse error) and
#: ``past_frame`` (the datagram runs past the frame: ``sums.effective_error``),
#: ``l4_ok``/``inner_l4_ok`` (rule 2: the TCP/UDP header asked for is there, no
#: fragment), ``tcp_offset_set``/``tcp_offset_is_l4`` (TcpHeaderOffset non-zero, the
#: parser's), ``offsets_agree``
#: (rule 8: each supplemental offset against the headers; the two relative offsets are
#: compared a stage later, ``TxRecordPipe``: a subtraction, then a comparison),
#: ``pass_through`` (longer than TX_MAX_FRAME: nothing is written).
TX_FACTS = data.StructLayout({
    "ip_checksum": 1, "want_tcp": 1, "want_udp": 1, "encapsulated": 1, "followed": 1,
    "is_ipv4": 1, "inner_is_ipv4": 1, "gre_checksum_on": 1,
    "header_ok": 1, "parsed": 1, "past_frame": 1, "l4_ok": 1, "inner_l4_ok": 1,
    "tcp_offset_set": 1, "tcp_offset_is_l4": 1,
    "offsets_checked": 1, "offsets_agree": 5, "pass_through": 1,
    "inner_l3_relative": 8, "inner_l4_relative": 9,
    "inner_l3_relative_given": 8, "inner_l4_relative_given": 8,
})


def tx_facts(m, p, encap, pass_through):
    """The :data:`TX_FACTS` of a frame (``model.checksum.tx_checksum``, rules 1-8) from its
    :class:`SumPipeline` totals ``p`` (its last beat's payload) and the ``encap`` enable,
    and a :data:`TX_RECORD` of its offsets and values, fills not yet decided
    (:func:`tx_decision`), ``gre_value`` still the GRE sum."""
    hdr = p.hdr
    info = Signal(word_layout(nbl.ChecksumTx))
    supp = Signal(word_layout(nbl.SendSupplemental))
    m.d.comb += [info.eq(hdr.user[:32]), supp.eq(hdr.user[64:96])]
    want_tcp, want_udp = info.TcpChecksum, info.UdpChecksum

    def l4_ok(prefix):
        proto = getattr(hdr, f"{prefix}l4_proto")
        return ~getattr(hdr, f"{prefix}is_fragment") & \
            (getattr(hdr, f"{prefix}l4_header_len") != 0) & \
            Mux(want_tcp, proto == IPPROTO_TCP, proto == IPPROTO_UDP)
    inner_tcp_options = (hdr.inner_l4_proto == IPPROTO_TCP) & (hdr.inner_l4_header_len > 20)
    facts = Signal(TX_FACTS)
    m.d.comb += [
        facts.ip_checksum.eq(info.IpHeaderChecksum),
        facts.want_tcp.eq(want_tcp), facts.want_udp.eq(want_udp),
        facts.encapsulated.eq(supp.IsEncapsulatedPacket),
        facts.followed.eq(encap & hdr.is_nvgre),
        facts.is_ipv4.eq(hdr.is_ipv4), facts.inner_is_ipv4.eq(hdr.inner_is_ipv4),
        facts.gre_checksum_on.eq(hdr.gre_checksum_offset != 0),
        facts.header_ok.eq((info.IsIPv4 ^ info.IsIPv6) & ~(want_tcp & want_udp) &
                           Mux(info.IsIPv4, hdr.is_ipv4, hdr.is_ipv6)),
        # ``effective_error(hdr, p.frame_len) == 0``, in two registers (a comparison each).
        facts.parsed.eq(hdr.error == 0),
        facts.past_frame.eq(hdr.ip_end_unchecked & (hdr.ip_end > p.frame_len)),
        facts.l4_ok.eq(l4_ok("")),
        facts.inner_l4_ok.eq(l4_ok("inner_")),
        facts.tcp_offset_set.eq(info.TcpHeaderOffset != 0),
        facts.tcp_offset_is_l4.eq(info.TcpHeaderOffset == hdr.l4),
        facts.offsets_checked.eq(supp.EncapsulatedPacketOffsetsValid),
        facts.offsets_agree.eq(Cat(
            supp.InnerFrameOffset == hdr.inner_offset,
            C(1), C(1),             # the relative offsets: TxRecordPipe's second stage
            supp.IsInnerIPv6 == hdr.inner_is_ipv6,
            supp.TcpOptionsPresent == inner_tcp_options)),
        facts.pass_through.eq(pass_through),
        facts.inner_l3_relative.eq(hdr.inner_l3 - hdr.inner_offset),
        facts.inner_l4_relative.eq(hdr.inner_l4 - hdr.inner_l3),
        facts.inner_l3_relative_given.eq(supp.TransportIpHeaderRelativeOffset),
        facts.inner_l4_relative_given.eq(supp.TcpHeaderRelativeOffset),
    ]
    l4_value = Signal(16)
    m.d.comb += l4_value.eq(~p.l4_sum)
    rec = Signal(TX_RECORD)
    m.d.comb += [
        rec.ip_at.eq(hdr.l3 + 10),
        rec.inner_ip_at.eq(hdr.inner_l3 + 10),
        rec.l4_at.eq(Mux(supp.IsEncapsulatedPacket, hdr.inner_l4, hdr.l4) +
                     Mux(want_tcp, 16, 6)),
        rec.gre_at.eq(hdr.gre_checksum_offset),
        rec.ip_value.eq(~p.ip_sum),
        rec.inner_ip_value.eq(~p.inner_ip_sum),
        rec.l4_value.eq(Mux(want_udp & (l4_value == 0), 0xFFFF, l4_value)),
        rec.gre_value.eq(p.gre_sum),
    ]
    return facts, rec


#: The cases of ``model.checksum.tx_checksum`` a frame is in (at most one), from its
#: :data:`TX_FACTS`: ``plain`` (no encapsulation asked for, rules 1-7), ``full`` (NVGRE with
#: the encapsulated offload, rule 8), ``outer_only`` (encapsulation asked for, not followed:
#: the outer IPv4 header only); with the facts the fills need.
TX_CASES = data.StructLayout({"plain": 1, "full": 1, "outer_only": 1, "any_l4": 1,
                              "ip_checksum": 1, "is_ipv4": 1, "inner_is_ipv4": 1,
                              "gre_checksum_on": 1})


def tx_cases(m, facts):
    """The :data:`TX_CASES` of a frame from its registered :data:`TX_FACTS`."""
    f = facts
    any_l4 = f.want_tcp | f.want_udp
    base = f.header_ok & f.parsed & ~f.past_frame & ~f.pass_through
    # Rule 8: followed as NVGRE (the encapsulated packet task offload on), the supplemental
    # offsets agreeing with the headers (``nvgre.offsets_disagree``) ...
    offsets_ok = ~f.offsets_checked | f.offsets_agree.all()
    tcp_offset_ok = ~(f.want_tcp & f.tcp_offset_set & ~f.tcp_offset_is_l4)
    cases = Signal(TX_CASES)
    m.d.comb += [
        cases.plain.eq(base & ~f.encapsulated & (~any_l4 | (f.l4_ok & tcp_offset_ok))),
        cases.full.eq(base & f.encapsulated & f.followed & offsets_ok &
                      (~any_l4 | f.inner_l4_ok)),
        # ... else the outer IPv4 header only.
        cases.outer_only.eq(base & f.encapsulated & ~f.followed),
        cases.any_l4.eq(any_l4), cases.ip_checksum.eq(f.ip_checksum),
        cases.is_ipv4.eq(f.is_ipv4), cases.inner_is_ipv4.eq(f.inner_is_ipv4),
        cases.gre_checksum_on.eq(f.gre_checksum_on),
    ]
    return cases


def tx_decision(m, cases):
    """The fields the model writes into a frame, from its registered :data:`TX_CASES`: the
    ``fill_*`` bits of its :data:`TX_RECORD` (ip, inner_ip, l4, gre)."""
    c = cases
    fills = Signal(4)
    m.d.comb += fills.eq(Cat(
        (c.plain | c.full | c.outer_only) & c.ip_checksum & c.is_ipv4,
        c.full & c.ip_checksum & c.inner_is_ipv4,
        (c.plain | c.full) & c.any_l4,
        c.full & c.gre_checksum_on))
    return fills


class TxRecordPipe(wiring.Component):
    """A frame's record, worked out on the way into the record FIFO a little at a time, a
    comparison or an adder level a stage: stage 1 registers the :data:`TX_FACTS`
    (comparisons of the totals), stage 2 compares the relative offsets, stage 3 registers
    the :data:`TX_CASES`, stage 4 the fields written (:func:`tx_decision`), stage 5 adds the
    new inner field values to the GRE sum (it leaves out what those fields held) and settles
    which field a word takes where two would share it (the last of
    ``TxChecksumInsert.FIELDS``), stage 6 folds and finds whether each field is on the
    frame's beat 0, 1 or 2 (``on_beat``); the FIFO write takes the complement. The GRE
    region's sum is never zero (its protocol word is 0x6558), so the fold is in 1..0xFFFF and
    its complement is the model's ``~ones_sum(...) & 0xFFFF`` (``nvgre.fill_gre_checksum``).
    The record in the FIFO has ``fill_*`` only for the fields that stay written (a word two
    fields share is the later one's).

    ``s`` is taken every cycle it is valid (stage registers load every cycle); ``room_ahead``
    says whether the FIFO has a place for a record pushed next cycle and every record on the
    way (a comparison of its level, for the producer to register with its own conditions).

    Parameters
    ----------
    width : int
        Data width W (a beat's bytes, for ``on_beat``).
    """

    STAGES, DEPTH = 6, 16

    #: A record in the FIFO: ``on_beat[f][b]``, field ``f`` of ``TxChecksumInsert.FIELDS``
    #: is on the frame's beat ``b``.
    QUEUED = data.StructLayout({"rec": TX_RECORD, "on_beat": data.ArrayLayout(3, 4)})

    def __init__(self, width):
        self.width = check_width(width)
        super().__init__({
            "s": In(stream.Signature(data.StructLayout({"facts": TX_FACTS,
                                                         "rec": TX_RECORD}))),
            "m": Out(stream.Signature(self.QUEUED)),
            "room_ahead": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        facts = Signal(stage_layout({"facts": TX_FACTS, "rec": TX_RECORD}), name="record_facts")
        cases = Signal(stage_layout({"cases": TX_CASES, "rec": TX_RECORD}), name="record_cases")
        layout = stage_layout({"rec": TX_RECORD})
        decided, gre_added, folded = (Signal(layout, name=f"record_{stage}")
                                      for stage in ("decided", "gre_added", "folded"))
        compared = Signal(stage_layout({"facts": TX_FACTS, "rec": TX_RECORD}),
                          name="record_compared")
        m.d.sync += [facts.valid.eq(self.s.valid), facts.facts.eq(self.s.payload.facts),
                     facts.rec.eq(self.s.payload.rec)]
        given = facts.facts
        m.d.sync += [compared.valid.eq(facts.valid), compared.facts.eq(given),
                     compared.rec.eq(facts.rec),
                     compared.facts.offsets_agree[1].eq(
                         given.inner_l3_relative_given == given.inner_l3_relative),
                     compared.facts.offsets_agree[2].eq(
                         given.inner_l4_relative_given == given.inner_l4_relative)]
        m.d.sync += [cases.valid.eq(compared.valid), cases.cases.eq(tx_cases(m, compared.facts)),
                     cases.rec.eq(compared.rec)]
        m.d.sync += [decided.valid.eq(cases.valid), decided.rec.eq(cases.rec),
                     Cat(decided.rec.fill_ip, decided.rec.fill_inner_ip, decided.rec.fill_l4,
                         decided.rec.fill_gre).eq(tx_decision(m, cases.cases))]
        rec = decided.rec
        m.d.sync += [gre_added.valid.eq(decided.valid), gre_added.rec.eq(rec),
                     gre_added.rec.gre_value.eq(rec.gre_value[:16]
                                                + Mux(rec.fill_inner_ip, rec.inner_ip_value, 0)
                                                + Mux(rec.fill_l4, rec.l4_value, 0))]
        self._keep_last_of_shared_words(m, cases.rec, rec, gre_added.rec)
        m.d.sync += [folded.valid.eq(gre_added.valid), folded.rec.eq(gre_added.rec),
                     folded.rec.gre_value.eq(fold16(gre_added.rec.gre_value))]
        on_beat = Signal(data.ArrayLayout(3, 4))
        beat_shift = (self.width // 8 - 1).bit_length()    # a frame offset's beat bits
        for f, name in enumerate(TxChecksumInsert.FIELDS):
            at = getattr(gre_added.rec, f"{name}_at")
            m.d.sync += on_beat[f].eq(Cat(*[at[beat_shift:] == b for b in range(3)]))
        m.submodules.fifo = records = StreamFIFO(self.QUEUED, self.DEPTH)
        out = records.s.payload
        m.d.comb += [records.s.valid.eq(folded.valid), out.rec.eq(folded.rec),
                     out.rec.gre_value.eq(~folded.rec.gre_value[:16]), out.on_beat.eq(on_beat)]
        m.d.comb += self.room_ahead.eq(records.level < self.DEPTH - self.STAGES - 3)
        wiring.connect(m, records.m, wiring.flipped(self.m))
        return m

    @staticmethod
    def _keep_last_of_shared_words(m, earlier, record, registered):
        """Into ``registered``'s fills: ``record``'s, less each field a later field of
        ``TxChecksumInsert.FIELDS`` overwrites (the same 16-bit word of the frame). Which
        fields share a word is compared a stage before (``earlier``: the same offsets) and
        registered, so this stage is an AND-OR of flip-flops."""
        fields = TxChecksumInsert.FIELDS
        for i, name in enumerate(fields):
            overwritten = C(0)
            for later in fields[i + 1:]:
                same_word = Signal(name=f"{name}_word_is_{later}s")
                m.d.sync += same_word.eq(getattr(earlier, f"{name}_at")[1:] ==
                                         getattr(earlier, f"{later}_at")[1:])
                overwritten = overwritten | (getattr(record, f"fill_{later}") & same_word)
            m.d.sync += getattr(registered, f"fill_{name}").eq(
                getattr(record, f"fill_{name}") & ~overwritten)


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
    #: (64-byte frames at W=64: 64 beats in 65 cycles, ``tests/test_bench.py``). 9 since the
    #: frame buffer's read takes a cycle more (:class:`FrameBuffer`): reads still stop at 6
    #: held, as with 8 before (one LUT RAM deep either way).
    READ_DEPTH = 9

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
        m.submodules.frames = frames = FrameBuffer(beat_w, self.buffer_beats)
        m.submodules.records = records = TxRecordPipe(w)
        p = sums.m_axis.payload

        # Into the buffer; the record goes when the frame is complete, or as a pass-through
        # record as soon as the frame proves longer than TX_MAX_FRAME (then nothing waits).
        count = Signal(range(self.max_beats))
        oversize = Signal()         # this frame has had TX_MAX_FRAME bytes (a flip-flop)
        early = Signal()            # this frame's pass-through record has been sent
        take = Signal()
        beat = p.beat
        push_record = Mux(early, 0, beat.last | oversize)
        facts, rec = tx_facts(m, p, self.encap, pass_through=oversize)
        # A beat is taken while the buffer and the record FIFO both have room: one flip-flop
        # (``accepting``), from both levels a cycle late (each grows by at most one a cycle),
        # whether or not the beat pushes a record: ``ready`` fans out to the sums' output
        # register, so nothing but a flip-flop decides it.
        accepting = Signal(init=1)
        m.d.sync += accepting.eq((frames.level < self.buffer_beats - 1) & records.room_ahead)
        m.d.comb += [
            take.eq(sums.m_axis.valid & accepting),
            sums.m_axis.ready.eq(accepting),
            frames.w_en.eq(take),
            frames.w_data.eq(beat.as_value()),
            records.s.valid.eq(take & push_record),
            records.s.payload.facts.eq(facts), records.s.payload.rec.eq(rec),
        ]
        with m.If(take):       # the enable alone, the choice inside (fewer logic levels)
            m.d.sync += [
                count.eq(Mux(beat.last | oversize, 0, count + 1)),
                oversize.eq(~beat.last & (oversize | (count == self.max_beats - 1))),
                early.eq(~beat.last & oversize),
            ]
        self._send(m, frames, records.m, beat_w)
        return m

    #: The fields a record writes, from the first written to the last (a later one wins
    #: where two would share a word).
    FIELDS = ("ip", "inner_ip", "l4", "gre")

    def _send(self, m, frames, records, beat_w):
        """Out of the buffer, patching the fields on their beats."""
        w = self.width
        out = self.m_axis
        # The buffer's read data (the block RAM's output, the cycle after the read) goes
        # straight into a register (a block RAM's output is slow on its own: nothing stands
        # between it and the flip-flops), then into a small FIFO that never refuses it: an
        # entry is read only while that FIFO has room for it and every entry on the way
        # (``read_room``, a flip-flop a cycle late: four reads not yet in its level).
        depth = self.READ_DEPTH
        m.submodules.buffered = buffered = StreamFIFO(axis_layout(w), depth)
        read, read_room = Signal(), Signal(init=1)
        ram_valid, read_valid = Signal(), Signal()
        read_data = Signal(beat_w)
        m.d.sync += [read_room.eq(buffered.level < depth - 3),
                     ram_valid.eq(read), read_valid.eq(ram_valid), read_data.eq(frames.r_data)]
        m.d.comb += [read.eq(frames.r_rdy & read_room), frames.r_en.eq(read),
                     buffered.s.valid.eq(read_valid), buffered.s.payload.eq(read_data)]
        # The beat at the head waits in a register slice, so that the FIFO's ``ready`` is a
        # flip-flop and the send decision reaches only the slice (it took 8 logic levels
        # through the FIFO's counts).
        m.submodules.head = head = RegisterSlice(axis_layout(w))
        wiring.connect(m, buffered.m, head.s)
        rd = head.m.payload
        current, current_valid, picks = self._patch_choices(m, records, head, rd.last)

        patched = Signal(w)
        for k in range(w // 16):
            value = Mux(picks[k].any(), 0, Cat(rd.data[16 * k + 8:16 * k + 16],
                                               rd.data[16 * k:16 * k + 8]))   # BE word
            for f, name in enumerate(self.FIELDS):
                value = value | Mux(picks[k][f], getattr(current, f"{name}_value")[:16], 0)
            m.d.comb += patched[16 * k:16 * k + 16].eq(Cat(value[8:16], value[0:8]))
        m.d.comb += [
            out.valid.eq(head.m.valid & current_valid),
            out.payload.data.eq(patched),
            out.payload.keep.eq(rd.keep),
            out.payload.last.eq(rd.last),
        ]

    @property
    def max_at_beat(self):
        """The last beat a field of :data:`TX_RECORD` can be on (its offsets' widths)."""
        widest = max(Shape.cast(TX_RECORD[f"{name}_at"].shape).width for name in self.FIELDS)
        return ((1 << widest) - 1) // (self.width // 8)

    def _patch_choices(self, m, records, head, head_last):
        """The record of the frame going out (``current``, loaded before its first beat or as
        its last beat leaves) and which field each 16-bit word of the beat at the head of
        ``head`` takes (``picks``, one-hot per word): registers, so the output beat is an
        AND-OR of registers. Returns ``current``'s record, its valid bit and ``picks``.

        Every decision here is a few LUTs from flip-flops: a record waits in a register
        slice (``upcoming``; the record FIFO's ``ready`` is then a flip-flop) with each
        field's word one-hot worked out (whether its beat is 0, 1 or 2 comes with it from
        the record FIFO); while a frame goes
        out, ``next_hit``/``after_hit`` say which fields are on the beats one and two after
        the head, and the field beats are compared with the beat three after (``ahead``), so
        a beat leaving shifts flags rather than comparing beat numbers."""
        w, fields = self.width, self.FIELDS
        words = w // 16
        shift = (w // 8 - 1).bit_length()        # a frame offset's bits within a beat
        upcoming_layout = data.StructLayout({
            "rec": TX_RECORD,
            "word": data.ArrayLayout(words, len(fields)),    # one-hot, zero when not written
            "on_beat": data.ArrayLayout(3, len(fields)),     # as TxRecordPipe.QUEUED's
        })
        m.submodules.upcoming = upcoming = RegisterSlice(upcoming_layout)
        offered = upcoming.s.payload
        queued = records.payload.rec
        m.d.comb += [upcoming.s.valid.eq(records.valid), records.ready.eq(upcoming.s.ready),
                     offered.rec.eq(queued), offered.on_beat.eq(records.payload.on_beat)]
        for f, name in enumerate(fields):
            at, fill = getattr(queued, f"{name}_at"), getattr(queued, f"fill_{name}")
            m.d.comb += offered.word[f].eq(Cat(*[fill & (at[1:shift] == k)
                                                 for k in range(words)]))

        current = Signal(upcoming_layout)
        current_valid = Signal()
        picks = Signal(data.ArrayLayout(len(fields), words))
        next_hit, after_hit = Signal(len(fields)), Signal(len(fields))
        # The beat three after the head; it stops past the last beat a field can be on.
        ahead = Signal(range(2 * (self.max_at_beat + 1)))

        up = upcoming.m.payload

        def picks_of(word, hit):
            return Cat(*[Cat(*[word[f][k] & hit[f] for f in range(len(fields))])
                         for k in range(words)])

        def on_beat(b):
            return Cat(*[up.on_beat[f][b] for f in range(len(fields))])

        # Every register here moves on one enable, ``advance``: a beat leaves, or no frame is
        # going out. What it takes is chosen by ``next_frame`` (no frame, or the head beat is
        # its last): the upcoming record (``current_valid`` then says whether there was one)
        # or the next beat's flags. The enable is then one LUT from flip-flops and each
        # choice a LUT (the field beats' comparison with ``ahead`` two).
        advance, next_frame = Signal(), Signal()
        m.d.comb += [
            advance.eq(~current_valid | (head.m.valid & self.m_axis.ready)),
            next_frame.eq(~current_valid | head_last),
            head.m.ready.eq(head.m.valid & current_valid & self.m_axis.ready),
            upcoming.m.ready.eq(advance & next_frame),
        ]
        with m.If(advance):     # the enable alone, the choice inside: DI a LUT or two
            with m.If(next_frame):
                m.d.sync += [
                    current.eq(up), current_valid.eq(upcoming.m.valid), ahead.eq(3),
                    picks.eq(picks_of(up.word, on_beat(0))),
                    next_hit.eq(on_beat(1)), after_hit.eq(on_beat(2)),
                ]
            with m.Else():
                m.d.sync += [
                    picks.eq(picks_of(current.word, next_hit)),
                    next_hit.eq(after_hit),
                    after_hit.eq(Cat(*[getattr(current.rec, f"{name}_at")[shift:] == ahead
                                       for name in fields])),
                    ahead.eq(Mux(ahead[-1], ahead, ahead + 1)),
                ]
        return current.rec, current_valid, picks
