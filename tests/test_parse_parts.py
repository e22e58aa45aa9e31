"""The parser's components (hdl/parse/) alone, in Amaranth's simulator: quick checks that need
no Verilator build. The whole parser against the model, at every width and with every corner
case, is tb/tb_parse.py (tests/test_parse_rtl.py)."""

import random

import pytest
from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.sim import Simulator

from nicoffload.hdl.parse import FrameParser, HEADERS_LAYOUT, L3_OFFSETS, WINDOW_BYTES
from nicoffload.hdl.parse.capture import CaptureWindow, L2Decode, L2_COMPARISONS, _flag_name
from nicoffload.hdl.parse.checks import Decide
from nicoffload.hdl.parse.layouts import EXT_POSITIONS, HEAD_BYTES, L2_ENDS, PHASE
from nicoffload.hdl.parse.window import WindowStore
from nicoffload.model.parse import ParseError, parse
from nicoffload.tb import traffic
from nicoffload.tb.tb_parse import check_record, directed_ipv6, nvgre_case

CLOCK = 1e-8


def _frames(count, seed=1):
    """Good, malformed and odd frames, and the IPv6 extension-header rules one by one."""
    rng = random.Random(seed)
    frames = [traffic.malformed_frame(rng, case).data or b"\x00"
              for case in traffic.MALFORMED_CASES]
    frames += [frame for frame, _ in directed_ipv6(rng)][::4]
    frames += [traffic.random_frame(rng, max_payload=rng.choice([40, 300])).data
               for _ in range(count)]
    frames += [rng.randbytes(n) for n in (1, 13, 14, 20, 64)]
    return frames


def _beats(frame, width):
    nb = width // 8
    return [frame[i:i + nb] for i in range(0, len(frame), nb)]


def _run(dut, *testbenches, clocked=True):
    """Simulate until every testbench has returned."""
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(CLOCK)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


# --- L2 decode: the flags of a frame in, the model's L2 answer out ---------------------------

