"""Large send offload (LSOv1, LSOv2): one large TCP send in, wire segments and a completion out.

``segment(frame, lso_word, limits)`` is what the NIC does with a host frame whose
NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO word is non-zero: check the send, cut its TCP
payload into MSS-sized pieces, give each piece a copy of the template headers with the fields
that must change rewritten, fill every IPv4 header checksum and TCP checksum, and report the
send on the TX completion stream. ``transport_lso.prepare_large_send`` builds such sends the
way the NDIS TCP/IP transport does.

Pages cited, all in ``shared/reference/ndis/``:

- ``offloading-the-segmentation-of-large-tcp-packets.md`` (*LSO page*) and its figure
  ``images/segmentation.png``;
- ``reporting-a-nic-s-lsov1-tcp-packet-segmentation-capabilities.md`` (*LSOv1 caps*);
- ``reporting-a-nic-s-lsov2-tcp-packet-segmentation-capabilities.md`` (*LSOv2 caps*);
- ``accessing-tcp-ip-offload-net-buffer-list-information.md`` (*OOB page*);
- ``combining-types-of-task-offloads.md``; ``offloading-checksum-tasks.md``;
- ``supporting-nvgre-in-large-send-offload--lso-.md`` (*NVGRE LSO page*);

and ``DESIGN.md`` 3 "LSO (v1 and v2)", which is the contract where the pages are silent.

Checks, in this order (the first failure drops the whole send; RTL reports the same code)
----------------------------------------------------------------------------------------
1. ``lso_word == 0``: not an LSO send; ``segment`` raises ``ValueError`` (the caller routes
   such frames to the checksum stage). The word is read as LsoV1Transmit or LsoV2Transmit by
   its Type bit (*LSO page*: the miniport "must determine the offload type" from Type). The
   LsoV1Transmit Reserved2 bit (bit 31) is ignored.
2. ``LSO_DISABLED``: the offload the word asks for (LSOv1 IPv4; LSOv2 with IPVersion 0/1) is
   off in ``limits``. *LSO page*: after LSO is turned off "the miniport shall drop all
   NET_BUFFER_LIST that contains any nonzero LSOv1 or LSOv2 OOB data". Judged from the word
   alone, before the frame is looked at.
3. ``LSO_BAD_MSS``: MSS is 0 (DESIGN 3).
4. The frame is walked by ``parse.parse`` with the IP length field replaced by the buffer
   length (step 9 checks the field itself): LSOv2 takes the length "from the length of the
   first NET_BUFFER" (*LSO page*), and LSOv1's Total Length must equal it. A walk that stops
   early maps to: ``MALFORMED`` when the frame is shorter than a header it announces or a
   header field is impossible (RUNT, L2/L3/EXT/L4_TRUNCATED, BAD_IHL, BAD_IP_LENGTH,
   BAD_TCP_OFFSET); ``LSO_NOT_TCP`` when the walk cannot reach an IP/TCP header (NOT_IP,
   NOT_SNAP, BAD_LENGTH_TYPE, TOO_MANY_VLAN_TAGS, BAD_VERSION, EXT_UNFOLLOWABLE,
   BAD_UDP_LENGTH); ``LSO_HEADERS_TOO_LONG`` for EXT_TOO_LONG and PAST_LIMIT.
5. ``LSO_GUARANTEE``: an IPv4 fragment (MF set or fragment offset non-zero) or an IPv6
   fragment (Fragment header with M or an offset); *LSO page*: "The MF bit ... won't be set,
   and the fragment offset ... will be zero". An IPv6 atomic fragment header is not a
   fragment and is copied like any extension header.
6. ``LSO_NOT_TCP``: the IP version is not the word's (LSOv1 is IPv4 only: *LSOv1 caps*,
   ``combining-types-of-task-offloads.md``; LSOv2 IPVersion 0 = IPv4, 1 = IPv6), or the
   upper-layer protocol is not TCP (*LSO page*: "The packet is a TCP packet").
7. ``LSO_BAD_HEADER_OFFSET``: TcpHeaderOffset is not the offset of the TCP header the parser
   found, for LSOv1 and LSOv2 alike (*LSO page*, *OOB page*: it locates the TCP header "so
   that the miniport driver does not have to parse IP headers"; we parse anyway and require
   them to agree). 0 is not special: it never lands on a TCP header.
8. ``LSO_HEADERS_TOO_LONG``: the headers, from the first byte of the frame to the end of the
   TCP header (L2 with tags or LLC/SNAP, IP with options or extension headers, TCP with
   options), are longer than ``limits.max_header_bytes``: by default 256, the parse window
   ``parse.MAX_PARSE_BYTES`` that the RTL holds too (DESIGN 3: "The NIC segments every send
   whose headers, Ethernet through TCP options, end within 256 bytes ... A send past that is
   dropped with its reason"). At the default, headers past byte 256 have already stopped the
   walk of step 4 (PAST_LIMIT) with this same code, and so has an IPv6 extension header
   that ends past byte 248 (``parse.MAX_EXT_END``, EXT_TOO_LONG: no TCP header could follow
   it within 256). Every header block the parser accepts is 2 mod 4 bytes long (the 14-byte
   Ethernet header, everything else in 4-byte units), so the longest that is segmented is
   254 bytes (e.g. LLC/SNAP behind two tags, IPv6 with 160 bytes of extension headers, 24 bytes
   of TCP) and the shortest past the window 258.
9. ``LSO_GUARANTEE``, the remaining transport guarantees (*LSO page*, DESIGN 3): URG, RST or
   SYN set; urgent pointer non-zero; LSOv1: IPv4 Total Length != the buffer length from the
   IP header on; LSOv2 over IPv4: Total Length != 0; the TCP checksum field is not the
   pseudo-header sum without the TCP length (source, destination, protocol; for IPv6 with a
   type 2/4 routing header the final destination as ``parse`` finds it). The field is
   compared as a one's-complement number, so 0x0000 and 0xFFFF are both accepted where the
   sum is 0xFFFF. The IPv6 Payload Length is ignored (DESIGN 3) and so is the IPv4 header
   checksum field (``offloading-checksum-tasks.md``).
10. ``LSO_TOO_LARGE``: more TCP payload than the MaxOffLoadSize for the word's version and IP
    version (*LSO page*: the TCP user data "should be equal to or less than" MaxOffLoadSize).
11. ``LSO_TOO_FEW_SEGMENTS``: ceil(payload / MSS) < MinSegmentCount (*LSO page*: the number
    of segments "must be equal to or greater than the MinSegmentCount"). A send with no
    payload makes zero segments and is dropped here whatever MinSegmentCount is (a
    MinSegmentCount of 0 acts as 1): no segment can be "derived" from no user data, and the
    transport only offloads a packet it can divide into segments.
12. ``LSO_BAD_MSS``: the largest segment (min(MSS, payload) bytes of payload) does not fit
    its length fields: IPv4 Total Length or IPv6 Payload Length over 0xFFFF, or, for an
    802.3 LLC/SNAP frame, an 802.3 length over 1500; or the segment is longer than
    ``LsoLimits.max_segment_bytes`` (default ``checksum.TX_MAX_FRAME``, 9728 bytes), the
    largest frame the NIC's checksum stage can hold whole to fill its checksums (a hardware
    limit, shared with the RTL).

Segments (*LSO page* and its figure, DESIGN 3)
----------------------------------------------
- Segment k (0-based) carries payload bytes [k*MSS, min((k+1)*MSS, payload)): all but the
  last carry exactly MSS bytes.
- Every header byte up to the end of the TCP header is copied from the template (VLAN tags,
  IPv4 options, IPv6 extension headers, TCP options including timestamps unaltered: "the NIC
  will not increment the Time Stamp option"), except:

  * 802.3 LLC/SNAP frames: the 802.3 length field = bytes after it in the segment (ours;
    the frame would be malformed otherwise).
  * IPv4 Total Length = IPv4 header + TCP header + segment payload; IPv6 Payload Length =
    extension headers + TCP header + segment payload.
  * IPv4 Identification (IPv4 only): segment 0 carries the template ID id0; segment k carries
    ``(id0 & 0x8000) | ((id0 + k) & 0x7FFF)`` in mode ``"ndis"`` (*LSO page*: IDs in
    0x0000..0x7FFF, "0x7FFE ... followed by 0x7FFF, 0x0000, 0x0001"; the top bit of id0 is
    kept, so a template ID with the top bit set is used as given, as the first segment must
    be), or ``(id0 + k) & 0xFFFF`` in mode ``"linux"``. Both LSO versions.
  * IPv4 header checksum: computed (the template's field is ignored).
  * TCP sequence number: template + k*MSS, modulo 2**32.
  * TCP flags: FIN and PSH only on the last segment, CWR only on the first (*LSO page*; we
    take its preferred choice for CWR), every other bit (ACK, ECE, the reserved/AE bits, the
    data offset) as given. A one-segment send keeps all of them.
  * TCP checksum: the complement of the one's-complement sum of the template's field (the
    transport's pseudo-header sum without length), the segment's TCP length (header +
    payload), its TCP header and its payload (*LSO page*: "the NIC extends the pseudo-header
    checksum ... to cover the TCP Length of each generated TCP segment"). A result of 0 is
    written 0x0000 (RFC 9293 has no special case).

- Segments are not padded to the 60-byte Ethernet minimum; the MAC does that.
- Checksums are filled whether checksum offload is enabled or not
  (``offloading-checksum-tasks.md``: turning checksum offload off "does not prevent the
  miniport driver from computing and inserting checksums in the packets generated by the LSO
  feature"); the checksum info word plays no part.

Whole drops (DESIGN 2 and 3)
----------------------------
A send that fails a check is dropped whole: its result has no segments, at every send size,
whatever check fails, including those that depend on where the send ends (payload over
MaxOffLoadSize, too few segments for MinSegmentCount, an LSOv1 Total Length that is not the
buffer's, a largest segment too long for its length fields). The NIC can hold to this
because the host frame's length rides in the first beat's ``tuser`` (DESIGN 2: "with the
length known up front, every LSO check is decided before the first byte of a send leaves,
and a bad send is dropped whole"); the NDIS pages describe the same NIC.

Completion (*LSO page*, *OOB page*, DESIGN 2 and 3)
---------------------------------------------------
LSOv1: LsoV1TransmitComplete{TcpPayload = payload bytes sent, Type = 0}; a dropped send sent
nothing, so TcpPayload = 0. LSOv2: LsoV2TransmitComplete{Reserved = 0, Type = 1}, sent or
dropped. ``TxCompletion.Status`` is ``TxStatus.SENT`` or the drop reason.

Encapsulation
-------------
A send whose supplemental word has IsEncapsulatedPacket set is an NVGRE large send:
``nvgre_lso.segment_encapsulated`` checks and cuts it (its docstring has the rules, DESIGN 3
"NVGRE"), with the same drop reasons, ID rule (``ip_id``, always mode "ndis" there) and flag
rule (``segment_flags``) as here, and ``limits.max_encapsulated_header_bytes`` in the place of ``max_header_bytes``.
"""

