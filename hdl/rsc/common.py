"""What the parts of the RSC engine share: sizes, layouts and small helpers."""

import operator

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from nicoffload.model import nbl

from ..axis import axis_layout
from ..onesum import balanced_tree
from ..parse import HEADERS_LAYOUT


RXU = nbl.RxUser.width()
DEFAULT_MAX_FRAME_BYTES = 16384
WINDOW = 256                        # header bytes kept per frame (the parse window)
LANDING_SLOTS = 3                   # frames the landing RAM holds (in, copied, decided)
TIME_BITS = 32
_PSH = 0x08
SPARE_REGIONS = 2                   # SCU regions beyond one per context


def default_regions(contexts):
    """The SCU regions of an engine of ``contexts`` contexts: one each and ``SPARE_REGIONS``
    more, so that an SCU opening as another is evicted for it (more flows than contexts)
    goes to a region of its own while the evicted one is emitted. One spare took 1,500-byte
    segments of 64 flows over 8 contexts at 0.958 of W/8 at W=64 and 0.725 at W=512 ("in
    (arrival)"), two at 0.882 at W=512, three no more (0.886): from two the emitter's
    cycles per SCU set the rate (0.947 once it reads a one-segment SCU at once)."""
    return contexts + SPARE_REGIONS


def resolve_regions(contexts, regions=None):
    """``regions`` (``None``: :func:`default_regions`), refused below ``contexts``: every
    context must be able to hold an SCU of its own."""
    regions = default_regions(contexts) if regions is None else regions
    if not isinstance(regions, int) or regions < contexts:
        raise ValueError(f"regions must be an integer of at least contexts ({contexts}), "
                         f"not {regions!r}")
    return regions


def RSC_IN_LAYOUT(width):
    """A beat into the engine: the AXI beat (``user`` = RxUser on the last) and the frame's
    parse record (valid on every beat of the frame)."""
    return data.StructLayout({"beat": axis_layout(width, RXU), "hdr": HEADERS_LAYOUT(0)})


#: One entry of the arrival log.
EVENT_LAYOUT = data.StructLayout({
    "time": TIME_BITS,
    "frame": 1,         # a frame ended (its descriptor comes from the ingress, in order)
    "eoi": 1,           # end of a receive indication, after the frame
    "dis": 1,           # RSC switched off for an IP version: flush before the frame
    "en4": 1, "en6": 1,  # the enables in force for the frame
})

KEY_LAYOUT = data.StructLayout({
    "tag0": 29, "tag1": 29,     # present, TPID, VLAN ID
    "v6": 1, "src": 128, "dst": 128,
    "ports": 32,                # last: the address key is everything below
})
ADDR_BITS = KEY_LAYOUT.size - 32

SAME_LAYOUT = data.StructLayout({
    "l3": 8, "l2": 30 * 8, "ip": 26, "thl": 7, "ts": 1,
})

SEG_KIND_PASS, SEG_KIND_FRAG, SEG_KIND_EXC, SEG_KIND_SEG = range(4)

#: OID_TCP_RSC_STATISTICS increments, one cycle's worth (``model.rsc.RscEngine.statistics``;
#: ``model.regmap`` RSC_* counters). Registered at the sequencer; each member at most once a
#: cycle: ``coalesced_pkts`` a segment started or joined an SCU (window updates too) and
#: ``coalesced_octets`` its TCP payload bytes; ``coalesce_events`` an SCU was finalized;
#: ``aborts`` an exception other than the 65,535-byte limit (a segment indicated alone for an
#: exception, a fragment or a duplicate ACK; an SCU ended by a failed rule or for want of a
#: context or SCU bytes).
RSC_STATS_LAYOUT = data.StructLayout({
    "coalesced_pkts": 1, "coalesced_octets": 17, "coalesce_events": 1, "aborts": 1,
})

DESC_LAYOUT = data.StructLayout({
    "slot": range(LANDING_SLOTS), "frame_len": 17, "csum": 32, "kind": 2,
    "key": KEY_LAYOUT, "same": SAME_LAYOUT, "ecn": 4,
    "seq": 32, "ack": 32, "wnd": 16, "flags": 8, "tsval": 32, "tsecr": 32, "ts_off": 8,
    "hop": 8, "len": 17, "ip_end": 17, "l4": 8, "hdr_len": 8,
})


def one_hot_select(idx, values):
    """``values[idx]`` (a list, or a dict of index: value; 0 for an index not in it) as a
    balanced OR of one-hot terms. No ``case`` statement: Amaranth writes a ``Switch`` as a
    Verilog ``case`` without ``default`` (Verilator's CASEINCOMPLETE)."""
    items = values.items() if isinstance(values, dict) else enumerate(values)
    terms = [Mux(idx == i, Value.cast(v), 0) for i, v in items]
    return or_tree(terms)


def _byte(value, i):
    return value[8 * i:8 * i + 8]


def _be(value, start, n):
    """``n`` bytes of ``value`` from byte ``start``, big-endian (network order) as a number."""
    return Cat(*[_byte(value, start + n - 1 - k) for k in range(n)])



OP_EMIT_LAND, OP_EMIT_SCU, OP_COPY = range(3)


