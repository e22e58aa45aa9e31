# amaranth: UnusedElaboratable=no
"""hdl/csr.py in Amaranth's own simulator, against the model's bus view (model.regmap).

A bus master that puts AW before W, W before AW or both at once, with random gaps, and
random backpressure on B and R; every response, every read word and every ``cfg`` field is
compared with ``model.regmap.RegisterFile``. Counters are driven through ``events`` between
transactions and read back as LO/HI pairs.
"""

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from nicoffload.hdl.csr import Csr, lso_config, rsc_enables, rsc_idle_timeout, rx_enables
from nicoffload.hdl.lso.common import config_value
from nicoffload.model import regmap as rm
from nicoffload.model.checksum import RX_ENABLE_NAMES


class Master:
    """An AXI4-Lite master of one transaction at a time, with random timing; it also checks
    the slave keeps B and R stable until they are taken, and answers B only after both AW
    and W were taken."""

    def __init__(self, dut, rng, *, p_ready=0.5, max_gap=3):
        self.dut, self.rng, self.p_ready, self.max_gap = dut, rng, p_ready, max_gap
        self.cycles = 0

    async def write(self, ctx, address, data, strb=0xF):
        d, rng = self.dut, self.rng
        aw_at, w_at = rng.randrange(self.max_gap + 1), rng.randrange(self.max_gap + 1)
        ctx.set(d.s_axil_awaddr, address)
        ctx.set(d.s_axil_wdata, data)
        ctx.set(d.s_axil_wstrb, strb)
        aw_done = w_done = False
        held = None
        for cycle in range(200):
            ctx.set(d.s_axil_awvalid, not aw_done and cycle >= aw_at)
            ctx.set(d.s_axil_wvalid, not w_done and cycle >= w_at)
            take = rng.random() < self.p_ready
            ctx.set(d.s_axil_bready, take)
            aw_fire = ctx.get(d.s_axil_awvalid) and ctx.get(d.s_axil_awready)
            w_fire = ctx.get(d.s_axil_wvalid) and ctx.get(d.s_axil_wready)
            if ctx.get(d.s_axil_bvalid):
                assert aw_done and w_done, "B before both AW and W were taken"
                resp = ctx.get(d.s_axil_bresp)
                assert held is None or held == resp, "bresp changed while bvalid"
                held = resp
            await ctx.tick()
            self.cycles += 1
            aw_done, w_done = aw_done or aw_fire, w_done or w_fire
            if held is not None and take:
                break
        else:
            raise AssertionError(f"write of {address:#x} did not complete")
        for port in (d.s_axil_awvalid, d.s_axil_wvalid, d.s_axil_bready):
            ctx.set(port, 0)
        return held

    async def read(self, ctx, address):
        d, rng = self.dut, self.rng
        ar_at = rng.randrange(self.max_gap + 1)
        ctx.set(d.s_axil_araddr, address)
        ar_done, held = False, None
        for cycle in range(200):
            ctx.set(d.s_axil_arvalid, not ar_done and cycle >= ar_at)
            take = rng.random() < self.p_ready
            ctx.set(d.s_axil_rready, take)
            ar_fire = ctx.get(d.s_axil_arvalid) and ctx.get(d.s_axil_arready)
            if ctx.get(d.s_axil_rvalid):
                assert ar_done, "R before AR was taken"
                got = (ctx.get(d.s_axil_rdata), ctx.get(d.s_axil_rresp))
                assert held is None or held == got, "R changed while rvalid"
                held = got
            await ctx.tick()
            self.cycles += 1
            ar_done = ar_done or ar_fire
            if held is not None and take:
                break
        else:
            raise AssertionError(f"read of {address:#x} did not complete")
        ctx.set(d.s_axil_arvalid, 0)
        ctx.set(d.s_axil_rready, 0)
        return held


