"""Tests of the NDIS structures' bytes (nicoffload.model.config.binary and .structures).

Expected byte offsets and sizes are written out literally here from the ntddndis.h layouts
(not computed by the model), so a layout mistake in the model fails these tests.
"""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from nicoffload.model import config as c


def u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


# ---------------------------------------------------------------------------------------------
# NDIS_OFFLOAD encoding
# ---------------------------------------------------------------------------------------------

SUBSTRUCTURE_SIZES = {c.NdisObjectHeader: 4, c.NdisTcpIpChecksumOffload: 32,
                      c.NdisTcpLargeSendOffloadV1: 16, c.NdisIpsecOffloadV1: 28,
                      c.NdisTcpLargeSendOffloadV2: 28, c.NdisIpsecOffloadV2: 32,
                      c.NdisTcpRecvSegCoalesceOffload: 2, c.NdisEncapsulatedPacketTaskOffload: 8,
                      c.EncapsulationIP: 12}


@pytest.mark.parametrize("cls,size", SUBSTRUCTURE_SIZES.items(),
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_substructure_sizes(cls, size):
    assert cls.SIZE == size
    assert len(cls().to_bytes()) == size


@pytest.mark.parametrize("revision,size", [(1, 112), (2, 144), (3, 156)])
def test_ndis_offload_header_and_size_per_revision(revision, size):
    data = c.NicCapabilities().hardware_offload().to_bytes(revision)
    assert len(data) == size
    assert data[0] == 0xA7 and data[1] == revision
    assert struct.unpack_from("<H", data, 2)[0] == size
    assert c.NdisOffload.sizeof(revision) == size
    header = c.NdisOffload.header_of(data)
    assert (header.Type, header.Revision, header.Size) == (0xA7, revision, size)


def test_ndis_offload_default_revision_is_3():
    assert len(c.NdisOffload().to_bytes()) == 156


def test_hardware_capabilities_bytes_at_known_offsets(monkeypatch):
    # On a datapath that has built every offload, so that every member is non-zero.
    monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", frozenset(c.OFFLOAD_SWITCHES))
    data = c.NicCapabilities().hardware_offload().to_bytes(3)
    enc = 0x16
    # Checksum (offset 4): IPv4Transmit, IPv4Receive, IPv6Transmit, IPv6Receive, 8 bytes each.
    ipv4_bits = 1 | 1 << 2 | 1 << 4 | 1 << 6 | 1 << 8
    ipv6_bits = 1 | 1 << 2 | 1 << 4 | 1 << 6
    assert [u32(data, o) for o in (4, 8, 12, 16, 20, 24, 28, 32)] == \
        [enc, ipv4_bits, enc, ipv4_bits, enc, ipv6_bits, enc, ipv6_bits]
    # LsoV1 (offset 36)
    assert [u32(data, o) for o in (36, 40, 44, 48)] == [enc, 65535, 2, 1 | 1 << 2]
    # IPsecV1 (offset 52, 28 bytes) all zero
    assert data[52:80] == bytes(28)
    # LsoV2 (offset 80): IPv4 {Encapsulation, MaxOffLoadSize, MinSegmentCount}, IPv6 {..., bits}
    assert u32(data, 4 + 32 + 16 + 28 + 4) == 262144
    assert [u32(data, o) for o in (80, 84, 88, 92, 96, 100, 104)] == \
        [enc, 262144, 2, enc, 262144, 2, 1 | 1 << 2]
    assert u32(data, 108) == 0                      # Flags
    assert data[112:144] == bytes(32)               # IPsecV2
    assert data[144:148] == b"\x01\x01\x00\x00"     # Rsc + padding
    assert u32(data, 148) == 0xF | 0xF << 4 | 0xF << 8
    assert u32(data, 152) == 256


@pytest.mark.parametrize("path,expected", [
    ("Checksum.IPv4Transmit.Encapsulation", (4, 0, 32)),
    ("Checksum.IPv4Receive.IpChecksum", (16, 8, 2)),
    ("Checksum.IPv6Receive.UdpChecksum", (32, 6, 2)),
    ("LsoV1.IPv4.IpOptions", (48, 2, 2)),
    ("IPsecV1.IPv4ESP.Receive", (76, 14, 2)),
    ("LsoV2.IPv4.MaxOffLoadSize", (84, 0, 32)),
    ("LsoV2.IPv6.TcpOptionsSupported", (104, 2, 2)),
    ("Flags", (108, 0, 32)),
    ("IPsecV2.ExtendedSequenceNumbers", (126, 0, 8)),
    ("IPsecV2.UdpEsp", (128, 0, 32)),
    ("IPsecV2.SaOffloadCapacity", (140, 0, 32)),
    ("Rsc.IPv6.Enabled", (145, 0, 8)),
    ("EncapsulatedPacketTaskOffloadGre.VmqSupported", (148, 16, 4)),
    ("EncapsulatedPacketTaskOffloadGre.MaxHeaderSizeSupported", (152, 0, 32)),
])
def test_member_offsets(path, expected):
    assert c.NdisOffload.locate(path) == expected


def _fill(cls, rng):
    """An instance of ``cls`` with a random value in every member."""
    values = {}
    for f in dataclasses.fields(cls):
        if isinstance(f.type, type) and issubclass(f.type, c.NdisStruct):
            values[f.name] = _fill(f.type, rng)
        else:
            _, _, width = cls.locate(f.name)
            values[f.name] = rng.randrange(1 << width)
    return cls(**values)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("revision", [1, 2, 3])
def test_ndis_offload_round_trip(seed, revision):
    offload = _fill(c.NdisOffload, random.Random(seed))
    data = offload.to_bytes(revision)
    decoded = c.NdisOffload.from_bytes(data)
    assert decoded == offload.truncated(revision)
    assert decoded.to_bytes(revision) == data
    if revision == 3:
        assert decoded == offload


def test_every_bit_of_a_bitfield_lands_where_ntddndis_puts_it():
    """Walk each 2-bit checksum field through its ULONG independently of the model's table."""
    names = ["IpOptionsSupported", "TcpOptionsSupported", "TcpChecksum", "UdpChecksum",
             "IpChecksum"]
    for index, name in enumerate(names):
        part = c.ChecksumIPv4(**{name: 3})
        offload = c.NdisOffload(Checksum=c.NdisTcpIpChecksumOffload(IPv4Receive=part))
        assert u32(offload.to_bytes(1), 16) == 3 << (2 * index), name
    gre = c.NdisEncapsulatedPacketTaskOffload(LsoV2Supported=0xA)
    assert u32(c.NdisOffload(EncapsulatedPacketTaskOffloadGre=gre).to_bytes(3), 148) == 0xA00


def test_ipsec_v2_booleans_and_padding():
    ipsec = c.NdisIpsecOffloadV2(Encapsulation=2, IPv6Supported=1, ExtendedSequenceNumbers=1,
                                 UdpEsp=0x11223344, SaOffloadCapacity=7)
    data = c.NdisOffload(IPsecV2=ipsec).to_bytes(2)
    assert u32(data, 112) == 2
    assert data[116] == 1 and data[126] == 1 and data[127] == 0
    assert data[117:126] == bytes(9)
    assert u32(data, 128) == 0x11223344 and u32(data, 140) == 7


def test_decoding_ignores_undefined_bits_and_padding():
    data = bytearray(c.NdisOffload().to_bytes(3))
    data[9] = 0xFC        # bits 10..15 of IPv4Transmit's bitfield ULONG: undefined
    data[146] = 0xFF      # padding after Rsc
    data[150] = 0xFF      # bits 16..23 of the GRE ULONG: VmqSupported (defined) + undefined
    decoded = c.NdisOffload.from_bytes(bytes(data))
    assert decoded.Checksum.IPv4Transmit == c.ChecksumIPv4()
    assert decoded.EncapsulatedPacketTaskOffloadGre.VmqSupported == 0xF


def test_decoding_a_longer_buffer_reads_only_what_the_revision_holds():
    full = c.NicCapabilities().hardware_offload()
    rev1 = bytearray(full.to_bytes(3))
    rev1[1], rev1[2:4] = 1, struct.pack("<H", 112)
    assert c.NdisOffload.from_bytes(bytes(rev1)) == full.truncated(1)
    assert full.truncated(1).Rsc == c.NdisTcpRecvSegCoalesceOffload()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.__setitem__(0, 0x80), "Header.Type"),
    (lambda d: d.__setitem__(1, 0), "revision"),
    (lambda d: d.__setitem__(1, 4), "revision"),
    (lambda d: d.__setitem__(slice(2, 4), struct.pack("<H", 155)), "Header.Size"),
    (lambda d: d.__delitem__(slice(150, None)), "bytes"),
    (lambda d: d.__delitem__(slice(3, None)), "bytes"),
])
def test_decoding_bad_ndis_offload_bytes_fails(mutate, needle):
    data = bytearray(c.NdisOffload().to_bytes(3))
    mutate(data)
    with pytest.raises(c.NdisStructureError, match=needle):
        c.NdisOffload.from_bytes(bytes(data))


