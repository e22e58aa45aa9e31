"""The NDIS transport's side of NVGRE task offload: how an encapsulated frame reaches the NIC.

``prepare_send`` is what the host (the Hyper-V switch that encapsulates, then the TCP/IP
transport) hands the miniport for one finished NVGRE frame of a capture; ``transport`` and
``transport_lso`` do the same for every other frame. Pages (``shared/reference/ndis/``):
``supporting-nvgre-in-checksum-offload.md``, ``supporting-nvgre-in-large-send-offload--lso-.md``
(the *NVGRE LSO page*), ``offloading-the-segmentation-of-large-tcp-packets.md`` (the *LSO
page*), ``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``;
``DESIGN.md`` 3 "NVGRE" and 4 ``tx``.

Which frames: those ``nvgre.follow`` follows (outer Ethernet/IP, GRE version 0 with protocol
0x6558 and any of checksum, key, sequence number, an inner frame it can walk). Any other GRE
frame is an ordinary frame for ``transport.prepare_checksum``: its outer headers are
offloaded, the rest goes as captured (DESIGN 3).

Offloaded (the encapsulated packet task offload is operational, ``datapath.encap``; the
headers end within MaxHeaderSizeSupported, ``datapath.nvgre_max_header_size``: "The protocol
driver is expected to not offload processing of a packet whose combined encapsulation
headers exceed this size"):

- Checksums (``prepare_checksum``), when every checksum the frame has is enabled for
  transmit (``tx_ipv4_checksum`` for each IPv4 header, ``tx_tcp/udp_ipv4/6`` of the inner
  version for the inner TCP/UDP header) and the frame is no longer than the NIC's largest:
  both IPv4 header checksum fields 0, the inner TCP/UDP field the pseudo-header sum with the
  L4 length, the GRE checksum field 0; checksum word IsIPv4/IsIPv6 of the *outer* header,
  IpHeaderChecksum when an IPv4 header is present, TcpChecksum/UdpChecksum for the inner
  header (none for an inner fragment); supplemental word with every offset, marked valid
  (``nvgre.supplemental_for``). TcpHeaderOffset 0: the page says it is not used.
- Large sends (``prepare_large_send``), for an inner TCP payload over the MSS when LSOv2 of
  the inner IP version is on and the send fits its limits (MinSegmentCount,
  MaxOffLoadSize, segments no longer than the NIC's largest frame, IP lengths): the LSOv2
  length rule for *both* IP headers, IPv4 Total Length 0 and IPv6 Payload Length 0 (decided
  here: the *LSO page* gives an LSOv2 packet's IPv4 header Total Length 0 because the length
  is the buffer's; the outer header of an encapsulated large packet is in the same position,
  and a send may be larger than its 16-bit field can say; ``nvgre_lso`` checks it); both
  IPv4 header checksums 0; the inner TCP checksum field the pseudo-header sum *without*
  length; the GRE checksum field 0; the GRE sequence number the first segment's; LsoV2Transmit
  with the MSS and IPVersion of the *inner* header (TcpHeaderOffset 0, not used); the
  checksum word valid as for a checksum offload (the *NVGRE LSO page*: IsEncapsulatedPacket
  "and the TcpIpChecksumNetBufferListInfo ... is valid"); the supplemental word as above.

Not offloaded (the keyword 0, NVGRE not turned on or not built, a checksum offload off, a
send the NIC's LSO cannot take): the transport does the work in software, so the wire is
the same either way: ``fill_checksums`` writes the inner checksums and the GRE checksum
(the outer IPv4 header checksum then goes to ``transport.prepare_checksum`` as for any
frame), and a large send is cut by ``segment_in_software`` with ``nvgre_lso.cut``, the rules
the NIC follows, before each segment is prepared the same way.

Bytes past the outer IP datagram (Ethernet padding) are not part of a large send and are
dropped from it, as ``transport_lso`` does; a frame that is only checksummed keeps them.
"""

from __future__ import annotations

from .checksum import fill_encapsulated
from .lso import LsoLimits
from .nbl import LSO_IPV4, LSO_IPV6, LSO_TYPE_V2, ChecksumTx, LsoV2Transmit, SendSupplemental
from .nvgre import IPPROTO_GRE, Nvgre, follow, supplemental_for
from .nvgre_lso import cut
from .parse import IPPROTO_TCP, parse, pseudo_header_sum
from .transport import prepare_checksum as prepare_plain

__all__ = ["prepare_checksum", "fill_checksums", "prepare_large_send", "segment_in_software",
           "prepare_send", "nvgre_of"]

_URG_RST_SYN = 0x20 | 0x04 | 0x02


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset] = value >> 8
    buf[offset + 1] = value & 0xFF


