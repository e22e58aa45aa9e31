"""NDIS task-offload configuration: keywords, NDIS_OFFLOAD, the offload OIDs, the datapath view.

This module is the golden model of the miniport's *configuration* side (DESIGN.md section 3,
"Configuration"): it reads the standardized registry keywords, reports the hardware
capabilities and the current configuration as ``NDIS_OFFLOAD`` structures, handles the set
requests ``OID_TCP_OFFLOAD_PARAMETERS`` and ``OID_OFFLOAD_ENCAPSULATION``, records one
``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`` status indication per successful set, and derives
the flat :class:`Datapath` view that the datapath model and the RTL's CSRs read.

Pure Python; nothing here imports amaranth, cocotb or ``hdl/``. Every structure is a frozen
dataclass; the only mutable object is :class:`Adapter`, which owns one adapter's state the
way RSC's flow table owns its flows.

Sources (file names in ``shared/seeds/`` and ``shared/reference/ndis/``):

- ``registry-values-for-task-offload.md`` (seed) and
  ``using-registry-values-to-enable-and-disable-task-offloading.md``: granular and grouped
  checksum, LSO and IPsec keywords, their values and defaults, ``DisableTaskOffload``.
- ``standardized-inf-keywords-for-rsc.md``, ``standardized-inf-keywords-for-nvgre-task-offload.md``:
  ``*RscIPv4``, ``*RscIPv6``, ``*EncapsulatedPacketTaskOffload``.
- ``ndis-offload-structure.md`` (seed): ``NDIS_OFFLOAD`` members and revisions.
- ``oid-tcp-offload-parameters.md``, ``oid-offload-encapsulation.md``,
  ``enabling-and-disabling-task-offload-services.md``,
  ``ndis-status-task-offload-current-config.md``,
  ``oid-tcp-offload-current-config.md``, ``oid-tcp-offload-hardware-capabilities.md``.
- ``combining-types-of-task-offloads.md``: what each offload requires of the hardware.
- ``reporting-a-nic-s-checksum-capabilities.md``, ``reporting-a-nic-s-lsov1-...md``,
  ``reporting-a-nic-s-lsov2-...md``, ``determining-the-rsc-capabilities-of-a-network-adapter.md``,
  ``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``,
  ``querying-and-changing-rsc-state.md``, ``querying-and-changing-nvgre-task-offload-state.md``.
- Bit layouts, sizes and constant values are facts from the NDIS headers (ntddndis.h):
  little-endian, C bitfields packed from bit 0 of their ULONG, natural alignment.

Decisions where the pages are silent (also listed in :class:`Adapter`):

- *Configured*, *reported* and *operational* are three different things. Keywords and
  OID_TCP_OFFLOAD_PARAMETERS *configure*; the current config (``NDIS_OFFLOAD``) *reports* the
  configuration, minus every offload of an IP version that OID_OFFLOAD_ENCAPSULATION switched
  off; the :class:`Datapath` says what actually *operates*: transmit offloads as reported,
  receive checksum and RSC only after OID_OFFLOAD_ENCAPSULATION has switched that IP version
  on (``oid-offload-encapsulation.md``, ``oid-tcp-offload-parameters.md``, DESIGN), NVGRE only
  after an explicit ``EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON``
  (``querying-and-changing-nvgre-task-offload-state.md``: "must not be operationally active
  by default").
- In an ``NDIS_OFFLOAD`` we report, an offload that is off has an all-zero sub-structure
  (Encapsulation = NDIS_ENCAPSULATION_NOT_SUPPORTED, sizes 0); an offload that is on carries
  NDIS_OFFLOAD_SUPPORTED (1) and our full encapsulation set.
- Every *successful* set of either OID gives exactly one status indication, whether or not
  it changed anything (both OID pages: "After the update, the miniport driver must report");
  a refused set changes nothing and indicates nothing. The configuration read from the
  keywords at initialization is :attr:`Adapter.default_offload_configuration`, not an
  indication.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

# ---------------------------------------------------------------------------------------------
# Constants (values from ntddndis.h)
# ---------------------------------------------------------------------------------------------

NDIS_OBJECT_TYPE_DEFAULT = 0x80
NDIS_OBJECT_TYPE_OFFLOAD = 0xA7
NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION = 0xA8

NDIS_OFFLOAD_NOT_SUPPORTED = 0
NDIS_OFFLOAD_SUPPORTED = 1

NDIS_OFFLOAD_SET_NO_CHANGE = 0
NDIS_OFFLOAD_SET_ON = 1
NDIS_OFFLOAD_SET_OFF = 2

NDIS_ENCAPSULATION_NOT_SUPPORTED = 0x00
NDIS_ENCAPSULATION_NULL = 0x01
NDIS_ENCAPSULATION_IEEE_802_3 = 0x02
NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q = 0x04
NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB = 0x08
NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED = 0x10

NDIS_OFFLOAD_PARAMETERS_NO_CHANGE = 0
NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED = 2
NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED = 3
NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED = 4
NDIS_OFFLOAD_PARAMETERS_LSOV1_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_LSOV1_ENABLED = 2
NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED = 2
NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED = 2
NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED = 2
NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED = 3
NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED = 4
NDIS_OFFLOAD_PARAMETERS_IPSECV2_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_ENABLED = 2
NDIS_OFFLOAD_PARAMETERS_IPSECV2_ESP_ENABLED = 3
NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_AND_ESP_ENABLED = 4
NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_DISABLED = 1
NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_ENABLED = 2

NDIS_ENCAPSULATION_TYPE_GRE_MAC = 0x01
NDIS_ENCAPSULATION_TYPE_VXLAN = 0x02

NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_NOT_SUPPORTED = 0x0
NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV4 = 0x1
NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV4 = 0x2
NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV6 = 0x4
NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV6 = 0x8

NDIS_OFFLOAD_REVISION_1 = 1
NDIS_OFFLOAD_REVISION_2 = 2
NDIS_OFFLOAD_REVISION_3 = 3
NDIS_OFFLOAD_PARAMETERS_REVISION_1 = 1
NDIS_OFFLOAD_PARAMETERS_REVISION_2 = 2
NDIS_OFFLOAD_PARAMETERS_REVISION_3 = 3
NDIS_OFFLOAD_ENCAPSULATION_REVISION_1 = 1

NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG = 0x40020006
NDIS_STATUS_INVALID_PARAMETER = 0xC000000D
NDIS_STATUS_NOT_SUPPORTED = 0xC00000BB
NDIS_STATUS_INVALID_DATA = 0xC0010015

STATUS_NAMES = {
    NDIS_STATUS_INVALID_PARAMETER: "NDIS_STATUS_INVALID_PARAMETER",
    NDIS_STATUS_NOT_SUPPORTED: "NDIS_STATUS_NOT_SUPPORTED",
    NDIS_STATUS_INVALID_DATA: "NDIS_STATUS_INVALID_DATA",
}

#: The framings our parser follows and offloads, all at once: Ethernet II / 802.3, 802.1Q tags
#: in the frame, and LLC/SNAP (DESIGN section 3 and 4). Tags carried out of band
#: (P_AND_Q_IN_OOB) and NULL encapsulation are not supported.
#: ``combining-types-of-task-offloads.md``: every NDIS 6 miniport must support 802.3 with the
#: ability to carry 802.1Q tags.
SUPPORTED_ENCAPSULATION = (NDIS_ENCAPSULATION_IEEE_802_3 | NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q
                           | NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED)

#: NVGRE: offloads for inner and outer IPv4 and IPv6 headers, in any mix.
ALL_ENCAPSULATED_IP_VERSIONS = (NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV4
                                | NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV4
                                | NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV6
                                | NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV6)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

class KeywordError(ValueError):
    """A registry keyword with an unknown name or a value it does not allow.

    Attributes
    ----------
    keyword : str
        The keyword as written by the user (or its canonical NDIS spelling when known).
    """

    def __init__(self, keyword: str, message: str):
        super().__init__(message)
        self.keyword = keyword


class NdisStructureError(ValueError):
    """Bytes that are not a valid NDIS structure of the expected type, revision or size."""


class OidError(ValueError):
    """A refused OID set request; the adapter's state is unchanged and nothing is indicated.

    Attributes
    ----------
    oid : str
        ``"OID_TCP_OFFLOAD_PARAMETERS"`` or ``"OID_OFFLOAD_ENCAPSULATION"``.
    status : int
        The NDIS_STATUS the miniport completes the request with.
    field : str
        The structure member at fault, NDIS spelling (e.g. ``"LsoV2IPv4"``, ``"IPv4.Enabled"``).
    """

    def __init__(self, oid: str, status: int, field: str, message: str):
        super().__init__(f"{oid}: {message} ({STATUS_NAMES.get(status, hex(status))})")
        self.oid = oid
        self.status = status
        self.field = field


# ---------------------------------------------------------------------------------------------
# A small description language for C structures
# ---------------------------------------------------------------------------------------------

_SCALAR_FORMATS = {1: "<B", 2: "<H", 4: "<I"}


@dataclasses.dataclass(frozen=True)
class _Scalar:
    """An unsigned integer member (UCHAR/BOOLEAN, USHORT, ULONG)."""

    name: str
    size: int

    @property
    def align(self) -> int:
        return self.size


@dataclasses.dataclass(frozen=True)
class _BitFields:
    """One ULONG holding C bitfields, packed from bit 0; bits above them are undefined."""

    fields: tuple[tuple[str, int], ...]
    size: ClassVar[int] = 4
    align: ClassVar[int] = 4

    def __post_init__(self):
        if sum(width for _, width in self.fields) > 32:
            raise TypeError(f"bitfields {self.fields} do not fit in a ULONG")


@dataclasses.dataclass(frozen=True)
class _Nested:
    """A member that is itself a structure."""

    name: str
    struct: type

    @property
    def size(self) -> int:
        return self.struct.SIZE

    @property
    def align(self) -> int:
        return self.struct.ALIGN


def UCHAR(name: str) -> _Scalar:
    return _Scalar(name, 1)


BOOLEAN = UCHAR


def USHORT(name: str) -> _Scalar:
    return _Scalar(name, 2)


def ULONG(name: str) -> _Scalar:
    return _Scalar(name, 4)


def BITS(*fields: tuple[str, int]) -> _BitFields:
    return _BitFields(tuple(fields))


def STRUCT(name: str, struct_type: type) -> _Nested:
    return _Nested(name, struct_type)


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


class NdisStruct:
    """Base of every NDIS structure here: a frozen dataclass generated from ``MEMBERS``.

    A subclass lists its members in C order with :func:`ULONG`, :func:`UCHAR`/:func:`BOOLEAN`,
    :func:`USHORT`, :func:`BITS` and :func:`STRUCT`; ``__init_subclass__`` places them with C's
    natural alignment, computes ``SIZE`` and ``ALIGN``, and makes one dataclass field per scalar,
    per bitfield and per nested structure (default 0 / all-zero). Bitfields become fields of
    the structure that holds them, as in C (``Checksum.IPv4Transmit.TcpChecksum``).

    A structure that starts with an ``NDIS_OBJECT_HEADER`` sets ``OBJECT_TYPE`` and
    ``REVISIONS`` (revision -> the last member that revision includes); the header is not a
    field: :meth:`to_bytes` writes it from the revision asked for and :meth:`from_bytes` checks
    it. Bits NDIS leaves undefined and padding are written as zero and ignored when read.
    """

    MEMBERS: ClassVar[tuple] = ()
    OBJECT_TYPE: ClassVar[int | None] = None
    REVISIONS: ClassVar[Mapping[int, str]] = {}
    #: Whether :meth:`to_bytes` may drop non-zero members a lower revision does not carry.
    TRUNCATE_SILENTLY: ClassVar[bool] = True
    SIZE: ClassVar[int] = 0
    ALIGN: ClassVar[int] = 1
    _placed: ClassVar[tuple[tuple[Any, int], ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        headed = cls.OBJECT_TYPE is not None
        offset, align = (NdisObjectHeader.SIZE, NdisObjectHeader.ALIGN) if headed else (0, 1)
        placed, annotations = [], {}
        for member in cls.MEMBERS:
            offset = _round_up(offset, member.align)
            placed.append((member, offset))
            offset += member.size
            align = max(align, member.align)
            if isinstance(member, _Nested):
                annotations[member.name] = member.struct
                setattr(cls, member.name, dataclasses.field(default_factory=member.struct))
            elif isinstance(member, _BitFields):
                for name, _ in member.fields:
                    annotations[name] = int
                    setattr(cls, name, 0)
            else:
                annotations[member.name] = int
                setattr(cls, member.name, 0)
        cls._placed = tuple(placed)
        cls.ALIGN = align
        cls.SIZE = _round_up(offset, align)
        cls.__annotations__ = annotations
        dataclasses.dataclass(frozen=True)(cls)

    def __post_init__(self):
        for member, _ in self._placed:
            if isinstance(member, _Nested):
                value = getattr(self, member.name)
                if not isinstance(value, member.struct):
                    raise TypeError(f"{type(self).__name__}.{member.name} must be a "
                                    f"{member.struct.__name__}, not {type(value).__name__}")
            elif isinstance(member, _BitFields):
                for name, width in member.fields:
                    self._check_unsigned(name, width)
            else:
                self._check_unsigned(member.name, 8 * member.size)

    def _check_unsigned(self, name: str, bits: int):
        value = getattr(self, name)
        if isinstance(value, bool):
            value = int(value)
            object.__setattr__(self, name, value)
        if not isinstance(value, int) or not 0 <= value < (1 << bits):
            raise ValueError(f"{type(self).__name__}.{name}={value!r} does not fit in {bits} bits")

    # -- layout queries ---------------------------------------------------------------------

    @classmethod
    def sizeof(cls, revision: int | None = None) -> int:
        """Bytes in ``Header.Size`` for ``revision`` (RTL_SIZEOF_THROUGH_FIELD of its last
        member); ``SIZE`` for a structure without a header."""
        if cls.OBJECT_TYPE is None:
            if revision is not None:
                raise ValueError(f"{cls.__name__} has no NDIS_OBJECT_HEADER, hence no revision")
            return cls.SIZE
        revision = cls._check_revision(revision)
        last = cls.REVISIONS[revision]
        for member, offset in cls._placed:
            if getattr(member, "name", None) == last:
                return offset + member.size
        raise AssertionError(f"{cls.__name__}.REVISIONS names unknown member {last!r}")

    @classmethod
    def _check_revision(cls, revision: int | None) -> int:
        if revision is None:
            return max(cls.REVISIONS)
        if revision not in cls.REVISIONS:
            raise NdisStructureError(f"{cls.__name__}: revision {revision!r} is not one of "
                                     f"{sorted(cls.REVISIONS)}")
        return revision

    @classmethod
    def locate(cls, path: str) -> tuple[int, int, int]:
        """Where a member lives: ``(byte offset, lsb, width in bits)``.

        ``path`` is dotted NDIS spelling, e.g. ``"LsoV2.IPv4.MaxOffLoadSize"``; for a bitfield
        the byte offset is that of its ULONG and ``lsb`` its lowest bit in that ULONG.
        """
        head, _, rest = path.partition(".")
        for member, offset in cls._placed:
            if isinstance(member, _Nested) and member.name == head:
                if not rest:
                    return offset, 0, 8 * member.size
                inner, lsb, width = member.struct.locate(rest)
                return offset + inner, lsb, width
            if isinstance(member, _BitFields) and not rest:
                lsb = 0
                for name, width in member.fields:
                    if name == head:
                        return offset, lsb, width
                    lsb += width
            if isinstance(member, _Scalar) and member.name == head and not rest:
                return offset, 0, 8 * member.size
        raise KeyError(f"{cls.__name__} has no member {path!r}")

    # -- encoding ---------------------------------------------------------------------------

    def _pack_into(self, buffer: bytearray, base: int):
        for member, offset in self._placed:
            where = base + offset
            if isinstance(member, _Nested):
                getattr(self, member.name)._pack_into(buffer, where)
            elif isinstance(member, _BitFields):
                word, lsb = 0, 0
                for name, width in member.fields:
                    word |= getattr(self, name) << lsb
                    lsb += width
                struct.pack_into("<I", buffer, where, word)
            else:
                struct.pack_into(_SCALAR_FORMATS[member.size], buffer, where,
                                 getattr(self, member.name))

    @classmethod
    def _unpack_from(cls, buffer: bytes, base: int):
        values = {}
        for member, offset in cls._placed:
            where = base + offset
            if isinstance(member, _Nested):
                values[member.name] = member.struct._unpack_from(buffer, where)
            elif isinstance(member, _BitFields):
                (word,) = struct.unpack_from("<I", buffer, where)
                lsb = 0
                for name, width in member.fields:
                    values[name] = (word >> lsb) & ((1 << width) - 1)
                    lsb += width
            else:
                (values[member.name],) = struct.unpack_from(_SCALAR_FORMATS[member.size],
                                                            buffer, where)
        return cls(**values)

    def to_bytes(self, revision: int | None = None) -> bytes:
        """Encode bit-exact, little-endian.

        For a structure with an NDIS_OBJECT_HEADER the header gets ``OBJECT_TYPE``,
        ``revision`` (default: the highest) and ``sizeof(revision)``, and the result is that
        many bytes: members a lower revision does not carry are left out (an error instead
        when ``TRUNCATE_SILENTLY`` is false and one of them is non-zero).
        """
        size = self.sizeof(revision)
        buffer = bytearray(type(self).SIZE)
        self._pack_into(buffer, 0)
        if self.OBJECT_TYPE is not None:
            revision = self._check_revision(revision)
            NdisObjectHeader(self.OBJECT_TYPE, revision, size)._pack_into(buffer, 0)
            if not self.TRUNCATE_SILENTLY and any(buffer[size:]):
                dropped = [name for name in self._member_names_after(revision)
                           if getattr(self, name) != getattr(type(self)(), name)]
                raise ValueError(f"{type(self).__name__} revision {revision} cannot carry "
                                 f"{', '.join(dropped)}")
        return bytes(buffer[:size])

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview):
        """Decode; for a headed structure the header is checked first.

        Raises
        ------
        NdisStructureError
            Wrong ``Header.Type``, a revision this model does not know, ``Header.Size``
            smaller than that revision needs, or fewer bytes than ``Header.Size``.
        """
        data = bytes(data)
        if cls.OBJECT_TYPE is None:
            if len(data) < cls.SIZE:
                raise NdisStructureError(f"{cls.__name__}: {len(data)} bytes, need {cls.SIZE}")
            return cls._unpack_from(data, 0)
        header = NdisObjectHeader.from_bytes(data)
        if header.Type != cls.OBJECT_TYPE:
            raise NdisStructureError(f"{cls.__name__}: Header.Type={header.Type:#04x}, "
                                     f"expected {cls.OBJECT_TYPE:#04x}")
        revision = cls._check_revision(header.Revision)
        need = cls.sizeof(revision)
        if header.Size < need:
            raise NdisStructureError(f"{cls.__name__}: Header.Size={header.Size} is less than "
                                     f"{need}, the size of revision {revision}")
        if len(data) < header.Size:
            raise NdisStructureError(f"{cls.__name__}: {len(data)} bytes, Header.Size says "
                                     f"{header.Size}")
        return cls._unpack_from(data[:need].ljust(cls.SIZE, b"\0"), 0)

    @classmethod
    def header_of(cls, data: bytes) -> NdisObjectHeader:
        """The NDIS_OBJECT_HEADER at the start of ``data`` (not checked)."""
        return NdisObjectHeader.from_bytes(data)

    # -- views ------------------------------------------------------------------------------

    @classmethod
    def _member_names_after(cls, revision: int) -> list[str]:
        size = cls.sizeof(revision)
        names = []
        for member, offset in cls._placed:
            if offset >= size:
                if isinstance(member, _BitFields):
                    names.extend(name for name, _ in member.fields)
                else:
                    names.append(member.name)
        return names

    def truncated(self, revision: int):
        """This structure as a consumer of ``revision`` sees it: later members zeroed."""
        return dataclasses.replace(self, **{name: getattr(type(self)(), name)
                                            for name in self._member_names_after(revision)})

    def to_dict(self, revision: int | None = None) -> dict[str, Any]:
        """Nested ``{NDIS member name: int | dict}``; headed structures lead with ``Header``
        and list only the members ``revision`` (default: the highest) carries."""
        out: dict[str, Any] = {}
        skip: set[str] = set()
        if self.OBJECT_TYPE is not None:
            revision = self._check_revision(revision)
            out["Header"] = NdisObjectHeader(self.OBJECT_TYPE, revision,
                                             self.sizeof(revision)).to_dict()
            skip = set(self._member_names_after(revision))
        elif revision is not None:
            raise ValueError(f"{type(self).__name__} has no NDIS_OBJECT_HEADER")
        for member, _ in self._placed:
            if isinstance(member, _Nested):
                if member.name not in skip:
                    out[member.name] = getattr(self, member.name).to_dict()
            elif isinstance(member, _BitFields):
                for name, _ in member.fields:
                    if name not in skip:
                        out[name] = getattr(self, name)
            elif member.name not in skip:
                out[member.name] = getattr(self, member.name)
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# The structures (ntddndis.h / ndis.h; member names exactly as NDIS spells them)
# ---------------------------------------------------------------------------------------------

class NdisObjectHeader(NdisStruct):
    """NDIS_OBJECT_HEADER {UCHAR Type; UCHAR Revision; USHORT Size} (4 bytes)."""

    MEMBERS = (UCHAR("Type"), UCHAR("Revision"), USHORT("Size"))


class ChecksumIPv4(NdisStruct):
    """``IPv4Transmit`` / ``IPv4Receive`` of NDIS_TCP_IP_CHECKSUM_OFFLOAD (8 bytes)."""

    MEMBERS = (ULONG("Encapsulation"),
               BITS(("IpOptionsSupported", 2), ("TcpOptionsSupported", 2), ("TcpChecksum", 2),
                    ("UdpChecksum", 2), ("IpChecksum", 2)))


class ChecksumIPv6(NdisStruct):
    """``IPv6Transmit`` / ``IPv6Receive`` of NDIS_TCP_IP_CHECKSUM_OFFLOAD (8 bytes)."""

    MEMBERS = (ULONG("Encapsulation"),
               BITS(("IpExtensionHeadersSupported", 2), ("TcpOptionsSupported", 2),
                    ("TcpChecksum", 2), ("UdpChecksum", 2)))


class NdisTcpIpChecksumOffload(NdisStruct):
    """NDIS_TCP_IP_CHECKSUM_OFFLOAD (32 bytes); ``reporting-a-nic-s-checksum-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4Transmit", ChecksumIPv4), STRUCT("IPv4Receive", ChecksumIPv4),
               STRUCT("IPv6Transmit", ChecksumIPv6), STRUCT("IPv6Receive", ChecksumIPv6))


