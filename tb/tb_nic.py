"""The NIC top level (hdl/nic.py) against model.nic.Nic, in Verilator.

One test, :func:`traffic_and_config_changes`, in phases. Before the first, the bench does what
a driver does at bind time: it programs every configuration register over AXI4-Lite
(cocotbext-axi ``AxiLiteMaster``) with the values the model computes from the registry
keywords (``Nic.csr_values``). In every phase TX and RX traffic run at once, with random
idles on both input streams and random backpressure on all three output streams:

- TX (``s_axis_tx``): ``tb.tb_lso.random_host_frame`` sends (LSOv1, LSOv2 over IPv4 and
  IPv6, every drop case) and ordinary frames whose checksum requests the transport makes
  from the configuration in force (``transport.prepare_checksum`` with the model's
  datapath; now and then a random ChecksumTx word). The model's ``Nic.transmit`` gives each
  frame's wire frames and completion as it is sent.
- RX (``s_axis_wire``): ``tb.rsc_traffic`` flows (every coalescing case, bad checksums,
  frames that are not TCP) mixed with ``tb.traffic`` frames (good, fragments, ICMP, non-IP,
  malformed, one bit corrupted), end-of-indication markers on ``s_axis_eoi`` and idle gaps
  for the RSC idle timer. A recorder logs, cycle by cycle, each frame's arrival (its last
  beat taken) and each marker; the model is fed the same events at the same cycles
  (``Nic.advance``, ``receive``, ``end_indication``).

Between phases the configuration changes (OID_TCP_OFFLOAD_PARAMETERS: LSO off; LSO on and
checksum TX off; RSC off with SCUs open; RSC on and checksum RX off; all on). The
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

Environment (``tb.common``): ``NICOFFLOAD_FRAMES`` input frames over the run, TX and RX
together (default 950; the RX mix adds about 15%: some 1,030 frames);
``NICOFFLOAD_TX_BUDGET`` the largest TX send in bytes (default 6,000).
"""

from __future__ import annotations

import collections
import copy
import os
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamFrame

from nicoffload.model import nbl
from nicoffload.model import regmap as rm
from nicoffload.model.config import NdisOffloadParameters
from nicoffload.model.nic import Nic, TxRequest
from nicoffload.model.transport import prepare_checksum
from nicoffload.tb import common, rsc_traffic, traffic
from nicoffload.tb.tb_lso import random_host_frame

IDLE_TIMEOUT = 5000         # RSC idle time T, cycles (gaps of up to 8,000 pass it)
_CSUM = ("IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum",
         "UDPIPv6Checksum")
_LSO = ("LsoV1", "LsoV2IPv4", "LsoV2IPv6")
#: The configuration changes between phases (NDIS values: checksum 1 off, 2 TX, 3 RX,
#: 4 both; LSO and RSC 1 off, 2 on).
CHANGES = (
    ("LSO off", {k: 1 for k in _LSO}),
    ("LSO on, checksum TX off", {**{k: 2 for k in _LSO}, **{k: 3 for k in _CSUM}}),
    ("RSC off", {"RscIPv4": 1, "RscIPv6": 1}),
    ("RSC on, checksum RX off", {"RscIPv4": 2, "RscIPv6": 2, **{k: 2 for k in _CSUM}}),
    ("all on", {k: 4 for k in _CSUM}),
)


class Recorder:
    """Cycle by cycle: RX frame arrivals, end-of-indication markers and loads of the RX
    path's RSC enables, in order (the events the model must see, with their cycles)."""

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0
        self.log = []           # ("frame", t) / ("eoi", t) / ("rsc", t, bits)
        self.rsc = dut.unit.rx_rsc_enables
        self.enables = int(self.rsc.value)
        cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            bits = int(self.rsc.value)
            if bits != self.enables:
                self.enables = bits
                self.log.append(("rsc", self.cycle, bits))
            if int(dut.s_axis_wire_tvalid.value) and int(dut.s_axis_wire_tready.value) \
                    and int(dut.s_axis_wire_tlast.value):
                self.log.append(("frame", self.cycle))
            if int(dut.s_axis_eoi_tvalid.value) and int(dut.s_axis_eoi_tready.value):
                self.log.append(("eoi", self.cycle))


