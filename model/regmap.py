"""The NIC's AXI4-Lite register map, described once: the RTL, the model and the documents
all come from here (DESIGN section 1, "Config: ... model config -> CSR values -> AXI4-Lite
registers").

Every register is 32 bits wide at a byte address that is a multiple of 4; the block decodes
a 12-bit address (4 KB). Fields are named with their NDIS spelling where they mirror an NDIS
member (``MaxOffLoadSize``, ``EncapsulationType``, ``HeaderSize``, ``MinSegmentCount``) and
with the :data:`~nicoffload.model.config.OFFLOAD_SWITCHES` names where they are one offload's
on/off bit. From this module come:

- the RTL register block (``hdl/csr.py``: its ``config`` port layout, reset values, read
  and write decoding, counters);
- the model's register view: :class:`RegisterView` turns an adapter's configuration
  (``model.config``) into the values a driver writes, and decodes them back;
  :class:`RegisterFile` answers reads and writes the way the RTL does, bit for bit;
- ``nicoffload regmap --format md|c``: a Markdown page and a C header (:func:`markdown`,
  :func:`c_header`).

The decisions a driver needs (access types, responses, counters, reset values; the NDIS
pages say nothing about registers) are :data:`ACCESS_TYPES` and :data:`RULES`, written once
here and printed on the Markdown page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from nicoffload.model.checksum import RX_ENABLE_NAMES
from nicoffload.model.config import (OFFLOAD_SWITCHES, Datapath, NicCapabilities,
                                     SUPPORTED_ENCAPSULATION)
from nicoffload.model.lso import LsoLimits
from nicoffload.model.nbl import TxStatus

__all__ = ["ADDRESS_BITS", "DATA_BITS", "RO", "RW", "W1P", "OKAY", "SLVERR", "DECERR",
           "MAP_ID", "MAP_VERSION", "Field", "Register", "Counter", "RegisterMap", "REGISTERS",
           "CsrConfig", "RegisterView", "RegisterFile", "ACCESS_TYPES", "RULES", "markdown",
           "c_header"]

#: What each access type means.
ACCESS_TYPES = {
    "RO": "Read-only. Identity, build parameters and capabilities are constants; statistics "
          "come from the datapath. A write changes nothing and is answered SLVERR (a driver "
          "writing there has a bug and should hear about it).",
    "RW": "Read/write configuration. Only the defined field bits are stored; reserved bits "
          "read 0. wstrb selects the bytes written. The new value drives the datapath from "
          "the cycle the write response is given; the datapath applies it between frames.",
    "W1P": "Write-one pulse: writing 1 to a field (its byte strobed) acts once; reads 0.",
}

#: The rules of the bus and of the counters, as (title, text).
RULES = (
    ("Responses", "OKAY for every defined address; SLVERR for a write to an RO register; "
                  "DECERR for an address no register decodes (a read returns 0, a write "
                  "changes nothing). addr[1:0] is ignored: an AXI4-Lite access is one aligned "
                  "word and wstrb picks its bytes. One transaction of each kind is "
                  "outstanding at a time; AW and W are accepted in either order."),
    ("Statistics", "Every counter is 64 bits: an LO word at its address, an HI word 4 bytes "
                   "up. Counters wrap modulo 2**64, reset to 0, and CTRL.StatsClear zeroes "
                   "them all (a clear wins over increments in the same cycle). Reading an LO "
                   "word latches that counter's bits 63..32 into one shadow register shared by "
                   "all counters; reading any HI word returns the shadow. So read LO, then HI "
                   "of the same counter, with no other LO read between. The RTL counts 1-cycle "
                   "event strobes and per-cycle byte counts."),
    ("Reset values", "The configuration registers reset to what config.bind() programs with "
                     "the default keywords (every built offload on, Ethernet II / 802.1Q / "
                     "LLC/SNAP for both IP versions, the capabilities' LSO limits): a NIC "
                     "nobody configures behaves as the units did before registers existed. A "
                     "driver writes its configuration before traffic anyway."),
)

ADDRESS_BITS = 12       # a 4 KB window
DATA_BITS = 32

RO, RW, W1P = "RO", "RW", "W1P"
OKAY, SLVERR, DECERR = 0b00, 0b10, 0b11

MAP_ID = 0x4E4F464C     # "NOFL"
MAP_VERSION = (1, 0)    # (major, minor): major changes break drivers

#: The ID modes of LSO_CTRL.IdMode, value -> ``model.lso.LsoLimits.id_mode``.
ID_MODES = {0: "ndis", 1: "linux"}
#: Bits of NDIS_ENCAPSULATION_* that EncapsulationType fields carry (the NDIS values).
ENCAPSULATION_TYPE_BITS = 8
#: Width of each counter's increment input for event counters and byte counters.
EVENT_BITS, BYTE_BITS = 1, 24


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a register: ``name``, ``offset`` (its LSB) and ``width`` in bits."""
    name: str
    offset: int
    width: int
    doc: str = ""

    @property
    def mask(self) -> int:
        """The field's bits in place in the register."""
        return ((1 << self.width) - 1) << self.offset

    def get(self, value: int) -> int:
        return (value >> self.offset) & ((1 << self.width) - 1)

    def put(self, value: int, register: str) -> int:
        if not isinstance(value, int) or not 0 <= value < (1 << self.width):
            raise ValueError(f"{register}.{self.name}={value!r} does not fit in {self.width} "
                             "bits")
        return value << self.offset


