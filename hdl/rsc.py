"""Receive segment coalescing (RSC) RTL: the twin of ``nicoffload.model.rsc``.

:class:`RscEngine` sits after the receive checksum stage. It takes frames whose last beat
carries ``nbl.RxUser`` (the ChecksumRx word; RSC words zero), each beside its parse record
(``hdl.parse.HEADERS_LAYOUT``, the RX path's one parse), and indicates frames with their
``nbl.RxUser`` on the last beat, exactly as ``model.rsc.RscEngine`` does (read that module's
docstring for every rule; this one says how the hardware does it).

Structure::

    s (beat + record) ─► RscIngress ─► landing RAM (2 frame slots)      RscEvents (arrival log)
                          │ 256-byte header window                          │ time, frame, eoi,
                          └► SegmentAnalyzer ─► descriptor FIFO ─┐          │ disable, enables
                                                                  ▼          ▼
                                            RscSequencer (flow contexts, CAM, rules, timer)
                                                                  │ commands
                                                                  ▼
                            RscMover: copy landing ─► SCU RAM (realigned), emit landing
                            frame, emit SCU (two passes: sum, then patched) ─► m (RxUser)

Time and the arrival log
    Every event the model sees is stamped, in order, into :class:`RscEvents`: a frame's last
    beat entering the path (``frame_end``), an end-of-indication marker (``s_eoi``, one
    handshake per marker; a marker in the cycle of a frame end comes after that frame), and
    RSC being switched off for an IP version (``enables`` falling: every SCU is flushed before
    the next frame). The time is a 32-bit cycle counter. The sequencer's notion of "now" is
    the time of the oldest event not yet decided, or the current cycle when there is none, so
    an SCU the idle timer ends is ended exactly before the frames the model ends it before.
    The testbench feeds the model each frame with the cycle its last beat was taken at the
    path's input, calls ``expire(t)`` before ``end_indication()`` / ``set_enables()`` at the
    marker's cycle ``t``, and gets the same output, bit for bit.

Flow contexts (``contexts``, default 8) are registers: the flow key (VLAN tags, IP version,
addresses, ports), the fields that must be equal, H.NXT/ACK/WND/TSval/TSecr, PSH OR, TTL min,
counts, opening order and last-join time. Lookup compares the descriptor's key with every
context at once (a CAM). The opening order picks the SCU to evict and the flush order; the
last-join time picks the next SCU the idle timer ends.

SCU buffer: one region per context of ``max(max_scu_bytes, max_frame_bytes)`` bytes in one
RAM (``amaranth.lib.memory``, byte write enables). The segment that opens an SCU is copied
whole (padding too: a one-segment SCU is indicated unchanged); each joining segment's payload
is copied behind the SCU's payload, realigned by a byte rotation. An SCU of more than one
segment is emitted in two passes: the first sums the rewritten headers and payload (IPv4
header and TCP checksums), the second sends it with every field rewritten.

Limits: frames up to ``max_frame_bytes`` (default 16,384: more than a 9,018-byte jumbo frame);
a longer frame is cut at that length (not supported). Throughput is not line rate: a frame
costs its beats once into the landing RAM (overlapped with the previous frame) and once out
(copy or emit); an SCU of more than one segment costs its beats twice when indicated.
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import rsc as model
from nicoffload.model.parse import IPPROTO_TCP, VLAN_TPIDS

from .axis import AxisSignature, axis_layout, check_width
from .checksum import effective_error, range_mask
from .onesum import add_tree, beat_words, fold16
from .parse import HEADERS_LAYOUT, L3_OFFSETS, FrameParser
from .stream import RegisterSlice, StreamFIFO

__all__ = ["RSC_IN_LAYOUT", "EVENT_LAYOUT", "DEFAULT_MAX_FRAME_BYTES", "RscEvents",
           "RscIngress", "SegmentAnalyzer", "RscMover", "RscSequencer", "RscEngine",
           "RscUnit", "Attach"]

RXU = nbl.RxUser.width()
DEFAULT_MAX_FRAME_BYTES = 16384
WINDOW = 256                        # header bytes kept per frame (the parse window)
TIME_BITS = 32
_PSH = 0x08


def RSC_IN_LAYOUT(width):
    """A beat into the engine: the AXI beat (``user`` = RxUser on the last) and the frame's
    parse record (valid on every beat of the frame)."""
    return data.StructLayout({"beat": axis_layout(width, RXU), "hdr": HEADERS_LAYOUT(0)})


#: One entry of the arrival log.
EVENT_LAYOUT = data.StructLayout({
    "time": TIME_BITS,
    "frame": 1,         # a frame ended (its descriptor comes from the ingress, in order)
    "eoi": 1,           # end of a receive indication, after the frame
    "dis": 1,           # RSC switched off for an IP version: flush before the frame
    "en4": 1, "en6": 1,  # the enables in force for the frame
})

KEY_LAYOUT = data.StructLayout({
    "tag0": 29, "tag1": 29,     # present, TPID, VLAN ID
    "v6": 1, "src": 128, "dst": 128,
    "ports": 32,                # last: the address key is everything below
})
ADDR_BITS = KEY_LAYOUT.size - 32

SAME_LAYOUT = data.StructLayout({
    "l3": 8, "l2": 30 * 8, "ip": 26, "thl": 7, "ts": 1,
})

SEG_KIND_PASS, SEG_KIND_FRAG, SEG_KIND_EXC, SEG_KIND_SEG = range(4)

DESC_LAYOUT = data.StructLayout({
    "slot": 1, "frame_len": 17, "csum": 32, "kind": 2,
    "key": KEY_LAYOUT, "same": SAME_LAYOUT, "ecn": 4,
    "seq": 32, "ack": 32, "wnd": 16, "flags": 8, "tsval": 32, "tsecr": 32, "ts_off": 8,
    "hop": 8, "len": 17, "ip_end": 17, "l4": 8, "hdr_len": 8,
})


def _byte(value, i):
    return value[8 * i:8 * i + 8]


def _be(value, start, n):
    """``n`` bytes of ``value`` from byte ``start``, big-endian (network order) as a number."""
    return Cat(*[_byte(value, start + n - 1 - k) for k in range(n)])


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
    """What RSC reads from a frame (``model.rsc._exception`` / ``_segment``), combinationally
    from the header window, the parse record, the frame length and the checksum word.

    Attributes
    ----------
    window : In(WINDOW * 8)
        The frame's first 256 bytes, byte 0 in bits 0..7 (bytes past the frame: anything).
    hdr : In(HEADERS_LAYOUT(0))
    frame_len : In(17)
    csum : In(32)
        The ChecksumRx word.
    desc : Out(DESC_LAYOUT)
        The descriptor (``slot`` left 0).
    """

    def __init__(self):
        super().__init__({
            "window": In(WINDOW * 8), "hdr": In(HEADERS_LAYOUT(0)), "frame_len": In(17),
            "csum": In(32), "desc": Out(DESC_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        win, hdr, d = self.window, self.hdr, self.desc
        ip = Signal(40 * 8)         # the IP fixed header
        tcp = Signal(60 * 8)        # TCP at l3 + 20 (IPv4) / l3 + 40 (IPv6)
        with m.Switch(hdr.l3):
            for l3 in L3_OFFSETS:
                with m.Case(l3):
                    m.d.comb += ip.eq(win[8 * l3:8 * (l3 + 40)])
                    with m.If(hdr.is_ipv6):
                        m.d.comb += tcp.eq(win[8 * (l3 + 40):8 * (l3 + 100)])
                    with m.Else():
                        m.d.comb += tcp.eq(win[8 * (l3 + 20):8 * (l3 + 80)])
        ports = Signal(32)
        with m.Switch(hdr.l4):
            for l4 in range(L3_OFFSETS[0] + 20, WINDOW - 3, 2):
                with m.Case(l4):
                    m.d.comb += ports.eq(_be(win, l4, 4))
        v6 = hdr.is_ipv6
        thl = hdr.l4_header_len
        l4 = Signal(8)
        m.d.comb += l4.eq(hdr.l3 + Mux(v6, 40, 20))

        # TCP options (model._timestamp_option): reach states without / with a timestamp.
        nopt = Signal(7)
        m.d.comb += nopt.eq(thl - 20)
        opt = [_byte(tcp, 20 + i) for i in range(40)]
        reach0 = [[] for _ in range(41)]
        reach1 = [[] for _ in range(41)]
        reach0[0].append(C(1, 1))
        bad, ts_hits = [], []
        for i in range(40):
            r0 = Signal(name=f"opt_r0_{i}")
            r1 = Signal(name=f"opt_r1_{i}")
            m.d.comb += [r0.eq(Cat(*reach0[i]).any() if reach0[i] else 0),
                         r1.eq(Cat(*reach1[i]).any() if reach1[i] else 0)]
            inr = nopt > i
            nop = opt[i] == 1
            ts_ok = (opt[i] == 8) & (nopt >= i + 10) & ((opt[i + 1] == 10) if i + 1 < 40 else 0)
            hit = Signal(name=f"opt_ts_{i}")
            m.d.comb += hit.eq(r0 & inr & ts_ok)
            ts_hits.append((i, hit))
            reach0[i + 1].append(r0 & inr & nop)
            reach1[i + 1].append(r1 & inr & nop)
            if i + 10 <= 40:
                reach1[i + 10].append(hit)
            bad.append((r0 | r1) & inr & (opt[i] != 0) & ~nop & ~hit)
        opt_ok = ~Cat(*bad).any()
        ts = Cat(*[h for _, h in ts_hits]).any()
        tsval, tsecr, ts_rel = Signal(32), Signal(32), Signal(8)
        for i, h in ts_hits:
            if i + 10 <= 40:
                with m.If(h):
                    m.d.comb += [tsval.eq(_be(tcp, 20 + i + 2, 4)),
                                 tsecr.eq(_be(tcp, 20 + i + 6, 4)), ts_rel.eq(20 + i)]

        # The flow key.
        def tag(at):
            tpid = _be(win, at, 2)
            return tpid, Cat(_be(win, at + 2, 2)[:12], tpid, C(1, 1))
        tpid0, tag0 = tag(12)
        tpid1, tag1 = tag(16)
        is_tpid0 = Cat(*[tpid0 == t for t in VLAN_TPIDS]).any()
        is_tpid1 = Cat(*[tpid1 == t for t in VLAN_TPIDS]).any()
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
            same.l2.eq(Cat(*[Mux(hdr.l3 > i, _byte(win, i), 0) for i in range(30)])),
            same.ip.eq(Mux(v6, Cat(word6[:20], word6[22:28]),
                           Cat(_byte(ip, 6)[6], C(0, 19), _byte(ip, 1)[2:8]))),
            same.thl.eq(thl), same.ts.eq(ts),
            d.ecn.eq(Cat(_byte(tcp, 13)[6:8], Mux(v6, _byte(ip, 1)[4:6], _byte(ip, 1)[0:2]))),
            d.hop.eq(Mux(v6, _byte(ip, 7), _byte(ip, 8))),
        ]
        # Kind: pass-through, fragment, exception (model order), eligible segment.
        cs = Signal(nbl.ChecksumRx.WIDTH)
        m.d.comb += cs.eq(self.csum)
        f = {name: cs[lsb] for name, (lsb, _) in nbl.ChecksumRx.offsets().items()}
        flags = _byte(tcp, 13)
        allowed = 0x10 | 0x08 | 0x40 | 0x80
        passes = (effective_error(hdr, self.frame_len) != 0) | ~(hdr.is_ipv4 | v6) | \
            (hdr.l4_proto != IPPROTO_TCP)
        exc = f["TcpChecksumFailed"] | ~f["TcpChecksumSucceeded"] | \
            (~v6 & (f["IpChecksumFailed"] | ~f["IpChecksumSucceeded"])) | \
            (hdr.ip_header_len != Mux(v6, 40, 20)) | (_byte(tcp, 12)[:4] != 0) | \
            ((flags & ~allowed & 0xFF) != 0) | ~flags[4] | ~opt_ok
        with m.If(passes):
            m.d.comb += d.kind.eq(SEG_KIND_PASS)
        with m.Elif(hdr.is_fragment):
            m.d.comb += d.kind.eq(SEG_KIND_FRAG)
        with m.Elif(exc):
            m.d.comb += d.kind.eq(SEG_KIND_EXC)
        with m.Else():
            m.d.comb += d.kind.eq(SEG_KIND_SEG)
        m.d.comb += [
            d.frame_len.eq(self.frame_len), d.csum.eq(self.csum),
            d.seq.eq(_be(tcp, 4, 4)), d.ack.eq(_be(tcp, 8, 4)), d.wnd.eq(_be(tcp, 14, 2)),
            d.flags.eq(flags), d.tsval.eq(Mux(ts, tsval, 0)), d.tsecr.eq(Mux(ts, tsecr, 0)),
            d.ts_off.eq(l4 + ts_rel),
            d.len.eq(hdr.ip_end - l4 - thl), d.ip_end.eq(hdr.ip_end), d.l4.eq(l4),
            d.hdr_len.eq(l4 + thl),
        ]
        return m


class RscIngress(wiring.Component):
    """Frames into the landing RAM's two slots, each with its descriptor.

    Attributes
    ----------
    s : In(stream.Signature(RSC_IN_LAYOUT(W)))
    land_addr, land_data, land_en : Out
        The landing RAM's write port (``land_en`` a write this cycle).
    m_desc : Out(stream.Signature(DESC_LAYOUT))
        One descriptor per frame, in order, pushed the cycle after the frame's last beat.
    release : In(2)
        A bit per slot: the frame in that slot has been read out (copied or emitted).
    """

    def __init__(self, width, slot_beats):
        self.width = width
        self.slot_beats = slot_beats
        super().__init__({
            "s": In(stream.Signature(RSC_IN_LAYOUT(width))),
            "land_addr": Out(range(2 * slot_beats)), "land_data": Out(width),
            "land_en": Out(1),
            "m_desc": Out(stream.Signature(DESC_LAYOUT)),
            "release": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        m.submodules.analyzer = an = SegmentAnalyzer()
        m.submodules.descs = descs = StreamFIFO(DESC_LAYOUT, 2)
        window = Signal(WINDOW * 8)
        hdr = Signal(HEADERS_LAYOUT(0))
        slot = Signal()
        busy = Signal(2)
        beat_i = Signal(range(self.slot_beats + 1))
        frame_len = Signal(17)
        csum = Signal(32)
        analyze = Signal()          # the cycle after a last beat: push the descriptor
        p = self.s.payload
        take = Signal()
        m.d.comb += [
            self.s.ready.eq(~analyze & ~busy.bit_select(slot, 1) & descs.s.ready),
            take.eq(self.s.valid & self.s.ready),
            self.land_addr.eq(slot * self.slot_beats
                              + Mux(beat_i < self.slot_beats, beat_i, self.slot_beats - 1)),
            self.land_data.eq(p.beat.data),
            self.land_en.eq(take),
        ]
        with m.If(take):
            m.d.sync += beat_i.eq(Mux(p.beat.last, 0, Mux(beat_i < self.slot_beats, beat_i + 1,
                                                          beat_i)))
            with m.If(beat_i == 0):
                m.d.sync += hdr.eq(p.hdr)
            with m.Switch(beat_i):
                for i in range(WINDOW * 8 // w):
                    with m.Case(i):
                        m.d.sync += window[i * w:(i + 1) * w].eq(p.beat.data)
            count = add_tree([p.beat.keep[i] for i in range(nb)])
            m.d.sync += frame_len.eq(Mux(beat_i < self.slot_beats, beat_i, self.slot_beats - 1)
                                     * nb + count)
            with m.If(p.beat.last):
                m.d.sync += [csum.eq(p.beat.user[:32]), analyze.eq(1)]
        m.d.comb += [
            an.window.eq(window), an.hdr.eq(hdr), an.frame_len.eq(frame_len),
            an.csum.eq(csum),
            descs.s.payload.eq(an.desc),
            descs.s.payload.slot.eq(slot),
            descs.s.valid.eq(analyze),
        ]
        set_busy = Signal(2)
        with m.If(analyze):
            m.d.sync += [analyze.eq(0), slot.eq(~slot)]
            m.d.comb += set_busy.eq(Mux(slot, 0b10, 0b01))
        m.d.sync += busy.eq((busy | set_busy) & ~self.release)
        wiring.connect(m, descs.m, wiring.flipped(self.m_desc))
        return m


OP_EMIT_LAND, OP_EMIT_SCU, OP_COPY = range(3)


def CMD_LAYOUT(contexts):
    """A command to :class:`RscMover`."""
    return data.StructLayout({
        "op": 2, "slot": 1, "ctx": range(contexts),
        "len": 17,          # bytes to emit; COPY: end of the source range
        "src_lo": 17, "dst_lo": 17,     # COPY: source start, destination start
        "user": RXU,        # EMIT: tuser of the last beat
        "multi": 1,         # EMIT_SCU: rewrite the headers (an SCU of several segments)
        "v6": 1, "l3": 8, "l4": 8, "hdr_len": 8, "ts": 1, "ts_off": 8,
        "ack": 32, "wnd": 16, "flags": 8, "hop": 8, "tsval": 32, "tsecr": 32, "plen": 17,
    })


def _patch(data_in, base, nb, fields):
    """``data_in`` (a beat at frame offset ``base``) with each field ``(enable, offset,
    value, nbytes)`` written big-endian where it falls in the beat."""
    lanes = [_byte(data_in, k) for k in range(nb)]
    for en, pos, value, n in fields:
        rel = Signal(signed(20))
        rel_stmts = rel.eq(pos - base)
        lanes_new = []
        for k in range(nb):
            byte = lanes[k]
            for b in range(n):
                byte = Mux(en & (rel == k - b), value[8 * (n - 1 - b):8 * (n - b)], byte)
            lanes_new.append(byte)
        lanes = lanes_new
        yield rel_stmts
    yield Cat(*lanes)


class RscMover(wiring.Component):
    """The data mover: landing RAM, SCU RAM, and the output.

    Commands (``CMD_LAYOUT``), one at a time (``busy`` from the cycle after the handshake
    until done): ``EMIT_LAND`` sends a landing slot's frame unchanged; ``EMIT_SCU`` sends a
    context's region, with ``multi`` after a summing pass and with every SCU field rewritten;
    ``COPY`` copies landing bytes ``[src_lo, len)`` of a slot to ``dst_lo`` of a context's
    region (``dst_lo >= src_lo``), realigned by a byte rotation.

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
        d_beats, rot, dst_hi = Signal(beats), Signal(range(nb)), Signal(18)
        prev = Signal(w)
        m.d.comb += [
            lr.addr.eq(c.slot * self.slot_beats + rd_j),
            sr.addr.eq(c.ctx * self.region_beats + rd_j),
        ]
        m.d.sync += [p_valid.eq(issue), p_j.eq(rd_j), p_last.eq(rd_j == last_j), p_pre.eq(pre)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    p = self.cmd.payload
                    m.d.sync += [c.eq(p), self.busy.eq(1), j.eq(0), ip_acc.eq(0), l4_acc.eq(0),
                                 ip_csum.eq(0), tcp_csum.eq(0), last_j.eq((p.len - 1) >> lg),
                                 src_scu.eq(p.op == OP_EMIT_SCU),
                                 pass1.eq((p.op == OP_EMIT_SCU) & p.multi),
                                 copy.eq(p.op == OP_COPY)]
                    with m.If(p.op == OP_COPY):
                        m.next = "COPY_INIT"
                    with m.Else():
                        m.next = "READ"
            with m.State("READ"):
                m.d.comb += [rd_j.eq(j), issue.eq(pass1 | (outq.level < self.OUT_DEPTH - 2))]
                with m.If(issue):
                    m.d.sync += j.eq(j + 1)
                    with m.If(j == last_j):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(pass1):
                    m.next = "CSUM"
                with m.Else():
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
            with m.State("CSUM"):
                tcp_len = c.hdr_len - c.l4 + c.plen
                m.d.sync += [ip_csum.eq(~fold16(ip_acc)),
                             tcp_csum.eq(~fold16(l4_acc + IPPROTO_TCP + tcp_len)),
                             pass1.eq(0), j.eq(0)]
                m.next = "READ"
            with m.State("COPY_INIT"):
                delta = Signal(18)
                j0, r0 = Signal(beats), Signal(signed(20))
                m.d.comb += [delta.eq(c.dst_lo - c.src_lo), j0.eq(c.dst_lo >> lg),
                             r0.eq(j0 - (delta >> lg))]
                m.d.sync += [d_beats.eq(delta >> lg), rot.eq(delta[:lg] if lg else 0),
                             dst_hi.eq(c.dst_lo + c.len - c.src_lo),
                             j.eq(r0),
                             last_j.eq(((c.dst_lo + c.len - c.src_lo - 1) >> lg) - (delta >> lg))]
                m.d.comb += [rd_j.eq(Mux(r0 > 0, r0 - 1, 0)), issue.eq(1), pre.eq(1)]
                m.next = "COPY"
            with m.State("COPY"):
                m.d.comb += [rd_j.eq(j), issue.eq(1)]
                m.d.sync += j.eq(j + 1)
                with m.If(j == last_j):
                    m.next = "DRAIN"

        # The stage after a read: the beat is in the RAM's read register.
        rdata = Mux(src_scu, sr.data, lr.data)
        base = Signal(20)
        m.d.comb += base.eq(p_j << lg)
        tcp_len = Signal(17)
        m.d.comb += tcp_len.eq(c.hdr_len - c.l4 + c.plen)
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
        *stmts, patched = list(_patch(rdata, base, nb, fields))
        m.d.comb += stmts
        beat = Signal(w)
        m.d.comb += beat.eq(Mux(src_scu & c.multi, patched, rdata))
        keep = Signal(nb)
        for k in range(nb):
            m.d.comb += keep[k].eq(~p_last | (base + k < c.len))
        # Summing pass: IPv4 header, TCP pseudo-header addresses, TCP header and payload.
        ip_mask, s1 = range_mask(base, c.l3, c.l3 + Mux(c.v6, 0, 20), nb)
        l4_mask, s2 = range_mask(base, c.l4, c.len, nb)
        ad_mask, s3 = range_mask(base, c.l3 + Mux(c.v6, 8, 12), c.l3 + Mux(c.v6, 40, 20), nb)
        m.d.comb += s1 + s2 + s3
        with m.If(p_valid & pass1):
            m.d.sync += [
                ip_acc.eq(ip_acc + add_tree(beat_words(beat, ip_mask, w))),
                l4_acc.eq(l4_acc + add_tree(beat_words(beat, (l4_mask | ad_mask) & keep, w))),
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
        m.d.comb += dst_base.eq((p_j + d_beats) << lg)
        wmask, s4 = range_mask(dst_base, c.dst_lo, dst_hi, nb)
        m.d.comb += s4
        with m.If(p_valid & copy):
            m.d.sync += prev.eq(lr.data)
        shift = Signal(range(8 * nb + 1))
        m.d.comb += shift.eq((nb - rot) << 3)
        m.d.comb += [
            sw.addr.eq(c.ctx * self.region_beats + p_j + d_beats),
            sw.data.eq((Cat(prev, lr.data) >> shift)[:w]),
            sw.en.eq(Mux(p_valid & copy & ~p_pre, wmask, 0)),
        ]
        return m


def CTX_LAYOUT():
    """One flow context: the open SCU's H.* state (``model.rsc._Scu``)."""
    return data.StructLayout({
        "valid": 1, "key": KEY_LAYOUT, "same": SAME_LAYOUT, "ecn": 4,
        "nxt": 32, "ack": 32, "wnd": 16, "tsval": 32, "tsecr": 32, "ts0": 32,
        "flags": 8, "psh": 1, "hop": 8, "count": 17, "multi": 1, "len": 17,
        "hdr_len": 8, "l4": 8, "ts_off": 8, "frame_len": 17, "csum": 32,
        "opened": 32, "lj": TIME_BITS,
    })


_SCU_CSUM4 = nbl.ChecksumRx(IpChecksumSucceeded=1, TcpChecksumSucceeded=1).to_int()
_SCU_CSUM6 = nbl.ChecksumRx(TcpChecksumSucceeded=1).to_int()


def _serial_ge(a, b):
    """a >= b in 32-bit serial arithmetic."""
    return ~(a - b)[31]


class RscSequencer(wiring.Component):
    """The flow table and the rules: one event (and its frame's descriptor) at a time.

    For each event it first ends the SCUs the idle timer has ended (``now``), then (``dis``)
    flushes every SCU, then decides the frame as ``model.rsc.RscEngine.receive`` does, then
    (``eoi``) flushes every SCU; each step is one or more :class:`RscMover` commands.

    Attributes
    ----------
    events : In(stream.Signature(EVENT_LAYOUT))
    now : In(TIME_BITS)
    idle_timeout : In(TIME_BITS)
        Cycles; 0: no timer.
    desc : In(stream.Signature(DESC_LAYOUT))
    cmd : Out(stream.Signature(CMD_LAYOUT(contexts)))
    busy : In(1)
        The mover is busy.
    release : Out(2)
        The frame in that landing slot has been dealt with.
    """

    def __init__(self, contexts, max_scu_bytes):
        self.contexts = contexts
        self.max_scu_bytes = max_scu_bytes
        super().__init__({
            "events": In(stream.Signature(EVENT_LAYOUT)), "now": In(TIME_BITS),
            "idle_timeout": In(TIME_BITS), "desc": In(stream.Signature(DESC_LAYOUT)),
            "cmd": Out(stream.Signature(CMD_LAYOUT(contexts))), "busy": In(1),
            "release": Out(2),
        })

    def _first(self, m, bits, before, name):
        """The index i of ``bits`` set that is ``before(i, j)`` every other j set."""
        n = self.contexts
        idx = Signal(range(n), name=f"{name}_idx")
        for i in reversed(range(n)):
            wins = bits[i]
            for k in range(n):
                if k != i:
                    wins = wins & (~bits[k] | before(i, k))
            with m.If(wins):
                m.d.comb += idx.eq(i)
        return bits.any(), idx

    def elaborate(self, platform):
        m = Module()
        n = self.contexts
        ctx = [Signal(CTX_LAYOUT(), name=f"ctx{i}") for i in range(n)]
        ev = Signal(EVENT_LAYOUT)
        d = self.desc.payload
        cmd = Signal(CMD_LAYOUT(n))
        ret = Signal(3)
        alone_next = Signal()
        open_ctr = Signal(32)

        valid = Cat(*[c.valid for c in ctx])
        hit = Cat(*[c.valid & (c.key.as_value() == d.key.as_value()) for c in ctx])
        addr_hit = Cat(*[c.valid & (c.key.as_value()[:ADDR_BITS] == d.key.as_value()[:ADDR_BITS])
                         for c in ctx])
        ages = [Signal(TIME_BITS, name=f"age{i}") for i in range(n)]
        m.d.comb += [a.eq(self.now - c.lj) for a, c in zip(ages, ctx)]
        expired = Cat(*[c.valid & (self.idle_timeout != 0) & (a >= self.idle_timeout)
                        for a, c in zip(ages, ctx)])

        def opened_before(i, k):
            return (ctx[i].opened - ctx[k].opened)[31]
        any_exp, exp_idx = self._first(m, expired, lambda i, k: (ages[i] > ages[k]) |
                                       ((ages[i] == ages[k]) & C(int(i < k), 1)), "exp")
        any_valid, old_idx = self._first(m, valid, opened_before, "old")
        any_addr, addr_idx = self._first(m, addr_hit, opened_before, "addr")
        any_hit, hit_idx = self._first(m, hit, lambda i, k: C(1, 1), "hit")
        any_free, free_idx = self._first(m, ~valid, lambda i, k: C(int(i < k), 1), "free")

        def at(idx, name):
            sel = Signal(CTX_LAYOUT(), name=name)
            with m.Switch(idx):
                for i in range(n):
                    with m.Case(i):
                        m.d.comb += sel.eq(ctx[i])
            return sel

        def write(idx, fn):
            with m.Switch(idx):
                for i in range(n):
                    with m.Case(i):
                        m.d.sync += fn(ctx[i])

        # The command that indicates a context's SCU.
        fl_idx = Signal(range(n))
        f = at(fl_idx, "flushed")
        flush_cmd = Signal(CMD_LAYOUT(n))
        csum_word = Mux(f.multi, Mux(f.key.v6, _SCU_CSUM6, _SCU_CSUM4), f.csum)
        count = Mux(f.count > 0xFFFF, 0xFFFF, f.count)
        m.d.comb += [
            flush_cmd.op.eq(OP_EMIT_SCU), flush_cmd.ctx.eq(fl_idx),
            flush_cmd.len.eq(Mux(f.multi, f.hdr_len + f.len, f.frame_len)),
            flush_cmd.user.eq(Cat(csum_word[:32], count[:16], C(0, 16), (f.tsval - f.ts0)[:32])),
            flush_cmd.multi.eq(f.multi), flush_cmd.v6.eq(f.key.v6), flush_cmd.l3.eq(f.same.l3),
            flush_cmd.l4.eq(f.l4), flush_cmd.hdr_len.eq(f.hdr_len), flush_cmd.ts.eq(f.same.ts),
            flush_cmd.ts_off.eq(f.ts_off), flush_cmd.ack.eq(f.ack), flush_cmd.wnd.eq(f.wnd),
            flush_cmd.flags.eq((f.flags & ~_PSH & 0xFF) | Mux(f.psh, _PSH, 0)),
            flush_cmd.hop.eq(f.hop), flush_cmd.tsval.eq(f.tsval), flush_cmd.tsecr.eq(f.tsecr),
            flush_cmd.plen.eq(f.len),
        ]
        alone_cmd = Signal(CMD_LAYOUT(n))
        m.d.comb += [alone_cmd.op.eq(OP_EMIT_LAND), alone_cmd.slot.eq(d.slot),
                     alone_cmd.len.eq(d.frame_len), alone_cmd.user.eq(d.csum)]

        def flush(idx, back):
            m.d.comb += fl_idx.eq(idx)
            m.d.sync += [cmd.eq(flush_cmd), ret.eq(back)]
            write(idx, lambda c: c.valid.eq(0))
            m.next = "ISSUE"

        def alone():
            m.d.sync += [cmd.eq(alone_cmd), ret.eq(R_RELEASE), alone_next.eq(0)]
            m.next = "ISSUE"

        def copy(idx, src_lo, dst_lo, end):
            m.d.sync += [cmd.op.eq(OP_COPY), cmd.slot.eq(d.slot), cmd.ctx.eq(idx),
                         cmd.len.eq(end),
                         cmd.src_lo.eq(src_lo), cmd.dst_lo.eq(dst_lo), ret.eq(R_RELEASE)]
            m.next = "ISSUE"

        R_IDLE, R_PRE, R_SEG, R_RELEASE = range(4)
        # The rules (model.rsc.RscEngine._refusal) against the flow's context.
        h = at(hit_idx, "hit_ctx")
        same = (d.ecn == h.ecn) & (d.same.as_value() == h.same.as_value())
        ts_ok = ~d.same.ts | _serial_ge(d.tsval, h.tsval)
        in_seq = d.seq == h.nxt
        pure = d.len == 0
        dup = same & pure & in_seq & (d.ack == h.ack) & (d.wnd == h.wnd)
        ip_len = Mux(h.key.v6, 0, 20) + (h.hdr_len - h.l4) + h.len
        join = same & in_seq & Mux(
            pure, (d.ack == h.ack) & (d.wnd != h.wnd) & ts_ok,
            (h.len != 0) & _serial_ge(d.ack, h.ack) & ts_ok &
            (ip_len + d.len <= model.IP_DATAGRAM_MAX) &
            (h.hdr_len + h.len + d.len <= self.max_scu_bytes))
        kind = Mux(Mux(d.key.v6, ev.en6, ev.en4), d.kind, SEG_KIND_PASS)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(any_exp):
                    flush(exp_idx, R_IDLE)
                with m.Elif(self.events.valid):
                    m.d.comb += self.events.ready.eq(1)
                    m.d.sync += ev.eq(self.events.payload)
                    m.next = "PRE"
            with m.State("PRE"):
                with m.If(ev.dis & any_valid):
                    flush(old_idx, R_PRE)
                with m.Elif(ev.frame):
                    m.next = "SEG"
                with m.Else():
                    m.next = "POST"
            with m.State("SEG"):
                with m.If(~self.desc.valid):
                    pass
                with m.Elif(alone_next | (kind == SEG_KIND_PASS)):
                    alone()
                with m.Elif(kind == SEG_KIND_FRAG):
                    with m.If(any_addr):
                        flush(addr_idx, R_SEG)
                    with m.Else():
                        alone()
                with m.Elif(kind == SEG_KIND_EXC):
                    with m.If(any_hit):
                        flush(hit_idx, R_SEG)
                    with m.Else():
                        alone()
                with m.Elif(any_hit):
                    with m.If(join):
                        write(hit_idx, lambda c: [
                            c.len.eq(c.len + d.len), c.nxt.eq(c.nxt + d.len),
                            c.count.eq(c.count + (d.len != 0)), c.ack.eq(d.ack),
                            c.wnd.eq(d.wnd), c.psh.eq(c.psh | d.flags[3]),
                            c.hop.eq(Mux(d.hop < c.hop, d.hop, c.hop)), c.multi.eq(1),
                            c.lj.eq(ev.time),
                            c.tsval.eq(Mux(d.same.ts, d.tsval, c.tsval)),
                            c.tsecr.eq(Mux(d.same.ts, d.tsecr, c.tsecr))])
                        with m.If(pure):
                            m.next = "RELEASE"
                        with m.Else():
                            copy(hit_idx, d.hdr_len, h.hdr_len + h.len, d.ip_end)
                    with m.Else():
                        m.d.sync += alone_next.eq(dup)
                        flush(hit_idx, R_SEG)
                with m.Elif(d.ip_end > self.max_scu_bytes):
                    alone()
                with m.Elif(~any_free):
                    flush(old_idx, R_SEG)
                with m.Else():
                    write(free_idx, lambda c: [
                        c.valid.eq(1), c.key.eq(d.key), c.same.eq(d.same), c.ecn.eq(d.ecn),
                        c.nxt.eq(d.seq + d.len), c.ack.eq(d.ack), c.wnd.eq(d.wnd),
                        c.tsval.eq(d.tsval), c.tsecr.eq(d.tsecr), c.ts0.eq(d.tsval),
                        c.flags.eq(d.flags), c.psh.eq(d.flags[3]), c.hop.eq(d.hop),
                        c.count.eq(1), c.multi.eq(0), c.len.eq(d.len), c.hdr_len.eq(d.hdr_len),
                        c.l4.eq(d.l4), c.ts_off.eq(d.ts_off), c.frame_len.eq(d.frame_len),
                        c.csum.eq(d.csum), c.opened.eq(open_ctr), c.lj.eq(ev.time)])
                    m.d.sync += open_ctr.eq(open_ctr + 1)
                    copy(free_idx, 0, 0, d.frame_len)
            with m.State("RELEASE"):
                m.d.comb += [self.desc.ready.eq(1),
                             self.release.eq(Mux(d.slot, 0b10, 0b01))]
                m.next = "POST"
            with m.State("POST"):
                with m.If(ev.eoi & any_valid):
                    flush(old_idx, R_RELEASE + 1)
                with m.Else():
                    m.next = "IDLE"
            with m.State("ISSUE"):
                m.d.comb += [self.cmd.valid.eq(1), self.cmd.payload.eq(cmd)]
                with m.If(self.cmd.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(~self.busy):
                    with m.Switch(ret):
                        with m.Case(R_IDLE):
                            m.next = "IDLE"
                        with m.Case(R_PRE):
                            m.next = "PRE"
                        with m.Case(R_SEG):
                            m.next = "SEG"
                        with m.Case(R_RELEASE):
                            m.next = "RELEASE"
                        with m.Default():
                            m.next = "POST"
        return m


class RscEngine(wiring.Component):
    """The RSC coalescer: ingress, flow table and rules, data mover (module docstring).

    Parameters
    ----------
    width : int
        Data width W: 64, 128, 256 or 512.
    contexts : int
        Flow contexts (``model.rsc.RscEngine(contexts=...)``); default 8.
    max_scu_bytes : int
        Largest SCU frame (``model.rsc.RscEngine(max_scu_bytes=...)``); default the model's.
    max_frame_bytes : int
        Largest frame taken in (a landing slot).

    Attributes
    ----------
    s : In(stream.Signature(RSC_IN_LAYOUT(W)))
        Frames (``beat.user`` = ``nbl.RxUser`` on the last beat) with their parse records.
    events, now : In
        From :class:`RscEvents`, which the owner stamps at its input.
    idle_timeout : In(32)
        T in cycles (``model.rsc.RscEngine(idle_timeout=T)``); 0: no timer (None).
    m : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    """

    def __init__(self, width=64, *, contexts=model.DEFAULT_CONTEXTS,
                 max_scu_bytes=model.DEFAULT_MAX_SCU_BYTES,
                 max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
        self.width = check_width(width)
        for name, value in (("contexts", contexts), ("max_scu_bytes", max_scu_bytes),
                            ("max_frame_bytes", max_frame_bytes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if max_frame_bytes < WINDOW or max_frame_bytes > 65535:
            raise ValueError(f"max_frame_bytes must be in {WINDOW}..65535")
        self.contexts = contexts
        self.max_scu_bytes = max_scu_bytes
        self.max_frame_bytes = max_frame_bytes
        nb = width // 8
        self.slot_beats = -(-max_frame_bytes // nb) + 1
        self.region_beats = -(-max(max_scu_bytes, max_frame_bytes) // nb) + 1
        super().__init__({
            "s": In(stream.Signature(RSC_IN_LAYOUT(width))),
            "events": In(stream.Signature(EVENT_LAYOUT)), "now": In(TIME_BITS),
            "idle_timeout": In(TIME_BITS),
            "m": Out(AxisSignature(width, RXU)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ingress = ingress = RscIngress(self.width, self.slot_beats)
        m.submodules.rules = rules = RscSequencer(self.contexts, self.max_scu_bytes)
        m.submodules.mover = mover = RscMover(self.width, self.contexts, self.region_beats,
                                              self.slot_beats)
        wiring.connect(m, wiring.flipped(self.s), ingress.s)
        wiring.connect(m, ingress.m_desc, rules.desc)
        wiring.connect(m, wiring.flipped(self.events), rules.events)
        wiring.connect(m, rules.cmd, mover.cmd)
        wiring.connect(m, mover.m, wiring.flipped(self.m))
        m.d.comb += [
            rules.now.eq(self.now), rules.idle_timeout.eq(self.idle_timeout),
            rules.busy.eq(mover.busy), ingress.release.eq(rules.release),
            mover.land_addr.eq(ingress.land_addr), mover.land_data.eq(ingress.land_data),
            mover.land_en.eq(ingress.land_en),
        ]
        return m


class Attach(wiring.Component):
    """Puts each frame's parse record beside every beat of the frame (taken with the first).

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
    s_headers : In(stream.Signature(HEADERS_LAYOUT(user_width)))
    m : Out(stream.Signature(RSC_IN_LAYOUT(W)))
    """

    def __init__(self, width, user_width):
        self.width = width
        super().__init__({
            "s_axis": In(AxisSignature(width, RXU)),
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(user_width))),
            "m": Out(stream.Signature(RSC_IN_LAYOUT(width))),
        })

    def elaborate(self, platform):
        m = Module()
        first = Signal(init=1)
        held = Signal(HEADERS_LAYOUT(0))
        rec = self.s_headers.payload.as_value()[:HEADERS_LAYOUT(0).size]
        go = self.s_axis.valid & (~first | self.s_headers.valid) & self.m.ready
        m.d.comb += [
            self.m.valid.eq(self.s_axis.valid & (~first | self.s_headers.valid)),
            self.m.payload.beat.eq(self.s_axis.payload),
            self.m.payload.hdr.eq(Mux(first, rec, held)),
            self.s_axis.ready.eq(go),
            self.s_headers.ready.eq(go & first),
        ]
        with m.If(go):
            m.d.sync += first.eq(self.s_axis.payload.last)
            with m.If(first):
                m.d.sync += held.eq(rec)
        return m


class RscUnit(wiring.Component):
    """RSC as a unit of its own: a parser for the records, then :class:`RscEngine`
    (in the RX path the parser is the path's, ``hdl/rxpath.py``).

    Parameters
    ----------
    width : int
    contexts, max_scu_bytes, max_frame_bytes : int
        As :class:`RscEngine`.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
        Frames from the checksum stage; ``user`` on the last beat is ``nbl.RxUser`` (the
        ChecksumRx word in bits 0..31). A frame's arrival time is the cycle its last beat is
        taken here.
    m_axis : Out(AxisSignature(W, 96))
        Indicated frames, ``nbl.RxUser`` on the last beat.
    s_eoi : In(stream.Signature(1))
        End-of-indication markers: one handshake, one ``end_indication()`` at that cycle,
        after any frame whose last beat is taken in the same cycle.
    rsc_enables : In(2)
        RscIPv4 (bit 0), RscIPv6 (bit 1); sampled per frame at its arrival; a bit falling
        flushes every open SCU before the next frame (``set_enables``).
    rsc_idle_timeout : In(32)
        Idle time T in cycles; 0: no timer.
    """

    def __init__(self, width=64, **engine_kw):
        self.width = check_width(width)
        self.engine_kw = engine_kw
        super().__init__({
            "s_axis": In(AxisSignature(width, RXU)),
            "m_axis": Out(AxisSignature(width, RXU)),
            "s_eoi": In(stream.Signature(1)),
            "rsc_enables": In(2, init=0b11),
            "rsc_idle_timeout": In(TIME_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.parser = parser = FrameParser(w, RXU)
        m.submodules.attach = attach = Attach(w, RXU)
        m.submodules.parsed = parsed = RegisterSlice(RSC_IN_LAYOUT(w))
        m.submodules.log = log = RscEvents()
        m.submodules.engine = engine = RscEngine(w, **self.engine_kw)
        m.submodules.out = out = RegisterSlice(axis_layout(w, RXU))
        s = self.s_axis
        m.d.comb += [
            parser.s_axis.payload.eq(s.payload),
            parser.s_axis.valid.eq(s.valid & log.room),
            s.ready.eq(parser.s_axis.ready & log.room),
            log.frame_end.eq(s.valid & s.ready & s.payload.last),
            log.enables.eq(self.rsc_enables),
            engine.now.eq(log.now), engine.idle_timeout.eq(self.rsc_idle_timeout),
        ]
        wiring.connect(m, wiring.flipped(self.s_eoi), log.s_eoi)
        wiring.connect(m, parser.m_axis, attach.s_axis)
        wiring.connect(m, parser.m_headers, attach.s_headers)
        wiring.connect(m, attach.m, parsed.s)
        wiring.connect(m, parsed.m, engine.s)
        wiring.connect(m, log.events, engine.events)
        wiring.connect(m, engine.m, out.s)
        wiring.connect(m, out.m, wiring.flipped(self.m_axis))
        return m
