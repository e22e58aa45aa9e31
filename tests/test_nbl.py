"""NBL info bit layouts (model/nbl.py): positions as the NDIS headers declare them."""

import random

import pytest

from nicoffload.model import nbl

ALL_WORDS = [nbl.ChecksumTx, nbl.ChecksumRx, nbl.LsoV1Transmit, nbl.LsoV1TransmitComplete,
             nbl.LsoV2Transmit, nbl.LsoV2TransmitComplete, nbl.SendSupplemental, nbl.RscInfo,
             nbl.RscTcpTimestampDelta, nbl.TxCompletion]


@pytest.mark.parametrize("word", ALL_WORDS, ids=lambda w: w.__name__)
def test_round_trip(word):
    rng = random.Random(word.__name__)
    used = sum(w for _, w in word.FIELDS)
    for _ in range(500):
        value = rng.getrandbits(used)
        decoded = word.from_int(value)
        assert decoded.to_int() == value
        assert word(**decoded.to_dict()) == decoded


def test_field_positions_from_ndis_headers():
    # NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Transmit: IsIPv4 bit 0 ... TcpHeaderOffset 16..25
    assert nbl.ChecksumTx.offsets() == {
        "IsIPv4": (0, 1), "IsIPv6": (1, 1), "TcpChecksum": (2, 1), "UdpChecksum": (3, 1),
        "IpHeaderChecksum": (4, 1), "Reserved": (5, 11), "TcpHeaderOffset": (16, 10)}
    rx = nbl.ChecksumRx.offsets()
    assert [rx[n][0] for n in ("TcpChecksumFailed", "UdpChecksumFailed", "IpChecksumFailed",
                               "TcpChecksumSucceeded", "UdpChecksumSucceeded",
                               "IpChecksumSucceeded", "Loopback", "TcpChecksumValueInvalid",
                               "IpChecksumValueInvalid")] == list(range(9))
    assert nbl.LsoV2Transmit.offsets() == {"MSS": (0, 20), "TcpHeaderOffset": (20, 10),
                                           "Type": (30, 1), "IPVersion": (31, 1)}
    assert nbl.SendSupplemental.offsets()["TcpHeaderRelativeOffset"] == (16, 10)
    assert nbl.SendSupplemental.offsets()["IsInnerIPv6"] == (26, 1)
    assert nbl.RscInfo.offsets() == {"CoalescedSegCount": (0, 16), "DupAckCount": (16, 16)}


def test_known_words():
    # IPv4 TCP with IP header checksum, TCP header at 34 (Ethernet 14 + IPv4 20).
    assert nbl.ChecksumTx(IsIPv4=1, TcpChecksum=1, IpHeaderChecksum=1,
                          TcpHeaderOffset=34).to_int() == 0x00220015
    # LSOv2 over IPv6: MSS 1440, TCP at 54, Type V2 (bit 30), IPVersion IPv6 (bit 31).
    word = nbl.LsoV2Transmit(MSS=1440, TcpHeaderOffset=54, Type=nbl.LSO_TYPE_V2,
                             IPVersion=nbl.LSO_IPV6).to_int()
    assert word == 0xC0000000 | (54 << 20) | 1440
    assert isinstance(nbl.decode_lso_transmit(word), nbl.LsoV2Transmit)
    # LSOv1: Type 0, MSS 1460 at 34.
    v1 = nbl.LsoV1Transmit(MSS=1460, TcpHeaderOffset=34).to_int()
    assert v1 == (34 << 20) | 1460
    assert isinstance(nbl.decode_lso_transmit(v1), nbl.LsoV1Transmit)
    assert nbl.decode_lso_transmit(0) is None
    # LSOv2 completion: Type=1 at bit 30, everything else 0.
    assert nbl.LsoV2TransmitComplete(Type=1).to_int() == 0x40000000
    assert nbl.LsoV1TransmitComplete(TcpPayload=65495).to_int() == 65495
    # RX: IP and TCP succeeded.
    assert nbl.ChecksumRx(IpChecksumSucceeded=1, TcpChecksumSucceeded=1).to_int() == 0x28


def test_out_of_range_rejected():
    with pytest.raises(ValueError, match="MSS"):
        nbl.LsoV2Transmit(MSS=1 << 20)
    with pytest.raises(ValueError, match="TcpHeaderOffset"):
        nbl.ChecksumTx(TcpHeaderOffset=1024)
    with pytest.raises(ValueError):
        nbl.ChecksumRx.from_int(1 << 32)


def test_sideband_packing():
    csum = nbl.ChecksumTx(IsIPv6=1, UdpChecksum=1)
    lso = nbl.LsoV2Transmit(MSS=1000, TcpHeaderOffset=54, Type=1, IPVersion=1)
    supp = nbl.SendSupplemental(IsEncapsulatedPacket=1, InnerFrameOffset=42)
    value = nbl.TxUser.pack(csum, lso, supp, 1514)
    assert nbl.TxUser.width() == 128
    assert value & 0xFFFFFFFF == csum.to_int()
    assert (value >> 32) & 0xFFFFFFFF == lso.to_int()
    assert value >> 96 == 1514
    got = nbl.TxUser.unpack(value)
    assert got == (csum, lso.to_int(), supp, 1514)
    assert nbl.TxUser.for_frame(bytes(60), csum, lso, supp) == nbl.TxUser.pack(csum, lso, supp, 60)
    assert nbl.TxUser.with_length(value, 9000) >> 96 == 9000
    assert nbl.TxUser.with_length(value, 9000) & ((1 << 96) - 1) == value & ((1 << 96) - 1)
    rx = (nbl.ChecksumRx(TcpChecksumFailed=1), nbl.RscInfo(CoalescedSegCount=3, DupAckCount=1),
          nbl.RscTcpTimestampDelta(RscTcpTimestampDelta=77))
    assert nbl.RxUser.unpack(nbl.RxUser.pack(*rx)) == rx