def test_encoding_an_unknown_revision_fails():
    with pytest.raises(c.NdisStructureError):
        c.NdisOffload().to_bytes(4)
    with pytest.raises(ValueError):
        c.ChecksumIPv4().to_bytes(1)


@pytest.mark.parametrize("kwargs", [dict(TcpChecksum=4), dict(Encapsulation=2**32),
                                    dict(IpChecksum=-1), dict(UdpChecksum="1")])
def test_structure_members_must_fit(kwargs):
    with pytest.raises(ValueError):
        c.ChecksumIPv4(**kwargs)
    with pytest.raises(TypeError):
        c.NdisOffload(Checksum=c.ChecksumIPv4())


def test_to_dict_uses_ndis_names_and_respects_the_revision():
    hw = c.NicCapabilities().hardware_offload()
    d3 = hw.to_dict(3)
    assert d3["Header"] == {"Type": 0xA7, "Revision": 3, "Size": 156}
    assert d3["LsoV2"]["IPv4"]["MaxOffLoadSize"] == 262144
    assert d3["Checksum"]["IPv6Transmit"]["IpExtensionHeadersSupported"] == 1
    assert d3["Rsc"] == {"IPv4": {"Enabled": 1}, "IPv6": {"Enabled": 1}}
    d1 = hw.to_dict(1)
    assert d1["Header"] == {"Type": 0xA7, "Revision": 1, "Size": 112}
    assert "IPsecV2" not in d1 and "Rsc" not in d1 and "Flags" in d1
    assert "IPsecV2" in hw.to_dict(2) and "Rsc" not in hw.to_dict(2)


