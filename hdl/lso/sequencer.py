"""The segmenter's back: which beat goes out next, for every frame in order.

:class:`SegmentSequencer` takes each frame's descriptor and, a beat a cycle, orders the
assembler to send it: a PASS frame's rows as they are; a large send's segments, each the
template's header beats with the segment's fields and MSS payload bytes from the ring; a
DROP frame nothing (its rows are drained as they arrive). It pushes one record per frame it
sends (for the checksum stage) and one completion per host frame.

When a segment goes
    The send passed every check before its first segment (``front.SendChecks``), so a middle
    segment goes once its payload bytes have arrived and the last one once the whole frame
    has. The next segment is decided while the current one is being sent, so segments
    follow each other without a gap. A frame whose bytes end elsewhere than its length word
    said (a bad descriptor) is cut there: nothing waits for bytes that never come, and the
    completion says MALFORMED.
Timing
    The sequencer sees the front through registers: each frame's end (length and last row)
    a cycle after the lengths FIFO's output, in a ring of two slots with the next frame's
    end (written with an enable from flip-flops; a finish only moves the ring's head), and
    ``wp`` two cycles late (``wp_seen``), so a frame's last row and its end become
    visible together. A PASS frame's "the next row has arrived" and "it is the last" are
    registers worked out a cycle ahead (every row and end they may have compared, the
    decisions only choosing), and so is "first beat" of a segment. The wide current-frame
    register is loaded in the cycle after its frame starts, its enable a flip-flop; that
    first cycle reads the descriptor from the FIFO's output. The next segment's load waits
    on ``go``, a register worked out from registers only (``moved`` holds it back for the
    cycle after a move), and copies registers worked out every cycle from the pending
    segment (``upcoming``, ``pend_after``); the emitting segment's fields that are the
    frame's are read from its descriptor rather than copied. The pending segment's
    registers and the emitting segment's fields are loaded a cycle after the decision,
    their enable a flip-flop (the command reads the fields from ``upcoming`` in that
    cycle), so segments start at least three cycles apart (only a segment of one or two
    beats, 128 bytes or less at W=512, is shorter). Where the per-segment header words
    fall in the frame (``patch_places``) are registers worked out from the descriptor, the
    same for every segment, so the assembler's comparison with the beat index starts
    from flip-flops. The registers that the decisions move but do not choose the value
    of (``ring_at``, the next command's ring addresses; ``fp``) take a value chosen by
    registers (the state and flags such as ``pass_last``, ``final``, ``go``): the decision
    is their enable only; ``fp`` moves a cycle after the decision (rows are freed to the
    front a cycle later), so its enable is a flip-flop.
    Nothing the decisions drive leaves the sequencer: the descriptors FIFO is read a cycle
    after its frame starts and the lengths FIFO while the two end slots are not both full,
    both flip-flops. So consecutive frames start at least two cycles apart (a one-beat frame,
    64 bytes or less at W=512, goes every other cycle), and an LSO send's first segment
    starts three cycles after the send.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.nbl import TxStatus

from ..layouts import word_layout
from ..parse import HEADERS_LAYOUT
from .common import (CWR, DESCRIPTOR, DROP, FIN, FRAME_END, LSO, MAX_HEADER, PASS,
                     PATCH_PLACES, PSH, RING_BYTES, ROW_BITS, SEGMENT, TXU, command_layout,
                     patch_places, ring_address_layout)

__all__ = ["SegmentSequencer"]

_IDLE = 3       # no frame (the descriptor modes are PASS, LSO, DROP)


def _pending_layout(rotate_bits):
    """The next segment to decide: its payload end, the payload bytes from its start to the
    send's end and whether it is the last, where its payload starts in the ring (row and
    rotation from the frame's base), its sequence number and IPv4 ID; of an encapsulated
    send also the outer IPv4 ID and the GRE sequence number."""
    return data.StructLayout({
        "end": 33, "remaining": 33, "last": 1, "row": ROW_BITS, "rho": rotate_bits,
        "seq": 32, "ip_id": 16, "first": 1, "outer_ip_id": 16, "gre_seq": 32,
    })


def _emitting_layout(rotate_bits, template_beats):
    """The segment being sent: its next ring row and rotation, its beat index, the header
    and frame bytes still to send, whether the next beat is its first and whether it is its
    last (registers, so no comparison stands between ``j`` or ``left`` and the decisions that
    hang on them), and its fields."""
    return data.StructLayout({
        "row": ROW_BITS, "rho": rotate_bits, "j": range(template_beats + 1), "first_beat": 1,
        "header_left": 9, "left": 16, "last_beat": 1, "seg": SEGMENT,
    })


class SegmentSequencer(wiring.Component):
    """Orders the output beats of every frame, its record and its completion.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    descriptors : In(stream.Signature(DESCRIPTOR))
        One per frame, in order. ``ready`` is a flip-flop: a descriptor is loaded from the
        output as its frame starts and read out of the FIFO in the next cycle.
    lengths : In(stream.Signature(FRAME_END))
        Each frame's length and the row of its last beat, valid once that beat is in the ring.
        ``ready`` is worked out from flip-flops only.
    wp : In(ROW_BITS)
        Rows the front has written.
    fp : Out(ROW_BITS)
        Rows below ``fp`` may be overwritten (a cycle after the decision that frees them).
    frame_done : Out(1)
        A frame has finished (its completion is pushed).
    commands : Out(stream.Signature(command_layout(W)))
        One per output beat; ``ready`` is the assembler's.
    records : Out(stream.Signature(HEADERS_LAYOUT(128)))
        One per frame sent, pushed with its first beat's command.
    completions : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One per host frame, in order.
    """

    def __init__(self, width):
        self.width = width
        super().__init__({
            "descriptors": In(stream.Signature(DESCRIPTOR)),
            "lengths": In(stream.Signature(FRAME_END)),
            "wp": In(ROW_BITS), "fp": Out(ROW_BITS), "frame_done": Out(1),
            "commands": Out(stream.Signature(command_layout(width))),
            "records": Out(stream.Signature(HEADERS_LAYOUT(TXU))),
            "completions": Out(stream.Signature(word_layout(nbl.TxCompletion))),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.width // 8
        self.lognb = lognb = (nb - 1).bit_length()
        self.hb = MAX_HEADER // nb
        assert self.hb & (self.hb - 1) == 0, "a slot's template rows: slot * hb is a shift"
        rho_bits = max(1, lognb)
        self.cur = Signal(DESCRIPTOR)
        self.pend = Signal(_pending_layout(rho_bits))
        self.emit = Signal(_emitting_layout(rho_bits, self.hb))
        self.emitting, self.final = Signal(), Signal()
        self.pass_row, self.pass_first = Signal(ROW_BITS), Signal()
        # The next command's row in the ring's banks, kept beside ``pass_row`` and
        # ``emit.row`` (whichever the state uses), so the ring's block RAMs are addressed
        # from flip-flops: no choice by the state nor addition in front of them.
        self.ring_at = Signal(ring_address_layout(self.width), name="ring_at")
        self.pass_arrived, self.pass_last, self.pass_advance = Signal(), Signal(), Signal()
        self.segment_load, self.abort = Signal(name="segment_load"), Signal(name="abort")
        self.mid_ready, self.go = Signal(name="mid_ready"), Signal(name="go")
        self.moved, self.segment_loaded = Signal(name="moved"), Signal(name="segment_loaded")
        self.finish, self.fin_status, self.fin_sent = Signal(), Signal(8), Signal()
        self.frees_rows, self.ring_moves = Signal(name="frees_rows"), Signal(name="ring_moves")
        self.pass_moves = Signal(name="pass_moves")
        # The next frame starts (``start``, its descriptor loaded from the FIFO's output);
        # the FIFO is read in the cycle after, so its read and level logic hang on a
        # flip-flop, not on the decision (its output shows the started frame for that cycle).
        self.start = Signal()
        m.d.sync += self.descriptors.ready.eq(self.start)
        # The wide current-frame register is loaded in that next cycle too, from the FIFO's
        # output (an enable from a flip-flop, not from the decision). What the frame's
        # first cycle reads of it (a PASS frame's first beat and record, the completion of
        # a one-beat frame) is chosen from the FIFO's output (``frame``); what is worked out
        # from it into registers in that cycle is not used (``avail``, ``ended_late`` and
        # ``go`` are held at 0 for it). That enable is a copy of ``descriptors.ready`` of its
        # own (kept inverted: synthesis merges flip-flops of the same input), so the FIFO's
        # read, which reaches its banks' moves, is not one net with the 848 bits' enables
        # and choices (that net, 788 loads, was the TX path's critical path: 6.74 ns).
        not_starting = Signal(init=1, name="not_starting")
        m.d.sync += not_starting.eq(~self.start)
        self.starting = ~not_starting
        with m.If(self.starting):
            m.d.sync += self.cur.eq(self.descriptors.payload)
        self.frame = Signal(DESCRIPTOR)
        m.d.comb += self.frame.eq(Mux(self.starting, self.descriptors.payload, self.cur))

        self._frame_ends(m)
        self._arrival(m)
        self._completion(m)
        self._upcoming(m)
        self._segment_command(m)
        self._pending_load(m)
        # The state is the current frame's mode, or IDLE (no frame). An if-chain rather than
        # a switch: the Verilog then has no case statement that leaves values uncovered.
        self.state = Signal(range(4), init=_IDLE)
        with m.If(self.state == PASS):
            self._pass_beat(m)
        with m.Elif(self.state == LSO):
            self._segment_beat(m)
        with m.Elif(self.state == DROP):
            self._drain(m)
        with m.Else():
            self._start_next(m)
        self._pass_flags(m)
        self._segment_ready(m)
        with m.If(self.finish):     # the frame's rows are free
            m.d.comb += self.frees_rows.eq(1)
        self._freed_rows(m)
        self._ring_next(m)
        return m

    def _freed_rows(self, m):
        """``fp`` moves when a decision frees rows (``frees_rows``: a PASS beat goes, a
        segment starts, a dropped frame's rows arrive, a frame finishes) to a value chosen
        by registers only, not by those decisions: a PASS frame's row that goes, or the row
        after it if it is the last (``pass_last``); the starting segment's first row, or past
        the frame's end once the last segment goes (``final``); the rows seen written of a
        dropped frame, or past its end once it has ended (``ended_late``)."""
        # The row chosen, and whether ``fp`` goes one past it (past a frame's end): the
        # addition is made from the registers a cycle later, not behind the choice.
        freed, past = Signal(ROW_BITS, name="freed"), Signal(name="freed_past")
        last_row = self.end.last_row
        with m.If(self.state == PASS):
            m.d.comb += [freed.eq(self.pass_row), past.eq(self.pass_last)]
        with m.Elif(self.state == LSO):
            m.d.comb += [freed.eq(Mux(self.final, last_row, self.upcoming.fp)),
                         past.eq(self.final)]
        with m.Else():
            m.d.comb += [freed.eq(Mux(self.ended_late, last_row, self.wp_seen)),
                         past.eq(self.ended_late)]
        # A cycle late (the rows are free a cycle later, which only the front's room for a
        # frame can see): the decision reaches one flip-flop, not the enable of ``fp``'s bits.
        freed_late, past_late = Signal(ROW_BITS, name="freed_late"), Signal(name="past_late")
        frees_late = Signal(name="frees_late")
        m.d.sync += [freed_late.eq(freed), past_late.eq(past), frees_late.eq(self.frees_rows)]
        with m.If(frees_late):
            m.d.sync += self.fp.eq(freed_late + past_late)

    def _frame_ends(self, m):
        """The frames' ends (``lengths``) in two slots, the current frame's (``end``) and
        the next one's (``second``), so what the current frame's end will be next cycle is
        known this cycle even as a frame finishes (the PASS flags need it a cycle ahead).
        An end reaches ``end`` a cycle after the FIFO's output. The slots are a ring of
        two: an end is written into the free one (the current frame's while it has none,
        else the other: ``head`` XOR ``ended``), its enable from flip-flops only, and a
        finish moves ``head`` to the other slot; ``end`` and ``second`` are the slots as
        ``head`` chooses (a finish reaches one flip-flop, not the 112 bits of two shifting
        registers: 5 logic levels)."""
        slots = [Signal(FRAME_END, name=f"end_slot{i}") for i in (0, 1)]
        head = Signal(name="end_head")
        self.end, self.ended = Signal(FRAME_END, name="end"), Signal(name="ended")
        self.second = second = Signal(FRAME_END, name="second_end")
        self.second_valid = second_valid = Signal(name="second_valid")
        pop, incoming = self.finish, self.lengths.payload
        # Taken while the two slots are not both full (flip-flops: the lengths FIFO's read
        # is not in the decisions' paths); a frame's end waits a cycle in the FIFO when
        # both are full and one leaves, the next one being in ``second`` already.
        take = self.lengths.valid & ~(self.ended & second_valid)
        m.d.comb += self.lengths.ready.eq(take)
        into = head ^ self.ended
        for i, slot in enumerate(slots):
            with m.If(take & (into == i)):
                m.d.sync += slot.eq(incoming)
        m.d.comb += [self.end.eq(Mux(head, slots[1], slots[0])),
                     second.eq(Mux(head, slots[0], slots[1]))]
        m.d.sync += head.eq(head ^ pop)
        # A finish comes only with the frame's end held (``ended``).
        with m.If(pop):
            m.d.sync += [self.ended.eq(second_valid | take), second_valid.eq(0)]
        with m.Elif(~self.ended):
            m.d.sync += self.ended.eq(take)
        with m.Elif(~second_valid):
            m.d.sync += second_valid.eq(take)

    def _pass_flags(self, m):
        """A PASS frame's flags for its next row, as registers worked out a cycle ahead:
        ``pass_arrived`` (the row is in the ring) and ``pass_last`` (it is the frame's last).
        Rows compared in their low bits, the ring's row index: the rows written and not yet
        freed (``wp`` - ``fp``) are fewer than the ring holds, and the frame's last row and
        the rows seen written are among them, at or after ``pass_row`` (>= ``fp``).
        The comparisons are made for each row the next one may be (the next frame's first,
        this row or the one after it) against each end the frame may have then (the end
        held or the FIFO's; as a frame finishes, the next frame's), from registers; the
        decisions only choose among them. As a frame finishes without a next one the flags
        are not used (the sequencer is idle)."""
        ring = (RING_BYTES // (self.width // 8) - 1).bit_length()
        rows = {"first": self.descriptors.payload.base[:ring],
                "after": (self.pass_row + 1)[:ring], "this": self.pass_row[:ring]}
        arrived = {name: self.wp_late[:ring] != row for name, row in rows.items()}
        # The frame's end next cycle (``_frame_ends``): without a finish, the one held or
        # else the FIFO's; as a frame finishes, the next frame's.
        kept_ended = self.ended | self.lengths.ready
        kept_end = Mux(self.ended, self.end.last_row, self.lengths.payload.last_row)[:ring]
        popped_ended = self.second_valid | self.lengths.ready
        popped_end = Mux(self.second_valid, self.second.last_row,
                         self.lengths.payload.last_row)[:ring]
        first_popped = popped_ended & (rows["first"] == popped_end)
        first_kept = kept_ended & (rows["first"] == kept_end)
        with m.If(self.start):
            m.d.sync += [
                self.pass_arrived.eq(Mux(self.finish, popped_ended, kept_ended) |
                                     arrived["first"]),
                self.pass_last.eq(Mux(self.finish, first_popped, first_kept)),
            ]
        with m.Elif(self.pass_advance):
            m.d.sync += [self.pass_arrived.eq(kept_ended | arrived["after"]),
                         self.pass_last.eq(kept_ended & (rows["after"] == kept_end))]
        with m.Else():
            m.d.sync += [self.pass_arrived.eq(kept_ended | arrived["this"]),
                         self.pass_last.eq(kept_ended & (rows["this"] == kept_end))]

    def _arrival(self, m):
        """What of the current frame has arrived, as registers."""
        lognb, cur = self.lognb, self.cur
        # ``wp`` two cycles late: a frame's end reaches ``end`` two cycles after the FIFO
        # push that goes with its last row's write (``wp_seen`` then counts the last row).
        self.wp_late, self.wp_seen = Signal(ROW_BITS), Signal(ROW_BITS)
        m.d.sync += [self.wp_late.eq(self.wp), self.wp_seen.eq(self.wp_late)]
        self.n = self.end.bytes
        written = Signal(ROW_BITS)
        m.d.comb += written.eq(self.wp_seen - cur.base)
        # Payload bytes of the send that have arrived: a cycle late, so never more than have
        # arrived (the count only grows), and 0 in the second cycle after a frame starts
        # (cleared by ``starting``, a flip-flop, not by the decision). In the first it still
        # speaks of the frame before, and nothing reads it then: ``go`` is held at 0 by
        # ``starting`` and the cut by ``ended_late``.
        self.avail = Signal(signed(34))
        m.d.sync += self.avail.eq(Mux(self.starting, 0,
                                      Mux(self.ended, self.n, written << lognb) - cur.hdr_end))
        self.ended_late, self.short_or_long = Signal(), Signal()
        m.d.sync += [
            self.ended_late.eq(self.ended & ~self.finish & ~self.start & ~self.starting),
            self.short_or_long.eq(self.n != cur.length),
        ]

    def _completion(self, m):
        """The completion a finishing frame pushes, and the bookkeeping of finishing."""
        cur = self.frame       # a one-beat frame finishes in its first cycle
        comp = Signal(word_layout(nbl.TxCompletion))
        lso_word = Mux(cur.v2, 1 << 30, Mux(self.fin_sent, cur.payload[:30], 0))
        m.d.comb += [
            comp.LsoComplete.eq(Mux(cur.mode == PASS, 0, lso_word)),
            comp.Status.eq(self.fin_status),
            self.completions.valid.eq(self.finish), self.completions.payload.eq(comp),
            self.frame_done.eq(self.finish),
        ]

    def _segment_command(self, m):
        """The command of the emitting segment's next beat, and the segment's record."""
        nb, hb, cur, emit = self.width // 8, self.hb, self.cur, self.emit
        cmd = self.commands.payload
        # The segment's ChecksumTx word: the frame's IP version; an encapsulated send's
        # IpHeaderChecksum is for both IPv4 headers there are, and its supplemental word
        # rides along (TxChecksumInsert fills the inner headers' checksums and GRE's).
        seg_word = Signal(word_layout(nbl.ChecksumTx))
        frame_ipv6 = Mux(cur.encap, cur.outer_ipv6, cur.ipv6)
        m.d.comb += [seg_word.IsIPv4.eq(~frame_ipv6), seg_word.IsIPv6.eq(frame_ipv6),
                     seg_word.TcpChecksum.eq(1),
                     seg_word.IpHeaderChecksum.eq(cur.encap | ~cur.ipv6),
                     seg_word.TcpHeaderOffset.eq(cur.l4)]
        seg_user = Cat(seg_word.as_value(), C(0, 32), Mux(cur.encap, cur.user[64:96], 0),
                       C(0, 32))
        self.emit_last_beat = emit.last_beat
        m.d.comb += [
            cmd.row.eq(emit.row), cmd.ring_at.eq(self.ring_at), cmd.rho.eq(emit.rho),
            cmd.tpl.eq(Cat(Mux(emit.j >= hb, hb - 1, emit.j)[:(hb - 1).bit_length()],
                           cur.slot)),      # slot * hb + the beat's template row
            cmd.hdr.eq(Mux(emit.header_left > nb, nb, emit.header_left)),
            cmd.keep.eq(Mux(self.emit_last_beat, emit.left, nb)),
            cmd.last.eq(self.emit_last_beat),
            cmd.user.eq(Mux(emit.j == 0, seg_user, 0)), cmd.j.eq(emit.j),
        ]
        # The segment's fields: in its first cycle (``segment_loaded``) still those that
        # ``upcoming`` holds, ``emit.seg`` being loaded from them in that cycle.
        sg, patch = Signal(SEGMENT), cmd.patch
        m.d.comb += sg.eq(Mux(self.segment_loaded, self.upcoming.emit.seg, emit.seg))
        m.d.comb += [
            patch.ipid.eq(sg.ipid), patch.seq.eq(sg.seq),
            patch.flags.eq(sg.flags), patch.len8023.eq(sg.len8023), patch.iplen.eq(sg.iplen),
            patch.csum.eq(sg.tcp_sum[:16] + sg.tcp_sum[16]),
            patch.outer.len8023.eq(sg.outer.len8023), patch.outer.iplen.eq(sg.outer.iplen),
            patch.outer.ipid.eq(sg.outer.ipid), patch.outer.gre_seq.eq(sg.outer.gre_seq),
            patch.places.eq(self._patch_places(m)),
        ]
        # Records: the parser's for a frame passed unchanged; for a segment, what the parser
        # says of the segment (its lengths; its ChecksumTx word as ``user``).
        self.pass_rec, self.seg_rec = Signal(HEADERS_LAYOUT(TXU)), Signal(HEADERS_LAYOUT(TXU))
        m.d.comb += [
            self.pass_rec.eq(Cat(self.frame.hdr_rec, self.frame.user)),
            self.seg_rec.eq(Cat(cur.hdr_rec, cur.user)),
            self.seg_rec.error.eq(0), self.seg_rec.is_fragment.eq(0),
            self.seg_rec.ip_end_unchecked.eq(0), self.seg_rec.ip_end.eq(sg.end),
            self.seg_rec.l4_end.eq(Mux(cur.encap, cur.hdr_rec.l4_end, sg.end)),
            self.seg_rec.inner_ip_end.eq(Mux(cur.encap, sg.end, cur.hdr_rec.inner_ip_end)),
            self.seg_rec.inner_l4_end.eq(Mux(cur.encap, sg.end, cur.hdr_rec.inner_l4_end)),
            self.seg_rec.user.eq(seg_user),
        ]

    def _patch_places(self, m):
        """Where the send's per-segment header words fall in its frame (``patch_places``),
        registers worked out from its descriptor every cycle, so the assembler compares
        them with the beat index from flip-flops, not through the offsets' adders. They
        are a cycle behind ``cur``, loaded a cycle after the frame starts: a send's first
        header beat comes later (its first segment is loaded no earlier than the third
        cycle after the start, ``go`` being 0 until then); a PASS frame has no header
        lanes."""
        places = Signal(PATCH_PLACES, name="patch_places")
        words = patch_places(self.cur)
        assert len(words) == len(places.on)
        for i, (offset, enable) in enumerate(words):
            m.d.sync += [places.at[i].eq(offset), places.on[i].eq(enable)]
        return places

    def _start_next(self, m):
        """Take the next frame's descriptor, if there is one (also as a frame ends)."""
        nxt = self.descriptors.payload
        with m.If(self.descriptors.valid & ~self.descriptors.ready):
            m.d.comb += self.start.eq(1)
            m.d.sync += [self.emitting.eq(0), self.final.eq(0), self.pass_first.eq(1)]
            m.d.comb += [self.ring_moves.eq(1), self.pass_moves.eq(1)]
            m.d.sync += self.state.eq(nxt.mode)
        with m.Else():
            m.d.sync += self.state.eq(_IDLE)

    def _pass_beat(self, m):
        """A frame without an LSO word: its rows as they are, as they arrive."""
        nb = self.width // 8
        cmd, cur = self.commands.payload, self.frame
        is_last = self.pass_last
        tail = self.n[:self.lognb]      # bytes in the last beat, 0 for a full one
        first_beat = self.pass_first
        can = self.commands.ready & self.pass_arrived & \
            (~is_last | self.completions.ready) & (~first_beat | self.records.ready)
        m.d.comb += [
            self.records.valid.eq(can & first_beat), self.records.payload.eq(self.pass_rec),
            cmd.row.eq(self.pass_row), cmd.rho.eq(0), cmd.hdr.eq(0),
            cmd.keep.eq(Mux(is_last & (tail != 0), tail, nb)), cmd.last.eq(is_last),
            cmd.user.eq(Mux(first_beat, cur.user, 0)), self.commands.valid.eq(can),
        ]
        m.d.comb += self.pass_advance.eq(can)
        with m.If(can):
            m.d.sync += self.pass_first.eq(0)
            m.d.comb += [self.frees_rows.eq(1), self.pass_moves.eq(1)]
            self._ring_advance(m)
            with m.If(is_last):
                m.d.comb += [self.finish.eq(1), self.fin_status.eq(TxStatus.SENT)]
                self._start_next(m)

    def _segment_beat(self, m):
        """A large send: the emitting segment's next beat; the next segment decided."""
        nb, hb, emit = self.width // 8, self.hb, self.emit
        first_beat = emit.first_beat
        can = self.commands.ready & self.emitting & \
            (~(self.final & self.emit_last_beat) | self.completions.ready) & \
            (~first_beat | self.records.ready)
        m.d.comb += [self.commands.valid.eq(can), self.records.valid.eq(can & first_beat),
                     self.records.payload.eq(self.seg_rec)]
        with m.If(can):
            m.d.sync += [emit.row.eq(emit.row + 1), emit.j.eq(Mux(emit.j == hb, hb, emit.j + 1)),
                         emit.first_beat.eq(0),
                         emit.header_left.eq(Mux(emit.header_left > nb,
                                                 emit.header_left - nb, 0)),
                         emit.left.eq(emit.left - nb), emit.last_beat.eq(emit.left <= 2 * nb)]
            self._ring_advance(m)
            with m.If(self.emit_last_beat):
                m.d.sync += self.emitting.eq(0)
        # The pending segment starts when ``go`` says it may (a register, ``_segment_ready``)
        # and the emitting segment frees the way (its last beat goes, or none is emitting):
        # a choice of a few flip-flops into the load of the segment registers. A bad length
        # word cuts the send.
        frees = ~self.emitting | (self.commands.ready & self.emit_last_beat &
                                  (~first_beat | self.records.ready))
        cut = ~self.mid_ready & self.ended_late & self.short_or_long
        with m.If(can & self.emit_last_beat & self.final):
            m.d.comb += [self.finish.eq(1), self.fin_status.eq(TxStatus.SENT),
                         self.fin_sent.eq(1)]
            self._start_next(m)
        with m.Elif(self.go & ~self.moved & frees):
            self._load_segment(m)
        with m.Elif(frees & ~self.final & cut):
            m.d.comb += self.abort.eq(1)
            m.d.sync += self.state.eq(DROP)

    def _segment_ready(self, m):
        """Whether the pending segment may start, as registers worked out a cycle ahead:
        ``mid_ready``, a middle segment's bytes have all arrived (a cycle late: ``avail``
        only grows), and ``go``, the send is being segmented and its pending segment is a
        middle one whose bytes are in or the last one of a frame that ended as its length
        word said. Both are worked out from registers only (one comparison into each), not
        from the decisions: the pending segment's registers change in the cycle after it
        moves on (or the frame starts, ``_pending_load``), so for two cycles after such a
        decision (or the frame's end or cut) they may still speak of the one before:
        ``moved`` (the first cycle) holds the load back, and ``go`` is worked out without
        it in that cycle (the second); ``mid_ready`` may hold a cut back by a cycle."""
        pend = self.pend
        m.d.sync += self.moved.eq(self.start | self.segment_load | self.finish | self.abort)
        mid_next = ~pend.last & (self.avail >= pend.end)
        last_next = self.ended & pend.last & (self.n == self.cur.length)
        m.d.sync += [
            self.mid_ready.eq(mid_next),
            self.go.eq((self.state == LSO) & ~self.final & ~self.starting & ~self.moved &
                       (mid_next | last_next)),
        ]

    def _upcoming(self, m):
        """The pending segment's registers as it will start (``upcoming``: the emitting
        segment's counters and fields, and ``fp``) and the pending segment after it
        (``pend_after``), worked out every cycle from the pending segment and the frame's
        descriptor: what a load copies, with no adder between the decision and the segment
        registers. They are a cycle behind ``pend`` and ``cur``: ``go`` is 0 in the cycle
        after either changes."""
        nb, lognb, pend, cur = self.width // 8, self.lognb, self.pend, self.cur
        last = pend.last
        self.upcoming = up = Signal(data.StructLayout({
            "emit": self.emit.shape(), "ring_at": self.ring_at.shape(), "fp": ROW_BITS}))
        self.pend_after = after = Signal.like(pend)
        size = Signal(16)
        m.d.comb += size.eq(Mux(last, pend.remaining, cur.mss))
        hdr, flags = cur.hdr_end, cur.flags
        seg_flags = (flags & ~(FIN | PSH | CWR)) | Mux(pend.first, flags & CWR, 0) | \
            Mux(last, flags & (FIN | PSH), 0)
        emit, sg = up.emit, up.emit.seg

        def fits_one_beat(payload):     # hdr + payload <= nb, on a few bits (no long adder)
            low = lognb + 2             # both at most nb: exact in these bits
            return (hdr <= nb) & (payload <= nb) & (hdr[:low] + payload[:low] <= nb)
        m.d.sync += [
            emit.row.eq(cur.base + pend.row), emit.rho.eq(pend.rho), emit.j.eq(0),
            emit.first_beat.eq(1),
            emit.header_left.eq(hdr), emit.left.eq(hdr + size),
            emit.last_beat.eq(fits_one_beat(Mux(last, pend.remaining, cur.mss))),
            sg.end.eq(hdr + size), sg.ipid.eq(pend.ip_id),
            sg.seq.eq(pend.seq), sg.flags.eq(seg_flags),
            sg.iplen.eq(cur.ip_base + size), sg.len8023.eq(cur.len8023_base + size),
            sg.tcp_sum.eq(cur.tcp_base[:16] + cur.tcp_base[16] + size),
            sg.outer.len8023.eq(cur.outer_len8023_base + size),
            sg.outer.iplen.eq(cur.outer_ip_base + size), sg.outer.ipid.eq(pend.outer_ip_id),
            sg.outer.gre_seq.eq(pend.gre_seq),
            up.fp.eq(cur.base + pend.row + ((hdr + pend.rho) >> lognb)),
            up.ring_at.eq(self._ring_address(cur.base + pend.row)),
        ]
        rho_sum = pend.rho + cur.mss[:lognb]
        def next_id(ip_id):     # ``model.lso.ip_id``: "ndis" keeps bit 15, "linux" wraps
            plus1 = ip_id + 1
            return Mux(cur.id_linux, plus1, Cat(plus1[:15], ip_id[15]))
        m.d.sync += [
            after.end.eq(pend.end + cur.mss), after.remaining.eq(pend.remaining - cur.mss),
            after.last.eq(pend.remaining <= (cur.mss << 1)),
            after.row.eq(pend.row + (cur.mss >> lognb) + (rho_sum >> lognb)),
            after.rho.eq(rho_sum[:lognb]), after.seq.eq(pend.seq + cur.mss),
            after.ip_id.eq(next_id(pend.ip_id)), after.outer_ip_id.eq(next_id(pend.outer_ip_id)),
            after.gre_seq.eq(pend.gre_seq + 1), after.first.eq(0),
        ]

    def _load_segment(self, m):
        """The pending segment starts; the pending one moves on by one MSS."""
        m.d.comb += self.segment_load.eq(1)
        m.d.sync += [self.emitting.eq(1), self.final.eq(self.pend.last)]
        m.d.comb += [self.frees_rows.eq(1), self.ring_moves.eq(1)]
        for name in ("row", "rho", "j", "first_beat", "header_left", "left", "last_beat"):
            m.d.sync += self.emit[name].eq(self.upcoming.emit[name])

    def _ring_address(self, row):
        """``row``'s and the next row's addresses in the ring's banks."""
        bits = Shape.cast(self.ring_at.even.shape()).width
        low = row[:bits + 1]
        return Cat((low + 1)[1:bits + 1], low[1:bits + 1])     # even, odd

    def _ring_advance(self, m):
        """The next command's row is the row after (``_ring_next``)."""
        m.d.comb += self.ring_moves.eq(1)

    def _ring_next(self, m):
        """``ring_at`` moves when a decision moves it (``ring_moves``: a beat goes, a
        segment or a frame starts) to a value chosen by registers only, not by those
        decisions: the next frame's first row as a frame finishes (a PASS frame's last row,
        a send's last segment's last beat; in DROP and IDLE the start is the only move), the
        pending segment's first row as it is loaded (``go`` without ``moved``, while the
        emitting segment is on its last beat or none is emitting), else the row after (the
        even bank's address the odd bank's plus one, the odd bank's the even bank's). A
        finish with no next frame leaves the sequencer idle: ``ring_at`` is then unused
        until a start sets it."""
        after = Signal.like(self.ring_at, name="ring_after")
        m.d.comb += [after.even.eq(self.ring_at.odd + 1), after.odd.eq(self.ring_at.even)]
        first = self._ring_address(self.descriptors.payload.base)
        loading = self.go & ~self.moved & (~self.emitting | self.emit_last_beat)
        ring_next = Signal.like(self.ring_at, name="ring_next")
        with m.If(self.state == PASS):
            m.d.comb += ring_next.eq(Mux(self.pass_last, first, after))
        with m.Elif(self.state == LSO):
            with m.If(self.emitting & self.emit_last_beat & self.final):
                m.d.comb += ring_next.eq(first)
            with m.Elif(loading):
                m.d.comb += ring_next.eq(self.upcoming.ring_at)
            with m.Else():
                m.d.comb += ring_next.eq(after)
        with m.Else():
            m.d.comb += ring_next.eq(first)
        with m.If(self.ring_moves):
            m.d.sync += self.ring_at.eq(ring_next)
        # Likewise ``pass_row`` (``pass_moves``: a PASS beat goes, a frame starts): the row
        # after, or the next frame's first row.
        pass_next = Mux((self.state == PASS) & ~self.pass_last, self.pass_row + 1,
                        self.descriptors.payload.base)
        with m.If(self.pass_moves):
            m.d.sync += self.pass_row.eq(pass_next)

    def _pending_load(self, m):
        """The pending segment's registers are loaded in the cycle after the decision that
        moves them (their enable a flip-flop, not the decision): the first segment's from
        the descriptor as the frame's first cycle reads it from the FIFO's output
        (``starting``), the next one's from ``pend_after`` the cycle after a segment starts
        (``pend_after`` still speaks of the segment that started: ``moved`` held it). The
        emitting segment's fields (``emit.seg``) are loaded in that cycle too."""
        nxt, pend = self.descriptors.payload, self.pend
        m.d.sync += self.segment_loaded.eq(self.segment_load)
        with m.If(self.segment_loaded):
            m.d.sync += self.emit.seg.eq(self.upcoming.emit.seg)
        with m.If(self.starting):
            m.d.sync += [pend.end.eq(nxt.mss), pend.remaining.eq(nxt.payload),
                         pend.last.eq(nxt.single), pend.row.eq(0), pend.rho.eq(0),
                         pend.seq.eq(nxt.seq), pend.ip_id.eq(nxt.ip_id), pend.first.eq(1),
                         pend.outer_ip_id.eq(nxt.outer_ip_id), pend.gre_seq.eq(nxt.gre_seq)]
        with m.Elif(self.segment_loaded):
            m.d.sync += pend.eq(self.pend_after)

    def _drain(self, m):
        """A dropped (or cut) send: its rows are freed as they arrive; then its completion."""
        cur = self.cur
        status = Mux(cur.mode == LSO, TxStatus.MALFORMED, cur.reason)
        with m.If(self.ended_late):
            with m.If(self.completions.ready):
                m.d.comb += [self.finish.eq(1), self.fin_status.eq(status)]
                self._start_next(m)
        with m.Else():
            m.d.comb += self.frees_rows.eq(1)
