"""Tests of the NDIS configuration model (nicoffload.model.config).

Expected byte offsets and sizes are written out literally here from the ntddndis.h layouts
(not computed by the model), so a layout mistake in the model fails these tests.
"""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from nicoffload.model import config as c

CHECKSUM_KEYWORDS = ("*IPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4",
                     "*TCPChecksumOffloadIPv6", "*UDPChecksumOffloadIPv4",
                     "*UDPChecksumOffloadIPv6", "*TCPUDPChecksumOffloadIPv4",
                     "*TCPUDPChecksumOffloadIPv6")
ON_OFF_KEYWORDS = ("*LsoV1IPv4", "*LsoV2IPv4", "*LsoV2IPv6", "*RscIPv4", "*RscIPv6",
                   "*EncapsulatedPacketTaskOffload")
IPSEC_KEYWORDS = ("*IPsecOffloadV1IPv4", "*IPsecOffloadV2", "*IPsecOffloadV2IPv4")
ALL_KEYWORDS = CHECKSUM_KEYWORDS + ON_OFF_KEYWORDS + IPSEC_KEYWORDS + ("DisableTaskOffload",)
ALLOWED = {**{k: range(4) for k in CHECKSUM_KEYWORDS + IPSEC_KEYWORDS},
           **{k: range(2) for k in ON_OFF_KEYWORDS + ("DisableTaskOffload",)}}
DEFAULTS = {**{k: 3 for k in CHECKSUM_KEYWORDS + IPSEC_KEYWORDS},
            **{k: 1 for k in ON_OFF_KEYWORDS}, "DisableTaskOffload": 0}
GROUP_COVERS = {"*TCPUDPChecksumOffloadIPv4": ("IPChecksumOffloadIPv4", "TCPChecksumOffloadIPv4",
                                               "UDPChecksumOffloadIPv4"),
                "*TCPUDPChecksumOffloadIPv6": ("TCPChecksumOffloadIPv6",
                                               "UDPChecksumOffloadIPv6")}


def u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


# ---------------------------------------------------------------------------------------------
# Keywords
# ---------------------------------------------------------------------------------------------

def test_keyword_table_is_the_documented_one():
    specs = {spec.name: spec for spec in c.KEYWORD_SPECS}
    assert set(specs) == set(ALL_KEYWORDS)
    for name, spec in specs.items():
        assert list(spec.values) == list(ALLOWED[name]), name
        assert spec.default == DEFAULTS[name], name


@pytest.mark.parametrize("name,value", [(k, v) for k in ALL_KEYWORDS for v in ALLOWED[k]])
def test_every_keyword_accepts_every_documented_value(name, value):
    keywords = c.Keywords.from_registry([f"{name}={value}"])
    fields = GROUP_COVERS.get(name, (name.lstrip("*"),))
    for field in fields:
        assert getattr(keywords, field) == value
    others = {f.name: getattr(keywords, f.name) for f in dataclasses.fields(keywords)
              if f.name not in fields}
    assert others == {k: v for k, v in dataclasses.asdict(c.Keywords()).items()
                      if k not in fields}


@pytest.mark.parametrize("name,value", [(k, v) for k in ALL_KEYWORDS
                                        for v in (-1, max(ALLOWED[k]) + 1, 99, 2**32)])
def test_every_keyword_rejects_values_out_of_range(name, value):
    with pytest.raises(c.KeywordError) as info:
        c.Keywords.from_registry([f"{name}={value}"])
    message = str(info.value)
    assert name in message and str(value) in message
    for allowed in ALLOWED[name]:
        assert f"{allowed} (" in message
    assert "\n" not in message
    assert info.value.keyword == name
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("raw", ["1.0", "on", "", "0x1", "1_0", "true", " "])
@pytest.mark.parametrize("name", ["*LsoV2IPv4", "*TCPChecksumOffloadIPv6", "DisableTaskOffload"])
def test_non_integer_values_are_errors_naming_the_keyword(name, raw):
    with pytest.raises(c.KeywordError, match=r"not an integer") as info:
        c.parse_keyword(f"{name}={raw}")
    assert name in str(info.value)


def test_values_from_mappings_pairs_and_ints():
    assert c.Keywords.from_registry({"*LsoV2IPv4": 0}).LsoV2IPv4 == 0
    assert c.Keywords.from_registry([("*LsoV2IPv6", "0")]).LsoV2IPv6 == 0
    assert c.Keywords.from_registry(["*RscIPv4= 0 "]).RscIPv4 == 0
    with pytest.raises(c.KeywordError):
        c.Keywords.from_registry({"*LsoV2IPv4": True})
    with pytest.raises(c.KeywordError):
        c.Keywords.from_registry({"*LsoV2IPv4": 1.0})


