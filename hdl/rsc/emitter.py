"""The RSC mover's emit engine: landing frames and SCUs out, an SCU's headers rewritten."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from nicoffload.model.parse import IPPROTO_TCP

from ..axis import AxisSignature, axis_layout
from ..onesum import add_tree, beat_words, fold16
from ..parse import L3_OFFSETS
from ..stream import RegisterSlice, StreamFIFO

from .common import (CMD_LAYOUT, EMIT_LAYOUT, WINDOW, BufferPart, LANDING_SLOTS, OP_EMIT_SCU, RXU, TICKET_BITS,
                     or_tree, patch_beat)


class RscEmitter(BufferPart):
    """Sends frames, one command after another, in the order the commands come.

    ``EMIT_LAND`` sends a landing slot's frame unchanged and releases the slot with its last
    read. ``EMIT_SCU`` waits until the copies dispatched before it (``ticket``) are written
    and summed (``copies``), then sends an SCU's region: with ``multi`` after a summing
    pass over its header beats (the rewritten IPv4 header, the pseudo-header addresses and
    the TCP header, plus the region's payload sum from the copier) and with every SCU field
    rewritten. ``region_done`` marks the region that has been read for the last time (the
    sequencer may open an SCU in it again).

    Attributes
    ----------
    cmd : In(stream.Signature(EMIT_LAYOUT(regions)))
    land_addr : Out, land_data : In
        A read port of the landing RAM.
    scu_addr : Out, scu_data : In
        A read port of the SCU RAM.
    sums : In(data.ArrayLayout(32, regions)), copies : In(TICKET_BITS)
        The copier's payload sums and count of copies finished.
    release : Out(LANDING_SLOTS)
        A slot read out (registered, one cycle).
    region_done : Out(regions)
        A region read out (registered, one cycle).
    m : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    """

    OUT_DEPTH = 8

    def __init__(self, width, regions, region_beats, slot_beats):
        super().__init__(width, regions, region_beats, slot_beats, {
            "cmd": In(stream.Signature(EMIT_LAYOUT(regions))),
            **self.landing_reader(width, slot_beats),
            "scu_addr": Out(range(regions * region_beats)), "scu_data": In(width),
            "sums": In(data.ArrayLayout(32, regions)), "copies": In(TICKET_BITS),
            "release": Out(LANDING_SLOTS), "region_done": Out(regions),
            "m": Out(AxisSignature(width, RXU)),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lg = (nb - 1).bit_length()
        m.submodules.outq = outq = StreamFIFO(axis_layout(w, RXU), self.OUT_DEPTH)
        m.submodules.out = out = RegisterSlice(axis_layout(w, RXU))
        wiring.connect(m, outq.m, out.s)
        wiring.connect(m, out.m, wiring.flipped(self.m))

        entry = Signal(EMIT_LAYOUT(self.regions))
        self.places = _Places(nb, self.regions)
        c = entry.cmd
        beats = range(max(self.region_beats, self.slot_beats) + 2)
        j, last_j = Signal(beats), Signal(beats)
        rd_j = j    # the address read (the read's stage ignores it when nothing is read)
        # ``j == last_j``, kept as a register beside them (the read's last beat takes the next
        # command: that decision enables every bit of ``entry``, so no compare lies before it)
        at_last = Signal()
        issue = Signal()
        src_scu, pass1, settled = Signal(), Signal(), Signal()
        p_valid, p_last = Signal(), Signal()
        ip_acc, l4_acc = Signal(40), Signal(40)
        ip_csum, tcp_csum = Signal(16), Signal(16)
        tcp_len = Signal(17)        # the SCU's TCP header and payload bytes, from the command
        payload_sum = Signal(32)
        region_is = Signal(self.regions)    # the command's region, one-hot
        # The RAM addresses' bases (a table each), registered with the command.
        land_base = Signal(range(LANDING_SLOTS * self.slot_beats))
        scu_base = Signal(range(self.regions * self.region_beats))
        m.d.comb += [
            self.land_addr.eq(land_base + rd_j),
            self.scu_addr.eq(scu_base + rd_j),
        ]
        m.d.sync += [p_valid.eq(issue), p_last.eq(at_last),
                     self.release.eq(0), self.region_done.eq(0)]

        # A read is issued while the output queue's level a cycle ago was below
        # ``OUT_DEPTH - OUT_AHEAD``: the beat written since (one at most) and the
        # ``OUT_AHEAD`` beats on their way with this read's then fit. A register, since
        # ``issue`` enables the command register and the sums (the level compared in front
        # of them put 282 path ends at five levels).
        queue_room = Signal()
        m.d.sync += queue_room.eq(outq.level < self.OUT_DEPTH - OUT_AHEAD)

        # The state one-hot, so that a state is a flip-flop in the decisions (the command's
        # enable among them).
        state = Signal(len(_STATES), init=1 << _STATES["IDLE"], name="state")
        st = {name: state[code] for name, code in _STATES.items()}

        def goto(name):
            m.d.sync += state.eq(1 << _STATES[name])

        # The next command is taken in IDLE, or with the last read of a command (not a
        # cycle later in IDLE: the stage after the read works from its own copy of the
        # command's fields, ``out_*`` below). ``cmd.ready`` and the enable of ``entry`` are
        # then a few flip-flops ANDed, not the state machine's branches.
        last_read = Signal()    # in READ, the command's last beat, not a header pass
        m.d.comb += [last_read.eq(st["READ"] & at_last & ~pass1),
                     self.cmd.ready.eq(st["IDLE"] | last_read & queue_room)]
        p = self.cmd.payload.cmd
        header_pass = (p.op == OP_EMIT_SCU) & p.multi
        def take_command():
            """To the next command's first state: READ, or COPIES to wait for its copies (an
            SCU with a header pass, or one whose ticket is not met yet); IDLE without one."""
            with m.If(self.cmd.valid):
                copies_done = _ticket_met(self.copies, self.cmd.payload.ticket)
                m.d.sync += j.eq(0)
                with m.If((p.op == OP_EMIT_SCU) & (header_pass | ~copies_done)):
                    goto("COPIES")
                with m.Else():
                    goto("READ")
            with m.Else():
                goto("IDLE")

        with m.If(st["IDLE"]):
            take_command()
        with m.Elif(st["COPIES"]):
            # Every copy dispatched before the command written and summed (a register: the
            # count only grows, so a cycle-old verdict is safe).
            m.d.sync += settled.eq(_ticket_met(self.copies, entry.ticket))
            # The sums start here (every SCU with a header pass waits here first), not as the
            # command is taken: no decision of the command's lies before the accumulators.
            m.d.sync += [ip_acc.eq(0), l4_acc.eq(0), ip_csum.eq(0), tcp_csum.eq(0)]
            with m.If(settled):
                m.d.sync += payload_sum.eq(or_tree([Mux(region_is[i], self.sums[i], 0)
                                                    for i in range(self.regions)]))
                goto("READ")
        with m.Elif(st["READ"]):
            m.d.comb += issue.eq(pass1 | queue_room)
            with m.If(issue):
                m.d.sync += [j.eq(j + 1), at_last.eq(j + 1 == last_j)]
                self.places.step(m)
                with m.If(at_last):
                    with m.If(pass1):
                        goto("DRAIN")   # the last header beat is read out there
                    with m.Else():
                        with m.If(src_scu):
                            m.d.sync += self.region_done.eq(1 << c.region)
                        with m.Else():
                            m.d.sync += self.release.eq(1 << c.slot)
                        take_command()
        with m.Elif(st["DRAIN"]):
            goto("SUM")
        with m.Elif(st["SUM"]):
            goto("ADD")         # the last header beat's words are summed there
        with m.Elif(st["ADD"]):
            goto("CSUM")        # and added to the sums there
        with m.Elif(st["CSUM"]):
            # The TCP length and protocol into the sum, then the payload sum (``l4_words``
            # below), then the folds.
            goto("PAY")
        with m.Elif(st["PAY"]):
            goto("FOLD")
        with m.Elif(st["FOLD"]):
            scu_last_j = (c.len - 1) >> lg
            m.d.sync += [ip_csum.eq(~fold16(ip_acc)), tcp_csum.eq(~fold16(l4_acc)),
                         pass1.eq(0), j.eq(0), last_j.eq(scu_last_j),
                         at_last.eq(scu_last_j == 0)]
            self.places.restart(m)
            goto("READ")
        # The command taken (after the state machine's updates, which it overrides).
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [land_base.eq(self.slot_base(p.slot)),
                         scu_base.eq(self.region_base(p.region))]
            self.places.load(m, p)
            m.d.sync += region_is.eq(Cat(*[p.region == i for i in range(self.regions)]))
            first_last_j = Mux(header_pass, (p.hdr_len - 1) >> lg, (p.len - 1) >> lg)
            m.d.sync += [entry.eq(self.cmd.payload), settled.eq(0),
                         last_j.eq(first_last_j), at_last.eq(first_last_j == 0),
                         tcp_len.eq(p.hdr_len - p.l4 + p.plen),
                         src_scu.eq(p.op == OP_EMIT_SCU),
                         pass1.eq(header_pass)]

        # The stage after a read: the beat is in the RAM's read register. What depends on
        # the beat's place only is worked out from the read address a cycle ahead, into
        # registers beside the read. The values written come from copies of the command's
        # fields a cycle old (the command may change with its last read).
        out_cmd, out_src_scu, out_pass1 = Signal.like(c), Signal(), Signal()
        out_tcp_len, out_ip_csum, out_tcp_csum = (Signal.like(tcp_len), Signal.like(ip_csum),
                                                  Signal.like(tcp_csum))
        out_ip4_len = Signal(16)    # the IPv4 total length, added before the register
        m.d.sync += [out_cmd.eq(c), out_src_scu.eq(src_scu), out_pass1.eq(pass1),
                     out_tcp_len.eq(tcp_len), out_ip_csum.eq(ip_csum),
                     out_tcp_csum.eq(tcp_csum), out_ip4_len.eq(tcp_len + 20)]
        rdata = Mux(out_src_scu, self.scu_data, self.land_data)
        # Where the command's fields and ranges are, as rows and lanes registered as it is
        # taken (``_Places``): each beat's lanes are then comparisons of registers, not sums
        # of the command's offsets less the beat's (eight levels into the lanes).
        places = self.places
        lanes = places.patch_lanes()
        # The lanes registered only for an SCU's beats with headers to rewrite, so the patch
        # is the beat's last choice (no choice of the patched beat or the RAM's after it).
        lanes_q = [Signal(len(at), name=f"patch_lanes{i}") for i, at in enumerate(lanes)]
        m.d.sync += [q.eq(Mux(src_scu & c.multi, at, 0)) for q, at in zip(lanes_q, lanes)]
        beat = Signal(w)
        m.d.comb += beat.eq(patch_beat(rdata, nb, _patched_fields(
            out_cmd, out_tcp_len, out_ip4_len, out_ip_csum, out_tcp_csum), lanes_q))
        # The last beat's bytes up to the SCU's end (a header pass's beats are not sent, and
        # its sums' ranges end before the SCU does).
        keep = Signal(nb)
        m.d.sync += keep.eq(Cat(*[~at_last | pass1 | ~_at_most(places.last_lane, k - 1, nb)
                                  for k in range(nb)]))
        # Summing pass: IPv4 header, TCP pseudo-header addresses, TCP header (and options).
        ip_mask = places.range_mask("ip")
        l4_mask = places.range_mask("l4")
        ad_mask = places.range_mask("addresses")
        ip_lanes, l4_lanes = Signal(nb), Signal(nb)
        m.d.sync += [ip_lanes.eq(ip_mask), l4_lanes.eq(l4_mask | ad_mask)]
        # The summing pass adds each beat a cycle after it is read: the beat (patched) and its
        # lanes registered, so no RAM read or patch lies before the adders.
        sum_valid, sum_beat = Signal(), Signal(w)
        sum_ip_lanes, sum_l4_lanes = Signal(nb), Signal(nb)
        m.d.sync += [sum_valid.eq(p_valid & out_pass1), sum_beat.eq(beat),
                     sum_ip_lanes.eq(ip_lanes), sum_l4_lanes.eq(l4_lanes & keep)]
        self._accumulate(m, st, sum_valid, sum_beat, sum_ip_lanes, sum_l4_lanes, tcp_len,
                         payload_sum, ip_acc, l4_acc)
        # The beat (patched) registered before the output queue: the patch lies between
        # registers, and the queue's LUT RAM is one net from them.
        q_valid, q_beat = Signal(), Signal(axis_layout(w, RXU))
        m.d.sync += [
            q_valid.eq(p_valid & ~out_pass1),
            q_beat.data.eq(beat), q_beat.keep.eq(keep), q_beat.last.eq(p_last),
            q_beat.user.eq(Mux(p_last, out_cmd.user, 0)),
        ]
        m.d.comb += [outq.s.valid.eq(q_valid), outq.s.payload.eq(q_beat)]
        return m

    def _accumulate(self, m, st, sum_valid, sum_beat, ip_lanes, l4_lanes, tcp_len, payload_sum,
                    ip_acc, l4_acc):
        """The header pass's sums: ``ip_acc`` and ``l4_acc`` from each summed beat's words
        (``sum_valid``, ``sum_beat`` and its lanes), then the TCP length and protocol (CSUM)
        and the payload sum (PAY) into ``l4_acc``."""
        w = self.width
        # Each beat's words are summed into registers, and the sums added to the
        # accumulators a cycle later (both in one cycle, behind the lanes' masks, were eight
        # levels deep).
        # What the TCP sum adds after the header beats' words comes through the same
        # register: the TCP length and protocol (in CSUM), the payload sum (in PAY).
        add_valid, ip_words, l4_words = Signal(), Signal(32), Signal(32)
        m.d.sync += [add_valid.eq(sum_valid),
                     ip_words.eq(add_tree(beat_words(sum_beat, ip_lanes, w)))]
        with m.If(sum_valid):
            m.d.sync += l4_words.eq(add_tree(beat_words(sum_beat, l4_lanes, w)))
        with m.Elif(st["ADD"]):
            m.d.sync += l4_words.eq(IPPROTO_TCP + tcp_len)
        with m.Else():
            m.d.sync += l4_words.eq(payload_sum)
        with m.If(add_valid):
            m.d.sync += ip_acc.eq(ip_acc + ip_words)
        with m.If(add_valid | st["CSUM"] | st["PAY"]):
            m.d.sync += l4_acc.eq(l4_acc + l4_words)


# Beats a read may still put into the output queue after it (the read's stage and the
# register before the queue): a read is issued only while the queue has room for them.
OUT_AHEAD = 3

# The state machine is a state register and ``If``/``Elif`` chains (``m.FSM`` becomes Verilog
# ``case`` statements without ``default``: Verilator's CASEINCOMPLETE).
_STATES = {name: code for code, name in enumerate(
    ("IDLE", "COPIES", "READ", "DRAIN", "SUM", "ADD", "CSUM", "PAY", "FOLD"))}


#: Where each of :func:`_patched_fields` can start, modulo 4: an SCU's headers have no IP
#: options nor extension headers, so ``l3`` and ``l4`` are ``2 mod 4`` (the parser's
#: ``L3_OFFSETS``, and ``l3`` + 20 or 40); ``None``: anywhere (the timestamp option). The
#: patch lanes of a field byte on a lane it cannot reach are constant 0, so the patch of a
#: lane chooses among 12 to 15 field bytes, not 24.
_FIELD_STARTS_MOD4 = [{0}, {2}, {1, 2}, {0}, {2}, {3}, {0}, {2}, None]
assert all(offset % 4 == 2 for offset in L3_OFFSETS)


def _patched_fields(c, tcp_len, ip4_len, ip_csum, tcp_csum):
    """The fields an SCU's rewritten headers take: ``(enable, offset, value, bytes)`` for
    :class:`_Places` and :func:`patch_beat` (``ip4_len``: ``tcp_len + 20``)."""
    return [
        (~c.v6, c.l3 + 2, ip4_len[:16], 2),
        (c.v6, c.l3 + 4, tcp_len[:16], 2),
        (C(1, 1), c.l3 + Mux(c.v6, 7, 8), c.hop, 1),
        (~c.v6, c.l3 + 10, ip_csum, 2),
        (C(1, 1), c.l4 + 8, c.ack, 4),
        (C(1, 1), c.l4 + 13, c.flags, 1),
        (C(1, 1), c.l4 + 14, c.wnd, 2),
        (C(1, 1), c.l4 + 16, tcp_csum, 2),
        (c.ts, c.ts_off + 2, Cat(c.tsecr, c.tsval), 8),
    ]


class _Row:
    """Where the beat being read (``j``) stands against a header row ``row``, as flags in
    registers: ``at`` (``j == row``), ``after`` (``j == row + 1``), ``past`` (``j > row``),
    kept up to date as ``j`` starts at 0 (:meth:`load` with a new row, :meth:`restart`) and
    steps by one (:meth:`step`), from a count of the rows still to go; so no comparison of
    ``j`` stands before a beat's lanes."""

    def __init__(self, row_bits, name):
        self.row = Signal(row_bits, name=f"{name}_row")
        self.to_go = Signal(signed(row_bits + 1), name=f"{name}_to_go")    # row - j
        self.at, self.after, self.past = (Signal(name=f"{name}_{flag}")
                                          for flag in ("at", "after", "past"))

    def load(self, m, row):
        m.d.sync += [self.row.eq(row), self.to_go.eq(row), self.at.eq(row == 0),
                     self.after.eq(0), self.past.eq(0)]

    def restart(self, m):
        self.load(m, self.row)

    def step(self, m):
        # (The count runs round past the row; ``past`` keeps ``at`` from coming back.)
        m.d.sync += [self.to_go.eq(self.to_go - 1), self.at.eq((self.to_go == 1) & ~self.past),
                     self.after.eq(self.at), self.past.eq(self.past | self.at)]


