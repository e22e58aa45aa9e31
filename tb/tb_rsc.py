"""RscUnit (hdl/rsc.py) against model/rsc.py, in Verilator; also the core of tb_rxpath.

The traffic (``tb/rsc_traffic.py``) is interleaved TCP flows, more than the contexts, IPv4 and
IPv6, with every case the coalescing rules tell apart, frames that are not TCP, bad
checksums, end-of-indication markers and idle gaps. A monitor records, cycle by cycle, the
cycle each frame's last beat is taken at the input and each marker's handshake; the model is
fed the same frames at the same times (``receive(frame, word, t)``, and ``expire(t)`` then
``end_indication()`` for a marker), and every output frame and its ``nbl.RxUser`` are compared
with the model's, bit for bit, in order; the ``rsc_stats`` strobes, summed over the run, equal
the model's OID_TCP_RSC_STATISTICS. Every test runs with and without source idles and sink
backpressure, under a watchdog.

Unit ``rsc``: input ``s_axis`` with the ChecksumRx word in ``tuser`` of the last beat (the
testbench computes it with ``model.checksum.rx_validate``, and now and then gives a word
that verified nothing, which must never coalesce). Unit ``rxpath``: input ``s_axis_wire``
without ``tuser``; the path's checksum stage makes the word.
"""

from __future__ import annotations

import collections
import dataclasses
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamFrame

from nicoffload.hdl.rsc import RSC_STATS_LAYOUT
from nicoffload.model import nbl
from nicoffload.model import rsc as model
from nicoffload.model.checksum import ChecksumEnables, rx_validate
from nicoffload.tb import common, rsc_traffic

PORTS = {"rsc": ("s_axis", "m_axis"), "rxpath": ("s_axis_wire", "m_axis_rx")}
#: ``rsc_stats`` members (hdl.rsc.RSC_STATS_LAYOUT) -> model.rsc.RscStatistics fields.
STATS = {"coalesced_pkts": "CoalescedPkts", "coalesced_octets": "CoalescedOctets",
         "coalesce_events": "CoalesceEvents", "aborts": "Aborts"}


def stats_increments(value: int) -> dict[str, int]:
    """One cycle of ``rsc_stats``, as ``{RscStatistics field: increment}``."""
    out = {}
    for member, name in STATS.items():
        field = RSC_STATS_LAYOUT[member]
        out[name] = (value >> field.offset) & ((1 << field.width) - 1)
    return out


class Recorder(common.ArrivalRecorder):
    """Cycle-accurate log of what the model must see (frame ends, markers, enables), in
    order, and the ``rsc_stats`` strobes summed."""

    def __init__(self, dut, prefix):
        self.stats = dict.fromkeys(STATS.values(), 0)
        super().__init__(dut, prefix, "s_eoi", dut.rsc_enables)

    def sample(self):
        stats = int(self.dut.rsc_stats.value)
        if stats:
            for name, n in stats_increments(stats).items():
                self.stats[name] += n


async def send_eoi(dut):
    dut.s_eoi_tvalid.value = 1
    while True:
        await RisingEdge(dut.clk)
        if int(dut.s_eoi_tready.value):
            break
    dut.s_eoi_tvalid.value = 0


#: The receive enables of the RX path under test (and of the words given to the RSC unit):
#: every check, NVGRE's too (its frames are not TCP to RSC: they pass alone).
RX_ENABLES = ChecksumEnables(encap=True)


def with_nvgre(rng: random.Random, items: list, count: int) -> list:
    """``items`` with ``count`` NVGRE frames (``tb_checksum.nvgre_rx_case``) at random
    places."""
    from nicoffload.tb.tb_checksum import nvgre_rx_case
    items = list(items)
    for _ in range(count):
        items.insert(rng.randrange(len(items) + 1), ("frame", nvgre_rx_case(rng)[0]))
    return items


async def reset(tb: common.StreamTB, timeout: int = 0):
    """No marker, RSC on for both IP versions, the idle timer at ``timeout`` cycles (0: none),
    every receive check on (NVGRE too; unit ``rxpath``), then reset."""
    dut = tb.dut
    dut.s_eoi_tvalid.value = 0
    dut.s_eoi_tdata.value = 0
    dut.rsc_idle_timeout.value = timeout
    dut.rsc_enables.value = 0b11
    if dut._name == "rxpath":
        dut.enables.value = common.enables_value(RX_ENABLES)
    await tb.reset()


def replay(log, sent, *, contexts=None, timeout=0):
    """The model fed what a :class:`Recorder` logged (``log``), frame ``k`` of the log being
    ``sent[k]`` (``(frame, ChecksumRx word)``): ``(engine, indications)``, the frames the
    unit must put out, in order."""
    engine = model.RscEngine(**({} if contexts is None else {"contexts": contexts}),
                             idle_timeout=timeout or None)
    want, k = [], 0
    for kind, t, *value in log:
        if kind == "enables":
            want += engine.expire(t)
            want += engine.set_enables(bool(value[0] & 1), bool(value[0] & 2))
        elif kind == "frame":
            frame, word = sent[k]
            k += 1
            want += engine.receive(frame, word, t)
        else:
            want += engine.expire(t)
            want += engine.end_indication()
    assert k == len(sent), f"{len(sent)} frames sent, {k} seen entering"
    return engine, want