class LsoV1IPv4(NdisStruct):
    """``IPv4`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V1 (16 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"),
               BITS(("TcpOptions", 2), ("IpOptions", 2)))


class NdisTcpLargeSendOffloadV1(NdisStruct):
    """NDIS_TCP_LARGE_SEND_OFFLOAD_V1 (16 bytes);
    ``reporting-a-nic-s-lsov1-tcp-packet-segmentation-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4", LsoV1IPv4),)


class IpsecV1Supported(NdisStruct):
    """``Supported`` of NDIS_IPSEC_OFFLOAD_V1 (20 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("AhEspCombined"), ULONG("TransportTunnelCombined"),
               ULONG("IPv4Options"), ULONG("Flags"))


class IpsecV1AH(NdisStruct):
    """``IPv4AH`` of NDIS_IPSEC_OFFLOAD_V1 (4 bytes)."""

    MEMBERS = (BITS(("Md5", 2), ("Sha_1", 2), ("Transport", 2), ("Tunnel", 2), ("Send", 2),
                    ("Receive", 2)),)


class IpsecV1ESP(NdisStruct):
    """``IPv4ESP`` of NDIS_IPSEC_OFFLOAD_V1 (4 bytes)."""

    MEMBERS = (BITS(("Des", 2), ("Reserved", 2), ("TripleDes", 2), ("NullEsp", 2),
                    ("Transport", 2), ("Tunnel", 2), ("Send", 2), ("Receive", 2)),)


class NdisIpsecOffloadV1(NdisStruct):
    """NDIS_IPSEC_OFFLOAD_V1 (28 bytes). Our NIC has no IPsec: always all zero."""

    MEMBERS = (STRUCT("Supported", IpsecV1Supported), STRUCT("IPv4AH", IpsecV1AH),
               STRUCT("IPv4ESP", IpsecV1ESP))


class LsoV2IPv4(NdisStruct):
    """``IPv4`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (12 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"))


class LsoV2IPv6(NdisStruct):
    """``IPv6`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (16 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"),
               BITS(("IpExtensionHeadersSupported", 2), ("TcpOptionsSupported", 2)))


