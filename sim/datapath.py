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

from nicoffload.model import lso as lso_model
from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, rx_validate, tx_fill
from nicoffload.model.parse import IPPROTO_TCP, parse
from nicoffload.model.transport import prepare_checksum
from nicoffload.model.transport_lso import prepare_large_send, split_captured_send

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
        return nbl.TxUser.for_frame(self.frame, self.checksum, self.lso, self.supplemental)


def _lso_version(frame: bytes, extra: int, mss: int | None, lso: str, datapath) -> str | None:
    """The LSO version the transport would use for ``frame`` (with ``extra`` more payload
    bytes after it), or None for an ordinary send: a TCP segment whose payload exceeds the
    MSS, over an IP version whose LSO is enabled. LSOv1 exists for IPv4 datagrams of at most
    65535 bytes; an IPv6 send, or a larger one, uses LSOv2 when that is on."""
    if mss is None:
        return None
    h = parse(frame)
    if not h.ok or h.l4_proto != IPPROTO_TCP or not h.l4_header_len or h.is_fragment:
        return None
    if h.l4_end - h.l4_offset - h.l4_header_len + extra <= mss:
        return None
    if h.ip_version == 4:
        if lso == "v1" and datapath.lso_v1_ipv4 and h.ip_end - h.l3_offset + extra <= 0xFFFF:
            return "v1"
        return "v2" if datapath.lso_v2_ipv4 else None
    return "v2" if datapath.lso_v2_ipv6 else None


def prepare_tx(frames, datapath, *, mss: int | None = None, lso: str = "v2"
               ) -> list[TxRequest]:
    """Do what the NDIS TCP/IP transport does before a send: a large send for TCP payloads
    over the MSS (``mss``, LSO version ``lso`` for IPv4) where LSO is enabled, otherwise the
    checksum offloads the configuration enables.

    A captured send too large for its IP length field (length 0, BIG TCP;
    ``transport_lso.split_captured_send``) is a large send of its whole length; when it is not
    offloaded it goes as captured (the NIC passes a frame it cannot parse unchanged)."""
    out = []
    for frame in frames:
        head, extra = (split_captured_send(frame) if mss is not None else None) or (frame, b"")
        version = _lso_version(head, len(extra), mss, lso, datapath)
        if version is not None:
            try:
                prepared, word, info = prepare_large_send(head, mss, version,
                                                          extra_payload=extra)
            except ValueError:      # a send the transport never offloads (URG, SYN, ...)
                version = None
            else:
                out.append(TxRequest(prepared, info, word))
                continue
        prepared, info = prepare_checksum(frame, datapath)
        out.append(TxRequest(prepared, info))
    return out


def tx_model(requests: list[TxRequest], datapath=None
             ) -> tuple[list[bytes], list[nbl.TxCompletion]]:
    """The wire frames and one TX completion per host frame."""
    limits = lso_model.LsoLimits(**datapath.lso_limits()) if datapath is not None else \
        lso_model.LsoLimits()
    wire, completions = [], []
    for r in requests:
        if r.lso:
            result = lso_model.segment(r.frame, r.lso, limits, supplemental=r.supplemental)
            wire.extend(result.segments)
            completions.append(result.completion)
        else:
            wire.append(tx_fill(r.frame, r.checksum))
            completions.append(nbl.TxCompletion())
    return wire, completions


