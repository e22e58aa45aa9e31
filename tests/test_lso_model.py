"""model/lso.py and model/transport_lso.py against scapy and the NDIS LSO pages.

Sends are built with scapy (Ethernet II or 802.3 LLC/SNAP, 802.1Q/802.1ad tags, IPv4 with
options or IPv6 with extension headers, TCP with options), prepared by
``transport_lso.prepare_large_send`` and segmented by ``lso.segment``. Every segment is then
checked by things that are not the model: scapy dissects it and recomputes its IPv4 and TCP
checksums (and every other field it would fill) from scratch; the test's own arithmetic gives
the expected sequence numbers, lengths, IDs and flags; the header bytes are compared with the
original frame's at offsets scapy reports. Random cases use fixed seeds.

Pages: shared/reference/ndis/offloading-the-segmentation-of-large-tcp-packets.md (the LSO
page), accessing-tcp-ip-offload-net-buffer-list-information.md, and DESIGN.md 3.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                IPv6ExtHdrSegmentRouting, PadN)
from scapy.layers.l2 import ARP, LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Raw, raw
from scapy.utils import checksum as scapy_checksum

from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.lso import STREAM_LOOKAHEAD, LsoLimits, LsoResult, segment
from nicoffload.model.nbl import TxCompletion, TxStatus
from nicoffload.model.transport_lso import prepare_large_send, split_captured_send

MAC = dict(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
V2_COMPLETE = 1 << 30          # LsoV2TransmitComplete: Reserved 0, Type 1 (bit 30)
# No checksum-stage limit (the IP length rules decide) and no streaming (drops are whole, as
# the NDIS pages describe the NIC): the NDIS semantics alone.
BIG = LsoLimits(v2_ipv4_max_offload_size=1 << 20, v2_ipv6_max_offload_size=1 << 20,
                max_segment_bytes=1 << 20, lookahead_bytes=None)


# --- building sends with scapy ---------------------------------------------------------------

@dataclasses.dataclass
class Send:
    """A finished frame built by scapy, where scapy says its headers are, and its payload."""
    frame: bytes          # headers + (payload if it fits the IP length field)
    payload: bytes        # the whole TCP payload of the send
    extra: bytes          # payload bytes not in ``frame`` (sends longer than 64 KB)
    ipv6: bool
    l3: int
    l4: int
    hdr_end: int
    len_8023: int | None  # offset of the 802.3 length field
    seq: int
    flags: int            # 9 bits as scapy reads them (NS included)
    ip_id: int


def build(*, ipv6=False, vlans=(), snap=False, ip_options=(), ext=(), tcp_options=(),
          payload=b"", seq=1000, flags=ACK, ip_id=0x1234, reserved=0, src=None, dst=None):
    if snap:
        l2 = Dot3(len=1500, **MAC) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / \
            SNAP(OUI=0, code=0x86DD if ipv6 else 0x0800)
    else:
        l2 = Ether(**MAC)
        for tpid, vid in vlans:
            l2 = l2 / (Dot1AD(vlan=vid) if tpid == 0x88A8 else Dot1Q(vlan=vid))
    if ipv6:
        l3 = IPv6(src=src or "2001:db8::1", dst=dst or "2001:db8::2", fl=0x12345, hlim=61)
        for e in ext:
            l3 = l3 / e
    else:
        l3 = IP(src=src or "192.0.2.1", dst=dst or "198.51.100.7", id=ip_id, flags="DF",
                ttl=63, tos=0x28, options=list(ip_options))
    tcp = TCP(sport=49152, dport=443, seq=seq, ack=0x0BADCAFE, flags=flags, window=5000,
              reserved=reserved, options=list(tcp_options))
    inside, extra = payload, b""
    fixed = len(raw(l3 / tcp)) - (40 if ipv6 else 0)
    if fixed + len(payload) > 0xFFFF:
        inside, extra = b"", payload
    pkt = l2 / l3 / tcp / Raw(inside) if inside else l2 / l3 / tcp
    frame = raw(pkt)
    parsed = Ether(frame)
    ip_layer = parsed[IPv6] if ipv6 else parsed[IP]
    l3_off = len(frame) - len(raw(ip_layer))
    l4_off = len(frame) - len(raw(parsed[TCP]))
    hdr_end = l4_off + parsed[TCP].dataofs * 4
    return Send(frame=frame, payload=payload, extra=extra, ipv6=ipv6, l3=l3_off, l4=l4_off,
                hdr_end=hdr_end, len_8023=12 if snap else None, seq=seq,
                flags=int(parsed[TCP].flags), ip_id=ip_id)


def prepared(send, mss, version):
    frame, word, csum = prepare_large_send(send.frame, mss, version,
                                           extra_payload=send.extra)
    return frame, word


# --- the independent checks --------------------------------------------------------------------

def expected_ids(id0, count, mode):
    if mode == "ndis":
        return [(id0 & 0x8000) | ((id0 + k) & 0x7FFF) for k in range(count)]
    return [(id0 + k) & 0xFFFF for k in range(count)]


def masked(header, send):
    """The header with every field LSO may rewrite zeroed."""
    b = bytearray(header)
    spans = [(send.l4 + 4, 4), (send.l4 + 13, 1), (send.l4 + 16, 2)]
    if send.ipv6:
        spans.append((send.l3 + 4, 2))
    else:
        spans += [(send.l3 + 2, 4), (send.l3 + 10, 2)]
    if send.len_8023 is not None:
        spans.append((send.len_8023, 2))
    for off, n in spans:
        b[off:off + n] = bytes(n)
    return bytes(b)


def check_sent(send, result, mss, *, version, id_mode="ndis"):
    """Every property DESIGN 3 and the LSO page ask of the segments, checked with scapy."""
    assert result.status == TxStatus.SENT, result.detail
    payload = send.payload
    count = -(-len(payload) // mss)
    segs = result.segments
    assert len(segs) == count
    ids = expected_ids(send.ip_id, count, id_mode)
    template = masked(send.frame[:send.hdr_end], send)
    offset = 0
    for k, seg in enumerate(segs):
        size = min(mss, len(payload) - offset)
        assert size == (mss if k < count - 1 else len(payload) - (count - 1) * mss)
        assert len(seg) == send.hdr_end + size
        assert seg[send.hdr_end:] == payload[offset:offset + size]
        assert masked(seg[:send.hdr_end], send) == template

        q = Ether(seg)
        tcp = q[TCP]
        assert raw(tcp.payload) == payload[offset:offset + size]
        assert tcp.seq == (send.seq + offset) % (1 << 32)
        want = send.flags & ~(FIN | PSH | CWR)
        if k == 0:
            want |= send.flags & CWR
        if k == count - 1:
            want |= send.flags & (FIN | PSH)
        assert int(tcp.flags) == want
        assert tcp.urgptr == 0
        if send.ipv6:
            assert q[IPv6].plen == len(seg) - send.l3 - 40
        else:
            assert q[IP].len == len(seg) - send.l3
            assert q[IP].id == ids[k]
        if send.len_8023 is not None:
            assert q[Dot3].len == len(seg) - 14

        # scapy recomputes every checksum from scratch: the frame must come out identical.
        again = Ether(seg)
        del again[TCP].chksum
        if not send.ipv6:
            del again[IP].chksum
        rebuilt = raw(again)
        assert rebuilt == seg, f"segment {k}: scapy's checksums differ"
        offset += size
    assert offset == len(payload)
    if version == "v1":
        assert result.completion.LsoComplete == len(payload)   # TcpPayload, Type 0
    else:
        assert result.completion.LsoComplete == V2_COMPLETE
    assert result.completion.Status == 0


def run(send, mss, version, limits=BIG, *, id_mode=None):
    frame, word = prepared(send, mss, version)
    return segment(frame, word, limits, id_mode=id_mode)


# --- transport preparation -----------------------------------------------------------------

def pseudo_no_length(send, frame):
    """Pseudo-header sum without the TCP length, by the test's own arithmetic (scapy's
    RFC 1071 checksum of the bytes, complemented back)."""
    if send.ipv6:
        q = Ether(frame)
        dst = q[IPv6].dst
        for layer in (IPv6ExtHdrSegmentRouting, IPv6ExtHdrRouting):
            if layer in q and q[layer].segleft:
                dst = q[layer].addresses[0 if layer is IPv6ExtHdrSegmentRouting else -1]
        data = socket.inet_pton(socket.AF_INET6, q[IPv6].src) + \
            socket.inet_pton(socket.AF_INET6, dst) + bytes(3) + b"\x06"
    else:
        data = frame[send.l3 + 12:send.l3 + 20] + b"\x00\x06"
    return ~scapy_checksum(data) & 0xFFFF


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
    if send.hdr_end > 128:
        return random_send(rng, version)
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


# --- drops: every reason, its completion ---------------------------------------------------

def base(version="v1", ipv6=False, size=3000, **kw):
    send = build(ipv6=ipv6, payload=bytes(range(100)) * (size // 100) + bytes(size % 100),
                 **kw)
    frame, word = prepared(send, 1000, version)
    return send, bytearray(frame), word


def assert_dropped(result, status, version):
    assert result.status == status, result.detail
    assert result.segments == ()
    assert result.completion.Status == int(status)
    assert result.completion.LsoComplete == (0 if version == "v1" else V2_COMPLETE)
    assert result.detail and result.detail.startswith(status.name)


@pytest.mark.parametrize("version,ipv6,off", [
    ("v1", False, "lso_v1_ipv4"), ("v2", False, "lso_v2_ipv4"), ("v2", True, "lso_v2_ipv6")])
def test_drop_disabled(version, ipv6, off):
    send, frame, word = base(version, ipv6)
    limits = dataclasses.replace(BIG, **{off: False})
    assert_dropped(segment(bytes(frame), word, limits), TxStatus.LSO_DISABLED, version)
    # The other offloads stay usable.
    for other in ("lso_v1_ipv4", "lso_v2_ipv4", "lso_v2_ipv6"):
        if other != off:
            limits = dataclasses.replace(BIG, **{other: False})
            check_sent(send, segment(bytes(frame), word, limits), 1000, version=version)


def test_drop_bad_mss():
    send, frame, word = base("v2")
    assert_dropped(segment(bytes(frame), word & ~0xFFFFF, BIG), TxStatus.LSO_BAD_MSS, "v2")
    send, frame, word = base("v1")
    assert_dropped(segment(bytes(frame), word & ~0xFFFFF, BIG), TxStatus.LSO_BAD_MSS, "v1")


def test_drop_segment_longer_than_ip_length_field():
    rng = random.Random(1)
    # IPv4: 20 + 20 + MSS <= 65535 is the largest segment there is.
    send = build(payload=rng.randbytes(70000))
    for mss, status in ((65495, TxStatus.SENT), (65496, TxStatus.LSO_BAD_MSS)):
        frame, word = prepared(send, mss, "v2")
        result = segment(frame, word, BIG)
        assert result.status == status
        if status == TxStatus.SENT:
            check_sent(send, result, mss, version="v2")
    # IPv6: Payload Length 20 + MSS <= 65535.
    send = build(ipv6=True, payload=rng.randbytes(70000))
    frame, word = prepared(send, 65516, "v2")
    assert_dropped(segment(frame, word, BIG), TxStatus.LSO_BAD_MSS, "v2")
    frame, word = prepared(send, 65515, "v2")
    check_sent(send, segment(frame, word, BIG), 65515, version="v2")


@pytest.mark.parametrize("version,ipv6", [("v1", False), ("v2", True)])
@pytest.mark.parametrize("delta", [-1, 1, None])
def test_drop_bad_header_offset(version, ipv6, delta):
    ext = [IPv6ExtHdrDestOpt()] if ipv6 else []
    send = build(ipv6=ipv6, ext=ext, payload=bytes(3000))
    frame, word = prepared(send, 1000, version)
    offset = 0 if delta is None else send.l4 + delta
    word = (word & ~(0x3FF << 20)) | (offset << 20)
    assert_dropped(segment(frame, word, BIG), TxStatus.LSO_BAD_HEADER_OFFSET, version)


def test_drop_not_tcp():
    # UDP with an LSOv2 word.
    udp = raw(Ether(**MAC) / IP(len=0) / UDP() / Raw(bytes(3000)))
    word = 1000 | (34 << 20) | (1 << 30)
    assert_dropped(segment(udp, word, BIG), TxStatus.LSO_NOT_TCP, "v2")
    # An LSOv1 word on an IPv6 frame.
    send, frame, word = base("v2", ipv6=True)
    v1_word = word & ~(3 << 30)
    assert_dropped(segment(bytes(frame), v1_word, BIG), TxStatus.LSO_NOT_TCP, "v1")
    # LSOv2 IPVersion disagreeing with the frame, both ways.
    assert_dropped(segment(bytes(frame), word & ~(1 << 31), BIG), TxStatus.LSO_NOT_TCP, "v2")
    send, frame, word = base("v2")
    assert_dropped(segment(bytes(frame), word | (1 << 31), BIG), TxStatus.LSO_NOT_TCP, "v2")
    # Not IP at all.
    arp = raw(Ether(**MAC) / ARP())
    assert_dropped(segment(arp, 1000 | (34 << 20), BIG), TxStatus.LSO_NOT_TCP, "v1")


@pytest.mark.parametrize("what", ["syn", "rst", "urg", "urgptr", "mf", "fragoff",
                                  "v1-total-short", "v1-total-long", "checksum-with-length",
                                  "checksum-zero"])
def test_drop_guarantee_ipv4(what):
    version = "v1"
    send, frame, word = base(version)
    l3, l4 = send.l3, send.l4
    if what in ("syn", "rst", "urg"):
        frame[l4 + 13] |= {"syn": SYN, "rst": RST, "urg": URG}[what]
    elif what == "urgptr":
        struct.pack_into("!H", frame, l4 + 18, 5)
    elif what == "mf":
        frame[l3 + 6] |= 0x20
    elif what == "fragoff":
        frame[l3 + 7] |= 0x01
    elif what == "v1-total-short":
        struct.pack_into("!H", frame, l3 + 2, len(frame) - l3 - 1)
    elif what == "v1-total-long":
        struct.pack_into("!H", frame, l3 + 2, len(frame) - l3 + 1)
    elif what == "checksum-with-length":
        s = struct.unpack_from("!H", frame, l4 + 16)[0] + (len(frame) - l4)
        struct.pack_into("!H", frame, l4 + 16, (s & 0xFFFF) + (s >> 16))
    elif what == "checksum-zero":
        struct.pack_into("!H", frame, l4 + 16, 0)
    assert_dropped(segment(bytes(frame), word, BIG), TxStatus.LSO_GUARANTEE, version)


def test_drop_guarantee_lsov2():
    send, frame, word = base("v2")
    struct.pack_into("!H", frame, send.l3 + 2, len(frame) - send.l3)   # v2 wants 0
    assert_dropped(segment(bytes(frame), word, BIG), TxStatus.LSO_GUARANTEE, "v2")
    # An IPv6 fragment (Fragment header with M set).
    send = build(ipv6=True, ext=[IPv6ExtHdrFragment(offset=0, m=1)], payload=bytes(3000))
    frame = bytearray(send.frame)
    word = 1000 | (send.l4 << 20) | (1 << 30) | (1 << 31)
    assert_dropped(segment(bytes(frame), word, BIG), TxStatus.LSO_GUARANTEE, "v2")


def test_drop_headers_too_long():
    # 14 + 60 (IPv4, 40 bytes of options) + 56 (TCP, 36 bytes of options) = 130 > 128 ...
    opts = [IPOption_RR(routers=["10.0.0.%d" % i for i in range(9)]), IPOption_NOP()]
    tcp_opts = [("NOP", None)] * 2 + [("SAck", (1, 2, 3, 4, 5, 6, 7, 8))]
    send = build(ip_options=opts, tcp_options=tcp_opts, payload=bytes(3000))
    assert send.hdr_end == 130
    frame, word = prepared(send, 1000, "v1")
    assert_dropped(segment(frame, word, BIG), TxStatus.LSO_HEADERS_TOO_LONG, "v1")
    assert segment(frame, word, dataclasses.replace(BIG, max_header_bytes=130)).sent
    # ... and 126 goes (TCP options: 6 NOPs and three SACK blocks, 32 bytes).
    send = build(ip_options=opts, tcp_options=[("NOP", None)] * 6 + [("SAck", (1, 2, 3, 4, 5, 6))],
                 payload=bytes(3000))
    assert send.hdr_end == 126
    check_sent(send, run(send, 1000, "v1"), 1000, version="v1")
    # IPv6 extension headers past the parser's limit.
    long_ext = [IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(130))])]
    send = build(ipv6=True, ext=long_ext, payload=bytes(3000))
    frame, word = prepared_unchecked(send, 1000)
    assert_dropped(segment(frame, word, BIG), TxStatus.LSO_HEADERS_TOO_LONG, "v2")


def prepared_unchecked(send, mss):
    """A v2 IPv6 send the transport would refuse to build: prepare it by hand."""
    frame = bytearray(send.frame)
    struct.pack_into("!H", frame, send.l3 + 4, 0)
    struct.pack_into("!H", frame, send.l4 + 16, pseudo_no_length(send, bytes(frame)))
    return bytes(frame), mss | (send.l4 << 20) | (1 << 30) | (1 << 31)


@pytest.mark.parametrize("version,ipv6,field", [
    ("v1", False, "v1_ipv4"), ("v2", False, "v2_ipv4"), ("v2", True, "v2_ipv6")])
def test_drop_too_few_segments_and_too_large(version, ipv6, field):
    send, frame, word = base(version, ipv6, size=3000)              # 3 segments at MSS 1000
    frame = bytes(frame)
    for minimum, status in ((3, TxStatus.SENT), (4, TxStatus.LSO_TOO_FEW_SEGMENTS)):
        limits = dataclasses.replace(BIG, **{f"{field}_min_segment_count": minimum})
        result = segment(frame, word, limits)
        if status == TxStatus.SENT:
            check_sent(send, result, 1000, version=version)
        else:
            assert_dropped(result, status, version)
    for maximum, status in ((3000, TxStatus.SENT), (2999, TxStatus.LSO_TOO_LARGE)):
        limits = dataclasses.replace(BIG, **{f"{field}_max_offload_size": maximum})
        result = segment(frame, word, limits)
        assert result.status == status
        if status != TxStatus.SENT:
            assert_dropped(result, status, version)
    # TOO_LARGE is judged before TOO_FEW_SEGMENTS.
    limits = dataclasses.replace(BIG, **{f"{field}_max_offload_size": 10,
                                         f"{field}_min_segment_count": 100})
    assert_dropped(segment(frame, word, limits), TxStatus.LSO_TOO_LARGE, version)


@pytest.mark.parametrize("minimum", [0, 1])
def test_drop_empty_payload(minimum):
    send = build(payload=b"", flags=ACK | FIN)
    frame, word = prepared(send, 1000, "v1")
    limits = dataclasses.replace(BIG, v1_ipv4_min_segment_count=minimum)
    assert_dropped(segment(frame, word, limits), TxStatus.LSO_TOO_FEW_SEGMENTS, "v1")


def test_drop_malformed():
    send, frame, word = base("v1")
    assert_dropped(segment(bytes(frame[:send.l3 + 10]), word, BIG), TxStatus.MALFORMED, "v1")
    assert_dropped(segment(bytes(frame[:10]), word, BIG), TxStatus.MALFORMED, "v1")
    frame[send.l4 + 12] = 0x40                                      # TCP data offset 4
    assert_dropped(segment(bytes(frame), word, BIG), TxStatus.MALFORMED, "v1")


def test_order_of_checks():
    send, frame, word = base("v2")
    frame = bytes(frame)
    off = dataclasses.replace(BIG, lso_v2_ipv4=False)
    no_mss = word & ~0xFFFFF
    bad_offset = (word & ~(0x3FF << 20)) | ((send.l4 + 4) << 20)
    # Disabled beats MSS 0; MSS 0 beats a bad header offset.
    assert segment(frame, no_mss, off).status == TxStatus.LSO_DISABLED
    assert segment(frame, no_mss & ~(0x3FF << 20) | (7 << 20), BIG).status == \
        TxStatus.LSO_BAD_MSS
    # A bad header offset beats a broken guarantee.
    syn = bytearray(frame)
    syn[send.l4 + 13] |= SYN
    assert segment(bytes(syn), bad_offset, BIG).status == TxStatus.LSO_BAD_HEADER_OFFSET
    # A broken guarantee beats too much payload.
    small = dataclasses.replace(BIG, v2_ipv4_max_offload_size=10)
    assert segment(bytes(syn), word, small).status == TxStatus.LSO_GUARANTEE
    # Not TCP (wrong IP version) beats a bad header offset.
    assert segment(frame, bad_offset | (1 << 31), BIG).status == TxStatus.LSO_NOT_TCP


# --- a NIC that streams the payload: what its end-decided drops have already sent -----------

def streamed(**kw):
    """``BIG`` with our NIC's look-ahead, and ``kw``."""
    return dataclasses.replace(BIG, **{"lookahead_bytes": STREAM_LOOKAHEAD, **kw})


