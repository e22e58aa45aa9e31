"""Receive segment coalescing (RSC): the golden model of the RX coalescer.

``RscEngine`` takes the frames of the wire one by one, each with the receive checksum word
the checksum stage gave it (``checksum.rx_validate``) and its arrival time, and returns the
frames the NIC indicates to the host, each with its receive checksum word, its RSC info
(CoalescedSegCount, DupAckCount) and its RscTcpTimestampDelta word (``nbl.RxUser``). It keeps
the state of the hardware's bounded flow table and makes every choice the RTL makes, so model
and RTL agree on every single coalesced unit (SCU) boundary, bit for bit.

Sources, in ``shared/reference/ndis/``: ``rules-for-coalescing-tcp-ip-packets.md`` and its
flowcharts ``images/rsc-rules1.png`` (coalescing), ``rsc-rules2.png`` (window update /
duplicate ACK heuristic), ``rsc-rules3.png`` (timestamps);
``exception-conditions-that-terminate-coalescing.md`` (the exception list, numbered 1..8
below as there); ``updating-the-ip-headers-for-coalesced-segments.md``;
``indicating-coalesced-segments.md``; ``examples-of-receive-segment-coalescing.md``;
``oid-tcp-rsc-statistics.md``; ``querying-and-changing-rsc-state.md``. Where they are silent
or disagree, ``DESIGN.md`` section 3 "RSC" decides; the points it leaves open are decided
here (marked "Ours").

Time
----
Arrival times are integers in the caller's unit (the RTL counts clock cycles, the CLI counts
pcap microseconds); ``idle_timeout`` is in the same unit. Times never go backwards.

Frames and flows (DESIGN 3 RSC)
-------------------------------
- A flow is one direction of one TCP connection: the VLAN tags (TPID and VLAN ID of each;
  ours: PCP/DEI are not identity, they belong to the Ethernet header that must be equal),
  the IP version, the source and destination addresses and the TCP ports.
- Pass-through (ours, precise): a frame that is not a TCP segment (another protocol, not IP,
  a frame ``parse`` cannot follow) or whose IP version has RSC off is indicated at once,
  unchanged, with CoalescedSegCount 0; it touches no SCU, so SCUs of any flow that are open
  stay open and are indicated after it ("output order across flows follows finalization":
  a pass-through frame is final when it arrives).
- A TCP fragment (IPv4 MF or offset, IPv6 Fragment header; exception 6) carries no port
  numbers the NIC trusts. Ours: it finalizes, in opening order, every open SCU with the same
  VLAN tags, IP version and addresses (its flow is one of them), then goes up alone.
- Exceptions (exception page 2..6 and DESIGN): a bad or unchecked IPv4 header or TCP
  checksum (ours: a segment without IpChecksumSucceeded (IPv4) and TcpChecksumSucceeded in
  its word was not verified and cannot be vouched for in an SCU, so it is treated like a bad
  one), IPv4 options, IPv6 extension headers, a TCP flag other than ACK/PSH/ECE/CWR (ours:
  NS/AE and the three reserved bits count as flags), no ACK, TCP options other than NOP, EOL
  (bytes after EOL are padding) and one timestamp option of length 10. The flow's SCU is
  indicated first, then the segment alone and unchanged with CoalescedSegCount 0; it takes
  no context.

Joining (flowchart 1, DESIGN), checked in this order once a flow has an open SCU
---------------------------------------------------------------------------------
1. ECN (IP ECN field; ECE, CWR) differs from the SCU's: new SCU (exception 8).
2. Ethernet header, IPv4 TOS and DF / IPv6 Traffic Class and Flow Label, TCP header length
   or timestamp presence differ: new SCU.
3. Pure ACK (no payload). Heuristic of flowchart 2: with SEG.SEQ == H.NXT and
   SEG.ACK == H.ACK it is a window update when SEG.WND != H.WND (joins if its timestamp
   passes 5.; sets the window; not counted) and a duplicate ACK when SEG.WND == H.WND (the
   "Duplicate ACK Exemption": the SCU is finalized and the duplicate ACK goes up alone, so
   DupAckCount is always 0). Any other pure ACK finalizes the SCU and starts a new one.
4. Data: SEG.SEQ == H.NXT; the SCU holds data (H.LEN > 0: data never joins an SCU that began
   with a pure ACK); SEG.ACK >= H.ACK (serial arithmetic, RFC 1982);
5. SEG.TSval >= H.TSval (mod 2**32; equal values coalesce; flowchart 3);
6. the SCU stays within 65,535 bytes (IPv4 Total Length; IPv6 Payload Length; exception 7);
7. the SCU stays within ``max_scu_bytes`` bytes of frame (the hardware buffer; exception 1).
Failing any of them finalizes the SCU and starts a new one with the segment (path "C").
A segment of a flow with no open SCU starts one (CoalescedSegCount 1, pure ACKs too, as
flowchart 1 sets it); if every context is busy, the SCU opened first is finalized
(exception 1). A segment that alone is longer than ``max_scu_bytes`` goes up alone.

Finalizing
----------
An SCU is finalized by the cases above, when no segment has joined it for ``idle_timeout``
(it is finalized before anything that arrives at ``last_join + idle_timeout`` or later;
several at once in the order of their last join, then of opening), at
``end_indication()`` (every open SCU, in opening order: the NDIS "DPC boundary" of
``indicating-coalesced-segments.md``), and when RSC is switched off for either IP version
(``set_enables``: every open SCU, in opening order; ``querying-and-changing-rsc-state.md``).

The SCU frame (``updating-the-ip-headers-for-coalesced-segments.md``, DESIGN): a one-segment
SCU is the segment unchanged with its own checksum word. Otherwise the first segment's
headers (Ethernet header, TOS/Traffic Class/Flow Label, DF, IPv4 ID, SEQ, option layout,
urgent pointer, flags), with ACK, window, TSval and TSecr of the last segment coalesced, PSH
the OR of all, TTL/Hop Limit the minimum of all, IPv4 Total Length / IPv6 Payload Length for
the chained payload, and the IPv4 header and TCP checksums recomputed; the checksum word then
has IpChecksumSucceeded (IPv4) and TcpChecksumSucceeded and nothing else. An SCU frame
carries no Ethernet padding.

Out-of-band info (rules page): CoalescedSegCount is 1 for the segment that starts an SCU
plus 1 per data segment that joins (window updates add nothing); 0 for any frame indicated
alone. DupAckCount is 0. RscTcpTimestampDelta = latest TSval - first TSval (mod 2**32),
0 without timestamps.

Statistics (``oid-tcp-rsc-statistics.md``, ``RscStatistics``): CoalescedPkts +1 and
CoalescedOctets + TCP payload for every segment that starts or joins an SCU (window updates
too); CoalesceEvents +1 per SCU finalized; Aborts +1 per exception (each segment indicated
alone, fragments and duplicate ACKs included) and per SCU ended by a failed rule or by
hardware resources (contexts, SCU bytes), but not by the 65,535-byte limit, the idle timer,
the end of an indication or switching RSC off.

Other choices (ours)
--------------------
- Checks 1..7 give the same output whatever fails; the order matters only for Aborts: the
  65,535-byte limit is not an Abort only when every other check passed.
- A duplicate ACK is recognised before its timestamp is looked at (it never joins).
- A window update joins, so it restarts the idle timer.
- ``max_scu_bytes`` counts the SCU frame from the destination MAC address to the end of the
  payload, as the buffer stores it.
- LLC/SNAP frames coalesce like Ethernet II ones and the SCU keeps the first segment's
  802.3 length field as it is (DESIGN: "Ethernet header ... of the first segment"), which
  no longer describes an SCU longer than the first segment.
- A TCP segment that ``parse`` cannot follow (e.g. its header ends past the parse limit) is
  passed through and does not finalize its flow's SCU, so it can go up before it.
"""

