"""Large send offload RTL: the segmentation engine, twin of ``nicoffload.model.lso``.

:class:`LsoSegmenter` takes host frames (TxUser in the first beat's ``tuser``: checksum, LSO,
supplemental and length words) with the header record the TX path's one parser made of each
(``hdl/parse.py``, ``lso_lengths``), cuts every large send into MSS-sized segments at line
rate, and hands each frame it sends to the checksum stage
(:class:`nicoffload.hdl.checksum.TxChecksumInsert`) with the record of that frame; a
segment's record asks for the IPv4 header checksum and the TCP checksum. Frames without an
LSO word pass through unchanged. One :class:`~nicoffload.model.nbl.TxCompletion` per host
frame leaves on ``m_txc``, in order. :class:`LsoUnit` is the segmenter with a parser of its
own, the unit that ``--unit lso`` builds and ``tb/tb_lso.py`` checks.

Structure::

    s_axis + s_headers ─► front ─┬─► ring (32 KB, input beats) ───────────────────┐
                         checks  ├─► templates (16 x 256 B) ───────────────────────┤
                         (D1-D4) ├─► descriptors (every check decided) ────────────┤
                                 └─► frame lengths (the frame has arrived) ────────┤
                                                                                   ▼
      m_txc ◄── completions ◄── back: segment sequencer ─► read, rotate, merge ─► m_axis
                                                      └──► records ──────────────► m_headers

Front (one beat per cycle)
    Takes the parser's record with a frame's first beat, writes every beat into the ring,
    the first 256 bytes into the frame's template slot, and once the template is complete
    makes the frame's descriptor in four registered stages: D1 extracts the header fields,
    D2 works out sums and products, D3 the model's header checks 2-9 in order, D4 the checks
    that need the send's length (LSOv1 Total Length against the buffer, checks 10-12), from
    the length word of ``tuser`` (DESIGN 2: what a DMA engine reads from the descriptor
    before the first byte moves). So the descriptor says PASS (no LSO word), DROP (with the
    model's reason) or LSO before any segment of the send leaves: a bad send is dropped
    whole, at every size. At the frame's last beat its length goes into the lengths FIFO.
Back (one output beat per cycle)
    Output beat ``j`` of segment ``k`` (payload offset ``off = k * MSS``) is the window of the
    input frame at byte ``j * W/8 + off``: two consecutive ring rows (even and odd banks, one
    read each), rotated by ``off mod W/8``; lanes before the header end come from the template
    slot with the per-segment fields patched (802.3 length, IPv4 Total Length, ID, checksum 0,
    IPv6 Payload Length, sequence number, flags, TCP checksum field = transport's pseudo-header
    sum + TCP length). So the header's last beat and the first payload bytes leave in the same
    cycle, and header replication costs only the header's own beats. The next segment is
    decided while the current one is being sent, so segments follow each other without a gap.
When a segment may go
    A middle segment goes once its payload bytes have arrived, the last one once the whole
    frame has. The segments are a function of the send alone, never of timing.
A frame that is not as long as its length word (a bad descriptor)
    Nothing waits for bytes that never come: when the frame ends, a send still being cut
    stops there (what had left stays left), the rest is drained, and the completion says
    MALFORMED (LSOv1 TcpPayload 0). The model has no twin of this: its frames are their own
    length. A frame without an LSO word is passed as long as it really is.
Timing
    The back sees the front through registers (the write pointer, the lengths FIFO, the bytes
    of the send that have arrived, each a cycle late but consistent with one another) and the
    per-segment length fields and TCP checksum are worked out as the segment's first beat is
    issued; each decision is a comparison of registers and a choice.
Segments that do not fit the checksum stage
    A segment longer than ``TX_MAX_FRAME`` would leave the checksum stage without checksums,
    so ``hdr_end + min(MSS, payload) > TX_MAX_FRAME`` is LSO_BAD_MSS (``model.lso`` check 12,
    ``LsoLimits.max_segment_bytes``); the 802.3 rule is applied beside it.
"""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model import parse as mparse
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.lso import LsoLimits
from nicoffload.model.nbl import TxStatus

