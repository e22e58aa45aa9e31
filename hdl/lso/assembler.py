"""The segmenter's datapath: each output beat read from the ring and the template, rotated and
patched.

:class:`SegmentAssembler` carries out the sequencer's commands, one beat a cycle in three
stages. Read: the command's ring rows (two consecutive rows, one from each bank) and its
template row are read, and which 16-bit word of the beat each per-segment header field
lands on is registered (one bit a word: the field's place in the frame, a register of the
sequencer's, compared with the beat index). Fetch: the memories' outputs are registered,
with every per-byte choice as a mask and the value the fields put in each 16-bit word of
the beat (fields never overlap, so an OR of the fields' values, each gated by its bit).
Merge: the payload lanes are the two rows rotated by the segment's offset within a row;
the header lanes are the template with the segment's fields written over it (802.3 length,
IPv4 Total Length, ID and checksum 0, IPv6 Payload Length, sequence number, flags, TCP
checksum field = the transport's pseudo-header sum + the TCP length; for LSOv2 over NVGRE
those of the inner headers and the outer 802.3 length, IP length, IPv4 ID and checksum 0,
and the GRE sequence number). So a header's last beat and the first payload bytes leave in
the same cycle.

The stages never stall: the beats go into a small output FIFO, and a command is taken
while the FIFO has room for every beat that may still be on its way (a registered count), so
the sequencer's decisions never wait on the output's ``ready``.
"""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axis import AxisSignature, axis_layout
from ..stream import StreamFIFO
from .common import MAX_HEADER, NSLOT, PATCH_WORDS, TXU, command_layout, patch_values

_OUT_DEPTH = 16     # as cheap as 8 in LUT RAM (16-deep primitives)
_IN_FLIGHT = 5      # beats not yet counted in the registered level when a command is taken

__all__ = ["SegmentAssembler"]


def _or_all(values):
    """The OR of ``values`` (a balanced tree)."""
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return _or_all(values[:half]) | _or_all(values[half:])


