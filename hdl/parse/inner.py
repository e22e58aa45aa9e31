"""The inner walk: GRE and the inner frame of an NVGRE frame, like ``model.nvgre.follow``.

The outer walk (:class:`~.walk.HeaderWalk`) hands over when the upper-layer protocol of the
outer IP header is GRE (47) and the datagram is not a fragment; it waits, holding the capture
window, until this walk is done, and then takes the result into the record pipeline as one
more step (``gre``).

The walk is sequential, two cycles per header (three for the inner L2 header: see Timing):
a *read* cycle registers 18 bytes of the window at the header's offset (from the window memory's rows, then a mux over the 2-byte
lanes of a row: every inner offset is even), and a *decide* cycle makes every check the model
makes of that header, from registers, and sets where the next header is (which is also the
row the window's address registers and the lane register take, for the next read cycle).
What the decide cycle needs of the cursor alone (its sums with constants and with the ends
of the outer datagram, the inner one and the window, and their comparisons; the candidate
next positions) is worked out in the read cycle, a cycle ahead, into registers
(``InnerWalk._ahead``), so the decide cycle adds and compares only the bytes it read; where
the cursor goes depends on the header's kind and bytes, not on its checks (a walk that fails
reads no more), and each header writes its fields whether or not they pass (``result`` is
read only when ``is_nvgre``), so only the answer waits on the checks.
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

Timing: GRE, L3 (and the extension headers), L4: 2 cycles each, the inner L2 header 4 (the
comparisons of its bytes with constants are registered, then their decode, before the decide
cycle uses it: the comparisons and the decode in one cycle were nine levels of logic, the
deepest paths of the TX parser), plus one to start and one to hand the answer back. An inner
IPv4/TCP frame takes 12 cycles.
"""

from types import SimpleNamespace

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nvgre as model_nvgre
from nicoffload.model import parse as model
from nicoffload.model.nbl import TxStatus

