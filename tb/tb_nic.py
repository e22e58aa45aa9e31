"""The NIC top level (hdl/nic.py) against model.nic.Nic, in Verilator.

One test, :func:`traffic_and_config_changes`, in phases. Before the first, the bench does what
a driver does at bind time: it programs every configuration register over AXI4-Lite
(cocotbext-axi ``AxiLiteMaster``) with the values the model computes from the registry
keywords (``Nic.csr_values``). In every phase TX and RX traffic run at once, with random
idles on both input streams and random backpressure on all three output streams:

- TX (``s_axis_tx``): ``tb.tb_lso.random_host_frame`` sends (LSOv1, LSOv2 over IPv4 and
  IPv6, every drop case) and ordinary frames whose checksum requests the transport makes
  from the configuration in force (``transport.prepare_checksum`` with the model's
  datapath; now and then a random ChecksumTx word), and NVGRE frames and sends as
  ``transport_nvgre`` hands them over (:func:`_nvgre_sends`). The model's ``Nic.transmit``
  gives each frame's wire frames and completion as it is sent.
- RX (``s_axis_wire``): ``tb.rsc_traffic`` flows (every coalescing case, bad checksums,
  frames that are not TCP) mixed with ``tb.traffic`` frames (good, fragments, ICMP, non-IP,
  malformed) and NVGRE frames (``tb_checksum.nvgre_rx_case``), some with one bit
  corrupted, end-of-indication markers on ``s_axis_eoi`` and idle gaps for the RSC idle
  timer. A recorder logs, cycle by cycle, each frame's arrival (its last
  beat taken) and each marker; the model is fed the same events at the same cycles
  (``Nic.advance``, ``receive``, ``end_indication``).

Between phases the configuration changes (OID_TCP_OFFLOAD_PARAMETERS: LSO off; LSO on and
checksum TX off; RSC off with SCUs open; RSC on and checksum RX off; NVGRE off; all on). The
synchronisation is the top level's rule (hdl/nic.py): a path's configuration is loaded only
between frames with the path empty up to its configuration stage. The bench quiesces both
inputs (every frame sent has been taken), writes the registers the model's change gives
(``ConfigChange.writes``, computed on a copy of the model first), then resumes; so every
frame before the writes is handled the old way and every one after the new way, exactly as
the model applies the change between two calls. Switching RSC off flushes the open SCUs at
the cycle the RX path loads its new configuration: the bench watches that load
(``rx_rsc_enables`` inside the top), runs the model's idle timer to that cycle and applies
the change there, so timer expiries before it and the flush after it match.

Scoreboard: every wire frame byte for byte and every TX completion word; every host frame
byte for byte and its whole RxUser word (``tuser`` of the last beat); all in order, with
``tkeep`` contiguous. Then every statistics counter is read over AXI4-Lite (LO then HI) and
compared with ``Nic.counters()``, the RSC statistics (OID_TCP_RSC_STATISTICS) among them.
A watchdog fails the test when no stream moves.

The endpoints, recorder, configuration changes, scoreboard and reports are the NIC bench's
(``tb/nic_bench.py``, shared with the ``--engine rtl`` runs of the CLI); this module makes the
traffic and runs the phases.

Environment (``tb.common``, ``tb.nic_bench``): ``NICOFFLOAD_FRAMES`` input frames over the
run, TX and RX together (default 950; the RX mix adds about 15%: some 1,030 frames);
``NICOFFLOAD_TX_BUDGET`` the largest TX send in bytes (default 6,000);
``NICOFFLOAD_OFFLOADS`` which offloads are on (default all: checksum, lso, rsc; the changes
touch only those); ``NICOFFLOAD_CHANGES=0`` one phase, no changes; ``NICOFFLOAD_RUN_DIR``
captures and reports; ``NICOFFLOAD_PROGRESS`` progress lines (``nicoffload regress``).
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from nicoffload.model import nbl, transport_nvgre
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.nic import TxRequest
from nicoffload.model.transport import prepare_checksum
from nicoffload.tb import common, nic_bench, nvgre_frames, rsc_traffic, traffic
from nicoffload.tb.nic_bench import TB, Recorder
from nicoffload.tb.tb_checksum import nvgre_rx_case
from nicoffload.tb.tb_lso import random_host_frame


NVGRE_SHARE = 0.1       # of the TX host frames (RX: 3 in 10 of the frames mixed into the flows)


def tx_items(tb: TB, n: int, budget: int):
    """``n`` host frames made as the transport makes them under the current config, each
    with the model's result (sent to the model now: nothing else runs on TX between)."""
    rng, model = tb.rng, tb.model
    out = []
    for _ in range(n):
        if rng.random() < NVGRE_SHARE:
            out += _nvgre_sends(tb, budget)
            continue
        frame, user, desc = random_host_frame(rng, model.tx.limits, budget=budget)
        if desc.startswith("ordinary") and rng.random() < 0.8:
            f = traffic.random_frame(rng, max_payload=min(9000, budget))
            while not f.data:
                f = traffic.random_frame(rng, max_payload=min(9000, budget))
            frame, info = prepare_checksum(f.data, model.datapath)
            user, desc = nbl.TxUser.for_frame(frame, info), f"ordinary {f.desc}"
        csum, lso, supp, _ = nbl.TxUser.unpack_raw(user)
        tb.expect_tx(TxRequest(frame, nbl.ChecksumTx.from_int(csum), lso, supp), desc)
        out.append((frame, user))
    return out