def test_names_match_case_insensitively_but_need_the_star():
    assert c.Keywords.from_registry(["*lsov2ipv4=0"]).LsoV2IPv4 == 0
    assert c.Keywords.from_registry(["disabletaskoffload=1"]).DisableTaskOffload == 1
    assert c.parse_keyword("*TCPUDPCHECKSUMOFFLOADIPV6=2") == ("*TCPUDPChecksumOffloadIPv6", 2)
    with pytest.raises(c.KeywordError, match=r"did you mean '\*LsoV2IPv4'"):
        c.Keywords.from_registry(["LsoV2IPv4=0"])
    with pytest.raises(c.KeywordError, match="unknown keyword"):
        c.Keywords.from_registry(["*DisableTaskOffload=1"])
    with pytest.raises(c.KeywordError, match="unknown keyword"):
        c.Keywords.from_registry(["*JumboPacket=9014"])
    with pytest.raises(c.KeywordError, match="NAME=VALUE"):
        c.Keywords.from_registry(["*LsoV2IPv4"])
    with pytest.raises(c.KeywordError, match="NAME=VALUE"):
        c.Keywords.from_registry(["=1"])


def test_defaults_and_registry_view():
    keywords = c.Keywords.from_registry([])
    assert keywords == c.Keywords()
    view = keywords.as_registry()
    assert view == {k: DEFAULTS[k] for k in ALL_KEYWORDS if k not in GROUP_COVERS}
    assert not keywords.task_offload_disabled


def test_a_repeated_keyword_takes_its_last_value():
    assert c.Keywords.from_registry(["*LsoV1IPv4=0", "*LsoV1IPv4=1"]).LsoV1IPv4 == 1
    assert c.Keywords.from_registry(["*LsoV1IPv4=1", "*lsov1ipv4=0"]).LsoV1IPv4 == 0


def test_constructing_keywords_checks_values():
    with pytest.raises(c.KeywordError):
        c.Keywords(LsoV2IPv4=2)
    with pytest.raises(c.KeywordError):
        c.Keywords(IPChecksumOffloadIPv4=4)


@pytest.mark.parametrize("order", ["grouped_first", "granular_first"])
@pytest.mark.parametrize("group,granular,ip", [
    ("*TCPUDPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4", "IPv4"),
    ("*TCPUDPChecksumOffloadIPv4", "*IPChecksumOffloadIPv4", "IPv4"),
    ("*TCPUDPChecksumOffloadIPv4", "*UDPChecksumOffloadIPv4", "IPv4"),
    ("*TCPUDPChecksumOffloadIPv6", "*TCPChecksumOffloadIPv6", "IPv6"),
    ("*TCPUDPChecksumOffloadIPv6", "*UDPChecksumOffloadIPv6", "IPv6"),
])
def test_granular_beats_grouped_in_either_order(order, group, granular, ip):
    entries = [f"{group}=0", f"{granular}=2"]
    if order == "granular_first":
        entries.reverse()
    keywords = c.Keywords.from_registry(entries)
    for field in GROUP_COVERS[group]:
        expected = 2 if field == granular.lstrip("*") else 0
        assert getattr(keywords, field) == expected, field
    other = "IPv6" if ip == "IPv4" else "IPv4"
    for field in (f for f in dataclasses.asdict(keywords) if f.endswith(other)
                  and "Checksum" in f):
        assert getattr(keywords, field) == 3, field


def test_grouped_ipv4_covers_ip_tcp_udp_and_grouped_ipv6_covers_tcp_udp():
    keywords = c.Keywords.from_registry(["*TCPUDPChecksumOffloadIPv4=1",
                                         "*TCPUDPChecksumOffloadIPv6=2"])
    assert (keywords.IPChecksumOffloadIPv4, keywords.TCPChecksumOffloadIPv4,
            keywords.UDPChecksumOffloadIPv4) == (1, 1, 1)
    assert (keywords.TCPChecksumOffloadIPv6, keywords.UDPChecksumOffloadIPv6) == (2, 2)


# ---------------------------------------------------------------------------------------------
# Keywords -> current config
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,tx,rx", [(0, 0, 0), (1, 1, 0), (2, 0, 1), (3, 1, 1)])
def test_checksum_keyword_values_select_directions(value, tx, rx):
    adapter = c.Adapter.from_keywords([f"*TCPChecksumOffloadIPv6={value}",
                                       f"*IPChecksumOffloadIPv4={value}"])
    cs = adapter.current_config().Checksum
    assert (cs.IPv6Transmit.TcpChecksum, cs.IPv6Receive.TcpChecksum) == (tx, rx)
    assert (cs.IPv4Transmit.IpChecksum, cs.IPv4Receive.IpChecksum) == (tx, rx)
    assert cs.IPv6Transmit.UdpChecksum == cs.IPv6Receive.UdpChecksum == 1
    assert cs.IPv4Transmit.TcpChecksum == cs.IPv4Receive.TcpChecksum == 1


def test_default_current_config_reports_every_hardware_offload():
    adapter = c.Adapter()
    assert adapter.current_config() == adapter.hardware_capabilities()
    assert adapter.default_offload_configuration == adapter.current_config()
    assert adapter.indications == ()


@pytest.mark.parametrize("keyword,path", [
    ("*LsoV1IPv4", "LsoV1"), ("*LsoV2IPv4", "LsoV2.IPv4"), ("*LsoV2IPv6", "LsoV2.IPv6"),
    ("*RscIPv4", "Rsc.IPv4"), ("*RscIPv6", "Rsc.IPv6"),
    ("*EncapsulatedPacketTaskOffload", "EncapsulatedPacketTaskOffloadGre"),
])
def test_an_offload_keyword_of_0_zeroes_its_structure(keyword, path):
    def walk(offload):
        for part in path.split("."):
            offload = getattr(offload, part)
        return offload
    on = walk(c.Adapter.from_keywords([f"{keyword}=1"]).current_config())
    off = walk(c.Adapter.from_keywords([f"{keyword}=0"]).current_config())
    assert off == type(off)()
    assert on != type(on)()


