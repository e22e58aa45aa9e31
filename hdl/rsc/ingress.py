"""The RSC engine's input side: the arrival log, the segment analyzer, frames taken in."""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from nicoffload.model import nbl
from nicoffload.model.parse import IPPROTO_TCP, VLAN_TPIDS

from ..checksum import effective_error
from ..onesum import add_tree
from ..parse import HEADERS_LAYOUT, L3_OFFSETS
from ..stream import StreamFIFO

from .common import (DESC_LAYOUT, EVENT_LAYOUT, LANDING_SLOTS, RSC_IN_LAYOUT, SEG_KIND_EXC,
                     SEG_KIND_FRAG, SEG_KIND_PASS, SEG_KIND_SEG, TIME_BITS, _be, _byte,
                     or_tree)


OPTION_BYTES = 40                   # TCP option bytes at most (a 60-byte TCP header)
HEAD_BYTES = 30                     # the Ethernet header and VLAN tags at most (l3 <= 30)
AT_L3_BYTES = 40                    # from l3: an IPv6 fixed header (an IPv4 header's 20 first)
TCP_BYTES = 60                      # from l3 + 20 (IPv4) / l3 + 40 (IPv6): the longest TCP header
PORT_BYTES = 4                      # from l4: the TCP ports
MIN_L4 = min(L3_OFFSETS) + 20       # a TCP header starts there at the earliest (IPv4)


