"""Header parser: the RTL twin of ``nicoffload.model.parse``.

:class:`FrameParser` passes every frame through unchanged (behind a skid FIFO) and emits one
:func:`HEADERS_LAYOUT` record per frame, in frame order, that says what
``model.parse.parse(frame)`` says: the same walk, the same limits, the same order of checks,
the same ``ParseError`` codes.

Structure::

    s_axis ─┬─────────────────────────────► skid FIFO ─────────────────────► m_axis
            └─► capture window (256 bytes) ─► parse window ─► walk ─► record FIFO ─► m_headers

Capture
    The first ``MAX_PARSE_BYTES`` (256) bytes of each frame are written, beat by beat, into the
    capture window, with the number of bytes captured and whether the frame ended inside the
    window. The window is complete on the frame's last beat or on its 256th byte; later beats
    of the frame only go to the skid FIFO.
Hand-off (one cycle, also the L2 step)
    When the walk of the previous frame is finishing (or the parser is idle), the complete
    capture window is copied into the parse window, so the next frame's window captures while
    this one is walked (double buffering). In the same cycle the L2 header is decoded from the
    capture window (it lies at fixed offsets: up to two tags and LLC/SNAP in bytes 12..29),
    giving the error code or the IP header offset ``l3``.
Walk (one header per cycle)
    ``L3``: IPv4 (all of it) or the IPv6 fixed header, read at ``l3`` (one of five offsets).
    ``EXT``: one IPv6 extension header per cycle, four bytes read at a variable offset.
    ``L4``: the TCP or UDP header, two fields read at a variable offset. ``L4`` writes the
    record into the record FIFO in the same cycle; a walk that stops earlier (an error, a
    fragment, another protocol) writes it from a ``DONE`` step in the next cycle. So whether a
    cycle ends the walk is known from registers, and taking the next window (and with it
    ``s_axis.ready``) never waits for that cycle's checks.

Every header offset the model can reach is ``2 mod 4`` (the Ethernet header is 14 bytes, tags
4, LLC/SNAP 8, and IPv4/IPv6/extension header lengths are multiples of 4), so a variable read
is a mux over offsets ``4k + 2`` only: 37 positions for extension headers, 42 for TCP/UDP. This
is checked at elaboration from the model's constants.

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
    walk has not taken. The walk of a frame takes S steps: 1 when L2 failed, else 2 + the
    number of extension headers visited (IPv4: 2). Back to back,
    a frame of F beats costs max(F, S) cycles: frames of at least S beats never stall the input
    (1500-byte frames at every width, 256-byte frames with at most two extension headers at
    W=512), and 64-byte frames at W=512 (F = 1) run at one frame per 2 cycles (IPv4).
    A record can be taken from ``m_headers`` S + 2 cycles after the window-completing beat was
    taken (hand-off, S steps, record FIFO) when the walk was idle: 4 for IPv4 TCP.
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

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

_GENERIC_EXT = sorted(model._GENERIC_EXT)
_UNFOLLOWABLE_EXT = sorted(model._UNFOLLOWABLE_EXT)
_WALKED_EXT = sorted(set(_GENERIC_EXT) | {model._AH, model._FRAGMENT})


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


# What the walk carries from one step to the next besides the record.
_WORK_LAYOUT = data.StructLayout({
    "is4": 1,           # the EtherType was IPv4
    "off": 9,           # offset of the header the next step reads
    "proto": 8,         # its protocol number (Next Header)
    "ext_total": 8,     # extension header bytes so far (<= MAX_HEADER_BYTES)
    "routing_seen": 1,
})

_IDLE, _L3, _EXT, _L4, _DONE = range(5)


def _byte(vec, i):
    """Byte ``i`` of a little-endian byte vector (byte 0 = bits 0..7); 0 past its end."""
    if 8 * (i + 1) > len(vec):
        return C(0, 8)
    return vec[8 * i:8 * i + 8]


def _be(vec, i, n):
    """The ``n`` bytes of ``vec`` from byte ``i`` as a big-endian number (wire order)."""
    return Cat(*[_byte(vec, i + k) for k in reversed(range(n))])


class FrameParser(wiring.Component):
    """Finds the L2, IP and TCP/UDP headers of every frame, like ``model.parse.parse``.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.
    user_width : int
        Bits of ``tuser``; passed through with every beat, and the first beat's in the record.
    skid : int or None
        Depth of the skid FIFO in beats. It must hold at least a full window
        (``256 * 8 // W`` beats) or a consumer that waits for a frame's record before taking
        its beats deadlocks; the minimum is the window plus one. Default: the window plus 32
        beats, more than the record latency of the longest walk (18 steps, 20 cycles), so such a
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

    def __init__(self, width=64, user_width=0, *, skid=None):
        self.width = check_width(width)
        if not isinstance(user_width, int) or user_width < 0:
            raise TypeError(f"user_width must be a non-negative integer, not {user_width!r}")
        self.user_width = user_width
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

        # --- record FIFO ------------------------------------------------------------------
        m.submodules.records = records = fifo.SyncFIFO(width=layout.size,
                                                       depth=self.HEADER_FIFO_DEPTH)
        m.d.comb += [
            self.m_headers.payload.eq(records.r_data),
            self.m_headers.valid.eq(records.r_rdy),
            records.r_en.eq(self.m_headers.ready),
        ]

        # --- capture window ---------------------------------------------------------------
        cap = Signal(8 * WINDOW_BYTES)
        cap_full = Signal()             # a complete window waits for the walk
        cap_len = Signal(range(WINDOW_BYTES + 1))
        cap_ended = Signal()            # the frame ended inside the window
        cap_user = Signal(max(uw, 1))
        index = Signal(range(wb + 1))   # beat index in the frame; wb: past the window

        load = Signal()                 # the walk takes the capture window this cycle
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

        with m.If(load):
            m.d.sync += cap_full.eq(0)
        with m.If(accept):
            with m.If(beat.last):
                m.d.sync += index.eq(0)
            with m.Elif(~bypass):
                m.d.sync += index.eq(index + 1)
            for k in range(wb):
                with m.If(index == k):
                    m.d.sync += cap[k * w:(k + 1) * w].eq(beat.data)
                    if k == 0 and uw:
                        m.d.sync += cap_user.eq(beat.user)
                    if k == wb - 1:
                        m.d.sync += [cap_full.eq(1), cap_len.eq(k * nbytes + count),
                                     cap_ended.eq(beat.last)]
                    else:
                        with m.If(beat.last):
                            m.d.sync += [cap_full.eq(1), cap_len.eq(k * nbytes + count),
                                         cap_ended.eq(1)]

        # --- L2, decoded from the capture window at hand-off ------------------------------
        l2_error = Signal(5)
        l2_l3 = Signal(8)
        l2_is4 = Signal()

        def cap_short(end):     # the frame ends before byte ``end`` (model: ``end > n``)
            return cap_ended & (end > cap_len)

        def fail_l2(code):
            m.d.comb += l2_error.eq(code)

        def is_tag(etype):
            return Cat(*[etype == tpid for tpid in model.VLAN_TPIDS]).any()

        def l2_ip(off, etype):
            with m.If(etype == model.ETH_P_IPV4):
                m.d.comb += [l2_l3.eq(off), l2_is4.eq(1)]
            with m.Elif(etype == model.ETH_P_IPV6):
                m.d.comb += l2_l3.eq(off)
            with m.Else():
                fail_l2(model.ParseError.NOT_IP)

        def l2_after_type(off, etype):      # ``off``: just past the length/type field
            with m.If(etype <= 1500):
                llc = _be(cap, off, 3)
                oui = _be(cap, off + 3, 3)
                snap_ok = (llc == 0xAAAA03) & Cat(*[oui == o for o in model.SNAP_OUIS]).any()
                with m.If(cap_short(off + model.LLC_SNAP_LEN)):
                    fail_l2(model.ParseError.L2_TRUNCATED)
                with m.Elif(~snap_ok):
                    fail_l2(model.ParseError.NOT_SNAP)
                with m.Else():
                    l2_ip(off + model.LLC_SNAP_LEN, _be(cap, off + 6, 2))
            with m.Elif(etype < 0x0600):
                fail_l2(model.ParseError.BAD_LENGTH_TYPE)
            with m.Else():
                l2_ip(off, etype)

        def l2_tags(tags):                  # the length/type field at 12 + 4 * tags
            off = 12 + model.VLAN_TAG_LEN * tags
            etype = _be(cap, off, 2)
            with m.If(is_tag(etype)):
                if tags == model.MAX_VLAN_TAGS:
                    fail_l2(model.ParseError.TOO_MANY_VLAN_TAGS)
                else:
                    with m.If(cap_short(off + model.VLAN_TAG_LEN + 2)):
                        fail_l2(model.ParseError.L2_TRUNCATED)
                    with m.Else():
                        l2_tags(tags + 1)
            with m.Else():
                l2_after_type(off + 2, etype)

        with m.If(cap_short(model.ETH_HEADER_LEN)):
            fail_l2(model.ParseError.RUNT)
        with m.Else():
            l2_tags(0)

        # --- the walk ---------------------------------------------------------------------
        win = Signal(8 * WINDOW_BYTES)
        win_len = Signal(range(WINDOW_BYTES + 1))
        win_ended = Signal()
        step = Signal(3)
        rec = Signal(layout)
        work = Signal(_WORK_LAYOUT)

        nxt = Signal(layout)            # the record after this step
        nxt_work = Signal(_WORK_LAYOUT)
        nxt_step = Signal(3)
        # This step ends the walk: push ``nxt``. Known from registers alone, so that taking the
        # next window (and hence ``s_axis.ready``) does not wait for the checks of this step:
        # the L4 step always ends the walk, and a walk that ends in L3 or EXT (an error, a
        # fragment, another protocol) pushes from ``_DONE`` one cycle later.
        done = Signal()
        m.d.comb += done.eq((step == _L4) | (step == _DONE) | ((step == _L3) & (rec.error != 0)))
        m.d.comb += [nxt.eq(rec), nxt_work.eq(work), nxt_step.eq(step)]

        def short(end):
            return win_ended & (end > win_len)

        def fail(code):
            m.d.comb += [nxt.error.eq(code), nxt_step.eq(_DONE)]

        def member(value, values):
            return Cat(*[value == v for v in values]).any()

        l3 = rec.l3
        ip_end = rec.ip_end

        def to_l4(proto, l4, fragment):
            """The walk leaves IP at ``l4``: the record's L4 fields, then L4 or the end."""
            m.d.comb += [nxt.l4_proto.eq(proto), nxt.l4.eq(l4)]
            with m.If(~fragment & member(proto, (model.IPPROTO_TCP, model.IPPROTO_UDP))):
                m.d.comb += [nxt_step.eq(_L4), nxt_work.off.eq(l4), nxt_work.proto.eq(proto)]
            with m.Else():
                m.d.comb += nxt_step.eq(_DONE)      # l4_header_len stays 0

        def next_ipv6(proto, l4, fragment):
            """After the IPv6 header or an extension header: the model's loop condition."""
            with m.If(~fragment & member(proto, _WALKED_EXT)):
                m.d.comb += [nxt_step.eq(_EXT), nxt_work.off.eq(l4), nxt_work.proto.eq(proto)]
            with m.Elif(~fragment & member(proto, _UNFOLLOWABLE_EXT)):
                fail(model.ParseError.EXT_UNFOLLOWABLE)
            with m.Else():
                m.d.comb += nxt.ip_header_len.eq(l4 - l3)
                to_l4(proto, l4, fragment)

        # L3: ten bytes at l3.
        ip = Signal(80)
        with m.Switch(l3):
            for off in L3_OFFSETS:
                with m.Case(off):
                    m.d.comb += ip.eq(win[8 * off:8 * (off + 10)])

        # EXT: four bytes at work.off.
        ext = Signal(32)
        with m.Switch(work.off[2:]):
            for off in _EXT_OFFSETS:
                with m.Case(off >> 2):
                    m.d.comb += ext.eq(Cat(*[_byte(win, off + k) for k in range(4)]))

        # L4: the UDP Length field and the TCP data offset byte.
        l4_udp_len = Signal(16)
        l4_tcp_off = Signal(8)
        with m.Switch(work.off[2:]):
            for off in _L4_OFFSETS:
                with m.Case(off >> 2):
                    m.d.comb += [l4_udp_len.eq(_be(win, off + 4, 2)),
                                 l4_tcp_off.eq(_byte(win, off + 12))]

        with m.Switch(step):
            with m.Case(_L3):
                version = _byte(ip, 0)[4:8]
                with m.If(rec.error == 0):          # else L2 failed: push as is
                    with m.If(work.is4):
                        hlen = Cat(C(0, 2), _byte(ip, 0)[0:4])
                        total = _be(ip, 2, 2)
                        flags_frag = _be(ip, 6, 2)
                        with m.If(short(l3 + 20)):
                            fail(model.ParseError.L3_TRUNCATED)
                        with m.Elif(version != 4):
                            fail(model.ParseError.BAD_VERSION)
                        with m.Else():
                            m.d.comb += nxt.is_ipv4.eq(1)
                            with m.If(hlen < 20):
                                fail(model.ParseError.BAD_IHL)
                            with m.Elif(short(l3 + hlen)):
                                fail(model.ParseError.L3_TRUNCATED)
                            with m.Else():
                                m.d.comb += nxt.ip_header_len.eq(hlen)
                                with m.If(total < hlen):
                                    fail(model.ParseError.BAD_IP_LENGTH)
                                with m.Elif(short(l3 + total)):
                                    fail(model.ParseError.BAD_IP_LENGTH)
                                with m.Else():
                                    fragment = flags_frag[13] | (flags_frag[0:13] != 0)
                                    m.d.comb += [
                                        nxt.ip_end.eq(l3 + total),
                                        nxt.is_fragment.eq(fragment),
                                        nxt.pseudo_dst.eq(l3 + 16),
                                    ]
                                    to_l4(_byte(ip, 9), l3 + hlen, fragment)
                    with m.Else():
                        payload_len = _be(ip, 4, 2)
                        with m.If(short(l3 + 40)):
                            fail(model.ParseError.L3_TRUNCATED)
                        with m.Elif(version != 6):
                            fail(model.ParseError.BAD_VERSION)
                        with m.Else():
                            m.d.comb += nxt.is_ipv6.eq(1)
                            with m.If(short(l3 + 40 + payload_len)):
                                fail(model.ParseError.BAD_IP_LENGTH)
                            with m.Else():
                                m.d.comb += [
                                    nxt.ip_end.eq(l3 + 40 + payload_len),
                                    nxt.pseudo_dst.eq(l3 + 24),
                                    nxt_work.ext_total.eq(0),
                                    nxt_work.routing_seen.eq(0),
                                ]
                                next_ipv6(_byte(ip, 6), l3 + 40, C(0, 1))

            with m.Case(_EXT):
                proto, off = work.proto, work.off
                next_header, ext_len = _byte(ext, 0), _byte(ext, 1)
                rtype, segments_left = _byte(ext, 2), _byte(ext, 3)
                hlen = Signal(12)
                with m.If(proto == model._FRAGMENT):
                    m.d.comb += hlen.eq(8)
                with m.Elif(proto == model._AH):
                    m.d.comb += hlen.eq((ext_len + 2) * 4)
                with m.Else():
                    m.d.comb += hlen.eq((ext_len + 1) * 8)
                ext_total = work.ext_total + hlen
                routing = proto == model._ROUTING
                final_dst_known = member(rtype, model._ROUTING_FINAL_DST_TYPES) & (hlen >= 24)
                frag_field = Cat(segments_left, rtype)      # offset:13, res:2, M:1
                fragment = (proto == model._FRAGMENT) & ((frag_field[3:16] != 0) | frag_field[0])
                with m.If((proto == model._HOPOPT) & (off != l3 + 40)):
                    fail(model.ParseError.EXT_UNFOLLOWABLE)
                with m.Elif(off + 8 > ip_end):
                    fail(model.ParseError.EXT_TRUNCATED)
                with m.Elif(off + hlen > ip_end):
                    fail(model.ParseError.EXT_TRUNCATED)
                with m.Elif(ext_total > model.MAX_HEADER_BYTES):
                    fail(model.ParseError.EXT_TOO_LONG)
                with m.Elif(routing & work.routing_seen):
                    fail(model.ParseError.EXT_UNFOLLOWABLE)
                with m.Elif(routing & (segments_left != 0) & ~final_dst_known):
                    fail(model.ParseError.EXT_UNFOLLOWABLE)
                with m.Else():
                    with m.If(routing):
                        m.d.comb += nxt_work.routing_seen.eq(1)
                        with m.If(segments_left != 0):
                            m.d.comb += nxt.pseudo_dst.eq(off + 8)
                    m.d.comb += [nxt.is_fragment.eq(fragment),
                                 nxt_work.ext_total.eq(ext_total)]
                    next_ipv6(next_header, off + hlen, fragment)

            with m.Case(_L4):
                off = work.off
                limit = WINDOW_BYTES
                with m.If(work.proto == model.IPPROTO_TCP):
                    hlen = Cat(C(0, 2), l4_tcp_off[4:8])
                    with m.If(off + 20 > ip_end):
                        fail(model.ParseError.L4_TRUNCATED)
                    with m.Elif(off + 20 > limit):
                        fail(model.ParseError.PAST_LIMIT)
                    with m.Elif(hlen < 20):
                        fail(model.ParseError.BAD_TCP_OFFSET)
                    with m.Elif(off + hlen > ip_end):
                        fail(model.ParseError.L4_TRUNCATED)
                    with m.Elif(off + hlen > limit):
                        fail(model.ParseError.PAST_LIMIT)
                    with m.Else():
                        m.d.comb += [nxt.l4_header_len.eq(hlen), nxt.l4_end.eq(ip_end)]
                with m.Else():
                    with m.If(off + 8 > ip_end):
                        fail(model.ParseError.L4_TRUNCATED)
                    with m.Elif(off + 8 > limit):
                        fail(model.ParseError.PAST_LIMIT)
                    with m.Elif((l4_udp_len < 8) | (off + l4_udp_len > ip_end)):
                        fail(model.ParseError.BAD_UDP_LENGTH)
                    with m.Else():
                        m.d.comb += [nxt.l4_header_len.eq(8), nxt.l4_end.eq(off + l4_udp_len)]

        # --- sequencing -------------------------------------------------------------------
        walking = step != _IDLE
        push = Signal()
        m.d.comb += [
            push.eq(walking & done & records.w_rdy),
            load.eq(cap_full & (~walking | push)),
            records.w_en.eq(push),
            records.w_data.eq(nxt.as_value()),
        ]
        start = Signal(layout)          # the record as the hand-off (L2) leaves it
        m.d.comb += [
            start.error.eq(l2_error),
            start.l3.eq(Mux(l2_error == 0, l2_l3, 0)),
            start.ip_end_unchecked.eq(~cap_ended),
        ]
        if uw:
            m.d.comb += start.user.eq(cap_user)
        with m.If(load):
            m.d.sync += [
                step.eq(_L3), rec.eq(start), work.eq(0), work.is4.eq(l2_is4),
                win.eq(cap), win_len.eq(cap_len), win_ended.eq(cap_ended),
            ]
        with m.Elif(push):
            m.d.sync += step.eq(_IDLE)
        with m.Elif(walking & ~done):
            m.d.sync += [step.eq(nxt_step), rec.eq(nxt), work.eq(nxt_work)]

        return m
