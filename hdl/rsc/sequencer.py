"""The RSC engine's sequencer: flow contexts, lookup, the coalescing rules, the idle timer."""

import operator

from amaranth.hdl import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import rsc as model

from ..onesum import balanced_tree

from .common import (ADDR_BITS, CMD_LAYOUT, DESC_LAYOUT, EVENT_LAYOUT, LANDING_SLOTS, OP_COPY,
                     resolve_regions,
                     OP_EMIT_LAND, OP_EMIT_SCU, RSC_STATS_LAYOUT, SEG_KIND_EXC, SEG_KIND_FRAG,
                     SEG_KIND_PASS, STATE_LAYOUT, TAG_LAYOUT, TIME_BITS, _PSH, _SCU_CSUM4,
                     _SCU_CSUM6, _serial_ge, or_tree)


class RscSequencer(wiring.Component):
    """The flow table and the rules: one event (and its frame's descriptor) at a time.

    For each event it first ends the SCUs the idle timer has ended (``now``), then (``dis``)
    flushes every SCU, then decides the frame as ``model.rsc.RscEngine.receive`` does, then
    (``eoi``) flushes every SCU; each step is one or more :class:`RscMover` commands, handed
    over without waiting for them to be carried out (the mover keeps them apart). An SCU opens
    in a free context and a free SCU region: one that no open SCU holds and that is not still
    being emitted (``regions_busy``). There are more regions than contexts (``regions``), so
    the SCU that opens as another is evicted for it (more flows than contexts) need not wait
    for the evicted one's emission; when no region is free, the decision waits.

    Parameters
    ----------
    contexts : int
        Flow contexts.
    max_scu_bytes : int
        Largest SCU.
    regions : int
        SCU regions of the mover (at least ``contexts``); default
        :func:`~.common.default_regions`.

    Attributes
    ----------
    events : In(stream.Signature(EVENT_LAYOUT))
    now : In(TIME_BITS)
    idle_timeout : In(TIME_BITS)
        Cycles; 0: no timer.
    desc : In(stream.Signature(DESC_LAYOUT))
    cmd : Out(stream.Signature(CMD_LAYOUT(regions)))
    regions_busy : In(regions)
        Regions the mover has still to read out for an emission.
    release : Out(LANDING_SLOTS)
        The frame in that landing slot has been dealt with without a command (a window
        update); the mover releases the slots of the frames it copies or sends.
    stats : Out(RSC_STATS_LAYOUT)
        OID_TCP_RSC_STATISTICS increments (registered), counted where ``model.rsc`` counts
        them: a segment that starts or joins an SCU, an SCU finalized, an Abort.

    The state machine is a state register and ``If``/``Elif`` chains (not ``m.FSM``, which
    Amaranth writes as ``case`` statements without ``default``: Verilator's CASEINCOMPLETE).

    The lookup compares short tags, not the flow key: each context keeps in flip-flops a
    ``TAG_BITS``-bit hash of its key's addresses (:func:`addr_tag`) and its ports; LOOK
    registers the candidates (the contexts whose tag, and ports unless the frame is a
    fragment, equal the descriptor's), FIND picks the oldest opened, RULE compares its whole
    address key (a LUT RAM beside the states) with the descriptor's (and the rules' compares),
    JUDGE registers the hit and the rules' verdicts, and SEG takes it as the hit only when
    they are equal; when they are not and another candidate is left (two tags
    alike), SEG drops it and goes back to FIND. So the hit is the model's exact match, and
    the descriptor's key goes to one compare, not one per context.
    """

    #: Bits of a context's address tag (a class attribute so a test can make tags collide).
    TAG_BITS = 16

    def __init__(self, contexts, max_scu_bytes, regions=None):
        self.contexts = contexts
        self.regions = regions = resolve_regions(contexts, regions)
        self.max_scu_bytes = max_scu_bytes
        super().__init__({
            "events": In(stream.Signature(EVENT_LAYOUT)), "now": In(TIME_BITS),
            "idle_timeout": In(TIME_BITS), "desc": In(stream.Signature(DESC_LAYOUT)),
            "cmd": Out(stream.Signature(CMD_LAYOUT(regions))), "regions_busy": In(regions),
            "release": Out(LANDING_SLOTS), "stats": Out(RSC_STATS_LAYOUT),
        })

    def _first(self, m, bits, before, name):
        """The index i of ``bits`` set that is ``before(i, j)`` every other j set. ``before``
        orders the contexts of ``bits`` (one wins when any is set), so the index is the OR
        of the winners' (a LUT level after the one-hot winners, no priority chain)."""
        n = self.contexts
        idx = Signal(range(n), name=f"{name}_idx")
        wins = []
        for i in range(n):
            win = bits[i]
            for k in range(n):
                if k != i:
                    win = win & (~bits[k] | before(i, k))
            wins.append(win)
        m.d.comb += idx.eq(or_tree([Mux(win, i, 0) for i, win in enumerate(wins)]))
        return bits.any(), idx

    def _order(self, m, name, newest):
        """An order of the contexts as flip-flops, one per pair: ``before(i, k)`` is set when
        context ``i`` became the newest (``newest``, one-hot, at most one bit a cycle) before
        ``k`` did. Only the contexts' relative order is kept, so no time or counter is
        compared (the model's ``opened`` and ``last_join`` order the same way: each is the
        newest when it is set); pairs with a context not open are not read."""
        n = self.contexts
        bits = {(i, k): Signal(name=f"{name}_{i}_{k}") for i in range(n) for k in range(n)
                if i != k}
        for (i, k), bit in bits.items():
            with m.If(newest[k]):
                m.d.sync += bit.eq(1)
            with m.Elif(newest[i]):
                m.d.sync += bit.eq(0)
        return lambda i, k: bits[(i, k)]

    def _expired(self, m, ctx):
        """The contexts the idle timer has ended, from each SCU's age a cycle old: IDLE reads
        them only when the oldest event (or, with none, the cycle) is what it was a cycle
        earlier, or the ages are of a cycle before an event can be in the log (an event
        stamped t is in the log from t + 1), so the SCUs ended are those the current "now"
        ends. The age is compared with the timeout before the register (with the timeout of
        that cycle: a register the driver sets, not while the engine runs), only ``valid``
        after."""
        idle = [Signal(name=f"idle{i}") for i in range(self.contexts)]
        m.d.sync += [
            late.eq((self.idle_timeout != 0)
                    & ((self.now - c.lj)[:TIME_BITS] >= self.idle_timeout))
            for late, c in zip(idle, ctx)]
        return Cat(*[c.valid & late for late, c in zip(idle, ctx)])

    def elaborate(self, platform):
        m = Module()
        n = self.contexts
        ctx = [Signal(TAG_LAYOUT(self.TAG_BITS), name=f"ctx{i}") for i in range(n)]
        rd_idx, rd_load, rd_next = self._read_index(m)
        d = self.desc.payload
        # h: the candidate's context (FIND's cand_idx) in RULE and SEG, FLUSH's
        h, later = self._states(m, rd_load, rd_next, d)
        region_rd, region_wr, held, any_region, region_idx = self._regions(m, rd_idx)
        ev = Signal(EVENT_LAYOUT)
        cmd = Signal(CMD_LAYOUT(self.regions))
        # handed: the frame went to the mover (copied or sent), which releases its slot
        ret, alone_next, handed = Signal(3), Signal(), Signal()
        opening, joining = Signal(n), Signal(n)     # this cycle's SCU opened / joined
        # The state one-hot, each state's branch an ``If`` of its own (an ``Elif`` chain ANDs
        # the negations of the states before it: Yosys does not know them apart).
        state = Signal(len(_STATES), init=1 << _STATES["IDLE"], name="state")
        st = {name: state[code] for name, code in _STATES.items()}

        def goto(name):
            m.d.sync += state.eq(1 << _STATES[name])

        valid = Cat(*[c.valid for c in ctx])
        kind = Mux(Mux(d.key.v6, ev.en6, ev.en4), d.kind, SEG_KIND_PASS)
        cand_eq, d_addr, d_tag = self._candidates(m, ctx, d, kind == SEG_KIND_FRAG)
        cand = Signal(n)
        expired = self._expired(m, ctx)
        opened_before = self._order(m, "opened_before", opening)
        joined_before = self._order(m, "joined_before", opening | joining)
        any_exp, exp_idx = self._first(m, expired, joined_before, "exp")
        any_valid, old_idx = self._first(m, valid, opened_before, "old")
        any_cand, cand_idx = self._first(m, cand, opened_before, "cand")
        any_free, free_idx = self._first(m, ~valid, _lower, "free")
        # LOOK registers the candidates, FIND the lookup (which contexts), RULE the rules
        # against the candidate's context and whether its address key is the descriptor's;
        # JUDGE the hit and the rules' verdicts; SEG decides on them.
        # Every change of the contexts in SEG leaves SEG, and the way back is through LOOK.
        found = {"any_cand": any_cand, "cand_idx": cand_idx,
                 "more_cands": (cand & (cand - 1)) != 0,
                 "any_free": any_free, "any_region": any_region,
                 "free_idx": free_idx, "region_idx": region_idx, "old_idx": old_idx}
        look = {name: Signal(Value.cast(v).shape(), name=f"look_{name}")
                for name, v in found.items()}
        key_eq = self._key_eq(m, st["FIND"], cand_idx, later.write & later.opened, later.at,
                              d_addr)
        m.d.comb += [region_wr.en.eq(later.write & later.opened), region_wr.addr.eq(later.at),
                     region_wr.data.eq(look["region_idx"])]
        # From RULE's registers JUDGE registers for SEG the hit (the candidate's address key is
        # the descriptor's; its ports were compared in LOOK), whether to try the next candidate
        # and the rules' verdicts: SEG's decisions start from flip-flops.
        key_eq_q, hit, retry, too_long = Signal.like(key_eq), Signal(), Signal(), Signal()
        with m.If(st["JUDGE"]):
            m.d.sync += [hit.eq(look["any_cand"] & key_eq_q.all()),
                         retry.eq(look["any_cand"] & ~key_eq_q.all() & look["more_cands"])]
        goes_alone, ends_scus = Signal(), Signal()

        # The command that indicates a context's SCU, and the one that sends a frame alone.
        flush_cmd = self._flush_cmd(m, h, region_rd.data)
        seg_copy = Signal()
        seg_cmd = self._seg_cmd(m, d, h, seg_copy, hit & ~goes_alone, region_rd.data,
                                look["region_idx"])

        # Statistics (model.rsc.RscEngine._stats): strobes registered, zero by default.
        stats = self.stats
        m.d.sync += stats.eq(0)

        def abort():
            m.d.sync += stats.aborts.eq(1)

        def coalesced():
            m.d.sync += [stats.coalesced_pkts.eq(1), stats.coalesced_octets.eq(d.len)]

        def flush(idx, back):     # FLUSH frees the context (``rd_idx`` is ``idx`` there)
            m.d.comb += [rd_load.eq(1), rd_next.eq(idx)]
            m.d.sync += [ret.eq(back),
                         stats.coalesce_events.eq(1)]
            goto("FLUSH")

        def alone():    # seg_cmd: the frame sent alone
            m.d.sync += [ret.eq(R_RELEASE), alone_next.eq(0), handed.eq(1)]
            goto("ISSUE")

        def copy():     # seg_cmd: the copy (a join's payload adds to the SCU's sum)
            m.d.comb += seg_copy.eq(1)
            m.d.sync += [ret.eq(R_RELEASE), handed.eq(1)]
            goto("ISSUE")

        # RULE registers the rules' compares on the flow's context (FIND's hit_idx); SEG
        # combines them into its verdicts.
        rule = self._rules(m, d, h, st["RULE"], st["JUDGE"])

        with m.If(st["IDLE"]):
            with m.If(any_exp):
                flush(exp_idx, R_IDLE)
            with m.Elif(self.events.valid):
                # PRE only when RSC was switched off (its flushes); a frame goes to its lookup.
                taken = self.events.payload
                m.d.comb += self.events.ready.eq(1)
                m.d.sync += ev.eq(taken)
                with m.If(taken.dis):
                    goto("PRE")
                with m.Elif(taken.frame):
                    goto("LOOK")
                with m.Else():
                    goto("POST")
        with m.If(st["PRE"]):
            with m.If(ev.dis & any_valid):
                flush(old_idx, R_PRE)
            with m.Elif(ev.frame):
                goto("LOOK")
            with m.Else():
                goto("POST")
        with m.If(st["LOOK"]):
            with m.If(self.desc.valid):
                m.d.sync += cand.eq(cand_eq)
                goto("FIND")
        with m.If(st["FIND"]):
            m.d.sync += [look[name].eq(v) for name, v in found.items()]
            m.d.comb += [rd_load.eq(1), rd_next.eq(cand_idx)]
            goto("RULE")
        with m.If(st["RULE"]):
            m.d.sync += [key_eq_q.eq(key_eq),
                         too_long.eq(d.ip_end > self.max_scu_bytes),
                         goes_alone.eq(alone_next | (kind == SEG_KIND_PASS)),
                         ends_scus.eq((kind == SEG_KIND_FRAG) | (kind == SEG_KIND_EXC))]
            goto("JUDGE")
        with m.If(st["JUDGE"]):
            goto("SEG")
        with m.If(st["SEG"]):
            m.d.sync += cmd.eq(seg_cmd)
            with m.If(goes_alone):
                alone()
            with m.Elif(retry):
                m.d.sync += cand.eq(cand & ~(1 << look["cand_idx"]))
                goto("FIND")
            with m.Elif(ends_scus):
                with m.If(hit):     # a fragment's: its addresses' SCUs, oldest first
                    flush(look["cand_idx"], R_SEG)
                with m.Else():
                    abort()
                    alone()
            with m.Elif(hit):
                with m.If(rule["join"]):
                    coalesced()
                    m.d.sync += [later.write.eq(1), later.at.eq(look["cand_idx"]),
                                 later.opened.eq(0)]
                    with m.If(pure_of(d)):
                        goto("RELEASE")
                    with m.Else():
                        copy()      # joins
                with m.Else():
                    with m.If(~rule["ip_length"]):
                        abort()
                    m.d.sync += alone_next.eq(rule["dup"])
                    flush(look["cand_idx"], R_SEG)
            with m.Elif(too_long):
                abort()
                alone()
            with m.Elif(~look["any_free"]):
                abort()
                flush(look["old_idx"], R_SEG)
            with m.Elif(~look["any_region"]):
                goto("LOOK")        # every region free of an SCU is still being emitted
            with m.Else():
                coalesced()
                m.d.sync += [later.write.eq(1), later.at.eq(look["free_idx"]),
                             later.opened.eq(1)]
                m.d.sync += held.eq(held | (1 << look["region_idx"]))
                copy()      # opens
        with m.If(st["RELEASE"]):
            m.d.comb += [self.desc.ready.eq(1),
                         self.release.eq(Mux(handed, 0, 1 << d.slot))]
            m.d.sync += handed.eq(0)
            # POST: an indication's end, or a frame joined in SEG without a command (IDLE's
            # idle-timer flags show its context's write, this cycle, two cycles after it).
            with m.If(handed & ~ev.eoi):
                goto("IDLE")
            with m.Else():
                goto("POST")
        with m.If(st["POST"]):
            with m.If(ev.eoi & any_valid):
                flush(old_idx, R_POST)
            with m.Else():
                goto("IDLE")
        with m.If(st["FLUSH"]):
            m.d.sync += cmd.eq(flush_cmd)
            for i in range(n):
                with m.If(rd_idx == i):
                    m.d.sync += ctx[i].valid.eq(0)
            goto("ISSUE")
        with m.If(st["ISSUE"]):
            m.d.comb += [self.cmd.valid.eq(1), self.cmd.payload.eq(cmd)]
            with m.If(self.cmd.ready):
                with m.If(cmd.op == OP_EMIT_SCU):
                    m.d.sync += held.eq(held & ~(1 << cmd.region))
                for back, name in _RETURN_TO.items():
                    with m.If(ret == back):
                        goto(name)
        self._later_contexts(m, ctx, later, ev.time, d_tag, d.key.ports, opening, joining)
        return m

    def _later_contexts(self, m, ctx, later, time, tag, ports, opening, joining):
        """An SCU opened or joined in SEG changes its context's flip-flops (and the orders,
        ``opening`` and ``joining``) the cycle after, as the RAMs are written (``later``):
        their enables come from registers, not from SEG's decisions. Nothing reads them in
        that cycle (ISSUE or RELEASE), and ``time``, ``tag`` and ``ports`` (the event's and
        the descriptor's) are still those SEG saw."""
        at = Signal(self.contexts, name="later_at_one_hot")
        m.d.comb += at.eq(Mux(later.write, 1 << later.at, 0))
        m.d.comb += [opening.eq(Mux(later.opened, at, 0)), joining.eq(Mux(later.opened, 0, at))]
        for i, c in enumerate(ctx):
            with m.If(at[i]):
                m.d.sync += c.lj.eq(time)
                with m.If(later.opened):
                    m.d.sync += [c.valid.eq(1), c.addr_tag.eq(tag), c.ports.eq(ports)]

    def _read_index(self, m):
        """``rd_idx``, the context the RAMs beside the contexts are read at, loaded as
        ``rd_load`` with ``rd_next`` (the banks of :meth:`_states` keep copies of it)."""
        rd_idx, rd_next = Signal(range(self.contexts)), Signal(range(self.contexts))
        rd_load = Signal()
        with m.If(rd_load):
            m.d.sync += rd_idx.eq(rd_next)
        return rd_idx, rd_load, rd_next

    def _states(self, m, rd_load, rd_next, d):
        """The rest of each context (STATE_LAYOUT) in a small RAM (LUT RAM): read at
        ``rd_idx``, loaded (``rd_load``) with the context FIND finds or a flush picks
        (``rd_next``; RULE, SEG and FLUSH read it; its data is that of the cycles before, as
        the flip-flops were). The RAM is in banks of ``STATE_BANK_BITS``, each with a copy
        of ``rd_idx`` of its own (:func:`_banked_lut_ram`).
        An SCU opened (by descriptor ``d``) or joined in SEG is written whole the cycle after
        (``later``, registers SEG sets: the RAMs' write enables and address come from
        flip-flops, not from SEG's decisions), when ``rd_idx`` and ``d`` are still those SEG
        saw (SEG goes to ISSUE or RELEASE, which change neither); the region and key RAMs
        likewise."""
        later = Signal(data.StructLayout({"write": 1, "opened": 1, "at": range(self.contexts)}),
                       name="later")
        m.d.sync += later.write.eq(0)
        h, joined, opened = Signal(STATE_LAYOUT), Signal(STATE_LAYOUT), Signal(STATE_LAYOUT)
        m.d.comb += [
            h.eq(_banked_lut_ram(m, "states", self.contexts, STATE_LAYOUT.size,
                                 STATE_BANK_BITS, rd_load, rd_next, later.write, later.at,
                                 Mux(later.opened, opened, joined))),
            *_joined(joined, h, d), *_opened(opened, d, self.max_scu_bytes)]
        return h, later

    def _candidates(self, m, ctx, d, frag):
        """The candidates (the class docstring), a bit per context: its address tag and,
        unless ``frag``, its ports are those of descriptor ``d``. Also ``d``'s address key
        and its tag."""
        d_addr = d.key.as_value()[:ADDR_BITS]
        d_tag = Signal(self.TAG_BITS, name="d_addr_tag")
        m.d.comb += d_tag.eq(addr_tag(d_addr, self.TAG_BITS))
        return Cat(*[c.valid & (c.addr_tag == d_tag) & (frag | (c.ports == d.key.ports))
                     for c in ctx]), d_addr, d_tag

    def _key_eq(self, m, load, idx, write, write_idx, d_addr):
        """Whether the address key (all of the key but the ports) of context ``idx``, loaded
        as ``load`` and read a cycle later, is ``d_addr``: a bit per 16 bits, set when
        they are equal; ``write`` stores ``d_addr`` as
        context ``write_idx``'s. The keys are in LUT RAM banks of ``KEY_BANK_BITS``, each
        with a read address register of its own (its rows at context XOR bank, so synthesis
        does not merge the registers): no one address net fans out to every bank."""
        keys = _banked_lut_ram(m, "keys", self.contexts, ADDR_BITS, KEY_BANK_BITS, load, idx,
                               write, write_idx, d_addr)
        # A bit per 16 bits (two levels after the read; a bit per bank was eight).
        return Cat(*[keys[low:low + 16] == d_addr[low:low + 16]
                     for low in range(0, ADDR_BITS, 16)])

    def _regions(self, m, rd_idx):
        """Each context's SCU region, in a LUT RAM beside the states (read at the same
        address), and ``held``, the regions an open SCU holds: set as it opens, cleared as
        its EMIT_SCU goes to the mover, whose ``regions_busy`` holds the region from then
        until it is read out. Also whether a region is free of both, and the lowest such."""
        m.submodules.region_of = region_of = memory.Memory(
            shape=range(self.regions), depth=self.contexts, init=[])
        region_rd, region_wr = region_of.read_port(domain="comb"), region_of.write_port()
        m.d.comb += region_rd.addr.eq(rd_idx)
        held = Signal(self.regions)
        any_region, region_idx = _lowest(m, ~held & ~self.regions_busy, "region")
        return region_rd, region_wr, held, any_region, region_idx

    def _rules(self, m, d, h, load, judge):
        """The rules (``model.rsc.RscEngine._refusal``) of descriptor ``d`` against the flow's
        context ``h``: {"join": joins, "dup": is a duplicate ACK, "ip_length": refused only
        by the 65,535-byte limit, the one refusal that is not an Abort}. Each compare of
        ``d`` with ``h`` is registered on its own as ``load`` (no AND of them after the
        RAM's read); the verdicts are registered from those as ``judge``, the cycle after."""
        d_same, h_same = d.same.as_value(), h.same.as_value()
        compares = {
            # the 282 bits of ``same`` a compare per 16: two levels after the RAM's read,
            # their AND in JUDGE (a compare per 64 was nine levels from the read address)
            **{f"same{k}": d_same[low:low + 16] == h_same[low:low + 16]
               for k, low in enumerate(range(0, len(d_same), 16))},
            "ecn_eq": d.ecn == h.ecn,
            "ts_ok": ~d.same.ts | _serial_ge(d.tsval, h.tsval),
            "in_seq": d.seq == h.nxt, "pure": pure_of(d),
            "ack_eq": d.ack == h.ack, "wnd_eq": d.wnd == h.wnd,
            "ack_ge": _serial_ge(d.ack, h.ack), "open_len": h.len != 0,
            "ip_ok": d.len <= h.ip_room, "scu_ok": d.len <= h.scu_room,
        }
        r = {name: Signal(name=f"rule_{name}") for name in compares}
        with m.If(load):
            m.d.sync += [r[name].eq(v) for name, v in compares.items()]
        r["same"] = Cat(*[v for name, v in r.items() if name.startswith("same")]).all() \
            & r["ecn_eq"]
        data_ok = r["same"] & r["in_seq"] & r["open_len"] & r["ack_ge"] & r["ts_ok"]
        verdicts = {name: Signal(name=f"rule_{name}") for name in ("join", "dup", "ip_length")}
        with m.If(judge):
            m.d.sync += [
            verdicts["join"].eq(Mux(r["pure"], r["same"] & r["in_seq"] & r["ack_eq"]
                                    & ~r["wnd_eq"] & r["ts_ok"],
                                    data_ok & r["ip_ok"] & r["scu_ok"])),
            verdicts["dup"].eq(r["same"] & r["pure"] & r["in_seq"] & r["ack_eq"] & r["wnd_eq"]),
            verdicts["ip_length"].eq(~r["pure"] & data_ok & ~r["ip_ok"]),
            ]
        return verdicts

    def _seg_cmd(self, m, d, h, copy, joins, join_region, free_region):
        """The command SEG loads whatever it decides (the register's enable is the state's,
        not its decisions', on every bit): descriptor ``d``'s frame sent alone, or with
        ``copy`` a copy, joining context ``h``'s SCU (``joins``: in ``join_region``) or
        opening one (in ``free_region``). Only ISSUE reads the register, and SEG's other
        ways reach ISSUE through FLUSH, which loads it; fields a command does not use are
        don't-care for the mover."""
        seg_cmd = Signal(CMD_LAYOUT(self.regions))
        m.d.comb += [
            seg_cmd.op.eq(Mux(copy, OP_COPY, OP_EMIT_LAND)), seg_cmd.slot.eq(d.slot),
            seg_cmd.region.eq(Mux(joins, join_region, free_region)),
            seg_cmd.len.eq(Mux(joins, d.ip_end, d.frame_len)), seg_cmd.user.eq(d.csum),
            seg_cmd.src_lo.eq(Mux(joins, d.hdr_len, 0)),
            seg_cmd.dst_lo.eq(Mux(joins, h.hdr_len + h.len, 0)), seg_cmd.multi.eq(joins),
            seg_cmd.hdr_len.eq(d.hdr_len), seg_cmd.plen.eq(d.len),
        ]
        return seg_cmd

    def _flush_cmd(self, m, f, region):
        """The EMIT_SCU command for context state ``f``, whose SCU is in ``region``."""
        flush_cmd = Signal(CMD_LAYOUT(self.regions))
        csum_word = Mux(f.multi, Mux(f.v6, _SCU_CSUM6, _SCU_CSUM4), f.csum)
        count = Mux(f.count > 0xFFFF, 0xFFFF, f.count)
        m.d.comb += [
            flush_cmd.op.eq(OP_EMIT_SCU), flush_cmd.region.eq(region),
            flush_cmd.len.eq(Mux(f.multi, f.hdr_len + f.len, f.frame_len)),
            flush_cmd.user.eq(Cat(csum_word[:32], count[:16], C(0, 16), (f.tsval - f.ts0)[:32])),
            flush_cmd.multi.eq(f.multi), flush_cmd.v6.eq(f.v6), flush_cmd.l3.eq(f.same.l3),
            flush_cmd.l4.eq(f.l4), flush_cmd.hdr_len.eq(f.hdr_len), flush_cmd.ts.eq(f.same.ts),
            flush_cmd.ts_off.eq(f.ts_off), flush_cmd.ack.eq(f.ack), flush_cmd.wnd.eq(f.wnd),
            flush_cmd.flags.eq((f.flags & ~_PSH & 0xFF) | Mux(f.psh, _PSH, 0)),
            flush_cmd.hop.eq(f.hop), flush_cmd.tsval.eq(f.tsval), flush_cmd.tsecr.eq(f.tsecr),
            flush_cmd.plen.eq(f.len),
        ]
        return flush_cmd