class RscEvents(wiring.Component):
    """The arrival log: every event the model sees, stamped with the cycle, in order.

    Attributes
    ----------
    frame_end : In(1)
        A frame's last beat entered the path this cycle.
    s_eoi : In(stream.Signature(1))
        End-of-indication markers, one per handshake (payload ignored). Ready while the log
        has room.
    enables : In(2)
        RSC on for IPv4 (bit 0) and IPv6 (bit 1). A bit going from 1 to 0 logs a flush.
    events : Out(stream.Signature(EVENT_LAYOUT))
        The log, oldest first.
    now : Out(TIME_BITS)
        Time of the oldest event in the log, else the current cycle.
    room : Out(1)
        The log can take an event this cycle (gate the path's input with it).
    """

    def __init__(self, depth=64):
        self.depth = depth
        super().__init__({
            "frame_end": In(1), "s_eoi": In(stream.Signature(1)), "enables": In(2),
            "events": Out(stream.Signature(EVENT_LAYOUT)), "now": Out(TIME_BITS),
            "room": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.log = log = fifo.SyncFIFO(width=EVENT_LAYOUT.size, depth=self.depth)
        cycle = Signal(TIME_BITS)
        en_q = Signal(2, init=0b11)
        m.d.sync += cycle.eq(cycle + 1)
        fell = Signal()
        eoi = Signal()
        entry = Signal(EVENT_LAYOUT)
        m.d.comb += [
            self.room.eq(log.w_rdy),
            self.s_eoi.ready.eq(log.w_rdy),
            eoi.eq(self.s_eoi.valid & log.w_rdy),
            fell.eq(log.w_rdy & (en_q & ~self.enables).any()),
            entry.time.eq(cycle), entry.frame.eq(self.frame_end), entry.eoi.eq(eoi),
            entry.dis.eq(fell), entry.en4.eq(self.enables[0]), entry.en6.eq(self.enables[1]),
            log.w_data.eq(entry),
            log.w_en.eq(self.frame_end | eoi | fell),
            self.events.payload.eq(log.r_data),
            self.events.valid.eq(log.r_rdy),
            log.r_en.eq(self.events.ready),
            self.now.eq(Mux(log.r_rdy, self.events.payload.time, cycle)),
        ]
        with m.If(log.w_rdy):
            m.d.sync += en_q.eq(self.enables)
        return m


class SegmentAnalyzer(wiring.Component):
    """What RSC reads from a frame (``model.rsc._exception`` / ``_segment``) from the header
    bytes the ingress keeps (the frame's first bytes, the IP header from l3, the TCP header
    from l3 + 20 or + 40 by the record's IP version and the ports from l4, each picked as the
    beats go by: no choice among offsets here), the parse record, the frame length and the
    checksum word, in two stages: ``desc`` is valid the cycle after the inputs are set, which
    need hold for that one cycle only (the first stage registers the IP and TCP headers, the
    option walk's verdict at each option byte, whether bytes 12 and 16 hold a VLAN TPID,
    where the L2 header ends and the other inputs; the second reads only those registers),
    so a frame can be analyzed every cycle.

    Attributes
    ----------
    head : In(HEAD_BYTES * 8)
        The frame's first bytes, byte 0 in bits 0..7.
    at_l3 : In(AT_L3_BYTES * 8)
        The frame's bytes from ``hdr.l3`` on, in order (bytes past the frame: anything).
    at_tcp : In(TCP_BYTES * 8)
        The frame's bytes from ``hdr.l3`` + 20 (IPv4; also when neither version) or + 40
        (IPv6) on, in order (bytes past the frame: anything).
    at_l4 : In(PORT_BYTES * 8)
        The frame's bytes from ``hdr.l4`` on, in order (the TCP ports).
    opt_kinds : In(OPTION_BYTES * 4)
        Of each TCP option byte (``at_tcp`` byte 20 + i), :func:`option_kinds`: worked out by
        the ingress as the byte is captured, so the option walk starts from flip-flops.
    opt_in : In(OPTION_BYTES + 10)
        Bit k: option byte k is in the options (:func:`in_options` of the record's TCP
        header length), from the ingress as the record is.
    hdr : In(HEADERS_LAYOUT(0))
    frame_len : In(17)
    csum : In(32)
        The ChecksumRx word.
    slot : In(range(LANDING_SLOTS))
        The landing slot the frame is in (passed into ``desc.slot``).
    desc : Out(DESC_LAYOUT)
        The descriptor.
    """

    def __init__(self):
        super().__init__({
            "head": In(HEAD_BYTES * 8), "at_l3": In(AT_L3_BYTES * 8),
            "at_tcp": In(TCP_BYTES * 8), "at_l4": In(PORT_BYTES * 8),
            "opt_kinds": In(OPTION_BYTES * 4), "opt_in": In(OPTION_BYTES + 10),
            "hdr": In(HEADERS_LAYOUT(0)), "frame_len": In(17), "csum": In(32),
            "slot": In(range(LANDING_SLOTS)),
            "desc": Out(DESC_LAYOUT),
        })

    @staticmethod
    def _option_walk(m, kinds, in_opts):
        """The option walk (model._timestamp_option) in the first stage, its verdict at each
        option byte registered: (``opt_bad``: the walk fails at byte i, ``opt_hit``: the walk
        finds a timestamp at byte i; at most one hit, where the walk without a timestamp
        ends). Of each option byte i: ``step`` (in the options and a NOP: the walk goes on),
        ``ts`` (a timestamp option fits there: kind 8, length 10, ten bytes in the options)
        and ``other`` (in the options, neither EOL nor NOP: a walk that reaches it without a
        timestamp there fails). Then two carry chains side by side, not one after the other.
        The walk reaches byte i without a timestamp (``reach0``) when every byte before is a
        ``step``: the carries of ``step + 1``. A walk that resumes at byte p (ten bytes past
        a timestamp) fails (``fail_from[p]``) when the first byte from p on that is not a
        ``step`` is an ``other``: a carry chain run from the last byte down
        (``fail_from[p] = other[p] | step[p] & fail_from[p + 1]``: generate ``other``,
        propagate ``step``), worked out for every p before the hit is known. The walk fails
        at a byte it reaches without a timestamp that is an ``other`` and no timestamp, or a
        timestamp from whose end the walk fails. The second stage ORs the registered bits.
        ``kinds`` and ``in_opts`` are the inputs ``opt_kinds`` and ``opt_in``: registers, no
        byte compares in front of the chains."""
        n = OPTION_BYTES
        kind = [data.View(OPTION_KIND, kinds[4 * i:4 * i + 4]) for i in range(n)]
        nop, step, ts, other = (Signal(n, name=f"opt_{name}")
                                for name in ("nop", "step", "ts", "other"))
        for i in range(n):
            m.d.comb += [
                nop[i].eq(kind[i].nop),
                step[i].eq(in_opts[i] & nop[i]),
                ts[i].eq(in_opts[i + 9] & kind[i].kind8 &
                         (kind[i + 1].len10 if i + 1 < n else 0)),
                other[i].eq(in_opts[i] & ~kind[i].eol & ~nop[i]),
            ]
        # The bytes before i are all in the options when byte i - 1 is (a prefix), so the
        # chain of ``step + 1`` is that of the NOPs alone, the options' end ANDed after it.
        sum0 = Signal(n + 1)
        m.d.comb += sum0.eq(nop + 1)
        reach0 = Signal(n)
        m.d.comb += reach0.eq((sum0[:n] ^ nop) & Cat(C(1, 1), in_opts[:n - 1]))
        # The chain from byte n - 1 down: bit k of the reversed vectors is byte n - 1 - k.
        gen_rev, prop_rev = Cat(*reversed(list(other))), Cat(*reversed(list(step)))
        sum_rev = Signal(n + 1)
        m.d.comb += sum_rev.eq((gen_rev | prop_rev) + gen_rev)
        carries = Signal(n + 1)     # carry into reversed bit k: fail_from[n - k]
        m.d.comb += carries.eq(sum_rev ^ (gen_rev | prop_rev) ^ gen_rev)
        fail_from = Signal(n + 1, name="opt_fail_from")     # fail_from[n]: past the options
        m.d.comb += fail_from.eq(Cat(*[carries[n - p] for p in range(n)], C(0, 1)))
        bad, hit = Signal(n, name="opt_bad"), Signal(n, name="opt_hit")
        m.d.sync += [
            hit.eq(reach0 & ts),
            bad.eq(Cat(*[reach0[i] & Mux(ts[i], fail_from[i + 10] if i + 10 <= n else 0,
                                         other[i]) for i in range(n)])),
        ]
        return bad, hit

    def _kind_inputs(self, m, tcp):
        """What the kind hangs on but the option walk, worked out in the first stage from the
        inputs and registered: (passes through, an exception but the options' one)."""
        hdr = self.hdr
        v6 = hdr.is_ipv6
        cs = Signal(nbl.ChecksumRx.WIDTH)
        m.d.comb += cs.eq(self.csum)
        f = {name: cs[lsb] for name, (lsb, _) in nbl.ChecksumRx.offsets().items()}
        flags = _byte(tcp, 13)
        allowed = 0x10 | 0x08 | 0x40 | 0x80
        passes, exc = Signal(), Signal(name="exc_but_options")
        m.d.sync += [
            passes.eq((effective_error(hdr, self.frame_len) != 0) | ~(hdr.is_ipv4 | v6) |
                      (hdr.l4_proto != IPPROTO_TCP)),
            exc.eq(f["TcpChecksumFailed"] | ~f["TcpChecksumSucceeded"] |
                   (~v6 & (f["IpChecksumFailed"] | ~f["IpChecksumSucceeded"])) |
                   (hdr.ip_header_len != Mux(v6, 40, 20)) | (_byte(tcp, 12)[:4] != 0) |
                   ((flags & ~allowed & 0xFF) != 0) | ~flags[4]),
        ]
        return passes, exc

    def elaborate(self, platform):
        m = Module()
        d = self.desc
        ip = Signal(AT_L3_BYTES * 8)    # the IP fixed header
        tcp = Signal(TCP_BYTES * 8)     # TCP at l3 + 20 (IPv4) / l3 + 40 (IPv6)
        # The first of the analyzer's two stages: registers.
        m.d.sync += [ip.eq(self.at_l3), tcp.eq(self.at_tcp)]
        opt_bad, hits = self._option_walk(m, self.opt_kinds, self.opt_in)
        ports = Signal(32)
        m.d.sync += ports.eq(_be(self.at_l4, 0, 4))
        # The rest of the first stage: the inputs the second reads.
        hdr = Signal(HEADERS_LAYOUT(0))
        head = Signal(HEAD_BYTES * 8)   # the Ethernet header and VLAN tags
        frame_len, csum, slot = Signal(17), Signal(32), Signal(range(LANDING_SLOTS))
        m.d.sync += [hdr.eq(self.hdr), head.eq(self.head), frame_len.eq(self.frame_len),
                     csum.eq(self.csum), slot.eq(self.slot)]
        v6 = hdr.is_ipv6
        thl = hdr.l4_header_len
        l4, end_less_thl = Signal(8), Signal(17)
        m.d.sync += [l4.eq(self.hdr.l3 + Mux(self.hdr.is_ipv6, 40, 20)),
                     end_less_thl.eq(self.hdr.ip_end - self.hdr.l4_header_len)]
        passes, exc_but_options = self._kind_inputs(m, self.at_tcp)
        opt_ok, ts = ~opt_bad.any(), hits.any()
        # At most one position is a hit (the walk without a timestamp ends there): an OR of
        # the hit positions' fields, not a chain of priority choices.
        tsval, tsecr, ts_rel = Signal(32), Signal(32), Signal(8)
        places = range(OPTION_BYTES - 9)
        m.d.comb += [tsecr.eq(or_tree([Mux(hits[i], _be(tcp, 20 + i + 6, 4), 0)
                                       for i in places])),
                     tsval.eq(or_tree([Mux(hits[i], _be(tcp, 20 + i + 2, 4), 0)
                                       for i in places]))]
        # The hit's offset from l4, bit by bit an OR of the hits whose offset has that bit
        # (not a choice among constants beside the fields', which Yosys merged into their
        # tree: seven levels to ``ts_off`` through its adder).
        with_bit = [[hits[i] for i in places if (20 + i) >> b & 1] for b in range(len(ts_rel))]
        m.d.comb += ts_rel.eq(Cat(*[or_tree(hs) if hs else C(0, 1) for hs in with_bit]))

        # The flow key. Whether bytes 12 and 16 hold a VLAN TPID, and where the L2 header
        # ends (``l3 > i``), are worked out in the first stage.
        def tag(at):
            tpid = _be(head, at, 2)
            return Cat(_be(head, at + 2, 2)[:12], tpid, C(1, 1))
        tag0, tag1 = tag(12), tag(16)
        is_tpid0, is_tpid1 = Signal(), Signal()
        m.d.sync += [is_tpid0.eq(Cat(*[_be(self.head, 12, 2) == t for t in VLAN_TPIDS]).any()),
                     is_tpid1.eq(Cat(*[_be(self.head, 16, 2) == t for t in VLAN_TPIDS]).any())]
        in_l2 = Signal(HEAD_BYTES)
        m.d.sync += in_l2.eq(Cat(*[self.hdr.l3 > i for i in range(HEAD_BYTES)]))
        key = d.key
        m.d.comb += [
            key.tag0.eq(Mux(is_tpid0, tag0, 0)),
            key.tag1.eq(Mux(is_tpid0 & is_tpid1, tag1, 0)),
            key.v6.eq(v6),
            key.src.eq(Mux(v6, _be(ip, 8, 16), _be(ip, 12, 4))),
            key.dst.eq(Mux(v6, _be(ip, 24, 16), _be(ip, 16, 4))),
            key.ports.eq(ports),
        ]
        # The fields that must equal the SCU's, ECN, TTL.
        word6 = _be(ip, 0, 4)
        same = d.same
        m.d.comb += [
            same.l3.eq(hdr.l3),
            same.l2.eq(Cat(*[Mux(in_l2[i], _byte(head, i), 0) for i in range(HEAD_BYTES)])),
            same.ip.eq(Mux(v6, Cat(word6[:20], word6[22:28]),
                           Cat(_byte(ip, 6)[6], C(0, 19), _byte(ip, 1)[2:8]))),
            same.thl.eq(thl), same.ts.eq(ts),
            d.ecn.eq(Cat(_byte(tcp, 13)[6:8], Mux(v6, _byte(ip, 1)[4:6], _byte(ip, 1)[0:2]))),
            d.hop.eq(Mux(v6, _byte(ip, 7), _byte(ip, 8))),
        ]
        # Kind: pass-through, fragment, exception (model order), eligible segment.
        flags = _byte(tcp, 13)
        exc = exc_but_options | ~opt_ok
        with m.If(passes):
            m.d.comb += d.kind.eq(SEG_KIND_PASS)
        with m.Elif(hdr.is_fragment):
            m.d.comb += d.kind.eq(SEG_KIND_FRAG)
        with m.Elif(exc):
            m.d.comb += d.kind.eq(SEG_KIND_EXC)
        with m.Else():
            m.d.comb += d.kind.eq(SEG_KIND_SEG)
        m.d.comb += [
            d.slot.eq(slot), d.frame_len.eq(frame_len), d.csum.eq(csum),
            d.seq.eq(_be(tcp, 4, 4)), d.ack.eq(_be(tcp, 8, 4)), d.wnd.eq(_be(tcp, 14, 2)),
            d.flags.eq(flags), d.tsval.eq(tsval), d.tsecr.eq(tsecr),    # 0 without a hit
            d.ts_off.eq(l4 + ts_rel),
            d.len.eq(end_less_thl - l4), d.ip_end.eq(hdr.ip_end), d.l4.eq(l4),
            d.hdr_len.eq(l4 + thl),
        ]
        return m


#: What the option walk needs of an option byte, worked out as the byte is captured.
OPTION_KIND = data.StructLayout({"nop": 1, "eol": 1, "kind8": 1, "len10": 1})


def option_kinds(byte):
    """An ``OPTION_KIND`` value of ``byte``: NOP (1), EOL (0), the timestamp's kind (8) and
    length (10)."""
    return Cat(byte == 1, byte == 0, byte == 8, byte == 10)


def in_options(thl):
    """Bit k: TCP option byte k is in the options of a TCP header of ``thl`` bytes
    (k < thl - 20), from thl's bits (thl - 20 <= k exactly when 20 <= thl <= 20 + k): LUTs,
    no carry chain; every bit set when thl < 20."""
    return Cat(*[~_above(thl, 19) | _above(thl, 20 + k) for k in range(OPTION_BYTES + 10)])


def _above(x, c):
    """``x > c`` for a constant ``c`` from ``x``'s bits, low to high (LUTs, no carry chain)."""
    assert 0 <= c < 1 << len(x)
    above = C(0, 1)
    for k in range(len(x)):
        above = (x[k] & above) if (c >> k) & 1 else (x[k] | above)
    return above


class RscIngress(wiring.Component):
    """Frames into the landing RAM's slots (``LANDING_SLOTS``, taken in turn), each with its
    descriptor.

    Attributes
    ----------
    s : In(stream.Signature(RSC_IN_LAYOUT(W)))
        ``ready`` is a flip-flop: the slot the next beat goes into is free.
    land_addr, land_data, land_en : Out
        The landing RAM's write port (``land_en`` a write this cycle).
    m_desc : Out(stream.Signature(DESC_LAYOUT))
        One descriptor per frame, in order, pushed two cycles after the frame's last beat
        (the analyzer's two stages).
    release : In(LANDING_SLOTS)
        A bit per slot: the frame in that slot has been read out (copied or emitted).
    """

    def __init__(self, width, slot_beats):
        self.width = width
        self.slot_beats = slot_beats
        super().__init__({
            "s": In(stream.Signature(RSC_IN_LAYOUT(width))),
            "land_addr": Out(range(LANDING_SLOTS * slot_beats)), "land_data": Out(width),
            "land_en": Out(1),
            "m_desc": Out(stream.Signature(DESC_LAYOUT)),
            "release": In(LANDING_SLOTS),
        })

    def _capture(self, m, take, last, beat_i, beat, hdr):
        """The header bytes the analyzer reads, picked out of each beat taken as it goes by
        (``hdr``: the frame's parse record, valid on every beat): the first ``HEAD_BYTES``,
        ``AT_L3_BYTES`` from l3, ``TCP_BYTES`` from l3 + 20 or + 40 (by the record's IP
        version) and ``PORT_BYTES`` from l4. Byte j from l3 is window byte l3 + j, so it
        comes on one beat and lane per l3 of ``L3_OFFSETS`` (and per version for the TCP
        header): a register per byte loaded from one of a few lanes (two at W=64), not a
        choice among offsets of a 256-byte window after the frame, nor a choice between the
        versions' TCP headers after it. Which of the first beats is taken is a one-hot
        register beside ``beat_i`` (``beat_at``), not ``beat_i`` compared with each number.
        Which start (l3, and version) is the frame's is decoded from the record on its first
        beat and from a register loaded with each beat taken on later beats (the record is
        the frame's on every beat), so no decode of the record lies before the enables of
        bytes that come after the first beat (at W=64, all of them)."""
        nb = self.width // 8
        head, at_l3, at_tcp, at_l4 = (Signal(n * 8, name=name) for n, name in
                                      ((HEAD_BYTES, "head"), (AT_L3_BYTES, "at_l3"),
                                       (TCP_BYTES, "at_tcp"), (PORT_BYTES, "at_l4")))
        opt_kinds = Signal(OPTION_BYTES * 4, name="opt_kinds")
        opt_in = Signal(OPTION_BYTES + 10, name="opt_in")
        beats = -(-(max(L3_OFFSETS) + 40 + TCP_BYTES) // nb)
        # Bit k: beat k is the next taken (k < beats); bit ``beats``: a later one.
        beat_at = Signal(beats + 1, init=1)
        with m.If(take):
            m.d.sync += beat_at.eq(Mux(last, 1, Cat(C(0, 1), beat_at[:beats - 1],
                                                    beat_at[beats - 1:].any())))
        beat_is = beat_at[:beats]
        n3 = len(L3_OFFSETS)
        l3_is, tcp_is = Signal(n3), Signal(2 * n3)  # the l3 offsets; IPv4's then IPv6's
        m.d.comb += [l3_is[i].eq(hdr.l3 == v) for i, v in enumerate(L3_OFFSETS)]
        m.d.comb += tcp_is.eq(Cat(l3_is & ~hdr.is_ipv6.replicate(n3),
                                  l3_is & hdr.is_ipv6.replicate(n3)))
        l3_q, tcp_q = Signal.like(l3_is), Signal.like(tcp_is)
        with m.If(take):
            m.d.sync += [l3_q.eq(l3_is), tcp_q.eq(tcp_is)]
        with m.If(take):
            for k in range(-(-HEAD_BYTES // nb)):
                with m.If(beat_is[k]):
                    m.d.sync += [_byte(head, j).eq(_byte(beat, j - k * nb))
                                 for j in range(k * nb, min(HEAD_BYTES, (k + 1) * nb))]
            self._pick(m, beat, beat_is, at_l3,
                       [(l3_is[i], l3_q[i], v) for i, v in enumerate(L3_OFFSETS)])
            tcp_starts = ([(tcp_is[i], tcp_q[i], v + 20) for i, v in enumerate(L3_OFFSETS)] +
                          [(tcp_is[n3 + i], tcp_q[n3 + i], v + 40)
                           for i, v in enumerate(L3_OFFSETS)])
            self._pick(m, beat, beat_is, at_tcp, tcp_starts)
            # The option bytes' kinds, each lane's worked out beside the lane and chosen as
            # the byte is.
            lane_kinds = Cat(*[option_kinds(_byte(beat, k)) for k in range(nb)])
            self._pick(m, lane_kinds, beat_is, opt_kinds,
                       [(first, later, at + 20) for first, later, at in tcp_starts], bits=4)
            with m.If(beat_is[0]):
                m.d.sync += opt_in.eq(in_options(hdr.l4_header_len))
            for j, (here, lane) in enumerate(self._port_places(m, take, last, beat_i,
                                                                beat_is[0], hdr)):
                with m.If(here):
                    m.d.sync += _byte(at_l4, j).eq(beat.word_select(lane, 8))
        return head, at_l3, at_tcp, at_l4, opt_kinds, opt_in, beat_is[0]

    def _port_places(self, m, take, last, beat_i, first, hdr):
        """Where each byte of the TCP ports is: (it is on the beat on the input, its lane), for
        later beats from registers worked out as the beat before was taken (the record is the
        frame's on every beat), so no addition and comparison stand before the ports' enables
        and lanes. Only at W=512 can they be on a frame's first beat (l4 is 34 at least):
        there from the record."""
        nb = self.width // 8
        shift = exact_log2(nb)
        places = []
        for j in range(PORT_BYTES):
            at = Signal(10, name=f"port_at{j}")
            m.d.comb += at.eq(hdr.l4 + j)
            here_q = Signal(name=f"port_here{j}")
            lane_q = Signal(shift, name=f"port_lane{j}")
            with m.If(take):
                m.d.sync += [here_q.eq(~last & (at[shift:] == beat_i + 1)),
                             lane_q.eq(at[:shift])]
            if nb > MIN_L4:
                places.append((Mux(first, at[shift:] == 0, here_q),
                               Mux(first, at[:shift], lane_q)))
            else:
                places.append((here_q, lane_q))
        return places

    def _pick(self, m, beat, beat_is, dest, starts, bits=8):
        """Load item j of ``dest`` (``bits`` bits each) with lane item ``s + j`` of ``beat``
        (each lane's ``bits`` bits: its byte, or what is worked out of it) from the beat it
        comes on, for the one start s of ``starts`` (a select on the first beat, one on later
        beats, the offset) whose select is set."""
        nb = self.width // 8
        for j in range(len(dest) // bits):
            where = [((first if k == 0 else later) & beat_is[k], lane)
                     for first, later, at in starts for k, lane in [divmod(at + j, nb)]]
            lanes = sorted({lane for _on, lane in where})
            value = or_tree([Mux(Cat(*[on for on, at in where if at == lane]).any(),
                                 beat.word_select(lane, bits), 0) for lane in lanes])
            with m.If(Cat(*[on for on, _lane in where]).any()):
                m.d.sync += dest.word_select(j, bits).eq(value)

    def elaborate(self, platform):
        m = Module()
        nb = self.width // 8
        m.submodules.analyzer = an = SegmentAnalyzer()
        # A descriptor per slot at most waits (from depth 3 a StreamFIFO takes one a cycle).
        m.submodules.descs = descs = StreamFIFO(DESC_LAYOUT, max(3, LANDING_SLOTS))
        hdr = Signal(HEADERS_LAYOUT(0))
        slot = Signal(range(LANDING_SLOTS))         # the slot being filled
        frame_slot = Signal(range(LANDING_SLOTS))   # the slot of the frame analyzed
        busy = Signal(LANDING_SLOTS)
        beat_i = Signal(range(self.slot_beats + 1))
        frame_len = Signal(17)
        csum = Signal(32)
        # The cycle after a last beat: the analyzer's first stage (the next frame's beats may
        # come in from that cycle on: the stage takes what it needs); the cycle after that:
        # push the descriptor.
        analyze = Signal()
        push = Signal()
        p = self.s.payload
        take = Signal()
        set_busy = Signal(LANDING_SLOTS)
        # The input's ``ready`` is a flip-flop, worked out a cycle ahead: the slot the next
        # beat goes into holds no frame still to be read out. (``take`` enables every header
        # byte the capture keeps: with ``ready`` decoded from ``busy`` and ``slot`` in front
        # of it, a thousand of them were five levels deep.) The descriptor FIFO needs no say:
        # a descriptor is read out before its slot is released, so it holds one per busy slot
        # at most, and it is as deep as there are slots.
        assert descs.depth >= LANDING_SLOTS
        slot_is = Signal(LANDING_SLOTS, init=1)     # ``slot``, one-hot
        slot_after = Cat(slot_is[-1], slot_is[:-1])
        still_busy = busy & ~self.release
        slot_free = Signal(init=1)
        with m.If(take & p.beat.last):
            m.d.sync += [slot_is.eq(slot_after),
                         slot_free.eq(~(still_busy & slot_after).any())]
        with m.Else():
            m.d.sync += slot_free.eq(~(still_busy & slot_is).any())
        m.d.comb += [
            self.s.ready.eq(slot_free),
            take.eq(self.s.valid & self.s.ready),
            self.land_addr.eq(slot * self.slot_beats
                              + Mux(beat_i < self.slot_beats, beat_i, self.slot_beats - 1)),
            self.land_data.eq(p.beat.data),
            self.land_en.eq(take),
        ]
        head, at_l3, at_tcp, at_l4, opt_kinds, opt_in, beat_first = self._capture(
            m, take, p.beat.last, beat_i, p.beat.data, p.hdr)
        with m.If(take):
            m.d.sync += beat_i.eq(Mux(p.beat.last, 0, Mux(beat_i < self.slot_beats, beat_i + 1,
                                                          beat_i)))
            with m.If(beat_first):
                m.d.sync += hdr.eq(p.hdr)
            count = add_tree([p.beat.keep[i] for i in range(nb)])
            m.d.sync += frame_len.eq(Mux(beat_i < self.slot_beats, beat_i, self.slot_beats - 1)
                                     * nb + count)
            with m.If(p.beat.last):
                m.d.sync += [csum.eq(p.beat.user[:32]), frame_slot.eq(slot),
                             slot.eq(Mux(slot == LANDING_SLOTS - 1, 0, slot + 1))]
                m.d.comb += set_busy.eq(slot_is)
        m.d.comb += [
            an.head.eq(head), an.at_l3.eq(at_l3), an.at_tcp.eq(at_tcp), an.at_l4.eq(at_l4),
            an.opt_kinds.eq(opt_kinds), an.opt_in.eq(opt_in),
            an.hdr.eq(hdr),
            an.frame_len.eq(frame_len), an.csum.eq(csum), an.slot.eq(frame_slot),
            descs.s.payload.eq(an.desc),
            descs.s.valid.eq(push),
        ]
        m.d.sync += [analyze.eq(take & p.beat.last), push.eq(analyze)]
        m.d.sync += busy.eq((busy | set_busy) & ~self.release)
        wiring.connect(m, descs.m, wiring.flipped(self.m_desc))
        return m



