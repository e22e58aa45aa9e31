"""Header parser: where the L2, IP and TCP/UDP headers of an Ethernet frame are, or why not.

Every offload stage starts here. ``parse`` walks the headers of one frame (no FCS) and returns
a frozen ``Headers`` record of offsets and lengths, or the first reason it could not follow
the frame. The RTL parser implements exactly the same walk, the same limits and the same
order of checks, so model and RTL agree on which frames they touch.

What it follows
---------------
L2
    Ethernet II; up to ``MAX_VLAN_TAGS`` (2) tags with TPID 0x8100 (802.1Q) or 0x88A8
    (802.1ad, QinQ), in any order; 802.3 frames (length/type field <= 1500) only as
    LLC/SNAP (DSAP 0xAA, SSAP 0xAA, control 0x03) with OUI 00-00-00 (RFC 1042) or 00-00-F8
    (802.1H), which carry an EtherType. The 802.3 length value itself is not checked (the IP
    length fields are). NDIS requires Ethernet 802.3 with 802.1Q tags
    (``combining-types-of-task-offloads.md``); ``DESIGN.md`` 4 names Ethernet II, 802.1Q and
    LLC/SNAP.
L3
    IPv4 with options (IHL 5..15). IPv6 with the extension headers of RFC 8200 and the
    IANA list that share the generic format: Hop-by-Hop (0, only directly after the IPv6
    header), Routing (43, at most one), Fragment (44), Destination Options (60), Mobility
    (135), HIP (139), Shim6 (140), and AH (51, length in 4-octet units; skipped by length, its
    ICV is not our business). ESP (50) encrypts what follows and the experimental values 253
    and 254 have no defined format: the parser cannot follow them. Any other Next Header
    value is the upper-layer protocol.
L4
    TCP (data offset 5..15, options included) and UDP (8-byte header; the checksum covers
    ``Length`` bytes, RFC 768). Other protocols are reported by number with
    ``l4_header_len == 0``.
Not followed
    IPv6 jumbograms (RFC 2675: Payload Length 0 with a Jumbo Payload option, UDP Length 0)
    fail as EXT_TRUNCATED / BAD_UDP_LENGTH; no Ethernet frame can carry one anyway.

Limits (the RTL holds the same)
-------------------------------
``MAX_PARSE_BYTES`` = 256
    Every header the parser reads, up to the end of the TCP/UDP header, lies within the first
    256 bytes of the frame (DESIGN 3: the NIC segments every send whose headers end within
    256 bytes). L2 is at most 30 bytes (two tags + LLC/SNAP) and an IPv4 header at most 60.
``MAX_EXT_END`` = ``MAX_PARSE_BYTES - 8`` = 248
    IPv6 extension headers may end at most at byte 248 of the frame: behind them the
    shortest upper-layer header the walk follows (UDP, 8 bytes) must still end within the
    256 bytes. No limit of its own holds the chain's length: "IP Extension Header ...
    Required (128 bytes)" in ``combining-types-of-task-offloads.md`` is what NDIS requires
    the NIC to handle at least, not what it may refuse above (DESIGN 3). A chain that ends
    past byte 248 is EXT_TOO_LONG, whatever follows it.
``MAX_VLAN_TAGS`` = 2

Fragments
---------
An IPv4 datagram with MF set or a non-zero fragment offset, and an IPv6 packet whose Fragment
header has M set or a non-zero offset, is a fragment: the walk stops after the IP header
(after the Fragment header for IPv6); ``l4_proto`` is the protocol number found there and
``l4_header_len`` is 0, even for a first fragment that does carry the TCP/UDP header. An
IPv6 atomic fragment (offset 0, M clear; RFC 6946) is not a fragment and the walk goes on.

Pseudo-header destination
-------------------------
RFC 8200 8.1: with a Routing header the pseudo-header uses the final destination. While
Segments Left is 0 that is the IPv6 Destination Address. With Segments Left > 0 the parser
knows two types: type 2 (RFC 6275, the home address) and type 4 (RFC 8754, Segment List[0]),
both the 16 bytes at offset 8 of the routing header. Any other type with Segments Left > 0
(including the deprecated type 0, RFC 5095) cannot be followed. IPv4 source-route options and
the Mobile IPv6 Home Address destination option (which changes the pseudo-header *source*)
are out of scope: the pseudo-header uses the addresses in the IP header.
``Headers.pseudo_dst_offset`` says where the destination address is.

Order of checks
---------------
Headers are walked from the front and the first failure is reported; "fits" means within the
frame for L2 and the IP fixed headers, and before ``ip_end`` (inside the datagram) for
extension and L4 headers. Exactly, in order:

1. frame < 14 bytes: RUNT.
2. While the type is a TPID: a third tag is TOO_MANY_VLAN_TAGS; a tag + next type that does
   not fit is L2_TRUNCATED.
3. Type <= 1500: LLC/SNAP must fit (L2_TRUNCATED), then be aa aa 03 + known OUI (NOT_SNAP).
   Type 1501..1535: BAD_LENGTH_TYPE. Type not IPv4/IPv6: NOT_IP.
4. IPv4: 20 bytes fit (L3_TRUNCATED); version 4 (BAD_VERSION); IHL >= 5 (BAD_IHL); IHL*4
   bytes fit (L3_TRUNCATED); Total Length >= IHL*4, then within the frame (BAD_IP_LENGTH).
   IPv6: 40 bytes fit (L3_TRUNCATED); version 6 (BAD_VERSION); 40 + Payload Length within
   the frame (BAD_IP_LENGTH).
5. Each IPv6 extension header: Hop-by-Hop not first (EXT_UNFOLLOWABLE); 8 bytes fit
   (EXT_TRUNCATED); its full length fits (EXT_TRUNCATED); it ends by byte 248
   (``MAX_EXT_END``, EXT_TOO_LONG); a second Routing header, or Segments Left > 0 with a type other than 2/4
   or a length < 24 (EXT_UNFOLLOWABLE). A Fragment header that makes a fragment ends the
   walk. ESP/253/254 as Next Header: EXT_UNFOLLOWABLE.
6. Fragments and protocols other than TCP/UDP: done, no L4 checks.
7. TCP: 20 bytes fit (L4_TRUNCATED); end within 256 (PAST_LIMIT); data offset >= 5
   (BAD_TCP_OFFSET); data offset*4 fits (L4_TRUNCATED); ends within 256 (PAST_LIMIT).
   UDP: 8 bytes fit (L4_TRUNCATED); end within 256 (PAST_LIMIT); 8 <= Length and
   l4_offset + Length <= ip_end (BAD_UDP_LENGTH).
"""