def test_disable_task_offload_turns_every_offload_off():
    adapter = c.bind(["DisableTaskOffload=1"])
    assert adapter.current_config() == c.NdisOffload()
    assert adapter.datapath() == c.Datapath()
    assert not any(getattr(adapter.datapath(), name) for name in c.OFFLOAD_SWITCHES)
    assert adapter.indications == ()  # bind must not issue OID_OFFLOAD_ENCAPSULATION
    assert adapter.keywords().LsoV2IPv4 == 1  # the keywords themselves are kept
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION)
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv4=2))
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED
    assert adapter.indications == ()
    assert adapter.hardware_capabilities() == c.NicCapabilities().hardware_offload()


def test_disable_task_offload_0_changes_nothing():
    assert c.bind(["DisableTaskOffload=0"]).datapath() == c.bind([]).datapath()


@pytest.mark.parametrize("keyword", IPSEC_KEYWORDS)
@pytest.mark.parametrize("value", range(4))
def test_ipsec_keywords_are_accepted_but_ipsec_is_never_supported(keyword, value):
    adapter = c.bind([f"{keyword}={value}"])
    assert adapter.keywords().as_registry()[keyword] == value
    for offload in (adapter.current_config(), adapter.hardware_capabilities()):
        assert offload.IPsecV1 == c.NdisIpsecOffloadV1()
        assert offload.IPsecV2 == c.NdisIpsecOffloadV2()
        assert offload.Flags == 0


# ---------------------------------------------------------------------------------------------
# Hardware capabilities and the combination rules
# ---------------------------------------------------------------------------------------------

def test_hardware_capabilities_are_what_our_nic_has():
    hw = c.NicCapabilities().hardware_offload()
    enc = 0x02 | 0x04 | 0x10
    for part in (hw.Checksum.IPv4Transmit, hw.Checksum.IPv4Receive):
        assert part == c.ChecksumIPv4(Encapsulation=enc, IpOptionsSupported=1,
                                      TcpOptionsSupported=1, TcpChecksum=1, UdpChecksum=1,
                                      IpChecksum=1)
    for part in (hw.Checksum.IPv6Transmit, hw.Checksum.IPv6Receive):
        assert part == c.ChecksumIPv6(Encapsulation=enc, IpExtensionHeadersSupported=1,
                                      TcpOptionsSupported=1, TcpChecksum=1, UdpChecksum=1)
    assert hw.LsoV1.IPv4 == c.LsoV1IPv4(Encapsulation=enc, MaxOffLoadSize=65535,
                                        MinSegmentCount=2, TcpOptions=1, IpOptions=1)
    assert hw.LsoV2.IPv4 == c.LsoV2IPv4(Encapsulation=enc, MaxOffLoadSize=262144,
                                        MinSegmentCount=2)
    assert hw.LsoV2.IPv6 == c.LsoV2IPv6(Encapsulation=enc, MaxOffLoadSize=262144,
                                        MinSegmentCount=2, IpExtensionHeadersSupported=1,
                                        TcpOptionsSupported=1)
    assert hw.Rsc.IPv4.Enabled == hw.Rsc.IPv6.Enabled == 1
    assert hw.EncapsulatedPacketTaskOffloadGre == c.NdisEncapsulatedPacketTaskOffload(
        TransmitChecksumOffloadSupported=0xF, ReceiveChecksumOffloadSupported=0xF,
        LsoV2Supported=0xF, RssSupported=0, VmqSupported=0, MaxHeaderSizeSupported=256)
    assert hw.IPsecV1 == c.NdisIpsecOffloadV1() and hw.IPsecV2 == c.NdisIpsecOffloadV2()
    assert hw.Flags == 0


def test_capability_parameters_reach_the_structures_and_the_datapath():
    caps = c.NicCapabilities(lso_v1_max_offload_size=64000, lso_v2_max_offload_size=131072,
                             min_segment_count=3, nvgre_max_header_size=192)
    hw = caps.hardware_offload()
    assert hw.LsoV1.IPv4.MaxOffLoadSize == 64000
    assert hw.LsoV2.IPv4.MaxOffLoadSize == hw.LsoV2.IPv6.MaxOffLoadSize == 131072
    assert hw.LsoV1.IPv4.MinSegmentCount == hw.LsoV2.IPv6.MinSegmentCount == 3
    assert hw.EncapsulatedPacketTaskOffloadGre.MaxHeaderSizeSupported == 192
    dp = c.bind([], caps).datapath()
    assert (dp.lso_v1_max_offload_size, dp.lso_v2_ipv4_max_offload_size,
            dp.lso_v2_ipv6_max_offload_size, dp.min_segment_count,
            dp.nvgre_max_header_size) == (64000, 131072, 131072, 3, 192)


@pytest.mark.parametrize("kwargs", [dict(lso_v1_max_offload_size=65536),
                                    dict(lso_v1_max_offload_size=0),
                                    dict(lso_v2_max_offload_size=0),
                                    dict(lso_v2_max_offload_size=2**32),
                                    dict(min_segment_count=0),
                                    dict(nvgre_max_header_size=0),
                                    dict(nvgre_ip_versions=0),
                                    dict(nvgre_ip_versions=0x10),
                                    dict(min_segment_count=2.0)])
