"""NDIS task-offload configuration: keywords, NDIS_OFFLOAD, the offload OIDs, the datapath view.

This package is the golden model of the miniport's *configuration* side (DESIGN.md section 3,
"Configuration"): it reads the standardized registry keywords, reports the hardware
capabilities and the current configuration as ``NDIS_OFFLOAD`` structures, handles the set
requests ``OID_TCP_OFFLOAD_PARAMETERS`` and ``OID_OFFLOAD_ENCAPSULATION``, records one
``NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`` status indication per successful set, and derives
the flat :class:`Datapath` view that the datapath model and the RTL's CSRs read.

One module per concept, each naming the NDIS pages its rules come from:

- :mod:`.constants`: the ntddndis.h values (object types, revisions, NDIS_OFFLOAD_SET_*,
  NDIS_OFFLOAD_PARAMETERS_*, encapsulation flags, status codes).
- :mod:`.binary`: how NDIS lays out a structure (alignment, bitfields, NDIS_OBJECT_HEADER,
  revisions and sizes): :class:`NdisStruct`.
- :mod:`.structures`: NDIS_OFFLOAD and its members, NDIS_OFFLOAD_PARAMETERS,
  NDIS_OFFLOAD_ENCAPSULATION.
- :mod:`.keywords`: the standardized registry keywords, their values, defaults and how
  grouped and granular keywords resolve (:class:`Keywords`).
- :mod:`.oids`: the two set requests and the status indication
  (:func:`apply_offload_parameters`, :func:`apply_offload_encapsulation`,
  :class:`StatusIndication`, :class:`OidError`).
- :mod:`.adapter`: what the datapath has built (:data:`BUILT_OFFLOADS`), the hardware
  capabilities, the adapter's state, the :class:`Datapath` view, :class:`Adapter` and
  :func:`bind`.

Pure Python; nothing here imports amaranth, cocotb or ``hdl/``. Every structure is a frozen
dataclass; the only mutable object is :class:`Adapter`, which owns one adapter's state the
way RSC's flow table owns its flows. Every name is importable from this package
(``from nicoffload.model.config import Adapter``); the modules are where the rules live.
Bit layouts, sizes and constant values are facts from the NDIS headers (ntddndis.h). The
whole picture: ``tcp-ip-task-offload.md`` and ``ndis-6.0-support-for-task-offload.md``
(seeds), ``task-offload.md`` and ``determining-task-offload-capabilities.md``.
"""

from __future__ import annotations

from .adapter import (_CHECKSUM_KEYWORDS, _ON_OFF_KEYWORDS, BIND_ENCAPSULATION, BIND_NVGRE_ON,
                      BUILT_OFFLOADS, IPV4_SWITCHES, IPV6_SWITCHES, OFFLOAD_SWITCHES, Adapter,
                      AdapterState, Datapath, NicCapabilities, bind, combination_violations,
                      configured_switches, current_offload, datapath_view, reported_switches)
from .binary import (_SCALAR_FORMATS, BITS, BOOLEAN, STRUCT, UCHAR, ULONG, USHORT, NdisObjectHeader,
                     NdisStruct, NdisStructureError, _BitFields, _Nested, _round_up, _Scalar)
from .constants import (ALL_ENCAPSULATED_IP_VERSIONS,
                        NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV4,
                        NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_INNER_IPV6,
                        NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_NOT_SUPPORTED,
                        NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV4,
                        NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_OUTER_IPV6,
                        NDIS_ENCAPSULATION_IEEE_802_3, NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q,
                        NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB,
                        NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED, NDIS_ENCAPSULATION_NOT_SUPPORTED,
                        NDIS_ENCAPSULATION_NULL, NDIS_ENCAPSULATION_TYPE_GRE_MAC,
                        NDIS_ENCAPSULATION_TYPE_VXLAN, NDIS_OBJECT_TYPE_DEFAULT,
                        NDIS_OBJECT_TYPE_OFFLOAD, NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION,
                        NDIS_OFFLOAD_ENCAPSULATION_REVISION_1, NDIS_OFFLOAD_NOT_SUPPORTED,
                        NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_CONNECTION_OFFLOAD_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_AND_ESP_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV2_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_IPSECV2_ESP_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_LSOV1_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_LSOV1_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED, NDIS_OFFLOAD_PARAMETERS_NO_CHANGE,
                        NDIS_OFFLOAD_PARAMETERS_REVISION_1, NDIS_OFFLOAD_PARAMETERS_REVISION_2,
                        NDIS_OFFLOAD_PARAMETERS_REVISION_3, NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED,
                        NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE,
                        NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED,
                        NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED, NDIS_OFFLOAD_REVISION_1,
                        NDIS_OFFLOAD_REVISION_2, NDIS_OFFLOAD_REVISION_3,
                        NDIS_OFFLOAD_SET_NO_CHANGE, NDIS_OFFLOAD_SET_OFF, NDIS_OFFLOAD_SET_ON,
                        NDIS_OFFLOAD_SUPPORTED, NDIS_STATUS_INVALID_DATA,
                        NDIS_STATUS_INVALID_PARAMETER, NDIS_STATUS_NOT_SUPPORTED,
                        NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG, STATUS_NAMES,
                        SUPPORTED_ENCAPSULATION)
from .keywords import (_CHECKSUM_VALUES, _DECIMAL, _IPSEC_VALUES, _ON_OFF_VALUES, _REGISTRY_PAGE,
                       _RESOLVED_SPECS, _SPECS_BY_FOLDED_NAME, GROUPED_KEYWORDS, KEYWORD_SPECS,
                       KeywordError, Keywords, KeywordSpec, keyword_spec, keyword_value,
                       parse_keyword, parse_keywords)
from .oids import (_CHECKSUM_PARAMETER_VALUES, _OID_ENCAPSULATION, _OID_PARAMETERS,
                   _PARAMETER_RULES, KNOWN_OFFLOAD_PARAMETERS_FLAGS, OidError, StatusIndication,
                   _checksum_rule, _ipsec_rule, _ipsec_values, _on_off_values, _ParameterRule,
                   _refuse, _switch_rule,
                   apply_offload_encapsulation, apply_offload_parameters)
from .structures import (ChecksumIPv4, ChecksumIPv6, EncapsulationIP, IpsecV1AH, IpsecV1ESP,
                         IpsecV1Supported, LsoV1IPv4, LsoV2IPv4, LsoV2IPv6,
                         NdisEncapsulatedPacketTaskOffload, NdisIpsecOffloadV1,
                         NdisIpsecOffloadV2, NdisOffload, NdisOffloadEncapsulation,
                         NdisOffloadParameters, NdisTcpIpChecksumOffload,
                         NdisTcpLargeSendOffloadV1, NdisTcpLargeSendOffloadV2,
                         NdisTcpRecvSegCoalesceOffload, RscIP)