class SegmentAssembler(wiring.Component):
    """Carries out the sequencer's beat commands.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    commands : In(stream.Signature(command_layout(W)))
        One command per output beat; ``ready`` (a register) while the output FIFO has room.
    ring_addr_even, ring_addr_odd, ring_data_even, ring_data_odd : Out, In
        The ring's two banks (rows ``2i`` and ``2i + 1``), read ports with one cycle latency.
    template_addr, template_data : Out, In
        The template memory's read port.
    read_en : Out(1)
        Enable of all three read ports (always: the pipeline never stalls).
    m_axis : Out(AxisSignature(W, 128))
        The beats.
    """

    def __init__(self, width):
        self.width = width
        nb = width // 8
        rows = 32768 // nb // 2
        super().__init__({
            "commands": In(stream.Signature(command_layout(width))),
            "ring_addr_even": Out(range(rows)), "ring_addr_odd": Out(range(rows)),
            "ring_data_even": In(width), "ring_data_odd": In(width),
            "template_addr": Out(range(NSLOT * (MAX_HEADER // nb))),
            "template_data": In(width),
            "read_en": Out(1),
            "m_axis": Out(AxisSignature(width, TXU)),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lognb = (nb - 1).bit_length()
        cmd = self.commands.payload
        m.submodules.beats = beats = StreamFIFO(axis_layout(w, TXU), _OUT_DEPTH)
        wiring.connect(m, beats.m, wiring.flipped(self.m_axis))
        room = Signal()
        m.d.sync += room.eq(beats.level <= _OUT_DEPTH - _IN_FLIGHT)
        taken = Signal()
        m.d.comb += [
            self.commands.ready.eq(room), taken.eq(self.commands.valid & room),
            self.ring_addr_even.eq(cmd.ring_at.even), self.ring_addr_odd.eq(cmd.ring_at.odd),
            self.template_addr.eq(cmd.tpl), self.read_en.eq(1),
        ]
        # Read stage: the memories are read; the command is registered, with the 16-bit word
        # of this beat each header field of the segment lands on (none if it is not in this
        # beat): a comparison of the field's place (a register of the sequencer's) with the
        # beat index, so the fetch stage only chooses.
        read = Signal(data.StructLayout({
            "valid": 1, "cmd": command_layout(w),
            "lands": data.ArrayLayout(nb // 2, PATCH_WORDS)}))
        m.d.sync += [read.valid.eq(taken), read.cmd.eq(cmd)]
        places = cmd.patch.places
        for i in range(PATCH_WORDS):
            at = places.at[i]
            in_beat = places.on[i] & ((at >> lognb) == cmd.j)
            m.d.sync += read.lands[i].eq(Mux(in_beat, 1 << at[1:lognb], 0))
        fetched = self._fetch(m, read)
        self._merge(m, fetched, beats.s)
        return m

    def _fetch(self, m, read):
        """Fetch stage: the memories' outputs registered (a block RAM's read data is slow to
        come out), the ring rows put in order, and every per-byte choice of the merge made
        into a mask: which 16-bit word each field lands in, which bytes are header, which kept.
        """
        w, nb = self.width, self.width // 8
        c = read.cmd
        fetched = Signal(data.StructLayout({
            "valid": 1, "cmd": command_layout(w), "lo": w, "hi": w, "template": w,
            "patched_high": nb // 2, "patched_low": nb // 2, "patch_words": w,
            "header_bytes": nb, "keep": nb}))
        odd = c.row[0]
        m.d.sync += [
            fetched.valid.eq(read.valid), fetched.cmd.eq(c),
            fetched.lo.eq(Mux(odd, self.ring_data_odd, self.ring_data_even)),
            fetched.hi.eq(Mux(odd, self.ring_data_even, self.ring_data_odd)),
            fetched.template.eq(self.template_data),
        ]
        # Each 16-bit word of the beat: whether a field lands on its high (first) and low
        # byte, and the field's value there (an OR of the fields that land: never more than
        # one), so the merge is a choice per byte.
        fields = patch_values(c.patch)
        assert len(fields) == PATCH_WORDS
        for k in range(nb // 2):
            lands = [read.lands[i][k] for i in range(PATCH_WORDS)]
            m.d.sync += [
                fetched.patched_high[k].eq(Cat(*[hit for hit, (_, low_only)
                                                 in zip(lands, fields) if not low_only]).any()),
                fetched.patched_low[k].eq(Cat(*lands).any()),
                fetched.patch_words[16 * k:16 * k + 16].eq(
                    _or_all([Mux(hit, Cat(value[8:16], value[0:8]), 0)
                             for hit, (value, _) in zip(lands, fields)])),
            ]
        for i in range(nb):
            m.d.sync += [fetched.header_bytes[i].eq(c.hdr > i), fetched.keep[i].eq(c.keep > i)]
        return fetched

    def _merge(self, m, fetched, merged):
        """Merge stage: payload lanes rotated out of the two rows, header lanes from the
        template with the segment's fields written over it; into the output FIFO."""
        w, nb = self.width, self.width // 8
        c = fetched.cmd
        rotated = Signal(w)
        m.d.comb += rotated.eq(Cat(fetched.lo, fetched.hi).bit_select(c.rho * 8, w))
        header = Signal(w)
        for k in range(nb // 2):
            high, low = slice(16 * k, 16 * k + 8), slice(16 * k + 8, 16 * k + 16)
            m.d.comb += [
                header[high].eq(Mux(fetched.patched_high[k], fetched.patch_words[high],
                                    fetched.template[high])),
                header[low].eq(Mux(fetched.patched_low[k], fetched.patch_words[low],
                                   fetched.template[low])),
            ]
        data_out = Signal(w)
        for i in range(nb):
            m.d.comb += data_out[8 * i:8 * i + 8].eq(
                Mux(fetched.header_bytes[i], header[8 * i:8 * i + 8], rotated[8 * i:8 * i + 8]))
        m.d.sync += [
            merged.valid.eq(fetched.valid),
            merged.payload.data.eq(data_out), merged.payload.keep.eq(fetched.keep),
            merged.payload.last.eq(c.last), merged.payload.user.eq(c.user),
        ]