@dataclasses.dataclass(frozen=True)
class Register:
    """One 32-bit register.

    Attributes
    ----------
    name : str
        Upper-case name (the C header's spelling).
    address : int
        Byte address, a multiple of 4.
    access : str
        :data:`RO`, :data:`RW` or :data:`W1P` (module docstring).
    fields : tuple of Field
        From the LSB up; bits outside every field are reserved (read 0).
    group : str
        ``"id"``, ``"control"``, ``"capability"``, ``"config"`` or ``"statistics"``.
    counter : str or None
        For a statistics word: the counter's name; ``half`` says which word.
    """
    name: str
    address: int
    access: str
    fields: tuple[Field, ...]
    group: str
    doc: str = ""
    counter: str | None = None
    half: str | None = None

    @property
    def mask(self) -> int:
        """The defined bits."""
        out = 0
        for f in self.fields:
            out |= f.mask
        return out

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def pack(self, values: Mapping[str, int]) -> int:
        """The register value with fields ``values`` (missing fields 0)."""
        unknown = set(values) - {f.name for f in self.fields}
        if unknown:
            raise KeyError(f"{self.name} has no field {sorted(unknown)[0]!r}")
        out = 0
        for f in self.fields:
            out |= f.put(int(values.get(f.name, 0)), self.name)
        return out

    def unpack(self, value: int) -> dict[str, int]:
        return {f.name: f.get(value) for f in self.fields}


@dataclasses.dataclass(frozen=True)
class Counter:
    """One 64-bit statistics counter: LO word at ``address``, HI word at ``address + 4``.

    ``increment_bits`` is the width of the RTL's increment input: 1 for an event strobe
    (count one per cycle it is high), :data:`BYTE_BITS` for a byte count added that cycle.
    """
    name: str
    address: int
    increment_bits: int
    doc: str

    def registers(self) -> tuple[Register, Register]:
        word = (Field("Value", 0, 32),)
        return (Register(f"{self.name}_LO", self.address, RO, word, "statistics",
                         f"{self.doc} Bits 31..0; reading latches bits 63..32.",
                         self.name, "lo"),
                Register(f"{self.name}_HI", self.address + 4, RO, word, "statistics",
                         "Bits 63..32 latched by the last LO read of any counter.",
                         self.name, "hi"))


def _bits(names: Iterable[str], doc: str) -> tuple[Field, ...]:
    return tuple(Field(name, i, 1, doc.format(name=name)) for i, name in enumerate(names))


_ENCAP_FIELDS = (
    Field("EncapsulationType", 0, ENCAPSULATION_TYPE_BITS,
          "NDIS_ENCAPSULATION_* flags set by OID_OFFLOAD_ENCAPSULATION (0x02 IEEE_802_3, "
          "0x04 IEEE_802_3_P_AND_Q, 0x10 IEEE_LLC_SNAP_ROUTED). The NIC parses every framing "
          "it supports; informational."),
    Field("Enabled", 8, 1, "Receive offloads of this IP version operational "
                           "(OID_OFFLOAD_ENCAPSULATION Enabled = NDIS_OFFLOAD_SET_ON)."),
    Field("HeaderSize", 16, 16, "HeaderSize set by OID_OFFLOAD_ENCAPSULATION; informational."),
)

