"""NVGRE: where the GRE header and the inner frame of an encapsulated frame are, and the
checksums of such a frame.

Every stage that offloads encapsulated frames starts here: ``checksum`` (transmit fill,
receive validation), ``nvgre_lso`` (LSOv2 over NVGRE) and ``transport_nvgre`` (the host
side). Each rule of ``DESIGN.md`` 3 "NVGRE" that is about headers is written once, in this
module; the stages decide what to do with the answers.

Pages (``shared/reference/ndis/``): ``supporting-nvgre-in-checksum-offload.md``,
``supporting-nvgre-in-large-send-offload--lso-.md``,
``locating-the-transport-header-for-encapsulaged-packets-in-the-receive-path.md`` (the
*receive page*: GRE per RFC 2784 and RFC 2890, IPv4 and IPv6), and
``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``
(MaxHeaderSizeSupported).

What an NVGRE frame is (``follow``)
-----------------------------------
1. The outer frame is walked by ``parse.parse``: Ethernet II (802.1Q/802.1ad tags and
   LLC/SNAP as ``parse`` allows), IPv4 with options or IPv6 with extension headers (Hop-by-Hop
   and Destination Options among them). It must be followed, must not be an IP fragment, and
   its upper-layer protocol must be GRE (47). Else: ``NOT_GRE``.
2. The GRE header (RFC 2784, RFC 2890): its first 4 bytes lie inside the outer datagram
   (``GRE_TRUNCATED``); the version (bits 2..0 of the first word) is 0 (``GRE_VERSION``;
   version 1 is PPTP's enhanced GRE); no flag bit other than C (checksum present, 0x8000), K
   (key present, 0x2000) and S (sequence number present, 0x1000) is set: the RFC 1701 routing,
   strict source route, recursion control and flag bits (0x4FF8) are unknown flags
   (``GRE_FLAGS``); the protocol type is 0x6558, Transparent Ethernet Bridging, which NVGRE
   uses (RFC 7637) (``NOT_TEB``); the optional fields, 4 bytes each in the order checksum
   (with Reserved1), key, sequence number, lie inside the outer datagram (``GRE_TRUNCATED``).
   Reserved1 is not looked at.
3. The inner frame begins right after the GRE header (``InnerFrameOffset``) and ends where
   the outer datagram ends (bytes past it are Ethernet padding of the outer frame). It is
   walked by ``parse.parse`` too, with the same L2 (tags, LLC/SNAP) and IP rules as any frame:
   one walker for every Ethernet frame, so the RTL needs only one. It must be followed
   (``INNER_UNPARSEABLE``, with the inner ``ParseError`` in ``inner.error_code``).
4. Every header up to the end of the inner TCP/UDP header (the end of the inner IP headers
   for an inner fragment or another protocol) lies within the first
   ``NVGRE_MAX_HEADER_BYTES`` = 256 bytes of the frame (``INNER_PAST_LIMIT``; also when the
   inner walk stops at an IPv6 extension header that ends past byte 248, EXT_TOO_LONG, since
   no TCP/UDP header could then end within 256): DESIGN 3
   "Headers up to the inner TCP header's end: at most 256 bytes", the MaxHeaderSizeSupported
   we report, and the parse window the RTL holds.

A frame that is GRE but not NVGRE (steps 2-4) is offloaded as a frame whose upper-layer
protocol is GRE: outer headers only (DESIGN 3). The receive page: "If the NIC finds an
unknown or unsupported encapsulation protocol, it must pass the packet unchanged".

The supplemental word (``offsets_disagree``)
--------------------------------------------
NDIS_TCP_SEND_OFFLOADS_SUPPLEMENTAL_NET_BUFFER_LIST_INFO locates the inner headers; the NVGRE
pages let the NIC "perform any needed header checks ... to validate these offsets". Ours:
with EncapsulatedPacketOffsetsValid set, InnerFrameOffset must be the inner frame's offset,
TransportIpHeaderRelativeOffset the inner IP header's offset from it, TcpHeaderRelativeOffset
the inner TCP/UDP header's offset from the inner IP header (the USO page: it "refers to the
UDP header" for UDP), IsInnerIPv6 the inner IP version and TcpOptionsPresent whether the
inner TCP header has options (0 for UDP). One that disagrees is a request the NIC does not
carry out (the stage says how). With EncapsulatedPacketOffsetsValid clear the fields are not
read and the walk alone locates the headers.

Checksums (``checksum.fill_encapsulated``, GRE: ``fill_gre_checksum``)
---------------------------------------------------------------------
``checksum.fill_encapsulated`` writes the checksums of a followed NVGRE frame whose fields
the transport prepared (IPv4 header checksums: any value, ignored; TCP/UDP: the non-inverted pseudo-header sum with
the L4 length, as for any checksum offload): the outer IPv4 header checksum, the inner IPv4
header checksum, the inner TCP or UDP checksum (UDP 0x0000 written 0xFFFF, RFC 768/8200), and
then, when the GRE checksum is present (C=1), the GRE checksum over the GRE header and the
whole inner frame with its field taken as zero (RFC 2784 2.5), last, because it covers the
inner checksums just written (DESIGN 3). A GRE checksum that computes to 0 is written 0x0000
(RFC 2784 has no special case).
"""

