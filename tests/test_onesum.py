"""model/onesum.py against RFC 1071's worked example, a known IPv4 header and scapy."""

import random

import pytest
from scapy.utils import checksum as scapy_checksum

from nicoffload.model import onesum


def test_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (carries folded).
    assert onesum.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert onesum.internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_known_ipv4_header():
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert onesum.internet_checksum(header) == 0xB861
    filled = header[:10] + b"\xb8\x61" + header[12:]
    assert onesum.verifies(filled)


def test_zero_representation():
    assert onesum.ones_sum(b"") == 0
    assert onesum.ones_sum(bytes(10)) == 0
    assert onesum.ones_sum(b"\xff\xff") == 0xFFFF
    assert onesum.ones_sum(b"\x00\x01\xff\xfe") == 0xFFFF       # 0x10000 - 1 folds to 0xFFFF
    assert onesum.ones_sum(b"\xff\xff" * 3) == 0xFFFF
    assert onesum.add(0xFFFF, 0xFFFF) == 0xFFFF
    assert onesum.add(0x8000, 0x8000) == 0x0001


def test_odd_length_and_start():
    assert onesum.ones_sum(b"\x12") == 0x1200
    data = bytes(range(1, 40))
    assert onesum.ones_sum(data, 3) == onesum.ones_sum(data[3:])


@pytest.mark.parametrize("seed", range(4))
def test_against_scapy(seed):
    rng = random.Random(seed)
    for _ in range(500):
        n = rng.choice([rng.randrange(0, 64), rng.randrange(0, 2000), rng.randrange(0, 9100)])
        if rng.random() < 0.2:
            data = b"\xff" * n
        else:
            data = rng.randbytes(n)
        assert onesum.internet_checksum(data) == scapy_checksum(data), n


def test_add_matches_concatenation():
    rng = random.Random(9)
    for _ in range(300):
        a, b = rng.randbytes(rng.randrange(0, 50) * 2), rng.randbytes(rng.randrange(0, 51))
        assert onesum.add(onesum.ones_sum(a), onesum.ones_sum(b)) == onesum.ones_sum(a + b) or \
            (onesum.ones_sum(a + b) == 0 and not any(a + b))
