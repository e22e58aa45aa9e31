"""model/lso.py and model/transport_lso.py: sends that are segmented, against scapy and the
NDIS LSO pages.

How sends are built and judged: ``lso_sends`` (scapy builds them, ``prepare_large_send``
prepares them, scapy and the test's own arithmetic check every segment). Drops are in
``test_lso_drops.py``, header blocks of 129..256 bytes in ``test_lso_headers.py``. Random
cases use fixed seeds.

Pages: shared/reference/ndis/offloading-the-segmentation-of-large-tcp-packets.md (the LSO
page), accessing-tcp-ip-offload-net-buffer-list-information.md, and DESIGN.md 3.
"""

from __future__ import annotations

import random
import struct
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                IPv6ExtHdrSegmentRouting, PadN)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw, raw

from lso_sends import (ACK, BIG, CWR, ECE, FIN, MAC, PSH, RST, SYN, URG, build, check_sent,
                       masked, prepared, pseudo_no_length, run)
from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import TxStatus
from nicoffload.model.transport_lso import prepare_large_send, split_captured_send


# --- transport preparation -----------------------------------------------------------------

@pytest.mark.parametrize("version,ipv6", [("v1", False), ("v2", False), ("v2", True)])
def test_prepare_large_send(version, ipv6):
    ext = [IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(4))])] if ipv6 else []
    send = build(ipv6=ipv6, vlans=[(0x8100, 10)], ext=ext,
                 ip_options=[IPOption_Router_Alert()],
                 tcp_options=[("NOP", None), ("NOP", None), ("Timestamp", (7, 9))],
                 payload=bytes(range(200)) * 20, flags=ACK | PSH)
    padded = send.frame + bytes(6)          # Ethernet trailer: not part of the send
    frame, word, csum = prepare_large_send(padded, 1448, version)
    assert len(frame) == len(send.frame)
    assert csum.to_int() == 0
    # LSO word, bit by bit from the NDIS header: MSS 0..19, TcpHeaderOffset 20..29, Type 30,
    # IPVersion 31 (v2) / Reserved2 (v1).
    assert word & 0xFFFFF == 1448
    assert (word >> 20) & 0x3FF == send.l4
    assert (word >> 30) & 1 == (0 if version == "v1" else 1)
    assert (word >> 31) & 1 == (1 if ipv6 else 0)
    q = Ether(frame)
    if ipv6:
        assert q[IPv6].plen == 0
    else:
        assert q[IP].chksum == 0
        assert q[IP].len == (len(frame) - send.l3 if version == "v1" else 0)
    got = struct.unpack_from("!H", frame, send.l4 + 16)[0]
    assert got % 0xFFFF == pseudo_no_length(send, frame) % 0xFFFF
    # Nothing else moved.
    assert masked(frame, send) == masked(send.frame, send)


def test_prepare_refuses_what_the_transport_never_offloads():
    good = build(payload=bytes(3000))
    with pytest.raises(ValueError):
        prepare_large_send(good.frame, 0, "v1")
    with pytest.raises(ValueError):
        prepare_large_send(good.frame, 1 << 20, "v1")
    with pytest.raises(ValueError):
        prepare_large_send(good.frame, 1000, "v3")
    with pytest.raises(ValueError):
        prepare_large_send(build(ipv6=True, payload=bytes(3000)).frame, 1000, "v1")
    for flags in (SYN, RST, URG | ACK):
        with pytest.raises(ValueError):
            prepare_large_send(build(payload=bytes(3000), flags=flags).frame, 1000, "v2")
    udp = raw(Ether(**MAC) / IP() / UDP() / Raw(bytes(3000)))
    with pytest.raises(ValueError):
        prepare_large_send(udp, 1000, "v2")
    frag = raw(Ether(**MAC) / IP(flags="MF") / TCP() / Raw(bytes(3000)))
    with pytest.raises(ValueError):
        prepare_large_send(frag, 1000, "v2")