from __future__ import annotations

import dataclasses
import enum

from .nbl import SendSupplemental
from .onesum import ones_sum
from .parse import Headers, ParseError, parse, with_buffer_length

__all__ = ["IPPROTO_GRE", "ETH_P_TEB", "GRE_C", "GRE_K", "GRE_S", "NVGRE_MAX_HEADER_BYTES",
           "NvgreError", "Nvgre", "follow", "offsets_disagree", "supplemental_for",
           "fill_gre_checksum"]

IPPROTO_GRE = 47
ETH_P_TEB = 0x6558          # Transparent Ethernet Bridging: NVGRE's GRE protocol type
GRE_C, GRE_K, GRE_S = 0x8000, 0x2000, 0x1000   # in the GRE header's first 16-bit word
_GRE_UNKNOWN_FLAGS = 0x4FF8  # R, s, Recur (RFC 1701) and the flag bits before the version
_GRE_VERSION = 0x0007
NVGRE_MAX_HEADER_BYTES = 256
#: The inner walk's errors that mean "the headers do not end within NVGRE_MAX_HEADER_BYTES".
_PAST_THE_WINDOW = (ParseError.PAST_LIMIT, ParseError.EXT_TOO_LONG)


class NvgreError(enum.IntEnum):
    """Why ``follow`` did not find an NVGRE frame it can offload."""
    NOT_GRE = 1            # outer walk failed, an outer fragment, or not GRE (47)
    GRE_TRUNCATED = 2      # the GRE header or one of its optional fields past the datagram
    GRE_VERSION = 3        # GRE version != 0
    GRE_FLAGS = 4          # a flag bit other than C, K, S
    NOT_TEB = 5            # GRE protocol type != 0x6558
    INNER_UNPARSEABLE = 6  # parse() stopped on the inner frame (see inner.error_code)
    INNER_PAST_LIMIT = 7   # inner headers end past NVGRE_MAX_HEADER_BYTES


