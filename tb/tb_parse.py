"""FrameParser (hdl/parse.py) against model.parse.parse, in Verilator.

Stimulus: the constrained-random mix of ``tb.traffic`` (every L2/L3/L4 mix, IPv4 options,
IPv6 extension chains, fragments, TCP options, malformed frames), every one of its malformed
cases once, and frames this module builds byte by byte to reach the parser's corners: random
IPv4 headers (IHL, lengths, flags) and random IPv6 extension chains (every walked type, routing
types 0/2/3/4 with and without Segments Left, fragments, AH, ESP, 253/254, misplaced
Hop-by-Hop) under random L2 headers, with true or lying length fields, TCP/UDP headers ending
anywhere around byte 256, cut at random lengths; mutated good frames; garbage of every length
around the window and beat boundaries. NVGRE (test ``nvgre``): finished NVGRE frames and every
inner frame above behind GRE (random C/K/S, unknown flags, versions, other protocols) and
random outer headers (:func:`nvgre_case`), against ``model.nvgre.follow``.

Scoreboard: every record field against the model (``None`` is 0), after applying the deferred
"datagram runs past the frame" check exactly as a consumer does (see ``effective_error``);
every frame's bytes and every beat's ``tuser`` on ``m_axis``; one record per frame.

The consumer (:class:`TB`: cocotbext-axi sinks on ``m_headers`` and ``m_axis``) either
honours the contract of the units behind the parser (a frame's beats are taken only after its
record; ``contract=True``, :class:`RecordGate`) or drains both outputs independently; random
idles on the source and backpressure on both outputs are parameters.
"""

from __future__ import annotations

import json
import random
import struct

import cocotb
from cocotb.triggers import ClockCycles, ReadWrite, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiStreamFrame, AxiStreamSink

from nicoffload.hdl.parse import HEADERS_LAYOUT, WINDOW_BYTES, FrameParser
from nicoffload.hdl.parse.layouts import NVGRE_LAYOUT
from nicoffload.model.nvgre import follow
from nicoffload.model.parse import ParseError, parse
from nicoffload.tb import common, nvgre_frames, traffic

# --- records ------------------------------------------------------------------------------


def record_fields(user_width: int) -> list[tuple[str, int, int]]:
    """(name, bit offset, width) of every field of the record, from the RTL's layout."""
    return [(name, field.offset, field.width)
            for name, field in HEADERS_LAYOUT(user_width)]


def decode(value: int, fields) -> dict:
    return {name: (value >> off) & ((1 << width) - 1) for name, off, width in fields}


def _z(v) -> int:
    return 0 if v is None else int(v)


def nvgre_record(frame: bytes, outer=None) -> dict:
    """``nvgre.follow(frame)`` as the record's NVGRE fields: all 0 unless it is NVGRE."""
    nv = follow(frame, outer=outer)
    if not nv.ok:
        return {name: 0 for name in _NVGRE_FIELDS}
    inner = nv.inner
    return {
        "is_nvgre": 1, "gre_header_len": nv.gre_header_len,
        "gre_checksum_offset": _z(nv.gre_checksum_offset), "gre_key_offset": _z(nv.key_offset),
        "gre_seq_offset": _z(nv.seq_offset), "inner_offset": nv.inner_offset,
        "inner_is_ipv4": int(inner.ip_version == 4), "inner_is_ipv6": int(inner.ip_version == 6),
        "inner_l3": inner.l3_offset, "inner_ip_header_len": inner.ip_header_len,
        "inner_ip_end": inner.ip_end, "inner_is_fragment": int(inner.is_fragment),
        "inner_pseudo_dst": inner.pseudo_dst_offset, "inner_l4": inner.l4_offset,
        "inner_l4_proto": inner.l4_proto, "inner_l4_header_len": inner.l4_header_len,
        "inner_l4_end": _z(inner.l4_end),
    }


_NVGRE_FIELDS = [name for name, _ in NVGRE_LAYOUT]


def model_record(frame: bytes) -> dict:
    """``parse(frame)`` and ``nvgre.follow(frame)`` as the record's fields (None -> 0)."""
    h = parse(frame)
    z = _z

    return nvgre_record(frame, h) | {
        "error": z(h.error_code), "is_ipv4": int(h.ip_version == 4),
        "is_ipv6": int(h.ip_version == 6), "l3": z(h.l3_offset),
        "ip_header_len": z(h.ip_header_len), "ip_end": z(h.ip_end),
        "is_fragment": int(h.is_fragment), "l4": z(h.l4_offset), "l4_proto": z(h.l4_proto),
        "l4_header_len": z(h.l4_header_len), "l4_end": z(h.l4_end),
        "pseudo_dst": z(h.pseudo_dst_offset),
    }


def effective_error(rec: dict, frame_len: int) -> tuple[int, bool]:
    """The consumer's deferred check: (error, whether the check replaced it)."""
    err = rec["error"]
    late = err == 0 or err > ParseError.BAD_IP_LENGTH
    if rec["ip_end_unchecked"] and rec["ip_end"] > frame_len and late:
        return int(ParseError.BAD_IP_LENGTH), True
    return err, False


