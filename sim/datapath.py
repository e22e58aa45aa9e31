"""The TX and RX paths behind ``nicoffload tx`` / ``nicoffload rx``, on either engine.

``model``: the golden model stages in Python. ``rtl``: the same frames and NBL info streamed
through the Verilated unit (``tb/tb_stream.py``); both engines get identical inputs, so their
outputs can be compared frame for frame.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, rx_validate, tx_fill
from nicoffload.model.transport import prepare_checksum

__all__ = ["TxRequest", "prepare_tx", "tx_model", "tx_rtl", "rx_model", "rx_rtl"]


@dataclass(frozen=True)
class TxRequest:
    """A host frame as the transport hands it to the miniport, with its NBL info."""
    frame: bytes
    checksum: nbl.ChecksumTx
    lso: int = 0
    supplemental: int = 0

    @property
    def tuser(self) -> int:
        return nbl.TxUser.pack(self.checksum, self.lso, self.supplemental)


def prepare_tx(frames, datapath) -> list[TxRequest]:
    """Do what the NDIS TCP/IP transport does before a send: request what the config enables."""
    out = []
    for frame in frames:
        prepared, info = prepare_checksum(frame, datapath)
        out.append(TxRequest(prepared, info))
    return out


def tx_model(requests: list[TxRequest]) -> list[bytes]:
    return [tx_fill(r.frame, r.checksum) for r in requests]


def _stream_rtl(unit: str, width: int, items: list[dict], enables: dict | None,
                expect: int) -> list[dict]:
    from nicoffload.sim import runner, units
    with tempfile.TemporaryDirectory(prefix="nicoffload-") as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps(x) + "\n" for x in items))
        env = {"NICOFFLOAD_STREAM_IN": str(src), "NICOFFLOAD_STREAM_OUT": str(dst),
               "NICOFFLOAD_EXPECT": str(expect)}
        if enables is not None:
            env["NICOFFLOAD_ENABLES"] = json.dumps(enables)
        result = runner.run(unit, {"width": width}, lambda: units.make(unit, width),
                            "nicoffload.tb.tb_stream", extra_env=env, tag="stream")
        if not result.ok:
            raise RuntimeError(f"RTL run of {unit} failed; see {result.test_dir / 'sim.log'}")
        return [json.loads(line) for line in dst.read_text().splitlines()]


def _nonempty(items, frame_of, run, passthrough):
    """``run`` the items whose frame is non-empty; a zero-length capture record (no beat can
    carry it on AXI4-Stream) gets ``passthrough(item)`` in its place, as the model gives it."""
    keep = [i for i, item in enumerate(items) if len(frame_of(item))]
    got = run([items[i] for i in keep]) if keep else []
    out = [passthrough(item) for item in items]
    for i, result in zip(keep, got):
        out[i] = result
    return out


def tx_rtl(requests: list[TxRequest], width: int) -> list[bytes]:
    def run(reqs):
        items = [{"data": r.frame.hex(), "tuser": r.tuser} for r in reqs]
        return [bytes.fromhex(x["data"])
                for x in _stream_rtl("txcsum", width, items, None, len(items))]
    return _nonempty(requests, lambda r: r.frame, run, lambda r: r.frame)


def rx_model(frames, datapath) -> list[tuple[bytes, nbl.ChecksumRx]]:
    return [(bytes(f), rx_validate(f, enables=datapath)) for f in frames]


def rx_rtl(frames, datapath, width: int) -> list[tuple[bytes, nbl.ChecksumRx]]:
    enables = {name: int(bool(getattr(datapath, name))) for name in RX_ENABLE_NAMES}

    def run(fs):
        items = [{"data": bytes(f).hex(), "tuser": 0} for f in fs]
        return [(bytes.fromhex(x["data"]), nbl.RxUser.unpack(x["tuser"])[0])
                for x in _stream_rtl("rxcsum", width, items, enables, len(items))]
    return _nonempty(frames, lambda f: f, run, lambda f: (bytes(f), nbl.ChecksumRx()))


def rx_report_line(flags: nbl.ChecksumRx, rsc: nbl.RscInfo | None = None,
                   delta: int = 0) -> str:
    """One JSON object per host frame, keys the NDIS field names (DESIGN.md section 4)."""
    obj = {name: bool(value) for name, value in flags.to_dict().items()}
    rsc = rsc or nbl.RscInfo()
    obj.update(rsc.to_dict())
    obj["RscTcpTimestampDelta"] = delta
    return json.dumps(obj)
