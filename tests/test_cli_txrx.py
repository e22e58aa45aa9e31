"""``nicoffload tx`` and ``nicoffload rx`` end to end: both engines, same output; the TX
output checked by scapy; errors as one line."""

import json
import random
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from nicoffload.model.parse import parse
from nicoffload.sim import pcapio
from nicoffload.tb import traffic

CLI = [sys.executable, "-m", "nicoffload.sim.cli"]


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    rng = random.Random(2024)
    frames = [traffic.random_frame(rng).data for _ in range(250)]
    path = tmp_path_factory.mktemp("pcap") / "mixed.pcap"
    pcapio.write_frames(path, frames)
    return path, frames


@pytest.mark.rtl
def test_tx_engines_agree_and_scapy_agrees(mixed, tmp_path):
    path, frames = mixed
    outs = {}
    for engine in ("model", "rtl"):
        out = tmp_path / f"tx-{engine}.pcap"
        r = cli("tx", path, out, "--engine", engine)
        assert r.returncode == 0, r.stderr
        outs[engine] = pcapio.read_frames(out)
    assert outs["model"] == outs["rtl"]
    assert len(outs["model"]) == len(frames)
    # Every TCP/UDP frame our parser follows (any framing, options, extension headers,
    # padding): scapy, rebuilding it with its checksums deleted, writes the same bytes.
    checked = 0
    for wire in outs["rtl"]:
        h = parse(wire)
        if not h.ok or h.is_fragment or h.l4_proto not in (6, 17) or not h.l4_header_len:
            continue
        rebuilt = Ether(wire)
        for layer in (IP, TCP, UDP):
            if layer in rebuilt:
                del rebuilt[layer].chksum
        assert bytes(rebuilt) == wire
        checked += 1
    assert checked > 150


@pytest.mark.rtl
def test_rx_engines_agree(mixed, tmp_path):
    path, frames = mixed
    reports = {}
    for engine in ("model", "rtl"):     # RSC off: every frame indicated alone
        out, rep = tmp_path / f"rx-{engine}.pcap", tmp_path / f"rx-{engine}.jsonl"
        r = cli("rx", path, out, "--engine", engine, "--report", rep,
                "--keyword", "*RscIPv4=0", "--keyword", "*RscIPv6=0")
        assert r.returncode == 0, r.stderr
        assert pcapio.read_frames(out) == frames
        reports[engine] = [json.loads(line) for line in rep.read_text().splitlines()]
    assert reports["model"] == reports["rtl"]
    assert len(reports["model"]) == len(frames)
    first = reports["model"][0]
    assert set(first) >= {"IpChecksumSucceeded", "TcpChecksumFailed", "CoalescedSegCount",
                          "DupAckCount", "RscTcpTimestampDelta"}
    assert any(r["TcpChecksumSucceeded"] for r in reports["model"])


def test_rx_keyword_disables_checks(mixed, tmp_path):
    path, _ = mixed
    rep = tmp_path / "r.jsonl"
    r = cli("rx", path, tmp_path / "o.pcap", "--report", rep,
            "--keyword", "*TCPUDPChecksumOffloadIPv4=1", "--keyword", "*IPChecksumOffloadIPv4=1")
    assert r.returncode == 0, r.stderr
    for line in rep.read_text().splitlines():
        obj = json.loads(line)
        assert not obj["IpChecksumSucceeded"] and not obj["IpChecksumFailed"]