# --- IP ID: the LSO page's example and both modes ------------------------------------------

@pytest.mark.parametrize("mode,id0,ids", [
    ("ndis", 0x7FFE, [0x7FFE, 0x7FFF, 0x0000, 0x0001]),     # the LSO page's example
    ("ndis", 0xFFFE, [0xFFFE, 0xFFFF, 0x8000, 0x8001]),
    ("ndis", 0x0000, [0x0000, 0x0001, 0x0002, 0x0003]),
    ("linux", 0xFFFE, [0xFFFE, 0xFFFF, 0x0000, 0x0001]),
    ("linux", 0x7FFE, [0x7FFE, 0x7FFF, 0x8000, 0x8001]),
])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ip_id_sequence(mode, id0, ids, version):
    send = build(ip_id=id0, payload=bytes(range(256)) * 16)      # 4096 bytes, 4 segments
    result = run(send, 1024, version, LsoLimits(id_mode=mode))
    assert [Ether(s)[IP].id for s in result.segments] == ids
    check_sent(send, result, 1024, version=version, id_mode=mode)
    # The keyword overrides the limits' mode.
    other = "linux" if mode == "ndis" else "ndis"
    frame, word = prepared(send, 1024, version)
    overridden = segment(frame, word, LsoLimits(id_mode=other), id_mode=mode)
    assert overridden.segments == result.segments


# --- shapes of sends -----------------------------------------------------------------------

