"""Constants and bit layouts shared by the parser's stages (all derived from ``model.parse``)."""

from amaranth.hdl import *
from amaranth.lib import data

from nicoffload.model import nvgre as model_nvgre
from nicoffload.model import parse as model

__all__ = [
    "WINDOW_BYTES", "L3_OFFSETS", "PHASE", "POSITIONS", "EXT_POSITIONS", "L4_POSITIONS",
    "LAST_CHAIN_POSITION", "L2_ENDS", "HEAD_BYTES", "EXT_FIELDS_LAYOUT", "WALKED_EXT", "UNFOLLOWABLE_EXT",
    "L4_PROTOS", "NVGRE_LAYOUT",
    "HEADERS_LAYOUT", "STEP_FIELDS_LAYOUT", "capture_layout", "frame_layout", "EXT_STEP_LAYOUT",
    "L3_STEP_LAYOUT", "step_layout", "measured_layout", "judged_layout",
    "byte_of", "big_endian", "is_one_of",
]

WINDOW_BYTES = model.MAX_PARSE_BYTES

#: Every offset at which the model can find the IP header.
L3_OFFSETS = sorted({model.ETH_HEADER_LEN + model.VLAN_TAG_LEN * tags + model.LLC_SNAP_LEN * snap
                     for tags in range(model.MAX_VLAN_TAGS + 1) for snap in (0, 1)})
#: Every header offset the walk can reach is ``PHASE mod 4``.
PHASE = L3_OFFSETS[0] % 4
assert all(o % 4 == PHASE for o in L3_OFFSETS), "L3 offsets must share their phase mod 4"
assert PHASE % 2 == 0

# Extension headers start at l3 + 40 and, while the walk goes on, by model.MAX_EXT_END (248: the
# walk goes on past a header that ends there, and the next one fails, EXT_TOO_LONG); TCP/UDP
# headers start at l3 + 20 (IPv4) .. MAX_EXT_END (behind IPv6).
_EXT_OFFSETS = range(L3_OFFSETS[0] + 40, model.MAX_EXT_END + 1, 4)
_L4_OFFSETS = range(L3_OFFSETS[0] + 20, model.MAX_EXT_END + 1, 4)

