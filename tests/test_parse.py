"""The header parser (model/parse.py) against frames whose layout the generator knows."""

import random
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP, in4_pseudoheader
from scapy.layers.inet6 import in6_pseudoheader
from scapy.layers.l2 import Ether
from scapy.utils import checksum as scapy_checksum

from nicoffload.model.parse import (MAX_EXT_END, MAX_PARSE_BYTES, Headers, ParseError,
                                    parse, pseudo_header_sum)

from nicoffload.tb import traffic

LAYOUT_KEYS = ("l3_offset", "ip_version", "ip_header_len", "ip_end", "l4_offset", "l4_proto",
               "l4_header_len", "l4_end", "is_fragment", "vlan_tags", "llc_snap")


def assert_layout(frame: traffic.Frame, h: Headers) -> None:
    assert h.error is None, f"{frame.desc}: {h.error}"
    for key in LAYOUT_KEYS:
        assert getattr(h, key) == frame.layout[key], (
            f"{frame.desc}: {key} = {getattr(h, key)}, generator built {frame.layout[key]}")


# --- every L2 x L3 x L4 mix ---------------------------------------------------------------

@pytest.mark.parametrize("l2", traffic.L2_KINDS)
@pytest.mark.parametrize("kind", traffic.GOOD_KINDS + ("frag4", "frag6", "icmp4", "icmp6"))
def test_every_mix(l2, kind):
    rng = random.Random(f"{l2}-{kind}")
    for _ in range(15):
        frame = traffic.random_frame(rng, kind, l2=l2)
        assert_layout(frame, parse(frame.data))


def test_random_layouts():
    rng = random.Random(1234)
    for _ in range(1500):
        frame = traffic.random_frame(rng)
        h = parse(frame.data)
        if frame.expect_error:
            assert h.error_code is not None and h.error_code.name == frame.expect_error, (
                f"{frame.desc}: {h.error}")
        else:
            assert_layout(frame, h)


@pytest.mark.parametrize("l2", traffic.L2_KINDS)
def test_nonip(l2):
    rng = random.Random(l2)
    for _ in range(10):
        frame = traffic.random_frame(rng, "nonip", l2=l2)
        h = parse(frame.data)
        assert h.error_code is ParseError.NOT_IP
        assert h.l3_offset is None and h.ethertype not in (0x0800, 0x86DD)


# --- each failure reason ------------------------------------------------------------------

@pytest.mark.parametrize("case", traffic.MALFORMED_CASES)
def test_failure_reasons(case):
    rng = random.Random(case)
    for _ in range(20):
        frame = traffic.malformed_frame(rng, case)
        h = parse(frame.data)
        assert h.error_code is not None, f"{frame.desc}: parsed {h}"
        assert h.error_code.name == frame.expect_error, f"{frame.desc}: {h.error}"
        assert h.error.startswith(h.error_code.name.lower() + ": ")
        assert not h.ok and not h.is_tcp and not h.is_udp


def test_every_code_is_reachable():
    rng = random.Random(7)
    seen = {traffic.malformed_frame(rng, case).expect_error for case in traffic.MALFORMED_CASES}
    seen.add(traffic.random_frame(rng, "nonip").expect_error)
    assert seen == {code.name for code in ParseError}


def test_partial_fields_survive_an_l4_error():
    frame = traffic.malformed_frame(random.Random(3), "tcp_bad_offset")
    h = parse(frame.data)
    assert h.error_code is ParseError.BAD_TCP_OFFSET
    assert h.l3_offset == 14 and h.ip_end is not None and h.l4_proto == 6
    assert h.l4_offset is not None and h.l4_end is None


# --- hand-built corner cases --------------------------------------------------------------

MAC = bytes(12)


def eth(l3: bytes, ethertype: int = 0x0800) -> bytes:
    return MAC + ethertype.to_bytes(2, "big") + l3


def ipv6(nh: int, body: bytes, plen: int | None = None) -> bytes:
    plen = len(body) if plen is None else plen
    return (bytes([0x60, 0, 0, 0]) + plen.to_bytes(2, "big") + bytes([nh, 64])
            + bytes(range(1, 17)) + bytes(range(101, 117)) + body)


