"""model/lso.py: sends whose headers take 129..256 bytes, and the 256-byte parse window.

DESIGN 3 "LSO (v1 and v2)": "The NIC segments every send whose headers, Ethernet through TCP
options, end within 256 bytes ... A send past that is dropped with its reason." 256 is the
parse window (``parse.MAX_PARSE_BYTES``) and ``LsoLimits.max_header_bytes``' default (check
8). Sends are built by scapy and every segment judged as in ``lso_sends``: scapy recomputes
its IPv4 and TCP checksums, the test's arithmetic its lengths, sequence numbers, IDs and
flags, and the payload of the segments put together is the send's.

Two facts of the parser shape the edge. A header block is always 2 mod 4 bytes long (a
14-byte Ethernet header, everything else in 4-byte units), so no send has headers of exactly
255 or 256 bytes: 254 is the longest segmented and 258 the shortest past the window. And
IPv6 extension headers may take more than the 128 bytes NDIS requires at least: ``parse``
follows a chain that ends by byte 248 (``MAX_EXT_END``: a TCP header behind it could still
end within 256) and refuses one that ends later (EXT_TOO_LONG).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from scapy.layers.inet import TCP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import (IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, PadN)
from scapy.layers.l2 import Ether
from scapy.packet import raw

from lso_sends import (ACK, CWR, ECE, FIN, PSH, assert_dropped, build, check_sent,
                       prepared, prepared_unchecked, run)
from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import TxStatus
from nicoffload.model.parse import MAX_PARSE_BYTES, ParseError, parse

DEFAULT = LsoLimits()          # max_header_bytes 256: what the NIC does out of the box

# 40 bytes of IPv4 options (record route with 9 slots, NOP) and of TCP options (timestamps,
# three SACK blocks).
IP_OPTS_40 = [IPOption_RR(routers=["10.0.0.%d" % i for i in range(9)]), IPOption_NOP()]
TCP_OPTS_40 = [("NOP", None), ("NOP", None), ("Timestamp", (0xDEADBEEF, 7)),
               ("NOP", None), ("NOP", None), ("SAck", (1, 2, 3, 4, 5, 6))]
TCP_OPTS_36 = TCP_OPTS_40[:5] + [("SAck", (1, 2, 3, 4))] + [("NOP", None)] * 4
ONE_TAG = [(0x8100, 10)]
TWO_TAGS = [(0x88A8, 100), (0x8100, 200)]


def opts(kind, size):
    """A generic IPv6 options header (Hop-by-Hop or Destination Options) of ``size`` bytes."""
    return kind(options=[PadN(optdata=bytes(size - 4))])


def check_segmented(send, result, mss, version, id_mode="ndis"):
    """``check_sent``; the IP options or extension headers and the TCP options of every
    segment are the send's, byte for byte; the segments' payloads put together are the
    send's payload (scapy's reading of each)."""
    check_sent(send, result, mss, version=version, id_mode=id_mode)
    ip_fixed = 40 if send.ipv6 else 20
    for seg in result.segments:
        assert seg[send.l3 + ip_fixed:send.l4] == send.frame[send.l3 + ip_fixed:send.l4]
        assert seg[send.l4 + 20:send.hdr_end] == send.frame[send.l4 + 20:send.hdr_end]
    assert b"".join(raw(Ether(s)[TCP].payload) for s in result.segments) == send.payload


# name: (build arguments, version, header bytes as scapy lays them out)
LONG = {
    "ipv4-opts-1tag": (dict(vlans=ONE_TAG, ip_options=IP_OPTS_40, tcp_options=TCP_OPTS_40),
                       "v1", 18 + 60 + 60),
    "ipv4-opts-2tags": (dict(vlans=TWO_TAGS, ip_options=IP_OPTS_40, tcp_options=TCP_OPTS_40),
                        "v2", 22 + 60 + 60),
    "ipv4-opts-snap": (dict(snap=True, ip_options=IP_OPTS_40, tcp_options=TCP_OPTS_40),
                       "v1", 22 + 60 + 60),
    "ipv4-opts-snap-2tags": (dict(snap=True, vlans=TWO_TAGS, ip_options=IP_OPTS_40,
                                  tcp_options=TCP_OPTS_40), "v2", 30 + 60 + 60),
    "ipv6-dst64": (dict(ipv6=True, ext=[opts(IPv6ExtHdrDestOpt, 64)],
                        tcp_options=TCP_OPTS_40), "v2", 14 + 40 + 64 + 60),
    "ipv6-dst64-2tags": (dict(ipv6=True, vlans=TWO_TAGS, ext=[opts(IPv6ExtHdrDestOpt, 64)],
                              tcp_options=TCP_OPTS_40), "v2", 22 + 40 + 64 + 60),
    "ipv6-hbh+dst": (dict(ipv6=True, ext=[opts(IPv6ExtHdrHopByHop, 64),
                                          opts(IPv6ExtHdrDestOpt, 64)],
                          tcp_options=TCP_OPTS_40), "v2", 14 + 40 + 128 + 60),
    "ipv6-hbh+dst-2tags": (dict(ipv6=True, vlans=TWO_TAGS,
                                ext=[opts(IPv6ExtHdrHopByHop, 64),
                                     opts(IPv6ExtHdrDestOpt, 64)],
                                tcp_options=TCP_OPTS_40), "v2", 22 + 40 + 128 + 60),
    "ipv6-rt2+dst+frag-1tag": (dict(ipv6=True, vlans=ONE_TAG,
                                    ext=[IPv6ExtHdrRouting(type=2, segleft=1,
                                                           addresses=["2001:db8::99"]),
                                         opts(IPv6ExtHdrDestOpt, 96),
                                         IPv6ExtHdrFragment(offset=0, m=0, id=5)],
                                    tcp_options=TCP_OPTS_40), "v2", 18 + 40 + 128 + 60),
    "ipv6-snap-hbh+dst": (dict(ipv6=True, snap=True, ext=[opts(IPv6ExtHdrHopByHop, 64),
                                                          opts(IPv6ExtHdrDestOpt, 64)],
                               tcp_options=TCP_OPTS_40), "v2", 22 + 40 + 128 + 60),
    # The longest header blocks there are: 254 bytes, both ways of making them.
    "254-snap-1tag": (dict(ipv6=True, snap=True, vlans=ONE_TAG,
                           ext=[opts(IPv6ExtHdrHopByHop, 64), opts(IPv6ExtHdrDestOpt, 64)],
                           tcp_options=TCP_OPTS_40), "v2", 26 + 40 + 128 + 60),
    "254-snap-2tags": (dict(ipv6=True, snap=True, vlans=TWO_TAGS,
                            ext=[opts(IPv6ExtHdrHopByHop, 64), opts(IPv6ExtHdrDestOpt, 64)],
                            tcp_options=TCP_OPTS_36),
                       "v2", 30 + 40 + 128 + 56),
}


@pytest.mark.parametrize("name", list(LONG))
def test_long_headers_segmented(name):
    """Headers of 129..254 bytes (IP and TCP options, one or two tags, LLC/SNAP, IPv6
    extension headers) go out at the default limits, copied into every segment."""
    kw, version, hdr_end = LONG[name]
    rng = random.Random(name)
    send = build(payload=rng.randbytes(7001), flags=ACK | PSH | FIN | CWR | ECE,
                 ip_id=0x7FFD, seq=(1 << 32) - 2500, **kw)
    assert send.hdr_end == hdr_end and 128 < hdr_end <= MAX_PARSE_BYTES
    check_segmented(send, run(send, 1000, version, DEFAULT), 1000, version)
    if version == "v1":                 # an IPv4 send goes as LSOv2 too
        check_segmented(send, run(send, 1000, "v2", DEFAULT), 1000, "v2")


def test_check_8_with_a_lower_limit():
    """Check 8 itself: a limit below 256 drops what ends past it, and 130 bytes (over the old
    limit of 128) go at the default."""
    kw, version, hdr_end = LONG["254-snap-1tag"]
    send = build(payload=bytes(range(256)) * 12, **kw)
    frame, word = prepared(send, 1000, version)
    check_segmented(send, segment(frame, word, DEFAULT), 1000, version)
    check_segmented(send, segment(frame, word, LsoLimits(max_header_bytes=254)), 1000, version)
    result = segment(frame, word, LsoLimits(max_header_bytes=250))
    assert_dropped(result, TxStatus.LSO_HEADERS_TOO_LONG, version)
    assert "254" in result.detail
    # 14 + 60 (IPv4, 40 bytes of options) + 56 (TCP, 36 bytes of options) = 130.
    tcp_opts = [("NOP", None)] * 2 + [("SAck", (1, 2, 3, 4, 5, 6, 7, 8))]
    send = build(ip_options=IP_OPTS_40, tcp_options=tcp_opts, payload=bytes(3000))
    assert send.hdr_end == 130
    frame, word = prepared(send, 1000, "v1")
    check_segmented(send, segment(frame, word, DEFAULT), 1000, "v1")
    assert_dropped(segment(frame, word, LsoLimits(max_header_bytes=128)),
                   TxStatus.LSO_HEADERS_TOO_LONG, "v1")
    assert segment(frame, word, LsoLimits(max_header_bytes=130)).sent


def test_past_the_parse_window_is_dropped():
    """258 bytes, the shortest block past byte 256 (LLC/SNAP behind two tags, IPv6 with 128
    bytes of extension headers, 60 bytes of TCP): dropped with LSO_HEADERS_TOO_LONG, whatever
    max_header_bytes says; the same send with 4 bytes less of TCP options (254) goes."""
    kw, _, _ = LONG["254-snap-2tags"]
    send = build(payload=bytes(3000), **kw)
    assert send.hdr_end == 254
    check_segmented(send, run(send, 1000, "v2", DEFAULT), 1000, "v2")
    send = build(payload=bytes(3000), **{**kw, "tcp_options": TCP_OPTS_40})
    assert send.hdr_end == 258
    assert parse(send.frame).error_code == ParseError.PAST_LIMIT
    frame, word = prepared_unchecked(send, 1000)
    for limits in (DEFAULT, LsoLimits(max_header_bytes=MAX_PARSE_BYTES)):
        assert_dropped(segment(frame, word, limits), TxStatus.LSO_HEADERS_TOO_LONG, "v2")
    # An extension-header chain that also ends past 256 (and past 128 on its own).
    send = build(ipv6=True, ext=[opts(IPv6ExtHdrHopByHop, 200)], tcp_options=TCP_OPTS_40,
                 payload=bytes(3000))
    assert send.hdr_end == 14 + 40 + 200 + 60
    frame, word = prepared_unchecked(send, 1000)
    assert_dropped(segment(frame, word, DEFAULT), TxStatus.LSO_HEADERS_TOO_LONG, "v2")


def test_max_header_bytes_cannot_promise_past_the_window():
    with pytest.raises(ValueError):
        LsoLimits(max_header_bytes=MAX_PARSE_BYTES + 1)
    assert dataclasses.replace(DEFAULT, max_header_bytes=200).max_header_bytes == 200


@pytest.mark.parametrize("vlans,ext,tcp_options,hdr_end", [
    ([], [opts(IPv6ExtHdrHopByHop, 64), opts(IPv6ExtHdrDestOpt, 72)], [], 14 + 40 + 136 + 20),
    ([], [opts(IPv6ExtHdrHopByHop, 136)], [], 14 + 40 + 136 + 20),
    (TWO_TAGS, [opts(IPv6ExtHdrDestOpt, 160)], TCP_OPTS_40[:3], 22 + 40 + 160 + 32),
], ids=["hbh64+dst72", "hbh136", "2tags+dst160+tcpopts"])
def test_extension_chain_over_128_within_256(vlans, ext, tcp_options, hdr_end):
    """Headers that end within 256 bytes whose IPv6 extension headers take more than 128:
    segmented (DESIGN 3)."""
    send = build(ipv6=True, vlans=vlans, ext=ext, tcp_options=tcp_options,
                 payload=random.Random(hdr_end).randbytes(5000))
    assert send.hdr_end == hdr_end <= MAX_PARSE_BYTES
    assert send.l4 - send.l3 - 40 > 128
    frame, word = prepared_unchecked(send, 1000)
    check_segmented(send, segment(frame, word, DEFAULT), 1000, "v2")


# --- random sweep of long header blocks ---------------------------------------------------------

def random_long_send(rng, version):
    ipv6 = version == "v2" and rng.random() < 0.6
    snap = rng.random() < 0.3
    vlans = [[], ONE_TAG, TWO_TAGS][rng.randrange(3)]
    ip_options, ext = [], []
    if ipv6:
        room = 128
        if rng.random() < 0.5:
            size = 8 * rng.randrange(1, 9)
            ext.append(opts(IPv6ExtHdrHopByHop, size))
            room -= size
        if room >= 24 and rng.random() < 0.3:
            ext.append(IPv6ExtHdrRouting(type=2, segleft=1, addresses=["2001:db8::7"]))
            room -= 24
        if room >= 8:
            size = 8 * rng.randrange(1, room // 8 + 1)
            ext.append(opts(IPv6ExtHdrDestOpt, size))
    else:
        slots = rng.randrange(3, 10)        # record route: 3 + 4 * slots bytes
        ip_options = [IPOption_RR(routers=["10.9.0.%d" % i for i in range(slots)])]
        ip_options += [IPOption_NOP()] * rng.randrange(0, 2 if slots == 9 else 4)
    sack = rng.randrange(1, 4)
    tcp_options = [("NOP", None), ("NOP", None), ("Timestamp", (rng.getrandbits(32), 1))]
    if sack:
        tcp_options += [("NOP", None), ("NOP", None),
                        ("SAck", tuple(rng.getrandbits(32) for _ in range(2 * sack)))]
    flags = ACK
    for bit in (FIN, PSH, CWR, ECE):
        if rng.random() < 0.5:
            flags |= bit
    size = rng.randrange(1, 20000)
    send = build(ipv6=ipv6, vlans=vlans, snap=snap, ip_options=ip_options, ext=ext,
                 tcp_options=tcp_options, payload=rng.randbytes(size),
                 seq=rng.getrandbits(32), flags=flags, ip_id=rng.getrandbits(16))
    mss = rng.choice([rng.randrange(1, 9000), rng.randrange(1, 600), 1448])
    mss = max(mss, -(-size // 200))                 # at most 200 segments per case
    if snap:            # every segment must keep its 802.3 length <= 1500
        mss = min(mss, 1500 - (send.hdr_end - send.len_8023 - 2))
    return send, mss


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_random_long_headers(version):
    rng = random.Random(f"lso-long-{version}")
    long = 0
    for _ in range(120):
        send, mss = random_long_send(rng, version)
        assert send.hdr_end % 4 == 2 and send.hdr_end <= 254
        long += send.hdr_end > 128
        id_mode = rng.choice(["ndis", "linux"])
        check_segmented(send, run(send, mss, version, DEFAULT, id_mode=id_mode), mss, version,
                        id_mode)
    assert long >= 40, long          # a third or more past the old limit of 128
