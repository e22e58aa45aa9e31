"""Large send offload RTL: the segmentation engine, twin of ``nicoffload.model.lso``.

:class:`LsoSegmenter` takes host frames (TxUser in the first beat's ``tuser``), cuts every
large send into MSS-sized segments at line rate, and hands the segments to the checksum
insert stage (:class:`nicoffload.hdl.checksum.TxChecksum`) with a ChecksumTx word that asks
for the IPv4 header checksum and the TCP checksum. Frames without an LSO word pass through
unchanged. One :class:`~nicoffload.model.nbl.TxCompletion` per host frame leaves on
``m_txc``, in order.

Structure::

    s_axis ─► BufferLengthPatch ─► FrameParser ─► front ─┬─► ring (32 KB, input beats) ─┐
              (length field =       (hdl/parse)   checks  ├─► templates (16 x 128 B) ───┤
               buffer length)                              ├─► descriptors ─────────────┤
                                                           └─► frame lengths ───────────┤
                                                                                        ▼
                        m_txc ◄── completions ◄── back: segment sequencer ─► read, rotate, merge ─► m_axis

BufferLengthPatch
    The model walks an LSO send with its IP length field replaced by the buffer length
    (``model.lso`` check 4; LSOv2 sends carry 0 there). This stage holds each frame until its
    last beat or :attr:`BufferLengthPatch.HOLD_BYTES` bytes have arrived, and for LSO frames
    writes into the IPv4 Total Length / IPv6 Payload Length what the model substitutes:
    ``len - l3`` (``len - l3 - 40``, at least 0) when the frame ended inside the hold window,
    else 0xFFFF. Every comparison the parser makes with ``ip_end`` concerns a header end below
    2247 bytes (an extension header of 2048 bytes behind 198 bytes of headers), so past the
    window 0xFFFF walks exactly as the true length does; the deferred "runs past the frame"
    check of the parser is not applied to LSO frames (the substitution never fails it). The
    original field rides to the front in ``tuser`` bits 96..111 (LSOv1/LSOv2 guarantee check).
Front (one beat per cycle)
    Takes the parser's record with a frame's first beat, writes every beat into the ring,
    the first 128 bytes into the frame's template slot, and once the template is complete
    (three registered stages) makes the frame's descriptor: PASS (no LSO word), DROP (a check the
    headers decide failed: ``model.lso`` checks 2-9, or for LSOv1 a size check on the Total
    Length) or LSO, with everything the sequencer needs. At the frame's last beat its length
    goes into the lengths FIFO.
Back (one output beat per cycle)
    Output beat ``j`` of segment ``k`` (payload offset ``off = k * MSS``) is the window of the
    input frame at byte ``j * W/8 + off``: two consecutive ring rows (even and odd banks, one
    read each), rotated by ``off mod W/8``; lanes before the header end come from the template
    slot with the per-segment fields patched (802.3 length, IPv4 Total Length, ID, checksum 0,
    IPv6 Payload Length, sequence number, flags, TCP checksum field = transport's pseudo-header
    sum + TCP length). So the header's last beat and the first payload bytes leave in the same
    cycle, and header replication costs only the header's own beats. The next segment is
    decided while the current one is being sent, so segments follow each other without a gap.

When a segment may go (one-segment lookahead)
    Segment ``k`` goes as a middle segment when the payload byte after it has arrived, and as
    the last one when the frame has ended and the whole send passes the model's end-of-send
    checks (:func:`end_reason`). A middle segment also needs ``need_k = max((k+1) MSS + 1,
    min((MinSegmentCount - 1) MSS + 1, CAP))`` payload bytes to have arrived (so a send with
    too few segments emits nothing, exactly as the model, whenever that bound fits the ring:
    :data:`CAP` bytes) and ``need_k <= L`` where ``L`` is MaxOffLoadSize (LSOv2) or the
    payload the IPv4 Total Length announces (LSOv1). These rules make the emitted segments a
    function of the send alone, never of timing.
Timing
    The back sees the front through registers (the write pointer, the lengths FIFO, the bytes
    of the send that have arrived, each a cycle late but consistent with one another) and the
    per-segment length fields and TCP checksum are worked out as the segment's first beat is
    issued; each decision is a comparison of registers and a choice. The late views only
    delay decisions that wait for the input; a send that streams in faster than it leaves
    never waits on them.

Drops and what the hardware can decide (DESIGN 3, "dropped whole")
    Everything the headers decide (``model.lso`` checks 2-9 but LSOv1's Total Length against
    the buffer length, and for LSOv1 the size checks 10-12 on the announced length) drops the
    send before a byte leaves; the send is drained at line rate and the completion carries
    the model's reason, computed at the end of the send in the model's order. What only the
    end of the send decides -- LSOv2 payload over MaxOffLoadSize, LSOv1 Total Length not the
    buffer length, MinSegmentCount beyond :data:`CAP` -- cannot always be known before the
    first segment must go (the payload is not buffered whole). Such a send is cut: the middle
    segments allowed by the rule above go (they are exactly the first segments the model
    would make of the send without the failing limit), nothing after them, and the
    completion carries the model's drop reason (LSOv1 TcpPayload 0).
Segments that do not fit the checksum stage
    A segment longer than ``TX_MAX_FRAME`` would leave :class:`TxChecksum` without checksums,
    so ``hdr_end + min(MSS, payload) > TX_MAX_FRAME`` is LSO_BAD_MSS (``model.lso`` check 12,
    ``LsoLimits.max_segment_bytes``); with headers of at most 128 bytes it implies the IP
    length rule of check 12, and the 802.3 rule is applied beside it.
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import parse as mparse
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.lso import STREAM_LOOKAHEAD, LsoLimits
from nicoffload.model.nbl import TxStatus

from .axis import AxisSignature, check_width
from .layouts import word_layout
from .onesum import add_tree, fold16
from .parse import HEADERS_LAYOUT, L3_OFFSETS, FrameParser

__all__ = ["LSO_CONFIG", "config_value", "BufferLengthPatch", "LsoSegmenter", "end_reason",
           "MAX_HEADER", "RING_BYTES", "CAP", "NSLOT"]

TXU = nbl.TxUser.width()        # 96
MAX_HEADER = 128                # DESIGN 3: headers <= 128 bytes (template size)
#: The largest look-ahead (payload bytes) the ring can always hold: the model's rule
#: (``model.lso.STREAM_LOOKAHEAD``, ``LsoLimits.lookahead_bytes``) decides what of a send its
#: end drops has already left.
CAP = STREAM_LOOKAHEAD
#: Ring of input beats (32 KB: two maximum segments and slack): the look-ahead, four beats of
#: the widest data path and a template.
RING_BYTES = CAP + 4 * 64 + MAX_HEADER
assert RING_BYTES & (RING_BYTES - 1) == 0, "the ring is a power of two bytes"
NSLOT = 16                      # frames in flight between front and back (template slots)
ROWW = 24                       # bits of the absolute ring row counters
_SNAP_LIMIT = 1500 - 8          # 802.3 length <= 1500: hdr_end - l3 + 8 + payload <= 1500

_FIN, _SYN, _RST, _PSH, _URG, _CWR = 0x01, 0x02, 0x04, 0x08, 0x20, 0x80

_MALFORMED = (mparse.ParseError.RUNT, mparse.ParseError.L2_TRUNCATED,
              mparse.ParseError.L3_TRUNCATED, mparse.ParseError.BAD_IHL,
              mparse.ParseError.BAD_IP_LENGTH, mparse.ParseError.EXT_TRUNCATED,
              mparse.ParseError.L4_TRUNCATED, mparse.ParseError.BAD_TCP_OFFSET)
_TOO_LONG = (mparse.ParseError.EXT_TOO_LONG, mparse.ParseError.PAST_LIMIT)

#: The LSO configuration port: what ``model.lso.LsoLimits`` holds (``max_header_bytes`` is
#: fixed at 128 and ``id_mode`` is the ``id_linux`` bit).
LSO_CONFIG = data.StructLayout({
    "lso_v1_ipv4": 1, "lso_v2_ipv4": 1, "lso_v2_ipv6": 1, "id_linux": 1,
    "v1_ipv4_max_offload_size": 32, "v2_ipv4_max_offload_size": 32,
    "v2_ipv6_max_offload_size": 32,
    "v1_ipv4_min_segment_count": 16, "v2_ipv4_min_segment_count": 16,
    "v2_ipv6_min_segment_count": 16,
})


def config_fields(limits: LsoLimits = LsoLimits()) -> dict:
    """The :data:`LSO_CONFIG` field values for ``limits``.

    Raises ``ValueError`` for limits the RTL cannot hold: a MinSegmentCount over 65535, a
    MaxOffLoadSize over 2**32 - 1, a ``max_header_bytes`` other than 128 or a
    ``max_segment_bytes`` other than ``TX_MAX_FRAME``.
    """
    out = {"id_linux": int(limits.id_mode == "linux")}
    for name, field in LSO_CONFIG:
        if name == "id_linux":
            continue
        value = int(getattr(limits, name))
        if value >= 1 << field.width:
            raise ValueError(f"LsoLimits.{name}={value} does not fit the RTL's {field.width} "
                             f"bits")
        out[name] = value
    if limits.max_header_bytes != MAX_HEADER:
        raise ValueError(f"the RTL holds max_header_bytes={MAX_HEADER} only")
    if getattr(limits, "max_segment_bytes", TX_MAX_FRAME) != TX_MAX_FRAME:
        raise ValueError(f"the RTL holds max_segment_bytes={TX_MAX_FRAME} only")
    return out


def config_value(limits: LsoLimits = LsoLimits()) -> int:
    """``limits`` packed as the :data:`LSO_CONFIG` port value (an int)."""
    fields = config_fields(limits)
    value = 0
    for name, field in LSO_CONFIG:
        value |= fields[name] << field.offset
    return value


def _byte(vec, i):
    return vec[8 * i:8 * i + 8]


def _be(vec, i, n):
    """``n`` bytes of a little-endian byte vector from byte ``i``, as a big-endian number."""
    return Cat(*[_byte(vec, i + k) for k in reversed(range(n))])


def _count(keep, nbytes):
    """Bytes in a beat whose ``keep`` is contiguous from byte 0."""
    return add_tree([keep[i] for i in range(nbytes)])


class BufferLengthPatch(wiring.Component):
    """Give the parser the IP length field the model substitutes for an LSO send.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
        Host frames, TxUser in the first beat's ``tuser``.
    m_axis : Out(AxisSignature(W, 112))
        The same frames; for frames with a non-zero LSO word the IPv4 Total Length or IPv6
        Payload Length (if the frame holds it) is replaced as the module docstring says.
        ``tuser`` of the first beat is the TxUser word in bits 0..95 and the original length
        field in bits 96..111; 0 on the other beats. A frame leaves once its last beat or
        :attr:`HOLD_BYTES` of it have arrived.
    """

    #: A frame is held until it ends or this many bytes have arrived (> 2246, see above).
    HOLD_BYTES = 2304
    _HEAD = 40          # bytes of the frame kept for the L2 walk (the field ends by byte 36)

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, TXU)),
            "m_axis": Out(AxisSignature(width, TXU + 16)),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lognb = (nb - 1).bit_length()
        hold = self.HOLD_BYTES // nb
        head_bytes = self._HEAD

        beat_l = data.StructLayout({"data": w, "keep": nb, "last": 1})
        info_l = data.StructLayout({"user": TXU, "orig": 16, "en": 1, "at": 6, "value": 16})
        m.submodules.beats = beats = fifo.SyncFIFOBuffered(width=beat_l.size, depth=hold + 4)
        m.submodules.info = info = fifo.SyncFIFOBuffered(width=info_l.size, depth=8)

        # --- input side: count, capture the first bytes, release -----------------------
        s = self.s_axis
        j = Signal(range(hold + 1))         # beat index in the frame, saturating at hold
        released = Signal()
        user = Signal(TXU)
        head = Signal(8 * head_bytes)
        accept = Signal()
        m.d.comb += [
            # One place in ``info`` is kept for the entry still being worked out (below).
            s.ready.eq(beats.w_rdy & (info.w_level < info.depth - 1)),
            accept.eq(s.valid & s.ready),
            beats.w_en.eq(accept),
            beats.w_data.eq(Cat(s.payload.data, s.payload.keep, s.payload.last)),
        ]
        head_next = Signal(8 * head_bytes)
        m.d.comb += head_next.eq(head)
        for b in range(-(-head_bytes // nb)):
            lo, hi = b * nb, min(head_bytes, (b + 1) * nb)
            with m.If(j == b):
                m.d.comb += head_next[8 * lo:8 * hi].eq(s.payload.data[:8 * (hi - lo)])
        user_now = Mux(j == 0, s.payload.user, user)
        with m.If(accept):
            m.d.sync += head.eq(head_next)
            with m.If(j == 0):
                m.d.sync += user.eq(s.payload.user)

        # The entry of a frame is worked out in the cycle after the beat that releases it,
        # from registers (the head, the byte count, the first beat's user word), so that no
        # path runs from an input beat through the L2 walk into the FIFO.
        rel_r = Signal()
        head_r = Signal(8 * head_bytes)
        user_r = Signal(TXU)
        n_r = Signal(range(self.HOLD_BYTES + 1))
        ended_r = Signal()
        count = _count(s.payload.keep, nb)
        m.d.sync += rel_r.eq(0)
        with m.If(accept & ~released & (s.payload.last | (j == hold - 1))):
            m.d.sync += [rel_r.eq(1), head_r.eq(head_next), user_r.eq(user_now),
                         n_r.eq((j << lognb) + count), ended_r.eq(s.payload.last)]

        # The L2 walk of model.parse (tags, LLC/SNAP) on the first bytes: where l3 is.
        def is_tag(t):
            return Cat(*[t == tpid for tpid in mparse.VLAN_TPIDS]).any()

        l3 = Signal(8)
        etype = Signal(16)
        valid_l2 = Signal()
        for tags in range(mparse.MAX_VLAN_TAGS + 1):
            at = 12 + 4 * tags
            t = _be(head_r, at, 2)
            cond = Cat(*([is_tag(_be(head_r, 12 + 4 * k, 2)) for k in range(tags)]
                         + [~is_tag(t)])).all()
            with m.If(cond):
                snap = t <= 1500
                m.d.comb += [
                    valid_l2.eq(1),
                    etype.eq(Mux(snap, _be(head_r, at + 8, 2), t)),
                    l3.eq(Mux(snap, at + 10, at + 2)),
                ]
        is4 = valid_l2 & (etype == mparse.ETH_P_IPV4)
        is6 = valid_l2 & (etype == mparse.ETH_P_IPV6)
        at = Signal(6)
        m.d.comb += at.eq(Mux(is4, l3 + 2, l3 + 4))
        n, ended = n_r, ended_r
        lso = user_r[32:64] != 0
        orig = Signal(16)
        with m.Switch(at):
            for off in sorted({o + d for o in L3_OFFSETS for d in (2, 4)}):
                with m.Case(off):
                    m.d.comb += orig.eq(_be(head_r, off, 2))
        value = Signal(16)
        with m.If(~ended):
            m.d.comb += value.eq(0xFFFF)
        with m.Elif(is4):
            m.d.comb += value.eq(n - l3)
        with m.Elif(n >= l3 + 40):
            m.d.comb += value.eq(n - l3 - 40)
        entry = Signal(info_l)
        m.d.comb += [
            entry.user.eq(user_r),
            entry.orig.eq(orig),
            entry.en.eq(lso & (is4 | is6) & (~ended | (n >= at + 2))),
            entry.at.eq(at),
            entry.value.eq(value),
        ]
        release = accept & ~released & (s.payload.last | (j == hold - 1))
        m.d.comb += [info.w_en.eq(rel_r), info.w_data.eq(entry)]
        with m.If(accept):
            with m.If(s.payload.last):
                m.d.sync += [j.eq(0), released.eq(0)]
            with m.Else():
                m.d.sync += j.eq(Mux(j == hold, j, j + 1))
                with m.If(release):
                    m.d.sync += released.eq(1)

        # --- output side: a frame leaves once released; patch the field -----------------
        rd = Signal(beat_l)
        head_info = Signal(info_l)
        m.d.comb += [rd.eq(beats.r_data), head_info.eq(info.r_data)]
        oj = Signal(range(8))
        out = self.m_axis
        go = beats.r_rdy & info.r_rdy
        m.d.comb += [
            out.valid.eq(go),
            beats.r_en.eq(out.ready & info.r_rdy),
            info.r_en.eq(out.ready & go & rd.last),
            out.payload.keep.eq(rd.keep),
            out.payload.last.eq(rd.last),
            out.payload.user.eq(Mux(oj == 0, Cat(head_info.user, head_info.orig), 0)),
        ]
        with m.If(out.valid & out.ready):
            m.d.sync += oj.eq(Mux(rd.last, 0, Mux(oj == 7, oj, oj + 1)))
        patched = Signal(w)
        m.d.comb += patched.eq(rd.data)
        hit_beat = head_info.en & (oj == (head_info.at >> lognb))
        for k in range(0, nb, 2):
            with m.If(hit_beat & ((head_info.at & (nb - 1)) == k)):
                m.d.comb += [patched[8 * k:8 * k + 8].eq(head_info.value[8:16]),
                             patched[8 * k + 8:8 * k + 16].eq(head_info.value[0:8])]
        m.d.comb += out.payload.data.eq(patched)
        return m


def _core_reason(payload, d):
    """``model.lso`` checks 10-12 (and the TX_MAX_FRAME rule) for a payload length."""
    largest = Mux(d.mss < payload, d.mss, payload)
    return Mux(payload > d.max_off, TxStatus.LSO_TOO_LARGE,
               Mux(payload <= d.minmul, TxStatus.LSO_TOO_FEW_SEGMENTS,
                   Mux(largest > d.smax, TxStatus.LSO_BAD_MSS, TxStatus.SENT)))


def end_reason(n, d):
    """The model's verdict on a send of ``n`` bytes whose descriptor is ``d``.

    The header checks' reason if any; else LSOv1's Total Length against the buffer (check
    9), then the size checks 10-12 in order. Valid for DROP and LSO descriptors.
    """
    payload = n - d.hdr_end
    return Mux(d.reason != 0, d.reason,
               Mux(~d.v2 & (d.total != n - d.l3), TxStatus.LSO_GUARANTEE,
                   _core_reason(payload, d)))


_PASS, _LSO, _DROP = 0, 1, 2

_DESC = data.StructLayout({
    "mode": 2, "base": ROWW, "slot": 4, "user": TXU,
    "reason": 4, "v2": 1, "total": 16, "l3": 8, "hdr_end": 8, "l4": 8, "ipv6": 1, "snap": 1,
    "mss": 20, "max_off": 32, "minmul": 36, "smax": 14, "mss_ok": 1, "limit": 32,
    "minreq": 16, "seq": 32, "ip_id": 16, "id_linux": 1, "flags": 8, "csum": 16,
})

_PATCH = data.StructLayout({
    "l3": 8, "l4": 8, "ipv6": 1, "snap": 1, "len8023": 16, "iplen": 16, "ipid": 16,
    "seq": 32, "flags": 8, "csum": 16,
})

# What the sequencer keeps of the segment it emits; the length fields and the checksum of
# ``_PATCH`` are worked out from it as its beats are issued (off the decision's path).
_SEGMENT = data.StructLayout({
    "l3": 8, "l4": 8, "ipv6": 1, "snap": 1, "ipid": 16, "seq": 32, "flags": 8,
    "hdr": 8, "size": 16, "csum": 16,
})


class LsoSegmenter(wiring.Component):
    """LSOv1/LSOv2 segmentation at line rate, the RTL of ``model.lso.segment``.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 96))
        Host frames; ``user`` on the first beat is ``nbl.TxUser`` (checksum, LSO and
        supplemental words). Frames of up to 2**32 - 1 bytes.
    m_axis : Out(AxisSignature(W, 96))
        For a frame without an LSO word: the frame unchanged with its own first-beat
        ``tuser``. For a large send: its segments, each a complete frame with IPv4 checksum
        field 0 and TCP checksum field = pseudo-header sum + TCP length, and on its first beat
        ``tuser`` = ChecksumTx{IsIPv4 or IsIPv6, TcpChecksum, IpHeaderChecksum (IPv4),
        TcpHeaderOffset} (LSO and supplemental words 0), which makes
        ``model.checksum.tx_fill`` (and :class:`TxChecksum`) produce the model's segments.
        ``user`` is 0 on other beats.
    m_txc : Out(stream.Signature(word_layout(nbl.TxCompletion)))
        One completion per host frame, in order: {LsoComplete 0, SENT} for ordinary frames,
        the model's completion for large sends.
    limits : In(LSO_CONFIG)
        Enables, MaxOffLoadSize, MinSegmentCount per offload and the ID mode; sampled when a
        frame's headers have arrived. Default: ``LsoLimits()``.

    The ChecksumTx word of a large send, its supplemental word (NVGRE) and its IPv4 header
    checksum field play no part; an NVGRE send is segmented on its outer headers (which do
    not carry TCP, so it is dropped as LSO_NOT_TCP).
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, TXU)),
            "m_axis": Out(AxisSignature(width, TXU)),
            "m_txc": Out(stream.Signature(word_layout(nbl.TxCompletion))),
            "limits": In(LSO_CONFIG, init=config_fields()),
        })

    def elaborate(self, platform):
        m = Module()
        w, nb = self.width, self.width // 8
        lognb = (nb - 1).bit_length()
        hb = MAX_HEADER // nb                   # template beats
        depth = RING_BYTES // nb                # ring rows
        half = depth // 2
        cfg = self.limits

        m.submodules.patch = patch = BufferLengthPatch(w)
        m.submodules.parser = parser = FrameParser(w, TXU + 16)
        wiring.connect(m, wiring.flipped(self.s_axis), patch.s_axis)
        wiring.connect(m, patch.m_axis, parser.s_axis)

        m.submodules.ring0 = ring0 = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.ring1 = ring1 = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.tpl = tpl_mem = Memory(shape=unsigned(w), depth=NSLOT * hb, init=[])
        m.submodules.descs = descs = fifo.SyncFIFO(width=_DESC.size, depth=NSLOT)
        m.submodules.lens = lens = fifo.SyncFIFOBuffered(width=32, depth=NSLOT)
        m.submodules.comps = comps = fifo.SyncFIFOBuffered(
            width=word_layout(nbl.TxCompletion).size, depth=8)

        wp = Signal(ROWW)           # rows written (front)
        fp = Signal(ROWW)           # rows below fp may be overwritten (back)
        in_flight = Signal(range(NSLOT + 1))
        inc, dec = Signal(), Signal()
        m.d.sync += in_flight.eq(in_flight + inc - dec)

        # ============================ front ===============================================
        rec = parser.m_headers.payload
        pb = parser.m_axis.payload
        f_first = Signal(init=1)
        f_j = Signal(range(hb + 1))
        f_bytes = Signal(32)
        f_base = Signal(ROWW)
        f_slot = Signal(4)
        f_rec = Signal(HEADERS_LAYOUT(TXU + 16))
        # Room for a row, registered: a cycle late and a row short (``wp`` grows by at most one
        # a cycle and ``fp`` never falls), so the many enables behind ``take`` start from a
        # flip-flop and not from a subtraction.
        room = Signal()
        m.d.sync += room.eq(wp - fp < depth - 1)
        gate = room & (~f_first | (parser.m_headers.valid & (in_flight < NSLOT)))
        take = Signal()
        m.d.comb += [
            parser.m_axis.ready.eq(gate),
            take.eq(parser.m_axis.valid & gate),
            parser.m_headers.ready.eq(take & f_first),
            inc.eq(take & f_first),
        ]
        rec_now = Signal.like(f_rec)
        m.d.comb += rec_now.eq(Mux(f_first, rec, f_rec))
        base_now = Mux(f_first, wp, f_base)

        w0, w1 = ring0.write_port(), ring1.write_port()
        for port, bank in ((w0, 0), (w1, 1)):
            m.d.comb += [port.addr.eq(wp[1:]), port.data.eq(pb.data),
                         port.en.eq(take & (wp[0] == bank))]
        tw = tpl_mem.write_port()
        m.d.comb += [tw.addr.eq(f_slot * hb + f_j), tw.data.eq(pb.data),
                     tw.en.eq(take & (f_j < hb))]

        tpl = Signal(8 * MAX_HEADER)
        tpl_next = Signal(8 * MAX_HEADER)
        m.d.comb += tpl_next.eq(tpl)
        with m.Switch(f_j):
            for b in range(hb):
                with m.Case(b):
                    m.d.comb += tpl_next[b * w:(b + 1) * w].eq(pb.data)

        with m.If(take):
            m.d.sync += wp.eq(wp + 1)
            with m.If(f_j < hb):
                m.d.sync += tpl.eq(tpl_next)
            with m.If(f_first):
                m.d.sync += [f_rec.eq(rec), f_base.eq(wp)]
            with m.If(pb.last):
                m.d.sync += [f_first.eq(1), f_j.eq(0), f_bytes.eq(0), f_slot.eq(f_slot + 1)]
            with m.Else():
                m.d.sync += [f_first.eq(0), f_j.eq(Mux(f_j == hb, f_j, f_j + 1)),
                             f_bytes.eq(f_bytes + nb)]
        m.d.comb += [lens.w_en.eq(take & pb.last),
                     lens.w_data.eq(f_bytes + _count(pb.keep, nb))]

        # D1: the template is complete; extract the header fields.
        complete = take & (f_j < hb) & ((f_j == hb - 1) | pb.last)
        d1 = {"valid": Signal(), "rec": Signal.like(f_rec), "base": Signal(ROWW),
              "slot": Signal(4), "ip": Signal(8 * 40), "tcp": Signal(8 * 20),
              "dst": Signal(8 * 16), "l2type": Signal(16)}
        ip_x, tcp_x, dst_x = Signal(8 * 40), Signal(8 * 20), Signal(8 * 16)
        with m.Switch(rec_now.l3):
            for off in L3_OFFSETS:
                with m.Case(off):
                    m.d.comb += ip_x.eq(tpl_next[8 * off:8 * (off + 40)])
        with m.Switch(rec_now.l4):
            for off in range(L3_OFFSETS[0] + 20, MAX_HEADER - 20 + 1, 4):
                with m.Case(off):
                    m.d.comb += tcp_x.eq(tpl_next[8 * off:8 * (off + 20)])
        with m.Switch(rec_now.pseudo_dst):
            for off in range(L3_OFFSETS[0] + 16, MAX_HEADER - 16 + 1, 4):
                with m.Case(off):
                    m.d.comb += dst_x.eq(tpl_next[8 * off:8 * (off + 16)])
        m.d.sync += d1["valid"].eq(complete)
        with m.If(complete):
            m.d.sync += [d1["rec"].eq(rec_now), d1["base"].eq(base_now), d1["slot"].eq(f_slot),
                         d1["ip"].eq(ip_x), d1["tcp"].eq(tcp_x), d1["dst"].eq(dst_x),
                         d1["l2type"].eq(_be(tpl_next, 12, 2))]

        # D2: sums, products, the header checks.
        r1 = d1["rec"]
        word = r1.user[32:64]
        mss1, tho1, v2_1, ipver1 = word[0:20], word[20:30], word[30], word[31]
        want6 = v2_1 & ipver1
        enabled = Mux(v2_1, Mux(ipver1, cfg.lso_v2_ipv6, cfg.lso_v2_ipv4), cfg.lso_v1_ipv4)
        max_off = Mux(v2_1, Mux(ipver1, cfg.v2_ipv6_max_offload_size,
                                cfg.v2_ipv4_max_offload_size), cfg.v1_ipv4_max_offload_size)
        min_cnt = Mux(v2_1, Mux(ipver1, cfg.v2_ipv6_min_segment_count,
                                cfg.v2_ipv4_min_segment_count), cfg.v1_ipv4_min_segment_count)
        m_eff = Mux(min_cnt == 0, 1, min_cnt)
        ip1, tcp1, dst1 = d1["ip"], d1["tcp"], d1["dst"]
        src_words = [_be(ip1, 12 + 2 * k, 2) for k in range(2)]
        dst_words4 = [_be(dst1, 2 * k, 2) for k in range(2)]
        src_words6 = [_be(ip1, 8 + 2 * k, 2) for k in range(8)]
        dst_words6 = [_be(dst1, 2 * k, 2) for k in range(8)]
        sum4 = add_tree(src_words + dst_words4 + [C(mparse.IPPROTO_TCP, 8)])
        sum6 = add_tree(src_words6 + dst_words6 + [C(mparse.IPPROTO_TCP, 8)])
        hdr_end1 = r1.l4 + r1.l4_header_len
        l3b = r1.l3
        snap1 = (l3b == 26) | (l3b == 30) | ((l3b == 22) & (d1["l2type"] <= 1500))

        d2 = {"valid": Signal(), "rec": Signal.like(f_rec), "base": Signal(ROWW),
              "slot": Signal(4), "lso": Signal(), "mss": Signal(20), "tho": Signal(10),
              "v2": Signal(), "want6": Signal(), "enabled": Signal(), "max_off": Signal(32),
              "minmul": Signal(36), "pseudo": Signal(16), "hdr_end": Signal(10),
              "snap": Signal(), "flags": Signal(8), "urgent": Signal(16), "csum": Signal(16),
              "seq": Signal(32), "ip_id": Signal(16), "id_linux": Signal()}
        m.d.sync += d2["valid"].eq(d1["valid"])
        with m.If(d1["valid"]):
            m.d.sync += [
                d2["rec"].eq(r1), d2["base"].eq(d1["base"]), d2["slot"].eq(d1["slot"]),
                d2["lso"].eq(word != 0), d2["mss"].eq(mss1), d2["tho"].eq(tho1),
                d2["v2"].eq(v2_1), d2["want6"].eq(want6), d2["enabled"].eq(enabled),
                d2["max_off"].eq(max_off), d2["minmul"].eq((m_eff - 1) * mss1),
                d2["pseudo"].eq(fold16(Mux(r1.is_ipv6, sum6, sum4))),
                d2["hdr_end"].eq(hdr_end1), d2["snap"].eq(snap1),
                d2["flags"].eq(_byte(tcp1, 13)), d2["urgent"].eq(_be(tcp1, 18, 2)),
                d2["csum"].eq(_be(tcp1, 16, 2)), d2["seq"].eq(_be(tcp1, 4, 4)),
                d2["ip_id"].eq(_be(ip1, 4, 2)), d2["id_linux"].eq(cfg.id_linux),
            ]

        # Descriptor: the model's checks 2-9 in order (LSOv1 Total Length vs buffer: later).
        r2 = d2["rec"]
        total = r2.user[TXU:TXU + 16]
        err = r2.error
        err_reason = Mux(Cat(*[err == e for e in _MALFORMED]).any(), TxStatus.MALFORMED,
                         Mux(Cat(*[err == e for e in _TOO_LONG]).any(),
                             TxStatus.LSO_HEADERS_TOO_LONG, TxStatus.LSO_NOT_TCP))

        def norm(v):
            return Mux(v == 0xFFFF, 0, v)

        checks = [
            (~d2["enabled"], TxStatus.LSO_DISABLED),
            (d2["mss"] == 0, TxStatus.LSO_BAD_MSS),
            (err != 0, err_reason),
            (r2.is_fragment, TxStatus.LSO_GUARANTEE),
            (Mux(d2["want6"], ~r2.is_ipv6, ~r2.is_ipv4), TxStatus.LSO_NOT_TCP),
            ((r2.l4_proto != mparse.IPPROTO_TCP) | (r2.l4_header_len == 0),
             TxStatus.LSO_NOT_TCP),
            (d2["tho"] != r2.l4, TxStatus.LSO_BAD_HEADER_OFFSET),
            (d2["hdr_end"] > MAX_HEADER, TxStatus.LSO_HEADERS_TOO_LONG),
            ((d2["flags"] & (_URG | _RST | _SYN)) != 0, TxStatus.LSO_GUARANTEE),
            (d2["urgent"] != 0, TxStatus.LSO_GUARANTEE),
            (r2.is_ipv4 & d2["v2"] & (total != 0), TxStatus.LSO_GUARANTEE),
            (norm(d2["csum"]) != norm(d2["pseudo"]), TxStatus.LSO_GUARANTEE),
        ]
        reason = C(0, 4)
        for cond, code in reversed(checks):
            reason = Mux(cond, code, reason)

        desc = Signal(_DESC)
        hdr_end2 = d2["hdr_end"][:8]
        smax = Mux(d2["snap"], _SNAP_LIMIT - (hdr_end2 - r2.l3), TX_MAX_FRAME - hdr_end2)
        minreq = Mux(d2["minmul"] + 1 > CAP, CAP, d2["minmul"] + 1)
        announced = Signal(signed(20))      # LSOv1: the payload the Total Length announces
        m.d.comb += announced.eq(r2.l3 + total - hdr_end2)
        m.d.comb += [
            desc.base.eq(d2["base"]), desc.slot.eq(d2["slot"]), desc.user.eq(r2.user[:TXU]),
            desc.reason.eq(reason), desc.v2.eq(d2["v2"]), desc.total.eq(total),
            desc.l3.eq(r2.l3), desc.hdr_end.eq(hdr_end2), desc.l4.eq(r2.l4),
            desc.ipv6.eq(r2.is_ipv6), desc.snap.eq(d2["snap"]), desc.mss.eq(d2["mss"]),
            desc.max_off.eq(d2["max_off"]), desc.minmul.eq(d2["minmul"]), desc.smax.eq(smax),
            desc.mss_ok.eq(d2["mss"] <= smax),
            desc.limit.eq(Mux(d2["v2"], d2["max_off"], announced)),
            desc.minreq.eq(minreq), desc.seq.eq(d2["seq"]), desc.ip_id.eq(d2["ip_id"]),
            desc.id_linux.eq(d2["id_linux"]), desc.flags.eq(d2["flags"]),
            desc.csum.eq(d2["csum"]),
        ]
        predicted_drop = ~d2["v2"] & ((announced < 0) | (_core_reason(announced, desc) != 0))
        m.d.comb += desc.mode.eq(Mux(~d2["lso"], _PASS,
                                     Mux((reason != 0) | predicted_drop, _DROP, _LSO)))
        # D3: the descriptor, registered on its way into the FIFO (it is worked out from D2's
        # registers by a long chain of checks; the back waits on the FIFO, not on this).
        d3_valid, d3_desc = Signal(), Signal(_DESC)
        m.d.sync += [d3_valid.eq(d2["valid"]), d3_desc.eq(desc)]
        m.d.comb += [descs.w_en.eq(d3_valid), descs.w_data.eq(d3_desc)]

        # ============================ back ================================================
        # The back sees the front one cycle late: ``wp_b`` is ``wp`` delayed, as the lengths
        # FIFO (registered read) delays a frame's length; so a frame's last row and its
        # length become visible together, as they were written. ``ended``/``n`` are the
        # current frame's length as soon as it is visible; ``verdict`` and ``payload_total``
        # are registered from it and valid while ``ended_r`` (one cycle later).
        cur = Signal(_DESC)
        wp_b = Signal(ROWW)
        m.d.sync += wp_b.eq(wp)
        ended = lens.r_rdy
        n = lens.r_data
        rows_n = (n + nb - 1) >> lognb
        written = Signal(ROWW)
        m.d.comb += written.eq(wp_b - cur.base)
        # Payload bytes of the send that have arrived, registered: a cycle late, so never more
        # than have arrived (the count only grows), and 0 in the cycle after ``cur`` changes.
        avail = Signal(signed(34))
        m.d.sync += avail.eq(Mux(descs.r_en, 0, Mux(ended, n, written << lognb) - cur.hdr_end))
        ended_r = Signal()
        verdict = Signal(4)
        payload_total = Signal(signed(34))
        m.d.sync += [ended_r.eq(ended & ~lens.r_en & ~descs.r_en),
                     verdict.eq(end_reason(n, cur)), payload_total.eq(n - cur.hdr_end)]

        seg_word = Signal(word_layout(nbl.ChecksumTx))
        m.d.comb += [seg_word.IsIPv4.eq(~cur.ipv6), seg_word.IsIPv6.eq(cur.ipv6),
                     seg_word.TcpChecksum.eq(1), seg_word.IpHeaderChecksum.eq(~cur.ipv6),
                     seg_word.TcpHeaderOffset.eq(cur.l4)]

        # The completion a finishing frame pushes, and the bookkeeping of finishing.
        finish = Signal()
        fin_status = Signal(8)
        fin_sent = Signal()         # an LSOv1 send that went: TcpPayload = payload
        comp = Signal(word_layout(nbl.TxCompletion))
        lso_word = Mux(cur.v2, 1 << 30, Mux(fin_sent, payload_total[:30], 0))
        m.d.comb += [
            comp.LsoComplete.eq(Mux(cur.mode == _PASS, 0, lso_word)),
            comp.Status.eq(fin_status),
            comps.w_en.eq(finish), comps.w_data.eq(comp),
            lens.r_en.eq(finish), dec.eq(finish),
        ]
        # Pending segment (the next to decide) and emitting segment (beats being issued).
        pend = {"off": Signal(32), "end": Signal(33), "need": Signal(33), "q": Signal(ROWW),
                "rho": Signal(max(1, lognb)), "seq": Signal(32), "id": Signal(16),
                "first": Signal()}
        emitting, final = Signal(), Signal()
        e = {"row": Signal(ROWW), "rho": Signal(max(1, lognb)), "j": Signal(range(hb + 1)),
             "hrem": Signal(8), "rem": Signal(16), "seg": Signal(_SEGMENT)}
        pass_row = Signal(ROWW)
        pass_bytes = Signal(32)

        cmd_layout = data.StructLayout({
            "row": ROWW, "rho": max(1, lognb), "tpl": range(NSLOT * hb), "hdr": range(nb + 1),
            "keep": range(nb + 1), "last": 1, "user": TXU, "j": range(hb + 1),
            "patch": _PATCH})
        cmd = Signal(cmd_layout)
        issue = Signal()
        out = self.m_axis
        adv = Signal()
        m.d.comb += adv.eq(~out.valid | out.ready)

        emit_last_beat = e["rem"] <= nb
        m.d.comb += [
            cmd.row.eq(e["row"]), cmd.rho.eq(e["rho"]),
            cmd.tpl.eq(cur.slot * hb + Mux(e["j"] >= hb, hb - 1, e["j"])),
            cmd.hdr.eq(Mux(e["hrem"] > nb, nb, e["hrem"])),
            cmd.keep.eq(Mux(emit_last_beat, e["rem"], nb)), cmd.last.eq(emit_last_beat),
            cmd.user.eq(Mux(e["j"] == 0, seg_word.as_value(), 0)), cmd.j.eq(e["j"]),
        ]
        sg, cp = e["seg"], cmd.patch
        tcp_sum = sg.csum + (sg.hdr - sg.l4 + sg.size)
        m.d.comb += [
            cp.l3.eq(sg.l3), cp.l4.eq(sg.l4), cp.ipv6.eq(sg.ipv6), cp.snap.eq(sg.snap),
            cp.ipid.eq(sg.ipid), cp.seq.eq(sg.seq), cp.flags.eq(sg.flags),
            cp.len8023.eq(sg.hdr - sg.l3 + 8 + sg.size),
            cp.iplen.eq(Mux(sg.ipv6, sg.hdr - sg.l3 - 40 + sg.size, sg.hdr - sg.l3 + sg.size)),
            cp.csum.eq(tcp_sum[:16] + tcp_sum[16:]),
        ]

        def load_pend(mss, minreq_v, seq, ip_id):
            m.d.sync += [pend["off"].eq(0), pend["end"].eq(mss),
                         pend["need"].eq(Mux(mss + 1 > minreq_v, mss + 1, minreq_v)),
                         pend["q"].eq(0), pend["rho"].eq(0), pend["seq"].eq(seq),
                         pend["id"].eq(ip_id), pend["first"].eq(1)]

        # Decisions on the pending segment.
        emit_last = ended_r & (verdict == TxStatus.SENT) & (payload_total <= pend["end"])
        emit_mid = cur.mss_ok & (pend["need"] <= cur.limit) & (avail >= pend["need"])
        abort = ~emit_last & ~emit_mid & (
            ended_r | ((avail > cur.limit) & (pend["need"] > cur.limit)) |
            (~cur.mss_ok & (avail > cur.smax)))

        dnext = Signal(_DESC)
        m.d.comb += dnext.eq(descs.r_data)

        def start_next():
            """Take the next frame's descriptor, if there is one (also as a frame ends)."""
            with m.If(descs.r_rdy):
                m.d.comb += descs.r_en.eq(1)
                m.d.sync += [cur.eq(dnext), emitting.eq(0), final.eq(0),
                             pass_row.eq(dnext.base), pass_bytes.eq(0)]
                load_pend(dnext.mss, dnext.minreq, dnext.seq, dnext.ip_id)
                with m.Switch(dnext.mode):
                    with m.Case(_PASS):
                        m.next = "PASS"
                    with m.Case(_LSO):
                        m.next = "SEG"
                    with m.Default():
                        m.next = "DRAIN"
            with m.Else():
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                start_next()

            with m.State("PASS"):
                diff = Signal(ROWW)
                m.d.comb += diff.eq(wp_b - pass_row)
                is_last = ended & (pass_bytes + nb >= n)
                can = adv & (ended | (diff != 0)) & (~is_last | comps.w_rdy)
                m.d.comb += [
                    cmd.row.eq(pass_row), cmd.rho.eq(0), cmd.hdr.eq(0),
                    cmd.keep.eq(Mux(is_last, n - pass_bytes, nb)), cmd.last.eq(is_last),
                    cmd.user.eq(Mux(pass_bytes == 0, cur.user, 0)), issue.eq(can),
                ]
                with m.If(can):
                    m.d.sync += [pass_row.eq(pass_row + 1), pass_bytes.eq(pass_bytes + nb),
                                 fp.eq(pass_row)]
                    with m.If(is_last):
                        m.d.comb += [finish.eq(1), fin_status.eq(TxStatus.SENT)]
                        start_next()

            with m.State("SEG"):
                can = adv & emitting & (~(final & emit_last_beat) | comps.w_rdy)
                m.d.comb += issue.eq(can)
                with m.If(can):
                    m.d.sync += [e["row"].eq(e["row"] + 1),
                                 e["j"].eq(Mux(e["j"] == hb, hb, e["j"] + 1)),
                                 e["hrem"].eq(Mux(e["hrem"] > nb, e["hrem"] - nb, 0)),
                                 e["rem"].eq(e["rem"] - nb)]
                    with m.If(emit_last_beat):
                        m.d.sync += emitting.eq(0)
                can_load = ~emitting | (can & emit_last_beat)
                with m.If(can & emit_last_beat & final):
                    m.d.comb += [finish.eq(1), fin_status.eq(TxStatus.SENT), fin_sent.eq(1)]
                    start_next()
                with m.Elif(can_load & ~final & (emit_last | emit_mid)):
                    size = Signal(16)
                    m.d.comb += size.eq(Mux(emit_last, payload_total - pend["off"], cur.mss))
                    hdr = cur.hdr_end
                    flags = cur.flags
                    seg_flags = (flags & ~(_FIN | _PSH | _CWR)) | \
                        Mux(pend["first"], flags & _CWR, 0) | \
                        Mux(emit_last, flags & (_FIN | _PSH), 0)
                    p = e["seg"]
                    m.d.sync += [
                        emitting.eq(1), final.eq(emit_last),
                        e["row"].eq(cur.base + pend["q"]), e["rho"].eq(pend["rho"]),
                        e["j"].eq(0), e["hrem"].eq(hdr), e["rem"].eq(hdr + size),
                        p.l3.eq(cur.l3), p.l4.eq(cur.l4), p.ipv6.eq(cur.ipv6),
                        p.snap.eq(cur.snap), p.hdr.eq(hdr), p.size.eq(size),
                        p.ipid.eq(pend["id"]), p.seq.eq(pend["seq"]), p.flags.eq(seg_flags),
                        p.csum.eq(cur.csum),
                        fp.eq(cur.base + pend["q"] + ((hdr + pend["rho"]) >> lognb)),
                    ]
                    # Advance the pending segment by one MSS.
                    mss_div = cur.mss >> lognb
                    rho_sum = pend["rho"] + cur.mss[:lognb]
                    end_next = pend["end"] + cur.mss
                    next_id = pend["id"] + 1
                    m.d.sync += [
                        pend["off"].eq(pend["off"] + cur.mss), pend["end"].eq(end_next),
                        pend["need"].eq(Mux(end_next + 1 > cur.minreq, end_next + 1,
                                            cur.minreq)),
                        pend["q"].eq(pend["q"] + mss_div + (rho_sum >> lognb)),
                        pend["rho"].eq(rho_sum[:lognb]),
                        pend["seq"].eq(pend["seq"] + cur.mss),
                        pend["id"].eq(Mux(cur.id_linux, next_id,
                                          Cat(next_id[:15], pend["id"][15]))),
                        pend["first"].eq(0),
                    ]
                with m.Elif(can_load & ~final & abort):
                    m.next = "DRAIN"

            with m.State("DRAIN"):
                with m.If(ended_r):
                    with m.If(comps.w_rdy):
                        m.d.comb += [finish.eq(1), fin_status.eq(verdict)]
                        start_next()
                with m.Else():
                    m.d.sync += fp.eq(wp_b)

        with m.If(finish):          # the frame's rows are free (after every other update)
            m.d.sync += fp.eq(cur.base + rows_n)

        # Read stage: addresses from the command (S0), data with the registered command (S1).
        r0, r1p = ring0.read_port(), ring1.read_port()
        tr = tpl_mem.read_port()
        m.d.comb += [
            r0.addr.eq((cmd.row + 1) >> 1), r1p.addr.eq(cmd.row >> 1), tr.addr.eq(cmd.tpl),
            r0.en.eq(adv), r1p.en.eq(adv), tr.en.eq(adv),
        ]
        c1 = Signal(cmd_layout)
        v1 = Signal()
        with m.If(adv):
            m.d.sync += [v1.eq(issue), c1.eq(cmd)]

        odd = c1.row[0]
        lo = Mux(odd, r1p.data, r0.data)
        hi = Mux(odd, r0.data, r1p.data)
        both = Cat(lo, hi)
        rotated = Signal(w)
        m.d.comb += rotated.eq(both.bit_select(c1.rho * 8, w) if lognb else lo)

        # Header lanes: the template with this segment's fields patched (16-bit words).
        pt = c1.patch
        fields = [  # (offset, value, enable, low byte only)
            (pt.l3 - 10, pt.len8023, pt.snap, False),
            (pt.l3 + Mux(pt.ipv6, 4, 2), pt.iplen, 1, False),
            (pt.l3 + 4, pt.ipid, ~pt.ipv6, False),
            (pt.l3 + 10, C(0, 16), ~pt.ipv6, False),
            (pt.l4 + 4, pt.seq[16:32], 1, False),
            (pt.l4 + 6, pt.seq[0:16], 1, False),
            (pt.l4 + 12, Cat(pt.flags, C(0, 8)), 1, True),
            (pt.l4 + 16, pt.csum, 1, False),
        ]
        header = Signal(w)
        m.d.comb += header.eq(tr.data)
        for off, value, en, low_only in fields:
            at = Signal(8)
            m.d.comb += at.eq(off)
            hit_beat = Signal()
            m.d.comb += hit_beat.eq(en & ((at >> lognb) == c1.j))
            for k in range(nb // 2):
                with m.If(hit_beat & ((at[1:lognb] if lognb > 1 else 0) == k)):
                    if not low_only:
                        m.d.comb += header[16 * k:16 * k + 8].eq(value[8:16])
                    m.d.comb += header[16 * k + 8:16 * k + 16].eq(value[0:8])

        data_out = Signal(w)
        keep_out = Signal(nb)
        for i in range(nb):
            m.d.comb += [
                data_out[8 * i:8 * i + 8].eq(Mux(c1.hdr > i, header[8 * i:8 * i + 8],
                                                 rotated[8 * i:8 * i + 8])),
                keep_out[i].eq(c1.keep > i),
            ]
        with m.If(adv):
            m.d.sync += [
                out.valid.eq(v1),
                out.payload.data.eq(data_out), out.payload.keep.eq(keep_out),
                out.payload.last.eq(c1.last), out.payload.user.eq(c1.user),
            ]

        m.d.comb += [
            self.m_txc.payload.eq(comps.r_data), self.m_txc.valid.eq(comps.r_rdy),
            comps.r_en.eq(self.m_txc.ready),
        ]
        return m