def assert_cut(send, result, status, mss, count, version):
    """Dropped with ``status``, and its first ``count`` segments left: the segments of the
    same send made without limits, checked independently by ``check_sent``'s rules."""
    assert result.status == status, result.detail
    assert result.completion.LsoComplete == (0 if version == "v1" else V2_COMPLETE)
    assert len(result.segments) == count
    whole = Send(**{**dataclasses.asdict(send), "payload": send.payload[:count * mss]})
    check = LsoResult(result.segments, TxCompletion(
        LsoComplete=count * mss if version == "v1" else V2_COMPLETE, Status=0))
    whole.flags = send.flags & ~(FIN | PSH)     # middle segments: no FIN/PSH on the last
    check_sent(whole, check, mss, version=version)


@pytest.mark.parametrize("version,ipv6,field", [
    ("v2", False, "v2_ipv4"), ("v2", True, "v2_ipv6")])
def test_streamed_too_large_leaves_the_segments_that_fit(version, ipv6, field):
    # 10000 payload bytes at MSS 1000 over MaxOffLoadSize 4500: middle segment k needs
    # (k + 1) * 1000 + 1 <= 4500 bytes, so 4 left before the end dropped the send.
    send = build(ipv6=ipv6, payload=random.Random(9).randbytes(10000), flags=ACK | PSH | CWR)
    frame, word = prepared(send, 1000, version)
    limits = streamed(**{f"{field}_max_offload_size": 4500})
    assert_cut(send, segment(frame, word, limits), TxStatus.LSO_TOO_LARGE, 1000, 4, version)
    assert_dropped(segment(frame, word, dataclasses.replace(limits, lookahead_bytes=None)),
                   TxStatus.LSO_TOO_LARGE, version)
    # 4000 bytes exactly is 4 segments: (3 + 1) * 1000 + 1 > 4000 leaves 3.
    limits = streamed(**{f"{field}_max_offload_size": 4000})
    assert_cut(send, segment(frame, word, limits), TxStatus.LSO_TOO_LARGE, 1000, 3, version)


