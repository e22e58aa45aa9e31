"""``nicoffload rx`` with receive segment coalescing (DESIGN 3 RSC, DESIGN 4 ``rx``) on the
model engine (and on the RTL engine, the NIC top, against it): captures of interleaved TCP flows built with scapy go through the command, and
scapy (checksums), the flows as sent (payload, order) and the options' meaning check what
comes out."""

import json
import random
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from nicoffload.sim import cli as cli_mod
from nicoffload.sim import datapath, pcapio

MAC = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
T0 = 1_700_000_000_000_000_000          # ns; every time below is a whole microsecond
US = 1000

# name: (IP layer, source port, with timestamps)
FLOWS = {
    "a4": (lambda: IP(src="10.0.0.1", dst="10.0.0.9"), 1001, True),
    "b4": (lambda: IP(src="10.0.0.2", dst="10.0.0.9"), 1002, False),
    "c6": (lambda: IPv6(src="2001:db8::1", dst="2001:db8::9"), 2001, True),
    "d6": (lambda: IPv6(src="2001:db8::2", dst="2001:db8::9"), 2002, False),
}


def segment(flow, seq, payload, tsval=0, flags="A"):
    ip, sport, ts = FLOWS[flow]
    options = [("Timestamp", (tsval, 77))] if ts else []
    return bytes(Ether(**MAC) / ip() / TCP(sport=sport, dport=80, flags=flags, seq=seq,
                                           ack=5000, window=8192, options=options) /
                 Raw(payload))


def flow_of(frame):
    """(flow name, seq, payload) of a TCP frame of FLOWS, or None."""
    pkt = Ether(frame)
    if TCP not in pkt:
        return None
    name = next(n for n, (_, sport, _) in FLOWS.items() if sport == pkt[TCP].sport)
    return name, pkt[TCP].seq, bytes(pkt[TCP].payload)


def interleaved(seed=1, per_flow=40, udp_every=9):
    """Records of the four flows interleaved at random (in order within a flow, in bursts so
    that SCUs grow), a UDP frame now and then, 10 us apart; and each flow's payload."""
    rng = random.Random(seed)
    left = {name: per_flow for name in FLOWS}
    seq = {name: 1000 * (i + 1) for i, name in enumerate(FLOWS)}
    sent = {name: b"" for name in FLOWS}
    frames, flow = [], "a4"
    while any(left.values()):
        if not left[flow] or rng.random() < 0.4:
            flow = rng.choice([n for n in FLOWS if left[n]])
        payload = rng.randbytes(rng.randint(1, 1400))
        tsval = 100 + per_flow - left[flow]
        frames.append(segment(flow, seq[flow], payload, tsval,
                              flags="PA" if rng.random() < 0.2 else "A"))
        seq[flow] += len(payload)
        sent[flow] += payload
        left[flow] -= 1
        if len(frames) % udp_every == 0:
            frames.append(bytes(Ether(**MAC) / IP(src="10.0.0.7", dst="10.0.0.9") /
                                UDP(sport=53, dport=53) / Raw(b"udp")))
    return [(T0 + 10 * US * i, f) for i, f in enumerate(frames)], sent


def run(tmp_path, records, *args):
    """``nicoffload rx`` on ``records``: (output records, report objects, stderr)."""
    src, out, rep = tmp_path / "in.pcap", tmp_path / "out.pcap", tmp_path / "r.jsonl"
    pcapio.write(src, records)
    result = CliRunner().invoke(cli_mod.main, ["rx", str(src), str(out), "--report", str(rep),
                                               *map(str, args)])
    assert result.exit_code == 0, result.output
    report = [json.loads(line) for line in rep.read_text().splitlines()]
    got = list(pcapio.read(out))
    assert len(report) == len(got)
    return got, report, result.stderr


def covered(parsed, out_frame, count):
    """Indices of the input records an output TCP frame holds (its flow, its sequence
    range): ``count`` of them. ``parsed`` is ``flow_of`` of every input frame."""
    name, seq, payload = flow_of(out_frame)
    idx = [i for i, f in enumerate(parsed)
           if f and f[0] == name and seq <= f[1] < seq + max(1, len(payload))]
    assert len(idx) == count
    return idx


@pytest.fixture(scope="module")
def capture():
    records, sent = interleaved()
    return records, sent, [flow_of(f) for _, f in records]


