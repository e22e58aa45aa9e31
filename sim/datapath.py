"""The TX and RX paths behind ``nicoffload tx`` / ``nicoffload rx``, on either engine.

``model``: the golden model, ``model/nic.py`` (the whole-path functions and ``TxRequest``
live there and are re-exported here). ``rtl``: the same frames and NBL info streamed
through the Verilated unit (``tb/tb_stream.py``); both engines get identical inputs, so their
outputs can be compared frame for frame. The model's RX path includes receive segment
coalescing (``model.nic.rx_model_stream``, ``model/rsc.py``); the RTL's does not yet. What
acts as the transport (``prepare_send``, ``prepare_tx``) stays here for now.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from nicoffload.model import nbl, transport_nvgre
from nicoffload.model.checksum import RX_ENABLE_NAMES, TX_MAX_FRAME
from nicoffload.model.nic import (TxRequest, rx_model, rx_model_stream, rx_rsc_engine,
                                  tx_limits, tx_model, tx_model_send)
from nicoffload.model.parse import IPPROTO_TCP, parse
from nicoffload.model.transport import prepare_checksum
from nicoffload.model.transport_lso import prepare_large_send, segment_in_software, \
    split_captured_send

__all__ = ["TxRequest", "prepare_send", "prepare_tx", "tx_limits", "tx_model_send", "tx_model",
           "tx_rtl", "wire_times", "rx_model", "rx_rsc_engine", "rx_model_stream", "rx_rtl",
           "rx_report_line"]


_SOFTWARE = "software"


def _large_send_plan(frame: bytes, extra: int, mss: int | None, lso: str, datapath,
                     max_frame: int) -> str | None:
    """How the transport sends ``frame`` (with ``extra`` more payload bytes after it): None
    for an ordinary send (no MSS given, not a whole TCP segment, payload within the MSS);
    "v1"/"v2" for a large send handed to LSO; "software" for a large send the transport
    segments itself because the NIC's LSO cannot take it: the LSO of its IP version is off,
    it makes fewer segments than MinSegmentCount or carries more payload than
    MaxOffLoadSize, or its segments would be longer than the NIC's largest frame
    (``max_frame``). LSOv1 exists for IPv4 datagrams of at most 65535 bytes; an IPv6 send,
    or a larger one, uses LSOv2 when that is on."""
    if mss is None:
        return None
    h = parse(frame)
    if not h.ok or h.l4_proto != IPPROTO_TCP or not h.l4_header_len or h.is_fragment:
        return None
    hdr_end = h.l4_offset + h.l4_header_len
    payload = h.l4_end - hdr_end + extra
    if payload <= mss:
        return None
    version = None
    if h.ip_version == 4:
        if lso == "v1" and datapath.lso_v1_ipv4 and h.ip_end - h.l3_offset + extra <= 0xFFFF:
            version = "v1"
        elif datapath.lso_v2_ipv4:
            version = "v2"
    elif datapath.lso_v2_ipv6:
        version = "v2"
    if version is None:
        return _SOFTWARE
    limits = datapath.lso_limits()
    key = f"{version}_ipv{h.ip_version}"
    segments = -(-payload // mss)
    if segments < max(1, limits[f"{key}_min_segment_count"]) or \
            payload > limits[f"{key}_max_offload_size"] or hdr_end + mss > max_frame:
        return _SOFTWARE
    return version


def prepare_send(frame, datapath, *, mss: int | None = None, lso: str = "v2", host: int = 0,
                 max_frame: int = TX_MAX_FRAME, id_mode: str = "ndis") -> list[TxRequest]:
    """What the NDIS TCP/IP transport hands the miniport for one frame of a capture: a large
    send for a TCP payload over the MSS (``mss``, LSO version ``lso`` for IPv4) that the
    NIC's LSO can take; the segments of one it cannot, cut in software
    (``transport_lso.segment_in_software``, IPv4 IDs by ``id_mode``); otherwise the frame
    with the checksum offloads the configuration enables. A frame longer than the NIC's
    largest frame (``max_frame``) never carries a checksum request: the transport fills its
    checksums (``transport.prepare_checksum``).

    A captured send too large for its IP length field (length 0, BIG TCP;
    ``transport_lso.split_captured_send``) is a large send of its whole length; when it is
    not segmented it goes as captured (the NIC passes a frame it cannot parse unchanged).
    An NVGRE frame is prepared by ``transport_nvgre.prepare_send`` (encapsulated offloads
    when ``datapath.encap`` is on, the inner work in software when not). Every request
    carries ``host``."""
    encapsulated = transport_nvgre.prepare_send(frame, datapath, mss=mss, max_frame=max_frame,
                                                id_mode=id_mode)
    if encapsulated is not None:
        return [TxRequest(*request, host=host) for request in encapsulated]
    head, extra = (split_captured_send(frame) if mss is not None else None) or (frame, b"")
    plan = _large_send_plan(head, len(extra), mss, lso, datapath, max_frame)
    try:
        if plan == _SOFTWARE:
            return [TxRequest(*prepare_checksum(segment, datapath, max_frame=max_frame),
                              host=host)
                    for segment in segment_in_software(head, mss, extra_payload=extra,
                                                       id_mode=id_mode)]
        if plan is not None:
            prepared, word, info = prepare_large_send(head, mss, plan, extra_payload=extra)
            return [TxRequest(prepared, info, word, host=host)]
    except ValueError:          # a send the transport never offloads (URG, SYN, ...)
        pass
    prepared, info = prepare_checksum(frame, datapath, max_frame=max_frame)
    return [TxRequest(prepared, info, host=host)]


def prepare_tx(frames, datapath, *, mss: int | None = None, lso: str = "v2",
               max_frame: int = TX_MAX_FRAME) -> list[TxRequest]:
    """``prepare_send`` for each frame in turn; ``host`` counts the frames from 0."""
    return [request for i, frame in enumerate(frames)
            for request in prepare_send(frame, datapath, mss=mss, lso=lso, host=i,
                                        max_frame=max_frame)]


def wire_times(requests: list[TxRequest], host_times: list[int], wire_count: int,
               datapath=None) -> list[int]:
    """The time of each of ``wire_count`` wire frames from the RTL: that of the host frame
    (``host_times[request.host]``) of the request it came from. The RTL's output stream does
    not say which request a frame belongs to, so the model's count of frames per request
    divides them (the cross-checks hold the RTL to the model frame for frame); frames past
    the model's count, should there be any, get the last time."""
    limits = tx_limits(datapath)
    times = []
    for request in requests:
        segments, _ = tx_model_send(request, limits)
        times.extend([host_times[request.host]] * len(segments))
    last = times[-1] if times else (host_times[-1] if host_times else 0)
    return (times + [last] * wire_count)[:wire_count]


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
    limits = tx_limits(datapath)
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


