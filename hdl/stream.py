"""Shared stream pieces: the register slice every unit boundary has, and a FIFO as a stream.

DESIGN.md 2: "Every unit boundary is registered both ways (a skid buffer or FIFO): no
combinational path runs from one unit's ``tready`` into another's logic." Both pieces here
meet that rule on both sides: ``valid`` and ``payload`` leave from flip-flops (or a FIFO's
registered read port) and ``ready`` leaves from a flip-flop.

:class:`RegisterSlice`
    A two-entry skid buffer: full throughput (a beat every cycle), one cycle of latency, and
    ``s.ready`` is a register, so the producer never sees the consumer's ``ready``.
:class:`StreamFIFO`
    A FIFO with stream ports of a payload shape (LUT RAM in banks, an output register), for
    the boundaries that need depth (a frame's beats, records that wait for their frame).
:class:`FrameBuffer`
    A FIFO in one block RAM with a registered write, whose ``r_rdy`` is a flip-flop worked
    out exactly a cycle ahead: a buffer of frames' beats (the TX checksum unit's).
:func:`stage_layout`
    A pipeline stage register described by a ``data.StructLayout`` with a ``valid`` bit,
    for stages that are not streams (a stage register moves when the stage behind it moves).
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["FrameBuffer", "RegisterSlice", "StreamFIFO", "stage_layout"]


def stage_layout(fields):
    """A stage register: ``fields`` (a dict or StructLayout) and a ``valid`` bit."""
    members = dict(fields.members if isinstance(fields, data.StructLayout) else fields)
    if "valid" in members:
        raise ValueError("a stage layout has its own 'valid' member")
    return data.StructLayout({"valid": 1, **members})


class RegisterSlice(wiring.Component):
    """A skid buffer: a stream boundary registered both ways.

    Parameters
    ----------
    shape : shape-castable
        The payload.

    Attributes
    ----------
    s : In(stream.Signature(shape))
        Input. ``s.ready`` is a flip-flop: 1 while the skid register is empty.
    m : Out(stream.Signature(shape))
        Output. ``m.valid`` and ``m.payload`` are flip-flops.

    Throughput and latency
        A beat every cycle in steady state (the skid register holds the beat that arrives in
        the cycle the consumer stops); a beat taken on ``s`` is on ``m`` the next cycle.
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({
            "s": In(stream.Signature(shape)),
            "m": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self.shape)
        skid_full = Signal()
        taken = Signal()
        m.d.comb += [
            self.s.ready.eq(~skid_full),
            taken.eq(self.s.valid & ~skid_full),
        ]
        # The skid register takes the input every cycle it is empty, whether a beat is
        # offered or not, so the producer's ``valid`` (often the end of its decisions) drives
        # no enable of the payload's width: only ``skid_full``, a flip-flop, does.
        with m.If(~skid_full):
            m.d.sync += skid.eq(self.s.payload)
        with m.If(~self.m.valid | self.m.ready):
            # The output register is free this cycle: the skid beat goes first.
            m.d.sync += [
                self.m.valid.eq(skid_full | taken),
                self.m.payload.eq(Mux(skid_full, skid, self.s.payload)),
                skid_full.eq(0),
            ]
        with m.Elif(taken):
            m.d.sync += skid_full.eq(1)
        return m


class StreamFIFO(wiring.Component):
    """A synchronous FIFO with stream ports: entries in LUT RAM, the read side a register.

    Parameters
    ----------
    shape : shape-castable
        The payload.
    depth : int
        Entries.

    Attributes
    ----------
    s : In(stream.Signature(shape))
        Write side; ``s.ready`` is a flip-flop: "not full", worked out a cycle ahead from
        the level and this cycle's write and read (not a comparison of level registers,
        which would put logic in front of every producer's decisions).
    m : Out(stream.Signature(shape))
        Read side; ``m.valid`` and ``m.payload`` are flip-flops (the output register).
    level : Out(range(depth + 1))
        Entries held.

    Throughput and latency
        An entry taken on ``s`` is on ``m`` two cycles later; from depth 3 an entry can go in
        and one out every cycle (a 2-deep FIFO takes two in three cycles).

    Wide payloads
        The RAM is cut into banks of at most :attr:`BANK_BITS` bits, each with read and write
        address registers of its own, so no address net fans out to the whole width: the
        LSO segmenter's FIFO of 848-bit descriptors, one RAM behind one read address, had
        that address net (13.8 ns, the RAM's cells spread over the chip) as its critical
        path. Each bank keeps its addresses XOR a key of its own (its rows are stored
        there), since synthesis merges flip-flops of the same input and initial value.
        Each bank also has its own count of the entries in the RAM and its own copy of the
        output's ``valid`` (the count XOR the key), so "the oldest moves to the output", the
        enable of the bank's output bits and read address, is worked out beside the bank:
        one such net for all banks (the descriptors FIFO's 848 bits) had become the LSO
        segmenter's critical path. ``m.valid`` is the first bank's copy. Likewise each group
        of :attr:`FILL_GROUP` banks (256 bits) keeps its own count of the entries held and
        "not full", and so its own write enable; ``s.ready`` and ``level`` are the first
        group's. (One per bank cost the TX path 500 LUT4 over its 30-odd banks.)

    Counts
        The counts move by at most one a cycle, so each is chosen among itself and itself
        plus or minus one (adders from the count register only), and the flags the moves
        hang on, "not full" and a bank's "the RAM holds an entry", are flip-flops worked
        out a cycle ahead from the count's comparison with one constant and this cycle's
        moves. (A count that added the write and the read and then compared the sum had
        6 to 7 logic levels from flip-flops alone.)
    """

    BANK_BITS = 64
    #: Banks that share one count of entries held, "not full" and write enable (the first
    #: bank's of the group).
    FILL_GROUP = 4

    def __init__(self, shape, depth):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.shape = shape
        self.depth = depth
        super().__init__({
            "s": In(stream.Signature(shape)),
            "m": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        self._banks(m)
        return m

    @staticmethod
    def _step(count, up, down):
        """``count`` + ``up`` - ``down``, as a choice among ``count`` and ``count`` plus or
        minus one (adders from the register alone), so a late ``up`` or ``down`` (the
        producer's ``valid``, the consumer's ``ready``) meets one LUT, not an adder."""
        bits = len(count)
        return Mux(up, Mux(down, count, (count + 1)[:bits]),
                   Mux(down, (count - 1)[:bits], count))

    def _group_fill(self, m, group, output_valid):
        """A group's copy of the entries held (the RAM's and the output register's, XOR the
        group's key) and of "not full", a flip-flop worked out a cycle ahead: it stays full
        until an entry is read, and fills when the last free entry is written (a comparison
        of the count register alone); whether an entry is written this cycle. Each group
        works out its own write enable beside its RAMs, so no one net reaches the whole
        width (the descriptors FIFO's shared "written" was the TX path's critical path:
        8.4 ns of one net)."""
        key = Const(group, range(self.depth + 1))
        held_keyed = Signal(range(self.depth + 1), init=key.value, name=f"held{group}")
        not_full = Signal(init=1, name=f"not_full{group}")
        written = Signal(name=f"written{group}")
        held = held_keyed ^ key
        read = output_valid & self.m.ready
        m.d.comb += written.eq(self.s.valid & not_full)
        m.d.sync += [
            held_keyed.eq(self._step(held, written, read) ^ key),
            not_full.eq(read | (not_full & ~(written & (held == self.depth - 1)))),
        ]
        if group == 0:
            m.d.comb += [self.s.ready.eq(not_full), self.level.eq(held)]
        return written

    def _bank_moves(self, m, bank, group_written):
        """A bank's count of the entries in the RAM (XOR its key) and "the RAM holds one", a
        flip-flop worked out a cycle ahead (a write arrives, or it holds more than the one
        that moves); its copy of the output's ``valid``, whether the oldest entry moves to
        the output register (while that is empty or being emptied: one LUT from flip-flops
        and ``m.ready``), and its write enable (its group's: :meth:`_group_fill`; the first
        bank of a group makes it, into ``group_written``)."""
        key = Const(bank, range(self.depth + 1))
        stored_keyed = Signal(range(self.depth + 1), init=key.value, name=f"stored{bank}")
        nonempty = Signal(name=f"nonempty{bank}")
        output_valid = Signal(name=f"output_valid{bank}")
        moved = Signal(name=f"moved{bank}")
        group = bank // self.FILL_GROUP
        if bank % self.FILL_GROUP == 0:
            group_written[group] = self._group_fill(m, group, output_valid)
        written = group_written[group]
        stored = stored_keyed ^ key
        m.d.comb += moved.eq(nonempty & (~output_valid | self.m.ready))
        m.d.sync += [
            stored_keyed.eq(self._step(stored, written, moved) ^ key),
            nonempty.eq(written | (nonempty & ~(moved & (stored == 1)))),
        ]
        with m.If(moved):
            m.d.sync += output_valid.eq(1)
        with m.Elif(self.m.ready):
            m.d.sync += output_valid.eq(0)
        if bank == 0:
            m.d.comb += self.m.valid.eq(output_valid)
        return moved, written

    def _banks(self, m):
        """The RAM banks, their address registers and the output register's bits."""
        width = Shape.cast(self.shape).width
        address_bits = max(1, (self.depth - 1).bit_length())
        rows = 1 << address_bits                # the addresses run round all the rows
        bank_bits = max(self.BANK_BITS, -(-width // rows))      # no more banks than keys
        data_in, data_out = Value.cast(self.s.payload), Signal(width)
        m.d.comb += self.m.payload.eq(data_out)
        group_written = {}
        for bank, low in enumerate(range(0, width, bank_bits)):
            high = min(width, low + bank_bits)
            moved, written = self._bank_moves(m, bank, group_written)
            key = Const(bank, address_bits)
            write_at = Signal(address_bits, init=bank, name=f"write_at{bank}")
            read_at = Signal(address_bits, init=bank, name=f"read_at{bank}")
            m.submodules[f"bank{bank}"] = memory = Memory(shape=high - low, depth=rows, init=[])
            write, read = memory.write_port(), memory.read_port(domain="comb")
            m.d.comb += [write.addr.eq(write_at), write.data.eq(data_in[low:high]),
                         write.en.eq(written), read.addr.eq(read_at)]
            with m.If(written):
                m.d.sync += write_at.eq(((write_at ^ key) + 1) ^ key)
            with m.If(moved):
                m.d.sync += [read_at.eq(((read_at ^ key) + 1) ^ key),
                             data_out[low:high].eq(read.data)]


class FrameBuffer(wiring.Component):
    """The frames' beats in one block RAM, in order: a FIFO whose every decision is a
    flip-flop or one LUT away from flip-flops (Amaranth's ``SyncFIFOBuffered``, here before,
    took its read enable back through its level count: 7 logic levels).

    The writer and the reader keep counts of their own: ``level`` (written, not yet read)
    for the writer's room, and the reader's count of entries it may read, which learns of a
    write once its row is written (the write is registered, then ``written``, a flip-flop),
    so no write enable reaches the read side in the same cycle. ``r_rdy`` is that count
    being non-zero next cycle, worked out from the count and this cycle's read (exactly:
    ``r_rdy`` never stays low while an entry waits).

    Parameters
    ----------
    width : int
        Bits an entry.
    depth : int
        Entries, a power of two.

    Attributes
    ----------
    w_en, w_data : In
        Write an entry (only while ``level < depth``: the writer's business).
    level : Out(range(depth + 1))
        Entries written and not yet read (a register).
    r_en : In(1)
        Read the oldest entry (only while ``r_rdy``).
    r_rdy : Out(1)
        An entry can be read (a flip-flop).
    r_data : Out(width)
        The entry read in the cycle before (the block RAM's output register).
    """

    def __init__(self, width, depth):
        assert depth & (depth - 1) == 0, "the addresses run round the rows"
        self.depth = depth
        super().__init__({
            "w_en": In(1), "w_data": In(width), "level": Out(range(depth + 1)),
            "r_en": In(1), "r_rdy": Out(1), "r_data": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        # A row is never read in the cycle it is written (the reader's count learns of a
        # write a cycle late), but Yosys cannot know it (it ignores ``no_rw_check`` here) and
        # builds logic for such a read: for a read of the old data ("read-first", Amaranth's
        # default) a comparison of the addresses into a flip-flop per data bit, 5 logic levels
        # (and 6 with the write before the read); for a transparent read, as here, one flip-flop
        # and a register of the written data. The write is registered (``write_en``,
        # ``write_data``), so that flip-flop's comparison starts from flip-flops only.
        m.submodules.storage = storage = Memory(shape=len(self.w_data), depth=self.depth,
                                                init=[])
        write = storage.write_port()
        read = storage.read_port(domain="sync", transparent_for=(write,))
        write_at = Signal(range(self.depth))
        read_at = Signal(range(self.depth))
        write_en, write_data = Signal(), Signal.like(self.w_data)
        m.d.sync += [write_en.eq(self.w_en), write_data.eq(self.w_data)]
        m.d.comb += [write.addr.eq(write_at), write.data.eq(write_data), write.en.eq(write_en),
                     read.addr.eq(read_at), read.en.eq(self.r_en), self.r_data.eq(read.data)]
        with m.If(write_en):
            m.d.sync += write_at.eq(write_at + 1)
        with m.If(self.r_en):
            m.d.sync += read_at.eq(read_at + 1)
        m.d.sync += self.level.eq(self.level + self.w_en - self.r_en)

        # The reader's count: an entry counts from the cycle after its row is written (so a
        # read never meets the write of the same row).
        written = Signal()
        readable = Signal(range(self.depth + 1))
        m.d.sync += [written.eq(write_en), readable.eq(readable + written - self.r_en)]
        # Non-zero next cycle: a write arrives, or two or more wait, or one waits unread.
        m.d.sync += self.r_rdy.eq(written | (readable[1:] != 0) | (readable[0] & ~self.r_en))
        return m