def check_cfg(ctx, dut, model):
    """Every field of ``cfg`` equals the model's register value."""
    for r in rm.REGISTERS.config:
        view = getattr(dut.cfg, r.name.lower())
        for f in r.fields:
            assert ctx.get(getattr(view, f.name)) == f.get(model.values[r.name]), \
                f"cfg.{r.name.lower()}.{f.name}"


async def drive_events(ctx, dut, model, rng, cycles, *, only=None, big=False):
    """``cycles`` cycles of random increments on every counter (or those in ``only``)."""
    for _ in range(cycles):
        for c in rm.COUNTERS:
            if only is not None and c.name not in only:
                continue
            top = (1 << c.increment_bits) - 1
            amount = top if big else (rng.randrange(top + 1) if rng.random() < 0.5 else 0)
            ctx.set(getattr(dut.events, c.name.lower()), amount)
            model.count(c.name, amount)
        await ctx.tick()
    for c in rm.COUNTERS:
        ctx.set(getattr(dut.events, c.name.lower()), 0)


def simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def random_address(rng):
    """Mostly defined registers (sometimes unaligned), sometimes a hole or the top."""
    pick = rng.random()
    if pick < 0.8:
        return rng.choice(rm.REGISTERS.registers).address | rng.randrange(4)
    if pick < 0.95:
        return rng.randrange(1 << rm.ADDRESS_BITS)
    return (1 << rm.ADDRESS_BITS) - 4


@pytest.mark.parametrize("seed,p_ready", [(1, 1.0), (2, 0.5), (3, 0.2)])
def test_random_traffic_matches_model(seed, p_ready):
    rng = random.Random(seed)
    dut = Csr()
    model = rm.RegisterFile(dut.reset_values)
    counts = {"write": 0, "read": 0, rm.SLVERR: 0, rm.DECERR: 0}

    async def tb(ctx):
        bus = Master(dut, rng, p_ready=p_ready)
        check_cfg(ctx, dut, model)
        for _ in range(250):
            kind = rng.random()
            if kind < 0.1:
                await drive_events(ctx, dut, model, rng, rng.randrange(1, 6))
            elif kind < 0.5:
                address = random_address(rng)
                data, strb = rng.getrandbits(32), rng.randrange(16)
                resp = await bus.write(ctx, address, data, strb)
                assert resp == model.write(address, data, strb), f"bresp at {address:#x}"
                counts["write"] += 1
                counts[resp] = counts.get(resp, 0) + 1
                check_cfg(ctx, dut, model)
            else:
                address = random_address(rng)
                got = await bus.read(ctx, address)
                assert got == model.read(address), f"read at {address:#x}"
                counts["read"] += 1
                counts[got[1]] = counts.get(got[1], 0) + 1

    simulate(dut, tb)
    # The run must have exercised what it claims to.
    assert counts["write"] > 50 and counts["read"] > 80
    assert counts[rm.SLVERR] and counts[rm.DECERR]


def test_reset_values_and_identity():
    dut = Csr(data_bytes=32, rsc_contexts=16)
    model = rm.RegisterFile(dut.reset_values)

    async def tb(ctx):
        bus = Master(dut, random.Random(5))
        for r in rm.REGISTERS:
            got = await bus.read(ctx, r.address)
            assert got == model.read(r.address), r.name
        assert (await bus.read(ctx, 0x000)) == (rm.MAP_ID, rm.OKAY)
        hw = rm.REGISTERS["HW_PARAMS"].unpack((await bus.read(ctx, 0x008))[0])
        assert hw == {"DataBytes": 32, "RscContexts": 16}
        assert (await bus.read(ctx, 0xFFC)) == (0, rm.DECERR)

    simulate(dut, tb)


