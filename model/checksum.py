"""Checksum offload: what the NIC writes on transmit and what it reports on receive.

Rules from ``DESIGN.md`` 3 ("Checksum TX", "Checksum RX") and the NDIS pages
``offloading-checksum-tasks.md``, ``reporting-a-nic-s-checksum-capabilities.md``,
``combining-types-of-task-offloads.md`` and ``supporting-nvgre-in-checksum-offload.md``
(all in ``shared/reference/ndis/``), plus the NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO
reference page (nblchecksum.h; not in ``shared/``) for the meaning of each bit. Headers are
found by ``parse.parse``; sums by ``onesum``.

Transmit (``tx_checksum``/``tx_fill``), decisions where NDIS and DESIGN are silent:

1. Nothing is done unless IsIPv4 or IsIPv6 is set (``offloading-checksum-tasks.md`` step 2).
   Reserved bits are ignored. IpHeaderChecksum is ignored with IsIPv6 (IPv6 has no header
   checksum; DESIGN: "IPv6: TcpChecksum, UdpChecksum"). A word that then asks for nothing
   leaves the frame alone (not an error).
2. The request is carried out whole or not at all. The frame passes unchanged, with a
   ``TxSkip`` reason, when: IsIPv4 and IsIPv6 are both set; TcpChecksum and UdpChecksum are
   both set; ``parse`` fails; the IP version is not the one the word names; a TCP/UDP checksum
   is asked for a fragment, or for a frame whose L4 protocol is not the one asked for; or
   TcpChecksum comes with a non-zero TcpHeaderOffset that is not where the parser found the
   TCP header. The NIC never writes into a frame it does not understand.
3. The parser locates every header, for TCP and UDP alike. TcpHeaderOffset (NDIS: the TCP
   header's offset from the start of the packet, "for TCP packets") is only cross-checked
   when TcpChecksum is set and it is non-zero (0 means "not given": no TCP header can start
   at byte 0 of an Ethernet frame); it is ignored for UDP.
4. IPv4 header checksum: computed over IHL*4 bytes with the field taken as zero, whatever it
   holds (``offloading-checksum-tasks.md``: the miniport ignores it).
5. TCP/UDP: the field holds the transport's non-inverted pseudo-header sum (with the L4
   length); the NIC adds the bytes from the L4 header to ``l4_end`` (``ip_end`` for TCP, the
   UDP Length for UDP; never Ethernet padding), field included, and writes the complement.
   A UDP result of 0x0000 is written 0xFFFF (RFC 768, RFC 8200 8.1); a TCP result of 0 stays
   0x0000.
6. The NIC honours the info word as given; it does not consult the TX enables. The transport
   only asks for what the configuration enables (``transport.prepare_checksum``), and
   honouring a stray request still puts a correct checksum on the wire. (LSO segments get
   their checksums even with checksum offload off; that is the LSO stage's business.)
7. A frame longer than ``TX_MAX_FRAME`` (9728) bytes passes unchanged (``TxSkip.TOO_LONG``):
   the NIC stores a frame whole before it can write a header checksum that covers the
   payload, and its buffer holds two frames of that size (one leaving while the next comes
   in). 9728 = 19 * 512 covers a 9000-byte payload behind the longest headers we parse, and
   is a whole number of beats at every data width, so the rule is the same at every width.
8. NVGRE (SendSupplemental.IsEncapsulatedPacket set; ``supporting-nvgre-in-checksum-offload.md``,
   DESIGN 3 "NVGRE"; headers found by ``nvgre.follow``, written by ``nvgre.fill``):

   - IsIPv4/IsIPv6 name the outer (tunnel) IP version, as the page says; both set, neither
     set, and a version that is not the outer one are handled as in 1 and 2. TcpHeaderOffset
     is not read (the page: it "must not be used").
   - IpHeaderChecksum asks for every IPv4 header checksum, outer and inner (with an IPv6
     outer header it is the inner one's); TcpChecksum/UdpChecksum ask for the inner TCP/UDP
     checksum, and must name the inner protocol, not for an inner fragment (L4_MISMATCH,
     FRAGMENT: nothing written). The GRE checksum, when present, is recomputed last whenever
     the frame is followed as NVGRE (it covers what the NIC writes; the transport leaves its
     field zero).
   - EncapsulatedPacketOffsetsValid set: the supplemental offsets must agree with the walk
     (``nvgre.offsets_disagree``), else ENCAPSULATION_OFFSETS and nothing is written.
   - Outer headers only (DESIGN 3): when the frame is not an NVGRE frame ``nvgre.follow``
     follows (another GRE protocol, unknown flags, version != 0, not GRE at all, inner
     headers it cannot walk or past byte 256), or when the encapsulated packet task offload is
     not operational (``encap`` false: *EncapsulatedPacketTaskOffload 0, or not turned on by
     OID_TCP_OFFLOAD_PARAMETERS), only the outer IPv4 header checksum is written (if asked)
     and every other byte is left as it is; ``detail`` says why.

Receive (``rx_validate``):

- A check is reported (Succeeded or Failed) only when it was made; ``rx_active`` false (the
  encapsulation not yet set by OID_OFFLOAD_ENCAPSULATION) or a frame ``parse`` cannot follow
  gives no flags at all. Each protocol's check runs only when its enable is on.
- IPv4 header: the IHL*4 bytes, checksum field included, must sum to 0xFFFF.
- Fragments: IPv4 header only (nothing for an IPv6 fragment).
- TCP, UDP: pseudo-header sum plus the bytes from the L4 header to ``l4_end``, field
  included, must sum to 0xFFFF (``onesum.verifies``). Testing the sum, not comparing the
  field with a recomputed value, accepts both encodings of zero: a correct TCP (or IPv4)
  checksum of 0x0000 may arrive as 0xFFFF, which is the same one's-complement number
  (RFC 1071, RFC 1624) and also makes the sum 0xFFFF; a sender or middlebox doing
  incremental updates can produce either.
- UDP with checksum field 0: over IPv4 it means "no checksum" and is not checked (no UDP
  flag); over IPv6 it is forbidden (RFC 8200 8.1) and reported UdpChecksumFailed.
- Loopback and the ValueInvalid bits are never set here (ValueInvalid belongs to RSC).
- NVGRE (``enables.encap`` on, DESIGN 3 "NVGRE", ``supporting-nvgre-in-checksum-offload.md``):
  for a frame ``nvgre.follow`` follows, the outer and inner IPv4 headers are both checked;
  IpChecksumSucceeded only if every IPv4 header checked passes, IpChecksumFailed if any
  fails. The TCP/UDP flags are the inner transport header's, by the rules above (inner UDP 0:
  nothing over inner IPv4, UdpChecksumFailed over inner IPv6; an inner fragment: IP flags
  only), gated by the enable of the inner IP version. The GRE checksum is not validated
  (NDIS has no flag for it). A GRE frame that is not NVGRE, an NVGRE frame whose inner
  headers cannot be walked, and every GRE frame while ``encap`` is off: the outer IPv4
  header's verdict at most, no TCP/UDP flags.
"""

