"""Tests of the adapter (nicoffload.model.config.adapter): what the NIC has built and reports,
the combination rules, bind, the datapath view, and the package as a whole.
"""

from __future__ import annotations

import dataclasses

import pytest

from nicoffload.model import config as c

#: Every offload switch, NVGRE included: a datapath that has built everything.
EVERYTHING = frozenset(c.OFFLOAD_SWITCHES)
RSC = frozenset({"rsc_ipv4", "rsc_ipv6"})


def build(monkeypatch, offloads):
    """Stand in for a datapath that has built exactly ``offloads`` (the one place that says
    what is built is ``config.adapter.BUILT_OFFLOADS``, read whenever it is needed)."""
    monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", frozenset(offloads))

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


def test_nvgre_capabilities_once_nvgre_is_built(monkeypatch):
    build(monkeypatch, EVERYTHING)
    hw = c.NicCapabilities().hardware_offload()
    assert hw.EncapsulatedPacketTaskOffloadGre == c.NdisEncapsulatedPacketTaskOffload(
        TransmitChecksumOffloadSupported=0xF, ReceiveChecksumOffloadSupported=0xF,
        LsoV2Supported=0xF, RssSupported=0, VmqSupported=0, MaxHeaderSizeSupported=256)
    assert c.combination_violations(hw) == ()


def test_capability_parameters_reach_the_structures_and_the_datapath(monkeypatch):
    build(monkeypatch, EVERYTHING)
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
# What the datapath has built (DESIGN 3: "an offload that is not built is reported not
# supported, and switching it on is refused")
# ---------------------------------------------------------------------------------------------

def test_built_offloads_is_one_set_of_switch_names():
    assert isinstance(c.BUILT_OFFLOADS, frozenset)
    assert c.BUILT_OFFLOADS <= set(c.OFFLOAD_SWITCHES)
    assert c.BUILT_OFFLOADS is c.adapter.BUILT_OFFLOADS
    assert c.BUILT_OFFLOADS == EVERYTHING         # NVGRE and RSC included
    checksum_and_lso = {name for name in c.OFFLOAD_SWITCHES
                        if name.startswith(("tx_", "rx_", "lso_"))}
    assert checksum_and_lso <= c.BUILT_OFFLOADS


#: Offloads that others require (combining-types-of-task-offloads.md): LSOv1 and LSOv2 need
#: the IPv4 header and TCP transmit checksums, LSOv2 over IPv6 the TCP/IPv6 one.
REQUIRED_BY_LSO = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_tcp_ipv6")


#: The OID_TCP_OFFLOAD_PARAMETERS request that switches each offload on.
SWITCH_ON = {**{f"{d}_{suffix}": (field, 2 if d == "tx" else 3)
                for d in ("tx", "rx")
                for field, suffix in (("IPv4Checksum", "ipv4_checksum"),
                                      ("TCPIPv4Checksum", "tcp_ipv4"),
                                      ("UDPIPv4Checksum", "udp_ipv4"),
                                      ("TCPIPv6Checksum", "tcp_ipv6"),
                                      ("UDPIPv6Checksum", "udp_ipv6"))},
             "lso_v1_ipv4": ("LsoV1", 2), "lso_v2_ipv4": ("LsoV2IPv4", 2),
             "lso_v2_ipv6": ("LsoV2IPv6", 2), "rsc_ipv4": ("RscIPv4", 2),
             "rsc_ipv6": ("RscIPv6", 2), "encap": ("EncapsulatedPacketTaskOffload", 1)}
assert set(SWITCH_ON) == set(c.OFFLOAD_SWITCHES)


@pytest.mark.parametrize("missing", c.OFFLOAD_SWITCHES)
def test_an_offload_that_is_not_built_is_never_supported(monkeypatch, missing):
    build(monkeypatch, EVERYTHING - {missing})
    if missing in REQUIRED_BY_LSO:
        with pytest.raises(ValueError, match="combining-types-of-task-offloads.md"):
            c.NicCapabilities()
        build(monkeypatch, EVERYTHING - {missing, "lso_v1_ipv4", "lso_v2_ipv4", "lso_v2_ipv6"})
    caps = c.NicCapabilities()
    supported = caps.supported_switches()
    assert supported == {name: name in c.adapter.BUILT_OFFLOADS for name in c.OFFLOAD_SWITCHES}
    assert supported[missing] is False
    adapter = c.bind([])
    assert getattr(adapter.datapath(), missing) is False
    assert c.combination_violations(caps.hardware_offload()) == ()
    field, value = SWITCH_ON[missing]
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: value}))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_NOT_SUPPORTED, field)


