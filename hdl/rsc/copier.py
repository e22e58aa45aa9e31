"""The RSC mover's copy engine: landing bytes into an SCU region, realigned, payload summed."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checksum import range_mask
from ..onesum import add_tree, beat_words, group_sums

from .common import CMD_LAYOUT, LANDING_SLOTS, TICKET_BITS


class RscCopier(wiring.Component):
    """Copies landing bytes ``[src_lo, len)`` of a slot to ``dst_lo`` of a context's region
    (``COPY`` commands, ``dst_lo >= src_lo``), realigned by a byte rotation, one command after
    another: a cycle to take the command, a cycle to work out the copy (and read the beat
    before the first), then a beat a cycle. The slot is released with the last read.

    Each context has a running one's-complement sum of its SCU's payload (16-bit words at
    their places in the region): the beats written are summed a few cycles behind the write
    (``_payload_sums``), the opening copy's (not ``multi``) payload bytes
    ``[hdr_len, hdr_len + plen)`` restarting it, a joining copy's whole write adding to it.
    ``done`` counts the copies whose last beat is written and summed.

    Attributes
    ----------
    cmd : In(stream.Signature(CMD_LAYOUT(contexts)))
    land_addr : Out, land_data : In
        A read port of the landing RAM (data the cycle after the address).
    scu_addr, scu_data, scu_en : Out
        The SCU RAM's write port (a byte enable per lane).
    release : Out(LANDING_SLOTS)
        A slot read out (registered, one cycle).
    sums : Out(data.ArrayLayout(32, contexts))
        Each context's payload sum (under 2**32: a region holds < 2**16 words).
    done : Out(TICKET_BITS)
        Copies finished (written and summed), modulo ``2**TICKET_BITS``.
    """

    def __init__(self, width, contexts, region_beats, slot_beats):
        self.width = width
        self.contexts = contexts
        self.region_beats = region_beats
        self.slot_beats = slot_beats
        super().__init__({
            "cmd": In(stream.Signature(CMD_LAYOUT(contexts))),
            "land_addr": Out(range(LANDING_SLOTS * slot_beats)), "land_data": In(width),
            "scu_addr": Out(range(contexts * region_beats)), "scu_data": Out(width),
            "scu_en": Out(width // 8),
            "release": Out(LANDING_SLOTS),
            "sums": Out(data.ArrayLayout(32, contexts)),
            "done": Out(TICKET_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lg = (nb - 1).bit_length()
        c = Signal(CMD_LAYOUT(self.contexts))
        beats = range(max(self.region_beats, self.slot_beats) + 2)
        j, last_j, rd_j = Signal(beats), Signal(beats), Signal(beats)
        issue, pre, last = Signal(), Signal(), Signal()
        p_valid, p_pre, p_last = Signal(), Signal(), Signal()
        d_beats, rot, dst_hi = Signal(beats), Signal(range(nb)), Signal(18)
        # The payload bytes of the copy to sum, [pay_lo, pay_hi) of the region.
        pay_lo, pay_hi = Signal(18), Signal(18)
        restart = Signal()
        prev = Signal(w)
        m.d.comb += self.land_addr.eq(c.slot * self.slot_beats + rd_j)
        m.d.sync += [p_valid.eq(issue), p_pre.eq(pre), p_last.eq(last), self.release.eq(0)]

        idle, init, copy = Signal(init=1), Signal(), Signal()
        m.d.comb += self.cmd.ready.eq(idle)
        with m.If(idle & self.cmd.valid):
            m.d.sync += [c.eq(self.cmd.payload), idle.eq(0), init.eq(1)]
        with m.If(init):
            # The copy worked out; the beat before the first destination beat read.
            delta = Signal(18)
            j0, r0 = Signal(beats), Signal(signed(20))
            m.d.comb += [delta.eq(c.dst_lo - c.src_lo), j0.eq(c.dst_lo >> lg),
                         r0.eq(j0 - (delta >> lg))]
            m.d.sync += [d_beats.eq(delta >> lg), rot.eq(delta[:lg] if lg else 0),
                         pay_lo.eq(Mux(c.multi, 0, c.hdr_len)),
                         pay_hi.eq(Mux(c.multi, (1 << len(pay_hi)) - 1, c.hdr_len + c.plen)),
                         dst_hi.eq(c.dst_lo + c.len - c.src_lo),
                         j.eq(r0), restart.eq(~c.multi),
                         last_j.eq(((c.dst_lo + c.len - c.src_lo - 1) >> lg) - (delta >> lg)),
                         init.eq(0), copy.eq(1)]
            m.d.comb += [rd_j.eq(Mux(r0 > 0, r0 - 1, 0)), issue.eq(1), pre.eq(1)]
        with m.If(copy):
            m.d.comb += [rd_j.eq(j), issue.eq(1), last.eq(j == last_j)]
            m.d.sync += j.eq(j + 1)
            with m.If(j == last_j):
                m.d.sync += [copy.eq(0), idle.eq(1),
                             self.release.eq(1 << c.slot)]

        # The destination beat takes the top bytes of the previous source beat and the
        # bottom bytes of this one. What depends on the destination beat's place is worked
        # out a cycle ahead, beside the read.
        dst_base = Signal(20)
        m.d.comb += dst_base.eq((rd_j + d_beats) << lg)
        wmask, s1 = range_mask(dst_base, c.dst_lo, dst_hi, nb)
        pmask, s2 = range_mask(dst_base, pay_lo, pay_hi, nb)
        m.d.comb += s1 + s2
        wmask_q, pay_mask_q = Signal(nb), Signal(nb)
        wr_addr = Signal(range(self.contexts * self.region_beats))
        wr_ctx = Signal(range(self.contexts))
        m.d.sync += [wmask_q.eq(wmask), pay_mask_q.eq(wmask & pmask), wr_ctx.eq(c.ctx),
                     wr_addr.eq(c.ctx * self.region_beats + rd_j + d_beats)]
        with m.If(p_valid):
            m.d.sync += prev.eq(self.land_data)
        shift = Signal(range(8 * nb + 1))
        write = Signal()
        m.d.comb += [
            shift.eq((nb - rot) << 3),
            write.eq(p_valid & ~p_pre),
            self.scu_addr.eq(wr_addr),
            self.scu_data.eq((Cat(prev, self.land_data) >> shift)[:w]),
            self.scu_en.eq(Mux(write, wmask_q, 0)),
        ]
        with m.If(write):
            m.d.sync += restart.eq(0)
        self._payload_sums(m, write, p_last, restart, wr_ctx, self.scu_data, pay_mask_q)
        return m

    def _payload_sums(self, m, write, last, restart, ctx, wdata, pay_mask):
        """Each context's payload sum (``sums``), from the beats written to its region: the
        beat and its payload bytes registered, the words' group sums, their sum, then the
        context's register (``restart``: the first beat of an opening copy replaces it);
        ``done`` counts the copies whose last beat has been added."""
        w = self.width
        beat_q, mask_q = Signal(w), Signal(w // 8)
        stages = [Signal(3 + len(ctx), name=f"sum_stage{k}") for k in range(3)]
        m.d.sync += [stages[0].eq(Cat(write, restart, last, ctx)), beat_q.eq(wdata),
                     mask_q.eq(pay_mask)]
        groups = group_sums(beat_words(beat_q, mask_q, w))
        groups_q = [Signal(len(g), name=f"sum_group{k}") for k, g in enumerate(groups)]
        m.d.sync += [q.eq(g) for q, g in zip(groups_q, groups)]
        beat_sum = Signal(len(add_tree(groups_q)))
        m.d.sync += [stages[1].eq(stages[0]), stages[2].eq(stages[1]),
                     beat_sum.eq(add_tree(groups_q))]
        valid, first, ends, at = stages[2][0], stages[2][1], stages[2][2], stages[2][3:]
        for i in range(self.contexts):
            total = self.sums[i]
            with m.If(valid & (at == i)):
                m.d.sync += total.eq(Mux(first, 0, total) + beat_sum)
        with m.If(valid & ends):
            m.d.sync += self.done.eq(self.done + 1)
