"""Header parser: the RTL twin of ``nicoffload.model.parse``.

:class:`FrameParser` passes every frame through unchanged (behind a skid FIFO) and emits one
:func:`HEADERS_LAYOUT` record per frame, in frame order, that says what
``model.parse.parse(frame)`` says: the same walk, the same limits, the same order of checks,
the same ``ParseError`` codes.

Structure::

    s_axis ─┬───────────────────────────────────────────────► skid FIFO ───────────────► m_axis
            └─► capture ─► hand-off ─► walk ─► read ─► measure ─► judge ─► decide ─► record FIFO
                window      (L2)       (one header per cycle, each stage)             └► m_headers

No clock cycle both reads at a variable offset and decides anything from what it read: the
walk only follows the header chain, and the checks come after it, one stage per kind of work.

Capture
    The first ``MAX_PARSE_BYTES`` (256) bytes of each frame are written, beat by beat, into the
    capture window, with the number of bytes captured and whether the frame ended inside the
    window. The window is complete on the frame's last beat or on its 256th byte; later beats
    of the frame only go to the skid FIFO. As each beat is written, the comparisons the L2
    decode makes with constants (byte 12 == 0x81, ...) and with the frame length are made and
    kept with it.
Hand-off (one cycle)
    When the walk of the previous frame is on its last header (or the walk is idle), the
    complete capture window is copied into the parse window, so the next frame's window
    captures while this one is walked (double buffering). In the same cycle the L2 header
    (fixed offsets: up to two tags and LLC/SNAP in bytes 12..29) is decoded from those flags,
    giving the error code or the IP header offset ``l3``, one of five; and the step from an IP
    header at each of the five offsets (where an IPv4 header ends, what follows IPv4 or IPv6)
    is worked out from the capture window.
Walk (one header per cycle; nothing but where the next header is)
    Every header offset the model can reach is ``2 mod 4`` (the Ethernet header is 14 bytes,
    tags 4, LLC/SNAP 8, and IPv4/IPv6/extension header lengths are multiples of 4), so the walk
    keeps a position ``k`` (offset ``4k + 2``). Its steps: ``L3`` (the IP header; the hand-off
    prepared the step), ``EXT`` (an IPv6 extension header) and ``L4`` (TCP or UDP; always the
    last step). For ``EXT`` the cycle after the hand-off works out, for an extension header at
    every position and each of the three length rules (Fragment, AH, the rest), whether the
    walk goes on to another extension header or to TCP/UDP and at which position; the walk's
    loop is then a mux over those registers by ``k`` and a choice by the length rule. The walk
    makes none of the model's checks: it follows the chain as the model does while the model
    finds no error, and so visits every header the model visits. It stops after L4, when the
    next protocol is neither an extension header nor TCP/UDP, after a fragment, after an
    extension header at more than ``l3 + 160`` or whose end is past the window (the model
    fails there or before: the chain passes 128 bytes). A frame whose L2 failed is one step.
Read, measure, judge, decide (a pipeline behind the walk, one header per cycle)
    Read registers the step's bytes (a mux over the positions) and the sums the checks need.
    Measure makes every comparison of the model's checks for the step, each a single compare
    of registers (``ip_end`` and ``ip_end`` less the next header's offset come from the step
    before). Judge puts them in the model's order: the step's error, the record fields it sets,
    and whether the walk ends there. Decide merges the steps of a frame into its record,
    ignores any step after the first error (the walk may have gone on past it), and writes the
    record to the record FIFO on the frame's last step. A frame is taken from the capture
    window only with a place for its record in the record FIFO, so nothing behind the walk
    ever waits.

Every variable read is therefore a mux over offsets ``4k + 2`` only: 37 positions for extension
headers, 42 for TCP/UDP. This is checked at elaboration from the model's constants.

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
    of headers visited (IPv4 TCP/UDP: 2; IPv6 TCP/UDP: 2 + extension headers), plus one idle
    cycle when the walk stops before an L4 header (a fragment, another protocol, a chain too
    long), since only the L4 step is known to be the last from registers. Back to back, a frame
    of F beats costs max(F, S) cycles: frames of at least S beats never stall the input
    (1500-byte frames at every width, 256-byte frames with at most two extension headers at
    W=512), and 64-byte frames at W=512 (F = 1) run at one frame per 2 cycles (IPv4 TCP).
    A record can be taken from ``m_headers`` S + 5 cycles after the window-completing beat was
    taken (hand-off, S walk steps, read, measure, judge, decide into the record FIFO) when the
    walk was idle: 7 for IPv4 TCP, at most 23 (18 steps).
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import parse as model

from .axis import AxisSignature, check_width

__all__ = ["HEADERS_LAYOUT", "FrameParser", "WINDOW_BYTES", "L3_OFFSETS"]

WINDOW_BYTES = model.MAX_PARSE_BYTES

#: Every offset at which the model can find the IP header.
L3_OFFSETS = sorted({model.ETH_HEADER_LEN + model.VLAN_TAG_LEN * tags + model.LLC_SNAP_LEN * snap
                     for tags in range(model.MAX_VLAN_TAGS + 1) for snap in (0, 1)})
_PHASE = L3_OFFSETS[0] % 4
assert all(o % 4 == _PHASE for o in L3_OFFSETS), "L3 offsets must share their phase mod 4"
assert _PHASE % 2 == 0

# Extension headers start at l3 + 40 and, while the walk goes on, end within MAX_HEADER_BYTES.
_EXT_OFFSETS = range(L3_OFFSETS[0] + 40, L3_OFFSETS[-1] + 40 + model.MAX_HEADER_BYTES + 1, 4)
# TCP/UDP headers start at l3 + 20 (IPv4) .. l3 + 40 + MAX_HEADER_BYTES (IPv6).
_L4_OFFSETS = range(L3_OFFSETS[0] + 20, L3_OFFSETS[-1] + 40 + model.MAX_HEADER_BYTES + 1, 4)

# Walk positions: offset 4k + _PHASE.
_POSITIONS = WINDOW_BYTES // 4
_EXT_POS = range(_EXT_OFFSETS[0] // 4, _EXT_OFFSETS[-1] // 4 + 1)
_L4_POS = range(_L4_OFFSETS[0] // 4, _L4_OFFSETS[-1] // 4 + 1)
# The walk stops after an extension header at more than l3 + _EXT_STOP: one more header of at
# least 8 bytes takes the chain past MAX_HEADER_BYTES (EXT_TOO_LONG, or an earlier error).
_EXT_STOP = 40 + model.MAX_HEADER_BYTES - 8
assert _EXT_STOP % 4 == 0

# The frame lengths the L2 decode compares with: "the frame ends before byte e".
_L2_ENDS = sorted({model.ETH_HEADER_LEN}
                  | {12 + model.VLAN_TAG_LEN * t + model.VLAN_TAG_LEN + 2
                     for t in range(model.MAX_VLAN_TAGS)}
                  | {14 + model.VLAN_TAG_LEN * t + model.LLC_SNAP_LEN
                     for t in range(model.MAX_VLAN_TAGS + 1)})

_GENERIC_EXT = sorted(model._GENERIC_EXT)
_UNFOLLOWABLE_EXT = sorted(model._UNFOLLOWABLE_EXT)
_WALKED_EXT = sorted(set(_GENERIC_EXT) | {model._AH, model._FRAGMENT})
_L4_PROTOS = (model.IPPROTO_TCP, model.IPPROTO_UDP)


def HEADERS_LAYOUT(user_width=0):
    """The record :class:`FrameParser` emits per frame; ``model.parse.Headers`` in bits.

    Fields the model leaves ``None`` (the walk stopped before them) are 0.

    ==================  =====  ==================================================================
    field               bits   model
    ==================  =====  ==================================================================
    error               5      ``error_code`` (``ParseError``), 0 when None
    is_ipv4, is_ipv6    1, 1   ``ip_version == 4`` / ``== 6``
    l3                  8      ``l3_offset``
    ip_header_len       8      ``ip_header_len``
    ip_end              17     ``ip_end``; also set when the IP length check was deferred
    ip_end_unchecked    1      (no twin) the frame is longer than the 256-byte window, so
                               ``ip_end <= len(frame)`` is the consumer's to check
    is_fragment         1      ``is_fragment``
    l4                  9      ``l4_offset``
    l4_proto            8      ``l4_proto``
    l4_header_len       7      ``l4_header_len``
    l4_end              17     ``l4_end``
    pseudo_dst          9      ``pseudo_dst_offset``
    user                user   (no twin) ``tuser`` of the frame's first beat
    ==================  =====  ==================================================================
    """
    fields = {
        "error": 5, "is_ipv4": 1, "is_ipv6": 1, "l3": 8, "ip_header_len": 8, "ip_end": 17,
        "ip_end_unchecked": 1, "is_fragment": 1, "l4": 9, "l4_proto": 8, "l4_header_len": 7,
        "l4_end": 17, "pseudo_dst": 9,
    }
    if user_width:
        fields["user"] = user_width
    return data.StructLayout(fields)


def _frame_layout(user_width):
    """What the hand-off knows of a frame; it travels with every step of the frame."""
    fields = {
        "l2_error": 5,
        "l3": 8,
        "is4": 1,           # the EtherType was IPv4
        "len": 9,           # bytes in the window
        "ended": 1,         # the frame ended inside the window
    }
    if user_width:
        fields["user"] = user_width
    return data.StructLayout(fields)


# What the walk needs to step from an extension header at a position, for each of the three
# length rules it may have (Fragment: 8 bytes; AH: (len + 2) * 4; the rest: (len + 1) * 8):
# whether it goes on to another extension header or to TCP/UDP, and where that is.
_LOOP_AT = data.StructLayout({
    "ext_frag": 1, "ext_ah": 1, "ext_generic": 1,   # goes on to an extension header
    "l4_frag": 1, "l4_ah": 1, "l4_generic": 1,      # goes on to TCP/UDP
    "frag": 1,          # the next header is a Fragment header
    "ah": 1,            # the next header is AH
    "next_ah": 6,       # the next position (when the walk goes on) if this is AH
    "next_generic": 6,  # ... if a generic header
})

# The step from the IP header at an offset: IPv4 (to TCP/UDP at IHL * 4), IPv6 (to l3 + 40).
_L3_AT = data.StructLayout({
    "next4": 6,         # IPv4: the position past the header
    "l4_4": 1,          # IPv4: TCP/UDP follows (not a fragment)
    "ext6": 1, "l4_6": 1, "frag6": 1, "ah6": 1,     # IPv6: what the Next Header is
})

# One step of the walk, registered: what the read stage hands to the measure stage.
_STEP_LAYOUT = lambda frame: data.StructLayout({
    "valid": 1,
    "l2f": 1, "l3": 1, "ext": 1, "l4": 1,   # the kind of step (one-hot)
    "off": 8,           # offset of the header
    "end": 12,          # offset past it (IP header length, extension header length)
    "ip": 80,           # its bytes 0..9 (L3)
    "b": 48,            # its bytes 0..5 (EXT, L4)
    "off8": 9,          # off + 8
    "room": signed(11),     # L3: len - l3 (bytes of the frame from the IP header on)
    "room6": signed(11),    # L3: len - l3 - 40
    "l3_40": 9,         # l3 + 40
    "l3_168": 9,        # l3 + 40 + MAX_HEADER_BYTES
    "tcp_doff": 4,      # byte 12, high nibble (L4)
    "frame": frame,
})


def _byte(vec, i):
    """Byte ``i`` of a little-endian byte vector (byte 0 = bits 0..7); 0 past its end."""
    if 8 * (i + 1) > len(vec):
        return C(0, 8)
    return vec[8 * i:8 * i + 8]


def _be(vec, i, n):
    """The ``n`` bytes of ``vec`` from byte ``i`` as a big-endian number (wire order)."""
    return Cat(*[_byte(vec, i + k) for k in reversed(range(n))])


def _member(value, values):
    return Cat(*[value == v for v in values]).any()


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
        ``model.lso`` check 4 walks it (``_parse_with_buffer_length``); the record is then
        the model's for that walk, and ``ip_end`` never passes the frame.
    skid : int or None
        Depth of the skid FIFO in beats. It must hold at least a full window
        (``256 * 8 // W`` beats) or a consumer that waits for a frame's record before taking
        its beats deadlocks; the minimum is the window plus one. Default: the window plus 32
        beats, more than the record latency of the longest walk (18 steps, 23 cycles), so such a
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
            skid = self.window_beats + 32
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
        w, nbytes, wb = self.width, self.width // 8, self.window_beats
        uw = self.user_width
        layout = HEADERS_LAYOUT(uw)
        frame_layout = _frame_layout(uw)

        # --- skid FIFO: every beat, unchanged ---------------------------------------------
        beat = self.s_axis.payload
        beat_bits = len(beat.as_value())
        m.submodules.skid = skid = fifo.SyncFIFOBuffered(width=beat_bits, depth=self.skid)
        m.d.comb += [
            self.m_axis.payload.eq(skid.r_data),
            self.m_axis.valid.eq(skid.r_rdy),
            skid.r_en.eq(self.m_axis.ready),
            skid.w_data.eq(beat.as_value()),
        ]

        # --- record FIFO, with a credit per frame the walk has taken ----------------------
        depth = self.HEADER_FIFO_DEPTH
        m.submodules.records = records = fifo.SyncFIFO(width=layout.size, depth=depth)
        m.d.comb += [
            self.m_headers.payload.eq(records.r_data),
            self.m_headers.valid.eq(records.r_rdy),
            records.r_en.eq(self.m_headers.ready),
        ]
        # A frame is taken for the walk only with a free place for its record, so the walk
        # and the stages behind it never wait for the record FIFO.
        load = Signal()                 # the walk takes the capture window this cycle
        reserved = Signal(range(depth + 1))
        credit = Signal(init=1)         # reserved < depth
        pop = self.m_headers.valid & self.m_headers.ready
        reserved_next = Signal.like(reserved)
        m.d.comb += reserved_next.eq(reserved + load - pop)
        m.d.sync += [reserved.eq(reserved_next), credit.eq(reserved_next < depth)]

        # --- capture window ---------------------------------------------------------------
        cap = Signal(8 * WINDOW_BYTES)
        cap_full = Signal()             # a complete window waits for the walk
        cap_len = Signal(range(WINDOW_BYTES + 1))
        cap_short_at = {end: Signal(name=f"cap_short_{end}") for end in _L2_ENDS}
        cap_ended = Signal()            # the frame ended inside the window
        cap_user = Signal(max(uw, 1))
        index = Signal(range(wb + 1))   # beat index in the frame; wb: past the window

        bypass = index == wb
        accept = Signal()
        m.d.comb += [
            self.s_axis.ready.eq(skid.w_rdy & (bypass | ~cap_full | load)),
            accept.eq(self.s_axis.valid & self.s_axis.ready),
            skid.w_en.eq(accept),
        ]

        count = Signal(range(nbytes + 1))   # bytes in this beat (keep is contiguous)
        for i in range(nbytes):
            with m.If(beat.keep[i]):
                m.d.comb += count.eq(i + 1)

        # The slot at ``index`` holds nothing of the window until a beat is taken into it, so
        # it is written whenever the window is free, taken or not (a wide write enable that
        # does not wait for ``valid`` and ``ready``).
        free = ~cap_full | load
        for k in range(wb):
            with m.If((index == k) & free):
                m.d.sync += cap[k * w:(k + 1) * w].eq(beat.data)
                if k == 0 and uw:
                    m.d.sync += cap_user.eq(beat.user)

        with m.If(load):
            m.d.sync += cap_full.eq(0)
        with m.If(accept):
            with m.If(beat.last):
                m.d.sync += index.eq(0)
            with m.Elif(~bypass):
                m.d.sync += index.eq(index + 1)
            for k in range(wb):
                with m.If(index == k):
                    # The L2 decode's length comparisons are made here, one cycle early.
                    shorts = [cap_short_at[end].eq(beat.last & (end > k * nbytes + count))
                              for end in _L2_ENDS]
                    if k == wb - 1:
                        m.d.sync += [cap_full.eq(1), cap_len.eq(k * nbytes + count),
                                     cap_ended.eq(beat.last), *shorts]
                    else:
                        with m.If(beat.last):
                            m.d.sync += [cap_full.eq(1), cap_len.eq(k * nbytes + count),
                                         cap_ended.eq(1), *shorts]

        # --- L2, decoded from the capture window at hand-off ------------------------------
        # It reads bytes 12..29 only through comparisons with constants, which are made as the
        # bytes are captured (one flag register per byte, comparison and constant, written
        # with the byte's slot), so the hand-off only combines flags.
        byte_flags = {}

        def cap_byte(at, op, value):
            """Flag: byte ``at`` of the window ``op`` (eq, lt, le) ``value``."""
            key = (at, op, value)
            if key not in byte_flags:
                byte_flags[key] = Signal(name=f"cap_byte{at}_{op}_{value:02x}")
            return byte_flags[key]

        def cap_eq(at, value, n=2):         # the n bytes from ``at`` == value (wire order)
            return Cat(*[cap_byte(at + i, "eq", (value >> 8 * (n - 1 - i)) & 0xFF)
                         for i in range(n)]).all()

        def cap_le16(at, value):            # the 16-bit field at ``at`` <= value
            hi, lo = value >> 8, value & 0xFF
            return cap_byte(at, "lt", hi) | (cap_byte(at, "eq", hi) & cap_byte(at + 1, "le", lo))

        l2_error = Signal(5)
        l2_sel = Signal(len(L3_OFFSETS))    # one-hot: the IP header is at L3_OFFSETS[i]
        l2_l3 = Signal(8)
        l2_is4 = Signal()
        for i, off in enumerate(L3_OFFSETS):
            with m.If(l2_sel[i]):
                m.d.comb += l2_l3.eq(off)

        def cap_short(end):     # the frame ends before byte ``end`` (model: ``end > n``)
            return cap_short_at[end]

        def fail_l2(code):
            m.d.comb += l2_error.eq(code)

        def l2_ip(off, type_at):
            sel = l2_sel[L3_OFFSETS.index(off)]
            with m.If(cap_eq(type_at, model.ETH_P_IPV4)):
                m.d.comb += [sel.eq(1), l2_is4.eq(1)]
            with m.Elif(cap_eq(type_at, model.ETH_P_IPV6)):
                m.d.comb += sel.eq(1)
            with m.Else():
                fail_l2(model.ParseError.NOT_IP)

        def l2_after_type(off):             # ``off``: just past the length/type field
            type_at = off - 2
            with m.If(cap_le16(type_at, 1500)):
                snap_ok = cap_eq(off, 0xAAAA03, 3) & Cat(*[cap_eq(off + 3, oui, 3)
                                                           for oui in model.SNAP_OUIS]).any()
                with m.If(cap_short(off + model.LLC_SNAP_LEN)):
                    fail_l2(model.ParseError.L2_TRUNCATED)
                with m.Elif(~snap_ok):
                    fail_l2(model.ParseError.NOT_SNAP)
                with m.Else():
                    l2_ip(off + model.LLC_SNAP_LEN, off + 6)
            with m.Elif(cap_le16(type_at, 0x05FF)):
                fail_l2(model.ParseError.BAD_LENGTH_TYPE)
            with m.Else():
                l2_ip(off, type_at)

        def l2_tags(tags):                  # the length/type field at 12 + 4 * tags
            off = 12 + model.VLAN_TAG_LEN * tags
            with m.If(Cat(*[cap_eq(off, tpid) for tpid in model.VLAN_TPIDS]).any()):
                if tags == model.MAX_VLAN_TAGS:
                    fail_l2(model.ParseError.TOO_MANY_VLAN_TAGS)
                else:
                    with m.If(cap_short(off + model.VLAN_TAG_LEN + 2)):
                        fail_l2(model.ParseError.L2_TRUNCATED)
                    with m.Else():
                        l2_tags(tags + 1)
            with m.Else():
                l2_after_type(off + 2)

        with m.If(cap_short(model.ETH_HEADER_LEN)):
            fail_l2(model.ParseError.RUNT)
        with m.Else():
            l2_tags(0)

        ops = {"eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}
        for (at, op, value), flag in byte_flags.items():
            with m.If((index == at // nbytes) & free):
                m.d.sync += flag.eq(ops[op](beat.data[8 * (at % nbytes):][:8], value))

        # --- the walk ---------------------------------------------------------------------
        win = Signal(8 * WINDOW_BYTES)
        frame = Signal(frame_layout)    # the frame being walked, as the hand-off left it
        l3_sel = Signal(len(L3_OFFSETS))    # one-hot: frame.l3 == L3_OFFSETS[i]
        l3_pos = frame.l3[2:]               # position of the IP header
        # The kind of this cycle's step, one-hot; none: idle.
        s_l2f, s_l3, s_ext, s_l4 = Signal(), Signal(), Signal(), Signal()
        # Position of this step's header: offset 4k + 2. Each wide mux at the position has its
        # own copy of it, made different (inverted, reset) so that synthesis does not merge them.
        k = Signal(range(_POSITIONS), reset_less=True)              # the walk's loop
        k_read_n = Signal(range(_POSITIONS), reset_less=True)       # bytes 0..3
        k_read = ~k_read_n
        k_far = Signal(range(_POSITIONS))                           # bytes 4, 5, 12; the end
        # Its length rule: Fragment (8 bytes), AH, else generic.
        cls_frag, cls_ah = Signal(reset_less=True), Signal(reset_less=True)

        # Offset 4j + 2 + i for j < _POSITIONS: the window as 4-byte words at the positions.
        def word(j):
            return Cat(*[_byte(win, 4 * j + _PHASE + i) for i in range(4)])

        def select(words, index):
            return Cat(*words).word_select(index, len(words[0]))

        # L3: ten bytes at l3, one of five offsets.
        ip = Signal(80)
        for i, off in enumerate(L3_OFFSETS):
            with m.If(l3_sel[i]):
                m.d.comb += ip.eq(win[8 * off:8 * (off + 10)])

        # EXT and L4: bytes 0..3, 4..5 and 12 at position k (0 where no such header can be).
        pos = k_read
        gen = Signal(32)
        gen_45 = Signal(16)
        gen_doff = Signal(4)
        ext_or_l4 = set(_EXT_POS) | set(_L4_POS)
        m.d.comb += [
            gen.eq(select([word(j) if j in ext_or_l4 else C(0, 32)
                           for j in range(_POSITIONS)], pos)),
                gen_45.eq(select([word(j + 1)[:16] if j in _L4_POS else C(0, 16)
                              for j in range(_POSITIONS)], k_far)),
            gen_doff.eq(select([word(j + 3)[4:8] if j in _L4_POS else C(0, 4)
                                for j in range(_POSITIONS)], k_far)),
        ]

        # The step from an extension header at every position, worked out from the window one
        # cycle after the hand-off (the first extension header is at the walk's second step),
        # so that the walk's own loop is a mux over these registers and a choice by the length
        # rule, nothing else. The walk stops after a header at more than l3 + _EXT_STOP (one
        # more header takes the chain past MAX_HEADER_BYTES: the model fails there or before),
        # after a fragment, and where the next header would start past the window (the model
        # fails there: EXT_TOO_LONG or before).
        # The next position's bits 6.. (past the window), for the exact end in the step record.
        past_ah = Signal(data.ArrayLayout(4, _POSITIONS))
        past_generic = Signal(data.ArrayLayout(4, _POSITIONS))
        loop_at = Signal(data.ArrayLayout(_LOOP_AT, _POSITIONS))
        for j in _EXT_POS:
            nh, ext_len = _byte(word(j), 0), _byte(word(j), 1)
            frag_field = Cat(_byte(word(j), 3), _byte(word(j), 2))
            n_ah, n_generic = j + 2 + ext_len, j + 2 + 2 * ext_len
            on = l3_pos + _EXT_STOP // 4 >= j
            on_frag = on & ~(frag_field[3:16] != 0) & ~frag_field[0]
            on_ah = on & (n_ah < _POSITIONS)
            on_generic = on & (n_generic < _POSITIONS)
            ext, l4 = _member(nh, _WALKED_EXT), _member(nh, _L4_PROTOS)
            m.d.sync += [
                past_ah[j].eq(n_ah[6:]), past_generic[j].eq(n_generic[6:]),
                loop_at[j].ext_frag.eq(ext & on_frag),
                loop_at[j].ext_ah.eq(ext & on_ah),
                loop_at[j].ext_generic.eq(ext & on_generic),
                loop_at[j].l4_frag.eq(l4 & on_frag),
                loop_at[j].l4_ah.eq(l4 & on_ah),
                loop_at[j].l4_generic.eq(l4 & on_generic),
                loop_at[j].frag.eq(nh == model._FRAGMENT),
                loop_at[j].ah.eq(nh == model._AH),
                loop_at[j].next_ah.eq(n_ah),
                loop_at[j].next_generic.eq(n_generic),
            ]
        here = Signal(_LOOP_AT)
        m.d.comb += here.eq(select([loop_at[j].as_value() for j in range(_POSITIONS)], k))

        # Where the next step reads and what it is: from the IP header (L3), or through the
        # mux above (EXT). Each is the other's don't-care, and a walk that stops (or an L4 or
        # L2 step, or none) has neither ``nxt_ext`` nor ``nxt_l4``; ``k`` and the length rule
        # are don't-cares when the next step is not EXT or L4.
        # The step from the IP header at each of its offsets, worked out at the hand-off from
        # the capture window; the L3 step picks one.
        l3_at = Signal(data.ArrayLayout(_L3_AT, len(L3_OFFSETS)))
        with m.If(load):
            for i, off in enumerate(L3_OFFSETS):
                head = cap[8 * off:8 * (off + 10)]
                frag_field = _be(head, 6, 2)
                fragment = frag_field[13] | (frag_field[0:13] != 0)
                nh = _byte(head, 6)
                m.d.sync += [
                    l3_at[i].next4.eq(off // 4 + _byte(head, 0)[0:4]),
                    l3_at[i].l4_4.eq(_member(_byte(head, 9), _L4_PROTOS) & ~fragment),
                    l3_at[i].ext6.eq(_member(nh, _WALKED_EXT)),
                    l3_at[i].l4_6.eq(_member(nh, _L4_PROTOS)),
                    l3_at[i].frag6.eq(nh == model._FRAGMENT),
                    l3_at[i].ah6.eq(nh == model._AH),
                ]
        l3_here = Signal(_L3_AT)
        for i in range(len(L3_OFFSETS)):
            with m.If(l3_sel[i]):
                m.d.comb += l3_here.eq(l3_at[i])
        l3_k = Signal.like(k)
        l3_ext, l3_l4, l3_frag, l3_ah = Signal(), Signal(), Signal(), Signal()
        with m.If(frame.is4):
            m.d.comb += [l3_k.eq(l3_here.next4), l3_l4.eq(l3_here.l4_4)]
        with m.Else():
            m.d.comb += [
                l3_k.eq(l3_pos + 10),
                l3_ext.eq(l3_here.ext6),
                l3_l4.eq(l3_here.l4_6),
                l3_frag.eq(l3_here.frag6),
                l3_ah.eq(l3_here.ah6),
            ]
        ext_k = Mux(cls_frag, k + 2, Mux(cls_ah, here.next_ah, here.next_generic))
        ext_ext = Mux(cls_frag, here.ext_frag, Mux(cls_ah, here.ext_ah, here.ext_generic))
        ext_l4 = Mux(cls_frag, here.l4_frag, Mux(cls_ah, here.l4_ah, here.l4_generic))
        nxt_k = Signal.like(k)
        nxt_ext, nxt_l4 = Signal(), Signal()
        m.d.comb += [
            nxt_k.eq(Mux(s_l3, l3_k, ext_k)),
            nxt_ext.eq(Mux(s_l3, l3_ext, s_ext & ext_ext)),
            nxt_l4.eq(Mux(s_l3, l3_l4, s_ext & ext_l4)),
        ]
        walking = s_l3 | s_ext          # steps that may or may not be the last
        # Take the next window when this step is known to be the last from registers alone
        # (so ``nxt_ext`` and ``nxt_l4`` are 0 whenever the walk takes a window).
        m.d.comb += load.eq(cap_full & credit & ~walking)
        m.d.sync += [
            s_l2f.eq(load & (l2_error != 0)), s_l3.eq(load & (l2_error == 0)),
            s_ext.eq(nxt_ext), s_l4.eq(nxt_l4),
            k.eq(nxt_k), k_read_n.eq(~nxt_k), k_far.eq(nxt_k),
            cls_frag.eq(Mux(s_l3, l3_frag, here.frag)),
            cls_ah.eq(Mux(s_l3, l3_ah, here.ah)),
        ]
        with m.If(load):
            start = Signal(frame_layout)
            m.d.comb += [
                start.l2_error.eq(l2_error),
                start.l3.eq(l2_l3),         # 0 when L2 failed
                start.is4.eq(l2_is4),
                start.len.eq(cap_len),
                start.ended.eq(cap_ended),
            ]
            if uw:
                m.d.comb += start.user.eq(cap_user)
            m.d.sync += [win.eq(cap), frame.eq(start), l3_sel.eq(l2_sel)]
        if self.lso_lengths:
            self._substitute_lengths(m, win, beat, index == 0, free, load, l2_sel, l2_is4,
                                     l2_error)

        # The exact end of this step's header, as a position: ``nxt_k`` (the walk needs no more
        # than its low bits) and the bits past the window.
        end_past = Signal(4)
        with m.If(s_l3 | cls_frag):
            m.d.comb += end_past.eq(0)
        with m.Elif(cls_ah):                        # (len + 2) * 4 bytes
            m.d.comb += end_past.eq(select([past_ah[j] for j in range(_POSITIONS)], k_far))
        with m.Else():                              # (len + 1) * 8 bytes
            m.d.comb += end_past.eq(select([past_generic[j] for j in range(_POSITIONS)], k_far))

        # --- read: the step's bytes, registered -------------------------------------------
        st = Signal(_STEP_LAYOUT(frame_layout))
        m.d.sync += [
            st.valid.eq(s_l2f | s_l3 | s_ext | s_l4),
            st.l2f.eq(s_l2f), st.l3.eq(s_l3), st.ext.eq(s_ext), st.l4.eq(s_l4),
            st.off.eq(Cat(C(_PHASE, 2), k_read)),
            st.end.eq(Cat(C(_PHASE, 2), nxt_k, end_past)),
            st.ip.eq(ip),
            st.b.eq(Cat(gen, gen_45)),
            st.tcp_doff.eq(gen_doff),
            st.frame.eq(frame),
            st.off8.eq(Cat(C(_PHASE, 2), k_far + 2)),
            st.room.eq(frame.len - frame.l3),
            st.room6.eq(frame.len - frame.l3 - 40),
            st.l3_40.eq(frame.l3 + 40),
            st.l3_168.eq(frame.l3 + 40 + model.MAX_HEADER_BYTES),
        ]

        # --- measure: every comparison of the model's checks for this step ----------------
        # Each is one comparison of registers: the sums they need were made by the read stage
        # (per frame), or by this stage for the step before (``rem``).
        me = Signal(data.StructLayout({
            "valid": 1, "l2f": 1, "l3": 1, "ext": 1, "l4": 1, "last": 1,
            "off": 8, "end": 12, "frame": frame_layout,
            "ip_hlen": 8,       # end - l3 (the IP header length, if the walk leaves IP here)
            "pseudo_dst": 9,    # L3: the IP header's destination; EXT: a routing header's
            # IP header
            "short_min": 1,     # the fixed part (IPv4 20, IPv6 40 bytes) runs past the frame
            "bad_version": 1,
            "bad_ihl": 1,       # IPv4 IHL < 5
            "short_hlen": 1,    # the IPv4 header runs past the frame
            "total_lt_hlen": 1,
            "short_ip": 1,      # the datagram runs past the frame
            "ip_end": 17,
            "ip_fragment": 1,
            # extension header (and the Next Header found there or in the IPv6 header)
            "hbh_misplaced": 1,
            "ext_short8": 1,    # off + 8 > ip_end
            "ext_short": 1,     # end > ip_end
            "ext_long": 1,      # the chain passes MAX_HEADER_BYTES
            "routing_again": 1,
            "routing_unknown": 1,   # Segments Left > 0 and no known final destination
            "routing_final_dst": 1,  # Segments Left > 0: the final destination is in it
            "ext_fragment": 1,
            "nh": 8,
            "nh_ext": 1, "nh_unfollowable": 1, "nh_l4": 1,
            # TCP/UDP header
            "tcp": 1,
            "l4_short_min": 1,  # the 20/8 fixed bytes run past ip_end
            "l4_past_min": 1,   # ... past the window
            "tcp_bad_offset": 1,
            "tcp_short": 1,     # data offset * 4 bytes run past ip_end
            "tcp_past": 1,      # ... past the window
            "tcp_hlen": 6,
            "udp_bad_length": 1,
            "udp_end": 17,
        }))
        # Of the frame being measured: ``ip_end`` from its L3 step; ``rem`` = ip_end - the
        # offset of the next header, from the step before (which is of the same frame for
        # EXT and L4 steps; where it would be negative, that step failed).
        ip_end = Signal(17)
        rem = Signal(17)
        routing_seen = Signal()
        # The protocol of this step's header (EXT, L4): the Next Header of the step before.
        proto = Signal(8)
        is_hopopt, is_routing, is_fragment, is_tcp = Signal(), Signal(), Signal(), Signal()
        fr = st.frame
        ipb, b = st.ip, st.b
        end = st.end
        m.d.sync += [
            me.valid.eq(st.valid), me.l2f.eq(st.l2f), me.l3.eq(st.l3), me.ext.eq(st.ext),
            me.l4.eq(st.l4), me.off.eq(st.off), me.end.eq(end),
            # The walk of this frame ends with this step unless the walk is now on its next one.
            me.last.eq(~s_ext & ~s_l4),
            me.frame.eq(fr),
            me.ip_hlen.eq(end - fr.l3),
            me.pseudo_dst.eq(Mux(st.l3, Mux(fr.is4, fr.l3 + 16, fr.l3 + 24), st.off8)),
        ]

        # L3 (the frame is ``room`` bytes from l3 on, when it ended in the window)
        version = _byte(ipb, 0)[4:8]
        hlen4 = Cat(C(0, 2), _byte(ipb, 0)[0:4])
        total = _be(ipb, 2, 2)
        payload_len = _be(ipb, 4, 2)
        frag_field4 = _be(ipb, 6, 2)
        ip_end4 = fr.l3 + total
        ip_end6 = st.l3_40 + payload_len
        m.d.sync += [
            me.bad_version.eq(version != Mux(fr.is4, 4, 6)),
            me.bad_ihl.eq(hlen4 < 20),
            me.short_hlen.eq(fr.ended & (st.room < hlen4)),
            me.total_lt_hlen.eq(total < hlen4),
            me.ip_fragment.eq(frag_field4[13] | (frag_field4[0:13] != 0)),
        ]
        with m.If(fr.is4):
            m.d.sync += [
                me.short_min.eq(fr.ended & (st.room < 20)),
                me.short_ip.eq(fr.ended & (st.room < total)),
            ]
        with m.Else():
            m.d.sync += [
                me.short_min.eq(fr.ended & (st.room6 < 0)),
                me.short_ip.eq(fr.ended & (st.room6 < payload_len)),
            ]
        # L3: this frame's; later steps: as the L3 step measured it.
        m.d.sync += me.ip_end.eq(Mux(st.l3, Mux(fr.is4, ip_end4, ip_end6), ip_end))
        with m.If(st.valid & st.l3):
            m.d.sync += [
                ip_end.eq(Mux(fr.is4, ip_end4, ip_end6)),
                rem.eq(Mux(fr.is4, total - hlen4, payload_len)),
                routing_seen.eq(0),
            ]
        with m.If(st.valid & st.ext):
            m.d.sync += rem.eq(ip_end - end)

        # EXT, and the protocol that follows the IP header or an extension header
        nh = Mux(st.l3, Mux(fr.is4, _byte(ipb, 9), _byte(ipb, 6)), _byte(b, 0))
        ext_len, rtype, segments_left = _byte(b, 1), _byte(b, 2), _byte(b, 3)
        frag_field6 = Cat(segments_left, rtype)      # offset:13, res:2, M:1
        # A routing header is generic: (len + 1) * 8 >= 24 when len >= 2.
        final_dst_known = _member(rtype, model._ROUTING_FINAL_DST_TYPES) & (ext_len >= 2)
        m.d.sync += [
            me.hbh_misplaced.eq(is_hopopt & (st.off != st.l3_40)),
            me.ext_short8.eq(rem < 8),
            me.ext_short.eq(end > ip_end),
            me.ext_long.eq(end > st.l3_168),
            me.routing_again.eq(is_routing & routing_seen),
            me.routing_unknown.eq(is_routing & (segments_left != 0) & ~final_dst_known),
            me.routing_final_dst.eq(is_routing & (segments_left != 0)),
            me.ext_fragment.eq(is_fragment & ((frag_field6[3:16] != 0) | frag_field6[0])),
            me.nh.eq(nh),
            me.nh_ext.eq(_member(nh, _WALKED_EXT)),
            me.nh_unfollowable.eq(_member(nh, _UNFOLLOWABLE_EXT)),
            me.nh_l4.eq(_member(nh, _L4_PROTOS)),
        ]
        with m.If(st.valid & st.ext & is_routing):
            m.d.sync += routing_seen.eq(1)
        with m.If(st.valid):
            m.d.sync += [
                proto.eq(nh),
                is_hopopt.eq(nh == model._HOPOPT),
                is_routing.eq(nh == model._ROUTING),
                is_fragment.eq(nh == model._FRAGMENT),
                is_tcp.eq(nh == model.IPPROTO_TCP),
            ]

        # L4 (the datagram has ``rem`` bytes from this header on)
        limit = WINDOW_BYTES
        hlen_tcp = Cat(C(0, 2), st.tcp_doff)
        udp_len = _be(b, 4, 2)
        m.d.sync += [
            me.tcp.eq(is_tcp),
            me.l4_short_min.eq(rem < Mux(is_tcp, 20, 8)),
            me.l4_past_min.eq(st.off > Mux(is_tcp, limit - 20, limit - 8)),
            me.tcp_bad_offset.eq(hlen_tcp < 20),
            me.tcp_short.eq(rem < hlen_tcp),
            me.tcp_past.eq(st.off + hlen_tcp > limit),
            me.tcp_hlen.eq(hlen_tcp),
            me.udp_bad_length.eq((udp_len < 8) | (rem < udp_len)),
            me.udp_end.eq(st.off + udp_len),
        ]

        # --- judge: the model's order of checks for this step -----------------------------
        # What the step does to the record if the walk gets to it: the fields it sets (``upd``
        # where ``mask``), its error, and whether the walk ends with it.
        ju = Signal(data.StructLayout({
            "valid": 1, "first": 1, "l2f": 1, "last": 1, "frame": frame_layout,
            "upd": layout, "mask": layout, "stop": 1,
        }))
        upd = Signal(layout)
        mask = Signal(layout)
        stop = Signal()
        m.d.sync += [
            ju.valid.eq(me.valid), ju.first.eq(me.l2f | me.l3), ju.l2f.eq(me.l2f),
            ju.last.eq(me.last), ju.frame.eq(me.frame),
            ju.upd.eq(upd), ju.mask.eq(mask), ju.stop.eq(stop),
        ]

        def put(field, value):
            m.d.comb += [getattr(upd, field).eq(value), getattr(mask, field).eq(-1)]

        def fail(code):
            put("error", code)
            m.d.comb += stop.eq(1)

        def to_l4(l4, fragment):
            """The walk leaves IP at ``l4``: the record's L4 fields, then L4 or the end."""
            put("l4_proto", me.nh)
            put("l4", l4)
            with m.If(fragment | ~me.nh_l4):
                m.d.comb += stop.eq(1)              # l4_header_len stays 0

        def next_ipv6(l4, fragment):
            """After the IPv6 header or an extension header: the model's loop condition."""
            with m.If(~fragment & me.nh_ext):
                pass                                # the walk goes on to that header
            with m.Elif(~fragment & me.nh_unfollowable):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Else():
                put("ip_header_len", me.ip_hlen)
                to_l4(l4, fragment)

        with m.If(me.l3 & me.frame.is4):
            with m.If(me.short_min):
                fail(model.ParseError.L3_TRUNCATED)
            with m.Elif(me.bad_version):
                fail(model.ParseError.BAD_VERSION)
            with m.Else():
                put("is_ipv4", 1)
                with m.If(me.bad_ihl):
                    fail(model.ParseError.BAD_IHL)
                with m.Elif(me.short_hlen):
                    fail(model.ParseError.L3_TRUNCATED)
                with m.Else():
                    put("ip_header_len", me.ip_hlen)
                    with m.If(me.total_lt_hlen | me.short_ip):
                        fail(model.ParseError.BAD_IP_LENGTH)
                    with m.Else():
                        put("ip_end", me.ip_end)
                        put("is_fragment", me.ip_fragment)
                        put("pseudo_dst", me.pseudo_dst)
                        to_l4(me.end, me.ip_fragment)
        with m.Elif(me.l3):
            with m.If(me.short_min):
                fail(model.ParseError.L3_TRUNCATED)
            with m.Elif(me.bad_version):
                fail(model.ParseError.BAD_VERSION)
            with m.Else():
                put("is_ipv6", 1)
                with m.If(me.short_ip):
                    fail(model.ParseError.BAD_IP_LENGTH)
                with m.Else():
                    put("ip_end", me.ip_end)
                    put("pseudo_dst", me.pseudo_dst)
                    next_ipv6(me.end, C(0, 1))

        with m.Elif(me.ext):
            with m.If(me.hbh_misplaced):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Elif(me.ext_short8):
                fail(model.ParseError.EXT_TRUNCATED)
            with m.Elif(me.ext_short):
                fail(model.ParseError.EXT_TRUNCATED)
            with m.Elif(me.ext_long):
                fail(model.ParseError.EXT_TOO_LONG)
            with m.Elif(me.routing_again):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Elif(me.routing_unknown):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Else():
                with m.If(me.routing_final_dst):
                    put("pseudo_dst", me.pseudo_dst)
                put("is_fragment", me.ext_fragment)
                next_ipv6(me.end, me.ext_fragment)

        with m.Elif(me.l4):
            m.d.comb += stop.eq(1)
            with m.If(me.tcp):
                with m.If(me.l4_short_min):
                    fail(model.ParseError.L4_TRUNCATED)
                with m.Elif(me.l4_past_min):
                    fail(model.ParseError.PAST_LIMIT)
                with m.Elif(me.tcp_bad_offset):
                    fail(model.ParseError.BAD_TCP_OFFSET)
                with m.Elif(me.tcp_short):
                    fail(model.ParseError.L4_TRUNCATED)
                with m.Elif(me.tcp_past):
                    fail(model.ParseError.PAST_LIMIT)
                with m.Else():
                    put("l4_header_len", me.tcp_hlen)
                    put("l4_end", me.ip_end)
            with m.Else():
                with m.If(me.l4_short_min):
                    fail(model.ParseError.L4_TRUNCATED)
                with m.Elif(me.l4_past_min):
                    fail(model.ParseError.PAST_LIMIT)
                with m.Elif(me.udp_bad_length):
                    fail(model.ParseError.BAD_UDP_LENGTH)
                with m.Else():
                    put("l4_header_len", 8)
                    put("l4_end", me.udp_end)

        # --- decide: the steps of a frame, in order, into its record ----------------------
        rec = Signal(layout)            # the record so far
        stopped = Signal()              # the model's walk has ended (an error, or done)
        base = Signal(layout)
        base_stopped = Signal()
        with m.If(ju.first):
            f = ju.frame
            m.d.comb += [
                base.error.eq(f.l2_error),
                base.l3.eq(f.l3),
                base.ip_end_unchecked.eq(~f.ended),
                base_stopped.eq(ju.l2f),
            ]
            if uw:
                m.d.comb += base.user.eq(f.user)
        with m.Else():
            m.d.comb += [base.eq(rec), base_stopped.eq(stopped)]
        nxt = Signal(layout)            # the record after this step
        step_mask = Mux(base_stopped, 0, ju.mask.as_value())
        m.d.comb += nxt.eq((base.as_value() & ~step_mask) | (ju.upd.as_value() & step_mask))
        with m.If(ju.valid):
            m.d.sync += [rec.eq(nxt), stopped.eq(base_stopped | ju.stop)]
        m.d.comb += [
            records.w_en.eq(ju.valid & ju.last),
            records.w_data.eq(nxt.as_value()),
        ]

        return m

    def _substitute_lengths(self, m, win, beat, at_first, free, load, l2_sel, l2_is4,
                            l2_error):
        """LSO frames: the IP length field of the walked window is the model's substitute.

        For every offset the IP header can have, the substitute (IPv4: ``min(n - l3,
        0xFFFF)``; IPv6: ``min(max(n - l3 - 40, 0), 0xFFFF)``) and whether the frame holds
        the field (``n >= field + 2``; otherwise the model walks the frame as it is) are
        registered from the first beat's length word as it is captured, so the hand-off only
        picks one. Called after the hand-off's copy of the capture window, which these
        writes override.
        """
        lso = Signal()
        v4 = [Signal(16, name=f"lso_len4_at{off}") for off in L3_OFFSETS]
        v6 = [Signal(16, name=f"lso_len6_at{off}") for off in L3_OFFSETS]
        fits4 = [Signal(name=f"lso_fits4_at{off}") for off in L3_OFFSETS]
        fits6 = [Signal(name=f"lso_fits6_at{off}") for off in L3_OFFSETS]
        user_len = beat.user[96:128]
        with m.If(at_first & free):     # written with the first beat's slot (capture window)
            m.d.sync += lso.eq(beat.user[32:64] != 0)
            for i, off in enumerate(L3_OFFSETS):
                rest4 = Signal(33, name=f"lso_rest4_at{off}")
                rest6 = Signal(signed(34), name=f"lso_rest6_at{off}")
                m.d.comb += [rest4.eq(user_len - off), rest6.eq(user_len - (off + 40))]
                m.d.sync += [
                    v4[i].eq(Mux(rest4 > 0xFFFF, 0xFFFF, rest4)),
                    v6[i].eq(Mux(rest6 < 0, 0, Mux(rest6 > 0xFFFF, 0xFFFF, rest6))),
                    fits4[i].eq(user_len >= off + 4),
                    fits6[i].eq(user_len >= off + 6),
                ]
        for i, off in enumerate(L3_OFFSETS):
            with m.If(load & lso & (l2_error == 0) & l2_sel[i]):
                with m.If(l2_is4 & fits4[i]):
                    m.d.sync += win[8 * (off + 2):8 * (off + 4)].eq(
                        Cat(v4[i][8:16], v4[i][0:8]))
                with m.Elif(~l2_is4 & fits6[i]):
                    m.d.sync += win[8 * (off + 4):8 * (off + 6)].eq(
                        Cat(v6[i][8:16], v6[i][0:8]))
