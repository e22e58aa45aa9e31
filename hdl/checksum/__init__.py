"""Checksum offload RTL: the twin of ``nicoffload.model.checksum``.

:class:`TxChecksum` fills the IPv4 header and TCP/UDP checksums that each frame's
NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO word (first-beat ``tuser``) asks for;
:class:`RxChecksum` validates them and puts the receive info word on each frame's last beat.
Both follow the model's rules exactly (see that module's docstring for every decision).

Structure, one beat per cycle throughout::

    s_axis ─► FrameParser ─► SumPipeline ─┬─► (RX) flags on the last beat ─► m_axis
              (hdl/parse)                 └─► (TX) frame FIFO + result FIFO ─► patch ─► m_axis

TX writes up to four fields a frame (:data:`TX_RECORD`); an NVGRE frame asking for the
encapsulated offload (``model.checksum`` rule 8) gets the outer and inner IPv4 header
checksums, the inner TCP/UDP checksum and, last, the GRE checksum, worked out from the sum of
the GRE region and the new inner field values (:class:`TxRecordPipe`).

:class:`SumPipeline` sums while the frame streams ("sum while buffering"): each beat's bytes
are masked by the byte ranges the header record names (IPv4 header; L4 header to ``l4_end``;
the inner IPv4 header of an NVGRE frame; for RX also the pseudo-header addresses; for TX the
GRE region of an NVGRE frame asking for the encapsulated offload) and added by the ``hdl.onesum`` trees, so the sums
are ready a fixed few cycles after a frame's last beat. RX is cut-through behind the parser's
header window; TX stores each frame (it must, to write a header after summing the payload)
in a FIFO of a maximum frame and more (a power of two of beats, one block RAM deep), so the
next frame streams in while this one goes out.

Parts: ``sums.py`` (:class:`SumPipeline`, the beat-lane helpers, the deferred parse check),
``insert.py`` (:class:`TxChecksumInsert` and its record); here the RX verdict and the units.
"""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl
from nicoffload.model.checksum import RX_ENABLE_NAMES, TX_MAX_FRAME
from nicoffload.model.parse import IPPROTO_TCP, IPPROTO_UDP

from ..axis import AxisSignature, axis_layout, check_width, connect_beats
from ..layouts import word_layout
from ..parse import HEADERS_LAYOUT, FrameParser
from ..stream import RegisterSlice
from .insert import TX_RECORD, TxChecksumInsert, TxRecordPipe, tx_decision
from .sums import SumPipeline, effective_error, range_mask

__all__ = ["TX_MAX_FRAME", "RX_ENABLES", "SumPipeline", "rx_flags", "RxChecksum", "TxChecksum",
           "TxChecksumInsert", "TX_RECORD", "tx_decision", "TxRecordPipe", "effective_error",
           "range_mask"]


#: The receive enables, one bit each, named as the model's ChecksumEnables.
RX_ENABLES = data.StructLayout({name: 1 for name in RX_ENABLE_NAMES})


def rx_flags(m, sums, enables):
    """The ChecksumRx word of a frame from its :class:`SumPipeline` totals (``sums``: a
    ``SumPipeline.beat_layout`` payload of its last beat) and the receive ``enables``: the
    model's ``checksum.rx_validate`` rules, in one place for every RX unit."""
    hdr, en = sums.hdr, enables
    flags = Signal(word_layout(nbl.ChecksumRx))
    ok = en.rx_active & (effective_error(hdr, sums.frame_len) == 0)
    # NVGRE with the encapsulated packet task offload on: the inner IPv4 header is checked
    # too, and the TCP/UDP flags are the inner transport header's (``l4_sum`` and the UDP
    # word are of it). Else the outer headers only (a GRE frame has no TCP/UDP flags).
    inner = en.encap & hdr.is_nvgre

    def pick(name):
        return Mux(inner, getattr(hdr, f"inner_{name}"), getattr(hdr, name))

    is_ipv4 = pick("is_ipv4")       # the transport header's IP version
    l4 = (pick("l4_header_len") != 0) & ~pick("is_fragment")
    is_tcp = l4 & (pick("l4_proto") == IPPROTO_TCP)
    is_udp = l4 & (pick("l4_proto") == IPPROTO_UDP)
    tcp_on = Mux(is_ipv4, en.rx_tcp_ipv4, en.rx_tcp_ipv6)
    udp_on = Mux(is_ipv4, en.rx_udp_ipv4, en.rx_udp_ipv6)
    inner_ip = inner & hdr.inner_is_ipv4
    ip_check = ok & (hdr.is_ipv4 | inner_ip) & en.rx_ipv4_checksum
    tcp_check = ok & is_tcp & tcp_on
    udp_zero = sums.udp_field == 0
    udp_check = ok & is_udp & udp_on & ~(udp_zero & is_ipv4)
    ip_good = (~hdr.is_ipv4 | (sums.ip_sum == 0xFFFF)) & \
        (~inner_ip | (sums.inner_ip_sum == 0xFFFF))
    l4_good = sums.l4_sum == 0xFFFF
    m.d.comb += [
        flags.IpChecksumSucceeded.eq(ip_check & ip_good),
        flags.IpChecksumFailed.eq(ip_check & ~ip_good),
        flags.TcpChecksumSucceeded.eq(tcp_check & l4_good),
        flags.TcpChecksumFailed.eq(tcp_check & ~l4_good),
        flags.UdpChecksumSucceeded.eq(udp_check & l4_good & ~udp_zero),
        flags.UdpChecksumFailed.eq(udp_check & (~l4_good | udp_zero)),
    ]
    return flags


