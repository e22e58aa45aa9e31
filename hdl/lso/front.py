"""The segmenter's front: frames into the ring and the templates, header fields, the checks.

:class:`FrameWriter` takes a beat a cycle, writes it into the ring (and the first 256 bytes
into the frame's template slot), picks the header fields the checks need out of the beats as
they pass, and sums the pseudo-header addresses; :class:`SendChecks` turns those fields into
the frame's descriptor with the model's checks, all of them decided before the first segment
of the send may leave (the frame's length comes in its ``tuser``: DESIGN 2).
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import parse as mparse
from nicoffload.model.nvgre import IPPROTO_GRE
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.nbl import TxStatus

from ..axis import AxisSignature
from ..checksum import range_mask
from ..layouts import word_layout
from ..onesum import add_tree, beat_words, fold16
from ..parse import HEADERS_LAYOUT
from .common import (DESCRIPTOR, DROP, FRAME_END, LENGTH_WORD, LSO, LSO_CONFIG, MALFORMED_ERRORS,
                     MAX_HEADER, NSLOT, PASS, RING_BYTES, ROW_BITS, RST, SNAP_LIMIT, SYN,
                     TOO_LONG_ERRORS, TXU, URG, LENGTH_FLAGS, beat_bytes, big_endian, end_reason,
                     length_flags)

__all__ = ["HEADER_FIELDS", "FrameWriter", "SendChecks"]

#: What :class:`FrameWriter` hands to :class:`SendChecks` once a frame's template is complete:
#: the parser's record, where the frame is, and the header fields as the host wrote them.
HEADER_FIELDS = data.StructLayout({
    "rec": HEADERS_LAYOUT(TXU), "base": ROW_BITS, "slot": 4,
    "l2type": 16,                       # bytes 12..13 (802.3 length or EtherType/TPID)
    "total": 16, "ip_id": 16,           # IPv4 Total Length, Identification
    "seq": 32, "offset_flags": 16,      # TCP sequence number; data offset and flags
    "csum": 16, "urgent": 16,           # TCP checksum field, urgent pointer
    "pseudo_sum": 24,                   # source and destination addresses, summed
    # An encapsulated (NVGRE) send: the fields above are the inner headers' (the IP header
    # and the TCP header being segmented); these are the outer IP header's and GRE's.
    "outer_total": 16, "outer_ip_id": 16,   # outer IPv4 Total Length, Identification
    "gre_seq": 32,                      # GRE sequence number (when the S bit is set)
    "inner_l2type": 16,                 # inner frame's bytes 12..13
})

# The 16-bit header words the checks read: (name, header, offset in it). ``l3``/``l4``: the IP
# and TCP headers of the TCP packet being segmented (the inner ones of an NVGRE send);
# ``outer_l3``: the frame's IP header; ``gre_seq``: the GRE sequence number field;
# ``inner``: the inner frame's first byte.
_CAPTURED = (("total", "l3", 2), ("ip_id", "l3", 4), ("seq_hi", "l4", 4),
             ("seq_lo", "l4", 6), ("offset_flags", "l4", 12), ("csum", "l4", 16),
             ("urgent", "l4", 18), ("l2type", "frame", 12),
             ("outer_total", "outer_l3", 2), ("outer_ip_id", "outer_l3", 4),
             ("gre_seq_hi", "gre_seq", 0), ("gre_seq_lo", "gre_seq", 2),
             ("inner_l2type", "inner", 12))


def segmented_headers(rec):
    """Where the IP and TCP headers of the packet an LSO send segments are, from its parse
    record: the inner ones of an NVGRE send (IsEncapsulatedPacket, followed as NVGRE), else
    the frame's. A dict of ``l3``, ``l4``, ``is_ipv6``, ``pseudo_dst``."""
    inner = rec.user[64] & rec.is_nvgre        # SendSupplemental.IsEncapsulatedPacket
    return {name: Mux(inner, getattr(rec, f"inner_{name}"), getattr(rec, name))
            for name in ("l3", "l4", "is_ipv6", "pseudo_dst")}