def test_bad_capability_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        c.NicCapabilities(**kwargs)


def test_our_capabilities_keep_every_combination_rule():
    assert c.combination_violations(c.NicCapabilities().hardware_offload()) == ()
    caps = c.NicCapabilities(rsc=False, nvgre=False)
    assert c.combination_violations(caps.hardware_offload()) == ()


def _hw_with(**paths):
    offload = c.NicCapabilities().hardware_offload()
    for path, value in paths.items():
        parts = path.split("__")

        def set_in(obj, names):
            if len(names) == 1:
                return dataclasses.replace(obj, **{names[0]: value})
            return dataclasses.replace(obj, **{names[0]: set_in(getattr(obj, names[0]),
                                                                names[1:])})
        offload = set_in(offload, parts)
    return offload


@pytest.mark.parametrize("paths,needle", [
    (dict(Checksum__IPv4Transmit__TcpChecksum=0), "LSOv1 requires IPv4 and TCP"),
    (dict(Checksum__IPv4Transmit__IpChecksum=0), "LSOv2 over IPv4 requires"),
    (dict(Checksum__IPv6Transmit__TcpChecksum=0), "LSOv2 over IPv6 requires TCP"),
    (dict(LsoV1__IPv4__IpOptions=0), "LSOv1 requires TCP options and IP options"),
    (dict(LsoV1__IPv4__MaxOffLoadSize=0x10001), "MaxOffLoadSize"),
    (dict(LsoV2__IPv6__IpExtensionHeadersSupported=0), "extension headers and TCP options"),
    (dict(Checksum__IPv4Receive__IpOptionsSupported=0), "IPv4Receive: a TCP checksum requires"),
    (dict(Checksum__IPv6Receive__TcpOptionsSupported=0), "IPv6Receive: a TCP checksum requires"),
    (dict(Checksum__IPv6Transmit__IpExtensionHeadersSupported=0), "extension headers"),
    (dict(LsoV2__IPv4__Encapsulation=c.NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED), "802_3"),
    (dict(IPsecV2__Encapsulation=c.NDIS_ENCAPSULATION_IEEE_802_3), "IPsec and LSO"),
])
def test_combination_rules_catch_broken_capabilities(paths, needle):
    violations = c.combination_violations(_hw_with(**paths))
    assert any(needle in v for v in violations), violations


def test_lso_stays_on_with_checksum_offload_off():
    """DESIGN: LSO fills the IPv4 and TCP checksums of its segments even then."""
    adapter = c.bind(["*TCPUDPChecksumOffloadIPv4=0", "*TCPUDPChecksumOffloadIPv6=0"])
    offload = adapter.current_config()
    assert offload.Checksum.IPv4Transmit == c.ChecksumIPv4()
    assert offload.LsoV1.IPv4.Encapsulation and offload.LsoV2.IPv6.Encapsulation
    assert c.combination_violations(offload, capabilities=False) == ()
    dp = adapter.datapath()
    assert dp.lso_v1_ipv4 and dp.lso_v2_ipv4 and dp.lso_v2_ipv6
    assert dp.lso_v1_enabled and dp.lso_v2_enabled
    assert not (dp.tx_tcp_ipv4 or dp.tx_ipv4_checksum or dp.tx_tcp_ipv6)


def test_ipsec_with_lso_is_a_violation_of_a_current_config_too():
    offload = c.bind([]).current_config().replace(
        IPsecV1=c.NdisIpsecOffloadV1(Supported=c.IpsecV1Supported(Encapsulation=2)))
    assert c.combination_violations(offload, capabilities=False)


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


def test_hardware_capabilities_bytes_at_known_offsets():
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


# ---------------------------------------------------------------------------------------------
# OID_TCP_OFFLOAD_PARAMETERS
# ---------------------------------------------------------------------------------------------

CHECKSUM_PARAMETER_KEYWORDS = {"IPv4Checksum": "IPChecksumOffloadIPv4",
                               "TCPIPv4Checksum": "TCPChecksumOffloadIPv4",
                               "UDPIPv4Checksum": "UDPChecksumOffloadIPv4",
                               "TCPIPv6Checksum": "TCPChecksumOffloadIPv6",
                               "UDPIPv6Checksum": "UDPChecksumOffloadIPv6"}
CHECKSUM_PARAMETER_SWITCHES = {"IPv4Checksum": "ipv4_checksum", "TCPIPv4Checksum": "tcp_ipv4",
                               "UDPIPv4Checksum": "udp_ipv4", "TCPIPv6Checksum": "tcp_ipv6",
                               "UDPIPv6Checksum": "udp_ipv6"}


@pytest.mark.parametrize("field", CHECKSUM_PARAMETER_KEYWORDS)
@pytest.mark.parametrize("value,keyword,tx,rx", [(0, 3, True, True), (1, 0, False, False),
                                                 (2, 1, True, False), (3, 2, False, True),
                                                 (4, 3, True, True)])