from __future__ import annotations

import dataclasses
import enum

from .checksum import ALL_ENABLED, rx_validate
from .nbl import ChecksumRx, RscInfo, RscTcpTimestampDelta
from .onesum import internet_checksum
from .parse import IPPROTO_TCP, Headers, parse, pseudo_header_sum

__all__ = ["IP_DATAGRAM_MAX", "DEFAULT_CONTEXTS", "DEFAULT_MAX_SCU_BYTES", "Cause",
           "Indication", "RscStatistics", "RscEngine", "receive_capture"]

IP_DATAGRAM_MAX = 65535        # RFC 791 3.1; indicating-coalesced-segments.md
DEFAULT_CONTEXTS = 8           # DESIGN 4: --rsc-contexts default
# The SCU buffer holds one SCU frame: the longest L2 header parse follows (2 tags + LLC/SNAP,
# 30 bytes) + the IPv6 header (40) + 65,535 bytes of payload length fit, so at the default no
# SCU is split below the 65,535-byte limit (DESIGN 3).
DEFAULT_MAX_SCU_BYTES = 65536 + 128

_MOD32 = 1 << 32
_ACK, _PSH = 0x10, 0x08
_ALLOWED_FLAGS = 0x10 | 0x08 | 0x40 | 0x80   # ACK, PSH, ECE, CWR
_ECN_FLAGS = 0x40 | 0x80                      # ECE, CWR
_TS_KIND, _TS_LEN = 8, 10


