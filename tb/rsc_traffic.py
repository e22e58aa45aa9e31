"""TCP traffic for the RSC cross-checks (tb_rsc, tb_rxpath, tests/test_rsc_units.py).

Interleaved flows, IPv4 and IPv6, over Ethernet II, 802.1Q, QinQ and LLC/SNAP, each a sender
with its own sequence numbers, ACKs, windows and (for most) timestamps; every case the
coalescing rules tell apart: long in-order runs, reordering, retransmissions, gaps, pure
ACKs, window updates, duplicate ACKs, timestamps forward, equal and backward, PSH in the
middle, every exception (flags, options, IPv4 options, IPv6 extension headers, fragments,
bad checksums), ECN and header changes, ACK below, runs past 65,535 bytes with jumbo
segments, frames that are not TCP.

``events(rng, n, ...)`` returns a list of ``("frame", bytes)``, ``("eoi",)`` and
``("gap", cycles)`` items (idle input between frames, for the idle timer).
"""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Raw

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
MOD = 1 << 32


class Flow:
    """One direction of one TCP connection and the segments its sender makes."""

    def __init__(self, rng: random.Random, k: int, v: int, jumbo: bool):
        self.rng, self.v = rng, v
        self.sport, self.dport = 20000 + k, 80 + (k % 3)
        if v == 4:
            self.src, self.dst = f"10.0.{k // 250}.{k % 250 + 1}", "10.9.9.9"
        else:
            self.src, self.dst = f"2001:db8::{k + 1:x}", "2001:db8::ffff"
        self.vlan = rng.choice((None, None, 5, 7)) if k % 4 == 0 else None
        # Layer 2: Ethernet II, 802.1Q (above), QinQ (802.1ad + 802.1Q) or LLC/SNAP.
        self.l2 = {1: "qinq", 2: "snap"}.get(k % 7, "eth") if self.vlan is None else "eth"
        self.seq, self.ack = rng.randrange(MOD), rng.randrange(MOD)
        self.win = rng.randrange(1000, 65536)
        self.ts = rng.random() < 0.6
        self.tsval, self.tsecr = rng.randrange(MOD), rng.randrange(MOD)
        self.tos = rng.choice((0, 0, 0x20))
        self.ttl = 64
        self.mss = rng.choice((536, 1448, 1448, 8000 if jumbo else 1448))
        self.sent: list[tuple[int, bytes]] = []

    def build(self, seq, payload=b"", *, flags=ACK, ack=None, win=None, ts=None, tos=None,
              ttl=None, df=True, options=None, ip_options=(), ext=(), urgptr=0,
              chksum=None, frag=False) -> bytes:
        mac = dict(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
        l2 = Ether(**mac)
        if self.l2 == "qinq":
            l2 = l2 / Dot1AD(vlan=11) / Dot1Q(vlan=12)
        elif self.l2 == "snap":
            l2 = Dot3(**mac) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / \
                SNAP(OUI=0, code=0x86DD if self.v == 6 else 0x0800)
        if self.vlan is not None:
            l2 = l2 / Dot1Q(vlan=self.vlan, prio=self.rng.choice((0, 0, 3)))
        tos = self.tos if tos is None else tos
        ttl = (self.ttl if ttl is None else ttl)
        if self.v == 4:
            l3 = IP(src=self.src, dst=self.dst, tos=tos, ttl=ttl, id=self.rng.randrange(65536),
                    flags=(2 if df else 0) | (1 if frag else 0), options=list(ip_options))
        else:
            l3 = IPv6(src=self.src, dst=self.dst, tc=tos, fl=0x12345 if df else 7, hlim=ttl)
            for e in ext:
                l3 = l3 / e
            if frag:
                l3 = l3 / IPv6ExtHdrFragment(m=1, id=9)
        if options is None:
            options = []
            if self.ts:
                options = [("NOP", None), ("NOP", None),
                           ("Timestamp", ts if ts is not None else (self.tsval, self.tsecr))]
        t = TCP(sport=self.sport, dport=self.dport, seq=seq % MOD,
                ack=(self.ack if ack is None else ack) % MOD, flags=flags,
                window=self.win if win is None else win, options=options, urgptr=urgptr)
        if chksum is not None:
            t.chksum = chksum
        pkt = l2 / l3 / t
        if payload:
            pkt = pkt / Raw(payload)
        return bytes(pkt)

    def data(self, n, **kw) -> bytes:
        payload = self.rng.randbytes(n)
        seq = self.seq
        self.sent = (self.sent + [(seq, payload)])[-6:]
        self.seq = (seq + n) % MOD
        return self.build(seq, payload, **kw)

    def next(self) -> list[bytes]:
        """A few segments of this flow."""
        rng = self.rng
        if self.ts:
            self.tsval = (self.tsval + rng.choice((0, 0, 1, 1, 7, 100000))) % MOD
        r = rng.random()
        if r < 0.55:                                   # an in-order run, PSH now and then
            return [self.data(rng.choice((1, 10, self.mss, self.mss, self.mss, 300)),
                              flags=ACK | (PSH if rng.random() < 0.1 else 0))
                    for _ in range(rng.choice((1, 2, 4, 8, 12)))]
        if r < 0.60:                                   # ACK moves forward with data
            self.ack = (self.ack + rng.randrange(1, 100000)) % MOD
            return [self.data(rng.randrange(1, 200))]
        if r < 0.62:                                   # ACK below
            return [self.data(100, ack=(self.ack - 5) % MOD)]
        if r < 0.65 and self.sent:                     # retransmission
            seq, payload = rng.choice(self.sent)
            return [self.build(seq, payload)]
        if r < 0.67:                                   # a gap
            self.seq = (self.seq + rng.randrange(1, 3000)) % MOD
            return [self.data(200)]
        if r < 0.69:                                   # reordering: two swapped
            a, b = self.data(100), self.data(150)
            return [b, a]
        if r < 0.72:                                   # pure ACK that moves ACK
            self.ack = (self.ack + rng.randrange(1, 3000)) % MOD
            return [self.build(self.seq)]
        if r < 0.75:                                   # window update(s)
            out = []
            for _ in range(rng.choice((1, 2))):
                self.win = (self.win + rng.randrange(1, 3000)) % 65536
                out.append(self.build(self.seq))
            return out
        if r < 0.77:                                   # duplicate ACK
            return [self.build(self.seq)]
        if r < 0.79 and self.ts:                       # timestamps backward / equal
            back = (self.tsval - rng.choice((1, 50))) % MOD
            return [self.data(80, ts=(back, self.tsecr)), self.data(80)]
        if r < 0.81:                                   # ECN change
            which = rng.choice(("ip", "tcp"))
            if which == "ip":
                return [self.data(100, tos=self.tos | rng.choice((1, 2, 3)))]
            return [self.data(100, flags=ACK | rng.choice((ECE, CWR)))]
        if r < 0.83:                                   # header change: TOS, DF/flow label
            if rng.random() < 0.5:
                return [self.data(100, tos=self.tos ^ 0x04)]
            return [self.data(100, df=False)]
        if r < 0.85:                                   # TTL changes (minimum is kept)
            return [self.data(100, ttl=rng.choice((3, 64, 200)))]
        if r < 0.87:                                   # flags exception
            fl = rng.choice((FIN, SYN, RST, URG, 0x100, 0))
            if fl == 0:                                # no ACK
                return [self.data(50, flags=PSH)]
            return [self.data(50, flags=ACK | fl, urgptr=3 if fl == URG else 0)]
        if r < 0.89:                                   # TCP options exception
            opts = rng.choice(([("MSS", 1460)], [("NOP", None), ("NOP", None),
                                                   ("SAck", (1, 2))],
                               [("NOP", None), ("WScale", 3), ("NOP", None), ("EOL", None)]))
            if self.ts and rng.random() < 0.5:
                opts = opts + [("Timestamp", (self.tsval, self.tsecr))]
            return [self.data(60, options=opts)]
        if r < 0.90:                                   # EOL then padding: acceptable
            return [self.data(60, options=[("NOP", None), ("EOL", None)])]
        if r < 0.92:                                   # IPv4 options / IPv6 extension
            if self.v == 4:
                return [self.data(70, ip_options=[IPOption_Router_Alert()])]
            return [self.data(70, ext=[IPv6ExtHdrDestOpt()])]
        if r < 0.93:                                   # fragment
            return [self.build(self.seq, self.rng.randbytes(64), frag=True)]
        if r < 0.96:                                   # bad checksum
            return [self.data(90, chksum=0xBEEF)]
        if r < 0.97:                                   # SYN without ACK
            return [self.build(self.seq, flags=SYN)]
        return [self.data(rng.choice((1, 2, 3)))]


def other_frame(rng: random.Random) -> bytes:
    """A frame that is not TCP: UDP over IPv4 or IPv6."""
    l2 = Ether(dst="02:00:00:00:00:02")
    if rng.random() < 0.5:
        l3 = IP(src="10.1.1.1", dst="10.1.1.2")
    else:
        l3 = IPv6(src="2001:db8::7", dst="2001:db8::8")
    return bytes(l2 / l3 / UDP(sport=5, dport=6) / Raw(rng.randbytes(rng.randrange(1, 300))))


def events(rng: random.Random, n: int, *, flows: int = 14, jumbo: bool = True,
           eoi_rate: float = 0.02, gap_rate: float = 0.03, gap_cycles=(50, 3000),
           enables_rate: float = 0.0) -> list:
    """``n`` frames of ``flows`` interleaved flows with end-of-indication markers, idle
    gaps and (``("enables", bits)``: bit 0 RscIPv4, bit 1 RscIPv6) RSC switched per IP
    version between them."""
    fl = [Flow(rng, k, 4 if k % 3 else 6, jumbo) for k in range(flows)]
    out, count = [], 0
    while count < n:
        roll = rng.random()
        if roll < 0.03:
            frames = [other_frame(rng)]
        else:
            few = fl[:rng.choice((2, 4, flows))]
            frames = rng.choice(few).next()
        for f in frames:
            out.append(("frame", f))
        count += len(frames)
        if rng.random() < eoi_rate:
            out.append(("eoi",))
        if rng.random() < gap_rate:
            out.append(("gap", rng.randrange(*gap_cycles)))
        if rng.random() < enables_rate:
            out.append(("enables", rng.choice((0b00, 0b01, 0b10, 0b11, 0b11))))
    out.append(("enables", 0b11))
    out.append(("eoi",))
    return out


def long_run(rng: random.Random, v: int, segments: int, size: int) -> list:
    """One flow's in-order run: with jumbo segments, it passes 65,535 bytes."""
    f = Flow(rng, 99, v, True)
    return [("frame", f.data(size)) for _ in range(segments)] + [("eoi",)]


#: Bytes of Ethernet II, IPv4 and TCP headers without options: the bench's segments' headers.
BENCH_HEADER_BYTES = 14 + 20 + 20


def bench_segments(rng: random.Random, size: int, flows: int, count: int) -> list[bytes]:
    """``count`` in-order IPv4 TCP data segments of ``size`` frame bytes (Ethernet II, no IP
    or TCP options, ACK only, ACK and window constant), round-robin across ``flows`` flows:
    every one coalesces as long as its flow keeps a context (``nicoffload bench --offload
    rsc``)."""
    if size <= BENCH_HEADER_BYTES:
        raise ValueError(f"a bench segment of {size} bytes has no payload "
                         f"(headers are {BENCH_HEADER_BYTES} bytes)")
    senders = []
    for k in range(flows):
        flow = Flow(rng, k, 4, False)
        flow.vlan, flow.l2, flow.ts, flow.tos = None, "eth", False, 0
        senders.append(flow)
    return [senders[i % flows].data(size - BENCH_HEADER_BYTES) for i in range(count)]
