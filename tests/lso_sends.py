"""Sends built with scapy, and the independent checks of model/lso.py's answers.

Shared by the ``test_lso_*`` files. Sends are built with scapy (Ethernet II or 802.3
LLC/SNAP, 802.1Q/802.1ad tags, IPv4 with options or IPv6 with extension headers, TCP with
options), prepared by ``transport_lso.prepare_large_send`` and segmented by ``lso.segment``.
Every segment is then checked by things that are not the model: scapy dissects it and
recomputes its IPv4 and TCP checksums (and every other field it would fill) from scratch; the
test's own arithmetic gives the expected sequence numbers, lengths, IDs and flags; the header
bytes are compared with the original frame's at offsets scapy reports.

Pages: shared/reference/ndis/offloading-the-segmentation-of-large-tcp-packets.md (the LSO
page), accessing-tcp-ip-offload-net-buffer-list-information.md, and DESIGN.md 3.
"""

from __future__ import annotations

import dataclasses
import socket
import struct

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Raw, raw
from scapy.utils import checksum as scapy_checksum

from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import TxStatus
from nicoffload.model.transport_lso import prepare_large_send

MAC = dict(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
V2_COMPLETE = 1 << 30          # LsoV2TransmitComplete: Reserved 0, Type 1 (bit 30)
# No checksum-stage limit (the IP length rules decide): the NDIS semantics alone.
BIG = LsoLimits(v2_ipv4_max_offload_size=1 << 20, v2_ipv6_max_offload_size=1 << 20,
                max_segment_bytes=1 << 20)


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
    len_8023: int | None  # offset of the 802.3 length field (LLC/SNAP)
    seq: int
    flags: int            # 9 bits as scapy reads them (NS included)
    ip_id: int


def build(*, ipv6=False, vlans=(), snap=False, ip_options=(), ext=(), tcp_options=(),
          payload=b"", seq=1000, flags=ACK, ip_id=0x1234, reserved=0, src=None, dst=None):
    snap_layers = LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / \
        SNAP(OUI=0, code=0x86DD if ipv6 else 0x0800)
    if snap and not vlans:
        l2 = Dot3(len=1500, **MAC) / snap_layers
    else:
        l2 = Ether(**MAC)
        for i, (tpid, vid) in enumerate(vlans):
            tag = Dot1AD(vlan=vid) if tpid == 0x88A8 else Dot1Q(vlan=vid)
            if snap and i == len(vlans) - 1:
                tag.type = 1500                 # 802.3 length behind the last tag
            l2 = l2 / tag
        if snap:
            l2 = l2 / snap_layers
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
                hdr_end=hdr_end, len_8023=12 + 4 * len(vlans) if snap else None, seq=seq,
                flags=int(parsed[TCP].flags), ip_id=ip_id)


def prepared(send, mss, version):
    """The send as the transport hands it over, and its LSO word."""
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
        if send.len_8023 is not None:        # the 802.3 length: Dot3's, or the last tag's type
            length = q[LLC].underlayer
            assert (length.len if send.len_8023 == 12 else length.type) == \
                len(seg) - send.len_8023 - 2

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
    """Prepare ``send`` and segment it."""
    frame, word = prepared(send, mss, version)
    return segment(frame, word, limits, id_mode=id_mode)


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


# --- drops ---------------------------------------------------------------------------------

def base(version="v1", ipv6=False, size=3000, **kw):
    """A plain send of ``size`` bytes prepared at MSS 1000: (send, frame to spoil, word)."""
    send = build(ipv6=ipv6, payload=bytes(range(100)) * (size // 100) + bytes(size % 100),
                 **kw)
    frame, word = prepared(send, 1000, version)
    return send, bytearray(frame), word


def assert_dropped(result, status, version):
    """Dropped whole with ``status``: no segment, and the completion of a send that sent
    nothing (LSOv1 TcpPayload 0 and Type 0; LSOv2 Type 1, Reserved 0)."""
    assert result.status == status, result.detail
    assert result.segments == ()
    assert result.completion.Status == int(status)
    assert result.completion.LsoComplete == (0 if version == "v1" else V2_COMPLETE)
    assert result.detail and result.detail.startswith(status.name)


def prepared_unchecked(send, mss):
    """A v2 IPv6 send the transport would refuse to build: prepare it by hand."""
    frame = bytearray(send.frame)
    struct.pack_into("!H", frame, send.l3 + 4, 0)
    struct.pack_into("!H", frame, send.l4 + 16, pseudo_no_length(send, bytes(frame)))
    return bytes(frame), mss | (send.l4 << 20) | (1 << 30) | (1 << 31)
