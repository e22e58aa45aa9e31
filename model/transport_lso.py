"""The NDIS TCP/IP transport's side of large send offload: how a large TCP send reaches the NIC.

``prepare_large_send`` takes a finished frame (lengths and checksums as on a capture) and
returns what Windows' TCP/IP stack hands to ``MiniportSendNetBufferLists`` for an LSOv1 or
LSOv2 send: the prepared frame, the NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO word and
the NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO word. ``lso.segment`` is the NIC's side.
Ordinary (non-LSO) frames are prepared by ``transport.prepare_checksum``.

What the transport does (``offloading-the-segmentation-of-large-tcp-packets.md``, the
*LSO page*, "Before offloading a large TCP packet for segmentation, the TCP/IP transport"):

- LsoV1Transmit / LsoV2Transmit: MSS = the maximum segment size, Type = 0 (v1) or 1 (v2),
  LSOv2 IPVersion = 0 for IPv4, 1 for IPv6; TcpHeaderOffset = the TCP header's offset from
  the first byte of the frame (*LSO page*;
  ``accessing-tcp-ip-offload-net-buffer-list-information.md``). Bit layouts from ``nbl``.
- IPv4 Total Length: the whole datagram (IP header, options, TCP header, options, payload)
  for LSOv1; 0 for LSOv2, whose length comes from the NET_BUFFER (*LSO page*).
- TCP checksum field: the one's-complement sum of the pseudo-header over source address,
  destination address and protocol, without the TCP length (*LSO page*), from
  ``parse.pseudo_header_sum(..., l4_length=0)`` (final destination of a type 2/4 routing
  header for IPv6).
- IPv4 header checksum field: 0 ("the TCP/IP transport always ensures that the checksum field
  in the IP header of a packet is set to zero", ``offloading-checksum-tasks.md``).
- The sequence number is the one of the first payload byte: the frame's, unchanged.

Decisions where the pages are silent:

- IPv6 Payload Length: the pages say nothing; the NIC ignores it (DESIGN 3). We write 0, as
  LSOv2 does for the IPv4 Total Length, so that nothing downstream can lean on it.
- The checksum info word is all zero. The *LSO page* asks the transport for no checksum
  info on an LSO send; the NIC computes every IPv4 and TCP checksum of the segments anyway
  (*LSO page*; ``offloading-checksum-tasks.md``: disabling checksum offload does not stop
  them). Only NVGRE sends carry a valid checksum word with LSO
  (``supporting-nvgre-in-large-send-offload--lso-.md``): ``transport_nvgre`` prepares those.
- The buffer ends where the IP datagram ends: Ethernet padding or trailer bytes past the IP
  length of the input frame are cut (the transport never hands them down).
- The transport offloads only what the *LSO page* says it does: a TCP packet, not an IP
  fragment, URG/RST/SYN clear and urgent pointer 0, IPv4 for LSOv1. Anything else raises
  ``ValueError``, as does an MSS outside 1..2**20-1 or a TCP header past offset 1023 (the
  10-bit TcpHeaderOffset). MinSegmentCount, MaxOffLoadSize and the enables are the caller's
  business (the caller decides whether to offload); ``lso.segment`` enforces them.

Segmentation in software (``segment_in_software``): a large send the NIC's LSO cannot take
(the offload is off, the send makes fewer segments than MinSegmentCount, more payload than
MaxOffLoadSize, or segments longer than the NIC's largest frame) is cut by the transport
itself, as Windows' TCP/IP stack does for every send it does not offload. The segments follow
the rules ``DESIGN.md`` 3 "LSO" sets for the NIC, so the wire looks the same either way:
MSS-sized payloads (the last one shorter), headers and options copied, lengths recomputed,
sequence numbers advancing by payload, FIN and PSH only on the last segment and CWR only on
the first, IPv4 IDs by the "ndis" rule (or "linux"), every IPv4 and TCP checksum correct.
Each segment is then an ordinary frame, for which the transport requests checksum offload
as for any other (``transport.prepare_checksum``).

Captured sends over 64 KB (``split_captured_send``): a host with TSO/GSO captures its large
sends before they are segmented, and one whose IP datagram exceeds 65535 bytes cannot state
its length in the IP header. Linux BIG TCP writes IPv4 Total Length 0 (the length is the
buffer's, as for LSOv2) and, for IPv6, Payload Length 0 with an RFC 2675 Jumbo Payload option
in an 8-byte Hop-by-Hop header, which the stack's drivers strip before the NIC sees the
packet (the NDIS transport never sends jumbograms). ``split_captured_send`` recognises such a
frame (length field 0, a TCP header behind it; the jumbo header only when it is that 8-byte
header alone and its length agrees with the frame) and returns its headers as a finished
frame plus the rest of its bytes as payload, ready for ``prepare_large_send(...,
extra_payload=...)``.
"""

from __future__ import annotations

from .nbl import LSO_IPV4, LSO_IPV6, LSO_TYPE_V1, LSO_TYPE_V2, ChecksumTx, LsoV1Transmit, \
    LsoV2Transmit
