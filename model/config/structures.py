"""The NDIS task-offload structures, member for member as ntddndis.h declares them.

The rule here: each structure has the members, sizes, revisions and object header NDIS
gives it, so bytes built here are what a protocol driver reads and bytes a protocol driver
sends decode here. ``ndis-offload-structure.md`` (seed): NDIS_OFFLOAD and its revisions;
``reporting-a-nic-s-checksum-capabilities.md``,
``reporting-a-nic-s-lsov1-tcp-packet-segmentation-capabilities.md``,
``reporting-a-nic-s-lsov2-tcp-packet-segmentation-capabilities.md``,
``determining-the-rsc-capabilities-of-a-network-adapter.md`` and
``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``: its members;
``oid-tcp-offload-parameters.md``: NDIS_OFFLOAD_PARAMETERS; ``oid-offload-encapsulation.md``:
NDIS_OFFLOAD_ENCAPSULATION. What the members *mean* to our NIC is decided in
:mod:`.adapter` (capabilities) and :mod:`.oids` (set requests).
"""

from __future__ import annotations

from .binary import BITS, BOOLEAN, STRUCT, UCHAR, ULONG, NdisStruct
from .constants import (NDIS_OBJECT_TYPE_DEFAULT, NDIS_OBJECT_TYPE_OFFLOAD,
                        NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION,
                        NDIS_OFFLOAD_ENCAPSULATION_REVISION_1, NDIS_OFFLOAD_PARAMETERS_REVISION_1,
                        NDIS_OFFLOAD_PARAMETERS_REVISION_2, NDIS_OFFLOAD_PARAMETERS_REVISION_3,
                        NDIS_OFFLOAD_REVISION_1, NDIS_OFFLOAD_REVISION_2,
                        NDIS_OFFLOAD_REVISION_3)

# ---------------------------------------------------------------------------------------------
# The structures (ntddndis.h / ndis.h; member names exactly as NDIS spells them)
# ---------------------------------------------------------------------------------------------

class ChecksumIPv4(NdisStruct):
    """``IPv4Transmit`` / ``IPv4Receive`` of NDIS_TCP_IP_CHECKSUM_OFFLOAD (8 bytes)."""

    MEMBERS = (ULONG("Encapsulation"),
               BITS(("IpOptionsSupported", 2), ("TcpOptionsSupported", 2), ("TcpChecksum", 2),
                    ("UdpChecksum", 2), ("IpChecksum", 2)))


class ChecksumIPv6(NdisStruct):
    """``IPv6Transmit`` / ``IPv6Receive`` of NDIS_TCP_IP_CHECKSUM_OFFLOAD (8 bytes)."""

    MEMBERS = (ULONG("Encapsulation"),
               BITS(("IpExtensionHeadersSupported", 2), ("TcpOptionsSupported", 2),
                    ("TcpChecksum", 2), ("UdpChecksum", 2)))


