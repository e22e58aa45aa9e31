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
    """Rows ``row`` .. ``row + read_rows(width) - 1`` of bank ``bank`` in ``data``, in the same
    cycle (bits past the window: stale)."""
    return wiring.Signature({
        "bank": Out(1),
        "row": Out(range(window_beats)),
        "data": In(width * read_rows(width)),
    })


class WindowStore(wiring.Component):
    """Two banks of the 256-byte window (one captures while the walk reads the other), as
    memories of one beat per row.

    A step reads up to ``read_rows(W)`` consecutive rows at once; rather than an adder on the
    read address, each further row comes from its own copy of the window written ``s`` rows
    lower (copy ``s`` holds row ``r + s`` at address ``r``), so all copies read at one address.

    Attributes
    ----------
    write : In(WindowWriteSignature(W, window_beats))
        The capture's writes.
    read : In(WindowReadSignature(W, window_beats))
        The walk's reads, asynchronous (LUT RAM): the walk's position is a register, and a
        read port with a registered address would put the walk's loop, which computes the
        next position, in front of the memory's address setup.
    """

    def __init__(self, width):
        self.width = width
        self.window_beats = WINDOW_BYTES * 8 // width
        self.copies = read_rows(width)
        super().__init__({
            "write": In(WindowWriteSignature(width, self.window_beats)),
            "read": In(WindowReadSignature(width, self.window_beats)),
        })

    def elaborate(self, platform):
        m = Module()
        rows = self.window_beats
        datas = []
        for copy in range(self.copies):
            memory = Memory(shape=self.width, depth=2 * rows, init=[])
            m.submodules[f"copy{copy}"] = memory
            write_port = memory.write_port()
            read_port = memory.read_port(domain="comb")
            if copy < rows:
                m.d.comb += [
                    write_port.addr.eq(Cat((self.write.row - copy)[:len(self.write.row)],
                                           self.write.bank)),
                    write_port.data.eq(self.write.data),
                    write_port.en.eq(self.write.en & ((self.write.row >= copy) if copy else 1)),
                ]
            m.d.comb += read_port.addr.eq(Cat(self.read.row, self.read.bank))
            datas.append(read_port.data)
        m.d.comb += self.read.data.eq(Cat(*datas))
        return m