class TB(common.StreamTB):
    """Endpoints of the top: TX source and sinks, RX source and sink, AXI4-Lite master, and
    the model fed alongside."""

    def __init__(self, dut, rng: random.Random):
        super().__init__(dut)
        self.rng = rng
        self.tx = self.source("s_axis_tx")
        self.wire = self.sink("m_axis_wire")
        self.txc = self.word_sink("m_axis_txc")
        self.rx = self.source("s_axis_wire")
        self.host = self.sink("m_axis_rx")
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        for part in (self.axil.write_if, self.axil.read_if):
            part.log.setLevel("WARNING")
        dut.s_axis_eoi_tvalid.value = 0
        dut.s_axis_eoi_tdata.value = 0
        for end in (self.tx, self.rx):
            self.set_pauses(end, True, rng)
        for end in (self.wire, self.txc, self.host):
            self.set_pauses(end, True, rng)
        self.model = Nic(rsc_idle_timeout=IDLE_TIMEOUT, data_bytes=self.width // 8)
        self.want_wire, self.want_txc, self.want_rx = [], [], []
        self.rx_sent = []           # frames in order
        self.rx_seen = 0            # recorder events replayed
        self.rx_frames_replayed = 0
        self.stats = collections.Counter()

    # --- registers ---------------------------------------------------------------------

    async def write(self, address: int, value: int):
        await self.axil.write_dword(address, value)

    async def read(self, address: int) -> int:
        return await self.axil.read_dword(address)

    async def program(self):
        """Every configuration register as the model's bound configuration says."""
        values = self.model.csr_values()
        for r in rm.REGISTERS.config:
            await self.write(r.address, values[r.name])
        assert await self.read(rm.REGISTERS["ID"].address) == rm.MAP_ID

    async def counters(self) -> dict[str, int]:
        out = {}
        for c in rm.COUNTERS:
            lo = await self.read(c.address)
            hi = await self.read(c.address + 4)
            out[c.name] = hi << 32 | lo
        return out

    # --- TX ----------------------------------------------------------------------------

    def tx_items(self, n: int, budget: int):
        """``n`` host frames made as the transport makes them under the current config, each
        with the model's result (sent to the model now: nothing else runs on TX between)."""
        rng, model = self.rng, self.model
        out = []
        for _ in range(n):
            frame, user, desc = random_host_frame(rng, model.tx.limits, budget=budget)
            if desc.startswith("ordinary") and rng.random() < 0.8:
                f = traffic.random_frame(rng, max_payload=min(9000, budget))
                while not f.data:
                    f = traffic.random_frame(rng, max_payload=min(9000, budget))
                frame, info = prepare_checksum(f.data, model.datapath)
                user, desc = nbl.TxUser.for_frame(frame, info), f"ordinary {f.desc}"
            csum, lso, supp, _ = nbl.TxUser.unpack_raw(user)
            result = model.transmit(TxRequest(frame, nbl.ChecksumTx.from_int(csum), lso, supp))
            self.want_wire += [(s, desc) for s in result.segments]
            self.want_txc.append((result.completion.to_int(), desc))
            self.stats[nbl.TxStatus(result.completion.Status).name if lso else "ordinary"] += 1
            out.append((frame, user))
        return out

    async def drive_tx(self, items):
        for frame, user in items:
            await self.tx.send(AxiStreamFrame(
                frame, tuser=common.first_beat_user(len(frame), self.width, user)))
        await self.tx.wait()

    # --- RX ----------------------------------------------------------------------------

    def rx_items(self, n: int):
        """``n`` wire frames: RSC flows, other frames, markers and gaps."""
        rng = self.rng
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
                if rng.random() < 0.3 and len(data) > 20:
                    data, _ = traffic.corrupt_one_bit(rng, data)
                out.append(("frame", data))
        return out

    async def send_eoi(self):
        dut = self.dut
        dut.s_axis_eoi_tvalid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if int(dut.s_axis_eoi_tready.value):
                break
        dut.s_axis_eoi_tvalid.value = 0

    async def drive_rx(self, items):
        for item in items:
            if item[0] == "frame":
                self.rx_sent.append(item[1])
                await self.rx.send(AxiStreamFrame(item[1]))
            else:
                await self.rx.wait()
                if item[0] == "eoi":
                    await self.send_eoi()
                else:
                    await ClockCycles(self.dut.clk, item[1])
        await self.rx.wait()

    def replay(self):
        """Feed the model every RX event recorded since the last call."""
        model, log = self.model, self.rec.log
        while self.rx_seen < len(log):
            kind, t, *_ = log[self.rx_seen]
            self.rx_seen += 1
            if kind == "frame":
                frame = self.rx_sent[self.rx_frames_replayed]
                self.rx_frames_replayed += 1
                self.want_rx += model.receive(frame, t)
            elif kind == "eoi":
                self.want_rx += model.advance(t)
                self.want_rx += model.end_indication()

    # --- configuration -------------------------------------------------------------------

    async def change(self, name: str, fields: dict):
        """Quiesced inputs: one OID_TCP_OFFLOAD_PARAMETERS change, on the bus and in the
        model at the same frame boundary."""
        params = NdisOffloadParameters(**fields)
        probe = copy.deepcopy(self.model)
        writes = probe.set_offload_parameters(params).writes
        old, new = self.model.datapath, probe.datapath
        falls = (old.rsc_ipv4 and not new.rsc_ipv4) or (old.rsc_ipv6 and not new.rsc_ipv6)
        self.replay()
        mark = len(self.rec.log)
        for address, value in writes:
            await self.write(address, value)
        t = None
        if falls:
            async def load():
                while True:
                    hit = [e for e in self.rec.log[mark:] if e[0] == "rsc"]
                    if hit:
                        return hit[0][1]
                    await RisingEdge(self.dut.clk)
            t = await self.guard(load(), f"the RX path loading '{name}'", 200000)
            self.replay()       # nothing can have arrived: the inputs are quiet
            self.want_rx += self.model.advance(t)
        before = len(self.model.indications)
        result = self.model.set_offload_parameters(params)
        assert result.writes == writes
        assert len(self.model.indications) == before + 1, "one status indication per change"
        self.want_rx += list(result.indicated)
        self.dut._log.info(f"config change '{name}': {len(writes)} register write(s), "
                           f"{len(result.indicated)} SCU(s) flushed"
                           + (f" at cycle {t}" if t is not None else ""))

    # --- scoreboard ------------------------------------------------------------------------

    async def collect(self):
        """Wait (under the watchdog) until every output the model expects has come out."""
        async def done():
            while (self.wire.count() < len(self.want_wire) or self.txc.count() <
                   len(self.want_txc) or self.host.count() < len(self.want_rx)):
                await RisingEdge(self.dut.clk)
        await self.guard(done(), lambda: (
            f"wire {self.wire.count()}/{len(self.want_wire)}, completions "
            f"{self.txc.count()}/{len(self.want_txc)}, host {self.host.count()}/"
            f"{len(self.want_rx)}"))

    async def check(self):
        w = self.width
        for i, (want, desc) in enumerate(self.want_wire):
            got, _ = common.beats(await self.wire.recv(compact=False), w, "wire frame")
            assert got == want, (f"wire frame {i} ({desc}): {len(got)} bytes, model "
                                 f"{len(want)}, first difference at byte "
                                 f"{_first_diff(got, want)}")
        for i, (want, desc) in enumerate(self.want_txc):
            got = common.word(await self.txc.recv())
            assert got == want, (f"completion {i} ({desc}): {nbl.TxCompletion.from_int(got)}, "
                                 f"model {nbl.TxCompletion.from_int(want)}")
        for i, (_, ind) in enumerate(self.want_rx):
            got, users = common.beats(await self.host.recv(compact=False), w, "host frame")
            assert got == ind.frame, (f"host frame {i} ({ind.cause.name}): {len(got)} bytes, "
                                      f"model {len(ind.frame)}, first difference at byte "
                                      f"{_first_diff(got, ind.frame)}")
            want_user = nbl.RxUser.pack(ind.checksum, ind.rsc, ind.timestamp_delta)
            assert users[-1] == want_user, (
                f"host frame {i} ({ind.cause.name}): RxUser {nbl.RxUser.unpack(users[-1])}, "
                f"model {nbl.RxUser.unpack(want_user)}")


def _first_diff(a: bytes, b: bytes) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@cocotb.test()
async def traffic_and_config_changes(dut):
    """TX and RX at once, every offload on, then the configuration changes between phases;
    every byte, info word and counter against model.nic.Nic."""
    rng = random.Random(common.seed())
    tb = TB(dut, rng)
    await tb.reset()
    tb.rec = Recorder(dut)
    await tb.program()
    total = common.frames(950)
    budget = int(os.environ.get("NICOFFLOAD_TX_BUDGET", "6000"))
    phases = len(CHANGES) + 1
    per_tx = max(1, total * 4 // 10 // phases)
    per_rx = max(1, total * 6 // 10 // phases)
    for p in range(phases):
        if p:
            await tb.change(*CHANGES[p - 1])
        tx = cocotb.start_soon(tb.drive_tx(tb.tx_items(per_tx, budget)))
        rx = cocotb.start_soon(tb.drive_rx(tb.rx_items(per_rx)))
        await tb.guard(_both(tx, rx), f"phase {p} input")
    await tb.send_eoi()
    await ClockCycles(dut.clk, 2)
    tb.replay()
    await tb.collect()
    await tb.check()
    await tb.settle(200)
    got, want = await tb.counters(), tb.model.counters()
    rsc = {name for name in want if name.startswith("RSC_")}
    wrong = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
    assert not wrong, f"counters (RTL, model): {wrong}"
    scus = sum(1 for _, i in tb.want_rx if i.rsc.CoalescedSegCount > 1)
    dut._log.info(
        f"W={tb.width}: {len(tb.want_txc)} host frames -> {len(tb.want_wire)} wire frames; "
        f"{len(tb.rx_sent)} wire frames -> {len(tb.want_rx)} host frames ({scus} SCUs of 2+); "
        f"{tb.cycles()} cycles; TX {dict(tb.stats)}; counters "
        f"{ {n: v for n, v in got.items() if v} }; RSC statistics "
        f"{ {n: got[n] for n in sorted(rsc)} }")


async def _both(a, b):
    await a
    await b