def CMD_LAYOUT(regions):
    """A command to :class:`RscMover` (``region``: the SCU region it copies into or emits)."""
    return data.StructLayout({
        "op": 2, "slot": range(LANDING_SLOTS), "region": range(regions),
        "len": 17,          # bytes to emit; COPY: end of the source range
        "src_lo": 17, "dst_lo": 17,     # COPY: source start, destination start
        "user": RXU,        # EMIT: tuser of the last beat
        "multi": 1,         # EMIT_SCU: rewrite the headers (an SCU of several segments);
                            # COPY: a joining segment (its payload adds to the SCU's sum)
        "v6": 1, "l3": 8, "l4": 8,
        "hdr_len": 8,       # EMIT_SCU, COPY: the (segment's) headers' length
        "ts": 1, "ts_off": 8,
        "ack": 32, "wnd": 16, "flags": 8, "hop": 8, "tsval": 32, "tsecr": 32,
        "plen": 17,         # EMIT_SCU: the SCU's payload bytes; COPY: the segment's
    })


def EMIT_LAYOUT(regions):
    """An entry of the emitter's queue: the command and its ticket, the copies dispatched
    before it (an SCU is read once that many copies are written and summed)."""
    return data.StructLayout({"cmd": CMD_LAYOUT(regions), "ticket": TICKET_BITS})


TICKET_BITS = 8     # copies counted modulo 256 (far more than can be in flight)


def patch_beat(data_in, nb, fields, lanes):
    """``data_in`` with each field written on its lanes (the emitter's ``_Places.patch_lanes``:
    per field, bit ``k * nbytes + b`` set when lane ``k`` holds the field's byte ``b``; the fields
    do not overlap, so each lane is its own data or the OR of the field bytes on it)."""
    out = []
    for k in range(nb):
        terms, on = [], []
        for (_en, _pos, value, n), at in zip(fields, lanes):
            for b in range(n):
                terms.append(Mux(at[k * n + b], value[8 * (n - 1 - b):8 * (n - b)], 0))
                on.append(at[k * n + b])
        out.append(Mux(Cat(*on).any(), or_tree(terms), _byte(data_in, k)))
    return Cat(*out)


def or_tree(terms):
    """The OR of ``terms`` as a balanced tree."""
    return balanced_tree(terms, operator.or_)


def TAG_LAYOUT(tag_bits):
    """What a flow context keeps in flip-flops, each context's beside the others': what the
    lookup compares all at once (a ``tag_bits``-bit hash of the key's addresses and the
    ports), the idle timer's last-join time, and ``valid``."""
    return data.StructLayout({"valid": 1, "addr_tag": tag_bits, "ports": 32, "lj": TIME_BITS})

#: The rest of a flow context, the open SCU's H.* state (``model.rsc._Scu``): one entry of the
#: sequencer's context RAM, read once the lookup has chosen the context.
STATE_LAYOUT = data.StructLayout({
    "v6": 1, "same": SAME_LAYOUT, "ecn": 4,
    "nxt": 32, "ack": 32, "wnd": 16, "tsval": 32, "tsecr": 32, "ts0": 32,
    "flags": 8, "psh": 1, "hop": 8, "count": 17, "multi": 1, "len": 17,
    "hdr_len": 8, "l4": 8, "ts_off": 8, "frame_len": 17, "csum": 32,
    # What the SCU leaves of the 65,535-byte IP length and of the SCU bytes (the rules compare
    # the segment's payload with them: no sums on the way from the RAM to the rules).
    "ip_room": signed(20), "scu_room": signed(20),
})


_SCU_CSUM4 = nbl.ChecksumRx(IpChecksumSucceeded=1, TcpChecksumSucceeded=1).to_int()
_SCU_CSUM6 = nbl.ChecksumRx(TcpChecksumSucceeded=1).to_int()


def _serial_ge(a, b):
    """a >= b in 32-bit serial arithmetic."""
    return ~(a - b)[31]




class BufferPart(wiring.Component):
    """A part of the engine that addresses the landing RAM (``LANDING_SLOTS`` slots of
    ``slot_beats``) and the SCU RAM (``regions`` regions of ``region_beats``), W bits a
    beat: the geometry kept once for the copier, the emitter and the mover."""

    def __init__(self, width, regions, region_beats, slot_beats, members):
        self.width, self.regions = width, regions
        self.region_beats, self.slot_beats = region_beats, slot_beats
        super().__init__(members)

    def slot_base(self, slot):
        """The landing RAM's address of beat 0 of ``slot``: ``slot * slot_beats`` as a table
        of constants (a LUT an address bit), not a multiplier (a DSP block on the ECP5)."""
        return one_hot_select(slot, [i * self.slot_beats for i in range(LANDING_SLOTS)])

    def region_base(self, region):
        """The SCU RAM's address of beat 0 of ``region``, as :meth:`slot_base`."""
        return one_hot_select(region, [i * self.region_beats for i in range(self.regions)])

    @staticmethod
    def landing_reader(width, slot_beats):
        """The landing RAM's read port as a part that reads it sees it."""
        return {"land_addr": Out(range(LANDING_SLOTS * slot_beats)), "land_data": In(width)}
