"""LsoSegmenter (hdl/lso.py) against model.lso, in Verilator.

The sends are built the way the NDIS transport builds them (``transport_lso.prepare_large_send``
on scapy-built headers): Ethernet II, 802.1Q, QinQ and LLC/SNAP; IPv4 with options or IPv6
with extension headers; TCP with options (timestamps, SACK, ...); every mix of the flags LSO
may carry (ACK, FIN, PSH, CWR, ECE, NS); IDs and sequence numbers near their wrap; payloads
of 1 byte to 256 KB, multiples of the MSS or not, MSS 1..9000 (and over TX_MAX_FRAME); plus
every drop case of ``model.lso`` and ordinary checksum-offload frames (``tb.traffic`` +
``transport.prepare_checksum``) in between; LSOv2 over NVGRE sends, sent and dropped
(``tb.nvgre_lso``: about an eighth of the random frames, and a test of their corners),
whose model segments scapy confirms. Each phase of a run sets other limits (enables,
MaxOffLoadSize, MinSegmentCount, ID mode) on the ``limits`` port.

Reference (:func:`reference`): ``model.lso.segment`` with the send's supplemental word
(whose check 12 holds segments to TX_MAX_FRAME). The first beat's ``tuser`` carries the frame's length (DESIGN 2), so every
check is decided before a segment leaves and a dropped send leaves nothing, at every size.
Every output frame of the DUT, after ``model.checksum.tx_fill`` with the ChecksumTx word of
its ``tuser``, must equal the model's segment byte for byte; ordinary frames must come out
unchanged with their ``tuser``; completions must equal the model's, in order.

:class:`TB` binds cocotbext-axi endpoints to the unit: a source of host frames (the TxUser word
on the first beat only), a sink of output frames and a sink of completion words. Every random
test runs with and without source idles and sink backpressure (on segments and completions
alike, random pause generators), under the shared watchdog (``tb.common.Watchdog``) that fails
the test when no stream moves for a while.

Environment: see ``tb.common``; ``NICOFFLOAD_FRAMES`` is the number of host frames per test
(split over the phases), ``NICOFFLOAD_BIG`` the number of large (64-256 KB) sends added,
``NICOFFLOAD_MANGLED`` the NVGRE sends with mangled headers in the NVGRE corners (40).
Bench: ``NICOFFLOAD_BENCH_SIZE`` (payload bytes), ``NICOFFLOAD_BENCH_MSS``,
``NICOFFLOAD_BENCH_OUT`` (JSON file for the figures).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamFrame

from nicoffload.hdl.lso import config_value
from nicoffload.model.checksum import TX_MAX_FRAME, ChecksumEnables, tx_fill
from nicoffload.model.lso import LsoLimits, segment
from nicoffload.model.nbl import ChecksumTx, TxCompletion, TxStatus, TxUser
from nicoffload.model.parse import parse
from nicoffload.model.transport import prepare_checksum
from nicoffload.model.transport_lso import prepare_large_send
from nicoffload.model.nbl import SendSupplemental
from nicoffload.model.nvgre import follow
from nicoffload.tb import common, nvgre_lso, traffic

__all__ = ["Host", "reference", "random_host_frame", "TB", "PHASES", "run_random",
           "run_directed", "run_end_decided", "run_long_headers", "run_bad_length_words", "run_parse_corners", "bench", "large_send", "bench_frames"]

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100

# --- reference ---------------------------------------------------------------------------


@dataclasses.dataclass
class Host:
    """One host frame, what the model says of it, and what the RTL must emit."""
    frame: bytes
    tuser: int
    desc: str
    limits: LsoLimits
    out: list          # [(frame bytes as the wire must carry it, ChecksumTx word or None)]
    raw_user: int | None      # ordinary frame: the tuser it must keep (segmenter output)
    completion: int    # TxCompletion as int

    @property
    def dropped(self) -> bool:
        return TxCompletion.from_int(self.completion).Status != TxStatus.SENT


def reference(frame: bytes, tuser: int, limits: LsoLimits, desc: str = "") -> Host:
    """What the TX path must do with one host frame (see the module docstring).

    ``tuser``'s length word is set to the frame's length here (cases that cut or grow a
    frame after building it need not redo it); ``Host.tuser`` is what to send.
    """
    tuser = TxUser.with_length(tuser, len(frame))
    csum, lso, supp, _length = TxUser.unpack_raw(tuser)
    if lso == 0:
        return Host(frame, tuser, desc, limits, [(frame, None)], tuser,
                    TxCompletion(LsoComplete=0, Status=0).to_int())
    res = segment(frame, lso, limits, supplemental=supp)
    if res.segments:
        assert res.sent, f"{desc}: the model left segments of a dropped send"
        assert max(len(s) for s in res.segments) <= TX_MAX_FRAME
        # (scapy cannot rebuild the options of a send with mangled headers byte for byte)
        if nvgre_lso.is_encapsulated(tuser) and not desc.startswith("mangled"):
            nvgre_lso.scapy_confirms(frame, res.segments, desc)
    return Host(frame, tuser, desc, limits, [(s, None) for s in res.segments], None,
                res.completion.to_int())


# --- traffic -------------------------------------------------------------------------------

def _l2(rng, kind, ipv6):
    from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
    mac = dict(dst=traffic._mac(rng), src=traffic._mac(rng))
    etype = 0x86DD if ipv6 else 0x0800
    if kind == "snap":
        return Dot3(len=1500, **mac) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / \
            SNAP(OUI=rng.choice([0, 0xF8]), code=etype)
    l2 = Ether(**mac)
    if kind in ("vlan", "vlan_snap"):
        l2 = l2 / Dot1Q(vlan=rng.randrange(4096), prio=rng.randrange(8))
    elif kind == "qinq":
        l2 = l2 / Dot1AD(vlan=rng.randrange(4096)) / Dot1Q(vlan=rng.randrange(4096))
    if kind == "vlan_snap":
        l2[Dot1Q].type = 1500
        l2 = l2 / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=etype)
    return l2


def headers(rng, *, ipv6=False, l2=None, flags=None, seq=None, ip_id=None, options=None):
    """A finished TCP frame with no payload and random headers (scapy).

    ``options``: None for random IP options / IPv6 extension headers and TCP options, True
    for both, False for none (a 54-byte Ethernet/IPv4/TCP header with ``l2="eth"``).
    """
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import raw
    l2 = l2 or rng.choice(["eth", "eth", "vlan", "qinq", "snap", "vlan_snap"])
    opts = rng.random() < 0.4 if options is None else options
    if ipv6:
        l3 = IPv6(src=traffic._ipv6(rng), dst=traffic._ipv6(rng), tc=rng.randrange(256),
                  fl=rng.randrange(1 << 20), hlim=rng.randint(1, 255))
        if opts:
            chain, _, _ = traffic._ipv6_ext_chain(rng)
            for hdr in chain:
                l3 = l3 / hdr
    else:
        if ip_id is None:
            ip_id = rng.choice([rng.randrange(65536), 0x7FFF - rng.randrange(4),
                                0xFFFF - rng.randrange(4), 0x8000])
        l3 = IP(src=traffic._ipv4(rng), dst=traffic._ipv4(rng), id=ip_id,
                ttl=rng.randint(1, 255), tos=rng.randrange(256),
                flags="DF" if rng.random() < 0.7 else 0,
                options=traffic._ipv4_options(rng) if opts else [])
    if flags is None:
        flags = ACK if rng.random() < 0.9 else 0
        for bit in (FIN, PSH, CWR, ECE, NS):
            if rng.random() < 0.35:
                flags |= bit
    if seq is None:
        seq = rng.getrandbits(32) if rng.random() < 0.6 else \
            (1 << 32) - rng.randrange(1, 40000)
    tcp = TCP(sport=traffic._port(rng), dport=traffic._port(rng), seq=seq,
              ack=rng.getrandbits(32), flags=flags,
              window=rng.randrange(65536),
              options=traffic._tcp_options(rng) if options is not False and (
                  opts or rng.random() < 0.5) else [])
    return raw(_l2(rng, l2, ipv6) / l3 / tcp)


def payload_bytes(rng, size):
    r = rng.random()
    if r < 0.1:
        return b"\xff" * size
    if r < 0.15:
        return bytes(size)
    return rng.randbytes(size)


def large_send(rng, *, version, ipv6=False, size, mss, **kw):
    """A prepared large send: (frame, tuser)."""
    hdr = headers(rng, ipv6=ipv6, **kw)
    frame, word, csum = prepare_large_send(hdr, mss, version,
                                           extra_payload=payload_bytes(rng, size))
    return frame, TxUser.for_frame(frame, csum, word)


def _pick_mss(rng):
    r = rng.random()
    if r < 0.3:
        return rng.choice([536, 1220, 1440, 1448, 1460, 8960, 9000])
    if r < 0.5:
        return rng.randint(1, 64)
    if r < 0.8:
        return rng.randint(1, 1500)
    return rng.randint(1, 9000)


def _pick_size(rng, budget):
    r = rng.random()
    if r < 0.35:
        size = rng.randint(1, 200)
    elif r < 0.7:
        size = rng.randint(200, 3000)
    elif r < 0.95:
        size = rng.randint(3000, 12000)
    else:
        size = rng.randint(12000, 40000)
    return min(size, budget)


DROPS = ("mss0", "offset", "syn", "rst", "urg", "urgptr", "mf", "fragoff", "v1total_short",
         "v1total_long", "v2total", "csum", "ipver", "v1on6", "trunc", "udp", "empty",
         "bigmss", "junkword", "ext_long", "cut", "csum_word")


def random_host_frame(rng, limits: LsoLimits, budget: int = 40000) -> tuple[bytes, int, str]:
    """One host frame: an ordinary frame (25%), a large send, or a send that must drop."""
    r = rng.random()
    if r < 0.12:        # LSOv2 over NVGRE (``tb.nvgre_lso``), sent or dropped
        return nvgre_lso.random_nvgre_send(rng, budget=min(budget, 12000))
    r = rng.random()
    if r < 0.25:
        f = traffic.random_frame(rng, max_payload=min(9000, budget))
        while not f.data:       # an AXI-Stream frame has at least one byte
            f = traffic.random_frame(rng, max_payload=min(9000, budget))
        if rng.random() < 0.8:
            frame, info = prepare_checksum(f.data, ChecksumEnables())
        else:
            frame, info = f.data, ChecksumTx.from_int(rng.getrandbits(5) | (rng.choice(
                [0, 14, 34, 54, rng.randrange(1024)]) << 16))
        return frame, TxUser.for_frame(frame, info), f"ordinary {f.desc}"
    version = rng.choice(["v1", "v2", "v2"])
    ipv6 = version == "v2" and rng.random() < 0.5
    mss = _pick_mss(rng)
    size = _pick_size(rng, budget)
    if version == "v1":
        size = min(size, 65535 - 40 - 100)
    if rng.random() < 0.2:          # a multiple of the MSS
        size = max(1, min(budget, (size // mss) * mss or mss))
    size = min(size, mss * 300)
    l2 = rng.choice(["eth", "eth", "vlan", "qinq", "snap", "vlan_snap"])
    if "snap" in l2:
        size = min(size, 12000)
        if rng.random() < 0.8:
            mss = min(mss, 1300)
    if r < 0.85:
        frame, user = large_send(rng, version=version, ipv6=ipv6, size=size, mss=mss, l2=l2)
        return frame, user, f"{version} ipv{6 if ipv6 else 4} {l2} size={size} mss={mss}"
    return _drop_case(rng, rng.choice(DROPS), version, ipv6, size, mss, l2, limits)


def _parse_lso(frame):
    """Where the headers of a prepared send are (its IP length field may be 0)."""
    from nicoffload.model.lso import _parse_with_buffer_length
    return _parse_with_buffer_length(frame)


def _set16(b: bytearray, at: int, value: int):
    b[at:at + 2] = (value & 0xFFFF).to_bytes(2, "big")


def _drop_case(rng, what, version, ipv6, size, mss, l2, limits):
    """A send that breaks one rule (or a corner the RTL must still get right)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, PadN
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw, raw
    desc = f"drop:{what} {version} ipv{6 if ipv6 else 4} {l2} size={size} mss={mss}"
    if what == "udp":
        frame = raw(Ether() / (IPv6(plen=0) if ipv6 else IP(len=0)) / UDP() /
                    Raw(rng.randbytes(size)))
        word = mss | ((54 + 20 * ipv6) << 20) | (1 << 30) | (ipv6 << 31)
        return frame, TxUser.for_frame(frame, 0, word), desc
    if what == "junkword":
        f = traffic.random_frame(rng, max_payload=3000)
        while not f.data:
            f = traffic.random_frame(rng, max_payload=3000)
        word = rng.getrandbits(32) or 1
        return f.data, TxUser.for_frame(f.data, 0, word), f"drop:junkword {f.desc}"
    if what == "ext_long":
        ipv6, version = True, "v2"
        ext = IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(rng.choice([70, 90, 130])))])
        hdr = raw(Ether() / IPv6() / ext / TCP(flags="A"))
        try:
            frame, word, _ = prepare_large_send(hdr, mss, "v2",
                                                extra_payload=rng.randbytes(size))
        except ValueError:
            frame, word = hdr + rng.randbytes(size), mss | (54 << 20) | (3 << 30)
        return frame, TxUser.for_frame(frame, 0, word), desc
    if what == "v1on6":
        version, ipv6 = "v2", True
    if what in ("mf", "fragoff", "v1total_short", "v1total_long") and ipv6:
        ipv6 = False
    if what in ("v1total_short", "v1total_long"):
        version = "v1"
    if what == "v2total":
        version, ipv6 = "v2", False
    if what == "empty":
        size = 0
    if what == "bigmss":
        mss = rng.choice([TX_MAX_FRAME - 54 + 1, 9700, 20000, (1 << 20) - 1])
        size = rng.choice([rng.randint(1, 9000), rng.randint(9600, 12000)])
    hdr = headers(rng, ipv6=ipv6, l2=l2)
    frame, word, _ = prepare_large_send(hdr, mss, version,
                                        extra_payload=payload_bytes(rng, size))
    f = bytearray(frame)
    h = parse(hdr)      # the prepared frame's lengths are the transport's (0 for LSOv2)
    l3, l4 = h.l3_offset, h.l4_offset
    if what == "mss0":
        word &= ~0xFFFFF
    elif what == "offset":
        word = (word & ~(0x3FF << 20)) | (((l4 + rng.choice([-4, -2, 2, 4])) & 0x3FF) << 20)
    elif what in ("syn", "rst", "urg"):
        f[l4 + 13] |= {"syn": SYN, "rst": RST, "urg": URG}[what]
    elif what == "urgptr":
        _set16(f, l4 + 18, rng.randint(1, 0xFFFF))
    elif what == "mf":
        f[l3 + 6] |= 0x20
    elif what == "fragoff":
        f[l3 + 7] |= rng.randint(1, 255)
    elif what == "v1total_short":
        total = int.from_bytes(f[l3 + 2:l3 + 4], "big")
        _set16(f, l3 + 2, max(0, total - rng.choice([1, mss, rng.randint(1, max(1, size))])))
    elif what == "v1total_long":
        total = int.from_bytes(f[l3 + 2:l3 + 4], "big")
        _set16(f, l3 + 2, min(0xFFFF, total + rng.choice([1, mss, rng.randint(1, 5000)])))
    elif what == "v2total":
        _set16(f, l3 + 2, rng.randint(1, 0xFFFF))
    elif what == "csum":
        _set16(f, l4 + 16, int.from_bytes(f[l4 + 16:l4 + 18], "big") ^ (1 << rng.randrange(16)))
    elif what == "ipver":
        word ^= 1 << 31
    elif what == "v1on6":
        word &= ~(3 << 30)
    elif what == "trunc":
        f = f[:rng.randint(1, l4 + 20)]
    elif what == "cut":              # frame cut inside the payload: LSOv1 length mismatch
        f = f[:rng.randint(l4 + 20, len(f))]
    elif what == "csum_word":        # a checksum word riding along is ignored by LSO
        return bytes(f), TxUser.for_frame(f, rng.getrandbits(32), word), desc
    return bytes(f), TxUser.for_frame(f, 0, word), desc


