"""Tests of the offload OIDs and the status indication (nicoffload.model.config.oids):
OID_TCP_OFFLOAD_PARAMETERS, OID_OFFLOAD_ENCAPSULATION, NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG.
"""

from __future__ import annotations

import pytest

from nicoffload.model import config as c

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
    at_bind = len(adapter.indications)
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 1}))
    assert getattr(adapter.keywords(), keyword) == 0
    assert getattr(adapter.datapath(), switch) is False
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 0}))
    assert getattr(adapter.datapath(), switch) is False
    adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: 2}))
    assert getattr(adapter.keywords(), keyword) == 1
    assert getattr(adapter.datapath(), switch) is True
    assert adapter.keywords().as_registry()[f"*{keyword}"] == 1
    assert len(adapter.indications) == at_bind + 3


#: Every NDIS_OFFLOAD_PARAMETERS member with an enumerated value (not Flags, EncapsulationTypes).
ALL_PARAMETER_FIELDS = ["IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum",
                        "UDPIPv6Checksum", "LsoV1", "IPsecV1", "LsoV2IPv4", "LsoV2IPv6",
                        "TcpConnectionIPv4", "TcpConnectionIPv6", "IPsecV2", "IPsecV2IPv4",
                        "RscIPv4", "RscIPv6", "EncapsulatedPacketTaskOffload"]
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


def test_encapsulation_types_are_checked(monkeypatch):
    adapter = c.bind([])
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(EncapsulationTypes=4))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_INVALID_DATA,
                                                     "EncapsulationTypes")
    vxlan = c.NdisOffloadParameters(EncapsulatedPacketTaskOffload=1,
                                    EncapsulationTypes=c.NDIS_ENCAPSULATION_TYPE_VXLAN)
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(vxlan)
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED  # NVGRE itself is not built
    monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", frozenset(c.OFFLOAD_SWITCHES))
    with pytest.raises(c.OidError) as info:
        c.bind([]).set_offload_parameters(vxlan)
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_NOT_SUPPORTED,
                                                     "EncapsulationTypes")


# ---------------------------------------------------------------------------------------------
# NDIS_OFFLOAD_PARAMETERS.Flags
# ---------------------------------------------------------------------------------------------

SKIP = c.NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE


def test_skip_registry_update_is_the_ntddndis_value():
    assert SKIP == 0x00000001
    assert c.KNOWN_OFFLOAD_PARAMETERS_FLAGS == SKIP


def test_skip_registry_update_applies_now_but_is_not_persisted():
    adapter = c.bind([])
    registry = adapter.keywords()
    indication = adapter.set_offload_parameters(c.NdisOffloadParameters(
        LsoV2IPv4=c.NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED,
        TCPIPv6Checksum=c.NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED, Flags=SKIP))
    # The current configuration, the datapath and the status indication have the change ...
    offload = adapter.current_config()
    assert offload.LsoV2.IPv4 == c.LsoV2IPv4()
    assert offload.Checksum.IPv6Receive.TcpChecksum == 0
    assert offload.Checksum.IPv6Transmit.TcpChecksum == 1
    assert indication.StatusBuffer == offload
    assert indication.Oid == "OID_TCP_OFFLOAD_PARAMETERS"
    dp = adapter.datapath()
    assert dp.lso_v2_ipv4 is False and dp.rx_tcp_ipv6 is False and dp.tx_tcp_ipv6
    assert adapter.current_keywords().LsoV2IPv4 == 0
    assert adapter.current_keywords().TCPChecksumOffloadIPv6 == 1
    # ... the registry keywords do not: an adapter initialized from them starts as before.
    assert adapter.keywords() == registry
    assert adapter.keywords().as_registry()["*LsoV2IPv4"] == 1
    assert c.bind(adapter.keywords().as_registry()).current_config() == \
        c.bind([]).current_config()


def test_a_later_set_without_the_flag_persists_only_its_own_members():
    adapter = c.bind([])
    adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV1=1, Flags=SKIP))
    adapter.set_offload_parameters(c.NdisOffloadParameters(RscIPv6=1))
    assert adapter.keywords().LsoV1IPv4 == 1 and adapter.keywords().RscIPv6 == 0
    assert adapter.current_keywords().LsoV1IPv4 == 0
    assert adapter.current_keywords().RscIPv6 == 0
    dp = adapter.datapath()
    assert not dp.lso_v1_ipv4 and not dp.rsc_ipv6
    # Persisting a value the skip had changed brings registry and configuration together.
    adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV1=1))
    assert adapter.keywords() == adapter.current_keywords()
    # And a skip can undo in the configuration what the registry keeps.
    adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV1=2, Flags=SKIP))
    assert adapter.datapath().lso_v1_ipv4 and adapter.keywords().LsoV1IPv4 == 0


def test_skip_registry_update_as_bytes_of_every_revision():
    for revision in (1, 2, 3):
        adapter = c.bind([])
        data = c.NdisOffloadParameters(LsoV2IPv6=1, Flags=SKIP).to_bytes(revision)
        assert data[16:20] == b"\x01\x00\x00\x00"
        adapter.set_offload_parameters(data)
        assert adapter.datapath().lso_v2_ipv6 is False
        assert adapter.keywords().LsoV2IPv6 == 1


@pytest.mark.parametrize("flags", [0x2, 0x3, 0x80000000, 0x80000001, 0xFFFFFFFF])
def test_undefined_flag_bits_are_invalid_data(flags):
    """Decision: only SKIP_REGISTRY_UPDATE is defined; any other bit is invalid contents of
    the InformationBuffer (oid-tcp-offload-parameters.md: NDIS_STATUS_INVALID_DATA), so the
    set is refused whole rather than carried out without the flag's meaning."""
    adapter = c.bind([])
    state, count = adapter.state, len(adapter.indications)
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(LsoV2IPv4=1, Flags=flags))
    assert (info.value.status, info.value.field) == (c.NDIS_STATUS_INVALID_DATA, "Flags")
    assert "NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE" in str(info.value)
    assert adapter.state == state and len(adapter.indications) == count


@pytest.mark.parametrize("field", ["IPsecV1", "IPsecV2", "IPsecV2IPv4"])
@pytest.mark.parametrize("value", [2, 3, 4])
def test_enabling_ipsec_is_not_supported(field, value):
    adapter = c.bind([])
    at_bind = len(adapter.indications)
    with pytest.raises(c.OidError) as info:
        adapter.set_offload_parameters(c.NdisOffloadParameters(**{field: value}))
    assert info.value.status == c.NDIS_STATUS_NOT_SUPPORTED and info.value.field == field
    assert len(adapter.indications) == at_bind


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
