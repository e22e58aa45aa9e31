"""The inner walk: GRE and the inner frame of an NVGRE frame, like ``model.nvgre.follow``.

The outer walk (:class:`~.walk.HeaderWalk`) hands over when the upper-layer protocol of the
outer IP header is GRE (47) and the datagram is not a fragment; it waits, holding the capture
window, until this walk is done, and then takes the result into the record pipeline as one
more step (``gre``).

The walk is sequential, two cycles per header: a *read* cycle registers 18 bytes of the
window at the header's offset (from the window memory's rows, then a mux over the 2-byte
lanes of a row: every inner offset is even), and a *decide* cycle makes every check the model
makes of that header, from registers, and sets where the next header is (which is also the
row the window's address registers and the lane register take, for the next read cycle).
Headers: GRE, the inner L2 header (its length/type fields at bytes 12..29 of the inner frame,
decoded by the outer parser's own L2 description, ``capture._describe_l2``), the inner IP
header, each IPv6 extension header, the inner TCP/UDP header. The answer is only whether the
frame is NVGRE (``Nvgre.ok``) and, when it is, where its headers are, so the checks need not
be in the model's order: the walk fails at the first header where any of the model's checks
fails. It follows the model's path while no check has failed, so it fails exactly when the
model does.

Bytes past the 256-byte window are not there: a header whose bytes the walk uses would run
past the window fails as well. The model fails such a frame too (``INNER_PAST_LIMIT`` or
earlier): an NVGRE frame's headers, contiguous up to the end of the inner TCP/UDP header, end
within 256 bytes, and every byte the walk uses lies before that end (the L2 step's 18 bytes
end at InnerFrameOffset + 30, before the end of the inner IP header's 20 bytes).

LSO sends (``lso_lengths``, a frame whose ``tuser`` LSO word is not 0): the inner IP length
field stands for the buffer's length, as ``model.nvgre.follow(lengths_from_buffer=True)``
walks it: the inner datagram ends where the outer one does (the outer length was put in
place by the hand-off; the inner one never ends earlier, since the outer datagram cannot be
longer than 65,535 bytes from the inner IP header on), so the inner IPv4 Total Length /
IPv6 Payload Length checks are not made. When the walk fails on such a frame,
``lso_refusal`` is the ``TxStatus`` the model's LSO gives for its failure
(``model.nvgre_lso`` check 5: the ``ParseError`` of the step mapped as ``model.lso`` check 4,
GRE's own failures as NOT_NVGRE or MALFORMED); a check of the 256-byte window the model
makes only at the inner TCP/UDP header counts as LSO_HEADERS_TOO_LONG. Not exact there: a
header that crosses byte 256 is not read on, so where the model's walk would go on past it
and fail for another reason (an IPv6 extension header past byte 256 that is unfollowable or
truncated), the RTL says LSO_HEADERS_TOO_LONG; an unfollowable Next Header in an inner IPv6
header that crosses byte 256 is read (LSO_NOT_TCP, as the model).

Timing: GRE, L2, L3 (and the extension headers), L4: 2 cycles each, plus one to start and one
to hand the answer back. An inner IPv4/TCP frame takes 10 cycles.
"""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nvgre as model_nvgre
from nicoffload.model import parse as model
from nicoffload.model.nbl import TxStatus

from .capture import _describe_l2
from .layouts import (HEAD_BYTES, L3_OFFSETS, L4_PROTOS, NVGRE_LAYOUT, PHASE, UNFOLLOWABLE_EXT,
                      WALKED_EXT, WINDOW_BYTES, big_endian, byte_of, frame_layout, is_one_of)
from .window import read_rows

__all__ = ["InnerWalk", "READ_BYTES"]

#: Bytes the walk reads at a header's offset (the inner L2 header's bytes 12..29).
READ_BYTES = 18
_L2_FIRST = 12          # the first inner L2 byte ``_describe_l2`` compares

_GRE_UNKNOWN = model_nvgre._GRE_UNKNOWN_FLAGS
_GRE_VERSION = model_nvgre._GRE_VERSION
#: The L2 errors ``model.lso`` check 4 calls MALFORMED (the others: LSO_NOT_TCP).
_L2_MALFORMED = (model.ParseError.RUNT, model.ParseError.L2_TRUNCATED)
_STEP = data.StructLayout({"gre": 1, "l2": 1, "l3": 1, "ext": 1, "l4": 1})