# --- the testbench: cocotbext-axi endpoints of the segmenter or the TX path ------------------

PHASES = [
    LsoLimits(v2_ipv4_max_offload_size=1 << 20, v2_ipv6_max_offload_size=1 << 20),
    LsoLimits(v1_ipv4_max_offload_size=30000, v2_ipv4_max_offload_size=20000,
              v2_ipv6_max_offload_size=9000, v1_ipv4_min_segment_count=2,
              v2_ipv4_min_segment_count=3, v2_ipv6_min_segment_count=2, id_mode="linux"),
    LsoLimits(lso_v1_ipv4=False, v2_ipv4_min_segment_count=0, v2_ipv6_min_segment_count=0,
              v2_ipv4_max_offload_size=262144, v2_ipv6_max_offload_size=3000),
    LsoLimits(lso_v2_ipv6=False, id_mode="linux", v2_ipv4_min_segment_count=40,
              v2_ipv4_max_offload_size=1 << 20),
]


class TB(common.StreamTB):
    """The segmenter (``s_axis`` -> ``m_axis`` with ``tuser``, completions on ``m_txc``) or,
    with ``wire``, the whole TX path (``s_axis_tx`` -> ``m_axis_wire``, ``m_axis_txc``).

    ``src`` takes host frames (:meth:`send`: the TxUser word on the first beat only), ``out``
    gives output frames (:meth:`frame`), ``txc`` completion words (:meth:`completion`).
    """

    def __init__(self, dut, *, wire: bool):
        super().__init__(dut)
        self.wire = wire
        names = ("s_axis_tx", "m_axis_wire", "m_axis_txc") if wire else \
            ("s_axis", "m_axis", "m_txc")
        self.src = self.source(names[0])
        self.out = self.sink(names[1])
        self.txc = self.word_sink(names[2])
        dut.limits.value = config_value(PHASES[0])
        dut.encap.value = int(PHASES[0].encap)

    @classmethod
    async def start(cls, dut, *, wire: bool) -> TB:
        tb = cls(dut, wire=wire)
        await tb.reset()
        return tb

    def set_traffic(self, rng: random.Random, *, idle, backpressure):
        """Idles on the source, backpressure on both outputs: none, random (``True``) or a
        pattern (see :meth:`common.StreamTB.set_pauses`)."""
        self.set_pauses(self.src, idle, rng)
        for end in (self.out, self.txc):
            self.set_pauses(end, backpressure, rng)

    async def set_limits(self, limits: LsoLimits):
        self.dut.limits.value = config_value(limits)
        self.dut.encap.value = int(limits.encap)
        await ClockCycles(self.dut.clk, 2)

    def send(self, frame: bytes, tuser: int):
        self.src.send_nowait(AxiStreamFrame(
            frame, tuser=common.first_beat_user(len(frame), self.width, tuser)))

    async def frame(self) -> tuple[bytes, int]:
        """The next output frame and its first beat's ``tuser`` (0 on the wire)."""
        got = await self.out.recv(compact=False)
        data, users = common.beats(got, self.width, "output frame")
        return data, users[0]

    async def completion(self) -> int:
        return common.word(await self.txc.recv())


