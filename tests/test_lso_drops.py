"""model/lso.py: every drop reason, the order of the checks, whole drops, the limits.

A dropped send has no segments, whatever the reason and however large the send (DESIGN 2:
the host frame's length rides in the first beat, "every LSO check is decided before the first
byte of a send leaves, and a bad send is dropped whole"); its completion says why, and an
LSOv1 completion says TcpPayload 0. Sends are built and judged as in ``lso_sends``.

Pages: shared/reference/ndis/offloading-the-segmentation-of-large-tcp-packets.md (the LSO
page) and DESIGN.md 3 "LSO (v1 and v2)".
"""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw, raw

from lso_sends import (ACK, BIG, FIN, MAC, PSH, RST, SYN, URG, assert_dropped, base, build,
                       check_sent, prepared)
from nicoffload.model import lso
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import LsoV1TransmitComplete, TxStatus
from nicoffload.model.parse import MAX_PARSE_BYTES
from nicoffload.model.transport_lso import prepare_large_send


# --- every reason, its completion ----------------------------------------------------------

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


# --- whole drops: what the end of a send decides drops it whole too (DESIGN 2 and 3) ----------

# Payload sizes on both sides of the 32 KB an RTL ring once held ahead of its output, up to
# sends LSOv1 cannot carry.
SIZES = [2500, 4501, 32383, 32385, 40000, 65000, 100000]
BY_VERSION = [("v1", False, "v1_ipv4"), ("v2", False, "v2_ipv4"), ("v2", True, "v2_ipv6")]
# LSOv1 carries at most 65495 payload bytes behind 20 + 20 bytes of headers.
CASES = [(size, *by) for by in BY_VERSION for size in SIZES if by[0] == "v2" or size <= 65495]


def lsov1_payload(result):
    """TcpPayload and Type of an LSOv1 completion, read with the NDIS layout."""
    word = LsoV1TransmitComplete.from_int(result.completion.LsoComplete)
    return word.TcpPayload, word.Type


@pytest.mark.parametrize("size,version,ipv6,field", CASES)
def test_too_large_drops_whole(size, version, ipv6, field):
    """One payload byte over MaxOffLoadSize: no segment leaves, at any size; at exactly
    MaxOffLoadSize the same send goes."""
    send = build(ipv6=ipv6, payload=random.Random(size).randbytes(size), flags=ACK | PSH)
    frame, word = prepared(send, 1000, version)
    limits = LsoLimits(**{f"{field}_max_offload_size": size - 1})
    result = segment(frame, word, limits)
    assert_dropped(result, TxStatus.LSO_TOO_LARGE, version)
    if version == "v1":
        assert lsov1_payload(result) == (0, 0)
    limits = dataclasses.replace(limits, **{f"{field}_max_offload_size": size})
    check_sent(send, segment(frame, word, limits), 1000, version=version)


@pytest.mark.parametrize("size,version,ipv6,field", CASES)
def test_too_few_segments_drops_whole(size, version, ipv6, field):
    """A MinSegmentCount one above the send's segment count drops it whole, however far into
    the send the missing segment would have been; at the count itself the send goes."""
    send = build(ipv6=ipv6, payload=random.Random(size + 1).randbytes(size))
    frame, word = prepared(send, 1000, version)
    count = -(-size // 1000)
    limits = LsoLimits(**{f"{field}_min_segment_count": count + 1})
    result = segment(frame, word, limits)
    assert_dropped(result, TxStatus.LSO_TOO_FEW_SEGMENTS, version)
    if version == "v1":
        assert lsov1_payload(result) == (0, 0)
    limits = dataclasses.replace(limits, **{f"{field}_min_segment_count": count})
    check_sent(send, segment(frame, word, limits), 1000, version=version)


@pytest.mark.parametrize("size", [5000, 32385, 40000, 65000])
@pytest.mark.parametrize("delta", [-1500, -1, 1, 400])
def test_lsov1_total_length_not_the_buffer_drops_whole(size, delta):
    """LSOv1: a Total Length that announces less or more than the buffer holds is
    LSO_GUARANTEE, with no segment and a completion of TcpPayload 0, also for a send over
    32 KB whose fault shows only where its buffer ends."""
    send = build(payload=random.Random(size - delta).randbytes(size))
    frame, word = prepared(send, 1000, "v1")
    spoilt = bytearray(frame)
    struct.pack_into("!H", spoilt, send.l3 + 2, len(frame) - send.l3 + delta)
    result = segment(bytes(spoilt), word, LsoLimits())
    assert_dropped(result, TxStatus.LSO_GUARANTEE, "v1")
    assert result.completion.LsoComplete == 0
    assert lsov1_payload(result) == (0, 0)
    # The announced payload one byte over MaxOffLoadSize: still the guarantee (9 before 10).
    limits = LsoLimits(v1_ipv4_max_offload_size=size + delta - 1)
    assert_dropped(segment(bytes(spoilt), word, limits), TxStatus.LSO_GUARANTEE, "v1")
    check_sent(send, segment(frame, word, LsoLimits()), 1000, version="v1")


def test_header_and_mss_drops_are_whole():
    """What the headers or the MSS decide drops a send whole as well, at the default limits
    (the checksum stage's TX_MAX_FRAME included)."""
    send, frame, word = base("v2", size=10000)
    syn = bytearray(frame)
    syn[send.l4 + 13] |= SYN
    limits = LsoLimits(v2_ipv4_max_offload_size=4500)
    assert_dropped(segment(bytes(syn), word, limits), TxStatus.LSO_GUARANTEE, "v2")
    # Over MaxOffLoadSize at an MSS whose full segment the checksum stage cannot hold, and at
    # one whose segment it can (9654 bytes): whole either way.
    limits = LsoLimits(v2_ipv4_max_offload_size=9999)
    for mss in (9700, 9600, 1):
        result = segment(bytes(frame), (word & ~0xFFFFF) | mss, limits)
        assert_dropped(result, TxStatus.LSO_TOO_LARGE, "v2")
    # The MSS too long for the checksum stage, with the payload within every limit.
    result = segment(bytes(frame), (word & ~0xFFFFF) | 9700, LsoLimits())
    assert_dropped(result, TxStatus.LSO_BAD_MSS, "v2")


def test_no_streaming_rule_left():
    """The streaming NIC's look-ahead is gone from the model: every drop is whole."""
    assert not hasattr(lso, "STREAM_LOOKAHEAD")
    assert "STREAM_LOOKAHEAD" not in lso.__all__
    assert "lookahead_bytes" not in {f.name for f in dataclasses.fields(LsoLimits)}
    with pytest.raises(TypeError):
        LsoLimits(lookahead_bytes=None)


# --- the word, the limits, the checksum stage's frame ---------------------------------------

def test_word_zero_and_encapsulated_send_that_is_not_nvgre():
    send, frame, word = base("v2")
    with pytest.raises(ValueError):
        segment(bytes(frame), 0, BIG)
    # IsEncapsulatedPacket on a plain TCP send: not NVGRE (NVGRE: tests/test_nvgre_model.py)
    result = segment(bytes(frame), word, BIG, supplemental=1)
    assert result.status is TxStatus.LSO_NOT_NVGRE and not result.segments
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
    # max_header_bytes: 54 up to the parse window, no further (check 8; DESIGN 3).
    assert LsoLimits().max_header_bytes == MAX_PARSE_BYTES == 256
    assert LsoLimits(max_header_bytes=54).max_header_bytes == 54
    for bad in (53, 257, 1023, "256"):
        with pytest.raises(ValueError):
            LsoLimits(max_header_bytes=bad)


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