@pytest.mark.parametrize("size,mss", [
    (1, 1460), (1, 1), (1460, 1460), (1461, 1460), (2920, 1460), (2921, 1460),
    (3 * 536, 536), (3 * 536 + 535, 536), (300, 1), (9000, 9000), (9001, 9000),
    (65000, 9000),
])
@pytest.mark.parametrize("version,ipv6", [("v1", False), ("v2", True)])
def test_sizes(size, mss, version, ipv6):
    rng = random.Random(size * 7 + mss)
    send = build(ipv6=ipv6, payload=rng.randbytes(size), flags=ACK | PSH | FIN | CWR,
                 tcp_options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
    check_sent(send, run(send, mss, version), mss, version=version)


def test_one_segment_keeps_first_and_last_flags():
    send = build(payload=b"hello", flags=ACK | PSH | FIN | CWR | ECE)
    result = run(send, 1460, "v2")
    assert len(result.segments) == 1
    assert int(Ether(result.segments[0])[TCP].flags) == ACK | PSH | FIN | CWR | ECE
    check_sent(send, result, 1460, version="v2")


def test_flags_split_between_first_and_last():
    send = build(payload=bytes(3000), flags=ACK | PSH | FIN | CWR | ECE)
    result = run(send, 1000, "v1")
    got = [int(Ether(s)[TCP].flags) for s in result.segments]
    assert got == [ACK | ECE | CWR, ACK | ECE, ACK | ECE | PSH | FIN]
    check_sent(send, result, 1000, version="v1")


def test_sequence_number_wraps():
    rng = random.Random(5)
    send = build(seq=(1 << 32) - 2500, payload=rng.randbytes(10000))
    result = run(send, 1000, "v2")
    seqs = [Ether(s)[TCP].seq for s in result.segments]
    assert seqs[:4] == [(1 << 32) - 2500, (1 << 32) - 1500, (1 << 32) - 500, 500]
    check_sent(send, result, 1000, version="v2")


def test_largest_lsov1_send():
    # 64 KB of IP datagram: Total Length 65535 leaves 65495 payload bytes behind 20+20.
    rng = random.Random(64)
    send = build(payload=rng.randbytes(65495), ip_id=0x7FF0)
    limits = LsoLimits(v1_ipv4_max_offload_size=65536)
    check_sent(send, run(send, 1460, "v1", limits), 1460, version="v1")


@pytest.mark.parametrize("ipv6,mss", [(False, 1448), (True, 8940)])
def test_lsov2_256k(ipv6, mss):
    rng = random.Random(256 + ipv6)
    send = build(ipv6=ipv6, payload=rng.randbytes(256 * 1024),
                 tcp_options=[("NOP", None), ("NOP", None), ("Timestamp", (11, 22))],
                 vlans=[(0x8100, 3)], seq=(1 << 32) - 100000)
    limits = LsoLimits(v2_ipv4_max_offload_size=256 * 1024,
                       v2_ipv6_max_offload_size=256 * 1024)
    check_sent(send, run(send, mss, "v2", limits), mss, version="v2")


def big_tcp_capture(send, *, jumbo=True):
    """The send as a host with BIG TCP captures it before segmentation: one frame, IP length
    field 0 and, for IPv6, an 8-byte Hop-by-Hop header with a Jumbo Payload option (RFC 2675)
    whose length counts every byte after the IPv6 header. Built here byte by byte."""
    head = bytearray(send.frame[:send.hdr_end])
    if send.ipv6:
        head[send.l3 + 4:send.l3 + 6] = b"\0\0"
        if jumbo:
            nh = head[send.l3 + 6]
            head[send.l3 + 6] = 0
            jumbo_len = len(head) - send.l3 - 40 + 8 + len(send.payload)
            hbh = bytes([nh, 0, 0xC2, 4]) + jumbo_len.to_bytes(4, "big")
            head[send.l3 + 40:send.l3 + 40] = hbh
    else:
        head[send.l3 + 2:send.l3 + 4] = b"\0\0"
    return bytes(head) + send.payload


@pytest.mark.parametrize("ipv6", [False, True])
def test_big_tcp_capture_is_one_large_send(ipv6):
    """A captured send over 64 KB (length 0; IPv6 with its jumbo header) becomes one LSOv2
    send of the whole payload: the segments are the ones of the same send built directly."""
    rng = random.Random(75 + ipv6)
    send = build(ipv6=ipv6, payload=rng.randbytes(150000),
                 tcp_options=[("NOP", None), ("NOP", None), ("Timestamp", (3, 4))])
    head, extra = split_captured_send(big_tcp_capture(send))
    assert head == send.frame[:send.hdr_end] and extra == send.payload
    frame, word, _ = prepare_large_send(head, 1460, "v2", extra_payload=extra)
    check_sent(send, segment(frame, word, BIG), 1460, version="v2")


def test_split_captured_send_takes_only_such_frames():
    rng = random.Random(76)
    send6 = build(ipv6=True, payload=rng.randbytes(70000))
    good = big_tcp_capture(send6)
    assert split_captured_send(good) is not None
    assert split_captured_send(big_tcp_capture(send6, jumbo=False)) is not None
    bad = bytearray(good)
    bad[send6.l3 + 47] ^= 1                      # jumbo length disagrees with the frame
    assert split_captured_send(bytes(bad)) is None
    bad = bytearray(good)
    bad[send6.l3 + 41] = 1                       # a longer hop-by-hop header: not ours
    assert split_captured_send(bytes(bad)) is None
    assert split_captured_send(good[:send6.l3 + 44]) is None     # cut inside the jumbo header
    send4 = build(payload=rng.randbytes(3000))
    assert split_captured_send(send4.frame) is None              # its length field is right
    udp = bytearray(raw(Ether(**MAC) / IP() / UDP() / Raw(rng.randbytes(2000))))
    udp[16:18] = b"\0\0"
    assert split_captured_send(bytes(udp)) is None               # not TCP
    assert split_captured_send(b"\x00" * 10) is None and split_captured_send(b"") is None


def test_qinq_ip_options_and_tcp_options_copied():
    rng = random.Random(9)
    send = build(vlans=[(0x88A8, 100), (0x8100, 200)],
                 ip_options=[IPOption_RR(routers=["10.0.0.1", "10.0.0.2"]), IPOption_NOP()],
                 tcp_options=[("MSS", 1460), ("WScale", 7), ("SAckOK", b""),
                              ("Timestamp", (0xDEADBEEF, 0x01020304)), ("NOP", None),
                              ("NOP", None), ("SAck", (1, 2))],
                 payload=rng.randbytes(5000), flags=ACK | PSH)
    result = run(send, 1200, "v1")
    check_sent(send, result, 1200, version="v1")
    for seg in result.segments:
        q = Ether(seg)
        assert q[Dot1AD].vlan == 100 and q[Dot1Q].vlan == 200
        assert ("Timestamp", (0xDEADBEEF, 0x01020304)) in q[TCP].options
        assert ("SAck", (1, 2)) in q[TCP].options
        assert q[IP].options[0].routers == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize("ext", [
    [IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(4))]), IPv6ExtHdrDestOpt()],
    [IPv6ExtHdrRouting(type=2, segleft=1, addresses=["2001:db8::99"])],
    [IPv6ExtHdrSegmentRouting(addresses=["2001:db8::a", "2001:db8::b"])],
    [IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(offset=0, m=0, id=77)],     # atomic fragment
], ids=["hbh+dst", "rt2", "srh", "atomic-frag"])
def test_ipv6_extension_headers(ext):
    rng = random.Random(len(ext))
    send = build(ipv6=True, ext=ext, payload=rng.randbytes(7000),
                 tcp_options=[("SAckOK", b""), ("NOP", None), ("NOP", None)])
    check_sent(send, run(send, 1000, "v2"), 1000, version="v2")