from .axis import AxisSignature, axis_layout, check_width
from .layouts import word_layout
from .onesum import add_tree, fold16
from .parse import HEADERS_LAYOUT, L3_OFFSETS, WINDOW_BYTES, FrameParser
from .stream import RegisterSlice, StreamFIFO

__all__ = ["LSO_CONFIG", "config_value", "LsoSegmenter", "LsoUnit", "end_reason",
           "MAX_HEADER", "RING_BYTES", "NSLOT"]

TXU = nbl.TxUser.width()        # 128: checksum, LSO, supplemental and length words
_LENGTH = slice(96, 128)        # the length word in TxUser
MAX_HEADER = WINDOW_BYTES       # DESIGN 3: headers end within 256 bytes (template size)
#: Ring of input beats: three of the longest segments (``TX_MAX_FRAME``) and slack, so the
#: front keeps writing while the back sends a segment whose bytes have all arrived.
RING_BYTES = 32768
assert RING_BYTES & (RING_BYTES - 1) == 0, "the ring is a power of two bytes"
assert RING_BYTES >= 3 * TX_MAX_FRAME
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
    "mode": 2, "base": ROWW, "slot": 4, "user": TXU, "hdr_rec": HEADERS_LAYOUT(0),
    "reason": 4, "v2": 1, "total": 16, "l3": 8, "hdr_end": 9, "l4": 8, "ipv6": 1, "snap": 1,
    "mss": 20, "max_off": 32, "minmul": 36, "smax": 14, "length": 32, "payload": 33,
    "seq": 32, "ip_id": 16, "id_linux": 1, "flags": 8, "csum": 16,
})

_PATCH = data.StructLayout({
    "l3": 8, "l4": 9, "ipv6": 1, "snap": 1, "len8023": 16, "iplen": 16, "ipid": 16,
    "seq": 32, "flags": 8, "csum": 16,
})

# What the sequencer keeps of the segment it emits; the length fields and the checksum of
# ``_PATCH`` are worked out from it as its beats are issued (off the decision's path).
_SEGMENT = data.StructLayout({
    "l3": 8, "l4": 8, "ipv6": 1, "snap": 1, "ipid": 16, "seq": 32, "flags": 8,
    "hdr": 9, "size": 16, "csum": 16,
})