_TX_DROPS = tuple(s for s in TxStatus if s != TxStatus.SENT)


def _counters() -> tuple[Counter, ...]:
    e, b = EVENT_BITS, BYTE_BITS
    out = [
        Counter("TX_IN_FRAMES", 0x100, e, "Host frames taken on the TX path (one per send)."),
        Counter("TX_IN_BYTES", 0x108, b, "Bytes of those host frames."),
        Counter("TX_OUT_FRAMES", 0x110, e, "Wire frames sent (segments count one each)."),
        Counter("TX_OUT_BYTES", 0x118, b, "Bytes of those wire frames."),
        Counter("RX_IN_FRAMES", 0x120, e, "Wire frames taken on the RX path."),
        Counter("RX_IN_BYTES", 0x128, b, "Bytes of those wire frames."),
        Counter("RX_OUT_FRAMES", 0x130, e, "Host frames indicated (an SCU counts one)."),
        Counter("RX_OUT_BYTES", 0x138, b, "Bytes of those host frames."),
        Counter("TX_OVERSIZE", 0x140, e,
                "Host frames without LSO longer than the NIC's largest frame (TX_MAX_FRAME), "
                "passed unchanged (DESIGN 3)."),
    ]
    for i, status in enumerate(_TX_DROPS):
        out.append(Counter(f"TX_DROP_{status.name}", 0x180 + 8 * i, e,
                           f"Host frames dropped with TX completion status {status.name} "
                           f"({int(status)})."))
    for i, what in enumerate(("IP", "TCP", "UDP")):
        flag = {"IP": "IpChecksumFailed", "TCP": "TcpChecksumFailed",
                "UDP": "UdpChecksumFailed"}[what]
        out.append(Counter(f"RX_{what}_CHECKSUM_FAILED", 0x200 + 8 * i, e,
                           f"Wire frames whose receive checksum word has {flag} (counted "
                           "after checksum verification, before RSC)."))
    for i, (name, doc) in enumerate((
            ("COALESCED_PKTS", "OID_TCP_RSC_STATISTICS CoalescedPkts: segments added to an "
                               "SCU."),
            ("COALESCED_OCTETS", "CoalescedOctets: TCP payload bytes of those segments."),
            ("COALESCE_EVENTS", "CoalesceEvents: SCUs finalized."),
            ("ABORTS", "Aborts: exceptions other than the IP datagram length, lack of "
                       "contexts included."))):
        out.append(Counter(f"RSC_{name}", 0x240 + 8 * i, b if "OCTETS" in name else e, doc))
    return tuple(out)