from __future__ import annotations

import dataclasses
import struct

from .checksum import TX_MAX_FRAME
from .nbl import (LSO_IPV6, LSO_TYPE_V2, LsoV1TransmitComplete, LsoV2TransmitComplete,
                  SendSupplemental, TxCompletion, TxStatus, decode_lso_transmit)
from .onesum import add, ones_sum
from .parse import (MAX_PARSE_BYTES, Headers, ParseError, parse, pseudo_header_sum,
                    with_buffer_length)

__all__ = ["LsoLimits", "LsoResult", "segment", "ip_id", "segment_flags", "parse_error_status",
           "ID_MODES", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG",
           "TCP_ECE", "TCP_CWR"]

ID_MODES = ("ndis", "linux")

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH = 0x01, 0x02, 0x04, 0x08
TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = 0x10, 0x20, 0x40, 0x80
_FORBIDDEN_FLAGS = TCP_URG | TCP_RST | TCP_SYN
_LAST_ONLY = TCP_FIN | TCP_PSH
_FIRST_ONLY = TCP_CWR

_MAX_8023_LENGTH = 1500
_MAX_IP_LENGTH = 0xFFFF

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

_MALFORMED_PARSE = frozenset((
    ParseError.RUNT, ParseError.L2_TRUNCATED, ParseError.L3_TRUNCATED, ParseError.BAD_IHL,
    ParseError.BAD_IP_LENGTH, ParseError.EXT_TRUNCATED, ParseError.L4_TRUNCATED,
    ParseError.BAD_TCP_OFFSET))
