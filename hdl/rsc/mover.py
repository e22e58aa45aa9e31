"""The RSC engine's data mover: payload into the SCU buffer, headers rewritten, SCUs out."""

from amaranth.hdl import *
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import rsc as model
from nicoffload.model.parse import IPPROTO_TCP, VLAN_TPIDS

from ..axis import AxisSignature, axis_layout, check_width
from ..checksum import effective_error, range_mask
from ..onesum import add_tree, beat_words, fold16, group_sums
from ..parse import HEADERS_LAYOUT, L3_OFFSETS, FrameParser
from ..stream import RegisterSlice, StreamFIFO


from .common import *  # noqa: F401,F403
from .common import patch_beat, patch_lanes
from .common import (_PSH, _SCU_CSUM4, _SCU_CSUM6, _be, _byte,  # noqa: F401
                     _serial_ge)

class RscMover(wiring.Component):
    """The data mover: landing RAM, SCU RAM, and the output.

    Commands (``CMD_LAYOUT``), one at a time (``busy`` from the cycle after the handshake
    until done): ``EMIT_LAND`` sends a landing slot's frame unchanged; ``EMIT_SCU`` sends a
    context's region, with ``multi`` after a summing pass over its headers and with every SCU
    field rewritten; ``COPY`` copies landing bytes ``[src_lo, len)`` of a slot to ``dst_lo``
    of a context's region (``dst_lo >= src_lo``), realigned by a byte rotation.

    Each context has a running one's-complement sum of its SCU's payload (16-bit words at
    their places in the region): the beats a ``COPY`` writes are summed a few cycles behind
    the write (``_payload_sums``), the opening copy's (not ``multi``) payload bytes
    ``[hdr_len, hdr_len + plen)`` restarting it, a joining copy's whole write adding to it.
    The summing pass of an ``EMIT_SCU`` reads only the beats up to ``hdr_len`` and adds the
    context's payload sum, so an SCU of several segments costs its header beats and then its
    beats once.

    Attributes
    ----------
    cmd : In(stream.Signature(CMD_LAYOUT(contexts)))
    busy : Out(1)
    land_addr, land_data, land_en : In
        The landing RAM's write port (from :class:`RscIngress`).
    m : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    """

    OUT_DEPTH = 8

    # The state machine is a state register and ``If``/``Elif`` chains (``m.FSM`` becomes
    # Verilog ``case`` statements without ``default``: Verilator's CASEINCOMPLETE).

    def __init__(self, width, contexts, region_beats, slot_beats):
        self.width = width
        self.contexts = contexts
        self.region_beats = region_beats
        self.slot_beats = slot_beats
        super().__init__({
            "cmd": In(stream.Signature(CMD_LAYOUT(contexts))), "busy": Out(1),
            "land_addr": In(range(2 * slot_beats)), "land_data": In(width), "land_en": In(1),
            "m": Out(AxisSignature(width, RXU)),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lg = (nb - 1).bit_length()
        m.submodules.land = land = memory.Memory(shape=unsigned(w), depth=2 * self.slot_beats,
                                                 init=[])
        lw, lr = land.write_port(), land.read_port()
        m.submodules.scu = scu = memory.Memory(
            shape=unsigned(w), depth=self.contexts * self.region_beats, init=[])
        sw, sr = scu.write_port(granularity=8), scu.read_port()
        m.submodules.outq = outq = StreamFIFO(axis_layout(w, RXU), self.OUT_DEPTH)
        m.submodules.out = out = RegisterSlice(axis_layout(w, RXU))
        wiring.connect(m, outq.m, out.s)
        wiring.connect(m, out.m, wiring.flipped(self.m))
        m.d.comb += [lw.addr.eq(self.land_addr), lw.data.eq(self.land_data),
                     lw.en.eq(self.land_en)]

        c = Signal(CMD_LAYOUT(self.contexts))
        beats = range(max(self.region_beats, self.slot_beats) + 2)
        j, last_j, rd_j = Signal(beats), Signal(beats), Signal(beats)
        issue, pre = Signal(), Signal()
        src_scu, pass1, copy = Signal(), Signal(), Signal()
        p_valid, p_j, p_last, p_pre = Signal(), Signal(beats), Signal(), Signal()
        ip_acc, l4_acc = Signal(40), Signal(40)
        ip_csum, tcp_csum = Signal(16), Signal(16)
        tcp_len = Signal(17)        # the SCU's TCP header and payload bytes, from the command
        d_beats, rot, dst_hi = Signal(beats), Signal(range(nb)), Signal(18)
        # The payload sums (``_payload_sums``): the bytes of the copy to sum, [pay_lo, pay_hi)
        # of the region; each context's sum (under 2**32: a region holds < 2**16 words).
        pay_lo, pay_hi = Signal(18), Signal(18)
        restart, sums_busy = Signal(), Signal()
        ctx_sums = [Signal(32, name=f"payload_sum{i}") for i in range(self.contexts)]
        payload_sum = Signal(32)
        prev = Signal(w)
        m.d.comb += [
            lr.addr.eq(c.slot * self.slot_beats + rd_j),
            sr.addr.eq(c.ctx * self.region_beats + rd_j),
        ]
        m.d.sync += [p_valid.eq(issue), p_j.eq(rd_j), p_last.eq(rd_j == last_j), p_pre.eq(pre)]

        state = Signal(range(len(_STATES)), name="state")
        st = {name: state == code for name, code in _STATES.items()}

        def goto(name):
            m.d.sync += state.eq(_STATES[name])

        with m.If(st["IDLE"]):
            m.d.comb += self.cmd.ready.eq(1)
            with m.If(self.cmd.valid):
                p = self.cmd.payload
                header_pass = (p.op == OP_EMIT_SCU) & p.multi
                m.d.sync += [c.eq(p), self.busy.eq(1), j.eq(0), ip_acc.eq(0), l4_acc.eq(0),
                             ip_csum.eq(0), tcp_csum.eq(0),
                             last_j.eq(Mux(header_pass, (p.hdr_len - 1) >> lg,
                                           (p.len - 1) >> lg)),
                             tcp_len.eq(p.hdr_len - p.l4 + p.plen),
                             src_scu.eq(p.op == OP_EMIT_SCU),
                             pass1.eq(header_pass),
                             copy.eq(p.op == OP_COPY)]
                with m.If(p.op == OP_COPY):
                    goto("COPY_INIT")
                with m.Else():
                    goto("READ")
        with m.Elif(st["READ"]):
            m.d.comb += [rd_j.eq(j), issue.eq(pass1 | (outq.level < self.OUT_DEPTH - 2))]
            with m.If(issue):
                m.d.sync += j.eq(j + 1)
                with m.If(j == last_j):
                    goto("DRAIN")
        with m.Elif(st["DRAIN"]):
            with m.If(pass1):
                goto("CSUM")
            with m.Else():
                m.d.sync += self.busy.eq(0)
                goto("IDLE")
        with m.Elif(st["CSUM"]):
            # The TCP length and protocol into the sum; once every copy's beats are summed,
            # the context's payload sum (PAY adds it), then the folds.
            with m.If(~sums_busy):
                m.d.sync += [l4_acc.eq(l4_acc + IPPROTO_TCP + tcp_len),
                             payload_sum.eq(one_hot_select(c.ctx, ctx_sums))]
                goto("PAY")
        with m.Elif(st["PAY"]):
            m.d.sync += l4_acc.eq(l4_acc + payload_sum)
            goto("FOLD")
        with m.Elif(st["FOLD"]):
            m.d.sync += [ip_csum.eq(~fold16(ip_acc)), tcp_csum.eq(~fold16(l4_acc)),
                         pass1.eq(0), j.eq(0), last_j.eq((c.len - 1) >> lg)]
            goto("READ")
        with m.Elif(st["COPY_INIT"]):
            delta = Signal(18)
            j0, r0 = Signal(beats), Signal(signed(20))
            m.d.comb += [delta.eq(c.dst_lo - c.src_lo), j0.eq(c.dst_lo >> lg),
                         r0.eq(j0 - (delta >> lg))]
            m.d.sync += [d_beats.eq(delta >> lg), rot.eq(delta[:lg] if lg else 0),
                         pay_lo.eq(Mux(c.multi, 0, c.hdr_len)),
                         pay_hi.eq(Mux(c.multi, (1 << len(pay_hi)) - 1, c.hdr_len + c.plen)),
                         dst_hi.eq(c.dst_lo + c.len - c.src_lo),
                         j.eq(r0),
                         last_j.eq(((c.dst_lo + c.len - c.src_lo - 1) >> lg) - (delta >> lg))]
            m.d.comb += [rd_j.eq(Mux(r0 > 0, r0 - 1, 0)), issue.eq(1), pre.eq(1)]
            goto("COPY")
        with m.Elif(st["COPY"]):
            m.d.comb += [rd_j.eq(j), issue.eq(1)]
            m.d.sync += j.eq(j + 1)
            with m.If(j == last_j):
                goto("DRAIN")

        # The stage after a read: the beat is in the RAM's read register.
        rdata = Mux(src_scu, sr.data, lr.data)
        base = Signal(20)
        m.d.comb += base.eq(p_j << lg)
        # What depends on the beat's position only is worked out from the read address a
        # cycle ahead, into registers beside the read (the RAMs' read registers).
        rd_base = Signal(20)
        m.d.comb += rd_base.eq(rd_j << lg)
        fields = [
            (~c.v6, c.l3 + 2, (tcp_len + 20)[:16], 2),
            (c.v6, c.l3 + 4, tcp_len[:16], 2),
            (C(1, 1), c.l3 + Mux(c.v6, 7, 8), c.hop, 1),
            (~c.v6, c.l3 + 10, ip_csum, 2),
            (C(1, 1), c.l4 + 8, c.ack, 4),
            (C(1, 1), c.l4 + 13, c.flags, 1),
            (C(1, 1), c.l4 + 14, c.wnd, 2),
            (C(1, 1), c.l4 + 16, tcp_csum, 2),
            (c.ts, c.ts_off + 2, Cat(c.tsecr, c.tsval), 8),
        ]
        lanes, stmts = patch_lanes(rd_base, nb, fields)
        lanes_q = [Signal(len(at), name=f"patch_lanes{i}") for i, at in enumerate(lanes)]
        m.d.comb += stmts
        m.d.sync += [q.eq(at) for q, at in zip(lanes_q, lanes)]
        patched = patch_beat(rdata, nb, fields, lanes_q)
        beat = Signal(w)
        m.d.comb += beat.eq(Mux(src_scu & c.multi, patched, rdata))
        keep = Signal(nb)
        m.d.sync += keep.eq(Cat(*[(rd_j != last_j) | (rd_base + k < c.len) for k in range(nb)]))
        # Summing pass: IPv4 header, TCP pseudo-header addresses, TCP header (and options).
        ip_mask, s1 = range_mask(rd_base, c.l3, c.l3 + Mux(c.v6, 0, 20), nb)
        l4_mask, s2 = range_mask(rd_base, c.l4, c.hdr_len, nb)
        ad_mask, s3 = range_mask(rd_base, c.l3 + Mux(c.v6, 8, 12), c.l3 + Mux(c.v6, 40, 20), nb)
        m.d.comb += s1 + s2 + s3
        ip_lanes, l4_lanes = Signal(nb), Signal(nb)
        m.d.sync += [ip_lanes.eq(ip_mask), l4_lanes.eq(l4_mask | ad_mask)]
        with m.If(p_valid & pass1):
            m.d.sync += [
                ip_acc.eq(ip_acc + add_tree(beat_words(beat, ip_lanes, w))),
                l4_acc.eq(l4_acc + add_tree(beat_words(beat, l4_lanes & keep, w))),
            ]
        m.d.comb += [
            outq.s.valid.eq(p_valid & ~pass1 & ~copy),
            outq.s.payload.data.eq(beat), outq.s.payload.keep.eq(keep),
            outq.s.payload.last.eq(p_last),
            outq.s.payload.user.eq(Mux(p_last, c.user, 0)),
        ]
        # Copy: the destination beat takes the top bytes of the previous source beat and the
        # bottom bytes of this one.
        dst_base = Signal(20)
        m.d.comb += dst_base.eq((rd_j + d_beats) << lg)
        wmask, s4 = range_mask(dst_base, c.dst_lo, dst_hi, nb)
        pmask, s5 = range_mask(dst_base, pay_lo, pay_hi, nb)
        wmask_q, wr_addr = Signal(nb), Signal(range(self.contexts * self.region_beats))
        pay_mask_q = Signal(nb)
        m.d.comb += s4 + s5
        m.d.sync += [wmask_q.eq(wmask), wr_addr.eq(c.ctx * self.region_beats + rd_j + d_beats),
                     pay_mask_q.eq(wmask & pmask)]
        with m.If(p_valid & copy):
            m.d.sync += prev.eq(lr.data)
        shift = Signal(range(8 * nb + 1))
        m.d.comb += shift.eq((nb - rot) << 3)
        m.d.comb += [
            sw.addr.eq(wr_addr),
            sw.data.eq((Cat(prev, lr.data) >> shift)[:w]),
            sw.en.eq(Mux(p_valid & copy & ~p_pre, wmask_q, 0)),
        ]
        # The payload sums: each beat written, its payload bytes, from the write port.
        write = Signal()
        m.d.comb += write.eq(p_valid & copy & ~p_pre)
        with m.If(st["IDLE"] & self.cmd.valid):
            m.d.sync += restart.eq(~self.cmd.payload.multi)
        with m.If(write):
            m.d.sync += restart.eq(0)
        self._payload_sums(m, write, restart, c.ctx, sw.data, pay_mask_q, ctx_sums, sums_busy)
        return m

    def _payload_sums(self, m, write, restart, ctx, wdata, pay_mask, ctx_sums, sums_busy):
        """Each context's payload sum (``ctx_sums``), from the beats written to its region:
        the beat and its payload bytes registered, the words' group sums, their sum, then the
        context's register (``restart``: the first beat of an opening copy replaces it).
        ``sums_busy`` while a written beat is still on its way."""
        w = self.width
        beat_q, mask_q = Signal(w), Signal(w // 8)
        stages = [Signal(1 + 1 + len(ctx), name=f"sum_stage{k}") for k in range(3)]
        m.d.sync += [stages[0].eq(Cat(write, restart, ctx)), beat_q.eq(wdata),
                     mask_q.eq(pay_mask)]
        groups = group_sums(beat_words(beat_q, mask_q, w))
        groups_q = [Signal(len(g), name=f"sum_group{k}") for k, g in enumerate(groups)]
        m.d.sync += [q.eq(g) for q, g in zip(groups_q, groups)]
        beat_sum = Signal(len(add_tree(groups_q)))
        m.d.sync += [stages[1].eq(stages[0]), stages[2].eq(stages[1]),
                     beat_sum.eq(add_tree(groups_q))]
        valid, first, at = stages[2][0], stages[2][1], stages[2][2:]
        for i, total in enumerate(ctx_sums):
            with m.If(valid & (at == i)):
                m.d.sync += total.eq(Mux(first, 0, total) + beat_sum)
        m.d.comb += sums_busy.eq(write | stages[0][0] | stages[1][0] | stages[2][0])


_STATES = {name: code for code, name in enumerate(
    ("IDLE", "READ", "DRAIN", "CSUM", "PAY", "FOLD", "COPY_INIT", "COPY"))}