@dataclasses.dataclass(frozen=True, slots=True)
class Nvgre:
    """Where the headers of an encapsulated frame are. Offsets count from the first byte of
    the outer frame; fields after a failure are None.

    Attributes
    ----------
    outer : Headers
        ``parse`` of the whole frame (its upper-layer protocol is GRE for an NVGRE frame).
    gre_offset : int or None
        The GRE header's offset (``outer.l4_offset``).
    gre_flags : int or None
        The first 16-bit word of the GRE header (flags and version).
    gre_header_len : int or None
        4, plus 4 for each of checksum, key and sequence number present.
    gre_checksum_offset, key_offset, seq_offset : int or None
        Offsets of the GRE checksum, key and sequence number fields when present.
    key, seq : int or None
        Their values.
    inner_offset : int or None
        The inner Ethernet header's offset (InnerFrameOffset).
    inner : Headers or None
        ``parse`` of the inner frame, its offsets made absolute (counted from the outer
        frame's first byte, like every offset here); set, possibly partial, from step 3 on.
    error_code : NvgreError or None
        Why the frame is not an NVGRE frame we offload; None when it is.
    error : str or None
        ``error_code`` with the specifics.
    """

    outer: Headers
    gre_offset: int | None = None
    gre_flags: int | None = None
    gre_header_len: int | None = None
    gre_checksum_offset: int | None = None
    key_offset: int | None = None
    seq_offset: int | None = None
    key: int | None = None
    seq: int | None = None
    inner_offset: int | None = None
    inner: Headers | None = None
    error_code: NvgreError | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """An NVGRE frame followed to the end of its inner headers."""
        return self.error_code is None

    @property
    def headers_end(self) -> int | None:
        """One past the last inner header (TCP/UDP header; IP headers for the rest)."""
        if self.inner is None or self.inner.l4_offset is None:
            return None
        return self.inner.l4_offset + (self.inner.l4_header_len or 0)


def _shift(h: Headers, by: int) -> Headers:
    """``h`` with every offset moved by ``by`` bytes."""
    moved = {name: getattr(h, name) + by
             for name in ("l3_offset", "ip_end", "pseudo_dst_offset", "l4_offset", "l4_end")
             if getattr(h, name) is not None}
    return dataclasses.replace(h, **moved)


def follow(frame: bytes | bytearray | memoryview, *, outer: Headers | None = None,
           lengths_from_buffer: bool = False) -> Nvgre:
    """Walk an encapsulated frame (rules in the module docstring).

    Parameters
    ----------
    frame : bytes-like
        The whole frame, outer Ethernet header first, no FCS.
    outer : Headers, optional
        ``parse(frame)`` when the caller has it already (not with ``lengths_from_buffer``).
    lengths_from_buffer : bool
        Walk as LSOv2 does: the outer and inner IP length fields are taken to say that each
        datagram ends where the buffer ends (``parse.with_buffer_length``); the length fields
        themselves are the caller's business. ``ip_end`` of ``outer`` and ``inner`` then
        mean the buffer's end (cut to what a 16-bit field can express).

    Returns
    -------
    Nvgre
    """
    if lengths_from_buffer:
        frame = with_buffer_length(frame)
        outer = None
    if outer is None:
        outer = parse(frame)
    if not outer.ok or outer.is_fragment or outer.l4_proto != IPPROTO_GRE:
        why = (outer.error if not outer.ok else "an IP fragment" if outer.is_fragment
               else f"IP protocol {outer.l4_proto}")
        return Nvgre(outer, error_code=NvgreError.NOT_GRE, error=f"not_gre: {why}")
    gre, end = outer.l4_offset, outer.ip_end
    fields = {"gre_offset": gre}

    def stop(code: NvgreError, detail: str) -> Nvgre:
        return Nvgre(outer, **fields, error_code=code, error=f"{code.name.lower()}: {detail}")

    if gre + 4 > end:
        return stop(NvgreError.GRE_TRUNCATED,
                    f"GRE header at offset {gre} needs 4 bytes, the datagram ends at {end}")
    word = (frame[gre] << 8) | frame[gre + 1]
    proto = (frame[gre + 2] << 8) | frame[gre + 3]
    fields["gre_flags"] = word
    if word & _GRE_VERSION:
        return stop(NvgreError.GRE_VERSION, f"GRE version {word & _GRE_VERSION}")
    if word & _GRE_UNKNOWN_FLAGS:
        return stop(NvgreError.GRE_FLAGS,
                    f"GRE flags {word:#06x}: bits {word & _GRE_UNKNOWN_FLAGS:#06x} unknown")
    if proto != ETH_P_TEB:
        return stop(NvgreError.NOT_TEB, f"GRE protocol type {proto:#06x}")
    at = gre + 4
    for bit, name in ((GRE_C, "gre_checksum_offset"), (GRE_K, "key_offset"),
                      (GRE_S, "seq_offset")):
        if word & bit:
            fields[name] = at
            at += 4
    fields["gre_header_len"] = at - gre
    if at > end:
        return stop(NvgreError.GRE_TRUNCATED,
                    f"GRE header of {at - gre} bytes at offset {gre} ends at {at}, the "
                    f"datagram ends at {end}")
    for name, value in (("key_offset", "key"), ("seq_offset", "seq")):
        if name in fields:
            fields[value] = int.from_bytes(frame[fields[name]:fields[name] + 4], "big")
    fields["inner_offset"] = at
    inner_bytes = memoryview(frame)[at:end]
    if lengths_from_buffer:
        inner_bytes = with_buffer_length(inner_bytes)
    inner = parse(inner_bytes, max_parse_bytes=NVGRE_MAX_HEADER_BYTES - at)
    fields["inner"] = _shift(inner, at)
    if not inner.ok:
        code = (NvgreError.INNER_PAST_LIMIT if inner.error_code in _PAST_THE_WINDOW
                else NvgreError.INNER_UNPARSEABLE)
        return stop(code, f"inner frame at offset {at}: {inner.error}")
    headers_end = at + inner.l4_offset + inner.l4_header_len
    if headers_end > NVGRE_MAX_HEADER_BYTES:
        return stop(NvgreError.INNER_PAST_LIMIT,
                    f"inner headers end at byte {headers_end}, past "
                    f"{NVGRE_MAX_HEADER_BYTES}")
    return Nvgre(outer, **fields)