@pytest.mark.parametrize("args, message", [
    (("rx", "/nonexistent.pcap", "out.pcap"), "cannot read"),
    (("tx", "{bad}", "out.pcap"), "not a pcap"),
    (("tx", "{good}", "out.pcap", "--keyword", "*LsoV2IPv4=7"), "*LsoV2IPv4"),
    (("rx", "{good}", "out.pcap", "--keyword", "nonsense"), "NAME=VALUE"),
])
def test_errors_are_one_line(tmp_path, args, message):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture")
    good = tmp_path / "good.pcap"
    pcapio.write_frames(good, [bytes(Ether() / IP() / TCP())])
    args = [a.format(bad=bad, good=good) for a in args]
    r = subprocess.run(CLI + args, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.parametrize("args, message", [
    (("tx", "{good}", "out.pcap", "--mss", "0"), "--mss"),
    (("tx", "{good}", "out.pcap", "--mss", "lots"), "--mss"),
    (("tx", "{good}", "out.pcap", "--engine", "fpga"), "--engine"),
    (("rx", "{good}", "out.pcap", "--engine", "fpga"), "--engine"),
    (("tx", "{good}", "out.pcap", "--lso", "v3"), "--lso"),
    (("tx", "{good}", "out.pcap", "--width", "100"), "--width"),
    (("tx", "{good}", "{dir}"), "is a directory"),
    (("rx", "{good}", "{dir}"), "is a directory"),
    (("rx", "{good}", "out.pcap", "--report", "{dir}"), "is a directory"),
    (("tx", "{dir}", "out.pcap"), "is a directory"),
    (("tx", "{missing}", "out.pcap"), "No such file"),
    (("tx", "{good}", "{missing_dir}/out.pcap"), "cannot write"),
    (("rx", "{good}", "out.pcap", "--report", "{missing_dir}/r.jsonl"), "cannot write"),
    (("tx", "{good}"), "Missing argument"),
    (("tx", "{good}", "out.pcap", "--bogus"), "--bogus"),
    (("tx", "{good}", "out.pcap", "extra"), "extra"),
    (("nosuchcommand",), "nosuchcommand"),
    (("config", "--revision", "9"), "--revision"),
    (("config", "--keyword"), "--keyword"),
    (("bench", "--size", "0"), "--size"),
    (("bench", "--offload", "ipsec"), "--offload"),
    (("bench", "--offload", "rsc", "--model-only", "--size", "54"), "RSC bench"),
    (("regress", "--width", "9"), "--width"),
    (("regress", "--frames", "many"), "--frames"),
    (("verilog", "--width", "7"), "--width"),
    (("verilog", "-o", "{dir}"), "is a directory"),
    (("synth", "--width", "3"), "--width"),
])
def test_bad_options_are_one_line(tmp_path, args, message):
    """DESIGN 4: a bad option, argument or path of any subcommand is one clear line on
    stderr and a non-zero exit (no usage block), and no output is written."""
    good = tmp_path / "good.pcap"
    pcapio.write_frames(good, [bytes(Ether() / IP() / TCP())])
    names = {"good": good, "dir": tmp_path, "missing": tmp_path / "missing.pcap",
             "missing_dir": tmp_path / "no" / "such"}
    args = [a.format(**names) for a in args]
    r = subprocess.run(CLI + args, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nicoffload: error: ") and message in lines[0], r.stderr
    assert "Usage:" not in r.stderr and not r.stdout
    assert not (tmp_path / "out.pcap").exists()


def test_help_and_version_are_not_errors():
    for args in (["--help"], ["tx", "--help"], ["--version"]):
        r = subprocess.run(CLI + args, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout and not r.stderr, args


def test_truncated_pcap_is_an_error(tmp_path):
    good = tmp_path / "g.pcap"
    pcapio.write_frames(good, [bytes(Ether() / IP() / TCP()) * 3])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-10])
    r = cli("rx", cut, tmp_path / "o.pcap")
    assert r.returncode != 0 and "runs past the end" in r.stderr


def test_tx_mss_segments_large_sends(tmp_path):
    """``tx --mss``: TCP frames with more payload than the MSS leave as MSS-sized segments
    whose checksums scapy recomputes identically and whose payloads rebuild the send."""
    from scapy.packet import Raw
    rng = random.Random(7)
    big4 = Ether() / IP(src="10.1.1.1", dst="10.2.2.2", id=0x7FFE) / \
        TCP(flags="PA", seq=0xFFFFF000, options=[("Timestamp", (5, 6))]) / \
        Raw(rng.randbytes(60000))
    big6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(flags="FA") / \
        Raw(rng.randbytes(7000))
    small = Ether() / IP() / UDP() / Raw(b"hello")
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, [bytes(big4), bytes(big6), bytes(small)])
    for lso in ("v1", "v2"):
        out = tmp_path / f"out-{lso}.pcap"
        r = cli("tx", src, out, "--mss", 1460, "--lso", lso)
        assert r.returncode == 0, r.stderr
        wire = pcapio.read_frames(out)
        assert len(wire) == 42 + 5 + 1     # ceil(60000/1460) + ceil(7000/1460) + 1
        payload4, payload6 = b"", b""
        for i, frame in enumerate(wire[:-1]):
            pkt = Ether(frame)
            rebuilt = pkt.copy()
            if IP in rebuilt:
                del rebuilt[IP].chksum
            del rebuilt[TCP].chksum
            assert bytes(rebuilt) == frame, f"segment {i}: checksums"
            if IP in pkt:
                assert pkt[IP].id == (0x7FFE & 0x8000) | ((0x7FFE + i) & 0x7FFF)
                assert pkt[TCP].seq == (0xFFFFF000 + len(payload4)) & 0xFFFFFFFF
                assert ("P" in str(pkt[TCP].flags)) == (i == 41)
                payload4 += bytes(pkt[TCP].payload)
            else:
                assert ("F" in str(pkt[TCP].flags)) == (i == 46)
                payload6 += bytes(pkt[TCP].payload)
        assert payload4 == bytes(big4[Raw]) and payload6 == bytes(big6[Raw])