class NdisTcpIpChecksumOffload(NdisStruct):
    """NDIS_TCP_IP_CHECKSUM_OFFLOAD (32 bytes); ``reporting-a-nic-s-checksum-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4Transmit", ChecksumIPv4), STRUCT("IPv4Receive", ChecksumIPv4),
               STRUCT("IPv6Transmit", ChecksumIPv6), STRUCT("IPv6Receive", ChecksumIPv6))


class LsoV1IPv4(NdisStruct):
    """``IPv4`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V1 (16 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"),
               BITS(("TcpOptions", 2), ("IpOptions", 2)))


class NdisTcpLargeSendOffloadV1(NdisStruct):
    """NDIS_TCP_LARGE_SEND_OFFLOAD_V1 (16 bytes);
    ``reporting-a-nic-s-lsov1-tcp-packet-segmentation-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4", LsoV1IPv4),)


class IpsecV1Supported(NdisStruct):
    """``Supported`` of NDIS_IPSEC_OFFLOAD_V1 (20 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("AhEspCombined"), ULONG("TransportTunnelCombined"),
               ULONG("IPv4Options"), ULONG("Flags"))


class IpsecV1AH(NdisStruct):
    """``IPv4AH`` of NDIS_IPSEC_OFFLOAD_V1 (4 bytes)."""

    MEMBERS = (BITS(("Md5", 2), ("Sha_1", 2), ("Transport", 2), ("Tunnel", 2), ("Send", 2),
                    ("Receive", 2)),)


class IpsecV1ESP(NdisStruct):
    """``IPv4ESP`` of NDIS_IPSEC_OFFLOAD_V1 (4 bytes)."""

    MEMBERS = (BITS(("Des", 2), ("Reserved", 2), ("TripleDes", 2), ("NullEsp", 2),
                    ("Transport", 2), ("Tunnel", 2), ("Send", 2), ("Receive", 2)),)


class NdisIpsecOffloadV1(NdisStruct):
    """NDIS_IPSEC_OFFLOAD_V1 (28 bytes). Our NIC has no IPsec: always all zero."""

    MEMBERS = (STRUCT("Supported", IpsecV1Supported), STRUCT("IPv4AH", IpsecV1AH),
               STRUCT("IPv4ESP", IpsecV1ESP))


class LsoV2IPv4(NdisStruct):
    """``IPv4`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (12 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"))


class LsoV2IPv6(NdisStruct):
    """``IPv6`` of NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (16 bytes)."""

    MEMBERS = (ULONG("Encapsulation"), ULONG("MaxOffLoadSize"), ULONG("MinSegmentCount"),
               BITS(("IpExtensionHeadersSupported", 2), ("TcpOptionsSupported", 2)))


class NdisTcpLargeSendOffloadV2(NdisStruct):
    """NDIS_TCP_LARGE_SEND_OFFLOAD_V2 (28 bytes);
    ``reporting-a-nic-s-lsov2-tcp-packet-segmentation-capabilities.md``."""

    MEMBERS = (STRUCT("IPv4", LsoV2IPv4), STRUCT("IPv6", LsoV2IPv6))


class NdisIpsecOffloadV2(NdisStruct):
    """NDIS_IPSEC_OFFLOAD_V2 (32 bytes: ULONG, eleven BOOLEANs, one pad byte, four ULONGs).
    Our NIC has no IPsec: always all zero."""

    MEMBERS = (ULONG("Encapsulation"), BOOLEAN("IPv6Supported"), BOOLEAN("IPv4Options"),
               BOOLEAN("IPv6NonIPsecExtensionHeaders"), BOOLEAN("Ah"), BOOLEAN("Esp"),
               BOOLEAN("AhEspCombined"), BOOLEAN("Transport"), BOOLEAN("Tunnel"),
               BOOLEAN("TransportTunnelCombined"), BOOLEAN("LsoSupported"),
               BOOLEAN("ExtendedSequenceNumbers"), ULONG("UdpEsp"),
               ULONG("AuthenticationAlgorithms"), ULONG("EncryptionAlgorithms"),
               ULONG("SaOffloadCapacity"))


class RscIP(NdisStruct):
    """``IPv4`` / ``IPv6`` of NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD: ``BOOLEAN Enabled``."""

    MEMBERS = (BOOLEAN("Enabled"),)


class NdisTcpRecvSegCoalesceOffload(NdisStruct):
    """NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD (2 bytes);
    ``determining-the-rsc-capabilities-of-a-network-adapter.md``."""

    MEMBERS = (STRUCT("IPv4", RscIP), STRUCT("IPv6", RscIP))


class NdisEncapsulatedPacketTaskOffload(NdisStruct):
    """NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD (8 bytes); each 4-bit member is an OR of
    NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_{INNER,OUTER}_IPV{4,6};
    ``determining-the-nvgre-task-offload-capabilities-of-a-network-adapter.md``."""

    MEMBERS = (BITS(("TransmitChecksumOffloadSupported", 4),
                    ("ReceiveChecksumOffloadSupported", 4), ("LsoV2Supported", 4),
                    ("RssSupported", 4), ("VmqSupported", 4)),
               ULONG("MaxHeaderSizeSupported"))


class NdisOffload(NdisStruct):
    """NDIS_OFFLOAD (``ndis-offload-structure.md``), Header.Type NDIS_OBJECT_TYPE_OFFLOAD.

    Revision 1 (NDIS 6.0) ends after ``Flags`` (112 bytes), revision 2 (NDIS 6.1) after
    ``IPsecV2`` (144), revision 3 (NDIS 6.30) after ``EncapsulatedPacketTaskOffloadGre``
    (156). Used for OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, OID_TCP_OFFLOAD_CURRENT_CONFIG and
    the NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG status buffer. Encoding at a lower revision
    simply leaves the newer offloads out, as an older protocol driver would see them.
    """

    OBJECT_TYPE = NDIS_OBJECT_TYPE_OFFLOAD
    REVISIONS = {NDIS_OFFLOAD_REVISION_1: "Flags", NDIS_OFFLOAD_REVISION_2: "IPsecV2",
                 NDIS_OFFLOAD_REVISION_3: "EncapsulatedPacketTaskOffloadGre"}
    MEMBERS = (STRUCT("Checksum", NdisTcpIpChecksumOffload),
               STRUCT("LsoV1", NdisTcpLargeSendOffloadV1),
               STRUCT("IPsecV1", NdisIpsecOffloadV1),
               STRUCT("LsoV2", NdisTcpLargeSendOffloadV2),
               ULONG("Flags"),
               STRUCT("IPsecV2", NdisIpsecOffloadV2),
               STRUCT("Rsc", NdisTcpRecvSegCoalesceOffload),
               STRUCT("EncapsulatedPacketTaskOffloadGre", NdisEncapsulatedPacketTaskOffload))


class NdisOffloadParameters(NdisStruct):
    """NDIS_OFFLOAD_PARAMETERS, the InformationBuffer of OID_TCP_OFFLOAD_PARAMETERS.

    Header.Type NDIS_OBJECT_TYPE_DEFAULT; revision 1 ends after ``Flags`` (20 bytes),
    revision 2 after ``IPsecV2IPv4`` (22), revision 3 after ``EncapsulationTypes`` (26).
    Every member defaults to NO_CHANGE (0). Encoding a request at a revision that cannot carry
    one of its non-zero members is an error rather than a silent drop.
    """

    OBJECT_TYPE = NDIS_OBJECT_TYPE_DEFAULT
    REVISIONS = {NDIS_OFFLOAD_PARAMETERS_REVISION_1: "Flags",
                 NDIS_OFFLOAD_PARAMETERS_REVISION_2: "IPsecV2IPv4",
                 NDIS_OFFLOAD_PARAMETERS_REVISION_3: "EncapsulationTypes"}
    TRUNCATE_SILENTLY = False
    MEMBERS = (UCHAR("IPv4Checksum"), UCHAR("TCPIPv4Checksum"), UCHAR("UDPIPv4Checksum"),
               UCHAR("TCPIPv6Checksum"), UCHAR("UDPIPv6Checksum"), UCHAR("LsoV1"),
               UCHAR("IPsecV1"), UCHAR("LsoV2IPv4"), UCHAR("LsoV2IPv6"),
               UCHAR("TcpConnectionIPv4"), UCHAR("TcpConnectionIPv6"), ULONG("Flags"),
               UCHAR("IPsecV2"), UCHAR("IPsecV2IPv4"), UCHAR("RscIPv4"), UCHAR("RscIPv6"),
               UCHAR("EncapsulatedPacketTaskOffload"), UCHAR("EncapsulationTypes"))


class EncapsulationIP(NdisStruct):
    """``IPv4`` / ``IPv6`` of NDIS_OFFLOAD_ENCAPSULATION: Enabled, EncapsulationType, HeaderSize."""

    MEMBERS = (ULONG("Enabled"), ULONG("EncapsulationType"), ULONG("HeaderSize"))


class NdisOffloadEncapsulation(NdisStruct):
    """NDIS_OFFLOAD_ENCAPSULATION (Header.Type 0xA8, revision 1, 28 bytes), the
    InformationBuffer of OID_OFFLOAD_ENCAPSULATION (``oid-offload-encapsulation.md``)."""

    OBJECT_TYPE = NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION
    REVISIONS = {NDIS_OFFLOAD_ENCAPSULATION_REVISION_1: "IPv6"}
    MEMBERS = (STRUCT("IPv4", EncapsulationIP), STRUCT("IPv6", EncapsulationIP))