def nvgre_of(frame: bytes | bytearray) -> Nvgre | None:
    """``nvgre.follow(frame)`` when it is an NVGRE frame the transport treats as one, else
    None."""
    h = parse(frame)
    if not h.ok or h.l4_proto != IPPROTO_GRE or h.is_fragment:
        return None
    nv = follow(frame, outer=h)
    return nv if nv.ok else None


def _zero_checksums(out: bytearray, nv: Nvgre) -> None:
    """Both IPv4 header checksum fields and the GRE checksum field to 0."""
    for h in (nv.outer, nv.inner):
        if h.ip_version == 4:
            _put16(out, h.l3_offset + 10, 0)
    if nv.gre_checksum_offset is not None:
        _put16(out, nv.gre_checksum_offset, 0)


def _checksum_word(nv: Nvgre, l4: bool) -> ChecksumTx:
    inner = nv.inner
    word = {"IsIPv4" if nv.outer.ip_version == 4 else "IsIPv6": 1}
    if 4 in (nv.outer.ip_version, inner.ip_version):
        word["IpHeaderChecksum"] = 1
    if l4 and inner.l4_end is not None:
        word["TcpChecksum" if inner.l4_proto == IPPROTO_TCP else "UdpChecksum"] = 1
    return ChecksumTx(**word)


def prepare_checksum(frame: bytes | bytearray, nv: Nvgre
                     ) -> tuple[bytes, ChecksumTx, SendSupplemental]:
    """An NVGRE frame (walk ``nv``) prepared for encapsulated checksum offload (module
    docstring): the frame, the checksum word and the supplemental word."""
    out = bytearray(frame)
    _zero_checksums(out, nv)
    inner = nv.inner
    if inner.l4_end is not None:
        field = inner.l4_offset + (16 if inner.l4_proto == IPPROTO_TCP else 6)
        _put16(out, field, pseudo_header_sum(out, inner))
    return bytes(out), _checksum_word(nv, True), supplemental_for(nv)


def fill_checksums(frame: bytes | bytearray, nv: Nvgre | None = None) -> bytes:
    """The NVGRE frame with every checksum computed in software: outer and inner IPv4
    headers, the inner TCP/UDP (UDP 0 as 0xFFFF), then the GRE checksum."""
    nv = nv if nv is not None else nvgre_of(frame)
    if nv is None:
        raise ValueError("not an NVGRE frame the transport can follow")
    out = bytearray(prepare_checksum(frame, nv)[0])
    fill_encapsulated(out, nv)
    return bytes(out)


def _large_form(frame: bytes | bytearray, nv: Nvgre) -> bytearray:
    """The send as a large send: lengths 0, IPv4 and GRE checksum fields 0, the inner TCP
    field the pseudo-header sum without length, padding past the outer datagram cut."""
    inner = nv.inner
    l4 = inner.l4_offset
    flags = frame[l4 + 13]
    if flags & _URG_RST_SYN or frame[l4 + 18] or frame[l4 + 19]:
        raise ValueError(f"inner TCP flags {flags:#04x} or urgent pointer: the transport "
                         f"never offloads or segments such a send")
    out = bytearray(frame[:nv.outer.ip_end])
    _zero_checksums(out, nv)
    for h in (nv.outer, inner):
        _put16(out, h.l3_offset + (2 if h.ip_version == 4 else 4), 0)
    _put16(out, l4 + 16, pseudo_header_sum(out, inner, l4_length=0))
    return out


def prepare_large_send(frame: bytes | bytearray, nv: Nvgre, mss: int
                       ) -> tuple[bytes, int, ChecksumTx, SendSupplemental]:
    """An NVGRE frame with an inner TCP payload prepared as an LSOv2 send (module docstring):
    the frame, the LsoV2Transmit word, the checksum word and the supplemental word.

    Raises
    ------
    ValueError
        An inner fragment, not TCP, URG/RST/SYN or an urgent pointer, or a bad ``mss``.
    """
    inner = nv.inner
    if not inner.is_tcp or inner.is_fragment:
        raise ValueError("only an inner TCP segment can be a large send")
    if not isinstance(mss, int) or not 1 <= mss < (1 << 20):
        raise ValueError(f"mss {mss!r}: must be an int in 1..{(1 << 20) - 1}")
    out = _large_form(frame, nv)
    word = LsoV2Transmit(MSS=mss, Type=LSO_TYPE_V2,
                         IPVersion=LSO_IPV6 if inner.ip_version == 6 else LSO_IPV4)
    return bytes(out), word.to_int(), _checksum_word(nv, True), supplemental_for(nv)


