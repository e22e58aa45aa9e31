"""The RTL units that can be exported, simulated and synthesized, by name.

Each entry builds the flat-named top level (``hdl.axis.AxiTop``) of a unit for a data width.
"""

from __future__ import annotations

from nicoffload.hdl.axis import AxiTop, check_width


def _onesum(width):
    from nicoffload.hdl.onesum import OnesSum
    return AxiTop(OnesSum(width))


def _txcsum(width):
    from nicoffload.hdl.checksum import TxChecksum
    return AxiTop(TxChecksum(width))


def _rxcsum(width):
    from nicoffload.hdl.checksum import RxChecksum
    return AxiTop(RxChecksum(width))


def _parse(width, lso_lengths=False):
    """The parser; with ``lso_lengths`` as the TX path holds it (an LSO send's lengths)."""
    from nicoffload.hdl.parse import FrameParser
    from nicoffload.model.nbl import TxUser
    return AxiTop(FrameParser(width, TxUser.width(), lso_lengths=lso_lengths))


def _lso(width):
    from nicoffload.hdl.lso import LsoUnit
    return AxiTop(LsoUnit(width))


def _txpath(width):
    from nicoffload.hdl.txpath import TxPath
    return AxiTop(TxPath(width))


def _rsc(width, **rsc):
    from nicoffload.hdl.rsc import RscUnit
    return AxiTop(RscUnit(width, **rsc))


def _rxpath(width, **rsc):
    from nicoffload.hdl.rxpath import RxPath
    return AxiTop(RxPath(width, **rsc))