def test_counters_lo_hi_and_clear():
    rng = random.Random(7)
    dut = Csr()
    model = rm.RegisterFile(dut.reset_values)
    name = "TX_OUT_BYTES"
    lo = rm.REGISTERS[f"{name}_LO"].address

    async def tb(ctx):
        bus = Master(dut, rng)
        # 2**24 - 1 bytes a cycle: past 2**32 after 257 cycles.
        await drive_events(ctx, dut, model, rng, 300, only={name, "RX_IN_FRAMES"}, big=True)
        assert model.counts[name] >> 32, "the test must reach the HI word"
        assert (await bus.read(ctx, lo)) == model.read(lo)
        assert (await bus.read(ctx, lo + 4)) == model.read(lo + 4)
        assert (await bus.read(ctx, lo + 4))[0] == model.counts[name] >> 32
        # Another counter's LO read moves the shared shadow.
        other = rm.REGISTERS["RX_IN_FRAMES_LO"].address
        assert (await bus.read(ctx, other)) == model.read(other)
        assert (await bus.read(ctx, lo + 4)) == (0, rm.OKAY) == model.read(lo + 4)
        # StatsClear: only a 1 in a strobed byte clears.
        assert (await bus.write(ctx, 0x00C, 1, strb=0b0010)) == model.write(0x00C, 1, 0b0010)
        assert (await bus.read(ctx, lo))[0] != 0
        assert (await bus.write(ctx, 0x00C, 1)) == model.write(0x00C, 1) == rm.OKAY
        for c in rm.COUNTERS:
            assert (await bus.read(ctx, c.address)) == (0, rm.OKAY), c.name
        assert (await bus.read(ctx, 0x00C)) == (0, rm.OKAY)

    simulate(dut, tb)


def test_cfg_drives_the_unit_ports():
    """``lso_config``/``rx_enables``/``rsc_*`` give what the model decodes from the same
    registers, for the reset values and after writes."""
    rng = random.Random(11)
    dut = Csr()
    model = rm.RegisterFile(dut.reset_values)
    view = rm.RegisterView()
    writes = [("OFFLOAD_EN", 0b0101_1010_0110_1001), ("LSO_CTRL", 1),
              ("LSO_V1_IPV4_MAX", 40000), ("LSO_V2_IPV4_MAX", 123456),
              ("LSO_V2_IPV6_MAX", 0x12345678), ("LSO_V1_MIN_SEG", 3),
              ("LSO_V2_MIN_SEG", (7 << 16) | 5), ("ENCAP_IPV4", 0), ("RSC_IDLE_TIMEOUT", 999)]

    def expect(ctx):
        decoded = view.decode(model.values)
        assert ctx.get(lso_config(dut.cfg)) == config_value(decoded.lso_limits)
        want = sum(int(decoded.rx_enables[n]) << i for i, n in enumerate(RX_ENABLE_NAMES))
        assert ctx.get(rx_enables(dut.cfg)) == want
        assert ctx.get(rsc_enables(dut.cfg)) == (decoded.datapath.rsc_ipv4
                                                 | decoded.datapath.rsc_ipv6 << 1)
        assert ctx.get(rsc_idle_timeout(dut.cfg)) == (decoded.rsc_idle_timeout or 0)

    async def tb(ctx):
        bus = Master(dut, rng)
        expect(ctx)
        for name, value in writes:
            address = rm.REGISTERS[name].address
            assert (await bus.write(ctx, address, value)) == model.write(address, value)
            expect(ctx)
        assert model.values["LSO_CTRL"] == 1 and model.values["RSC_IDLE_TIMEOUT"] == 999

    simulate(dut, tb)


def test_exports_as_verilog_with_flat_axil_names():
    text = verilog.convert(Csr(), name="csr", emit_src=False)
    for name in ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp",
                 "bvalid", "bready", "araddr", "arvalid", "arready", "rdata", "rresp",
                 "rvalid", "rready"):
        assert f"s_axil_{name};" in text, name
    assert "\\config" not in text


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="data_bytes"):
        Csr(data_bytes=0)
    with pytest.raises(ValueError, match="rsc_contexts"):
        Csr(rsc_contexts=300)