def segment_in_software(frame: bytes | bytearray, nv: Nvgre, mss: int) -> list[bytes]:
    """Cut an NVGRE frame's inner TCP payload into MSS-sized segments as the NIC would
    (``nvgre_lso.cut``), every checksum filled; one segment when the payload fits the MSS.

    Raises
    ------
    ValueError
        As ``prepare_large_send``.
    """
    inner = nv.inner
    if not inner.is_tcp or inner.is_fragment:
        raise ValueError("only an inner TCP segment can be cut into segments")
    if not isinstance(mss, int) or mss < 1:
        raise ValueError(f"mss {mss!r}: must be an int >= 1")
    out = _large_form(frame, nv)
    payload = len(out) - nv.headers_end
    return list(cut(out, nv, mss, max(1, -(-payload // mss))))


def _checksums_enabled(nv: Nvgre, datapath) -> bool:
    """Every checksum the NVGRE frame has is enabled for transmit."""
    inner = nv.inner
    if 4 in (nv.outer.ip_version, inner.ip_version) and not datapath.tx_ipv4_checksum:
        return False
    if inner.l4_end is None:
        return True
    kind = "tcp" if inner.l4_proto == IPPROTO_TCP else "udp"
    return bool(getattr(datapath, f"tx_{kind}_ipv{inner.ip_version}"))


def _lso_fits(frame: bytes, nv: Nvgre, mss: int, datapath, max_frame: int) -> bool:
    """The NIC's NVGRE LSO takes this send: LSOv2 of the inner version on, MinSegmentCount,
    MaxOffLoadSize, segments no longer than ``max_frame`` and within the IP length fields."""
    limits = LsoLimits(**datapath.lso_limits())
    enabled, max_offload, min_segments = limits.offload(True, nv.inner.ip_version == 6)
    hdr_end = nv.headers_end
    payload = nv.outer.ip_end - hdr_end
    largest = hdr_end + min(mss, payload)
    return (enabled and payload <= max_offload
            and -(-payload // mss) >= max(1, min_segments) and hdr_end + mss <= max_frame
            and all(largest - h.l3_offset - (40 if h.ip_version == 6 else 0) <= 0xFFFF
                    for h in (nv.outer, nv.inner)))


def _prepare_one(frame: bytes, datapath, max_frame: int | None
                 ) -> tuple[bytes, ChecksumTx, int, int]:
    """One NVGRE frame that is not a large send: (frame, checksum word, 0, supplemental)."""
    nv = nvgre_of(frame)
    if (getattr(datapath, "encap", False)
            and nv.headers_end <= datapath.nvgre_max_header_size
            and (max_frame is None or len(frame) <= max_frame)
            and _checksums_enabled(nv, datapath)):
        prepared, word, supplemental = prepare_checksum(frame, nv)
        return prepared, word, 0, supplemental.to_int()
    prepared, word = prepare_plain(fill_checksums(frame, nv), datapath, max_frame=max_frame)
    return prepared, word, 0, 0


def prepare_send(frame: bytes | bytearray, datapath, *, mss: int | None = None,
                 max_frame: int | None = None
                 ) -> list[tuple[bytes, ChecksumTx, int, int]] | None:
    """What the host hands the miniport for one frame if it is an NVGRE frame (module
    docstring), as ``(frame, checksum word, LSO word, supplemental word)`` per host frame;
    None for any other frame (``transport``/``transport_lso`` prepare it).

    Parameters
    ----------
    frame : bytes-like
        A finished frame (checksums as captured; they are replaced).
    datapath : config.Datapath
        What operates: ``encap``, the ``tx_*`` checksum enables, LSOv2 and its limits,
        ``nvgre_max_header_size``.
    mss : int, optional
        Inner TCP payloads over it are large sends.
    max_frame : int, optional
        The NIC's largest frame; longer frames and segments are not offloaded.
    """
    frame = bytes(frame)
    nv = nvgre_of(frame)
    if nv is None:
        return None
    inner = nv.inner
    if mss is not None and inner.is_tcp and not inner.is_fragment \
            and nv.outer.ip_end - nv.headers_end > mss:
        try:
            if (getattr(datapath, "encap", False)
                    and nv.headers_end <= datapath.nvgre_max_header_size
                    and _lso_fits(frame, nv, mss, datapath,
                                  max_frame if max_frame is not None else 1 << 32)):
                prepared, word, checksum, supplemental = prepare_large_send(frame, nv, mss)
                return [(prepared, checksum, word, supplemental.to_int())]
            return [_prepare_one(segment, datapath, max_frame)
                    for segment in segment_in_software(frame, nv, mss)]
        except ValueError:      # a send the transport never segments (URG, SYN, ...)
            pass
    return [_prepare_one(frame, datapath, max_frame)]