def ext(nh: int, length: int, fill: int = 0) -> bytes:
    """A generic-format extension header of ``length`` bytes."""
    return bytes([nh, length // 8 - 1]) + bytes([fill]) * (length - 2)


def tcp_header(doff: int = 5) -> bytes:
    return struct.pack("!HHIIBBHHH", 1, 2, 3, 4, doff << 4, 0x10, 5, 0, 0) + bytes(
        4 * doff - 20)


def test_ethernet_padding_is_not_part_of_the_datagram():
    l3 = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / UDP() / b"hi")
    frame = eth(l3) + b"\xee" * 20
    h = parse(frame)
    assert h.ok and h.ip_end == 14 + len(l3) == h.l4_end and len(frame) > h.ip_end


def test_udp_length_shorter_than_ip_payload():
    l3 = bytearray(bytes(IP() / UDP() / (b"x" * 20)))
    l3[24:26] = (8 + 5).to_bytes(2, "big")     # UDP Length 13, IP payload 28
    h = parse(eth(bytes(l3)))
    assert h.ok and h.l4_end == 14 + 20 + 13 and h.ip_end == 14 + 48 and h.l4_length == 13


def test_ipv4_first_fragment_is_a_fragment():
    l3 = bytes(IP(flags="MF", frag=0) / TCP() / (b"x" * 40))
    h = parse(eth(l3))
    assert h.ok and h.is_fragment and h.l4_proto == 6 and h.l4_header_len == 0
    assert not h.is_tcp and h.l4_end is None


def test_ipv4_offset_only_fragment():
    l3 = bytes(IP(frag=3, proto=17) / (b"x" * 40))
    h = parse(eth(l3))
    assert h.ok and h.is_fragment and h.l4_proto == 17 and h.l4_offset == 34


def test_ipv6_atomic_fragment_is_followed():
    frag = bytes([6, 0, 0, 0]) + (99).to_bytes(4, "big")
    h = parse(eth(ipv6(44, frag + tcp_header()), 0x86DD))
    assert h.ok and not h.is_fragment and h.is_tcp and h.ip_header_len == 48


@pytest.mark.parametrize("offset,m", [(0, 1), (5, 0), (5, 1)])
def test_ipv6_fragment(offset, m):
    frag = bytes([6, 0]) + ((offset << 3) | m).to_bytes(2, "big") + (99).to_bytes(4, "big")
    h = parse(eth(ipv6(60, ext(44, 8) + frag + tcp_header()), 0x86DD))
    assert h.ok and h.is_fragment and h.l4_proto == 6 and h.l4_offset == 14 + 56
    assert h.l4_header_len == 0 and h.l4_end is None


@pytest.mark.parametrize("nh", [135, 139, 140, 60])
def test_generic_extension_headers_are_skipped(nh):
    h = parse(eth(ipv6(nh, ext(17, 24) + bytes(UDP(len=8))), 0x86DD))
    assert h.ok and h.is_udp and h.ip_header_len == 64


def test_ah_length_in_four_octet_units():
    ah = bytes([17, 4, 0, 0]) + bytes(20)                     # (4 + 2) * 4 = 24 bytes
    h = parse(eth(ipv6(51, ah + bytes(UDP(len=8))), 0x86DD))
    assert h.ok and h.is_udp and h.ip_header_len == 64
    ah12 = bytes([6, 1, 0, 0]) + bytes(8)                      # (1 + 2) * 4 = 12 bytes
    h = parse(eth(bytes(IP(proto=51) / ah12)))              # IPv4: AH is just a protocol
    assert h.ok and h.l4_proto == 51 and h.l4_offset == 34 and h.l4_header_len == 0


def test_ipv6_no_next_header_with_zero_payload():
    h = parse(eth(ipv6(59, b""), 0x86DD) + bytes(6))
    assert h.ok and h.ip_end == 54 and h.l4_proto == 59 and h.l4_offset == 54


@pytest.mark.parametrize("rtype", [2, 4])
def test_routing_final_destination(rtype):
    final = bytes(range(200, 216))
    rh = bytes([6, 2, rtype, 1, 0, 0, 0, 0]) + final
    frame = eth(ipv6(43, rh + tcp_header()), 0x86DD)
    h = parse(frame)
    assert h.ok and h.pseudo_dst_offset == 14 + 40 + 8
    assert frame[h.pseudo_dst_offset:h.pseudo_dst_offset + 16] == final


def test_routing_with_no_segments_left_uses_the_header_destination():
    rh = bytes([6, 2, 0, 0, 0, 0, 0, 0]) + bytes(16)
    h = parse(eth(ipv6(43, rh + tcp_header()), 0x86DD))
    assert h.ok and h.pseudo_dst_offset == 14 + 24


def test_routing_too_short_for_an_address():
    rh = bytes([6, 0, 2, 1, 0, 0, 0, 0])                  # type 2, SL 1, no address
    h = parse(eth(ipv6(43, rh + tcp_header()), 0x86DD))
    assert h.error_code is ParseError.EXT_UNFOLLOWABLE


def test_extension_chain_at_the_limit():
    # Behind a plain Ethernet header the chain starts at byte 54: 192 bytes end at 246, the
    # last end within MAX_EXT_END (248); a UDP header behind them ends at 254.
    udp = (1).to_bytes(2, "big") + (2).to_bytes(2, "big") + (12).to_bytes(2, "big") + bytes(6)
    chain = ext(60, 64) + ext(17, 192 - 64)
    h = parse(eth(ipv6(0, chain + udp), 0x86DD))
    assert h.ok and h.ip_header_len == 40 + 192 and h.l4_offset + 8 <= MAX_PARSE_BYTES
    h = parse(eth(ipv6(0, ext(60, 64) + ext(6, 192 - 64) + tcp_header()), 0x86DD))
    assert h.error_code is ParseError.PAST_LIMIT            # a TCP header there ends at 266
    chain = ext(60, 64) + ext(17, 200 - 64)                 # ends at 254
    h = parse(eth(ipv6(0, chain + udp), 0x86DD))
    assert h.error_code is ParseError.EXT_TOO_LONG
    assert MAX_EXT_END == MAX_PARSE_BYTES - 8 == 248


def test_extension_chains_longer_than_128_bytes_are_followed():
    # The 128 bytes of combining-types-of-task-offloads.md are what the NIC must handle at
    # least (DESIGN 3 segments every send whose headers end within 256 bytes).
    h = parse(eth(ipv6(0, ext(60, 64) + ext(6, 96) + tcp_header()), 0x86DD))
    assert h.ok and h.ip_header_len == 40 + 160 and h.l4_offset == 14 + 200


def test_parse_limit_exactly():
    # QinQ + SNAP = 30 bytes of L2, IPv6 + 128 bytes of extensions = 168: TCP at 198.
    def frame(doff):
        l3 = ipv6(0, ext(60, 64) + ext(6, 64) + tcp_header(doff))
        l2 = (MAC + bytes.fromhex("88a80001 81000002") + (8 + len(l3)).to_bytes(2, "big")
              + bytes.fromhex("aaaa03 000000 86dd"))
        return l2 + l3
    h = parse(frame(14))                                   # ends at 198 + 56 = 254
    assert h.ok and h.l4_offset == 198 and h.l4_offset + h.l4_header_len <= MAX_PARSE_BYTES
    assert parse(frame(15)).error_code is ParseError.PAST_LIMIT    # ends at 258
    assert parse(frame(15), max_parse_bytes=258).ok


def test_vlan_tag_orders():
    l3 = bytes(IP() / TCP())
    for tpids in ([0x8100], [0x88A8], [0x88A8, 0x8100], [0x8100, 0x8100], [0x8100, 0x88A8]):
        frame = MAC + b"".join(t.to_bytes(2, "big") + b"\x00\x07" for t in tpids) + (
            b"\x08\x00" + l3)
        h = parse(frame)
        assert h.ok and h.vlan_tags == len(tpids) and h.l3_offset == 14 + 4 * len(tpids)


def test_snap_802_1h_oui():
    l3 = bytes(IP() / UDP())
    frame = MAC + (8 + len(l3)).to_bytes(2, "big") + bytes.fromhex("aaaa03 0000f8 0800") + l3
    h = parse(frame)
    assert h.ok and h.llc_snap and h.l3_offset == 22


@pytest.mark.parametrize("cut", [14, 15, 16, 17])
def test_runt_and_l2_boundaries(cut):
    frame = bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02") / IP() / TCP())
    assert parse(frame[:13]).error_code is ParseError.RUNT
    assert parse(frame[:cut]).error_code is ParseError.L3_TRUNCATED


# --- pseudo-header sums against scapy's pseudo-headers ------------------------------------

def test_pseudo_header_sum_matches_scapy():
    rng = random.Random(99)
    checked = 0
    for _ in range(400):
        frame = traffic.random_frame(rng, rng.choice(traffic.GOOD_KINDS), l2="eth")
        if "AH" in frame.desc:     # scapy does not decode what follows an IPv6 AH header
            continue
        h = parse(frame.data)
        pkt = Ether(frame.data)
        l4 = pkt[TCP] if h.l4_proto == 6 else pkt[UDP]
        if h.ip_version == 4:
            ph = in4_pseudoheader(h.l4_proto, pkt[IP], h.l4_length)
        else:
            ph = bytes(in6_pseudoheader(h.l4_proto, l4, h.l4_length))
        expected = ~scapy_checksum(ph) & 0xFFFF
        assert pseudo_header_sum(frame.data, h) == expected, frame.desc
        checked += 1
    assert checked > 350


def test_pseudo_header_sum_without_length():
    frame = eth(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / b"abcd"))
    h = parse(frame)
    # 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 (+ 24 with the length)
    assert pseudo_header_sum(frame, h, 0) == 0x1409
    assert pseudo_header_sum(frame, h) == 0x1409 + 24