class LsoSegmenter(wiring.Component):
    """LSOv1/LSOv2 segmentation at line rate, the RTL of ``model.lso.segment``.

    It parses nothing itself: each frame's header record comes from the TX path's one
    :class:`~nicoffload.hdl.parse.FrameParser` (built with ``lso_lengths=True``), and each
    frame it sends leaves with its own record for the checksum stage.

    Parameters
    ----------
    width : int
        Data width W in bits: 64, 128, 256 or 512.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 128))
        Host frames from the parser; ``user`` on the first beat is ``nbl.TxUser`` (checksum,
        LSO, supplemental and length words). Frames of up to 2**32 - 1 bytes.
    s_headers : In(stream.Signature(HEADERS_LAYOUT(128)))
        The parser's record of each frame; taken with the frame's first beat.
    m_axis : Out(AxisSignature(W, 128))
        For a frame without an LSO word: the frame unchanged with its own first-beat
        ``tuser``. For a large send: its segments, each a complete frame with IPv4 checksum
        field 0 and TCP checksum field = pseudo-header sum + TCP length, and on its first beat
        ``tuser`` = ChecksumTx{IsIPv4 or IsIPv6, TcpChecksum, IpHeaderChecksum (IPv4),
        TcpHeaderOffset} (the other words 0), which makes ``model.checksum.tx_fill`` (and
        :class:`~nicoffload.hdl.checksum.TxChecksumInsert`) produce the model's segments.
        ``user`` is 0 on other beats.
    m_headers : Out(stream.Signature(HEADERS_LAYOUT(128)))
        One record per frame on ``m_axis``, in order, valid no later than its first beat:
        the parser's for a frame passed unchanged, and for a segment what the parser says
        of the segment (its lengths; ``user`` its first-beat ``tuser``).
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
            "s_headers": In(stream.Signature(HEADERS_LAYOUT(TXU))),
            "m_axis": Out(AxisSignature(width, TXU)),
            "m_headers": Out(stream.Signature(HEADERS_LAYOUT(TXU))),
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

        m.submodules.ring0 = ring0 = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.ring1 = ring1 = Memory(shape=unsigned(w), depth=half, init=[])
        m.submodules.tpl = tpl_mem = Memory(shape=unsigned(w), depth=NSLOT * hb, init=[])
        m.submodules.descs = descs = fifo.SyncFIFO(width=_DESC.size, depth=NSLOT)
        m.submodules.lens = lens = fifo.SyncFIFOBuffered(width=32, depth=NSLOT)
        m.submodules.comps = comps = fifo.SyncFIFOBuffered(
            width=word_layout(nbl.TxCompletion).size, depth=8)
        m.submodules.records = records = StreamFIFO(HEADERS_LAYOUT(TXU), 4)
        wiring.connect(m, records.m, wiring.flipped(self.m_headers))

        wp = Signal(ROWW)           # rows written (front)
        fp = Signal(ROWW)           # rows below fp may be overwritten (back)
        in_flight = Signal(range(NSLOT + 1))
        inc, dec = Signal(), Signal()
        m.d.sync += in_flight.eq(in_flight + inc - dec)

        # ============================ front ===============================================
        rec = self.s_headers.payload
        pb = self.s_axis.payload
        f_first = Signal(init=1)
        f_j = Signal(range(hb + 1))
        f_bytes = Signal(32)
        f_base = Signal(ROWW)
        f_slot = Signal(4)
        f_rec = Signal(HEADERS_LAYOUT(TXU))
        # Room for a row, registered: a cycle late and a row short (``wp`` grows by at most one
        # a cycle and ``fp`` never falls), so the many enables behind ``take`` start from a
        # flip-flop and not from a subtraction.
        room = Signal()
        m.d.sync += room.eq(wp - fp < depth - 1)
        gate = room & (~f_first | (self.s_headers.valid & (in_flight < NSLOT)))
        take = Signal()
        m.d.comb += [
            self.s_axis.ready.eq(gate),
            take.eq(self.s_axis.valid & gate),
            self.s_headers.ready.eq(take & f_first),
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
              "seq": Signal(32), "ip_id": Signal(16), "id_linux": Signal(),
              "total": Signal(16)}
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
                d2["total"].eq(_be(ip1, 2, 2)),
            ]

        # Descriptor: the model's checks 2-9 in order (LSOv1 Total Length vs buffer: D4).
        r2 = d2["rec"]
        total = d2["total"]         # as the host wrote it (the parser walked a substitute)
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
        hdr_end2 = d2["hdr_end"][:9]
        length = r2.user[_LENGTH]
        smax = Mux(d2["snap"], _SNAP_LIMIT - (hdr_end2 - r2.l3), TX_MAX_FRAME - hdr_end2)
        m.d.comb += [
            desc.base.eq(d2["base"]), desc.slot.eq(d2["slot"]), desc.user.eq(r2.user[:TXU]),
            desc.hdr_rec.eq(r2.as_value()[:HEADERS_LAYOUT(0).size]),
            desc.reason.eq(reason), desc.v2.eq(d2["v2"]), desc.total.eq(total),
            desc.l3.eq(r2.l3), desc.hdr_end.eq(hdr_end2), desc.l4.eq(r2.l4),
            desc.ipv6.eq(r2.is_ipv6), desc.snap.eq(d2["snap"]), desc.mss.eq(d2["mss"]),
            desc.max_off.eq(d2["max_off"]), desc.minmul.eq(d2["minmul"]), desc.smax.eq(smax),
            desc.length.eq(length), desc.payload.eq(length - hdr_end2),
            desc.seq.eq(d2["seq"]), desc.ip_id.eq(d2["ip_id"]),
            desc.id_linux.eq(d2["id_linux"]), desc.flags.eq(d2["flags"]),
            desc.csum.eq(d2["csum"]),
            desc.mode.eq(Mux(d2["lso"], _LSO, _PASS)),
        ]
        # D3: the descriptor registered; D4: the checks that need the send's length (the
        # length word: DESIGN 2), so every check is decided before the first segment leaves
        # and a bad send is dropped whole. D4's verdict goes into the FIFO with it.
        d3_valid, d3_desc = Signal(), Signal(_DESC)
        m.d.sync += [d3_valid.eq(d2["valid"]), d3_desc.eq(desc)]
        d4_valid, d4_desc = Signal(), Signal(_DESC)
        verdict_now = Signal(4)
        m.d.comb += verdict_now.eq(end_reason(d3_desc.length, d3_desc))
        m.d.sync += [d4_valid.eq(d3_valid), d4_desc.eq(d3_desc)]
        with m.If(d3_desc.mode == _LSO):
            m.d.sync += [d4_desc.reason.eq(verdict_now),
                         d4_desc.mode.eq(Mux(verdict_now != 0, _DROP, _LSO))]
        m.d.comb += [descs.w_en.eq(d4_valid), descs.w_data.eq(d4_desc)]

        # ============================ back ================================================
        # The back sees the front one cycle late: ``wp_b`` is ``wp`` delayed, as the lengths
        # FIFO (registered read) delays a frame's length; so a frame's last row and its
        # length become visible together, as they were written. ``ended``/``n`` are the
        # current frame's length as soon as it is visible; ``short_or_long`` (the frame's
        # length is not its length word: a bad descriptor) is registered from it and valid
        # while ``ended_r`` (one cycle later).
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
        short_or_long = Signal()
        payload_total = cur.payload
        m.d.sync += [ended_r.eq(ended & ~lens.r_en & ~descs.r_en),
                     short_or_long.eq(n != cur.length)]
        # What a finished DROP (or cut) send's completion says: the verdict made before its
        # first byte left, or MALFORMED when its bytes do not match its length word.
        verdict = Mux(cur.mode == _LSO, TxStatus.MALFORMED, cur.reason)

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
        pend = {"off": Signal(32), "end": Signal(33), "q": Signal(ROWW),
                "rho": Signal(max(1, lognb)), "seq": Signal(32), "id": Signal(16),
                "first": Signal()}
        emitting, final = Signal(), Signal()
        e = {"row": Signal(ROWW), "rho": Signal(max(1, lognb)), "j": Signal(range(hb + 1)),
             "hrem": Signal(9), "rem": Signal(16), "seg": Signal(_SEGMENT)}
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

        def load_pend(mss, seq, ip_id):
            m.d.sync += [pend["off"].eq(0), pend["end"].eq(mss),
                         pend["q"].eq(0), pend["rho"].eq(0), pend["seq"].eq(seq),
                         pend["id"].eq(ip_id), pend["first"].eq(1)]

        # Decisions on the pending segment: the send passed every check before it started
        # (D4), so a segment goes once its bytes have arrived; the last one once the whole
        # frame has, and only if the frame is as long as its length word said (else the
        # send is cut there: a bad descriptor, never a hang).
        seg_is_last = payload_total <= pend["end"]
        emit_last = ended_r & seg_is_last & ~short_or_long
        emit_mid = ~seg_is_last & (avail >= pend["end"])
        abort = ~emit_mid & ended_r & short_or_long

        dnext = Signal(_DESC)
        m.d.comb += dnext.eq(descs.r_data)

        def start_next():
            """Take the next frame's descriptor, if there is one (also as a frame ends)."""
            with m.If(descs.r_rdy):
                m.d.comb += descs.r_en.eq(1)
                m.d.sync += [cur.eq(dnext), emitting.eq(0), final.eq(0),
                             pass_row.eq(dnext.base), pass_bytes.eq(0)]
                load_pend(dnext.mss, dnext.seq, dnext.ip_id)
                with m.Switch(dnext.mode):
                    with m.Case(_PASS):
                        m.next = "PASS"
                    with m.Case(_LSO):
                        m.next = "SEG"
                    with m.Default():
                        m.next = "DRAIN"
            with m.Else():
                m.next = "IDLE"

        # The record of each frame sent, pushed with its first beat: the parser's for a frame
        # passed unchanged; for a segment, what the parser says of the segment.
        pass_rec, seg_rec = Signal(HEADERS_LAYOUT(TXU)), Signal(HEADERS_LAYOUT(TXU))
        sg = e["seg"]
        m.d.comb += [
            pass_rec.eq(Cat(cur.hdr_rec, cur.user)),
            seg_rec.eq(pass_rec),
            seg_rec.error.eq(0), seg_rec.is_fragment.eq(0), seg_rec.ip_end_unchecked.eq(0),
            seg_rec.ip_end.eq(sg.hdr + sg.size), seg_rec.l4_end.eq(sg.hdr + sg.size),
            seg_rec.user.eq(seg_word.as_value()),
        ]

        with m.FSM():
            with m.State("IDLE"):
                start_next()

            with m.State("PASS"):
                diff = Signal(ROWW)
                m.d.comb += diff.eq(wp_b - pass_row)
                is_last = ended & (pass_bytes + nb >= n)
                first_beat = pass_bytes == 0
                can = adv & (ended | (diff != 0)) & (~is_last | comps.w_rdy) & \
                    (~first_beat | records.s.ready)
                m.d.comb += [
                    records.s.valid.eq(can & first_beat), records.s.payload.eq(pass_rec),
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
                first_beat = e["j"] == 0
                can = adv & emitting & (~(final & emit_last_beat) | comps.w_rdy) & \
                    (~first_beat | records.s.ready)
                m.d.comb += [issue.eq(can), records.s.valid.eq(can & first_beat),
                             records.s.payload.eq(seg_rec)]
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


class LsoUnit(wiring.Component):
    """The segmenter as a unit of its own: the TX parser, then :class:`LsoSegmenter`.

    What ``nicoffload verilog/synth --unit lso`` and ``tb/tb_lso.py`` build; in the NIC the
    parser is the TX path's (``hdl/txpath.py``) and the records go on to the checksum stage.
    Both boundaries are register slices (DESIGN 2).

    Attributes
    ----------
    s_axis, m_axis, m_txc, limits
        As :class:`LsoSegmenter`'s (``m_axis`` without the records).
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
        w = self.width
        m.submodules.parser = parser = FrameParser(w, TXU, lso_lengths=True)
        m.submodules.beats_in = beats_in = RegisterSlice(axis_layout(w, TXU))
        m.submodules.records_in = records_in = RegisterSlice(HEADERS_LAYOUT(TXU))
        m.submodules.segmenter = segmenter = LsoSegmenter(w)
        m.submodules.beats_out = beats_out = RegisterSlice(axis_layout(w, TXU))
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        wiring.connect(m, parser.m_axis, beats_in.s)
        wiring.connect(m, parser.m_headers, records_in.s)
        wiring.connect(m, beats_in.m, segmenter.s_axis)
        wiring.connect(m, records_in.m, segmenter.s_headers)
        wiring.connect(m, segmenter.m_axis, beats_out.s)
        wiring.connect(m, beats_out.m, wiring.flipped(self.m_axis))
        wiring.connect(m, segmenter.m_txc, wiring.flipped(self.m_txc))
        m.d.comb += [segmenter.m_headers.ready.eq(1), segmenter.limits.eq(self.limits)]
        return m
