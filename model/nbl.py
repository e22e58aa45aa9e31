"""NET_BUFFER_LIST out-of-band info words: every bit layout of DESIGN.md section 2, once.

Each word is a frozen dataclass whose ``FIELDS`` list the NDIS bitfields from bit 0 (LSB)
upward, with the names the NDIS headers (ntddndis.h / ndis.h) give them. The RTL builds its
``data.StructLayout`` from the same ``FIELDS`` (``nicoffload.hdl.layouts``), so nothing is
written down twice.

Sources: ``seeds/tcp-ip-task-offload.md``,
``reference/ndis/accessing-tcp-ip-offload-net-buffer-list-information.md``,
``reference/ndis/offloading-the-segmentation-of-large-tcp-packets.md``,
``reference/ndis/indicating-coalesced-segments.md``,
``reference/ndis/supporting-nvgre-in-large-send-offload--lso-.md``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar


class Word:
    """Base class of a packed bitfield word.

    Subclasses set ``FIELDS = (("Name", width), ...)`` from bit 0 up and ``WIDTH`` (bits the
    word occupies; fields may leave the top bits unused, as NDIS does). ``__init_subclass__``
    turns them into frozen dataclasses with one ``int`` field per bitfield, default 0.
    """

    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = ()
    WIDTH: ClassVar[int] = 32

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        total = sum(w for _, w in cls.FIELDS)
        if total > cls.WIDTH:
            raise TypeError(f"{cls.__name__}: fields take {total} bits, word is {cls.WIDTH}")
        cls.__annotations__ = {name: int for name, _ in cls.FIELDS}
        for name, _ in cls.FIELDS:
            setattr(cls, name, 0)
        cls._LIMITS = tuple((name, 1 << width) for name, width in cls.FIELDS)
        dataclasses.dataclass(frozen=True)(cls)

    def __post_init__(self):
        for name, limit in self._LIMITS:
            value = getattr(self, name)
            if type(value) is int and 0 <= value < limit:
                continue                    # the common case, checked first
            if isinstance(value, bool):
                object.__setattr__(self, name, int(value))
                continue
            raise ValueError(f"{type(self).__name__}.{name}={value!r} does not fit in "
                             f"{limit.bit_length() - 1} bits")

    @classmethod
    def offsets(cls) -> dict[str, tuple[int, int]]:
        """``{name: (lsb, width)}`` for every field."""
        out, lsb = {}, 0
        for name, width in cls.FIELDS:
            out[name] = (lsb, width)
            lsb += width
        return out

    def to_int(self) -> int:
        value = 0
        for name, (lsb, _) in self.offsets().items():
            value |= getattr(self, name) << lsb
        return value

    @classmethod
    def from_int(cls, value: int):
        if not 0 <= value < (1 << cls.WIDTH):
            raise ValueError(f"{cls.__name__}: {value:#x} does not fit in {cls.WIDTH} bits")
        return cls(**{name: (value >> lsb) & ((1 << width) - 1)
                      for name, (lsb, width) in cls.offsets().items()})

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name, _ in self.FIELDS}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# --- NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO -------------------------------------------

class ChecksumTx(Word):
    """Transmit view of NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO."""
    FIELDS = (("IsIPv4", 1), ("IsIPv6", 1), ("TcpChecksum", 1), ("UdpChecksum", 1),
              ("IpHeaderChecksum", 1), ("Reserved", 11), ("TcpHeaderOffset", 10))


class ChecksumRx(Word):
    """Receive view of NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO."""
    FIELDS = (("TcpChecksumFailed", 1), ("UdpChecksumFailed", 1), ("IpChecksumFailed", 1),
              ("TcpChecksumSucceeded", 1), ("UdpChecksumSucceeded", 1),
              ("IpChecksumSucceeded", 1), ("Loopback", 1), ("TcpChecksumValueInvalid", 1),
              ("IpChecksumValueInvalid", 1))


# --- NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO ------------------------------------

LSO_TYPE_V1 = 0   # NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE
LSO_TYPE_V2 = 1   # NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE
LSO_IPV4 = 0      # NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4
LSO_IPV6 = 1      # NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6


class LsoV1Transmit(Word):
    FIELDS = (("MSS", 20), ("TcpHeaderOffset", 10), ("Type", 1), ("Reserved2", 1))


class LsoV1TransmitComplete(Word):
    FIELDS = (("TcpPayload", 30), ("Type", 1), ("Reserved2", 1))


class LsoV2Transmit(Word):
    FIELDS = (("MSS", 20), ("TcpHeaderOffset", 10), ("Type", 1), ("IPVersion", 1))


class LsoV2TransmitComplete(Word):
    FIELDS = (("Reserved", 30), ("Type", 1), ("Reserved2", 1))


def decode_lso_transmit(value: int) -> LsoV1Transmit | LsoV2Transmit | None:
    """The transmit view of an LSO word, chosen by its Type bit; None for the zero word.

    The zero word (MSS 0) means "no LSO requested" (the NBL has no LSO info).
    """
    if value == 0:
        return None
    if (value >> 30) & 1 == LSO_TYPE_V2:
        return LsoV2Transmit.from_int(value)
    return LsoV1Transmit.from_int(value)


# --- NDIS_TCP_SEND_OFFLOADS_SUPPLEMENTAL_NET_BUFFER_LIST_INFO ----------------------------

class SendSupplemental(Word):
    """NVGRE encapsulation info that rides with checksum and LSO requests."""
    FIELDS = (("IsEncapsulatedPacket", 1), ("EncapsulatedPacketOffsetsValid", 1),
              ("InnerFrameOffset", 8), ("TransportIpHeaderRelativeOffset", 6),
              ("TcpHeaderRelativeOffset", 10), ("IsInnerIPv6", 1), ("TcpOptionsPresent", 1),
              ("Reserved", 4))


# --- The host frame's length (DESIGN.md 2) ----------------------------------------------

class FrameLength(Word):
    """The host frame's length in bytes, as a DMA engine reads it from the send descriptor
    before the first byte moves (DESIGN.md 2: the fourth ``tuser`` word of a TX frame). With
    it the NIC decides every LSO check before a segment leaves, so a bad send drops whole."""
    FIELDS = (("Length", 32),)


# --- RSC out-of-band info ----------------------------------------------------------------

class RscInfo(Word):
    """TcpRecvSegCoalesceInfo: the coalesced segment and duplicate ACK counts."""
    FIELDS = (("CoalescedSegCount", 16), ("DupAckCount", 16))


class RscTcpTimestampDelta(Word):
    FIELDS = (("RscTcpTimestampDelta", 32),)


# --- Stream sideband words (tuser) -------------------------------------------------------

class Sideband:
    """A tuple of words packed into one ``tuser`` vector, first word in the low bits."""
    WORDS: ClassVar[tuple[type[Word], ...]] = ()

    @classmethod
    def width(cls) -> int:
        return sum(w.WIDTH for w in cls.WORDS)

    @classmethod
    def pack(cls, *words: Word | int) -> int:
        if len(words) != len(cls.WORDS):
            raise ValueError(f"{cls.__name__} takes {len(cls.WORDS)} words")
        value, lsb = 0, 0
        for kind, word in zip(cls.WORDS, words):
            raw = word if isinstance(word, int) else word.to_int()
            if not 0 <= raw < (1 << kind.WIDTH):
                raise ValueError(f"{cls.__name__}: {raw:#x} does not fit {kind.__name__}")
            value |= raw << lsb
            lsb += kind.WIDTH
        return value

    @classmethod
    def unpack_raw(cls, value: int) -> tuple[int, ...]:
        out, lsb = [], 0
        for kind in cls.WORDS:
            out.append((value >> lsb) & ((1 << kind.WIDTH) - 1))
            lsb += kind.WIDTH
        return tuple(out)


class TxUser(Sideband):
    """TX ``tuser`` on the first beat: checksum word, LSO word, supplemental word and the
    frame's length in bytes (:class:`FrameLength`)."""
    WORDS = (ChecksumTx, LsoV1Transmit, SendSupplemental, FrameLength)  # LSO word: raw

    @classmethod
    def unpack(cls, value: int):
        csum, lso, supp, length = cls.unpack_raw(value)
        return ChecksumTx.from_int(csum), lso, SendSupplemental.from_int(supp), length

    @classmethod
    def for_frame(cls, frame, csum: Word | int = 0, lso: Word | int = 0,
                  supp: Word | int = 0) -> int:
        """The ``tuser`` of ``frame``: its three info words and its length."""
        return cls.pack(csum, lso, supp, len(frame))

    @classmethod
    def with_length(cls, value: int, length: int) -> int:
        """``value`` with its length word replaced by ``length``."""
        lsb = cls.width() - FrameLength.WIDTH
        return (value & ((1 << lsb) - 1)) | (FrameLength(Length=length).to_int() << lsb)