from .capture import L2_COMPARISONS, _describe_l2, _flag_name, compare_field
from .layouts import (L2_ENDS, L3_OFFSETS, L4_PROTOS, NVGRE_LAYOUT, PHASE,
                      UNFOLLOWABLE_EXT, WALKED_EXT, WINDOW_BYTES, big_endian, byte_of,
                      frame_layout, is_one_of)
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
    frame, l3_headers, l3_select : In
        The frame the outer walk holds, an IP header's first ten bytes at each offset and the
        one-hot offset of its IP header (from the hand-off): they give the outer datagram's
        end.
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
            "l3_headers": In(data.ArrayLayout(80, len(L3_OFFSETS))),
            "l3_select": In(len(L3_OFFSETS)),
            "next_row": Out(range(WINDOW_BYTES * 8 // width)),
            "rows": In(width * self.rows_read),
            "owns_read": Out(1),
            "active": Out(1),
            "done": Out(1),
            "result": Out(NVGRE_LAYOUT),
        })

    def _outer_ip_end(self, m):
        """The outer datagram's end, and the same less 8 and less 40 (signed), in two
        registered stages: the IP header's length field and offset chosen (by ``l3_select``
        and the version), then one adder each. The hand-off's registers load in a take's
        cycle t; the ends are valid from t + 3, the cycle the inner walk reads at the
        earliest (the outer walk's L3 step at t + 1 starts it, ``start`` at t + 2, its first
        read at t + 3 works out ``_ahead``'s sums with them)."""
        field = Signal(16, name="ip_length_field_outer")
        bases = {less: Signal(signed(8), name=f"ip_payload_at_outer_less{less}")
                 for less in (0, 8, 40)}
        for i, offset in enumerate(L3_OFFSETS):
            ip = self.l3_headers[i]
            with m.If(self.l3_select[i]):
                m.d.sync += field.eq(Mux(self.frame.is4, big_endian(ip, 2, 2),
                                         big_endian(ip, 4, 2)))
                m.d.sync += [base.eq(Mux(self.frame.is4, offset - less, offset + 40 - less))
                             for less, base in bases.items()]
        ends = {}
        for less, base in bases.items():
            ip_end = Signal(signed(18) if less else 17, name=f"ip_end_outer_less{less}"
                            if less else "ip_end_outer")
            m.d.sync += ip_end.eq(base + field)
            ends[less] = ip_end
        return ends

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

    def _ahead(self, m, walk):
        """What the decide cycle needs of the cursor and of registers alone: its sums with
        them and their comparisons, worked out in the read cycle (registered every cycle; the
        decide cycle reads them, the cursor and those registers unchanged since), so that the
        decide cycle adds and compares only what it reads. Each is one adder or subtractor
        (a carry chain) and at most a comparison with a constant: "cursor + k runs past the
        end" is "the room left to the end is less than k", sums with two constants are one.
        ``outer``/``inner``: the outer datagram's end, the inner one's (from the L3 step);
        ``room`` the inner frame's length (from the GRE step)."""
        res, cursor = self.result, walk.cursor
        ahead = SimpleNamespace()

        def registered(name, value, shape=1):
            reg = Signal(shape, name=f"ahead_{name}", reset_less=True)
            m.d.sync += reg.eq(value)
            return reg

        # What is left up to each end from the cursor (signed: the cursor may be past it).
        at = Cat(cursor, C(0, 1)).as_signed()
        outer_room = walk.ip_end_outer - at
        inner_room = res.inner_ip_end - at
        ahead.outer_room = registered("outer_room", outer_room, signed(19))
        ahead.outer_room40 = registered("outer_room40", walk.ip_end_outer_less[40] - at,
                                        signed(19))
        ahead.inner_room = registered("inner_room", inner_room, signed(19))
        ahead.inner_room8 = registered("inner_room8", walk.inner_end_less8 - at, signed(19))
        ahead.window_room = registered("window_room", WINDOW_BYTES - at, signed(14))
        ahead.window_room8 = registered("window_room8", (WINDOW_BYTES - 8) - at, signed(14))
        ahead.ext_limit_room8 = registered("ext_limit_room8", (model.MAX_EXT_END - 8) - at,
                                           signed(14))
        # "cursor + k runs past the end": the IP lengths, the 256-byte window.
        ahead.outer_short = {k: registered(f"outer_short{k}", outer_room < k)
                             for k in (4, 8, 12, 16, 20, 40)}
        ahead.inner_short = {k: registered(f"inner_short{k}", inner_room < k) for k in (8, 20)}
        ahead.window_short = {k: registered(f"window_short{k}", cursor > WINDOW_BYTES - k)
                              for k in (8, 20, 40)
                              + tuple(4 + 4 * n + _L2_FIRST + READ_BYTES for n in range(4))}
        # Where headers start: GRE's fields and the inner frame (4 + 4 * (C + K + S) on),
        # the next L2 read (12 bytes into the inner frame), the inner IP header at each
        # offset the L2 decode can find, behind an IPv6 header, behind an extension header.
        ahead.gre_after = [registered(f"gre_after{n}", cursor + (4 + 4 * n), 9)
                           for n in range(4)]
        ahead.l2_read = [registered(f"l2_read{n}", cursor + (4 + 4 * n + _L2_FIRST), 12)
                         for n in range(4)]
        ahead.l3_at = {offset: SimpleNamespace(**{
            name: registered(f"l3_at{offset}_{name}", res.inner_offset + (offset + k), 10)
            for name, k in (("l3", 0), ("less8", -8), ("plus40", 40))}) for offset in L3_OFFSETS}
        ahead.after40 = registered("after40", cursor + 40, 12)
        ahead.after32 = registered("after32", cursor + 32, 12)
        ahead.after8 = registered("after8", cursor + 8, 12)
        ahead.less8 = registered("less8", at - 8, signed(14))
        ahead.ext_header_len8 = registered("ext_header_len8", cursor - walk.l3_less8, 8)
        ahead.misplaced = registered("misplaced", cursor != walk.l3_plus40)
        # The L2 decode's "the inner frame ends before byte e".
        ahead.l2_short = {end: registered(f"l2_short{end}", walk.room < end) for end in L2_ENDS}
        # The extension header's kind.
        ahead.proto_is = {name: registered(f"proto_is_{name}", walk.proto == value)
                          for name, value in (("hopopt", model._HOPOPT), ("ah", model._AH),
                                              ("routing", model._ROUTING),
                                              ("fragment", model._FRAGMENT),
                                              ("tcp", model.IPPROTO_TCP))}
        return ahead

    def _ext_beyond(self, m, walk, read):
        """An extension header's length less 8 (Fragment 0, AH ``(len + 2) * 4 - 8``, any
        other ``(len + 1) * 8 - 8``), worked out in the read cycle from the bytes read and
        the header's kind (``proto``, set by the header before), registered every cycle: the
        decide cycle adds and compares it, not a choice over ``got`` (that choice in front
        of the room compares was the TX path's critical path at one seed)."""
        beyond = Signal(11, name="ext_beyond", reset_less=True)
        ext_len = byte_of(read, 1)
        m.d.sync += beyond.eq(Mux(walk.proto == model._FRAGMENT, 0,
                                  Mux(walk.proto == model._AH, ext_len << 2, ext_len << 3)))
        return beyond

    def elaborate(self, platform):
        m = Module()
        res = self.result
        ip_end_outer = self._outer_ip_end(m)

        walk = SimpleNamespace(
            step=Signal(_STEP, name="step"),            # the header at ``cursor``
            finished=Signal(name="finished"),   # the answer is in ``result``: hand it back
            cursor=Signal(12, name="cursor"),
            got=Signal(8 * READ_BYTES, name="got"),     # the bytes read at ``cursor``
            # The inner frame's length (outer ip_end - its offset).
            room=Signal(signed(18), name="room"),
            is4=Signal(name="is4"),                     # the inner EtherType is IPv4
            # The protocol of the header at ``cursor`` (EXT, L4).
            proto=Signal(8, name="proto"),
            routing_seen=Signal(name="routing_seen"),
            # An LSO send: inner IP length from the buffer.
            lso=Signal(name="lso"),
            ip_end_outer=ip_end_outer[0],
            ip_end_outer_less=ip_end_outer,
            # ``inner_l3`` less 8 and plus 40, and ``inner_ip_end`` less 8 (for the extension
            # headers' sums).
            l3_less8=Signal(10, name="l3_less8"), l3_plus40=Signal(10, name="l3_plus40"),
            inner_end_less8=Signal(signed(19), name="inner_end_less8"),
        )
        walk.ahead = self._ahead(m, walk)
        walk.l2 = self._l2_decode(m, walk)
        # The read is done: this cycle decides (only ever set while the walk is on and not
        # finished, so never with ``start`` or ``done``).
        deciding = Signal()
        # An L2 step decides two cycles later: its first decide cycle registers the byte
        # comparisons of ``got``, its second their decode (``walk.l2``), the cursor holding;
        # ``l2_compared`` and ``l2_decoded``: those cycles are past.
        l2_compared, l2_decoded = Signal(), Signal()
        l2_decoding = Signal()
        m.d.comb += l2_decoding.eq(deciding & walk.step.l2 & ~l2_decoded)
        cursor_next = Signal(12)        # ``cursor`` at the next cycle
        next_at = Signal(12)            # where the cursor goes from a decide cycle

        m.d.comb += [
            self.done.eq(self.active & walk.finished),
            self.owns_read.eq(self.start | self.active),
        ]
        # Where the cursor goes: at the start, the GRE header; from a decide cycle, where
        # that header's kind says the next one is, whatever its checks say (a walk that
        # fails reads no more).
        with m.If(self.start):
            m.d.comb += cursor_next.eq(Cat(C(PHASE, 2), self.gre_position))
        with m.Elif(deciding & ~l2_decoding):
            m.d.comb += cursor_next.eq(next_at)
        with m.Else():
            m.d.comb += cursor_next.eq(walk.cursor)
        m.d.sync += walk.cursor.eq(cursor_next)
        read = self._read(m, cursor_next)
        walk.beyond = self._ext_beyond(m, walk, read)
        next_by_kind = {}
        with m.If(self.start):
            m.d.sync += [
                self.active.eq(1), walk.finished.eq(0), deciding.eq(0), walk.step.eq(0),
                walk.step.gre.eq(1), res.eq(0), l2_compared.eq(0), l2_decoded.eq(0),
            ]
            if self.lso_lengths:
                m.d.sync += walk.lso.eq(self.frame.user[32:64] != 0)
        with m.Elif(self.done):
            m.d.sync += self.active.eq(0)
        with m.Elif(l2_decoding):                   # ``deciding`` stays
            m.d.sync += [l2_compared.eq(1), l2_decoded.eq(l2_compared)]
        with m.Elif(deciding):
            m.d.sync += [deciding.eq(0), l2_compared.eq(0), l2_decoded.eq(0)]
            next_by_kind = self._decide(m, walk)
        with m.Elif(self.active & ~walk.finished):
            m.d.sync += [walk.got.eq(read), deciding.eq(1)]
        # ``step`` is one-hot: an AND-OR of the kinds' next positions.
        m.d.comb += next_at.eq(_one_hot_or(
            [(getattr(walk.step, kind), at) for kind, at in next_by_kind.items()], 12))
        return m

    def _decide(self, m, walk):
        """The decide cycle's writes; returns where the next header is, by the kind of this
        one (an expression of ``got`` and registers, valid while ``step`` is that kind)."""
        res = self.result
        step = walk.step

        def b(i):
            return byte_of(walk.got, i)

        def fail(refusal=TxStatus.LSO_NOT_TCP):
            """The walk fails; an LSO send is refused with ``refusal`` (a TxStatus)."""
            m.d.sync += [walk.finished.eq(1), res.is_nvgre.eq(0)]
            if self.lso_lengths:
                m.d.sync += res.lso_refusal.eq(Mux(walk.lso, refusal, 0))

        def go(kind):
            m.d.sync += [step.eq(0), getattr(step, kind).eq(1)]

        def leave_ip(header_len, at, fits, fragment, next_header):
            """The inner IP headers end at ``at`` (``header_len`` bytes from ``inner_l3``;
            ``fits``: ``at`` is within the window): the L4 fields, then TCP/UDP or the end
            (NVGRE if the headers end within the window)."""
            m.d.sync += [res.inner_ip_header_len.eq(header_len), res.inner_l4.eq(at),
                         res.inner_l4_proto.eq(next_header), walk.proto.eq(next_header)]
            with m.If(~fragment & is_one_of(next_header, L4_PROTOS)):
                go("l4")
            with m.Elif(fits):
                m.d.sync += [walk.finished.eq(1), res.is_nvgre.eq(1)]
            with m.Else():
                fail(TxStatus.LSO_HEADERS_TOO_LONG)

        def next_ipv6(header_len, at, fits, fragment, next_header):
            """After the IPv6 header or an extension header: the model's loop condition."""
            with m.If(~fragment & is_one_of(next_header, WALKED_EXT)):
                m.d.sync += walk.proto.eq(next_header)
                go("ext")
            with m.Elif(~fragment & is_one_of(next_header, UNFOLLOWABLE_EXT)):
                fail(TxStatus.LSO_NOT_TCP)
            with m.Else():
                leave_ip(header_len, at, fits, fragment, next_header)

        # Each kind of header writes what it finds and goes on whether or not its checks
        # pass (a failed walk's fields are never read: ``is_nvgre`` is 0), then fails if
        # they do not: only ``finished``, ``is_nvgre`` and ``lso_refusal`` wait on them.
        next_by_kind = {}
        with m.If(step.gre):
            next_by_kind["gre"] = self._gre(m, b, walk, fail, go)
        with m.Elif(step.l2):
            next_by_kind["l2"] = self._l2(m, walk, fail, go)
        with m.Elif(step.l3):
            next_by_kind["l3"] = self._l3(m, b, walk, fail, leave_ip, next_ipv6)
        with m.Elif(step.ext):
            next_by_kind["ext"] = self._ext(m, b, walk, fail, next_ipv6)
        with m.Elif(step.l4):
            self._l4(m, b, walk, fail)
        return next_by_kind

    def _gre(self, m, b, walk, fail, go):
        """The GRE header; returns where the next read is (the inner L2 bytes 12..29)."""
        res, ahead = self.result, walk.ahead
        flags_high, flags_low = b(0), b(1)
        word = Cat(flags_low, flags_high)
        c, k, s = (word & model_nvgre.GRE_C) != 0, (word & model_nvgre.GRE_K) != 0, \
            (word & model_nvgre.GRE_S) != 0
        words = c + k + s               # optional 4-byte words

        def by_words(values, index=words):
            return Cat(*values).word_select(index, len(values[0]))

        truncated = ahead.outer_short[4]
        not_nvgre = (((word & _GRE_VERSION) != 0) | ((word & _GRE_UNKNOWN) != 0)
                     | (big_endian(Cat(b(2), b(3)), 0, 2) != model_nvgre.ETH_P_TEB))
        options_truncated = by_words([ahead.outer_short[4 + 4 * n] for n in range(4)])
        too_long = by_words([ahead.window_short[4 + 4 * n + _L2_FIRST + READ_BYTES]
                             for n in range(4)])
        length = Cat(C(0, 2), words + 1)
        m.d.sync += [
            res.gre_header_len.eq(length),
            res.gre_checksum_offset.eq(Mux(c, ahead.gre_after[0], 0)),
            res.gre_key_offset.eq(Mux(k, by_words(ahead.gre_after[:2], c), 0)),
            res.gre_seq_offset.eq(Mux(s, by_words(ahead.gre_after[:3] + [C(0, 9)], c + k), 0)),
            res.inner_offset.eq(by_words(ahead.gre_after)),
            walk.room.eq(ahead.outer_room - length),
        ]
        go("l2")
        with m.If(truncated | not_nvgre | options_truncated | too_long):
            fail(Mux(truncated, TxStatus.MALFORMED,
                     Mux(not_nvgre, TxStatus.LSO_NOT_NVGRE,
                         Mux(options_truncated, TxStatus.MALFORMED,
                             TxStatus.LSO_HEADERS_TOO_LONG))))
        return by_words(ahead.l2_read)

    def _l2_decode(self, m, walk):
        """The inner L2 header, as ``parse`` walks it, from its bytes 12..29 (``got``, valid
        in an L2 step's decide cycles): whether it fails and why, where the IP header is,
        registered (valid in the L2 step's third decide cycle). The byte comparisons with
        constants are registered a cycle before (valid from the second)."""
        ahead = walk.ahead
        decoded = SimpleNamespace(failed=Signal(name="l2_failed"),
                                  refusal=Signal(4, name="l2_refusal"),
                                  l3=Signal(9, name="l2_l3"), is4=Signal(name="l2_is4"),
                                  l3_less8=Signal(10, name="l2_l3_less8"),
                                  l3_plus40=Signal(10, name="l2_l3_plus40"))

        def ip_at(offset, is_ipv4):
            at = ahead.l3_at[offset]
            m.d.comb += [decoded.l3.eq(at.l3), decoded.l3_less8.eq(at.less8),
                         decoded.l3_plus40.eq(at.plus40), decoded.is4.eq(int(is_ipv4))]

        def failed_with(code):
            m.d.comb += [decoded.failed.eq(1), decoded.refusal.eq(
                TxStatus.MALFORMED if code in _L2_MALFORMED else TxStatus.LSO_NOT_TCP)]

        compared = {}
        for at, op, value in L2_COMPARISONS:
            flag = Signal(name=f"l2_{_flag_name(at, op, value)}", reset_less=True)
            m.d.sync += flag.eq(compare_field(op, value, walk.got[8 * (at - _L2_FIRST):]))
            compared[at, op, value] = flag
        _describe_l2(m, lambda at, op, value: compared[at, op, value],
                     lambda end: ahead.l2_short[end], failed_with, ip_at)
        # Registered every cycle: read in the L2 step's third decide cycle (``got`` and the
        # ``ahead`` registers it reads hold from the first).
        registered = SimpleNamespace()
        for name, value in vars(decoded).items():
            registered.__dict__[name] = Signal.like(value, name=f"{value.name}_registered",
                                                    reset_less=True)
            m.d.sync += registered.__dict__[name].eq(value)
        return registered

    def _l2(self, m, walk, fail, go):
        """Takes the L2 decode; returns where the inner IP header is."""
        decoded = walk.l2
        m.d.sync += [self.result.inner_l3.eq(decoded.l3), walk.is4.eq(decoded.is4),
                     walk.l3_less8.eq(decoded.l3_less8), walk.l3_plus40.eq(decoded.l3_plus40)]
        go("l3")
        with m.If(decoded.failed):
            fail(decoded.refusal)
        return decoded.l3

    def _l3(self, m, b, walk, fail, leave_ip, next_ipv6):
        """The inner IP header (at ``inner_l3``); returns where the header after it is."""
        res, ahead, cursor, lso = self.result, walk.ahead, walk.cursor, walk.lso
        version = b(0)[4:8]
        hlen = Cat(C(0, 2), b(0)[0:4])
        total = big_endian(Cat(b(2), b(3)), 0, 2)
        payload_len = big_endian(Cat(b(4), b(5)), 0, 2)
        fragment_field = big_endian(Cat(b(6), b(7)), 0, 2)
        fragment = fragment_field[13] | (fragment_field[0:13] != 0)
        after4 = cursor + hlen
        # The model's order of the checks (``parse._walk_ipv4``, ``_walk_ipv6``), then the
        # window the model checks at the TCP/UDP header only. ``x > room``: the header's
        # cursor + x runs past that end.
        with m.If(walk.is4):
            short = ahead.outer_short[20]
            bad_version = version != 4
            malformed = ((hlen < 20) | (hlen > ahead.outer_room)
                         | (~lso & ((total < hlen) | (total > ahead.outer_room))))
            m.d.sync += [
                res.inner_is_ipv4.eq(1),
                res.inner_ip_end.eq(Mux(lso, walk.ip_end_outer, cursor + total)),
                walk.inner_end_less8.eq(Mux(lso, walk.ip_end_outer_less[8],
                                            ahead.less8 + total)),
                res.inner_is_fragment.eq(fragment), res.inner_pseudo_dst.eq(cursor + 16),
            ]
            leave_ip(hlen, after4, hlen <= ahead.window_room, fragment, b(9))
            with m.If(short | ahead.window_short[20] | bad_version | malformed):
                fail(Mux(short, TxStatus.MALFORMED,
                         Mux(bad_version, TxStatus.LSO_NOT_TCP,
                             Mux(malformed, TxStatus.MALFORMED,
                                 TxStatus.LSO_HEADERS_TOO_LONG))))
        with m.Else():
            short = ahead.outer_short[40]
            bad_version = version != 6
            malformed = ~lso & (payload_len > ahead.outer_room40)
            m.d.sync += [
                res.inner_is_ipv6.eq(1),
                res.inner_ip_end.eq(Mux(lso, walk.ip_end_outer, ahead.after40 + payload_len)),
                walk.inner_end_less8.eq(Mux(lso, walk.ip_end_outer_less[8],
                                            ahead.after32 + payload_len)),
                res.inner_pseudo_dst.eq(cursor + 24), walk.routing_seen.eq(0),
            ]
            next_ipv6(40, ahead.after40, ~ahead.window_short[40], C(0, 1), b(6))
            # Past the window, the model's next step fails at once on an unfollowable Next
            # Header (byte 6 is inside the window); what it makes of any other is taken to
            # end past byte 256.
            with m.If(short | ahead.window_short[40] | bad_version | malformed):
                fail(Mux(short, TxStatus.MALFORMED,
                         Mux(bad_version, TxStatus.LSO_NOT_TCP,
                             Mux(malformed, TxStatus.MALFORMED,
                                 Mux(is_one_of(b(6), UNFOLLOWABLE_EXT), TxStatus.LSO_NOT_TCP,
                                     TxStatus.LSO_HEADERS_TOO_LONG)))))
        return Mux(walk.is4, after4, ahead.after40)

    def _ext(self, m, b, walk, fail, next_ipv6):
        """An IPv6 extension header; returns where the header after it is."""
        res, ahead, cursor = self.result, walk.ahead, walk.cursor
        is_ = ahead.proto_is
        ext_len = b(1)
        routing_type, segments_left = b(2), b(3)
        beyond = walk.beyond            # its length is 8 + ``beyond``
        after = Signal(12)
        m.d.comb += after.eq(ahead.after8 + beyond)
        final_dst_known = is_one_of(routing_type, model._ROUTING_FINAL_DST_TYPES) & \
            (ext_len >= 2)
        fragment_field = Cat(segments_left, routing_type)      # offset:13, res:2, M:1
        fragment = is_["fragment"] & ((fragment_field[3:16] != 0) | fragment_field[0])
        misplaced = is_["hopopt"] & ahead.misplaced
        truncated = ahead.inner_short[8] | (beyond > ahead.inner_room8)
        too_long = beyond > ahead.ext_limit_room8   # (absolute, as the inner parse's)
        with m.If(is_["routing"]):
            m.d.sync += walk.routing_seen.eq(1)
            with m.If(segments_left != 0):
                m.d.sync += res.inner_pseudo_dst.eq(cursor + 8)
        with m.If(fragment):
            m.d.sync += res.inner_is_fragment.eq(1)
        next_ipv6(ahead.ext_header_len8 + beyond, after, beyond <= ahead.window_room8, fragment,
                  b(0))
        bad = (misplaced | truncated | ahead.window_short[8] | too_long
               | (is_["routing"] & walk.routing_seen)
               | (is_["routing"] & (segments_left != 0) & ~final_dst_known))
        with m.If(bad):
            fail(Mux(misplaced, TxStatus.LSO_NOT_TCP,
                     Mux(truncated, TxStatus.MALFORMED,
                         Mux(too_long, TxStatus.LSO_HEADERS_TOO_LONG,
                             Mux(ahead.window_short[8], TxStatus.LSO_HEADERS_TOO_LONG,
                                 TxStatus.LSO_NOT_TCP)))))
        return after

    def _l4(self, m, b, walk, fail):
        res, ahead, cursor = self.result, walk.ahead, walk.cursor
        ip_end = res.inner_ip_end
        with m.If(ahead.proto_is["tcp"]):
            hlen = Cat(C(0, 2), b(12)[4:8])
            truncated = ahead.inner_short[20]
            past_window = ahead.window_short[20]
            malformed = (hlen < 20) | (hlen > ahead.inner_room)
            m.d.sync += [res.inner_l4_header_len.eq(hlen), res.inner_l4_end.eq(ip_end),
                         res.is_nvgre.eq(1)]
            with m.If(truncated | past_window | malformed | (hlen > ahead.window_room)):
                fail(Mux(truncated, TxStatus.MALFORMED,
                         Mux(past_window, TxStatus.LSO_HEADERS_TOO_LONG,
                             Mux(malformed, TxStatus.MALFORMED,
                                 TxStatus.LSO_HEADERS_TOO_LONG))))
        with m.Else():
            udp_len = big_endian(Cat(b(4), b(5)), 0, 2)
            truncated = ahead.inner_short[8]
            past_window = ahead.window_short[8]
            m.d.sync += [res.inner_l4_header_len.eq(8),
                         res.inner_l4_end.eq(cursor + udp_len), res.is_nvgre.eq(1)]
            with m.If(truncated | past_window | (udp_len < 8) | (udp_len > ahead.inner_room)):
                fail(Mux(truncated, TxStatus.MALFORMED,
                         Mux(past_window, TxStatus.LSO_HEADERS_TOO_LONG,
                             TxStatus.LSO_NOT_TCP)))
        m.d.sync += walk.finished.eq(1)


def _one_hot_or(choices, width):
    """The value of the one ``(select, value)`` whose select is 1 (0 if none): an AND-OR."""
    result = C(0, width)
    for select, value in choices:
        result = result | Mux(select, value, 0)
    return result
