"""What the parts of the LSO segmenter share: sizes, layouts, the configuration port, and the
model's checks that need the send's length (:func:`end_reason`)."""

from amaranth.hdl import *
from amaranth.lib import data

from nicoffload.model import nbl
from nicoffload.model import parse as mparse
from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.lso import LsoLimits
from nicoffload.model.nbl import TxStatus

from ..onesum import add_tree
from ..parse import HEADERS_LAYOUT, WINDOW_BYTES

__all__ = ["TXU", "LENGTH_WORD", "MAX_HEADER", "RING_BYTES", "NSLOT", "ROW_BITS", "SNAP_LIMIT",
           "FIN", "SYN", "RST", "PSH", "URG", "CWR", "MALFORMED_ERRORS", "TOO_LONG_ERRORS",
           "PASS", "LSO", "DROP", "LSO_CONFIG", "config_fields", "config_value", "big_endian",
           "beat_bytes", "LENGTH_FLAGS", "length_flags", "end_reason", "DESCRIPTOR", "SEGMENT",
           "PATCH", "PATCH_PLACES", "PATCH_WORDS", "patch_places", "patch_values",
           "command_layout", "ring_address_layout"]

TXU = nbl.TxUser.width()        # 128: checksum, LSO, supplemental and length words
LENGTH_WORD = slice(96, 128)    # the frame's length in TxUser (DESIGN 2)
MAX_HEADER = WINDOW_BYTES       # DESIGN 3: headers end within 256 bytes (template size)
#: Ring of input beats: three of the longest segments (``TX_MAX_FRAME``) and slack, so the
#: front keeps writing while the back sends a segment whose bytes have all arrived.
RING_BYTES = 32768
assert RING_BYTES & (RING_BYTES - 1) == 0, "the ring is a power of two bytes"
assert RING_BYTES >= 3 * TX_MAX_FRAME
NSLOT = 16                      # frames in flight between front and back (template slots)
ROW_BITS = 24                   # bits of the absolute ring row counters
SNAP_LIMIT = 1500 - 8           # 802.3 length <= 1500: hdr_end - l3 + 8 + payload <= 1500

FIN, SYN, RST, PSH, URG, CWR = 0x01, 0x02, 0x04, 0x08, 0x20, 0x80

#: Parse errors that make an LSO send MALFORMED, and those that make it LSO_HEADERS_TOO_LONG
#: (``model.lso`` check 4); every other error is LSO_NOT_TCP.
MALFORMED_ERRORS = (mparse.ParseError.RUNT, mparse.ParseError.L2_TRUNCATED,
                    mparse.ParseError.L3_TRUNCATED, mparse.ParseError.BAD_IHL,
                    mparse.ParseError.BAD_IP_LENGTH, mparse.ParseError.EXT_TRUNCATED,
                    mparse.ParseError.L4_TRUNCATED, mparse.ParseError.BAD_TCP_OFFSET)
TOO_LONG_ERRORS = (mparse.ParseError.EXT_TOO_LONG, mparse.ParseError.PAST_LIMIT)

#: What a frame's descriptor says the back does with it.
PASS, LSO, DROP = 0, 1, 2

#: The LSO configuration port: what ``model.lso.LsoLimits`` holds (``max_header_bytes`` is
#: fixed at :data:`MAX_HEADER` and ``id_mode`` is the ``id_linux`` bit).
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
    MaxOffLoadSize over 2**32 - 1, a ``max_header_bytes`` other than :data:`MAX_HEADER` or
    a ``max_segment_bytes`` other than ``TX_MAX_FRAME``.
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
    if limits.max_segment_bytes != TX_MAX_FRAME:
        raise ValueError(f"the RTL holds max_segment_bytes={TX_MAX_FRAME} only")
    return out


def config_value(limits: LsoLimits = LsoLimits()) -> int:
    """``limits`` packed as the :data:`LSO_CONFIG` port value (an int)."""
    fields = config_fields(limits)
    value = 0
    for name, field in LSO_CONFIG:
        value |= fields[name] << field.offset
    return value


def big_endian(word16):
    """A 16-bit lane pair of a beat (byte 0 first on the wire) as a big-endian number."""
    return Cat(word16[8:16], word16[0:8])


def beat_bytes(keep, nbytes):
    """Bytes in a beat whose ``keep`` is contiguous from byte 0."""
    return add_tree([keep[i] for i in range(nbytes)])


