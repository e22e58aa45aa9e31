"""One adapter's offload state: what the NIC has built, what it reports, what operates.

The rule here (DESIGN section 3, "Configuration"): the capability structure never claims what
the datapath cannot do. An offload that is not in :data:`BUILT_OFFLOADS` is reported not
supported in OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES and the current config, and switching it on
with OID_TCP_OFFLOAD_PARAMETERS is refused (NDIS_STATUS_NOT_SUPPORTED); its keyword is still
accepted. The pages: ``oid-tcp-offload-hardware-capabilities.md``,
``oid-tcp-offload-current-config.md``, ``combining-types-of-task-offloads.md`` (what each
offload requires of the hardware), ``determining-the-rsc-capabilities-of-a-network-adapter.md``,
``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``,
``oid-offload-encapsulation.md`` and ``querying-and-changing-nvgre-task-offload-state.md``
(when receive offloads and NVGRE become operational).

Decisions where the pages are silent (also listed in :class:`Adapter`):

- *Configured*, *reported* and *operational* are three different things. Keywords and
  OID_TCP_OFFLOAD_PARAMETERS *configure*; the current config (``NDIS_OFFLOAD``) *reports* the
  configuration, minus every offload of an IP version that OID_OFFLOAD_ENCAPSULATION switched
  off; the :class:`Datapath` says what actually *operates*: transmit offloads as reported,
  receive checksum and RSC only after OID_OFFLOAD_ENCAPSULATION has switched that IP version
  on (``oid-offload-encapsulation.md``, ``oid-tcp-offload-parameters.md``, DESIGN), NVGRE only
  after an explicit ``EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON``
  (``querying-and-changing-nvgre-task-offload-state.md``: "must not be operationally active
  by default").
- In an ``NDIS_OFFLOAD`` we report, an offload that is off has an all-zero sub-structure
  (Encapsulation = NDIS_ENCAPSULATION_NOT_SUPPORTED, sizes 0); an offload that is on carries
  NDIS_OFFLOAD_SUPPORTED (1) and our full encapsulation set.
- Every *successful* set of either OID gives exactly one status indication, whether or not
  it changed anything (both OID pages: "After the update, the miniport driver must report");
  a refused set changes nothing and indicates nothing. The configuration read from the
  keywords at initialization is :attr:`Adapter.default_offload_configuration`, not an
  indication.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ..nvgre import NVGRE_MAX_HEADER_BYTES
from .binary import NdisStructureError
from .constants import (ALL_ENCAPSULATED_IP_VERSIONS, NDIS_ENCAPSULATION_IEEE_802_3,
                        NDIS_ENCAPSULATION_TYPE_GRE_MAC, NDIS_OFFLOAD_SET_OFF,
                        NDIS_OFFLOAD_SET_ON, NDIS_OFFLOAD_SUPPORTED, NDIS_STATUS_INVALID_DATA,
                        NDIS_STATUS_INVALID_PARAMETER, SUPPORTED_ENCAPSULATION)
from .keywords import Keywords
from .oids import (_OID_ENCAPSULATION, _OID_PARAMETERS, OidError, StatusIndication,
                   apply_offload_encapsulation, apply_offload_parameters)
from .structures import (ChecksumIPv4, ChecksumIPv6, EncapsulationIP, LsoV1IPv4, LsoV2IPv4,
                         LsoV2IPv6, NdisEncapsulatedPacketTaskOffload, NdisOffload,
                         NdisOffloadEncapsulation, NdisOffloadParameters,
                         NdisTcpIpChecksumOffload, NdisTcpLargeSendOffloadV1,
                         NdisTcpLargeSendOffloadV2, NdisTcpRecvSegCoalesceOffload, RscIP)


# ---------------------------------------------------------------------------------------------
# Offload switches: the one flat vocabulary for configured, reported and operational offloads
# ---------------------------------------------------------------------------------------------

#: Per IP version, the switches OID_OFFLOAD_ENCAPSULATION turns on and off together.
IPV4_SWITCHES = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "rx_ipv4_checksum",
                 "rx_tcp_ipv4", "rx_udp_ipv4", "lso_v1_ipv4", "lso_v2_ipv4", "rsc_ipv4")
IPV6_SWITCHES = ("tx_tcp_ipv6", "tx_udp_ipv6", "rx_tcp_ipv6", "rx_udp_ipv6", "lso_v2_ipv6",
                 "rsc_ipv6")
#: Every on/off offload of the datapath, in :class:`Datapath` order.
OFFLOAD_SWITCHES = ("tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "tx_tcp_ipv6",
                    "tx_udp_ipv6", "rx_ipv4_checksum", "rx_tcp_ipv4", "rx_udp_ipv4",
                    "rx_tcp_ipv6", "rx_udp_ipv6", "lso_v1_ipv4", "lso_v2_ipv4", "lso_v2_ipv6",
                    "rsc_ipv4", "rsc_ipv6", "encap")
assert set(OFFLOAD_SWITCHES) == set(IPV4_SWITCHES) | set(IPV6_SWITCHES) | {"encap"}

#: What the datapath has built: the offloads (names of :data:`OFFLOAD_SWITCHES`) that the
#: model's datapath and the RTL carry out. This is the one place that says so. DESIGN section
#: 3: "The capability structure never claims what the datapath cannot do: an offload that is
#: not built is reported not supported, and switching it on is refused." An offload missing
#: here is absent from OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES and the current config,
#: OID_TCP_OFFLOAD_PARAMETERS refuses to switch it on (NDIS_STATUS_NOT_SUPPORTED), ``bind``
#: does not switch it on, and the :class:`Datapath` never has it; its keyword is still
#: accepted. When a stage lands, its line goes in here and nothing else changes.
BUILT_OFFLOADS: frozenset[str] = frozenset({
    "tx_ipv4_checksum", "tx_tcp_ipv4", "tx_udp_ipv4", "tx_tcp_ipv6", "tx_udp_ipv6",
    "rx_ipv4_checksum", "rx_tcp_ipv4", "rx_udp_ipv4", "rx_tcp_ipv6", "rx_udp_ipv6",
    "lso_v1_ipv4", "lso_v2_ipv4", "lso_v2_ipv6",
    "rsc_ipv4", "rsc_ipv6",
    "encap",    # NVGRE: checksums and LSOv2 on the inner headers, TX and RX (issue 10)
})
assert BUILT_OFFLOADS <= set(OFFLOAD_SWITCHES)

_RSC_SWITCHES = ("rsc_ipv4", "rsc_ipv6")


def _built(*names: str) -> bool:
    """Whether the datapath has built any of the offloads ``names``; reads
    :data:`BUILT_OFFLOADS` when called, so a test can stand in for another build."""
    return any(name in BUILT_OFFLOADS for name in names)

#: Keyword (field) -> the checksum switch suffix it controls in both directions.
_CHECKSUM_KEYWORDS = {"IPChecksumOffloadIPv4": "ipv4_checksum",
                      "TCPChecksumOffloadIPv4": "tcp_ipv4",
                      "UDPChecksumOffloadIPv4": "udp_ipv4",
                      "TCPChecksumOffloadIPv6": "tcp_ipv6",
                      "UDPChecksumOffloadIPv6": "udp_ipv6"}
#: On/off keyword (field) -> switch.
_ON_OFF_KEYWORDS = {"LsoV1IPv4": "lso_v1_ipv4", "LsoV2IPv4": "lso_v2_ipv4",
                    "LsoV2IPv6": "lso_v2_ipv6", "RscIPv4": "rsc_ipv4", "RscIPv6": "rsc_ipv6",
                    "EncapsulatedPacketTaskOffload": "encap"}


@dataclasses.dataclass(frozen=True)
class NicCapabilities:
    """What our NIC's hardware can do: the source of OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES.

    Checksum offload (IPv4 with IP options, IPv6 with extension headers, TCP options, IP/TCP/UDP
    both directions), LSOv1 and LSOv2 and RSC are built in; NVGRE is in the model but not yet
    in the RTL, so not built; IPsec and TCP chimney never are. What is built is :data:`BUILT_OFFLOADS`; this structure never claims
    more.

    Parameters
    ----------
    lso_v1_max_offload_size : int
        LSOv1 MaxOffLoadSize, 1..65535. ``reporting-a-nic-s-lsov1-...md``: "cannot exceed 64K
        bytes"; ``task-offload.md``: LSOv1 packets are up to 64 KB *including the IP header*;
        and an LSOv1 large packet carries its full length in the 16-bit IPv4 Total Length
        (``offloading-the-segmentation-of-large-tcp-packets.md``), so 65535 is the largest
        value that is both "<= 64K" and describable. Default 65535.
    lso_v2_max_offload_size : int
        LSOv2 MaxOffLoadSize for IPv4 and IPv6 ("Unlimited" in
        ``combining-types-of-task-offloads.md``). Default 262144 (256 KB sends).
    min_segment_count : int
        MinSegmentCount of LSOv1 and LSOv2 (>= 1). Default 2.
    nvgre_max_header_size : int
        NVGRE MaxHeaderSizeSupported: bytes from the frame start to the end of the inner TCP/UDP
        header, 1..256. Default 256 (the value the NVGRE page recommends; DESIGN: headers <=
        256 encapsulated; ``nvgre.NVGRE_MAX_HEADER_BYTES``, the window the NIC walks).
    nvgre_ip_versions : int
        OR of NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_{INNER,OUTER}_IPV{4,6} reported for NVGRE
        transmit checksum, receive checksum and LSOv2. Default: all four.
    rsc, nvgre : bool or None
        Whether this NIC has the RSC coalescer / NVGRE parsing. ``None`` (the default): as the
        datapath has built them (:data:`BUILT_OFFLOADS`); ``False``: a build without them;
        ``True`` for one the datapath has not built is a ``ValueError``. Resolved to a bool.
    """

    lso_v1_max_offload_size: int = 65535
    lso_v2_max_offload_size: int = 262144
    min_segment_count: int = 2
    nvgre_max_header_size: int = 256
    nvgre_ip_versions: int = ALL_ENCAPSULATED_IP_VERSIONS
    rsc: bool | None = None
    nvgre: bool | None = None

    def __post_init__(self):
        def need(ok: bool, what: str):
            if not ok:
                raise ValueError(f"NicCapabilities: {what}")
        for name, switches, what in (("rsc", _RSC_SWITCHES, "receive segment coalescing"),
                                     ("nvgre", ("encap",), "NVGRE task offload")):
            value = getattr(self, name)
            need(value is None or isinstance(value, bool), f"{name}={value!r} must be a bool")
            if value is None:
                object.__setattr__(self, name, _built(*switches))
            else:
                need(not value or _built(*switches),
                     f"{name}=True, but the datapath has not built {what} (BUILT_OFFLOADS)")
        for name in ("lso_v1_max_offload_size", "lso_v2_max_offload_size", "min_segment_count",
                     "nvgre_max_header_size", "nvgre_ip_versions"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool),
                 f"{name}={value!r} must be an int")
        need(1 <= self.lso_v1_max_offload_size <= 0xFFFF,
             f"lso_v1_max_offload_size={self.lso_v1_max_offload_size} must be 1..65535")
        need(1 <= self.lso_v2_max_offload_size <= 0xFFFFFFFF,
             f"lso_v2_max_offload_size={self.lso_v2_max_offload_size} must be 1..2**32-1")
        need(1 <= self.min_segment_count <= 0xFFFFFFFF,
             f"min_segment_count={self.min_segment_count} must be >= 1")
        need(1 <= self.nvgre_max_header_size <= NVGRE_MAX_HEADER_BYTES,
             f"nvgre_max_header_size={self.nvgre_max_header_size} must be 1.."
             f"{NVGRE_MAX_HEADER_BYTES} (the NIC walks no header past that byte)")
        need(1 <= self.nvgre_ip_versions <= ALL_ENCAPSULATED_IP_VERSIONS,
             f"nvgre_ip_versions={self.nvgre_ip_versions:#x} must be a non-empty OR of "
             "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_* flags")
        # A set of built offloads that NDIS cannot take (LSO without the transmit checksums it
        # requires, ...) is a mistake in BUILT_OFFLOADS, caught here rather than reported.
        broken = combination_violations(self.hardware_offload())
        need(not broken, "the built offloads break combining-types-of-task-offloads.md: "
                         + "; ".join(broken))

    def supported_switches(self) -> dict[str, bool]:
        """``{switch: the hardware has it}`` for every name in :data:`OFFLOAD_SWITCHES`: built
        (:data:`BUILT_OFFLOADS`) and not left out of this NIC (``rsc``, ``nvgre``)."""
        switches = {name: name in BUILT_OFFLOADS for name in OFFLOAD_SWITCHES}
        for name in _RSC_SWITCHES:
            switches[name] = switches[name] and self.rsc
        switches["encap"] = switches["encap"] and self.nvgre
        return switches

    def offload(self, switches: Mapping[str, bool]) -> NdisOffload:
        """The NDIS_OFFLOAD that reports exactly ``switches`` as on (rules in the module doc).

        Each offload reports the capabilities it needs alongside it
        (``combining-types-of-task-offloads.md``): IP options with IPv4 checksums, TCP options
        with TCP checksums, IPv6 extension headers with IPv6 checksums, TCP and IP options with
        LSOv1, extension headers and TCP options with LSOv2 over IPv6.
        """
        on = {name: bool(switches.get(name, False)) for name in OFFLOAD_SWITCHES}

        def flag(*names: str) -> int:
            return NDIS_OFFLOAD_SUPPORTED if any(on[name] for name in names) else 0

        def encapsulation(*names: str) -> int:
            return SUPPORTED_ENCAPSULATION if any(on[name] for name in names) else 0

        def checksum_ipv4(d: str) -> ChecksumIPv4:
            names = (f"{d}_ipv4_checksum", f"{d}_tcp_ipv4", f"{d}_udp_ipv4")
            return ChecksumIPv4(Encapsulation=encapsulation(*names),
                                IpOptionsSupported=flag(*names),
                                TcpOptionsSupported=flag(f"{d}_tcp_ipv4"),
                                TcpChecksum=flag(f"{d}_tcp_ipv4"),
                                UdpChecksum=flag(f"{d}_udp_ipv4"),
                                IpChecksum=flag(f"{d}_ipv4_checksum"))

        def checksum_ipv6(d: str) -> ChecksumIPv6:
            names = (f"{d}_tcp_ipv6", f"{d}_udp_ipv6")
            return ChecksumIPv6(Encapsulation=encapsulation(*names),
                                IpExtensionHeadersSupported=flag(*names),
                                TcpOptionsSupported=flag(f"{d}_tcp_ipv6"),
                                TcpChecksum=flag(f"{d}_tcp_ipv6"),
                                UdpChecksum=flag(f"{d}_udp_ipv6"))

        def size_if(name: str, value: int) -> int:
            return value if on[name] else 0

        lso_v1 = LsoV1IPv4(Encapsulation=encapsulation("lso_v1_ipv4"),
                           MaxOffLoadSize=size_if("lso_v1_ipv4", self.lso_v1_max_offload_size),
                           MinSegmentCount=size_if("lso_v1_ipv4", self.min_segment_count),
                           TcpOptions=flag("lso_v1_ipv4"), IpOptions=flag("lso_v1_ipv4"))
        lso_v2 = NdisTcpLargeSendOffloadV2(
            IPv4=LsoV2IPv4(Encapsulation=encapsulation("lso_v2_ipv4"),
                           MaxOffLoadSize=size_if("lso_v2_ipv4", self.lso_v2_max_offload_size),
                           MinSegmentCount=size_if("lso_v2_ipv4", self.min_segment_count)),
            IPv6=LsoV2IPv6(Encapsulation=encapsulation("lso_v2_ipv6"),
                           MaxOffLoadSize=size_if("lso_v2_ipv6", self.lso_v2_max_offload_size),
                           MinSegmentCount=size_if("lso_v2_ipv6", self.min_segment_count),
                           IpExtensionHeadersSupported=flag("lso_v2_ipv6"),
                           TcpOptionsSupported=flag("lso_v2_ipv6")))
        versions = self.nvgre_ip_versions if on["encap"] else 0
        gre = NdisEncapsulatedPacketTaskOffload(
            TransmitChecksumOffloadSupported=versions, ReceiveChecksumOffloadSupported=versions,
            LsoV2Supported=versions, RssSupported=0, VmqSupported=0,
            MaxHeaderSizeSupported=size_if("encap", self.nvgre_max_header_size))
        return NdisOffload(
            Checksum=NdisTcpIpChecksumOffload(IPv4Transmit=checksum_ipv4("tx"),
                                              IPv4Receive=checksum_ipv4("rx"),
                                              IPv6Transmit=checksum_ipv6("tx"),
                                              IPv6Receive=checksum_ipv6("rx")),
            LsoV1=NdisTcpLargeSendOffloadV1(IPv4=lso_v1),
            LsoV2=lso_v2,
            Rsc=NdisTcpRecvSegCoalesceOffload(IPv4=RscIP(Enabled=int(on["rsc_ipv4"])),
                                              IPv6=RscIP(Enabled=int(on["rsc_ipv6"]))),
            EncapsulatedPacketTaskOffloadGre=gre)

    def hardware_offload(self) -> NdisOffload:
        """The NDIS_OFFLOAD for OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES."""
        return self.offload(self.supported_switches())


def combination_violations(offload: NdisOffload, *, capabilities: bool = True) -> tuple[str, ...]:
    """Broken rules of ``combining-types-of-task-offloads.md``, as messages (empty: all kept).

    With ``capabilities`` (an NDIS_OFFLOAD that reports hardware capabilities) every rule
    applies: LSOv1 needs IPv4 and TCP transmit checksums plus TCP and IP options and
    MaxOffLoadSize <= 64K; LSOv2 needs TCP and IP transmit checksums (TCP over IPv6) and, over
    IPv6, extension headers and TCP options; a TCP checksum needs IP options over IPv4 and TCP
    options over IPv6; IPv6 checksums need extension headers; every offload supports 802.3.
    For a current configuration (``capabilities=False``) only "never IPsec together with LSO"
    applies: LSO computes its own IP and TCP checksums even with checksum offload disabled
    (``registry-values-for-task-offload.md``; DESIGN section 3).
    """
    out: list[str] = []
    c, lso1, lso2 = offload.Checksum, offload.LsoV1.IPv4, offload.LsoV2
    S = NDIS_OFFLOAD_SUPPORTED
    lso_v1 = lso1.Encapsulation != 0
    lso_v2_ipv4, lso_v2_ipv6 = lso2.IPv4.Encapsulation != 0, lso2.IPv6.Encapsulation != 0
    ipsec = (offload.IPsecV1.Supported.Encapsulation != 0
             or offload.IPsecV2.Encapsulation != 0)
    if ipsec and (lso_v1 or lso_v2_ipv4 or lso_v2_ipv6):
        out.append("IPsec and LSO are both on; NDIS configures one or the other, never both")
    if not capabilities:
        return tuple(out)
    if lso_v1:
        if c.IPv4Transmit.IpChecksum != S or c.IPv4Transmit.TcpChecksum != S:
            out.append("LSOv1 requires IPv4 and TCP transmit checksum offload")
        if lso1.TcpOptions != S or lso1.IpOptions != S:
            out.append("LSOv1 requires TCP options and IP options")
        if not 0 < lso1.MaxOffLoadSize <= 0x10000:
            out.append(f"LSOv1 MaxOffLoadSize {lso1.MaxOffLoadSize} is not within 1..64K")
    if lso_v2_ipv4 and (c.IPv4Transmit.IpChecksum != S or c.IPv4Transmit.TcpChecksum != S):
        out.append("LSOv2 over IPv4 requires IP and TCP transmit checksum offload")
    if lso_v2_ipv6:
        if c.IPv6Transmit.TcpChecksum != S:
            out.append("LSOv2 over IPv6 requires TCP transmit checksum offload")
        if lso2.IPv6.IpExtensionHeadersSupported != S or lso2.IPv6.TcpOptionsSupported != S:
            out.append("LSOv2 over IPv6 requires IP extension headers and TCP options")
    for name in ("IPv4Transmit", "IPv4Receive"):
        part = getattr(c, name)
        if part.TcpChecksum == S and part.IpOptionsSupported != S:
            out.append(f"Checksum.{name}: a TCP checksum requires IP options")
    for name in ("IPv6Transmit", "IPv6Receive"):
        part = getattr(c, name)
        if part.TcpChecksum == S and part.TcpOptionsSupported != S:
            out.append(f"Checksum.{name}: a TCP checksum requires TCP options")
        if (part.TcpChecksum == S or part.UdpChecksum == S) and \
                part.IpExtensionHeadersSupported != S:
            out.append(f"Checksum.{name}: IPv6 checksums require IP extension headers")
    for path, value in (("Checksum.IPv4Transmit", c.IPv4Transmit.Encapsulation),
                        ("Checksum.IPv4Receive", c.IPv4Receive.Encapsulation),
                        ("Checksum.IPv6Transmit", c.IPv6Transmit.Encapsulation),
                        ("Checksum.IPv6Receive", c.IPv6Receive.Encapsulation),
                        ("LsoV1.IPv4", lso1.Encapsulation), ("LsoV2.IPv4", lso2.IPv4.Encapsulation),
                        ("LsoV2.IPv6", lso2.IPv6.Encapsulation)):
        if value and not value & NDIS_ENCAPSULATION_IEEE_802_3:
            out.append(f"{path}.Encapsulation {value:#x} lacks NDIS_ENCAPSULATION_IEEE_802_3")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The datapath view
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Datapath:
    """What the datapath does right now: the flat view the CSRs and the datapath model read.

    Every boolean is *operational*: built (:data:`BUILT_OFFLOADS`), configured (keywords,
    OID_TCP_OFFLOAD_PARAMETERS), not switched off by OID_OFFLOAD_ENCAPSULATION, and, for the
    receive side (``rx_*``, ``rsc_*``), switched on by OID_OFFLOAD_ENCAPSULATION for that IP
    version (``rx_active_ipv4/6``); NVGRE (``encap``) also needs an explicit
    EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON. DisableTaskOffload=1 leaves
    everything False.

    LSO computes the IPv4 header and TCP checksums of every segment it makes whether or not
    ``tx_ipv4_checksum`` / ``tx_tcp_*`` are set (DESIGN section 3; NDIS: LSO implies the NIC
    calculates IP and TCP checksums). The sizes are the hardware's, valid whether or not the
    offload is on; a send larger than MaxOffLoadSize, or an LSO send while that LSO is off, is
    dropped by the datapath.
    """

    tx_ipv4_checksum: bool = False
    tx_tcp_ipv4: bool = False
    tx_udp_ipv4: bool = False
    tx_tcp_ipv6: bool = False
    tx_udp_ipv6: bool = False
    rx_ipv4_checksum: bool = False
    rx_tcp_ipv4: bool = False
    rx_udp_ipv4: bool = False
    rx_tcp_ipv6: bool = False
    rx_udp_ipv6: bool = False
    lso_v1_ipv4: bool = False
    lso_v2_ipv4: bool = False
    lso_v2_ipv6: bool = False
    rsc_ipv4: bool = False
    rsc_ipv6: bool = False
    encap: bool = False
    rx_active_ipv4: bool = False
    rx_active_ipv6: bool = False
    lso_v1_max_offload_size: int = 65535
    lso_v2_ipv4_max_offload_size: int = 262144
    lso_v2_ipv6_max_offload_size: int = 262144
    min_segment_count: int = 2
    nvgre_max_header_size: int = 256

    @property
    def rx_active(self) -> bool:
        """OID_OFFLOAD_ENCAPSULATION has switched receive offloads on for IPv4 or IPv6."""
        return self.rx_active_ipv4 or self.rx_active_ipv6

    @property
    def lso_v1_enabled(self) -> bool:
        return self.lso_v1_ipv4

    @property
    def lso_v2_enabled(self) -> bool:
        return self.lso_v2_ipv4 or self.lso_v2_ipv6

    def as_dict(self) -> dict[str, bool | int]:
        return dataclasses.asdict(self)

    def lso_limits(self) -> dict[str, bool | int]:
        """This view as keyword arguments of ``nicoffload.model.lso.LsoLimits`` (its member
        names, our values): ``LsoLimits(**datapath.lso_limits())``."""
        return {"lso_v1_ipv4": self.lso_v1_ipv4, "lso_v2_ipv4": self.lso_v2_ipv4,
                "lso_v2_ipv6": self.lso_v2_ipv6,
                "v1_ipv4_max_offload_size": self.lso_v1_max_offload_size,
                "v2_ipv4_max_offload_size": self.lso_v2_ipv4_max_offload_size,
                "v2_ipv6_max_offload_size": self.lso_v2_ipv6_max_offload_size,
                "v1_ipv4_min_segment_count": self.min_segment_count,
                "v2_ipv4_min_segment_count": self.min_segment_count,
                "v2_ipv6_min_segment_count": self.min_segment_count,
                "max_encapsulated_header_bytes": self.nvgre_max_header_size,
                "encap": self.encap}


assert tuple(f.name for f in dataclasses.fields(Datapath))[:len(OFFLOAD_SWITCHES)] == \
    OFFLOAD_SWITCHES


# ---------------------------------------------------------------------------------------------
# Adapter state and the pure functions that move it
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AdapterState:
    """Everything a miniport adapter remembers about its offload configuration.

    Attributes
    ----------
    keywords : Keywords
        The standardized keywords as the registry holds them: read at initialization, then
        updated by every OID_TCP_OFFLOAD_PARAMETERS set whose Flags lack
        NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE (``oid-tcp-offload-parameters.md``: NDIS
        "updates the miniport adapter's offload standardized keywords with the new
        settings"). A fresh adapter initialized from them starts where this one would after
        a restart.
    encapsulation : NdisOffloadEncapsulation
        The last OID_OFFLOAD_ENCAPSULATION settings per IP version; ``Enabled`` stays
        NDIS_OFFLOAD_SET_NO_CHANGE (0) for an IP version no set has touched yet.
    nvgre_activated : bool
        An OID_TCP_OFFLOAD_PARAMETERS set has turned NVGRE on (and none off since).
    current_keywords : Keywords
        The configuration in effect, in keyword terms: ``keywords`` plus the changes of the
        sets made with NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE, which apply now but are
        not persisted (DESIGN section 3). ``None`` when constructing: the same as
        ``keywords``.
    """

    keywords: Keywords = dataclasses.field(default_factory=Keywords)
    encapsulation: NdisOffloadEncapsulation = dataclasses.field(
        default_factory=NdisOffloadEncapsulation)
    nvgre_activated: bool = False
    current_keywords: Keywords | None = None

    def __post_init__(self):
        if self.current_keywords is None:
            object.__setattr__(self, "current_keywords", self.keywords)


def configured_switches(keywords: Keywords, capabilities: NicCapabilities) -> dict[str, bool]:
    """The offloads the keywords turn on that the hardware has; all off under
    DisableTaskOffload=1 (``registry-values-for-task-offload.md``)."""
    supported = capabilities.supported_switches()
    switches = dict.fromkeys(OFFLOAD_SWITCHES, False)
    if keywords.task_offload_disabled:
        return switches
    for field, suffix in _CHECKSUM_KEYWORDS.items():
        value = getattr(keywords, field)
        switches[f"tx_{suffix}"] = value in (1, 3)
        switches[f"rx_{suffix}"] = value in (2, 3)
    for field, name in _ON_OFF_KEYWORDS.items():
        switches[name] = getattr(keywords, field) == 1
    return {name: on and supported[name] for name, on in switches.items()}


def reported_switches(state: AdapterState, capabilities: NicCapabilities) -> dict[str, bool]:
    """:func:`configured_switches` minus every offload of an IP version that
    OID_OFFLOAD_ENCAPSULATION has switched off ("deactivate all offloads",
    ``oid-offload-encapsulation.md``)."""
    switches = configured_switches(state.current_keywords, capabilities)
    for ip, names in (("IPv4", IPV4_SWITCHES), ("IPv6", IPV6_SWITCHES)):
        if getattr(state.encapsulation, ip).Enabled == NDIS_OFFLOAD_SET_OFF:
            for name in names:
                switches[name] = False
    return switches


def current_offload(state: AdapterState, capabilities: NicCapabilities) -> NdisOffload:
    """The NDIS_OFFLOAD for OID_TCP_OFFLOAD_CURRENT_CONFIG and the status indication."""
    return capabilities.offload(reported_switches(state, capabilities))


def datapath_view(state: AdapterState, capabilities: NicCapabilities) -> Datapath:
    """The operational :class:`Datapath` of ``state``."""
    switches = reported_switches(state, capabilities)
    rx_active = {ip: getattr(state.encapsulation, ip).Enabled == NDIS_OFFLOAD_SET_ON
                 for ip in ("IPv4", "IPv6")}
    if state.keywords.task_offload_disabled:
        rx_active = {"IPv4": False, "IPv6": False}
    # Receive checksum offload starts only after OID_OFFLOAD_ENCAPSULATION
    # (oid-offload-encapsulation.md; DESIGN "Nothing is checked before ..."); RSC validates
    # checksums before it coalesces, so it waits for the same set.
    for ip, names in (("IPv4", IPV4_SWITCHES), ("IPv6", IPV6_SWITCHES)):
        for name in names:
            if name.startswith(("rx_", "rsc_")) and not rx_active[ip]:
                switches[name] = False
    # querying-and-changing-nvgre-task-offload-state.md: enabled by default, but not
    # operational until a protocol driver turns it on explicitly.
    switches["encap"] = switches["encap"] and state.nvgre_activated
    return Datapath(**switches, rx_active_ipv4=rx_active["IPv4"],
                    rx_active_ipv6=rx_active["IPv6"],
                    lso_v1_max_offload_size=capabilities.lso_v1_max_offload_size,
                    lso_v2_ipv4_max_offload_size=capabilities.lso_v2_max_offload_size,
                    lso_v2_ipv6_max_offload_size=capabilities.lso_v2_max_offload_size,
                    min_segment_count=capabilities.min_segment_count,
                    nvgre_max_header_size=capabilities.nvgre_max_header_size)


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------

class Adapter:
    """One miniport adapter's offload configuration, driven like NDIS drives a miniport.

    Parameters
    ----------
    keywords : Keywords, optional
        The resolved registry keywords read at initialization (default: all defaults).
    capabilities : NicCapabilities, optional
        The hardware (default: :class:`NicCapabilities` defaults).

    Notes
    -----
    Decisions where NDIS is silent (see also the module docstring):

    - ``default_offload_configuration`` is the NDIS_OFFLOAD reported at initialization
      (NDIS_MINIPORT_ADAPTER_OFFLOAD_ATTRIBUTES.DefaultOffloadConfiguration); it is not a
      status indication. ``indications`` gets exactly one record per successful set of
      OID_TCP_OFFLOAD_PARAMETERS or OID_OFFLOAD_ENCAPSULATION, including sets that change
      nothing, and none for a refused set.
    - While DisableTaskOffload=1 both OIDs are refused with NDIS_STATUS_NOT_SUPPORTED, so the
      "every offload off" of that value holds for the adapter's whole life.
    - Enabling IPsec, TCP chimney or VXLAN, or an offload missing from
      :data:`BUILT_OFFLOADS` (NVGRE for now), is refused with NDIS_STATUS_NOT_SUPPORTED;
      disabling them succeeds.
    - A set with NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE changes
      :meth:`current_keywords` (and so the current config and the datapath) but not
      :meth:`keywords`, the registry; any other Flags bit is refused with
      NDIS_STATUS_INVALID_DATA.
    """

    def __init__(self, keywords: Keywords | None = None,
                 capabilities: NicCapabilities | None = None):
        self.capabilities = capabilities if capabilities is not None else NicCapabilities()
        self._state = AdapterState(keywords=keywords if keywords is not None else Keywords())
        self._indications: list[StatusIndication] = []
        self.default_offload_configuration: NdisOffload = self.current_config()

    @classmethod
    def from_keywords(cls, keywords: Iterable[str] | Mapping[str, int | str] = (),
                      capabilities: NicCapabilities | None = None) -> Adapter:
        """Initialize from ``"NAME=VALUE"`` strings, ``(name, value)`` pairs or a mapping.

        Raises
        ------
        KeywordError
            An unknown keyword or a value out of range.
        """
        return cls(Keywords.from_registry(keywords), capabilities)

    @property
    def state(self) -> AdapterState:
        return self._state

    @property
    def indications(self) -> tuple[StatusIndication, ...]:
        """Every NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG indicated so far, oldest first."""
        return tuple(self._indications)

    @property
    def task_offload_disabled(self) -> bool:
        return self._state.keywords.task_offload_disabled

    def keywords(self) -> Keywords:
        """The standardized keywords as the registry holds them now: OID_TCP_OFFLOAD_PARAMETERS
        updates them unless its Flags has NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE."""
        return self._state.keywords

    def current_keywords(self) -> Keywords:
        """The configuration in effect, in keyword terms: :meth:`keywords` plus the changes
        made with NDIS_OFFLOAD_PARAMETERS_SKIP_REGISTRY_UPDATE (not persisted)."""
        return self._state.current_keywords

    def hardware_capabilities(self) -> NdisOffload:
        """OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES."""
        return self.capabilities.hardware_offload()

    def current_config(self) -> NdisOffload:
        """OID_TCP_OFFLOAD_CURRENT_CONFIG."""
        return current_offload(self._state, self.capabilities)

    def offload_encapsulation(self) -> NdisOffloadEncapsulation:
        """OID_OFFLOAD_ENCAPSULATION query: the settings last set (all zero before any set)."""
        return self._state.encapsulation

    def datapath(self) -> Datapath:
        """The operational :class:`Datapath` view."""
        return datapath_view(self._state, self.capabilities)

    def set_offload_parameters(
            self, params: NdisOffloadParameters | bytes | bytearray) -> StatusIndication:
        """OID_TCP_OFFLOAD_PARAMETERS set; ``params`` is the structure or its bytes.

        Returns the status indication the set produced (also appended to ``indications``).

        Raises
        ------
        OidError
            See :func:`apply_offload_parameters`; undecodable bytes give
            NDIS_STATUS_INVALID_DATA.
        """
        if not isinstance(params, NdisOffloadParameters):
            try:
                params = NdisOffloadParameters.from_bytes(params)
            except NdisStructureError as error:
                raise OidError(_OID_PARAMETERS, NDIS_STATUS_INVALID_DATA, "Header",
                               str(error)) from None
        self._state = apply_offload_parameters(self._state, params, self.capabilities)
        return self._indicate(_OID_PARAMETERS)

    def set_offload_encapsulation(
            self, encapsulation: NdisOffloadEncapsulation | bytes | bytearray
    ) -> StatusIndication:
        """OID_OFFLOAD_ENCAPSULATION set; ``encapsulation`` is the structure or its bytes.

        Raises
        ------
        OidError
            See :func:`apply_offload_encapsulation`; undecodable bytes give
            NDIS_STATUS_INVALID_PARAMETER.
        """
        if not isinstance(encapsulation, NdisOffloadEncapsulation):
            try:
                encapsulation = NdisOffloadEncapsulation.from_bytes(encapsulation)
            except NdisStructureError as error:
                raise OidError(_OID_ENCAPSULATION, NDIS_STATUS_INVALID_PARAMETER, "Header",
                               str(error)) from None
        self._state = apply_offload_encapsulation(self._state, encapsulation, self.capabilities)
        return self._indicate(_OID_ENCAPSULATION)

    def _indicate(self, oid: str) -> StatusIndication:
        indication = StatusIndication(StatusBuffer=self.current_config(), Oid=oid)
        self._indications.append(indication)
        return indication


#: What ``bind`` sets: both IP versions on, Ethernet II / 802.3, 802.1Q and LLC/SNAP, with the
#: 14-byte Ethernet II header the TCP/IP transport uses (DESIGN section 4).
BIND_ENCAPSULATION = NdisOffloadEncapsulation(
    IPv4=EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_ON, EncapsulationType=SUPPORTED_ENCAPSULATION,
                         HeaderSize=14),
    IPv6=EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_ON, EncapsulationType=SUPPORTED_ENCAPSULATION,
                         HeaderSize=14))

#: What ``bind`` sets to make NVGRE operational when the NIC supports it and the keyword
#: allows it (not while NVGRE is missing from :data:`BUILT_OFFLOADS`).
BIND_NVGRE_ON = NdisOffloadParameters(EncapsulatedPacketTaskOffload=NDIS_OFFLOAD_SET_ON,
                                      EncapsulationTypes=NDIS_ENCAPSULATION_TYPE_GRE_MAC)


def bind(keywords: Iterable[str] | Mapping[str, int | str] = (),
         capabilities: NicCapabilities | None = None, *, nvgre: bool = True) -> Adapter:
    """Do what the protocol driver does at bind time (DESIGN section 4), return the adapter.

    1. Initialize the adapter from ``keywords``.
    2. Unless DisableTaskOffload=1 (then protocol drivers must not issue it), set
       OID_OFFLOAD_ENCAPSULATION for Ethernet II, 802.1Q and LLC/SNAP on IPv4 and IPv6
       (:data:`BIND_ENCAPSULATION`), so the offloads are live from the first frame.
    3. If ``nvgre``, the NIC supports NVGRE and the keyword has it on, set
       OID_TCP_OFFLOAD_PARAMETERS with EncapsulatedPacketTaskOffload = NDIS_OFFLOAD_SET_ON
       (:data:`BIND_NVGRE_ON`), as the NVGRE-aware switch does: NVGRE is not operational until
       turned on explicitly (``querying-and-changing-nvgre-task-offload-state.md``). While
       NVGRE is not in :data:`BUILT_OFFLOADS` the NIC does not support it and this step is
       skipped, so bind is exactly DESIGN section 4: keywords, then OID_OFFLOAD_ENCAPSULATION.

    Raises
    ------
    KeywordError
        An unknown keyword or a value out of range.
    """
    adapter = Adapter.from_keywords(keywords, capabilities)
    if adapter.task_offload_disabled:
        return adapter
    adapter.set_offload_encapsulation(BIND_ENCAPSULATION)
    if nvgre and configured_switches(adapter.current_keywords(), adapter.capabilities)["encap"]:
        adapter.set_offload_parameters(BIND_NVGRE_ON)
    return adapter
