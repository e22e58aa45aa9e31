# amaranth: UnusedElaboratable=no
"""The RSC engine (hdl/rsc.py) in Amaranth's own simulator, against model/rsc.py.

Small, fast cases: the segment analyzer alone (every field and kind against the model's
reading of the same frame), and RscUnit end to end on short traffic with small buffers
(the same parameters given to the model), markers, idle gaps and backpressure. The long
random runs at every width are Verilator's (tests/test_rsc_rtl.py, tests/test_rxpath_rtl.py).
"""

from __future__ import annotations

import dataclasses
import os
import random

import pytest
from amaranth.sim import Simulator

from nicoffload.hdl.rsc import RscEngine, RscUnit, SegmentAnalyzer, SEG_KIND_EXC, SEG_KIND_FRAG, \
    SEG_KIND_PASS, SEG_KIND_SEG
from nicoffload.hdl.rsc.ingress import (AT_L3_BYTES, HEAD_BYTES, OPTION_BYTES, PORT_BYTES,
                                        TCP_BYTES)
from nicoffload.hdl.rsc.sequencer import RscSequencer
from nicoffload.model import nbl
from nicoffload.model import rsc as model
from nicoffload.model.checksum import rx_validate
from nicoffload.model.parse import parse
from nicoffload.tb import rsc_traffic
from nicoffload.tb.tb_rsc import STATS

MODEL_KIND = {model.Cause.PASS_THROUGH: SEG_KIND_PASS, model.Cause.FRAGMENT: SEG_KIND_FRAG}


def model_kind(frame, word):
    h = parse(frame)
    if not h.ok or h.ip_version is None or h.l4_proto != 6:
        return SEG_KIND_PASS
    if h.is_fragment:
        return SEG_KIND_FRAG
    return SEG_KIND_EXC if model._exception(frame, word, h) is not None else SEG_KIND_SEG


def record_of(frame):
    """The parse record the RTL parser gives (HEADERS_LAYOUT fields), from the model."""
    h = parse(frame)
    return {
        "error": int(h.error_code or 0), "is_ipv4": h.ip_version == 4,
        "is_ipv6": h.ip_version == 6, "l3": h.l3_offset or 0,
        "ip_header_len": h.ip_header_len or 0, "ip_end": h.ip_end or 0,
        "ip_end_unchecked": 0, "is_fragment": bool(h.is_fragment), "l4": h.l4_offset or 0,
        "l4_proto": h.l4_proto or 0, "l4_header_len": h.l4_header_len or 0,
        "l4_end": h.l4_end or 0, "pseudo_dst": h.pseudo_dst_offset or 0,
    }


def test_segment_analyzer_against_model():
    rng = random.Random(5)
    check_analyzer([f for kind, *rest in rsc_traffic.events(rng, 250, jumbo=False)
                    if kind == "frame" for f in rest])


#: TCP options (scapy's names; (8, 6 bytes): kind 8 with a length that is not 10) and their
#: bytes.
OPTIONS = [(("NOP", None), 1), (("EOL", None), 1), (("Timestamp", (0x01020304, 7)), 10),
           (("MSS", 1460), 4), (("WScale", 3), 3), (("SAckOK", b""), 2),
           ((8, b"\0" * 6), 8)]


def test_segment_analyzer_tcp_options():
    """The option walk (NOPs, EOL, timestamps at every place, others) against the model."""
    rng = random.Random(9)
    frames = []
    for _ in range(300):
        flow = rsc_traffic.Flow(rng, 1, rng.choice((4, 6)), False)
        opts, size = [], 0
        while rng.random() < 0.9:
            (opt, n), = rng.choices(OPTIONS, weights=(8, 1, 2, 1, 1, 1, 1))
            if size + n > 40:
                break
            opts.append(opt)
            size += n
        frames.append(flow.data(rng.choice((0, 20)), options=opts))
    check_analyzer(frames)


