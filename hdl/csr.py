"""The AXI4-Lite register block, built from the one register map in ``model/regmap.py``.

Nothing about a register is written here: addresses, fields, access types, reset values and
counters all come from :data:`nicoffload.model.regmap.REGISTERS` and its
:class:`~nicoffload.model.regmap.RegisterView`; the model's
:class:`~nicoffload.model.regmap.RegisterFile` answers every read and write as this block
does (``tests/test_csr.py`` holds them to each other).

The helpers at the end (:func:`lso_config`, :func:`rx_enables`, :func:`rsc_enables`,
:func:`rsc_idle_timeout`) turn the ``cfg`` port into what the datapath units take today
(``hdl.lso.LSO_CONFIG``, ``hdl.checksum.RX_ENABLES``, ``RxPath.rsc_enables`` and
``rsc_idle_timeout``), so a top level wires registers to units without knowing a bit position.
"""

from functools import reduce
from operator import or_

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import regmap as rm
from nicoffload.model.checksum import RX_ENABLE_NAMES

from .lso.common import LSO_CONFIG

__all__ = ["CONFIG_LAYOUT", "EVENTS_LAYOUT", "AXIL_PORTS", "Csr", "lso_config", "rx_enables",
           "rsc_enables", "rsc_idle_timeout"]


def _config_layout():
    return data.StructLayout({
        r.name.lower(): data.StructLayout({f.name: f.width for f in r.fields})
        for r in rm.REGISTERS.config})


#: The ``cfg`` port (not ``config``: a SystemVerilog keyword, which Verilog output would have
#: to escape): one member per RW register (its name in lower case), one member per
#: field (the map's field names), e.g. ``cfg.offload_en.lso_v2_ipv6``,
#: ``cfg.lso_v2_ipv4_max.MaxOffLoadSize``.
CONFIG_LAYOUT = _config_layout()

#: The ``events`` port: one member per counter (its name in lower case), as wide as the
#: counter's ``increment_bits``: the amount added to it in that cycle (1-bit event strobes,
#: 24-bit byte counts).
EVENTS_LAYOUT = data.StructLayout({c.name.lower(): c.increment_bits for c in rm.COUNTERS})

