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
8. NVGRE (SendSupplemental.IsEncapsulatedPacket) is not implemented yet: ``tx_checksum``
   raises ``NotImplementedError`` for it, the hook where inner headers will be handled.

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
- Encapsulated (GRE/NVGRE) frames: only the outer headers are checked for now; the inner
  checks and the "both IPv4 headers" rule of ``supporting-nvgre-in-checksum-offload.md`` are
  left for the encapsulation stage.
"""

from __future__ import annotations

import dataclasses
import enum
import functools

from .nbl import ChecksumRx, ChecksumTx, SendSupplemental
from .onesum import ones_sum, verifies
from .parse import IPPROTO_TCP, IPPROTO_UDP, Headers, parse, pseudo_header_sum

__all__ = ["TX_MAX_FRAME", "ChecksumEnables", "ALL_ENABLED", "TxSkip", "TxChecksumResult", "tx_checksum",
           "tx_fill", "rx_validate", "RX_ENABLE_NAMES", "TX_ENABLE_NAMES"]

TX_MAX_FRAME = 9728     # bytes; longer frames leave the TX checksum stage unchanged

RX_ENABLE_NAMES = ("rx_active", "rx_ipv4_checksum", "rx_tcp_ipv4", "rx_udp_ipv4",
                   "rx_tcp_ipv6", "rx_udp_ipv6")
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


@dataclasses.dataclass(frozen=True, slots=True)
class TxChecksumResult:
    """Outcome of ``tx_checksum``.

    Attributes
    ----------
    frame : bytes
        The frame to put on the wire (the input, unchanged, unless something was written).
    ip_filled, tcp_filled, udp_filled : bool
        Which checksum fields were written.
    skip : TxSkip or None
        Set when a request could not be carried out; then nothing was written.
    detail : str or None
        ``skip`` with the specifics.
    """

    frame: bytes
    ip_filled: bool = False
    tcp_filled: bool = False
    udp_filled: bool = False
    skip: TxSkip | None = None
    detail: str | None = None


def _skip(frame: bytes, reason: TxSkip, detail: str) -> TxChecksumResult:
    return TxChecksumResult(bytes(frame), skip=reason, detail=f"{reason.name}: {detail}")


def tx_checksum(frame: bytes | bytearray, info: ChecksumTx,
                supplemental: SendSupplemental | None = None) -> TxChecksumResult:
    """Fill the checksums a transmit frame's checksum info word asks for.

    Parameters
    ----------
    frame : bytes-like
        The frame as the transport hands it over: IPv4 header checksum zero (ignored anyway),
        TCP/UDP checksum field holding the pseudo-header sum including the L4 length.
    info : ChecksumTx
        The NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO transmit word.
    supplemental : SendSupplemental, optional
        The encapsulation word; encapsulated frames are not supported yet.

    Returns
    -------
    TxChecksumResult
        The wire frame and what was done, or why nothing was (see the module docstring).
    """
    if supplemental is not None and supplemental.IsEncapsulatedPacket:
        raise NotImplementedError("NVGRE-encapsulated checksum offload (inner headers) is "
                                  "not implemented yet")
    if not (info.IsIPv4 or info.IsIPv6):
        return TxChecksumResult(bytes(frame))
    if info.IsIPv4 and info.IsIPv6:
        return _skip(frame, TxSkip.BOTH_IP_VERSIONS, "IsIPv4 and IsIPv6 both set")
    want_ip = bool(info.IsIPv4 and info.IpHeaderChecksum)
    want_tcp, want_udp = bool(info.TcpChecksum), bool(info.UdpChecksum)
    if want_tcp and want_udp:
        return _skip(frame, TxSkip.BOTH_L4, "TcpChecksum and UdpChecksum both set")
    if not (want_ip or want_tcp or want_udp):
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
    if want_tcp or want_udp:
        if h.is_fragment:
            return _skip(frame, TxSkip.FRAGMENT, "TCP/UDP checksum asked for a fragment")
        proto = IPPROTO_TCP if want_tcp else IPPROTO_UDP
        if h.l4_proto != proto:
            return _skip(frame, TxSkip.L4_MISMATCH,
                         f"{'Tcp' if want_tcp else 'Udp'}Checksum set, L4 protocol is "
                         f"{h.l4_proto}")
        if want_tcp and info.TcpHeaderOffset and info.TcpHeaderOffset != h.l4_offset:
            return _skip(frame, TxSkip.TCP_HEADER_OFFSET,
                         f"TcpHeaderOffset {info.TcpHeaderOffset}, TCP header at "
                         f"{h.l4_offset}")

    out = bytearray(frame)
    if want_ip:
        _fill_ipv4_header(out, h)
    if want_tcp or want_udp:
        l4 = h.l4_offset
        field = l4 + (16 if want_tcp else 6)
        value = ~ones_sum(out, l4, h.l4_end) & 0xFFFF
        if want_udp and value == 0:
            value = 0xFFFF
        out[field] = value >> 8
        out[field + 1] = value & 0xFF
    return TxChecksumResult(bytes(out), ip_filled=want_ip, tcp_filled=want_tcp,
                            udp_filled=want_udp)


def _fill_ipv4_header(out: bytearray, h: Headers) -> None:
    l3 = h.l3_offset
    out[l3 + 10] = out[l3 + 11] = 0
    value = ~ones_sum(out, l3, l3 + h.ip_header_len) & 0xFFFF
    out[l3 + 10] = value >> 8
    out[l3 + 11] = value & 0xFF


def tx_fill(frame: bytes | bytearray, info: ChecksumTx,
            supplemental: SendSupplemental | None = None) -> bytes:
    """The wire frame of ``tx_checksum`` (what the RTL's checksum-insert stage emits)."""
    return tx_checksum(frame, info, supplemental).frame


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
        Which receive checks are on.

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
    if h.ip_version == 4:
        if enables.rx_ipv4_checksum:
            l3 = h.l3_offset
            ok = verifies(frame, l3, l3 + h.ip_header_len)
            flags["IpChecksumSucceeded" if ok else "IpChecksumFailed"] = 1
        tcp_on, udp_on = enables.rx_tcp_ipv4, enables.rx_udp_ipv4
    else:
        tcp_on, udp_on = enables.rx_tcp_ipv6, enables.rx_udp_ipv6
    if h.l4_end is not None:   # a TCP/UDP header was parsed (never for fragments)
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
    return _rx_word(tuple(flags))
