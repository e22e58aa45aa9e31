"""LSOv2 over NVGRE: one large encapsulated TCP send in, wire segments and a completion out.

``lso.segment`` hands a send here when its supplemental word has IsEncapsulatedPacket set.
Pages (``shared/reference/ndis/``): ``supporting-nvgre-in-large-send-offload--lso-.md`` (the
*NVGRE LSO page*), ``offloading-the-segmentation-of-large-tcp-packets.md`` (the *LSO page*);
``DESIGN.md`` 3 "LSO" and "NVGRE". Headers are found by ``nvgre.follow``, checksums written
by ``checksum.fill_encapsulated``; the ID and flag rules are ``lso.ip_id`` and
``lso.segment_flags``, the drop reasons ``nbl.TxStatus``, as for every large send.

Checks, in this order (the first failure drops the whole send)
--------------------------------------------------------------
1. ``LSO_DISABLED``: the encapsulated packet task offload is off (``limits.encap``).
2. ``LSO_NOT_NVGRE``: the word is an LsoV1Transmit (Type 0). The *NVGRE LSO page*: "Only the
   values in the ... LsoV2Transmit structure are valid", the NIC "must not refer to" LsoV1.
3. ``LSO_DISABLED``: LSOv2 of the word's IPVersion is off. IPVersion names the *inner* IP
   version, the one of the TCP packet being segmented (DESIGN 3: "The LsoV2 keyword of the
   inner IP version gates it"); LsoV2Transmit.TcpHeaderOffset is not read (the page: it
   "does not have the correct offset value").
4. ``LSO_BAD_MSS``: MSS 0.
5. The walk (``nvgre.follow`` with the IP lengths taken from the buffer, as LSOv2 does for
   the one IP header of a plain send): an outer walk that stops maps as ``lso`` check 4; an
   outer fragment is ``LSO_GUARANTEE``; not GRE, or GRE that is not NVGRE, ``LSO_NOT_NVGRE``;
   a truncated GRE header ``MALFORMED``; an inner walk that stops maps as ``lso`` check 4;
   inner headers past byte 256 ``LSO_HEADERS_TOO_LONG``.
6. ``LSO_GUARANTEE``: an inner fragment. ``LSO_NOT_TCP``: the inner IP version is not the
   word's, or the inner packet is not TCP.
7. ``LSO_BAD_HEADER_OFFSET``: the supplemental offsets disagree with the walk
   (``nvgre.offsets_disagree``; not read when EncapsulatedPacketOffsetsValid is clear).
8. ``LSO_HEADERS_TOO_LONG``: the headers, frame start to the end of the inner TCP header,
   are longer than ``limits.max_encapsulated_header_bytes`` (256 by default: DESIGN 3).
9. ``LSO_GUARANTEE``, the transport guarantees of an LSOv2 send applied to both IP headers:
   inner URG/RST/SYN clear and urgent pointer 0; the inner TCP checksum field the
   pseudo-header sum without length; *every* IPv4 Total Length, outer and inner, 0. The
   *LSO page* sets 0 for the IPv4 header of an LSOv2 packet, whose length is the buffer's;
   the outer header of a large encapsulated packet cannot say its length either (a send may
   be larger than 64 KB), so it gets the same rule. IPv6 Payload Lengths are ignored.
10. Sizes, as ``lso`` checks 10-12: ``LSO_TOO_LARGE`` (MaxOffLoadSize of the inner
    version), ``LSO_TOO_FEW_SEGMENTS``; ``LSO_BAD_MSS`` when the largest segment does not
    fit the outer or the inner IP length field, an outer or inner 802.3 length (LLC/SNAP),
    or ``limits.max_segment_bytes``.

Segments (*NVGRE LSO page*, DESIGN 3 "NVGRE")
--------------------------------------------
Segment k carries inner TCP payload bytes [k*MSS, min((k+1)*MSS, payload)) behind a copy of
every header up to the end of the inner TCP header, with:

- outer and inner: IPv4 Total Length / IPv6 Payload Length of the segment; 802.3 length of
  an LLC/SNAP frame; IPv4 Identification by ``lso.ip_id`` (the page: "The first packet must
  use the IP ID in the original" header, both headers advance) by the "ndis" rule,
  whatever the configured ``id_mode`` (DESIGN 3 "NVGRE": it names the rule; "linux" mode
  exists to match Linux's segmentation of plain TCP sends);
- GRE sequence number, when present: s0 + k (mod 2**32), since an RFC 2890 receiver
  discards copies; the GRE key and every other byte copied;
- inner TCP: sequence number + k*MSS, flags by ``lso.segment_flags``;
- checksums by ``checksum.fill_encapsulated``: both IPv4 headers, the inner TCP checksum (the
  transport's pseudo-header sum plus the segment's TCP length, the *LSO page* rule), and the
  GRE checksum last.

Completion: LsoV2TransmitComplete (Type 1) sent or dropped; an LsoV1-typed word dropped by
check 2 gets LsoV1TransmitComplete with TcpPayload 0, as any dropped LSOv1 send.
"""