# Fields the model fills before the IP length check; the only ones compared after the
# consumer's deferred check has turned a record into BAD_IP_LENGTH.
_BEFORE_IP_LENGTH = ("is_ipv4", "is_ipv6", "l3")


def check_record(i: int, frame: bytes, desc: str, user: int, rec: dict) -> tuple[int, bool]:
    want = model_record(frame)
    err, replaced = effective_error(rec, len(frame))
    where = f"frame {i} ({desc}, {len(frame)} bytes)"
    assert rec["ip_end_unchecked"] == int(len(frame) > WINDOW_BYTES), (
        f"{where}: ip_end_unchecked {rec['ip_end_unchecked']}")
    assert err == want["error"], (
        f"{where}: error RTL {err} ({rec['error']} before the deferred check), model "
        f"{want['error']}; RTL {rec}, model {want}")
    keys = _BEFORE_IP_LENGTH if replaced else tuple(want)
    if replaced and want["is_ipv4"]:
        keys += ("ip_header_len",)
    bad = {k: (rec[k], want[k]) for k in keys if k != "error" and rec[k] != want[k]}
    assert not bad, f"{where}: fields differ (RTL, model): {bad}; RTL {rec}, model {want}"
    if "user" in rec:
        assert rec["user"] == user, f"{where}: user {rec['user']:#x}, first beat had {user:#x}"
    return err, replaced


# --- frames built byte by byte ------------------------------------------------------------

def _l2(rng: random.Random, l3_len: int, ethertype: int) -> bytes:
    head = rng.randbytes(12)
    tags = rng.choice([0, 0, 0, 1, 1, 2])
    for _ in range(tags):
        head += struct.pack(">HH", rng.choice([0x8100, 0x88A8]), rng.randrange(65536))
    if rng.random() < 0.2:
        length = min(1500, 8 + l3_len) if rng.random() < 0.8 else rng.randrange(1501)
        head += struct.pack(">H", length) + b"\xaa\xaa\x03" + \
            rng.choice([b"\x00\x00\x00", b"\x00\x00\xf8"]) + struct.pack(">H", ethertype)
    else:
        head += struct.pack(">H", ethertype)
    return head


def _upper(rng: random.Random, proto: int) -> bytes:
    """A TCP/UDP/other header with random (sometimes wrong) fields, and a payload."""
    payload = rng.randbytes(rng.choice([0, rng.randrange(64), rng.randrange(400)]))
    if proto == 6:
        doff = rng.choice([5, 5, 6, 8, 10, 15, rng.randrange(16)])
        hdr = bytearray(rng.randbytes(max(20, doff * 4)))
        hdr[12] = (doff << 4) | (hdr[12] & 0x0F)
        return bytes(hdr) + payload
    if proto == 17:
        length = 8 + len(payload)
        r = rng.random()
        if r < 0.1:
            length = rng.randrange(8)
        elif r < 0.2:
            length += rng.randint(1, 50)
        elif r < 0.3:
            length = rng.randrange(8, max(9, length))
        return rng.randbytes(4) + struct.pack(">H", length & 0xFFFF) + rng.randbytes(2) + payload
    return rng.randbytes(rng.randrange(80))


def _proto(rng: random.Random) -> int:
    return rng.choice([6, 6, 17, 17, 1, 58, 59, rng.randrange(256)])


def _lie(rng: random.Random, true_len: int) -> int:
    r = rng.random()
    if r < 0.75:
        return true_len
    if r < 0.85:
        return max(0, true_len - rng.randint(1, 64))
    if r < 0.95:
        return min(0xFFFF, true_len + rng.randint(1, 300))
    return rng.randrange(65536)


def _cut(rng: random.Random, frame: bytes) -> bytes:
    if rng.random() < 0.15:
        return frame[:rng.randrange(len(frame) + 1)]
    return frame


def raw_ipv4(rng: random.Random) -> tuple[bytes, str]:
    ihl = rng.choice([5, 5, 5, 6, 10, 15, rng.randrange(16)])
    proto = _proto(rng)
    upper = _upper(rng, proto)
    hlen = max(20, ihl * 4)
    total = _lie(rng, hlen + len(upper))
    frag = rng.choice([0, 0, 0, 0x4000, 0x2000, rng.randrange(1, 0x2000), rng.randrange(65536)])
    version = 4 if rng.random() < 0.95 else rng.randrange(16)
    hdr = bytes([(version << 4) | ihl, rng.randrange(256)]) + struct.pack(">HHH", total, 0, frag)
    hdr += bytes([rng.randrange(1, 256), proto]) + rng.randbytes(2 + 8 + hlen - 20)
    l3 = hdr + upper
    frame = _l2(rng, len(l3), 0x0800) + l3
    return _cut(rng, frame), f"raw ipv4 ihl={ihl} proto={proto} total={total} frag={frag:#x}"


_EXT_TYPES = [0, 43, 44, 60, 135, 139, 140, 51]