def _first_diff(a: bytes, b: bytes) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_frame(i: int, host: Host, got: bytes, user: int, want: bytes, *, wire: bool):
    """One output frame of host frame ``i`` against the model's ``want``."""
    if wire:
        pass
    elif host.raw_user is not None:
        assert user == host.raw_user, f"host frame {i} ({host.desc}): tuser " \
            f"{user:#x}, want {host.raw_user:#x}"
    else:
        csum, lso, supp, _length = TxUser.unpack_raw(user)
        info = ChecksumTx.from_int(csum)
        h = parse(want)
        # An NVGRE send's segments carry its supplemental word and ask for every IPv4 header
        # checksum; the TCP header is the inner one.
        host_supp = TxUser.unpack_raw(host.tuser)[2] if nvgre_lso.is_encapsulated(
            host.tuser) else 0
        assert lso == 0 and supp == host_supp, f"host frame {i}: segment tuser {user:#x}"
        l4 = follow(want).inner.l4_offset if host_supp else h.l4_offset
        assert info == ChecksumTx(IsIPv4=int(h.ip_version == 4),
                                  IsIPv6=int(h.ip_version == 6), TcpChecksum=1,
                                  IpHeaderChecksum=int(h.ip_version == 4 or bool(host_supp)),
                                  TcpHeaderOffset=l4), \
            f"host frame {i} ({host.desc}): segment checksum word {info}"
        got = tx_fill(got, info, SendSupplemental.from_int(supp) if supp else None)
    assert got == want, (
        f"host frame {i} ({host.desc}, {len(host.frame)} bytes): output of "
        f"{len(got)} bytes, model {len(want)}; first difference at byte "
        f"{_first_diff(got, want)}")