#: The comparisons of a send's length that its verdict needs (:func:`length_flags`), each
#: one carry chain: registered in a stage of their own, so the verdict is a choice of flags.
LENGTH_FLAGS = data.StructLayout({
    "v1_total_bad": 1,          # check 9: LSOv1 Total Length against the buffer
    "too_large": 1,             # check 10: payload > MaxOffLoadSize
    "too_few": 1,               # check 11: payload <= (MinSegmentCount - 1) * MSS
    "payload_over_mss": 1,      # more than one segment
    "mss_too_big": 1, "payload_too_big": 1,     # check 12 for MSS / for the payload
})


def length_flags(d):
    """The :data:`LENGTH_FLAGS` of the descriptor ``d``, as a dict of 1-bit values."""
    return {"v1_total_bad": ~d.v2 & (d.total != d.ip_length),
            "too_large": d.payload > d.max_off, "too_few": d.payload <= d.minmul,
            "payload_over_mss": d.mss < d.payload, "mss_too_big": d.mss > d.smax,
            "payload_too_big": d.payload > d.smax}


def end_reason(d, flags):
    """The model's verdict on the send whose descriptor is ``d`` and whose length
    comparisons are ``flags`` (:data:`LENGTH_FLAGS`).

    The header checks' reason if any; else LSOv1's Total Length against the buffer (check
    9: ``d.ip_length``, the length word less the IP header's offset), then the size checks
    10-12 in order on ``d.payload`` (the length word less the headers): check 12 and the
    TX_MAX_FRAME rule on the longest segment, min(MSS, payload).
    """
    largest_too_big = Mux(flags.payload_over_mss, flags.mss_too_big, flags.payload_too_big)
    return Mux(d.reason != 0, d.reason,
               Mux(flags.v1_total_bad, TxStatus.LSO_GUARANTEE,
                   Mux(flags.too_large, TxStatus.LSO_TOO_LARGE,
                       Mux(flags.too_few, TxStatus.LSO_TOO_FEW_SEGMENTS,
                           Mux(largest_too_big, TxStatus.LSO_BAD_MSS, TxStatus.SENT)))))


#: What the front says of a frame once its last beat is in the ring: its length in bytes and
#: the ring row of its last beat (so the back finds a frame's last beat by an equality, not an
#: addition and a comparison).
FRAME_END = data.StructLayout({"bytes": 32, "last_row": ROW_BITS})

#: A frame's descriptor: what the back needs to pass, drop or segment it.
DESCRIPTOR = data.StructLayout({
    "mode": 2, "base": ROW_BITS, "slot": 4, "user": TXU, "hdr_rec": HEADERS_LAYOUT(0),
    "reason": 4, "v2": 1, "total": 16, "l3": 8, "hdr_end": 9, "l4": 8, "ipv6": 1, "snap": 1,
    "mss": 20, "max_off": 32, "minmul": 36, "smax": 14, "length": 32, "payload": 33,
    "ip_length": 33, "single": 1,       # the send is one segment (payload <= MSS)
    # Per frame, the parts of each segment's length fields and TCP checksum field that do
    # not depend on its size (so a segment's fields are one addition from registers).
    "ip_base": 16, "len8023_base": 16, "tcp_base": 17,
    "seq": 32, "ip_id": 16, "id_linux": 1, "flags": 8, "csum": 16,
    # An encapsulated (NVGRE) send (``encap``): ``l3``, ``l4``, ``ipv6``, ``snap``, ``total``,
    # ``ip_id`` and the bases above are of the inner headers; the outer IP header's and the
    # GRE sequence number's (``gre_seq_at`` 0: none) are these.
    "encap": 1, "outer_l3": 8, "outer_ipv6": 1, "outer_snap": 1, "outer_ip_base": 16,
    "outer_len8023_base": 16, "outer_ip_id": 16, "gre_seq": 32, "gre_seq_at": 8,
})


#: An encapsulated send's per-segment outer fields: its 802.3 length, IP length and ID, and
#: the GRE sequence number.
OUTER_PATCH = data.StructLayout({"len8023": 16, "iplen": 16, "ipid": 16, "gre_seq": 32})