def rx_rtl(frames, datapath, width: int) -> list[tuple[bytes, nbl.ChecksumRx]]:
    enables = {name: int(bool(getattr(datapath, name))) for name in RX_ENABLE_NAMES}

    def run(fs):
        items = [{"data": bytes(f).hex(), "tuser": 0} for f in fs]
        got, _ = _stream_rtl("rxcsum", width, items, enables=enables, expect=len(items))
        return [(bytes.fromhex(x["data"]), nbl.RxUser.unpack(x["tuser"])[0]) for x in got]
    return _nonempty(frames, lambda f: f, run, lambda f: (bytes(f), nbl.ChecksumRx()))


def rx_report_line(flags: nbl.ChecksumRx, rsc: nbl.RscInfo | None = None,
                   delta: int | nbl.RscTcpTimestampDelta = 0) -> str:
    """One JSON object per host frame, keys the NDIS field names (DESIGN.md section 4):
    booleans for the checksum flag bits, integers for CoalescedSegCount, DupAckCount and
    RscTcpTimestampDelta."""
    obj = {name: bool(value) for name, value in flags.to_dict().items()}
    rsc = rsc or nbl.RscInfo()
    obj.update(rsc.to_dict())
    obj["RscTcpTimestampDelta"] = delta if isinstance(delta, int) else delta.to_int()
    return json.dumps(obj)
