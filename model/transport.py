"""The NDIS TCP/IP transport's side of task offload: how a frame arrives at the miniport.

The CLI's ``tx`` command and the testbenches play the transport: they take a finished frame
(every checksum correct, as on a capture) and turn it into what Windows' TCP/IP stack would
hand to ``MiniportSendNetBufferLists`` together with its out-of-band info words. Each
preparation is one function returning ``(frame, info)``; LSO preparation will join
``prepare_checksum`` here.

Checksum (``offloading-checksum-tasks.md``, ``DESIGN.md`` 3 "Checksum TX", 4 ``tx``):

- For each checksum whose offload the configuration enables (``tx_*`` attributes of the
  enables, as in ``checksum.ChecksumEnables``), the transport requests it: the IPv4 header
  checksum field is set to zero and IpHeaderChecksum set; the TCP/UDP checksum field gets the
  non-inverted pseudo-header sum including the L4 length (``parse.pseudo_header_sum``) and
  TcpChecksum/UdpChecksum is set.
- A checksum whose offload is disabled is the transport's own job: it writes the complete,
  correct value itself (UDP 0 as 0xFFFF) and does not request it.
- IsIPv4/IsIPv6 name the IP version when at least one checksum is requested; with nothing
  requested the info word is all zero.
- TcpHeaderOffset is the TCP header's offset from the first byte of the frame, set with
  TcpChecksum only (the NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO reference page: "for TCP
  packets"; ``accessing-tcp-ip-offload-net-buffer-list-information.md`` on its purpose);
  it is 0 for UDP.
- A fragment gets at most the IPv4 header checksum: its TCP/UDP checksum was computed over
  the whole datagram before fragmentation and is left as it is. A frame the parser cannot
  follow, or that is not IP, is handed over unchanged with an all-zero word.
- A frame longer than the NIC's largest frame (``max_frame``, default
  ``checksum.TX_MAX_FRAME``) is never handed over with checksum requests (``DESIGN.md`` 3):
  the NIC would pass it unchanged, so a prepared field would reach the wire. The transport
  fills every checksum of such a frame itself (``fill_checksums``), as it does for any
  checksum whose offload is off, and the info word is all zero.
"""

from __future__ import annotations

from .checksum import TX_ENABLE_NAMES, TX_MAX_FRAME, ChecksumEnables
from .nbl import ChecksumTx
from .onesum import ones_sum
from .parse import IPPROTO_TCP, IPPROTO_UDP, parse, pseudo_header_sum

__all__ = ["prepare_checksum", "fill_checksums"]

_NOTHING_ENABLED = ChecksumEnables(**dict.fromkeys(TX_ENABLE_NAMES, False))


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset] = value >> 8
    buf[offset + 1] = value & 0xFF


def fill_checksums(frame: bytes | bytearray | memoryview) -> bytes:
    """The frame with every checksum the transport owns computed in software: the IPv4 header
    checksum, and the TCP or UDP checksum of a frame that is not a fragment (UDP 0 as
    0xFFFF). A frame the parser cannot follow is returned unchanged; the checksums of other
    protocols (ICMP, PIM, ...) are left as they are."""
    return prepare_checksum(frame, _NOTHING_ENABLED, max_frame=None)[0]


def prepare_checksum(frame: bytes | bytearray, enables, *,
                     max_frame: int | None = TX_MAX_FRAME) -> tuple[bytes, ChecksumTx]:
    """Prepare a finished frame for checksum offload as the NDIS transport would.

    Parameters
    ----------
    frame : bytes-like
        A frame with whatever checksums it carries (they are recomputed or replaced).
    enables : checksum.ChecksumEnables or any object with its ``tx_*`` attributes
        Which transmit checksum offloads are enabled.
    max_frame : int or None
        The NIC's largest frame (its store-and-forward buffer): a longer frame gets all its
        checksums from the transport and requests none. None: no limit.

    Returns
    -------
    (bytes, ChecksumTx)
        The frame with prepared checksum fields, and the checksum info word.
    """
    if max_frame is not None and len(frame) > max_frame:
        enables = _NOTHING_ENABLED
    h = parse(frame)
    if h.error_code is not None:
        return bytes(frame), ChecksumTx()
    out = bytearray(frame)
    v4 = h.ip_version == 4
    word = {}
    if v4:
        l3 = h.l3_offset
        _put16(out, l3 + 10, 0)
        if enables.tx_ipv4_checksum:
            word["IpHeaderChecksum"] = 1
        else:
            _put16(out, l3 + 10, ~ones_sum(out, l3, l3 + h.ip_header_len) & 0xFFFF)
    if h.l4_end is not None:   # complete TCP or UDP header, not a fragment
        tcp = h.l4_proto == IPPROTO_TCP
        assert tcp or h.l4_proto == IPPROTO_UDP
        if tcp:
            enabled = enables.tx_tcp_ipv4 if v4 else enables.tx_tcp_ipv6
        else:
            enabled = enables.tx_udp_ipv4 if v4 else enables.tx_udp_ipv6
        field = h.l4_offset + (16 if tcp else 6)
        pseudo = pseudo_header_sum(out, h)
        _put16(out, field, pseudo)
        if enabled:
            if tcp:
                word["TcpChecksum"] = 1
                word["TcpHeaderOffset"] = h.l4_offset
            else:
                word["UdpChecksum"] = 1
        else:
            value = ~ones_sum(out, h.l4_offset, h.l4_end) & 0xFFFF
            if not tcp and value == 0:
                value = 0xFFFF
            _put16(out, field, value)
    if word:
        word["IsIPv4" if v4 else "IsIPv6"] = 1
    return bytes(out), ChecksumTx(**word)
