"""Checksum offload model (model/checksum.py, model/transport.py) against scapy, the RFCs
and hand-built vectors."""

import dataclasses
import random
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP, ICMP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether

from nicoffload.model.checksum import (ALL_ENABLED, ChecksumEnables, TxSkip, rx_validate,
                                       tx_checksum, tx_fill)
from nicoffload.model.nbl import ChecksumRx, ChecksumTx, SendSupplemental
from nicoffload.model.onesum import internet_checksum, ones_sum
from nicoffload.model.parse import parse, pseudo_header_sum
from nicoffload.model.transport import prepare_checksum

from nicoffload.tb import traffic

MACS = dict(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
TX_OFF = ChecksumEnables(tx_ipv4_checksum=False, tx_tcp_ipv4=False, tx_udp_ipv4=False,
                         tx_tcp_ipv6=False, tx_udp_ipv6=False)


@pytest.fixture(scope="module")
def frames():
    """2,500 random frames of every well-formed kind, scapy's checksums in place."""
    rng = random.Random(20260101)
    kinds = traffic.GOOD_KINDS * 5 + ("frag4", "frag6", "icmp4", "icmp6")
    return [traffic.random_frame(rng, rng.choice(kinds)) for _ in range(2500)]


def field16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def set16(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + value.to_bytes(2, "big") + data[at + 2:]


def l4_field(h) -> int:
    return h.l4_offset + (16 if h.l4_proto == 6 else 6)


# --- RFC vectors --------------------------------------------------------------------------

def test_rfc1071_example():
    # RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_classic_ipv4_header_through_tx_fill():
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    udp = bytes.fromhex("0035 0035 005f 0000".replace(" ", ""))   # Length 95, no checksum
    frame = bytes(12) + b"\x08\x00" + header + udp + bytes(0x73 - 28)
    out = tx_fill(frame, ChecksumTx(IsIPv4=1, IpHeaderChecksum=1))
    assert field16(out, 24) == 0xB861
    assert rx_validate(out) == ChecksumRx(IpChecksumSucceeded=1)   # UDP/IPv4 0: unchecked


def test_udp_zero_result_is_sent_as_ffff_hand_vector():
    # UDP/IPv4 0.0.0.0 -> 0.0.0.0, ports 0, Length 10, payload ff da.
    # Pseudo-header: 0x0011 + 0x000a = 0x001b; segment: 0x000a + 0xffda (+ the field).
    # 0x001b + 0x000a + 0xffda = 0xffff: the checksum computes to 0, sent as 0xffff.
    ip = bytes.fromhex("4500001e00000000401100000000000000000000")
    udp = bytes.fromhex("0000 0000 000a 001b ffda".replace(" ", ""))   # field = pseudo sum
    frame = bytes(12) + b"\x08\x00" + ip + udp
    frame += bytes(60 - len(frame))
    h = parse(frame)
    assert pseudo_header_sum(frame, h) == 0x001B
    out = tx_fill(frame, ChecksumTx(IsIPv4=1, UdpChecksum=1))
    assert field16(out, 14 + 20 + 6) == 0xFFFF
    # the same sum as TCP stays 0x0000
    r = tx_checksum(frame, ChecksumTx(IsIPv4=1, TcpChecksum=1))
    assert r.skip is TxSkip.L4_MISMATCH and r.frame == frame


@pytest.mark.parametrize("kind", ["udp4", "udp6", "tcp4", "tcp6"])
def test_zero_sum_frames(kind):
    rng = random.Random(kind)
    for _ in range(40):
        frame = traffic.random_frame(rng, kind, zero_sum=True, max_payload=300)
        h = parse(frame.data)
        if h.l4_end - h.l4_offset - h.l4_header_len < 2:
            continue            # no payload word to tune
        wire = field16(frame.data, l4_field(h))
        assert wire == (0xFFFF if kind.startswith("udp") else 0x0000), frame.desc
        prepared, info = prepare_checksum(frame.data, ALL_ENABLED)
        assert tx_fill(prepared, info) == frame.data
        assert rx_validate(frame.data) == expected_good_rx(h)


# --- TX fill against scapy ----------------------------------------------------------------

def test_tx_fill_matches_scapy(frames):
    """transport.prepare_checksum + checksum.tx_fill reproduce scapy's checksums exactly."""
    counts = {"ip": 0, "tcp": 0, "udp": 0}
    for frame in frames:
        prepared, info = prepare_checksum(frame.data, ALL_ENABLED)
        h = parse(frame.data)
        if h.ip_version == 4:
            assert info.IsIPv4 and info.IpHeaderChecksum and field16(prepared, h.l3_offset
                                                                     + 10) == 0
        if h.l4_end is not None:
            assert field16(prepared, l4_field(h)) == pseudo_header_sum(frame.data, h)
        result = tx_checksum(prepared, info)
        assert result.skip is None, f"{frame.desc}: {result.detail}"
        assert result.frame == frame.data, frame.desc
        counts["ip"] += result.ip_filled
        counts["tcp"] += result.tcp_filled
        counts["udp"] += result.udp_filled
    assert min(counts.values()) > 400 and counts["tcp"] + counts["udp"] >= 2000, counts


def test_tx_fill_with_scapy_recomputing(frames):
    """Strip the checksums from scapy's decoded packet and let scapy recompute them."""
    checked = 0
    for frame in frames[:600]:
        if "AH" in frame.desc:
            continue
        pkt = Ether(frame.data)
        if IP in pkt:
            del pkt[IP].chksum
        for layer in (TCP, UDP):
            if layer in pkt and not frame.layout.get("is_fragment"):
                del pkt[layer].chksum
        rebuilt = bytes(pkt)
        prepared, info = prepare_checksum(frame.data, ALL_ENABLED)
        assert tx_fill(prepared, info) == rebuilt, frame.desc
        checked += 1
    assert checked > 300


def test_tx_odd_lengths_and_padding():
    rng = random.Random(5)
    seen_odd = seen_pad = 0
    for _ in range(300):
        frame = traffic.random_frame(rng, rng.choice(traffic.GOOD_KINDS), max_payload=21)
        h = parse(frame.data)
        seen_odd += (h.l4_end - h.l4_offset) % 2
        seen_pad += len(frame.data) > h.ip_end
        prepared, info = prepare_checksum(frame.data, ALL_ENABLED)
        assert tx_fill(prepared, info) == frame.data, frame.desc
    assert seen_odd > 50 and seen_pad > 20


def test_ipv4_header_field_is_ignored():
    frame = bytes(Ether(**MACS) / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP())
    garbage = set16(frame, 24, 0xBEEF)
    assert tx_fill(garbage, ChecksumTx(IsIPv4=1, IpHeaderChecksum=1)) == frame


def test_ip_only_request_on_icmp_and_fragment():
    frame = bytes(Ether(**MACS) / IP(options=[]) / ICMP() / b"ping")
    r = tx_checksum(set16(frame, 24, 0), ChecksumTx(IsIPv4=1, IpHeaderChecksum=1))
    assert r.ip_filled and not r.tcp_filled and r.frame == frame
    frag = bytes(Ether(**MACS) / IP(flags="MF") / TCP() / (b"x" * 30))
    r = tx_checksum(set16(frag, 24, 0), ChecksumTx(IsIPv4=1, IpHeaderChecksum=1))
    assert r.ip_filled and r.frame == frag


def test_padding_is_not_summed_or_touched():
    base = bytes(Ether(**MACS) / IP() / UDP() / b"x")
    for junk in (bytes(20), b"\xff" * 20, bytes(range(20))):
        frame = base + junk
        prepared, info = prepare_checksum(frame, ALL_ENABLED)
        out = tx_fill(prepared, info)
        assert out == frame and out.endswith(junk)


def test_ipv6_ignores_ip_header_checksum_bit():
    frame = bytes(Ether(**MACS) / IPv6() / TCP() / b"abc")
    prepared, info = prepare_checksum(frame, ALL_ENABLED)
    assert info == ChecksumTx(IsIPv6=1, TcpChecksum=1, TcpHeaderOffset=54)
    r = tx_checksum(prepared, info.replace(IpHeaderChecksum=1))
    assert r.skip is None and r.tcp_filled and not r.ip_filled and r.frame == frame


def test_tcp_header_offset_zero_means_not_given():
    frame = bytes(Ether(**MACS) / IP() / TCP() / b"abc")
    prepared, info = prepare_checksum(frame, ALL_ENABLED)
    assert info.TcpHeaderOffset == 34
    assert tx_fill(prepared, info.replace(TcpHeaderOffset=0)) == frame


# --- TX pass-through ----------------------------------------------------------------------

def _prepared(pkt):
    frame = bytes(pkt)
    return frame, *prepare_checksum(frame, ALL_ENABLED)


@pytest.mark.parametrize("info,skip", [
    (ChecksumTx(TcpChecksum=1, IpHeaderChecksum=1, TcpHeaderOffset=34), None),  # no IsIPvX
    (ChecksumTx(IsIPv4=1), None),                                                # nothing asked
    (ChecksumTx(IsIPv4=1, IsIPv6=1, TcpChecksum=1), TxSkip.BOTH_IP_VERSIONS),
    (ChecksumTx(IsIPv4=1, TcpChecksum=1, UdpChecksum=1), TxSkip.BOTH_L4),
    (ChecksumTx(IsIPv6=1, TcpChecksum=1), TxSkip.IP_VERSION_MISMATCH),
    (ChecksumTx(IsIPv4=1, UdpChecksum=1, IpHeaderChecksum=1), TxSkip.L4_MISMATCH),
    (ChecksumTx(IsIPv4=1, TcpChecksum=1, IpHeaderChecksum=1, TcpHeaderOffset=38),
     TxSkip.TCP_HEADER_OFFSET),
])
def test_tx_pass_through(info, skip):
    _, prepared, _ = _prepared(Ether(**MACS) / IP() / TCP() / b"abc")
    r = tx_checksum(prepared, info)
    assert r.frame == prepared and r.skip is skip
    assert not (r.ip_filled or r.tcp_filled or r.udp_filled)


def test_tx_pass_through_fragment_and_unparseable():
    _, prepared, _ = _prepared(Ether(**MACS) / IP(frag=10) / (b"x" * 40))
    r = tx_checksum(prepared, ChecksumTx(IsIPv4=1, TcpChecksum=1, IpHeaderChecksum=1))
    assert r.skip is TxSkip.FRAGMENT and r.frame == prepared
    _, prepared, _ = _prepared(Ether(**MACS) / IPv6() / IPv6ExtHdrFragment(m=1) / TCP())
    r = tx_checksum(prepared, ChecksumTx(IsIPv6=1, TcpChecksum=1))
    assert r.skip is TxSkip.FRAGMENT
    rng = random.Random(11)
    for case in traffic.MALFORMED_CASES:
        frame = traffic.malformed_frame(rng, case).data
        for info in (ChecksumTx(IsIPv4=1, IpHeaderChecksum=1, TcpChecksum=1),
                     ChecksumTx(IsIPv6=1, UdpChecksum=1)):
            r = tx_checksum(frame, info)
            assert r.skip is TxSkip.UNPARSEABLE and r.frame == frame, case
            assert r.detail.startswith("UNPARSEABLE: ")


def test_tx_encapsulated_request_on_a_frame_that_is_not_followed():
    # NVGRE itself: tests/test_nvgre_model.py. A frame the parser cannot follow is left alone
    # whether or not the request says it is encapsulated.
    r = tx_checksum(bytes(60), ChecksumTx(IsIPv4=1), SendSupplemental(IsEncapsulatedPacket=1))
    assert r.skip is TxSkip.UNPARSEABLE and r.frame == bytes(60)
    assert tx_fill(bytes(60), ChecksumTx(), SendSupplemental()) == bytes(60)


# --- transport ----------------------------------------------------------------------------

def test_transport_with_offloads_off_computes_in_software(frames):
    for frame in frames[:400]:
        prepared, info = prepare_checksum(frame.data, TX_OFF)
        assert info == ChecksumTx(), frame.desc
        assert prepared == frame.data, frame.desc


@pytest.mark.parametrize("off", ["tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4",
                                 "tx_tcp_ipv6", "tx_udp_ipv6"])
def test_transport_partial_enables(frames, off):
    enables = dataclasses.replace(ALL_ENABLED, **{off: False})
    for frame in frames[:300]:
        prepared, info = prepare_checksum(frame.data, enables)
        h = parse(frame.data)
        v = f"ipv{h.ip_version}"
        if off == "tx_ipv4_checksum":
            assert not info.IpHeaderChecksum
        elif h.l4_end is not None and off == f"tx_{'tcp' if h.l4_proto == 6 else 'udp'}_{v}":
            assert not (info.TcpChecksum or info.UdpChecksum)
            assert field16(prepared, l4_field(h)) == field16(frame.data, l4_field(h))
        assert tx_fill(prepared, info) == frame.data, frame.desc


def test_transport_leaves_unparseable_frames_alone():
    rng = random.Random(12)
    for case in traffic.MALFORMED_CASES:
        frame = traffic.malformed_frame(rng, case).data
        assert prepare_checksum(frame, ALL_ENABLED) == (frame, ChecksumTx())


# --- RX -----------------------------------------------------------------------------------

def expected_good_rx(h) -> ChecksumRx:
    flags = {}
    if h.ip_version == 4:
        flags["IpChecksumSucceeded"] = 1
    if h.is_tcp:
        flags["TcpChecksumSucceeded"] = 1
    if h.is_udp:
        flags["UdpChecksumSucceeded"] = 1
    return ChecksumRx(**flags)


def test_rx_good_frames(frames):
    for frame in frames:
        h = parse(frame.data)
        assert rx_validate(frame.data) == expected_good_rx(h), frame.desc


def test_rx_fragments_check_the_ip_header_only(frames):
    n4 = n6 = 0
    for frame in frames:
        if frame.kind == "frag4":
            assert rx_validate(frame.data) == ChecksumRx(IpChecksumSucceeded=1)
            n4 += 1
        elif frame.kind == "frag6":
            assert rx_validate(frame.data) == ChecksumRx()
            n6 += 1
    assert n4 > 20 and n6 > 20


def test_rx_unparseable_frames_get_no_flags():
    rng = random.Random(13)
    for _ in range(300):
        frame = traffic.malformed_frame(rng)
        assert rx_validate(frame.data) == ChecksumRx(), frame.desc
    assert rx_validate(traffic.random_frame(rng, "nonip").data) == ChecksumRx()


def test_rx_udp_zero_checksum():
    v4 = bytes(Ether(**MACS) / IP() / UDP(chksum=0) / b"data")
    assert rx_validate(v4) == ChecksumRx(IpChecksumSucceeded=1)
    v6 = bytes(Ether(**MACS) / IPv6() / UDP(chksum=0) / b"data")
    assert rx_validate(v6) == ChecksumRx(UdpChecksumFailed=1)


def zero_sum_frame(rng, kind):
    """A frame whose L4 checksum computes to zero (it needs two payload bytes to tune)."""
    while True:
        frame = traffic.random_frame(rng, kind, l2="eth", zero_sum=True, max_payload=100)
        h = parse(frame.data)
        if h.l4_end - h.l4_offset - h.l4_header_len >= 2:
            return frame, h


def test_rx_both_encodings_of_zero():
    # TCP whose checksum is 0x0000: 0xFFFF in the field is the same number and verifies.
    rng = random.Random(21)
    for kind in ("tcp4", "tcp6"):
        frame, h = zero_sum_frame(rng, kind)
        at = l4_field(h)
        assert field16(frame.data, at) == 0
        assert rx_validate(frame.data) == expected_good_rx(h)
        assert rx_validate(set16(frame.data, at, 0xFFFF)) == expected_good_rx(h)
    # UDP whose checksum computes to 0: on the wire 0xFFFF (verifies); 0x0000 means
    # "no checksum" over IPv4 and is an error over IPv6.
    for kind in ("udp4", "udp6"):
        frame, h = zero_sum_frame(rng, kind)
        at = l4_field(h)
        assert field16(frame.data, at) == 0xFFFF
        assert rx_validate(frame.data) == expected_good_rx(h)
        zero = rx_validate(set16(frame.data, at, 0))
        assert zero == (ChecksumRx(IpChecksumSucceeded=1) if kind == "udp4"
                        else ChecksumRx(UdpChecksumFailed=1))
    # IPv4 header whose checksum is 0: tune the ID so the header sums to all ones.
    frame = bytearray(bytes(Ether(**MACS) / IP(id=0, src="10.1.2.3", dst="10.3.2.1") / ICMP()))
    csum = field16(frame, 24)
    frame[18:20] = csum.to_bytes(2, "big")                  # ID = old checksum
    frame[24:26] = b"\x00\x00"
    assert internet_checksum(frame, 14, 34) == 0
    for field in (0x0000, 0xFFFF):
        assert rx_validate(set16(bytes(frame), 24, field)) == ChecksumRx(IpChecksumSucceeded=1)


def _structure(h):
    return (h.error_code, h.l3_offset, h.ip_header_len, h.ip_end, h.is_fragment,
            h.pseudo_dst_offset, h.l4_proto, h.l4_offset, h.l4_end)


def test_rx_single_bit_flips(frames):
    """Any one flipped bit in a covered region gives Failed for that checksum, never
    Succeeded; flips outside every covered region change nothing."""
    rng = random.Random(77)
    same_structure = changed_structure = outside = 0
    for frame in frames[:900]:
        data = frame.data
        h = parse(data)
        good = rx_validate(data)
        l3 = h.l3_offset
        ip_region = range(l3, l3 + h.ip_header_len) if h.ip_version == 4 else range(0)
        l4_region = range(h.l4_offset, h.l4_end) if h.l4_end is not None else range(0)
        if h.ip_version == 4:
            addr = set(range(l3 + 12, l3 + 20))
        else:
            addr = set(range(l3 + 8, l3 + 24)) | set(range(h.pseudo_dst_offset,
                                                           h.pseudo_dst_offset + 16))
        regions = [(l3, l3 + (h.ip_header_len if h.ip_version == 4 else 40))]
        if l4_region:
            regions.append((l4_region.start, l4_region.stop))
        regions.append((0, len(data)))
        if len(data) > h.ip_end:
            regions.append((h.ip_end, len(data)))
        for _ in range(12):
            bad, bit = traffic.corrupt_one_bit(rng, data, rng.choice(regions))
            i = bit // 8
            got = rx_validate(bad)
            assert not got.Loopback and not got.TcpChecksumValueInvalid
            assert not got.IpChecksumValueInvalid
            h2 = parse(bad)
            if _structure(h2) != _structure(h):
                changed_structure += 1
                continue
            same_structure += 1
            expect = good.to_dict()
            if i in ip_region:
                expect.update(IpChecksumSucceeded=0, IpChecksumFailed=1)
            l4_hit = i in l4_region or (i in addr and h.l4_end is not None)
            if l4_hit:
                if h.is_tcp:
                    expect.update(TcpChecksumSucceeded=0, TcpChecksumFailed=1)
                elif h.ip_version == 4 and field16(bad, h.l4_offset + 6) == 0:
                    expect.update(UdpChecksumSucceeded=0)        # now "no checksum"
                else:
                    expect.update(UdpChecksumSucceeded=0, UdpChecksumFailed=1)
            if i not in ip_region and not l4_hit:
                outside += 1
            assert got == ChecksumRx(**expect), (
                f"{frame.desc}: flipped byte {i} bit {bit % 8}: {got} expected {expect}")
    assert same_structure > 8000 and outside > 1000 and changed_structure > 50, (
        same_structure, outside, changed_structure)


def test_rx_enables():
    v4 = bytes(Ether(**MACS) / IP() / TCP() / b"x")
    u4 = bytes(Ether(**MACS) / IP() / UDP() / b"x")
    v6 = bytes(Ether(**MACS) / IPv6() / TCP() / b"x")
    u6 = bytes(Ether(**MACS) / IPv6() / UDP() / b"x")
    off = lambda **kw: dataclasses.replace(ALL_ENABLED, **kw)  # noqa: E731
    assert rx_validate(v4, enables=off(rx_active=False)) == ChecksumRx()
    assert rx_validate(v4, enables=off(rx_ipv4_checksum=False)) == ChecksumRx(
        TcpChecksumSucceeded=1)
    assert rx_validate(v4, enables=off(rx_tcp_ipv4=False)) == ChecksumRx(IpChecksumSucceeded=1)
    assert rx_validate(v4, enables=off(rx_tcp_ipv6=False, rx_udp_ipv4=False)) == ChecksumRx(
        IpChecksumSucceeded=1, TcpChecksumSucceeded=1)
    assert rx_validate(u4, enables=off(rx_udp_ipv4=False)) == ChecksumRx(IpChecksumSucceeded=1)
    assert rx_validate(v6, enables=off(rx_tcp_ipv6=False)) == ChecksumRx()
    assert rx_validate(u6, enables=off(rx_udp_ipv6=False)) == ChecksumRx()
    assert rx_validate(u6, enables=off(rx_udp_ipv4=False)) == ChecksumRx(
        UdpChecksumSucceeded=1)

    class Datapath:   # any object with the rx_* names will do (config.Datapath is one)
        rx_active = rx_ipv4_checksum = rx_udp_ipv4 = rx_tcp_ipv6 = rx_udp_ipv6 = True
        rx_tcp_ipv4 = False
    assert rx_validate(v4, enables=Datapath()) == ChecksumRx(IpChecksumSucceeded=1)


# --- throughput (reported, not asserted) --------------------------------------------------

def test_tx_fill_throughput(capsys):
    frame = bytes(Ether(**MACS) / IP() / TCP() / bytes(random.Random(1).randbytes(1446)))
    assert len(frame) == 1500
    prepared, info = prepare_checksum(frame, ALL_ENABLED)
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        tx_fill(prepared, info)
    elapsed = time.perf_counter() - start
    gbps = n * len(frame) * 8 / elapsed / 1e9
    with capsys.disabled():
        print(f"\nmodel tx_fill, 1500-byte TCP/IPv4 frames: {n / elapsed:,.0f} frames/s, "
              f"{gbps:.2f} Gb/s")


def test_tx_max_frame_passes_unchanged():
    """The NIC: a frame longer than TX_MAX_FRAME leaves unchanged even with checksum
    requests; one at the limit is filled. The transport never asks: it fills the checksums of
    a longer frame itself and requests nothing (DESIGN 3)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from nicoffload.model.checksum import TX_MAX_FRAME, TxSkip, tx_checksum
    from nicoffload.model.transport import prepare_checksum
    for size, filled in ((TX_MAX_FRAME, True), (TX_MAX_FRAME + 1, False)):
        frame = bytes(Ether() / IP() / TCP() / (b"\xab" * (size - 54)))
        prepared, info = prepare_checksum(frame, ALL_ENABLED, max_frame=None)
        assert info.IpHeaderChecksum and info.TcpChecksum
        result = tx_checksum(prepared, info)
        assert (result.frame == frame) is filled
        assert result.skip == (None if filled else TxSkip.TOO_LONG)
        prepared, info = prepare_checksum(frame, ALL_ENABLED)
        assert (info == ChecksumTx()) is not filled
        assert tx_checksum(prepared, info).frame == frame