def check_analyzer(frames):
    """The analyzer's descriptor of each frame against the model's reading."""
    dut = SegmentAnalyzer()
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for frame in frames:
            word = rx_validate(frame)
            record = record_of(frame)
            for port, start, n in ((dut.head, 0, HEAD_BYTES),
                                   (dut.at_l3, record["l3"], AT_L3_BYTES),
                                   (dut.at_tcp, record["l3"] + (40 if record["is_ipv6"] else 20),
                                    TCP_BYTES),
                                   (dut.at_l4, record["l4"], PORT_BYTES)):
                ctx.set(port, int.from_bytes(frame[start:start + n].ljust(n, b"\0"), "little"))
            # What the ingress works out as it captures: each option byte's kind (NOP, EOL,
            # 8, 10) and which option bytes are in the options.
            tcp_at = record["l3"] + (40 if record["is_ipv6"] else 20)
            options = frame[tcp_at + 20:tcp_at + 20 + OPTION_BYTES].ljust(OPTION_BYTES, b"\0")
            ctx.set(dut.opt_kinds, sum(((b == 1) | (b == 0) << 1 | (b == 8) << 2
                                        | (b == 10) << 3) << 4 * i
                                       for i, b in enumerate(options)))
            thl = record["l4_header_len"]
            ctx.set(dut.opt_in, sum((thl < 20 or k < thl - 20) << k
                                    for k in range(OPTION_BYTES + 10)))
            for name, value in record.items():
                ctx.set(getattr(dut.hdr, name), int(value))
            ctx.set(dut.frame_len, len(frame))
            ctx.set(dut.csum, word.to_int())
            await ctx.tick()            # the first stage
            d = dut.desc
            kind = ctx.get(d.kind)
            assert kind == model_kind(frame, word), frame.hex()
            if kind != SEG_KIND_SEG:
                continue
            seg = model._segment(frame, word, parse(frame))
            assert ctx.get(d.seq) == seg.SEQ and ctx.get(d.ack) == seg.ACK
            assert ctx.get(d.wnd) == seg.WND and ctx.get(d.len) == seg.LEN
            assert ctx.get(d.same.ts) == (seg.TSval is not None)
            if seg.TSval is not None:
                assert ctx.get(d.tsval) == seg.TSval and ctx.get(d.tsecr) == seg.TSecr
                assert ctx.get(d.ts_off) == seg.ts_offset
            assert ctx.get(d.hop) == seg.hop
            assert ctx.get(d.key.ports) == (seg.flow[4] << 16) | seg.flow[5]

    sim.add_testbench(bench)
    sim.run()


def run_unit(items, *, width=64, contexts=4, regions=None, max_scu_bytes=6000,
             max_frame_bytes=2048, timeout=0, backpressure=False, seed=1):
    """Drive RscUnit with ``items`` (rsc_traffic events); return (RTL frames, model frames)."""
    rng = random.Random(seed)
    dut = RscUnit(width, contexts=contexts, regions=regions, max_scu_bytes=max_scu_bytes,
                  max_frame_bytes=max_frame_bytes)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    nb = width // 8
    log = []            # ("frame", frame, word, t) / ("eoi", t)
    got = []
    stats = dict.fromkeys(STATS.values(), 0)     # the rsc_stats strobes, summed
    state = {"cycle": 0, "done": False}

    async def clock(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1

    async def drive(ctx):
        ctx.set(dut.rsc_idle_timeout, timeout)
        s = dut.s_axis
        for item in items:
            if item[0] == "enables":
                ctx.set(dut.rsc_enables, item[1])
                log.append(("enables", state["cycle"], item[1]))
                await ctx.tick()
                continue
            if item[0] == "gap":
                for _ in range(item[1]):
                    await ctx.tick()
                continue
            if item[0] == "eoi":
                ctx.set(dut.s_eoi.valid, 1)
                while not ctx.get(dut.s_eoi.ready):
                    await ctx.tick()
                log.append(("eoi", state["cycle"]))
                await ctx.tick()
                ctx.set(dut.s_eoi.valid, 0)
                continue
            frame = item[1]
            word = rx_validate(frame)
            if rng.random() < 0.1:
                word = nbl.ChecksumRx()          # not verified: never coalesced
            chunks = [frame[i:i + nb] for i in range(0, len(frame), nb)]
            for k, chunk in enumerate(chunks):
                last = k == len(chunks) - 1
                ctx.set(s.payload.data, int.from_bytes(chunk, "little"))
                ctx.set(s.payload.keep, (1 << len(chunk)) - 1)
                ctx.set(s.payload.last, last)
                ctx.set(s.payload.user, word.to_int() if last else 0)
                ctx.set(s.valid, 1)
                while not ctx.get(s.ready):
                    await ctx.tick()
                if last:
                    log.append(("frame", frame, word, state["cycle"]))
                await ctx.tick()
            ctx.set(s.valid, 0)
        state["done"] = True

    async def collect(ctx):
        o = dut.m_axis
        buf = bytearray()
        idle = 0
        while True:
            for member, name in STATS.items():      # once a cycle: each strobe lasts one
                stats[name] += ctx.get(getattr(dut.rsc_stats, member))
            ready = not (backpressure and rng.random() < 0.3)
            ctx.set(o.ready, ready)
            if ready and ctx.get(o.valid):
                idle = 0
                keep = ctx.get(o.payload.keep)
                n = bin(keep).count("1")
                buf += ctx.get(o.payload.data).to_bytes(nb, "little")[:n]
                if ctx.get(o.payload.last):
                    got.append((bytes(buf), ctx.get(o.payload.user)))
                    buf = bytearray()
            else:
                idle += 1
                if state["done"] and idle > 3000:
                    return
            await ctx.tick()

    sim.add_process(clock)
    sim.add_testbench(drive)
    sim.add_testbench(collect)
    sim.run()

    engine = model.RscEngine(contexts=contexts, max_scu_bytes=max_scu_bytes,
                             idle_timeout=timeout or None)
    want = []
    for entry in log:
        if entry[0] == "enables":
            want += engine.expire(entry[1])
            want += engine.set_enables(bool(entry[2] & 1), bool(entry[2] & 2))
        elif entry[0] == "frame":
            _, frame, word, t = entry
            want += engine.receive(frame, word, t)
        else:
            want += engine.expire(entry[1])
            want += engine.end_indication()
    return got, [(i.frame, nbl.RxUser.pack(i.checksum, i.rsc, i.timestamp_delta))
                 for i in want], (stats, dataclasses.asdict(engine.statistics))


def compare(got, want, stats=None):
    """Frames and RxUser words in order; ``stats`` (RTL, model) OID_TCP_RSC_STATISTICS."""
    if stats is not None:
        assert stats[0] == stats[1], f"RSC statistics: RTL {stats[0]}, model {stats[1]}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g[0] == w[0], f"frame {i}: bytes differ ({len(g[0])} vs {len(w[0])}): " \
            f"first at {next((k for k, (a, b) in enumerate(zip(g[0], w[0])) if a != b), None)}"
        assert g[1] == w[1], f"frame {i}: RxUser {nbl.RxUser.unpack(g[1])} vs " \
            f"{nbl.RxUser.unpack(w[1])}"
    assert len(got) == len(want)


SOAK = pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                          reason="slow in Amaranth's simulator: NICOFFLOAD_SOAK=1 runs it")


