"""The bench of the NIC top level (hdl/nic.py) against model.nic.Nic: endpoints, recorder,
configuration over AXI4-Lite, scoreboard and run reports.

One bench for every use of the top: the cross-check (``tb/tb_nic.py``, what
``tests/test_nic_rtl.py`` and ``nicoffload regress`` run) and the ``--engine rtl`` runs of
``nicoffload tx/rx`` (``tb/tb_nic_stream.py``). The scoreboard (:meth:`TB.score`) is the one
place that decides pass or fail: it compares every output the RTL gave with the model's,
counts the mismatches per path, and the tests assert that count is zero.

Environment (besides ``tb.common``'s):

``NICOFFLOAD_OFFLOADS``  comma-separated offloads the run has on: ``checksum`` (TX
                         insertion and RX validation, IPv4 header, TCP and UDP, both IP
                         versions), ``lso`` (LSOv1 IPv4, LSOv2 IPv4 and IPv6), ``rsc`` (RSC
                         IPv4 and IPv6). Default all three; the others are off by registry
                         keyword from the start and no configuration change turns them on.
``NICOFFLOAD_CHANGES``   ``0``: no configuration changes between phases (default ``1``).
``NICOFFLOAD_RUN_DIR``   a folder the run's captures and reports are written to
                         (:meth:`TB.write_reports`).
``NICOFFLOAD_PROGRESS``  a file the bench appends progress lines to (JSON objects, one a
                         line: ``phase``, ``phases``, ``name``, ``sent``, ``planned``, ``out``,
                         ``cycle``), for ``nicoffload regress``'s progress bar.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_time_from_sim_steps
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamFrame

from nicoffload.model import nbl
from nicoffload.model import regmap as rm
from nicoffload.model.config import NdisOffloadParameters
from nicoffload.model.config.constants import (NDIS_ENCAPSULATION_TYPE_GRE_MAC,
                                               NDIS_OFFLOAD_SET_OFF, NDIS_OFFLOAD_SET_ON)
from nicoffload.model.nic import Nic, TxRequest
from nicoffload.tb import common

IDLE_TIMEOUT = 5000         # RSC idle time T, cycles (gaps of up to 8,000 pass it)
_CSUM = ("IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum",
         "UDPIPv6Checksum")
_LSO = ("LsoV1", "LsoV2IPv4", "LsoV2IPv6")
_RSC = ("RscIPv4", "RscIPv6")
_NVGRE = ("EncapsulatedPacketTaskOffload", "EncapsulationTypes")
_NVGRE_ON = {"EncapsulatedPacketTaskOffload": NDIS_OFFLOAD_SET_ON,
             "EncapsulationTypes": NDIS_ENCAPSULATION_TYPE_GRE_MAC}
#: Offload name -> (its OID_TCP_OFFLOAD_PARAMETERS fields, the registry keywords that switch
#: it off at bind time).
OFFLOADS = {
    "checksum": (_CSUM, ("*IPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv4",
                         "*UDPChecksumOffloadIPv4", "*TCPChecksumOffloadIPv6",
                         "*UDPChecksumOffloadIPv6")),
    "lso": (_LSO, ("*LsoV1IPv4", "*LsoV2IPv4", "*LsoV2IPv6")),
    "rsc": (_RSC, ("*RscIPv4", "*RscIPv6")),
    "nvgre": (_NVGRE, ("*EncapsulatedPacketTaskOffload",)),
}
#: The configuration changes between phases (NDIS values: checksum 1 off, 2 TX, 3 RX,
#: 4 both; LSO and RSC 1 off, 2 on; the encapsulated packet task offload the other way
#: round: NDIS_OFFLOAD_SET_ON 1, NDIS_OFFLOAD_SET_OFF 2).
CHANGES = (
    ("LSO off", {k: 1 for k in _LSO}),
    ("LSO on, checksum TX off", {**{k: 2 for k in _LSO}, **{k: 3 for k in _CSUM}}),
    ("RSC off", {k: 1 for k in _RSC}),
    ("RSC on, checksum RX off", {**{k: 2 for k in _RSC}, **{k: 2 for k in _CSUM}}),
    ("NVGRE off", {"EncapsulatedPacketTaskOffload": NDIS_OFFLOAD_SET_OFF}),
    ("all on", {**{k: 4 for k in _CSUM}, **_NVGRE_ON}),
)


def offloads() -> tuple[str, ...]:
    """The offloads of ``NICOFFLOAD_OFFLOADS`` (all by default)."""
    text = os.environ.get("NICOFFLOAD_OFFLOADS", "")
    names = tuple(n for n in (s.strip() for s in text.split(",")) if n) or tuple(OFFLOADS)
    bad = [n for n in names if n not in OFFLOADS]
    if bad:
        raise ValueError(f"NICOFFLOAD_OFFLOADS: unknown {bad}; known {list(OFFLOADS)}")
    return names


def off_keywords(on) -> list[str]:
    """Registry keywords that switch off every offload not in ``on``."""
    return [f"{k}=0" for name, (_, kws) in OFFLOADS.items() if name not in on for k in kws]


def changes(on, enabled: bool = True) -> list[tuple[str, dict]]:
    """The configuration changes that touch only the offloads in ``on``."""
    if not enabled:
        return []
    fields = {f for name in on for f in OFFLOADS[name][0]}
    out = []
    for name, change in CHANGES:
        kept = {k: v for k, v in change.items() if k in fields}
        if kept:
            out.append((name, kept))
    return out


def cycle_of(steps) -> int:
    """The clock cycle of a simulator time in steps (a frame's ``sim_time_end``)."""
    return int(get_time_from_sim_steps(steps, "ns")) // common.CLOCK_NS


class Sent:
    """A frame given to a source and, once its last beat has gone, the simulator times of
    its first and last beat (the source sends a copy of the frame it is handed); ``send``:
    a TX frame whose info asks for LSO (counted apart in the CI tally)."""

    __slots__ = ("tdata", "send", "sim_time_start", "sim_time_end")

    def __init__(self, data: bytes, send: bool = False):
        self.tdata, self.send = bytes(data), send
        self.sim_time_start = self.sim_time_end = None

    def done(self, frame):
        self.sim_time_start, self.sim_time_end = frame.sim_time_start, frame.sim_time_end


class Recorder(common.ArrivalRecorder):
    """Cycle by cycle: RX frame arrivals, end-of-indication markers and loads of the RX
    path's RSC enables, in order (the events the model must see, with their cycles)."""

    def __init__(self, dut):
        super().__init__(dut, "s_axis_wire", "s_axis_eoi", dut.unit.rx_rsc_enables)


class TB(common.StreamTB):
    """Endpoints of the top: TX source and sinks, RX source and sink, AXI4-Lite master, and
    the model fed alongside.

    ``keywords`` bind the model (and so the registers :meth:`program` writes);
    ``pauses``: random idles on the inputs and backpressure on the outputs;
    ``model_kw``: more ``Nic`` arguments (``rsc_contexts``, ``rsc_idle_timeout``)."""

    def __init__(self, dut, rng: random.Random, *, keywords=(), pauses: bool = True,
                 rsc_idle_timeout: int | None = IDLE_TIMEOUT, **model_kw):
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
        for end in (self.tx, self.rx, self.wire, self.txc, self.host):
            self.set_pauses(end, pauses, rng)
        self.model = Nic(keywords=keywords, rsc_idle_timeout=rsc_idle_timeout,
                         data_bytes=self.width // 8, **model_kw)
        self.want_wire, self.want_txc, self.want_rx = [], [], []
        self.tx_sent, self.rx_sent = [], []     # Sent records, in order
        self.got_wire, self.got_txc, self.got_host = [], [], []
        self.rx_seen = 0            # recorder events replayed
        self.rx_frames_replayed = 0
        self.stats = collections.Counter()
        self.mismatches = collections.Counter()     # per path: "tx", "rx", "counters"
        self.messages: list[str] = []
        self.phases: list[dict] = []
        self.error: str | None = None
        self.rec: Recorder | None = None

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

    def expect_tx(self, request: TxRequest, desc: str = ""):
        """Send ``request`` to the model now (nothing else runs on TX between) and expect
        its result."""
        result = self.model.transmit(request)
        self.want_wire += [(s, desc) for s in result.segments]
        self.want_txc.append((result.completion.to_int(), desc))
        self.stats[nbl.TxStatus(result.completion.Status).name if request.lso
                   else "ordinary"] += 1

    async def drive_tx(self, items):
        """``items``: (frame, tuser) pairs, sent in order."""
        for frame, user in items:
            sent = Sent(frame, send=bool(nbl.TxUser.unpack_raw(user)[1]))
            self.tx_sent.append(sent)
            await self.tx.send(AxiStreamFrame(
                frame, tuser=common.first_beat_user(len(frame), self.width, user),
                tx_complete=sent.done))
        await self.tx.wait()

    # --- RX ----------------------------------------------------------------------------

    async def send_eoi(self):
        dut = self.dut
        dut.s_axis_eoi_tvalid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if int(dut.s_axis_eoi_tready.value):
                break
        dut.s_axis_eoi_tvalid.value = 0

    async def drive_rx(self, items):
        """``items``: ("frame", bytes), ("eoi",) and ("gap", cycles), in order."""
        for item in items:
            if item[0] == "frame":
                sent = Sent(item[1])
                self.rx_sent.append(sent)
                await self.rx.send(AxiStreamFrame(item[1], tx_complete=sent.done))
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
                frame = bytes(self.rx_sent[self.rx_frames_replayed].tdata)
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
                    hit = [e for e in self.rec.log[mark:] if e[0] == "enables"]
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
        return len(writes), len(result.indicated)

    # --- progress ------------------------------------------------------------------------

    def start_progress(self, phases: int, every: int = 4000):
        """Append a progress line to ``NICOFFLOAD_PROGRESS`` every ``every`` cycles."""
        path = os.environ.get("NICOFFLOAD_PROGRESS")
        if not path:
            return
        self.progress = {"phase": 0, "phases": phases, "name": "", "planned": 0}
        out = open(path, "a", buffering=1)

        def sent(frames, k):
            while k < len(frames) and frames[k].sim_time_end is not None:
                k += 1
            return k

        async def tick():
            k_tx = k_rx = 0
            while True:
                k_tx, k_rx = sent(self.tx_sent, k_tx), sent(self.rx_sent, k_rx)
                out.write(json.dumps(dict(
                    self.progress, sent=k_tx + k_rx, cycle=self.cycles(),
                    out=self.wire.count() + len(self.got_wire) + self.host.count() +
                    len(self.got_host))) + "\n")
                await ClockCycles(self.dut.clk, every)
        cocotb.start_soon(tick())

    def set_progress(self, **fields):
        if hasattr(self, "progress"):
            self.progress.update(fields)

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

    def take(self):
        """Everything the sinks hold, into ``got_*`` (bytes or word, tuser words, cycle)."""
        w = self.width
        while not self.wire.empty():
            f = self.wire.recv_nowait(compact=False)
            data, _ = common.beats(f, w, "wire frame")
            self.got_wire.append((data, cycle_of(f.sim_time_end)))
        while not self.txc.empty():
            f = self.txc.recv_nowait()
            self.got_txc.append((common.word(f), cycle_of(f.sim_time_end)))
        while not self.host.empty():
            f = self.host.recv_nowait(compact=False)
            data, users = common.beats(f, w, "host frame")
            self.got_host.append((data, users[-1], cycle_of(f.sim_time_end)))

    def _miss(self, path: str, text: str):
        self.mismatches[path] += 1
        if len(self.messages) < 20:
            self.messages.append(text)
            self.dut._log.error(text)

    def score(self):
        """Compare every output with the model's: counts the mismatches per path (and logs
        the first 20). Pass means ``sum(self.mismatches.values()) == 0``."""
        self.take()
        for i, ((want, desc), got) in enumerate(_pairs(self.want_wire, self.got_wire)):
            if got is None or want is None or got[0] != want:
                self._miss("tx", _frame_text("wire frame", i, desc, got and got[0], want))
        for i, ((want, desc), got) in enumerate(_pairs(self.want_txc, self.got_txc)):
            if got is None or want is None or got[0] != want:
                self._miss("tx", f"completion {i} ({desc}): "
                                 f"{got and nbl.TxCompletion.from_int(got[0])}, "
                                 f"model {want is not None and nbl.TxCompletion.from_int(want)}")
        for i, (pair, got) in enumerate(_pairs(self.want_rx, self.got_host)):
            ind = pair[1] if pair else None
            want_user = nbl.RxUser.pack(ind.checksum, ind.rsc, ind.timestamp_delta) \
                if ind else None
            cause = ind.cause.name if ind else "extra"
            if got is None or ind is None or got[0] != ind.frame:
                self._miss("rx", _frame_text("host frame", i, cause, got and got[0],
                                             ind and ind.frame))
            elif got[1] != want_user:
                self._miss("rx", f"host frame {i} ({cause}): RxUser "
                                 f"{nbl.RxUser.unpack(got[1])}, model "
                                 f"{nbl.RxUser.unpack(want_user)}")

        for sent in self.tx_sent + self.rx_sent:
            common.tally(sent.tdata, send=sent.send)

    def score_counters(self, got: dict, want: dict) -> dict:
        wrong = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
        for name, (g, w) in wrong.items():
            self._miss("counters", f"counter {name}: RTL {g}, model {w}")
        return wrong

    def passed(self) -> bool:
        return self.error is None and not sum(self.mismatches.values())

    # --- reports -------------------------------------------------------------------------

    def summary(self, counters: dict | None = None) -> dict:
        """What ``nicoffload regress`` prints and writes as summary.json."""
        from nicoffload.tb import nic_report
        return nic_report.summary(self, counters)

    def write_reports(self, folder: str | os.PathLike, counters: dict | None = None) -> dict:
        from nicoffload.tb import nic_report
        return nic_report.write(self, Path(folder), counters)


def _pairs(want, got):
    """(want item, got item) in order; None where one list is shorter."""
    for i in range(max(len(want), len(got))):
        yield (want[i] if i < len(want) else (None, None)), (got[i] if i < len(got) else None)


def _frame_text(what, i, desc, got, want) -> str:
    if got is None:
        return f"{what} {i} ({desc}): missing from the RTL"
    if want is None:
        return f"{what} {i}: the RTL gave one more ({len(got)} bytes) than the model"
    first = next((k for k, (x, y) in enumerate(zip(got, want)) if x != y),
                 min(len(got), len(want)))
    return (f"{what} {i} ({desc}): {len(got)} bytes, model {len(want)}, first difference "
            f"at byte {first}")
