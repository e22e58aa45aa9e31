"""The NIC: the TX path, the RX path and the AXI4-Lite register block as one component
(DESIGN.md 1, 2; issue 11).

::

                 FrameGate       TxPath
    s_axis_tx ──► (tx_cfg) ═► parse ═► LSO segmenter ═► checksum insert ═► m_axis_wire
                                             └═══════════════════════════► m_axis_txc
                 FrameGate       RxPath
    s_axis_wire ► (rx_cfg) ──► ═ parse ─► checksum verify ═► RSC ═► m_axis_rx
    s_axis_eoi ───────────────► (markers into RSC's arrival log)
    s_axil_* ◄──► Csr ── cfg ──► tx_cfg / rx_cfg (copies loaded between frames, below)
                      ◄─ events ─ frames and bytes at every port, drops, checksum failures

``═►`` is a register slice (``hdl/stream.py``). The TX path's input gets one here (its
parser takes ``s_axis_tx`` directly); the RX path registers its own input and every output
of both paths leaves a register slice inside the path, so every unit boundary is registered
both ways.

Configuration between frames
    Each path obeys a copy of the register block's ``cfg``: ``tx_cfg`` (the LSO limits and
    enables, ``hdl.csr.lso_config``, and OFFLOAD_EN.encap, the NVGRE offloads) and
    ``rx_cfg`` (receive checksum enables, RSC enables, RSC idle time). A path's copy is
    loaded only when (1) the registers say something else for that path, (2) no frame is
    partly through the path's input and (3) every frame that entered has passed the stage
    that reads the configuration: for TX, its completion has left the path (the LSO stage
    decides a send, with the limits and the encap enable, before its completion; the
    checksum stage after it takes that decision from the frame's record, ``TxPath.encap``);
    for RX, its last beat has left the checksum verdict (``RxPath.checked``; RSC takes its
    enables with each frame's arrival at the input). While (1) holds, the input's
    :class:`FrameGate` takes no new frame, so the rule is: **a frame is handled with the
    configuration the registers held when the path last stood empty before its first beat
    was taken.** No frame is ever handled half with one configuration and half with the
    other, and a driver that stops the input, writes its registers and resumes sees every
    frame before the writes handled the old way and every frame after them the new way (the
    model's ``Nic`` applies a change between two calls). A change whose registers are
    written while traffic runs takes effect register by register, each at the next point
    (1)-(3) hold. Switching RSC off for an IP version is seen by the RSC engine's arrival log
    as a fall of its enables at the load, after every frame before it, and finalizes the
    open SCUs of that version first (``model.rsc.RscEngine.set_enables``).

Statistics (``Csr.events``, counted as ``model.nic.Nic.counters`` counts)
    TX_IN_* at ``s_axis_tx``, TX_OUT_* at ``m_axis_wire``, RX_IN_* at ``s_axis_wire``,
    RX_OUT_* at ``m_axis_rx`` (bytes by ``tkeep``, frames at ``tlast``); TX_DROP_<reason> from
    each completion's Status; TX_OVERSIZE for a host frame without LSO word longer than
    ``model.checksum.TX_MAX_FRAME`` (counted at its last beat); RX_*_CHECKSUM_FAILED from the
    checksum word of each frame as it leaves the verdict, before RSC; the RSC statistics
    (RSC_COALESCED_PKTS, _OCTETS, COALESCE_EVENTS, ABORTS, OID_TCP_RSC_STATISTICS) from the
    RSC engine's registered strobes (``RxPath.rsc_stats``), counted where ``model.rsc``
    counts them: a segment starting or joining an SCU and its TCP payload bytes, an SCU
    finalized, an exception other than the 65,535-byte limit.
"""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import regmap as rm
from nicoffload.model import rsc as rsc_model
from nicoffload.model.checksum import TX_MAX_FRAME

from .axis import AxisSignature, axis_layout, check_width
from .csr import AXIL_PORTS, CONFIG_LAYOUT, Csr, lso_config, rsc_enables, rsc_idle_timeout, \
    rx_enables
from .layouts import word_layout
from .rsc import DEFAULT_MAX_FRAME_BYTES
from .rxpath import RxPath
from .stream import RegisterSlice
from .txpath import TxPath

__all__ = ["FrameGate", "Nic"]

TXU = nbl.TxUser.width()
RXU = nbl.RxUser.width()
#: Frames counted in flight between a path's input and its configuration stage (mod 2**16).
FLIGHT_BITS = 16
_DROPS = tuple(s for s in nbl.TxStatus if s != nbl.TxStatus.SENT)