def _joined(c, h, d):
    """Context state ``c`` (STATE_LAYOUT): ``h`` joined by descriptor ``d``."""
    return [c.eq(h), c.len.eq(h.len + d.len), c.nxt.eq(h.nxt + d.len),
            c.count.eq(h.count + (d.len != 0)), c.ack.eq(d.ack), c.wnd.eq(d.wnd),
            c.psh.eq(h.psh | d.flags[3]), c.hop.eq(Mux(d.hop < h.hop, d.hop, h.hop)),
            c.multi.eq(1), c.tsval.eq(Mux(d.same.ts, d.tsval, h.tsval)),
            c.tsecr.eq(Mux(d.same.ts, d.tsecr, h.tsecr)),
            c.ip_room.eq(h.ip_room - d.len), c.scu_room.eq(h.scu_room - d.len)]


def _opened(c, d, max_scu_bytes):
    """Context state ``c`` (STATE_LAYOUT) of an SCU that descriptor ``d`` opens (in an
    engine of SCUs of at most ``max_scu_bytes``)."""
    ip_len = Mux(d.key.v6, 0, 20) + (d.hdr_len - d.l4) + d.len    # IPv4 total, IPv6 payload
    return [c.v6.eq(d.key.v6), c.same.eq(d.same), c.ecn.eq(d.ecn), c.nxt.eq(d.seq + d.len),
            c.ack.eq(d.ack), c.wnd.eq(d.wnd), c.tsval.eq(d.tsval), c.tsecr.eq(d.tsecr),
            c.ts0.eq(d.tsval), c.flags.eq(d.flags), c.psh.eq(d.flags[3]), c.hop.eq(d.hop),
            c.count.eq(1), c.multi.eq(0), c.len.eq(d.len), c.hdr_len.eq(d.hdr_len),
            c.l4.eq(d.l4), c.ts_off.eq(d.ts_off), c.frame_len.eq(d.frame_len),
            c.csum.eq(d.csum), c.ip_room.eq(model.IP_DATAGRAM_MAX - ip_len),
            c.scu_room.eq(max_scu_bytes - (d.hdr_len + d.len))]