def _registers() -> tuple[Register, ...]:
    word = lambda name, doc: (Field(name, 0, 32, doc),)  # noqa: E731
    regs = [
        Register("ID", 0x000, RO, word("Id", "0x4E4F464C ('NOFL')."), "id",
                 "Identifies the nicoffload register block."),
        Register("VERSION", 0x004, RO, (Field("Minor", 0, 16), Field("Major", 16, 16)), "id",
                 "Register map version; a new Major breaks drivers."),
        Register("HW_PARAMS", 0x008, RO,
                 (Field("DataBytes", 0, 8, "AXI4-Stream data width W / 8."),
                  Field("RscContexts", 8, 8, "RSC flow contexts the hardware holds.")), "id",
                 "Build parameters."),
        Register("CTRL", 0x00C, W1P,
                 (Field("StatsClear", 0, 1, "Write 1: every statistics counter to 0."),),
                 "control", "Commands."),
        Register("SCRATCH", 0x010, RW, word("Value", "Free for software (bus tests)."),
                 "control", "Scratch register."),
        Register("CAP_OFFLOADS", 0x020, RO,
                 _bits(OFFLOAD_SWITCHES, "The hardware has {name} "
                                         "(OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES)."),
                 "capability", "Offloads the hardware has; bits as OFFLOAD_EN."),
        Register("CAP_ENCAPSULATION", 0x024, RO,
                 (Field("EncapsulationType", 0, ENCAPSULATION_TYPE_BITS,
                        "NDIS_ENCAPSULATION_* framings every offload supports."),),
                 "capability", "Supported framings (Encapsulation of NDIS_OFFLOAD)."),
        Register("CAP_LSO_V1_IPV4", 0x028, RO,
                 word("MaxOffLoadSize", "NDIS_TCP_LARGE_SEND_OFFLOAD_V1 IPv4.MaxOffLoadSize."),
                 "capability", "LSOv1 largest send."),
        Register("CAP_LSO_V2", 0x02C, RO,
                 word("MaxOffLoadSize", "NDIS_TCP_LARGE_SEND_OFFLOAD_V2 MaxOffLoadSize "
                                        "(IPv4 and IPv6)."),
                 "capability", "LSOv2 largest send."),
        Register("CAP_LSO_MIN_SEGMENTS", 0x030, RO,
                 word("MinSegmentCount", "MinSegmentCount of every LSO."),
                 "capability", "LSO fewest segments."),
        Register("CAP_NVGRE", 0x034, RO,
                 (Field("IpVersions", 0, 4, "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_* flags."),
                  Field("MaxHeaderSizeSupported", 16, 16, "Bytes up to the inner L4 header's "
                                                          "end.")),
                 "capability", "NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD (NVGRE)."),
        Register("OFFLOAD_EN", 0x040, RW,
                 _bits(OFFLOAD_SWITCHES, "{name} operational (config.Datapath.{name})."),
                 "config", "Offloads on now (the operational Datapath view)."),
        Register("ENCAP_IPV4", 0x044, RW, _ENCAP_FIELDS, "config",
                 "OID_OFFLOAD_ENCAPSULATION, IPv4."),
        Register("ENCAP_IPV6", 0x048, RW, _ENCAP_FIELDS, "config",
                 "OID_OFFLOAD_ENCAPSULATION, IPv6."),
        Register("LSO_CTRL", 0x04C, RW,
                 (Field("IdMode", 0, 1, "IPv4 ID of segment k: 0 'ndis' (id0 & 0x8000 | "
                                        "(id0 + k) & 0x7FFF), 1 'linux' ((id0 + k) & 0xFFFF)."),),
                 "config", "LSO behaviour."),
        Register("LSO_V1_IPV4_MAX", 0x050, RW, word("MaxOffLoadSize", "Largest LSOv1 payload."),
                 "config", "LSOv1 IPv4 MaxOffLoadSize."),
        Register("LSO_V2_IPV4_MAX", 0x054, RW, word("MaxOffLoadSize", "Largest LSOv2 payload."),
                 "config", "LSOv2 IPv4 MaxOffLoadSize."),
        Register("LSO_V2_IPV6_MAX", 0x058, RW, word("MaxOffLoadSize", "Largest LSOv2 payload."),
                 "config", "LSOv2 IPv6 MaxOffLoadSize."),
        Register("LSO_V1_MIN_SEG", 0x05C, RW,
                 (Field("IPv4", 0, 16, "LSOv1 IPv4 MinSegmentCount."),),
                 "config", "LSOv1 MinSegmentCount."),
        Register("LSO_V2_MIN_SEG", 0x060, RW,
                 (Field("IPv4", 0, 16, "LSOv2 IPv4 MinSegmentCount."),
                  Field("IPv6", 16, 16, "LSOv2 IPv6 MinSegmentCount.")),
                 "config", "LSOv2 MinSegmentCount."),
        Register("RSC_IDLE_TIMEOUT", 0x064, RW,
                 word("Ticks", "Idle time T in clock cycles (the model: its time unit); 0: no "
                               "idle timer."),
                 "config", "RSC idle timer."),
    ]
    for counter in COUNTERS:
        regs.extend(counter.registers())
    return tuple(regs)


COUNTERS: tuple[Counter, ...] = _counters()