def test_checksum_parameters(field, value, keyword, tx, rx):
    adapter = c.bind([])
    before = adapter.datapath()
    indication = adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: value}))
    assert getattr(adapter.keywords(), CHECKSUM_PARAMETER_KEYWORDS[field]) == keyword
    switch = CHECKSUM_PARAMETER_SWITCHES[field]
    dp = adapter.datapath()
    assert (getattr(dp, f"tx_{switch}"), getattr(dp, f"rx_{switch}")) == (tx, rx)
    for other in c.OFFLOAD_SWITCHES:
        if not other.endswith(switch) or other.startswith(("lso", "rsc")):
            assert getattr(dp, other) == getattr(before, other), other
    assert indication.StatusBuffer == adapter.current_config()


@pytest.mark.parametrize("field,keyword,switch", [
    ("LsoV1", "LsoV1IPv4", "lso_v1_ipv4"), ("LsoV2IPv4", "LsoV2IPv4", "lso_v2_ipv4"),
    ("LsoV2IPv6", "LsoV2IPv6", "lso_v2_ipv6"), ("RscIPv4", "RscIPv4", "rsc_ipv4"),
    ("RscIPv6", "RscIPv6", "rsc_ipv6")])
def test_lso_and_rsc_parameters(field, keyword, switch):
    adapter = c.bind([])
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 1}))
    assert getattr(adapter.keywords(), keyword) == 0
    assert getattr(adapter.datapath(), switch) is False
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 0}))
    assert getattr(adapter.datapath(), switch) is False
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 2}))
    assert getattr(adapter.keywords(), keyword) == 1
    assert getattr(adapter.datapath(), switch) is True
    assert adapter.keywords().as_registry()[f"*{keyword}"] == 1
    assert len(adapter.indications) == 2 + 3


ALL_PARAMETER_FIELDS = [name for name in PARAMETER_OFFSETS if name != "EncapsulationTypes"]
MAX_VALID = {**{f: 4 for f in CHECKSUM_PARAMETER_KEYWORDS}, "IPsecV1": 4, "IPsecV2": 4,
             "IPsecV2IPv4": 4}


@pytest.mark.parametrize("field", ALL_PARAMETER_FIELDS)
@pytest.mark.parametrize("excess", [1, 100])
def test_undefined_parameter_values_are_invalid_data(field, excess):
    value = min(MAX_VALID.get(field, 2) + excess, 255)
    adapter = c.bind([])
    before_state, before_count = adapter.state, len(adapter.indications)
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(**{"LsoV2IPv4": 1, field: value}))
    error = info.value
    assert error.status == c.NDIS_STATUS_INVALID_DATA
    assert error.field == field and field in str(error)
    assert "NDIS_STATUS_INVALID_DATA" in str(error)
    assert adapter.state == before_state and len(adapter.indications) == before_count


def test_flags_and_encapsulation_types_are_checked():
    adapter = c.bind([])
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(Flags=1))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_INVALID_DATA, "Flags")
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(EncapsulationTypes=4))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_INVALID_DATA,
                                                     "EncapsulationTypes")
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(
            EncapsulatedPacketTaskOffload=1, EncapsulationTypes=c.NDIS_ENCAPSULATION_TYPE_VXLAN))
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED


@pytest.mark.parametrize("field", ["IPsecV1", "IPsecV2", "IPsecV2IPv4"])
@pytest.mark.parametrize("value", [2, 3, 4])
def test_enabling_ipsec_is_not_supported(field, value):
    adapter = c.bind([])
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: value}))
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED and info.value.field == field
    assert len(adapter.indications) == 2


@pytest.mark.parametrize("field,keyword", [("IPsecV1", "*IPsecOffloadV1IPv4"),
                                           ("IPsecV2", "*IPsecOffloadV2"),
                                           ("IPsecV2IPv4", "*IPsecOffloadV2IPv4")])
def test_disabling_ipsec_succeeds_and_updates_the_keyword(field, keyword):
    adapter = c.bind([])
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 1}))
    assert adapter.keywords().as_registry()[keyword] == 0
    assert adapter.current_config().IPsecV1 == c.NdisIpsecOffloadV1()


@pytest.mark.parametrize("field", ["TcpConnectionIPv4", "TcpConnectionIPv6"])
def test_tcp_chimney_can_be_disabled_not_enabled(field):
    adapter = c.bind([])
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 1}))
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 2}))
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED


def test_enabling_what_the_build_lacks_is_not_supported():
    caps = c.NicCapabilities(rsc=False, nvgre=False)
    adapter = c.bind(["*RscIPv4=1"], caps)
    assert adapter.current_config().Rsc == c.NdisTcpRecvSegCoalesceOffload()
    assert adapter.hardware_capabilities().EncapsulatedPacketTaskOffloadGre == \
        c.NdisEncapsulatedPacketTaskOffload()
    for params in (c.NdisOffloadParameters(RscIPv4=2), c.NdisOffloadParameters(RscIPv6=2),
                   c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=1)):
        with pytest.raises(c.OidError) as info:
            adapter.set_offload_parameters(params)
        assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED
    adapter.set_offload_parameters(c.NdisOffloadParameters(RscIPv4=1))  # disabling is fine


