"""``nicoffload tx`` as the TCP/IP transport (issue 8), with scapy as the oracle of every
checksum: frames longer than the NIC's largest frame get their checksums from the transport
(DESIGN 3, "Checksum TX"), and a large send the NIC's LSO cannot take is segmented in software
(DESIGN 3, "LSO")."""

import random
import subprocess
import sys

import pytest
from scapy.contrib.bgp import BGPHeader, BGPNLRI_IPv4, BGPUpdate
from scapy.contrib.openflow3 import OFPTPacketIn
from scapy.contrib.pim import PIMv2GroupAddrs, PIMv2Hdr, PIMv2JoinAddrs, PIMv2JoinPrune
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.layers.l2 import LLC, SNAP, Dot1Q, Dot3, Ether
from scapy.packet import Raw
from scapy.utils import checksum

from nicoffload.model import config
from nicoffload.model import lso as lso_model
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.nbl import ChecksumTx, TxStatus
from nicoffload.model.transport_lso import prepare_large_send
from nicoffload.sim import datapath, pcapio

CLI = [sys.executable, "-m", "nicoffload.sim.cli"]
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
CHECKSUMS_OFF = ("*TCPUDPChecksumOffloadIPv4=0", "*TCPUDPChecksumOffloadIPv6=0",
                 "*IPChecksumOffloadIPv4=0")


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True)


def scapy_checks(wire: bytes) -> set[str]:
    """Check every checksum of ``wire`` with scapy's own functions; the names checked."""
    pkt = Ether(wire)
    checked = set()
    fragment = False
    if IP in pkt:
        ip = pkt[IP]
        header = bytearray(ip.original[:ip.ihl * 4])
        header[10:12] = b"\0\0"
        assert checksum(bytes(header)) == ip.chksum, "IPv4 header checksum"
        checked.add("ip")
        fragment = bool(ip.flags.MF or ip.frag)
    for layer, proto, at in ((TCP, 6, 16), (UDP, 17, 6)):
        if layer in pkt and not fragment:
            l4 = pkt[layer]
            data = bytearray(l4.original)
            field = int.from_bytes(data[at:at + 2], "big")
            data[at:at + 2] = b"\0\0"
            under = l4.underlayer
            want = in4_chksum(proto, under, bytes(data)) if isinstance(under, IP) else \
                in6_chksum(proto, under, bytes(data))
            if proto == 17 and want == 0:
                want = 0xFFFF
            assert field == want, f"{layer.__name__} checksum {field:#06x}, scapy {want:#06x}"
            checked.add(layer.__name__.lower())
    if PIMv2Hdr in pkt:
        again = pkt.copy()
        del again[PIMv2Hdr].chksum
        assert bytes(again) == wire, "PIM checksum"
        checked.add("pim")
    return checked


def _udp_zero_sum(ip, size: int) -> bytes:
    """A UDP frame of ``size`` bytes whose checksum computes to 0 (so it goes as 0xFFFF)."""
    rng = random.Random(size)
    head = len(Ether() / ip / UDP())
    body = bytearray(rng.randbytes(size - head))
    body[-2:] = b"\0\0"
    if len(body) % 2:
        body[-3] = 0
    frame = Ether(**MAC) / ip / UDP(sport=5000, dport=5001) / Raw(bytes(body))
    sum_with_zero = Ether(bytes(frame))[UDP].chksum
    at = len(body) - 2 if len(body) % 2 == 0 else len(body) - 3
    body[at:at + 2] = sum_with_zero.to_bytes(2, "big")
    frame = bytes(Ether(**MAC) / ip / UDP(sport=5000, dport=5001) / Raw(bytes(body)))
    assert Ether(frame)[UDP].chksum == 0xFFFF
    return frame