class RxChecksum(wiring.Component):
    """Receive checksum validation, cut-through; the info word rides on the last beat.

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W))
        Frames from the wire.
    m_axis : Out(AxisSignature(W, 96))
        The same frames, unchanged; ``user`` on the last beat is ``nbl.RxUser``: the
        ChecksumRx word in bits 0..31 (RSC words zero). Registered: a beat, ``user``
        included, does not change while it waits for ``ready``.
    enables : In(RX_ENABLES)
        The receive enables (``rx_active``, one per checksum, ``encap``: NVGRE), from the
        configuration.
        A frame's flags follow the enables of the cycle its last beat enters the output
        register; a change reaches no beat already on ``m_axis``.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width)),
            "m_axis": Out(AxisSignature(width, nbl.RxUser.width())),
            "enables": In(RX_ENABLES),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = FrameParser(self.width, 0)
        m.submodules.sums = sums = SumPipeline(self.width, 0, rx=True)
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        wiring.connect(m, parser.m_axis, sums.s_axis)
        wiring.connect(m, parser.m_headers, sums.s_headers)

        p = sums.m_axis.payload
        flags = rx_flags(m, p, self.enables)
        # The output beat is a register, loaded only when the output is empty or taken: the
        # flags depend on ``enables``, which may change at any time, and a beat on ``m_axis``
        # must not change while it waits (AXI4-Stream: tvalid && !tready holds the payload).
        out = self.m_axis
        advance = Signal()
        m.d.comb += [
            advance.eq(~out.valid | out.ready),
            sums.m_axis.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [
                out.valid.eq(sums.m_axis.valid),
                out.payload.data.eq(p.beat.data),
                out.payload.keep.eq(p.beat.keep),
                out.payload.last.eq(p.beat.last),
                out.payload.user.eq(Mux(p.beat.last, flags.as_value(), 0)),
            ]
        return m


class TxChecksum(wiring.Component):
    """Transmit checksum insertion as a unit of its own: the TX parser, then
    :class:`TxChecksumInsert` (in the TX path the parser is the path's, ``hdl/txpath.py``).

    Parameters
    ----------
    width : int
        Data width W.

    Attributes
    ----------
    s_axis : In(AxisSignature(W, 128))
        Host frames; ``user`` on the first beat is ``nbl.TxUser`` (checksum word in bits
        0..31, supplemental word in bits 64..95; the LSO and length words are ignored here).
    m_axis : Out(AxisSignature(W))
        As :class:`TxChecksumInsert`'s.
    encap : In(1)
        As :class:`TxChecksumInsert`'s.
    """

    def __init__(self, width=64):
        self.width = check_width(width)
        super().__init__({
            "s_axis": In(AxisSignature(width, nbl.TxUser.width())),
            "m_axis": Out(AxisSignature(width)),
            "encap": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w, uw = self.width, nbl.TxUser.width()
        m.submodules.parser = parser = FrameParser(w, uw)
        m.submodules.beats_in = beats_in = RegisterSlice(axis_layout(w))
        m.submodules.records_in = records_in = RegisterSlice(HEADERS_LAYOUT(uw))
        m.submodules.insert = insert = TxChecksumInsert(w)
        wiring.connect(m, wiring.flipped(self.s_axis), parser.s_axis)
        connect_beats(m, parser.m_axis, beats_in.s)
        wiring.connect(m, parser.m_headers, records_in.s)
        wiring.connect(m, beats_in.m, insert.s_axis)
        wiring.connect(m, records_in.m, insert.s_headers)
        wiring.connect(m, insert.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += insert.encap.eq(self.encap)
        return m