def test_llc_snap_length_rewritten():
    rng = random.Random(3)
    send = build(snap=True, payload=rng.randbytes(4000))
    result = run(send, 1000, "v1")
    check_sent(send, result, 1000, version="v1")
    # A segment that would make an 802.3 length over 1500 cannot be sent.
    frame, word = prepared(send, 1460, "v1")
    assert segment(frame, word, BIG).status == TxStatus.LSO_BAD_MSS


def test_ipv6_payload_length_is_ignored():
    rng = random.Random(6)
    send = build(ipv6=True, payload=rng.randbytes(5000))
    frame, word = prepared(send, 1400, "v2")
    reference = segment(frame, word, BIG)
    check_sent(send, reference, 1400, version="v2")
    for plen in (1, 0xFFFF, len(frame) - send.l3 - 40, 12345):
        changed = bytearray(frame)
        struct.pack_into("!H", changed, send.l3 + 4, plen)
        assert segment(bytes(changed), word, BIG).segments == reference.segments


def test_pseudo_header_sum_negative_zero_accepted_both_ways():
    # 10.0.0.1 -> 245.248.0.0 with protocol 6: the words sum to exactly 0xFFFF.
    send = build(src="10.0.0.1", dst="245.248.0.0", payload=bytes(range(250)) * 10)
    frame, word = prepared(send, 500, "v1")
    field = struct.unpack_from("!H", frame, send.l4 + 16)[0]
    assert field % 0xFFFF == 0
    other = bytearray(frame)
    struct.pack_into("!H", other, send.l4 + 16, 0xFFFF - field)   # 0 <-> 0xFFFF
    a = segment(frame, word, BIG)
    b = segment(bytes(other), word, BIG)
    check_sent(send, a, 500, version="v1")
    assert a.segments == b.segments


def test_reserved_and_ns_bits_copied_and_v1_reserved2_ignored():
    send = build(payload=bytes(3000), reserved=0b101, flags=ACK | 0x100)   # NS (AE) bit
    frame, word = prepared(send, 1000, "v1")
    a = segment(frame, word, BIG)
    check_sent(send, a, 1000, version="v1")
    b = segment(frame, word | (1 << 31), BIG)        # LsoV1Transmit.Reserved2
    assert b.segments == a.segments


# --- random sweep --------------------------------------------------------------------------

