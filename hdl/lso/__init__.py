"""Large send offload RTL: the segmentation engine, twin of ``nicoffload.model.lso``.

:class:`LsoSegmenter` takes host frames (TxUser in the first beat's ``tuser``: checksum, LSO,
supplemental and length words) with the header record the TX path's one parser made of each
(``hdl/parse.py``, ``lso_lengths``), cuts every large send into MSS-sized segments at line
rate, and hands each frame it sends to the checksum stage
(:class:`nicoffload.hdl.checksum.TxChecksumInsert`) with the record of that frame; a
segment's record asks for the IPv4 header checksum and the TCP checksum. A send whose
supplemental word says IsEncapsulatedPacket is LSOv2 over NVGRE (``model.nvgre_lso``): it
is checked and cut on its inner TCP header, each segment's outer IP length and ID and GRE
sequence number patched too, and its record asks for every NVGRE checksum (the outer and
inner IPv4 headers, the inner TCP, GRE). Frames without an LSO word pass through unchanged. One :class:`~nicoffload.model.nbl.TxCompletion` per host
frame leaves on ``m_txc``, in order. :class:`LsoUnit` is the segmenter with a parser of its
own, the unit that ``--unit lso`` builds and ``tb/tb_lso.py`` checks.

The parts, one module each:

- ``front``: :class:`~.front.FrameWriter` (beats into the ring and the 256-byte templates,
  the header fields and the pseudo-header sum picked up as the beats pass) and
  :class:`~.front.SendChecks` (the model's checks in its order, in four stages: decode,
  headers, products, length). The frame's length comes in its ``tuser`` (DESIGN 2), so
  every check is decided before a segment of the send leaves: a bad send is dropped whole,
  at every size.
- ``sequencer``: :class:`~.sequencer.SegmentSequencer`, which beat goes out next (PASS,
  segments, DROP), the records and the completions.
- ``assembler``: :class:`~.assembler.SegmentAssembler`, each output beat read from the ring
  and the template, rotated and patched.
- ``segmenter``: :class:`LsoSegmenter` (the parts joined, the memories) and
  :class:`LsoUnit`.

Segments that do not fit the checksum stage: a segment longer than ``TX_MAX_FRAME`` would
leave the checksum stage without checksums, so ``hdr_end + min(MSS, payload) >
TX_MAX_FRAME`` is LSO_BAD_MSS (``model.lso`` check 12, ``LsoLimits.max_segment_bytes``); the
802.3 rule is applied beside it.
"""

from .common import (LSO_CONFIG, MAX_HEADER, NSLOT, RING_BYTES, config_fields, config_value,
                     end_reason)
from .segmenter import LsoSegmenter, LsoUnit

__all__ = ["LSO_CONFIG", "config_value", "config_fields", "LsoSegmenter", "LsoUnit",
           "end_reason", "MAX_HEADER", "RING_BYTES", "NSLOT"]