async def check(tb: TB, hosts: list[Host]):
    """Compare everything that leaves the DUT with ``hosts``, in order: every output frame
    byte for byte (and its first beat's ``tuser``), every completion; under the watchdog."""
    at = {"frame": None, "completion": None}

    async def frames():
        for i, host in enumerate(hosts):
            at["frame"] = host.desc
            for want, _ in host.out:
                got, user = await tb.frame()
                check_frame(i, host, got, user, want, wire=tb.wire)
            common.tally(host.frame, send=bool(TxUser.unpack_raw(host.tuser)[1]))
        at["frame"] = None

    async def completions():
        for i, host in enumerate(hosts):
            at["completion"] = host.desc
            got = await tb.completion()
            assert got == host.completion, (
                f"host frame {i} ({host.desc}): completion {TxCompletion.from_int(got)}, "
                f"model {TxCompletion.from_int(host.completion)}")
        at["completion"] = None

    async def both():
        done = cocotb.start_soon(completions())
        await frames()
        await done

    await tb.guard(both(), lambda: f"next expected: frame of {at['frame']}, completion of "
                                   f"{at['completion']}")


def big_sends(rng, count, width, first=0):
    """Large sends: the largest LSOv1 send, 64-256 KB LSOv2 (up to 70 KB at W=64). The k-th
    of a run (from ``first``) is LSOv1 when k is a multiple of 3, else LSOv2 over IPv6 when
    k is odd and over IPv4 when even: runs of one send each cover all three by ``first``."""
    out = []
    for k in range(first, first + count):
        version = "v1" if k % 3 == 0 else "v2"
        ipv6 = version == "v2" and k % 2 == 1
        mss = rng.choice([536, 1448, 1460, 8960])
        hdr = headers(rng, ipv6=ipv6, l2=rng.choice(["eth", "vlan"]))
        h = parse(hdr)
        if version == "v1":
            size = 65535 - (len(hdr) - h.l3_offset)
        else:
            size = rng.choice([65536, 100000, 262144])
            if width == 64 and size > 70000:
                size = 70000
        frame, word, csum = prepare_large_send(hdr, mss, version,
                                               extra_payload=payload_bytes(rng, size))
        out.append((frame, TxUser.for_frame(frame, csum, word),
                    f"big {version} ipv{6 if ipv6 else 4} size={size} mss={mss}"))
    return out


def host_of(frame: bytes, user: int, limits: LsoLimits, desc: str, *, wire: bool) -> Host:
    """:func:`reference`, with the output as the wire carries it when ``wire`` (the TX path
    fills an ordinary frame's checksums as its own ChecksumTx word asks)."""
    host = reference(frame, user, limits, desc)
    if wire:
        host.out = [(tx_fill(seg, ChecksumTx.from_int(user & 0xFFFFFFFF))
                     if host.raw_user is not None else seg, None) for seg, _ in host.out]
    return host


async def run_random(dut, idle, backpressure, *, wire, count, big=0, salt=0):
    width = common.params()["width"]
    rng = random.Random(common.seed() * 8 + idle * 2 + backpressure + 4 * salt)
    tb = await TB.start(dut, wire=wire)
    tb.set_traffic(random.Random(rng.random()), idle=idle, backpressure=backpressure)
    per_phase = max(1, count // len(PHASES))
    total_sends = 0
    stats = collections.Counter()
    lso_sends = 0
    for p, limits in enumerate(PHASES):
        await tb.set_limits(limits)
        items = [random_host_frame(rng, limits, budget=40000 if width >= 256 else 20000)
                 for _ in range(per_phase)]
        if p == 0 and big:
            # The four traffic variants start at different sends of the cycle, so that a
            # run with one large send per variant has LSOv1 and LSOv2 over both versions.
            items += big_sends(rng, big, width, first=idle * 2 + backpressure)
            rng.shuffle(items)
        hosts = [host_of(frame, user, limits, desc, wire=wire) for frame, user, desc in items]
        for host in hosts:
            tb.send(host.frame, host.tuser)
        await check(tb, hosts)
        total_sends += len(hosts)
        lso_sends += sum(h.raw_user is None for h in hosts)
        stats.update(TxStatus(TxCompletion.from_int(h.completion).Status).name
                     if h.raw_user is None else "ordinary" for h in hosts)
        stats.update("dropped" for h in hosts if h.dropped)
        stats.update("nvgre_sent" if not h.dropped else "nvgre_dropped" for h in hosts
                     if h.raw_user is None and nvgre_lso.is_encapsulated(h.tuser))
    await tb.settle()
    dut._log.info(f"{total_sends} host frames ({lso_sends} large sends) checked in "
                  f"{tb.cycles()} cycles: {dict(stats)}")


@cocotb.test()
@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
async def random_sends(dut, idle, backpressure):
    """Random sends, ordinary frames and drops over four limit settings, against the model."""
    await run_random(dut, idle, backpressure, wire=False, count=common.frames(120),
                     big=int(os.environ.get("NICOFFLOAD_BIG", "1")))


# --- directed ------------------------------------------------------------------------------

async def run_list(tb: TB, cases, limits, *, idle=False, backpressure=False):
    """Send ``cases`` ((frame, tuser, description)) under ``limits``, check all, settle."""
    tb.set_traffic(random.Random(common.seed()), idle=idle, backpressure=backpressure)
    await tb.set_limits(limits)
    hosts = [host_of(frame, user, limits, desc, wire=tb.wire) for frame, user, desc in cases]
    for host in hosts:
        tb.send(host.frame, host.tuser)
    await check(tb, hosts)
    await tb.settle()
    return hosts


def directed_cases(rng):
    """Corners: 1-byte sends, MSS 1, exact multiples, wraps, every flag, partial cuts."""
    cases = []
    for version, ipv6 in (("v1", False), ("v2", False), ("v2", True)):
        for size, mss in ((1, 1), (1, 1460), (7, 1), (1460, 1460), (2920, 1460),
                          (2921, 1460), (9000, 9000), (9001, 9000), (100, 33)):
            frame, user = large_send(rng, version=version, ipv6=ipv6, size=size, mss=mss)
            cases.append((frame, user, f"{version} v6={ipv6} size={size} mss={mss}"))
    bits = (FIN, PSH, ACK, ECE, CWR, NS)
    for mask in range(1 << len(bits)):
        flags = sum(b for i, b in enumerate(bits) if mask >> i & 1)
        frame, user = large_send(rng, version="v2", size=3000, mss=1000, flags=flags)
        cases.append((frame, user, f"flags={flags:#x}"))
    for seq in ((1 << 32) - 1, (1 << 32) - 1000, (1 << 32) - 3000):
        frame, user = large_send(rng, version="v1", size=5000, mss=1000, seq=seq)
        cases.append((frame, user, f"seq={seq:#x}"))
    for ip_id in (0x7FFE, 0xFFFE, 0x7FFF, 0xFFFF, 0):
        frame, user = large_send(rng, version="v2", size=5000, mss=1000, ip_id=ip_id)
        cases.append((frame, user, f"id={ip_id:#x}"))
    # MSS past what one frame can carry: one segment if the payload fits, else dropped.
    for size in (9000, 9674, 9675, 20000):
        frame, user = large_send(rng, version="v2", size=size, mss=30000, l2="eth",
                                 options=False)
        cases.append((frame, user, f"mss=30000 size={size}"))
    return cases


async def run_directed(dut, *, wire):
    rng = random.Random(5)
    cases = directed_cases(rng)
    tb = await TB.start(dut, wire=wire)
    await run_list(tb, cases, PHASES[0])
    # Again with Linux IDs, outputs held three cycles in four (Corundum's cycle pattern).
    await run_list(tb, cases, dataclasses.replace(PHASES[0], id_mode="linux"),
                   backpressure=(1, 1, 1, 0))


async def run_nvgre_corners(dut, *, wire):
    """LSOv2 over NVGRE corners (``nvgre_lso.corner_sends``), with idles and backpressure;
    again with Linux IDs and with the encapsulated packet task offload off (every
    encapsulated send dropped: LSO_DISABLED)."""
    rng = random.Random(11 + common.seed())
    cases = nvgre_lso.corner_sends(rng, int(os.environ.get("NICOFFLOAD_MANGLED", "40")))
    tb = await TB.start(dut, wire=wire)
    await run_list(tb, cases, PHASES[0], idle=True, backpressure=True)
    await run_list(tb, cases[::3], dataclasses.replace(PHASES[0], id_mode="linux"),
                   backpressure=(1, 1, 1, 0))
    await run_list(tb, cases[::8], dataclasses.replace(PHASES[0], encap=False))


async def run_nvgre_random(dut, *, wire, count):
    """``count`` random LSOv2-over-NVGRE sends (``nvgre_lso.random_nvgre_send``: 85% sent,
    the rest drops), a third each with idles, with backpressure and with Linux IDs, against
    the model; every sent one's segments confirmed by scapy (``reference``)."""
    rng = random.Random(13 + common.seed())
    tb = await TB.start(dut, wire=wire)
    third = max(1, count // 3)
    rounds = ((PHASES[0], dict(idle=True)), (PHASES[0], dict(backpressure=True)),
              (dataclasses.replace(PHASES[0], id_mode="linux"),
               dict(idle=True, backpressure=True)))
    hosts = []
    for limits, traffic_kind in rounds:
        cases = [nvgre_lso.random_nvgre_send(rng, budget=4000) for _ in range(third)]
        hosts += await run_list(tb, cases, limits, **traffic_kind)
    sent = sum(not h.dropped for h in hosts)
    dut._log.info(f"{len(hosts)} NVGRE sends checked ({sent} sent, "
                  f"{len(hosts) - sent} dropped) in {tb.cycles()} cycles")


def long_header_sends(rng):
    """Sends whose headers end past byte 128 (up to 254: DESIGN 3 segments every send whose
    headers end within 256 bytes): IP and TCP options behind tags, IPv6 extension headers."""
    from scapy.layers.inet import IP, TCP, IPOption_NOP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, PadN
    from scapy.packet import raw
    tcp_opts = [("NOP", None)] * 28 + [("Timestamp", (rng.getrandbits(32), 0))] + \
        [("NOP", None)] * 2                 # 40 option bytes: a 60-byte TCP header
    cases = []

    def tcp():
        return TCP(sport=traffic._port(rng), dport=traffic._port(rng),
                   seq=rng.getrandbits(32), ack=rng.getrandbits(32), flags="A",
                   options=tcp_opts)

    def dest(nbytes):                       # an extension header of exactly nbytes
        return IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(nbytes - 4))])

    def hbh(nbytes):
        return IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(nbytes - 4))])

    for l2 in ("eth", "vlan", "qinq", "vlan_snap"):
        v4 = IP(src=traffic._ipv4(rng), dst=traffic._ipv4(rng), id=rng.randrange(65536),
                options=[IPOption_NOP()] * 40) / tcp()
        v6_64 = IPv6(src=traffic._ipv6(rng), dst=traffic._ipv6(rng)) / dest(64) / tcp()
        v6_128 = IPv6(src=traffic._ipv6(rng), dst=traffic._ipv6(rng)) / hbh(64) / \
            dest(64) / tcp()
        for ipv6, l3 in ((False, v4), (True, v6_64), (True, v6_128)):
            hdr = raw(_l2(rng, l2, ipv6) / l3)
            for version in (("v2",) if ipv6 else ("v1", "v2")):
                # LLC/SNAP: the 802.3 length field holds at most 1500 (model.lso check 12).
                mss = 536 if l2 == "vlan_snap" else rng.choice([536, 1460])
                frame, word, csum = prepare_large_send(
                    hdr, mss, version,
                    extra_payload=payload_bytes(rng, rng.randint(1, 6000)))
                cases.append((frame, TxUser.for_frame(frame, csum, word),
                              f"{version} {l2} ipv6={ipv6} headers={len(hdr)}"))
    return cases


async def run_long_headers(dut, *, wire):
    """Sends with 129..254 bytes of headers: segmented (model and RTL), none dropped."""
    rng = random.Random(13)
    cases = long_header_sends(rng)
    tb = await TB.start(dut, wire=wire)
    hosts = await run_list(tb, cases, PHASES[0], backpressure=True, idle=True)
    assert all(not h.dropped for h in hosts), [h.desc for h in hosts if h.dropped]
    longest = max(_parse_lso(h.frame).l4_offset + _parse_lso(h.frame).l4_header_len
                  for h in hosts)
    assert longest > 240 and min(len(c[0]) for c in cases) > 128


async def run_bad_length_words(dut, *, wire):
    """Frames whose length word is not their length (a bad descriptor): no hang, nothing
    after them harmed. A large send whose word passes the checks is cut where its bytes and
    its word disagree and completes MALFORMED; one whose word fails them is dropped with
    that reason; an ordinary frame passes as long as it really is."""
    rng = random.Random(17)
    tb = await TB.start(dut, wire=wire)
    tb.set_traffic(random.Random(rng.random()), idle=False, backpressure=True)
    await tb.set_limits(PHASES[0])
    bad, want = [], []
    for version, delta, status in (
            ("v2", -1500, TxStatus.MALFORMED), ("v2", -1, TxStatus.MALFORMED),
            ("v2", 1, TxStatus.MALFORMED), ("v2", 1000, TxStatus.MALFORMED),
            ("v2", -4096, TxStatus.MALFORMED),
            ("v1", 1, TxStatus.LSO_GUARANTEE),      # Total Length is not the word's length
            ("v2", -5000, TxStatus.LSO_TOO_FEW_SEGMENTS)):     # the word leaves no payload
        frame, user = large_send(rng, version=version, size=5000, mss=1000, l2="eth",
                                 options=False)
        bad.append((frame, TxUser.with_length(user, len(frame) + delta)))
        want.append(status)
    plain = headers(rng, l2="eth", options=False) + rng.randbytes(300)
    bad.append((plain, TxUser.pack(0, 0, 0, len(plain) + 64)))
    last, user = large_send(rng, version="v2", size=7000, mss=1460, l2="vlan")
    host = host_of(last, user, PHASES[0], "after the bad descriptors", wire=wire)
    assert not host.dropped
    for frame, word in bad:
        tb.send(frame, word)
    tb.send(last, host.tuser)

    async def completions():
        return [TxCompletion.from_int(await tb.completion()) for _ in range(len(bad) + 1)]

    words = await tb.guard(completions(), "completions of the bad descriptors")
    assert [w.Status for w in words[:len(want)]] == want, words
    assert words[len(bad) - 1].Status == TxStatus.SENT        # the ordinary frame
    assert words[-1].to_int() == host.completion
    # Whatever the cut sends left, the ordinary frame and then the last send's segments: all
    # the output until it has been quiet for 1000 cycles.
    got = []

    async def frames():
        quiet = 0
        while quiet < 1000 or len(got) < len(host.out) + 1:
            if not tb.out.empty():
                got.append(await tb.frame())
                quiet = 0
            else:
                await RisingEdge(dut.clk)
                quiet = 0 if tb.out.active or int(tb.out.bus.tvalid.value) else quiet + 1

    await tb.guard(frames(), "frames after the bad descriptors")
    for k, ((frame, user), (want_seg, _)) in enumerate(zip(got[-len(host.out):], host.out)):
        check_frame(k, host, frame, user, want_seg, wire=wire)
    assert plain in [f for f, _ in got]
    await tb.settle()