def _l2_flags(frame):
    """What the capture would hand the L2 decode for ``frame``, as a dict of flag values."""
    window = frame[:WINDOW_BYTES]
    ops = {"eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}

    def flag(at, op, value):
        if op.endswith("16"):         # a 16-bit field in wire order
            return _flag_name(at, op, value), int(
                at + 1 < len(window) and ops[op[:-2]](window[at] << 8 | window[at + 1], value))
        return _flag_name(at, op, value), int(at < len(window) and ops[op](window[at], value))

    flags = dict(flag(*key) for key in L2_COMPARISONS)
    flags |= {f"short{end}": int(end > len(frame)) for end in L2_ENDS}
    return flags


_L2_ERRORS = {ParseError.RUNT, ParseError.TOO_MANY_VLAN_TAGS, ParseError.L2_TRUNCATED,
              ParseError.NOT_SNAP, ParseError.BAD_LENGTH_TYPE, ParseError.NOT_IP}


def test_l2_decode_against_model():
    dut = L2Decode()
    frames = _frames(60)

    async def tb(ctx):
        for frame in frames:
            for name, value in _l2_flags(frame).items():
                ctx.set(getattr(dut.flags, name), value)
            headers = parse(frame)
            error = headers.error_code if headers.error_code in _L2_ERRORS else 0
            got = ctx.get(dut.error)
            assert got == error, f"{frame.hex()}: L2 error {got}, model {error}"
            if not error:
                assert ctx.get(dut.l3) == headers.l3_offset
                assert ctx.get(dut.l3_select) == 1 << L3_OFFSETS.index(headers.l3_offset)
                assert ctx.get(dut.is_ipv4) == int(frame[headers.l3_offset - 2:
                                                         headers.l3_offset] == b"\x08\x00")
            else:
                assert ctx.get(dut.l3) == 0 and ctx.get(dut.l3_select) == 0

    _run(dut, tb, clocked=False)      # combinational


# --- capture window and window memory ---------------------------------------------------------

@pytest.mark.parametrize("width", [64, 512])
def test_capture_into_window_memory(width):
    """Beats of a frame with idle cycles between them: the window memory holds the bytes, the
    registers what the walk needs of them, until the window is taken; the next frame goes to
    the other bank."""
    class Bench(Elaboratable):
        def __init__(self):
            self.capture = CaptureWindow(width, 8)
            self.store = WindowStore(width)

        def elaborate(self, platform):
            m = Module()
            m.submodules.capture, m.submodules.store = self.capture, self.store
            wiring.connect(m, self.capture.store, self.store.write)
            return m

    bench = Bench()
    capture, store = bench.capture, bench.store
    rng = random.Random(width)
    frames = [rng.randbytes(300), rng.randbytes(70), rng.randbytes(WINDOW_BYTES)]
    nb = width // 8

    async def tb(ctx):
        for number, frame in enumerate(frames):
            for i, chunk in enumerate(_beats(frame, width)):
                while rng.random() < 0.3:           # an idle cycle: garbage on the bus
                    ctx.set(capture.beat.data, rng.getrandbits(width))
                    await ctx.tick()
                ctx.set(capture.beat.data, int.from_bytes(chunk, "little"))
                ctx.set(capture.beat.keep, (1 << len(chunk)) - 1)
                ctx.set(capture.beat.last, i == len(frame[::nb]) - 1)
                ctx.set(capture.beat.user, number + 1)
                ctx.set(capture.accept, 1)
                await ctx.tick()
                ctx.set(capture.accept, 0)
            assert ctx.get(capture.full), "the window is not complete"
            window = frame[:WINDOW_BYTES]
            info = capture.info
            assert ctx.get(info.length) == len(window)
            assert ctx.get(info.ended) == int(len(frame) <= WINDOW_BYTES)
            assert ctx.get(info.user) == number + 1
            head = ctx.get(capture.head).to_bytes(len(HEAD_BYTES), "little")
            assert head == window[HEAD_BYTES[0]:HEAD_BYTES[-1] + 1]
            for entry, position in enumerate(EXT_POSITIONS):
                at = 4 * position + PHASE
                if at + 4 <= len(window):
                    fields = capture.ext_fields[entry]
                    assert ctx.get(fields.next_header) == window[at]
                    assert ctx.get(fields.length) == window[at + 1]
                    assert ctx.get(fields.fragment_high) == int(window[at + 2] != 0)
                    assert ctx.get(fields.fragment_low) == int(window[at + 3] & 0xF9 != 0)
            # Every row of the bank just captured, through the read port.
            bank = ctx.get(capture.store.bank)
            for row in range(len(window[::nb])):
                ctx.set(store.read.bank, bank)
                ctx.set(store.read.row, row)
                ctx.set(store.read.load, 1)
                await ctx.tick()
                got = ctx.get(store.read.data).to_bytes(len(store.read.data) // 8, "little")
                want = window[row * nb:row * nb + len(got)]
                assert got[:len(want)] == want, f"frame {number}: row {row} differs"
            assert ctx.get(capture.free) == 0       # full: nothing is captured
            ctx.set(capture.take_allowed_next, 1)   # the walk can take it next cycle
            await ctx.tick()
            ctx.set(capture.take_allowed_next, 0)
            ctx.set(capture.take, 1)                # the walk takes the window
            assert ctx.get(capture.free) == 1
            await ctx.tick()
            ctx.set(capture.take, 0)
            assert not ctx.get(capture.full)
            assert ctx.get(capture.walk_bank) == bank
            assert ctx.get(capture.store.bank) != bank

    _run(bench, tb)


# --- decide: steps merged into a record, nothing after the first error ----------------------

def test_decide_ignores_steps_after_an_error():
    dut = Decide(8)
    step = dut.judged.payload

    def put(ctx, **fields):
        for name in ("first", "l2_failed", "last", "stop"):
            ctx.set(getattr(step, name), fields.get(name, 0))
        for name, _ in step.sets.shape():
            value = fields.get("fields", {}).get(name)
            ctx.set(getattr(step.sets, name), value is not None)
            ctx.set(getattr(step.fields, name), value or 0)

    async def tb(ctx):
        ctx.set(step.frame.l3, 18)
        ctx.set(step.frame.ended, 1)
        ctx.set(step.frame.user, 0x5A)
        ctx.set(dut.judged.valid, 1)
        # IPv4 header: its fields; TCP header: an error, the walk's end; a step the walk took
        # past the error (as it may) sets a field that must not reach the record.
        put(ctx, first=1, fields={"is_ipv4": 1, "ip_header_len": 20, "l4": 38, "l4_proto": 6})
        assert not ctx.get(dut.records.valid)
        await ctx.tick()
        put(ctx, stop=1, fields={"error": ParseError.L4_TRUNCATED})
        await ctx.tick()
        put(ctx, last=1, fields={"l4_header_len": 20, "l4_end": 100})
        assert ctx.get(dut.records.valid)
        record = dut.records.payload
        assert ctx.get(record.error) == ParseError.L4_TRUNCATED
        assert (ctx.get(record.is_ipv4), ctx.get(record.ip_header_len)) == (1, 20)
        assert (ctx.get(record.l4), ctx.get(record.l4_proto)) == (38, 6)
        assert (ctx.get(record.l4_header_len), ctx.get(record.l4_end)) == (0, 0)
        assert (ctx.get(record.l3), ctx.get(record.ip_end_unchecked)) == (18, 0)
        assert ctx.get(record.user) == 0x5A
        await ctx.tick()
        # The next frame, L2 failed: one step, the record is the L2 error alone.
        ctx.set(step.frame.l2_error, ParseError.NOT_IP)
        ctx.set(step.frame.l3, 0)
        put(ctx, first=1, l2_failed=1, last=1, fields={"is_ipv4": 1})
        assert ctx.get(dut.records.valid)
        assert ctx.get(record.error) == ParseError.NOT_IP
        assert ctx.get(record.is_ipv4) == 0 and ctx.get(record.l4_proto) == 0

    _run(dut, tb)


# --- the whole parser, a few frames, in Amaranth's simulator ----------------------------------

@pytest.mark.parametrize("width", [64, 256])
def test_frame_parser_records(width):
    """A few dozen frames back to back through FrameParser: one record per frame, the model's,
    and the beats unchanged."""
    _parser_records(width, _frames(15, seed=width))


@pytest.mark.parametrize("width", [64, 128, 256, 512])
def test_frame_parser_nvgre_records(width):
    """NVGRE and other GRE frames (``tb_parse.nvgre_case``): every NVGRE field the model's."""
    rng = random.Random(width)
    frames = [nvgre_case(rng)[0] for _ in range(120)]
    records = _parser_records(width, frames)
    assert sum(r["is_nvgre"] for r in records) > 30


def _parser_records(width, frames):
    dut = FrameParser(width, 0)
    fields = [(name, field.offset, field.width) for name, field in HEADERS_LAYOUT(0)]
    records, outputs = [], []

    async def source(ctx):
        for frame in frames:
            chunks = _beats(frame, width)
            for i, chunk in enumerate(chunks):
                ctx.set(dut.s_axis.payload.data, int.from_bytes(chunk, "little"))
                ctx.set(dut.s_axis.payload.keep, (1 << len(chunk)) - 1)
                ctx.set(dut.s_axis.payload.last, i == len(chunks) - 1)
                ctx.set(dut.s_axis.valid, 1)
                await ctx.tick().until(dut.s_axis.ready)
        ctx.set(dut.s_axis.valid, 0)

    async def sink(ctx):
        ctx.set(dut.m_headers.ready, 1)
        ctx.set(dut.m_axis.ready, 1)
        data = bytearray()
        budget = 40 * len(frames) + sum(len(f) for f in frames)
        while len(records) < len(frames) or len(outputs) < len(frames):
            budget -= 1
            assert budget, f"{len(records)} records, {len(outputs)} frames out of {len(frames)}"
            if ctx.get(dut.m_headers.valid):
                value = ctx.get(dut.m_headers.payload.as_value())
                records.append({name: (value >> off) & ((1 << w) - 1)
                                for name, off, w in fields})
            if ctx.get(dut.m_axis.valid):
                keep = ctx.get(dut.m_axis.payload.keep)
                data += ctx.get(dut.m_axis.payload.data).to_bytes(width // 8, "little")[
                    :bin(keep).count("1")]
                if ctx.get(dut.m_axis.payload.last):
                    outputs.append(bytes(data))
                    data = bytearray()
            await ctx.tick()

    _run(dut, source, sink)
    assert len(records) == len(frames)
    assert outputs == frames
    for i, (frame, record) in enumerate(zip(frames, records)):
        check_record(i, frame, frame.hex(), 0, record)
    return records