class FrameGate(wiring.Component):
    """A packet stream passed through, closed between frames while ``hold`` is high.

    Parameters
    ----------
    shape : shape-castable
        The beat (an ``axis_layout``: it needs ``last``).

    Attributes
    ----------
    s, m : In / Out(stream.Signature(shape))
        In and out; ``m.valid = s.valid`` and ``s.ready = m.ready`` while open.
    hold : In(1)
        Take no new frame: the gate closes once the frame going through (if any) has passed
        its last beat, and stays closed while ``hold`` is high. A frame is never cut.
    between : Out(1)
        No frame is partly through (a register).
    ends : Out(1)
        A frame's last beat goes through this cycle.
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({
            "s": In(stream.Signature(shape)), "m": Out(stream.Signature(shape)),
            "hold": In(1), "between": Out(1), "ends": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        inside = Signal()
        passes = Signal()
        is_open = Signal()
        m.d.comb += [
            is_open.eq(~self.hold | inside),
            self.m.payload.eq(self.s.payload),
            self.m.valid.eq(self.s.valid & is_open),
            self.s.ready.eq(self.m.ready & is_open),
            passes.eq(self.s.valid & self.s.ready),
            self.between.eq(~inside),
            self.ends.eq(passes & self.s.payload.last),
        ]
        with m.If(passes):
            m.d.sync += inside.eq(~self.s.payload.last)
        return m


def _popcount(bits):
    return sum((bits[i] for i in range(len(bits))), start=C(0, 1))


class Nic(wiring.Component):
    """The NIC top level: host and wire streams of DESIGN 2 and the AXI4-Lite registers.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.
    contexts, max_scu_bytes, max_frame_bytes : int
        The RSC engine's (``RxPath``); ``contexts`` is also HW_PARAMS.RscContexts.
    capabilities : model.config.NicCapabilities, optional
        What the capability registers report (``Csr``).

    Attributes
    ----------
    s_axis_tx : In(AxisSignature(W, 128))
        Host frames, ``nbl.TxUser`` in ``tuser`` of the first beat (``TxPath``).
    m_axis_wire : Out(AxisSignature(W))
        Wire frames (``TxPath``).
    m_axis_txc : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One TX completion per host frame, in order (``TxPath``).
    s_axis_wire : In(AxisSignature(W))
        Frames from the wire; a frame arrives (RSC's clock) in the cycle its last beat is
        taken here (``RxPath``).
    m_axis_rx : Out(AxisSignature(W, 96))
        Host frames, ``nbl.RxUser`` in ``tuser`` of the last beat (``RxPath``).
    s_axis_eoi : In(stream.Signature(1))
        End-of-indication markers: each handshake ends a receive indication after the frames
        whose last beats were taken on ``s_axis_wire`` up to that cycle (``RxPath.s_eoi``).
    s_axil_* : the AXI4-Lite slave of ``Csr`` (``hdl.csr.AXIL_PORTS``).

    The configuration rule and the statistics are in the module docstring.
    """

    def __init__(self, width=64, *, contexts=rsc_model.DEFAULT_CONTEXTS,
                 max_scu_bytes=rsc_model.DEFAULT_MAX_SCU_BYTES,
                 max_frame_bytes=DEFAULT_MAX_FRAME_BYTES, capabilities=None):
        self.width = check_width(width)
        self.rx_kw = dict(contexts=contexts, max_scu_bytes=max_scu_bytes,
                          max_frame_bytes=max_frame_bytes)
        self.csr_kw = dict(data_bytes=width // 8, rsc_contexts=contexts,
                           capabilities=capabilities)
        members = {
            "s_axis_tx": In(AxisSignature(width, TXU)),
            "m_axis_wire": Out(AxisSignature(width)),
            "m_axis_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "s_axis_wire": In(AxisSignature(width)),
            "m_axis_rx": Out(AxisSignature(width, RXU)),
            "s_axis_eoi": In(stream.Signature(1)),
        }
        members.update({name: flow(bits) for name, flow, bits in AXIL_PORTS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.csr = csr = Csr(**self.csr_kw)
        m.submodules.tx = tx = TxPath(w)
        m.submodules.rx = rx = RxPath(w, **self.rx_kw)
        m.submodules.tx_gate = tx_gate = FrameGate(axis_layout(w, TXU))
        m.submodules.rx_gate = rx_gate = FrameGate(axis_layout(w))
        m.submodules.tx_in = tx_in = RegisterSlice(axis_layout(w, TXU))
        for name, _, _ in AXIL_PORTS:
            a, b = (getattr(self, name), getattr(csr, name))
            m.d.comb += (b.eq(a) if csr.signature.members[name].flow == In else a.eq(b))

        wiring.connect(m, wiring.flipped(self.s_axis_tx), tx_gate.s)
        wiring.connect(m, tx_gate.m, tx_in.s)
        wiring.connect(m, tx_in.m, tx.s_axis_tx)
        wiring.connect(m, tx.m_axis_wire, wiring.flipped(self.m_axis_wire))
        wiring.connect(m, tx.m_axis_txc, wiring.flipped(self.m_axis_txc))
        wiring.connect(m, wiring.flipped(self.s_axis_wire), rx_gate.s)
        wiring.connect(m, rx_gate.m, rx.s_axis_wire)
        wiring.connect(m, wiring.flipped(self.s_axis_eoi), rx.s_eoi)
        wiring.connect(m, rx.m_axis_rx, wiring.flipped(self.m_axis_rx))

        txc = self.m_axis_txc
        tx_cfg = self._path_config(m, "tx_cfg", csr.cfg, tx_gate,
                                   lambda c: Cat(lso_config(c), c.offload_en.encap),
                                   tx_gate.ends, txc.valid & txc.ready)
        rx_cfg = self._path_config(
            m, "rx_cfg", csr.cfg, rx_gate,
            lambda c: Cat(rx_enables(c), rsc_enables(c), rsc_idle_timeout(c)),
            rx_gate.ends, rx.checked)
        rx_rsc_enables = Signal(2)     # named: the testbench watches it
        m.d.comb += [
            tx.limits.eq(lso_config(tx_cfg)),
            tx.encap.eq(tx_cfg.offload_en.encap),
            rx.enables.eq(rx_enables(rx_cfg)),
            rx_rsc_enables.eq(rsc_enables(rx_cfg)),
            rx.rsc_enables.eq(rx_rsc_enables),
            rx.rsc_idle_timeout.eq(rsc_idle_timeout(rx_cfg)),
        ]
        self._statistics(m, csr.events, rx)
        return m

    def _path_config(self, m, name, cfg, gate, pick, entered, done):
        """The copy of ``cfg`` a path obeys, loaded between frames when the path holds no
        frame before its configuration stage (module docstring). ``pick(cfg)`` is what the
        path uses; ``entered`` / ``done`` strobe a frame into the path / past that stage."""
        reset = rm.RegisterView(self.csr_kw["capabilities"], data_bytes=self.csr_kw["data_bytes"],
                                rsc_contexts=self.csr_kw["rsc_contexts"]).reset_values()
        init = {r.name.lower(): {f.name: f.get(reset[r.name]) for f in r.fields}
                for r in rm.REGISTERS.config}
        active = Signal(CONFIG_LAYOUT, init=init, name=name)
        pending = Signal(name=f"{name}_pending")
        ins, outs = Signal(FLIGHT_BITS, name=f"{name}_in"), Signal(FLIGHT_BITS, name=f"{name}_out")
        load = Signal(name=f"{name}_load")
        m.d.sync += pending.eq(pick(cfg) != pick(active))
        with m.If(entered):
            m.d.sync += ins.eq(ins + 1)
        with m.If(done):
            m.d.sync += outs.eq(outs + 1)
        m.d.comb += [
            gate.hold.eq(pending),
            load.eq(pending & gate.between & (ins == outs)),
        ]
        with m.If(load):
            m.d.sync += active.eq(cfg)
        return active

    def _statistics(self, m, events, rx):
        """Drive the register block's counter increments (module docstring)."""
        def port(stream_, frames, nbytes):
            moved = stream_.valid & stream_.ready
            m.d.comb += [
                getattr(events, frames).eq(moved & stream_.payload.last),
                getattr(events, nbytes).eq(Mux(moved, _popcount(stream_.payload.keep), 0)),
            ]

        port(self.s_axis_tx, "tx_in_frames", "tx_in_bytes")
        port(self.m_axis_wire, "tx_out_frames", "tx_out_bytes")
        port(self.s_axis_wire, "rx_in_frames", "rx_in_bytes")
        port(self.m_axis_rx, "rx_out_frames", "rx_out_bytes")

        # TX_OVERSIZE: a frame without LSO word past TX_MAX_FRAME, at its last beat.
        s = self.s_axis_tx
        moved = s.valid & s.ready
        inside, lso_word = Signal(), Signal(32)
        length = Signal(range(1 << 20))
        first_lso = s.payload.user[32:64]
        so_far = Mux(inside, length, 0) + _popcount(s.payload.keep)
        with m.If(moved):
            m.d.sync += [inside.eq(~s.payload.last), length.eq(so_far)]
            with m.If(~inside):
                m.d.sync += lso_word.eq(first_lso)
        word = Mux(inside, lso_word, first_lso)
        m.d.comb += events.tx_oversize.eq(moved & s.payload.last & (word == 0)
                                          & (so_far > TX_MAX_FRAME))

        txc = self.m_axis_txc
        for status in _DROPS:
            m.d.comb += getattr(events, f"tx_drop_{status.name.lower()}").eq(
                txc.valid & txc.ready & (txc.payload.Status == status))
        flags = rx.checked_flags
        m.d.comb += [
            events.rx_ip_checksum_failed.eq(rx.checked & flags.IpChecksumFailed),
            events.rx_tcp_checksum_failed.eq(rx.checked & flags.TcpChecksumFailed),
            events.rx_udp_checksum_failed.eq(rx.checked & flags.UdpChecksumFailed),
            events.rsc_coalesced_pkts.eq(rx.rsc_stats.coalesced_pkts),
            events.rsc_coalesced_octets.eq(rx.rsc_stats.coalesced_octets),
            events.rsc_coalesce_events.eq(rx.rsc_stats.coalesce_events),
            events.rsc_aborts.eq(rx.rsc_stats.aborts),
        ]