#: The AXI4-Lite ports, flat, as ARM names them: (name, direction seen by the block, width).
AXIL_PORTS = (
    ("s_axil_awaddr", In, rm.ADDRESS_BITS), ("s_axil_awvalid", In, 1),
    ("s_axil_awready", Out, 1),
    ("s_axil_wdata", In, rm.DATA_BITS), ("s_axil_wstrb", In, rm.DATA_BITS // 8),
    ("s_axil_wvalid", In, 1), ("s_axil_wready", Out, 1),
    ("s_axil_bresp", Out, 2), ("s_axil_bvalid", Out, 1), ("s_axil_bready", In, 1),
    ("s_axil_araddr", In, rm.ADDRESS_BITS), ("s_axil_arvalid", In, 1),
    ("s_axil_arready", Out, 1),
    ("s_axil_rdata", Out, rm.DATA_BITS), ("s_axil_rresp", Out, 2), ("s_axil_rvalid", Out, 1),
    ("s_axil_rready", In, 1),
)


class Csr(wiring.Component):
    """The NIC's registers on an AXI4-Lite slave port: configuration out, statistics in.

    Parameters
    ----------
    data_bytes : int
        HW_PARAMS.DataBytes: the datapath's W / 8 (default 8).
    rsc_contexts : int
        HW_PARAMS.RscContexts (default 8).
    capabilities : model.config.NicCapabilities, optional
        The hardware the capability registers report (default: its defaults).

    Attributes
    ----------
    s_axil_aw* : In(12) addr, In(1) valid, Out(1) ready
        Write address. Taken while no write address is held and no write response waits.
    s_axil_w* : In(32) data, In(4) strb, In(1) valid, Out(1) ready
        Write data, independent of the address channel (either may come first). Taken while
        no write data is held and no write response waits.
    s_axil_b* : Out(2) resp, Out(1) valid, In(1) ready
        Write response, valid the cycle after both address and data are held; OKAY, SLVERR
        (a read-only register) or DECERR (no register there). The register has its new
        value when ``bvalid`` rises.
    s_axil_ar* : In(12) addr, In(1) valid, Out(1) ready
        Read address; ``arready`` is high while no read data waits.
    s_axil_r* : Out(32) data, Out(2) resp, Out(1) valid, In(1) ready
        Read data, registered, valid the cycle after the read address is taken; OKAY or
        DECERR. Reading a counter's LO word latches its HI word (``model.regmap.RULES``).
    cfg : Out(CONFIG_LAYOUT)
        Every RW register, straight from its flip-flops (no logic after them).
    events : In(EVENTS_LAYOUT)
        Counter increments, added every cycle: ``events.tx_in_frames`` high for one cycle
        counts one frame, ``events.tx_in_bytes`` = 1514 for one cycle counts 1514 bytes.
        Ignored in a cycle that clears the counters (CTRL.StatsClear).

    Timing: a write takes 3 cycles from both channels valid to the next write accepted
    (accept, respond, response taken), a read 2 (accept, data taken), with ``bready`` /
    ``rready`` high. One write and one read can be in flight at once.
    """

    def __init__(self, *, data_bytes: int = 8, rsc_contexts: int = 8, capabilities=None):
        if not isinstance(data_bytes, int) or not 1 <= data_bytes <= 255:
            raise ValueError(f"data_bytes must be 1..255, not {data_bytes!r}")
        if not isinstance(rsc_contexts, int) or not 0 <= rsc_contexts <= 255:
            raise ValueError(f"rsc_contexts must be 0..255, not {rsc_contexts!r}")
        self.view = rm.RegisterView(capabilities, data_bytes=data_bytes,
                                    rsc_contexts=rsc_contexts)
        self.reset_values = self.view.reset_values()
        members = {name: flow(width) for name, flow, width in AXIL_PORTS}
        members["cfg"] = Out(CONFIG_LAYOUT)
        members["events"] = In(EVENTS_LAYOUT)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        regs = {r.name: Signal(rm.DATA_BITS, name=f"reg_{r.name.lower()}",
                               init=self.reset_values[r.name] & r.mask)
                for r in rm.REGISTERS.config}
        counters = {c.name: Signal(64, name=f"count_{c.name.lower()}") for c in rm.COUNTERS}
        for r in rm.REGISTERS.config:
            view = getattr(self.cfg, r.name.lower())
            m.d.comb += [getattr(view, f.name).eq(regs[r.name][f.offset:f.offset + f.width])
                         for f in r.fields]
        clear = self._write_channel(m, regs)
        for c in rm.COUNTERS:
            with m.If(clear):
                m.d.sync += counters[c.name].eq(0)
            with m.Else():
                m.d.sync += counters[c.name].eq(
                    counters[c.name] + getattr(self.events, c.name.lower()))
        self._read_channel(m, regs, counters)
        return m

    def _write_channel(self, m, regs):
        """AW and W held independently, then one write; returns the counters' clear strobe."""
        aw_held, w_held = Signal(), Signal()
        aw_addr = Signal(rm.ADDRESS_BITS)
        w_data, w_strb = Signal(rm.DATA_BITS), Signal(rm.DATA_BITS // 8)
        bvalid, bresp = Signal(), Signal(2)
        m.d.comb += [
            self.s_axil_awready.eq(~aw_held & ~bvalid),
            self.s_axil_wready.eq(~w_held & ~bvalid),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_bresp.eq(bresp),
        ]
        with m.If(self.s_axil_awvalid & self.s_axil_awready):
            m.d.sync += [aw_held.eq(1), aw_addr.eq(self.s_axil_awaddr)]
        with m.If(self.s_axil_wvalid & self.s_axil_wready):
            m.d.sync += [w_held.eq(1), w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb)]
        with m.If(bvalid & self.s_axil_bready):
            m.d.sync += bvalid.eq(0)

        write = Signal()
        m.d.comb += write.eq(aw_held & w_held & ~bvalid)
        word = aw_addr[2:]
        bytes_mask = Cat(*[w_strb[i].replicate(8) for i in range(rm.DATA_BITS // 8)])
        resp = Signal(2, init=rm.DECERR)
        for r in rm.REGISTERS:
            with m.If(word == r.address >> 2):
                m.d.comb += resp.eq(rm.SLVERR if r.access == rm.RO else rm.OKAY)
        with m.If(write):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), bvalid.eq(1), bresp.eq(resp)]
            for r in rm.REGISTERS.config:
                with m.If(word == r.address >> 2):
                    merged = (regs[r.name] & ~bytes_mask) | (w_data & bytes_mask)
                    m.d.sync += regs[r.name].eq(merged & r.mask)
        ctrl = rm.REGISTERS["CTRL"]
        clear = Signal()
        m.d.comb += clear.eq(write & (word == ctrl.address >> 2)
                             & (w_data & bytes_mask & ctrl.field("StatsClear").mask).any())
        return clear

    def _read_channel(self, m, regs, counters):
        """Read data registered from an AND-OR multiplexer over every register."""
        rvalid, rdata, rresp = Signal(), Signal(rm.DATA_BITS), Signal(2)
        shadow = Signal(32)
        m.d.comb += [
            self.s_axil_arready.eq(~rvalid),
            self.s_axil_rvalid.eq(rvalid), self.s_axil_rdata.eq(rdata),
            self.s_axil_rresp.eq(rresp),
        ]
        word = self.s_axil_araddr[2:]
        terms, hit = [], []
        for r in rm.REGISTERS:
            sel = Signal(name=f"rsel_{r.name.lower()}")
            m.d.comb += sel.eq(word == r.address >> 2)
            hit.append(sel)
            if r.access == rm.W1P:
                continue
            if r.counter is not None:
                value = counters[r.counter][:32] if r.half == "lo" else shadow
            elif r.access == rm.RW:
                value = regs[r.name]
            else:
                value = C(self.reset_values[r.name] & r.mask, rm.DATA_BITS)
            terms.append(Mux(sel, value, 0))
        with m.If(self.s_axil_arvalid & self.s_axil_arready):
            m.d.sync += [rvalid.eq(1), rdata.eq(reduce(or_, terms)),
                         rresp.eq(Mux(Cat(*hit).any(), rm.OKAY, rm.DECERR))]
            for r in rm.REGISTERS:
                if r.half == "lo":
                    with m.If(word == r.address >> 2):
                        m.d.sync += shadow.eq(counters[r.counter][32:])
        with m.Elif(rvalid & self.s_axil_rready):
            m.d.sync += rvalid.eq(0)


# ---------------------------------------------------------------------------------------------
# From the cfg port to the ports the datapath units take today
# ---------------------------------------------------------------------------------------------

def lso_config(cfg):
    """The ``hdl.lso.LSO_CONFIG`` value (``TxPath.limits``) the ``cfg`` port says."""
    en = cfg.offload_en
    fields = {
        "lso_v1_ipv4": en.lso_v1_ipv4, "lso_v2_ipv4": en.lso_v2_ipv4,
        "lso_v2_ipv6": en.lso_v2_ipv6, "id_linux": cfg.lso_ctrl.IdMode,
        "v1_ipv4_max_offload_size": cfg.lso_v1_ipv4_max.MaxOffLoadSize,
        "v2_ipv4_max_offload_size": cfg.lso_v2_ipv4_max.MaxOffLoadSize,
        "v2_ipv6_max_offload_size": cfg.lso_v2_ipv6_max.MaxOffLoadSize,
        "v1_ipv4_min_segment_count": cfg.lso_v1_min_seg.IPv4,
        "v2_ipv4_min_segment_count": cfg.lso_v2_min_seg.IPv4,
        "v2_ipv6_min_segment_count": cfg.lso_v2_min_seg.IPv6,
    }
    return Cat(*[fields[name] for name, _ in LSO_CONFIG])


def rx_enables(cfg):
    """The ``hdl.checksum.RX_ENABLES`` value (``RxPath.enables``): ``rx_active`` is
    ENCAP_IPV4.Enabled or ENCAP_IPV6.Enabled, the rest are OFFLOAD_EN bits."""
    fields = {name: getattr(cfg.offload_en, name) for name in RX_ENABLE_NAMES
              if name != "rx_active"}
    fields["rx_active"] = cfg.encap_ipv4.Enabled | cfg.encap_ipv6.Enabled
    return Cat(*[fields[name] for name in RX_ENABLE_NAMES])


def rsc_enables(cfg):
    """``RxPath.rsc_enables``: RscIPv4 (bit 0), RscIPv6 (bit 1)."""
    return Cat(cfg.offload_en.rsc_ipv4, cfg.offload_en.rsc_ipv6)


def rsc_idle_timeout(cfg):
    """``RxPath.rsc_idle_timeout``: the idle time in cycles, 0 for no timer."""
    return cfg.rsc_idle_timeout.Ticks
