"""Hand-off, the walk over the header chain, and the read of each step's bytes."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nvgre as model_nvgre
from nicoffload.model import parse as model

from .layouts import (EXT_FIELDS_LAYOUT, EXT_POSITIONS, EXT_STEP_LAYOUT, HEAD_BYTES,
                      L3_OFFSETS, L3_STEP_LAYOUT, L4_PROTOS, LAST_CHAIN_POSITION, NVGRE_LAYOUT,
                      PHASE, POSITIONS,
                      WALKED_EXT, WINDOW_BYTES, big_endian, byte_of, capture_layout,
                      frame_layout, is_one_of, step_layout)
from .window import WindowReadSignature

__all__ = ["StepKind", "EXT_FIELDS_ARRAY", "EXT_TABLE_LAYOUT", "HandOff", "ExtensionSteps", "HeaderWalk",
           "WalkSignature", "StepRead"]

#: The kind of a step of the walk, one-hot; none: the walk is idle. ``gre``: the inner walk's
#: answer (:class:`~.inner.InnerWalk`), the last step of a frame whose IP headers lead to GRE.
StepKind = data.StructLayout({"l2_failed": 1, "l3": 1, "ext": 1, "l4": 1, "gre": 1})

#: The step from an extension header at every position it can have (``EXT_POSITIONS``, from
#: the first), and the bits of the next position past the window (for the exact end).
EXT_FIELDS_ARRAY = data.ArrayLayout(EXT_FIELDS_LAYOUT, len(EXT_POSITIONS))

EXT_TABLE_LAYOUT = data.StructLayout({
    "steps": data.ArrayLayout(EXT_STEP_LAYOUT, len(EXT_POSITIONS)),
    "past_ah": data.ArrayLayout(4, len(EXT_POSITIONS)),
    "past_generic": data.ArrayLayout(4, len(EXT_POSITIONS)),
})


def _select(words, index):
    """``words[index]``: a mux over equal-width values."""
    return Cat(*words).word_select(index, len(words[0]))


class HandOff(wiring.Component):
    """When the walk takes the complete capture window, keeps what the capture and the L2
    decode found of it for the walk (so the next frame captures while this one is walked), and
    works out the step from an IP header at each of its offsets.

    Its registers load whenever the walk's frame needs them no more (``load``, a flip-flop of
    the walk's, 1 in every cycle the walk takes a window and in others too: what they load
    then is never read), not on the walk's ``take``: so no logic lies between a register and
    the clock enables of these 1,300 flip-flops.

    Attributes
    ----------
    load : In(1)
        Load what the capture holds (:attr:`HeaderWalk.hand_off_load`).
    capture_info, captured_head, captured_ext_fields : In
        What the capture kept of the window (:class:`CaptureWindow`).
    l2_error, l2_l3, l2_is_ipv4, l2_l3_select : In
        The L2 decode of the capture window (:class:`L2Decode`).
    frame : Out(frame_layout(user_width))
        What the hand-off knows of the frame being walked.
    head : Out(8 * len(HEAD_BYTES))
        Its bytes ``HEAD_BYTES``, as captured.
    l3_headers : Out(data.ArrayLayout(80, len(L3_OFFSETS)))
        Combinational: the first ten bytes of an IP header at each offset of ``L3_OFFSETS``
        (from ``head``), with an LSO send's length substitute (below) over its length field.
    ext_fields : Out(data.ArrayLayout(EXT_FIELDS_LAYOUT, len(EXT_POSITIONS)))
        The fields of an extension header at each position.
    l3_select : Out(len(L3_OFFSETS))
        One-hot: ``frame.l3 == L3_OFFSETS[i]`` (0 when L2 failed).
    l3_steps : Out(data.ArrayLayout(L3_STEP_LAYOUT, len(L3_OFFSETS)))
        The step from an IP header at each offset of ``L3_OFFSETS``.

    With ``lso_lengths`` (TX: ``tuser`` is ``nbl.TxUser``), a frame with a non-zero LSO word
    is walked with its IPv4 Total Length / IPv6 Payload Length standing for the length word
    of its ``tuser``, as ``model.lso`` check 4 walks it: the hand-off keeps the substitutes
    the capture worked out (``CaptureWindow._lso_substitutes``) for an IP header at each
    offset, and ``l3_headers`` shows them over the field when the frame holds it. They load
    as the rest does, whatever the L2 decode finds (only the IP header's offset is read
    later, through ``l3_select``), so the L2 decode drives none of the ``head`` registers'
    enables or inputs.
    """

    def __init__(self, user_width, lso_lengths=False):
        self.user_width = user_width
        self.lso_lengths = lso_lengths
        super().__init__({
            "load": In(1),
            "capture_info": In(capture_layout(user_width, lso_lengths)),
            "captured_head": In(8 * len(HEAD_BYTES)),
            "captured_ext_fields": In(EXT_FIELDS_ARRAY),
            "l2_error": In(5),
            "l2_l3": In(8),
            "l2_is_ipv4": In(1),
            "l2_l3_select": In(len(L3_OFFSETS)),
            "frame": Out(frame_layout(user_width)),
            "head": Out(8 * len(HEAD_BYTES)),
            "l3_headers": Out(data.ArrayLayout(80, len(L3_OFFSETS))),
            "ext_fields": Out(EXT_FIELDS_ARRAY),
            "l3_select": Out(len(L3_OFFSETS)),
            "l3_steps": Out(data.ArrayLayout(L3_STEP_LAYOUT, len(L3_OFFSETS))),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.load):
            m.d.sync += [
                self.head.eq(self.captured_head),
                self.ext_fields.eq(self.captured_ext_fields),
                self.l3_select.eq(self.l2_l3_select),
                self.frame.l2_error.eq(self.l2_error),
                self.frame.l3.eq(self.l2_l3),           # 0 when L2 failed
                self.frame.is4.eq(self.l2_is_ipv4),
                self.frame.len.eq(self.capture_info.length),
                self.frame.ended.eq(self.capture_info.ended),
            ]
            if self.user_width:
                m.d.sync += self.frame.user.eq(self.capture_info.user)
            for i, offset in enumerate(L3_OFFSETS):
                head = _ip_header_at(self.captured_head, offset)
                fragment_field = big_endian(head, 6, 2)
                fragment = fragment_field[13] | (fragment_field[0:13] != 0)
                next_header = byte_of(head, 6)
                step = self.l3_steps[i]
                m.d.sync += [
                    step.next4.eq(offset // 4 + byte_of(head, 0)[0:4]),
                    step.l4_4.eq(is_one_of(byte_of(head, 9), L4_PROTOS) & ~fragment),
                    step.ext6.eq(is_one_of(next_header, WALKED_EXT)),
                    step.l4_6.eq(is_one_of(next_header, L4_PROTOS)),
                    step.frag6.eq(next_header == model._FRAGMENT),
                    step.ah6.eq(next_header == model._AH),
                    step.gre4.eq((byte_of(head, 9) == model_nvgre.IPPROTO_GRE) & ~fragment),
                    step.gre6.eq(next_header == model_nvgre.IPPROTO_GRE),
                    step.onward6.eq(is_one_of(next_header, WALKED_EXT)
                                    | (next_header == model_nvgre.IPPROTO_GRE)),
                ]
        if self.lso_lengths:
            self._substitute_lengths(m)
        else:
            m.d.comb += [self.l3_headers[i].eq(_ip_header_at(self.head, offset))
                         for i, offset in enumerate(L3_OFFSETS)]
        return m

    def _substitute_lengths(self, m):
        """Keeps the LSO substitutes at the hand-off (``holds4`` and ``holds6`` only for an
        LSO send) and shows them in ``l3_headers``: bytes 2..3 of an IPv4 header, 4..5 of an
        IPv6 one."""
        info = self.capture_info
        kept = Signal.like(info.substitutes, name="lso_substitutes")
        with m.If(self.load):
            m.d.sync += kept.eq(info.substitutes)
            for i in range(len(L3_OFFSETS)):
                m.d.sync += [kept[i].holds4.eq(info.lso & info.substitutes[i].holds4),
                             kept[i].holds6.eq(info.lso & info.substitutes[i].holds6)]
        is4 = self.frame.is4
        for i, offset in enumerate(L3_OFFSETS):
            header = _ip_header_at(self.head, offset)
            entry = kept[i]
            m.d.comb += self.l3_headers[i].eq(Cat(
                header[0:16],
                Mux(is4 & entry.holds4, entry.ipv4, header[16:32]),
                Mux(~is4 & entry.holds6, entry.ipv6, header[32:48]),
                header[48:80]))


def _ip_header_at(head, offset):
    """The first ten bytes of an IP header at frame offset ``offset`` (one of
    ``L3_OFFSETS``) in ``head``, the frame's bytes ``HEAD_BYTES``."""
    start = offset - HEAD_BYTES[0]
    return head[8 * start:8 * (start + 10)]