TCP_OPTION_CHOICES = [
    [("MSS", 1460)],
    [("NOP", None), ("NOP", None), ("Timestamp", (123456, 654321))],
    [("NOP", None), ("WScale", 8)],
    [("SAckOK", b""), ("NOP", None), ("NOP", None)],
    [("NOP", None), ("NOP", None), ("SAck", (100, 200, 300, 400))],
]


def random_send(rng, version):
    ipv6 = version == "v2" and rng.random() < 0.5
    snap = rng.random() < 0.1
    vlans = [] if snap else [[], [(0x8100, 5)], [(0x88A8, 6), (0x8100, 7)]][rng.randrange(3)]
    ip_options, ext = [], []
    if ipv6:
        ext = rng.choice([
            [], [IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(4))])],
            [IPv6ExtHdrDestOpt()],
            [IPv6ExtHdrRouting(type=2, segleft=1, addresses=["2001:db8::5"])]])
    else:
        ip_options = rng.choice([[], [IPOption_Router_Alert()],
                                 [IPOption_RR(routers=["10.1.1.1"])], [IPOption_NOP()] * 4])
    tcp_options = []
    for choice in rng.sample(TCP_OPTION_CHOICES, rng.randrange(4)):
        tcp_options += choice
    flags = ACK
    for bit in (FIN, PSH, CWR, ECE):
        if rng.random() < 0.5:
            flags |= bit
    seq = rng.getrandbits(32) if rng.random() < 0.7 else (1 << 32) - rng.randrange(1, 20000)
    ip_id = rng.choice([rng.getrandbits(16), 0x7FFF - rng.randrange(5),
                        0xFFFF - rng.randrange(5)])
    roll = rng.random()
    if roll < 0.5:
        size = rng.randrange(1, 3000)
    elif roll < 0.9:
        size = rng.randrange(3000, 30000)
    else:
        size = rng.randrange(30000, 65000 if version == "v1" else 200000)
    mss = rng.choice([rng.randrange(1, 9001), rng.randrange(1, 600),
                      rng.choice([536, 1220, 1448, 1460, 8960])])
    mss = max(mss, -(-size // 300))                 # at most 300 segments per case
    if snap:
        size = min(size, 300 * 1300)
    send = build(ipv6=ipv6, vlans=vlans, snap=snap, ip_options=ip_options, ext=ext,
                 tcp_options=tcp_options, payload=rng.randbytes(size), seq=seq,
                 flags=flags, ip_id=ip_id)
    if snap:            # every segment must keep its 802.3 length <= 1500
        mss = min(mss, 1500 - (send.hdr_end - 14))
    return send, mss


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_random_sends(version):
    rng = random.Random(f"lso-{version}")
    for _ in range(250):
        send, mss = random_send(rng, version)
        id_mode = rng.choice(["ndis", "linux"])
        check_sent(send, run(send, mss, version, id_mode=id_mode), mss, version=version,
                   id_mode=id_mode)

# --- throughput (reported, not asserted) ---------------------------------------------------

def test_throughput_64k(capsys):
    rng = random.Random(0)
    lines = []
    for version, ipv6, mss in (("v1", False, 1460), ("v2", False, 1460), ("v2", True, 1440),
                               ("v2", True, 8940)):
        size = 65483 if version == "v1" else 65536   # v1: Total Length 65535 - 20 - 32
        send = build(ipv6=ipv6, payload=rng.randbytes(size),
                     tcp_options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
        frame, word = prepared(send, mss, version)
        segment(frame, word, BIG)
        rounds = 50
        start = time.perf_counter()
        for _ in range(rounds):
            segment(frame, word, BIG)
        elapsed = (time.perf_counter() - start) / rounds
        lines.append(f"LSO{version} IPv{6 if ipv6 else 4} MSS {mss}: {size} B send in "
                     f"{elapsed * 1e6:.0f} us = {size * 8 / elapsed / 1e9:.2f} Gb/s payload")
    with capsys.disabled():
        print("\n" + "\n".join(lines))