def big_frames() -> dict[str, bytes]:
    """Frames over TX_MAX_FRAME bytes, most shaped like the ones of public captures."""
    rng = random.Random(8)
    v4 = {"src": "192.0.2.1", "dst": "198.51.100.2"}
    v6 = {"src": "2001:db8::1", "dst": "2001:db8::2"}
    frames = {
        "telnet/IPv4": Ether(**MAC) / IP(**v4, id=0x1234) /
        TCP(sport=23, dport=40001, flags="PA", seq=77) / Raw(rng.randbytes(12000)),
        "telnet/IPv6/vlan": Ether(**MAC) / Dot1Q(vlan=7) / IPv6(**v6) /
        TCP(sport=40002, dport=23, flags="A", options=[("Timestamp", (1, 2))]) /
        Raw(rng.randbytes(20000)),
        "bgp/IPv4": Ether(**MAC) / IP(**v4) / TCP(sport=179, dport=40003, flags="PA") /
        Raw(b"".join(bytes(BGPHeader(type=2) / BGPUpdate(nlri=[
            BGPNLRI_IPv4(prefix=f"10.{k}.{i // 256}.{i % 256}/32") for i in range(790)]))
            for k in range(3))),
        "openflow/IPv6": Ether(**MAC) / IPv6(**v6) /
        TCP(sport=6653, dport=40004, flags="PA") / OFPTPacketIn(data=Raw(rng.randbytes(11000))),
        "openflow/IPv4": Ether(**MAC) / IP(**v4) / TCP(sport=40005, dport=6653, flags="PA") /
        OFPTPacketIn(data=Raw(rng.randbytes(30000))),
        "dns/IPv4": Ether(**MAC) / IP(src="192.0.2.53", dst="198.51.100.7") /
        UDP(sport=53, dport=33333) /
        DNS(id=7, qr=1, aa=1, qd=DNSQR(qname="big.example.", qtype="TXT"),
            an=[DNSRR(rrname="big.example.", type="TXT", rdata=[rng.randbytes(200)])
                for _ in range(60)]),
        "dns/IPv6": Ether(**MAC) / IPv6(**v6) / UDP(sport=53, dport=33334) /
        DNS(id=8, qr=1, qd=DNSQR(qname="big.example.", qtype="TXT"),
            an=[DNSRR(rrname="big.example.", type="TXT", rdata=[rng.randbytes(250)])
                for _ in range(50)]),
        "pim/IPv4": Ether(**MAC) / IP(src="10.0.0.1", dst="224.0.0.13", ttl=1) /
        PIMv2Hdr(type=3) / PIMv2JoinPrune(up_neighbor_ip="10.0.0.2", jp_ips=[
            PIMv2GroupAddrs(gaddr=f"239.1.0.{i}", join_ips=[
                PIMv2JoinAddrs(src_ip=f"10.9.{i}.{j}") for j in range(6)])
            for i in range(200)]),
        "udp/IPv4 fragment": Ether(**MAC) / IP(**v4, flags="MF", id=99) /
        UDP(sport=1, dport=2, len=30000) / Raw(rng.randbytes(15000)),
        "tcp/IPv4 at the limit + 1": Ether(**MAC) / IP(**v4) / TCP(flags="A") /
        Raw(rng.randbytes(TX_MAX_FRAME + 1 - 54)),
    }
    frames = {name: bytes(f) for name, f in frames.items()}
    frames["udp zero sum/IPv4"] = _udp_zero_sum(IP(**v4), 10001)
    frames["udp zero sum/IPv6"] = _udp_zero_sum(IPv6(**v6), 16000)
    for name, frame in frames.items():
        assert len(frame) > TX_MAX_FRAME, name
    return frames


def _spoil(frame: bytes) -> bytes:
    """The frame with its IPv4 header and TCP/UDP checksum fields zeroed (the transport
    must compute them; a fragment's UDP checksum is not the transport's to touch)."""
    pkt = Ether(frame)
    out = bytearray(frame)
    if IP in pkt:
        l3 = len(frame) - len(pkt[IP].original)
        out[l3 + 10:l3 + 12] = b"\0\0"
        if pkt[IP].flags.MF or pkt[IP].frag:
            return bytes(out)
    for layer, field in ((TCP, 16), (UDP, 6)):
        if layer in pkt:
            l4 = len(frame) - len(pkt[layer].original)
            out[l4 + field:l4 + field + 2] = b"\0\0"
    return bytes(out)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    frames = big_frames()
    small = bytes(Ether(**MAC) / IP() / UDP() / Raw(b"small"))
    at_limit = bytes(Ether(**MAC) / IP() / TCP(flags="A") / Raw(b"\xa5" * (TX_MAX_FRAME - 54)))
    names = list(frames) + ["small", "at the limit"]
    good = list(frames.values()) + [small, at_limit]
    path = tmp_path_factory.mktemp("big")
    pcapio.write_frames(path / "good.pcap", good)
    pcapio.write_frames(path / "spoiled.pcap", [_spoil(f) for f in good])
    return path, names, good


