"""Header parser: the RTL twin of ``nicoffload.model.parse``.

:class:`FrameParser` passes every frame through unchanged (behind a skid FIFO) and emits one
:func:`HEADERS_LAYOUT` record per frame, in frame order, that says what
``model.parse.parse(frame)`` says: the same walk, the same limits, the same order of checks,
the same ``ParseError`` codes; and what ``model.nvgre.follow(frame)`` says of an NVGRE frame
(the ``NVGRE_LAYOUT`` fields of the record).

Structure::

    s_axis ─┬───────────────────────────────────────────────► skid FIFO ───────────────► m_axis
            └─► capture ─► hand-off ─► walk ─► read ─► measure ─► judge ─► decide ─► record FIFO
                window      (L2)       │ ▲   (one header per cycle, each stage)     └► m_headers
                                     inner walk (GRE: NVGRE)

Each stage is a component, composed in :meth:`FrameParser.elaborate`: ``capture.py``
(:class:`CaptureWindow`, :class:`L2Decode`), ``window.py`` (:class:`WindowStore`, the window's
bytes in memory), ``inner.py`` (:class:`InnerWalk`), ``walk.py`` (:class:`HandOff`, :class:`ExtensionSteps`, :class:`HeaderWalk`,
:class:`StepRead`), ``checks.py`` (:class:`Measure`, :class:`Judge`, :class:`Decide`); the
stage registers behind the walk are ``data.StructLayout`` payloads of always-ready streams
(``layouts.py``). Each part can be simulated alone (``tests/test_parse_parts.py``).

No clock cycle both reads at a variable offset and decides anything from what it read: the
walk only follows the header chain, and the checks come after it, one stage per kind of work.

Capture
    The first ``MAX_PARSE_BYTES`` (256) bytes of each frame are written, beat by beat, into the
    capture bank of the window memory (two banks, one beat per row), with the number of bytes
    captured and whether the frame ended inside the window. The window is complete on the
    frame's last beat or on its 256th byte; later beats of the frame only go to the skid FIFO.
    As each beat is written, what the walk needs of every position at once is kept in
    registers with it: the comparisons the L2 decode makes with constants (byte 12 == 0x81,
    ...) and with the frame length, the bytes an IP header can span (14..39), and the fields
    of an extension header at each position (Next Header, length, fragment or not).
Hand-off (one cycle)
    When the walk of the previous frame is on its last header (or the walk is idle), the walk
    takes the complete window: the memory banks swap and those registers are copied, so the
    next frame captures while this one is walked (double buffering). In the same cycle the L2
    header (fixed offsets: up to two tags and LLC/SNAP in bytes 12..29) is decoded from the
    flags, giving the error code or the IP header offset ``l3``, one of five; and the step
    from an IP header at each of the five offsets (where an IPv4 header ends, what follows
    IPv4 or IPv6) is worked out from the captured bytes 14..39. The hand-off's registers
    load in every cycle the walk's frame needs them no more (a flip-flop of the walk's, 1
    whenever it takes), and the capture's write enables and the input's ``ready`` hang on a
    flip-flop ``free`` (``~full | take``, worked out a cycle ahead): the walk's ``take``
    itself drives a few registers only.
Walk (a cycle per header, two per extension header; nothing but where the next header is)
    Every header offset the model can reach is ``2 mod 4`` (the Ethernet header is 14 bytes,
    tags 4, LLC/SNAP 8, and IPv4/IPv6/extension header lengths are multiples of 4), so the walk
    keeps a position ``k`` (offset ``4k + 2``). Its steps: ``L3`` (the IP header; the hand-off
    prepared the step), ``EXT`` (an IPv6 extension header) and ``L4`` (TCP or UDP; always the
    last step). For ``EXT`` the cycle after the hand-off works out, for an extension header at
    every position and each of the three length rules (Fragment, AH, the rest), whether the
    walk goes on to another extension header or to TCP/UDP and at which position; an EXT
    step then takes two cycles: a mux over those registers by ``k`` into registers, then a
    choice by the length rule (the 37-way mux and the choice in one cycle limited the clock
    to about 98 MHz on an ECP5 at W=64). The walk
    makes none of the model's checks: it follows the chain as the model does while the model
    finds no error, and so visits every header the model visits. It stops after L4, when the
    next protocol is neither an extension header nor TCP/UDP, after a fragment, after an
    extension header that ends past byte 248 (``model.MAX_EXT_END``: the model fails there or
    before, EXT_TOO_LONG). A frame whose L2 failed is one step.
Inner walk (NVGRE; ``inner.py``)
    When the outer IP headers lead to GRE (protocol 47, not a fragment) the walk starts the
    inner walk at the GRE header and waits for it, holding the window; the inner walk owns
    the window memory's read address meanwhile. It walks GRE, the inner L2, IP and extension
    headers and TCP/UDP, two cycles a header (a read, then every check of the model from
    registers), and answers whether the frame is NVGRE and where its inner headers are. The
    answer enters the pipeline below as the frame's last step (``gre``); the judge puts it in
    the record only if the outer walk found no error.
Read, measure, judge, decide (a pipeline behind the walk, one header per cycle)
    Read registers the step's bytes (from the window memory, read at the row of the step's
    position, then a mux over the W / 32 positions of a row) and the sums the checks need.
    The window memory reads from address registers of its own (one per copy), which the walk
    (or the inner walk while it is on) loads a cycle ahead with the row it reads next, as
    it loads its position registers: no logic and no choice between the walks lies between
    a register and the memory's address pins.
    Measure makes every comparison of the model's checks for the step, each a single compare
    of registers (``ip_end`` and ``ip_end`` less the next header's offset come from the step
    before). Judge puts them in the model's order: the step's error, the record fields it sets,
    and whether the walk ends there. Decide merges the steps of a frame into its record,
    ignores any step after the first error (the walk may have gone on past it), and writes the
    record to the record FIFO on the frame's last step. A frame is taken from the capture
    window only with a place for its record in the record FIFO, so nothing behind the walk
    ever waits.

Every variable read is therefore at offsets ``4k + 2`` only: 49 positions for extension
headers, 54 for TCP/UDP. This is checked at elaboration from the model's constants. Bytes
past a frame's end are stale (in the memory and in the registers alike); no step whose
result reaches the record reads them.

Frame length and the deferred IP length check
    The parser knows the frame length only when the frame ends inside the window (at most 256
    bytes). Every check of the model that compares with the frame length needs a length of at
    most 90 bytes except "the datagram runs past the frame" (``BAD_IP_LENGTH``); for a frame
    longer than the window that one check is left to the consumer: ``ip_end_unchecked`` is 1
    and ``ip_end`` is ``l3 + Total Length`` (IPv4) or ``l3 + 40 + Payload Length`` (IPv6). The
    consumer, once it knows the frame length ``n``, replaces the error by ``BAD_IP_LENGTH``
    when ``ip_end_unchecked and ip_end > n`` and the error is 0 or later in the model's order
    than ``BAD_IP_LENGTH`` (every code above ``BAD_IP_LENGTH``; every code below it comes from
    a check made before it). Every check after ``BAD_IP_LENGTH`` compares with ``ip_end`` and
    ``MAX_PARSE_BYTES`` only and reads bytes below 212, so the walk past a deferred check is
    well defined and the final answer is the model's. After such a replacement the fields the
    model leaves ``None`` are meaningless (the walk went on).

Throughput and latency
    The input takes a beat every cycle while the skid FIFO has room, except that the first beat
    of a frame waits while the capture window still holds an earlier frame's window that the
    walk has not taken. The walk of a frame takes S cycles: 1 when L2 failed; else the number
    of headers visited and one more per extension header (IPv4 TCP/UDP: 2; IPv6 TCP/UDP: 2 +
    twice the extension headers), plus one idle
    cycle when the walk stops before an L4 header (a fragment, another protocol, a chain too
    long), since only the L4 step is known to be the last from registers. Back to back, a frame
    of F beats costs max(F, S) cycles: frames of at least S beats never stall the input
    (1500-byte frames at every width, 256-byte frames with at most one extension header at
    W=512), and 64-byte frames at W=512 (F = 1) run at one frame per 2 cycles (IPv4 TCP).
    A record can be taken from ``m_headers`` S + 5 cycles after the window-completing beat was
    taken (hand-off, S walk steps, read, measure, judge, decide into the record FIFO) when the
    walk was idle: 7 for IPv4 TCP, at most 56 (26 steps, 25 of them EXT: the chain of
    8-byte extension headers that reaches byte 254) for a frame that is not GRE.
    A GRE frame adds 4 cycles (start, hand back, the ``gre`` step, and the next window is
    taken a cycle after it, so that the take does not wait on the inner walk) and 2 per header
    of the inner walk, 3 for the inner L2 header: S = 13 for IPv4 in GRE with inner IPv4/TCP
    (16 beats at W=64, so such frames
    of 128 bytes or more stall nothing at W=64; at W=512 small NVGRE frames run at one per S
    cycles), and more with a long inner IPv6 chain (2 cycles per inner extension header
    within the 256-byte window).
"""
from amaranth.hdl import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl

from ..axis import AxisSignature, check_width
from .capture import CaptureWindow, L2Decode
from .checks import Decide, Judge, Measure
from .inner import InnerWalk
from .layouts import HEADERS_LAYOUT, L3_OFFSETS, WINDOW_BYTES
from .walk import ExtensionSteps, HandOff, HeaderWalk, StepRead
from .window import WindowStore

__all__ = ["HEADERS_LAYOUT", "FrameParser", "WINDOW_BYTES", "L3_OFFSETS"]


class FrameParser(wiring.Component):
    """Finds the L2, IP and TCP/UDP headers of every frame, like ``model.parse.parse``.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.
    user_width : int
        Bits of ``tuser``; passed through with every beat, and the first beat's in the record.
    lso_lengths : bool
        The frames are TX host frames whose ``tuser`` is ``nbl.TxUser`` (LSO word in bits
        32..63, the frame length in bits 96..127). A frame with a non-zero LSO word is walked
        with its IPv4 Total Length / IPv6 Payload Length standing for the frame length, as
        ``model.lso`` check 4 walks it; the record is then the model's for that walk, and
        ``ip_end`` never passes the frame (:class:`~.walk.HandOff`). The inner walk of such
        an NVGRE frame takes the inner IP length from the buffer too
        (``model.nvgre.follow(lengths_from_buffer=True)``), and a failed inner walk says the
        LSO drop reason in ``lso_refusal`` (:class:`~.inner.InnerWalk`).
    skid : int or None
        Depth of the skid FIFO in beats. It must hold at least a full window
        (``256 * 8 // W`` beats) or a consumer that waits for a frame's record before taking
        its beats deadlocks; the minimum is the window plus one. Default: the window plus
        ``SKID_MARGIN`` beats, at least the record latency of the longest walk (26 steps: 25
        extension headers of 8 bytes, 56 cycles), so such a
        consumer keeps the input at line rate on frames of a window or more.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, user_width))
        Frames in (no FCS). ``keep`` contiguous from byte 0, full on all but the last beat.
    m_axis : Out(AxisSignature(W, user_width))
        The same beats, unchanged and in order, after the skid FIFO.
    m_headers : Out(stream.Signature(HEADERS_LAYOUT(user_width)))
        One record per frame, in frame order. A frame's record becomes valid without any of
        its beats being taken from ``m_axis`` (so the consumer may take the record first).
    """

    HEADER_FIFO_DEPTH = 8
    #: Beats the default skid FIFO holds past a window: at least the longest record latency.
    SKID_MARGIN = 56

    def __init__(self, width=64, user_width=0, *, lso_lengths=False, skid=None):
        self.width = check_width(width)
        if not isinstance(user_width, int) or user_width < 0:
            raise TypeError(f"user_width must be a non-negative integer, not {user_width!r}")
        self.user_width = user_width
        if lso_lengths and user_width < nbl.TxUser.width():
            raise ValueError(f"lso_lengths needs the {nbl.TxUser.width()}-bit TxUser in tuser")
        self.lso_lengths = lso_lengths
        self.window_beats = WINDOW_BYTES * 8 // width
        if skid is None:
            skid = self.window_beats + self.SKID_MARGIN
        if not isinstance(skid, int) or skid < self.window_beats + 1:
            raise ValueError(f"skid must be at least {self.window_beats + 1} beats (a window "
                             f"plus one) at width {width}, not {skid!r}")
        self.skid = skid
        super().__init__({
            "s_axis": In(AxisSignature(width, user_width)),
            "m_axis": Out(AxisSignature(width, user_width)),
            "m_headers": Out(stream.Signature(HEADERS_LAYOUT(user_width))),
        })

    def elaborate(self, platform):
        m = Module()
        user_width = self.user_width
        layout = HEADERS_LAYOUT(user_width)

        # Skid FIFO: every beat, unchanged. Whether it has room is a flip-flop (``room``),
        # worked out a cycle ahead from a count of the beats it holds, so that the input's
        # ``ready`` is an AND of flip-flops: the FIFO's own ``w_rdy`` compares its level in
        # the cycle, which put two levels of logic in front of every input decision. The
        # FIFO is one deeper than ``skid``, so ``room`` (at most ``skid`` held) implies its
        # ``w_rdy`` (its memory's entries, the output register's left out, below ``skid``).
        beat = self.s_axis.payload
        m.submodules.skid = skid = fifo.SyncFIFOBuffered(width=len(beat.as_value()),
                                                         depth=self.skid + 1)
        held = Signal(range(self.skid + 1))
        room = Signal(init=1)
        m.d.comb += [
            self.m_axis.payload.eq(skid.r_data),
            self.m_axis.valid.eq(skid.r_rdy),
            skid.r_en.eq(self.m_axis.ready),
            skid.w_data.eq(beat.as_value()),
        ]

        # Record FIFO, with a credit per frame the walk has taken: a frame is taken for the
        # walk only with a free place for its record, so the walk and the stages behind it
        # never wait for the record FIFO.
        depth = self.HEADER_FIFO_DEPTH
        m.submodules.records = records = fifo.SyncFIFO(width=layout.size, depth=depth)
        wiring.connect(m, records.r_stream, wiring.flipped(self.m_headers))
        reserved = Signal(range(depth + 1))
        credit = Signal(init=1)         # reserved < depth
        reserved_next = Signal.like(reserved)

        m.submodules.capture = capture = CaptureWindow(self.width, user_width, self.lso_lengths)
        m.submodules.window = window = WindowStore(self.width)
        m.submodules.l2 = l2 = L2Decode()
        m.submodules.hand_off = hand_off = HandOff(user_width, self.lso_lengths)
        m.submodules.ext_steps = ext_steps = ExtensionSteps()
        m.submodules.walk = walk = HeaderWalk()
        m.submodules.inner = inner = InnerWalk(self.width, user_width, self.lso_lengths)
        m.submodules.read = read = StepRead(self.width, user_width)
        m.submodules.measure = measure = Measure(user_width)
        m.submodules.judge = judge = Judge(user_width)
        m.submodules.decide = decide = Decide(user_width)

        accept = Signal()
        pop = self.m_headers.valid & self.m_headers.ready
        held_next = Signal.like(held)
        m.d.comb += held_next.eq(held + accept - (self.m_axis.valid & self.m_axis.ready))
        m.d.sync += [held.eq(held_next), room.eq(held_next < self.skid)]
        m.d.comb += [
            self.s_axis.ready.eq(room & (capture.past | capture.free)),
            accept.eq(self.s_axis.valid & self.s_axis.ready),
            skid.w_en.eq(accept),
            reserved_next.eq(reserved + walk.take - pop),
            capture.beat.eq(beat),
            capture.accept.eq(accept),
            capture.take.eq(walk.take),
            capture.take_allowed_next.eq(walk.hand_off_load_next & (reserved_next < depth)),
            l2.flags.eq(capture.flags),
            hand_off.load.eq(walk.hand_off_load),
            hand_off.capture_info.eq(capture.info),
            hand_off.captured_head.eq(capture.head),
            hand_off.captured_ext_fields.eq(capture.ext_fields),
            hand_off.l2_error.eq(l2.error),
            hand_off.l2_l3.eq(l2.l3),
            hand_off.l2_is_ipv4.eq(l2.is_ipv4),
            hand_off.l2_l3_select.eq(l2.l3_select),
            ext_steps.ext_fields.eq(hand_off.ext_fields),
            walk.window_waiting.eq(capture.full & credit),
            walk.l2_error.eq(l2.error),
            walk.frame_is_ipv4.eq(hand_off.frame.is4),
            walk.l3_position.eq(hand_off.frame.l3[2:]),
            walk.l3_select.eq(hand_off.l3_select),
            walk.l3_steps.eq(hand_off.l3_steps),
            walk.ext_table.eq(ext_steps.table),
            read.frame.eq(hand_off.frame),
            read.l3_headers.eq(hand_off.l3_headers),
            read.window_bank.eq(capture.walk_bank),
            read.l3_select.eq(hand_off.l3_select),
            inner.start.eq(walk.gre_start),
            inner.gre_position.eq(walk.gre_position),
            inner.frame.eq(hand_off.frame),
            inner.l3_headers.eq(hand_off.l3_headers),
            inner.l3_select.eq(hand_off.l3_select),
            inner.rows.eq(window.read.data),
            walk.inner_done.eq(inner.done),
            read.inner.eq(inner.result),
            measure.step_end.eq(read.step_end),
            measure.walk_continues.eq(walk.continues),
        ]
        m.d.sync += [reserved.eq(reserved_next), credit.eq(reserved_next < depth)]
        wiring.connect(m, capture.store, window.write)
        # The window's read address, a cycle ahead (the window's address registers take it):
        # the walk's, or the inner walk's from its start to its end (the walk waits for it
        # then, and reads nothing in the cycle after its end).
        m.d.comb += [
            window.read.bank.eq(read.window.bank),
            window.read.row.eq(Mux(inner.owns_read, inner.next_row, read.window.row)),
            window.read.load.eq(inner.owns_read | read.window.load),
            read.window.data.eq(window.read.data),
        ]
        wiring.connect(m, walk.step, read.walk)
        wiring.connect(m, read.step, measure.step)
        wiring.connect(m, measure.measured, judge.measured)
        wiring.connect(m, judge.judged, decide.judged)
        wiring.connect(m, decide.records, records.w_stream)
        return m
