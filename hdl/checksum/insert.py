"""Transmit checksum insertion: what the model writes into a frame (:func:`tx_decision`,
:data:`TX_RECORD`), the GRE checksum on the way to the record FIFO (:class:`TxRecordPipe`) and
the store-and-forward unit that writes the fields (:class:`TxChecksumInsert`)."""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.parse import IPPROTO_TCP, IPPROTO_UDP

from ..axis import AxisSignature, axis_layout, check_width
from ..layouts import word_layout
from ..onesum import fold16
from ..parse import HEADERS_LAYOUT
from ..stream import StreamFIFO, stage_layout
from .sums import SumPipeline, effective_error

__all__ = ["TX_RECORD", "tx_decision", "TxRecordPipe", "TxChecksumInsert"]


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