def test_streamed_min_segment_count():
    """MinSegmentCount within the look-ahead: the NIC waits for it, nothing leaves. Beyond
    the look-ahead: the segments up to the look-ahead have left."""
    rng = random.Random(10)
    send = build(payload=rng.randbytes(40000))
    frame, word = prepared(send, 1000, "v2")
    # 40 segments; MinSegmentCount 41 needs 40001 bytes of look-ahead (> 32384): it cannot
    # wait, so every middle segment whose next byte arrived went: 39.
    result = segment(frame, word, streamed(v2_ipv4_min_segment_count=41))
    assert_cut(send, result, TxStatus.LSO_TOO_FEW_SEGMENTS, 1000, 39, "v2")
    # MinSegmentCount 41 with a 64 KB look-ahead: it waits, and the drop is whole.
    result = segment(frame, word, streamed(v2_ipv4_min_segment_count=41,
                                           lookahead_bytes=65536))
    assert_dropped(result, TxStatus.LSO_TOO_FEW_SEGMENTS, "v2")
    # A short send under a small MinSegmentCount: whole, whatever the look-ahead.
    send = build(payload=rng.randbytes(2500))
    frame, word = prepared(send, 1000, "v2")
    assert_dropped(segment(frame, word, streamed(v2_ipv4_min_segment_count=4)),
                   TxStatus.LSO_TOO_FEW_SEGMENTS, "v2")


