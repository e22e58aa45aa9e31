"""The Internet checksum (RFC 1071): 16-bit one's-complement sums.

A one's-complement sum of 16-bit big-endian words is congruent to the plain integer value of
the byte string modulo 0xFFFF (since 2**16 == 1 mod 0xFFFF), so one ``int.from_bytes`` and
one ``%`` sum a whole frame at C speed. The only care is the representation: a non-empty sum
that is 0 mod 0xFFFF is 0xFFFF ("negative zero"), never 0, exactly what an end-around-carry
adder produces; the sum of nothing (or of all-zero words) is 0.

The RTL unit of the same name, ``nicoffload.hdl.onesum.OnesSum``, computes ``ones_sum`` of a
frame from a start offset at line rate.
"""

from __future__ import annotations


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None,
             initial: int = 0) -> int:
    """One's-complement sum of ``data[start:end]`` as 16-bit big-endian words, plus ``initial``.

    An odd trailing byte is padded with a zero byte (RFC 1071 4.1). Words are aligned to
    ``start``. The result is in 0..0xFFFF and is 0 only when every word (and ``initial``) is 0.
    """
    chunk = bytes(data[start:end])
    if len(chunk) & 1:
        chunk += b"\x00"
    if not 0 <= initial <= 0xFFFF:
        raise ValueError(f"initial sum {initial:#x} is not a 16-bit value")
    total = int.from_bytes(chunk, "big") + initial
    if total == 0:
        return 0
    folded = total % 0xFFFF
    return folded if folded else 0xFFFF


def add(*sums: int) -> int:
    """One's-complement addition of 16-bit values (end-around carry)."""
    total = 0
    for s in sums:
        total += s
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes | bytearray | memoryview, start: int = 0,
                      end: int | None = None, initial: int = 0) -> int:
    """The value to place in a checksum field: the complement of ``ones_sum``."""
    return ~ones_sum(data, start, end, initial) & 0xFFFF


def verifies(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None,
             initial: int = 0) -> bool:
    """True when a region that includes its own checksum field sums to all ones.

    Both encodings of zero in the field are accepted: the test is on the sum, not the field.
    """
    return ones_sum(data, start, end, initial) == 0xFFFF
