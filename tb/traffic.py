"""Constrained-random Ethernet frames for tests and testbenches, built with scapy.

Deterministic: every choice comes from the ``random.Random`` passed in, so a seed names a
frame sequence. scapy computes every checksum and length in the good frames, which makes
them an independent reference for the golden model; the model itself never uses this module.

``random_frame(rng, kind=None)`` returns a ``Frame``: the bytes, a one-line description, the
kind, and what the generator knows about its layout (``layout``: the offsets a parser should
find) or, for malformed frames, the ``ParseError`` name a parser should report
(``expect_error``). ``corrupt_one_bit`` flips a bit inside a byte range.

Kinds
-----
``tcp4 udp4 tcp6 udp6``
    Ethernet II / 802.1Q / QinQ (0x88A8+0x8100 or 0x8100+0x8100) / LLC-SNAP (also tagged),
    IPv4 with random options (NOP, EOL, Record Route, Timestamp, Router Alert) or IPv6 with a
    random extension chain (Hop-by-Hop, Destination Options, Routing type 0 and 2 and SRH,
    atomic Fragment, AH) within 128 bytes, now and then a long Destination Options header
    after them (chains up to 186 bytes: the headers still end within 256), TCP with random options (MSS, WS, SACK-permitted,
    SACK blocks, timestamps, NOP) or UDP; payloads 0..9000 bytes (mostly small); Ethernet
    padding (zeros or junk) for short frames, sometimes a trailer; adversarial values
    (all-ones or zero addresses and ports, 0xFF payloads whose sums fold many times, payloads
    tuned so the L4 checksum is zero).
``frag4 frag6``
    One fragment (first, middle or last) of a larger TCP/UDP datagram.
``icmp4 icmp6``
    IP with an upper layer the checksum offloads do not cover.
``nonip``
    ARP or another EtherType.
``malformed``
    Runts, truncated headers, lying length fields, bad version/IHL/data offset, ESP, unknown
    or misplaced extension headers, chains that end past byte 248, headers past byte 256.
"""

from __future__ import annotations

import dataclasses
import random

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_RR, \
    IPOption_Router_Alert, IPOption_Timestamp, fragment
from scapy.layers.inet6 import (IPv6, ICMPv6EchoRequest, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                IPv6ExtHdrSegmentRouting, HBHOptUnknown, PadN, RouterAlert,
                                fragment6)
from scapy.layers.l2 import ARP, LLC, SNAP, Dot1Q, Dot3, Ether
from scapy.packet import Raw

from nicoffload.model import parse as model_parse

MAX_PARSE_BYTES = model_parse.MAX_PARSE_BYTES
#: Two VLAN tags and LLC/SNAP: the longest L2 header the parser follows.
_LONGEST_L2 = (model_parse.ETH_HEADER_LEN + model_parse.MAX_VLAN_TAGS * model_parse.VLAN_TAG_LEN
               + model_parse.LLC_SNAP_LEN)

GOOD_KINDS = ("tcp4", "udp4", "tcp6", "udp6")
OTHER_KINDS = ("frag4", "frag6", "icmp4", "icmp6", "nonip")
KINDS = GOOD_KINDS + OTHER_KINDS + ("malformed",)
L2_KINDS = ("eth", "vlan", "qinq", "vlan2", "snap", "vlan_snap", "qinq_snap")

MIN_FRAME = 60          # Ethernet minimum without FCS
PARSE_WINDOW = 256      # the NIC follows headers that end within the first 256 bytes
MAX_PAYLOAD = 9000
SNAP_MAX_L3 = 1500 - 8  # an 802.3 length field must stay <= 1500


@dataclasses.dataclass(frozen=True)
class Frame:
    """One generated frame.

    Attributes
    ----------
    data : bytes
        The frame, no FCS; in good frames every checksum is correct (scapy's).
    desc : str
        What it is, for failure messages.
    kind : str
        One of ``KINDS``.
    layout : dict
        What a parser should find, as the generator built it: ``l3_offset``, ``ip_version``,
        ``ip_header_len``, ``ip_end``, ``l4_offset``, ``l4_proto``, ``l4_header_len`` (0 for
        non-TCP/UDP and fragments), ``l4_end`` (None when no TCP/UDP header), ``is_fragment``,
        ``vlan_tags``, ``llc_snap``. Empty for non-IP and malformed frames.
    expect_error : str or None
        For malformed and non-IP frames, the ``ParseError`` name a parser should report.
    """

    data: bytes
    desc: str
    kind: str
    layout: dict = dataclasses.field(default_factory=dict)
    expect_error: str | None = None


# --- small random pieces ------------------------------------------------------------------

def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