# ---------------------------------------------------------------------------------------------
# NDIS_OFFLOAD_PARAMETERS encoding
# ---------------------------------------------------------------------------------------------

PARAMETER_OFFSETS = {"IPv4Checksum": 4, "TCPIPv4Checksum": 5, "UDPIPv4Checksum": 6,
                     "TCPIPv6Checksum": 7, "UDPIPv6Checksum": 8, "LsoV1": 9, "IPsecV1": 10,
                     "LsoV2IPv4": 11, "LsoV2IPv6": 12, "TcpConnectionIPv4": 13,
                     "TcpConnectionIPv6": 14, "IPsecV2": 20, "IPsecV2IPv4": 21,
                     "RscIPv4": 22, "RscIPv6": 23, "EncapsulatedPacketTaskOffload": 24,
                     "EncapsulationTypes": 25}


@pytest.mark.parametrize("revision,size", [(1, 20), (2, 22), (3, 26)])
def test_offload_parameters_header_and_size(revision, size):
    data = c.NdisOffloadParameters().to_bytes(revision)
    assert len(data) == size
    assert (data[0], data[1], struct.unpack_from("<H", data, 2)[0]) == (0x80, revision, size)


@pytest.mark.parametrize("field,offset", PARAMETER_OFFSETS.items())
def test_offload_parameters_member_offsets(field, offset):
    data = c.NdisOffloadParameters(**{field: 0x5A}).to_bytes(3)
    assert data[offset] == 0x5A
    assert sum(1 for b in data[4:] if b) == 1
    assert c.NdisOffloadParameters.locate(field) == (offset, 0, 8)


def test_offload_parameters_flags_offset():
    data = c.NdisOffloadParameters(Flags=0x01020304).to_bytes(1)
    assert u32(data, 16) == 0x01020304
    assert data[15] == 0


@pytest.mark.parametrize("revision", [1, 2, 3])
def test_offload_parameters_round_trip(revision):
    fields = [name for name, offset in PARAMETER_OFFSETS.items()
              if offset < c.NdisOffloadParameters.sizeof(revision)]
    params = c.NdisOffloadParameters(**{name: i + 1 for i, name in enumerate(fields)}, Flags=9)
    assert c.NdisOffloadParameters.from_bytes(params.to_bytes(revision)) == params


def test_offload_parameters_refuse_to_drop_members_a_revision_cannot_carry():
    with pytest.raises(ValueError, match="RscIPv4"):
        c.NdisOffloadParameters(RscIPv4=2).to_bytes(2)
    with pytest.raises(ValueError, match="IPsecV2"):
        c.NdisOffloadParameters(IPsecV2=1).to_bytes(1)
    rev1 = c.NdisOffloadParameters(LsoV2IPv4=1).to_bytes(1)
    decoded = c.NdisOffloadParameters.from_bytes(rev1)
    assert decoded.RscIPv4 == decoded.EncapsulatedPacketTaskOffload == 0  # NO_CHANGE


def test_offload_encapsulation_layout():
    enc = c.NdisOffloadEncapsulation(IPv4=c.EncapsulationIP(1, 2, 14),
                                     IPv6=c.EncapsulationIP(2, 0x10, 22))
    data = enc.to_bytes()
    assert len(data) == 28 and data[:2] == b"\xa8\x01"
    assert struct.unpack_from("<H", data, 2)[0] == 28
    assert [u32(data, o) for o in range(4, 28, 4)] == [1, 2, 14, 2, 0x10, 22]
    assert c.NdisOffloadEncapsulation.from_bytes(data) == enc
    with pytest.raises(c.NdisStructureError):
        c.NdisOffloadEncapsulation.from_bytes(data[:27])
    with pytest.raises(c.NdisStructureError):
        c.NdisOffloadEncapsulation.from_bytes(b"\xa7" + data[1:])
