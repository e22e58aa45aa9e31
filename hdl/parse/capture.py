"""Capture window and L2 decode: the first 256 bytes of a frame, and where its IP header is."""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import parse as model

from ..axis import axis_layout
from .layouts import (EXT_FIELDS_LAYOUT, EXT_POSITIONS, HEAD_BYTES, L2_ENDS, L3_OFFSETS, PHASE,
                      WINDOW_BYTES, capture_layout)
from .window import WindowWriteSignature

__all__ = ["L2_FLAGS_LAYOUT", "CaptureWindow", "L2Decode"]

_COMPARE = {"eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}


def compare_field(op, value, rest):
    """The L2 decode's comparison ``op`` (``eq``, ``lt``, ``le`` of a byte; ``eq16``, ``le16``
    of the 16-bit field in wire order) of the bytes from its offset on (``rest``, the first
    byte in bits 0..7) with ``value``."""
    if op.endswith("16"):
        return _COMPARE[op[:-2]](Cat(rest[8:16], rest[0:8]), value)
    return _COMPARE[op](rest[0:8], value)


def _flag_name(at, op, value):
    if op.endswith("16"):
        return f"word{at}_{op[:-2]}_{value:04x}"
    return f"byte{at}_{op}_{value:02x}"


def _short_name(end):
    return f"short{end}"


def _describe_l2(m, byte_is, short, fail, ip_at):
    """The model's L2 walk (``model.parse``, checks 1 to 3) in ``m``'s control flow.

    ``byte_is(at, op, value)`` is the flag "the byte at ``at`` of the window ``op`` (eq)
    ``value``", or for ``eq16`` and ``le16`` "the 16-bit field at ``at`` (even) ..."
    (:func:`compare_field`), ``short(end)`` the flag "the frame ends before byte ``end``";
    ``fail(code)`` and ``ip_at(offset, is_ipv4)`` record the outcome. A 16-bit field at an
    even offset is one flag, not two bytes' (its bytes arrive in the same beat): 37 flags in
    all where there were 56, and the decode's deepest paths a level shorter.
    """
    def field_is(at, value, n=2):          # the n bytes from ``at`` == value (wire order)
        flags, i = [], 0
        while i < n:
            if (at + i) % 2 == 0 and i + 1 < n:
                flags.append(byte_is(at + i, "eq16", (value >> 8 * (n - 2 - i)) & 0xFFFF))
                i += 2
            else:
                flags.append(byte_is(at + i, "eq", (value >> 8 * (n - 1 - i)) & 0xFF))
                i += 1
        return Cat(*flags).all()

    def field_at_most(at, value):           # the 16-bit field at ``at`` (even) <= value
        assert at % 2 == 0
        return byte_is(at, "le16", value)

    def ip(offset, type_at):
        with m.If(field_is(type_at, model.ETH_P_IPV4)):
            ip_at(offset, True)
        with m.Elif(field_is(type_at, model.ETH_P_IPV6)):
            ip_at(offset, False)
        with m.Else():
            fail(model.ParseError.NOT_IP)

    def after_type(offset):                 # ``offset``: just past the length/type field
        type_at = offset - 2
        with m.If(field_at_most(type_at, 1500)):
            snap_ok = field_is(offset, 0xAAAA03, 3) & Cat(*[field_is(offset + 3, oui, 3)
                                                            for oui in model.SNAP_OUIS]).any()
            with m.If(short(offset + model.LLC_SNAP_LEN)):
                fail(model.ParseError.L2_TRUNCATED)
            with m.Elif(~snap_ok):
                fail(model.ParseError.NOT_SNAP)
            with m.Else():
                ip(offset + model.LLC_SNAP_LEN, offset + 6)
        with m.Elif(field_at_most(type_at, 0x05FF)):
            fail(model.ParseError.BAD_LENGTH_TYPE)
        with m.Else():
            ip(offset, type_at)

    def tags(count):                        # the length/type field at 12 + 4 * count
        offset = 12 + model.VLAN_TAG_LEN * count
        with m.If(Cat(*[field_is(offset, tpid) for tpid in model.VLAN_TPIDS]).any()):
            if count == model.MAX_VLAN_TAGS:
                fail(model.ParseError.TOO_MANY_VLAN_TAGS)
            else:
                with m.If(short(offset + model.VLAN_TAG_LEN + 2)):
                    fail(model.ParseError.L2_TRUNCATED)
                with m.Else():
                    tags(count + 1)
        with m.Else():
            after_type(offset + 2)

    with m.If(short(model.ETH_HEADER_LEN)):
        fail(model.ParseError.RUNT)
    with m.Else():
        tags(0)


def _l2_comparisons():
    """The byte comparisons the L2 decode makes, as (at, op, value), found by describing it."""
    seen = {}

    def byte_is(at, op, value):
        return seen.setdefault((at, op, value), Signal())

    scratch = Module()
    _describe_l2(scratch, byte_is, lambda end: Signal(), lambda code: None,
                 lambda offset, is_ipv4: None)
    Fragment.get(scratch, None)     # a description only: nothing to elaborate
    return sorted(seen)


#: The comparisons of bytes 12..29 with constants that the L2 decode needs, as (at, op,
#: value); the capture makes them as the bytes arrive.
L2_COMPARISONS = _l2_comparisons()
assert all(end <= WINDOW_BYTES for end in L2_ENDS)

#: The flags the capture hands to the L2 decode: one per comparison, one per frame length.
L2_FLAGS_LAYOUT = data.StructLayout(
    {_flag_name(*key): 1 for key in L2_COMPARISONS} | {_short_name(end): 1 for end in L2_ENDS})


class CaptureWindow(wiring.Component):
    """The first ``WINDOW_BYTES`` bytes of a frame, beat by beat, until the walk takes them.

    The bytes go to the window memory (:class:`WindowStore`), one beat per row, into the bank
    the walk is not reading; the walk takes a complete window by switching banks. The window is
    complete on the frame's last beat or on its 256th byte; later beats of the frame are not
    captured. As each beat is written, what the walk needs of every position at once is kept in
    registers: the comparisons the L2 decode makes with constants and with the frame length
    (:data:`L2_FLAGS_LAYOUT`), the bytes an IP header can span (``HEAD_BYTES``) and the fields
    of an extension header at each position (:data:`EXT_FIELDS_LAYOUT`).

    Parameters
    ----------
    width : int
        Data width W.
    user_width : int
        Bits of ``tuser``; the first beat's is kept.

    Attributes
    ----------
    beat : In(axis_layout(W, user_width))
        The beat on the parser's input, whether or not it is taken.
    accept : In(1)
        The beat is taken this cycle. The parent takes a beat only when ``past`` or not
        ``full`` or ``take``.
    take : In(1)
        The walk takes the complete window this cycle (only while ``full``).
    take_allowed_next : In(1)
        The walk can take a window in the next cycle, if one waits there (the walk's and the
        record FIFO's part of ``take`` a cycle ahead): for ``free``.
    full : Out(1)
        A complete window waits for the walk; ``info``, ``flags``, ``head`` and
        ``ext_fields`` are valid.
    past : Out(1)
        The frame on the input is past the window: its beats are not captured.
    free : Out(1)
        A flip-flop: the window is not full, or the walk takes it this cycle (``~full |
        take``): a beat can be captured.
    store : Out(WindowWriteSignature(W, window_beats))
        The writes into the window memory, registered: a beat's write is one cycle after it.
    walk_bank : Out(1)
        The bank of the window memory that holds the window the walk took last.
    info : Out(capture_layout(user_width))
        Bytes in the window, whether the frame ended in it, the first beat's ``tuser``.
    flags : Out(L2_FLAGS_LAYOUT)
        The L2 decode's comparisons of the window's bytes and length.
    head : Out(8 * len(HEAD_BYTES))
        Bytes ``HEAD_BYTES`` of the window.
    ext_fields : Out(data.ArrayLayout(EXT_FIELDS_LAYOUT, len(EXT_POSITIONS)))
        For each position of ``EXT_POSITIONS``, the fields of an extension header there.
        Bytes past the frame's end are stale, in the memory and in the registers alike.
    """

    def __init__(self, width, user_width, lso_lengths=False):
        self.width = width
        self.user_width = user_width
        self.lso_lengths = lso_lengths
        self.window_beats = WINDOW_BYTES * 8 // width
        super().__init__({
            "beat": In(axis_layout(width, user_width)),
            "accept": In(1),
            "take": In(1),
            "take_allowed_next": In(1),
            "full": Out(1),
            "past": Out(1),
            "free": Out(1, init=1),
            "store": Out(WindowWriteSignature(width, self.window_beats)),
            "walk_bank": Out(1),
            "info": Out(capture_layout(user_width, lso_lengths)),
            "flags": Out(L2_FLAGS_LAYOUT),
            "head": Out(8 * len(HEAD_BYTES)),
            "ext_fields": Out(data.ArrayLayout(EXT_FIELDS_LAYOUT, len(EXT_POSITIONS))),
        })

    def _byte_registers(self):
        """(byte of the window, register, what it keeps of the bytes from there on) for every
        byte kept."""
        kept = []
        for i, at in enumerate(HEAD_BYTES):
            kept.append((at, self.head[8 * i:8 * i + 8], lambda rest: rest[0:8]))
        for entry, position in enumerate(EXT_POSITIONS):
            fields = self.ext_fields[entry]
            at = 4 * position + PHASE
            kept += [
                (at, fields.next_header, lambda rest: rest[0:8]),
                (at + 1, fields.length, lambda rest: rest[0:8]),
                (at + 2, fields.fragment_high, lambda rest: rest[0:8] != 0),
                (at + 3, fields.fragment_low, lambda rest: (rest[0:8] & 0xF9) != 0),
            ]
        return kept

    def _lso_substitutes(self, m, user):
        """With ``lso_lengths`` (``tuser`` is ``nbl.TxUser``): what stands for the IP length
        of an LSO send, as ``model.lso`` check 4 walks it, for an IP header at each offset
        (IPv4: ``min(n - l3, 0xFFFF)``; IPv6: ``min(max(n - l3 - 40, 0), 0xFFFF)``; the frame
        holds the field when ``n >= field + 2``), worked out from the length word as the first
        beat arrives, so that the hand-off only chooses."""
        length = user[96:128]
        m.d.sync += self.info.lso.eq(user[32:64] != 0)
        # Each bound is a comparison of the length word with a constant, beside the
        # subtraction (not a comparison of its result): one carry chain deep. An IPv4
        # value below ``offset + 4`` is never used (``holds4`` is 0 there).
        for i, offset in enumerate(L3_OFFSETS):
            rest4 = Signal(16, name=f"lso_rest4_at{offset}")
            rest6 = Signal(16, name=f"lso_rest6_at{offset}")
            m.d.comb += [rest4.eq(length - offset), rest6.eq(length - (offset + 40))]
            value4 = Mux(length > offset + 0xFFFF, 0xFFFF, rest4)
            value6 = Mux(length < offset + 40, 0,
                         Mux(length > offset + 40 + 0xFFFF, 0xFFFF, rest6))
            entry = self.info.substitutes[i]
            m.d.sync += [
                entry.ipv4.eq(Cat(value4[8:16], value4[0:8])),
                entry.ipv6.eq(Cat(value6[8:16], value6[0:8])),
                entry.holds4.eq(length >= offset + 4), entry.holds6.eq(length >= offset + 6),
            ]

    def elaborate(self, platform):
        m = Module()
        nbytes, window_beats = self.width // 8, self.window_beats
        beat = self.beat
        index = Signal(range(window_beats + 1))     # beat index in the frame; past the window
        capture_bank = Signal()
        # ``at_beat`` is the index one-hot (``at_beat[k]`` is ``index == k``), shifted with
        # it: the input's ``ready`` (``past``, bit ``window_beats``) and the enables of the
        # registers each beat writes hang on one flip-flop each, not on a comparison of the
        # index (two more levels of logic in front of them).
        at_beat = Signal(window_beats + 1, init=1)
        m.d.comb += [
            self.past.eq(at_beat[window_beats]),
            self.walk_bank.eq(~capture_bank),
        ]

        count = Signal(range(nbytes + 1))           # bytes in this beat (keep is contiguous)
        for i in range(nbytes):
            with m.If(beat.keep[i]):
                m.d.comb += count.eq(i + 1)

        # The slot at ``index`` holds nothing of the window until a beat is taken into it, so
        # it is written whenever the window is free, taken or not (a wide write enable that
        # does not wait for ``valid`` and ``ready``). When the walk takes the window, this
        # cycle's write already goes to the bank the walk leaves. The write into the memory is
        # registered (it lands a cycle later, before the walk's first read of the window at
        # the second cycle after taking it), so that ``take`` drives no memory directly.
        # ``free`` (``~full | take``) is a flip-flop worked out a cycle ahead, so that the
        # wide write enables hang on it and the index, not on the walk's ``take``.
        free = self.free
        full_next = Signal()
        m.d.sync += [
            self.store.bank.eq(capture_bank ^ self.take),
            self.store.row.eq(index),
            self.store.data.eq(beat.data),
            self.store.en.eq(free & ~self.past),
        ]
        with m.If(self.take):
            m.d.sync += capture_bank.eq(~capture_bank)
        if self.user_width:
            with m.If(at_beat[0] & free):
                m.d.sync += self.info.user.eq(beat.user)
                if self.lso_lengths:
                    self._lso_substitutes(m, beat.user)
        kept = self._byte_registers()
        for (at, op, value) in L2_COMPARISONS:
            kept.append((at, getattr(self.flags, _flag_name(at, op, value)),
                         lambda rest, op=op, value=value: compare_field(op, value, rest)))
        for slot in range(window_beats):
            with m.If(at_beat[slot] & free):
                for at, register, keep in kept:
                    if at // nbytes == slot:
                        m.d.sync += register.eq(keep(beat.data[8 * (at % nbytes):]))

        m.d.sync += [self.full.eq(full_next),
                     free.eq(~full_next | self.take_allowed_next)]
        m.d.comb += full_next.eq(self.full & ~self.take)
        # The window is complete on the frame's last beat or its last beat of the window;
        # the bytes so far are the beat's index and its count (one adder, not a choice among
        # the window's beats). The L2 decode's length comparisons are made here, one cycle
        # early. Like the bytes, they are written whenever the window is free, taken or not
        # (so their enables do not wait for ``valid`` and ``ready``): a beat not taken writes
        # them again when it is, and the last write before the window is full is the
        # completing beat's; while the window is full and not taken (``free`` is 0) they hold.
        completes = ~self.past & (beat.last | at_beat[window_beats - 1])
        length = Signal(range(WINDOW_BYTES + 1))
        m.d.comb += length.eq(index * nbytes + count)
        with m.If(free & completes):
            m.d.sync += [
                self.info.length.eq(length),
                self.info.ended.eq(beat.last),
                *[getattr(self.flags, _short_name(end)).eq(beat.last & (length < end))
                  for end in L2_ENDS],
            ]
        with m.If(self.accept):
            with m.If(beat.last):
                m.d.sync += [index.eq(0), at_beat.eq(1)]
            with m.Elif(~self.past):
                m.d.sync += [index.eq(index + 1), at_beat.eq(at_beat << 1)]
            with m.If(completes):
                m.d.comb += full_next.eq(1)
        return m


class L2Decode(wiring.Component):
    """The L2 header at fixed offsets (up to two tags and LLC/SNAP in bytes 12..29), from the
    capture's flags alone: combinational.

    Attributes
    ----------
    flags : In(L2_FLAGS_LAYOUT)
        The capture's comparisons (:attr:`CaptureWindow.flags`).
    error : Out(5)
        The ``ParseError`` of L2, 0 when the frame carries IP.
    l3_select : Out(len(L3_OFFSETS))
        One-hot (when ``error`` is 0): the IP header is at ``L3_OFFSETS[i]``.
    l3 : Out(8)
        The IP header's offset; 0 when L2 failed.
    is_ipv4 : Out(1)
        The EtherType is IPv4 (else IPv6).
    """

    error: Out(5)
    l3_select: Out(len(L3_OFFSETS))
    l3: Out(8)
    is_ipv4: Out(1)
    flags: In(L2_FLAGS_LAYOUT)

    def elaborate(self, platform):
        m = Module()

        def fail(code):
            m.d.comb += self.error.eq(code)

        def ip_at(offset, is_ipv4):
            m.d.comb += self.l3_select[L3_OFFSETS.index(offset)].eq(1)
            if is_ipv4:
                m.d.comb += self.is_ipv4.eq(1)

        _describe_l2(m, lambda at, op, value: getattr(self.flags, _flag_name(at, op, value)),
                     lambda end: getattr(self.flags, _short_name(end)), fail, ip_at)
        for i, offset in enumerate(L3_OFFSETS):
            with m.If(self.l3_select[i]):
                m.d.comb += self.l3.eq(offset)
        return m
