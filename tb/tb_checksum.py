"""TxChecksum and RxChecksum (hdl/checksum.py) against model.checksum, in Verilator.

One module serves both units: ``NICOFFLOAD_PARAMS`` says which (``{"unit": "txcsum"}`` or
``"rxcsum"``). Traffic is the constrained-random mix of ``tb.traffic``: every L2/L3/L4 mix,
options and extension headers, payloads to 9000 bytes, adversarial all-ones values, corrupted
checksums and malformed frames; and NVGRE frames (test ``nvgre``: RX :func:`nvgre_rx_case`, TX
:func:`tx_nvgre_case` with supplemental words, right and wrong; encapsulation on and off, the
TX unit's ``encap`` port). The scoreboard sends each frame to the model too and compares
every byte and, for RX, every info bit. Every test runs with and without source idles and
sink backpressure, under a watchdog.

:class:`TB`: frames on ``s_axis`` (TX: the TxUser word on the first beat only), frames out on
``m_axis`` (RX: the RxUser word on the last beat), the ``enables`` port of the RX unit, the
``encap`` port of the TX unit (1, ``tx_fill``'s default, unless a test says otherwise).
"""

from __future__ import annotations

import dataclasses
import itertools
import random

import cocotb
from cocotbext.axi import AxiStreamFrame

from nicoffload.model import nbl
from nicoffload.model.checksum import ChecksumEnables, rx_validate, tx_fill
from nicoffload.model.transport import prepare_checksum
from nicoffload.model import transport_nvgre
from nicoffload.model.nvgre import follow
from nicoffload.tb import common, nvgre_frames, traffic
from nicoffload.tb.tb_parse import nvgre_case

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


def nvgre_rx_case(rng: random.Random) -> tuple[bytes, str]:
    """An NVGRE wire frame (``nvgre_frames``: every outer/inner IPv4/IPv6 mix, TCP, UDP, inner
    fragments, GRE checksum/key/sequence, VLAN outside, IP and TCP options, IPv6 Hop-by-Hop
    and Destination Options outside and inside, inner UDP checksums of 0) with good
    checksums or one of them broken (outer IPv4, inner IPv4, inner TCP/UDP, GRE); GRE that is
    not NVGRE (another protocol, unknown flags, a version); and the parser's NVGRE corners
    (``tb_parse.nvgre_case``)."""
    r = rng.random()
    if r < 0.15:
        frame, desc = nvgre_case(rng)
        return frame, f"parser corner: {desc}"
    knobs = {}
    if r < 0.25:
        knobs = rng.choice([{"gre_proto": rng.choice([0x0800, 0x86DD, 0x6559])},
                            {"gre_version": rng.randrange(1, 8)},
                            {"gre_flags": rng.choice([1, 2, 4, 8, 16])}])
        knobs["udp_zero_sum"] = False   # (scapy finds no inner UDP to zero behind them)
    f = nvgre_frames.random_nvgre(rng, max_payload=rng.choice([0, 60, 600, 1400]), **knobs)
    frame = bytearray(f.frame)
    nv = follow(frame)
    fields = []
    if nv.ok:
        fields = [(h.l3_offset + 10, f"{name} IPv4 checksum")
                  for h, name in ((nv.outer, "outer"), (nv.inner, "inner"))
                  if h.ip_version == 4]
        if nv.inner.l4_end is not None:
            fields.append((nv.inner.l4_offset + (16 if nv.inner.is_tcp else 6),
                           "inner L4 checksum"))
        if nv.gre_checksum_offset is not None:
            fields.append((nv.gre_checksum_offset, "GRE checksum"))
    desc = f"{f.desc}{' ' + str(knobs) if knobs else ''}"
    if fields and rng.random() < 0.4:
        at, name = rng.choice(fields)
        frame[at + rng.randrange(2)] ^= 1 << rng.randrange(8)
        desc += f", {name} broken"
    return bytes(frame), desc


#: The NVGRE test's enables: encapsulation on (with every check, with some off), and off.
NVGRE_ENABLE_SETS = [ChecksumEnables(encap=True),
                     ChecksumEnables(encap=True, rx_udp_ipv4=False, rx_tcp_ipv6=False),
                     ChecksumEnables(encap=True, rx_ipv4_checksum=False, rx_udp_ipv6=False),
                     ChecksumEnables(encap=False)]