def addr_tag(addr, bits):
    """A ``bits``-bit hash of address key ``addr``: its ``bits``-bit words XORed, word ``w``
    rotated left by ``w`` (so a flow's reverse, its addresses swapped, has a tag of its own)."""
    words = [addr[k:k + bits] for k in range(0, len(addr), bits)]
    words = [Cat(word, C(0, bits - len(word))).rotate_left(w % bits)
             for w, word in enumerate(words)]
    return balanced_tree(words, operator.xor)


def _banked_lut_ram(m, name, depth, width, bank_bits, load, idx, write, write_idx, wdata):
    """A RAM of ``depth`` words of ``width`` bits (LUT RAM), the word at ``idx`` read a
    cycle after ``load`` (its data until the next ``load``); ``write`` stores ``wdata`` as
    word ``write_idx``. The RAM is in banks of ``bank_bits``, each with a read address
    register of its own (its rows at index XOR bank, so synthesis does not merge the
    registers, bit by bit only as far as their resets differ): no one address net fans out
    to every bank. Returns the word read."""
    address_bits = max(1, (depth - 1).bit_length())
    words = []
    for bank, low in enumerate(range(0, width, bank_bits)):
        high = min(width, low + bank_bits)
        swizzle = bank % (1 << address_bits)
        m.submodules[f"{name}{bank}"] = ram = memory.Memory(
            shape=high - low, depth=1 << address_bits, init=[])
        rd, wr = ram.read_port(domain="comb"), ram.write_port()
        # Its reset value (never read: a word is read only after a ``load``) is the swizzle
        # rotated by a bit, so two banks whose bit k is the same function of ``idx`` have
        # flip-flops of different resets (not merged) when bit k + 1 of their swizzles differ.
        read_at = Signal(address_bits, name=f"{name}_at{bank}",
                         init=((swizzle >> 1) | (swizzle << (address_bits - 1)))
                         & ((1 << address_bits) - 1))
        with m.If(load):
            m.d.sync += read_at.eq(idx ^ swizzle)
        m.d.comb += [rd.addr.eq(read_at), wr.en.eq(write), wr.addr.eq(write_idx ^ swizzle),
                     wr.data.eq(Value.cast(wdata)[low:high])]
        words.append(rd.data)
    return Cat(*words)


def _lowest(m, bits, name):
    """Whether any bit of ``bits`` is set, and the lowest one set."""
    idx = Signal(range(len(bits)), name=f"{name}_idx")
    for i in reversed(range(len(bits))):
        with m.If(bits[i]):
            m.d.comb += idx.eq(i)
    return bits.any(), idx


def _lower(i, k):
    """Context ``i`` before ``k``: the lower index."""
    return C(int(i < k), 1)


def pure_of(d):
    """A pure ACK: no TCP payload."""
    return d.len == 0


KEY_BANK_BITS = 64      # bits of a bank of the address keys' LUT RAM (one read address each)
STATE_BANK_BITS = 80    # and of the context states' (8 banks: 8 distinct address copies)

# Where ISSUE returns to after a command.
R_IDLE, R_PRE, R_SEG, R_RELEASE, R_POST = range(5)
_RETURN_TO = {R_IDLE: "IDLE", R_PRE: "PRE", R_SEG: "LOOK", R_RELEASE: "RELEASE",
              R_POST: "POST"}
_STATES = {name: code for code, name in enumerate(
    ("IDLE", "PRE", "LOOK", "FIND", "RULE", "JUDGE", "SEG", "RELEASE", "POST", "FLUSH",
     "ISSUE"))}