def _ext_header(rng: random.Random, kind: int, nxt: int) -> bytes:
    if kind == 44:
        off = rng.choice([0, 0, rng.randrange(1, 8192)])
        m = rng.choice([0, 0, 1])
        return bytes([nxt, 0]) + struct.pack(">H", (off << 3) | (rng.randrange(4) << 1) | m) + \
            rng.randbytes(4)
    if kind == 51:
        n = rng.choice([1, 4, 4, 5, rng.randrange(40)])
        return bytes([nxt, n]) + rng.randbytes((n + 2) * 4 - 2)
    if kind == 43:
        rtype = rng.choice([0, 2, 4, 4, 3])
        segleft = rng.choice([0, 0, 1, 2, rng.randrange(256)])
        n = rng.choice([0, 1, 2, 2, 4, rng.randrange(8)])
        return bytes([nxt, n, rtype, segleft]) + rng.randbytes((n + 1) * 8 - 4)
    n = rng.choice([0, 0, 1, 2, 4, rng.randrange(17), rng.randrange(8, 16)])
    return bytes([nxt, n]) + rng.randbytes((n + 1) * 8 - 2)


def raw_ipv6(rng: random.Random) -> tuple[bytes, str]:
    count = rng.choice([0, 1, 2, 3, 4, 6, 10])
    kinds = [rng.choice(_EXT_TYPES) for _ in range(count)]
    if kinds and rng.random() < 0.6:    # Hop-by-Hop, if any, usually first
        kinds = [0] + [k for k in kinds if k != 0]
    last = _proto(rng)
    r = rng.random()
    if r < 0.05:
        last = rng.choice([50, 253, 254])
    body = _upper(rng, last)
    for i in reversed(range(len(kinds))):
        nxt = kinds[i + 1] if i + 1 < len(kinds) else last
        body = _ext_header(rng, kinds[i], nxt) + body
    first = kinds[0] if kinds else last
    plen = _lie(rng, len(body))
    version = 6 if rng.random() < 0.95 else rng.randrange(16)
    hdr = struct.pack(">IHBB", (version << 28) | rng.randrange(1 << 28), plen, first,
                      rng.randrange(256)) + rng.randbytes(32)
    l3 = hdr + body
    frame = _l2(rng, len(l3), 0x86DD) + l3
    return _cut(rng, frame), f"raw ipv6 ext={kinds} upper={last} plen={plen}"