from .lso import ip_id, segment_flags
from .parse import parse, pseudo_header_sum
from .transport import fill_checksums

_HOPOPT, _JUMBO_OPTION = 0, 0xC2

__all__ = ["prepare_large_send", "segment_in_software", "split_captured_send", "VERSIONS",
           "ID_MODES"]

VERSIONS = ("v1", "v2")
ID_MODES = ("ndis", "linux")

_SYN, _RST, _URG = 0x02, 0x04, 0x20


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset] = value >> 8
    buf[offset + 1] = value & 0xFF


def prepare_large_send(frame: bytes | bytearray | memoryview, mss: int, version: str, *,
                       extra_payload: bytes | bytearray | memoryview = b""
                       ) -> tuple[bytes, int, ChecksumTx]:
    """Prepare a finished TCP frame for LSOv1 or LSOv2 as the NDIS TCP/IP transport would.

    Parameters
    ----------
    frame : bytes-like
        One TCP/IP frame with consistent length fields (its checksums are replaced), from the
        destination MAC address on, without FCS; its payload is the whole large send.
    mss : int
        Maximum segment size, 1..2**20-1 (the 20-bit MSS field).
    version : {"v1", "v2"}
        LSOv1 (IPv4 only) or LSOv2 (IPv4 or IPv6).
    extra_payload : bytes-like, optional
        More TCP payload appended after the frame's own. A finished frame cannot describe a
        datagram over 65535 bytes (IPv4 Total Length, IPv6 Payload Length), an LSOv2 send
        can: build the headers (and some payload) as a frame and pass the rest here.

    Returns
    -------
    (bytes, int, ChecksumTx)
        The prepared frame, the LsoV1Transmit/LsoV2Transmit word as an int, and the
        checksum info word (all zero for LSO sends; see the module docstring).

    Raises
    ------
    ValueError
        ``version`` or ``mss`` out of range, or a frame the transport would not offload
        (unparseable, not TCP, a fragment, URG/RST/SYN or urgent pointer set, IPv6 with v1,
        TCP header past offset 1023), or an LSOv1 datagram over 65535 bytes.
    """
    if version not in VERSIONS:
        raise ValueError(f"version {version!r}: must be one of {VERSIONS}")
    if not isinstance(mss, int) or not 1 <= mss < (1 << 20):
        raise ValueError(f"mss {mss!r}: must be an int in 1..{(1 << 20) - 1}")
    h = parse(frame)
    if h.error_code is not None:
        raise ValueError(f"cannot offload a frame the parser cannot follow: {h.error}")
    if h.is_fragment:
        raise ValueError("the transport never offloads an IP fragment")
    if not h.is_tcp:
        raise ValueError(f"not a TCP frame (IP protocol {h.l4_proto})")
    if version == "v1" and h.ip_version != 4:
        raise ValueError("LSOv1 is IPv4 only")
    l3, l4 = h.l3_offset, h.l4_offset
    if l4 >= 1 << 10:
        raise ValueError(f"TCP header at offset {l4} does not fit the 10-bit TcpHeaderOffset")
    flags = frame[l4 + 13]
    if flags & (_URG | _RST | _SYN):
        raise ValueError(f"TCP flags {flags:#04x}: the transport never offloads URG/RST/SYN")
    if frame[l4 + 18] or frame[l4 + 19]:
        raise ValueError("urgent pointer set: the transport never offloads it")

    out = bytearray(frame[:h.ip_end])
    out += extra_payload
    if version == "v1" and len(out) - l3 > 0xFFFF:
        raise ValueError(f"LSOv1 datagram of {len(out) - l3} bytes: the IPv4 Total Length "
                         f"holds at most 65535")
    if h.ip_version == 4:
        _put16(out, l3 + 2, len(out) - l3 if version == "v1" else 0)
        _put16(out, l3 + 10, 0)
    else:
        _put16(out, l3 + 4, 0)
    _put16(out, l4 + 16, pseudo_header_sum(out, h, l4_length=0))

    if version == "v1":
        word = LsoV1Transmit(MSS=mss, TcpHeaderOffset=l4, Type=LSO_TYPE_V1)
    else:
        word = LsoV2Transmit(MSS=mss, TcpHeaderOffset=l4, Type=LSO_TYPE_V2,
                             IPVersion=LSO_IPV6 if h.ip_version == 6 else LSO_IPV4)
    return bytes(out), word.to_int(), ChecksumTx()


