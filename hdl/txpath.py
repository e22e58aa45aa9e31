"""The transmit path: LSO segmentation, then checksum insertion (DESIGN.md 1 and 2).

::

    s_axis_tx ─► LsoSegmenter ─► TxChecksum ─► m_axis_wire
                      └─────────────────────► m_axis_txc (one TxCompletion per host frame)

:class:`~nicoffload.hdl.lso.LsoSegmenter` turns each large send into segments whose IPv4 and
TCP checksums it leaves for :class:`~nicoffload.hdl.checksum.TxChecksum` (it asks for them in
each segment's ChecksumTx word); ordinary frames pass the segmenter unchanged and get the
checksums their own ChecksumTx word asks for. The whole path is checked against
``model.lso.segment`` and ``model.checksum.tx_fill`` by ``tb/tb_txpath.py``.
"""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl

from .axis import AxisSignature, check_width
from .checksum import TxChecksum
from .layouts import word_layout
from .lso import LSO_CONFIG, LsoSegmenter, config_fields

__all__ = ["TxPath"]


class TxPath(wiring.Component):
    """Host frames in, wire frames and TX completions out.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis_tx : In(AxisSignature(W, 96))
        Host frames; ``user`` on the first beat is ``nbl.TxUser`` (checksum, LSO and
        supplemental words, bit-exact NDIS layouts).
    m_axis_wire : Out(AxisSignature(W))
        Wire frames: the segments of each large send and the ordinary frames, in host order,
        every requested (and every LSO) checksum filled.
    m_axis_txc : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One completion per host frame, in host order (``LsoComplete`` word, ``Status``). It
        can run ahead of the frame's last wire beats (they wait in the checksum stage).
    limits : In(LSO_CONFIG)
        The LSO configuration (``hdl.lso.config_value(LsoLimits(...))``).
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis_tx": In(AxisSignature(width, nbl.TxUser.width())),
            "m_axis_wire": Out(AxisSignature(width)),
            "m_axis_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "limits": In(LSO_CONFIG, init=config_fields()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.lso = lso = LsoSegmenter(self.width)
        m.submodules.csum = csum = TxChecksum(self.width)
        wiring.connect(m, wiring.flipped(self.s_axis_tx), lso.s_axis)
        wiring.connect(m, lso.m_axis, csum.s_axis)
        wiring.connect(m, csum.m_axis, wiring.flipped(self.m_axis_wire))
        wiring.connect(m, lso.m_txc, wiring.flipped(self.m_axis_txc))
        m.d.comb += lso.limits.eq(self.limits)
        return m
