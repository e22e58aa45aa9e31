"""The TX and RX paths behind ``nicoffload tx`` / ``nicoffload rx``, on either engine.

``model``: the golden model, ``model/nic.py`` (the whole-path functions and ``TxRequest``
live there and are re-exported here). ``rtl``: the same frames and NBL info streamed
through the Verilated NIC top level (unit ``nic``, ``tb/tb_nic_stream.py``: registers
programmed over AXI4-Lite from the same keywords, every output scored against the model
NIC); both engines get identical inputs, so their outputs can be compared frame for frame.
Both RX paths include receive segment coalescing (``model/rsc.py``, ``hdl/rsc``). What acts
as the transport (``prepare_send``, ``prepare_tx``) stays here for now.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from nicoffload.model import nbl
from nicoffload.model import rsc as rsc_model
from nicoffload.model import transport_nvgre
from nicoffload.model.checksum import TX_MAX_FRAME
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
    encapsulated = transport_nvgre.prepare_send(frame, datapath, mss=mss, max_frame=max_frame)
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


#: The RTL top's RSC flow contexts (``hdl.nic.Nic``'s default, ``units.make("nic", W)``).
RTL_RSC_CONTEXTS = rsc_model.DEFAULT_CONTEXTS


def _nic_rtl(items: list[dict], width: int, keywords=()) -> tuple[list[dict], list[int]]:
    """Run ``items`` (``tb/tb_nic_stream.py``'s input lines) through the Verilated NIC top
    (unit ``nic``: the build ``nicoffload regress`` and the tests use); (output frames, TX
    completion words). The bench holds every output to the model NIC's; a mismatch is a
    ``RuntimeError``."""
    from nicoffload.sim import runner, units
    with tempfile.TemporaryDirectory(prefix="nicoffload-") as tmp:
        src, dst, txc, score = (Path(tmp) / n for n in
                                ("in.jsonl", "out.jsonl", "txc.jsonl", "score.json"))
        src.write_text("".join(json.dumps(x) + "\n" for x in items))
        env = {"NICOFFLOAD_STREAM_IN": str(src), "NICOFFLOAD_STREAM_OUT": str(dst),
               "NICOFFLOAD_STREAM_TXC": str(txc), "NICOFFLOAD_STREAM_SCORE": str(score),
               "NICOFFLOAD_KEYWORDS": json.dumps(list(keywords))}
        result = runner.run("nic", {"width": width}, lambda: units.make("nic", width),
                            "nicoffload.tb.tb_nic_stream", extra_env=env, tag="stream",
                            by_sources=True)
        log = result.test_dir / "sim.log"
        if score.exists():
            verdict = json.loads(score.read_text())
            if verdict["error"] or verdict["mismatches"]:
                first = verdict["error"] or verdict["messages"][0]
                raise RuntimeError(f"the NIC top differs from the model "
                                   f"({verdict['mismatches']} mismatches; {first}); see {log}")
        if not result.ok:
            raise RuntimeError(f"RTL run of the NIC top failed; see {log}")
        frames = [json.loads(line) for line in dst.read_text().splitlines()]
        done = [json.loads(line)["tdata"] for line in txc.read_text().splitlines()]
        return frames, done


def tx_rtl(requests: list[TxRequest], width: int, datapath=None, keywords=()
           ) -> tuple[list[bytes], list[nbl.TxCompletion]]:
    """The NIC top's TX path (registers programmed from ``keywords``, which must be those
    ``datapath`` was bound with): wire frames and one completion per host frame.

    A zero-length capture record has no beat to carry it on AXI4-Stream: it leaves
    unchanged with a SENT completion, as in the model, in its place among the others (the
    model's frame count of each request before it says where)."""
    limits = tx_limits(datapath)
    items = [{"data": r.frame.hex(), "tuser": r.tuser} for r in requests if len(r.frame)]
    frames, done = _nic_rtl(items, width, keywords) if items else ([], [])
    got_wire = iter(bytes.fromhex(x["data"]) for x in frames)
    got_done = iter(done)
    wire, completions = [], []
    for r in requests:
        if not len(r.frame):
            wire.append(r.frame)
            completions.append(nbl.TxCompletion())
            continue
        segments, _ = tx_model_send(r, limits)
        wire.extend(next(got_wire) for _ in segments)
        completions.append(nbl.TxCompletion.from_int(next(got_done)))
    return wire, completions


def rx_rtl(records, width: int, keywords=(), *, batch: int = 64, rsc_contexts: int = 8):
    """The NIC top's RX path (checksum verification, then RSC; registers programmed from
    ``keywords``) over ``(time_ns, frame)`` records, a receive indication (the ``s_axis_eoi``
    marker) after every ``batch`` records and at the end, no idle timer.

    Returns ``(time_ns, frame, ChecksumRx, RscInfo, RscTcpTimestampDelta)`` per host frame:
    the frame and its info as the RTL gave them, the time the model NIC indicates it (the
    RTL's output does not say which arrival it answers; the bench has held it to the model
    frame for frame). A zero-length record (no beat can carry it) passes alone, as in the
    model, in its place among the others."""
    from nicoffload.model.nic import Nic
    if rsc_contexts != RTL_RSC_CONTEXTS:
        raise ValueError(f"the RTL top is built with {RTL_RSC_CONTEXTS} RSC contexts, not "
                         f"{rsc_contexts}")
    records = list(records)
    items = []
    for k, (_, frame) in enumerate(records, 1):
        if len(frame):
            items.append({"data": bytes(frame).hex()})
        if k % batch == 0 or k == len(records):
            items.append({"eoi": 1})
    model = list(Nic(keywords=keywords, rsc_contexts=rsc_contexts).receive_stream(
        records, batch=batch))
    frames, _ = _nic_rtl(items, width, keywords) if any("data" in i for i in items) \
        else ([], [])
    got = iter(frames)
    out = []
    for time_ns, ind in model:
        if not len(ind.frame):
            out.append((time_ns, ind.frame, ind.checksum, ind.rsc, ind.timestamp_delta))
            continue
        x = next(got)
        out.append((time_ns, bytes.fromhex(x["data"]), *nbl.RxUser.unpack(x["tuser"])))
    return out


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