def test_nvgre_is_enabled_by_default_but_operational_only_when_turned_on():
    adapter = c.Adapter.from_keywords([])
    adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION)
    assert adapter.current_config().EncapsulatedPacketTaskOffloadGre.MaxHeaderSizeSupported
    assert adapter.datapath().encap is False
    adapter.set_offload_parameters(c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=1))
    assert adapter.datapath().encap is True
    adapter.set_offload_parameters(c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=2))
    assert adapter.datapath().encap is False
    assert adapter.keywords().EncapsulatedPacketTaskOffload == 0
    assert adapter.current_config().EncapsulatedPacketTaskOffloadGre == \
        c.NdisEncapsulatedPacketTaskOffload()
    adapter.set_offload_parameters(c.NdisOffloadParameters(
        EncapsulatedPacketTaskOffload=1, EncapsulationTypes=c.NDIS_ENCAPSULATION_TYPE_GRE_MAC))
    assert adapter.keywords().EncapsulatedPacketTaskOffload == 1 and adapter.datapath().encap


def test_a_refused_request_changes_nothing():
    adapter = c.bind([])
    state = adapter.state
    with pytest.raises(c.OidError):
        adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv4=1, RscIPv6=9))
    with pytest.raises(c.OidError):
        adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv4=1, IPsecV2=2))
    assert adapter.state == state and adapter.datapath().lso_v2_ipv4


def test_parameters_as_bytes():
    adapter = c.bind([])
    adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv6=1).to_bytes(1))
    assert adapter.datapath().lso_v2_ipv6 is False
    adapter.set_offload_parameters(bytearray(c.NdisOffloadParameters(RscIPv6=1).to_bytes(3)))
    assert adapter.datapath().rsc_ipv6 is False
    bad = bytearray(c.NdisOffloadParameters().to_bytes(3))
    bad[0] = c.NDIS_OBJECT_TYPE_OFFLOAD
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(bytes(bad))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_INVALID_DATA, "Header")
    with pytest.raises(c.OidError):
        adapter.set_offload_parameters(c.NdisOffloadParameters().to_bytes(3)[:20])


def test_keyword_view_follows_the_oid():
    adapter = c.bind(["*TCPUDPChecksumOffloadIPv4=3"])
    adapter.set_offload_parameters(c.NdisOffloadParameters(
        IPv4Checksum=c.NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED,
        UDPIPv4Checksum=c.NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED,
        LsoV1=c.NDIS_OFFLOAD_PARAMETERS_LSOV1_DISABLED))
    view = adapter.keywords().as_registry()
    assert view["*IPChecksumOffloadIPv4"] == 1
    assert view["*UDPChecksumOffloadIPv4"] == 2
    assert view["*TCPChecksumOffloadIPv4"] == 3
    assert view["*LsoV1IPv4"] == 0
    # A fresh adapter initialized from the updated keywords has the same configuration.
    again = c.bind(view)
    assert again.current_config() == adapter.current_config()


# ---------------------------------------------------------------------------------------------
# OID_OFFLOAD_ENCAPSULATION, activation and the datapath view
# ---------------------------------------------------------------------------------------------

def test_receive_offloads_wait_for_offload_encapsulation():
    adapter = c.Adapter.from_keywords([])
    dp = adapter.datapath()
    assert not dp.rx_active and not dp.rx_active_ipv4 and not dp.rx_active_ipv6
    assert not any(getattr(dp, n) for n in c.OFFLOAD_SWITCHES if n.startswith(("rx_", "rsc_")))
    assert dp.tx_tcp_ipv4 and dp.lso_v2_ipv6
    assert not dp.encap
    adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation(
        IPv6=c.EncapsulationIP(c.NDIS_OFFLOAD_SET_ON, c.NDIS_ENCAPSULATION_IEEE_802_3, 14)))
    dp = adapter.datapath()
    assert dp.rx_active and dp.rx_active_ipv6 and not dp.rx_active_ipv4
    assert dp.rx_tcp_ipv6 and dp.rsc_ipv6 and not dp.rx_tcp_ipv4 and not dp.rsc_ipv4


def test_offload_encapsulation_off_deactivates_that_ip_version():
    adapter = c.bind([])
    adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation(
        IPv4=c.EncapsulationIP(Enabled=c.NDIS_OFFLOAD_SET_OFF)))
    offload = adapter.current_config()
    assert offload.Checksum.IPv4Transmit == c.ChecksumIPv4()
    assert offload.LsoV1.IPv4 == c.LsoV1IPv4() and offload.LsoV2.IPv4 == c.LsoV2IPv4()
    assert offload.Rsc.IPv4.Enabled == 0
    assert offload.Checksum.IPv6Receive.TcpChecksum == 1 and offload.LsoV2.IPv6.Encapsulation
    dp = adapter.datapath()
    assert not any(getattr(dp, n) for n in c.IPV4_SWITCHES)
    assert all(getattr(dp, n) for n in c.IPV6_SWITCHES)
    assert adapter.keywords() == c.Keywords()  # configuration is kept ...
    adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION)  # ... and comes back
    assert adapter.current_config() == adapter.hardware_capabilities()


def test_offload_encapsulation_no_change_and_query():
    adapter = c.bind([])
    assert adapter.offload_encapsulation() == c.BIND_ENCAPSULATION
    indication = adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation())
    assert adapter.offload_encapsulation() == c.BIND_ENCAPSULATION
    assert indication.StatusBuffer == adapter.current_config()
    assert indication.Oid == "OID_OFFLOAD_ENCAPSULATION"
    assert c.Adapter().offload_encapsulation() == c.NdisOffloadEncapsulation()


