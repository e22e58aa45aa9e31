"""NVGRE in the golden model: the walk (model/nvgre.py), transmit checksums and receive
validation (model/checksum.py), LSOv2 over NVGRE (model/nvgre_lso.py) and the transport's
preparation (model/transport_nvgre.py).

The judge is not the model: frames are built by scapy (``nvgre_frames``), every checksum and
length of every output frame is rebuilt by scapy from scratch and must come back byte for
byte, and the segmentation arithmetic (payload, sequence numbers, IDs, GRE sequence numbers,
flags) is the test's own. Rules: DESIGN.md 3 "NVGRE", shared/reference/ndis/supporting-nvgre-*.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether

import nvgre_frames as nf
from nvgre_frames import ACK, CWR, ECE, FIN, PSH, SYN, build
from nicoffload.model import checksum, lso, nvgre, transport_nvgre
from nicoffload.model.checksum import ChecksumEnables, TxSkip, rx_validate, tx_checksum
from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import (ChecksumRx, ChecksumTx, LsoV1Transmit, LsoV2Transmit,
                                  SendSupplemental, TxStatus)
from nicoffload.model.nvgre import NvgreError, follow

RX_ON = ChecksumEnables(encap=True)
RX_OFF = ChecksumEnables(encap=False)
BIG = LsoLimits(v2_ipv4_max_offload_size=1 << 20, v2_ipv6_max_offload_size=1 << 20,
                max_segment_bytes=1 << 20)
COMBOS = list(itertools.product((False, True), (False, True)))     # (outer_v6, inner_v6)
GRE_KNOBS = [dict(gre_checksum=c, key=0x01020304 if k else None, seq=0xA0B0C0D0 if s else None)
             for c, k, s in itertools.product((False, True), repeat=3)]


def offsets(frame: bytes) -> dict:
    """Where scapy says the NVGRE headers are (absolute offsets)."""
    pkt = Ether(frame)
    gre = pkt[GRE]
    where = {}
    layer, at = pkt, 0
    while layer is not None and layer.payload:
        if layer is gre:
            where["gre"] = at
        nxt = layer.payload
        at += len(layer) - len(nxt)
        layer = nxt
        if isinstance(layer, Ether) and "inner" not in where:
            where["inner"] = at
    return where


def changed(a: bytes, b: bytes) -> set[int]:
    return {i for i, (x, y) in enumerate(zip(a, b)) if x != y} | set(range(min(len(a), len(b)),
                                                                          max(len(a), len(b))))


# --- the builder and the walk ----------------------------------------------------------------

def test_builder_is_deterministic_and_finished():
    a, b = nf.frames(7, 60), nf.frames(7, 60)
    assert [f.frame for f in a] == [f.frame for f in b]
    assert len({f.frame for f in a}) == 60
    assert all(nf.scapy_ok(f.frame, lengths=True) for f in a)
    broken = bytearray(a[0].frame)
    broken[-1] ^= 1
    assert not nf.scapy_ok(bytes(broken))      # the oracle can say no


@pytest.mark.parametrize("knobs", GRE_KNOBS, ids=str)
@pytest.mark.parametrize("outer_v6,inner_v6", COMBOS)
def test_follow_finds_what_scapy_finds(outer_v6, inner_v6, knobs):
    f = build(outer_v6=outer_v6, inner_v6=inner_v6, vlan=True, payload=b"z" * 33,
              outer_ext=(("hbh", 8), ("dst", 16)) if outer_v6 else (),
              inner_ext=(("dst", 8),) if inner_v6 else (), **knobs)
    nv = follow(f.frame)
    where = offsets(f.frame)
    assert nv.ok, nv.error
    assert nv.gre_offset == where["gre"] and nv.inner_offset == where["inner"]
    assert nv.gre_header_len == 4 + 4 * sum(x is not None and x is not False
                                            for x in knobs.values())
    assert (nv.key, nv.seq) == (knobs["key"], knobs["seq"])
    assert (nv.gre_checksum_offset is not None) == knobs["gre_checksum"]
    assert nv.inner.ip_version == (6 if inner_v6 else 4) and nv.inner.is_tcp
    supp = nvgre.supplemental_for(nv)
    assert supp.InnerFrameOffset == where["inner"]
    assert supp.TransportIpHeaderRelativeOffset == 14
    assert supp.IsInnerIPv6 == inner_v6


@pytest.mark.parametrize("knobs,code", [
    (dict(gre_proto=0x0800), NvgreError.NOT_TEB),
    (dict(gre_proto=0x86DD), NvgreError.NOT_TEB),
    (dict(gre_version=1), NvgreError.GRE_VERSION),
    (dict(gre_flags=1), NvgreError.GRE_FLAGS),
])
def test_follow_refuses_gre_that_is_not_nvgre(knobs, code):
    nv = follow(build(payload=b"abc", **knobs).frame)
    assert nv.error_code is code and nv.inner is None


def test_follow_refuses_routing_strict_recursion_bits_and_truncation():
    frame = bytearray(build(payload=b"abc").frame)
    gre = follow(bytes(frame)).gre_offset
    for bits in (0x40, 0x08, 0x01):           # R, s, Recur (first byte)
        probe = bytearray(frame)
        probe[gre] |= bits
        assert follow(bytes(probe)).error_code is NvgreError.GRE_FLAGS
    probe = bytearray(frame)
    probe[gre] |= 0x80                        # C set, but the datagram is the GRE header + 4
    cut = bytes(probe[:gre + 6])
    struct.pack_into("!H", (cut := bytearray(cut)), 16, gre + 6 - 14)
    assert follow(bytes(cut)).error_code is NvgreError.GRE_TRUNCATED
    plain = build(payload=b"abc").frame
    tcp_only = Ether(plain)[GRE].payload      # the inner frame alone: not GRE
    assert follow(bytes(tcp_only)).error_code is NvgreError.NOT_GRE


def test_follow_window_is_256_bytes():
    ok = build(outer_v6=True, inner_v6=True, outer_ext=(("hbh", 16), ("dst", 24)),
               inner_ext=(("dst", 24),), key=1, seq=2, gre_checksum=True, vlan=True,
               tcp_options=(("MSS", 1400), ("NOP", None), ("WScale", 7)))
    nv = follow(ok.frame)
    assert nv.ok and nv.headers_end <= 256
    knobs = dict(outer_v6=True, inner_v6=True, outer_ext=(("hbh", 16), ("dst", 24)), key=1,
                 seq=2, gre_checksum=True, vlan=True,
                 tcp_options=(("MSS", 1400), ("NOP", None), ("WScale", 7),
                              ("Timestamp", (1, 2))))
    edge = follow(build(inner_ext=(("dst", 24), ("dst", 24)), **knobs).frame)
    assert edge.ok and edge.headers_end == 256                 # the last byte is allowed
    far = follow(build(inner_ext=(("dst", 24), ("dst", 32)), **knobs).frame)
    assert far.error_code is NvgreError.INNER_PAST_LIMIT, far.error


# --- transmit checksums ----------------------------------------------------------------------

@pytest.mark.parametrize("knobs", GRE_KNOBS, ids=str)
@pytest.mark.parametrize("l4", ["tcp", "udp"])
@pytest.mark.parametrize("outer_v6,inner_v6", COMBOS)
def test_tx_fills_every_checksum(outer_v6, inner_v6, l4, knobs):
    f = build(outer_v6=outer_v6, inner_v6=inner_v6, l4=l4, payload=bytes(range(77)), **knobs)
    nv = follow(f.frame)
    prepared, word, supp = transport_nvgre.prepare_checksum(f.frame, nv)
    assert word.IsIPv6 == outer_v6 and word.IsIPv4 == (not outer_v6)
    assert supp.IsEncapsulatedPacket and supp.EncapsulatedPacketOffsetsValid
    assert prepared != f.frame
    assert not nf.scapy_ok(prepared)
    r = tx_checksum(prepared, word, supp)
    assert r.skip is None and r.frame == f.frame and nf.scapy_ok(r.frame, lengths=True)
    assert r.ip_filled == (not outer_v6) and r.inner_ip_filled == (not inner_v6)
    assert (r.tcp_filled, r.udp_filled) == (l4 == "tcp", l4 == "udp")
    assert r.gre_filled == knobs["gre_checksum"]


def test_tx_random_frames_with_options_vlan_and_extension_headers():
    count = 0
    for f in nf.frames(11, 250):
        nv = follow(f.frame)
        r = tx_checksum(*transport_nvgre.prepare_checksum(f.frame, nv))
        assert r.frame == f.frame and nf.scapy_ok(r.frame), f.desc
        count += 1
    assert count == 250


@pytest.mark.parametrize("inner_v6", [False, True])
def test_tx_inner_udp_checksum_computing_to_zero_goes_out_as_ffff(inner_v6):
    f = build(inner_v6=inner_v6, l4="udp", udp_zero_sum=True, gre_checksum=True,
              payload=bytes(range(40)))
    assert Ether(f.frame)[UDP].chksum == 0xFFFF
    r = tx_checksum(*transport_nvgre.prepare_checksum(f.frame, follow(f.frame)))
    assert Ether(r.frame)[UDP].chksum == 0xFFFF and r.frame == f.frame


@pytest.mark.parametrize("field,delta", [("InnerFrameOffset", 4),
                                         ("TransportIpHeaderRelativeOffset", 4),
                                         ("TcpHeaderRelativeOffset", 4),
                                         ("IsInnerIPv6", 1), ("TcpOptionsPresent", 1)])
def test_tx_offsets_that_disagree_are_not_carried_out(field, delta):
    f = build(payload=b"q" * 20, key=5)
    prepared, word, supp = transport_nvgre.prepare_checksum(f.frame, follow(f.frame))
    bad = supp.replace(**{field: getattr(supp, field) ^ delta})
    r = tx_checksum(prepared, word, bad)
    assert r.skip is TxSkip.ENCAPSULATION_OFFSETS and r.frame == prepared
    assert field in r.detail
    # Offsets not marked valid are not read: the walk decides.
    r = tx_checksum(prepared, word, bad.replace(EncapsulatedPacketOffsetsValid=0))
    assert r.frame == f.frame


def test_tx_lso_and_checksum_tcp_header_offset_are_not_read():
    f = build(payload=b"q" * 20)
    prepared, word, supp = transport_nvgre.prepare_checksum(f.frame, follow(f.frame))
    for offset in (0, 34, 1023):
        assert tx_checksum(prepared, word.replace(TcpHeaderOffset=offset), supp).frame == \
            f.frame


def test_tx_l4_request_must_name_the_inner_protocol():
    f = build(l4="udp", payload=b"q" * 20)
    prepared, word, supp = transport_nvgre.prepare_checksum(f.frame, follow(f.frame))
    r = tx_checksum(prepared, word.replace(UdpChecksum=0, TcpChecksum=1), supp)
    assert r.skip is TxSkip.L4_MISMATCH and r.frame == prepared
    frag = build(l4="frag", payload=b"q" * 20)
    prepared, word, supp = transport_nvgre.prepare_checksum(frag.frame, follow(frag.frame))
    assert not word.TcpChecksum and tx_checksum(prepared, word, supp).frame == frag.frame
    r = tx_checksum(prepared, word.replace(TcpChecksum=1), supp)
    assert r.skip is TxSkip.FRAGMENT


def _outer_only(frame: bytes, gre_checksum: bool
                ) -> tuple[bytes, ChecksumTx, SendSupplemental]:
    """``frame`` (IPv4 in IPv4, no options, no tags) with its outer IPv4 checksum and inner
    TCP checksum spoiled, and an encapsulated request for everything."""
    out = bytearray(frame)
    struct.pack_into("!H", out, 14 + 10, 0)
    inner_tcp = 14 + 20 + 4 + 4 * gre_checksum + 14 + 20
    out[inner_tcp + 16] ^= 0x5A
    word = ChecksumTx(IsIPv4=1, IpHeaderChecksum=1, TcpChecksum=1)
    return bytes(out), word, SendSupplemental(IsEncapsulatedPacket=1)


@pytest.mark.parametrize("case", ["proto", "version", "flags", "encap_off"])
def test_tx_outer_headers_only_for_gre_that_is_not_nvgre_or_offload_off(case):
    knobs = {"proto": dict(gre_proto=0x88BE), "version": dict(gre_version=1),
             "flags": dict(gre_flags=2), "encap_off": {}}[case]
    f = build(payload=b"w" * 30, gre_checksum=case != "version", **knobs)
    spoiled, word, supp = _outer_only(f.frame, case != "version")
    r = tx_checksum(spoiled, word, supp, encap=case != "encap_off")
    assert r.ip_filled and not (r.tcp_filled or r.inner_ip_filled or r.gre_filled)
    assert changed(r.frame, spoiled) <= {24, 25}         # the outer IPv4 checksum only
    assert r.frame[24:26] == f.frame[24:26]
    assert r.detail.startswith("outer headers only")


# --- receive --------------------------------------------------------------------------------

def expected_rx(f) -> ChecksumRx:
    flags = {}
    if not (f.outer_v6 and f.inner_v6):
        flags["IpChecksumSucceeded"] = 1
    if f.l4 == "tcp":
        flags["TcpChecksumSucceeded"] = 1
    elif f.l4 == "udp":
        flags["UdpChecksumSucceeded"] = 1
    return ChecksumRx(**flags)


@pytest.mark.parametrize("knobs", GRE_KNOBS[::3], ids=str)
@pytest.mark.parametrize("l4", nf.L4_KINDS)
@pytest.mark.parametrize("outer_v6,inner_v6", COMBOS)
def test_rx_good_frames(outer_v6, inner_v6, l4, knobs):
    f = build(outer_v6=outer_v6, inner_v6=inner_v6, l4=l4, payload=b"r" * 41, **knobs)
    assert rx_validate(f.frame, enables=RX_ON) == expected_rx(f)
    outer_only = ChecksumRx(IpChecksumSucceeded=int(not outer_v6))
    assert rx_validate(f.frame, enables=RX_OFF) == outer_only
    assert rx_validate(f.frame, enables=ChecksumEnables(encap=True, rx_active=False)) == \
        ChecksumRx()


def test_rx_random_frames():
    for f in nf.frames(12, 200):
        assert rx_validate(f.frame, enables=RX_ON) == expected_rx(f), f.desc


def _spoil(frame: bytes, which: str) -> bytes:
    nv = follow(frame)
    out = bytearray(frame)
    at = {"outer_ip": lambda: nv.outer.l3_offset + 10, "inner_ip": lambda: nv.inner.l3_offset + 10,
          "inner_l4": lambda: nv.inner.l4_offset + (16 if nv.inner.is_tcp else 6),
          "gre": lambda: nv.gre_checksum_offset, "payload": lambda: len(frame) - 1}[which]()
    out[at] ^= 0x21
    return bytes(out)


@pytest.mark.parametrize("l4", ["tcp", "udp"])
@pytest.mark.parametrize("outer_v6,inner_v6", COMBOS)
@pytest.mark.parametrize("which", ["outer_ip", "inner_ip", "inner_l4", "gre", "payload"])
def test_rx_each_checksum_broken_in_turn(which, outer_v6, inner_v6, l4):
    f = build(outer_v6=outer_v6, inner_v6=inner_v6, l4=l4, gre_checksum=True, key=9,
              payload=b"s" * 50)
    if (which == "outer_ip" and outer_v6) or (which == "inner_ip" and inner_v6):
        pytest.skip("IPv6 has no header checksum")
    got = rx_validate(_spoil(f.frame, which), enables=RX_ON).to_dict()
    want = expected_rx(f).to_dict()
    kind = "Tcp" if l4 == "tcp" else "Udp"
    if which in ("outer_ip", "inner_ip"):
        want["IpChecksumSucceeded"], want["IpChecksumFailed"] = 0, 1
    elif which in ("inner_l4", "payload"):
        want[f"{kind}ChecksumSucceeded"], want[f"{kind}ChecksumFailed"] = 0, 1
    assert got == want                         # "gre": not validated, nothing changes


def test_rx_bad_inner_ipv4_was_reported_succeeded_with_the_offload_off_only():
    f = build(payload=b"t" * 10)
    bad = _spoil(f.frame, "inner_ip")
    assert rx_validate(bad, enables=RX_OFF) == ChecksumRx(IpChecksumSucceeded=1)   # outer only
    assert rx_validate(bad, enables=RX_ON) == ChecksumRx(IpChecksumFailed=1,
                                                         TcpChecksumSucceeded=1)


@pytest.mark.parametrize("inner_v6", [False, True])
def test_rx_inner_udp_checksum_zero(inner_v6):
    f = build(inner_v6=inner_v6, l4="udp", payload=b"u" * 12)
    out = bytearray(f.frame)
    nv = follow(f.frame)
    struct.pack_into("!H", out, nv.inner.l4_offset + 6, 0)
    got = rx_validate(bytes(out), enables=RX_ON)
    assert got == (ChecksumRx(IpChecksumSucceeded=1, UdpChecksumFailed=1) if inner_v6
                   else ChecksumRx(IpChecksumSucceeded=1))


def test_rx_inner_checks_follow_the_inner_version_enables():
    f = build(inner_v6=True, payload=b"v" * 12)
    assert rx_validate(f.frame, enables=dataclasses.replace(RX_ON, rx_tcp_ipv6=False)) == \
        ChecksumRx(IpChecksumSucceeded=1)
    assert rx_validate(f.frame, enables=dataclasses.replace(RX_ON, rx_ipv4_checksum=False)) \
        == ChecksumRx(TcpChecksumSucceeded=1)


@pytest.mark.parametrize("knobs", [dict(gre_proto=0x0800), dict(gre_version=1),
                                   dict(gre_flags=4)], ids=str)
def test_rx_gre_that_is_not_nvgre_outer_verdict_only(knobs):
    f = build(payload=b"x" * 20, **knobs)
    assert rx_validate(f.frame, enables=RX_ON) == ChecksumRx(IpChecksumSucceeded=1)
    assert rx_validate(_spoil(build(payload=b"x" * 20).frame, "outer_ip")[:14] +
                       f.frame[14:], enables=RX_ON) == ChecksumRx(IpChecksumSucceeded=1)
    bad_outer = bytearray(f.frame)
    bad_outer[24] ^= 1
    assert rx_validate(bytes(bad_outer), enables=RX_ON) == ChecksumRx(IpChecksumFailed=1)


# --- LSOv2 over NVGRE ------------------------------------------------------------------------

def large(f, mss):
    nv = follow(f.frame)
    frame, word, csum, supp = transport_nvgre.prepare_large_send(f.frame, nv, mss)
    return frame, word, supp


def ids(id0, count):
    return [lso.ip_id(id0, k, "ndis") for k in range(count)]


def check_segments(f, segments, mss):
    """Everything about the segments of ``f``, by the test's own arithmetic and scapy."""
    payload = f.payload
    count = max(1, -(-len(payload) // mss))
    assert len(segments) == count, f.desc
    got = b""
    outer_cls = IPv6 if f.outer_v6 else IP
    inner_cls = IPv6 if f.inner_v6 else IP
    src = Ether(f.frame)
    for k, seg in enumerate(segments):
        assert nf.scapy_ok(seg, lengths=True), (f.desc, k)
        pkt = Ether(seg)
        tcp = pkt[TCP]
        chunk = bytes(tcp.payload)
        assert len(chunk) == (mss if k < count - 1 else len(payload) - mss * (count - 1))
        got += chunk
        assert tcp.seq == (src[TCP].seq + k * mss) & 0xFFFFFFFF
        flags = int(src[TCP].flags)
        want = flags & ~(FIN | PSH | CWR)
        want |= (flags & CWR) if k == 0 else 0
        want |= (flags & (FIN | PSH)) if k == count - 1 else 0
        assert int(tcp.flags) == want
        assert tcp.options == src[TCP].options
        gre = pkt[GRE]
        if f.seq is not None:
            assert gre.sequence_number == (f.seq + k) & 0xFFFFFFFF
        if f.key is not None:
            assert gre.key == f.key
        layers = [x for x in pkt.layers() if x in (IP, IPv6)]
        assert layers == [outer_cls, inner_cls]
        for index, (cls, id0) in enumerate(((outer_cls, None), (inner_cls, None))):
            mine, theirs = pkt.getlayer(cls, nb=1 + (index == 1 and cls is outer_cls)), \
                src.getlayer(cls, nb=1 + (index == 1 and cls is outer_cls))
            if cls is IP:
                assert mine.id == ids(theirs.id, count)[k]
                assert mine.options == theirs.options
    assert got == payload


@pytest.mark.parametrize("knobs", GRE_KNOBS, ids=str)
@pytest.mark.parametrize("outer_v6,inner_v6", COMBOS)
def test_lso_segments(outer_v6, inner_v6, knobs):
    f = build(outer_v6=outer_v6, inner_v6=inner_v6, payload=bytes(range(256)) * 17,
              flags=ACK | PSH | FIN | CWR | ECE, vlan=True,
              outer_ext=(("hbh", 8), ("dst", 16)) if outer_v6 else (),
              inner_ext=(("hbh", 8), ("dst", 8)) if inner_v6 else (),
              outer_ip_options=() if outer_v6 else (nf.IPOption_NOP(),) * 4,
              inner_ip_options=() if inner_v6 else (nf.IPOption_Router_Alert(),),
              tcp_options=(("NOP", None), ("NOP", None), ("Timestamp", (5, 6))), **knobs)
    frame, word, supp = large(f, 1000)
    result = segment(frame, word, BIG, supplemental=supp)
    assert result.sent, result.detail
    assert result.completion.LsoComplete == 1 << 30
    check_segments(f, result.segments, 1000)
    assert transport_nvgre.segment_in_software(f.frame, follow(f.frame), 1000) == \
        list(result.segments)


def test_lso_random_sends():
    sends = 0
    for f in nf.frames(21, 120, l4="tcp", max_payload=6000):
        mss = 1 + (len(f.payload) * 7 + 13) % 1400
        if len(f.payload) <= mss:
            continue
        frame, word, supp = large(f, mss)
        result = segment(frame, word, BIG, supplemental=supp)
        assert result.sent, (f.desc, result.detail)
        check_segments(f, result.segments, mss)
        sends += 1
    assert sends > 60


@pytest.mark.parametrize("mode", ["ndis", "linux"])
def test_lso_ids_wrap_on_both_headers_and_gre_sequence_wraps(mode):
    f = build(outer_id=0x7FFE, inner_id=0xFFFE, seq=0xFFFFFFFE, key=77, gre_checksum=True,
              payload=b"p" * 4000)
    frame, word, supp = large(f, 1000)
    result = segment(frame, word, dataclasses.replace(BIG, id_mode=mode), supplemental=supp)
    assert result.segments == segment(frame, word, BIG, supplemental=supp, id_mode=mode).segments
    pkts = [Ether(s) for s in result.segments]
    outer = [p[IP].id for p in pkts]
    inner = [p.getlayer(IP, nb=2).id for p in pkts]
    # DESIGN 3 "NVGRE": both IDs advance by the "ndis" rule, whatever the configured mode.
    assert outer == [0x7FFE, 0x7FFF, 0x0000, 0x0001]
    assert inner == [0xFFFE, 0xFFFF, 0x8000, 0x8001]
    assert [p[GRE].sequence_number for p in pkts] == [0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
    check_segments(f, result.segments, 1000)


def test_lso_tcp_header_offset_of_the_lso_word_is_not_read():
    f = build(payload=b"o" * 3000)
    frame, word, supp = large(f, 1000)
    results = {segment(frame, LsoV2Transmit.from_int(word).replace(TcpHeaderOffset=x).to_int(),
                       BIG, supplemental=supp).segments for x in (0, 17, 1023)}
    assert len(results) == 1 and len(next(iter(results))) == 3


def _drop(f, status, *, mss=1000, limits=BIG, word_change=None, supp_change=None,
          frame_change=None):
    frame, word, supp = large(f, mss)
    if word_change:
        word = word_change(word)
    if supp_change:
        supp = supp_change(supp)
    if frame_change:
        frame = frame_change(bytearray(frame))
    result = segment(bytes(frame), word, limits, supplemental=supp)
    assert result.status is status and not result.segments, result.detail
    return result


def test_lso_drops():
    f = build(payload=b"d" * 3000)
    v4 = build(payload=b"d" * 3000, outer_v6=True)      # inner IPv4 behind outer IPv6
    _drop(f, TxStatus.LSO_DISABLED, limits=dataclasses.replace(BIG, encap=False))
    _drop(v4, TxStatus.LSO_DISABLED, limits=dataclasses.replace(BIG, lso_v2_ipv4=False))
    assert segment(*large(v4, 1000)[:2], dataclasses.replace(BIG, lso_v2_ipv6=False),
                   supplemental=large(v4, 1000)[2]).sent      # the inner version gates it
    r = _drop(f, TxStatus.LSO_NOT_NVGRE,
              word_change=lambda w: LsoV1Transmit(MSS=1000, TcpHeaderOffset=70).to_int())
    assert r.completion.LsoComplete == 0                         # LsoV1TransmitComplete, 0
    _drop(f, TxStatus.LSO_BAD_MSS, word_change=lambda w: w & ~0xFFFFF)
    _drop(f, TxStatus.LSO_NOT_TCP, word_change=lambda w: w | (1 << 31))   # IPVersion 6
    _drop(f, TxStatus.LSO_BAD_HEADER_OFFSET,
          supp_change=lambda s: s.replace(InnerFrameOffset=s.InnerFrameOffset + 2))
    _drop(f, TxStatus.LSO_HEADERS_TOO_LONG,
          limits=dataclasses.replace(BIG, max_encapsulated_header_bytes=91))
    _drop(f, TxStatus.LSO_TOO_LARGE, limits=dataclasses.replace(BIG, v2_ipv4_max_offload_size=2999))
    _drop(f, TxStatus.LSO_TOO_FEW_SEGMENTS,
          limits=dataclasses.replace(BIG, v2_ipv4_min_segment_count=4))
    _drop(f, TxStatus.LSO_BAD_MSS, mss=70000, frame_change=lambda b: b + bytes(70000))
    _drop(f, TxStatus.LSO_BAD_MSS, limits=dataclasses.replace(BIG, max_segment_bytes=1000))
    nv = follow(f.frame)
    for at, name in ((nv.outer.l3_offset + 3, "outer"), (nv.inner.l3_offset + 3, "inner")):
        r = _drop(f, TxStatus.LSO_GUARANTEE, frame_change=lambda b, at=at: b.__setitem__(
            at, 1) or b)
        assert f"{name} IPv4 Total Length" in r.detail
    l4 = nv.inner.l4_offset
    _drop(f, TxStatus.LSO_GUARANTEE,
          frame_change=lambda b: b.__setitem__(l4 + 13, ACK | SYN) or b)
    _drop(f, TxStatus.LSO_GUARANTEE, frame_change=lambda b: b.__setitem__(l4 + 19, 1) or b)
    _drop(f, TxStatus.LSO_GUARANTEE, frame_change=lambda b: b.__setitem__(l4 + 16, 0x77) or b)


@pytest.mark.parametrize("knobs,status", [
    (dict(gre_proto=0x0800), TxStatus.LSO_NOT_NVGRE),
    (dict(gre_version=1), TxStatus.LSO_NOT_NVGRE),
    (dict(gre_flags=1), TxStatus.LSO_NOT_NVGRE),
    (dict(l4="udp"), TxStatus.LSO_NOT_TCP),
    (dict(l4="frag"), TxStatus.LSO_GUARANTEE),
], ids=str)
def test_lso_drops_what_is_not_an_inner_tcp_send(knobs, status):
    f = build(payload=b"n" * 3000, **knobs)
    word = LsoV2Transmit(MSS=1000, Type=1).to_int()
    supp = SendSupplemental(IsEncapsulatedPacket=1)
    frame = bytearray(f.frame)
    struct.pack_into("!H", frame, 16, 0)
    result = segment(bytes(frame), word, BIG, supplemental=supp)
    assert result.status is status, result.detail


def test_checksum_module_names_are_exported():
    assert {"fill_encapsulated", "fill_l4", "fill_ipv4_header"} <= set(checksum.__all__)