class FrameWriter(wiring.Component):
    """Writes frames into the ring and templates, and reads their header fields on the way.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis, s_headers : In
        Frames and their parse records (the record is taken with the first beat).
    write_row, write_data, write_en : Out
        The ring row to write (the absolute row count ``wp``; the ring uses its low bits),
        the beat and the enable.
    template_addr, template_en : Out
        Where in the template memory the same beat goes (the first 256 bytes of a frame).
    wp : Out(ROW_BITS)
        Rows written so far.
    fp : In(ROW_BITS)
        Rows below ``fp`` may be overwritten (from the sequencer).
    frame_done : In(1)
        A frame has left the back (one fewer in flight).
    fields : Out(stream.Signature(HEADER_FIELDS))
        One entry per frame once its template is complete (no ``ready``: the consumer holds
        :data:`NSLOT` entries, as many as frames in flight).
    lengths : Out(stream.Signature(32))
        Each frame's length in bytes at its last beat (no ``ready``, as ``fields``).
    """

    def __init__(self, width):
        self.width = width
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(TXU))),
            "write_row": Out(ROW_BITS), "write_data": Out(width), "write_en": Out(1),
            "template_addr": Out(range(NSLOT * (MAX_HEADER * 8 // width))),
            "template_en": Out(1),
            "wp": Out(ROW_BITS), "fp": In(ROW_BITS), "frame_done": In(1),
            "fields": Out(stream.Signature(HEADER_FIELDS)),
            "lengths": Out(stream.Signature(FRAME_END)),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.width // 8
        lognb = (nb - 1).bit_length()
        hb = MAX_HEADER // nb                   # template beats
        depth = RING_BYTES // nb               # ring rows
        beat, rec = self.s_axis.payload, self.s_headers.payload

        first = Signal(init=1)                  # the next beat is a frame's first
        index = Signal(range(hb + 1))           # beat index in the frame, saturating at hb
        frame_bytes = Signal(32)
        base = Signal(ROW_BITS)
        slot = Signal(4)
        rec_kept = Signal(HEADERS_LAYOUT(TXU))
        in_flight = Signal(range(NSLOT + 1))
        # Room for a row, registered: a cycle late and a row short (``wp`` grows by at most
        # one a cycle and ``fp`` never falls), so ``take`` starts from flip-flops.
        room = Signal()
        m.d.sync += room.eq(self.wp - self.fp < depth - 1)
        take = Signal()
        gate = room & (~first | (self.s_headers.valid & (in_flight < NSLOT)))
        m.d.comb += [
            self.s_axis.ready.eq(gate),
            take.eq(self.s_axis.valid & gate),
            self.s_headers.ready.eq(take & first),
        ]
        m.d.sync += in_flight.eq(in_flight + (take & first) - self.frame_done)

        m.d.comb += [
            self.write_row.eq(self.wp), self.write_data.eq(beat.data), self.write_en.eq(take),
            self.template_addr.eq(slot * hb + index), self.template_en.eq(take & (index < hb)),
            self.lengths.valid.eq(take & beat.last),
            self.lengths.payload.bytes.eq(frame_bytes + beat_bytes(beat.keep, nb)),
            self.lengths.payload.last_row.eq(self.wp),
        ]
        # While ``first``, the record and the row are those of the frame's first beat when it
        # is taken (``first`` drops only with that take): the enables come from a flip-flop.
        with m.If(first):
            m.d.sync += [rec_kept.eq(rec), base.eq(self.wp)]
        with m.If(take):
            m.d.sync += self.wp.eq(self.wp + 1)
            with m.If(beat.last):
                m.d.sync += [first.eq(1), index.eq(0), frame_bytes.eq(0), slot.eq(slot + 1)]
            with m.Else():
                m.d.sync += [first.eq(0), index.eq(Mux(index == hb, index, index + 1)),
                             frame_bytes.eq(frame_bytes + nb)]

        # The header side (the captured words, the pseudo-header sum, the fields) works a
        # cycle behind the take, on the beat registered and on ``rec_kept``, the frame's
        # record from the cycle after its first beat: no path runs from the record port
        # through the choice of headers and the offsets' additions (6 logic levels).
        late = Signal(data.StructLayout({
            "take": 1, "first": 1, "complete": 1, "index": range(hb + 1),
            "beat": data.StructLayout({"data": self.width, "keep": nb}),
            "base": ROW_BITS, "slot": 4}), name="late")
        m.d.sync += [
            late.take.eq(take), late.first.eq(first), late.index.eq(index),
            late.complete.eq(take & (index < hb) & ((index == hb - 1) | beat.last)),
            late.beat.data.eq(beat.data), late.beat.keep.eq(beat.keep),
            late.base.eq(Mux(first, self.wp, base)), late.slot.eq(slot),
        ]
        captured = self._capture_fields(m, late.take, late.index, late.beat, rec_kept)
        self._pseudo_sum_and_fields(m, late.take & (late.index < hb), late.first, late.complete,
                                    late.beat, late.index << lognb, rec_kept, late.base,
                                    late.slot, captured)
        return m


    def _capture_fields(self, m, take, index, beat, rec):
        """Header words, each taken from its beat a cycle after the beat passes (here a cycle
        behind the take): the beat, its index and each word's offset (from the record) are
        registered first, so the choice is a comparison of registers. The captured words are complete a cycle after
        the template's last beat (``_pseudo_sum_and_fields`` reads them in its mask stage)."""
        w, nb = self.width, self.width // 8
        lognb = (nb - 1).bit_length()
        taken, taken_index, taken_data = Signal(), Signal.like(index), Signal(w)
        m.d.sync += [taken.eq(take), taken_index.eq(index), taken_data.eq(beat.data)]
        words = [big_endian(taken_data[16 * k:16 * k + 16]) for k in range(w // 16)]
        captured = {name: Signal(16, name=f"captured_{name}") for name, _, _ in _CAPTURED}
        tcp_side = segmented_headers(rec)
        bases = {"l3": tcp_side["l3"], "l4": tcp_side["l4"], "frame": C(0, 9),
                 "outer_l3": rec.l3, "gre_seq": rec.gre_seq_offset,
                 "inner": rec.inner_offset}
        offsets = [(name, bases[header] + at) for name, header, at in _CAPTURED]
        for name, offset in offsets:
            at = Signal(9, name=f"at_{name}")
            m.d.sync += at.eq(offset)
            with m.If(taken & (taken_index == at[lognb:])):
                m.d.sync += captured[name].eq(Array(words)[at[1:lognb]])
        return captured

    def _pseudo_sum_and_fields(self, m, summed, first, complete, beat, pos, rec, base,
                               slot, captured):
        """The pseudo-header addresses (IPv4: source and destination at l3 + 12; IPv6: source
        at l3 + 8 and the destination ``parse`` found), summed a beat at a time in six
        registered stages (bounds, relative bounds, mask, masked words, sum of the beat,
        running sum); a frame whose template is complete hands its fields to the checks when
        its sum is."""
        w, nb = self.width, self.width // 8
        bound_layout = data.StructLayout({
            "valid": 1, "first": 1, "complete": 1, "pos": 12, "data": w, "keep": nb,
            "ipv6": 1, "lo1": 9, "hi1": 9, "lo2": 9, "hi2": 9,
            "rec": HEADERS_LAYOUT(TXU), "base": ROW_BITS, "slot": 4})
        fields_layout = data.StructLayout({
            "valid": 1, "first": 1, "complete": 1, "fields": HEADER_FIELDS})
        bounds = Signal(bound_layout)
        tcp_side = segmented_headers(rec)
        l3, ipv6 = tcp_side["l3"], tcp_side["is_ipv6"]
        m.d.sync += [
            bounds.valid.eq(summed), bounds.first.eq(first), bounds.complete.eq(complete),
            bounds.pos.eq(pos), bounds.data.eq(beat.data), bounds.keep.eq(beat.keep),
            bounds.ipv6.eq(ipv6),
            bounds.lo1.eq(Mux(ipv6, l3 + 8, l3 + 12)),
            bounds.hi1.eq(Mux(ipv6, l3 + 24, l3 + 20)),
            bounds.lo2.eq(tcp_side["pseudo_dst"]), bounds.hi2.eq(tcp_side["pseudo_dst"] + 16),
            bounds.rec.eq(rec), bounds.base.eq(base), bounds.slot.eq(slot),
        ]
        # The bounds relative to the beat (subtractions, registered before the comparisons).
        relative = Signal(data.StructLayout({
            "valid": 1, "first": 1, "complete": 1, "data": w, "keep": nb, "ipv6": 1,
            "lo1": signed(14), "hi1": signed(14), "lo2": signed(14), "hi2": signed(14),
            "fields": HEADER_FIELDS}))
        rf = relative.fields
        m.d.sync += [
            relative.valid.eq(bounds.valid), relative.first.eq(bounds.first),
            relative.complete.eq(bounds.complete), relative.data.eq(bounds.data),
            relative.keep.eq(bounds.keep), relative.ipv6.eq(bounds.ipv6),
            relative.lo1.eq(bounds.lo1 - bounds.pos), relative.hi1.eq(bounds.hi1 - bounds.pos),
            relative.lo2.eq(bounds.lo2 - bounds.pos), relative.hi2.eq(bounds.hi2 - bounds.pos),
            rf.rec.eq(bounds.rec), rf.base.eq(bounds.base), rf.slot.eq(bounds.slot),
        ]
        # Mask: comparisons of registers with each byte's index. The header words the beat
        # captured are in their registers by now, and the next frame's are not yet (its first
        # beat's words land a cycle later).
        mask1, stmts1 = range_mask(0, relative.lo1, relative.hi1, nb)
        mask2, stmts2 = range_mask(0, relative.lo2, relative.hi2, nb)
        m.d.comb += stmts1 + stmts2
        # The mask is registered with the beat (a comparison's carry chain is the stage), and
        # applied to the beat's words in the next stage.
        mask = (mask1 | Mux(relative.ipv6, mask2, 0)) & relative.keep
        masked = Signal(fields_layout)
        byte_mask, masked_data = Signal(nb), Signal(w)
        mf = masked.fields
        m.d.sync += [
            masked.valid.eq(relative.valid), masked.first.eq(relative.first),
            masked.complete.eq(relative.complete), mf.eq(relative.fields),
            byte_mask.eq(mask), masked_data.eq(relative.data),
            mf.l2type.eq(captured["l2type"]), mf.total.eq(captured["total"]),
            mf.ip_id.eq(captured["ip_id"]), mf.seq.eq(Cat(captured["seq_lo"], captured["seq_hi"])),
            mf.offset_flags.eq(captured["offset_flags"]), mf.csum.eq(captured["csum"]),
            mf.urgent.eq(captured["urgent"]),
            mf.outer_total.eq(captured["outer_total"]), mf.outer_ip_id.eq(captured["outer_ip_id"]),
            mf.gre_seq.eq(Cat(captured["gre_seq_lo"], captured["gre_seq_hi"])),
            mf.inner_l2type.eq(captured["inner_l2type"]),
        ]
        # The beat's words, masked.
        worded = Signal(fields_layout)
        masked_words = Signal(w)
        m.d.sync += [worded.eq(masked),
                     masked_words.eq(Cat(*beat_words(masked_data, byte_mask, w)))]
        # Sum of the beat.
        summed_beat = Signal(fields_layout)
        beat_sum = Signal(16 + (w // 16).bit_length())
        m.d.sync += [summed_beat.eq(worded),
                     beat_sum.eq(add_tree([masked_words[16 * k:16 * k + 16]
                                           for k in range(w // 16)]))]
        # Running sum; the fields go out with the frame's total.
        pseudo = Signal(24)
        pseudo_now = Mux(summed_beat.first, 0, pseudo) + Mux(summed_beat.valid, beat_sum, 0)
        with m.If(summed_beat.valid):
            m.d.sync += pseudo.eq(pseudo_now)
        m.d.sync += [self.fields.valid.eq(summed_beat.valid & summed_beat.complete),
                     self.fields.payload.eq(summed_beat.fields),
                     self.fields.payload.pseudo_sum.eq(pseudo_now)]

# The checks' first stage: the LSO word decoded, the limits that apply, the header fields.
# ``l3``, ``l4``, ``ipv6``, ``hdr_end``, ``snap`` are of the packet being segmented (inner for
# an encapsulated send: ``segmented_headers``), ``outer_snap`` of the frame.
_DECODED = data.StructLayout({
    "valid": 1, "rec": HEADERS_LAYOUT(TXU), "base": ROW_BITS, "slot": 4, "lso": 1, "mss": 20,
    "header_offset": 10, "v2": 1, "want6": 1, "enabled": 1, "max_off": 32,
    "segments_less1": 16, "pseudo": 16, "hdr_end": 10, "snap": 1, "flags": 8, "urgent": 16,
    "csum": 16, "seq": 32, "ip_id": 16, "id_linux": 1, "total": 16,
    "encap": 1, "encap_on": 1, "l3": 8, "l4": 9, "ipv6": 1, "outer_snap": 1,
    # SNAP_LIMIT plus the frame's (outer) and the segmented packet's IP header offset: check
    # 12's bound is then one subtraction in the headers stage.
    "snap_room_outer": 12, "snap_room": 12,
    # The supplemental word's offsets: checked (EncapsulatedPacketOffsetsValid), its fields
    # that agree with the record, and the record's relative offsets to compare it with.
    "offsets_checked": 1, "offsets_agree": 1, "inner_ip_rel": signed(9),
    "inner_tcp_rel": signed(10), "outer_total": 16, "outer_ip_id": 16, "gre_seq": 32,
})

#: The model's checks of a send, as failure flags in its order (the headers stage registers
#: them, the products stage picks the first): a plain send's (``model.lso`` checks 2-9) and
#: an encapsulated send's (``model.nvgre_lso`` checks 1-9).
_PLAIN_CHECKS = ("disabled", "mss0", "parse_error", "fragment", "ip_version", "not_tcp",
                 "header_offset", "too_long", "flags", "urgent", "v2_total", "csum")
_ENCAP_CHECKS = ("encap_off", "v1", "disabled", "mss0", "parse_error", "fragment", "not_gre",
                 "not_nvgre", "inner_fragment", "inner_version", "inner_not_tcp",
                 "offsets", "too_long", "flags", "urgent", "outer_total", "inner_total",
                 "csum")
_CHECK_FLAGS = data.StructLayout({
    "plain": data.StructLayout({name: 1 for name in _PLAIN_CHECKS}),
    "encap": data.StructLayout({name: 1 for name in _ENCAP_CHECKS}),
    "parse_reason": 4, "walk_reason": 4,
})


def _first_failure(failures):
    """The code of the first (cond, code) of ``failures`` whose cond is set, 0 if none: a
    balanced tree of choices (log2 of the count deep), not a chain."""
    if len(failures) == 1:
        cond, code = failures[0]
        return Mux(cond, code, 0), cond
    half = len(failures) // 2
    left, left_any = _first_failure(failures[:half])
    right, right_any = _first_failure(failures[half:])
    return Mux(left_any, left, right), left_any | right_any


class SendChecks(wiring.Component):
    """The model's checks of a send, in the model's order, as five pipeline stages: those of
    ``model.lso`` for a plain send, those of ``model.nvgre_lso`` on the inner headers for an
    encapsulated one (IsEncapsulatedPacket; the parser's NVGRE fields, its ``lso_refusal``
    when the walk failed).

    Decode (the LSO word, the limits that apply, the pseudo-header sum folded, the
    supplemental offsets against the record), headers (``model.lso`` checks 2-9 or
    ``model.nvgre_lso`` checks 1-9 as failure flags, and two partial products of
    MinSegmentCount's bound), products (their sum, and the reason of the first check that
    fails), comparisons (check 9's LSOv1 Total
    Length against the length word, and the payload the length word gives against each limit
    of checks 10-12) and verdict (the first that fails): the descriptor says PASS, DROP with
    the model's reason, or LSO.

    Attributes
    ----------
    fields : In(stream.Signature(HEADER_FIELDS))
        One entry per frame (``ready`` is not used: a new entry at most every cycle).
    limits : In(LSO_CONFIG)
        Sampled at the decode stage.
    encap : In(1)
        The encapsulated packet task offload is operational (``LsoLimits.encap``); sampled at
        the decode stage.
    descriptors : Out(stream.Signature(DESCRIPTOR))
        One per frame, five cycles after its fields (``ready`` is not used).
    """

    def __init__(self):
        super().__init__({
            "fields": In(stream.Signature(HEADER_FIELDS)),
            "limits": In(LSO_CONFIG),
            "encap": In(1),
            "descriptors": Out(stream.Signature(DESCRIPTOR)),
        })

    def elaborate(self, platform):
        m = Module()
        decoded = self._decode(m)
        desc = self._sum_products(m, *self._check_headers(m, decoded))
        checked_valid, summed_valid, compared_valid = Signal(), Signal(), Signal()
        m.d.sync += [checked_valid.eq(decoded.valid), summed_valid.eq(checked_valid),
                     compared_valid.eq(summed_valid)]
        # The comparisons stage: the send's length against each limit, one carry chain each.
        compared, flags = Signal(DESCRIPTOR), Signal(LENGTH_FLAGS)
        m.d.sync += [compared.eq(desc)]
        m.d.sync += [getattr(flags, name).eq(value) for name, value in length_flags(desc).items()]
        # The verdict stage: the comparisons decide LSO or DROP.
        verdict = Signal(4)
        m.d.comb += verdict.eq(end_reason(compared, flags))
        out = self.descriptors
        m.d.sync += [out.valid.eq(compared_valid), out.payload.eq(compared)]
        m.d.sync += out.payload.single.eq(~flags.payload_over_mss)
        with m.If(compared.mode == LSO):
            m.d.sync += [out.payload.reason.eq(verdict),
                         out.payload.mode.eq(Mux(verdict != 0, DROP, LSO))]
        return m

    def _decode(self, m):
        f, cfg = self.fields.payload, self.limits
        rec = f.rec
        word = rec.user[32:64]
        supp = data.View(word_layout(nbl.SendSupplemental), rec.user[64:96])
        mss, v2, ipv6 = word[0:20], word[30], word[31]
        decoded = Signal(_DECODED)
        tcp_side = segmented_headers(rec)
        l3 = tcp_side["l3"]
        min_segments = Mux(v2, Mux(ipv6, cfg.v2_ipv6_min_segment_count,
                                   cfg.v2_ipv4_min_segment_count),
                           cfg.v1_ipv4_min_segment_count)

        def snap(l3_from_frame, l2type):    # LLC/SNAP, its IP header at l3_from_frame
            return (l3_from_frame == 26) | (l3_from_frame == 30) | \
                ((l3_from_frame == 22) & (l2type <= 1500))
        inner_tcp_options = (rec.inner_l4_proto == mparse.IPPROTO_TCP) & \
            (rec.inner_l4_header_len > 20)
        # The supplemental offsets against the record: the equalities of fields here, the
        # relative offsets subtracted here and compared in the headers stage.
        offsets_agree = ((supp.InnerFrameOffset == rec.inner_offset) &
                         (supp.IsInnerIPv6 == rec.inner_is_ipv6) &
                         (supp.TcpOptionsPresent == inner_tcp_options))
        encap = supp.IsEncapsulatedPacket
        m.d.sync += decoded.valid.eq(self.fields.valid)
        # Loaded every cycle: the fields are not looked at unless ``valid`` (no enable from
        # the fields' ``valid`` on some 500 flip-flops).
        m.d.sync += [
            decoded.rec.eq(rec), decoded.base.eq(f.base), decoded.slot.eq(f.slot),
            decoded.lso.eq(word != 0), decoded.mss.eq(mss),
            decoded.header_offset.eq(word[20:30]), decoded.v2.eq(v2),
            decoded.want6.eq(v2 & ipv6),
            decoded.enabled.eq(Mux(v2, Mux(ipv6, cfg.lso_v2_ipv6, cfg.lso_v2_ipv4),
                                   cfg.lso_v1_ipv4)),
            decoded.max_off.eq(Mux(v2, Mux(ipv6, cfg.v2_ipv6_max_offload_size,
                                           cfg.v2_ipv4_max_offload_size),
                                   cfg.v1_ipv4_max_offload_size)),
            decoded.segments_less1.eq(Mux(min_segments == 0, 0, min_segments - 1)),
            decoded.pseudo.eq(fold16(f.pseudo_sum + mparse.IPPROTO_TCP)),
            decoded.hdr_end.eq(Mux(encap, rec.inner_l4 + rec.inner_l4_header_len,
                                   rec.l4 + rec.l4_header_len)),
            decoded.snap.eq(Mux(encap, snap(rec.inner_l3 - rec.inner_offset,
                                            f.inner_l2type),
                                snap(rec.l3, f.l2type))),
            decoded.outer_snap.eq(snap(rec.l3, f.l2type)),
            decoded.flags.eq(f.offset_flags[0:8]), decoded.urgent.eq(f.urgent),
            decoded.csum.eq(f.csum), decoded.seq.eq(f.seq), decoded.ip_id.eq(f.ip_id),
            decoded.total.eq(f.total),
            # An NVGRE send's IDs advance by the "ndis" rule whatever the mode (DESIGN 3
            # "NVGRE", ``model.nvgre_lso``).
            decoded.id_linux.eq(cfg.id_linux & ~encap),
            decoded.encap.eq(encap), decoded.encap_on.eq(self.encap),
            decoded.l3.eq(l3), decoded.l4.eq(tcp_side["l4"]),
            decoded.snap_room_outer.eq(SNAP_LIMIT + rec.l3),
            decoded.snap_room.eq(SNAP_LIMIT + l3),
            decoded.ipv6.eq(tcp_side["is_ipv6"]),
            decoded.offsets_checked.eq(supp.EncapsulatedPacketOffsetsValid),
            decoded.offsets_agree.eq(offsets_agree),
            decoded.inner_ip_rel.eq(rec.inner_l3 - rec.inner_offset),
            decoded.inner_tcp_rel.eq(rec.inner_l4 - rec.inner_l3),
            decoded.outer_total.eq(f.outer_total), decoded.outer_ip_id.eq(f.outer_ip_id),
            decoded.gre_seq.eq(f.gre_seq),
        ]
        return decoded

    def _check_headers(self, m, d):
        """``model.lso`` checks 2-9 (but LSOv1's Total Length against the buffer) and
        ``model.nvgre_lso`` checks 1-9, as failure flags (registered; the next stage picks
        the first), and the descriptor's fields."""
        r = d.rec
        supp = data.View(word_layout(nbl.SendSupplemental), r.user[64:96])
        err = r.error
        err_reason = Mux(Cat(*[err == e for e in MALFORMED_ERRORS]).any(), TxStatus.MALFORMED,
                         Mux(Cat(*[err == e for e in TOO_LONG_ERRORS]).any(),
                             TxStatus.LSO_HEADERS_TOO_LONG, TxStatus.LSO_NOT_TCP))

        def ones(v):            # a one's-complement number: 0xFFFF and 0 are the same
            return Mux(v == 0xFFFF, 0, v)

        guarantees = {
            "too_long": d.hdr_end > MAX_HEADER, "flags": (d.flags & (URG | RST | SYN)) != 0,
            "urgent": d.urgent != 0, "csum": ones(d.csum) != ones(d.pseudo),
            "mss0": d.mss == 0, "disabled": ~d.enabled, "parse_error": err != 0,
            "fragment": r.is_fragment,
        }
        plain = guarantees | {
            "ip_version": Mux(d.want6, ~r.is_ipv6, ~r.is_ipv4),
            "not_tcp": (r.l4_proto != mparse.IPPROTO_TCP) | (r.l4_header_len == 0),
            "header_offset": d.header_offset != r.l4,
            "v2_total": r.is_ipv4 & d.v2 & (d.total != 0),
        }
        encap = guarantees | {
            "encap_off": ~d.encap_on, "v1": ~d.v2,
            "not_gre": ~r.is_nvgre & (r.l4_proto != IPPROTO_GRE),
            "not_nvgre": ~r.is_nvgre,
            "inner_fragment": r.inner_is_fragment,
            "inner_version": Mux(d.want6, ~r.inner_is_ipv6, ~r.inner_is_ipv4),
            "inner_not_tcp": (r.inner_l4_proto != mparse.IPPROTO_TCP) |
                             (r.inner_l4_header_len == 0),
            "offsets": d.offsets_checked & ~(
                d.offsets_agree & (supp.TransportIpHeaderRelativeOffset == d.inner_ip_rel) &
                (supp.TcpHeaderRelativeOffset == d.inner_tcp_rel)),
            "outer_total": r.is_ipv4 & (d.outer_total != 0),
            "inner_total": r.inner_is_ipv4 & (d.total != 0),
        }
        checks = Signal(_CHECK_FLAGS, name="failed_checks")
        m.d.sync += [getattr(checks.plain, name).eq(plain[name]) for name in _PLAIN_CHECKS]
        m.d.sync += [getattr(checks.encap, name).eq(encap[name]) for name in _ENCAP_CHECKS]
        m.d.sync += [checks.parse_reason.eq(err_reason), checks.walk_reason.eq(
            Mux(r.lso_refusal != 0, r.lso_refusal, TxStatus.LSO_NOT_NVGRE))]

        hdr_end = d.hdr_end[:9]
        length = r.user[LENGTH_WORD]
        # The longest segment the checksum stage and an 802.3 length allow (check 12): the
        # outer 802.3 length is the tighter when both frames are LLC/SNAP
        # (SNAP_LIMIT - (hdr_end - l3), the sum worked out in the decode stage).
        snap_room = Mux(d.encap & d.outer_snap, d.snap_room_outer, d.snap_room)
        # The record the frame leaves with carries this decision of the encapsulated packet
        # task offload: ``is_nvgre`` only if it was on when the send was decoded, so the
        # checksum stage downstream treats every frame as its send was decided, whenever
        # the configuration changes (``TxPath``: its checksum stage's ``encap`` is tied on).
        decided_rec = Signal(HEADERS_LAYOUT(TXU))
        m.d.comb += [decided_rec.eq(r), decided_rec.is_nvgre.eq(r.is_nvgre & d.encap_on)]
        desc = Signal(DESCRIPTOR)
        m.d.sync += [
            desc.mode.eq(Mux(d.lso, LSO, PASS)), desc.base.eq(d.base), desc.slot.eq(d.slot),
            desc.user.eq(r.user), desc.hdr_rec.eq(decided_rec.as_value()[:HEADERS_LAYOUT(0).size]),
            desc.v2.eq(d.v2), desc.total.eq(d.total),
            desc.l3.eq(d.l3), desc.hdr_end.eq(hdr_end), desc.l4.eq(d.l4),
            desc.ipv6.eq(d.ipv6), desc.snap.eq(d.snap), desc.mss.eq(d.mss),
            desc.max_off.eq(d.max_off),
            desc.smax.eq(Mux(d.snap | (d.encap & d.outer_snap),
                             snap_room - hdr_end, TX_MAX_FRAME - hdr_end)),
            desc.length.eq(length), desc.payload.eq(length - hdr_end),
            desc.ip_length.eq(length - d.l3),
            desc.ip_base.eq(hdr_end - d.l3 - Mux(d.ipv6, 40, 0)),
            desc.len8023_base.eq(hdr_end - d.l3 + 8),
            desc.tcp_base.eq(d.csum + (hdr_end - d.l4)),
            desc.seq.eq(d.seq), desc.ip_id.eq(d.ip_id), desc.id_linux.eq(d.id_linux),
            desc.flags.eq(d.flags), desc.csum.eq(d.csum),
            desc.encap.eq(d.encap), desc.outer_l3.eq(r.l3), desc.outer_ipv6.eq(r.is_ipv6),
            desc.outer_snap.eq(d.encap & d.outer_snap),
            desc.outer_ip_base.eq(hdr_end - r.l3 - Mux(r.is_ipv6, 40, 0)),
            desc.outer_len8023_base.eq(hdr_end - r.l3 + 8),
            desc.outer_ip_id.eq(d.outer_ip_id), desc.gre_seq.eq(d.gre_seq),
            desc.gre_seq_at.eq(r.gre_seq_offset),
        ]
        # MinSegmentCount's bound, (MinSegmentCount - 1) * MSS, as two short products here
        # and their sum in the next stage (one multiplier and one adder per stage).
        low, high = Signal(26), Signal(26)
        m.d.sync += [low.eq(d.segments_less1 * d.mss[:10]),
                     high.eq(d.segments_less1 * d.mss[10:20])]
        return desc, checks, low, high

    def _sum_products(self, m, desc, checks, low, high):
        """The products stage: the headers stage's descriptor with its MinSegmentCount bound
        and the reason of the first check that failed (0: none)."""
        codes = {"disabled": TxStatus.LSO_DISABLED, "mss0": TxStatus.LSO_BAD_MSS,
                 "parse_error": checks.parse_reason, "fragment": TxStatus.LSO_GUARANTEE,
                 "ip_version": TxStatus.LSO_NOT_TCP, "not_tcp": TxStatus.LSO_NOT_TCP,
                 "header_offset": TxStatus.LSO_BAD_HEADER_OFFSET,
                 "too_long": TxStatus.LSO_HEADERS_TOO_LONG, "flags": TxStatus.LSO_GUARANTEE,
                 "urgent": TxStatus.LSO_GUARANTEE, "v2_total": TxStatus.LSO_GUARANTEE,
                 "csum": TxStatus.LSO_GUARANTEE,
                 "encap_off": TxStatus.LSO_DISABLED, "v1": TxStatus.LSO_NOT_NVGRE,
                 "not_gre": TxStatus.LSO_NOT_NVGRE, "not_nvgre": checks.walk_reason,
                 "inner_fragment": TxStatus.LSO_GUARANTEE,
                 "inner_version": TxStatus.LSO_NOT_TCP, "inner_not_tcp": TxStatus.LSO_NOT_TCP,
                 "offsets": TxStatus.LSO_BAD_HEADER_OFFSET,
                 "outer_total": TxStatus.LSO_GUARANTEE, "inner_total": TxStatus.LSO_GUARANTEE}
        plain, _ = _first_failure([(getattr(checks.plain, name), codes[name])
                                   for name in _PLAIN_CHECKS])
        encap, _ = _first_failure([(getattr(checks.encap, name), codes[name])
                                   for name in _ENCAP_CHECKS])
        summed = Signal(DESCRIPTOR)
        m.d.sync += [summed.eq(desc), summed.minmul.eq(low + (high << 10)),
                     summed.reason.eq(Mux(desc.encap, encap, plain))]
        return summed
