"""The RSC mover's copy engine: landing bytes into an SCU region, realigned, payload summed."""

from amaranth.hdl import *
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..onesum import add_tree, beat_words, group_sums

from .common import CMD_LAYOUT, LANDING_SLOTS, TICKET_BITS, BufferPart


class RscCopier(BufferPart):
    """Copies landing bytes ``[src_lo, len)`` of a slot to ``dst_lo`` of an SCU region
    (``COPY`` commands, ``dst_lo >= src_lo``), realigned by a byte rotation, one command
    after another. The next command is worked out (its plan) while a copy runs; a copy reads
    the beat before its first destination beat (unless the rotation is 0: an opening copy),
    then a beat a cycle, so back-to-back copies cost their beats and at most one cycle each.
    The slot is released with the last read.

    Each region has a running one's-complement sum of its SCU's payload (16-bit words at
    their places in the region): the beats written are summed a few cycles behind the write
    (``_payload_sums``), the opening copy's (not ``multi``) payload bytes
    ``[hdr_len, hdr_len + plen)`` restarting it, a joining copy's whole write adding to it.
    ``done`` counts the copies whose last beat is written and summed.

    Attributes
    ----------
    cmd : In(stream.Signature(CMD_LAYOUT(regions)))
    land_addr : Out, land_data : In
        A read port of the landing RAM (data the cycle after the address).
    scu_addr, scu_data, scu_en : Out
        The SCU RAM's write port (a byte enable per lane), registered.
    release : Out(LANDING_SLOTS)
        A slot read out (registered, one cycle).
    sums : Out(data.ArrayLayout(32, regions))
        Each region's payload sum (under 2**32: a region holds < 2**16 words).
    done : Out(TICKET_BITS)
        Copies finished (written and summed), modulo ``2**TICKET_BITS``.
    """

    def __init__(self, width, regions, region_beats, slot_beats):
        super().__init__(width, regions, region_beats, slot_beats, {
            "cmd": In(stream.Signature(CMD_LAYOUT(regions))),
            **self.landing_reader(width, slot_beats),
            "scu_addr": Out(range(regions * region_beats)), "scu_data": Out(width),
            "scu_en": Out(width // 8),
            "release": Out(LANDING_SLOTS),
            "sums": Out(data.ArrayLayout(32, regions)),
            "done": Out(TICKET_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lg = (nb - 1).bit_length()
        beats = range(max(self.region_beats, self.slot_beats) + 2)
        plan_layout = data.StructLayout({
            "valid": 1, "slot": range(LANDING_SLOTS), "region": range(self.regions),
            "multi": 1, "dst_al": 18, "pay_lo": 18, "pay_hi": 18,
            "rot": range(nb), "lo_lane": range(nb), "hi_lane": range(nb),
            "pre_j": beats, "first_j": beats, "last_j": beats,
            # the RAM addresses' bases, worked out with the plan
            "land_base": range(LANDING_SLOTS * self.slot_beats),
            "scu_base": range(self.regions * self.region_beats + 1),
        })
        # The plan: the next command worked out while the current copy runs. Each field is
        # one adder from the command: with ``delta = dst_lo - src_lo`` (``>= 0``) and ``rot``
        # its low bits, the first source beat read into the destination beat of ``dst_lo``
        # is ``(dst_lo >> lg) - (delta >> lg)``, which is ``src_lo >> lg`` plus one when
        # ``dst_lo``'s lane is below ``rot``; the last is ``(rot + len - 1) >> lg``.
        plan, cur = Signal(plan_layout), Signal(plan_layout)
        cmd = self.cmd.payload
        m.d.comb += self.cmd.ready.eq(~plan.valid)
        with m.If(self.cmd.valid & ~plan.valid):
            rot, src_j, wraps = Signal(range(nb)), Signal(beats), Signal()
            m.d.comb += [rot.eq(cmd.dst_lo[:lg] - cmd.src_lo[:lg]), src_j.eq(cmd.src_lo >> lg),
                         wraps.eq(cmd.dst_lo[:lg] < rot)]
            m.d.sync += [
                plan.valid.eq(1), plan.slot.eq(cmd.slot), plan.region.eq(cmd.region),
                plan.multi.eq(cmd.multi), plan.dst_al.eq(cmd.dst_lo >> lg << lg),
                plan.pay_lo.eq(Mux(cmd.multi, 0, cmd.hdr_len)),
                plan.pay_hi.eq(Mux(cmd.multi, (1 << 18) - 1, cmd.hdr_len + cmd.plen)),
                plan.rot.eq(rot), plan.lo_lane.eq(cmd.dst_lo[:lg]),
                plan.hi_lane.eq(cmd.dst_lo[:lg] + cmd.len[:lg] - cmd.src_lo[:lg] - 1),
                plan.land_base.eq(self.slot_base(cmd.slot)),
                plan.scu_base.eq(self.region_base(cmd.region)
                                 + ((cmd.dst_lo - cmd.src_lo) >> lg)),
                plan.pre_j.eq(Mux(wraps, src_j, Mux(src_j == 0, 0, src_j - 1))),
                plan.first_j.eq(src_j + wraps),
                plan.last_j.eq((cmd.len + rot - 1) >> lg),
            ]

        # The copy: the beat before the first destination beat read (``pre``), then a beat a
        # cycle; the next plan taken with the last read. The read and write addresses are
        # registers that count up with the beats (an adder from the plan's registers as it
        # is taken), so no choice of beat index lies before an adder.
        j = Signal(beats)
        rd_at = Signal(range(LANDING_SLOTS * self.slot_beats + 1))
        wr_at = Signal(range(self.regions * self.region_beats + 1))
        pre, copy, first = Signal(), Signal(), Signal()
        issue, last = Signal(), Signal()
        load = Signal()
        m.d.comb += self.land_addr.eq(rd_at)
        m.d.sync += self.release.eq(0)
        with m.If(pre):
            m.d.comb += issue.eq(1)
            m.d.sync += [pre.eq(0), copy.eq(1), first.eq(1), rd_at.eq(cur.land_base + j)]
        with m.If(copy):
            m.d.comb += [issue.eq(1), last.eq(j == cur.last_j)]
            m.d.sync += [j.eq(j + 1), first.eq(0), rd_at.eq(rd_at + 1), wr_at.eq(wr_at + 1)]
            with m.If(last):
                m.d.sync += [copy.eq(0), self.release.eq(1 << cur.slot)]
        m.d.comb += load.eq(plan.valid & ((~pre & ~copy) | last))
        # What the payload's bounds are from the destination beat being read (``pay_rel``:
        # ``pay_lo`` and ``pay_hi`` less the beat's offset), counted down with the beats.
        pay_lo_rel, pay_hi_rel = Signal(signed(21)), Signal(signed(21))
        with m.If(copy):
            m.d.sync += [pay_lo_rel.eq(pay_lo_rel - nb), pay_hi_rel.eq(pay_hi_rel - nb)]
        with m.If(load):
            m.d.sync += [cur.eq(plan), plan.valid.eq(0), j.eq(plan.first_j),
                         wr_at.eq(plan.scu_base + plan.first_j),
                         pay_lo_rel.eq(plan.pay_lo - plan.dst_al),
                         pay_hi_rel.eq(plan.pay_hi - plan.dst_al)]
            # Without a rotation a destination beat is one source beat: no ``pre`` read.
            with m.If(plan.rot == 0):
                m.d.sync += [pre.eq(0), copy.eq(1), first.eq(1),
                             rd_at.eq(plan.land_base + plan.first_j)]
            with m.Else():
                m.d.sync += [pre.eq(1), rd_at.eq(plan.land_base + plan.pre_j)]

        # The destination beat takes the top bytes of the previous source beat and the
        # bottom bytes of this one. What the write needs is registered beside the read: the
        # bytes written are the beat's lanes from ``lo_lane`` on the copy's first beat and
        # up to ``hi_lane`` on its last (a copy's beats lie between the two).
        wmask = Cat(*[(~first | _lane_at_most(cur.lo_lane, i, nb))
                      & (~last | ~_lane_at_most(cur.hi_lane, i - 1, nb)) for i in range(nb)])
        pmask = Cat(*[_lane_at_or_after(pay_lo_rel, i, lg) & ~_lane_at_or_after(pay_hi_rel, i, lg)
                      for i in range(nb)])
        p_valid, p_pre, p_last, p_restart = Signal(), Signal(), Signal(), Signal()
        wmask_q, pay_mask_q, rot_q = Signal(nb), Signal(nb), Signal(range(nb))
        wr_addr = Signal(range(self.regions * self.region_beats))
        wr_region = Signal(range(self.regions))
        m.d.sync += [p_valid.eq(issue), p_pre.eq(pre), p_last.eq(last),
                     p_restart.eq(copy & first & ~cur.multi),
                     wmask_q.eq(wmask), pay_mask_q.eq(wmask & pmask), rot_q.eq(cur.rot),
                     wr_region.eq(cur.region), wr_addr.eq(wr_at)]
        prev = Signal(w)
        with m.If(p_valid):
            m.d.sync += prev.eq(self.land_data)
        shift = Signal(range(8 * nb + 1))
        write = Signal()
        m.d.comb += [shift.eq((nb - rot_q) << 3), write.eq(p_valid & ~p_pre)]
        # The write port is driven from registers (the realigning shift is before them): the
        # payload sums take the registered beat as their first stage, so the sums and
        # ``done`` come when they did, the write a cycle later (still before ``done``).
        m.d.sync += [
            self.scu_addr.eq(wr_addr),
            self.scu_data.eq((Cat(prev, self.land_data) >> shift)[:w]),
            self.scu_en.eq(Mux(write, wmask_q, 0)),
        ]
        self._payload_sums(m, write, p_last, p_restart, wr_region, self.scu_data, pay_mask_q)
        return m

    def _payload_sums(self, m, write, last, restart, region, beat_q, pay_mask):
        """Each region's payload sum (``sums``), from the beats written to its region: the
        beat (``beat_q``, the write port's register, loaded as ``write`` and the others
        are given) and its payload bytes registered, the words' group sums, their sum, then
        the region's register (``restart``: the first beat of an opening copy replaces it);
        ``done`` counts the copies whose last beat has been added."""
        w = self.width
        mask_q = Signal(w // 8)
        stages = [Signal(3 + len(region), name=f"sum_stage{k}") for k in range(3)]
        m.d.sync += [stages[0].eq(Cat(write, restart, last, region)), mask_q.eq(pay_mask)]
        groups = group_sums(beat_words(beat_q, mask_q, w))
        groups_q = [Signal(len(g), name=f"sum_group{k}") for k, g in enumerate(groups)]
        m.d.sync += [q.eq(g) for q, g in zip(groups_q, groups)]
        beat_sum = Signal(len(add_tree(groups_q)))
        m.d.sync += [stages[1].eq(stages[0]), stages[2].eq(stages[1]),
                     beat_sum.eq(add_tree(groups_q))]
        valid, first, ends, at = stages[2][0], stages[2][1], stages[2][2], stages[2][3:]
        for i in range(self.regions):
            total = self.sums[i]
            with m.If(valid & (at == i)):
                m.d.sync += total.eq(Mux(first, 0, total) + beat_sum)
        with m.If(valid & ends):
            m.d.sync += self.done.eq(self.done + 1)


def _lane_at_or_after(rel, i, lg):
    """Lane ``i`` of a beat is at or after the byte ``rel`` bytes from the beat's first
    (``rel <= i``, ``rel`` signed): the sign, a NOR of the high bits and a small compare,
    no carry chain."""
    high = rel[lg:-1]
    return rel[-1] | ((high == 0) & _lane_at_most(rel[:lg], i, 1 << lg))


def _lane_at_most(lane, i, nb):
    """``lane <= i`` for a lane (``range(nb)``), without a compare that is constant."""
    if i < 0:
        return C(0, 1)
    return C(1, 1) if i >= nb - 1 else lane <= i