from __future__ import annotations

import dataclasses
import enum
import functools

from . import nvgre
from .nbl import ChecksumRx, ChecksumTx, SendSupplemental
from .onesum import ones_sum, verifies
from .parse import IPPROTO_TCP, IPPROTO_UDP, Headers, parse, pseudo_header_sum

__all__ = ["TX_MAX_FRAME", "ChecksumEnables", "ALL_ENABLED", "TxSkip", "TxChecksumResult",
           "tx_checksum", "tx_fill", "rx_validate", "RX_ENABLE_NAMES", "TX_ENABLE_NAMES",
           "fill_ipv4_header", "fill_l4", "fill_encapsulated"]

TX_MAX_FRAME = 9728     # bytes; longer frames leave the TX checksum stage unchanged

RX_ENABLE_NAMES = ("rx_active", "rx_ipv4_checksum", "rx_tcp_ipv4", "rx_udp_ipv4",
                   "rx_tcp_ipv6", "rx_udp_ipv6", "encap")
TX_ENABLE_NAMES = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "tx_tcp_ipv6",
                   "tx_udp_ipv6")


@dataclasses.dataclass(frozen=True, slots=True)
class ChecksumEnables:
    """Which checksum offloads are on, per direction and protocol; all on by default.

    Anything with these attribute names can be passed instead (``config.Datapath`` is such a
    view): ``rx_validate`` reads only the ``rx_*`` names, ``transport.prepare_checksum`` only
    the ``tx_*`` names.

    Attributes
    ----------
    rx_active : bool
        Receive checks may run at all (OID_OFFLOAD_ENCAPSULATION has been set).
    rx_ipv4_checksum, rx_tcp_ipv4, rx_udp_ipv4, rx_tcp_ipv6, rx_udp_ipv6 : bool
        Receive validation of each checksum.
    encap : bool
        The encapsulated packet task offload (NVGRE) is operational (``config.Datapath.encap``,
        the OFFLOAD_EN register's ``encap`` bit); off by default, as LSO over NVGRE is not
        built yet in the RTL (``config.adapter.BUILT_OFFLOADS``).
    tx_ipv4_checksum, tx_tcp_ipv4, tx_udp_ipv4, tx_tcp_ipv6, tx_udp_ipv6 : bool
        Transmit offload of each checksum (the transport requests only these).
    """

    rx_active: bool = True
    rx_ipv4_checksum: bool = True
    rx_tcp_ipv4: bool = True
    rx_udp_ipv4: bool = True
    rx_tcp_ipv6: bool = True
    rx_udp_ipv6: bool = True
    tx_ipv4_checksum: bool = True
    tx_tcp_ipv4: bool = True
    tx_udp_ipv4: bool = True
    tx_tcp_ipv6: bool = True
    tx_udp_ipv6: bool = True
    encap: bool = False