def test_flows_coalesce_checksums_payloads_counts(capture, tmp_path):
    records, sent, parsed = capture
    got, report, stderr = run(tmp_path, records)
    assert len(got) < len(records) // 3
    multi = [r for r in report if r["CoalescedSegCount"] > 1]
    assert len(multi) >= 8
    handed_up = {name: b"" for name in FLOWS}
    segments = alone = 0
    for (_, frame), info in zip(got, report):
        pkt = Ether(frame)
        again = pkt.copy()
        if IP in again:
            del again[IP].chksum
        for layer in (TCP, UDP):
            if layer in again:
                del again[layer].chksum
        assert bytes(again) == frame                       # checksums right by scapy
        assert info["DupAckCount"] == 0
        f = flow_of(frame)
        if f is None:
            assert info["CoalescedSegCount"] == 0 and info["RscTcpTimestampDelta"] == 0
            alone += 1
            continue
        name, seq, payload = f
        assert seq == 1000 * (list(FLOWS).index(name) + 1) + len(handed_up[name])
        handed_up[name] += payload
        assert info["TcpChecksumSucceeded"] and not info["TcpChecksumFailed"]
        assert info["IpChecksumSucceeded"] == (IP in pkt)
        assert not info["TcpChecksumValueInvalid"] and not info["IpChecksumValueInvalid"]
        segments += info["CoalescedSegCount"]
        assert len(covered(parsed, frame, info["CoalescedSegCount"])) >= 1
        if FLOWS[name][2] and info["CoalescedSegCount"] > 1:    # timestamps: TSval span
            assert info["RscTcpTimestampDelta"] == info["CoalescedSegCount"] - 1
        elif not FLOWS[name][2]:
            assert info["RscTcpTimestampDelta"] == 0
    assert handed_up == sent                               # per flow, in order, all of it
    assert segments + alone == len(records)                # every segment counted once
    for name, value in (("wire frames", len(records)), ("host frames", len(got))):
        assert f"{value} {name}" in stderr
    scus = sum(1 for r in report if r["CoalescedSegCount"])
    assert f"{scus} SCUs ({len(multi)} of several segments) holding {segments} segments, " \
           f"{alone} frames alone" in stderr
    stats = dict(re.findall(r"(\w+) (\d+)", stderr.split("OID_TCP_RSC_STATISTICS:")[1]))
    assert int(stats["CoalescedPkts"]) == segments and int(stats["CoalesceEvents"]) == scus
    assert int(stats["Aborts"]) == 0
    assert int(stats["CoalescedOctets"]) == sum(len(p) for p in sent.values())
    # Default --batch 64: an SCU ends with its receive indication, at its last frame's time.
    times = [t for t, _ in got]
    assert times == sorted(times)
    for (t, frame), info in zip(got, report):
        if info["CoalescedSegCount"]:
            idx = covered(parsed, frame, info["CoalescedSegCount"])
            assert len({i // 64 for i in idx}) == 1
            last = min(len(records), (idx[0] // 64 + 1) * 64) - 1
            assert t == records[last][0]


@pytest.mark.parametrize("batch", [1, 7])
def test_no_coalescing_across_batches(capture, tmp_path, batch):
    records, sent, parsed = capture
    got, report, _ = run(tmp_path, records, "--batch", batch)
    if batch == 1:
        assert [f for _, f in got] == [f for _, f in records]
        assert [t for t, _ in got] == [t for t, _ in records]
    total = 0
    for (_, frame), info in zip(got, report):
        if info["CoalescedSegCount"]:
            idx = covered(parsed, frame, info["CoalescedSegCount"])
            assert len({i // batch for i in idx}) == 1, idx
            total += len(idx)
    assert total == sum(1 for f in parsed if f)
    if batch == 7:
        assert any(r["CoalescedSegCount"] > 1 for r in report)


def test_rsc_ipv4_off_leaves_ipv4_alone(capture, tmp_path):
    records, _, _ = capture
    got, report, stderr = run(tmp_path, records, "--keyword", "*RscIPv4=0")
    v4_in = [f for _, f in records if IP in Ether(f)]
    v4_out = [(f, r) for (_, f), r in zip(got, report) if IP in Ether(f)]
    assert [f for f, _ in v4_out] == v4_in
    assert all(r["CoalescedSegCount"] == 0 for _, r in v4_out)
    v6_in = [f for _, f in records if IPv6 in Ether(f)]
    v6_out = [r for (_, f), r in zip(got, report) if IPv6 in Ether(f)]
    assert len(v6_out) < len(v6_in) and sum(r["CoalescedSegCount"] for r in v6_out) == len(v6_in)
    assert "rx: RSC (IPv6): " in stderr
    got, report, stderr = run(tmp_path, records, "--keyword", "*RscIPv4=0",
                              "--keyword", "*RscIPv6=0")
    assert got == records and "rx: RSC off" in stderr
    assert all(r["CoalescedSegCount"] == 0 for r in report)


def gapped(gap_us):
    """One flow: segments at 0, 10, 20 us, then at 20 + gap and 30 + gap; then a UDP frame
    at 1000 + gap (which, not TCP, touches no SCU and goes up as it arrives)."""
    times = [0, 10, 20, 20 + gap_us, 30 + gap_us]
    records, seq = [], 1
    for k, t in enumerate(times):
        payload = bytes([k]) * 100
        records.append((T0 + t * US, segment("b4", seq, payload)))
        seq += len(payload)
    udp = bytes(Ether(**MAC) / IP() / UDP() / Raw(b"x" * 30))
    records.append((T0 + (1000 + gap_us) * US, udp))
    return records


def test_timeout_splits_at_gaps(tmp_path):
    records = gapped(500)
    for args, counts, times in (
            ((), [0, 5], [1500, 1500]),       # no timer: UDP first, the SCU at the end
            (("--rsc-timeout-us", 100), [3, 2, 0], [120, 630, 1500]),    # last join + T
            (("--rsc-timeout-us", 500), [3, 2, 0], [520, 1030, 1500]),   # gap == T: split
            (("--rsc-timeout-us", 501), [5, 0], [1031, 1500]),
            (("--rsc-timeout-us", 5), [1, 1, 1, 1, 1, 0], [5, 15, 25, 525, 535, 1500])):
        got, report, _ = run(tmp_path, records, *args)
        assert [r["CoalescedSegCount"] for r in report] == counts, args
        assert [(t - T0) // US for t, _ in got] == times, args
        payload = b"".join(flow_of(f)[2] for _, f in got if flow_of(f))
        assert payload == b"".join(flow_of(f)[2] for _, f in records if flow_of(f))


def test_timeout_in_nanoseconds(tmp_path):
    """The engine's clock is the capture's in nanoseconds: in a nanosecond capture a gap of
    T minus 1 ns keeps the SCU, a gap of exactly T ends it."""
    for gap_ns, counts in ((99_999, [2]), (100_000, [1, 1])):
        src, out = tmp_path / "ns.pcap", tmp_path / "o.pcap"
        pcapio.write(src, [(T0 + 7, segment("d6", 1, bytes(50))),
                           (T0 + 7 + gap_ns, segment("d6", 51, bytes(50)))], nanosecond=True)
        rep = tmp_path / "r.jsonl"
        result = CliRunner().invoke(cli_mod.main, ["rx", str(src), str(out), "--report",
                                                   str(rep), "--rsc-timeout-us", "100"])
        assert result.exit_code == 0, result.output
        assert [json.loads(x)["CoalescedSegCount"] for x in rep.read_text().splitlines()] \
            == counts
        assert [t for t, _ in pcapio.read(out)][0] == T0 + 7 + gap_ns


@pytest.mark.rtl
@pytest.mark.parametrize("batch", [7])     # (64 too, once: CI time)
def test_rtl_engine_coalesces_as_the_model(tmp_path, batch):
    """``--engine rtl`` runs the NIC top (W=64, the build the other RTL tests share): the
    same host frames, RX info and times as the model engine, with RSC on for both IP
    versions, end-of-indication markers every ``batch`` frames, and with RSC off for IPv4."""
    records, _ = interleaved(seed=5, per_flow=12)
    for extra in ((), ("--keyword", "*RscIPv4=0")):
        outs = {}
        for engine in ("model", "rtl"):
            sub = tmp_path / f"{engine}{len(extra)}"
            sub.mkdir()
            outs[engine] = run(sub, records, "--engine", engine, "--batch", batch, *extra)[:2]
        assert outs["model"] == outs["rtl"]
        assert any(r["CoalescedSegCount"] > 1 for r in outs["rtl"][1])


def test_rtl_engine_refuses_a_timer_or_other_contexts(tmp_path, monkeypatch):
    """``--engine rtl`` with ``--rsc-timeout-us`` or ``--rsc-contexts`` other than the
    build's: one error line, no simulator, nothing written."""
    from nicoffload.sim import runner

    def no_simulator(*args, **kwargs):
        raise AssertionError("no simulator in this test")
    monkeypatch.setattr(runner, "run", no_simulator)
    records = [(T0 + k * US, segment("a4", 1 + 10 * k, bytes(10))) for k in range(5)]
    src, out = tmp_path / "in.pcap", tmp_path / "o.pcap"
    pcapio.write(src, records)
    for extra in (("--rsc-timeout-us", "10"), ("--rsc-contexts", "2"),
                  ("--rsc-contexts", "16", "--keyword", "*RscIPv4=0")):
        result = CliRunner().invoke(cli_mod.main, ["rx", str(src), str(out), "--engine", "rtl",
                                                   *extra])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith("nicoffload: error: --engine rtl: ") and extra[0] in lines[0]
        assert not out.exists()


def test_one_context_two_flows(tmp_path):
    frames, seq = [], {"a4": 1, "c6": 1}
    for k in range(12):
        flow = ("a4", "c6")[k % 2]
        frames.append(segment(flow, seq[flow], bytes(200), tsval=k))
        seq[flow] += 200
    records = [(T0 + k * US, f) for k, f in enumerate(frames)]
    got, report, stderr = run(tmp_path, records, "--rsc-contexts", 1)
    # Each SCU is ended by the other flow's next segment, and indicated at its arrival.
    assert [f for _, f in got] == frames
    assert [t for t, _ in got] == [t for t, _ in records[1:]] + [records[-1][0]]
    assert [r["CoalescedSegCount"] for r in report] == [1] * 12
    assert "CoalesceEvents 12, Aborts 11" in stderr
    got, report, stderr = run(tmp_path, records, "--rsc-contexts", 2)
    assert [r["CoalescedSegCount"] for r in report] == [6, 6]
    assert "CoalesceEvents 2, Aborts 0" in stderr


def test_capture_time_going_backwards(tmp_path):
    """A record earlier than the one before it (a merged capture) is not an error: it
    arrives at the time of the one before, and host frames are never timed backwards."""
    records = [(T0 + t * US, segment("a4", 1 + 100 * k, bytes(100), tsval=k))
               for k, t in enumerate([50, 40, 45, 200])]
    got, report, _ = run(tmp_path, records, "--rsc-timeout-us", 100, "--batch", 2)
    assert [r["CoalescedSegCount"] for r in report] == [2, 1, 1]
    assert [(t - T0) // US for t, _ in got] == [50, 150, 200]


def test_streamed_in_bounded_memory(capture):
    """The model engine indicates a receive indication's frames before it reads past it."""
    from nicoffload.model import config
    records, _, _ = capture
    dp = config.bind(()).datapath()
    read = []

    def reader():
        for record in records:
            read.append(record)
            yield record
    stream = datapath.rx_model_stream(reader(), dp, datapath.rx_rsc_engine(dp), batch=16)
    for _ in stream:
        assert len(read) <= 16
        break
    assert sum(1 for _ in stream) > 0 and len(read) == len(records)


@pytest.mark.parametrize("args, option", [
    (("--rsc-contexts", "0"), "--rsc-contexts"),
    (("--rsc-contexts", "many"), "--rsc-contexts"),
    (("--rsc-timeout-us", "0"), "--rsc-timeout-us"),
    (("--rsc-timeout-us", "-5"), "--rsc-timeout-us"),
    (("--rsc-timeout-us", "1.5"), "--rsc-timeout-us"),
    (("--batch", "0"), "--batch"),
    (("--batch", "x"), "--batch"),
    (("--batch",), "--batch"),
])
def test_bad_values_are_one_line(tmp_path, args, option):
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, [segment("a4", 1, b"x")])
    result = CliRunner().invoke(cli_mod.main, ["rx", str(src), str(tmp_path / "o.pcap"),
                                               *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("nicoffload: error: ") and option in lines[0]
    assert not (tmp_path / "o.pcap").exists()


def test_bad_value_from_a_shell(tmp_path):
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, [segment("a4", 1, b"x")])
    r = subprocess.run([sys.executable, "-m", "nicoffload.sim.cli", "rx", str(src),
                        str(tmp_path / "o.pcap"), "--rsc-timeout-us", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and not r.stdout
    assert r.stderr.count("\n") == 1 and "--rsc-timeout-us" in r.stderr