@pytest.mark.parametrize("width", [64, pytest.param(256, marks=[pytest.mark.slow, SOAK])])
def test_unit_short_traffic(width):
    rng = random.Random(width)
    items = rsc_traffic.events(rng, 30, flows=6, jumbo=False, gap_rate=0, enables_rate=0.05)
    items = [it for it in items if it[0] != "frame" or len(it[1]) <= 2048]
    compare(*run_unit(items, width=width))


@pytest.mark.parametrize("regions", [2, 4])
def test_unit_more_flows_than_contexts(regions):
    """Seven flows over two contexts, the output stalled at random: nearly every segment evicts
    an SCU. With no spare region (2) an opening SCU waits for the evicted one's emission; with
    spares (4) it opens in one while that is emitted, and a spare is taken only once its own
    emission has read it out. Either way the output is the model's."""
    rng = random.Random(23 + regions)
    items = rsc_traffic.events(rng, 24, flows=7, jumbo=False, gap_rate=0, enables_rate=0)
    items = [it for it in items if it[0] != "frame" or len(it[1]) <= 2048]
    compare(*run_unit(items, contexts=2, regions=regions, backpressure=True))


def test_engine_needs_a_region_per_context():
    with pytest.raises(ValueError, match="regions"):
        RscEngine(64, contexts=4, regions=3)


@pytest.mark.slow
@SOAK
def test_unit_idle_timer_and_backpressure():
    rng = random.Random(7)
    items = rsc_traffic.events(rng, 30, flows=5, jumbo=False, gap_rate=0.1,
                               gap_cycles=(10, 400))
    items = [it for it in items if it[0] != "frame" or len(it[1]) <= 2048]
    compare(*run_unit(items, width=128, timeout=300, backpressure=True))


def test_unit_scu_bytes_bound_and_too_long():
    """max_scu_bytes below a segment: SCU_BYTES splits and TOO_LONG segments go alone."""
    rng = random.Random(11)
    flow = rsc_traffic.Flow(rng, 1, 4, False)
    items = [("frame", flow.data(n)) for n in (300, 300, 300, 1200, 300, 100)] + [("eoi",)]
    got, want, stats = run_unit(items, width=64, contexts=2, max_scu_bytes=1000)
    compare(got, want, stats)
    assert len(want) >= 3
    assert stats[1]["Aborts"] > 0


def test_unit_address_tags_alike(monkeypatch):
    """One-bit address tags (about half of the open contexts a candidate for any frame) and
    flows with the same ports, so only the whole address key tells them apart: SEG drops a
    candidate whose key differs and tries the next (segments, exceptions, fragments), and the
    output is still the model's."""
    monkeypatch.setattr(RscSequencer, "TAG_BITS", 1)
    rng = random.Random(5)
    flows = [rsc_traffic.Flow(rng, k, 4 if k % 3 else 6, False) for k in range(6)]
    for flow in flows:
        flow.sport, flow.dport = 20000, 80
    items = []
    while len(items) < 40:
        items += [("frame", f) for f in rng.choice(flows).next() if len(f) <= 2048]
    compare(*run_unit(items + [("eoi",)], contexts=4))