def _serial_ge(a: int, b: int) -> bool:
    """a >= b in 32-bit serial arithmetic (RFC 793 3.3, RFC 1982)."""
    return (a - b) % _MOD32 < (1 << 31)


class Cause(enum.IntEnum):
    """Why a frame was indicated (``Indication.cause``; for people and tests, not compared).

    The first group is for frames indicated alone, the rest say why an SCU was finalized.
    """
    PASS_THROUGH = 1        # not a TCP segment, unparseable, or RSC off for its IP version
    CHECKSUM = 2            # bad or unverified IPv4 header / TCP checksum (exception 2)
    FLAGS = 3               # a flag other than ACK/PSH/ECE/CWR, or no ACK (exception 3)
    TCP_OPTIONS = 4         # an option other than NOP/EOL/one timestamp (exception 4)
    IP_OPTIONS = 5          # IPv4 options or IPv6 extension headers (exception 5)
    FRAGMENT = 6            # an IP fragment (exception 6)
    DUPLICATE_ACK = 7       # the "Duplicate ACK Exemption" (rules page)
    TOO_LONG = 8            # longer than the SCU buffer by itself (exception 1)
    # SCU finalized:
    EXCEPTION = 20          # a segment of the flow was indicated alone (first group above)
    ECN_CHANGE = 21         # exception 8
    HEADER_CHANGE = 22      # Ethernet header, TOS/DF, TC/Flow Label, TCP header length, TS
    PURE_ACK = 23           # a pure ACK that is neither window update nor duplicate ACK
    NOT_IN_SEQUENCE = 24    # SEG.SEQ != H.NXT
    PURE_ACK_SCU = 25       # data after an SCU that began with a pure ACK
    ACK_BELOW = 26          # SEG.ACK < H.ACK
    TIMESTAMP = 27          # SEG.TSval < H.TSval
    IP_LENGTH = 28          # would pass 65,535 bytes (exception 7)
    SCU_BYTES = 29          # would pass max_scu_bytes (exception 1)
    CONTEXTS = 30           # a new flow found every context busy (exception 1)
    IDLE = 31               # nothing joined for idle_timeout
    END_OF_INDICATION = 32  # end_indication()
    DISABLED = 33           # RSC switched off


# Finalizations that are not Aborts (oid-tcp-rsc-statistics.md: "other than the IP datagram
# length being exceeded"; the others are not exceptions at all).
_NOT_ABORTS = frozenset((Cause.IP_LENGTH, Cause.IDLE, Cause.END_OF_INDICATION,
                         Cause.DISABLED))


@dataclasses.dataclass(frozen=True, slots=True)
class Indication:
    """One frame indicated to the host and its receive info (``nbl.RxUser``'s three words).

    Iterates as ``(frame, checksum, rsc, timestamp_delta)``; ``cause`` is not compared.

    Attributes
    ----------
    frame : bytes
        The frame as the host receives it.
    checksum : ChecksumRx
        The receive checksum word.
    rsc : RscInfo
        CoalescedSegCount (0 for a frame indicated alone) and DupAckCount (always 0).
    timestamp_delta : RscTcpTimestampDelta
        Latest TSval - first TSval of the SCU, mod 2**32; 0 without timestamps.
    cause : Cause
        Why it was indicated (a frame alone) or why its SCU was finalized.
    """

    frame: bytes
    checksum: ChecksumRx
    rsc: RscInfo
    timestamp_delta: RscTcpTimestampDelta
    cause: Cause = dataclasses.field(default=Cause.PASS_THROUGH, compare=False)

    def __iter__(self):
        return iter((self.frame, self.checksum, self.rsc, self.timestamp_delta))


