"""hdl/nic.py's FrameGate in Amaranth's simulator: it closes only between frames, never cuts
one, and passes every beat in order while open (the configuration-boundary rule of the top
level rests on it; tb/tb_nic.py checks the whole rule against the model)."""

import random

from amaranth.sim import Simulator

from nicoffload.hdl.axis import axis_layout
from nicoffload.hdl.nic import FrameGate


def test_gate_closes_between_frames_only():
    rng = random.Random(5)
    dut = FrameGate(axis_layout(8))
    frames = [[rng.randrange(256) for _ in range(rng.randint(1, 5))] for _ in range(60)]
    beats = [(b, i == len(f) - 1) for f in frames for i, b in enumerate(f)]
    got = []
    log = []        # (hold, between, first beat of a frame passed)

    async def tb(ctx):
        k = 0
        inside = False
        for _ in range(2000):
            if k == len(beats):
                break
            hold = rng.random() < 0.4
            ctx.set(dut.hold, hold)
            ctx.set(dut.s.valid, rng.random() < 0.8)
            ctx.set(dut.s.payload.data, beats[k][0])
            ctx.set(dut.s.payload.last, beats[k][1])
            ctx.set(dut.s.payload.keep, 1)
            ctx.set(dut.m.ready, rng.random() < 0.8)
            between = ctx.get(dut.between)
            assert between == (not inside)
            passed = ctx.get(dut.s.valid) and ctx.get(dut.s.ready)
            assert passed == (ctx.get(dut.m.valid) and ctx.get(dut.m.ready))
            assert ctx.get(dut.ends) == (passed and beats[k][1])
            if passed:
                assert ctx.get(dut.m.payload.data) == beats[k][0]
                log.append((hold, between))
                got.append(beats[k])
                inside = not beats[k][1]
                k += 1
            elif hold and between:
                assert not ctx.get(dut.s.ready) and not ctx.get(dut.m.valid)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == beats
    assert not any(hold and between for hold, between in log), "a frame began under hold"
    assert any(hold and not between for hold, between in log), "hold never met a frame inside"