def test_streamed_lsov1_total_length():
    """LSOv1: a Total Length that announces less than the buffer holds is known only at the
    end; the segments of the announced length but the last have left. A Total Length whose
    announced payload already breaks a limit drops the send before anything leaves."""
    rng = random.Random(11)
    send = build(payload=rng.randbytes(5000))
    frame, word = prepared(send, 1000, "v1")
    short = bytearray(frame)
    struct.pack_into("!H", short, send.l3 + 2, len(frame) - send.l3 - 1500)  # announces 3500
    result = segment(bytes(short), word, streamed())
    assert_cut(send, result, TxStatus.LSO_GUARANTEE, 1000, 3, "v1")
    assert_dropped(segment(bytes(short), word, BIG), TxStatus.LSO_GUARANTEE, "v1")
    # Announced 3500 over MaxOffLoadSize 3000: nothing leaves.
    result = segment(bytes(short), word, streamed(v1_ipv4_max_offload_size=3000))
    assert_dropped(result, TxStatus.LSO_GUARANTEE, "v1")


def test_streamed_header_drops_are_whole():
    """What the headers decide drops the send before a byte leaves, streaming or not."""
    send, frame, word = base("v2", size=10000)
    syn = bytearray(frame)
    syn[send.l4 + 13] |= SYN
    limits = streamed(v2_ipv4_max_offload_size=4500)
    assert_dropped(segment(bytes(syn), word, limits), TxStatus.LSO_GUARANTEE, "v2")
    # Over MaxOffLoadSize at an MSS whose full segment the checksum stage cannot hold: no
    # middle segment could ever leave (the first would be 9700 + 54 > TX_MAX_FRAME bytes).
    limits = streamed(v2_ipv4_max_offload_size=9999, max_segment_bytes=TX_MAX_FRAME)
    result = segment(bytes(frame), (word & ~0xFFFFF) | 9700, limits)
    assert_dropped(result, TxStatus.LSO_TOO_LARGE, "v2")
    result = segment(bytes(frame), (word & ~0xFFFFF) | 9600, limits)     # 9654 bytes: fits
    assert_cut(send, result, TxStatus.LSO_TOO_LARGE, 9600, 1, "v2")
    with pytest.raises(ValueError):
        LsoLimits(lookahead_bytes=0)