class InnerWalk(wiring.Component):
    """Walks GRE and the inner frame of the window the outer walk holds (module docstring).

    Parameters
    ----------
    width : int
        Data width W (the window memory's row).
    user_width : int
        Bits of ``tuser`` in ``frame`` (read only with ``lso_lengths``).
    lso_lengths : bool
        ``tuser`` is ``nbl.TxUser``: a frame with an LSO word is walked with buffer lengths
        (module docstring).

    Attributes
    ----------
    start : In(1)
        Begin at the GRE header at position ``gre_position`` (offset ``4k + PHASE``).
    gre_position : In(6)
    frame, head, l3_select : In
        The frame the outer walk holds, its bytes ``HEAD_BYTES`` and the one-hot offset of
        its IP header (from the hand-off): they give the outer datagram's end.
    next_row : Out(range(window rows))
        The row of the window to read in the next cycle (for the window's address registers,
        loaded with it while ``owns_read``).
    rows : In(W * read_rows(W))
        The window's rows from the row given the cycle before on, as the window memory reads
        them.
    owns_read : Out(1)
        The walk is on or starts: it owns the window's read address.
    active : Out(1)
        The walk is on.
    done : Out(1)
        ``result`` is valid (one cycle; the last of ``active``). It holds until ``start``.
    result : Out(NVGRE_LAYOUT)
    """

    def __init__(self, width, user_width, lso_lengths=False):
        self.width = width
        self.lso_lengths = lso_lengths
        self.rows_read = read_rows(width)
        nbytes = width // 8
        assert nbytes - 2 + READ_BYTES <= self.rows_read * nbytes, "a read must fit the rows"
        super().__init__({
            "start": In(1),
            "gre_position": In(6),
            "frame": In(frame_layout(user_width)),
            "head": In(8 * len(HEAD_BYTES)),
            "l3_select": In(len(L3_OFFSETS)),
            "next_row": Out(range(WINDOW_BYTES * 8 // width)),
            "rows": In(width * self.rows_read),
            "owns_read": Out(1),
            "active": Out(1),
            "done": Out(1),
            "result": Out(NVGRE_LAYOUT),
        })

    def _outer_ip_end(self, m):
        """The outer datagram's end, registered (valid from the cycle after the hand-off)."""
        ip_end = Signal(17)
        value = Signal(17)
        for i, offset in enumerate(L3_OFFSETS):
            start = offset - HEAD_BYTES[0]
            ip = self.head[8 * start:8 * (start + 10)]
            with m.If(self.l3_select[i]):
                m.d.comb += value.eq(Mux(self.frame.is4, offset + big_endian(ip, 2, 2),
                                         offset + 40 + big_endian(ip, 4, 2)))
        m.d.sync += ip_end.eq(value)
        return ip_end

    def _read(self, m, cursor_next):
        """The read cycle's bytes: ``READ_BYTES`` at the cursor (even), from the rows. The
        window's address registers and the lane register here take where the cursor goes
        (``cursor_next``), so that the read hangs on registers of its own."""
        nbytes = self.width // 8
        row_bits = (nbytes - 1).bit_length()
        lanes = nbytes // 2
        m.d.comb += self.next_row.eq(cursor_next[row_bits:8])
        words = [self.rows[16 * lane:16 * lane + 8 * READ_BYTES] for lane in range(lanes)]
        if lanes == 1:
            return words[0]
        lane = Signal(row_bits - 1, reset_less=True)
        m.d.sync += lane.eq(cursor_next[1:row_bits])
        return Cat(*words).word_select(lane, 8 * READ_BYTES)

    def elaborate(self, platform):
        m = Module()
        res = self.result
        ip_end_outer = self._outer_ip_end(m)

        step = Signal(_STEP)            # the header at ``cursor``
        deciding = Signal()             # the read is done: this cycle decides
        finished = Signal()             # the answer is in ``result``: hand it back
        cursor = Signal(12)
        cursor_next = Signal(12)        # ``cursor`` at the next cycle
        got = Signal(8 * READ_BYTES)    # the bytes read at ``cursor``
        gre = Signal(8)
        room = Signal(signed(18))       # the inner frame's length (outer ip_end - its offset)
        is4 = Signal()                  # the inner EtherType is IPv4
        proto = Signal(8)               # the protocol of the header at ``cursor`` (EXT, L4)
        routing_seen = Signal()
        lso = Signal()                  # an LSO send: inner IP length from the buffer

        m.d.comb += [
            self.done.eq(self.active & finished),
            self.owns_read.eq(self.start | self.active),
            cursor_next.eq(cursor),
        ]
        m.d.sync += cursor.eq(cursor_next)
        read = self._read(m, cursor_next)
        with m.If(self.start):
            m.d.comb += cursor_next.eq(Cat(C(PHASE, 2), self.gre_position))
            m.d.sync += [
                self.active.eq(1), finished.eq(0), deciding.eq(0), step.eq(0), step.gre.eq(1),
                gre.eq(Cat(C(PHASE, 2), self.gre_position)),
                res.eq(0),
            ]
            if self.lso_lengths:
                m.d.sync += lso.eq(self.frame.user[32:64] != 0)
        with m.Elif(self.done):
            m.d.sync += self.active.eq(0)
        with m.Elif(self.active & ~finished & ~deciding):
            m.d.sync += [got.eq(read), deciding.eq(1)]
        with m.Elif(self.active & ~finished):
            m.d.sync += deciding.eq(0)
            self._decide(m, step, cursor, cursor_next, got, gre, ip_end_outer, room, is4,
                         proto, routing_seen, finished, lso)
        return m

    def _decide(self, m, step, cursor, cursor_next, got, gre, ip_end_outer, room, is4, proto,
                routing_seen, finished, lso):
        res = self.result
        limit = WINDOW_BYTES

        def b(i):
            return byte_of(got, i)

        def fail(refusal=TxStatus.LSO_NOT_TCP):
            """The walk fails; an LSO send is refused with ``refusal`` (a TxStatus)."""
            m.d.sync += [finished.eq(1), res.is_nvgre.eq(0)]
            if self.lso_lengths:
                m.d.sync += res.lso_refusal.eq(Mux(lso, refusal, 0))

        def go(kind, at):
            m.d.sync += [step.eq(0), getattr(step, kind).eq(1)]
            m.d.comb += cursor_next.eq(at)

        def done_at(end):
            """The walk ends without TCP/UDP: NVGRE if the headers end within the window."""
            with m.If(end <= limit):
                m.d.sync += [finished.eq(1), res.is_nvgre.eq(1)]
            with m.Else():
                fail(TxStatus.LSO_HEADERS_TOO_LONG)

        def leave_ip(at, fragment, next_header):
            """The inner IP headers end at ``at``: the L4 fields, then TCP/UDP or the end."""
            m.d.sync += [res.inner_ip_header_len.eq(at - res.inner_l3), res.inner_l4.eq(at),
                         res.inner_l4_proto.eq(next_header), proto.eq(next_header)]
            with m.If(~fragment & is_one_of(next_header, L4_PROTOS)):
                go("l4", at)
            with m.Else():
                done_at(at)

        def next_ipv6(at, fragment, next_header):
            """After the IPv6 header or an extension header: the model's loop condition."""
            with m.If(~fragment & is_one_of(next_header, WALKED_EXT)):
                m.d.sync += proto.eq(next_header)
                go("ext", at)
            with m.Elif(~fragment & is_one_of(next_header, UNFOLLOWABLE_EXT)):
                fail(TxStatus.LSO_NOT_TCP)
            with m.Else():
                leave_ip(at, fragment, next_header)

        with m.If(step.gre):
            self._gre(m, b, gre, ip_end_outer, room, fail, go)
        with m.Elif(step.l2):
            self._l2(m, b, room, is4, fail, go)
        with m.Elif(step.l3):
            self._l3(m, b, cursor, ip_end_outer, is4, routing_seen, fail,
                     leave_ip, next_ipv6, lso)
        with m.Elif(step.ext):
            self._ext(m, b, cursor, proto, routing_seen, fail, next_ipv6)
        with m.Elif(step.l4):
            self._l4(m, b, cursor, proto, fail, finished)

    def _gre(self, m, b, gre, ip_end_outer, room, fail, go):
        res = self.result
        flags_high, flags_low = b(0), b(1)
        word = Cat(flags_low, flags_high)
        c, k, s = (word & model_nvgre.GRE_C) != 0, (word & model_nvgre.GRE_K) != 0, \
            (word & model_nvgre.GRE_S) != 0
        length = Signal(5)
        inner = Signal(9)
        m.d.comb += [length.eq(4 + 4 * (c + k + s)), inner.eq(gre + length)]
        truncated = gre + 4 > ip_end_outer
        not_nvgre = (((word & _GRE_VERSION) != 0) | ((word & _GRE_UNKNOWN) != 0)
                     | (big_endian(Cat(b(2), b(3)), 0, 2) != model_nvgre.ETH_P_TEB))
        options_truncated = inner > ip_end_outer
        bad = (truncated | not_nvgre | options_truncated
               | (inner + _L2_FIRST + READ_BYTES > WINDOW_BYTES))
        with m.If(bad):
            fail(Mux(truncated, TxStatus.MALFORMED,
                     Mux(not_nvgre, TxStatus.LSO_NOT_NVGRE,
                         Mux(options_truncated, TxStatus.MALFORMED,
                             TxStatus.LSO_HEADERS_TOO_LONG))))
        with m.Else():
            m.d.sync += [
                res.gre_header_len.eq(length),
                res.gre_checksum_offset.eq(Mux(c, gre + 4, 0)),
                res.gre_key_offset.eq(Mux(k, gre + 4 + 4 * c, 0)),
                res.gre_seq_offset.eq(Mux(s, gre + 4 + 4 * c + 4 * k, 0)),
                res.inner_offset.eq(inner),
                room.eq(ip_end_outer - inner),
            ]
            go("l2", inner + _L2_FIRST)

    def _l2(self, m, b, room, is4, fail, go):
        """The inner L2 header, as ``parse`` walks it, from its bytes 12..29."""
        res = self.result
        compare = {"eq": lambda x, v: x == v, "lt": lambda x, v: x < v,
                   "le": lambda x, v: x <= v}
        failed = Signal()
        refusal = Signal(4)
        l3 = Signal(9)
        found4 = Signal()

        def ip_at(offset, is_ipv4):
            m.d.comb += [l3.eq(res.inner_offset + offset), found4.eq(int(is_ipv4))]

        def failed_with(code):
            m.d.comb += [failed.eq(1), refusal.eq(
                TxStatus.MALFORMED if code in _L2_MALFORMED else TxStatus.LSO_NOT_TCP)]

        _describe_l2(m, lambda at, op, value: compare[op](b(at - _L2_FIRST), value),
                     lambda end: room < end, failed_with, ip_at)
        with m.If(failed):
            fail(refusal)
        with m.Else():
            m.d.sync += [res.inner_l3.eq(l3), is4.eq(found4)]
            go("l3", l3)

    def _l3(self, m, b, cursor, ip_end_outer, is4, routing_seen, fail, leave_ip,
            next_ipv6, lso):
        res = self.result
        version = b(0)[4:8]
        hlen = Cat(C(0, 2), b(0)[0:4])
        total = big_endian(Cat(b(2), b(3)), 0, 2)
        payload_len = big_endian(Cat(b(4), b(5)), 0, 2)
        fragment_field = big_endian(Cat(b(6), b(7)), 0, 2)
        fragment = fragment_field[13] | (fragment_field[0:13] != 0)
        # The model's order of the checks (``parse._walk_ipv4``, ``_walk_ipv6``), then the
        # window the model checks at the TCP/UDP header only.
        with m.If(is4):
            short = cursor + 20 > ip_end_outer
            bad_version = version != 4
            malformed = ((hlen < 20) | (cursor + hlen > ip_end_outer)
                         | (~lso & ((total < hlen) | (cursor + total > ip_end_outer))))
            bad = short | (cursor + 20 > WINDOW_BYTES) | bad_version | malformed
            with m.If(bad):
                fail(Mux(short, TxStatus.MALFORMED,
                         Mux(bad_version, TxStatus.LSO_NOT_TCP,
                             Mux(malformed, TxStatus.MALFORMED,
                                 TxStatus.LSO_HEADERS_TOO_LONG))))
            with m.Else():
                m.d.sync += [
                    res.inner_is_ipv4.eq(1),
                    res.inner_ip_end.eq(Mux(lso, ip_end_outer, cursor + total)),
                    res.inner_is_fragment.eq(fragment), res.inner_pseudo_dst.eq(cursor + 16),
                ]
                leave_ip(cursor + hlen, fragment, b(9))
        with m.Else():
            short = cursor + 40 > ip_end_outer
            bad_version = version != 6
            malformed = ~lso & (cursor + 40 + payload_len > ip_end_outer)
            bad = short | (cursor + 40 > WINDOW_BYTES) | bad_version | malformed
            # Past the window, the model's next step fails at once on an unfollowable Next
            # Header (byte 6 is inside the window); what it makes of any other is taken to
            # end past byte 256.
            with m.If(bad):
                fail(Mux(short, TxStatus.MALFORMED,
                         Mux(bad_version, TxStatus.LSO_NOT_TCP,
                             Mux(malformed, TxStatus.MALFORMED,
                                 Mux(is_one_of(b(6), UNFOLLOWABLE_EXT), TxStatus.LSO_NOT_TCP,
                                     TxStatus.LSO_HEADERS_TOO_LONG)))))
            with m.Else():
                m.d.sync += [
                    res.inner_is_ipv6.eq(1),
                    res.inner_ip_end.eq(Mux(lso, ip_end_outer, cursor + 40 + payload_len)),
                    res.inner_pseudo_dst.eq(cursor + 24), routing_seen.eq(0),
                ]
                next_ipv6(cursor + 40, C(0, 1), b(6))

    def _ext(self, m, b, cursor, proto, routing_seen, fail, next_ipv6):
        res = self.result
        ext_len = b(1)
        routing_type, segments_left = b(2), b(3)
        is_routing = proto == model._ROUTING
        is_fragment = proto == model._FRAGMENT
        length = Signal(12)
        with m.If(is_fragment):
            m.d.comb += length.eq(8)
        with m.Elif(proto == model._AH):
            m.d.comb += length.eq((ext_len + 2) * 4)
        with m.Else():
            m.d.comb += length.eq((ext_len + 1) * 8)
        after = Signal(12)
        m.d.comb += after.eq(cursor + length)
        final_dst_known = is_one_of(routing_type, model._ROUTING_FINAL_DST_TYPES) & \
            (ext_len >= 2)
        fragment_field = Cat(segments_left, routing_type)      # offset:13, res:2, M:1
        fragment = is_fragment & ((fragment_field[3:16] != 0) | fragment_field[0])
        misplaced = (proto == model._HOPOPT) & (cursor != res.inner_l3 + 40)
        truncated = (cursor + 8 > res.inner_ip_end) | (after > res.inner_ip_end)
        too_long = after > model.MAX_EXT_END       # (absolute, as the inner parse's)
        bad = (misplaced | truncated | (cursor + 8 > WINDOW_BYTES) | too_long
               | (is_routing & routing_seen)
               | (is_routing & (segments_left != 0) & ~final_dst_known))
        with m.If(bad):
            fail(Mux(misplaced, TxStatus.LSO_NOT_TCP,
                     Mux(truncated, TxStatus.MALFORMED,
                         Mux(too_long, TxStatus.LSO_HEADERS_TOO_LONG,
                             Mux(cursor + 8 > WINDOW_BYTES, TxStatus.LSO_HEADERS_TOO_LONG,
                                 TxStatus.LSO_NOT_TCP)))))
        with m.Else():
            with m.If(is_routing):
                m.d.sync += routing_seen.eq(1)
                with m.If(segments_left != 0):
                    m.d.sync += res.inner_pseudo_dst.eq(cursor + 8)
            with m.If(fragment):
                m.d.sync += res.inner_is_fragment.eq(1)
            next_ipv6(after, fragment, b(0))

    def _l4(self, m, b, cursor, proto, fail, finished):
        res = self.result
        ip_end = res.inner_ip_end
        with m.If(proto == model.IPPROTO_TCP):
            hlen = Cat(C(0, 2), b(12)[4:8])
            truncated = cursor + 20 > ip_end
            bad = (truncated | (cursor + 20 > WINDOW_BYTES) | (hlen < 20)
                   | (cursor + hlen > ip_end) | (cursor + hlen > WINDOW_BYTES))
            with m.If(bad):
                fail(Mux(truncated, TxStatus.MALFORMED,
                         Mux(cursor + 20 > WINDOW_BYTES, TxStatus.LSO_HEADERS_TOO_LONG,
                             Mux((hlen < 20) | (cursor + hlen > ip_end), TxStatus.MALFORMED,
                                 TxStatus.LSO_HEADERS_TOO_LONG))))
            with m.Else():
                m.d.sync += [res.inner_l4_header_len.eq(hlen), res.inner_l4_end.eq(ip_end),
                             res.is_nvgre.eq(1)]
        with m.Else():
            udp_len = big_endian(Cat(b(4), b(5)), 0, 2)
            truncated = cursor + 8 > ip_end
            bad = (truncated | (cursor + 8 > WINDOW_BYTES) | (udp_len < 8)
                   | (cursor + udp_len > ip_end))
            with m.If(bad):
                fail(Mux(truncated, TxStatus.MALFORMED,
                         Mux(cursor + 8 > WINDOW_BYTES, TxStatus.LSO_HEADERS_TOO_LONG,
                             TxStatus.LSO_NOT_TCP)))
            with m.Else():
                m.d.sync += [res.inner_l4_header_len.eq(8),
                             res.inner_l4_end.eq(cursor + udp_len), res.is_nvgre.eq(1)]
        m.d.sync += finished.eq(1)
