"""The offload set requests OID_TCP_OFFLOAD_PARAMETERS and OID_OFFLOAD_ENCAPSULATION, and the
NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG indication each successful set produces.

The rules here: ``oid-tcp-offload-parameters.md`` (invalid contents: NDIS_STATUS_INVALID_DATA;
the new settings update the standardized keywords; "After the update, the miniport driver
must report" the current config), ``oid-offload-encapsulation.md`` and
``enabling-and-disabling-task-offload-services.md`` (per IP version on / off / no change;
receive offloads start only with this set), ``querying-and-changing-nvgre-task-offload-state.md``
and ``querying-and-changing-rsc-state.md`` (EncapsulatedPacketTaskOffload, RscIPv4/RscIPv6),
``ndis-status-task-offload-current-config.md`` (the indication). Every request is checked
whole before anything changes, so a refused set changes nothing and indicates nothing.
The functions take and return an :class:`~.adapter.AdapterState`; :class:`~.adapter.Adapter`
drives them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .constants import (NDIS_ENCAPSULATION_TYPE_GRE_MAC, NDIS_ENCAPSULATION_TYPE_VXLAN,
                        NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE, NDIS_OFFLOAD_SET_NO_CHANGE,
                        NDIS_OFFLOAD_SET_OFF, NDIS_OFFLOAD_SET_ON,
                        NDIS_STATUS_INVALID_DATA, NDIS_STATUS_INVALID_PARAMETER,
                        NDIS_STATUS_NOT_SUPPORTED, NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG,
                        STATUS_NAMES, SUPPORTED_ENCAPSULATION)
from .structures import (EncapsulationIP, NdisOffload, NdisOffloadEncapsulation,
                         NdisOffloadParameters)

if TYPE_CHECKING:
    from .adapter import AdapterState, NicCapabilities


class OidError(ValueError):
    """A refused OID set request; the adapter's state is unchanged and nothing is indicated.

    Attributes
    ----------
    oid : str
        ``"OID_TCP_OFFLOAD_PARAMETERS"`` or ``"OID_OFFLOAD_ENCAPSULATION"``.
    status : int
        The NDIS_STATUS the miniport completes the request with.
    field : str
        The structure member at fault, NDIS spelling (e.g. ``"LsoV2IPv4"``, ``"IPv4.Enabled"``).
    """

    def __init__(self, oid: str, status: int, field: str, message: str):
        super().__init__(f"{oid}: {message} ({STATUS_NAMES.get(status, hex(status))})")
        self.oid = oid
        self.status = status
        self.field = field


_OID_PARAMETERS = "OID_TCP_OFFLOAD_PARAMETERS"
_OID_ENCAPSULATION = "OID_OFFLOAD_ENCAPSULATION"

_CHECKSUM_PARAMETER_VALUES = {
    0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: "NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED",
    2: "NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED",
    3: "NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED",
    4: "NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED"}


def _on_off_values(kind: str) -> dict[int, str]:
    return {0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: f"NDIS_OFFLOAD_PARAMETERS_{kind}_DISABLED",
            2: f"NDIS_OFFLOAD_PARAMETERS_{kind}_ENABLED"}


def _ipsec_values(kind: str) -> dict[int, str]:
    return {0: "NDIS_OFFLOAD_PARAMETERS_NO_CHANGE", 1: f"NDIS_OFFLOAD_PARAMETERS_{kind}_DISABLED",
            2: f"NDIS_OFFLOAD_PARAMETERS_{kind}_AH_ENABLED",
            3: f"NDIS_OFFLOAD_PARAMETERS_{kind}_ESP_ENABLED",
            4: f"NDIS_OFFLOAD_PARAMETERS_{kind}_AH_AND_ESP_ENABLED"}


@dataclasses.dataclass(frozen=True)
class _ParameterRule:
    """How OID_TCP_OFFLOAD_PARAMETERS treats one member of NDIS_OFFLOAD_PARAMETERS.

    ``keyword`` is the :class:`Keywords` field the member updates, ``to_keyword`` maps each
    non-NO_CHANGE value to that keyword's value, ``needs`` maps a value to the switches the
    hardware must have for it (``None``: the hardware never supports that value).
    """

    field: str
    values: Mapping[int, str]
    keyword: str | None
    to_keyword: Mapping[int, int]
    needs: Mapping[int, tuple[str, ...] | None]


def _checksum_rule(field: str, keyword: str, suffix: str) -> _ParameterRule:
    return _ParameterRule(field, _CHECKSUM_PARAMETER_VALUES, keyword,
                          {1: 0, 2: 1, 3: 2, 4: 3},
                          {2: (f"tx_{suffix}",), 3: (f"rx_{suffix}",),
                           4: (f"tx_{suffix}", f"rx_{suffix}")})


def _switch_rule(field: str, kind: str, keyword: str, switch: str) -> _ParameterRule:
    return _ParameterRule(field, _on_off_values(kind), keyword, {1: 0, 2: 1}, {2: (switch,)})


def _ipsec_rule(field: str, kind: str, keyword: str) -> _ParameterRule:
    return _ParameterRule(field, _ipsec_values(kind), keyword, {1: 0, 2: 1, 3: 2, 4: 3},
                          {2: None, 3: None, 4: None})


#: Member -> rule, for every member of NDIS_OFFLOAD_PARAMETERS but Flags and EncapsulationTypes.
_PARAMETER_RULES = {rule.field: rule for rule in (
    _checksum_rule("IPv4Checksum", "IPChecksumOffloadIPv4", "ipv4_checksum"),
    _checksum_rule("TCPIPv4Checksum", "TCPChecksumOffloadIPv4", "tcp_ipv4"),
    _checksum_rule("UDPIPv4Checksum", "UDPChecksumOffloadIPv4", "udp_ipv4"),
    _checksum_rule("TCPIPv6Checksum", "TCPChecksumOffloadIPv6", "tcp_ipv6"),
    _checksum_rule("UDPIPv6Checksum", "UDPChecksumOffloadIPv6", "udp_ipv6"),
    _switch_rule("LsoV1", "LSOV1", "LsoV1IPv4", "lso_v1_ipv4"),
    _ipsec_rule("IPsecV1", "IPSECV1", "IPsecOffloadV1IPv4"),
    _switch_rule("LsoV2IPv4", "LSOV2", "LsoV2IPv4", "lso_v2_ipv4"),
    _switch_rule("LsoV2IPv6", "LSOV2", "LsoV2IPv6", "lso_v2_ipv6"),
    _ParameterRule("TcpConnectionIPv4", _on_off_values("CONNECTION_OFFLOAD"), None, {},
                   {2: None}),
    _ParameterRule("TcpConnectionIPv6", _on_off_values("CONNECTION_OFFLOAD"), None, {},
                   {2: None}),
    _ipsec_rule("IPsecV2", "IPSECV2", "IPsecOffloadV2"),
    _ipsec_rule("IPsecV2IPv4", "IPSECV2", "IPsecOffloadV2IPv4"),
    _switch_rule("RscIPv4", "RSC", "RscIPv4", "rsc_ipv4"),
    _switch_rule("RscIPv6", "RSC", "RscIPv6", "rsc_ipv6"),
    _ParameterRule("EncapsulatedPacketTaskOffload",
                   {0: "NDIS_OFFLOAD_SET_NO_CHANGE", 1: "NDIS_OFFLOAD_SET_ON",
                    2: "NDIS_OFFLOAD_SET_OFF"},
                   "EncapsulatedPacketTaskOffload", {1: 1, 2: 0}, {1: ("encap",)}),
)}


#: The NDIS_OFFLOAD_PARAMETERS.Flags bits we know and honour.
KNOWN_OFFLOAD_PARAMETERS_FLAGS = NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE


def _refuse(oid: str, status: int, field: str, message: str):
    raise OidError(oid, status, field, message)


def apply_offload_parameters(state: AdapterState, params: NdisOffloadParameters,
                             capabilities: NicCapabilities) -> AdapterState:
    """The state after a *successful* OID_TCP_OFFLOAD_PARAMETERS set
    (``oid-tcp-offload-parameters.md``).

    All members are checked before any is applied, so a refused request changes nothing.
    NO_CHANGE (0) leaves a member's offload alone; any other value updates the keyword it
    corresponds to, and the configuration follows the keywords. With ``Flags`` =
    NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE the change applies to the current
    configuration (``state.current_keywords``) but is not persisted to the registry keywords
    (``state.keywords``; DESIGN section 3). An EncapsulatedPacketTaskOffload of
    NDIS_OFFLOAD_SET_ON also makes NVGRE operational, NDIS_OFFLOAD_SET_OFF stops it
    (``querying-and-changing-nvgre-task-offload-state.md``). Switching on an offload the NIC
    does not support (IPsec, TCP chimney, VXLAN, or one the datapath has not built: see
    ``adapter.BUILT_OFFLOADS``) is refused with NDIS_STATUS_NOT_SUPPORTED rather than
    completed as if nothing changed: DESIGN section 3 says so, and the OID page points the
    caller to OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES for what the hardware can do, so a request
    beyond it is one the miniport cannot carry out (a success would tell the caller the
    offload is now on). Switching such an offload off succeeds (it already is).

    ``Flags`` bits other than SKIP_REGISTRY_UPDATE are undefined in every revision we know and
    are refused with NDIS_STATUS_INVALID_DATA (``oid-tcp-offload-parameters.md``: invalid
    contents of the InformationBuffer), not ignored: a flag changes how a request is applied
    (as SKIP_REGISTRY_UPDATE does), and one we cannot honour must not be carried out as if it
    were absent. A refused request changes nothing.

    Raises
    ------
    OidError
        NDIS_STATUS_INVALID_DATA for a value a member does not define, undefined ``Flags`` or
        ``EncapsulationTypes`` bits; NDIS_STATUS_NOT_SUPPORTED for enabling what the NIC
        lacks (IPsec, TCP chimney, VXLAN, RSC or NVGRE when not built) or any set while
        DisableTaskOffload=1.
    """
    if state.keywords.task_offload_disabled:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, "DisableTaskOffload",
                "task offload is disabled (DisableTaskOffload=1)")
    for field, rule in _PARAMETER_RULES.items():
        value = getattr(params, field)
        if value not in rule.values:
            allowed = ", ".join(f"{v} {name}" for v, name in rule.values.items())
            _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, field,
                    f"NDIS_OFFLOAD_PARAMETERS.{field}={value} is not valid; allowed: {allowed}")
    if params.Flags & ~KNOWN_OFFLOAD_PARAMETERS_FLAGS:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "Flags",
                f"NDIS_OFFLOAD_PARAMETERS.Flags={params.Flags:#x} has undefined bits "
                f"{params.Flags & ~KNOWN_OFFLOAD_PARAMETERS_FLAGS:#x}; allowed: "
                "NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE (0x1)")
    known_types = NDIS_ENCAPSULATION_TYPE_GRE_MAC | NDIS_ENCAPSULATION_TYPE_VXLAN
    if params.EncapsulationTypes & ~known_types:
        _refuse(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "EncapsulationTypes",
                f"NDIS_OFFLOAD_PARAMETERS.EncapsulationTypes={params.EncapsulationTypes:#x} has "
                "undefined bits; allowed: NDIS_ENCAPSULATION_TYPE_GRE_MAC (0x1), "
                "NDIS_ENCAPSULATION_TYPE_VXLAN (0x2)")
    supported = capabilities.supported_switches()
    for field, rule in _PARAMETER_RULES.items():
        value = getattr(params, field)
        if value in rule.needs:
            needs = rule.needs[value]
            if needs is None or not all(supported[name] for name in needs):
                _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, field,
                        f"NDIS_OFFLOAD_PARAMETERS.{field}={value} ({rule.values[value]}) asks "
                        "for an offload this NIC does not support")
    if (params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_ON
            and params.EncapsulationTypes & NDIS_ENCAPSULATION_TYPE_VXLAN):
        _refuse(_OID_PARAMETERS, NDIS_STATUS_NOT_SUPPORTED, "EncapsulationTypes",
                "NDIS_ENCAPSULATION_TYPE_VXLAN is not supported (NVGRE/GRE_MAC only)")
    updates = {rule.keyword: rule.to_keyword[getattr(params, field)]
               for field, rule in _PARAMETER_RULES.items()
               if rule.keyword is not None and getattr(params, field) in rule.to_keyword}
    nvgre_activated = state.nvgre_activated
    if params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_ON:
        nvgre_activated = True
    elif params.EncapsulatedPacketTaskOffload == NDIS_OFFLOAD_SET_OFF:
        nvgre_activated = False
    persist = not params.Flags & NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE
    return dataclasses.replace(
        state, keywords=state.keywords.replace(**updates) if persist else state.keywords,
        current_keywords=state.current_keywords.replace(**updates),
        nvgre_activated=nvgre_activated)


def apply_offload_encapsulation(state: AdapterState, encapsulation: NdisOffloadEncapsulation,
                                capabilities: NicCapabilities) -> AdapterState:
    """The state after a *successful* OID_OFFLOAD_ENCAPSULATION set
    (``oid-offload-encapsulation.md``, ``enabling-and-disabling-task-offload-services.md``).

    Per IP version: NDIS_OFFLOAD_SET_ON activates every configured offload of that version
    (receive checksum and RSC start now), NDIS_OFFLOAD_SET_OFF deactivates them all,
    NDIS_OFFLOAD_SET_NO_CHANGE leaves it as it was. With SET_ON, EncapsulationType must be a
    non-empty OR of encapsulations the hardware supports (802.3, 802.1Q, LLC/SNAP; 802.3 implies
    802.1Q) and HeaderSize non-zero; with anything else both are ignored. The NIC offloads every
    framing it supports at once, whatever type was requested.

    Raises
    ------
    OidError
        NDIS_STATUS_INVALID_PARAMETER for an undefined Enabled value, an unsupported
        encapsulation type or a zero HeaderSize; NDIS_STATUS_NOT_SUPPORTED while
        DisableTaskOffload=1 (protocol drivers "must not issue" it then,
        ``registry-values-for-task-offload.md``; we refuse it rather than ignore it).
    """
    if state.keywords.task_offload_disabled:
        _refuse(_OID_ENCAPSULATION, NDIS_STATUS_NOT_SUPPORTED, "DisableTaskOffload",
                "task offload is disabled (DisableTaskOffload=1); protocol drivers must not "
                "issue OID_OFFLOAD_ENCAPSULATION")
    new = {}
    for ip in ("IPv4", "IPv6"):
        request: EncapsulationIP = getattr(encapsulation, ip)
        if request.Enabled not in (NDIS_OFFLOAD_SET_NO_CHANGE, NDIS_OFFLOAD_SET_ON,
                                   NDIS_OFFLOAD_SET_OFF):
            _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, f"{ip}.Enabled",
                    f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.Enabled={request.Enabled} is not valid; "
                    "allowed: 0 NDIS_OFFLOAD_SET_NO_CHANGE, 1 NDIS_OFFLOAD_SET_ON, "
                    "2 NDIS_OFFLOAD_SET_OFF")
        if request.Enabled == NDIS_OFFLOAD_SET_ON:
            kind = request.EncapsulationType
            if kind == 0 or kind & ~SUPPORTED_ENCAPSULATION:
                _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER,
                        f"{ip}.EncapsulationType",
                        f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.EncapsulationType={kind:#x} is not "
                        f"supported; supported: an OR of {SUPPORTED_ENCAPSULATION:#x} "
                        "(IEEE_802_3, IEEE_802_3_P_AND_Q, IEEE_LLC_SNAP_ROUTED)")
            if request.HeaderSize == 0:
                _refuse(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, f"{ip}.HeaderSize",
                        f"NDIS_OFFLOAD_ENCAPSULATION.{ip}.HeaderSize=0 with Enabled=SET_ON")
            new[ip] = request
        elif request.Enabled == NDIS_OFFLOAD_SET_OFF:
            new[ip] = EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_OFF)
    return dataclasses.replace(state, encapsulation=state.encapsulation.replace(**new))


@dataclasses.dataclass(frozen=True)
class StatusIndication:
    """One NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG status indication.

    Attributes
    ----------
    StatusBuffer : NdisOffload
        The current configuration after the set (encode it with ``to_bytes(revision)``).
    Oid : str
        The OID whose set request produced it.
    StatusCode : int
        NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG (0x40020006).
    """

    StatusBuffer: NdisOffload
    Oid: str
    StatusCode: int = NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG
