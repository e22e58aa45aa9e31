"""LSOv2 over NVGRE sends for the segmenter and TX path benches (``tb_lso``, ``tb_txpath``).

Sends are NVGRE frames built by scapy (``tb.nvgre_frames.build``: outer and inner IPv4 or
IPv6, GRE with or without checksum, key and sequence number, 802.1Q outside, IPv4 and TCP
options, IPv6 Hop-by-Hop and Destination Options inside and outside), made large sends by
the transport (``model.transport_nvgre.prepare_large_send``: lengths 0, the inner TCP
checksum field the pseudo-header sum without length, LsoV2Transmit and supplemental words).
Knobs lean to the corners: IDs at the 15-bit and 16-bit wraps on both IP headers, TCP and
GRE sequence numbers about to wrap past 2**32, headers ending near byte 256, one-byte and
exact-multiple payloads. Bad sends break one rule each (``DROPS``) and must be dropped whole
with the model's reason (``model.nvgre_lso``).

``scapy_confirms`` is the independent judge of what a sent send became on the wire: scapy
recomputes every outer and inner checksum and length of each segment (``nvgre_frames.
scapy_ok``), and the inner TCP payloads, in sequence order, reassemble to the send's payload.
"""

from __future__ import annotations

import random

from nicoffload.model.checksum import TX_MAX_FRAME
from nicoffload.model.nbl import LSO_TYPE_V2, LsoV2Transmit, SendSupplemental, TxUser
from nicoffload.model.nvgre import NvgreError, follow, supplemental_for
from nicoffload.model.transport_nvgre import prepare_large_send
from nicoffload.tb import nvgre_frames
from nicoffload.tb.nvgre_frames import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

__all__ = ["DROPS", "nvgre_send", "random_nvgre_send", "nvgre_drop", "corner_sends",
           "mangled_send",
           "is_encapsulated", "scapy_confirms"]

DROPS = ("mss0", "v1", "ipver", "not_teb", "gre_version", "gre_flags", "inner_udp",
         "inner_frag", "syn", "rst", "urg", "urgptr", "outer_total", "inner_total", "csum",
         "offsets", "trunc", "empty", "too_long", "bigmss", "not_encap", "plain_encap",
         "outer_frag", "inner_ethertype", "inner_ip_version", "inner_esp", "gre_cut")


def _pick(rng, *choices):
    return rng.choice(choices)


def _near_wrap(rng, bits):
    """A value near a wrap of a ``bits``-bit counter, or random."""
    top = 1 << bits
    return _pick(rng, rng.getrandbits(bits), top - rng.randint(1, 4), (top >> 1) - rng.randint(1, 4),
                 rng.randrange(4))


def _ip_id(rng):
    return _pick(rng, rng.getrandbits(16), 0x7FFF - rng.randrange(3), 0xFFFF - rng.randrange(3),
                 0x8000, 0x7FFE)


def nvgre_send(rng: random.Random, *, size: int, mss: int, long_headers: bool = False,
               **fixed):
    """One prepared NVGRE large send: ``(frame, tuser, desc, payload)``. Knobs random unless
    in ``fixed`` (``nvgre_frames.build``'s keywords)."""
    outer_v6 = fixed.pop("outer_v6", rng.random() < 0.5)
    inner_v6 = fixed.pop("inner_v6", rng.random() < 0.5)
    flags = ACK
    for bit in (FIN, PSH, CWR, ECE):
        if rng.random() < 0.3:
            flags |= bit

    def ext():
        out = []
        if rng.random() < (0.8 if long_headers else 0.3):
            out.append(("hbh", _pick(rng, 8, 16, 32) if long_headers else _pick(rng, 8, 16)))
        if rng.random() < (0.8 if long_headers else 0.3):
            out.append(("dst", _pick(rng, 8, 24, 40) if long_headers else _pick(rng, 8, 24)))
        return tuple(out)
    tcp_options = ()
    if long_headers or rng.random() < 0.4:
        tcp_options = (("MSS", 1400), ("NOP", None), ("WScale", 7),
                       ("Timestamp", (rng.getrandbits(32), rng.getrandbits(32))))
        if long_headers and rng.random() < 0.5:
            tcp_options += (("NOP", None),) * 4 + (("SAckOK", b""),)
    knobs = dict(
        gre_checksum=rng.random() < 0.5,
        key=rng.getrandbits(32) if rng.random() < 0.5 else None,
        seq=_near_wrap(rng, 32) if rng.random() < 0.5 else None,
        vlan=rng.random() < 0.3,
        outer_ext=ext() if outer_v6 else (), inner_ext=ext() if inner_v6 else (),
        outer_ip_options=(((nvgre_frames.IPOption_NOP(),) * _pick(rng, 4, 8, 40))
                          if not outer_v6 and rng.random() < (0.7 if long_headers else 0.2)
                          else ()),
        inner_ip_options=(((nvgre_frames.IPOption_NOP(),) * _pick(rng, 4, 20, 40))
                          if not inner_v6 and rng.random() < (0.7 if long_headers else 0.2)
                          else ()),
        tcp_options=tcp_options, payload=_payload(rng, size),
        outer_id=_ip_id(rng), inner_id=_ip_id(rng), tcp_seq=_near_wrap(rng, 32), flags=flags)
    knobs.update(fixed)
    built = nvgre_frames.build(outer_v6=outer_v6, inner_v6=inner_v6, l4="tcp", **knobs)
    nv = follow(built.frame)
    if nv.ok:
        frame, word, csum, supp = prepare_large_send(built.frame, nv, mss)
    else:   # headers past byte 256: the walk refuses it before any field is looked at
        assert nv.error_code == NvgreError.INNER_PAST_LIMIT, f"{built.desc}: {nv.error}"
        frame, csum = built.frame, 0
        word = LsoV2Transmit(MSS=mss, Type=LSO_TYPE_V2, IPVersion=int(inner_v6)).to_int()
        supp = SendSupplemental(IsEncapsulatedPacket=1).to_int()
    desc = f"nvgre {built.desc} hdr={nv.headers_end or 'past 256'} mss={mss}"
    return frame, TxUser.for_frame(frame, csum, word, supp), desc, built.payload


def snap_send(rng: random.Random, *, outer_snap: bool, inner_snap: bool, size: int, mss: int,
              past_limit: int | None = None, **fixed):
    """``nvgre_send`` with LLC/SNAP (802.3 length 1500, OUI 0) spliced into the outer and/or
    the inner Ethernet header of the prepared send (behind its VLAN tag, if any), and the
    supplemental word redone for the moved headers. ``past_limit``: the MSS is instead the
    largest a segment's 802.3 length allows plus ``past_limit``."""
    frame, user, desc, payload = nvgre_send(rng, size=size, mss=mss, **fixed)
    csum, word, supp, _ = TxUser.unpack_raw(user)
    nv = follow(frame, lengths_from_buffer=True)
    f = bytearray(frame)
    # The inner one first: it is further in, so the outer splice does not move it.
    for on, l3 in ((inner_snap, nv.inner.l3_offset), (outer_snap, nv.outer.l3_offset)):
        if on:
            f[l3 - 2:l3 - 2] = (1500).to_bytes(2, "big") + b"\xaa\xaa\x03\x00\x00\x00"
    moved = follow(f, lengths_from_buffer=True)
    if moved.ok:
        supp = supplemental_for(moved).to_int()
        if past_limit is not None:  # 802.3 length = segment - (l3 - 8) <= 1500
            l3 = moved.outer.l3_offset if outer_snap else moved.inner.l3_offset
            mss = 1500 - 8 - (moved.headers_end - l3) + past_limit
            word = (word & ~0xFFFFF) | mss
    tag = (" osnap" if outer_snap else "") + (" isnap" if inner_snap else "") + \
        (f" 802.3 limit mss={word & 0xFFFFF}" if past_limit is not None else "")
    return bytes(f), TxUser.for_frame(f, csum, word, supp), desc + tag, payload


def _payload(rng, size):
    r = rng.random()
    if r < 0.1:
        return b"\xff" * size
    if r < 0.15:
        return bytes(size)
    return rng.randbytes(size)


def _mss_and_size(rng, budget):
    mss = _pick(rng, rng.randint(1, 64), rng.randint(64, 1500), _pick(rng, 536, 1400, 1448),
                rng.randint(1500, 9000))
    size = _pick(rng, rng.randint(1, 200), rng.randint(200, 3000), rng.randint(3000, budget))
    if rng.random() < 0.2:
        size = max(1, (size // mss) * mss or mss)
    return mss, min(size, mss * 200, budget)


def random_nvgre_send(rng: random.Random, budget: int = 12000):
    """A sent NVGRE large send (85%) or one of ``DROPS``: ``(frame, tuser, desc)``."""
    mss, size = _mss_and_size(rng, budget)
    if rng.random() < 0.85:
        frame, user, desc, _ = nvgre_send(rng, size=size, mss=mss,
                                          long_headers=rng.random() < 0.2)
        return frame, user, desc
    return nvgre_drop(rng, rng.choice(DROPS), size, mss)


def _set16(b: bytearray, at: int, value: int):
    b[at:at + 2] = (value & 0xFFFF).to_bytes(2, "big")


def nvgre_drop(rng: random.Random, what: str, size: int, mss: int):
    """An NVGRE send that breaks one rule: ``(frame, tuser, desc)``."""
    fixed = {}
    if what in ("outer_total", "outer_frag"):
        fixed["outer_v6"] = False
    if what == "inner_esp":
        fixed["inner_v6"] = True
    if what in ("inner_total", "inner_frag", "inner_udp"):
        fixed["inner_v6"] = False
    if what == "empty":
        size = 0
    if what == "bigmss":
        mss = _pick(rng, TX_MAX_FRAME, 9700, 20000, (1 << 20) - 1)
        size = _pick(rng, rng.randint(1, 9000), rng.randint(9600, 12000))
    if what == "too_long":
        fixed.update(outer_v6=True, inner_v6=True,
                     outer_ext=(("hbh", 64), ("dst", 40)), inner_ext=(("dst", 24),),
                     tcp_options=(("MSS", 1400), ("NOP", None), ("WScale", 7),
                                  ("Timestamp", (1, 2))))
    frame, user, desc, _ = nvgre_send(rng, size=max(size, 1) if what != "empty" else 1,
                                      mss=max(mss, 1), **fixed)
    if what == "empty":
        frame = frame[:-1]
    f = bytearray(frame)
    csum, word, supp, _ = TxUser.unpack_raw(user)
    nv = follow(f, lengths_from_buffer=True)
    outer, inner, gre = nv.outer, nv.inner, nv.gre_offset
    l4 = inner.l4_offset
    if what == "mss0":
        word &= ~0xFFFFF
    elif what == "v1":
        word &= ~(3 << 30)
    elif what == "ipver":
        word ^= 1 << 31
    elif what == "not_teb":
        _set16(f, gre + 2, _pick(rng, 0x0800, 0x86DD, 0x6559))
    elif what == "gre_version":
        f[gre + 1] |= rng.randint(1, 7)
    elif what == "gre_flags":
        f[gre] |= _pick(rng, 0x40, 0x08, 0x01)
    elif what == "inner_udp":
        f[inner.l3_offset + 9] = 17
    elif what == "outer_frag":
        f[outer.l3_offset + 6] |= 0x20
    elif what == "inner_ethertype":
        inner_type = inner.l3_offset - 2
        _set16(f, inner_type, _pick(rng, 0x0806, 0x86DD if inner.ip_version == 4 else 0x0800,
                                    0x88CC))
    elif what == "inner_ip_version":
        f[inner.l3_offset] = (f[inner.l3_offset] & 0x0F) | (_pick(rng, 5, 7, 0) << 4)
    elif what == "inner_esp":      # the inner IPv6 header's Next Header: ESP, unfollowable
        f[inner.l3_offset + 6] = 50
    elif what == "gre_cut":         # the frame ends inside the GRE header or the inner L2
        f = f[:rng.randint(gre + 1, nv.inner_offset + 14)]
    elif what == "inner_frag":
        f[inner.l3_offset + 6] |= 0x20
    elif what in ("syn", "rst", "urg"):
        f[l4 + 13] |= {"syn": SYN, "rst": RST, "urg": URG}[what]
    elif what == "urgptr":
        _set16(f, l4 + 18, rng.randint(1, 0xFFFF))
    elif what == "outer_total":
        _set16(f, outer.l3_offset + 2, rng.randint(1, 0xFFFF))
    elif what == "inner_total":
        _set16(f, inner.l3_offset + 2, rng.randint(1, 0xFFFF))
    elif what == "csum":
        _set16(f, l4 + 16, int.from_bytes(f[l4 + 16:l4 + 18], "big") ^ (1 << rng.randrange(16)))
    elif what == "offsets":
        s = SendSupplemental.from_int(supp)
        name = _pick(rng, "InnerFrameOffset", "TransportIpHeaderRelativeOffset",
                     "TcpHeaderRelativeOffset", "IsInnerIPv6", "TcpOptionsPresent")
        field = dict(SendSupplemental.FIELDS)[name]
        value = getattr(s, name) ^ rng.randint(1, (1 << field) - 1)
        kw = {n: getattr(s, n) for n, _ in SendSupplemental.FIELDS} | {name: value}
        if rng.random() < 0.25:     # not marked valid: the offsets are not read (sent)
            kw["EncapsulatedPacketOffsetsValid"] = 0
        supp = SendSupplemental(**kw).to_int()
    elif what == "trunc":
        f = f[:rng.randint(1, l4 + 20)]
    elif what == "not_encap":       # an NVGRE send asking for plain LSOv2: outer GRE, not TCP
        supp = 0
    elif what == "plain_encap":     # IsEncapsulatedPacket on a plain TCP send
        from nicoffload.tb.tb_lso import large_send
        frame, plain_user = large_send(rng, version="v2", ipv6=rng.random() < 0.5,
                                       size=max(size, 1), mss=max(mss, 1))
        f = bytearray(frame)
        csum, word, _, _ = TxUser.unpack_raw(plain_user)
        supp = 1
    return bytes(f), TxUser.for_frame(f, csum, word, supp), f"drop:{what} {desc}"


def corner_sends(rng: random.Random, mangled: int = 40):
    """Deterministic corners: every outer/inner IP version pair with every GRE option set,
    VLAN, extension headers inside and outside, ID and sequence wraps, 1-byte and exact
    multiple payloads, headers ending at or just past byte 256, and every drop."""
    cases = []
    for outer_v6 in (False, True):
        for inner_v6 in (False, True):
            for c, k, s in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)):
                for size, mss in ((1, 1), (2000, 1000), (2001, 1000), (1000, 7)):
                    frame, user, desc, _ = nvgre_send(
                        rng, size=size, mss=mss, outer_v6=outer_v6, inner_v6=inner_v6,
                        gre_checksum=bool(c), key=rng.getrandbits(32) if k else None,
                        seq=0xFFFFFFFF - rng.randrange(3) if s else None,
                        vlan=rng.random() < 0.5, outer_id=_pick(rng, 0x7FFF, 0xFFFF, 0x7FFE),
                        inner_id=_pick(rng, 0x7FFF, 0xFFFF, 0xFFFE),
                        tcp_seq=0xFFFFFFFF - rng.randrange(2000))
                    cases.append((frame, user, desc))
    # Headers growing past byte 256 (the last ones are dropped: LSO_HEADERS_TOO_LONG).
    for pad in range(0, 64, 4):
        frame, user, desc, _ = nvgre_send(
            rng, size=3000, mss=1000, outer_v6=True, inner_v6=True, vlan=True,
            gre_checksum=True, key=1, seq=2, outer_ext=(("hbh", 32), ("dst", 40)),
            inner_ext=(("hbh", 8), ("dst", 8 + 8 * (pad // 8))),
            tcp_options=(("MSS", 1400), ("NOP", None), ("WScale", 7),
                         ("Timestamp", (1, 2))) + (("NOP", None),) * (pad % 8))
        cases.append((frame, user, desc))
    for outer_snap, inner_snap in ((True, False), (False, True), (True, True)):
        for vlan in (False, True):
            for size, mss, past in ((3000, 1000, None), (2500, 1300, None),
                                    (5000, 1460, None), (4000, 1, 0), (4000, 1, 1)):
                frame, user, desc, _ = snap_send(rng, outer_snap=outer_snap,
                                                 inner_snap=inner_snap, size=size, mss=mss,
                                                 past_limit=past, vlan=vlan)
                cases.append((frame, user, desc + ("" if past is None else f" +{past}")))
    # An inner IPv6 header crossing byte 256 (SNAP and tags on both sides, 128 bytes of
    # outer extension headers): TCP behind it is past the window, ESP is unfollowable.
    for next_header in (6, 50, 17, 59):
        frame, user, desc, _ = snap_send(
            rng, outer_snap=True, inner_snap=True, size=100, mss=50, outer_v6=True,
            inner_v6=True, outer_ext=(("hbh", 64), ("dst", 64)), vlan=True,
            gre_checksum=True, key=1, seq=2, inner_ext=())
        f = bytearray(frame)
        f[follow(f, lengths_from_buffer=True).inner.l3_offset + 6] = next_header
        cases.append((bytes(f), user, f"{desc} inner Next Header {next_header} past 256"))
    for what in DROPS:
        cases.append(nvgre_drop(rng, what, 3000, 1000))
    cases += [mangled_send(rng) for _ in range(mangled)]
    return cases


def mangled_send(rng: random.Random):
    """A send with one to three random bytes of its headers changed (mostly GRE and the
    inner headers): whatever the walk and the checks make of it, the model's reason (or
    segments)."""
    frame, user, desc, _ = nvgre_send(rng, size=rng.randint(1, 3000), mss=rng.randint(1, 1500))
    nv = follow(frame, lengths_from_buffer=True)
    f = bytearray(frame)
    where = []
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(_pick(rng, 12, nv.gre_offset, nv.gre_offset), nv.headers_end)
        f[at] = _pick(rng, rng.getrandbits(8), f[at] ^ (1 << rng.randrange(8)))
        where.append(at)
    csum, word, supp, _ = TxUser.unpack_raw(user)
    return bytes(f), TxUser.for_frame(f, csum, word, supp), f"mangled at {where}: {desc}"


def is_encapsulated(tuser: int) -> bool:
    return bool(TxUser.unpack_raw(tuser)[2] & 1)


def scapy_confirms(host_frame: bytes, segments, desc: str):
    """scapy's verdict on the wire segments of a sent NVGRE send (module docstring)."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import GRE, Ether
    nv = follow(host_frame, lengths_from_buffer=True)
    payload = host_frame[nv.headers_end:]
    got = []
    for k, seg in enumerate(segments):
        assert nvgre_frames.scapy_ok(seg, lengths=True), \
            f"{desc}: segment {k}: scapy rewrites its checksums or lengths"
        inner = Ether(bytes(Ether(seg)[GRE].payload))
        tcp = inner[TCP]
        got.append((tcp.seq, bytes(tcp.payload)))
    seq0 = got[0][0]
    joined = b"".join(data for _, data in sorted(got, key=lambda x: (x[0] - seq0) % (1 << 32)))
    assert joined == payload, f"{desc}: the segments' inner payloads do not reassemble"