class RegisterMap:
    """The registers in address order, with lookups by name and address."""

    def __init__(self, registers: Iterable[Register], counters: Iterable[Counter]):
        self.registers = tuple(sorted(registers, key=lambda r: r.address))
        self.counters = tuple(counters)
        self._by_name = {r.name: r for r in self.registers}
        self._by_address = {r.address: r for r in self.registers}
        if len(self._by_name) != len(self.registers) or \
                len(self._by_address) != len(self.registers):
            raise ValueError("register names and addresses must be unique")
        for r in self.registers:
            if r.address % 4 or not 0 <= r.address < (1 << ADDRESS_BITS):
                raise ValueError(f"{r.name}: address {r.address:#x} not a word in the window")
            used = 0
            for f in r.fields:
                if f.mask & used or f.offset + f.width > DATA_BITS:
                    raise ValueError(f"{r.name}.{f.name} overlaps or leaves the word")
                used |= f.mask

    def __iter__(self):
        return iter(self.registers)

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def at(self, address: int) -> Register | None:
        """The register that decodes byte ``address`` (``addr[1:0]`` ignored), or None."""
        return self._by_address.get(address & ~3 & ((1 << ADDRESS_BITS) - 1))

    def group(self, *groups: str) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.group in groups)

    @property
    def config(self) -> tuple[Register, ...]:
        """The RW registers: what the RTL's ``config`` port carries."""
        return tuple(r for r in self.registers if r.access == RW)


REGISTERS = RegisterMap(_registers(), COUNTERS)


# ---------------------------------------------------------------------------------------------
# The model's view: configuration <-> register values
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CsrConfig:
    """What the configuration registers say, decoded (:meth:`RegisterView.decode`).

    Attributes
    ----------
    datapath : config.Datapath
        The operational offloads and LSO sizes (``min_segment_count`` from LSO_V1_MIN_SEG,
        ``nvgre_max_header_size`` the capabilities').
    lso_limits : lso.LsoLimits
        What the LSO stage obeys (every size and count, the ID mode).
    rx_enables : dict
        ``{name: bool}`` for ``checksum.RX_ENABLE_NAMES``: what the receive checksum stage
        obeys (``rx_active`` is ENCAP_IPV4.Enabled or ENCAP_IPV6.Enabled).
    rsc_idle_timeout : int or None
        RSC_IDLE_TIMEOUT (None for 0).
    encapsulation : dict
        ``{"IPv4": {field: value}, "IPv6": {...}}`` of ENCAP_IPV4 / ENCAP_IPV6.
    """
    datapath: Datapath
    lso_limits: LsoLimits
    rx_enables: dict
    rsc_idle_timeout: int | None
    encapsulation: dict


