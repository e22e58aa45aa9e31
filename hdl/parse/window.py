"""The window's bytes in memory: written a beat per row as they arrive, read at the walk."""

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .layouts import PHASE, WINDOW_BYTES

__all__ = ["read_rows", "WindowWriteSignature", "WindowReadSignature", "WindowStore"]


def read_rows(width):
    """Rows of ``width`` bits a step reads: bytes 0..5 and 12 of a header at a position, which
    starts at byte ``PHASE``, ``PHASE + 4``, ... of the row the position is in."""
    nbytes = width // 8
    return (nbytes - 4 + PHASE + 13 + nbytes - 1) // nbytes


def WindowWriteSignature(width, window_beats):
    """A beat into the window: ``data`` into row ``row`` of bank ``bank`` when ``en``."""
    return wiring.Signature({
        "bank": Out(1),
        "row": Out(range(window_beats)),
        "data": Out(width),
        "en": Out(1),
    })


def WindowReadSignature(width, window_beats):
    """The read address of the next cycle: row ``row`` of bank ``bank``, taken into the
    window's address registers when ``load`` (they hold otherwise; ``bank`` is taken every
    cycle). ``data``: rows ``r`` .. ``r + read_rows(width) - 1`` of the bank at the address
    registers (bits past the window: stale)."""
    return wiring.Signature({
        "bank": Out(1),
        "row": Out(range(window_beats)),
        "load": Out(1),
        "data": In(width * read_rows(width)),
    })


#: The address register of each copy of the window: the address XOR ``key``, with the initial
#: value ``init`` (an address bit is 0 or all ones in each), so that no two copies' registers
#: are the same flip-flop to synthesis (which merges registers with the same input and initial
#: value, bit by bit, whatever a ``keep`` on the signal says).
_ADDRESS_COPIES = [(0, 0), (0, 1), (1, 0), (1, 1)]


class WindowStore(wiring.Component):
    """Two banks of the 256-byte window (one captures while the walk reads the other), as
    memories of one beat per row.

    A step reads up to ``read_rows(W)`` consecutive rows at once; rather than an adder on the
    read address, each further row comes from its own copy of the window written ``s`` rows
    lower (copy ``s`` holds row ``r + s`` at address ``r``), so all copies read at one address.

    The reads are asynchronous (LUT RAM) from address registers: each copy has its own
    register, loaded with the next cycle's address, so the memory's address pins hang on a
    flip-flop with the fan-out of one copy, and the walks' logic that works out where the
    next read is ends at those registers. Copy ``s`` keeps its address XOR a key of its own
    (its rows are stored at their address XOR that key).

    Attributes
    ----------
    write : In(WindowWriteSignature(W, window_beats))
        The capture's writes.
    read : In(WindowReadSignature(W, window_beats))
        The walks' reads: the address a cycle ahead, the rows at it the cycle after.
    """

    def __init__(self, width):
        self.width = width
        self.window_beats = WINDOW_BYTES * 8 // width
        self.copies = read_rows(width)
        assert self.copies <= len(_ADDRESS_COPIES)
        super().__init__({
            "write": In(WindowWriteSignature(width, self.window_beats)),
            "read": In(WindowReadSignature(width, self.window_beats)),
        })

    def elaborate(self, platform):
        m = Module()
        rows = self.window_beats
        row_bits = len(self.read.row)
        datas = []
        for copy in range(self.copies):
            key_bit, init_bit = _ADDRESS_COPIES[copy]
            ones = (1 << row_bits + 1) - 1
            key = Const(ones * key_bit, row_bits + 1)     # the row's bits, then the bank
            address = Signal(row_bits + 1, name=f"read_address{copy}", reset_less=True,
                             init=ones * init_bit)
            memory = Memory(shape=self.width, depth=2 * rows, init=[])
            m.submodules[f"copy{copy}"] = memory
            write_port = memory.write_port()
            read_port = memory.read_port(domain="comb")
            if copy < rows:
                m.d.comb += [
                    write_port.addr.eq(Cat((self.write.row - copy)[:row_bits],
                                           self.write.bank) ^ key),
                    write_port.data.eq(self.write.data),
                    write_port.en.eq(self.write.en & ((self.write.row >= copy) if copy else 1)),
                ]
            with m.If(self.read.load):
                m.d.sync += address[:row_bits].eq(self.read.row ^ key[:row_bits])
            m.d.sync += address[row_bits].eq(self.read.bank ^ key[row_bits])
            m.d.comb += read_port.addr.eq(address)
            datas.append(read_port.data)
        m.d.comb += self.read.data.eq(Cat(*datas))
        return m