#: What the sequencer keeps of the segment it emits, the fields that change from segment to
#: segment (the frame's own, where the headers are and what kind, are read from its
#: descriptor, which stays while the segment is sent); the fields of :data:`PATCH` are
#: worked out from it as its beats are issued (off the decision's path).
SEGMENT = data.StructLayout({
    "ipid": 16, "seq": 32, "flags": 8,
    "end": 17,                          # header bytes and payload bytes
    "iplen": 16, "len8023": 16, "tcp_sum": 17,  # tcp_sum: to fold once into the field
    "outer": OUTER_PATCH,
})


def patch_places(d):
    """Where each per-segment header word of a send is, from its descriptor ``d``: (offset
    in the frame, enable), in the order of :func:`patch_values`. No two enabled words
    overlap. ``l3``, ``l4``: the headers of the packet being segmented (the inner ones of an
    encapsulated send); an encapsulated send's outer words follow: the outer 802.3 length,
    IP length, IPv4 ID and checksum 0, and the GRE sequence number."""
    encap, gre_seq_on = d.encap, d.gre_seq_at != 0
    return [
        (d.l3 - 10, d.snap),
        (d.l3 + Mux(d.ipv6, 4, 2), 1),
        (d.l3 + 4, ~d.ipv6),
        (d.l3 + 10, ~d.ipv6),
        (d.l4 + 4, 1),
        (d.l4 + 6, 1),
        (d.l4 + 12, 1),
        (d.l4 + 16, 1),
        (d.outer_l3 - 10, encap & d.outer_snap),
        (d.outer_l3 + Mux(d.outer_ipv6, 4, 2), encap),
        (d.outer_l3 + 4, encap & ~d.outer_ipv6),
        (d.outer_l3 + 10, encap & ~d.outer_ipv6),
        (d.gre_seq_at, encap & gre_seq_on),
        (d.gre_seq_at + 2, encap & gre_seq_on),
    ]


def patch_values(patch):
    """The per-segment header words' values (a :data:`PATCH`): (value, low byte only), in
    the order of :func:`patch_places`: 802.3 length, IP length, IPv4 ID and checksum 0,
    sequence number, flags, TCP checksum field; an encapsulated send's outer 802.3 length,
    IP length, IPv4 ID and checksum 0, and the GRE sequence number."""
    outer = patch.outer
    return [
        (patch.len8023, False), (patch.iplen, False), (patch.ipid, False), (C(0, 16), False),
        (patch.seq[16:32], False), (patch.seq[0:16], False),
        (Cat(patch.flags, C(0, 8)), True), (patch.csum, False),
        (outer.len8023, False), (outer.iplen, False), (outer.ipid, False), (C(0, 16), False),
        (outer.gre_seq[16:32], False), (outer.gre_seq[0:16], False),
    ]


#: The per-segment header words (:func:`patch_values`).
PATCH_WORDS = 14

#: Where the per-segment header words of the send fall in its frame (:func:`patch_places`),
#: registers worked out from its descriptor (the same for all its segments).
PATCH_PLACES = data.StructLayout({"at": data.ArrayLayout(8, PATCH_WORDS), "on": PATCH_WORDS})

#: The per-segment header fields the assembler writes over the template, and where they go.
PATCH = data.StructLayout({
    "len8023": 16, "iplen": 16, "ipid": 16, "seq": 32, "flags": 8, "csum": 16,
    "outer": OUTER_PATCH, "places": PATCH_PLACES,
})


def ring_address_layout(width):
    """Where a ring row and the row after it are in the ring's two banks (even rows, odd
    rows): ``even`` = (row + 1) / 2, ``odd`` = row / 2, rounded down."""
    bank_rows = RING_BYTES // (width // 8) // 2
    return data.StructLayout({"even": range(bank_rows), "odd": range(bank_rows)})


def command_layout(width):
    """One output beat, as the sequencer orders it from the assembler: the ring row and
    rotation of its payload bytes (and the row's addresses in the ring's banks, from the
    sequencer's registers), its template row, how many leading bytes are header, its byte
    count, ``last``, ``user``, its beat index in the frame and the header patch."""
    nb = width // 8
    lognb = (nb - 1).bit_length()
    hb = MAX_HEADER // nb
    return data.StructLayout({
        "row": ROW_BITS, "ring_at": ring_address_layout(width), "rho": max(1, lognb),
        "tpl": range(NSLOT * hb), "hdr": range(nb + 1), "keep": range(nb + 1), "last": 1,
        "user": TXU, "j": range(hb + 1), "patch": PATCH})
