"""How NDIS lays out its structures in memory: a small description language for C structures.

The rule here (``ndis-offload-structure.md``, seed, and every structure page it links; the
layouts are facts from ntddndis.h): members in C order at their natural alignment,
little-endian, C bitfields packed from bit 0 of their ULONG, padding and undefined bits
written as zero and ignored when read; a structure that starts with an NDIS_OBJECT_HEADER
carries its Type, its Revision and in Size the bytes up to the last member of that revision
(``NDIS_SIZEOF_..._REVISION_n``). :class:`NdisStruct` turns a member list into a frozen
dataclass that encodes, decodes and checks exactly that; the NDIS structures themselves are
in :mod:`.structures`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from typing import Any, ClassVar


class NdisStructureError(ValueError):
    """Bytes that are not a valid NDIS structure of the expected type, revision or size."""


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



class NdisObjectHeader(NdisStruct):
    """NDIS_OBJECT_HEADER {UCHAR Type; UCHAR Revision; USHORT Size} (4 bytes)."""

    MEMBERS = (UCHAR("Type"), UCHAR("Revision"), USHORT("Size"))