def _stream_rtl(unit: str, width: int, items: list[dict], *, enables: dict | None = None,
                expect: int | None = None, ports: str | None = None,
                limits: int | None = None) -> tuple[list[dict], list[int]]:
    """Run ``items`` through the Verilated ``unit``; (output frames, completion words)."""
    from nicoffload.sim import runner, units
    with tempfile.TemporaryDirectory(prefix="nicoffload-") as tmp:
        src, dst, txc = (Path(tmp) / n for n in ("in.jsonl", "out.jsonl", "txc.jsonl"))
        src.write_text("".join(json.dumps(x) + "\n" for x in items))
        env = {"NICOFFLOAD_STREAM_IN": str(src), "NICOFFLOAD_STREAM_OUT": str(dst),
               "NICOFFLOAD_STREAM_TXC": str(txc)}
        if expect is not None:
            env["NICOFFLOAD_EXPECT"] = str(expect)
        if enables is not None:
            env["NICOFFLOAD_ENABLES"] = json.dumps(enables)
        if ports is not None:
            env["NICOFFLOAD_STREAM_PORTS"] = ports
        if limits is not None:
            env["NICOFFLOAD_LIMITS"] = str(limits)
        result = runner.run(unit, {"width": width}, lambda: units.make(unit, width),
                            "nicoffload.tb.tb_stream", extra_env=env, tag="stream")
        if not result.ok:
            raise RuntimeError(f"RTL run of {unit} failed; see {result.test_dir / 'sim.log'}")
        frames = [json.loads(line) for line in dst.read_text().splitlines()]
        done = [json.loads(line)["tdata"] for line in txc.read_text().splitlines()] \
            if txc.exists() else []
        return frames, done


def _nonempty(items, frame_of, run, passthrough):
    """``run`` the items whose frame is non-empty; a zero-length capture record (no beat can
    carry it on AXI4-Stream) gets ``passthrough(item)`` in its place, as the model gives it."""
    keep = [i for i, item in enumerate(items) if len(frame_of(item))]
    got = run([items[i] for i in keep]) if keep else []
    out = [passthrough(item) for item in items]
    for i, result in zip(keep, got):
        out[i] = result
    return out


def tx_rtl(requests: list[TxRequest], width: int, datapath=None
           ) -> tuple[list[bytes], list[nbl.TxCompletion]]:
    """The whole RTL TX path (``hdl.txpath.TxPath``: segmenter, then checksum insertion):
    wire frames and one completion per host frame.

    A zero-length capture record has no beat to carry it on AXI4-Stream: it leaves
    unchanged with a SENT completion, as in the model, and the frames around it go through
    the RTL in separate runs so that the order holds.
    """
    from nicoffload.hdl.lso import config_value
    limits = lso_model.LsoLimits(**datapath.lso_limits()) if datapath is not None else \
        lso_model.LsoLimits()
    wire, completions, batch = [], [], []

    def flush():
        if batch:
            items = [{"data": r.frame.hex(), "tuser": r.tuser} for r in batch]
            frames, done = _stream_rtl("txpath", width, items,
                                       ports="s_axis_tx,m_axis_wire,m_axis_txc",
                                       limits=config_value(limits))
            wire.extend(bytes.fromhex(x["data"]) for x in frames)
            completions.extend(nbl.TxCompletion.from_int(v) for v in done)
            batch.clear()

    for r in requests:
        if len(r.frame):
            batch.append(r)
        else:
            flush()
            wire.append(r.frame)
            completions.append(nbl.TxCompletion())
    flush()
    return wire, completions


def rx_model(frames, datapath) -> list[tuple[bytes, nbl.ChecksumRx]]:
    return [(bytes(f), rx_validate(f, enables=datapath)) for f in frames]


def rx_rtl(frames, datapath, width: int) -> list[tuple[bytes, nbl.ChecksumRx]]:
    enables = {name: int(bool(getattr(datapath, name))) for name in RX_ENABLE_NAMES}

    def run(fs):
        items = [{"data": bytes(f).hex(), "tuser": 0} for f in fs]
        got, _ = _stream_rtl("rxcsum", width, items, enables=enables, expect=len(items))
        return [(bytes.fromhex(x["data"]), nbl.RxUser.unpack(x["tuser"])[0]) for x in got]
    return _nonempty(frames, lambda f: f, run, lambda f: (bytes(f), nbl.ChecksumRx()))


def rx_report_line(flags: nbl.ChecksumRx, rsc: nbl.RscInfo | None = None,
                   delta: int = 0) -> str:
    """One JSON object per host frame, keys the NDIS field names (DESIGN.md section 4)."""
    obj = {name: bool(value) for name, value in flags.to_dict().items()}
    rsc = rsc or nbl.RscInfo()
    obj.update(rsc.to_dict())
    obj["RscTcpTimestampDelta"] = delta
    return json.dumps(obj)
