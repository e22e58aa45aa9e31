"""RxChecksum (hdl/checksum.py) in Amaranth's simulator: a stalled output beat never changes.

AXI4-Stream: while ``tvalid && !tready`` the payload of a beat (``tuser`` included) holds.
The receive flags depend on the ``enables`` port, which the configuration may change at any
time; here they change while a frame's last beat waits, and the beat must stay as it was.
"""

import struct

from amaranth.sim import Simulator

from nicoffload.hdl.checksum import RxChecksum
from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, ChecksumEnables, rx_validate
from nicoffload.model.onesum import internet_checksum

WIDTH = 64


def _udp4_frame() -> bytes:
    """Ethernet / IPv4 / UDP with correct checksums: every flag the unit sets is a success."""
    payload = bytes(range(26))
    udp_len = 8 + len(payload)
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0, src,
                               dst))
    ip[10:12] = internet_checksum(bytes(ip)).to_bytes(2, "big")
    pseudo = src + dst + struct.pack(">BBH", 0, 17, udp_len)
    udp = bytearray(struct.pack(">HHHH", 1000, 2000, udp_len, 0) + payload)
    udp[6:8] = internet_checksum(pseudo + bytes(udp)).to_bytes(2, "big")
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + bytes(ip) + bytes(udp)


def _enables_value(enables: ChecksumEnables) -> int:
    return sum(int(bool(getattr(enables, name))) << i for i, name in enumerate(RX_ENABLE_NAMES))


def test_stalled_last_beat_holds_when_enables_change():
    dut = RxChecksum(WIDTH)
    frame = _udp4_frame()
    nb = WIDTH // 8
    beats = [frame[i:i + nb] for i in range(0, len(frame), nb)]
    on, off = ChecksumEnables(), ChecksumEnables(rx_active=False)
    assert rx_validate(frame, enables=on) != rx_validate(frame, enables=off)
    seen = {}

    async def source(ctx):
        ctx.set(dut.enables.as_value(), _enables_value(on))
        for i, chunk in enumerate(beats):
            ctx.set(dut.s_axis.payload.data, int.from_bytes(chunk, "little"))
            ctx.set(dut.s_axis.payload.keep, (1 << len(chunk)) - 1)
            ctx.set(dut.s_axis.payload.last, i == len(beats) - 1)
            ctx.set(dut.s_axis.valid, 1)
            await ctx.tick().until(dut.s_axis.ready)
        ctx.set(dut.s_axis.valid, 0)

    async def sink(ctx):
        out = dut.m_axis
        ctx.set(out.ready, 1)
        taken = 0
        # Take every beat but the last; then hold ``ready`` low with the last beat waiting.
        while taken < len(beats) - 1:
            valid = ctx.get(out.valid)      # sampled before the edge that takes the beat
            await ctx.tick()
            taken += valid
        ctx.set(out.ready, 0)
        for _ in range(200):
            if ctx.get(out.valid):
                break
            await ctx.tick()
        assert ctx.get(out.valid) and ctx.get(out.payload.last), "the last beat never came"
        held = ctx.get(out.payload.as_value())
        seen["before"] = ctx.get(out.payload.user)
        for flip in range(6):          # the configuration changes under the stalled beat
            ctx.set(dut.enables.as_value(), _enables_value(off if flip % 2 == 0 else on))
            await ctx.tick()
            assert ctx.get(out.valid), "a stalled beat went away"
            assert ctx.get(out.payload.as_value()) == held, (
                f"the stalled beat changed after an enables change ({flip + 1} cycles)")
        ctx.set(out.ready, 1)
        await ctx.tick()
        assert not ctx.get(out.valid), "more beats than the frame's"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run_until(1e-8 * 2000)

    assert "before" in seen, "the sink never saw the stalled beat"
    flags = nbl.RxUser.unpack(seen["before"])[0]
    assert flags == rx_validate(frame, enables=on), "the held flags are not the model's"