@dataclasses.dataclass(frozen=True, slots=True)
class RscStatistics:
    """NDIS_RSC_STATISTICS_INFO (``oid-tcp-rsc-statistics.md``); see the module docstring."""
    CoalescedPkts: int = 0
    CoalescedOctets: int = 0
    CoalesceEvents: int = 0
    Aborts: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class _Segment:
    """What RSC reads from one eligible TCP segment (the rules page's SEG.* terms)."""
    frame: bytes
    checksum: ChecksumRx
    headers: Headers
    flow: tuple
    SEQ: int
    ACK: int
    WND: int
    LEN: int
    flags: int
    TSval: int | None
    TSecr: int | None
    ts_offset: int | None      # frame offset of the timestamp option's kind byte
    ecn: tuple                 # (IP ECN field, TCP flags & (ECE|CWR))
    same: tuple                # the fields that must equal the SCU's (DESIGN 3)
    hop: int                   # TTL / Hop Limit

    @property
    def payload(self) -> bytes:
        h = self.headers
        return self.frame[h.l4_offset + h.l4_header_len:h.ip_end]


@dataclasses.dataclass(slots=True)
class _Scu:
    """The state of one tracked SCU (the rules page's H.* terms); mutable, engine-owned."""
    first: _Segment
    opened: int                # opening order (a counter)
    last_join: int             # arrival time of the last segment that started or joined it
    ACK: int
    WND: int
    LEN: int
    TSval: int | None
    TSecr: int | None
    CoalescedSegCount: int = 1
    segments: int = 1          # segments in it, window updates included
    psh: bool = False
    hop: int = 255
    chunks: list = dataclasses.field(default_factory=list)

    @property
    def NXT(self) -> int:
        return (self.first.SEQ + self.LEN) % _MOD32

    def frame_bytes(self) -> int:
        """Bytes of the SCU frame: the first segment's headers plus the chained payload."""
        h = self.first.headers
        return h.l4_offset + h.l4_header_len + self.LEN

    def ip_length(self) -> int:
        """IPv4 Total Length or IPv6 Payload Length of the SCU."""
        h = self.first.headers
        base = h.ip_header_len if h.ip_version == 4 else 0
        return base + h.l4_header_len + self.LEN


def _vlan_key(frame: bytes, h: Headers) -> tuple:
    """(TPID, VLAN ID) of each tag, outermost first."""
    return tuple(((frame[12 + 4 * i] << 8) | frame[13 + 4 * i],
                  ((frame[14 + 4 * i] << 8) | frame[15 + 4 * i]) & 0x0FFF)
                 for i in range(h.vlan_tags))


def _address_key(frame: bytes, h: Headers) -> tuple:
    """VLAN tags, IP version and addresses: the part of a flow a fragment shows."""
    l3 = h.l3_offset
    if h.ip_version == 4:
        src, dst = frame[l3 + 12:l3 + 16], frame[l3 + 16:l3 + 20]
    else:
        src, dst = frame[l3 + 8:l3 + 24], frame[l3 + 24:l3 + 40]
    return (_vlan_key(frame, h), h.ip_version, bytes(src), bytes(dst))