def supplemental_for(nv: Nvgre) -> SendSupplemental:
    """The supplemental word a transport sends with a followed NVGRE frame: every offset
    given and marked valid."""
    inner = nv.inner
    return SendSupplemental(
        IsEncapsulatedPacket=1, EncapsulatedPacketOffsetsValid=1,
        InnerFrameOffset=nv.inner_offset,
        TransportIpHeaderRelativeOffset=inner.l3_offset - nv.inner_offset,
        TcpHeaderRelativeOffset=inner.l4_offset - inner.l3_offset,
        IsInnerIPv6=int(inner.ip_version == 6),
        TcpOptionsPresent=int(inner.is_tcp and inner.l4_header_len > 20))


def offsets_disagree(nv: Nvgre, supplemental: SendSupplemental) -> str | None:
    """What in ``supplemental`` disagrees with the headers of the followed frame ``nv``, or
    None (always None with EncapsulatedPacketOffsetsValid clear: nothing is given)."""
    if not supplemental.EncapsulatedPacketOffsetsValid:
        return None
    want = supplemental_for(nv)
    wrong = [f"{name} {getattr(supplemental, name)} (headers say {getattr(want, name)})"
             for name in ("InnerFrameOffset", "TransportIpHeaderRelativeOffset",
                          "TcpHeaderRelativeOffset", "IsInnerIPv6", "TcpOptionsPresent")
             if getattr(supplemental, name) != getattr(want, name)]
    return "; ".join(wrong) or None


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset] = value >> 8
    buf[offset + 1] = value & 0xFF


def fill_gre_checksum(out: bytearray, nv: Nvgre, end: int | None = None) -> None:
    """The GRE checksum (when present) over the GRE header and the payload up to ``end``
    (default: the outer datagram's end), its field taken as zero."""
    at = nv.gre_checksum_offset
    if at is None:
        return
    _put16(out, at, 0)
    _put16(out, at, ~ones_sum(out, nv.gre_offset, nv.outer.ip_end if end is None else end)
           & 0xFFFF)