class _Places:
    """Where an emit command's patched fields and summed ranges are in the frame, registered
    when the command is taken (:meth:`load`, from the command on the input): the lane of
    each field byte and whether it is on the field's first row or the next, the lanes of the
    ranges' ends, and for each of those rows a :class:`_Row`, which the state machine keeps
    up to date as the beat index moves (:meth:`restart`, :meth:`step`). A beat's lanes are
    then a few flags and lanes ANDed (:meth:`patch_lanes`, :meth:`range_mask`): with the
    command's offsets less the beat's offset compared in front of them, the patch lanes were
    eight levels deep."""

    def __init__(self, nb, regions):
        self.nb = nb
        self.lg = exact_log2(nb)
        row_bits = max(1, ((WINDOW + 16) >> self.lg).bit_length())
        fields = _patched_fields(Signal(CMD_LAYOUT(regions)), *[C(0, 16)] * 4)
        self.fields = []
        for f, (_en, _pos, _value, n) in enumerate(fields):
            self.fields.append((Signal(name=f"patch{f}_on"), _Row(row_bits, f"patch{f}"),
                                [(Signal(name=f"patch{f}_{b}_next_row"),
                                  Signal(self.lg, name=f"patch{f}_{b}_lane")) for b in range(n)]))
        self.ranges = {name: ((_Row(row_bits, f"{name}_from"), Signal(self.lg, name=f"{name}_from_lane")),
                              (_Row(row_bits, f"{name}_to"), Signal(self.lg, name=f"{name}_to_lane")))
                       for name in ("ip", "l4", "addresses")}
        self.last_lane = Signal(self.lg, name="last_lane")

    def _rows(self):
        return ([row for _on, row, _bytes in self.fields] +
                [end[0] for ends in self.ranges.values() for end in ends])

    def load(self, m, c):
        """Load the places of command ``c`` (its fields, this cycle); the beat index starts
        at 0."""
        lg = self.lg
        for (on, row, bytes_at), (en, pos, _value, _n) in zip(
                self.fields, _patched_fields(c, *[C(0, 16)] * 4)):
            pos = Value.cast(pos)
            m.d.sync += on.eq(en)
            row.load(m, pos[lg:])
            for b, (next_row, lane) in enumerate(bytes_at):
                m.d.sync += [next_row.eq((pos[:lg] + b)[lg]), lane.eq(pos[:lg] + b)]
        bounds = {"ip": (c.l3, c.l3 + Mux(c.v6, 0, 20)), "l4": (c.l4, c.hdr_len),
                  "addresses": (c.l3 + Mux(c.v6, 8, 12), c.l3 + Mux(c.v6, 40, 20))}
        for name, offsets in bounds.items():
            for (row, lane), offset in zip(self.ranges[name], offsets):
                offset = Value.cast(offset)
                row.load(m, offset[lg:])
                m.d.sync += lane.eq(offset[:lg])
        m.d.sync += self.last_lane.eq((c.len - 1)[:lg])

    def restart(self, m):
        """The beat index starts again at 0 (the same command)."""
        for row in self._rows():
            row.restart(m)

    def step(self, m):
        """The beat index moves on by one."""
        for row in self._rows():
            row.step(m)

    def patch_lanes(self):
        """Per field, bit ``k * nbytes + b`` set when lane ``k`` of the beat being read holds
        the field's byte ``b`` (from its first, big-endian) and the field is on."""
        lanes = []
        for (on, row, bytes_at), starts in zip(self.fields, _FIELD_STARTS_MOD4):
            lanes.append(Cat(*[
                on & Mux(next_row, row.after, row.at) & (lane == k)
                if starts is None or (k - b) % 4 in starts else C(0, 1)
                for k in range(self.nb) for b, (next_row, lane) in enumerate(bytes_at)]))
        return lanes

    def range_mask(self, name):
        """The lanes of the beat being read in the range ``name`` (``[from, to)``)."""
        (lo, lo_lane), (hi, hi_lane) = self.ranges[name]
        before_hi = ~hi.past & ~hi.at
        return Cat(*[(lo.past | lo.at & _at_most(lo_lane, i, self.nb))
                     & (before_hi | hi.at & ~_at_most(hi_lane, i, self.nb))
                     for i in range(self.nb)])


def _at_most(lane, i, nb):
    """``lane <= i`` for a lane of a beat of ``nb`` bytes, written without a comparison that
    is constant (Verilator's CMPCONST and UNSIGNED)."""
    if i < 0:
        return C(0, 1)
    return C(1, 1) if i >= nb - 1 else lane <= i


def _ticket_met(copies, ticket):
    """The copies dispatched before an emission (its ``ticket``) are all done: ``copies``
    has reached it, counted modulo ``2**TICKET_BITS``."""
    return ~(copies - ticket)[TICKET_BITS - 1]