from __future__ import annotations

import dataclasses
import enum

from .onesum import add, ones_sum

__all__ = [
    "MAX_EXT_END", "MAX_PARSE_BYTES", "MAX_VLAN_TAGS", "ParseError", "Headers", "parse",
    "pseudo_header_sum", "with_buffer_length", "ETH_P_IPV4", "ETH_P_IPV6", "IPPROTO_TCP",
    "IPPROTO_UDP",
]

MAX_PARSE_BYTES = 256    # L2 + L3 + L4 headers lie within the first 256 bytes of the frame
MAX_EXT_END = MAX_PARSE_BYTES - 8   # IPv6 extension headers end by here (a UDP header fits)
MAX_VLAN_TAGS = 2

ETH_HEADER_LEN = 14
VLAN_TAG_LEN = 4
LLC_SNAP_LEN = 8
ETH_P_IPV4 = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8)
SNAP_OUIS = (0x000000, 0x0000F8)
IPPROTO_TCP = 6
IPPROTO_UDP = 17

# IPv6 Next Header values.
_HOPOPT, _ROUTING, _FRAGMENT, _ESP, _AH, _DSTOPTS = 0, 43, 44, 50, 51, 60
_GENERIC_EXT = frozenset((_HOPOPT, _ROUTING, _DSTOPTS, 135, 139, 140))  # (len+1)*8 bytes
_UNFOLLOWABLE_EXT = frozenset((_ESP, 253, 254))
_ROUTING_FINAL_DST_TYPES = (2, 4)   # address at offset 8 is the final destination

# The longest L2 header and IPv4 header fit, so only IPv6 extension headers (MAX_EXT_END)
# and the L4 header can cross MAX_PARSE_BYTES.
assert ETH_HEADER_LEN + MAX_VLAN_TAGS * VLAN_TAG_LEN + LLC_SNAP_LEN + 60 < MAX_EXT_END