def _timestamp_option(frame: bytes, start: int, end: int) -> tuple[bool, int | None]:
    """Walk the TCP options in ``frame[start:end]`` (exception 4).

    Returns (acceptable, offset of the timestamp option or None). Acceptable: only NOP (1),
    EOL (0, which ends the list; what follows is padding) and at most one timestamp option
    (kind 8, length 10, RFC 7323).
    """
    i, ts = start, None
    while i < end:
        kind = frame[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if kind == _TS_KIND and ts is None and i + _TS_LEN <= end and frame[i + 1] == _TS_LEN:
            ts = i
            i += _TS_LEN
            continue
        return False, None
    return True, ts


def _exception(frame: bytes, checksum: ChecksumRx, h: Headers) -> Cause | None:
    """The presence checks of ``exception-conditions-that-terminate-coalescing.md``, in order
    (checksum, IP options / extension headers, flags, TCP options); None if none fires."""
    if checksum.TcpChecksumFailed or not checksum.TcpChecksumSucceeded:
        return Cause.CHECKSUM
    if h.ip_version == 4 and (checksum.IpChecksumFailed or not checksum.IpChecksumSucceeded):
        return Cause.CHECKSUM
    if h.ip_header_len != (20 if h.ip_version == 4 else 40):
        return Cause.IP_OPTIONS
    l4 = h.l4_offset
    if (frame[l4 + 12] & 0x0F) or (frame[l4 + 13] & ~_ALLOWED_FLAGS & 0xFF) \
            or not frame[l4 + 13] & _ACK:
        return Cause.FLAGS
    ok, _ = _timestamp_option(frame, l4 + 20, l4 + h.l4_header_len)
    if not ok:
        return Cause.TCP_OPTIONS
    return None


def _segment(frame: bytes, checksum: ChecksumRx, h: Headers) -> _Segment:
    """Read the SEG.* values of a TCP segment that raised no exception."""
    l3, l4, thl = h.l3_offset, h.l4_offset, h.l4_header_len
    _, ts = _timestamp_option(frame, l4 + 20, l4 + thl)
    tsval = tsecr = None
    if ts is not None:
        tsval = int.from_bytes(frame[ts + 2:ts + 6], "big")
        tsecr = int.from_bytes(frame[ts + 6:ts + 10], "big")
    flags = frame[l4 + 13]
    if h.ip_version == 4:
        ecn = frame[l3 + 1] & 0x03
        ip_same = (frame[l3 + 1] >> 2, frame[l3 + 6] & 0x40)          # DSCP, DF
        hop = frame[l3 + 8]
    else:
        ecn = (frame[l3 + 1] >> 4) & 0x03
        word = int.from_bytes(frame[l3:l3 + 4], "big")
        ip_same = ((word >> 22) & 0x3F, word & 0xFFFFF)                # DSCP, Flow Label
        hop = frame[l3 + 7]
    ports = (int.from_bytes(frame[l4:l4 + 2], "big"), int.from_bytes(frame[l4 + 2:l4 + 4], "big"))
    return _Segment(
        frame=frame, checksum=checksum, headers=h, flow=_address_key(frame, h) + ports,
        SEQ=int.from_bytes(frame[l4 + 4:l4 + 8], "big"),
        ACK=int.from_bytes(frame[l4 + 8:l4 + 12], "big"),
        WND=int.from_bytes(frame[l4 + 14:l4 + 16], "big"),
        LEN=h.ip_end - l4 - thl, flags=flags, TSval=tsval, TSecr=tsecr, ts_offset=ts,
        ecn=(ecn, flags & _ECN_FLAGS),
        same=(bytes(frame[:l3]), ip_same, thl, ts is not None), hop=hop)


def _alone(frame: bytes, checksum: ChecksumRx, cause: Cause) -> Indication:
    return Indication(frame, checksum, RscInfo(), RscTcpTimestampDelta(), cause)


class RscEngine:
    """The RSC coalescer of one adapter: bounded flow contexts, SCU buffer, idle timer.

    Parameters
    ----------
    contexts : int
        Flow contexts (SCUs open at once). DESIGN 4 ``--rsc-contexts``; default 8.
    max_scu_bytes : int
        Largest SCU frame the buffer holds (headers of the first segment + payload, no
        padding). The default never splits an SCU below the 65,535-byte IP limit.
    idle_timeout : int or None
        T: an SCU nothing has joined for this long is finalized; in the caller's time unit;
        None for no timer.
    rsc_ipv4, rsc_ipv6 : bool
        RSC on for IPv4 / IPv6 (*RscIPv4 / *RscIPv6, ``config.Datapath.rsc_ipv4/6``).

    Methods return the frames indicated by that call, in order: ``receive`` (a frame from the
    wire), ``expire`` (let time pass), ``end_indication`` (end of a receive indication),
    ``receive_indication`` (a whole batch, then its end), ``set_enables`` (switch RSC per IP
    version). ``statistics`` is OID_TCP_RSC_STATISTICS.
    """

    def __init__(self, contexts: int = DEFAULT_CONTEXTS,
                 max_scu_bytes: int = DEFAULT_MAX_SCU_BYTES, idle_timeout: int | None = None,
                 rsc_ipv4: bool = True, rsc_ipv6: bool = True):
        if not isinstance(contexts, int) or contexts < 1:
            raise ValueError(f"contexts must be a positive integer, not {contexts!r}")
        if not isinstance(max_scu_bytes, int) or max_scu_bytes < 1:
            raise ValueError(f"max_scu_bytes must be a positive integer, not {max_scu_bytes!r}")
        if idle_timeout is not None and (not isinstance(idle_timeout, int) or idle_timeout < 1):
            raise ValueError(f"idle_timeout must be a positive integer or None, "
                             f"not {idle_timeout!r}")
        self.contexts = contexts
        self.max_scu_bytes = max_scu_bytes
        self.idle_timeout = idle_timeout
        self._enabled = {4: bool(rsc_ipv4), 6: bool(rsc_ipv6)}
        self._scus: dict[tuple, _Scu] = {}     # insertion order is opening order
        self._opened = 0
        self._now: int | None = None
        self._stats = {name: 0 for name in RscStatistics.__dataclass_fields__}

    # --- public interface -----------------------------------------------------------------

    @property
    def statistics(self) -> RscStatistics:
        """OID_TCP_RSC_STATISTICS: the counters so far."""
        return RscStatistics(**self._stats)

    @property
    def open_scus(self) -> int:
        """Flow contexts in use."""
        return len(self._scus)

    @property
    def rsc_ipv4(self) -> bool:
        return self._enabled[4]

    @property
    def rsc_ipv6(self) -> bool:
        return self._enabled[6]

    def receive(self, frame: bytes | bytearray, checksum: ChecksumRx, now: int,
                headers: Headers | None = None) -> list[Indication]:
        """A frame from the wire, with its receive checksum word, arriving at time ``now``.

        ``headers`` is the parse result riding with the frame (``parse.parse(frame)`` if not
        given). Returns the frames indicated by this arrival, in order: SCUs the idle timer
        ended first, then whatever this frame ends or is.
        """
        out = self.expire(now)
        frame = bytes(frame)
        h = parse(frame) if headers is None else headers
        if not h.ok or h.ip_version is None or not self._enabled[h.ip_version] \
                or h.l4_proto != IPPROTO_TCP:
            out.append(_alone(frame, checksum, Cause.PASS_THROUGH))
            return out
        if h.is_fragment:
            # Ours (module docstring): every SCU the fragment could belong to, then it.
            key = _address_key(frame, h)
            for flow in [f for f in self._scus if f[:4] == key]:
                out.append(self._finalize(flow, Cause.EXCEPTION))
            self._stats["Aborts"] += 1
            out.append(_alone(frame, checksum, Cause.FRAGMENT))
            return out
        cause = _exception(frame, checksum, h)
        if cause is not None:
            self._indicate_alone(frame, checksum, h, cause, out)
            return out
        self._coalesce(_segment(frame, checksum, h), now, out)
        return out

    def receive_indication(self, items) -> list[Indication]:
        """One receive indication (a DPC's batch, DESIGN 4 ``--batch``): ``receive`` for each
        ``(frame, checksum, now)`` in ``items``, then ``end_indication``."""
        out = []
        for frame, checksum, now in items:
            out += self.receive(frame, checksum, now)
        return out + self.end_indication()

    def expire(self, now: int) -> list[Indication]:
        """Let time run to ``now``: finalize every SCU idle for ``idle_timeout`` or longer,
        in the order of their last join, then of opening."""
        if not isinstance(now, int):
            raise TypeError(f"time must be an integer, not {now!r}")
        if self._now is not None and now < self._now:
            raise ValueError(f"time went backwards: {now} after {self._now}")
        self._now = now
        if self.idle_timeout is None:
            return []
        idle = sorted((scu.last_join, scu.opened, flow) for flow, scu in self._scus.items()
                      if now - scu.last_join >= self.idle_timeout)
        return [self._finalize(flow, Cause.IDLE) for _, _, flow in idle]

    def end_indication(self) -> list[Indication]:
        """The end of a receive indication (the end-of-batch marker): every open SCU, in
        opening order (``indicating-coalesced-segments.md``: no SCU waits past a DPC)."""
        return self._finalize_all(Cause.END_OF_INDICATION)

    def set_enables(self, rsc_ipv4: bool, rsc_ipv6: bool) -> list[Indication]:
        """Switch RSC per IP version (OID_TCP_OFFLOAD_PARAMETERS RscIPv4 / RscIPv6).

        Switching either off first indicates every open SCU, in opening order
        (``querying-and-changing-rsc-state.md``).
        """
        off = (self._enabled[4] and not rsc_ipv4) or (self._enabled[6] and not rsc_ipv6)
        out = self._finalize_all(Cause.DISABLED) if off else []
        self._enabled = {4: bool(rsc_ipv4), 6: bool(rsc_ipv6)}
        return out

    # --- the rules -------------------------------------------------------------------------

    def _indicate_alone(self, frame: bytes, checksum: ChecksumRx, h: Headers, cause: Cause,
                        out: list[Indication]) -> None:
        """An exception: the flow's SCU first, then the segment alone (exception page)."""
        l4 = h.l4_offset
        ports = (int.from_bytes(frame[l4:l4 + 2], "big"),
                 int.from_bytes(frame[l4 + 2:l4 + 4], "big"))
        flow = _address_key(frame, h) + ports
        if flow in self._scus:
            out.append(self._finalize(flow, Cause.EXCEPTION))
        self._stats["Aborts"] += 1
        out.append(_alone(frame, checksum, cause))

    def _coalesce(self, seg: _Segment, now: int, out: list[Indication]) -> None:
        """Flowchart 1 for an eligible segment."""
        scu = self._scus.get(seg.flow)
        if scu is None:
            self._open(seg, now, out)
            return
        cause = self._refusal(scu, seg)
        if cause is None:
            self._join(scu, seg, now)
            return
        out.append(self._finalize(seg.flow, cause))
        if cause not in _NOT_ABORTS:
            self._stats["Aborts"] += 1
        if cause is Cause.DUPLICATE_ACK:
            out.append(_alone(seg.frame, seg.checksum, Cause.DUPLICATE_ACK))
        else:
            self._open(seg, now, out)

    def _refusal(self, scu: _Scu, seg: _Segment) -> Cause | None:
        """Why ``seg`` cannot join ``scu`` (checks 1..7 of the module docstring), or None."""
        first = scu.first
        if seg.ecn != first.ecn:
            return Cause.ECN_CHANGE
        if seg.same != first.same:
            return Cause.HEADER_CHANGE
        ts_ok = seg.TSval is None or _serial_ge(seg.TSval, scu.TSval)
        if seg.LEN == 0:
            # Flowchart 2: window update or duplicate ACK; H.DupAckCount is always 0, so
            # flowchart 1's "H.DupAckCount == 0 OR H.ACK == SEG.ACK" always holds.
            if seg.SEQ == scu.NXT and seg.ACK == scu.ACK:
                if seg.WND == scu.WND:
                    return Cause.DUPLICATE_ACK
                return None if ts_ok else Cause.TIMESTAMP
            return Cause.PURE_ACK
        if seg.SEQ != scu.NXT:
            return Cause.NOT_IN_SEQUENCE
        if scu.LEN == 0:
            return Cause.PURE_ACK_SCU
        if not _serial_ge(seg.ACK, scu.ACK):
            return Cause.ACK_BELOW
        if not ts_ok:
            return Cause.TIMESTAMP
        if scu.ip_length() + seg.LEN > IP_DATAGRAM_MAX:
            return Cause.IP_LENGTH
        if scu.frame_bytes() + seg.LEN > self.max_scu_bytes:
            return Cause.SCU_BYTES
        return None

    def _open(self, seg: _Segment, now: int, out: list[Indication]) -> None:
        """Start tracking a new SCU with ``seg`` (flowchart 1, "B"), taking a context."""
        if seg.headers.ip_end > self.max_scu_bytes:
            self._stats["Aborts"] += 1
            out.append(_alone(seg.frame, seg.checksum, Cause.TOO_LONG))
            return
        if len(self._scus) >= self.contexts:
            out.append(self._finalize(next(iter(self._scus)), Cause.CONTEXTS))
            self._stats["Aborts"] += 1
        self._opened += 1
        self._scus[seg.flow] = _Scu(
            first=seg, opened=self._opened, last_join=now, ACK=seg.ACK, WND=seg.WND,
            LEN=seg.LEN, TSval=seg.TSval, TSecr=seg.TSecr, psh=bool(seg.flags & _PSH),
            hop=seg.hop, chunks=[seg.payload])
        self._stats["CoalescedPkts"] += 1
        self._stats["CoalescedOctets"] += seg.LEN

    def _join(self, scu: _Scu, seg: _Segment, now: int) -> None:
        """Chain ``seg`` into ``scu`` (flowchart 1 "A" path, flowchart 3 timestamps)."""
        if seg.LEN:
            scu.chunks.append(seg.payload)
            scu.LEN += seg.LEN
            scu.CoalescedSegCount += 1
        scu.ACK, scu.WND = seg.ACK, seg.WND
        if seg.TSval is not None:
            scu.TSval, scu.TSecr = seg.TSval, seg.TSecr
        scu.psh = scu.psh or bool(seg.flags & _PSH)
        scu.hop = min(scu.hop, seg.hop)
        scu.segments += 1
        scu.last_join = now
        self._stats["CoalescedPkts"] += 1
        self._stats["CoalescedOctets"] += seg.LEN

    def _finalize_all(self, cause: Cause) -> list[Indication]:
        return [self._finalize(flow, cause) for flow in list(self._scus)]

    def _finalize(self, flow: tuple, cause: Cause) -> Indication:
        """Remove the flow's SCU from its context and build the frame to indicate."""
        scu = self._scus.pop(flow)
        self._stats["CoalesceEvents"] += 1
        first = scu.first
        delta = 0 if scu.TSval is None else (scu.TSval - first.TSval) % _MOD32
        info = RscInfo(CoalescedSegCount=min(scu.CoalescedSegCount, 0xFFFF))
        if scu.segments == 1:
            return Indication(first.frame, first.checksum, info, RscTcpTimestampDelta(delta),
                              cause)
        frame = _scu_frame(scu)
        word = ChecksumRx(IpChecksumSucceeded=int(first.headers.ip_version == 4),
                          TcpChecksumSucceeded=1)
        return Indication(frame, word, info, RscTcpTimestampDelta(delta), cause)


def receive_capture(frames, times, engine: RscEngine, *, batch: int = 64,
                    enables=None) -> list[Indication]:
    """The RX path of DESIGN 4 ``nicoffload rx`` from checksum verification on.

    Each frame gets its receive checksum word from ``checksum.rx_validate`` and goes through
    ``engine``; every ``batch`` input frames end a receive indication, and so does the end of
    the capture.

    Parameters
    ----------
    frames : iterable of bytes
        The frames of the capture, in order.
    times : iterable of int
        Their arrival times, in the unit of ``engine.idle_timeout`` (microseconds for pcap).
    engine : RscEngine
        The coalescer (its contexts, timeout and enables).
    batch : int
        Input frames per receive indication (DESIGN 4 ``--batch``, default 64).
    enables : checksum.ChecksumEnables or similar, optional
        Which receive checks run (default: all).
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    enables = ALL_ENABLED if enables is None else enables
    out, count = [], 0
    for frame, now in zip(frames, times, strict=True):
        out += engine.receive(frame, rx_validate(frame, enables=enables), now)
        count += 1
        if count % batch == 0:
            out += engine.end_indication()
    if count % batch:
        out += engine.end_indication()
    return out


def _scu_frame(scu: _Scu) -> bytes:
    """The headers of a multi-segment SCU (``updating-the-ip-headers-for-coalesced-segments.md``,
    rules page, DESIGN 3) followed by the chained payload."""
    first = scu.first
    h = first.headers
    l3, l4, thl = h.l3_offset, h.l4_offset, h.l4_header_len
    out = bytearray(first.frame[:l4 + thl])
    out += b"".join(scu.chunks)
    if h.ip_version == 4:
        out[l3 + 2:l3 + 4] = scu.ip_length().to_bytes(2, "big")
        out[l3 + 8] = scu.hop
        out[l3 + 10:l3 + 12] = b"\x00\x00"
        out[l3 + 10:l3 + 12] = internet_checksum(out, l3, l3 + h.ip_header_len).to_bytes(2, "big")
    else:
        out[l3 + 4:l3 + 6] = scu.ip_length().to_bytes(2, "big")
        out[l3 + 7] = scu.hop
    out[l4 + 8:l4 + 12] = scu.ACK.to_bytes(4, "big")
    out[l4 + 13] = (out[l4 + 13] & ~_PSH & 0xFF) | (_PSH if scu.psh else 0)
    out[l4 + 14:l4 + 16] = scu.WND.to_bytes(2, "big")
    if first.ts_offset is not None:
        ts = first.ts_offset
        out[ts + 2:ts + 6] = scu.TSval.to_bytes(4, "big")
        out[ts + 6:ts + 10] = scu.TSecr.to_bytes(4, "big")
    out[l4 + 16:l4 + 18] = b"\x00\x00"
    pseudo = pseudo_header_sum(out, h, l4_length=thl + scu.LEN)
    out[l4 + 16:l4 + 18] = internet_checksum(out, l4, None, pseudo).to_bytes(2, "big")
    return bytes(out)