class RegisterView:
    """The model's view of the registers: the values for a configuration, and back.

    Parameters
    ----------
    capabilities : config.NicCapabilities, optional
        The hardware (default: its defaults); gives the capability registers.
    data_bytes : int
        HW_PARAMS.DataBytes (W / 8; default 8).
    rsc_contexts : int
        HW_PARAMS.RscContexts (default 8).
    """

    def __init__(self, capabilities: NicCapabilities | None = None, *, data_bytes: int = 8,
                 rsc_contexts: int = 8):
        self.capabilities = capabilities if capabilities is not None else NicCapabilities()
        self.data_bytes = data_bytes
        self.rsc_contexts = rsc_contexts

    def constants(self) -> dict[str, int]:
        """``{name: value}`` of every RO register that is not a counter."""
        c = self.capabilities
        supported = c.supported_switches()
        reg = REGISTERS
        return {
            "ID": MAP_ID,
            "VERSION": reg["VERSION"].pack({"Major": MAP_VERSION[0], "Minor": MAP_VERSION[1]}),
            "HW_PARAMS": reg["HW_PARAMS"].pack({"DataBytes": self.data_bytes,
                                                "RscContexts": self.rsc_contexts}),
            "CAP_OFFLOADS": reg["CAP_OFFLOADS"].pack(supported),
            "CAP_ENCAPSULATION": SUPPORTED_ENCAPSULATION,
            "CAP_LSO_V1_IPV4": c.lso_v1_max_offload_size,
            "CAP_LSO_V2": c.lso_v2_max_offload_size,
            "CAP_LSO_MIN_SEGMENTS": c.min_segment_count,
            "CAP_NVGRE": reg["CAP_NVGRE"].pack({
                "IpVersions": c.nvgre_ip_versions if supported["encap"] else 0,
                "MaxHeaderSizeSupported": c.nvgre_max_header_size}),
        }

    def config_values(self, datapath: Datapath, encapsulation=None, *, id_mode: str = "ndis",
                      rsc_idle_timeout: int | None = None) -> dict[str, int]:
        """``{name: value}`` of every RW register for a configuration.

        Parameters
        ----------
        datapath : config.Datapath
            The operational view (``Adapter.datapath()``).
        encapsulation : config.NdisOffloadEncapsulation, optional
            The last OID_OFFLOAD_ENCAPSULATION settings (``Adapter.offload_encapsulation()``);
            without it EncapsulationType and HeaderSize are 0. ``Enabled`` always comes from
            ``datapath`` (``rx_active_ipv4/6``).
        id_mode : str
            ``"ndis"`` or ``"linux"``.
        rsc_idle_timeout : int or None
            The RSC idle time T (None: no timer).

        Raises
        ------
        ValueError
            A value that does not fit its field (a MinSegmentCount over 65535, ...).
        """
        reg = REGISTERS
        modes = {mode: value for value, mode in ID_MODES.items()}
        if id_mode not in modes:
            raise ValueError(f"id_mode must be one of {sorted(modes)}, not {id_mode!r}")

        def encap(ip: str, active: bool) -> int:
            given = getattr(encapsulation, ip) if encapsulation is not None else None
            return reg[f"ENCAP_{ip.upper()}"].pack({
                "EncapsulationType": given.EncapsulationType if given is not None else 0,
                "Enabled": int(active),
                "HeaderSize": given.HeaderSize if given is not None else 0})

        d = datapath
        return {
            "SCRATCH": 0,
            "OFFLOAD_EN": reg["OFFLOAD_EN"].pack({n: int(getattr(d, n))
                                                 for n in OFFLOAD_SWITCHES}),
            "ENCAP_IPV4": encap("IPv4", d.rx_active_ipv4),
            "ENCAP_IPV6": encap("IPv6", d.rx_active_ipv6),
            "LSO_CTRL": modes[id_mode],
            "LSO_V1_IPV4_MAX": reg["LSO_V1_IPV4_MAX"].pack(
                {"MaxOffLoadSize": d.lso_v1_max_offload_size}),
            "LSO_V2_IPV4_MAX": reg["LSO_V2_IPV4_MAX"].pack(
                {"MaxOffLoadSize": d.lso_v2_ipv4_max_offload_size}),
            "LSO_V2_IPV6_MAX": reg["LSO_V2_IPV6_MAX"].pack(
                {"MaxOffLoadSize": d.lso_v2_ipv6_max_offload_size}),
            "LSO_V1_MIN_SEG": reg["LSO_V1_MIN_SEG"].pack({"IPv4": d.min_segment_count}),
            "LSO_V2_MIN_SEG": reg["LSO_V2_MIN_SEG"].pack({"IPv4": d.min_segment_count,
                                                          "IPv6": d.min_segment_count}),
            "RSC_IDLE_TIMEOUT": reg["RSC_IDLE_TIMEOUT"].pack(
                {"Ticks": rsc_idle_timeout or 0}),
        }

    def adapter_values(self, adapter, *, id_mode: str = "ndis",
                       rsc_idle_timeout: int | None = None) -> dict[str, int]:
        """:meth:`config_values` of a ``config.Adapter``'s current configuration."""
        return self.config_values(adapter.datapath(), adapter.offload_encapsulation(),
                                  id_mode=id_mode, rsc_idle_timeout=rsc_idle_timeout)

    def reset_values(self) -> dict[str, int]:
        """Every non-counter register at reset: the constants, and the configuration
        ``config.bind()`` programs with default keywords (module docstring)."""
        from nicoffload.model.config import bind
        values = self.constants()
        values.update(self.adapter_values(bind(capabilities=self.capabilities)))
        return values

    def decode(self, values: Mapping[str, int]) -> CsrConfig:
        """The configuration the RW register ``values`` (``{name: value}``) say."""
        reg = REGISTERS
        get = {r.name: r.unpack(values[r.name]) for r in reg.config}
        en = get["OFFLOAD_EN"]
        enc4, enc6 = get["ENCAP_IPV4"], get["ENCAP_IPV6"]
        v1min = get["LSO_V1_MIN_SEG"]["IPv4"]
        v2min = get["LSO_V2_MIN_SEG"]
        datapath = Datapath(
            **{n: bool(en[n]) for n in OFFLOAD_SWITCHES},
            rx_active_ipv4=bool(enc4["Enabled"]), rx_active_ipv6=bool(enc6["Enabled"]),
            lso_v1_max_offload_size=get["LSO_V1_IPV4_MAX"]["MaxOffLoadSize"],
            lso_v2_ipv4_max_offload_size=get["LSO_V2_IPV4_MAX"]["MaxOffLoadSize"],
            lso_v2_ipv6_max_offload_size=get["LSO_V2_IPV6_MAX"]["MaxOffLoadSize"],
            min_segment_count=v1min,
            nvgre_max_header_size=self.capabilities.nvgre_max_header_size)
        limits = dataclasses.replace(
            LsoLimits(**datapath.lso_limits()),
            v2_ipv4_min_segment_count=v2min["IPv4"], v2_ipv6_min_segment_count=v2min["IPv6"],
            id_mode=ID_MODES[get["LSO_CTRL"]["IdMode"]])
        rx = {n: bool(getattr(datapath, n)) for n in RX_ENABLE_NAMES}
        timeout = get["RSC_IDLE_TIMEOUT"]["Ticks"]
        return CsrConfig(datapath, limits, rx, timeout or None, {"IPv4": enc4, "IPv6": enc6})