@pytest.mark.parametrize("args", [(), ("--mss", 65000),
                                  tuple(a for k in CHECKSUMS_OFF for a in ("--keyword", k))],
                         ids=["default", "mss over payload", "checksum offload off"])
@pytest.mark.parametrize("source", ["good", "spoiled"])
def test_tx_over_max_frame_gets_transport_checksums(big, tmp_path, args, source):
    """Over TX_MAX_FRAME the NIC passes a frame unchanged, so the transport fills its
    checksums itself: correct checksums in stay correct (the frame leaves as it came), zeroed
    ones are computed; scapy confirms each one (UDP 0 as 0xFFFF included)."""
    path, names, good = big
    out = tmp_path / "out.pcap"
    r = cli("tx", path / f"{source}.pcap", out, *args)
    assert r.returncode == 0, r.stderr
    wire = pcapio.read_frames(out)
    assert len(wire) == len(good)
    for name, sent, want in zip(names, wire, good):
        assert sent == want, name
        checked = scapy_checks(sent)
        assert "ip" in checked or "IPv6" in name or "v6" in name, name
        if "dns" in name or "udp zero" in name:
            assert "udp" in checked, name
        if any(p in name for p in ("telnet", "bgp", "openflow", "tcp/")):
            assert "tcp" in checked, name
        if "pim" in name:
            assert "pim" in checked


def _payloads(frames) -> bytes:
    return b"".join(bytes(Ether(f)[TCP].payload) for f in frames)


def test_tx_lso_off_segments_in_software(big, tmp_path):
    """With LSO off, ``--mss`` sends are cut by the transport: every TCP send over the MSS
    leaves as MSS-sized segments whose payload rebuilds it, every checksum right."""
    path, names, good = big
    out = tmp_path / "out.pcap"
    r = cli("tx", path / "spoiled.pcap", out, "--mss", 1460, "--keyword", "*LsoV2IPv4=0",
            "--keyword", "*LsoV2IPv6=0")
    assert r.returncode == 0 and "dropped" not in r.stderr, r.stderr
    wire = iter(pcapio.read_frames(out))
    for name, frame in zip(names, good):
        pkt = Ether(frame)
        if TCP in pkt and len(pkt[TCP].payload) > 1460:
            count = -(-len(pkt[TCP].payload) // 1460)
            segments = [next(wire) for _ in range(count)]
            assert _payloads(segments) == bytes(pkt[TCP].payload), name
            for s in segments:
                assert "tcp" in scapy_checks(s) and len(Ether(s)[TCP].payload) <= 1460
        else:
            assert next(wire) == frame, name
    assert next(wire, None) is None


def test_tx_mss_past_max_frame_segments_in_software(tmp_path):
    """An MSS whose segments would be longer than the NIC's largest frame: LSO would drop
    the send (LSO_BAD_MSS); the transport cuts it itself and fills the checksums of the
    oversize segments."""
    rng = random.Random(3)
    sends = [Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", id=0x7FFF) /
             TCP(flags="FPA", seq=1000) / Raw(rng.randbytes(30000)),
             Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2") /
             TCP(flags="PA", seq=1) / Raw(rng.randbytes(25000))]
    src = tmp_path / "in.pcap"
    pcapio.write_frames(src, [bytes(s) for s in sends])
    r = cli("tx", src, tmp_path / "out.pcap", "--mss", 9700)
    assert r.returncode == 0 and "dropped" not in r.stderr, r.stderr
    wire = pcapio.read_frames(tmp_path / "out.pcap")
    assert len(wire) == 4 + 3
    assert max(len(f) for f in wire) > TX_MAX_FRAME
    for f in wire:
        assert "tcp" in scapy_checks(f)
    assert _payloads(wire[:4]) == bytes(sends[0][Raw])
    assert _payloads(wire[4:]) == bytes(sends[1][Raw])
    assert [Ether(f)[IP].id for f in wire[:4]] == [0x7FFF, 0x0000, 0x0001, 0x0002]
    assert [str(Ether(f)[TCP].flags) for f in wire[:4]] == ["A", "A", "A", "FPA"]


def _datapath(*keywords, min_segment_count=8):
    capabilities = config.NicCapabilities(min_segment_count=min_segment_count)
    return config.bind(list(keywords), capabilities).datapath()


def _sends():
    rng = random.Random(21)
    v4 = Ether(**MAC) / IP(src="10.1.1.1", dst="10.2.2.2", id=0x7FFE, flags="DF") / \
        TCP(sport=1, dport=2, seq=0xFFFFF000, flags="FPAEC", window=999,
            options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 6))]) / \
        Raw(rng.randbytes(5000))
    v6 = Ether(**MAC) / Dot1Q(vlan=3) / IPv6(src="2001:db8::1", dst="2001:db8::2") / \
        TCP(sport=3, dport=4, seq=5, flags="PA") / Raw(rng.randbytes(4500))
    snap = Dot3(**MAC) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / \
        IP(src="10.3.3.3", dst="10.4.4.4", id=0xFFFE) / TCP(seq=9, flags="A") / \
        Raw(rng.randbytes(1400))
    return [(bytes(v4), 1000), (bytes(v6), 1000), (bytes(snap), 300)]


