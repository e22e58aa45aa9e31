"""The transmit path: one parse, LSO segmentation, then checksum insertion (DESIGN.md 1, 2).

::

    s_axis_tx ─► FrameParser ═► LsoSegmenter ═► TxChecksumInsert ═► m_axis_wire
                 (one parse,       └═══════════════════════════════► m_axis_txc
                  records beside                                     (one TxCompletion per
                  the beats)                                          host frame)

``═►`` is a register slice (``hdl/stream.py``) on the beats and on the header records: every
unit boundary is registered both ways, so no unit's ``tready`` reaches into another's logic.

The frame is parsed once: :class:`~nicoffload.hdl.parse.FrameParser` (with
``lso_lengths``: an LSO frame is walked with its IP length standing for the length word of
its ``tuser``, as the model walks it) gives each frame's record, which travels beside the
frame. :class:`~nicoffload.hdl.lso.LsoSegmenter` turns each large send into segments and
hands on, for every frame it sends, the record of that frame (the parser's for a frame
passed unchanged; the segment's own lengths for a segment) whose ChecksumTx word asks for
the IPv4 and TCP checksums of the segment; :class:`~nicoffload.hdl.checksum.TxChecksumInsert`
fills the checksums each record asks for. The whole path is checked against
``model.lso.segment`` and ``model.checksum.tx_fill`` by ``tb/tb_txpath.py``.
"""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl

from .axis import AxisSignature, axis_layout, check_width, connect_beats
from .checksum import TxChecksumInsert
from .layouts import word_layout
from .lso import LSO_CONFIG, LsoSegmenter, config_fields
from .parse import HEADERS_LAYOUT, FrameParser
from .stream import RegisterSlice

__all__ = ["TxPath"]

TXU = nbl.TxUser.width()


class TxPath(wiring.Component):
    """Host frames in, wire frames and TX completions out.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis_tx : In(AxisSignature(W, 128))
        Host frames; ``user`` on the first beat is ``nbl.TxUser`` (checksum, LSO and
        supplemental words, bit-exact NDIS layouts, and the frame's length in bytes).
    m_axis_wire : Out(AxisSignature(W))
        Wire frames: the segments of each large send and the ordinary frames, in host order,
        every requested (and every LSO) checksum filled.
    m_axis_txc : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One completion per host frame, in host order (``LsoComplete`` word, ``Status``). It
        can run ahead of the frame's last wire beats (they wait in the checksum stage).
    limits : In(LSO_CONFIG)
        The LSO configuration (``hdl.lso.config_value(LsoLimits(...))``).
    encap : In(1)
        The encapsulated packet task offload is operational on transmit (0 unless driven):
        sampled with ``limits`` when the segmenter decodes a frame, for LSOv2 over NVGRE
        and for the NVGRE checksums. The frame's record then carries the decision
        (``is_nvgre`` cleared when it was off), and the checksum stage's own ``encap`` is
        tied on, so a frame is handled as it was decided even when ``encap`` changes while
        it is still in the checksum stage (after its completion has left).
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis_tx": In(AxisSignature(width, TXU)),
            "m_axis_wire": Out(AxisSignature(width)),
            "m_axis_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "limits": In(LSO_CONFIG, init=config_fields()),
            "encap": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        beat, record = axis_layout(w), HEADERS_LAYOUT(TXU)   # tuser rides in the records
        m.submodules.parser = parser = FrameParser(w, TXU, lso_lengths=True)
        m.submodules.lso = lso = LsoSegmenter(w)
        m.submodules.csum = csum = TxChecksumInsert(w)
        slices = {name: RegisterSlice(shape) for name, shape in (
            ("parsed_beats", beat), ("parsed_records", record),
            ("segment_beats", beat), ("segment_records", record),
            ("wire", axis_layout(w)), ("completions", word_layout(nbl.TxCompletion)))}
        for name, piece in slices.items():
            m.submodules[name] = piece
        wiring.connect(m, wiring.flipped(self.s_axis_tx), parser.s_axis)
        connect_beats(m, parser.m_axis, slices["parsed_beats"].s)
        wiring.connect(m, parser.m_headers, slices["parsed_records"].s)
        wiring.connect(m, slices["parsed_beats"].m, lso.s_axis)
        wiring.connect(m, slices["parsed_records"].m, lso.s_headers)
        connect_beats(m, lso.m_axis, slices["segment_beats"].s)
        wiring.connect(m, lso.m_headers, slices["segment_records"].s)
        wiring.connect(m, slices["segment_beats"].m, csum.s_axis)
        wiring.connect(m, slices["segment_records"].m, csum.s_headers)
        wiring.connect(m, csum.m_axis, slices["wire"].s)
        wiring.connect(m, slices["wire"].m, wiring.flipped(self.m_axis_wire))
        wiring.connect(m, lso.m_txc, slices["completions"].s)
        wiring.connect(m, slices["completions"].m, wiring.flipped(self.m_axis_txc))
        m.d.comb += [lso.limits.eq(self.limits), lso.encap.eq(self.encap),
                     csum.encap.eq(1)]     # the records say (``encap`` above)
        return m