@pytest.mark.parametrize("kind", [c.NDIS_ENCAPSULATION_IEEE_802_3,
                                  c.NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED,
                                  c.NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q,
                                  c.SUPPORTED_ENCAPSULATION])
def test_supported_encapsulation_types(kind):
    adapter = c.Adapter()
    adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation(
        IPv4=c.EncapsulationIP(c.NDIS_OFFLOAD_SET_ON, kind, 14)))
    assert adapter.datapath().rx_active_ipv4


@pytest.mark.parametrize("ip", ["IPv4", "IPv6"])
@pytest.mark.parametrize("part,field", [
    (c.EncapsulationIP(3, 2, 14), "Enabled"),
    (c.EncapsulationIP(1, 0, 14), "EncapsulationType"),
    (c.EncapsulationIP(1, c.NDIS_ENCAPSULATION_NULL, 14), "EncapsulationType"),
    (c.EncapsulationIP(1, c.NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB, 14),
     "EncapsulationType"),
    (c.EncapsulationIP(1, 0x22, 14), "EncapsulationType"),
    (c.EncapsulationIP(1, 2, 0), "HeaderSize"),
])
def test_bad_offload_encapsulation_is_invalid_parameter(ip, part, field):
    adapter = c.Adapter()
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation(**{ip: part}))
    assert info.value.status == c.NDIS_STATUS_INVALID_PARAMETER
    assert info.value.field == f"{ip}.{field}"
    assert adapter.indications == () and not adapter.datapath().rx_active


def test_offload_encapsulation_as_bytes():
    adapter = c.Adapter()
    adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION.to_bytes())
    assert adapter.datapath().rx_active_ipv4 and adapter.datapath().rx_active_ipv6
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION.to_bytes()[:20])
    assert info.value.status == c.NDIS_STATUS_INVALID_PARAMETER


def test_bind_issues_encapsulation_then_nvgre_and_everything_is_live():
    adapter = c.bind([])
    assert [i.Oid for i in adapter.indications] == ["OID_OFFLOAD_ENCAPSULATION",
                                                    "OID_TCP_OFFLOAD_PARAMETERS"]
    dp = adapter.datapath()
    assert all(getattr(dp, name) for name in c.OFFLOAD_SWITCHES)
    assert dp.rx_active
    assert c.bind([], nvgre=False).datapath().encap is False
    assert len(c.bind([], nvgre=False).indications) == 1
    no_nvgre = c.bind(["*EncapsulatedPacketTaskOffload=0"])
    assert len(no_nvgre.indications) == 1 and not no_nvgre.datapath().encap


def test_datapath_feeds_the_lso_and_checksum_models():
    dp = c.bind(["*LsoV2IPv6=0"], c.NicCapabilities(min_segment_count=3)).datapath()
    limits = dp.lso_limits()
    assert limits["lso_v2_ipv6"] is False and limits["lso_v1_ipv4"] is True
    assert limits["v1_ipv4_max_offload_size"] == 65535
    assert limits["v2_ipv4_min_segment_count"] == limits["v2_ipv6_min_segment_count"] == 3
    assert dp.rx_active  # the checksum model reads rx_active and the rx_*/tx_* names
    lso = pytest.importorskip("nicoffload.model.lso")
    made = lso.LsoLimits(**limits)
    assert made.offload(v2=True, ipv6=True) == (False, 262144, 3)


def test_bind_reports_keyword_errors():
    with pytest.raises(c.KeywordError):
        c.bind(["*RscIPv4=2"])


# ---------------------------------------------------------------------------------------------
# Status indications
# ---------------------------------------------------------------------------------------------

def test_one_status_indication_per_successful_set():
    adapter = c.Adapter()
    requests = [
        lambda: adapter.set_offload_encapsulation(c.BIND_ENCAPSULATION),
        lambda: adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv4=1)),
        lambda: adapter.set_offload_parameters(c.NdisOffloadParameters()),  # no change
        lambda: adapter.set_offload_parameters(c.NdisOffloadParameters(RscIPv4=1, RscIPv6=1)),
        lambda: adapter.set_offload_encapsulation(c.NdisOffloadEncapsulation(
            IPv6=c.EncapsulationIP(Enabled=c.NDIS_OFFLOAD_SET_OFF))),
    ]
    configs = []
    for count, request in enumerate(requests, start=1):
        indication = request()
        assert len(adapter.indications) == count
        assert adapter.indications[-1] is indication
        assert indication.StatusCode == c.NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG == 0x40020006
        assert indication.StatusBuffer == adapter.current_config()
        configs.append(indication.StatusBuffer)
    assert configs[1].LsoV2.IPv4.Encapsulation == 0
    assert configs[2] == configs[1]
    assert configs[3].Rsc == c.NdisTcpRecvSegCoalesceOffload()
    assert configs[4].LsoV2.IPv6 == c.LsoV2IPv6()
    with pytest.raises(c.OidError):
        adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV1=7))
    assert len(adapter.indications) == len(requests)
    # Encodable at every revision, as a status buffer must be.
    for revision in (1, 2, 3):
        assert c.NdisOffload.from_bytes(configs[-1].to_bytes(revision)) == \
            configs[-1].truncated(revision)


