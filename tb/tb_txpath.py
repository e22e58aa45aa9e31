"""TxPath (hdl/txpath.py: LsoSegmenter then TxChecksum) against the whole model, in Verilator.

The traffic, the reference and the testbench (``tb.tb_lso.TB`` with ``wire=True``) are
``tb.tb_lso``'s; here the output is the wire: the
model's segments (``model.lso.segment``, checksums filled) for large sends, and
``model.checksum.tx_fill`` of the frame with its own ChecksumTx word for ordinary frames;
completions on ``m_axis_txc`` as the model's, in order. Idles on ``s_axis_tx`` and
backpressure on ``m_axis_wire`` and ``m_axis_txc``, watchdog, four limit settings. NVGRE
frames asking for the encapsulated checksum offload (``encap`` on): ``tx_fill`` with their
supplemental words. LSOv2 over NVGRE (``tb.nvgre_lso``) in the random traffic and in a test
of its corners: the model's segments (``model.nvgre_lso``), which scapy confirms.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from nicoffload.model.checksum import tx_fill
from nicoffload.model.nbl import TxUser
from nicoffload.tb import common
from nicoffload.tb.tb_checksum import tx_nvgre_sweep
from nicoffload.tb.tb_lso import (PHASES, TB, bench, check, reference, run_bad_length_words,
                                   run_directed, run_end_decided, run_long_headers,
                                   run_nvgre_corners, run_nvgre_random, run_parse_corners,
                                   run_random)


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_sends(dut, idle, backpressure):
    """Random sends, ordinary frames and drops, wire bytes and completions vs the model."""
    await run_random(dut, idle, backpressure, wire=True, count=common.frames(120),
                     big=int(os.environ.get("NICOFFLOAD_BIG", "1")), salt=1)


@cocotb.test()
async def directed(dut):
    """Corner sends, on the wire."""
    await run_directed(dut, wire=True)


@cocotb.test()
async def nvgre_lso(dut):
    """LSOv2 over NVGRE corners on the wire: every outer and inner checksum filled."""
    await run_nvgre_corners(dut, wire=True)


@cocotb.test()
async def nvgre_random(dut):
    """Random LSOv2-over-NVGRE sends on the wire (``NICOFFLOAD_NVGRE_SENDS`` of them)."""
    await run_nvgre_random(dut, wire=True,
                           count=int(os.environ.get("NICOFFLOAD_NVGRE_SENDS", "150")))


@cocotb.test()
async def long_headers(dut):
    """Sends with 129..254 bytes of headers, on the wire."""
    await run_long_headers(dut, wire=True)


@cocotb.test()
async def bad_length_words(dut):
    """Length words that are not the frame's length, on the wire."""
    await run_bad_length_words(dut, wire=True)


@cocotb.test()
async def end_decided_drops(dut):
    """Cut sends and their completions, on the wire."""
    await run_end_decided(dut, wire=True)


@cocotb.test()
async def parse_corners(dut):
    """Header verdicts that depend on the frame length past the parse window, on the wire."""
    await run_parse_corners(dut, wire=True)


@cocotb.test()
async def nvgre_checksums(dut):
    """Ordinary NVGRE frames asking for the encapsulated checksum offload
    (``tb_checksum.tx_nvgre_sweep``: right and wrong supplemental words) with ``encap`` on,
    idles and backpressure: the parser's records, NVGRE fields and supplemental word
    included, reach the checksum stage through the segmenter, and the wire is
    ``model.checksum.tx_fill`` of each frame with its words."""
    rng = random.Random(common.seed() + 7)
    tb = await TB.start(dut, wire=True)
    tb.set_traffic(rng, idle=True, backpressure=True)
    await tb.set_limits(PHASES[0])
    dut.encap.value = 1
    hosts = []
    for frame, info, supp, _ in tx_nvgre_sweep(rng):
        host = reference(frame, TxUser.for_frame(frame, info, 0, supp), PHASES[0], "NVGRE")
        host.out = [(tx_fill(frame, info, supp, encap=True), None)]
        hosts.append(host)
    for host in hosts:
        tb.send(host.frame, host.tuser)
    await check(tb, hosts)
    await tb.settle()
    dut.encap.value = 0


@cocotb.test()
async def encap_changes_in_flight(dut):
    """``encap`` changes while frames wait in the checksum stage: each frame is handled as
    the segmenter decided it (``TxPath.encap``). Per round, with the wire held, two NVGRE
    frames asking for the encapsulated checksums go in; once both completions are out (both
    decided), ``encap`` flips, then the wire is released: the frames must come out as the
    old setting fills them. The rounds alternate on -> off and off -> on."""
    rng = random.Random(common.seed() + 9)
    tb = await TB.start(dut, wire=True)
    await tb.set_limits(PHASES[0])
    cases = [c for c in tx_nvgre_sweep(rng) if c[2]][:24]
    encap = 1
    for r in range(0, len(cases) - 1, 2):
        dut.encap.value = encap
        await ClockCycles(dut.clk, 2)
        tb.out.pause = True
        hosts = []
        for frame, info, supp, _ in cases[r:r + 2]:
            host = reference(frame, TxUser.for_frame(frame, info, 0, supp), PHASES[0],
                             f"round {r // 2} encap {encap}")
            host.out = [(tx_fill(frame, info, supp, encap=bool(encap)), None)]
            hosts.append(host)
            tb.send(host.frame, host.tuser)
        for host in hosts:
            got = await tb.guard(tb.completion(), f"completion of {host.desc}", 4000)
            assert got == host.completion, f"{host.desc}: completion {got:#x}"
            host.completion = None
        encap ^= 1
        dut.encap.value = encap
        await ClockCycles(dut.clk, 4)
        tb.out.pause = False
        for i, host in enumerate(hosts):
            for want, _ in host.out:
                got, _ = await tb.guard(tb.frame(), f"frame of {host.desc}", 4000)
                assert got == want, (f"{host.desc}, frame {i}: output differs from the "
                                     f"model's for the setting it was decided with")
    dut.encap.value = 0


@cocotb.test(skip=os.environ.get("NICOFFLOAD_BENCH_SIZE") is None)
async def line_rate(dut):
    """Back-to-back sends of one size and MSS: wire bytes per cycle over W/8 (reported)."""
    await bench(dut, wire=True)