#: Walk positions: position ``j`` is offset ``4j + PHASE``.
POSITIONS = WINDOW_BYTES // 4
EXT_POSITIONS = range(_EXT_OFFSETS[0] // 4, _EXT_OFFSETS[-1] // 4 + 1)
L4_POSITIONS = range(_L4_OFFSETS[0] // 4, _L4_OFFSETS[-1] // 4 + 1)
#: The walk goes on after an extension header only to a position up to this one: a header
#: that ends further on ends past MAX_EXT_END (EXT_TOO_LONG, or an earlier error).
LAST_CHAIN_POSITION = L4_POSITIONS[-1]
assert 4 * LAST_CHAIN_POSITION + PHASE <= model.MAX_EXT_END < 4 * (LAST_CHAIN_POSITION + 1) + PHASE

#: The bytes of the window that an IP header at one of ``L3_OFFSETS`` spans in its first ten
#: bytes: kept in registers (the walk reads them all at the L3 step).
HEAD_BYTES = range(L3_OFFSETS[0], L3_OFFSETS[-1] + 10)

#: The frame lengths the L2 decode compares with: "the frame ends before byte e".
L2_ENDS = sorted({model.ETH_HEADER_LEN}
                 | {12 + model.VLAN_TAG_LEN * tags + model.VLAN_TAG_LEN + 2
                    for tags in range(model.MAX_VLAN_TAGS)}
                 | {14 + model.VLAN_TAG_LEN * tags + model.LLC_SNAP_LEN
                    for tags in range(model.MAX_VLAN_TAGS + 1)})

UNFOLLOWABLE_EXT = sorted(model._UNFOLLOWABLE_EXT)
#: The extension headers the walk follows.
WALKED_EXT = sorted(set(model._GENERIC_EXT) | {model._AH, model._FRAGMENT})
L4_PROTOS = (model.IPPROTO_TCP, model.IPPROTO_UDP)

assert model_nvgre.NVGRE_MAX_HEADER_BYTES == WINDOW_BYTES, \
    "the inner walk reads the same 256-byte window as the outer one"

#: What the inner walk (``inner.InnerWalk``) finds of an NVGRE frame: ``model.nvgre.follow``
#: in bits. The fields hold only when ``is_nvgre`` (the model's ``Nvgre.ok``; the record takes
#: them only then, as 0 otherwise: ``checks.Decide``); within, the fields the model leaves
#: ``None`` are 0 (a GRE field that is absent, the inner L4 fields of an inner fragment or
#: another protocol). Offsets count from the outer frame's first byte. The exception is
#: ``lso_refusal``, set only when ``is_nvgre`` is 0 (TX LSO sends).
NVGRE_LAYOUT = data.StructLayout({
    "is_nvgre": 1,
    "gre_header_len": 5,
    "gre_checksum_offset": 8, "gre_key_offset": 8, "gre_seq_offset": 8,
    "inner_offset": 8,
    "inner_is_ipv4": 1, "inner_is_ipv6": 1,
    "inner_l3": 8,
    "inner_ip_header_len": 8,
    "inner_ip_end": 17,
    "inner_is_fragment": 1,
    "inner_pseudo_dst": 9,
    "inner_l4": 9,
    "inner_l4_proto": 8,
    "inner_l4_header_len": 7,
    "inner_l4_end": 17,
    # TX with ``lso_lengths``, an LSO send only: why the walk (with buffer lengths) did not
    # find an NVGRE frame, as the ``nbl.TxStatus`` an encapsulated large send gets for it
    # (``model.nvgre_lso`` check 5); 0 otherwise and whenever ``is_nvgre``.
    "lso_refusal": 4,
})


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
    ------------------  -----  ------------------------------------------------------------------
    NVGRE (``model.nvgre.follow(frame)`` as ``nv``; all 0 unless ``is_nvgre``)
    ---------------------------------------------------------------------------------------------
    is_nvgre            1      ``nv.ok`` (the outer walk followed, not a fragment, GRE, NVGRE)
    gre_header_len      5      ``nv.gre_header_len`` (the GRE header is at ``l4``)
    gre_checksum_offset 8      ``nv.gre_checksum_offset``
    gre_key_offset      8      ``nv.key_offset``
    gre_seq_offset      8      ``nv.seq_offset``
    inner_offset        8      ``nv.inner_offset`` (InnerFrameOffset)
    inner_is_ipv4/_ipv6 1, 1   ``nv.inner.ip_version == 4`` / ``== 6``
    inner_l3            8      ``nv.inner.l3_offset``
    inner_ip_header_len 8      ``nv.inner.ip_header_len``
    inner_ip_end        17     ``nv.inner.ip_end``
    inner_is_fragment   1      ``nv.inner.is_fragment``
    inner_pseudo_dst    9      ``nv.inner.pseudo_dst_offset``
    inner_l4            9      ``nv.inner.l4_offset``
    inner_l4_proto      8      ``nv.inner.l4_proto``
    inner_l4_header_len 7      ``nv.inner.l4_header_len``
    inner_l4_end        17     ``nv.inner.l4_end``
    lso_refusal         4      (TX LSO sends, ``is_nvgre`` 0) the ``TxStatus`` of the walk's
                               failure, ``model.nvgre_lso`` check 5
    user                user   (no twin) ``tuser`` of the frame's first beat
    ==================  =====  ==================================================================
    """
    fields = {
        "error": 5, "is_ipv4": 1, "is_ipv6": 1, "l3": 8, "ip_header_len": 8, "ip_end": 17,
        "ip_end_unchecked": 1, "is_fragment": 1, "l4": 9, "l4_proto": 8, "l4_header_len": 7,
        "l4_end": 17, "pseudo_dst": 9,
    }
    fields |= {name: field.shape for name, field in NVGRE_LAYOUT}
    if user_width:
        fields["user"] = user_width
    return data.StructLayout(fields)


#: The record fields a step of the walk may set (the others come from the hand-off).
STEP_FIELDS_LAYOUT = data.StructLayout({
    name: field.shape for name, field in HEADERS_LAYOUT(0)
    if name not in ("l3", "ip_end_unchecked")
})


#: With ``lso_lengths``: for an IP header at each offset of ``L3_OFFSETS``, the big-endian
#: value that stands for its IPv4 Total Length / IPv6 Payload Length in an LSO send, and
#: whether the frame holds that field (``walk.HandOff``).
LSO_SUBSTITUTES_LAYOUT = data.ArrayLayout(
    data.StructLayout({"ipv4": 16, "ipv6": 16, "holds4": 1, "holds6": 1}), len(L3_OFFSETS))


def capture_layout(user_width, lso_lengths=False):
    """What the capture knows of the frame in its window, besides the bytes."""
    fields = {
        "length": range(WINDOW_BYTES + 1),  # bytes in the window
        "ended": 1,                         # the frame ended inside the window
    }
    if user_width:
        fields["user"] = user_width         # tuser of the first beat
    if lso_lengths:
        fields["lso"] = 1                   # the first beat's LSO word is not 0
        fields["substitutes"] = LSO_SUBSTITUTES_LAYOUT
    return data.StructLayout(fields)


def frame_layout(user_width):
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


#: The fields of an extension header at a position that say where the walk goes from it:
#: bytes 0 and 1, and whether bytes 2..3, read as a Fragment header's, make a fragment (offset
#: in bits 3..15 or M in bit 0 set: byte 2 != 0 or byte 3 & 0xF9 != 0).
EXT_FIELDS_LAYOUT = data.StructLayout({
    "next_header": 8,
    "length": 8,
    "fragment_high": 1,     # byte 2 != 0
    "fragment_low": 1,      # byte 3 & 0xF9 != 0
})

#: What the walk needs to step from an extension header at a position, for each of the three
#: length rules it may have (Fragment: 8 bytes; AH: (len + 2) * 4; the rest: (len + 1) * 8):
#: whether it goes on to another extension header or to TCP/UDP, and where that is.
EXT_STEP_LAYOUT = data.StructLayout({
    "ext_frag": 1, "ext_ah": 1, "ext_generic": 1,   # goes on to an extension header
    "l4_frag": 1, "l4_ah": 1, "l4_generic": 1,      # goes on to TCP/UDP
    "gre_frag": 1, "gre_ah": 1, "gre_generic": 1,  # goes on to GRE (the inner walk)
    "frag": 1,          # the next header is a Fragment header
    "ah": 1,            # the next header is AH
    "next_ah": 6,       # the next position (when the walk goes on) if this is AH
    "next_generic": 6,  # ... if a generic header
})

#: The step from the IP header at an offset: IPv4 (to TCP/UDP at IHL * 4), IPv6 (to l3 + 40).
L3_STEP_LAYOUT = data.StructLayout({
    "next4": 6,         # IPv4: the position past the header
    "l4_4": 1,          # IPv4: TCP/UDP follows (not a fragment)
    "ext6": 1, "l4_6": 1, "frag6": 1, "ah6": 1,     # IPv6: what the Next Header is
    "gre4": 1, "gre6": 1,   # GRE follows (IPv4: not a fragment): the inner walk
    "onward6": 1,           # IPv6: ``ext6 | gre6`` (the walk holds the hand-off's registers)
})


def step_layout(user_width):
    """One step of the walk with the bytes it read: what the read stage hands to measure."""
    return data.StructLayout({
        "l2_failed": 1, "l3": 1, "ext": 1, "l4": 1, "gre": 1,  # the kind of step (one-hot)
        "offset": 8,            # offset of the header
        "end_past": 4,          # bits 6.. of the position past it (the rest: the walk's
                                # position now, :attr:`StepRead.step_end`)
        "ip_bytes": 80,         # its bytes 0..9 (L3)
        "head_bytes": 48,       # its bytes 0..5 (EXT, L4)
        "offset_plus_8": 9,
        "room": signed(11),     # L3: len - l3 (bytes of the frame from the IP header on)
        "room_past_ipv6": signed(11),   # L3: len - l3 - 40
        "l3_plus_40": 9,
        "tcp_data_offset": 4,   # byte 12, high nibble (L4)
        "frame": frame_layout(user_width),
        "inner": NVGRE_LAYOUT,  # GRE: what the inner walk found
    })


def measured_layout(user_width):
    """Every comparison of the model's checks for one step, each a register."""
    return data.StructLayout({
        "l2_failed": 1, "l3": 1, "ext": 1, "l4": 1, "gre": 1, "last": 1,
        "offset": 8, "end": 12, "frame": frame_layout(user_width),
        "inner": NVGRE_LAYOUT,  # GRE: what the inner walk found
        "ip_header_len": 8,     # end - l3 (the IP header length, if the walk leaves IP here)
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
        "ext_long": 1,      # it ends past model.MAX_EXT_END
        "routing_again": 1,
        "routing_unknown": 1,   # Segments Left > 0 and no known final destination
        "routing_final_dst": 1,  # Segments Left > 0: the final destination is in it
        "ext_fragment": 1,
        "next_header": 8,
        "next_is_ext": 1, "next_unfollowable": 1, "next_is_l4": 1,
        "next_is_gre": 1,
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
    })


def judged_layout(user_width):
    """What a step does to its frame's record if the walk gets to it: the fields it sets
    (``fields``, where ``sets``), and whether the walk ends with it (``stop``)."""
    return data.StructLayout({
        "first": 1,         # the frame's first step (L2 failed, or its IP header)
        "l2_failed": 1,     # ... and L2 failed
        "last": 1,          # the frame's last step
        "frame": frame_layout(user_width),
        "fields": STEP_FIELDS_LAYOUT,
        "sets": data.StructLayout({name: 1 for name, _ in STEP_FIELDS_LAYOUT}),
        "stop": 1,
    })


def byte_of(vec, i):
    """Byte ``i`` of a little-endian byte vector (byte 0 = bits 0..7); 0 past its end."""
    if 8 * (i + 1) > len(vec):
        return C(0, 8)
    return vec[8 * i:8 * i + 8]


def big_endian(vec, i, n):
    """The ``n`` bytes of ``vec`` from byte ``i`` as a big-endian number (wire order)."""
    return Cat(*[byte_of(vec, i + k) for k in reversed(range(n))])


def is_one_of(value, values):
    """1 when ``value`` is one of the constants ``values``."""
    return Cat(*[value == v for v in values]).any()