@pytest.mark.parametrize("checksums_on", [True, False], ids=["csum offload", "csum off"])
def test_too_few_segments_for_min_segment_count_go_in_software(checksums_on):
    """A large send with fewer segments than MinSegmentCount is not handed to LSO (which
    would drop it): the transport cuts it into MSS-sized segments, the same bytes the NIC's
    LSO would have made, each an ordinary send that asks for checksum offload when it is on
    and carries transport-filled checksums when it is off."""
    keywords = () if checksums_on else CHECKSUMS_OFF
    dp = _datapath(*keywords)
    nic = lso_model.LsoLimits(**{**dp.lso_limits(), "v1_ipv4_min_segment_count": 1,
                                 "v2_ipv4_min_segment_count": 1,
                                 "v2_ipv6_min_segment_count": 1})
    for frame, mss in _sends():
        requests = datapath.prepare_tx([frame], dp, mss=mss)
        count = -(-len(Ether(frame)[TCP].payload) // mss)
        assert count < dp.min_segment_count
        assert len(requests) == count and not any(r.lso for r in requests)
        for r in requests:
            if checksums_on:
                assert r.checksum.TcpChecksum and r.checksum.TcpHeaderOffset
            else:
                assert r.checksum == ChecksumTx()
                assert "tcp" in scapy_checks(r.frame)
        wire, completions = datapath.tx_model(requests, dp)
        assert all(c.Status == TxStatus.SENT for c in completions)
        # The NIC's LSO with MinSegmentCount 1 makes the same segments.
        prepared, word, _ = prepare_large_send(frame, mss, "v2")
        assert wire == list(lso_model.segment(prepared, word, nic).segments)
        pkts = [Ether(w) for w in wire]
        first = Ether(frame)
        for k, (w, p) in enumerate(zip(wire, pkts)):
            assert "tcp" in scapy_checks(w)
            assert p[TCP].seq == (first[TCP].seq + k * mss) & 0xFFFFFFFF
            flags = int(first[TCP].flags)
            want = flags & ~0x89
            want |= flags & 0x80 if k == 0 else 0
            want |= flags & 0x09 if k == count - 1 else 0
            assert int(p[TCP].flags) == want
            assert p[TCP].options == first[TCP].options
            if IP in first:
                id0 = first[IP].id
                assert p[IP].id == (id0 & 0x8000) | ((id0 + k) & 0x7FFF)
                assert p[IP].len == len(p[IP].original)
                assert p[IP].flags == first[IP].flags
            else:
                assert p[IPv6].plen == len(p[IPv6].payload.original)
            if Dot3 in first:
                assert p[Dot3].len == len(w) - 14
        assert _payloads(wire) == bytes(first[TCP].payload)


def test_enough_segments_still_go_to_lso():
    """At MinSegmentCount the send is LSO's, as before."""
    dp = _datapath(min_segment_count=5)
    frame, mss = _sends()[0]
    requests = datapath.prepare_tx([frame], dp, mss=mss)
    assert len(requests) == 1 and requests[0].lso
    wire, completions = datapath.tx_model(requests, dp)
    assert len(wire) == 5 and completions[0].Status == TxStatus.SENT


def test_send_times_carry_to_segments(tmp_path):
    """Every wire frame carries the time of its host frame (LSO, software segments and
    ordinary frames alike)."""
    rng = random.Random(5)
    frames = [bytes(Ether(**MAC) / IP() / TCP(flags="A") / Raw(rng.randbytes(4000))),
              bytes(Ether(**MAC) / IP() / UDP() / Raw(b"x")),
              bytes(Ether(**MAC) / IPv6() / TCP(flags="A") / Raw(rng.randbytes(3000)))]
    times = [1_700_000_000_123_456_000, 1_700_000_001_000_000_000, 1_700_000_002_999_999_000]
    src = tmp_path / "in.pcap"
    pcapio.write(src, zip(times, frames))
    for extra in ((), ("--keyword", "*LsoV2IPv6=0")):
        r = cli("tx", src, tmp_path / "out.pcap", "--mss", 1000, *extra)
        assert r.returncode == 0, r.stderr
        got = [t for t, _ in pcapio.read(tmp_path / "out.pcap")]
        assert got == [times[0]] * 4 + [times[1]] + [times[2]] * 3


def _model_as_nic_rtl(items, width, keywords=()):
    """``datapath._nic_rtl``'s answer made by the model NIC (no simulator)."""
    from nicoffload.model import nbl
    from nicoffload.model.nic import Nic
    nic = Nic(keywords=keywords)
    frames, done = [], []
    for item in items:
        if "tuser" in item:
            csum, lso, supp, _ = nbl.TxUser.unpack_raw(item["tuser"])
            r = nic.transmit(datapath.TxRequest(bytes.fromhex(item["data"]),
                                                nbl.ChecksumTx.from_int(csum), lso, supp))
            frames += [{"port": "wire", "data": s.hex(), "tuser": 0} for s in r.segments]
            done.append(r.completion.to_int())
            continue
        got = nic.receive(bytes.fromhex(item["data"])) if "data" in item else \
            nic.end_indication()
        frames += [{"port": "host", "data": i.frame.hex(),
                    "tuser": nbl.RxUser.pack(i.checksum, i.rsc, i.timestamp_delta)}
                   for _, i in got]
    return frames, done


def test_rtl_branch_collects_and_times_like_the_model(tmp_path, monkeypatch):
    """The CLI's RTL-engine branch (collect the capture, one run, wire frames timed by the
    model's frames per send) writes what the model engine writes, times included. The RTL
    run is replaced by the model here: no simulator starts."""
    from click.testing import CliRunner

    from nicoffload.sim import cli as cli_mod
    from nicoffload.sim import runner

    def no_simulator(*args, **kwargs):
        raise AssertionError("no simulator in this test")
    monkeypatch.setattr(runner, "run", no_simulator)
    monkeypatch.setattr(datapath, "_nic_rtl", _model_as_nic_rtl)
    rng = random.Random(9)
    frames = [bytes(Ether(**MAC) / IP() / TCP(flags="A") / Raw(rng.randbytes(5000))), b"",
              bytes(Ether(**MAC) / IPv6() / UDP() / Raw(rng.randbytes(12000))),
              bytes(Ether(**MAC) / IPv6() / TCP(flags="PA") / Raw(rng.randbytes(2500)))]
    src = tmp_path / "in.pcap"
    pcapio.write(src, [(k * 1_000_000_000 + 7000, f) for k, f in enumerate(frames)])
    outs = {}
    for command, extra in (("tx", ["--mss", "1000", "--keyword", "*LsoV2IPv6=0"]),
                           ("rx", ["--keyword", "*RscIPv4=0", "--keyword", "*RscIPv6=0"]),
                           ("rx", ["--batch", "2"])):
        for engine in ("model", "rtl"):
            out = tmp_path / f"{command}-{engine}.pcap"
            result = CliRunner().invoke(cli_mod.main, [command, str(src), str(out),
                                                       "--engine", engine, *extra])
            assert result.exit_code == 0, result.output
            outs[command, engine] = list(pcapio.read(out))
        assert outs[command, "model"] == outs[command, "rtl"]
    assert [t // 10 ** 9 for t, _ in outs["tx", "rtl"]] == [0] * 5 + [1, 2] + [3] * 3
