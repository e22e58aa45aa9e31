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


def _parse(width):
    from nicoffload.hdl.parse import FrameParser
    from nicoffload.model.nbl import TxUser
    return AxiTop(FrameParser(width, TxUser.width()))


def _lso(width):
    from nicoffload.hdl.lso import LsoUnit
    return AxiTop(LsoUnit(width))


def _txpath(width):
    from nicoffload.hdl.txpath import TxPath
    return AxiTop(TxPath(width))


def _rsc(width):
    from nicoffload.hdl.rsc import RscUnit
    return AxiTop(RscUnit(width))


def _rxpath(width):
    from nicoffload.hdl.rxpath import RxPath
    return AxiTop(RxPath(width))


def _csr(width):
    from nicoffload.hdl.csr import Csr
    return AxiTop(Csr(data_bytes=width // 8))


def _nic(width):
    from nicoffload.hdl.nic import Nic
    return AxiTop(Nic(width))


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


def make(unit: str, width: int):
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; units: {', '.join(sorted(UNITS))}")
    check_width(width)
    return UNITS[unit](width)


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
