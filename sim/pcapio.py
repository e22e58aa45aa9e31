"""Reading and writing captures of Ethernet frames (classic pcap; pcapng read through scapy).

Frames up to 262144 bytes (the snaplen ``tx``/``rx`` write) so large sends survive a round
trip. Every failure is a :class:`PcapError` with one line saying what and where.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["PcapError", "SNAPLEN", "read_frames", "write_frames"]

SNAPLEN = 262144
LINKTYPE_ETHERNET = 1
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG = b"\x0a\x0d\x0d\x0a"


class PcapError(Exception):
    """A capture that cannot be read or written."""


def read_frames(path: str | Path) -> list[bytes]:
    """The frames of an Ethernet capture, in order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PcapError(f"cannot read {path}: {e.strerror}") from None
    if data[:4] == _PCAPNG:
        return _read_pcapng(path)
    if len(data) < 24 or data[:4] not in _MAGICS:
        raise PcapError(f"{path} is not a pcap or pcapng capture")
    endian, _ = _MAGICS[data[:4]]
    _, _, _, _, _, linktype = struct.unpack(endian + "HHiIII", data[4:24])
    if linktype & 0xFFFF != LINKTYPE_ETHERNET:
        raise PcapError(f"{path}: link type {linktype} is not Ethernet (1)")
    frames, at = [], 24
    while at < len(data):
        if at + 16 > len(data):
            raise PcapError(f"{path}: truncated record header at byte {at}")
        _, _, incl, orig = struct.unpack(endian + "IIII", data[at:at + 16])
        at += 16
        if at + incl > len(data):
            raise PcapError(f"{path}: record at byte {at - 16} runs past the end of the file")
        if incl < orig:
            raise PcapError(f"{path}: frame {len(frames)} was cut to {incl} of {orig} bytes "
                            "by the capture's snaplen")
        frames.append(data[at:at + incl])
        at += incl
    return frames


def _read_pcapng(path: Path) -> list[bytes]:
    from scapy.utils import RawPcapNgReader
    try:
        with RawPcapNgReader(str(path)) as reader:
            return [bytes(pkt) for pkt, _ in reader]
    except Exception as e:      # scapy raises a variety of types for bad files
        raise PcapError(f"cannot read pcapng {path}: {e}") from None


def write_frames(path: str | Path, frames, *, start_time: float = 0.0) -> None:
    """Write ``frames`` (bytes) as a classic little-endian microsecond pcap."""
    path = Path(path)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
    for i, frame in enumerate(frames):
        if len(frame) > SNAPLEN:
            raise PcapError(f"frame {i} is {len(frame)} bytes, more than snaplen {SNAPLEN}")
        t = start_time + i * 1e-6
        out += struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)) % 1000000,
                           len(frame), len(frame))
        out += frame
    try:
        path.write_bytes(bytes(out))
    except OSError as e:
        raise PcapError(f"cannot write {path}: {e.strerror}") from None