from __future__ import annotations

import dataclasses
import struct

from .checksum import fill_encapsulated
from .lso import (TCP_RST, TCP_SYN, TCP_URG, LsoLimits, LsoResult, _completion, ip_id,
                  parse_error_status, segment_flags, size_check)
from .nbl import LSO_IPV6, LSO_TYPE_V2, SendSupplemental, TxStatus
from .nvgre import Nvgre, NvgreError, follow, offsets_disagree
from .onesum import add
from .parse import pseudo_header_sum

__all__ = ["segment_encapsulated", "cut"]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_NOT_NVGRE = frozenset((NvgreError.NOT_GRE, NvgreError.GRE_VERSION, NvgreError.GRE_FLAGS,
                        NvgreError.NOT_TEB))


def segment_encapsulated(frame: bytes, word, supplemental: SendSupplemental,
                         limits: LsoLimits) -> LsoResult:
    """Check and cut one NVGRE large send (module docstring).

    Parameters
    ----------
    frame : bytes
        The host frame, outer Ethernet header first.
    word : LsoV1Transmit or LsoV2Transmit
        The decoded, non-zero LSO word.
    supplemental : SendSupplemental
        The supplemental word, IsEncapsulatedPacket set.
    limits : lso.LsoLimits
        Its ``id_mode`` does not apply (module docstring, "Segments").

    Returns
    -------
    lso.LsoResult
    """
    v2 = word.Type == LSO_TYPE_V2

    def drop(status: TxStatus, detail: str) -> LsoResult:
        return LsoResult((), _completion(v2, 0, status), f"{status.name}: {detail}")

    if not limits.encap:
        return drop(TxStatus.LSO_DISABLED, "an encapsulated send while the encapsulated "
                                           "packet task offload is off")
    if not v2:
        return drop(TxStatus.LSO_NOT_NVGRE, "an encapsulated send with an LsoV1Transmit word")
    ipv6 = word.IPVersion == LSO_IPV6
    enabled, max_offload, min_segments = limits.offload(True, ipv6)
    if not enabled:
        return drop(TxStatus.LSO_DISABLED, f"LSOv2 IPv{6 if ipv6 else 4} (inner) is disabled")
    mss = word.MSS
    if mss == 0:
        return drop(TxStatus.LSO_BAD_MSS, "MSS is 0")

    nv = follow(frame, lengths_from_buffer=True)
    refused = _walk_refusal(nv, 6 if ipv6 else 4)
    if refused:
        return drop(*refused)
    wrong = offsets_disagree(nv, supplemental)
    if wrong:
        return drop(TxStatus.LSO_BAD_HEADER_OFFSET, wrong)
    hdr_end = nv.headers_end
    if hdr_end > limits.max_encapsulated_header_bytes:
        return drop(TxStatus.LSO_HEADERS_TOO_LONG,
                    f"headers end at byte {hdr_end}, at most "
                    f"{limits.max_encapsulated_header_bytes}")
    broken = _broken_guarantee(frame, nv)
    if broken:
        return drop(TxStatus.LSO_GUARANTEE, broken)

    payload = len(frame) - hdr_end
    too_big_or_few = size_check(payload, mss, max_offload, min_segments)
    if too_big_or_few:
        return drop(*too_big_or_few)
    too_long = _segment_too_long(nv, hdr_end + min(mss, payload), limits.max_segment_bytes)
    if too_long:
        return drop(TxStatus.LSO_BAD_MSS, too_long)
    return LsoResult(cut(frame, nv, mss, -(-payload // mss)),
                     _completion(True, payload, TxStatus.SENT))


def _walk_refusal(nv: Nvgre, version: int) -> tuple[TxStatus, str] | None:
    """Checks 5 and 6: why the walk does not give an inner TCP packet of IP ``version``."""
    outer, inner = nv.outer, nv.inner
    if not outer.ok:
        return parse_error_status(outer.error_code), f"outer frame: {outer.error}"
    if outer.is_fragment:
        return TxStatus.LSO_GUARANTEE, f"outer IPv{outer.ip_version} fragment"
    if nv.error_code in _NOT_NVGRE:
        return TxStatus.LSO_NOT_NVGRE, nv.error
    if nv.error_code == NvgreError.GRE_TRUNCATED:
        return TxStatus.MALFORMED, nv.error
    if nv.error_code == NvgreError.INNER_UNPARSEABLE:
        return parse_error_status(inner.error_code), nv.error
    if nv.error_code == NvgreError.INNER_PAST_LIMIT:
        return TxStatus.LSO_HEADERS_TOO_LONG, nv.error
    if inner.is_fragment:
        return TxStatus.LSO_GUARANTEE, f"inner IPv{inner.ip_version} fragment"
    if inner.ip_version != version:
        return TxStatus.LSO_NOT_TCP, f"LSOv2 IPv{version} send, inner frame is " \
                                     f"IPv{inner.ip_version}"
    if not inner.is_tcp:
        return TxStatus.LSO_NOT_TCP, f"inner IP protocol {inner.l4_proto}, not TCP"
    return None


def _broken_guarantee(frame: bytes, nv: Nvgre) -> str | None:
    """Check 9: the transport guarantee the send breaks, or None."""
    inner = nv.inner
    l4 = inner.l4_offset
    flags = frame[l4 + 13]
    if flags & (TCP_URG | TCP_RST | TCP_SYN):
        return f"inner TCP flags {flags:#04x} include URG/RST/SYN"
    urgent = _U16.unpack_from(frame, l4 + 18)[0]
    if urgent:
        return f"inner urgent pointer {urgent}"
    for which, h in (("outer", nv.outer), ("inner", inner)):
        if h.ip_version == 4:
            total = _U16.unpack_from(frame, h.l3_offset + 2)[0]
            if total:
                return f"{which} IPv4 Total Length {total}, an LSOv2 send needs 0"
    pseudo = pseudo_header_sum(frame, inner, l4_length=0)
    field = _U16.unpack_from(frame, l4 + 16)[0]
    if field % 0xFFFF != pseudo % 0xFFFF:
        return (f"inner TCP checksum field {field:#06x}, pseudo-header sum without length is "
                f"{pseudo:#06x}")
    return None


def _segment_too_long(nv: Nvgre, largest: int, max_segment_bytes: int) -> str | None:
    """Check 10's LSO_BAD_MSS: why a segment of ``largest`` bytes (headers included) does not
    fit a length field or the checksum stage, or None."""
    for which, h, base in (("outer", nv.outer, 0), ("inner", nv.inner, nv.inner_offset)):
        ip_length = largest - h.l3_offset - (40 if h.ip_version == 6 else 0)
        if ip_length > 0xFFFF:
            return f"a {largest}-byte segment needs {which} IP length {ip_length} > 65535"
        if h.llc_snap:
            field = base + 12 + 4 * h.vlan_tags
            if largest - field - 2 > 1500:
                return f"a {largest}-byte segment makes an {which} 802.3 length over 1500"
    if largest > max_segment_bytes:
        return (f"a {largest}-byte segment is longer than the {max_segment_bytes} bytes the "
                f"checksum stage holds")
    return None


def cut(frame: bytes | bytearray, nv: Nvgre, mss: int, count: int) -> tuple[bytes, ...]:
    """The ``count`` segments of a checked NVGRE send (module docstring, "Segments").

    ``frame`` is the send as the transport hands it over: the inner TCP checksum field holds
    the pseudo-header sum without length, the payload runs from the end of the inner TCP
    header to the end of ``frame``. ``nv`` is its walk. The transport's software segmentation
    (``transport_nvgre``) uses the same cut, so the wire is the same either way.
    """
    outer, inner = nv.outer, nv.inner
    hdr_end = nv.headers_end
    template = bytes(frame[:hdr_end])
    l4 = inner.l4_offset
    flags = template[l4 + 13]
    seq0 = _U32.unpack_from(template, l4 + 4)[0]
    pseudo = _U16.unpack_from(template, l4 + 16)[0]
    layers = [(h, base, _U16.unpack_from(template, h.l3_offset + 4)[0])
              for h, base in ((outer, 0), (inner, nv.inner_offset))]
    out = []
    for k in range(count):
        seg = bytearray(template)
        seg += frame[hdr_end + k * mss:hdr_end + (k + 1) * mss]
        n = len(seg)
        for h, base, id0 in layers:
            if h.llc_snap:
                field = base + 12 + 4 * h.vlan_tags
                _U16.pack_into(seg, field, n - field - 2)
            l3 = h.l3_offset
            if h.ip_version == 4:
                _U16.pack_into(seg, l3 + 2, n - l3)
                _U16.pack_into(seg, l3 + 4, ip_id(id0, k, "ndis"))
            else:
                _U16.pack_into(seg, l3 + 4, n - l3 - 40)
        if nv.seq_offset is not None:
            _U32.pack_into(seg, nv.seq_offset, (nv.seq + k) & 0xFFFFFFFF)
        _U32.pack_into(seg, l4 + 4, (seq0 + k * mss) & 0xFFFFFFFF)
        seg[l4 + 13] = segment_flags(flags, k, count)
        _U16.pack_into(seg, l4 + 16, add(pseudo, n - l4))
        ends = dataclasses.replace(
            nv, outer=dataclasses.replace(outer, ip_end=n),
            inner=dataclasses.replace(inner, ip_end=n, l4_end=n))
        fill_encapsulated(seg, ends)
        out.append(bytes(seg))
    return tuple(out)