class NdisTcpLargeSendOffloadV2(NdisStruct):
    """NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (28 bytes);
    ``reporting-a-nic-s-lsov2-tcp-packet-segmentation-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4", LsoV2IPv4), STRUCT("IPv6", LsoV2IPv6))


class NdisIpsecOffloadV2(NdisStruct):
    """NDIS_IPSEC_OFFLOAD_V2 (32 bytes: ULONG, eleven BOOLEANs, one pad byte, four ULONGs).
    Our NIC has no IPsec: always all zero."""

    MEMBERS = (ULONG("Encapsulation"), BOOLEAN("IPv6Supported"), BOOLEAN("IPv4Options"),
               BOOLEAN("IPv6NonIPsecExtensionHeaders"), BOOLEAN("Ah"), BOOLEAN("Esp"),
               BOOLEAN("AhEspCombined"), BOOLEAN("Transport"), BOOLEAN("Tunnel"),
               BOOLEAN("TransportTunnelCombined"), BOOLEAN("LsoSupported"),
               BOOLEAN("ExtendedSequenceNumbers"), ULONG("UdpEsp"),
               ULONG("AuthenticationAlgorithms"), ULONG("EncryptionAlgorithms"),
               ULONG("SaOffloadCapacity"))


class RscIP(NdisStruct):
    """``IPv4`` / ``IPv6`` of NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD: ``BOOLEAN Enabled``."""

    MEMBERS = (BOOLEAN("Enabled"),)


class NdisTcpRecvSegCoalesceOffload(NdisStruct):
    """NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD (2 bytes);
    ``determining-the-rsc-capabilities-of-a-network-adapter.md``."""

    MEMBERS = (STRUCT("IPv4", RscIP), STRUCT("IPv6", RscIP))


class NdisEncapsulatedPacketTaskOffload(NdisStruct):
    """NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD (8 bytes); each 4-bit member is an OR of
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_{INNER,OUTER}_IPV{4,6};
    ``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``."""

    MEMBERS = (BITS(("TransmitChecksumOffloadSupported", 4),
                    ("ReceiveChecksumOffloadSupported", 4), ("LsoV2Supported", 4),
                    ("RssSupported", 4), ("VmqSupported", 4)),
               ULONG("MaxHeaderSizeSupported"))


class NdisOffload(NdisStruct):
    """NDIS_OFFLOAD (``ndis-offload-structure.md``), Header.Type NDIS_OBJECT_TYPE_OFFLOAD.

    Revision 1 (NDIS 6.0) ends after ``Flags`` (112 bytes), revision 2 (NDIS 6.1) after
    ``IPsecV2`` (144), revision 3 (NDIS 6.30) after ``EncapsulatedPacketTaskOffloadGre``
    (156). Used for OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, OID_TCP_OFFLOAD_CURRENT_CONFIG and
    the NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG status buffer. Encoding at a lower revision
    simply leaves the newer offloads out, as an older protocol driver would see them.
    """

    OBJECT_TYPE = NDIS_OBJECT_TYPE_OFFLOAD
    REVISIONS = {NDIS_OFFLOAD_REVISION_1: "Flags", NDIS_OFFLOAD_REVISION_2: "IPsecV2",
                 NDIS_OFFLOAD_REVISION_3: "EncapsulatedPacketTaskOffloadGre"}
    MEMBERS = (STRUCT("Checksum", NdisTcpIpChecksumOffload),
               STRUCT("LsoV1", NdisTcpLargeSendOffloadV1),
               STRUCT("IPsecV1", NdisIpsecOffloadV1),
               STRUCT("LsoV2", NdisTcpLargeSendOffloadV2),
               ULONG("Flags"),
               STRUCT("IPsecV2", NdisIpsecOffloadV2),
               STRUCT("Rsc", NdisTcpRecvSegCoalesceOffload),
               STRUCT("EncapsulatedPacketTaskOffloadGre", NdisEncapsulatedPacketTaskOffload))


class NdisOffloadParameters(NdisStruct):
    """NDIS_OFFLOAD_PARAMETERS, the InformationBuffer of OID_TCP_OFFLOAD_PARAMETERS.

    Header.Type NDIS_OBJECT_TYPE_DEFAULT; revision 1 ends after ``Flags`` (20 bytes),
    revision 2 after ``IPsecV2IPv4`` (22), revision 3 after ``EncapsulationTypes`` (26).
    Every member defaults to NO_CHANGE (0). Encoding a request at a revision that cannot carry
    one of its non-zero members is an error rather than a silent drop.
    """

    OBJECT_TYPE = NDIS_OBJECT_TYPE_DEFAULT
    REVISIONS = {NDIS_OFFLOAD_PARAMETERS_REVISION_1: "Flags",
                 NDIS_OFFLOAD_PARAMETERS_REVISION_2: "IPsecV2IPv4",
                 NDIS_OFFLOAD_PARAMETERS_REVISION_3: "EncapsulationTypes"}
    TRUNCATE_SILENTLY = False
    MEMBERS = (UCHAR("IPv4Checksum"), UCHAR("TCPIPv4Checksum"), UCHAR("UDPIPv4Checksum"),
               UCHAR("TCPIPv6Checksum"), UCHAR("UDPIPv6Checksum"), UCHAR("LsoV1"),
               UCHAR("IPsecV1"), UCHAR("LsoV2IPv4"), UCHAR("LsoV2IPv6"),
               UCHAR("TcpConnectionIPv4"), UCHAR("TcpConnectionIPv6"), ULONG("Flags"),
               UCHAR("IPsecV2"), UCHAR("IPsecV2IPv4"), UCHAR("RscIPv4"), UCHAR("RscIPv6"),
               UCHAR("EncapsulatedPacketTaskOffload"), UCHAR("EncapsulationTypes"))


class EncapsulationIP(NdisStruct):
    """``IPv4`` / ``IPv6`` of NDIS_OFFLOAD_ENCAPSULATION: Enabled, EncapsulationType, HeaderSize."""

    MEMBERS = (ULONG("Enabled"), ULONG("EncapsulationType"), ULONG("HeaderSize"))


class NdisOffloadEncapsulation(NdisStruct):
    """NDIS_OFFLOAD_ENCAPSULATION (Header.Type 0xA8, revision 1, 28 bytes), the
    InformationBuffer of OID_OFFLOAD_ENCAPSULATION (``oid-offload-encapsulation.md``)."""

    OBJECT_TYPE = NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION
    REVISIONS = {NDIS_OFFLOAD_ENCAPSULATION_REVISION_1: "IPv6"}
    MEMBERS = (STRUCT("IPv4", EncapsulationIP), STRUCT("IPv6", EncapsulationIP))


# ---------------------------------------------------------------------------------------------
# Registry keywords
# ---------------------------------------------------------------------------------------------

_CHECKSUM_VALUES = {0: "Disabled", 1: "Tx Enabled", 2: "Rx Enabled", 3: "Rx & Tx Enabled"}
_ON_OFF_VALUES = {0: "Disabled", 1: "Enabled"}
_IPSEC_VALUES = {0: "Disabled", 1: "Auth Header Enabled", 2: "ESP Enabled",
                 3: "Auth Header & ESP Enabled"}
_REGISTRY_PAGE = "registry-values-for-task-offload.md"


@dataclasses.dataclass(frozen=True)
class KeywordSpec:
    """One standardized keyword: its NDIS spelling, values (value -> EnumDesc), default.

    ``covers`` lists, for a grouped keyword, the granular keywords it speaks for.
    """

    name: str
    values: Mapping[int, str]
    default: int
    source: str
    covers: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        """The :class:`Keywords` field (the name without its leading '*')."""
        return self.name.lstrip("*")

    def allowed(self) -> str:
        return ", ".join(f"{value} ({meaning})" for value, meaning in self.values.items())


#: Every keyword this model reads, in the order the registry pages list them.
KEYWORD_SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("*IPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*UDPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*UDPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*LsoV1IPv4", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*LsoV2IPv4", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*LsoV2IPv6", _ON_OFF_VALUES, 1, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV1IPv4", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV2", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*IPsecOffloadV2IPv4", _IPSEC_VALUES, 3, _REGISTRY_PAGE),
    KeywordSpec("*TCPUDPChecksumOffloadIPv4", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE,
                covers=("*IPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4",
                        "*UDPChecksumOffloadIPv4")),
    KeywordSpec("*TCPUDPChecksumOffloadIPv6", _CHECKSUM_VALUES, 3, _REGISTRY_PAGE,
                covers=("*TCPChecksumOffloadIPv6", "*UDPChecksumOffloadIPv6")),
    KeywordSpec("*RscIPv4", _ON_OFF_VALUES, 1, "standardized-inf-keywords-for-rsc.md"),
    KeywordSpec("*RscIPv6", _ON_OFF_VALUES, 1, "standardized-inf-keywords-for-rsc.md"),
    KeywordSpec("*EncapsulatedPacketTaskOffload", _ON_OFF_VALUES, 1,
                "standardized-inf-keywords-for-nvgre-task-offload.md"),
    KeywordSpec("DisableTaskOffload", {0: "Task offloads enabled", 1: "All task offloads disabled"},
                0, _REGISTRY_PAGE),
)

_SPECS_BY_FOLDED_NAME = {spec.name.casefold(): spec for spec in KEYWORD_SPECS}
GROUPED_KEYWORDS = tuple(spec for spec in KEYWORD_SPECS if spec.covers)


def keyword_spec(name: str) -> KeywordSpec:
    """The spec of a keyword, matched case-insensitively on the exact NDIS spelling.

    Raises
    ------
    KeywordError
        Unknown name (the message suggests the nearest known keyword).
    """
    spec = _SPECS_BY_FOLDED_NAME.get(name.strip().casefold())
    if spec is not None:
        return spec
    folded = list(_SPECS_BY_FOLDED_NAME)
    near = difflib.get_close_matches(name.strip().casefold(), folded, n=1, cutoff=0.6)
    hint = (f"did you mean {_SPECS_BY_FOLDED_NAME[near[0]].name!r}?" if near else
            "known keywords: " + ", ".join(spec.name for spec in KEYWORD_SPECS))
    raise KeywordError(name, f"unknown keyword {name!r}; {hint}")


_DECIMAL = re.compile(r"[+-]?[0-9]+")


def keyword_value(spec: KeywordSpec, value: int | str) -> int:
    """Check ``value`` (an int or a decimal string, as the registry stores it) for ``spec``.

    Raises
    ------
    KeywordError
        Not an integer, or not one of the values the keyword allows; the message names the
        keyword and lists the allowed values.
    """
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise KeywordError(spec.name, f"keyword {spec.name}: value {value!r} is not an integer; "
                                      f"allowed values: {spec.allowed()}")
    if number not in spec.values:
        raise KeywordError(spec.name, f"keyword {spec.name}: value {number} is out of range; "
                                      f"allowed values: {spec.allowed()}")
    return number


def parse_keyword(text: str) -> tuple[str, int]:
    """``"NAME=VALUE"`` -> ``(canonical NDIS name, value)``.

    Raises
    ------
    KeywordError
        No ``=``, an unknown name, or a value the keyword does not allow.
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise KeywordError(text, f"expected NAME=VALUE (e.g. '*LsoV2IPv4=0'), got {text!r}")
    spec = keyword_spec(name)
    return spec.name, keyword_value(spec, value)