def _ipv4(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.08:
        return "255.255.255.255"
    if r < 0.12:
        return "0.0.0.0"
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def _ipv6(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.08:
        return "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    if r < 0.12:
        return "::"
    return ":".join(f"{rng.randrange(65536):x}" for _ in range(8))


def _port(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.1:
        return 0xFFFF
    if r < 0.13:
        return 0
    return rng.randrange(65536)


def payload_size(rng: random.Random, limit: int = MAX_PAYLOAD) -> int:
    """A payload length in 0..limit: mostly small, some up to jumbo size."""
    r = rng.random()
    if r < 0.40:
        hi = 64
    elif r < 0.70:
        hi = 600
    elif r < 0.90:
        hi = 1500
    else:
        hi = MAX_PAYLOAD
    return rng.randint(0, max(0, min(hi, limit)))


def _payload(rng: random.Random, size: int) -> bytes:
    r = rng.random()
    if r < 0.12:
        return b"\xff" * size
    if r < 0.20:
        return bytes(size)
    if r < 0.28:
        pattern = bytes(rng.randrange(256) for _ in range(rng.randint(1, 7)))
        return (pattern * (size // len(pattern) + 1))[:size]
    return rng.randbytes(size)


# --- L2 -----------------------------------------------------------------------------------

def _l2_wrap(rng: random.Random, l2: str, l3: bytes, ethertype: int) -> tuple[bytes, dict]:
    """Put an L2 header of kind ``l2`` in front of ``l3`` (an EtherType payload)."""
    dst, src = _mac(rng), _mac(rng)
    tags = {"eth": [], "vlan": [0x8100], "qinq": [0x88A8, 0x8100], "vlan2": [0x8100, 0x8100],
            "snap": [], "vlan_snap": [0x8100], "qinq_snap": [0x88A8, 0x8100]}[l2]
    snap = l2.endswith("snap")
    inner_type = (8 + len(l3)) if snap else ethertype
    if snap and inner_type > 1500:
        raise ValueError(f"LLC/SNAP payload of {len(l3)} bytes does not fit an 802.3 length")
    types = tags + [inner_type]
    if snap and not tags:
        pkt = Dot3(dst=dst, src=src, len=inner_type)
    else:
        pkt = Ether(dst=dst, src=src, type=types[0])
        for i in range(len(tags)):
            pkt = pkt / Dot1Q(prio=rng.randrange(8), dei=rng.randrange(2),
                              vlan=rng.randrange(4096), type=types[i + 1])
    if snap:
        oui = 0x0000F8 if rng.random() < 0.2 else 0
        pkt = pkt / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=oui, code=ethertype)
    head = bytes(pkt)
    return head + l3, {"l3_offset": len(head), "vlan_tags": len(tags), "llc_snap": snap}


def _pad(rng: random.Random, frame: bytes) -> bytes:
    """Ethernet padding for short frames (zeros or junk), and now and then a trailer."""
    if len(frame) < MIN_FRAME:
        fill = MIN_FRAME - len(frame)
        frame += bytes(fill) if rng.random() < 0.5 else rng.randbytes(fill)
    elif rng.random() < 0.05:
        frame += rng.randbytes(rng.randint(1, 7))
    return frame


# --- L3 / L4 ------------------------------------------------------------------------------

def _ipv4_options(rng: random.Random) -> list:
    if rng.random() < 0.5:
        return []
    options, used = [], 0
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(5)
        if choice == 0:
            opt = IPOption_NOP()
        elif choice == 1:
            opt = IPOption_RR(routers=[_ipv4(rng) for _ in range(rng.randint(0, 8))])
        elif choice == 2:
            opt = IPOption_Timestamp(flg=1, internet_address=_ipv4(rng),
                                     timestamp=rng.randrange(1 << 32))
        elif choice == 3:
            opt = IPOption_Router_Alert()
        else:
            opt = IPOption_NOP()
        size = len(bytes(opt))
        if used + size > 40:
            break
        options.append(opt)
        used += size
    return options


def _tcp_options(rng: random.Random) -> list:
    if rng.random() < 0.3:
        return []
    options, used = [], 0
    for _ in range(rng.randint(1, 8)):
        choice = rng.randrange(6)
        if choice == 0:
            opt, size = ("MSS", rng.randrange(65536)), 4
        elif choice == 1:
            opt, size = ("WScale", rng.randrange(15)), 3
        elif choice == 2:
            opt, size = ("SAckOK", b""), 2
        elif choice == 3:
            blocks = rng.randint(1, 4)
            opt = ("SAck", tuple(rng.randrange(1 << 32) for _ in range(2 * blocks)))
            size = 2 + 8 * blocks
        elif choice == 4:
            opt, size = ("Timestamp", (rng.randrange(1 << 32), rng.randrange(1 << 32))), 10
        else:
            opt, size = ("NOP", None), 1
        if used + size > 40:
            break
        options.append(opt)
        used += size
    return options


def _l4(rng: random.Random, proto: str, payload: bytes):
    if proto == "tcp":
        return TCP(sport=_port(rng), dport=_port(rng), seq=rng.randrange(1 << 32),
                   ack=rng.randrange(1 << 32), flags=rng.randrange(256),
                   window=rng.randrange(65536),
                   urgptr=rng.randrange(65536) if rng.random() < 0.1 else 0,
                   options=_tcp_options(rng)) / Raw(payload)
    return UDP(sport=_port(rng), dport=_port(rng)) / Raw(payload)


def _ipv6_ext_chain(rng: random.Random) -> tuple[list, int, bool]:
    """scapy extension headers in RFC 8200 order, at most 128 bytes; plus whether to put an
    AH header (added as raw bytes later, since scapy does not thread checksums through AH)."""
    chain, total = [], 0
    add_ah = False

    def opts():
        out = []
        for _ in range(rng.randint(0, 3)):
            r = rng.randrange(3)
            if r == 0:
                out.append(PadN(optdata=bytes(rng.randint(0, 9))))
            elif r == 1:
                out.append(RouterAlert(value=rng.randrange(3)))
            else:   # unknown option whose action bits say "skip"
                out.append(HBHOptUnknown(otype=rng.choice([0x1E, 0x3E, 0x07]),
                                         optdata=rng.randbytes(rng.randint(0, 12))))
        return out

    candidates = []
    if rng.random() < 0.3:
        candidates.append(IPv6ExtHdrHopByHop(options=opts()))
    if rng.random() < 0.25:
        candidates.append(IPv6ExtHdrDestOpt(options=opts()))
    r = rng.random()
    if r < 0.12:
        candidates.append(IPv6ExtHdrRouting(type=0, segleft=0,
                                            addresses=[_ipv6(rng) for _ in range(
                                                rng.randint(0, 3))]))
    elif r < 0.24:
        candidates.append(IPv6ExtHdrRouting(type=2, segleft=rng.randint(0, 1),
                                            addresses=[_ipv6(rng)]))
    elif r < 0.36:
        n = rng.randint(1, 4)
        candidates.append(IPv6ExtHdrSegmentRouting(addresses=[_ipv6(rng) for _ in range(n)],
                                                   segleft=rng.randint(0, n - 1),
                                                   lastentry=n - 1))
    if rng.random() < 0.15:
        candidates.append(IPv6ExtHdrFragment(offset=0, m=0, id=rng.randrange(1 << 32)))
    if rng.random() < 0.2:
        candidates.append(IPv6ExtHdrDestOpt(options=opts()))
    for hdr in candidates:
        size = len(bytes(hdr))
        if total + size > 128:
            continue
        chain.append(hdr)
        total += size
    if rng.random() < 0.08 and total <= 120:     # fill the chain to exactly 128 bytes
        chain.append(IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(128 - total - 4))]))
        total = 128
    if rng.random() < 0.12 and total + 24 <= 128:
        add_ah = True
        total += 24
    return chain, total, add_ah


def _with_ah(ipv6_bytes: bytes, ext_len: int, ah_tail: bytes) -> bytes:
    """Insert an AH header (Next Header, Payload Len, then ``ah_tail``: reserved, SPI,
    sequence, ICV) after the ``ext_len`` bytes of extension headers of a built IPv6 packet,
    fixing the Next Header that pointed at the upper layer and the Payload Length."""
    l4_at = 40 + ext_len
    nh_at, nh, off = 6, ipv6_bytes[6], 40
    while off < l4_at:   # scapy built only generic-format and Fragment headers
        length = 8 if nh == 44 else (ipv6_bytes[off + 1] + 1) * 8
        nh_at, nh, off = off, ipv6_bytes[off], off + length
    ah = bytes([nh, (2 + len(ah_tail)) // 4 - 2]) + ah_tail
    out = bytearray(ipv6_bytes[:l4_at] + ah + ipv6_bytes[l4_at:])
    out[nh_at] = 51
    out[4:6] = (int.from_bytes(out[4:6], "big") + len(ah)).to_bytes(2, "big")
    return bytes(out)


def _force_zero_sum(build, payload: bytearray, hdr_len: int,
                    field_at: int):
    """Tune two payload bytes so the L4 checksum computes to zero.

    ``build(payload) -> bytes`` builds the L3 packet with scapy (checksums computed);
    ``field_at`` is where the L4 checksum field lands in it. The word at an even offset of the
    L4 segment gets the complement of the current checksum added (end-around carry), which
    makes the one's-complement sum all ones, i.e. a checksum of zero.
    """
    pos = 0 if hdr_len % 2 == 0 else 1
    if len(payload) < pos + 2:
        return bytes(payload)
    built = build(bytes(payload))
    csum = int.from_bytes(built[field_at:field_at + 2], "big")
    word = int.from_bytes(payload[pos:pos + 2], "big") + csum
    word = (word & 0xFFFF) + (word >> 16)
    payload[pos:pos + 2] = word.to_bytes(2, "big")
    return bytes(payload)


def _ip_packet(rng: random.Random, version: int, proto: str, limit: int, max_payload: int,
               zero_sum: bool = False) -> tuple[bytes, dict, str]:
    """A complete IPv4/IPv6 TCP/UDP packet (scapy's checksums) of at most ``limit`` bytes,
    and its layout."""
    size = payload_size(rng, max_payload)
    payload = bytearray(_payload(rng, size))
    if version == 4:
        ip = IP(src=_ipv4(rng), dst=_ipv4(rng), id=rng.randrange(65536),
                ttl=rng.randint(1, 255), tos=rng.randrange(256),
                flags="DF" if rng.random() < 0.5 else 0, options=_ipv4_options(rng))
        chain, ext_len, add_ah = [], 0, False
        ip_hlen = len(bytes(ip)) if ip.options else 20
    else:
        ip = IPv6(src=_ipv6(rng), dst=_ipv6(rng), tc=rng.randrange(256),
                  fl=rng.randrange(1 << 20), hlim=rng.randint(1, 255))
        chain, ext_len, add_ah = _ipv6_ext_chain(rng)
        ip_hlen = 40 + ext_len
    l4_tmpl = _l4(rng, proto, b"")
    l4_hlen = len(l4_tmpl) if proto == "tcp" else 8
    long_chain = MAX_PARSE_BYTES - _LONGEST_L2 - ip_hlen - l4_hlen    # (bytes to spare)
    if version == 6 and long_chain >= 8 and rng.random() < 0.06:
        # A Destination Options header that takes the chain past 128 bytes, as far as the
        # headers still end within the parse window behind the longest L2 header.
        shortest = min(max(8, 136 - ext_len), long_chain)
        size = 8 * rng.randint(shortest // 8, long_chain // 8)
        chain.append(IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(size - 4))]))
        ext_len += size
        ip_hlen += size
    room = limit - ip_hlen - l4_hlen        # keep the whole packet within the limit
    if len(payload) > room:
        payload = payload[:max(0, room)]
    ah_tail = bytes(2) + rng.randbytes(8) + rng.randbytes(12) if add_ah else b""

    def build(pl: bytes) -> bytes:
        l4 = l4_tmpl.copy()
        l4[Raw].load = pl
        pkt = ip.copy()
        for hdr in chain:
            pkt = pkt / hdr.copy()
        built = bytes(pkt / l4)
        return _with_ah(built, ext_len - 24, ah_tail) if add_ah else built

    if zero_sum:
        field_at = ip_hlen + (16 if proto == "tcp" else 6)
        payload = bytearray(_force_zero_sum(build, payload, l4_hlen, field_at))
    data = build(bytes(payload))
    total = len(data)
    layout = {"ip_version": version, "ip_header_len": ip_hlen, "ip_end": total,
              "l4_offset": ip_hlen, "l4_proto": 6 if proto == "tcp" else 17,
              "l4_header_len": l4_hlen, "l4_end": total, "is_fragment": False}
    names = [type(h).__name__.replace("IPv6ExtHdr", "") for h in chain] + (["AH"] if add_ah
                                                                           else [])
    opts = (f" opts={len(ip.options)}" if version == 4 and ip.options else
            f" ext={'+'.join(names)}" if names else "")
    desc = f"{proto}{version}{opts} l4hdr={l4_hlen} payload={len(payload)}" + (
        " zero-sum" if zero_sum else "")
    return data, layout, desc


def _offset(layout: dict, base: int) -> dict:
    out = dict(layout)
    for key in ("ip_end", "l4_offset", "l4_end"):
        if out.get(key) is not None:
            out[key] += base
    out["l3_offset"] = base
    return out


# --- public generators --------------------------------------------------------------------

def random_frame(rng: random.Random, kind: str | None = None, *, l2: str | None = None,
                 zero_sum: bool | None = None, max_payload: int = MAX_PAYLOAD) -> Frame:
    """One random frame.

    Parameters
    ----------
    rng : random.Random
        The only source of randomness.
    kind : str, optional
        One of ``KINDS``; chosen at random (mostly TCP/UDP) when omitted.
    l2 : str, optional
        One of ``L2_KINDS``; random when omitted.
    zero_sum : bool, optional
        For TCP/UDP kinds: tune the payload so the L4 checksum is zero (UDP: sent as 0xFFFF).
        Random (5%) when omitted.
    max_payload : int
        Upper bound on the TCP/UDP/ICMP payload (for fragments, the datagram is at most
        ``max_payload + 300`` bytes). LLC/SNAP frames also keep their L3 packet within 1492
        bytes so the 802.3 length stays a length.
    """
    if kind is None:
        r = rng.random()
        kind = (rng.choice(GOOD_KINDS) if r < 0.75 else
                rng.choice(OTHER_KINDS) if r < 0.9 else "malformed")
    if kind == "malformed":
        return malformed_frame(rng)
    if l2 is None:
        l2 = rng.choice(L2_KINDS)
    limit = SNAP_MAX_L3 if "snap" in l2 else 65535     # bytes of L3 packet
    if kind in GOOD_KINDS:
        version = int(kind[-1])
        if zero_sum is None:
            zero_sum = rng.random() < 0.05
        l2_len = 14 + 4 * (l2.count("vlan") + 2 * l2.count("qinq")) + 8 * ("snap" in l2)
        while True:     # well-formed frames keep their headers within the NIC's parse window
            l3, layout, desc = _ip_packet(rng, version, kind[:3], limit, max_payload, zero_sum)
            if l2_len + layout["l4_offset"] + layout["l4_header_len"] <= PARSE_WINDOW:
                break
    elif kind in ("frag4", "frag6"):
        l3, layout, desc = _fragment(rng, int(kind[-1]), min(limit, max_payload + 300))
    elif kind in ("icmp4", "icmp6"):
        l3, layout, desc = _icmp(rng, int(kind[-1]), min(limit, max_payload + 100))
    elif kind == "nonip":
        return _nonip(rng, l2)
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    ethertype = 0x0800 if layout["ip_version"] == 4 else 0x86DD
    data, l2info = _l2_wrap(rng, l2, l3, ethertype)
    layout = _offset(layout, l2info["l3_offset"])
    layout.update(l2info)
    data = _pad(rng, data)
    return Frame(data, f"{l2}/{desc} len={len(data)}", kind, layout)


def _fragment(rng: random.Random, version: int, limit: int) -> tuple[bytes, dict, str]:
    """One fragment (first, middle or last) of a datagram cut into at least two."""
    proto = rng.choice(["tcp", "udp"])
    size = rng.randint(200, min(4000, limit - 100))
    l4 = _l4(rng, proto, _payload(rng, size))
    if version == 4:
        dgram = IP(src=_ipv4(rng), dst=_ipv4(rng), id=rng.randrange(65536),
                   options=_ipv4_options(rng)) / l4
        fragsize = rng.choice([64, 128, 256, 512, 1000])
        while fragsize >= len(l4):
            fragsize //= 2
        frags = fragment(dgram, fragsize=fragsize)
    else:
        dgram = IPv6(src=_ipv6(rng), dst=_ipv6(rng)) / IPv6ExtHdrFragment(
            id=rng.randrange(1 << 32)) / l4
        fragsize = rng.choice([200, 400, 600, 1280])
        while fragsize - 48 >= len(l4):
            fragsize = 48 + (fragsize - 48) // 2
        frags = fragment6(dgram, fragsize)
    assert len(frags) >= 2, (len(l4), fragsize)
    which = rng.randrange(len(frags))
    data = bytes(frags[which])
    hlen = (data[0] & 0x0F) * 4 if version == 4 else 48
    layout = {"ip_version": version, "ip_header_len": hlen, "ip_end": len(data),
              "l4_offset": hlen, "l4_proto": 6 if proto == "tcp" else 17, "l4_header_len": 0,
              "l4_end": None, "is_fragment": True}
    return data, layout, f"frag{version} {which + 1}/{len(frags)} of {proto}"


def _icmp(rng: random.Random, version: int, limit: int) -> tuple[bytes, dict, str]:
    payload = _payload(rng, payload_size(rng, min(limit - 100, 1400)))
    if version == 4:
        data = bytes(IP(src=_ipv4(rng), dst=_ipv4(rng), options=_ipv4_options(rng))
                     / ICMP() / Raw(payload))
        hlen, proto = (data[0] & 0x0F) * 4, 1
    elif rng.random() < 0.3:   # No Next Header
        data = bytes(IPv6(src=_ipv6(rng), dst=_ipv6(rng), nh=59) / Raw(payload))
        hlen, proto = 40, 59
    else:
        data = bytes(IPv6(src=_ipv6(rng), dst=_ipv6(rng)) / ICMPv6EchoRequest()
                     / Raw(payload))
        hlen, proto = 40, 58
    layout = {"ip_version": version, "ip_header_len": hlen, "ip_end": len(data),
              "l4_offset": hlen, "l4_proto": proto, "l4_header_len": 0, "l4_end": None,
              "is_fragment": False}
    return data, layout, f"icmp{version} proto={proto}"


def _nonip(rng: random.Random, l2: str) -> Frame:
    if rng.random() < 0.5:
        data, _ = _l2_wrap(rng, l2, bytes(ARP(psrc=_ipv4(rng), pdst=_ipv4(rng))), 0x0806)
        desc = "ARP"
    else:
        etype = rng.choice([0x88CC, 0x8906, 0x22F0, 0x9000])
        data, _ = _l2_wrap(rng, l2, rng.randbytes(rng.randint(0, 100)), etype)
        desc = f"EtherType {etype:#06x}"
    return Frame(_pad(rng, data), f"{l2}/{desc}", "nonip", {}, "NOT_IP")


# --- malformed frames ---------------------------------------------------------------------

def _good_l3(rng: random.Random, version: int, proto: str = "tcp", size: int = 40) -> bytes:
    l4 = _l4(rng, proto, _payload(rng, size))
    if version == 4:
        return bytes(IP(src=_ipv4(rng), dst=_ipv4(rng)) / l4)
    return bytes(IPv6(src=_ipv6(rng), dst=_ipv6(rng)) / l4)


def _ether(rng: random.Random, ethertype: int) -> Ether:
    return Ether(dst=_mac(rng), src=_mac(rng), type=ethertype)


def _dot3(rng: random.Random, length: int) -> Dot3:
    return Dot3(dst=_mac(rng), src=_mac(rng), len=length)


def _eth(rng: random.Random, l3: bytes, ethertype: int) -> bytes:
    return bytes(_ether(rng, ethertype)) + l3


def _set16(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + value.to_bytes(2, "big") + data[at + 2:]


def _v6_with_raw_ext(rng: random.Random, exts: list[tuple[int, bytes]], upper: int,
                     upper_bytes: bytes) -> bytes:
    """IPv6 header + raw extension headers ``[(type, body_without_nh)]`` + upper bytes."""
    body = b""
    for i, (_, hdr) in enumerate(exts):
        nxt = exts[i + 1][0] if i + 1 < len(exts) else upper
        body += bytes([nxt]) + hdr
    body += upper_bytes
    first = exts[0][0] if exts else upper
    head = bytes(IPv6(src=_ipv6(rng), dst=_ipv6(rng), nh=first, plen=len(body)))
    return head + body


def _generic_ext(length: int, fill: bytes | None = None) -> bytes:
    """Body (after the Next Header byte) of a generic extension header of ``length`` bytes."""
    assert length % 8 == 0 and length >= 8
    rest = fill if fill is not None else bytes([1, length - 4]) + bytes(length - 4)
    return bytes([length // 8 - 1]) + rest[:length - 2]


# The malformed frames: one builder per case, in a table. A builder takes the generator and
# ``l4`` ("tcp" or "udp", drawn for every case so that a seed makes the frames it always
# made) and returns the frame's bytes, a description and the ParseError name a parser
# should report.

_MALFORMED = {}

_IP = {4: (20, 0x0800), 6: (40, 0x86DD)}    # IP version: fixed header length, EtherType


def _malformed(case: str):
    def register(build):
        _MALFORMED[case] = build
        return build
    return register


def _with_ip_length(l3: bytes, version: int) -> bytes:
    """``l3`` with its IPv4 Total Length or IPv6 Payload Length saying its own length."""
    return _set16(l3, 2, len(l3)) if version == 4 else _set16(l3, 4, len(l3) - 40)


def _with_version(l3: bytes, version: int) -> bytes:
    """``l3`` with its first nibble (the IP version) set to ``version``."""
    return bytes([(version << 4) | (l3[0] & 15)]) + l3[1:]


@_malformed("runt")
def _runt(rng, l4):
    data = rng.randbytes(rng.randint(0, 13))
    return data, f"runt of {len(data)} bytes", "RUNT"


@_malformed("vlan_truncated")
def _vlan_truncated(rng, l4):
    data = bytes(_ether(rng, 0x8100))[:14] + rng.randbytes(rng.randint(0, 3))
    return data, "VLAN tag cut off", "L2_TRUNCATED"


@_malformed("three_tags")
def _three_tags(rng, l4):
    pkt = _ether(rng, 0x88A8) / Dot1Q(type=0x8100) / Dot1Q(type=0x8100) / Dot1Q(type=0x0800)
    return bytes(pkt) + _good_l3(rng, 4), "three VLAN tags", "TOO_MANY_VLAN_TAGS"


@_malformed("bad_length_type")
def _bad_length_type(rng, l4):
    data = _pad(rng, _eth(rng, _good_l3(rng, 4), rng.randint(1501, 1535)))
    return data, "length/type 1501..1535", "BAD_LENGTH_TYPE"


@_malformed("not_snap")
def _not_snap(rng, l4):
    pkt = _dot3(rng, 50) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(rng.randbytes(47))
    return bytes(pkt), "802.3 STP LLC", "NOT_SNAP"


@_malformed("snap_bad_oui")
def _snap_bad_oui(rng, l4):
    pkt = _dot3(rng, 100) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0x00000C, code=0x0800)
    return bytes(pkt) + _good_l3(rng, 4), "SNAP with Cisco OUI", "NOT_SNAP"


@_malformed("snap_truncated")
def _snap_truncated(rng, l4):
    data = bytes(_dot3(rng, 8))[:14] + bytes([0xAA, 0xAA, 3, 0])[:rng.randint(0, 4)]
    return data, "LLC/SNAP cut off", "L2_TRUNCATED"


@_malformed("ipv4_truncated")
def _ipv4_truncated(rng, l4):
    l3 = _good_l3(rng, 4)[:rng.randint(0, 19)]
    return _eth(rng, l3, 0x0800), "IPv4 header cut off", "L3_TRUNCATED"


@_malformed("ipv4_options_truncated")
def _ipv4_options_truncated(rng, l4):
    l3 = bytes(IP(options=[IPOption_RR(routers=["1.2.3.4"] * 8)]) / TCP())
    l3 = l3[:rng.randint(20, (l3[0] & 15) * 4 - 1)]
    return _eth(rng, l3, 0x0800), "IPv4 options cut off", "L3_TRUNCATED"


@_malformed("ipv4_bad_version")
def _ipv4_bad_version(rng, l4):
    l3 = _with_version(_good_l3(rng, 4), rng.choice([0, 5, 6, 15]))
    return _eth(rng, l3, 0x0800), "IPv4 bad version", "BAD_VERSION"


@_malformed("ipv4_bad_ihl")
def _ipv4_bad_ihl(rng, l4):
    l3 = _good_l3(rng, 4)
    l3 = bytes([0x40 | rng.randint(0, 4)]) + l3[1:]
    return _eth(rng, l3, 0x0800), "IHL < 5", "BAD_IHL"


@_malformed("ipv4_short_total")
def _ipv4_short_total(rng, l4):
    l3 = _set16(_good_l3(rng, 4), 2, rng.randint(0, 19))
    return _eth(rng, l3, 0x0800), "Total Length < header", "BAD_IP_LENGTH"


@_malformed("ipv4_long_total")
def _ipv4_long_total(rng, l4):
    l3 = _good_l3(rng, 4, l4)
    l3 = _set16(l3, 2, len(l3) + rng.randint(1, 2000))
    return _eth(rng, l3, 0x0800), "Total Length past frame", "BAD_IP_LENGTH"


@_malformed("ipv6_truncated")
def _ipv6_truncated(rng, l4):
    l3 = _good_l3(rng, 6)[:rng.randint(0, 39)]
    return _eth(rng, l3, 0x86DD), "IPv6 header cut off", "L3_TRUNCATED"


@_malformed("ipv6_bad_version")
def _ipv6_bad_version(rng, l4):
    l3 = _with_version(_good_l3(rng, 6), rng.choice([4, 0, 7]))
    return _eth(rng, l3, 0x86DD), "IPv6 bad version", "BAD_VERSION"


@_malformed("ipv6_long_payload")
def _ipv6_long_payload(rng, l4):
    l3 = _good_l3(rng, 6, l4)
    l3 = _set16(l3, 4, len(l3) - 40 + rng.randint(1, 2000))
    return _eth(rng, l3, 0x86DD), "Payload Length past frame", "BAD_IP_LENGTH"


@_malformed("ext_truncated")
def _ext_truncated(rng, l4):
    l3 = _v6_with_raw_ext(rng, [(60, _generic_ext(16))], 6, b"")
    l3 = _set16(l3, 4, rng.choice([0, 4, 8, 15]))
    l3 = l3[:40 + int.from_bytes(l3[4:6], "big")]
    return (_pad(rng, _eth(rng, l3, 0x86DD)), "Destination Options past datagram",
            "EXT_TRUNCATED")


@_malformed("esp")
def _esp(rng, l4):
    l3 = _v6_with_raw_ext(rng, [], 50, rng.randbytes(40))
    return _eth(rng, l3, 0x86DD), "IPv6 ESP", "EXT_UNFOLLOWABLE"


@_malformed("experimental_ext")
def _experimental_ext(rng, l4):
    l3 = _v6_with_raw_ext(rng, [(rng.choice([253, 254]), _generic_ext(8))], 6, bytes(TCP()))
    return _eth(rng, l3, 0x86DD), "Next Header 253/254", "EXT_UNFOLLOWABLE"


@_malformed("hbh_not_first")
def _hbh_not_first(rng, l4):
    l3 = _v6_with_raw_ext(rng, [(60, _generic_ext(8)), (0, _generic_ext(8))], 17,
                          bytes(UDP()))
    return _eth(rng, l3, 0x86DD), "Hop-by-Hop after Destination Options", "EXT_UNFOLLOWABLE"


@_malformed("routing_type0_active")
def _routing_type0_active(rng, l4):
    rh = bytes([4, 0, 2]) + bytes(4) + rng.randbytes(32)   # type 0, SL 2, two addresses
    l3 = _v6_with_raw_ext(rng, [(43, rh)], 6, bytes(TCP()))
    return _eth(rng, l3, 0x86DD), "Routing type 0 with Segments Left", "EXT_UNFOLLOWABLE"


@_malformed("two_routing")
def _two_routing(rng, l4):
    rh = bytes([0, 0, 0]) + bytes(4)
    l3 = _v6_with_raw_ext(rng, [(43, rh), (43, rh)], 17, bytes(UDP()))
    return _eth(rng, l3, 0x86DD), "two Routing headers", "EXT_UNFOLLOWABLE"


@_malformed("ext_too_long")
def _ext_too_long(rng, l4):
    # Behind a plain Ethernet header the chain starts at byte 54: 200 bytes end at 254, past
    # model.parse.MAX_EXT_END (248).
    sizes = rng.choice([[200], [96, 104], [128, 72], [192, 8], [64, 64, 72]])
    exts = [(60, _generic_ext(s)) for s in sizes]
    l3 = _v6_with_raw_ext(rng, exts, 6, bytes(TCP()) + rng.randbytes(10))
    return _eth(rng, l3, 0x86DD), f"extension headers {sum(sizes)} bytes", "EXT_TOO_LONG"


@_malformed("tcp_truncated")
def _tcp_truncated(rng, l4):
    v = rng.choice([4, 6])
    hl, ethertype = _IP[v]
    l3 = _good_l3(rng, v, "tcp", 0)
    l3 = _with_ip_length(l3[:hl + rng.randint(0, 19)], v)
    return (_pad(rng, _eth(rng, l3, ethertype)), f"TCP/IPv{v} header cut by IP length",
            "L4_TRUNCATED")


@_malformed("tcp_options_truncated")
def _tcp_options_truncated(rng, l4):
    l3 = bytes(IP(src=_ipv4(rng), dst=_ipv4(rng))
               / TCP(options=[("MSS", 1), ("Timestamp", (1, 2))]))
    l3 = _with_ip_length(l3[:rng.randint(40, len(l3) - 1)], 4)
    return _pad(rng, _eth(rng, l3, 0x0800)), "TCP options cut by IP length", "L4_TRUNCATED"


@_malformed("tcp_bad_offset")
def _tcp_bad_offset(rng, l4):
    v = rng.choice([4, 6])
    hl, ethertype = _IP[v]
    l3 = bytearray(_good_l3(rng, v, "tcp", 30))
    l3[hl + 12] = (rng.randint(0, 4) << 4) | (l3[hl + 12] & 15)
    return _eth(rng, bytes(l3), ethertype), "TCP data offset < 5", "BAD_TCP_OFFSET"


@_malformed("udp_truncated")
def _udp_truncated(rng, l4):
    v = rng.choice([4, 6])
    hl, ethertype = _IP[v]
    l3 = _with_ip_length(_good_l3(rng, v, "udp", 0)[:hl + rng.randint(0, 7)], v)
    return (_pad(rng, _eth(rng, l3, ethertype)), f"UDP/IPv{v} header cut by IP length",
            "L4_TRUNCATED")


@_malformed("udp_bad_length")
def _udp_bad_length(rng, l4):
    v = rng.choice([4, 6])
    hl, ethertype = _IP[v]
    l3 = _good_l3(rng, v, "udp", 20)
    bad = rng.choice([rng.randint(0, 7), len(l3) - hl + rng.randint(1, 100)])
    return _eth(rng, _set16(l3, hl + 4, bad), ethertype), f"UDP Length {bad}", "BAD_UDP_LENGTH"


@_malformed("past_limit")
def _past_limit(rng, l4):
    exts = [(0, _generic_ext(64)), (60, _generic_ext(64))]                 # 128 bytes
    tcp = bytes(TCP(options=[("NOP", None)] * 40)) + rng.randbytes(20)     # 60-byte header
    l3 = _v6_with_raw_ext(rng, exts, 6, tcp)
    ether = (_ether(rng, 0x88A8) / Dot1Q(type=0x8100) / Dot1Q(type=8 + len(l3))
             / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x86DD))
    return bytes(ether) + l3, "QinQ+SNAP+IPv6 168+TCP 60 ends at byte 258", "PAST_LIMIT"


#: The names of the malformed frames, in the order ``malformed_frame`` draws from (a seed's
#: frames depend on it).
MALFORMED_CASES = tuple(_MALFORMED)


def malformed_frame(rng: random.Random, case: str | None = None) -> Frame:
    """A frame the parser must refuse, with the ``ParseError`` name it should report.

    ``case`` picks one of ``MALFORMED_CASES``; random when omitted.
    """
    if case is None:
        case = rng.choice(MALFORMED_CASES)
    l4 = rng.choice(["tcp", "udp"])
    if case not in _MALFORMED:
        raise ValueError(f"unknown malformed case {case!r}")
    data, desc, error = _MALFORMED[case](rng, l4)
    return Frame(data, desc, "malformed", {}, error)


def corrupt_one_bit(rng: random.Random, frame: bytes, region: tuple[int, int] | None = None
                    ) -> tuple[bytes, int]:
    """Flip one random bit of ``frame`` inside ``region`` (byte range; whole frame if None).

    Returns
    -------
    (bytes, int)
        The corrupted frame and the flipped bit's index (byte * 8 + bit, bit 0 = LSB).
    """
    start, end = region if region is not None else (0, len(frame))
    if not 0 <= start < end <= len(frame):
        raise ValueError(f"region {start}..{end} not inside a {len(frame)}-byte frame")
    bit = rng.randrange(start * 8, end * 8)
    out = bytearray(frame)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out), bit