class ParseError(enum.IntEnum):
    """Why ``parse`` could not follow a frame (the RTL reports the same codes)."""
    RUNT = 1                # shorter than an Ethernet header (14 bytes)
    L2_TRUNCATED = 2        # a VLAN tag or the LLC/SNAP header runs past the frame
    TOO_MANY_VLAN_TAGS = 3  # more than MAX_VLAN_TAGS tags
    BAD_LENGTH_TYPE = 4     # length/type field 1501..1535: neither a length nor an EtherType
    NOT_SNAP = 5            # 802.3 frame that is not LLC/SNAP with an EtherType OUI
    NOT_IP = 6              # EtherType is neither IPv4 nor IPv6
    L3_TRUNCATED = 7        # IPv4 (20 or IHL*4 bytes) or IPv6 (40 bytes) header past the frame
    BAD_VERSION = 8         # version nibble disagrees with the EtherType
    BAD_IHL = 9             # IPv4 IHL < 5
    BAD_IP_LENGTH = 10      # total length < header length, or the datagram runs past the frame
    EXT_TRUNCATED = 11      # an IPv6 extension header runs past the datagram
    EXT_UNFOLLOWABLE = 12   # ESP, 253/254, misplaced HBH, second Routing, unknown final dst
    EXT_TOO_LONG = 13       # an extension header ends past MAX_EXT_END (byte 248)
    L4_TRUNCATED = 14       # TCP (20 or data offset*4) or UDP (8) header past the datagram
    BAD_TCP_OFFSET = 15     # TCP data offset < 5
    BAD_UDP_LENGTH = 16     # UDP length < 8 or longer than the datagram's payload
    PAST_LIMIT = 17         # the TCP/UDP header ends past MAX_PARSE_BYTES