async def run_end_decided(dut, *, wire):
    rng = random.Random(9)
    limits = LsoLimits(v2_ipv4_max_offload_size=10000, v2_ipv6_max_offload_size=5000,
                       v2_ipv4_min_segment_count=4, v1_ipv4_min_segment_count=3,
                       v2_ipv6_min_segment_count=30)
    cases = []
    for size in (9999, 10000, 10001, 30000):                 # LSOv2 over MaxOffLoadSize
        frame, user = large_send(rng, version="v2", size=size, mss=1460)
        cases.append((frame, user, f"v2 size={size} max=10000"))
    for size in (4380, 4381, 5000):                           # MinSegmentCount 4 at 1460
        frame, user = large_send(rng, version="v2", size=size, mss=1460)
        cases.append((frame, user, f"v2 size={size} min=4"))
    for size in (20000, 40000):                               # IPv6: over 5000, min 30
        frame, user = large_send(rng, version="v2", ipv6=True, size=size, mss=1460)
        cases.append((frame, user, f"v2 ipv6 size={size} min=30 max=5000"))
    for delta in (-1, 1, -3000, 3000):                        # LSOv1 Total Length wrong
        frame, user = large_send(rng, version="v1", size=8000, mss=1000)
        f = bytearray(frame)
        l3 = _parse_lso(frame).l3_offset
        total = int.from_bytes(f[l3 + 2:l3 + 4], "big") + delta
        f[l3 + 2:l3 + 4] = total.to_bytes(2, "big")
        cases.append((bytes(f), user, f"v1 total {delta:+}"))
    for size in (2999, 3000, 3001):                           # v1 cut inside the payload
        frame, user = large_send(rng, version="v1", size=8000, mss=1000)
        cut = len(frame) - 8000 + size
        cases.append((frame[:cut], user, f"v1 cut at payload {size}"))
    tb = await TB.start(dut, wire=wire)
    hosts = await run_list(tb, cases, limits, backpressure=True, idle=True)
    dropped = sum(h.dropped for h in hosts)
    assert dropped >= 10, f"only {dropped} cases were end-decided drops"
    # MinSegmentCount 30 at MSS 1460: a send of 29 segments or fewer (over 32 KB, more
    # than the segmenter's ring holds) is dropped whole, before its first segment leaves.
    big_min = dataclasses.replace(limits, v2_ipv6_max_offload_size=1 << 20)
    cases = []
    for size in (40000, 42340, 42341, 60000):      # 42340 = 29 x 1460
        frame, user = large_send(rng, version="v2", ipv6=True, size=size, mss=1460,
                                 l2="vlan", options=False)
        cases.append((frame, user, f"v2 ipv6 size={size} min=30"))
    hosts = await run_list(tb, cases, big_min)
    assert [h.dropped for h in hosts] == [True, True, False, False]
    # MaxOffLoadSize exactly and one byte over, with the default limits (256 KB, 64 KB).
    cases = []
    for version, size in (("v2", 262144), ("v2", 262145), ("v1", 65536)):
        hdr = headers(rng, l2="eth", options=False)
        if version == "v1":     # an LSOv1 send of 64 KB payload needs a 65535-byte datagram
            size = 65535 - 40
        frame, word, csum = prepare_large_send(hdr, 1460, version,
                                               extra_payload=payload_bytes(rng, size))
        cases.append((frame, TxUser.for_frame(frame, csum, word), f"{version} size={size} default"))
    hosts = await run_list(tb, cases, LsoLimits())
    assert [h.dropped for h in hosts] == [False, True, False]


@cocotb.test()
async def directed(dut):
    """Corner sends (sizes, MSS 1, every flag mix, wraps, MSS past TX_MAX_FRAME)."""
    await run_directed(dut, wire=False)


@cocotb.test()
async def nvgre_corners(dut):
    """LSOv2 over NVGRE: every IP version pair and GRE option, wraps, long headers, drops."""
    await run_nvgre_corners(dut, wire=False)


@cocotb.test()
async def long_headers(dut):
    """Sends with 129..254 bytes of headers are segmented."""
    await run_long_headers(dut, wire=False)


@cocotb.test()
async def bad_length_words(dut):
    """Length words that are not the frame's length: no hang, the rest unharmed."""
    await run_bad_length_words(dut, wire=False)


@cocotb.test()
async def end_decided_drops(dut):
    """Drops only the end of a send decides: what is cut, and the completions."""
    await run_end_decided(dut, wire=False)


