"""What a run of the NIC bench (``tb/nic_bench.py``) leaves behind: the summary and the run
folder of ``nicoffload regress``.

The run folder (every file is what the RTL took in or gave out; the scoreboard has held each
output to the model's):

``tx_host_in.pcap``        host frames into ``s_axis_tx`` (LSO sends whole), in order
``tx_wire_out.pcap``       wire frames out of ``m_axis_wire``
``rx_wire_in.pcap``        wire frames into ``s_axis_wire``
``rx_host_out.pcap``       host frames (SCUs) out of ``m_axis_rx``
``rx_report.jsonl``        one object per host frame, its RX info as ``nicoffload rx --report``
                           writes it (NDIS field names)
``tx_completions.jsonl``   one object per host frame: ``host`` (its index), ``Status`` (a
                           ``TxStatus`` name), ``LsoComplete`` (the TransmitComplete word),
                           ``cycle``
``summary.json``           :func:`summary`

Captures are nanosecond pcaps; a record's time is the simulation time of the frame's first
beat (inputs) or last beat (outputs), one clock cycle being ``tb.common.CLOCK_NS`` ns.
"""

from __future__ import annotations

import json
from pathlib import Path

from nicoffload.model import nbl
from nicoffload.tb import common

CAPTURES = ("tx_host_in.pcap", "tx_wire_out.pcap", "rx_wire_in.pcap", "rx_host_out.pcap")


def _start(frames) -> int | None:
    times = [f.sim_time_start for f in frames if f.sim_time_start is not None]
    return min(times) if times else None


def _path(tb, sent, frames_out, *others) -> dict:
    """Frames and bytes in and out of one path; cycles from its first input beat to its last
    output beat (``frames_out`` and ``others``: lists whose items end with their cycle)."""
    from nicoffload.tb.nic_bench import cycle_of
    start = _start(sent)
    first = cycle_of(start) if start is not None else None
    last = max((item[-1] for lst in (frames_out, *others) for item in lst), default=None)
    cycles = last - first + 1 if first is not None and last is not None else 0
    out_bytes = sum(len(o[0]) for o in frames_out)
    return {
        "frames_in": len(sent),
        "bytes_in": sum(len(f.tdata) for f in sent),
        "frames_out": len(frames_out),
        "bytes_out": out_bytes,
        "cycles": cycles,
        "bytes_per_cycle": round(out_bytes / cycles, 3) if cycles else 0.0,
        "line_fraction": round(out_bytes / cycles / (tb.width // 8), 4) if cycles else 0.0,
    }


def summary(tb, counters: dict | None = None) -> dict:
    """Per path: frames and bytes in and out, mismatches, drops by reason, cycles (first input
    beat to last output beat) and output bytes per cycle (under the run's random idles,
    backpressure and RSC idle gaps: not a line-rate figure); RSC: SCUs and the segments they
    hold; the configuration phases; pass or fail."""
    counters = counters or {}
    tx = _path(tb, tb.tx_sent, tb.got_wire, tb.got_txc)
    tx["completions"] = len(tb.got_txc)
    tx["mismatches"] = tb.mismatches["tx"]
    drops: dict[str, int] = {}
    for word, _ in tb.got_txc:
        status = nbl.TxCompletion.from_int(word).Status
        if status:
            name = nbl.TxStatus(status).name if status in nbl.TxStatus._value2member_map_ \
                else str(status)
            drops[name] = drops.get(name, 0) + 1
    tx["drops"] = dict(sorted(drops.items()))
    tx["oversize"] = counters.get("TX_OVERSIZE", 0)
    rx = _path(tb, tb.rx_sent, tb.got_host)
    rx["mismatches"] = tb.mismatches["rx"]
    rx["drops"] = {}             # the RX path indicates every frame it takes
    failed = {"IP": 0, "TCP": 0, "UDP": 0}
    scus = multi = segments = 0
    for _, user, _ in tb.got_host:
        csum, rsc, _ = nbl.RxUser.unpack(user)
        failed["IP"] += csum.IpChecksumFailed
        failed["TCP"] += csum.TcpChecksumFailed
        failed["UDP"] += csum.UdpChecksumFailed
        if rsc.CoalescedSegCount:
            scus += 1
            multi += rsc.CoalescedSegCount > 1
            segments += rsc.CoalescedSegCount
    rx["checksum_failed_indicated"] = failed
    if counters:
        rx["checksum_failed_counted"] = {k: counters.get(f"RX_{k}_CHECKSUM_FAILED", 0)
                                         for k in ("IP", "TCP", "UDP")}
    rsc_stats = tb.model.rsc_statistics
    return {
        "passed": tb.passed(),
        "error": tb.error,
        "width": tb.width,
        "seed": common.seed(),
        "offloads": list(getattr(tb, "offloads", ())),
        "phases": tb.phases,
        "cycles": tb.cycles(),
        "tx": tx,
        "rx": rx,
        "rsc": {"scus": scus, "scus_of_2_or_more": multi, "coalesced_segments": segments,
                "model_statistics": {"CoalescedPkts": rsc_stats.CoalescedPkts,
                                     "CoalescedOctets": rsc_stats.CoalescedOctets,
                                     "CoalesceEvents": rsc_stats.CoalesceEvents,
                                     "Aborts": rsc_stats.Aborts}},
        "counter_mismatches": tb.mismatches["counters"],
        "counters": counters,
        "mismatch_messages": tb.messages,
    }


def write(tb, folder: Path, counters: dict | None = None) -> dict:
    """The run folder (module docstring); returns the summary."""
    from nicoffload.sim import pcapio
    from nicoffload.sim.datapath import rx_report_line
    folder.mkdir(parents=True, exist_ok=True)
    ns = common.CLOCK_NS

    def capture(name, records):
        with pcapio.CaptureWriter(folder / name, nanosecond=True) as w:
            for time_ns, data in records:
                w.write(time_ns, data)

    from nicoffload.tb.nic_bench import cycle_of
    capture("tx_host_in.pcap", ((cycle_of(f.sim_time_start or 0) * ns, bytes(f.tdata))
                                for f in tb.tx_sent))
    capture("tx_wire_out.pcap", ((c * ns, d) for d, c in tb.got_wire))
    capture("rx_wire_in.pcap", ((cycle_of(f.sim_time_start or 0) * ns, bytes(f.tdata))
                                for f in tb.rx_sent))
    capture("rx_host_out.pcap", ((c * ns, d) for d, _, c in tb.got_host))
    with open(folder / "rx_report.jsonl", "w") as f:
        for _, user, _ in tb.got_host:
            f.write(rx_report_line(*nbl.RxUser.unpack(user)) + "\n")
    with open(folder / "tx_completions.jsonl", "w") as f:
        for i, (word, cycle) in enumerate(tb.got_txc):
            c = nbl.TxCompletion.from_int(word)
            status = nbl.TxStatus(c.Status).name if c.Status in nbl.TxStatus._value2member_map_ \
                else c.Status
            f.write(json.dumps({"host": i, "Status": status, "LsoComplete": c.LsoComplete,
                                "cycle": cycle}) + "\n")
    result = summary(tb, counters)
    (folder / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