def set_enables(dut, enables):
    """Drive the ``enables`` port: one bit per name, in ``model.checksum.RX_ENABLE_NAMES``
    order from bit 0."""
    dut.enables.value = common.enables_value(enables)


class TB(common.StreamTB):
    """TxChecksum or RxChecksum (``dut._name``: ``txcsum`` or ``rxcsum``) between a frame
    source on ``s_axis`` and a frame sink on ``m_axis``."""

    def __init__(self, dut):
        super().__init__(dut)
        self.unit = dut._name
        self.src = self.source("s_axis")
        self.out = self.sink("m_axis")

    @classmethod
    async def start(cls, dut, rng: random.Random | None = None, *, idle=False,
                    backpressure=False) -> TB:
        tb = cls(dut)
        tb.set_pauses(tb.src, idle, rng)
        tb.set_pauses(tb.out, backpressure, rng)
        if tb.unit == "rxcsum":
            set_enables(dut, ChecksumEnables())
        else:
            dut.encap.value = 1     # tx_fill's default
        await tb.reset()
        return tb

    def send(self, frame: bytes, user: int = 0):
        """A frame with ``user`` in its first beat's ``tuser`` (TX per-frame info)."""
        self.src.send_nowait(AxiStreamFrame(
            frame, tuser=common.first_beat_user(len(frame), self.width, user)))

    async def frame(self) -> tuple[bytes, list[int]]:
        """The next output frame and each of its beats' ``tuser``."""
        return common.beats(await self.out.recv(compact=False), self.width, "output frame")


async def run_tx(tb: TB, rng, count):
    cases = [tx_case(rng) for _ in range(count)]
    beats = sum(common.beats_of(len(f), tb.width) for f, _ in cases)
    for frame, info in cases:
        tb.send(frame, nbl.TxUser.for_frame(frame, info))

    async def check():
        for i, (frame, info) in enumerate(cases):
            got, _ = await tb.frame()
            want = tx_fill(frame, info)
            assert got == want, (f"frame {i} ({len(frame)} bytes, info {info}): first "
                                 f"difference at byte "
                                 f"{next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")
            common.tally(frame)

    await tb.guard(check(), "TX frames", 8 * beats + 5000)
    await tb.settle()


