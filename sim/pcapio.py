"""Captures of Ethernet frames in and out, one record at a time.

Reading goes through scapy's pcap and pcapng readers (``scapy.utils.RawPcapReader``, which
hands a pcapng file to ``RawPcapNgReader``), wrapped so that what they only warn about or pass
over is an error here, one line saying what and where (:class:`PcapError`):

- a link type other than Ethernet (1): in pcap from the file header, in pcapng from the
  interface each record was captured on (a Linux cooked capture, 113, or raw IP, 101, is not
  read as Ethernet);
- a truncated file: a record, or a record header, that runs past the end of the file; a
  malformed block before the end; a pcapng record on an interface no block has described;
- a frame the capture's snaplen cut short (captured length below the length on the wire),
  which no offload can process as the frame it was.

The readers stream: :class:`CaptureReader` yields :class:`Record` tuples ``(time_ns, frame)``
and holds one record at a time, so a capture of any size is read in bounded memory. Times are
the capture's own, as integer nanoseconds since the epoch (pcap: seconds and micro- or
nanoseconds; pcapng: the interface's ``if_tsresol`` ticks; a Simple Packet Block, which has
no time, gets the previous record's). pcapng's ``if_tsoffset`` is not applied.

Writing (:class:`CaptureWriter`) is classic little-endian pcap through scapy's
``RawPcapWriter``: link type Ethernet, snaplen :data:`SNAPLEN` (262144, so large sends survive
a round trip), microsecond timestamps or, with ``nanosecond=True``, nanosecond ones. The
frames go to a temporary file beside the output, which replaces it only when the writer is
closed without an error, so a failed run leaves no half-written capture (and an output may
name the input). An output that exists and is not a regular file (a FIFO, ``/dev/null``) is
written in place.

``read_frames`` and ``write_frames`` remain for callers that want whole lists.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from scapy.error import Scapy_Exception, log_runtime
from scapy.utils import RawPcapNgReader, RawPcapReader, RawPcapWriter

__all__ = ["PcapError", "SNAPLEN", "LINKTYPE_ETHERNET", "Record", "CaptureReader",
           "CaptureWriter", "read", "write", "read_frames", "write_frames"]

SNAPLEN = 262144
LINKTYPE_ETHERNET = 1

_LINKTYPE_NAMES = {0: "NULL", 101: "RAW", 105: "IEEE802_11", 113: "LINUX_SLL",
                   127: "IEEE802_11_RADIOTAP", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
#: scapy's pcap reader reads at most this much of one record (``4 * scapy.data.MTU``).
_PCAP_RECORD_LIMIT = 4 * 0xFFFF
_NO_SLICE = 1 << 62         # the ``size`` we pass scapy: never cut a frame


class PcapError(Exception):
    """A capture that cannot be read or written."""


class Record(NamedTuple):
    """One capture record: when it was captured and its bytes (from the destination MAC on)."""
    time_ns: int
    frame: bytes


# scapy logs a warning for what we turn into errors; while our reader is inside scapy, those
# warnings are dropped so that the error is the one line the user sees.
_inside = threading.local()


class _WhileReading(logging.Filter):
    def filter(self, record):
        return not getattr(_inside, "reading", False)


log_runtime.addFilter(_WhileReading())


def _linktype_text(linktype: int) -> str:
    name = _LINKTYPE_NAMES.get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)


class CaptureReader:
    """The records of a pcap or pcapng capture of Ethernet frames, one at a time.

    Parameters
    ----------
    path : str or Path
        The capture (gzip-compressed captures are read too).

    Attributes
    ----------
    path : Path
    format : str
        ``"pcap"`` or ``"pcapng"``.
    records : int
        Records handed out so far.

    Raises
    ------
    PcapError
        On opening (not a capture, a pcap of another link type, a bad first record) and while
        iterating (see the module docstring).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records = 0
        self._read = 0              # records read from the file (one ahead of ``records``)
        self._last_ns = 0
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise PcapError(f"cannot read {self.path}: {e.strerror}") from None
        try:
            self._open()
            self._pending = self._next()      # the first record: interfaces are known now
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        magic = b""
        try:
            magic = self._file.read(4)
            self._file.seek(0)
            _inside.reading = True
            try:
                self._reader = RawPcapReader(self._file)
            finally:
                _inside.reading = False
        except (Scapy_Exception, EOFError, OSError):
            if magic == _PCAPNG_MAGIC:
                raise PcapError(f"{self.path}: the pcapng section header is truncated or "
                                "malformed") from None
            if magic in _PCAP_MAGICS:
                raise PcapError(f"{self.path}: the pcap file header is truncated") from None
            raise PcapError(f"{self.path} is not a pcap or pcapng capture") from None
        if isinstance(self._reader, RawPcapNgReader):
            self.format = "pcapng"
            self._reader._check_interface_id = self._check_interface_id
            self._read_idb = self._reader.blocktypes[1]
            self._reader.blocktypes[1] = self._interface_block
        else:
            self.format = "pcap"
            linktype = self._reader.linktype & 0xFFFF
            if linktype != LINKTYPE_ETHERNET:
                raise PcapError(f"{self.path}: link type {_linktype_text(linktype)} is not "
                                f"Ethernet (1)")

    @property
    def nanosecond(self) -> bool:
        """The capture's times are finer than a microsecond (a nanosecond pcap, or a pcapng
        interface described so far with a finer ``if_tsresol``)."""
        if self.format == "pcap":
            return bool(self._reader.nano)
        return any(iface[2]["tsresol"] > 10 ** 6 for iface in self._reader.interfaces)

    def _interface_block(self, block, size):
        """scapy's Interface Description Block reader, but a snaplen of 0 means "no limit"
        (pcapng), not "keep no byte" of a Simple Packet Block."""
        self._read_idb(block, size)
        linktype, snaplen, options = self._reader.interfaces[-1]
        if snaplen == 0:
            self._reader.interfaces[-1] = (linktype, _NO_SLICE, options)

    def _check_interface_id(self, intid: int) -> bool:
        known = len(self._reader.interfaces)
        if intid >= known:
            raise PcapError(f"{self.path}: record {self._read} names interface {intid}, "
                            f"but only {known} are described")
        return True

    def _next(self) -> Record | None:
        f = self._reader.f
        at = f.tell()
        _inside.reading = True
        try:
            data, meta = self._reader._read_packet(size=_NO_SLICE)
        except EOFError:
            if f.tell() == at:
                return None
            if f.read(1):
                raise PcapError(f"{self.path}: malformed block at byte {at}") from None
            raise PcapError(f"{self.path}: record {self._read} at byte {at} runs past the "
                            f"end of the file (truncated capture)") from None
        except Scapy_Exception as e:
            raise PcapError(f"{self.path}: at byte {at}: {e}") from None
        except OSError as e:
            raise PcapError(f"cannot read {self.path}: {e}") from None
        finally:
            _inside.reading = False
        n = self._read
        if self.format == "pcap":
            if meta.caplen > _PCAP_RECORD_LIMIT:
                raise PcapError(f"{self.path}: record {n} at byte {at} is {meta.caplen} bytes, "
                                f"more than the {_PCAP_RECORD_LIMIT} a record may hold")
            if len(data) < meta.caplen:
                raise PcapError(f"{self.path}: record {n} at byte {at} runs past the end of "
                                "the file (truncated capture)")
            time_ns = meta.sec * 10 ** 9 + meta.usec * (1 if self._reader.nano else 1000)
        else:
            if meta.linktype != LINKTYPE_ETHERNET:
                raise PcapError(f"{self.path}: record {n}: link type "
                                f"{_linktype_text(meta.linktype)} is not Ethernet (1)")
            if meta.tshigh is None:
                time_ns = self._last_ns
            else:
                time_ns = ((meta.tshigh << 32) | meta.tslow) * 10 ** 9 // meta.tsresol
        if len(data) < meta.wirelen:
            raise PcapError(f"{self.path}: frame {n} was cut to {len(data)} of {meta.wirelen} "
                            "bytes by the capture's snaplen")
        self._read += 1
        self._last_ns = time_ns
        return Record(time_ns, bytes(data))

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        record = self._pending
        if isinstance(record, PcapError):   # found when reading ahead: its turn now
            self._pending = None
            raise record
        if record is None:
            raise StopIteration
        try:
            self._pending = self._next()
        except PcapError as e:
            self._pending = e
        self.records += 1
        return record

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CaptureWriter:
    """Write records to a classic pcap (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The output; replaced when the writer closes without an error.
    nanosecond : bool
        Nanosecond timestamps; else microseconds (times are rounded down to them).

    Raises
    ------
    PcapError
        The output cannot be created or written, a frame is longer than :data:`SNAPLEN`, or
        a time does not fit the 32-bit seconds of pcap.
    """

    def __init__(self, path: str | Path, *, nanosecond: bool = False):
        self.path = Path(path)
        self.nanosecond = nanosecond
        self.count = 0
        in_place = self.path.exists() and not self.path.is_file()
        self._target = self.path.resolve() if self.path.is_symlink() else self.path
        self._temp = None if in_place else self._target.with_name(
            f".{self._target.name}.{secrets.token_hex(4)}.partial")
        try:
            if self._temp is None:
                self._file = open(self.path, "wb")
            else:
                fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                self._file = os.fdopen(fd, "wb")
        except OSError as e:
            raise PcapError(f"cannot write {self.path}: {e.strerror}") from None
        self._writer = RawPcapWriter(self._file, linktype=LINKTYPE_ETHERNET, endianness="<",
                                     nano=nanosecond, snaplen=SNAPLEN)
        self._guard(lambda: self._writer.write_header(None))

    def _guard(self, action) -> None:
        try:
            action()
        except OSError as e:
            self.discard()
            raise PcapError(f"cannot write {self.path}: {e.strerror or e}") from None

    def write(self, time_ns: int, frame: bytes | bytearray | memoryview) -> None:
        """Append one record."""
        if len(frame) > SNAPLEN:
            raise PcapError(f"{self.path}: frame {self.count} is {len(frame)} bytes, more "
                            f"than snaplen {SNAPLEN}")
        sec, fraction = divmod(int(time_ns), 10 ** 9)
        if not 0 <= sec <= 0xFFFFFFFF:
            raise PcapError(f"{self.path}: frame {self.count}: time {time_ns} ns does not fit "
                            "a pcap timestamp")
        if not self.nanosecond:
            fraction //= 1000
        self._guard(lambda: self._writer.write_packet(bytes(frame), sec=sec, usec=fraction))
        self.count += 1

    def close(self) -> None:
        """Finish the capture: flush it and put it in place."""
        if self._file.closed:
            return
        self._guard(self._file.close)
        if self._temp is not None:
            try:
                os.replace(self._temp, self._target)
            except OSError as e:
                self.discard()
                raise PcapError(f"cannot write {self.path}: {e.strerror}") from None

    def discard(self) -> None:
        """Give up: close and remove what was written (an output written in place stays)."""
        try:
            self._file.close()
        except OSError:
            pass
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except OSError:
                pass

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


def read(path: str | Path) -> Iterator[Record]:
    """The records of a capture, streamed (:class:`CaptureReader`; opened at the first
    ``next``)."""
    with CaptureReader(path) as reader:
        yield from reader


def write(path: str | Path, records: Iterable[tuple[int, bytes]], *,
          nanosecond: bool = False) -> int:
    """Write ``(time_ns, frame)`` records (:class:`CaptureWriter`); returns how many."""
    with CaptureWriter(path, nanosecond=nanosecond) as writer:
        for time_ns, frame in records:
            writer.write(time_ns, frame)
        return writer.count


def read_frames(path: str | Path) -> list[bytes]:
    """The frames of an Ethernet capture, in order (the whole capture in memory)."""
    return [record.frame for record in read(path)]


def write_frames(path: str | Path, frames, *, start_time: float = 0.0) -> None:
    """Write ``frames`` (bytes) as a microsecond pcap, one microsecond apart from
    ``start_time`` (seconds)."""
    start = round(start_time * 1e6) * 1000
    write(path, ((start + i * 1000, frame) for i, frame in enumerate(frames)))
