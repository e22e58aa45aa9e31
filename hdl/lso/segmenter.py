"""The segmenter, put together; and the segmenter as a unit of its own (with a parser)."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl

from ..axis import AxisSignature, axis_layout, check_width, connect_beats
from ..layouts import word_layout
from ..parse import HEADERS_LAYOUT, FrameParser
from ..stream import RegisterSlice, StreamFIFO
from .assembler import SegmentAssembler
from .common import (DESCRIPTOR, FRAME_END, LSO_CONFIG, MAX_HEADER, NSLOT, RING_BYTES, TXU,
                     config_fields)
from .front import FrameWriter, SendChecks
from .sequencer import SegmentSequencer

__all__ = ["LsoSegmenter", "LsoUnit"]


class LsoSegmenter(wiring.Component):
    """LSOv1/LSOv2 segmentation at line rate, the RTL of ``model.lso.segment``.

    It parses nothing itself: each frame's header record comes from the TX path's one
    :class:`~nicoffload.hdl.parse.FrameParser` (built with ``lso_lengths=True``), and each
    frame it sends leaves with its own record for the checksum stage.

    ::

        s_axis, s_headers ─► FrameWriter ─┬─► ring (32 KB) ──────────────────────┐
                                          ├─► templates (16 x 256 B) ────────────┤
                                          ├─► SendChecks ─► descriptors FIFO ─┐  │
                                          └─► lengths FIFO ──────────────────┐│  │
                                                                             ▼▼  ▼
              m_txc ◄─ FIFO ◄─ SegmentSequencer ─► commands ─► SegmentAssembler ─► m_axis
                                  └─► records FIFO ─► m_headers

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis : In(AxisSignature(W))
        Host frames from the parser (their ``tuser``, ``nbl.TxUser``: checksum, LSO,
        supplemental and length words, is in their records). Frames of up to 2**32 - 1
        bytes.
    s_headers : In(stream.Signature(HEADERS_LAYOUT(128)))
        The parser's record of each frame; taken with the frame's first beat.
    m_axis : Out(AxisSignature(W, 128))
        For a frame without an LSO word: the frame unchanged with its own first-beat
        ``tuser``. For a large send: its segments, each a complete frame with IPv4 checksum
        field 0 and TCP checksum field = pseudo-header sum + TCP length, and on its first beat
        ``tuser`` = ChecksumTx{IsIPv4 or IsIPv6, TcpChecksum, IpHeaderChecksum (IPv4),
        TcpHeaderOffset} (the other words 0), which makes ``model.checksum.tx_fill`` (and
        :class:`~nicoffload.hdl.checksum.TxChecksumInsert`) produce the model's segments.
        ``user`` is 0 on other beats.
    m_headers : Out(stream.Signature(HEADERS_LAYOUT(128)))
        One record per frame on ``m_axis``, in order, valid no later than its first beat:
        the parser's for a frame passed unchanged, and for a segment what the parser says
        of the segment (its lengths; ``user`` its first-beat ``tuser``).
    m_txc : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One completion per host frame, in order: {LsoComplete 0, SENT} for ordinary frames,
        the model's completion for large sends.
    limits : In(LSO_CONFIG)
        Enables, MaxOffLoadSize, MinSegmentCount per offload and the ID mode; sampled when a
        frame's headers have arrived. Default: ``LsoLimits()``.
    encap : In(1)
        The encapsulated packet task offload is operational (``LsoLimits.encap``): an
        encapsulated large send while it is 0 is dropped (LSO_DISABLED). Sampled as
        ``limits``.

    The ChecksumTx word of a large send and its IPv4 header checksum fields play no part.
    A send whose supplemental word says IsEncapsulatedPacket is an LSOv2 send over NVGRE
    (``model.nvgre_lso``): checked on its inner headers (the parser's NVGRE fields), and
    each segment carries the outer and inner headers with both IP lengths and IPv4 IDs and
    the GRE sequence number advanced; its ChecksumTx word asks for every IPv4 header
    checksum and the TCP checksum, and its supplemental word rides along in ``user``, so the
    checksum stage fills the outer and inner IPv4, inner TCP and GRE checksums.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(TXU))),
            "m_axis": Out(AxisSignature(width, TXU)),
            "m_headers": Out(stream.Signature(HEADERS_LAYOUT(TXU))),
            "m_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "limits": In(LSO_CONFIG, init=config_fields()),
            "encap": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        half = RING_BYTES // nb // 2
        m.submodules.ring_even = ring_even = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.ring_odd = ring_odd = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.templates = templates = Memory(
            shape=unsigned(w), depth=NSLOT * (MAX_HEADER // nb), init=[])
        m.submodules.writer = writer = FrameWriter(w)
        m.submodules.checks = checks = SendChecks()
        m.submodules.descriptors = descriptors = StreamFIFO(DESCRIPTOR, NSLOT)
        m.submodules.lengths = lengths = StreamFIFO(FRAME_END, NSLOT)
        m.submodules.sequencer = sequencer = SegmentSequencer(w)
        m.submodules.assembler = assembler = SegmentAssembler(w)
        m.submodules.records = records = StreamFIFO(HEADERS_LAYOUT(TXU), 4)
        m.submodules.completions = completions = StreamFIFO(word_layout(nbl.TxCompletion), 8)

        wiring.connect(m, wiring.flipped(self.s_axis), writer.s_axis)
        wiring.connect(m, wiring.flipped(self.s_headers), writer.s_headers)
        wiring.connect(m, writer.fields, checks.fields)
        wiring.connect(m, checks.descriptors, descriptors.s)
        wiring.connect(m, writer.lengths, lengths.s)
        wiring.connect(m, descriptors.m, sequencer.descriptors)
        wiring.connect(m, lengths.m, sequencer.lengths)
        wiring.connect(m, sequencer.commands, assembler.commands)
        wiring.connect(m, sequencer.records, records.s)
        wiring.connect(m, sequencer.completions, completions.s)
        wiring.connect(m, assembler.m_axis, wiring.flipped(self.m_axis))
        wiring.connect(m, records.m, wiring.flipped(self.m_headers))
        wiring.connect(m, completions.m, wiring.flipped(self.m_txc))
        m.d.comb += [
            checks.limits.eq(self.limits), checks.encap.eq(self.encap),
            writer.fp.eq(sequencer.fp), writer.frame_done.eq(sequencer.frame_done),
            sequencer.wp.eq(writer.wp),
        ]

        # The ring: even rows in one bank, odd rows in the other, so the assembler reads two
        # consecutive rows in one cycle.
        for bank, mem in ((0, ring_even), (1, ring_odd)):
            port = mem.write_port()
            m.d.comb += [port.addr.eq(writer.write_row[1:]), port.data.eq(writer.write_data),
                         port.en.eq(writer.write_en & (writer.write_row[0] == bank))]
        port = templates.write_port()
        m.d.comb += [port.addr.eq(writer.template_addr), port.data.eq(writer.write_data),
                     port.en.eq(writer.template_en)]
        for mem, addr, out in ((ring_even, assembler.ring_addr_even, assembler.ring_data_even),
                               (ring_odd, assembler.ring_addr_odd, assembler.ring_data_odd),
                               (templates, assembler.template_addr, assembler.template_data)):
            port = mem.read_port()
            m.d.comb += [port.addr.eq(addr), port.en.eq(assembler.read_en), out.eq(port.data)]
        return m


class LsoUnit(wiring.Component):
    """The segmenter as a unit of its own: the TX parser, then :class:`LsoSegmenter`.

    What ``nicoffload verilog/synth --unit lso`` and ``tb/tb_lso.py`` build; in the NIC the
    parser is the TX path's (``hdl/txpath.py``) and the records go on to the checksum stage.
    Both boundaries are register slices (DESIGN 2).

    Attributes
    ----------
    s_axis, m_axis, m_txc, limits, encap
        As :class:`LsoSegmenter`'s (``m_axis`` without the records; ``encap`` starts at 1).
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, TXU)),
            "m_axis": Out(AxisSignature(width, TXU)),
            "m_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "limits": In(LSO_CONFIG, init=config_fields()),
            "encap": In(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.parser = parser = FrameParser(w, TXU, lso_lengths=True)
        m.submodules.beats_in = beats_in = RegisterSlice(axis_layout(w))
        m.submodules.records_in = records_in = RegisterSlice(HEADERS_LAYOUT(TXU))
        m.submodules.segmenter = segmenter = LsoSegmenter(w)
        m.submodules.beats_out = beats_out = RegisterSlice(axis_layout(w, TXU))
        m.submodules.completions_out = completions_out = RegisterSlice(
            word_layout(nbl.TxCompletion))
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        connect_beats(m, parser.m_axis, beats_in.s)
        wiring.connect(m, parser.m_headers, records_in.s)
        wiring.connect(m, beats_in.m, segmenter.s_axis)
        wiring.connect(m, records_in.m, segmenter.s_headers)
        wiring.connect(m, segmenter.m_axis, beats_out.s)
        wiring.connect(m, beats_out.m, wiring.flipped(self.m_axis))
        wiring.connect(m, segmenter.m_txc, completions_out.s)
        wiring.connect(m, completions_out.m, wiring.flipped(self.m_txc))
        m.d.comb += [segmenter.m_headers.ready.eq(1), segmenter.limits.eq(self.limits),
                     segmenter.encap.eq(self.encap)]
        return m
