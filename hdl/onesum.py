"""One's-complement summing at line rate: the RTL of ``nicoffload.model.onesum``.

Building blocks shared by every checksum unit, and :class:`OnesSum`, a unit that sums each
frame of a stream from a per-frame start offset.

How the sum keeps up with one beat per cycle at any width: each beat's bytes are masked (tkeep,
region bounds), paired into 16-bit big-endian words *aligned to byte 0 of the frame*, and added
by a tree whose leaves are grouped so that one pipeline register sits between the lane adders
and the accumulator. The accumulator is a plain 40-bit adder (no end-around carry in the loop,
so it is one short carry chain); it cannot overflow for frames under 2**25 bytes, beyond the
24-bit byte counter's 16 MB limit. A final registered stage folds it to 16 bits: the folds
preserve the value modulo 0xFFFF because 2**16 == 1 mod 0xFFFF. A region that starts at an odd byte is summed frame-aligned and
byte-swapped at the end (RFC 1071 section 2(B): the sum is byte-order independent).

None of the adders ever turns a non-zero total into 0, so the result is 0 only when every word
is 0 and is 0xFFFF for any other total that is 0 mod 0xFFFF, exactly as ``model.onesum``.
"""

import operator

from amaranth.hdl import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axis import AxisSignature, check_width

__all__ = ["beat_words", "balanced_tree", "add_tree", "fold16", "swap16", "group_sums", "OnesSum"]


def beat_words(beat_data, byte_mask, width):
    """The beat's bytes, masked, as ``width // 16`` big-endian 16-bit words.

    Byte ``2k`` of the beat (the earlier one on the wire) is the high byte of word ``k``.
    ``byte_mask`` is a ``width // 8``-bit value; a 0 bit zeroes its byte.
    """
    words = []
    for k in range(width // 16):
        hi = beat_data[16 * k:16 * k + 8] & byte_mask[2 * k].replicate(8)
        lo = beat_data[16 * k + 8:16 * k + 16] & byte_mask[2 * k + 1].replicate(8)
        words.append(Cat(lo, hi))
    return words


def balanced_tree(values, op):
    """``op`` (a two-operand function) over ``values`` as a balanced tree: neighbours
    paired, an odd last one carried up a level. ``values`` must not be empty."""
    values = list(values)
    while len(values) > 1:
        paired = [op(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        if len(values) & 1:
            paired.append(values[-1])
        values = paired
    return values[0]


def add_tree(values):
    """A balanced tree of adders; the result is wide enough never to overflow."""
    values = list(values)
    return balanced_tree(values, operator.add) if values else C(0, 1)


def group_sums(words, group=8):
    """Sums of ``group`` consecutive words: the first pipeline level of a wide sum."""
    return [add_tree(words[i:i + group]) for i in range(0, len(words), group)]


def fold16(value):
    """Fold an unsigned value of any width to 16 bits with end-around carries.

    Each step adds the 16-bit slices; the value modulo 0xFFFF is kept, and a non-zero value
    never folds to 0. Steps repeat until the carry-out is a single bit that is added last.
    """
    value = Value.cast(value)
    while len(value) > 16:
        slices = [value[i:i + 16] for i in range(0, len(value), 16)]
        value = add_tree(slices)
        if len(value) == 17:
            return (value[:16] + value[16])[:16]
    return value


def swap16(value):
    return Cat(value[8:16], value[0:8])


class OnesSum(wiring.Component):
    """One's-complement sum of every frame from a per-frame start offset.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 16))
        Frames in. ``user`` on the first beat is the start offset in bytes: bytes before it are
        not summed. Ready whenever the result FIFO has room, so a stream of frames flows at one
        beat per cycle while results are taken.
    m_sum : Out(stream.Signature(16))
        One 16-bit sum per frame, in order: ``model.onesum.ones_sum(frame, start)``.
    """

    PIPELINE = 5        # beats in flight between s_axis and the result FIFO
    RESULTS = 8         # result FIFO depth

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, 16)),
            "m_sum": Out(stream.Signature(16)),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        nbytes = w // 8

        m.submodules.results = results = fifo.SyncFIFOBuffered(width=16, depth=self.RESULTS)
        m.d.comb += [
            self.m_sum.payload.eq(results.r_data),
            self.m_sum.valid.eq(results.r_rdy),
            results.r_en.eq(self.m_sum.ready),
        ]

        # Stage 0: accept a beat, build the byte mask.
        beat = self.s_axis.payload
        accept = Signal()
        m.d.comb += [
            self.s_axis.ready.eq(results.level <= self.RESULTS - self.PIPELINE - 1),
            accept.eq(self.s_axis.valid & self.s_axis.ready),
        ]
        first = Signal(init=1)        # next beat is the first of a frame
        offset = Signal(24)           # frame bytes before this beat
        start_reg = Signal(16)
        start = Mux(first, beat.user, start_reg)
        with m.If(accept):
            m.d.sync += first.eq(beat.last)
            m.d.sync += offset.eq(Mux(beat.last, 0, offset + nbytes))
            with m.If(first):
                m.d.sync += start_reg.eq(beat.user)

        # Stage 1: the beat registered with its start relative to the beat (one subtractor).
        b1 = Signal.like(beat)
        rel1 = Signal(range(nbytes + 1))      # first summed byte of the beat, clamped
        rel = start - offset
        v1, odd1 = Signal(), Signal()
        m.d.sync += [v1.eq(accept), b1.eq(beat), odd1.eq(start[0]),
                     rel1.eq(Mux(rel.as_signed() <= 0, 0, Mux(rel >= nbytes, nbytes, rel)))]

        # Stage 2: byte mask (small compares), lane words summed in groups of four.
        mask = Signal(nbytes)
        for i in range(nbytes):
            m.d.comb += mask[i].eq(b1.keep[i] & (rel1 <= i))
        groups_in = group_sums(beat_words(b1.data, mask, w), group=4)
        groups = [Signal(len(g), name=f"group{i}") for i, g in enumerate(groups_in)]
        v2, last2, odd2 = Signal(), Signal(), Signal()
        m.d.sync += [v2.eq(v1), last2.eq(b1.last), odd2.eq(odd1)]
        for reg, expr in zip(groups, groups_in):
            m.d.sync += reg.eq(expr)

        # Stage 3: accumulate; the last beat's total moves on to the fold stage.
        acc = Signal(40)
        acc_next = acc + add_tree(groups)
        total3, v3, odd3 = Signal(40), Signal(), Signal()
        m.d.sync += v3.eq(v2 & last2)
        with m.If(v2):
            m.d.sync += acc.eq(Mux(last2, 0, acc_next))
            with m.If(last2):
                m.d.sync += [total3.eq(acc_next), odd3.eq(odd2)]

        # Stage 4: fold to 16 bits, swap if the region started on an odd byte.
        folded = fold16(total3)
        result5, v5 = Signal(16), Signal()
        m.d.sync += [v5.eq(v3), result5.eq(Mux(odd3, swap16(folded), folded))]

        # Stage 5: queue the result.
        m.d.comb += [results.w_data.eq(result5), results.w_en.eq(v5)]
        return m