def _csr(width):
    from nicoffload.hdl.csr import Csr
    return AxiTop(Csr(data_bytes=width // 8))


def _nic(width, **rsc):
    from nicoffload.hdl.nic import Nic
    return AxiTop(Nic(width, **rsc))


UNITS = {
    "onesum": _onesum,
    "lso": _lso,
    "txpath": _txpath,
    "parse": _parse,
    "txcsum": _txcsum,
    "rxcsum": _rxcsum,
    "rsc": _rsc,
    "rxpath": _rxpath,
    "csr": _csr,
    "nic": _nic,
}


def _part(module, name, *args, with_width=True):
    """A factory of the part ``name`` of ``nicoffload.hdl.<module>``."""
    def build(width):
        import importlib
        cls = getattr(importlib.import_module(f"nicoffload.hdl.{module}"), name)
        return cls(*((width,) if with_width else ()), *args)
    return build


def _rsc_engine(width, **kw):
    from nicoffload.hdl.rsc import RscEngine
    return RscEngine(width, **kw)


#: The SCU region (and landing slot) size of the ``rsc.engine`` part and the engine's parts:
#: 16 KB, since the default engine's block RAM does not fit the ECP5-85k (``PARTS``).
PART_SCU_BYTES = 16384


def _rsc_part(name, *, frame_bytes=PART_SCU_BYTES, region_bytes=PART_SCU_BYTES):
    """A factory of the RSC engine's part ``name`` with the engine's sizes for ``frame_bytes``
    landing slots and ``region_bytes`` SCU regions (``hdl.rsc.engine.buffer_beats``)."""
    def build(w):
        from nicoffload.hdl import rsc
        from nicoffload.hdl.rsc.common import default_regions
        from nicoffload.hdl.rsc.engine import buffer_beats
        from nicoffload.model.rsc import DEFAULT_CONTEXTS
        cls = getattr(rsc, name)
        slot_beats, region_beats = buffer_beats(w, region_bytes, frame_bytes)
        if name == "RscSequencer":
            return cls(DEFAULT_CONTEXTS, region_bytes)
        if name == "SegmentAnalyzer":
            return cls()
        if name == "RscIngress":
            return cls(w, slot_beats)
        return cls(w, default_regions(DEFAULT_CONTEXTS), region_beats, slot_beats)
    return build


def _txu():
    from nicoffload.model.nbl import TxUser
    return TxUser.width()


#: Parts of the units, for ``nicoffload synth`` only (``--unit lso.sequencer``): a part is
#: placed on its own so its paths can be measured in minutes rather than the unit's tens of
#: minutes. They have stream ports, not the AXI names, so they are not exported or simulated.
PARTS = {
    "lso.segmenter": _part("lso", "LsoSegmenter"),
    "lso.writer": _part("lso.front", "FrameWriter"),
    "lso.checks": _part("lso.front", "SendChecks", with_width=False),
    "lso.sequencer": _part("lso.sequencer", "SegmentSequencer"),
    "lso.assembler": _part("lso.assembler", "SegmentAssembler"),
    "txcsum.insert": _part("checksum", "TxChecksumInsert"),
    "parse.capture": lambda w: _part("parse.capture", "CaptureWindow", _txu())(w),
    "parse.walk": _part("parse.walk", "HeaderWalk", with_width=False),
    "parse.tx": lambda w: _parse(w, lso_lengths=True),
    # SCU regions of 16 KB, not the default 65,664 bytes: eight default regions (4.2 Mbit)
    # are more than the ECP5-85k's block RAM (208 DP16KD, 3.7 Mbit; Yosys maps them to 282),
    # so the default engine cannot be placed on it. The logic is the same but for address bits.
    "rsc.engine": lambda w, max_scu_bytes=PART_SCU_BYTES: _rsc_engine(
        w, max_scu_bytes=max_scu_bytes),
    # The engine's parts (``hdl/rsc``), with the sizes of that ``rsc.engine``; the mover holds
    # both RAMs, so it is built with 2 KB slots and regions (the logic but for address bits).
    "rsc.sequencer": _rsc_part("RscSequencer"),
    "rsc.analyzer": _rsc_part("SegmentAnalyzer"),
    "rsc.ingress": _rsc_part("RscIngress"),
    "rsc.copier": _rsc_part("RscCopier"),
    "rsc.emitter": _rsc_part("RscEmitter"),
    "rsc.mover": _rsc_part("RscMover", frame_bytes=2048, region_bytes=2048),
}

#: The units and parts that hold the RSC engine, so take its SCU region size
#: (``make(..., rsc_scu_bytes=N)``: ``max_scu_bytes`` of ``hdl.rsc.RscEngine``).
RSC_HOLDERS = ("rsc", "rxpath", "nic", "rsc.engine")


def make(unit: str, width: int, *, parts: bool = False, rsc_scu_bytes: int | None = None):
    """The flat-named top of ``unit`` at ``width``; with ``parts``, also the names of
    :data:`PARTS` (the part itself). ``rsc_scu_bytes``: the RSC engine's SCU region size
    for a unit of :data:`RSC_HOLDERS` (default: the engine's own)."""
    known = {**UNITS, **(PARTS if parts else {})}
    if unit not in known:
        raise ValueError(f"unknown unit {unit!r}; units: {', '.join(sorted(known))}")
    check_width(width)
    if rsc_scu_bytes is None:
        return known[unit](width)
    if unit not in RSC_HOLDERS:
        raise ValueError(f"{unit!r} holds no RSC engine: an SCU size applies to "
                         f"{', '.join(RSC_HOLDERS)}")
    return known[unit](width, max_scu_bytes=rsc_scu_bytes)


def verilog_text(unit: str, width: int) -> str:
    from nicoffload.sim.runner import export
    return export(make(unit, width), unit)


# Cross-checks that `nicoffload regress` and the tests run: (unit, cocotb module, frames).
CHECKS = {
    "onesum": ("onesum", "nicoffload.tb.tb_onesum", 200),
    "parse": ("parse", "nicoffload.tb.tb_parse", 500),
    "txcsum": ("txcsum", "nicoffload.tb.tb_checksum", 500),
    "rxcsum": ("rxcsum", "nicoffload.tb.tb_checksum", 500),
    "lso": ("lso", "nicoffload.tb.tb_lso", 340),
    "txpath": ("txpath", "nicoffload.tb.tb_txpath", 340),
    "rsc": ("rsc", "nicoffload.tb.tb_rsc", 200),
    "rxpath": ("rxpath", "nicoffload.tb.tb_rxpath", 200),
}