def test_a_build_without_nvgre_does_not_report_it_or_switch_it_on(monkeypatch):
    build(monkeypatch, c.BUILT_OFFLOADS - {"encap"})
    caps = c.NicCapabilities()
    assert caps.nvgre is False and caps.supported_switches()["encap"] is False
    with pytest.raises(ValueError, match="NVGRE"):
        c.NicCapabilities(nvgre=True)
    adapter = c.bind([])                          # *EncapsulatedPacketTaskOffload defaults to 1
    none = c.NdisEncapsulatedPacketTaskOffload()
    assert adapter.hardware_capabilities().EncapsulatedPacketTaskOffloadGre == none
    assert adapter.current_config().EncapsulatedPacketTaskOffloadGre == none
    assert adapter.default_offload_configuration.EncapsulatedPacketTaskOffloadGre == none
    assert [i.Oid for i in adapter.indications] == ["OID_OFFLOAD_ENCAPSULATION"]
    assert adapter.datapath().encap is False
    # The keyword is still accepted and kept, both values.
    assert adapter.keywords().EncapsulatedPacketTaskOffload == 1
    assert c.bind(["*EncapsulatedPacketTaskOffload=0"]).keywords().EncapsulatedPacketTaskOffload \
        == 0
    # Switching it on is refused (NDIS_STATUS_NOT_SUPPORTED), changes and indicates nothing.
    state = adapter.state
    for params in (c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=c.NDIS_OFFLOAD_SET_ON),
                   c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=c.NDIS_OFFLOAD_SET_ON,
                                           EncapsulationTypes=c.NDIS_ENCAPSULATION_TYPE_GRE_MAC),
                   c.BIND_NVGRE_ON):
        with pytest.raises(c.OidError) as info:
            adapter.set_offload_parameters(params)
        assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED
        assert info.value.field == "EncapsulatedPacketTaskOffload"
    assert adapter.state == state and len(adapter.indications) == 1
    # Switching it off is accepted: it is off already.
    adapter.set_offload_parameters(c.NdisOffloadParameters(
        EncapsulatedPacketTaskOffload=c.NDIS_OFFLOAD_SET_OFF))
    assert adapter.keywords().EncapsulatedPacketTaskOffload == 0
    assert adapter.datapath().encap is False


def test_rsc_not_built_is_not_supported_and_switching_it_on_is_refused(monkeypatch):
    build(monkeypatch, c.BUILT_OFFLOADS - RSC)
    caps = c.NicCapabilities()
    assert caps.rsc is False
    with pytest.raises(ValueError, match="receive segment coalescing"):
        c.NicCapabilities(rsc=True)
    adapter = c.bind(["*RscIPv4=1", "*RscIPv6=1"])
    indicated = len(adapter.indications)
    assert adapter.hardware_capabilities().Rsc == c.NdisTcpRecvSegCoalesceOffload()
    assert adapter.current_config().Rsc == c.NdisTcpRecvSegCoalesceOffload()
    assert adapter.hardware_capabilities().to_bytes(3)[144:146] == b"\0\0"
    dp = adapter.datapath()
    assert dp.rsc_ipv4 is False and dp.rsc_ipv6 is False and dp.rx_tcp_ipv4
    state = adapter.state
    for field in ("RscIPv4", "RscIPv6"):
        with pytest.raises(c.OidError) as info:
            adapter.set_offload_parameters(c.NdisOffloadParameters(
                **{field: c.NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED}))
        assert (info.value.status, info.value.field) == (c.NDIS_STATUS_NOT_SUPPORTED, field)
    assert adapter.state == state and len(adapter.indications) == indicated
    adapter.set_offload_parameters(c.NdisOffloadParameters(
        RscIPv4=c.NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED))   # disabling is fine
    assert adapter.keywords().RscIPv4 == 0


def test_a_build_variant_can_leave_out_what_is_built():
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
    with pytest.raises(ValueError, match="must be a bool"):
        c.NicCapabilities(rsc=1)


def test_once_nvgre_is_built_it_is_enabled_by_default_but_operational_only_when_turned_on(
        monkeypatch):
    build(monkeypatch, EVERYTHING)
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


# ---------------------------------------------------------------------------------------------
# Bind and the datapath view
# ---------------------------------------------------------------------------------------------

def test_bind_issues_encapsulation_and_everything_built_is_live():
    adapter = c.bind([])
    assert [i.Oid for i in adapter.indications] == ["OID_OFFLOAD_ENCAPSULATION",
                                                    "OID_TCP_OFFLOAD_PARAMETERS"]
    dp = adapter.datapath()
    assert {name for name in c.OFFLOAD_SWITCHES if getattr(dp, name)} == c.BUILT_OFFLOADS
    assert dp.rx_active
    assert adapter.offload_encapsulation() == c.BIND_ENCAPSULATION


def test_once_nvgre_is_built_bind_switches_it_on_when_the_keyword_allows(monkeypatch):
    build(monkeypatch, EVERYTHING)
    adapter = c.bind([])
    assert [i.Oid for i in adapter.indications] == ["OID_OFFLOAD_ENCAPSULATION",
                                                    "OID_TCP_OFFLOAD_PARAMETERS"]
    assert all(getattr(adapter.datapath(), name) for name in c.OFFLOAD_SWITCHES)
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