class ExtensionSteps(wiring.Component):
    """The step from an extension header at every position, worked out from the fields kept of
    the window every cycle (registered), so that the walk's own loop is a mux over these registers and a
    choice by the length rule, nothing else.

    The walk stops after a fragment and after a header that ends past position
    ``LAST_CHAIN_POSITION`` (past ``model.MAX_EXT_END``, byte 248: the model fails there,
    EXT_TOO_LONG, or before). Where it may go on depends only on the entry's own position and
    fields, not on where the IP header is. A table is valid the cycle after the hand-off, when
    the first extension header can be at the earliest at the walk's second step.

    Attributes
    ----------
    ext_fields : In(data.ArrayLayout(EXT_FIELDS_LAYOUT, len(EXT_POSITIONS)))
        The fields of an extension header at each position (from the hand-off).
    table : Out(EXT_TABLE_LAYOUT)
        For each position of ``EXT_POSITIONS``, the step from an extension header there.
    """

    ext_fields: In(EXT_FIELDS_ARRAY)
    table: Out(EXT_TABLE_LAYOUT)

    def elaborate(self, platform):
        m = Module()
        for entry, position in enumerate(EXT_POSITIONS):
            fields = self.ext_fields[entry]
            next_header, ext_len = fields.next_header, fields.length
            next_ah, next_generic = position + 2 + ext_len, position + 2 + 2 * ext_len
            on_frag = (position + 2 <= LAST_CHAIN_POSITION) & ~fields.fragment_high \
                & ~fields.fragment_low
            on_ah = next_ah <= LAST_CHAIN_POSITION
            on_generic = next_generic <= LAST_CHAIN_POSITION
            to_ext, to_l4 = is_one_of(next_header, WALKED_EXT), is_one_of(next_header, L4_PROTOS)
            to_gre = next_header == model_nvgre.IPPROTO_GRE
            step = self.table.steps[entry]
            m.d.sync += [
                self.table.past_ah[entry].eq(next_ah[6:]),
                self.table.past_generic[entry].eq(next_generic[6:]),
                step.ext_frag.eq(to_ext & on_frag),
                step.ext_ah.eq(to_ext & on_ah),
                step.ext_generic.eq(to_ext & on_generic),
                step.l4_frag.eq(to_l4 & on_frag),
                step.l4_ah.eq(to_l4 & on_ah),
                step.l4_generic.eq(to_l4 & on_generic),
                step.gre_frag.eq(to_gre & on_frag),
                step.gre_ah.eq(to_gre & on_ah),
                step.gre_generic.eq(to_gre & on_generic),
                step.frag.eq(next_header == model._FRAGMENT),
                step.ah.eq(next_header == model._AH),
                step.next_ah.eq(next_ah),
                step.next_generic.eq(next_generic),
            ]
        return m