ALL_ENABLED = ChecksumEnables()


class TxSkip(enum.IntEnum):
    """Why a transmit checksum request was not carried out (the frame passes unchanged)."""
    BOTH_IP_VERSIONS = 1      # IsIPv4 and IsIPv6 both set
    BOTH_L4 = 2               # TcpChecksum and UdpChecksum both set
    UNPARSEABLE = 3           # parse() failed
    IP_VERSION_MISMATCH = 4   # frame is not the IP version the word names
    FRAGMENT = 5              # TCP/UDP checksum asked for an IP fragment
    L4_MISMATCH = 6           # TCP/UDP checksum asked for a frame of another protocol
    TCP_HEADER_OFFSET = 7     # non-zero TcpHeaderOffset is not where the TCP header is
    TOO_LONG = 8              # frame longer than TX_MAX_FRAME
    ENCAPSULATION_OFFSETS = 9  # supplemental offsets disagree with the headers (NVGRE)


@dataclasses.dataclass(frozen=True, slots=True)
class TxChecksumResult:
    """Outcome of ``tx_checksum``.

    Attributes
    ----------
    frame : bytes
        The frame to put on the wire (the input, unchanged, unless something was written).
    ip_filled, tcp_filled, udp_filled : bool
        Which checksum fields were written (for an encapsulated frame: the outer IPv4 header,
        the inner TCP/UDP header).
    inner_ip_filled, gre_filled : bool
        NVGRE: the inner IPv4 header checksum, the GRE checksum were written.
    skip : TxSkip or None
        Set when a request could not be carried out; then nothing was written.
    detail : str or None
        ``skip`` with the specifics.
    """

    frame: bytes
    ip_filled: bool = False
    tcp_filled: bool = False
    udp_filled: bool = False
    inner_ip_filled: bool = False
    gre_filled: bool = False
    skip: TxSkip | None = None
    detail: str | None = None


def _skip(frame: bytes, reason: TxSkip, detail: str) -> TxChecksumResult:
    return TxChecksumResult(bytes(frame), skip=reason, detail=f"{reason.name}: {detail}")


