# amaranth: UnusedElaboratable=no
"""hdl/stream.py in Amaranth's own simulator: order, no loss, full rate, registered ready."""

import random

import pytest
from amaranth.sim import Simulator

from nicoffload.hdl.stream import FrameBuffer, RegisterSlice, StreamFIFO, stage_layout


def run_stream(dut, count, *, p_valid, p_ready, seed, check_ready_registered=False,
               encode=lambda n: n):
    """Offers ``encode(0)``, ``encode(1)``, ... ; what was taken on ``s`` (the numbers) and
    what came out of ``m`` (the payloads), and the cycles taken."""
    rng = random.Random(seed)
    sent, got = [], []
    cycles = [0]

    async def tb(ctx):
        nxt = 0
        for _ in range(count * 8 + 50):
            offer = nxt < count and rng.random() < p_valid
            ctx.set(dut.s.valid, offer)
            ctx.set(dut.s.payload, encode(nxt))
            take = rng.random() < p_ready
            if check_ready_registered:      # s.ready must not follow m.ready in the cycle
                ctx.set(dut.m.ready, 0)
                before = ctx.get(dut.s.ready)
                ctx.set(dut.m.ready, 1)
                assert ctx.get(dut.s.ready) == before
            ctx.set(dut.m.ready, take)
            s_fire = offer and ctx.get(dut.s.ready)
            m_fire = take and ctx.get(dut.m.valid)
            if m_fire:
                got.append(ctx.get(dut.m.payload))
            if s_fire:
                sent.append(nxt)
                nxt += 1
            await ctx.tick()
            cycles[0] += 1
            if len(got) == count:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return sent, got, cycles[0]


@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.7, 0.5), (1.0, 0.3), (0.3, 1.0)])
def test_register_slice_order(p_valid, p_ready):
    sent, got, _ = run_stream(RegisterSlice(16), 300, p_valid=p_valid, p_ready=p_ready,
                              seed=int(p_valid * 10 + p_ready * 100),
                              check_ready_registered=True)
    assert got == list(range(300)) and sent == got


def test_register_slice_full_rate():
    _, got, cycles = run_stream(RegisterSlice(8), 200, p_valid=1.0, p_ready=1.0, seed=1)
    assert len(got) == 200 and cycles <= 202       # one beat a cycle, one cycle of latency


@pytest.mark.parametrize("depth", [1, 2, 4, 16])
@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.8, 0.4), (1.0, 0.3), (0.3, 1.0)])
def test_stream_fifo_order(depth, p_valid, p_ready):
    """Order and no loss at every depth, and ``s.ready`` a flip-flop (it does not follow
    ``m.ready`` within the cycle)."""
    sent, got, _ = run_stream(StreamFIFO(16, depth), 300, p_valid=p_valid, p_ready=p_ready,
                              seed=depth, check_ready_registered=True)
    assert got == list(range(300)) and sent == got


@pytest.mark.parametrize("width, depth", [(200, 3), (200, 16), (848, 16), (300, 2), (130, 5)])
def test_stream_fifo_wide_payloads_keep_every_bit(width, depth):
    """A payload wider than a bank (``BANK_BITS``): every bank's bits arrive with their
    entry, in order, whatever the backpressure (each bank has address registers of its own)."""
    def encode(n):
        return random.Random(n).getrandbits(width)
    sent, got, _ = run_stream(StreamFIFO(width, depth), 200, p_valid=0.8, p_ready=0.5,
                              seed=width + depth, encode=encode)
    assert got == [encode(n) for n in range(200)] and len(sent) == 200


@pytest.mark.parametrize("depth", [3, 4])
def test_stream_fifo_full_rate(depth):
    """A write and a read every cycle from depth 3 (an entry takes two cycles from ``s`` to
    ``m``, so a 2-deep FIFO runs at two entries in three cycles)."""
    _, got, cycles = run_stream(StreamFIFO(8, depth), 200, p_valid=1.0, p_ready=1.0, seed=1)
    assert len(got) == 200 and cycles <= 203


def test_stream_fifo_holds_depth():
    """With the reader stopped, it takes exactly ``depth`` entries (the spare entry inside
    is never offered)."""
    dut = StreamFIFO(8, 5)
    taken = []

    async def tb(ctx):
        ctx.set(dut.m.ready, 0)
        for n in range(12):
            ctx.set(dut.s.valid, 1)
            ctx.set(dut.s.payload, n)
            if ctx.get(dut.s.ready):
                taken.append(n)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert taken == list(range(5))