def segment_in_software(frame: bytes | bytearray | memoryview, mss: int, *,
                        extra_payload: bytes | bytearray | memoryview = b"",
                        id_mode: str = "ndis") -> list[bytes]:
    """Cut a finished TCP frame into MSS-sized segments as the transport does when it does not
    offload the send (see the module docstring).

    Parameters
    ----------
    frame : bytes-like
        One TCP/IP frame with consistent length fields; its payload is the send. Bytes past
        the IP datagram (Ethernet padding) are not part of it.
    mss : int
        Most TCP payload bytes per segment, >= 1.
    extra_payload : bytes-like, optional
        More payload after the frame's own (a captured send over 64 KB, as for
        ``prepare_large_send``).
    id_mode : {"ndis", "linux"}
        How the IPv4 ID advances from segment to segment (``DESIGN.md`` 3).

    Returns
    -------
    list of bytes
        The segments, every IPv4 header and TCP checksum filled; one segment (the frame with
        its checksums filled) when the payload fits the MSS.

    Raises
    ------
    ValueError
        A bad ``mss`` or ``id_mode``; a frame the transport would not segment (unparseable,
        not TCP, a fragment, URG/RST/SYN or urgent pointer set); a segment whose IP length
        would not fit its 16-bit field.
    """
    if id_mode not in ID_MODES:
        raise ValueError(f"id_mode {id_mode!r}: must be one of {ID_MODES}")
    if not isinstance(mss, int) or mss < 1:
        raise ValueError(f"mss {mss!r}: must be an int >= 1")
    h = parse(frame)
    if h.error_code is not None:
        raise ValueError(f"cannot segment a frame the parser cannot follow: {h.error}")
    if h.is_fragment or not h.is_tcp:
        raise ValueError("only a whole TCP segment can be cut into segments")
    l3, l4 = h.l3_offset, h.l4_offset
    hdr_end = l4 + h.l4_header_len
    flags = frame[l4 + 13]
    if flags & (_URG | _RST | _SYN) or frame[l4 + 18] or frame[l4 + 19]:
        raise ValueError(f"TCP flags {flags:#04x} or urgent pointer: not a segmentable send")
    payload = bytes(frame[hdr_end:h.ip_end]) + bytes(extra_payload)
    fixed = 40 if h.ip_version == 6 else 0
    if hdr_end - l3 - fixed + min(mss, len(payload)) > 0xFFFF:
        raise ValueError(f"a segment of {min(mss, len(payload))} payload bytes does not fit "
                         f"the IP length field")
    template = bytearray(frame[:hdr_end])
    length_8023 = 12 + 4 * h.vlan_tags if h.llc_snap else None
    seq0 = int.from_bytes(template[l4 + 4:l4 + 8], "big")
    id0 = int.from_bytes(template[l3 + 4:l3 + 6], "big") if h.ip_version == 4 else 0
    count = max(1, -(-len(payload) // mss))
    segments = []
    for k in range(count):
        seg = template + payload[k * mss:(k + 1) * mss]
        if length_8023 is not None:
            _put16(seg, length_8023, len(seg) - length_8023 - 2)
        if h.ip_version == 4:
            _put16(seg, l3 + 2, len(seg) - l3)
            _put16(seg, l3 + 4, ip_id(id0, k, id_mode))
        else:
            _put16(seg, l3 + 4, len(seg) - l3 - 40)
        seg[l4 + 4:l4 + 8] = ((seq0 + k * mss) & 0xFFFFFFFF).to_bytes(4, "big")
        seg[l4 + 13] = segment_flags(flags, k, count)
        segments.append(fill_checksums(seg))
    return segments


def split_captured_send(frame: bytes | bytearray | memoryview) -> tuple[bytes, bytes] | None:
    """A captured TCP send whose IP length field is 0 (see the module docstring), as
    ``(headers, payload)``: ``headers`` is a finished frame of the L2, IP and TCP headers with
    consistent lengths, ``payload`` the bytes after them; None for any other frame.

    The IPv6 Jumbo Payload Hop-by-Hop header is removed (its Next Header moves into the IPv6
    header). A frame whose jumbo length disagrees with its size, whose headers do not parse
    once the length is taken from the frame, that is a fragment or not TCP, is not such a send.
    """
    frame = bytes(frame)
    h = parse(frame)
    l3 = h.l3_offset
    if l3 is None or h.ip_version is None:
        return None
    out = bytearray(frame)
    if h.ip_version == 4:
        if out[l3 + 2] or out[l3 + 3]:
            return None
        length_at, fixed = l3 + 2, 0
    else:
        if len(out) < l3 + 40 or out[l3 + 4] or out[l3 + 5]:
            return None
        length_at, fixed = l3 + 4, 40
        if out[l3 + 6] == _HOPOPT:
            hbh = out[l3 + 40:l3 + 48]
            if len(hbh) < 8 or hbh[1] != 0 or hbh[2] != _JUMBO_OPTION or hbh[3] != 4:
                return None
            if int.from_bytes(hbh[4:8], "big") != len(out) - l3 - 40:
                return None
            out[l3 + 6] = hbh[0]
            del out[l3 + 40:l3 + 48]
    _put16(out, length_at, min(len(out) - l3 - fixed, 0xFFFF))
    h = parse(out)
    if not h.ok or not h.is_tcp or h.is_fragment:
        return None
    end = h.l4_offset + h.l4_header_len
    _put16(out, length_at, end - l3 - fixed)
    return bytes(out[:end]), bytes(out[end:])