def tx_checksum(frame: bytes | bytearray, info: ChecksumTx,
                supplemental: SendSupplemental | None = None, *,
                encap: bool = True) -> TxChecksumResult:
    """Fill the checksums a transmit frame's checksum info word asks for.

    Parameters
    ----------
    frame : bytes-like
        The frame as the transport hands it over: IPv4 header checksum zero (ignored anyway),
        TCP/UDP checksum field holding the pseudo-header sum including the L4 length.
    info : ChecksumTx
        The NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO transmit word.
    supplemental : SendSupplemental, optional
        The encapsulation word (NDIS_TCP_SEND_OFFLOADS_SUPPLEMENTAL_NET_BUFFER_LIST_INFO).
    encap : bool
        The encapsulated packet task offload is operational (``config.Datapath.encap``);
        when not, an encapsulated request gets the outer headers only (rule 8).

    Returns
    -------
    TxChecksumResult
        The wire frame and what was done, or why nothing was (see the module docstring).
    """
    if not (info.IsIPv4 or info.IsIPv6):
        return TxChecksumResult(bytes(frame))
    if info.IsIPv4 and info.IsIPv6:
        return _skip(frame, TxSkip.BOTH_IP_VERSIONS, "IsIPv4 and IsIPv6 both set")
    want_ip = bool(info.IsIPv4 and info.IpHeaderChecksum)
    want_tcp, want_udp = bool(info.TcpChecksum), bool(info.UdpChecksum)
    if want_tcp and want_udp:
        return _skip(frame, TxSkip.BOTH_L4, "TcpChecksum and UdpChecksum both set")
    encapsulated = supplemental is not None and supplemental.IsEncapsulatedPacket
    if not (want_ip or want_tcp or want_udp or encapsulated):
        return TxChecksumResult(bytes(frame))

    if len(frame) > TX_MAX_FRAME:
        return _skip(frame, TxSkip.TOO_LONG, f"{len(frame)} bytes > {TX_MAX_FRAME}")
    h = parse(frame)
    if h.error_code is not None:
        return _skip(frame, TxSkip.UNPARSEABLE, h.error)
    version = 4 if info.IsIPv4 else 6
    if h.ip_version != version:
        return _skip(frame, TxSkip.IP_VERSION_MISMATCH,
                     f"IsIPv{version} set, frame is IPv{h.ip_version}")
    if encapsulated:
        return _tx_encapsulated(frame, h, info, supplemental, encap)
    if want_tcp or want_udp:
        refused = _l4_request(h, want_tcp, want_udp)
        if refused:
            return _skip(frame, *refused)
        if want_tcp and info.TcpHeaderOffset and info.TcpHeaderOffset != h.l4_offset:
            return _skip(frame, TxSkip.TCP_HEADER_OFFSET,
                         f"TcpHeaderOffset {info.TcpHeaderOffset}, TCP header at "
                         f"{h.l4_offset}")

    out = bytearray(frame)
    if want_ip:
        fill_ipv4_header(out, h)
    if want_tcp or want_udp:
        fill_l4(out, h)
    return TxChecksumResult(bytes(out), ip_filled=want_ip, tcp_filled=want_tcp,
                            udp_filled=want_udp)


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset] = value >> 8
    buf[offset + 1] = value & 0xFF


def fill_ipv4_header(out: bytearray, h: Headers) -> None:
    """Rule 4: the checksum of the IPv4 header ``h`` locates, its field taken as zero."""
    l3 = h.l3_offset
    _put16(out, l3 + 10, 0)
    _put16(out, l3 + 10, ~ones_sum(out, l3, l3 + h.ip_header_len) & 0xFFFF)


def fill_l4(out: bytearray, h: Headers) -> None:
    """Rule 5: the TCP/UDP checksum of the header ``h`` locates, from the pseudo-header sum
    its field holds (UDP 0x0000 written 0xFFFF)."""
    tcp = h.l4_proto == IPPROTO_TCP
    value = ~ones_sum(out, h.l4_offset, h.l4_end) & 0xFFFF
    if not tcp and value == 0:
        value = 0xFFFF
    _put16(out, h.l4_offset + (16 if tcp else 6), value)


def fill_encapsulated(out: bytearray, nv: nvgre.Nvgre, *, ip: bool = True,
                      l4: bool = True) -> None:
    """Write the checksums of the followed NVGRE frame in ``out`` (rule 8, ``nvgre`` module
    docstring): with ``ip`` every IPv4 header checksum (outer and inner), with ``l4`` the
    inner TCP/UDP checksum (none for an inner fragment or another protocol), and then, last,
    the GRE checksum when present."""
    if ip:
        for h in (nv.outer, nv.inner):
            if h.ip_version == 4:
                fill_ipv4_header(out, h)
    if l4 and nv.inner.l4_end is not None:
        fill_l4(out, nv.inner)
    nvgre.fill_gre_checksum(out, nv)


def _l4_request(h: Headers, want_tcp: bool, want_udp: bool) -> tuple[TxSkip, str] | None:
    """Why a TcpChecksum/UdpChecksum request cannot be carried out on the TCP/UDP header of
    ``h`` (rule 2), or None."""
    if h.is_fragment:
        return TxSkip.FRAGMENT, "TCP/UDP checksum asked for a fragment"
    proto = IPPROTO_TCP if want_tcp else IPPROTO_UDP
    if h.l4_proto != proto or h.l4_end is None:
        return (TxSkip.L4_MISMATCH, f"{'Tcp' if want_tcp else 'Udp'}Checksum set, L4 "
                f"protocol is {h.l4_proto}")
    return None