@dataclasses.dataclass(frozen=True, slots=True)
class Headers:
    """Where the headers of one frame are.

    Offsets count bytes from the first byte of the destination MAC address. Fields are filled
    as far as the walk got: after a failure the earlier fields are still correct, the later
    ones are ``None``; consumers that act on a frame must check ``error`` first.

    Attributes
    ----------
    vlan_tags : int
        Number of 802.1Q/802.1ad tags.
    llc_snap : bool
        The EtherType came from an LLC/SNAP header.
    ethertype : int or None
        EtherType of the L3 protocol (after tags and SNAP).
    l3_offset : int or None
        Offset of the IP header.
    ip_version : int or None
        4 or 6.
    ip_header_len : int or None
        IPv4: IHL*4. IPv6: 40 plus the extension headers walked (up to the Fragment header
        of a fragment, else up to the upper-layer header).
    ip_end : int or None
        Offset one past the IP datagram per its length field (Total Length, or 40 + Payload
        Length). Bytes from here to the end of the frame (Ethernet padding, trailers) belong
        to no checksum.
    is_fragment : bool
        IPv4 MF or fragment offset != 0; IPv6 Fragment header with M or offset != 0.
    pseudo_dst_offset : int or None
        Offset of the destination address for the TCP/UDP pseudo-header (4 bytes for IPv4, 16
        for IPv6): the IP header's, or a type 2/4 routing header's with Segments Left > 0.
    l4_proto : int or None
        IPv4 Protocol or the final IPv6 Next Header (for a fragment: the Fragment header's).
    l4_offset : int or None
        Offset of the upper-layer header (``l3_offset + ip_header_len``).
    l4_header_len : int or None
        TCP data offset*4, 8 for UDP, 0 for other protocols and for fragments.
    l4_end : int or None
        Offset one past what the TCP/UDP checksum covers: ``ip_end`` for TCP,
        ``l4_offset + UDP Length`` for UDP; None when no TCP/UDP header was parsed.
    error_code : ParseError or None
        Why the walk stopped early, None when the frame was followed to its end.
    error : str or None
        ``error_code`` with the specifics (offsets, values), for people.
    """

    vlan_tags: int = 0
    llc_snap: bool = False
    ethertype: int | None = None
    l3_offset: int | None = None
    ip_version: int | None = None
    ip_header_len: int | None = None
    ip_end: int | None = None
    is_fragment: bool = False
    pseudo_dst_offset: int | None = None
    l4_proto: int | None = None
    l4_offset: int | None = None
    l4_header_len: int | None = None
    l4_end: int | None = None
    error_code: ParseError | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The frame was followed to its end (``error`` is None)."""
        return self.error_code is None

    @property
    def is_tcp(self) -> bool:
        """A complete TCP header was parsed (never for fragments)."""
        return self.l4_end is not None and self.l4_proto == IPPROTO_TCP

    @property
    def is_udp(self) -> bool:
        """A complete UDP header was parsed (never for fragments)."""
        return self.l4_end is not None and self.l4_proto == IPPROTO_UDP

    @property
    def l4_length(self) -> int | None:
        """Bytes the TCP/UDP checksum covers (the pseudo-header's length), else None."""
        if self.l4_end is None:
            return None
        return self.l4_end - self.l4_offset


def parse(frame: bytes | bytearray | memoryview, *, max_parse_bytes: int = MAX_PARSE_BYTES
          ) -> Headers:
    """Walk the L2, IP and TCP/UDP headers of an Ethernet frame.

    Parameters
    ----------
    frame : bytes-like
        The frame from the destination MAC address on, without FCS.
    max_parse_bytes : int
        The TCP/UDP header must end within this many bytes of the frame's start, IPv6
        extension headers within ``max_parse_bytes - 8`` (``MAX_EXT_END`` for the default).

    Returns
    -------
    Headers
        Offsets and lengths, or ``error_code``/``error`` saying where the walk stopped.
    """
    b = frame
    n = len(b)
    fields: dict = {}

    try:
        etype, l3 = _walk_l2(b, n, fields)
        fields["l3_offset"] = l3
        if etype == ETH_P_IPV4:
            proto, l4, ip_end, fragment = _walk_ipv4(b, n, l3, fields)
        else:
            proto, l4, ip_end, fragment = _walk_ipv6(b, n, l3, fields, max_parse_bytes - 8)
        fields["l4_proto"] = proto
        fields["l4_offset"] = l4
        if fragment or (proto != IPPROTO_TCP and proto != IPPROTO_UDP):
            fields["l4_header_len"] = 0
            return Headers(**fields)
        hlen, l4_end = _walk_l4(b, l4, proto, ip_end, max_parse_bytes)
    except _Stop as stop:
        code, detail = stop.args
        return Headers(**fields, error_code=code, error=f"{code.name.lower()}: {detail}")
    return Headers(**fields, l4_header_len=hlen, l4_end=l4_end)


class _Stop(Exception):
    """The walk stops here: (ParseError, detail). The fields found so far stay."""


def _walk_l2(b, n: int, fields: dict) -> tuple[int, int]:
    """Ethernet, VLAN tags and LLC/SNAP: (the EtherType, the IP header's offset)."""
    if n < ETH_HEADER_LEN:
        raise _Stop(ParseError.RUNT, f"{n} bytes, an Ethernet header needs {ETH_HEADER_LEN}")
    off = 12
    etype = (b[12] << 8) | b[13]
    tags = 0
    while etype in VLAN_TPIDS:
        if tags == MAX_VLAN_TAGS:
            fields["vlan_tags"] = tags
            raise _Stop(ParseError.TOO_MANY_VLAN_TAGS,
                        f"tag {tags + 1} (TPID {etype:#06x}) at offset {off}; "
                        f"at most {MAX_VLAN_TAGS}")
        if off + VLAN_TAG_LEN + 2 > n:
            fields["vlan_tags"] = tags
            raise _Stop(ParseError.L2_TRUNCATED,
                        f"VLAN tag at offset {off} needs {off + 6} bytes, frame has {n}")
        tags += 1
        off += VLAN_TAG_LEN
        etype = (b[off] << 8) | b[off + 1]
    fields["vlan_tags"] = tags
    off += 2  # past the length/type field
    if etype <= 1500:
        if off + LLC_SNAP_LEN > n:
            raise _Stop(ParseError.L2_TRUNCATED,
                        f"802.3 length {etype}: LLC/SNAP at offset {off} needs "
                        f"{off + LLC_SNAP_LEN} bytes, frame has {n}")
        oui = (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]
        if b[off] != 0xAA or b[off + 1] != 0xAA or b[off + 2] != 0x03 or oui not in SNAP_OUIS:
            raise _Stop(ParseError.NOT_SNAP,
                        f"802.3 frame with LLC {bytes(b[off:off + 3]).hex()} OUI {oui:06x} "
                        f"at offset {off}; only LLC aa aa 03 with OUI 000000/0000f8")
        etype = (b[off + 6] << 8) | b[off + 7]
        off += LLC_SNAP_LEN
        fields["llc_snap"] = True
    elif etype < 0x0600:
        raise _Stop(ParseError.BAD_LENGTH_TYPE,
                    f"length/type {etype:#06x} at offset {off - 2} is neither")
    fields["ethertype"] = etype
    if etype != ETH_P_IPV4 and etype != ETH_P_IPV6:
        raise _Stop(ParseError.NOT_IP, f"EtherType {etype:#06x} at offset {off - 2}")
    return etype, off


#: Per IP version: the fixed header's length and the EtherType it comes under.
_IP_FIXED = {4: (20, ETH_P_IPV4), 6: (40, ETH_P_IPV6)}


def _ip_fixed_header(b, n: int, l3: int, version: int, fields: dict) -> None:
    """The fixed part of an IPv4 or IPv6 header at ``l3``: it fits in the frame
    (L3_TRUNCATED) and its version nibble is ``version``, the one its EtherType names
    (BAD_VERSION)."""
    length, ethertype = _IP_FIXED[version]
    if l3 + length > n:
        raise _Stop(ParseError.L3_TRUNCATED,
                    f"IPv{version} header at offset {l3} needs {l3 + length} bytes, "
                    f"frame has {n}")
    found = b[l3] >> 4
    if found != version:
        raise _Stop(ParseError.BAD_VERSION, f"version {found} under EtherType {ethertype:#06x}")
    fields["ip_version"] = version


def _walk_ipv4(b, n: int, l3: int, fields: dict) -> tuple[int, int, int, bool]:
    """The IPv4 header: (protocol, offset past it, the datagram's end, a fragment?)."""
    _ip_fixed_header(b, n, l3, 4, fields)
    hlen = (b[l3] & 0x0F) * 4
    if hlen < 20:
        raise _Stop(ParseError.BAD_IHL, f"IHL {hlen // 4} < 5")
    if l3 + hlen > n:
        raise _Stop(ParseError.L3_TRUNCATED,
                    f"IPv4 header of {hlen} bytes at offset {l3} needs {l3 + hlen} bytes, "
                    f"frame has {n}")
    fields["ip_header_len"] = hlen
    total = (b[l3 + 2] << 8) | b[l3 + 3]
    if total < hlen:
        raise _Stop(ParseError.BAD_IP_LENGTH, f"Total Length {total} < header {hlen}")
    if l3 + total > n:
        raise _Stop(ParseError.BAD_IP_LENGTH,
                    f"Total Length {total} at offset {l3} ends at {l3 + total}, "
                    f"frame has {n}")
    ip_end = l3 + total
    fields["ip_end"] = ip_end
    fragment = bool(b[l3 + 6] & 0x20) or (((b[l3 + 6] & 0x1F) << 8) | b[l3 + 7]) != 0
    fields["is_fragment"] = fragment
    fields["pseudo_dst_offset"] = l3 + 16
    proto = b[l3 + 9]
    l4 = l3 + hlen
    return proto, l4, ip_end, fragment


def _walk_ipv6(b, n: int, l3: int, fields: dict, max_ext_end: int
               ) -> tuple[int, int, int, bool]:
    """The IPv6 header and its extension headers: (the upper-layer protocol, its offset,
    the datagram's end, a fragment?)."""
    fragment = False
    _ip_fixed_header(b, n, l3, 6, fields)
    plen = (b[l3 + 4] << 8) | b[l3 + 5]
    if l3 + 40 + plen > n:
        raise _Stop(ParseError.BAD_IP_LENGTH,
                    f"Payload Length {plen} at offset {l3} ends at {l3 + 40 + plen}, "
                    f"frame has {n}")
    ip_end = l3 + 40 + plen
    fields["ip_end"] = ip_end
    pseudo_dst = l3 + 24
    fields["pseudo_dst_offset"] = pseudo_dst
    proto = b[l3 + 6]
    l4 = l3 + 40
    routing_seen = False
    while True:
        if proto in _GENERIC_EXT or proto == _AH or proto == _FRAGMENT:
            name = _EXT_NAMES[proto]
            if proto == _HOPOPT and l4 != l3 + 40:
                raise _Stop(ParseError.EXT_UNFOLLOWABLE,
                            f"Hop-by-Hop header at offset {l4} is not directly after the "
                            f"IPv6 header (RFC 8200 4.3)")
            if l4 + 8 > ip_end:
                raise _Stop(ParseError.EXT_TRUNCATED,
                            f"{name} header at offset {l4} needs 8 bytes, the datagram "
                            f"ends at {ip_end}")
            if proto == _FRAGMENT:
                hlen = 8
            elif proto == _AH:
                hlen = (b[l4 + 1] + 2) * 4
            else:
                hlen = (b[l4 + 1] + 1) * 8
            if l4 + hlen > ip_end:
                raise _Stop(ParseError.EXT_TRUNCATED,
                            f"{name} header of {hlen} bytes at offset {l4} ends at "
                            f"{l4 + hlen}, the datagram ends at {ip_end}")
            if l4 + hlen > max_ext_end:
                raise _Stop(ParseError.EXT_TOO_LONG,
                            f"{name} header at offset {l4} ends at byte {l4 + hlen}, past "
                            f"{max_ext_end}: no TCP/UDP header behind it could end within "
                            f"{max_ext_end + 8}")
            if proto == _ROUTING:
                if routing_seen:
                    raise _Stop(ParseError.EXT_UNFOLLOWABLE,
                                f"second Routing header at offset {l4}")
                routing_seen = True
                rtype, segments_left = b[l4 + 2], b[l4 + 3]
                if segments_left:
                    if rtype not in _ROUTING_FINAL_DST_TYPES or hlen < 24:
                        raise _Stop(ParseError.EXT_UNFOLLOWABLE,
                                    f"Routing type {rtype} of {hlen} bytes with Segments "
                                    f"Left {segments_left} at offset {l4}: final "
                                    f"destination unknown")
                    pseudo_dst = l4 + 8
                    fields["pseudo_dst_offset"] = pseudo_dst
            if proto == _FRAGMENT:
                frag_offset = ((b[l4 + 2] << 8) | b[l4 + 3]) >> 3
                if frag_offset or (b[l4 + 3] & 1):
                    fragment = True
                    fields["is_fragment"] = True
            proto = b[l4]
            l4 += hlen
            if fragment:
                break
        elif proto in _UNFOLLOWABLE_EXT:
            raise _Stop(ParseError.EXT_UNFOLLOWABLE,
                        f"Next Header {proto} ({_EXT_NAMES[proto]}) at offset {l4}")
        else:
            break
    fields["ip_header_len"] = l4 - l3
    return proto, l4, ip_end, fragment


def _walk_l4(b, l4: int, proto: int, ip_end: int, max_parse_bytes: int) -> tuple[int, int]:
    """The TCP or UDP header: (its length, the end of what its checksum covers)."""
    if proto == IPPROTO_TCP:
        if l4 + 20 > ip_end:
            raise _Stop(ParseError.L4_TRUNCATED,
                        f"TCP header at offset {l4} needs 20 bytes, the datagram ends at "
                        f"{ip_end}")
        if l4 + 20 > max_parse_bytes:
            raise _Stop(ParseError.PAST_LIMIT,
                        f"TCP header at offset {l4} ends past byte {max_parse_bytes}")
        hlen = (b[l4 + 12] >> 4) * 4
        if hlen < 20:
            raise _Stop(ParseError.BAD_TCP_OFFSET, f"data offset {hlen // 4} < 5")
        if l4 + hlen > ip_end:
            raise _Stop(ParseError.L4_TRUNCATED,
                        f"TCP header of {hlen} bytes at offset {l4} ends at {l4 + hlen}, "
                        f"the datagram ends at {ip_end}")
        if l4 + hlen > max_parse_bytes:
            raise _Stop(ParseError.PAST_LIMIT,
                        f"TCP header of {hlen} bytes at offset {l4} ends at {l4 + hlen}, "
                        f"past byte {max_parse_bytes}")
        l4_end = ip_end
    else:
        hlen = 8
        if l4 + 8 > ip_end:
            raise _Stop(ParseError.L4_TRUNCATED,
                        f"UDP header at offset {l4} needs 8 bytes, the datagram ends at "
                        f"{ip_end}")
        if l4 + 8 > max_parse_bytes:
            raise _Stop(ParseError.PAST_LIMIT,
                        f"UDP header at offset {l4} ends past byte {max_parse_bytes}")
        ulen = (b[l4 + 4] << 8) | b[l4 + 5]
        if ulen < 8 or l4 + ulen > ip_end:
            raise _Stop(ParseError.BAD_UDP_LENGTH,
                        f"UDP Length {ulen} at offset {l4}: must be >= 8 and end by "
                        f"{ip_end} (IP payload {ip_end - l4})")
        l4_end = l4 + ulen
    return hlen, l4_end




_EXT_NAMES = {_HOPOPT: "Hop-by-Hop", _ROUTING: "Routing", _FRAGMENT: "Fragment", _ESP: "ESP",
              _AH: "AH", _DSTOPTS: "Destination Options", 135: "Mobility", 139: "HIP",
              140: "Shim6", 253: "experimental 253", 254: "experimental 254"}


def pseudo_header_sum(frame: bytes | bytearray | memoryview, headers: Headers,
                      l4_length: int | None = None) -> int:
    """One's-complement sum of the TCP/UDP pseudo-header, not inverted.

    IPv4 (RFC 9293 3.1, RFC 768): source, destination, zero+protocol, L4 length (16 bits).
    IPv6 (RFC 8200 8.1): source, destination (the final one, see ``pseudo_dst_offset``),
    L4 length (32 bits), three zero bytes + next header. This is the value the NDIS transport
    puts in the checksum field before a checksum offload (``offloading-checksum-tasks.md``).

    Parameters
    ----------
    frame : bytes-like
        The frame ``headers`` describes.
    headers : Headers
        ``parse(frame)`` with a TCP or UDP header (``l4_end`` not None) unless ``l4_length``
        is given.
    l4_length : int, optional
        The length to use; default ``headers.l4_length`` (TCP: to ``ip_end``; UDP: its
        Length field). Pass 0 for the sum without length that LSO uses.

    Returns
    -------
    int
        0..0xFFFF, as ``onesum.ones_sum`` represents it.
    """
    if l4_length is None:
        l4_length = headers.l4_length
        if l4_length is None:
            raise ValueError("no TCP/UDP header parsed: give l4_length")
    l3 = headers.l3_offset
    if headers.ip_version == 4:
        s = ones_sum(frame, l3 + 12, l3 + 16)
        s = ones_sum(frame, headers.pseudo_dst_offset, headers.pseudo_dst_offset + 4, s)
        return add(s, headers.l4_proto, l4_length & 0xFFFF)
    if headers.ip_version == 6:
        s = ones_sum(frame, l3 + 8, l3 + 24)
        s = ones_sum(frame, headers.pseudo_dst_offset, headers.pseudo_dst_offset + 16, s)
        return add(s, l4_length >> 16, l4_length & 0xFFFF, headers.l4_proto)
    raise ValueError("not an IP frame")


def with_buffer_length(frame: bytes | bytearray | memoryview, start: int = 0) -> bytearray:
    """A copy of ``frame`` whose IP length field, of the frame that begins at ``start``, says
    the datagram ends where the buffer ends (LSOv2: the length is "the length of the first
    NET_BUFFER", ``offloading-the-segmentation-of-large-tcp-packets.md``).

    IPv4 Total Length or IPv6 Payload Length is rewritten; a buffer longer than the field can
    express is cut to the longest datagram it can (the headers lie in the first 256 bytes,
    so a walk of the copy finds them where they are in ``frame``). A frame whose walk does not
    reach an IP header is copied unchanged. Offsets in the copy are those of ``frame``.
    """
    out = bytearray(frame)
    first = parse(memoryview(out)[start:])
    l3 = first.l3_offset
    if l3 is None or first.ethertype not in (ETH_P_IPV4, ETH_P_IPV6):
        return out
    l3 += start
    fixed = 40 if first.ethertype == ETH_P_IPV6 else 0
    field = l3 + (4 if fixed else 2)
    if len(out) < field + 2:
        return out
    del out[l3 + fixed + 0xFFFF:]
    length = max(len(out) - l3 - fixed, 0)
    out[field] = length >> 8
    out[field + 1] = length & 0xFF
    return out