def test_stage_layout():
    layout = stage_layout({"data": 8})
    assert set(layout.members) == {"valid", "data"}
    with pytest.raises(ValueError):
        stage_layout({"valid": 1})
    with pytest.raises(ValueError):
        StreamFIFO(8, 0)


@pytest.mark.parametrize("p_write,p_read", [(1.0, 1.0), (0.8, 0.4), (1.0, 0.3), (0.3, 1.0)])
def test_frame_buffer_order_and_r_rdy(p_write, p_read):
    """``FrameBuffer``: entries come out in order, none lost, the writer keeping to ``level <
    depth``; ``r_rdy`` is exact (high whenever an entry written three cycles ago or earlier is
    unread: it never stays low while one waits) and a read returns the entry the cycle
    after."""
    depth, count = 8, 300
    dut = FrameBuffer(16, depth)
    rng = random.Random(int(p_write * 10 + p_read * 100))
    got, writes = [], []           # writes: the cycle of each entry's write
    state = {"reading": None}

    async def tb(ctx):
        nxt, cycle = 0, 0
        while len(got) < count and cycle < count * 10:
            if state["reading"] is not None:        # the read of the cycle before
                got.append(ctx.get(dut.r_data))
                state["reading"] = None
            write = nxt < count and ctx.get(dut.level) < depth and rng.random() < p_write
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, nxt)
            waiting = [c for c in writes[len(got) + (state["reading"] is not None):]
                       if c <= cycle - 3]
            assert ctx.get(dut.r_rdy) == bool(waiting), f"cycle {cycle}"
            read = ctx.get(dut.r_rdy) and rng.random() < p_read
            ctx.set(dut.r_en, read)
            if write:
                writes.append(cycle)
                nxt += 1
            await ctx.tick()
            if read:
                state["reading"] = True
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == list(range(count))


class _FifoReference:
    """StreamFIFO cycle by cycle, in Python: the entries in the RAM and the output register,
    ``s.ready`` = fewer than ``depth`` held, an entry written in one cycle may move to the
    output register in the next (while it is empty or being emptied)."""

    def __init__(self, depth):
        self.depth, self.ram, self.out = depth, [], None

    def ports(self):
        held = len(self.ram) + (self.out is not None)
        return held < self.depth, self.out is not None, self.out

    def step(self, s_valid, payload, m_ready):
        s_ready, m_valid, _ = self.ports()
        moved = bool(self.ram) and (not m_valid or m_ready)
        if moved:
            self.out = self.ram.pop(0)
        elif m_ready:
            self.out = None
        if s_valid and s_ready:
            self.ram.append(payload)


@pytest.mark.parametrize("width, depth", [(8, 1), (8, 2), (8, 3), (16, 5), (16, 16),
                                          (300, 4), (848, 16)])
@pytest.mark.parametrize("p_valid,p_ready", [(0.9, 0.9), (0.8, 0.3), (0.3, 0.8)])
def test_stream_fifo_cycle_exact(width, depth, p_valid, p_ready):
    """``s.ready``, ``m.valid``, ``m.payload`` and ``level`` equal the reference's in every
    cycle: ``s.ready`` is 1 exactly while fewer than ``depth`` entries are held, ``m.valid``
    exactly while the output register holds one (from the second cycle after its write)."""
    dut, ref = StreamFIFO(width, depth), _FifoReference(depth)
    rng = random.Random(width * 31 + depth + int(p_valid * 100))

    async def tb(ctx):
        for cycle in range(600):
            s_valid, m_ready = rng.random() < p_valid, rng.random() < p_ready
            payload = rng.getrandbits(width)
            ctx.set(dut.s.valid, s_valid)
            ctx.set(dut.s.payload, payload)
            ctx.set(dut.m.ready, m_ready)
            s_ready, m_valid, out = ref.ports()
            assert ctx.get(dut.s.ready) == s_ready, cycle
            assert ctx.get(dut.m.valid) == m_valid, cycle
            assert ctx.get(dut.level) == len(ref.ram) + m_valid, cycle
            if m_valid:
                assert ctx.get(dut.m.payload) == out, cycle
            ref.step(s_valid, payload, m_ready)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