async def compare(snk, want) -> list[int]:
    """Take ``len(want)`` frames from ``snk`` and compare each, and its ``nbl.RxUser`` on the
    last beat, with the model's indication, bit for bit, in order; the ``RxUser`` values."""
    users = []
    for i, ind in enumerate(want):
        got = await snk.recv(compact=False)
        user = got.tuser[-1] if isinstance(got.tuser, list) else got.tuser
        got.compact()
        data = bytes(got.tdata)
        if data != ind.frame:
            at = next((j for j, (a, b) in enumerate(zip(data, ind.frame)) if a != b),
                      min(len(data), len(ind.frame)))
            raise AssertionError(f"output {i} ({ind.cause.name}): {len(data)} bytes, model "
                                 f"{len(ind.frame)}; first difference at byte {at}")
        want_user = nbl.RxUser.pack(ind.checksum, ind.rsc, ind.timestamp_delta)
        assert user == want_user, (f"output {i} ({ind.cause.name}): RxUser "
                                   f"{nbl.RxUser.unpack(user)}, model "
                                   f"{nbl.RxUser.unpack(want_user)}")
        users.append(user)
    return users


def check_statistics(rec: Recorder, engine: model.RscEngine):
    """The ``rsc_stats`` strobes the recorder summed equal the model's statistics."""
    want_stats = dataclasses.asdict(engine.statistics)
    assert rec.stats == want_stats, f"RSC statistics: RTL {rec.stats}, model {want_stats}"


async def run(dut, items, *, idle, backpressure, rng, timeout=0, contexts=None,
              unverified=0.05):
    """Drive ``items`` (rsc_traffic events) through the unit; compare with the model."""
    unit = dut._name
    width = common.params()["width"]
    src_p, snk_p = PORTS[unit]
    tb = common.StreamTB(dut)
    src, snk = tb.source(src_p), tb.sink(snk_p)
    tb.set_pauses(src, idle, rng)
    tb.set_pauses(snk, backpressure, rng)
    await reset(tb, timeout)
    rec = Recorder(dut, src_p)
    sent = []           # (frame, word) in order
    beats = 0

    for item in items:
        if item[0] == "frame":
            frame = item[1]
            word = rx_validate(frame, enables=RX_ENABLES)
            if unit == "rsc":
                if rng.random() < unverified:
                    word = nbl.ChecksumRx()
                user = [0] * (len(frame) - 1) + [word.to_int()]
                await src.send(AxiStreamFrame(frame, tuser=user))
            else:
                await src.send(AxiStreamFrame(frame))
            sent.append((frame, word))
            beats += common.beats_of(len(frame), width)
        else:
            await src.wait()
            if item[0] == "eoi":
                await send_eoi(dut)
            elif item[0] == "enables":
                dut.rsc_enables.value = item[1]
                await RisingEdge(dut.clk)
            else:
                await ClockCycles(dut.clk, item[1])
    await src.wait()
    await send_eoi(dut)
    await ClockCycles(dut.clk, 2)
    dut.rsc_enables.value = 0b11

    engine, want = replay(rec.log, sent, contexts=contexts, timeout=timeout)

    async def check():
        await compare(snk, want)
        for frame, _word in sent:
            common.tally(frame)

    out_beats = sum(common.beats_of(len(i.frame), width) for i in want)
    await tb.guard(check(), "RSC output", 20 * (beats + out_beats) + 20000)
    await ClockCycles(dut.clk, 200)
    assert snk.empty(), "more frames out than the model indicates"
    check_statistics(rec, engine)
    scus = sum(1 for i in want if i.rsc.CoalescedSegCount > 1)
    causes = collections.Counter(i.cause.name for i in want)
    dut._log.info(f"{len(sent)} frames in, {len(want)} out, {scus} SCUs of 2+ segments; "
                  f"causes {dict(causes)}; statistics {rec.stats}")


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_traffic(dut, idle, backpressure):
    """Interleaved flows, every case, markers, idle gaps; no idle timer (contexts run out),
    or an idle timer of 2,000 or 30,000 cycles; RSC switched off and on now and then."""
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    items = rsc_traffic.events(rng, common.frames(150), flows=14, enables_rate=0.01)
    if dut._name == "rxpath":
        items = with_nvgre(rng, items, max(4, common.frames(150) // 8))
    timeout = (0, 2000, 30000, 30000)[idle * 2 + backpressure]
    await run(dut, items, idle=idle, backpressure=backpressure, rng=rng, timeout=timeout)


@cocotb.test()
async def no_timer_long_runs(dut):
    """No idle timer: long in-order jumbo runs past 65,535 bytes, IPv4 and IPv6."""
    rng = random.Random(common.seed() + 99)
    items = rsc_traffic.long_run(rng, 4, 12, 8000) + rsc_traffic.long_run(rng, 6, 12, 8000) \
        + rsc_traffic.events(rng, 60, flows=3)
    await run(dut, items, idle=False, backpressure=True, rng=rng)