def _tx_encapsulated(frame, outer: Headers, info: ChecksumTx, supplemental: SendSupplemental,
                     encap: bool) -> TxChecksumResult:
    """Rule 8: an IsEncapsulatedPacket request on a frame whose outer IP version is the
    word's."""
    want_ip = bool(info.IpHeaderChecksum)
    want_tcp, want_udp = bool(info.TcpChecksum), bool(info.UdpChecksum)
    nv = nvgre.follow(frame, outer=outer)
    out = bytearray(frame)
    if not (encap and nv.ok):
        why = nv.error if not nv.ok else "the encapsulated packet task offload is off"
        outer_ip = want_ip and outer.ip_version == 4
        if outer_ip:
            fill_ipv4_header(out, outer)
        return TxChecksumResult(bytes(out), ip_filled=outer_ip,
                                detail=f"outer headers only: {why}")
    wrong = nvgre.offsets_disagree(nv, supplemental)
    if wrong:
        return _skip(frame, TxSkip.ENCAPSULATION_OFFSETS, wrong)
    if want_tcp or want_udp:
        refused = _l4_request(nv.inner, want_tcp, want_udp)
        if refused:
            return _skip(frame, refused[0], f"inner frame: {refused[1]}")
    fill_encapsulated(out, nv, ip=want_ip, l4=want_tcp or want_udp)
    return TxChecksumResult(bytes(out), ip_filled=want_ip and outer.ip_version == 4,
                            inner_ip_filled=want_ip and nv.inner.ip_version == 4,
                            tcp_filled=want_tcp, udp_filled=want_udp,
                            gre_filled=nv.gre_checksum_offset is not None)


def tx_fill(frame: bytes | bytearray, info: ChecksumTx,
            supplemental: SendSupplemental | None = None, *, encap: bool = True) -> bytes:
    """The wire frame of ``tx_checksum`` (what the RTL's checksum-insert stage emits)."""
    return tx_checksum(frame, info, supplemental, encap=encap).frame


@functools.lru_cache(maxsize=None)
def _rx_word(names: tuple[str, ...]) -> ChecksumRx:
    """The receive word with ``names`` set (the words are immutable: one of each is made)."""
    return ChecksumRx(**dict.fromkeys(names, 1))


def rx_validate(frame: bytes | bytearray, *, enables=ALL_ENABLED) -> ChecksumRx:
    """The receive checksum info word for a frame from the wire.

    Parameters
    ----------
    frame : bytes-like
        The received frame without FCS.
    enables : ChecksumEnables or any object with the ``RX_ENABLE_NAMES`` attributes
        Which receive checks are on; its ``encap`` (NVGRE) when it has one (absent: off).

    Returns
    -------
    ChecksumRx
        Succeeded/Failed for each checksum checked; all zero when nothing was checked.
    """
    if not enables.rx_active:
        return ChecksumRx()
    h = parse(frame)
    if h.error_code is not None:
        return ChecksumRx()
    flags = {}
    inner = None
    if getattr(enables, "encap", False) and h.l4_proto == nvgre.IPPROTO_GRE and not h.is_fragment:
        nv = nvgre.follow(frame, outer=h)
        inner = nv.inner if nv.ok else None
    if enables.rx_ipv4_checksum:
        checked = [x for x in (h, inner) if x is not None and x.ip_version == 4]
        if checked:
            ok = all(verifies(frame, x.l3_offset, x.l3_offset + x.ip_header_len)
                     for x in checked)
            flags["IpChecksumSucceeded" if ok else "IpChecksumFailed"] = 1
    _l4_flags(frame, h if inner is None else inner, enables, flags)
    return _rx_word(tuple(flags))


def _l4_flags(frame, h: Headers, enables, flags: dict) -> None:
    """The TCP/UDP flags of the transport header ``h`` locates (the inner one of an NVGRE
    frame), by the enable of its IP version, into ``flags``."""
    if h.l4_end is None:      # no TCP/UDP header was parsed (never for fragments)
        return
    if h.ip_version == 4:
        tcp_on, udp_on = enables.rx_tcp_ipv4, enables.rx_udp_ipv4
    else:
        tcp_on, udp_on = enables.rx_tcp_ipv6, enables.rx_udp_ipv6
    l4 = h.l4_offset
    if h.l4_proto == IPPROTO_TCP and tcp_on:
        ok = verifies(frame, l4, h.l4_end, pseudo_header_sum(frame, h))
        flags["TcpChecksumSucceeded" if ok else "TcpChecksumFailed"] = 1
    elif h.l4_proto == IPPROTO_UDP and udp_on:
        if frame[l4 + 6] == 0 and frame[l4 + 7] == 0:
            if h.ip_version == 6:
                flags["UdpChecksumFailed"] = 1
        else:
            ok = verifies(frame, l4, h.l4_end, pseudo_header_sum(frame, h))
            flags["UdpChecksumSucceeded" if ok else "UdpChecksumFailed"] = 1