def parse_corner_cases(rng):
    """LSOv2 IPv6 frames whose verdict hangs on where the frame ends, past the parser's
    256-byte window: an extension header of 2048 bytes (MALFORMED while it runs past the
    frame, LSO_HEADERS_TOO_LONG once it fits), a 60-byte TCP header ending at byte 258
    (MALFORMED / LSO_HEADERS_TOO_LONG). The lengths around 2,304 bytes were the edge of the
    hold of ``BufferLengthPatch``, gone since the length word came in ``tuser``; they stay."""
    cases = []
    mac = bytes(range(12))
    eth = mac + b"\x86\xdd"
    qinq_snap = mac + b"\x88\xa8\x00\x01\x81\x00\x00\x02\x05\xdc\xaa\xaa\x03" \
        b"\x00\x00\x00\x86\xdd"

    def ipv6(l2, exts, upper):
        """exts: extension header bodies (each starting with its Next Header byte)."""
        ids = [60] * len(exts) + [upper]
        chain = b"".join(bytes([ids[k + 1]]) + body[1:] for k, body in enumerate(exts))
        return l2 + bytes([0x60, 0, 0, 0, 0, 0, ids[0], 64]) + rng.randbytes(32) + chain

    ext128 = bytes([0, 15]) + bytes(126)
    ext2048 = bytes([0, 255])
    tcp60 = bytes(12) + b"\xf0\x10" + bytes(46)
    word = (1000 | (3 << 30))
    for n in (1000, 2245, 2246, 2247, 2400, 3000):       # 2048 bytes at offset 198
        f = (ipv6(qinq_snap, [ext128, ext2048], 6) + rng.randbytes(n))[:n]
        cases.append((f, TxUser.for_frame(f, 0, word | (200 << 20)), f"ext2048@198 len={n}"))
    for n in (1000, 2101, 2102, 2103, 2305, 3000):       # 2048 bytes at offset 54
        f = (ipv6(eth, [ext2048], 6) + rng.randbytes(n))[:n]
        cases.append((f, TxUser.for_frame(f, 0, word | (54 << 20)), f"ext2048@54 len={n}"))
    for n in (250, 256, 257, 258, 259, 300, 2400):       # TCP header 198..258
        f = ipv6(qinq_snap, [ext128], 6) + tcp60
        f = (f + rng.randbytes(max(0, n - len(f))))[:n]
        cases.append((f, TxUser.for_frame(f, 0, word | (198 << 20)), f"tcp60@198 len={n}"))
    return cases


async def run_parse_corners(dut, *, wire):
    tb = await TB.start(dut, wire=wire)
    hosts = await run_list(tb, parse_corner_cases(random.Random(3)), PHASES[0],
                           idle=True, backpressure=True)
    verdicts = {TxCompletion.from_int(h.completion).Status for h in hosts}
    assert verdicts == {TxStatus.MALFORMED, TxStatus.LSO_HEADERS_TOO_LONG}, verdicts


@cocotb.test()
async def parse_corners(dut):
    """Header verdicts that depend on the frame length past the parse window."""
    await run_parse_corners(dut, wire=False)


# --- line rate ------------------------------------------------------------------------------

def bench_frames(size, mss, count, rng, *, encap=False):
    """``count`` LSOv2 sends of ``size`` payload bytes at ``mss``: plain IPv4/TCP, or (with
    ``encap``) NVGRE with an outer and inner IPv4 header, a GRE key and no GRE checksum."""
    out = []
    for _ in range(count):
        if encap:
            # scapy cannot build an IPv4 packet over 64 KB: build a short send and append
            # the rest of the payload (no GRE checksum, and the inner TCP checksum field of a
            # prepared send does not cover the payload, so nothing else changes)
            short = min(size, 1024)
            frame, user, _, _ = nvgre_lso.nvgre_send(
                rng, size=short, mss=mss, outer_v6=False, inner_v6=False, gre_checksum=False,
                key=rng.getrandbits(32), seq=None, vlan=False, outer_ext=(), inner_ext=(),
                outer_ip_options=(), inner_ip_options=(), tcp_options=())
            frame += rng.randbytes(size - short)
            user = TxUser.for_frame(frame, *TxUser.unpack_raw(user)[:3])
        else:
            frame, user = large_send(rng, version="v2", size=size, mss=mss, l2="eth",
                                     options=False, flags=ACK, ip_id=1)
        out.append((frame, user))
    return out


async def bench(dut, *, wire):
    width = common.params()["width"]
    size = int(os.environ.get("NICOFFLOAD_BENCH_SIZE", "65536"))
    mss = int(os.environ.get("NICOFFLOAD_BENCH_MSS", "1460"))
    encap = os.environ.get("NICOFFLOAD_BENCH_ENCAP") == "1"
    count = common.frames(max(4, min(64, 400000 // size)))
    rng = random.Random(1)
    tb = await TB.start(dut, wire=wire)
    await tb.set_limits(PHASES[0])
    hosts = [host_of(frame, user, PHASES[0], f"bench {size}/{mss}", wire=wire)
             for frame, user in bench_frames(size, mss, count, rng, encap=encap)]
    dropped = [h.desc for h in hosts if h.dropped]
    assert not dropped, f"bench sends the model drops: {dropped}"
    meter = tb.meter(tb.out).start()
    for host in hosts:
        tb.send(host.frame, host.tuser)
    await check(tb, hosts)
    meter.stop()
    result = {"width": width, "size": size, "mss": mss, "encap": encap, "sends": count,
              "bytes": meter.bytes, "cycles": meter.span, "fraction": meter.fraction(width)}
    dut._log.info(f"bench: {result}")
    out = os.environ.get("NICOFFLOAD_BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(result, f)


@cocotb.test(skip=os.environ.get("NICOFFLOAD_BENCH_SIZE") is None)
async def line_rate(dut):
    """Back-to-back sends of one size and MSS: output bytes per cycle over W/8 (reported)."""
    await bench(dut, wire=False)