def parse_keywords(entries: Iterable[str] | Mapping[str, int | str]
                   | Iterable[tuple[str, int | str]]) -> dict[str, int]:
    """Check every entry; ``{canonical name: value}`` in first-seen order, the last value of a
    repeated keyword winning. Entries are ``"NAME=VALUE"`` strings, ``(name, value)`` pairs or a
    mapping."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    given: dict[str, int] = {}
    for item in items:
        if isinstance(item, str):
            name, value = parse_keyword(item)
        else:
            raw_name, raw_value = item
            spec = keyword_spec(raw_name)
            name, value = spec.name, keyword_value(spec, raw_value)
        given[name] = value
    return given


@dataclasses.dataclass(frozen=True)
class Keywords:
    """The standardized keywords the miniport reads at initialization, resolved.

    The grouped checksum keywords are resolved into the granular ones they cover (a granular
    keyword, being the more specific, wins regardless of order; DESIGN section 3), so this
    holds only granular values: ``registry-values-for-task-offload.md`` has the miniport read
    "all of the granular settings". Field names are the keywords without their ``*``.
    OID_TCP_OFFLOAD_PARAMETERS updates these values (``oid-tcp-offload-parameters.md``: NDIS
    "updates the miniport adapter's offload standardized keywords with the new settings").
    """

    IPChecksumOffloadIPv4: int = 3
    TCPChecksumOffloadIPv4: int = 3
    TCPChecksumOffloadIPv6: int = 3
    UDPChecksumOffloadIPv4: int = 3
    UDPChecksumOffloadIPv6: int = 3
    LsoV1IPv4: int = 1
    LsoV2IPv4: int = 1
    LsoV2IPv6: int = 1
    IPsecOffloadV1IPv4: int = 3
    IPsecOffloadV2: int = 3
    IPsecOffloadV2IPv4: int = 3
    RscIPv4: int = 1
    RscIPv6: int = 1
    EncapsulatedPacketTaskOffload: int = 1
    DisableTaskOffload: int = 0

    def __post_init__(self):
        for spec in _RESOLVED_SPECS:
            keyword_value(spec, getattr(self, spec.field))

    @classmethod
    def from_registry(cls, entries: Iterable[str] | Mapping[str, int | str]
                      | Iterable[tuple[str, int | str]] = ()) -> Keywords:
        """Resolve keyword entries (see :func:`parse_keywords`); absent ones take their
        default."""
        given = parse_keywords(entries)
        values: dict[str, int] = {}
        for spec in _RESOLVED_SPECS:
            if spec.name in given:
                values[spec.field] = given[spec.name]
        for grouped in GROUPED_KEYWORDS:
            if grouped.name in given:
                for granular in grouped.covers:
                    values.setdefault(granular.lstrip("*"), given[grouped.name])
        return cls(**values)

    @property
    def task_offload_disabled(self) -> bool:
        return self.DisableTaskOffload == 1

    def as_registry(self) -> dict[str, int]:
        """``{NDIS keyword spelling: value}`` for every resolved keyword."""
        return {spec.name: getattr(self, spec.field) for spec in _RESOLVED_SPECS}

    def replace(self, **changes) -> Keywords:
        return dataclasses.replace(self, **changes)


_RESOLVED_SPECS = tuple(spec for spec in KEYWORD_SPECS if not spec.covers)
assert tuple(spec.field for spec in _RESOLVED_SPECS) == \
    tuple(f.name for f in dataclasses.fields(Keywords))
assert all(getattr(Keywords(), spec.field) == spec.default for spec in _RESOLVED_SPECS)


# ---------------------------------------------------------------------------------------------
# Offload switches: the one flat vocabulary for configured, reported and operational offloads
# ---------------------------------------------------------------------------------------------

#: Per IP version, the switches OID_OFFLOAD_ENCAPSULATION turns on and off together.
IPV4_SWITCHES = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "rx_ipv4_checksum",
                 "rx_tcp_ipv4", "rx_udp_ipv4", "lso_v1_ipv4", "lso_v2_ipv4", "rsc_ipv4")
IPV6_SWITCHES = ("tx_tcp_ipv6", "tx_udp_ipv6", "rx_tcp_ipv6", "rx_udp_ipv6", "lso_v2_ipv6",
                 "rsc_ipv6")
#: Every on/off offload of the datapath, in :class:`Datapath` order.
OFFLOAD_SWITCHES = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "tx_tcp_ipv6",
                    "tx_udp_ipv6", "rx_ipv4_checksum", "rx_tcp_ipv4", "rx_udp_ipv4",
                    "rx_tcp_ipv6", "rx_udp_ipv6", "lso_v1_ipv4", "lso_v2_ipv4", "lso_v2_ipv6",
                    "rsc_ipv4", "rsc_ipv6", "encap")
assert set(OFFLOAD_SWITCHES) == set(IPV4_SWITCHES) | set(IPV6_SWITCHES) | {"encap"}

#: Keyword (field) -> the checksum switch suffix it controls in both directions.
_CHECKSUM_KEYWORDS = {"IPChecksumOffloadIPv4": "ipv4_checksum",
                      "TCPChecksumOffloadIPv4": "tcp_ipv4",
                      "UDPChecksumOffloadIPv4": "udp_ipv4",
                      "TCPChecksumOffloadIPv6": "tcp_ipv6",
                      "UDPChecksumOffloadIPv6": "udp_ipv6"}
#: On/off keyword (field) -> switch.
_ON_OFF_KEYWORDS = {"LsoV1IPv4": "lso_v1_ipv4", "LsoV2IPv4": "lso_v2_ipv4",
                    "LsoV2IPv6": "lso_v2_ipv6", "RscIPv4": "rsc_ipv4", "RscIPv6": "rsc_ipv6",
                    "EncapsulatedPacketTaskOffload": "encap"}


@dataclasses.dataclass(frozen=True)
class NicCapabilities:
    """What our NIC's hardware can do: the source of OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES.

    Checksum offload (IPv4 with IP options, IPv6 with extension headers, TCP options, IP/TCP/UDP
    both directions), LSOv1 and LSOv2, RSC, NVGRE are built in; IPsec and TCP chimney are not.

    Parameters
    ----------
    lso_v1_max_offload_size : int
        LSOv1 MaxOffLoadSize, 1..65535. ``reporting-a-nic-s-lsov1-...md``: "cannot exceed 64K
        bytes"; ``task-offload.md``: LSOv1 packets are up to 64 KB *including the IP header*;
        and an LSOv1 large packet carries its full length in the 16-bit IPv4 Total Length
        (``offloading-the-segmentation-of-large-tcp-packets.md``), so 65535 is the largest
        value that is both "<= 64K" and describable. Default 65535.
    lso_v2_max_offload_size : int
        LSOv2 MaxOffLoadSize for IPv4 and IPv6 ("Unlimited" in
        ``combining-types-of-task-offloads.md``). Default 262144 (256 KB sends).
    min_segment_count : int
        MinSegmentCount of LSOv1 and LSOv2 (>= 1). Default 2.
    nvgre_max_header_size : int
        NVGRE MaxHeaderSizeSupported: bytes from the frame start to the end of the inner TCP/UDP
        header. Default 256 (the value the NVGRE page recommends; DESIGN: headers <= 256
        encapsulated).
    nvgre_ip_versions : int
        OR of NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_{INNER,OUTER}_IPV{4,6} reported for NVGRE
        transmit checksum, receive checksum and LSOv2. Default: all four.
    rsc, nvgre : bool
        Whether the build has the RSC coalescer / NVGRE parsing. Default True.
    """

    lso_v1_max_offload_size: int = 65535
    lso_v2_max_offload_size: int = 262144
    min_segment_count: int = 2
    nvgre_max_header_size: int = 256
    nvgre_ip_versions: int = ALL_ENCAPSULATED_IP_VERSIONS
    rsc: bool = True
    nvgre: bool = True

    def __post_init__(self):
        def need(ok: bool, what: str):
            if not ok:
                raise ValueError(f"NicCapabilities: {what}")
        for name in ("lso_v1_max_offload_size", "lso_v2_max_offload_size", "min_segment_count",
                     "nvgre_max_header_size", "nvgre_ip_versions"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool),
                 f"{name}={value!r} must be an int")
        need(1 <= self.lso_v1_max_offload_size <= 0xFFFF,
             f"lso_v1_max_offload_size={self.lso_v1_max_offload_size} must be 1..65535")
        need(1 <= self.lso_v2_max_offload_size <= 0xFFFFFFFF,
             f"lso_v2_max_offload_size={self.lso_v2_max_offload_size} must be 1..2**32-1")
        need(1 <= self.min_segment_count <= 0xFFFFFFFF,
             f"min_segment_count={self.min_segment_count} must be >= 1")
        need(1 <= self.nvgre_max_header_size <= 0xFFFFFFFF,
             f"nvgre_max_header_size={self.nvgre_max_header_size} must be >= 1")
        need(1 <= self.nvgre_ip_versions <= ALL_ENCAPSULATED_IP_VERSIONS,
             f"nvgre_ip_versions={self.nvgre_ip_versions:#x} must be a non-empty OR of "
             "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_* flags")

    def supported_switches(self) -> dict[str, bool]:
        """``{switch: the hardware has it}`` for every name in :data:`OFFLOAD_SWITCHES`."""
        switches = dict.fromkeys(OFFLOAD_SWITCHES, True)
        switches["rsc_ipv4"] = switches["rsc_ipv6"] = self.rsc
        switches["encap"] = self.nvgre
        return switches

    def offload(self, switches: Mapping[str, bool]) -> NdisOffload:
        """The NDIS_OFFLOAD that reports exactly ``switches`` as on (rules in the module doc).

        Each offload reports the capabilities it needs alongside it
        (``combining-types-of-task-offloads.md``): IP options with IPv4 checksums, TCP options
        with TCP checksums, IPv6 extension headers with IPv6 checksums, TCP and IP options with
        LSOv1, extension headers and TCP options with LSOv2 over IPv6.
        """
        on = {name: bool(switches.get(name, False)) for name in OFFLOAD_SWITCHES}

        def flag(*names: str) -> int:
            return NDIS_OFFLOAD_SUPPORTED if any(on[name] for name in names) else 0

        def encapsulation(*names: str) -> int:
            return SUPPORTED_ENCAPSULATION if any(on[name] for name in names) else 0

        def checksum_ipv4(d: str) -> ChecksumIPv4:
            names = (f"{d}_ipv4_checksum", f"{d}_tcp_ipv4", f"{d}_udp_ipv4")
            return ChecksumIPv4(Encapsulation=encapsulation(*names),
                                IpOptionsSupported=flag(*names),
                                TcpOptionsSupported=flag(f"{d}_tcp_ipv4"),
                                TcpChecksum=flag(f"{d}_tcp_ipv4"),
                                UdpChecksum=flag(f"{d}_udp_ipv4"),
                                IpChecksum=flag(f"{d}_ipv4_checksum"))

        def checksum_ipv6(d: str) -> ChecksumIPv6:
            names = (f"{d}_tcp_ipv6", f"{d}_udp_ipv6")
            return ChecksumIPv6(Encapsulation=encapsulation(*names),
                                IpExtensionHeadersSupported=flag(*names),
                                TcpOptionsSupported=flag(f"{d}_tcp_ipv6"),
                                TcpChecksum=flag(f"{d}_tcp_ipv6"),
                                UdpChecksum=flag(f"{d}_udp_ipv6"))

        def size_if(name: str, value: int) -> int:
            return value if on[name] else 0

        lso_v1 = LsoV1IPv4(Encapsulation=encapsulation("lso_v1_ipv4"),
                           MaxOffLoadSize=size_if("lso_v1_ipv4", self.lso_v1_max_offload_size),
                           MinSegmentCount=size_if("lso_v1_ipv4", self.min_segment_count),
                           TcpOptions=flag("lso_v1_ipv4"), IpOptions=flag("lso_v1_ipv4"))
        lso_v2 = NdisTcpLargeSendOffloadV2(
            IPv4=LsoV2IPv4(Encapsulation=encapsulation("lso_v2_ipv4"),
                           MaxOffLoadSize=size_if("lso_v2_ipv4", self.lso_v2_max_offload_size),
                           MinSegmentCount=size_if("lso_v2_ipv4", self.min_segment_count)),
            IPv6=LsoV2IPv6(Encapsulation=encapsulation("lso_v2_ipv6"),
                           MaxOffLoadSize=size_if("lso_v2_ipv6", self.lso_v2_max_offload_size),
                           MinSegmentCount=size_if("lso_v2_ipv6", self.min_segment_count),
                           IpExtensionHeadersSupported=flag("lso_v2_ipv6"),
                           TcpOptionsSupported=flag("lso_v2_ipv6")))
        versions = self.nvgre_ip_versions if on["encap"] else 0
        gre = NdisEncapsulatedPacketTaskOffload(
            TransmitChecksumOffloadSupported=versions, ReceiveChecksumOffloadSupported=versions,
            LsoV2Supported=versions, RssSupported=0, VmqSupported=0,
            MaxHeaderSizeSupported=size_if("encap", self.nvgre_max_header_size))
        return NdisOffload(
            Checksum=NdisTcpIpChecksumOffload(IPv4Transmit=checksum_ipv4("tx"),
                                              IPv4Receive=checksum_ipv4("rx"),
                                              IPv6Transmit=checksum_ipv6("tx"),
                                              IPv6Receive=checksum_ipv6("rx")),
            LsoV1=NdisTcpLargeSendOffloadV1(IPv4=lso_v1),
            LsoV2=lso_v2,
            Rsc=NdisTcpRecvSegCoalesceOffload(IPv4=RscIP(Enabled=int(on["rsc_ipv4"])),
                                              IPv6=RscIP(Enabled=int(on["rsc_ipv6"]))),
            EncapsulatedPacketTaskOffloadGre=gre)

    def hardware_offload(self) -> NdisOffload:
        """The NDIS_OFFLOAD for OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES."""
        return self.offload(self.supported_switches())


def combination_violations(offload: NdisOffload, *, capabilities: bool = True) -> tuple[str, ...]:
    """Broken rules of ``combining-types-of-task-offloads.md``, as messages (empty: all kept).

    With ``capabilities`` (an NDIS_OFFLOAD that reports hardware capabilities) every rule
    applies: LSOv1 needs IPv4 and TCP transmit checksums plus TCP and IP options and
    MaxOffLoadSize <= 64K; LSOv2 needs TCP and IP transmit checksums (TCP over IPv6) and, over
    IPv6, extension headers and TCP options; a TCP checksum needs IP options over IPv4 and TCP
    options over IPv6; IPv6 checksums need extension headers; every offload supports 802.3.
    For a current configuration (``capabilities=False``) only "never IPsec together with LSO"
    applies: LSO computes its own IP and TCP checksums even with checksum offload disabled
    (``registry-values-for-task-offload.md``; DESIGN section 3).
    """
    out: list[str] = []
    c, lso1, lso2 = offload.Checksum, offload.LsoV1.IPv4, offload.LsoV2
    S = NDIS_OFFLOAD_SUPPORTED
    lso_v1 = lso1.Encapsulation != 0
    lso_v2_ipv4, lso_v2_ipv6 = lso2.IPv4.Encapsulation != 0, lso2.IPv6.Encapsulation != 0
    ipsec = (offload.IPsecV1.Supported.Encapsulation != 0
             or offload.IPsecV2.Encapsulation != 0)
    if ipsec and (lso_v1 or lso_v2_ipv4 or lso_v2_ipv6):
        out.append("IPsec and LSO are both on; NDIS configures one or the other, never both")
    if not capabilities:
        return tuple(out)
    if lso_v1:
        if c.IPv4Transmit.IpChecksum != S or c.IPv4Transmit.TcpChecksum != S:
            out.append("LSOv1 requires IPv4 and TCP transmit checksum offload")
        if lso1.TcpOptions != S or lso1.IpOptions != S:
            out.append("LSOv1 requires TCP options and IP options")
        if not 0 < lso1.MaxOffLoadSize <= 0x10000:
            out.append(f"LSOv1 MaxOffLoadSize {lso1.MaxOffLoadSize} is not within 1..64K")
    if lso_v2_ipv4 and (c.IPv4Transmit.IpChecksum != S or c.IPv4Transmit.TcpChecksum != S):
        out.append("LSOv2 over IPv4 requires IP and TCP transmit checksum offload")
    if lso_v2_ipv6:
        if c.IPv6Transmit.TcpChecksum != S:
            out.append("LSOv2 over IPv6 requires TCP transmit checksum offload")
        if lso2.IPv6.IpExtensionHeadersSupported != S or lso2.IPv6.TcpOptionsSupported != S:
            out.append("LSOv2 over IPv6 requires IP extension headers and TCP options")
    for name in ("IPv4Transmit", "IPv4Receive"):
        part = getattr(c, name)
        if part.TcpChecksum == S and part.IpOptionsSupported != S:
            out.append(f"Checksum.{name}: a TCP checksum requires IP options")
    for name in ("IPv6Transmit", "IPv6Receive"):
        part = getattr(c, name)
        if part.TcpChecksum == S and part.TcpOptionsSupported != S:
            out.append(f"Checksum.{name}: a TCP checksum requires TCP options")
        if (part.TcpChecksum == S or part.UdpChecksum == S) and \
                part.IpExtensionHeadersSupported != S:
            out.append(f"Checksum.{name}: IPv6 checksums require IP extension headers")
    for path, value in (("Checksum.IPv4Transmit", c.IPv4Transmit.Encapsulation),
                        ("Checksum.IPv4Receive", c.IPv4Receive.Encapsulation),
                        ("Checksum.IPv6Transmit", c.IPv6Transmit.Encapsulation),
                        ("Checksum.IPv6Receive", c.IPv6Receive.Encapsulation),
                        ("LsoV1.IPv4", lso1.Encapsulation), ("LsoV2.IPv4", lso2.IPv4.Encapsulation),
                        ("LsoV2.IPv6", lso2.IPv6.Encapsulation)):
        if value and not value & NDIS_ENCAPSULATION_IEEE_802_3:
            out.append(f"{path}.Encapsulation {value:#x} lacks NDIS_ENCAPSULATION_IEEE_802_3")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The datapath view
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Datapath:
    """What the datapath does right now: the flat view the CSRs and the datapath model read.

    Every boolean is *operational*: configured (keywords, OID_TCP_OFFLOAD_PARAMETERS), not
    switched off by OID_OFFLOAD_ENCAPSULATION, and, for the receive side (``rx_*``, ``rsc_*``),
    switched on by OID_OFFLOAD_ENCAPSULATION for that IP version (``rx_active_ipv4/6``); NVGRE
    (``encap``) also needs an explicit EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON.
    DisableTaskOffload=1 leaves everything False.

    LSO computes the IPv4 header and TCP checksums of every segment it makes whether or not
    ``tx_ipv4_checksum`` / ``tx_tcp_*`` are set (DESIGN section 3; NDIS: LSO implies the NIC
    calculates IP and TCP checksums). The sizes are the hardware's, valid whether or not the
    offload is on; a send larger than MaxOffLoadSize, or an LSO send while that LSO is off, is
    dropped by the datapath.
    """

    tx_ipv4_checksum: bool = False
    tx_tcp_ipv4: bool = False
    tx_udp_ipv4: bool = False
    tx_tcp_ipv6: bool = False
    tx_udp_ipv6: bool = False
    rx_ipv4_checksum: bool = False
    rx_tcp_ipv4: bool = False
    rx_udp_ipv4: bool = False
    rx_tcp_ipv6: bool = False
    rx_udp_ipv6: bool = False
    lso_v1_ipv4: bool = False
    lso_v2_ipv4: bool = False
    lso_v2_ipv6: bool = False
    rsc_ipv4: bool = False
    rsc_ipv6: bool = False
    encap: bool = False
    rx_active_ipv4: bool = False
    rx_active_ipv6: bool = False
    lso_v1_max_offload_size: int = 65535
    lso_v2_ipv4_max_offload_size: int = 262144
    lso_v2_ipv6_max_offload_size: int = 262144
    min_segment_count: int = 2
    nvgre_max_header_size: int = 256

    @property
    def rx_active(self) -> bool:
        """OID_OFFLOAD_ENCAPSULATION has switched receive offloads on for IPv4 or IPv6."""
        return self.rx_active_ipv4 or self.rx_active_ipv6

    @property
    def lso_v1_enabled(self) -> bool:
        return self.lso_v1_ipv4

    @property
    def lso_v2_enabled(self) -> bool:
        return self.lso_v2_ipv4 or self.lso_v2_ipv6

    def as_dict(self) -> dict[str, bool | int]:
        return dataclasses.asdict(self)

    def lso_limits(self) -> dict[str, bool | int]:
        """This view as keyword arguments of ``nicoffload.model.lso.LsoLimits`` (its member
        names, our values): ``LsoLimits(**datapath.lso_limits())``."""
        return {"lso_v1_ipv4": self.lso_v1_ipv4, "lso_v2_ipv4": self.lso_v2_ipv4,
                "lso_v2_ipv6": self.lso_v2_ipv6,
                "v1_ipv4_max_offload_size": self.lso_v1_max_offload_size,
                "v2_ipv4_max_offload_size": self.lso_v2_ipv4_max_offload_size,
                "v2_ipv6_max_offload_size": self.lso_v2_ipv6_max_offload_size,
                "v1_ipv4_min_segment_count": self.min_segment_count,
                "v2_ipv4_min_segment_count": self.min_segment_count,
                "v2_ipv6_min_segment_count": self.min_segment_count,
                "max_encapsulated_header_bytes": self.nvgre_max_header_size}


assert tuple(f.name for f in dataclasses.fields(Datapath))[:len(OFFLOAD_SWITCHES)] == \
    OFFLOAD_SWITCHES


# ---------------------------------------------------------------------------------------------
# Adapter state and the pure functions that move it
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AdapterState:
    """Everything a miniport adapter remembers about its offload configuration.

    Attributes
    ----------
    keywords : Keywords
        The standardized keywords (updated by OID_TCP_OFFLOAD_PARAMETERS).
    encapsulation : NdisOffloadEncapsulation
        The last OID_OFFLOAD_ENCAPSULATION settings per IP version; ``Enabled`` stays
        NDIS_OFFLOAD_SET_NO_CHANGE (0) for an IP version no set has touched yet.
    nvgre_activated : bool
        An OID_TCP_OFFLOAD_PARAMETERS set has turned NVGRE on (and none off since).
    """

    keywords: Keywords = dataclasses.field(default_factory=Keywords)
    encapsulation: NdisOffloadEncapsulation = dataclasses.field(
        default_factory=NdisOffloadEncapsulation)
    nvgre_activated: bool = False


def configured_switches(keywords: Keywords, capabilities: NicCapabilities) -> dict[str, bool]:
    """The offloads the keywords turn on that the hardware has; all off under
    DisableTaskOffload=1 (``registry-values-for-task-offload.md``)."""
    supported = capabilities.supported_switches()
    switches = dict.fromkeys(OFFLOAD_SWITCHES, False)
    if keywords.task_offload_disabled:
        return switches
    for field, suffix in _CHECKSUM_KEYWORDS.items():
        value = getattr(keywords, field)
        switches[f"tx_{suffix}"] = value in (1, 3)
        switches[f"rx_{suffix}"] = value in (2, 3)
    for field, name in _ON_OFF_KEYWORDS.items():
        switches[name] = getattr(keywords, field) == 1
    return {name: on and supported[name] for name, on in switches.items()}


def reported_switches(state: AdapterState, capabilities: NicCapabilities) -> dict[str, bool]:
    """:func:`configured_switches` minus every offload of an IP version that
    OID_OFFLOAD_ENCAPSULATION has switched off ("deactivate all offloads",
    ``oid-offload-encapsulation.md``)."""
    switches = configured_switches(state.keywords, capabilities)
    for ip, names in (("IPv4", IPV4_SWITCHES), ("IPv6", IPV6_SWITCHES)):
        if getattr(state.encapsulation, ip).Enabled == NDIS_OFFLOAD_SET_OFF:
            for name in names:
                switches[name] = False
    return switches


def current_offload(state: AdapterState, capabilities: NicCapabilities) -> NdisOffload:
    """The NDIS_OFFLOAD for OID_TCP_OFFLOAD_CURRENT_CONFIG and the status indication."""
    return capabilities.offload(reported_switches(state, capabilities))


def datapath_view(state: AdapterState, capabilities: NicCapabilities) -> Datapath:
    """The operational :class:`Datapath` of ``state``."""
    switches = reported_switches(state, capabilities)
    rx_active = {ip: getattr(state.encapsulation, ip).Enabled == NDIS_OFFLOAD_SET_ON
                 for ip in ("IPv4", "IPv6")}
    if state.keywords.task_offload_disabled:
        rx_active = {"IPv4": False, "IPv6": False}
    # Receive checksum offload starts only after OID_OFFLOAD_ENCAPSULATION
    # (oid-offload-encapsulation.md; DESIGN "Nothing is checked before ..."); RSC validates
    # checksums before it coalesces, so it waits for the same set.
    for ip, names in (("IPv4", IPV4_SWITCHES), ("IPv6", IPV6_SWITCHES)):
        for name in names:
            if name.startswith(("rx_", "rsc_")) and not rx_active[ip]:
                switches[name] = False
    # querying-and-changing-nvgre-task-offload-state.md: enabled by default, but not
    # operational until a protocol driver turns it on explicitly.
    switches["encap"] = switches["encap"] and state.nvgre_activated
    return Datapath(**switches, rx_active_ipv4=rx_active["IPv4"],
                    rx_active_ipv6=rx_active["IPv6"],
                    lso_v1_max_offload_size=capabilities.lso_v1_max_offload_size,
                    lso_v2_ipv4_max_offload_size=capabilities.lso_v2_max_offload_size,
                    lso_v2_ipv6_max_offload_size=capabilities.lso_v2_max_offload_size,
                    min_segment_count=capabilities.min_segment_count,
                    nvgre_max_header_size=capabilities.nvgre_max_header_size)


_OID_PARAMETERS = "OID_TCP_OFFLOAD_PARAMETERS"
_OID_ENCAPSULATION = "OID_OFFLOAD_ENCAPSULATION"

_CHECKSUM_PARAMETER_VALUES = {
    0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: "NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED",
    2: "NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED",
    3: "NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED",
    4: "NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED"}


def _on_off_values(kind: str) -> dict[int, str]:
    return {0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: f"NDIS_OFFLOAD_PARAMETERS_{kind}_DISABLED",
            2: f"NDIS_OFFLOAD_PARAMETERS_{kind}_ENABLED"}


def _ipsec_values(kind: str) -> dict[int, str]:
    return {0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: f"NDIS_OFFLOAD_PARAMETERS_{kind}_DISABLED",
            2: f"NDIS_OFFLOAD_PARAMETERS_{kind}_AH_ENABLED",
            3: f"NDIS_OFFLOAD_PARAMETERS_{kind}_ESP_ENABLED",
            4: f"NDIS_OFFLOAD_PARAMETERS_{kind}_AH_AND_ESP_ENABLED"}


@dataclasses.dataclass(frozen=True)
class _ParameterRule:
    """How OID_TCP_OFFLOAD_PARAMETERS treats one member of NDIS_OFFLOAD_PARAMETERS.

    ``keyword`` is the :class:`Keywords` field the member updates, ``to_keyword`` maps each
    non-NO_CHANGE value to that keyword's value, ``needs`` maps a value to the switches the
    hardware must have for it (``None``: the hardware never supports that value).
    """

    field: str
    values: Mapping[int, str]
    keyword: str | None
    to_keyword: Mapping[int, int]
    needs: Mapping[int, tuple[str, ...] | None]


def _checksum_rule(field: str, keyword: str, suffix: str) -> _ParameterRule:
    return _ParameterRule(field, _CHECKSUM_PARAMETER_VALUES, keyword,
                          {1: 0, 2: 1, 3: 2, 4: 3},
                          {2: (f"tx_{suffix}",), 3: (f"rx_{suffix}",),
                           4: (f"tx_{suffix}", f"rx_{suffix}")})


def _switch_rule(field: str, kind: str, keyword: str, switch: str) -> _ParameterRule:
    return _ParameterRule(field, _on_off_values(kind), keyword, {1: 0, 2: 1}, {2: (switch,)})


def _ipsec_rule(field: str, kind: str, keyword: str) -> _ParameterRule:
    return _ParameterRule(field, _ipsec_values(kind), keyword, {1: 0, 2: 1, 3: 2, 4: 3},
                          {2: None, 3: None, 4: None})


#: Member -> rule, for every member of NDIS_OFFLOAD_PARAMETERS but Flags and EncapsulationTypes.
_PARAMETER_RULES = {rule.field: rule for rule in (
    _checksum_rule("IPv4Checksum", "IPChecksumOffloadIPv4", "ipv4_checksum"),
    _checksum_rule("TCPIPv4Checksum", "TCPChecksumOffloadIPv4", "tcp_ipv4"),
    _checksum_rule("UDPIPv4Checksum", "UDPChecksumOffloadIPv4", "udp_ipv4"),
    _checksum_rule("TCPIPv6Checksum", "TCPChecksumOffloadIPv6", "tcp_ipv6"),
    _checksum_rule("UDPIPv6Checksum", "UDPChecksumOffloadIPv6", "udp_ipv6"),
    _switch_rule("LsoV1", "LSOV1", "LsoV1IPv4", "lso_v1_ipv4"),
    _ipsec_rule("IPsecV1", "IPSECV1", "IPsecOffloadV1IPv4"),
    _switch_rule("LsoV2IPv4", "LSOV2", "LsoV2IPv4", "lso_v2_ipv4"),
    _switch_rule("LsoV2IPv6", "LSOV2", "LsoV2IPv6", "lso_v2_ipv6"),
    _ParameterRule("TcpConnectionIPv4", _on_off_values("CONNECTION_OFFLOAD"), None, {},
                   {2: None}),
    _ParameterRule("TcpConnectionIPv6", _on_off_values("CONNECTION_OFFLOAD"), None, {},
                   {2: None}),
    _ipsec_rule("IPsecV2", "IPSECV2", "IPsecOffloadV2"),
    _ipsec_rule("IPsecV2IPv4", "IPSECV2", "IPsecOffloadV2IPv4"),
    _switch_rule("RscIPv4", "RSC", "RscIPv4", "rsc_ipv4"),
    _switch_rule("RscIPv6", "RSC", "RscIPv6", "rsc_ipv6"),
    _ParameterRule("EncapsulatedPacketTaskOffload",
                   {0: "NDIS_OFFLOAD_SET_NO_CHANGE", 1: "NDIS_OFFLOAD_SET_ON",
                    2: "NDIS_OFFLOAD_SET_OFF"},
                   "EncapsulatedPacketTaskOffload", {1: 1, 2: 0}, {1: ("encap",)}),
)}


def _refuse(oid: str, status: int, field: str, message: str):
    raise OidError(oid, status, field, message)


def apply_offload_parameters(state: AdapterState, params: NdisOffloadParameters,
                             capabilities: NicCapabilities) -> AdapterState:
    """The state after a *successful* OID_TCP_OFFLOAD_PARAMETERS set
    (``oid-tcp-offload-parameters.md``).

    All members are checked before any is applied, so a refused request changes nothing.
    NO_CHANGE (0) leaves a member's offload alone; any other value updates the keyword it
    corresponds to, and the configuration follows the keywords. An EncapsulatedPacketTaskOffload
    of NDIS_OFFLOAD_SET_ON also makes NVGRE operational, NDIS_OFFLOAD_SET_OFF stops it
    (``querying-and-changing-nvgre-task-offload-state.md``). Disabling IPsec or TCP chimney is
    accepted (they are already off); enabling them is refused.

    Raises
    ------
    OidError
        NDIS_STATUS_INVALID_DATA for a value a member does not define, non-zero ``Flags`` or
        undefined ``EncapsulationTypes`` bits; NDIS_STATUS_NOT_SUPPORTED for enabling what the
        hardware lacks (IPsec, TCP chimney, VXLAN, or RSC/NVGRE on a build without them) or any
        set while DisableTaskOffload=1.
    """
    if state.keywords.task_offload_disabled:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, "DisableTaskOffload",
                "task offload is disabled (DisableTaskOffload=1)")
    for field, rule in _PARAMETER_RULES.items():
        value = getattr(params, field)
        if value not in rule.values:
            allowed = ", ".join(f"{v} {name}" for v, name in rule.values.items())
            _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, field,
                    f"NDIS_OFFLOAD_PARAMETERS.{field}={value} is not valid; allowed: {allowed}")
    if params.Flags != 0:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "Flags",
                f"NDIS_OFFLOAD_PARAMETERS.Flags={params.Flags:#x} is not valid; must be 0")
    known_types = NDIS_ENCAPSULATION_TYPE_GRE_MAC | NDIS_ENCAPSULATION_TYPE_VXLAN
    if params.EncapsulationTypes & ~known_types:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "EncapsulationTypes",
                f"NDIS_OFFLOAD_PARAMETERS.EncapsulationTypes={params.EncapsulationTypes:#x} has "
                "undefined bits; allowed: NDIS_ENCAPSULATION_TYPE_GRE_MAC (0x1), "
                "NDIS_ENCAPSULATION_TYPE_VXLAN (0x2)")
    supported = capabilities.supported_switches()
    for field, rule in _PARAMETER_RULES.items():
        value = getattr(params, field)
        if value in rule.needs:
            needs = rule.needs[value]
            if needs is None or not all(supported[name] for name in needs):
                _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, field,
                        f"NDIS_OFFLOAD_PARAMETERS.{field}={value} ({rule.values[value]}) asks "
                        "for an offload this NIC does not support")
    if (params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_ON
            and params.EncapsulationTypes & NDIS_ENCAPSULATION_TYPE_VXLAN):
        _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, "EncapsulationTypes",
                "NDIS_ENCAPSULATION_TYPE_VXLAN is not supported (NVGRE/GRE_MAC only)")
    updates = {rule.keyword: rule.to_keyword[getattr(params, field)]
               for field, rule in _PARAMETER_RULES.items()
               if rule.keyword is not None and getattr(params, field) in rule.to_keyword}
    nvgre_activated = state.nvgre_activated
    if params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_ON:
        nvgre_activated = True
    elif params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_OFF:
        nvgre_activated = False
    return dataclasses.replace(state, keywords=state.keywords.replace(**updates),
                               nvgre_activated=nvgre_activated)


def apply_offload_encapsulation(state: AdapterState, encapsulation: NdisOffloadEncapsulation,
                                capabilities: NicCapabilities) -> AdapterState:
    """The state after a *successful* OID_OFFLOAD_ENCAPSULATION set
    (``oid-offload-encapsulation.md``, ``enabling-and-disabling-task-offload-services.md``).

    Per IP version: NDIS_OFFLOAD_SET_ON activates every configured offload of that version
    (receive checksum and RSC start now), NDIS_OFFLOAD_SET_OFF deactivates them all,
    NDIS_OFFLOAD_SET_NO_CHANGE leaves it as it was. With SET_ON, EncapsulationType must be a
    non-empty OR of encapsulations the hardware supports (802.3, 802.1Q, LLC/SNAP; 802.3 implies
    802.1Q) and HeaderSize non-zero; with anything else both are ignored. The NIC offloads every
    framing it supports at once, whatever type was requested.

    Raises
    ------
    OidError
        NDIS_STATUS_INVALID_PARAMETER for an undefined Enabled value, an unsupported
        encapsulation type or a zero HeaderSize; NDIS_STATUS_NOT_SUPPORTED while
        DisableTaskOffload=1 (protocol drivers "must not issue" it then,
        ``registry-values-for-task-offload.md``; we refuse it rather than ignore it).
    """
    if state.keywords.task_offload_disabled:
        _refuse(_OID_ENCAPSULATION, NDIS_STATUS_NOT_SUPPORTED, "DisableTaskOffload",
                "task offload is disabled (DisableTaskOffload=1); protocol drivers must not "
                "issue OID_OFFLOAD_ENCAPSULATION")
    new = {}
    for ip in ("IPv4", "IPv6"):
        request: EncapsulationIP = getattr(encapsulation, ip)
        if request.Enabled not in (NDIS_OFFLOAD_SET_NO_CHANGE, NDIS_OFFLOAD_SET_ON,
                                   NDIS_OFFLOAD_SET_OFF):
            _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, f"{ip}.Enabled",
                    f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.Enabled={request.Enabled} is not valid; "
                    "allowed: 0 NDIS_OFFLOAD_SET_NO_CHANGE, 1 NDIS_OFFLOAD_SET_ON, "
                    "2 NDIS_OFFLOAD_SET_OFF")
        if request.Enabled == NDIS_OFFLOAD_SET_ON:
            kind = request.EncapsulationType
            if kind == 0 or kind & ~SUPPORTED_ENCAPSULATION:
                _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER,
                        f"{ip}.EncapsulationType",
                        f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.EncapsulationType={kind:#x} is not "
                        f"supported; supported: an OR of {SUPPORTED_ENCAPSULATION:#x} "
                        "(IEEE_802_3, IEEE_802_3_P_AND_Q, IEEE_LLC_SNAP_ROUTED)")
            if request.HeaderSize == 0:
                _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, f"{ip}.HeaderSize",
                        f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.HeaderSize=0 with Enabled=SET_ON")
            new[ip] = request
        elif request.Enabled == NDIS_OFFLOAD_SET_OFF:
            new[ip] = EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_OFF)
    return dataclasses.replace(state, encapsulation=state.encapsulation.replace(**new))


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StatusIndication:
    """One NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG status indication.

    Attributes
    ----------
    StatusBuffer : NdisOffload
        The current configuration after the set (encode it with ``to_bytes(revision)``).
    Oid : str
        The OID whose set request produced it.
    StatusCode : int
        NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG (0x40020006).
    """

    StatusBuffer: NdisOffload
    Oid: str
    StatusCode: int = NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG


class Adapter:
    """One miniport adapter's offload configuration, driven like NDIS drives a miniport.

    Parameters
    ----------
    keywords : Keywords, optional
        The resolved registry keywords read at initialization (default: all defaults).
    capabilities : NicCapabilities, optional
        The hardware (default: :class:`NicCapabilities` defaults).

    Notes
    -----
    Decisions where NDIS is silent (see also the module docstring):

    - ``default_offload_configuration`` is the NDIS_OFFLOAD reported at initialization
      (NDIS_MINIPORT_ADAPTER_OFFLOAD_ATTRIBUTES.DefaultOffloadConfiguration); it is not a
      status indication. ``indications`` gets exactly one record per successful set of
      OID_TCP_OFFLOAD_PARAMETERS or OID_OFFLOAD_ENCAPSULATION, including sets that change
      nothing, and none for a refused set.
    - While DisableTaskOffload=1 both OIDs are refused with NDIS_STATUS_NOT_SUPPORTED, so the
      "every offload off" of that value holds for the adapter's whole life.
    - Enabling IPsec, TCP chimney or VXLAN is refused with NDIS_STATUS_NOT_SUPPORTED;
      disabling them succeeds.
    """

    def __init__(self, keywords: Keywords | None = None,
                 capabilities: NicCapabilities | None = None):
        self.capabilities = capabilities if capabilities is not None else NicCapabilities()
        self._state = AdapterState(keywords=keywords if keywords is not None else Keywords())
        self._indications: list[StatusIndication] = []
        self.default_offload_configuration: NdisOffload = self.current_config()

    @classmethod
    def from_keywords(cls, keywords: Iterable[str] | Mapping[str, int | str] = (),
                      capabilities: NicCapabilities | None = None) -> Adapter:
        """Initialize from ``"NAME=VALUE"`` strings, ``(name, value)`` pairs or a mapping.

        Raises
        ------
        KeywordError
            An unknown keyword or a value out of range.
        """
        return cls(Keywords.from_registry(keywords), capabilities)

    @property
    def state(self) -> AdapterState:
        return self._state

    @property
    def indications(self) -> tuple[StatusIndication, ...]:
        """Every NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG indicated so far, oldest first."""
        return tuple(self._indications)

    @property
    def task_offload_disabled(self) -> bool:
        return self._state.keywords.task_offload_disabled

    def keywords(self) -> Keywords:
        """The standardized keywords as they stand now (OID_TCP_OFFLOAD_PARAMETERS updates
        them)."""
        return self._state.keywords

    def hardware_capabilities(self) -> NdisOffload:
        """OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES."""
        return self.capabilities.hardware_offload()

    def current_config(self) -> NdisOffload:
        """OID_TCP_OFFLOAD_CURRENT_CONFIG."""
        return current_offload(self._state, self.capabilities)

    def offload_encapsulation(self) -> NdisOffloadEncapsulation:
        """OID_OFFLOAD_ENCAPSULATION query: the settings last set (all zero before any set)."""
        return self._state.encapsulation

    def datapath(self) -> Datapath:
        """The operational :class:`Datapath` view."""
        return datapath_view(self._state, self.capabilities)

    def set_offload_parameters(
            self, params: NdisOffloadParameters | bytes | bytearray) -> StatusIndication:
        """OID_TCP_OFFLOAD_PARAMETERS set; ``params`` is the structure or its bytes.

        Returns the status indication the set produced (also appended to ``indications``).

        Raises
        ------
        OidError
            See :func:`apply_offload_parameters`; undecodable bytes give
            NDIS_STATUS_INVALID_DATA.
        """
        if not isinstance(params, NdisOffloadParameters):
            try:
                params = NdisOffloadParameters.from_bytes(params)
            except NdisStructureError as error:
                raise OidError(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "Header",
                               str(error)) from None
        self._state = apply_offload_parameters(self._state, params, self.capabilities)
        return self._indicate(_OID_PARAMETERS)

    def set_offload_encapsulation(
            self, encapsulation: NdisOffloadEncapsulation | bytes | bytearray
    ) -> StatusIndication:
        """OID_OFFLOAD_ENCAPSULATION set; ``encapsulation`` is the structure or its bytes.

        Raises
        ------
        OidError
            See :func:`apply_offload_encapsulation`; undecodable bytes give
            NDIS_STATUS_INVALID_PARAMETER.
        """
        if not isinstance(encapsulation, NdisOffloadEncapsulation):
            try:
                encapsulation = NdisOffloadEncapsulation.from_bytes(encapsulation)
            except NdisStructureError as error:
                raise OidError(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, "Header",
                               str(error)) from None
        self._state = apply_offload_encapsulation(self._state, encapsulation, self.capabilities)
        return self._indicate(_OID_ENCAPSULATION)

    def _indicate(self, oid: str) -> StatusIndication:
        indication = StatusIndication(StatusBuffer=self.current_config(), Oid=oid)
        self._indications.append(indication)
        return indication


#: What ``bind`` sets: both IP versions on, Ethernet II / 802.3, 802.1Q and LLC/SNAP, with the
#: 14-byte Ethernet II header the TCP/IP transport uses (DESIGN section 4).
BIND_ENCAPSULATION = NdisOffloadEncapsulation(
    IPv4=EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_ON, EncapsulationType=SUPPORTED_ENCAPSULATION,
                         HeaderSize=14),
    IPv6=EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_ON, EncapsulationType=SUPPORTED_ENCAPSULATION,
                         HeaderSize=14))

#: What ``bind`` sets to make NVGRE operational when the keyword allows it.
BIND_NVGRE_ON = NdisOffloadParameters(EncapsulatedPacketTaskOffload=NDIS_OFFLOAD_SET_ON,
                                      EncapsulationTypes=NDIS_ENCAPSULATION_TYPE_GRE_MAC)


def bind(keywords: Iterable[str] | Mapping[str, int | str] = (),
         capabilities: NicCapabilities | None = None, *, nvgre: bool = True) -> Adapter:
    """Do what the protocol driver does at bind time (DESIGN section 4), return the adapter.

    1. Initialize the adapter from ``keywords``.
    2. Unless DisableTaskOffload=1 (then protocol drivers must not issue it), set
       OID_OFFLOAD_ENCAPSULATION for Ethernet II, 802.1Q and LLC/SNAP on IPv4 and IPv6
       (:data:`BIND_ENCAPSULATION`), so the offloads are live from the first frame.
    3. If ``nvgre`` and NVGRE is configured on, set OID_TCP_OFFLOAD_PARAMETERS with
       EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON (:data:`BIND_NVGRE_ON`), as the
       NVGRE-aware switch does: NVGRE is not operational until turned on explicitly
       (``querying-and-changing-nvgre-task-offload-state.md``).

    Raises
    ------
    KeywordError
        An unknown keyword or a value out of range.
    """
    adapter = Adapter.from_keywords(keywords, capabilities)
    if adapter.task_offload_disabled:
        return adapter
    adapter.set_offload_encapsulation(BIND_ENCAPSULATION)
    if nvgre and configured_switches(adapter.keywords(), adapter.capabilities)["encap"]:
        adapter.set_offload_parameters(BIND_NVGRE_ON)
    return adapter