def mutated(rng: random.Random) -> tuple[bytes, str]:
    frame = bytearray(traffic.random_frame(rng, rng.choice(traffic.GOOD_KINDS),
                                           max_payload=600).data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(min(len(frame), 100))
        frame[at] = rng.randrange(256)
    return _cut(rng, bytes(frame)), "mutated good frame"


def long_liar(rng: random.Random) -> tuple[bytes, str]:
    """A frame longer than the window whose IP length field may run past it (deferred)."""
    f = traffic.random_frame(rng, rng.choice(traffic.GOOD_KINDS), max_payload=1500)
    frame = bytearray(f.data)
    l3 = f.layout["l3_offset"]
    if f.layout["ip_version"] == 4:
        at, value = l3 + 2, f.layout["ip_end"] - l3
    else:
        at, value = l3 + 4, f.layout["ip_end"] - l3 - 40
    value = max(0, min(0xFFFF, value + rng.choice([1, 2, 100, 3000, -1, -8])))
    frame[at:at + 2] = value.to_bytes(2, "big")
    if len(frame) <= WINDOW_BYTES:
        frame += rng.randbytes(WINDOW_BYTES + 1 - len(frame) + rng.randrange(300))
    return bytes(frame), "IP length field off by a little or a lot, frame > window"


def garbage(rng: random.Random, width: int) -> tuple[bytes, str]:
    nb = width // 8
    n = rng.choice([1, 2, 13, 14, 15, nb - 1, nb, nb + 1, 255, 256, 257, 2 * nb + 1,
                    rng.randrange(1, 600)])
    frame = bytearray(rng.randbytes(n))
    if n >= 14 and rng.random() < 0.6:
        frame[12:14] = rng.choice([b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\xa8"])
        if n > 14 and rng.random() < 0.5:
            frame[14] = rng.choice([0x45, 0x4F, 0x60, 0x44])
    return bytes(frame), f"garbage of {n} bytes"


def v6_frame(rng: random.Random, chain: list[tuple[int, bytes]], upper: int, tail: bytes, *,
             tags: int = 0, snap: bool = False) -> bytes:
    """Ethernet (``tags`` 802.1Q tags, LLC/SNAP) / IPv6 / ``chain`` of (type, bytes after the
    Next Header byte) / ``tail`` (the upper-layer bytes), with a true Payload Length."""
    body = tail
    for i in reversed(range(len(chain))):
        nxt = chain[i + 1][0] if i + 1 < len(chain) else upper
        body = bytes([nxt]) + chain[i][1] + body
    first = chain[0][0] if chain else upper
    l3 = struct.pack(">IHBB", 6 << 28, len(body), first, 64) + rng.randbytes(32) + body
    head = rng.randbytes(12) + b"\x81\x00\x00\x01" * tags
    if snap:
        head += struct.pack(">H", min(1500, 8 + len(l3))) + b"\xaa\xaa\x03\x00\x00\x00\x86\xdd"
    else:
        head += b"\x86\xdd"
    return head + l3


def _generic(n: int, rng: random.Random) -> bytes:
    return bytes([n]) + rng.randbytes((n + 1) * 8 - 2)


def _tcp(doff: int, payload: int = 16) -> bytes:
    return bytes(12) + bytes([doff << 4, 0x10]) + bytes(max(20, doff * 4) - 14 + payload)


def directed_ipv6(rng: random.Random) -> list[tuple[bytes, str]]:
    """The extension-header rules one by one: routing types and Segments Left, fragments,
    AH, Hop-by-Hop placement, chains ending at or past byte 248 (``MAX_EXT_END``) and the
    256-byte window edges."""
    udp = struct.pack(">HHHH", 1, 2, 12, 0) + bytes(4)
    cases = []
    for rtype in (0, 2, 3, 4):
        for segleft in (0, 1, 5):
            for n in (0, 1, 2, 3):
                rh = bytes([n, rtype, segleft]) + rng.randbytes((n + 1) * 8 - 4)
                cases.append((v6_frame(rng, [(43, rh)], 17, udp),
                              f"routing type {rtype} SL {segleft} len {n}"))
    rh = bytes([2, 4, 1]) + rng.randbytes(20)
    cases.append((v6_frame(rng, [(0, _generic(0, rng)), (43, rh), (43, rh)], 6, _tcp(5)),
                  "second routing header"))
    cases.append((v6_frame(rng, [(60, _generic(0, rng)), (0, _generic(0, rng))], 6, _tcp(5)),
                  "Hop-by-Hop not first"))
    for off, mflag in ((0, 0), (0, 1), (1, 0), (8191, 1)):
        fh = bytes([0]) + struct.pack(">H", (off << 3) | mflag) + rng.randbytes(4)
        cases.append((v6_frame(rng, [(44, fh)], 6, _tcp(5)), f"fragment offset {off} M {mflag}"))
        cases.append((v6_frame(rng, [(44, fh)], 50, rng.randbytes(20)),
                      f"fragment offset {off} M {mflag} then ESP"))
    for n in (0, 1, 4, 30):
        ah = bytes([n]) + rng.randbytes((n + 2) * 4 - 2)
        cases.append((v6_frame(rng, [(51, ah)], 17, udp), f"AH len {n}"))
    for nh in (50, 253, 254):
        cases.append((v6_frame(rng, [(60, _generic(0, rng))], nh, rng.randbytes(30)),
                      f"Next Header {nh}"))
    for tags, snap in ((0, False), (2, False), (2, True)):
        # (two tags and SNAP: the chain starts at 70, so 176 bytes end at 246, 184 at 254)
        for ext in (120, 128, 136, 176, 184, 192, 200):
            chain = [(60, _generic(ext // 8 - 1, rng))]
            for doff in (5, 13, 14, 15):
                cases.append((v6_frame(rng, chain, 6, _tcp(doff), tags=tags, snap=snap),
                              f"{tags} tags snap {snap} ext {ext} tcp doff {doff}"))
            cases.append((v6_frame(rng, chain, 17, udp, tags=tags, snap=snap),
                          f"{tags} tags snap {snap} ext {ext} udp"))
    # A chain that ends at byte 246 (within MAX_EXT_END), then one more extension header of
    # each length rule there: it ends past 248 (EXT_TOO_LONG).
    fh = bytes([0]) + struct.pack(">H", 0) + rng.randbytes(4)
    for name, last in (("generic", (60, _generic(0, rng))), ("fragment", (44, fh)),
                       ("AH", (51, bytes([0]) + rng.randbytes(6)))):
        chain = [(60, _generic(192 // 8 - 1, rng)), last]
        cases.append((v6_frame(rng, chain, 17, udp), f"192-byte chain then {name} at 246"))
    return cases


def directed(width: int) -> list[tuple[bytes, str]]:
    """Every malformed case of the generator once, the extension-header rules, and lengths
    at every boundary."""
    rng = random.Random(7)
    cases = [(traffic.malformed_frame(rng, case).data or b"\x00", f"malformed {case}")
             for case in traffic.MALFORMED_CASES]
    cases += directed_ipv6(rng)
    nb = width // 8
    for n in sorted({1, 2, 13, 14, 15, 53, 54, 60, 64, nb - 1, nb, nb + 1, 2 * nb,
                     WINDOW_BYTES - nb, WINDOW_BYTES - 1, WINDOW_BYTES, WINDOW_BYTES + 1,
                     WINDOW_BYTES + nb, 1500}):
        if n <= 0:
            continue
        # a good IPv4/UDP frame of exactly n bytes where it fits, else garbage
        if n >= 42:
            udp = struct.pack(">HHHH", 1, 2, n - 34, 0) + bytes(n - 42)
            ip = struct.pack(">BBHHHBBH", 0x45, 0, n - 14, 0, 0, 64, 17, 0) + bytes(8)
            cases.append((bytes(12) + b"\x08\x00" + ip + udp, f"udp4 of exactly {n} bytes"))
        cases.append((rng.randbytes(n), f"garbage of exactly {n} bytes"))
    # the consumer's deferred IP length check, every run: IPv4 and IPv6 frames past the
    # window whose IP length runs past their end
    n = WINDOW_BYTES + 100
    ip = struct.pack(">BBHHHBBH", 0x45, 0, n, 0, 0, 64, 17, 0) + bytes(8)
    cases.append((bytes(12) + b"\x08\x00" + ip + bytes(n - 34), "IPv4 length past the end"))
    ip6 = struct.pack(">IHBB", 0x60000000, n, 17, 64) + bytes(32)
    cases.append((bytes(12) + b"\x86\xdd" + ip6 + bytes(n - 54), "IPv6 length past the end"))
    return cases


def random_case(rng: random.Random, width: int) -> tuple[bytes, str]:
    """One frame of the random mix (never empty: an AXI4-Stream frame has a byte)."""
    frame, desc = _random_case(rng, width)
    return (frame or rng.randbytes(1)), desc


def _random_case(rng: random.Random, width: int) -> tuple[bytes, str]:
    r = rng.random()
    if r < 0.50:
        f = traffic.random_frame(rng, max_payload=rng.choice([300, 1500, 1500, 9000]))
        return f.data, f.desc
    if r < 0.58:
        f = traffic.malformed_frame(rng)
        return f.data, f.desc
    if r < 0.70:
        return raw_ipv6(rng)
    if r < 0.78:
        return raw_ipv4(rng)
    if r < 0.86:
        return mutated(rng)
    if r < 0.92:
        return long_liar(rng)
    return garbage(rng, width)


# --- NVGRE: GRE and an inner frame behind the outer headers ---------------------------------

_GRE_FLAG_SETS = (0, 0, 0x8000, 0x2000, 0x1000, 0xB000, 0xA000, 0x3000, 0x9000)


def gre_wrap(rng: random.Random, inner: bytes) -> tuple[bytes, str]:
    """``inner`` (a whole Ethernet frame) in GRE behind random outer L2 and an outer IPv4
    (options, sometimes a fragment) or IPv6 (Hop-by-Hop and Destination Options, up to the
    128-byte limit) header: GRE with random C/K/S, sometimes an unknown flag, a version or
    another protocol; outer lengths true or lying; sometimes cut."""
    flags = rng.choice(_GRE_FLAG_SETS)
    r = rng.random()
    if r < 0.04:
        flags |= rng.choice([0x4000, 0x0800, 0x0100, 0x0008, 0x0080])
    elif r < 0.08:
        flags |= rng.randrange(1, 8)
    proto = 0x6558 if rng.random() < 0.94 else rng.choice([0x0800, 0x86DD, 0x6559, 0x5865])
    options = 4 * bin(flags & 0xB000).count("1")
    payload = struct.pack(">HH", flags, proto) + rng.randbytes(options) + inner
    if rng.random() < 0.5:
        chain = []
        if rng.random() < 0.5:
            chain.append((0, _generic(rng.choice([0, 0, 1, 7]), rng)))
        for _ in range(rng.choice([0, 0, 1, 2])):
            chain.append((60, _generic(rng.choice([0, 1, 2, 5, 7, 13, 14, 15]), rng)))
        body = payload
        for i in reversed(range(len(chain))):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else 47
            body = bytes([nxt]) + chain[i][1] + body
        first = chain[0][0] if chain else 47
        l3 = struct.pack(">IHBB", 6 << 28, _lie(rng, len(body)), first, 64) + \
            rng.randbytes(32) + body
        etype, desc = 0x86DD, f"ipv6 ext={[len(c) + 1 for _, c in chain]}"
    else:
        ihl = rng.choice([5, 5, 5, 6, 15])
        frag = rng.choice([0] * 10 + [0x4000, 0x2000, 0x0005])
        hdr = struct.pack(">BBHHHBB", 0x40 | ihl, 0, _lie(rng, ihl * 4 + len(payload)), 0,
                          frag, 64, 47) + rng.randbytes(ihl * 4 - 10)
        l3 = hdr + payload
        etype, desc = 0x0800, f"ipv4 ihl={ihl} frag={frag:#x}"
    frame = _l2(rng, len(l3), etype) + l3
    return _cut(rng, frame), f"GRE {flags:#06x}/{proto:#06x} in {desc}"


def nvgre_case(rng: random.Random) -> tuple[bytes, str]:
    """One frame of the NVGRE mix: finished NVGRE frames from ``nvgre_frames`` (some with a
    byte of their headers changed), and every inner frame the parser's own generators make
    (random L2 with tags and LLC/SNAP, random IPv4 headers and IPv6 extension chains, good
    frames) wrapped by :func:`gre_wrap`. Frames are not empty."""
    r = rng.random()
    if r < 0.3:
        f = nvgre_frames.random_nvgre(rng, max_payload=rng.choice([0, 40, 400]))
        frame, desc = bytearray(f.frame), f"nvgre {f.desc}"
        if rng.random() < 0.3:
            at = rng.randrange(14, min(len(frame), WINDOW_BYTES))
            frame[at] = rng.randrange(256)
            desc += f", byte {at} changed"
        return bytes(frame), desc
    if r < 0.5:
        inner, desc = raw_ipv4(rng)
    elif r < 0.7:
        inner, desc = raw_ipv6(rng)
    elif r < 0.8:
        inner, desc = rng.choice(directed_ipv6(rng))
    else:
        f = traffic.random_frame(rng, max_payload=rng.choice([0, 60, 400]))
        inner, desc = f.data, f.desc
    frame, outer = gre_wrap(rng, inner)
    return (frame or b"\x00"), f"{outer} / {desc}"


# --- the testbench ------------------------------------------------------------------------

def beat_users(rng: random.Random, n: int, width: int, user_width: int) -> list[int]:
    """A random tuser per beat."""
    return [rng.getrandbits(user_width) if user_width else 0
            for _ in range(common.beats_of(n, width))]


class RecordGate:
    """The contract of the units behind the parser: a frame's beats are taken only once its
    record has been. Counts the records taken on ``m_headers`` and the frames finished on
    ``m_axis`` from the handshakes as sampled at each clock edge (by whichever coroutine asks
    first at that edge; writes land after the edge, so the order does not matter), and holds
    the frame sink (its :meth:`GatedSink.full`) while records <= frames: the sink's ``tready``
    for the next edge follows this edge's counts, as a consumer that decides each cycle.
    """

    def __init__(self, clk, headers, frames: GatedSink):
        self.clk, self.headers, self.sink = clk, headers, frames
        self.records = self.frames = 0
        self._time = None
        frames.gate = self
        cocotb.start_soon(self._run())

    def _sample(self):
        now = get_sim_time()
        if now == self._time:
            return
        self._time = now
        h, a = self.headers, self.sink.bus
        beat = int(a.tvalid.value) and int(a.tready.value)
        assert not beat or self.records > self.frames, \
            f"testbench: m_axis took a beat of frame {self.frames} before its record"
        if int(h.tvalid.value) and int(h.tready.value):
            self.records += 1
        if beat and int(a.tlast.value):
            self.frames += 1

    def closed(self) -> bool:
        self._sample()
        return self.records <= self.frames

    async def _run(self):
        edge, settled = RisingEdge(self.clk), ReadWrite()
        while True:
            await edge
            self._sample()
            # The sink sleeps while it is held; wake it for the next edge, after it has gone
            # to sleep for this one, so that it decides again then.
            await settled
            self.sink.wake_event.set()


class GatedSink(AxiStreamSink):
    """An AxiStreamSink that is also held while its :class:`RecordGate` is closed."""

    gate: RecordGate | None = None

    def full(self):
        return super().full() or (self.gate is not None and self.gate.closed())


class TB(common.StreamTB):
    """FrameParser: frames on ``s_axis`` (random ``tuser`` per beat when the unit has one),
    records on ``m_headers`` (one word each) and the frames again on ``m_axis``.

    ``contract``: ``m_axis`` takes a frame's beats only after the frame's record
    (:class:`RecordGate`), as the checksum units do; else both outputs drain on their own.
    """

    def __init__(self, dut, *, contract: bool):
        super().__init__(dut)
        self.user_width = _user_width(dut)
        self.src = self.source("s_axis")
        self.records = self.word_sink("m_headers")
        self.out = self.sink("m_axis", cls=GatedSink)
        if contract:
            RecordGate(dut.clk, self.records.bus, self.out)

    @classmethod
    async def start(cls, dut, rng: random.Random | None = None, *, idle=False,
                    backpressure=False, contract=False) -> TB:
        tb = cls(dut, contract=contract)
        tb.set_pauses(tb.src, idle, rng)
        for end in (tb.records, tb.out):
            tb.set_pauses(end, backpressure, rng)
        await tb.reset()
        return tb

    def send(self, frame: bytes, users: list[int]):
        """``frame`` with ``users[k]`` in beat k's ``tuser``."""
        tuser = common.beat_users(len(frame), self.width, users) if self.user_width else None
        self.src.send_nowait(AxiStreamFrame(frame, tuser=tuser))

    async def check(self, board: Scoreboard, count: int, budget: int, what: str):
        """Every record and every frame of ``count`` against ``board``, under the watchdog."""

        async def records():
            for i in range(count):
                board.record(i, common.word(await self.records.recv()))

        async def frames():
            for i in range(count):
                got = await self.out.recv(compact=False)
                board.frame(i, common.beats(got, self.width, f"frame {i}"))

        async def both():
            task = cocotb.start_soon(records())
            await frames()
            await task

        await self.guard(both(), what, budget)


class Scoreboard:
    def __init__(self, cases, users, fields, user_width):
        self.cases, self.users, self.fields = cases, users, fields
        self.user_width = user_width
        self.codes: dict[str, int] = {}
        self.deferred = 0

    def record(self, i, value):
        assert i < len(self.cases), f"record {i}: more records than frames"
        frame, desc = self.cases[i]
        rec = decode(value, self.fields)
        err, replaced = check_record(i, frame, desc, self.users[i][0] if self.user_width else 0,
                                     rec)
        name = ParseError(err).name if err else "OK"
        self.codes[name] = self.codes.get(name, 0) + 1
        common.tally(frame)
        self.deferred += replaced

    def frame(self, i, got):
        assert i < len(self.cases), f"frame {i}: more frames than sent"
        data, users = got
        frame, desc = self.cases[i]
        assert data == frame, (f"frame {i} ({desc}): m_axis bytes differ ({len(data)} bytes "
                               f"out, {len(frame)} in)")
        if self.user_width:
            assert users == self.users[i], f"frame {i} ({desc}): tuser per beat differs"


def _user_width(dut) -> int:
    """Bits of ``tuser`` the parser under test carries (0 when it has none)."""
    port = getattr(dut, "s_axis_tuser", None)
    return len(port) if port is not None else 0


async def run_frames(tb: TB, cases, rng, budget=20):
    width, user_width = tb.width, tb.user_width
    users = [beat_users(rng, len(f), width, user_width) for f, _ in cases]
    board = Scoreboard(cases, users, record_fields(user_width), user_width)
    beats = sum(common.beats_of(len(f), width) for f, _ in cases)
    for (frame, _), u in zip(cases, users):
        tb.send(frame, u)
    await tb.check(board, len(cases), budget * beats + 20 * len(cases) + 2000,
                   "records and frames")
    await tb.settle()       # no record with no frame, no beat with no frame
    return board


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_frames(dut, idle, backpressure):
    """Random and directed frames against the model; the consumer honours the contract."""
    width = common.params()["width"]
    rng = random.Random(common.seed() * 4 + idle * 2 + backpressure)
    count = common.frames(500)
    cases = directed(width)
    cases += [random_case(rng, width) for _ in range(max(0, count - len(cases)))]
    tb = await TB.start(dut, rng, idle=idle, backpressure=backpressure, contract=True)
    board = await run_frames(tb, cases, rng)
    dut._log.info("codes: %s; deferred IP length checks: %d",
                  dict(sorted(board.codes.items())), board.deferred)
    if count >= 300:
        missing = ({e.name for e in ParseError} | {"OK"}) - set(board.codes)
        assert not missing, f"never produced: {sorted(missing)}"
        assert board.deferred, "no deferred IP length check failed"


@cocotb.test()
@cocotb.parametrize(backpressure=[False, True])
async def nvgre(dut, backpressure):
    """The NVGRE mix (:func:`nvgre_case`) against ``model.nvgre.follow``: every NVGRE field of
    every record, with idles on the source (and backpressure on both outputs)."""
    rng = random.Random(common.seed() * 2 + backpressure + 5)
    cases = [nvgre_case(rng) for _ in range(max(60, common.frames(500) // 2))]
    tb = await TB.start(dut, rng, idle=True, backpressure=backpressure, contract=True)
    board = await run_frames(tb, cases, rng)
    found = sum(model_record(frame)["is_nvgre"] for frame, _ in cases)
    dut._log.info("codes: %s; NVGRE frames: %d of %d", dict(sorted(board.codes.items())),
                  found, len(cases))
    assert found >= len(cases) // 5, "too few NVGRE frames to say anything"


@cocotb.test()
async def free_consumer(dut):
    """Beats drained without waiting for records, records held back hard: the record FIFO
    fills, the walk stalls, the capture waits; nothing is lost or reordered."""
    width = common.params()["width"]
    rng = random.Random(common.seed() + 11)
    cases = [random_case(rng, width) for _ in range(max(40, common.frames(500) // 5))]
    consumer_rng = random.Random(rng.random())
    tb = await TB.start(dut, consumer_rng, backpressure=True)
    board = await run_frames(tb, cases, consumer_rng)
    assert board.codes


def tcp4_frame(rng: random.Random, size: int) -> bytes:
    ip = struct.pack(">BBHHHBBH", 0x45, 0, size - 14, 0, 0x4000, 64, 6, 0) + rng.randbytes(8)
    tcp = rng.randbytes(12) + bytes([0x50, 0x10]) + rng.randbytes(6)
    return rng.randbytes(12) + b"\x08\x00" + ip + tcp + rng.randbytes(size - 54)


def tcp6_frame(rng: random.Random, size: int, exts: int) -> bytes:
    body = rng.randbytes(12) + bytes([0x50, 0x10]) + rng.randbytes(6) + \
        rng.randbytes(size - 14 - 40 - 8 * exts - 20)
    for i in range(exts):
        body = bytes([6 if i == 0 else 60, 0]) + rng.randbytes(6) + body
    ip = struct.pack(">IHBB", 6 << 28, len(body), 60 if exts else 6, 64) + rng.randbytes(32)
    return rng.randbytes(12) + b"\x86\xdd" + ip + body


async def rate(tb: TB, cases, rng):
    """Back to back, no idles, no pauses: input stall cycles and frames per cycle."""
    width, user_width = tb.width, tb.user_width
    users = [beat_users(rng, len(f), width, user_width) for f, _ in cases]
    board = Scoreboard(cases, users, record_fields(user_width), user_width)
    meter = tb.meter(tb.src).start()
    for (frame, _), u in zip(cases, users):
        tb.send(frame, u)
    beats = sum(common.beats_of(len(f), width) for f, _ in cases)
    await tb.check(board, len(cases), 10 * beats + 2000, "line rate frames")
    meter.stop()
    await ClockCycles(tb.dut.clk, 20)
    starts = meter.starts
    per_cycle = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    return meter.stalls, per_cycle


def _report(name: str, values: dict):
    dut_log = cocotb.log
    dut_log.info("%s: %s", name, values)
    try:
        with open("parse_metrics.json") as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    data[name] = values
    with open("parse_metrics.json", "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


@cocotb.test()
@cocotb.parametrize(contract=[False, True])
async def line_rate(dut, contract):
    """Back-to-back 1500-byte frames (IPv4 and IPv6 with up to three extension headers),
    no idles, no backpressure: the input never stalls, whether or not the consumer waits for
    each record before the frame's beats."""
    rng = random.Random(common.seed() + 5)
    tb = await TB.start(dut, contract=contract)
    cases = [(tcp4_frame(rng, 1500), "tcp4 1500") if i % 2 else
             (tcp6_frame(rng, 1500, i % 4), "tcp6 1500") for i in range(24)]
    stalls, per_cycle = await rate(tb, cases, rng)
    _report(f"line_rate_1500{'_contract' if contract else ''}",
            {"stalls": stalls, "frames_per_cycle": per_cycle})
    assert stalls == 0, f"input stalled {stalls} cycles on 1500-byte frames"


@cocotb.test()
async def small_frame_rate(dut):
    """Measure (do not assert) frames per cycle for back-to-back 64-byte IPv4/TCP frames and
    256-byte frames; 256-byte IPv4/TCP frames must not stall the input."""
    rng = random.Random(common.seed() + 6)
    tb = await TB.start(dut)
    results = {}
    for size in (64, 128, 256):
        cases = [(tcp4_frame(rng, size), f"tcp4 {size}") for _ in range(40)]
        stalls, per_cycle = await rate(tb, cases, rng)
        results[size] = {"stalls": stalls, "frames_per_cycle": round(per_cycle, 4)}
    _report("small_frames", results)
    assert results[256]["stalls"] == 0, f"256-byte frames stalled: {results[256]}"


@cocotb.test()
async def latency(dut):
    """Cycles from the edge that takes the window-completing beat to the first edge at which
    the record could be taken, with the parser idle, up to the longest walk (which must stay
    within the skid FIFO's margin)."""
    width = common.params()["width"]
    nb = width // 8
    rng = random.Random(3)
    tb = await TB.start(dut)
    tb.records.pause = True         # records wait; frames drain
    results = {}
    cases = {"tcp4_1500": tcp4_frame(rng, 1500), "tcp6_2ext_1500": tcp6_frame(rng, 1500, 2),
             "tcp4_64": tcp4_frame(rng, 64), "runt": bytes(10),
             # the longest walk: 25 extension headers of 8 bytes (bytes 54..253; the last
             # ends past MAX_EXT_END, EXT_TOO_LONG): 26 steps
             "tcp6_25ext_1500": tcp6_frame(rng, 1500, 25)}
    for name, frame in cases.items():
        complete_beat = (min(len(frame), WINDOW_BYTES) - 1) // nb
        tb.send(frame, beat_users(rng, len(frame), width, tb.user_width))
        beat, cycle, taken_at = 0, 0, None
        while True:
            await RisingEdge(dut.clk)
            cycle += 1
            if int(dut.s_axis_tvalid.value) and int(dut.s_axis_tready.value):
                if beat == complete_beat:
                    taken_at = cycle
                beat += 1
            if taken_at is not None and int(dut.m_headers_tvalid.value):
                results[name] = cycle - taken_at
                break
            assert cycle < 2000, "no record"
        tb.records.pause = False    # take this record, then hold the next again
        await tb.guard(tb.records.recv(), f"record of {name}", 100)
        tb.records.pause = True
        await tb.guard(tb.out.recv(), f"frame {name}", 2000)
        await ClockCycles(dut.clk, 200)
    await tb.settle()
    _report("latency", results)
    # The default skid FIFO holds a window plus SKID_MARGIN beats so that a consumer that waits
    # for each record keeps the input at line rate: that needs every record within as many.
    margin = FrameParser.SKID_MARGIN
    assert max(results.values()) <= margin, f"record latency past the skid's margin: {results}"
