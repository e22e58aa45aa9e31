"""TxChecksum and RxChecksum (hdl/checksum.py) against model.checksum, in Verilator.

One module serves both units: ``NICOFFLOAD_PARAMS`` says which (``{"unit": "txcsum"}`` or
``"rxcsum"``). Traffic is the constrained-random mix of ``tb.traffic``: every L2/L3/L4 mix,
options and extension headers, payloads to 9000 bytes, adversarial all-ones values, corrupted
checksums and malformed frames. The scoreboard sends each frame to the model too and compares
every byte and, for RX, every info bit. Every test runs with and without source idles and
sink backpressure, under a watchdog.
"""

from __future__ import annotations

import random

import cocotb
from cocotbext.axi import AxiStreamFrame

from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, ChecksumEnables, rx_validate, tx_fill
from nicoffload.model.transport import prepare_checksum
from nicoffload.tb import common, traffic

def stream_frame(rng: random.Random) -> bytes:
    """A random frame that AXI4-Stream can carry: at least one byte (a zero-length frame has
    no beat to put tlast on; the CLI passes such capture records through unchanged)."""
    while True:
        frame = traffic.random_frame(rng).data
        if frame:
            return frame


def tx_case(rng: random.Random):
    """A host frame and its TX info word: mostly transport-prepared, sometimes stray words."""
    frame = stream_frame(rng)
    roll = rng.random()
    if roll < 0.75:
        prepared, info = prepare_checksum(frame, ChecksumEnables())
    else:   # words the transport would not send: the NIC must do what the model does
        prepared = frame
        info = nbl.ChecksumTx.from_int(rng.getrandbits(5) | (rng.choice(
            [0, 14, 34, 54, rng.randrange(1024)]) << 16))
    return prepared, info


def rx_case(rng: random.Random):
    """A wire frame: good checksums (scapy's) or one flipped bit anywhere after the MACs."""
    frame = stream_frame(rng)
    if rng.random() < 0.3 and len(frame) > 12:
        frame = traffic.corrupt_one_bit(rng, frame, (12, len(frame)))[0]
    return frame


def sized_frame(rng: random.Random, size: int) -> bytes:
    """An Ethernet II / IPv4 / TCP frame of exactly ``size`` bytes with correct checksums."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    pkt = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / \
        rng.randbytes(size - 54)
    return bytes(pkt)


RX_ENABLE_SETS = [ChecksumEnables(), ChecksumEnables(rx_udp_ipv4=False, rx_tcp_ipv6=False),
                  ChecksumEnables(rx_active=False)]


def set_enables(dut, enables):
    """Drive the ``enables`` port: one bit per name, in RX_ENABLE_NAMES order from bit 0."""
    dut.enables.value = sum(int(bool(getattr(enables, name))) << i
                            for i, name in enumerate(RX_ENABLE_NAMES))


async def run_tx(dut, rng, idle, backpressure, count):
    width = common.params()["width"]
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_axis"], idle=idle,
                                    backpressure=backpressure, rng=rng)
    src, snk = srcs["s_axis"], snks["m_axis"]
    cases = [tx_case(rng) for _ in range(count)]
    beats = sum(common.beats_of(len(f), width) for f, _ in cases)

    async def drive():
        for frame, info in cases:
            await src.send(AxiStreamFrame(frame, tuser=nbl.TxUser.for_frame(frame, info)))

    async def check():
        for i, (frame, info) in enumerate(cases):
            got = bytes((await snk.recv()).tdata)
            want = tx_fill(frame, info)
            assert got == want, (f"frame {i} ({len(frame)} bytes, info {info}): first "
                                 f"difference at byte "
                                 f"{next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")

    cocotb.start_soon(drive())
    await common.with_watchdog(dut, check(), 8 * beats + 5000, "TX frames")
    assert snk.empty(), "more frames out than in"


async def run_rx(dut, rng, idle, backpressure, count):
    width = common.params()["width"]
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_axis"], idle=idle,
                                    backpressure=backpressure, rng=rng)
    src, snk = srcs["s_axis"], snks["m_axis"]
    for enables in RX_ENABLE_SETS:
        set_enables(dut, enables)
        frames = [rx_case(rng) for _ in range(-(-count // len(RX_ENABLE_SETS)))]
        beats = sum(common.beats_of(len(f), width) for f in frames)

        async def drive():
            for frame in frames:
                await src.send(AxiStreamFrame(frame))

        async def check():
            for i, frame in enumerate(frames):
                got = await snk.recv(compact=False)
                user = got.tuser[-1] if isinstance(got.tuser, list) else got.tuser
                got.compact()       # drop the bytes tkeep leaves out
                assert bytes(got.tdata) == frame, f"frame {i}: bytes changed"
                flags = nbl.RxUser.unpack(user)[0]
                want = rx_validate(frame, enables=enables)
                assert flags == want, f"frame {i} ({len(frame)} bytes): RTL {flags}, model {want}"

        cocotb.start_soon(drive())
        await common.with_watchdog(dut, check(), 8 * beats + 5000, "RX frames")
    assert snk.empty(), "more frames out than in"


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_traffic(dut, idle, backpressure):
    unit = dut._name
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    count = common.frames(200)
    if unit == "txcsum":
        await run_tx(dut, rng, idle, backpressure, count)
    else:
        await run_rx(dut, rng, idle, backpressure, count)


@cocotb.test()
async def line_rate(dut):
    """Back-to-back 1500-byte frames, no idles, no backpressure: the input never stalls
    once the first frame is in, and the output is busy every cycle between its first and last
    beat."""
    params = common.params()
    width, unit = params["width"], dut._name
    rng = random.Random(common.seed())
    srcs, snks = await common.setup(dut, sources=["s_axis"], sinks=["m_axis"], rng=rng)
    if unit == "rxcsum":
        set_enables(dut, ChecksumEnables())
    src, snk = srcs["s_axis"], snks["m_axis"]
    frames = []
    for _ in range(40):
        frame = sized_frame(rng, 1500)
        if unit == "txcsum":
            frame, info = prepare_checksum(frame, ChecksumEnables())
            frames.append((frame, nbl.TxUser.for_frame(frame, info)))
        else:
            frames.append((frame, 0))
    beats = sum(common.beats_of(len(f), width) for f, _ in frames)
    meter = common.OutputMeter(dut).start()
    for frame, user in frames:
        await src.send(AxiStreamFrame(frame, tuser=user))
    for _ in frames:
        await common.with_watchdog(dut, snk.recv(), 20 * beats, "line-rate frames")
    meter.stop()
    ratio = meter.beats / meter.span
    dut._log.info(f"line rate: {meter.beats} beats in {meter.span} cycles = {ratio:.4f} of W/8")
    assert meter.beats == beats
    assert ratio >= 0.95, f"output ran at {ratio:.3f} of line rate"