def _nvgre_sends(tb: TB, budget: int):
    """One ``nvgre_frames`` frame (every outer/inner mix, GRE options, VLAN, IP/TCP options,
    IPv6 options headers) as ``transport_nvgre`` hands it over under the configuration in
    force: the encapsulated offloads when NVGRE is operational (``datapath.encap``), the
    inner checksums and segments done in software when not; a large inner TCP payload is a
    send over MSS 1400 half the time."""
    rng, model = tb.rng, tb.model
    f = nvgre_frames.random_nvgre(rng, max_payload=rng.choice([0, 60, 600, 1400,
                                                                min(budget, 4000)]))
    mss = 1400 if rng.random() < 0.5 else None
    out = []
    for frame, csum, lso, supp in transport_nvgre.prepare_send(
            f.frame, model.datapath, mss=mss, max_frame=TX_MAX_FRAME):
        tb.expect_tx(TxRequest(frame, csum, lso, supp), f"NVGRE {f.desc}")
        tb.stats["NVGRE offloaded" if supp else "NVGRE done in software"] += 1
        out.append((frame, nbl.TxUser.for_frame(frame, csum, lso, supp)))
    return out


def rx_items(rng: random.Random, n: int):
    """``n`` wire frames: RSC flows, other frames, markers and gaps."""
    items = [i for i in rsc_traffic.events(rng, n, flows=10, gap_cycles=(50, 8000))
             if i[0] != "enables"]
    while items and items[-1][0] == "eoi":       # leave SCUs open across the change
        items.pop()
    out = []
    for item in items:
        out.append(item)
        if item[0] == "frame" and rng.random() < 0.15:
            f = traffic.random_frame(rng, max_payload=2000)
            data = f.data if f.data else bytes(60)
            if rng.random() < 0.3:
                data = nvgre_rx_case(rng)[0]
            if rng.random() < 0.3 and len(data) > 20:
                data, _ = traffic.corrupt_one_bit(rng, data)
            out.append(("frame", data))
    return out


async def run_phases(tb: TB, steps, total: int, budget: int):
    """The first phase with the bound configuration, then one per change in ``steps``; TX
    and RX at once in each; then the last marker, and every output collected."""
    dut = tb.dut
    phases = len(steps) + 1
    per_tx = max(1, total * 4 // 10 // phases)
    per_rx = max(1, total * 6 // 10 // phases)
    tb.start_progress(phases)
    planned = 0
    for p in range(phases):
        name, writes, flushed = "bound configuration", 0, 0
        if p:
            name = steps[p - 1][0]
            writes, flushed = await tb.change(*steps[p - 1])
        tb.phases.append({"phase": p, "name": name, "cycle": tb.cycles(), "writes": writes,
                          "scus_flushed": flushed})
        txs, rxs = tx_items(tb, per_tx, budget), rx_items(tb.rng, per_rx)
        planned += len(txs) + sum(1 for i in rxs if i[0] == "frame")
        tb.set_progress(phase=p + 1, name=name, planned=planned + int(
            (phases - p - 1) * (per_tx + per_rx * 1.15)))
        tx = cocotb.start_soon(tb.drive_tx(txs))
        rx = cocotb.start_soon(tb.drive_rx(rxs))
        await tb.guard(_both(tx, rx), f"phase {p} input")
    tb.set_progress(name="draining")
    await tb.send_eoi()
    await ClockCycles(dut.clk, 2)
    tb.replay()
    await tb.collect()


@cocotb.test()
async def traffic_and_config_changes(dut):
    """TX and RX at once, every offload on, then the configuration changes between phases;
    every byte, info word and counter against model.nic.Nic."""
    rng = random.Random(common.seed())
    on = nic_bench.offloads()
    steps = nic_bench.changes(on, os.environ.get("NICOFFLOAD_CHANGES", "1") != "0")
    tb = TB(dut, rng, keywords=nic_bench.off_keywords(on))
    tb.offloads = on
    await tb.reset()
    tb.rec = Recorder(dut)
    await tb.program()
    counters = None
    try:
        await run_phases(tb, steps, common.frames(950),
                         int(os.environ.get("NICOFFLOAD_TX_BUDGET", "6000")))
    except AssertionError as e:         # the watchdog: score what did come out
        tb.error = str(e)
    tb.score()
    if tb.error is None:
        try:
            await tb.settle(200)
        except AssertionError as e:
            tb.error = str(e)
        counters = await tb.counters()
        tb.score_counters(counters, tb.model.counters())
    tb.set_progress(name="done")
    run_dir = os.environ.get("NICOFFLOAD_RUN_DIR")
    result = tb.write_reports(run_dir, counters) if run_dir else tb.summary(counters)
    tx, rx, rsc = result["tx"], result["rx"], result["rsc"]
    dut._log.info(
        f"W={tb.width}: {tx['frames_in']} host frames -> {tx['frames_out']} wire frames; "
        f"{rx['frames_in']} wire frames -> {rx['frames_out']} host frames ({rsc['scus']} SCUs, "
        f"{rsc['scus_of_2_or_more']} of 2+); {tb.cycles()} cycles; TX {dict(tb.stats)}; "
        f"mismatches {dict(tb.mismatches)}; counters "
        f"{ {n: v for n, v in (counters or {}).items() if v} }")
    assert tb.error is None, tb.error
    assert tb.passed(), (f"mismatches {dict(tb.mismatches)}; first: "
                         f"{tb.messages[0] if tb.messages else ''}")


async def _both(a, b):
    await a
    await b