@pytest.mark.rtl
def test_tx_mss_engines_agree(tmp_path):
    """Large sends interleaved with mixed traffic: the RTL TX path (segmenter + checksum
    insertion) writes the same capture as the model, both LSO versions."""
    from scapy.packet import Raw
    rng = random.Random(11)
    frames = [traffic.random_frame(rng).data for _ in range(40)]
    for i in range(6):
        ip = IP(src="10.0.0.1", dst="10.0.0.2", id=0xFFF0 + i) if i % 2 == 0 else \
            IPv6(src="2001:db8::1", dst="2001:db8::2")
        send = Ether() / ip / TCP(flags="PA", options=[("Timestamp", (1, 2))]) / \
            Raw(rng.randbytes(rng.choice([1500, 4000, 20000])))
        frames.insert(rng.randrange(len(frames)), bytes(send))
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, frames)
    for lso in ("v1", "v2"):
        outs = {}
        for engine in ("model", "rtl"):
            out = tmp_path / f"{lso}-{engine}.pcap"
            r = cli("tx", src, out, "--engine", engine, "--mss", 1000, "--lso", lso)
            assert r.returncode == 0, r.stderr
            outs[engine] = pcapio.read_frames(out)
        assert outs["model"] == outs["rtl"]
        assert len(outs["model"]) > len(frames) + 20


@pytest.mark.rtl
def test_rx_rtl_runs_the_top_with_rsc(mixed, tmp_path):
    """RSC on (the default): ``--engine rtl`` runs the NIC top, coalescer included, and
    writes what the model writes, report and times too; the last line says RSC is on."""
    path, _ = mixed
    outs = {}
    for engine in ("model", "rtl"):
        out, rep = tmp_path / f"rx-{engine}.pcap", tmp_path / f"rx-{engine}.jsonl"
        r = cli("rx", path, out, "--engine", engine, "--report", rep, "--batch", 16)
        assert r.returncode == 0, r.stderr
        assert "rx: RSC (IPv4 and IPv6): " in r.stderr, r.stderr
        outs[engine] = (list(pcapio.read(out)), rep.read_text())
    assert outs["model"] == outs["rtl"]


def test_rx_rtl_refuses_what_the_build_lacks(mixed, tmp_path):
    """``--engine rtl``: other RSC contexts than the build's 8, or an idle timer in capture
    time, is one error line (before any simulator starts) and writes nothing."""
    path, _ = mixed
    for extra, word in ((("--rsc-contexts", "4"), "--rsc-contexts"),
                        (("--rsc-timeout-us", "100"), "--rsc-timeout-us")):
        r = cli("rx", path, tmp_path / "o.pcap", "--engine", "rtl", *extra)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert lines[0].startswith("nicoffload: error: --engine rtl") and word in lines[0]
        assert not (tmp_path / "o.pcap").exists()
    r = cli("rx", path, tmp_path / "o.pcap", "--keyword", "*RscIPv4=0", "--keyword", "*RscIPv6=0")
    assert r.returncode == 0 and "rx: RSC off" in r.stderr, r.stderr


@pytest.mark.rtl
def test_tx_big_tcp_capture_engines_agree(tmp_path):
    """Captured sends over 64 KB (BIG TCP: IPv4 Total Length 0; IPv6 Payload Length 0 with a
    Jumbo Payload hop-by-hop header) go out as MSS segments that rebuild the payload, on both
    engines; with --lso v1 too, since LSOv1 cannot carry them and the transport takes LSOv2."""
    from scapy.packet import Raw
    rng = random.Random(12)
    pay4, pay6 = rng.randbytes(150000), rng.randbytes(100000)
    head4 = bytearray(bytes(Ether() / IP(src="10.9.0.1", dst="10.9.0.2", id=7) /
                            TCP(flags="PA", seq=5)))
    head4[16:18] = b"\0\0"
    head6 = bytearray(bytes(Ether() / IPv6(src="2001:db8::9", dst="2001:db8::a") /
                            TCP(flags="A", seq=9)))
    head6[18:20], head6[20] = b"\0\0", 0                 # Payload Length 0, Next Header HBH
    head6[54:54] = bytes([6, 0, 0xC2, 4]) + (8 + 20 + len(pay6)).to_bytes(4, "big")
    small = bytes(Ether() / IP() / UDP() / Raw(b"x" * 30))
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, [bytes(head4) + pay4, small, bytes(head6) + pay6])
    outs = {}
    for lso, engine in (("v1", "model"), ("v2", "model"), ("v2", "rtl")):
        out = tmp_path / f"{lso}-{engine}.pcap"
        r = cli("tx", src, out, "--engine", engine, "--mss", 1460, "--lso", lso)
        assert r.returncode == 0 and "dropped" not in r.stderr, r.stderr
        outs[lso, engine] = pcapio.read_frames(out)
    assert outs["v1", "model"] == outs["v2", "model"] == outs["v2", "rtl"]
    wire = outs["v2", "rtl"]
    n4, n6 = -(-len(pay4) // 1460), -(-len(pay6) // 1460)
    assert len(wire) == n4 + 1 + n6 and wire[n4] == small
    for segs, pay, layer in ((wire[:n4], pay4, IP), (wire[n4 + 1:], pay6, IPv6)):
        got = b""
        for frame in segs:
            pkt = Ether(frame)
            assert layer in pkt and len(frame) <= 14 + 40 + 20 + 1460
            again = pkt.copy()
            del again[TCP].chksum
            if layer is IP:
                del again[IP].chksum
            assert bytes(again) == frame
            got += bytes(pkt[TCP].payload)
        assert got == pay