def test_word_zero_and_nvgre_hook():
    send, frame, word = base("v2")
    with pytest.raises(ValueError):
        segment(bytes(frame), 0, BIG)
    with pytest.raises(NotImplementedError):
        segment(bytes(frame), word, BIG, supplemental=1)     # IsEncapsulatedPacket
    with pytest.raises(ValueError):
        segment(bytes(frame), word, BIG, id_mode="bsd")


def test_limits_validation():
    with pytest.raises(ValueError):
        LsoLimits(v1_ipv4_max_offload_size=65537)
    with pytest.raises(ValueError):
        LsoLimits(v2_ipv6_max_offload_size=0)
    with pytest.raises(ValueError):
        LsoLimits(v2_ipv4_min_segment_count=-1)
    with pytest.raises(ValueError):
        LsoLimits(id_mode="windows")


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


def test_segment_longer_than_tx_max_frame_is_bad_mss():
    """A segment the checksum stage cannot hold whole (longer than TX_MAX_FRAME) is refused
    as LSO_BAD_MSS, the same rule the RTL segmenter applies; one that fits is cut."""
    send = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A") /
                 (b"\x5a" * 30000))
    fits = TX_MAX_FRAME - 54
    for mss, status in ((fits, TxStatus.SENT), (fits + 1, TxStatus.LSO_BAD_MSS)):
        prepared, word, _ = prepare_large_send(send, mss, "v2")
        result = segment(prepared, word, LsoLimits())
        assert result.status == status, (mss, result.detail)
        if status == TxStatus.SENT:
            assert max(len(s) for s in result.segments) == TX_MAX_FRAME