class RxUser(Sideband):
    """RX ``tuser`` on the last beat: checksum word, RSC info, RSC timestamp delta."""
    WORDS = (ChecksumRx, RscInfo, RscTcpTimestampDelta)

    @classmethod
    def unpack(cls, value: int):
        csum, rsc, ts = cls.unpack_raw(value)
        return (ChecksumRx.from_int(csum), RscInfo.from_int(rsc),
                RscTcpTimestampDelta.from_int(ts))


# --- TX completion -----------------------------------------------------------------------

class TxStatus(enum.IntEnum):
    """Status of a host frame on the TX completion stream (ours; NDIS reports it through the
    NBL's Status). Non-zero values are drop reasons."""
    SENT = 0
    LSO_DISABLED = 1          # LSO info while the matching LSO offload is off
    LSO_BAD_MSS = 2           # MSS 0
    LSO_BAD_HEADER_OFFSET = 3  # TcpHeaderOffset does not land on a TCP header
    LSO_NOT_TCP = 4           # not a TCP frame of the IP version the word says
    LSO_GUARANTEE = 5         # a transport guarantee broken (flags, fragment, urgent, ...)
    LSO_HEADERS_TOO_LONG = 6  # headers past 128 bytes (256 encapsulated)
    LSO_TOO_FEW_SEGMENTS = 7  # fewer segments than MinSegmentCount
    LSO_TOO_LARGE = 8         # more payload than MaxOffLoadSize
    MALFORMED = 9             # frame too short / truncated for what was requested
    LSO_NOT_NVGRE = 10        # encapsulated send that is not NVGRE LSOv2 (LsoV1 word, other GRE)


class TxCompletion(Word):
    """One record per host frame on ``m_axis_txc``: the LSO TransmitComplete word and a status."""
    WIDTH = 40
    FIELDS = (("LsoComplete", 32), ("Status", 8))