# ---------------------------------------------------------------------------------------------
# The bus view: reads and writes as the RTL answers them
# ---------------------------------------------------------------------------------------------

class RegisterFile:
    """The register block as a bus master sees it; the RTL (``hdl/csr.py``) answers the same.

    Parameters
    ----------
    values : mapping
        ``{name: value}`` of every register that is not a counter (``RegisterView
        .reset_values()`` for a block out of reset).
    counters : callable, optional
        Returns ``{counter name: value}`` now (missing names read 0). Default: this object's
        own :attr:`counts`, which :meth:`count` increments.
    on_clear : callable, optional
        Called on CTRL.StatsClear (default: zero :attr:`counts`).
    """

    def __init__(self, values: Mapping[str, int],
                 counters: Callable[[], Mapping[str, int]] | None = None,
                 on_clear: Callable[[], None] | None = None):
        missing = {r.name for r in REGISTERS
                   if r.counter is None and r.access != W1P} - set(values)
        if missing:
            raise ValueError(f"RegisterFile: no value for {sorted(missing)}")
        self.values = {name: values[name] & REGISTERS[name].mask for name in values}
        self.counts = {c.name: 0 for c in COUNTERS}
        self._counters = counters if counters is not None else (lambda: self.counts)
        self._on_clear = on_clear if on_clear is not None else self._zero
        self.shadow = 0

    def _zero(self):
        self.counts = {name: 0 for name in self.counts}

    def count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (mod 2**64)."""
        self.counts[name] = (self.counts[name] + amount) % (1 << 64)

    def counter(self, name: str) -> int:
        return self._counters().get(name, 0) % (1 << 64)

    def read(self, address: int) -> tuple[int, int]:
        """``(data, resp)`` of a read of byte ``address``."""
        r = REGISTERS.at(address)
        if r is None:
            return 0, DECERR
        if r.counter is None:
            return (0 if r.access == W1P else self.values[r.name]), OKAY
        if r.half == "hi":
            return self.shadow, OKAY
        value = self.counter(r.counter)
        self.shadow = value >> 32
        return value & 0xFFFFFFFF, OKAY

    def write(self, address: int, data: int, strb: int = 0xF) -> int:
        """``resp`` of a write of ``data`` with byte strobes ``strb`` to byte ``address``."""
        r = REGISTERS.at(address)
        if r is None:
            return DECERR
        if r.access == RO:
            return SLVERR
        bytes_mask = 0
        for i in range(4):
            if strb >> i & 1:
                bytes_mask |= 0xFF << (8 * i)
        if r.access == RW:
            old = self.values[r.name]
            self.values[r.name] = ((old & ~bytes_mask) | (data & bytes_mask)) & r.mask
        elif data & bytes_mask & r.field("StatsClear").mask:
            self._on_clear()
        return OKAY


# ---------------------------------------------------------------------------------------------
# Documents: a Markdown page and a C header, both generated
# ---------------------------------------------------------------------------------------------

def _reset_text(r: Register, resets: Mapping[str, int]) -> str:
    if r.counter is not None:
        return "0"
    if r.access == W1P:
        return "0"
    return f"0x{resets[r.name]:08X}"


def markdown(view: RegisterView | None = None) -> str:
    """The register map as a Markdown page (``nicoffload regmap --format md``)."""
    view = view or RegisterView()
    resets = view.reset_values()
    lines = ["# nicoffload register map",
             "",
             f"Generated from `model/regmap.py` (map version {MAP_VERSION[0]}.{MAP_VERSION[1]},"
             f" ID 0x{MAP_ID:08X}); do not edit. {DATA_BITS}-bit registers, byte addresses, "
             f"{ADDRESS_BITS}-bit address window. Reset values for W = {8 * view.data_bytes}, "
             f"{view.rsc_contexts} RSC contexts and the default capabilities.",
             "",
             "## Conventions",
             ""]
    lines += [f"- **{name}**: {text}" for name, text in ACCESS_TYPES.items()]
    lines += [""] + [f"**{title}.** {text}\n" for title, text in RULES]
    lines += [
             "## Summary",
             "",
             "| Address | Name | Access | Reset | Description |",
             "|---|---|---|---|---|"]
    for r in REGISTERS:
        lines.append(f"| 0x{r.address:03X} | {r.name} | {r.access} | {_reset_text(r, resets)} "
                     f"| {r.doc} |")
    lines += ["", "## Fields", ""]
    for r in REGISTERS:
        if r.counter is not None and r.half == "hi":
            continue
        lines += [f"### {r.name} (0x{r.address:03X}, {r.access})", "", r.doc, ""]
        lines += ["| Bits | Field | Description |", "|---|---|---|"]
        for f in r.fields:
            bits = f"{f.offset}" if f.width == 1 else f"{f.offset + f.width - 1}:{f.offset}"
            lines.append(f"| {bits} | {f.name} | {f.doc} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _c_name(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).upper()


def c_header(view: RegisterView | None = None, prefix: str = "NICOFFLOAD") -> str:
    """The register map as a C header (``nicoffload regmap --format c``): for each register
    ``<P>_<REG>_ADDR`` and ``<P>_<REG>_RESET``; for each field ``_SHIFT``, ``_WIDTH`` and
    ``_MASK`` (in place); a counter is its two registers ``<P>_<NAME>_LO`` and ``_HI``; the
    map's ID and version and the response codes."""
    view = view or RegisterView()
    resets = view.reset_values()
    guard = f"{prefix}_REGMAP_H"
    out = [f"/* Generated from model/regmap.py (map version {MAP_VERSION[0]}.{MAP_VERSION[1]});"
           " do not edit. */",
           f"#ifndef {guard}", f"#define {guard}", "",
           f"#define {prefix}_MAP_ID 0x{MAP_ID:08X}u",
           f"#define {prefix}_MAP_VERSION_MAJOR {MAP_VERSION[0]}u",
           f"#define {prefix}_MAP_VERSION_MINOR {MAP_VERSION[1]}u",
           f"#define {prefix}_RESP_OKAY 0u", f"#define {prefix}_RESP_SLVERR 2u",
           f"#define {prefix}_RESP_DECERR 3u", ""]
    for r in REGISTERS:
        name = f"{prefix}_{_c_name(r.name)}"
        out.append(f"/* {r.name}: {r.access}. {r.doc} */")
        out.append(f"#define {name}_ADDR 0x{r.address:03X}u")
        if r.counter is None:
            out.append(f"#define {name}_RESET 0x{int(_reset_text(r, resets), 16):08X}u")
        for f in r.fields:
            fname = f"{name}_{_c_name(f.name)}"
            out += [f"#define {fname}_SHIFT {f.offset}u", f"#define {fname}_WIDTH {f.width}u",
                    f"#define {fname}_MASK 0x{f.mask:08X}u"]
        out.append("")
    out += [f"#define {prefix}_STAT_COUNT {len(COUNTERS)}u", "", f"#endif /* {guard} */"]
    return "\n".join(out) + "\n"
