"""Tests of the registry keywords (nicoffload.model.config.keywords) and what they configure.

The keyword table (names, values, defaults) is written out here from
``registry-values-for-task-offload.md``, ``standardized-inf-keywords-for-rsc.md`` and
``standardized-inf-keywords-for-nvgre-task-offload.md``, not taken from the model.
"""

from __future__ import annotations

import dataclasses

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
def test_an_offload_keyword_of_0_zeroes_its_structure(monkeypatch, keyword, path):
    # On a datapath that has built every offload (NVGRE is not built yet: its structure is
    # zero whatever the keyword says).
    monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", frozenset(c.OFFLOAD_SWITCHES))

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