#: What the walk hands to the read stage every cycle: the step it is on and where it reads.
WalkSignature = wiring.Signature({
    "kind": Out(StepKind),
    "read_position": Out(6),        # the header's position, for bytes 0..3
    "far_position": Out(6),         # the same, for bytes 4, 5 and 12 (another register)
    "position": Out(6),             # the same (another register): where the step before ended
    "end_past": Out(4),             # bits 6.. of the position past the header (past the
                                    # window); its bits 0..5 are ``position`` a cycle later
    "next_position": Out(6),        # the position the registers above take at the clock edge
    "moves": Out(1),                # ... when this is 1 (else they hold): for the window's
                                    # address registers, a cycle ahead of the read
})


class HeaderWalk(wiring.Component):
    """The walk over the header chain: nothing but where the next header is.

    Every header offset the model can reach is ``PHASE mod 4``, so the walk keeps a position
    ``k`` (offset ``4k + PHASE``). Its steps: L3 (the IP header; the hand-off prepared the
    step), EXT (an IPv6 extension header; :class:`ExtensionSteps` prepared it) and L4 (TCP or
    UDP; always the last step). A frame whose L2 failed is one step. The walk makes none of
    the model's checks; it follows the chain as the model does while the model finds no
    error, and stops after L4, at a protocol it does not follow, after a fragment, or where
    the chain ends past byte 248 (``model.MAX_EXT_END``).

    An L2, L3 or L4 step takes one cycle, an EXT step two: the first (``choosing``) chooses
    the table's entry at the position into registers (a 49-way choice, nothing after it),
    the second is the step as the read stage sees it (``kind.ext``) and works out the next
    position from those registers by the length rule. The position registers hold during
    the first cycle, so the read stage sees each step with the position of its header, and
    a cycle later the position past it.

    Attributes
    ----------
    window_waiting : In(1)
        A complete capture window waits and its record has a place in the record FIFO.
    take : Out(1)
        The walk takes the capture window this cycle: when the step it is on is known to be
        the frame's last from registers alone.
    hand_off_load : Out(1)
        A flip-flop: the walk's frame needs the hand-off's registers no more (the step it is
        on is its last, or the walk is idle); 1 whenever ``take`` is.
    hand_off_load_next : Out(1)
        ``hand_off_load`` a cycle ahead (combinational): the walk can take a window in the
        next cycle, if one waits then.
    l2_error : In(5)
        The L2 decode of the capture window (read when taking it).
    frame_is_ipv4, l3_position : In
        Of the frame being walked (from the hand-off).
    l3_select : In(len(L3_OFFSETS))
        One-hot offset of its IP header; ``l3_steps`` the step from an IP header at each.
    ext_table : In(EXT_TABLE_LAYOUT)
        The step from an extension header at each position.
    step : Out(WalkSignature)
        This cycle's step (none in the first cycle of an EXT step).
    continues : Out(1)
        The walk is on an EXT (either cycle) or L4 step, or waits for the inner walk: the
        frame of the step before has not ended.
    gre_start : Out(1)
        The IP headers lead to GRE (not a fragment): the inner walk starts at the GRE header
        at ``gre_position``. The walk then waits, holding the window, until ``inner_done``,
        and that cycle's step is ``gre`` (the frame's last); it takes the next window a
        cycle later at the earliest.
    gre_position : Out(6)
        The position of the GRE header, valid with ``gre_start``.
    inner_done : In(1)
        The inner walk's answer is ready (:attr:`~.inner.InnerWalk.done`).
    """

    def __init__(self):
        super().__init__({
            "window_waiting": In(1),
            "take": Out(1),
            "hand_off_load": Out(1, init=1),
            "hand_off_load_next": Out(1),
            "l2_error": In(5),
            "frame_is_ipv4": In(1),
            "l3_position": In(6),
            "l3_select": In(len(L3_OFFSETS)),
            "l3_steps": In(data.ArrayLayout(L3_STEP_LAYOUT, len(L3_OFFSETS))),
            "ext_table": In(EXT_TABLE_LAYOUT),
            "step": Out(WalkSignature),
            "continues": Out(1),
            "gre_start": Out(1),
            "gre_position": Out(6),
            "inner_done": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        kind = Signal(StepKind)
        choosing = Signal()         # the first cycle of an EXT step
        # The position of this step's header. Each wide mux at the position has its own copy
        # of it, made different (inverted, reset, reset value) so that synthesis does not
        # merge them, which keeps the fan-out of each small. The choice of the first cycle
        # of an EXT step has a copy per field of the table's entries (one copy for all was a
        # net of 4 ns at W=64 on an ECP5), each holding the position XOR a key of its own
        # (copies that differ only in their reset value were merged): its mux takes the
        # entries in that order.
        position = Signal(6, reset_less=True)               # the walk's own
        entry_fields = list(EXT_STEP_LAYOUT.members)
        position_key = {name: 1 + i for i, name in enumerate(entry_fields)}
        position_for = {name: Signal(6, name=f"position_for_{name}") for name in entry_fields}
        read_position_inverted = Signal(6, reset_less=True)  # bytes 0..3
        far_position = Signal(6)                            # bytes 4, 5, 12; the end
        end_position = Signal(6, init=1)                    # the step before's end
        # Its length rule: Fragment (8 bytes), AH, else generic.
        is_frag, is_ah = Signal(reset_less=True), Signal(reset_less=True)

        def entry_at(array, select_by, key=0):
            """``array``'s entry at the position ``select_by ^ key``."""
            first = EXT_POSITIONS[0]
            width = len(Value.cast(array[0]))
            return _select([Value.cast(array[(j ^ key) - first]) if j ^ key in EXT_POSITIONS
                            else C(0, width) for j in range(POSITIONS)], select_by)

        # The first cycle of an EXT step: the entry at the position, registered (loaded every
        # cycle; read in the second cycle, the position unchanged between).
        steps = self.ext_table.steps
        chosen = Signal(EXT_STEP_LAYOUT)
        for name in entry_fields:
            m.d.sync += getattr(chosen, name).eq(
                entry_at([getattr(step, name) for step in steps], position_for[name],
                         position_key[name]))

        l3_here = Signal(L3_STEP_LAYOUT)
        for i in range(len(L3_OFFSETS)):
            with m.If(self.l3_select[i]):
                m.d.comb += l3_here.eq(self.l3_steps[i])
        # Where the next step reads and what it is: from the IP header (L3), or from the
        # chosen entry (EXT). A walk that stops (or an L4 or L2 step, the first cycle of an
        # EXT step, or none) has neither ``next_ext`` nor ``next_l4``; the position and the
        # length rule are don't-cares when the next step is not EXT or L4.
        l3_next = Signal(6)
        l3_ext, l3_l4, l3_frag, l3_ah = Signal(), Signal(), Signal(), Signal()
        l3_gre = Signal()
        with m.If(self.frame_is_ipv4):
            m.d.comb += [l3_next.eq(l3_here.next4), l3_l4.eq(l3_here.l4_4),
                         l3_gre.eq(l3_here.gre4)]
        with m.Else():
            m.d.comb += [
                l3_next.eq(self.l3_position + 10),
                l3_ext.eq(l3_here.ext6),
                l3_l4.eq(l3_here.l4_6),
                l3_frag.eq(l3_here.frag6),
                l3_ah.eq(l3_here.ah6),
                l3_gre.eq(l3_here.gre6),
            ]
        ext_next = Mux(is_frag, position + 2, Mux(is_ah, chosen.next_ah, chosen.next_generic))
        ext_ext = Mux(is_frag, chosen.ext_frag, Mux(is_ah, chosen.ext_ah, chosen.ext_generic))
        ext_l4 = Mux(is_frag, chosen.l4_frag, Mux(is_ah, chosen.l4_ah, chosen.l4_generic))
        ext_gre = Mux(is_frag, chosen.gre_frag, Mux(is_ah, chosen.gre_ah, chosen.gre_generic))
        next_position = Signal(6)
        next_ext, next_l4, next_gre = Signal(), Signal(), Signal()
        m.d.comb += [
            next_position.eq(Mux(kind.l3, l3_next, ext_next)),
            next_ext.eq(Mux(kind.l3, l3_ext, kind.ext & ext_ext)),
            next_l4.eq(Mux(kind.l3, l3_l4, kind.ext & ext_l4)),
            next_gre.eq(Mux(kind.l3, l3_gre, kind.ext & ext_gre)),
        ]
        # GRE: the inner walk starts (a cycle later) and the walk waits for its answer, which
        # is the frame's last step.
        gre_wait = Signal()
        # ``gre_position`` is one more copy of the position register, loaded every cycle (no
        # enable hangs on the choice): the inner walk reads it with ``gre_start`` only.
        m.d.sync += [self.gre_start.eq(next_gre), self.gre_position.eq(next_position)]
        with m.If(next_gre):
            m.d.sync += gre_wait.eq(1)
        with m.Elif(self.inner_done):
            m.d.sync += gre_wait.eq(0)
        # Take the next window when this step is known to be the last from registers alone
        # (so ``next_ext``, ``next_l4`` and ``next_gre`` are 0 whenever the walk takes a
        # window). After GRE, a cycle after the ``gre`` step (``gre_wait`` is 0 again): the
        # take, which lets the capture go on, does not wait on the inner walk's registers,
        # far from them on the chip. ``holds``: the walk's frame needs the hand-off's
        # registers in a later cycle (``kind.l3 | choosing | kind.ext | gre_wait``), one
        # flip-flop worked out a cycle ahead; the hand-off loads whenever it is 0, from
        # another flip-flop (its inverse), so that the take and the hand-off's 1,300 clock
        # enables do not share a net, and no logic lies before the latter.
        # From an L3 step, ``next_ext | next_gre`` is the hand-off's ``gre4`` or ``onward6``
        # (one register for the OR): a level of logic less on this path.
        holds, holds_next = Signal(), Signal()
        l3_onward = Mux(self.frame_is_ipv4, l3_here.gre4, l3_here.onward6)
        m.d.comb += holds_next.eq((self.take & (self.l2_error == 0)) | choosing
                                  | Mux(kind.l3, l3_onward, kind.ext & (ext_ext | ext_gre))
                                  | (gre_wait & ~self.inner_done))
        m.d.comb += self.hand_off_load_next.eq(~holds_next)
        m.d.sync += [holds.eq(holds_next), self.hand_off_load.eq(~holds_next)]
        m.d.comb += self.take.eq(self.window_waiting & ~holds)
        m.d.sync += [
            kind.l2_failed.eq(self.take & (self.l2_error != 0)),
            kind.l3.eq(self.take & (self.l2_error == 0)),
            choosing.eq(next_ext), kind.ext.eq(choosing), kind.l4.eq(next_l4),
        ]
        with m.If(~choosing):
            m.d.sync += [
                position.eq(next_position), read_position_inverted.eq(~next_position),
                far_position.eq(next_position), end_position.eq(next_position),
                *[position_for[name].eq(next_position ^ position_key[name])
                  for name in entry_fields],
                is_frag.eq(Mux(kind.l3, l3_frag, chosen.frag)),
                is_ah.eq(Mux(kind.l3, l3_ah, chosen.ah)),
            ]

        # The exact end of this step's header, as a position: the next position (the walk
        # needs no more than its low bits) and the bits past the window. The read stage takes
        # the low bits from the position register a cycle later, so that the walk's loop
        # ends at the position registers only.
        end_past = Signal(4)
        with m.If(kind.l3 | is_frag):
            m.d.comb += end_past.eq(0)
        with m.Elif(is_ah):                         # (len + 2) * 4 bytes
            m.d.comb += end_past.eq(entry_at(self.ext_table.past_ah, far_position))
        with m.Else():                              # (len + 1) * 8 bytes
            m.d.comb += end_past.eq(entry_at(self.ext_table.past_generic, far_position))

        m.d.comb += [
            self.step.kind.eq(kind),
            self.step.kind.gre.eq(gre_wait & self.inner_done),
            self.step.read_position.eq(~read_position_inverted),
            self.step.far_position.eq(far_position),
            self.step.position.eq(end_position),
            self.step.end_past.eq(end_past),
            self.step.next_position.eq(next_position),
            self.step.moves.eq(~choosing),
            self.continues.eq(choosing | kind.ext | kind.l4 | gre_wait),
        ]
        return m


class StepRead(wiring.Component):
    """Registers the bytes of each step of the walk and the sums the checks need.

    The IP header is at one of the offsets of ``L3_OFFSETS``, within ``HEAD_BYTES`` (kept in
    registers). An extension or TCP/UDP header is at a position ``k`` (offset ``4k + PHASE``):
    its bytes 0..5 and 12 come from the window memory, read at the row of the position, and
    then a mux over the positions of a row (W / 32 of them).

    Attributes
    ----------
    walk : In(WalkSignature)
        The walk's step.
    frame, l3_headers, l3_select : In
        The frame being walked, an IP header's first ten bytes at each offset and its IP
        header's offset, one-hot (from the hand-off).
    window_bank : In(1)
        The bank of the window memory that holds the frame being walked.
    window : Out(WindowReadSignature(W, window_beats))
        The reads from the window memory.
    step : Out(stream.Signature(step_layout(user_width), always_ready=True))
        The step, registered, with its bytes; valid for every step of the walk.
    step_end : Out(12)
        The offset past ``step``'s header (IP header length, extension header length): its
        position is the walk's position register now.
    inner : In(NVGRE_LAYOUT)
        The inner walk's answer (:attr:`~.inner.InnerWalk.result`), taken with a ``gre`` step.
    """

    def __init__(self, width, user_width):
        self.width = width
        self.user_width = user_width
        super().__init__({
            "walk": In(WalkSignature),
            "frame": In(frame_layout(user_width)),
            "l3_headers": In(data.ArrayLayout(80, len(L3_OFFSETS))),
            "l3_select": In(len(L3_OFFSETS)),
            "window_bank": In(1),
            "window": Out(WindowReadSignature(width, WINDOW_BYTES * 8 // width)),
            "step": Out(stream.Signature(step_layout(user_width), always_ready=True)),
            "step_end": Out(12),
            "inner": In(NVGRE_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        frame, kind = self.frame, self.walk.kind
        m.d.comb += self.step_end.eq(Cat(C(PHASE, 2), self.walk.position,
                                         self.step.payload.end_past))
        # L3: ten bytes at l3, one of five offsets.
        ip = Signal(80)
        for i in range(len(L3_OFFSETS)):
            with m.If(self.l3_select[i]):
                m.d.comb += ip.eq(self.l3_headers[i])
        # EXT and L4: the rows from the one that holds the header's position on (the window's
        # address registers load the row with the walk's position registers).
        per_row = self.width // 32                  # positions in a row
        shift = per_row.bit_length() - 1
        m.d.comb += [
            self.window.bank.eq(self.window_bank),
            self.window.row.eq(self.walk.next_position[shift:]),
            self.window.load.eq(self.walk.moves),
        ]
        rows = self.window.data

        def at_lane(first, count, lane, bits=slice(None)):
            """Bytes ``first .. first + count - 1`` of a header at each lane of the row, as a
            mux by ``lane``."""
            return _select([rows[8 * (4 * i + PHASE + first):][:8 * count][bits]
                            for i in range(per_row)], lane[:shift])

        head = at_lane(0, 4, self.walk.read_position)
        bytes_4_5 = at_lane(4, 2, self.walk.far_position)
        tcp_data_offset = at_lane(12, 1, self.walk.far_position, slice(4, 8))
        assert 8 * (4 * (per_row - 1) + PHASE + 13) <= len(rows)

        out = self.step.payload
        m.d.sync += [
            self.step.valid.eq(kind.l2_failed | kind.l3 | kind.ext | kind.l4 | kind.gre),
            out.l2_failed.eq(kind.l2_failed), out.l3.eq(kind.l3), out.ext.eq(kind.ext),
            out.l4.eq(kind.l4), out.gre.eq(kind.gre), out.inner.eq(self.inner),
            out.offset.eq(Cat(C(PHASE, 2), self.walk.read_position)),
            out.end_past.eq(self.walk.end_past),
            out.ip_bytes.eq(ip),
            out.head_bytes.eq(Cat(head, bytes_4_5)),
            out.tcp_data_offset.eq(tcp_data_offset),
            out.frame.eq(frame),
            out.offset_plus_8.eq(Cat(C(PHASE, 2), self.walk.far_position + 2)),
            out.room.eq(frame.len - frame.l3),
            out.room_past_ipv6.eq(frame.len - frame.l3 - 40),
            out.l3_plus_40.eq(frame.l3 + 40),
        ]
        return m