def test_the_model_does_not_import_hardware_packages():
    import sys
    import subprocess
    code = ("import sys, nicoffload.model.config; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('amaranth', 'cocotb') "
            "or m.startswith('nicoffload.hdl')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


#: Every name ``nicoffload.model.config`` had when it was one module (before issue 8 made it
#: a package): each stays importable from the package.
NAMES_OF_THE_SINGLE_MODULE = """
    ALL_ENCAPSULATED_IP_VERSIONS Adapter AdapterState BIND_ENCAPSULATION BIND_NVGRE_ON BITS
    BOOLEAN ChecksumIPv4 ChecksumIPv6 Datapath EncapsulationIP GROUPED_KEYWORDS IPV4_SWITCHES
    IPV6_SWITCHES IpsecV1AH IpsecV1ESP IpsecV1Supported KEYWORD_SPECS KeywordError KeywordSpec
    Keywords LsoV1IPv4 LsoV2IPv4 LsoV2IPv6 NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV4
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV6
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_NOT_SUPPORTED
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV4
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV6 NDIS_ENCAPSULATION_IEEE_802_3
    NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB
    NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED NDIS_ENCAPSULATION_NOT_SUPPORTED
    NDIS_ENCAPSULATION_NULL NDIS_ENCAPSULATION_TYPE_GRE_MAC NDIS_ENCAPSULATION_TYPE_VXLAN
    NDIS_OBJECT_TYPE_DEFAULT NDIS_OBJECT_TYPE_OFFLOAD NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION
    NDIS_OFFLOAD_ENCAPSULATION_REVISION_1 NDIS_OFFLOAD_NOT_SUPPORTED
    NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_DISABLED
    NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_ENABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_AND_ESP_ENABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_ENABLED NDIS_OFFLOAD_PARAMETERS_IPSECV2_DISABLED
    NDIS_OFFLOAD_PARAMETERS_IPSECV2_ESP_ENABLED NDIS_OFFLOAD_PARAMETERS_LSOV1_DISABLED
    NDIS_OFFLOAD_PARAMETERS_LSOV1_ENABLED NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED
    NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED NDIS_OFFLOAD_PARAMETERS_NO_CHANGE
    NDIS_OFFLOAD_PARAMETERS_REVISION_1 NDIS_OFFLOAD_PARAMETERS_REVISION_2
    NDIS_OFFLOAD_PARAMETERS_REVISION_3 NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED
    NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED
    NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED
    NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED NDIS_OFFLOAD_REVISION_1 NDIS_OFFLOAD_REVISION_2
    NDIS_OFFLOAD_REVISION_3 NDIS_OFFLOAD_SET_NO_CHANGE NDIS_OFFLOAD_SET_OFF
    NDIS_OFFLOAD_SET_ON NDIS_OFFLOAD_SUPPORTED NDIS_STATUS_INVALID_DATA
    NDIS_STATUS_INVALID_PARAMETER NDIS_STATUS_NOT_SUPPORTED
    NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG NdisEncapsulatedPacketTaskOffload
    NdisIpsecOffloadV1 NdisIpsecOffloadV2 NdisObjectHeader NdisOffload
    NdisOffloadEncapsulation NdisOffloadParameters NdisStruct NdisStructureError
    NdisTcpIpChecksumOffload NdisTcpLargeSendOffloadV1 NdisTcpLargeSendOffloadV2
    NdisTcpRecvSegCoalesceOffload NicCapabilities OFFLOAD_SWITCHES OidError RscIP STATUS_NAMES
    STRUCT SUPPORTED_ENCAPSULATION StatusIndication UCHAR ULONG USHORT _BitFields
    _CHECKSUM_KEYWORDS _CHECKSUM_PARAMETER_VALUES _CHECKSUM_VALUES _DECIMAL _IPSEC_VALUES
    _Nested _OID_ENCAPSULATION _OID_PARAMETERS _ON_OFF_KEYWORDS _ON_OFF_VALUES
    _PARAMETER_RULES _ParameterRule _REGISTRY_PAGE _RESOLVED_SPECS _SCALAR_FORMATS
    _SPECS_BY_FOLDED_NAME _Scalar _checksum_rule _ipsec_rule _ipsec_values _on_off_values
    _refuse _round_up _switch_rule apply_offload_encapsulation apply_offload_parameters bind
    combination_violations configured_switches current_offload datapath_view keyword_spec
    keyword_value parse_keyword parse_keywords reported_switches
""".split()


def test_every_name_of_the_single_module_is_still_importable():
    missing = [name for name in NAMES_OF_THE_SINGLE_MODULE if not hasattr(c, name)]
    assert missing == []


def test_each_module_of_the_package_is_short_and_cites_its_ndis_pages():
    import importlib
    import pathlib
    for path in sorted(pathlib.Path(c.__file__).parent.glob("*.py")):
        module = importlib.import_module(f"nicoffload.model.config.{path.stem}"
                                         if path.stem != "__init__" else "nicoffload.model.config")
        assert len(path.read_text().splitlines()) < 1000, path.name
        assert module.__doc__ and ".md``" in module.__doc__, path.name