async def run_rx(tb: TB, rng, count, enable_sets=RX_ENABLE_SETS, case=rx_case):
    for enables in enable_sets:
        set_enables(tb.dut, enables)
        frames = [case(rng) for _ in range(-(-count // len(enable_sets)))]
        beats = sum(common.beats_of(len(f), tb.width) for f in frames)
        for frame in frames:
            tb.send(frame)

        async def check():
            for i, frame in enumerate(frames):
                got, users = await tb.frame()
                assert got == frame, f"frame {i}: bytes changed"
                flags = nbl.RxUser.unpack(users[-1])[0]
                want = rx_validate(frame, enables=enables)
                assert flags == want, f"frame {i} ({len(frame)} bytes): RTL {flags}, model {want}"
                common.tally(frame)

        await tb.guard(check(), "RX frames", 8 * beats + 5000)
    await tb.settle()


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_traffic(dut, idle, backpressure):
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    count = common.frames(200)
    tb = await TB.start(dut, rng, idle=idle, backpressure=backpressure)
    if tb.unit == "txcsum":
        await run_tx(tb, rng, count)
    else:
        await run_rx(tb, rng, count)


#: Supplemental word fields a TX NVGRE case may get wrong, and how.
_WRONG_OFFSETS = {
    "InnerFrameOffset": lambda v, rng: (v + rng.choice([-4, -2, 2, 4, 14])) & 0xFF,
    "TransportIpHeaderRelativeOffset": lambda v, rng: (v + rng.choice([-4, 4, 8])) & 0x3F,
    "TcpHeaderRelativeOffset": lambda v, rng: (v + rng.choice([-8, 4, 8, 20])) & 0x3FF,
    "IsInnerIPv6": lambda v, rng: v ^ 1,
    "TcpOptionsPresent": lambda v, rng: v ^ 1,
}


def tx_nvgre_case(rng: random.Random):
    """A TX frame of the NVGRE mix, its checksum word, its supplemental word, and whether
    scapy must find every checksum of the model's output right.

    Mostly a ``nvgre_frames.random_nvgre`` frame prepared by ``transport_nvgre`` (every
    outer/inner IPv4/IPv6 mix, TCP, UDP, ICMP, inner fragments, GRE checksum/key/sequence,
    VLAN outside, IP/TCP options, IPv6 options headers, inner UDP checksums of 0): as
    prepared (scapy-checked), with EncapsulatedPacketOffsetsValid clear, a wrong offset, a
    random checksum word, or IsEncapsulatedPacket clear; else the frames of
    :func:`nvgre_rx_case` (GRE that is not NVGRE, the parser's corners) with
    IsEncapsulatedPacket set over a plain word, or any words at all."""
    r = rng.random()
    if r < 0.7:
        udp_zero = rng.random() < 0.1
        f = nvgre_frames.random_nvgre(rng, max_payload=rng.choice([0, 60, 600, 1400]),
                                      **({"l4": "udp", "udp_zero_sum": True} if udp_zero
                                         else {}))
        nv = transport_nvgre.nvgre_of(f.frame)
        frame, info, supp = transport_nvgre.prepare_checksum(f.frame, nv)
        roll = rng.random()
        if roll < 0.5:
            return frame, info, supp, True
        if roll < 0.6:
            supp = dataclasses.replace(supp, EncapsulatedPacketOffsetsValid=0)
        elif roll < 0.8:
            name = rng.choice(sorted(_WRONG_OFFSETS))
            supp = dataclasses.replace(supp, **{name: _WRONG_OFFSETS[name](
                getattr(supp, name), rng)})
        elif roll < 0.9:
            info = nbl.ChecksumTx.from_int(rng.getrandbits(5))
        else:
            supp = dataclasses.replace(supp, IsEncapsulatedPacket=0)
        return frame, info, supp, False
    frame = nvgre_rx_case(rng)[0]
    if rng.random() < 0.5:
        frame, info = prepare_checksum(frame, ChecksumEnables())
    else:
        info = nbl.ChecksumTx.from_int(rng.getrandbits(5) | (rng.randrange(1024) << 16))
    supp = nbl.SendSupplemental.from_int(rng.getrandbits(28) | 1 if rng.random() < 0.5
                                         else rng.getrandbits(32))
    return frame, info, supp, False


def tx_nvgre_sweep(rng: random.Random):
    """Every outer/inner IPv4/IPv6 mix with inner TCP and UDP (UDP also with a checksum that
    computes to 0), GRE with and without checksum, key and sequence number, VLAN outside and
    IP/TCP options on every other one: prepared by the transport, supplemental word right
    (scapy-checked) and then, for each, with one offset wrong."""
    cases = []
    for i, (outer_v6, inner_v6, l4, c, ks) in enumerate(itertools.product(
            (False, True), (False, True), ("tcp", "udp", "udp0"), (False, True),
            (False, True))):
        f = nvgre_frames.random_nvgre(
            rng, max_payload=300, outer_v6=outer_v6, inner_v6=inner_v6,
            l4=l4[:3], udp_zero_sum=l4 == "udp0", gre_checksum=c,
            key=rng.getrandbits(32) if ks else None, seq=rng.getrandbits(32) if ks else None,
            vlan=bool(i & 1), **({} if i & 2 else {"outer_ip_options": (),
                                                  "inner_ip_options": (), "tcp_options": ()}))
        frame, info, supp = transport_nvgre.prepare_checksum(
            f.frame, transport_nvgre.nvgre_of(f.frame))
        cases.append((frame, info, supp, True))
        name = rng.choice(sorted(_WRONG_OFFSETS))
        cases.append((frame, info, dataclasses.replace(supp, **{name: _WRONG_OFFSETS[name](
            getattr(supp, name), rng)}), False))
    return cases


async def run_tx_nvgre(tb: TB, rng, count):
    """NVGRE TX frames (:func:`tx_nvgre_sweep`, :func:`tx_nvgre_case`) with the encapsulated
    offload on and then off, against ``model.checksum.tx_fill`` byte for byte; scapy checks
    every checksum (outer and inner IPv4, inner TCP/UDP, GRE) of the prepared frames' output
    with the offload on."""
    scapy_checked = 0
    for encap in (True, False):
        tb.dut.encap.value = int(encap)
        cases = tx_nvgre_sweep(rng) + [tx_nvgre_case(rng) for _ in range(count // 2)]
        for frame, info, supp, _ in cases:
            tb.send(frame, nbl.TxUser.for_frame(frame, info, 0, supp))

        async def check():
            nonlocal scapy_checked
            for i, (frame, info, supp, scapy) in enumerate(cases):
                got, _ = await tb.frame()
                want = tx_fill(frame, info, supp, encap=encap)
                assert got == want, (
                    f"NVGRE frame {i} (encap {encap}, {len(frame)} bytes, {info}, {supp}): "
                    f"first difference at byte "
                    f"{next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), None)}")
                if scapy and encap:
                    assert nvgre_frames.scapy_ok(got), f"NVGRE frame {i}: scapy disagrees"
                    scapy_checked += 1
                common.tally(frame)

        beats = sum(common.beats_of(len(f), tb.width) for f, *_ in cases)
        await tb.guard(check(), "TX NVGRE frames", 8 * beats + 5000)
    assert scapy_checked > 0
    tb.dut._log.info(f"TX NVGRE: {scapy_checked} frames checked by scapy")
    await tb.settle()


@cocotb.test()
@cocotb.parametrize(backpressure=[False, True])
async def nvgre(dut, backpressure):
    """NVGRE frames with source idles: RX (:func:`nvgre_rx_case`) under every
    ``NVGRE_ENABLE_SETS`` against ``rx_validate`` bit for bit; TX (:func:`tx_nvgre_case`,
    :func:`run_tx_nvgre`) against ``tx_fill`` byte for byte, encapsulated offload on and off."""
    rng = random.Random(common.seed() * 2 + backpressure + 3)
    count = max(40, common.frames(200))
    tb = await TB.start(dut, rng, idle=True, backpressure=backpressure)
    if tb.unit == "txcsum":
        await run_tx_nvgre(tb, rng, count)
    else:
        await run_rx(tb, rng, count, NVGRE_ENABLE_SETS, lambda r: nvgre_rx_case(r)[0])


@cocotb.test()
async def line_rate(dut):
    """Back-to-back 1500-byte frames, no idles, no backpressure: the input never stalls
    once the first frame is in, and the output is busy every cycle between its first and last
    beat."""
    width, unit = common.params()["width"], dut._name
    rng = random.Random(common.seed())
    tb = await TB.start(dut, rng)
    frames = []
    for _ in range(40):
        frame = sized_frame(rng, 1500)
        if unit == "txcsum":
            frame, info = prepare_checksum(frame, ChecksumEnables())
            frames.append((frame, nbl.TxUser.for_frame(frame, info)))
        else:
            frames.append((frame, 0))
    beats = sum(common.beats_of(len(f), width) for f, _ in frames)
    meter = tb.meter(tb.out).start()
    for frame, user in frames:
        tb.send(frame, user)

    async def check():
        for i, (frame, user) in enumerate(frames):
            got, users = await tb.frame()
            if unit == "txcsum":
                assert got == tx_fill(frame, nbl.ChecksumTx.from_int(user & 0xFFFFFFFF)), \
                    f"frame {i}: bytes differ from the model's"
            else:
                assert got == frame, f"frame {i}: bytes changed"
                assert nbl.RxUser.unpack(users[-1])[0] == rx_validate(frame), f"frame {i}"

    await tb.guard(check(), "line-rate frames", 20 * beats)
    meter.stop()
    ratio = meter.beats / meter.span
    dut._log.info(f"line rate: {meter.beats} beats in {meter.span} cycles = {ratio:.4f} of W/8")
    assert meter.beats == beats
    assert ratio >= 0.95, f"output ran at {ratio:.3f} of line rate"