_TOO_LONG_PARSE = frozenset((ParseError.EXT_TOO_LONG, ParseError.PAST_LIMIT))
# Every other ParseError means the walk cannot reach an IP/TCP header: LSO_NOT_TCP.


@dataclasses.dataclass(frozen=True, slots=True)
class LsoLimits:
    """What the adapter's LSO configuration allows; ``config`` fills it from its view.

    Names follow NDIS_TCP_LARGE_SEND_OFFLOAD_V1 (IPv4) and NDIS_TCP_LARGE_SEND_OFFLOAD_V2
    (IPv4, IPv6), whose MaxOffLoadSize and MinSegmentCount are per version and IP version
    (*LSOv1 caps*, *LSOv2 caps*).

    Attributes
    ----------
    lso_v1_ipv4, lso_v2_ipv4, lso_v2_ipv6 : bool
        Whether each offload is on (*LsoV1IPv4, *LsoV2IPv4, *LsoV2IPv6 after
        OID_TCP_OFFLOAD_PARAMETERS). A send asking for one that is off is dropped.
    v1_ipv4_max_offload_size, v2_ipv4_max_offload_size, v2_ipv6_max_offload_size : int
        MaxOffLoadSize: most TCP payload bytes one send may carry, >= 1. LSOv1's "cannot
        exceed 64K bytes" (*LSOv1 caps*), so at most 65536; LSOv2 is "Unlimited"
        (``combining-types-of-task-offloads.md``).
    v1_ipv4_min_segment_count, v2_ipv4_min_segment_count, v2_ipv6_min_segment_count : int
        MinSegmentCount: fewest segments a send must make, >= 0 (0 behaves as 1).
    max_header_bytes : int
        Longest header block (frame start to end of the TCP header) a send may have (check 8):
        54..256, default 256, the parse window ``parse.MAX_PARSE_BYTES`` (DESIGN 3). The
        parser reads no header past byte 256, so a larger value would promise what the walk
        cannot do.
    max_encapsulated_header_bytes : int
        The same for NVGRE sends, frame start to the end of the inner TCP header: 1..256,
        default 256 (DESIGN 3; the NVGRE walk's window ``nvgre.NVGRE_MAX_HEADER_BYTES``).
    encap : bool
        The encapsulated packet (NVGRE) task offload is operational; an encapsulated send
        while it is not is dropped (LSO_DISABLED). The checksum stage reads it too
        (``checksum.tx_checksum``'s ``encap``).
    id_mode : str
        ``"ndis"`` (default) or ``"linux"``: how the IPv4 ID advances (module docstring).
    max_segment_bytes : int
        Longest segment frame the NIC can put on the wire with its checksums filled:
        ``checksum.TX_MAX_FRAME`` for our NIC (check 12).
    """

    lso_v1_ipv4: bool = True
    lso_v2_ipv4: bool = True
    lso_v2_ipv6: bool = True
    v1_ipv4_max_offload_size: int = 65536
    v2_ipv4_max_offload_size: int = 262144
    v2_ipv6_max_offload_size: int = 262144
    v1_ipv4_min_segment_count: int = 1
    v2_ipv4_min_segment_count: int = 1
    v2_ipv6_min_segment_count: int = 1
    max_header_bytes: int = MAX_PARSE_BYTES
    max_encapsulated_header_bytes: int = 256
    encap: bool = True
    id_mode: str = "ndis"
    max_segment_bytes: int = TX_MAX_FRAME

    def __post_init__(self):
        for name in ("v1_ipv4_max_offload_size", "v2_ipv4_max_offload_size",
                     "v2_ipv6_max_offload_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LsoLimits.{name}={value!r}: must be an int >= 1")
        if self.v1_ipv4_max_offload_size > 65536:
            raise ValueError(f"LsoLimits.v1_ipv4_max_offload_size="
                             f"{self.v1_ipv4_max_offload_size}: LSOv1 MaxOffLoadSize cannot "
                             f"exceed 64K bytes")
        for name in ("v1_ipv4_min_segment_count", "v2_ipv4_min_segment_count",
                     "v2_ipv6_min_segment_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"LsoLimits.{name}={value!r}: must be an int >= 0")
        value = self.max_header_bytes
        if not isinstance(value, int) or not 54 <= value <= MAX_PARSE_BYTES:
            raise ValueError(f"LsoLimits.max_header_bytes={value!r}: must be an int in "
                             f"54..{MAX_PARSE_BYTES} (the parser reads no header past byte "
                             f"{MAX_PARSE_BYTES})")
        value = self.max_encapsulated_header_bytes
        if not isinstance(value, int) or not 1 <= value <= MAX_PARSE_BYTES:
            raise ValueError(f"LsoLimits.max_encapsulated_header_bytes={value!r}: must be an "
                             f"int in 1..{MAX_PARSE_BYTES}")
        _check_id_mode(self.id_mode)

    def offload(self, v2: bool, ipv6: bool) -> tuple[bool, int, int]:
        """``(enabled, MaxOffLoadSize, MinSegmentCount)`` of LSOv1 IPv4 / LSOv2 IPv4 / IPv6."""
        if not v2:
            return (self.lso_v1_ipv4, self.v1_ipv4_max_offload_size,
                    self.v1_ipv4_min_segment_count)
        if ipv6:
            return (self.lso_v2_ipv6, self.v2_ipv6_max_offload_size,
                    self.v2_ipv6_min_segment_count)
        return (self.lso_v2_ipv4, self.v2_ipv4_max_offload_size,
                self.v2_ipv4_min_segment_count)


@dataclasses.dataclass(frozen=True, slots=True)
class LsoResult:
    """Outcome of one large send.

    Attributes
    ----------
    segments : tuple of bytes
        The wire frames in order, every IPv4 and TCP checksum filled; empty for a dropped
        send (drops are whole).
    completion : TxCompletion
        ``LsoComplete`` is the LsoV1TransmitComplete / LsoV2TransmitComplete word as an int;
        ``Status`` is ``TxStatus.SENT`` or the drop reason.
    detail : str or None
        For people: why the send was dropped, with the values involved.
    """

    segments: tuple[bytes, ...]
    completion: TxCompletion
    detail: str | None = None

    @property
    def status(self) -> TxStatus:
        """``completion.Status`` as a ``TxStatus``."""
        return TxStatus(self.completion.Status)

    @property
    def sent(self) -> bool:
        """The send went out (``status`` is SENT)."""
        return self.completion.Status == TxStatus.SENT


@dataclasses.dataclass(frozen=True, slots=True)
class _Template:
    """Where the fields of the template headers are that each segment rewrites."""

    ipv6: bool
    l3: int                 # IP header offset
    l4: int                 # TCP header offset
    hdr_end: int            # one past the TCP header: start of the payload
    length_8023: int | None  # offset of an LLC/SNAP frame's 802.3 length field, else None


def _check_id_mode(id_mode: str) -> None:
    if id_mode not in ID_MODES:
        raise ValueError(f"id_mode {id_mode!r}: must be one of {ID_MODES}")


def parse_error_status(code: ParseError) -> TxStatus:
    """The drop reason of a send whose walk stopped with ``code`` (check 4)."""
    if code in _MALFORMED_PARSE:
        return TxStatus.MALFORMED
    if code in _TOO_LONG_PARSE:
        return TxStatus.LSO_HEADERS_TOO_LONG
    return TxStatus.LSO_NOT_TCP


def _completion(v2: bool, payload_sent: int, status: TxStatus) -> TxCompletion:
    if v2:
        word = LsoV2TransmitComplete(Type=LSO_TYPE_V2).to_int()
    else:
        word = LsoV1TransmitComplete(TcpPayload=payload_sent).to_int()
    return TxCompletion(LsoComplete=word, Status=int(status))


def _parse_with_buffer_length(frame: bytes) -> Headers:
    """``parse`` with the IP length field standing for the buffer length (check step 4):
    ``parse.with_buffer_length`` says how."""
    return parse(with_buffer_length(frame))


def segment(frame: bytes | bytearray | memoryview, lso_word: int,
            limits: LsoLimits = LsoLimits(), *, id_mode: str | None = None,
            supplemental: SendSupplemental | int = 0) -> LsoResult:
    """Segment one large TCP send as an LSOv1/LSOv2 NIC does.

    Parameters
    ----------
    frame : bytes-like
        The host frame from the destination MAC address on, as the transport hands it over
        (``transport_lso.prepare_large_send``): one TCP segment with headers and payload.
    lso_word : int
        The NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO word (LsoV1Transmit or
        LsoV2Transmit, chosen by Type), non-zero.
    limits : LsoLimits
        Enables, MaxOffLoadSize, MinSegmentCount and header limit of the adapter.
    id_mode : {"ndis", "linux"}, optional
        How the IPv4 ID advances; default ``limits.id_mode``. An NVGRE send's IDs always
        advance by the "ndis" rule (DESIGN 3 "NVGRE").
    supplemental : SendSupplemental or int
        NDIS_TCP_SEND_OFFLOADS_SUPPLEMENTAL_NET_BUFFER_LIST_INFO; with IsEncapsulatedPacket
        the send is an NVGRE large send (``nvgre_lso.segment_encapsulated``).

    Returns
    -------
    LsoResult
        The segments and the completion, or no segments and the drop reason.

    Raises
    ------
    ValueError
        ``lso_word`` is 0 (no LSO requested) or does not fit 32 bits; bad ``id_mode``.
    """
    word = decode_lso_transmit(lso_word)
    if word is None:
        raise ValueError("lso_word is 0: the frame asks for no large send")
    if isinstance(supplemental, int):
        supplemental = SendSupplemental.from_int(supplemental)
    mode = limits.id_mode if id_mode is None else id_mode
    _check_id_mode(mode)
    frame = bytes(frame)
    if supplemental.IsEncapsulatedPacket:
        from .nvgre_lso import segment_encapsulated   # it builds on this module
        return segment_encapsulated(frame, word, supplemental, limits)
    return _segment(frame, word, limits, mode)


def ip_id(id0: int, k: int, id_mode: str) -> int:
    """The IPv4 Identification of segment ``k`` of a send whose template carries ``id0``
    (module docstring: "ndis" keeps the top bit and counts in the low 15, "linux" counts in
    16 bits)."""
    if id_mode == "ndis":
        return (id0 & 0x8000) | ((id0 + k) & 0x7FFF)
    return (id0 + k) & 0xFFFF


def segment_flags(flags: int, k: int, count: int) -> int:
    """The TCP flags of segment ``k`` of ``count``: FIN and PSH only on the last, CWR only on
    the first, every other bit as the template has it."""
    out = flags & ~(_FIRST_ONLY | _LAST_ONLY)
    if k == 0:
        out |= flags & _FIRST_ONLY
    if k == count - 1:
        out |= flags & _LAST_ONLY
    return out


def size_check(payload: int, mss: int, max_offload: int, min_segments: int
               ) -> tuple[TxStatus, str] | None:
    """Checks 10 and 11 on a send's payload: more than MaxOffLoadSize, or fewer segments
    than MinSegmentCount; the drop's status and detail, None when both pass. Plain and NVGRE
    sends (``model.nvgre_lso``) share it."""
    if payload > max_offload:
        return TxStatus.LSO_TOO_LARGE, f"{payload} payload bytes, MaxOffLoadSize {max_offload}"
    count = -(-payload // mss)
    if count < max(1, min_segments):
        return (TxStatus.LSO_TOO_FEW_SEGMENTS,
                f"{payload} payload bytes at MSS {mss} make {count} segments, "
                f"MinSegmentCount {min_segments}")
    return None


def _segment(frame: bytes, word, limits: LsoLimits, mode: str) -> LsoResult:
    """Checks 2-12 and the segments of a send that passes them; a drop has no segments."""
    v2 = word.Type == LSO_TYPE_V2
    ipv6 = v2 and word.IPVersion == LSO_IPV6
    enabled, max_offload, min_segments = limits.offload(v2, ipv6)
    name = f"LSOv{2 if v2 else 1} IPv{6 if ipv6 else 4}"

    def drop(status: TxStatus, detail: str) -> LsoResult:
        return LsoResult((), _completion(v2, 0, status), f"{status.name}: {detail}")

    # 2-3: the word alone.
    if not enabled:
        return drop(TxStatus.LSO_DISABLED, f"{name} is disabled")
    mss = word.MSS
    if mss == 0:
        return drop(TxStatus.LSO_BAD_MSS, "MSS is 0")

    # 4-8: where the headers are.
    h = _parse_with_buffer_length(frame)
    if h.error_code is not None:
        return drop(parse_error_status(h.error_code), h.error)
    if h.is_fragment:
        return drop(TxStatus.LSO_GUARANTEE, f"IPv{h.ip_version} fragment")
    want_version = 6 if ipv6 else 4
    if h.ip_version != want_version:
        return drop(TxStatus.LSO_NOT_TCP, f"{name} send, frame is IPv{h.ip_version}")
    if not h.is_tcp:
        return drop(TxStatus.LSO_NOT_TCP, f"IP protocol {h.l4_proto}, not TCP")
    l3, l4 = h.l3_offset, h.l4_offset
    if word.TcpHeaderOffset != l4:
        return drop(TxStatus.LSO_BAD_HEADER_OFFSET,
                    f"TcpHeaderOffset {word.TcpHeaderOffset}, TCP header at {l4}")
    hdr_end = l4 + h.l4_header_len
    if hdr_end > limits.max_header_bytes:
        return drop(TxStatus.LSO_HEADERS_TOO_LONG,
                    f"headers end at byte {hdr_end}, at most {limits.max_header_bytes}")

    # 9: the other transport guarantees.
    flags = frame[l4 + 13]
    if flags & _FORBIDDEN_FLAGS:
        return drop(TxStatus.LSO_GUARANTEE, f"TCP flags {flags:#04x} include URG/RST/SYN")
    urgent = _U16.unpack_from(frame, l4 + 18)[0]
    if urgent:
        return drop(TxStatus.LSO_GUARANTEE, f"urgent pointer {urgent}")
    if not ipv6:
        total = _U16.unpack_from(frame, l3 + 2)[0]
        want_total = len(frame) - l3 if not v2 else 0
        if total != want_total:
            return drop(TxStatus.LSO_GUARANTEE,
                        f"IPv4 Total Length {total}, {name} needs {want_total}")
    pseudo = pseudo_header_sum(frame, h, l4_length=0)
    field = _U16.unpack_from(frame, l4 + 16)[0]
    if field % 0xFFFF != pseudo % 0xFFFF:
        return drop(TxStatus.LSO_GUARANTEE,
                    f"TCP checksum field {field:#06x}, pseudo-header sum without length is "
                    f"{pseudo:#06x}")

    # 10-12: sizes.
    payload = len(frame) - hdr_end
    too_big_or_few = size_check(payload, mss, max_offload, min_segments)
    if too_big_or_few:
        return drop(*too_big_or_few)
    largest = min(mss, payload)
    ip_length = hdr_end - l3 - (40 if ipv6 else 0) + largest
    if ip_length > _MAX_IP_LENGTH:
        return drop(TxStatus.LSO_BAD_MSS,
                    f"a {largest}-byte segment needs IP length {ip_length} > 65535")
    length_8023 = 12 + 4 * h.vlan_tags if h.llc_snap else None
    if length_8023 is not None and hdr_end - length_8023 - 2 + largest > _MAX_8023_LENGTH:
        return drop(TxStatus.LSO_BAD_MSS,
                    f"a {largest}-byte segment makes an 802.3 length over 1500")

    if hdr_end + largest > limits.max_segment_bytes:
        return drop(TxStatus.LSO_BAD_MSS,
                    f"a {hdr_end + largest}-byte segment is longer than the "
                    f"{limits.max_segment_bytes} bytes the checksum stage holds")

    tpl = _Template(ipv6=ipv6, l3=l3, l4=l4, hdr_end=hdr_end, length_8023=length_8023)
    segments = _cut(frame, tpl, mss, -(-payload // mss), mode)
    return LsoResult(segments, _completion(v2, payload, TxStatus.SENT))


def _cut(frame: bytes, tpl: _Template, mss: int, count: int, id_mode: str) -> tuple[bytes, ...]:
    """Build the ``count`` segments of a checked send (see the module docstring)."""
    l3, l4, hdr_end = tpl.l3, tpl.l4, tpl.hdr_end
    template = bytearray(frame[:hdr_end])
    payload_end = len(frame)

    # TCP: fixed part of the checksum = transport's field + header with seq, flags, checksum
    # zeroed; per segment add seq, flags, TCP length and the payload sum.
    flags = template[l4 + 13]
    seq0 = _U32.unpack_from(template, l4 + 4)[0]
    tcp_field = _U16.unpack_from(template, l4 + 16)[0]
    template[l4 + 4:l4 + 8] = bytes(4)
    template[l4 + 13] = 0
    template[l4 + 16:l4 + 18] = bytes(2)
    tcp_fixed = add(tcp_field, ones_sum(template, l4, hdr_end))
    tcp_header_len = hdr_end - l4

    # IPv4: fixed part of the header checksum = header with Total Length, ID, checksum zeroed.
    if not tpl.ipv6:
        id0 = _U16.unpack_from(template, l3 + 4)[0]
        template[l3 + 2:l3 + 6] = bytes(4)
        template[l3 + 10:l3 + 12] = bytes(2)
        ip_fixed = ones_sum(template, l3, l4)
        ip_base_length = hdr_end - l3
    else:
        ip_base_length = hdr_end - l3 - 40

    pack16 = _U16.pack_into
    pack32 = _U32.pack_into
    out = []
    start = hdr_end
    for k in range(count):
        end = min(start + mss, payload_end)
        chunk = frame[start:end]
        size = end - start
        seg_flags = segment_flags(flags, k, count)
        seq = (seq0 + k * mss) & 0xFFFFFFFF
        hdr = template[:]
        if tpl.length_8023 is not None:
            pack16(hdr, tpl.length_8023, hdr_end - tpl.length_8023 - 2 + size)
        if tpl.ipv6:
            pack16(hdr, l3 + 4, ip_base_length + size)
        else:
            total = ip_base_length + size
            ident = ip_id(id0, k, id_mode)
            pack16(hdr, l3 + 2, total)
            pack16(hdr, l3 + 4, ident)
            pack16(hdr, l3 + 10, ~add(ip_fixed, total, ident) & 0xFFFF)
        pack32(hdr, l4 + 4, seq)
        hdr[l4 + 13] = seg_flags
        tcp_sum = add(tcp_fixed, seg_flags, seq >> 16, seq & 0xFFFF,
                      tcp_header_len + size, ones_sum(chunk))
        pack16(hdr, l4 + 16, ~tcp_sum & 0xFFFF)
        out.append(bytes(hdr) + chunk)
        start = end
    return tuple(out)
