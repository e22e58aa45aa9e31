"""NVGRE traffic built with scapy, and scapy as the independent judge of NVGRE frames.

Shared by ``test_nvgre_model.py``, ``test_cli_nvgre.py`` and the RTL benches (``tb_parse``,
``tb_checksum``): every frame comes from ``build`` (all knobs explicit) or ``random_nvgre``
(knobs drawn from a ``random.Random``, so a seed gives the same frames every time). Frames are *finished*: every
checksum and length as scapy writes them.

The oracle, ``rebuilt``: scapy dissects a frame, forgets every checksum it knows (outer and
inner IPv4 headers, TCP, UDP, the GRE checksum when present) and optionally every length
(IPv4 Total Length, IPv6 Payload Length, UDP Length), and builds it again. A frame whose
checksums and lengths are right comes back byte for byte. Nothing here imports the model.

Pages: RFC 2784 / RFC 2890 (GRE, key and sequence number), RFC 7637 (NVGRE: GRE protocol
0x6558), ``shared/reference/ndis/supporting-nvgre-in-*.md``.
"""

from __future__ import annotations

import dataclasses
import random

from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, PadN)
from scapy.layers.inet import ICMP
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Raw

__all__ = ["NvgreFrame", "build", "random_nvgre", "frames", "rebuilt", "scapy_ok",
           "MAC_OUT", "MAC_IN", "ACK", "PSH", "FIN", "CWR", "ECE", "SYN", "URG", "RST"]

MAC_OUT = dict(dst="02:00:00:00:01:02", src="02:00:00:00:01:01")
MAC_IN = dict(dst="02:00:00:00:02:02", src="02:00:00:00:02:01")
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
L4_KINDS = ("tcp", "udp", "icmp", "frag")


@dataclasses.dataclass(frozen=True)
class NvgreFrame:
    """A finished NVGRE frame and how it was built."""
    frame: bytes
    outer_v6: bool
    inner_v6: bool
    l4: str                 # "tcp", "udp", "icmp" or "frag" (an inner IP fragment)
    gre_checksum: bool
    key: int | None
    seq: int | None
    vlan: bool
    payload: bytes          # the inner L4 payload (TCP/UDP)
    desc: str


def _ext(kind: str, size: int):
    """An IPv6 Hop-by-Hop or Destination Options header of ``size`` bytes (8, 16, ...)."""
    cls = IPv6ExtHdrHopByHop if kind == "hbh" else IPv6ExtHdrDestOpt
    return cls(options=[PadN(optdata=b"\x00" * (size - 4))]) if size > 8 else cls()


def _ip(v6: bool, ext: tuple, ip_options: tuple, ident: int, addr: int, frag: bool = False):
    if v6:
        layer = IPv6(src=f"2001:db8::{addr:x}", dst=f"2001:db8:1::{addr + 1:x}")
        for kind, size in ext:
            layer = layer / _ext(kind, size)
        if frag:
            layer = layer / IPv6ExtHdrFragment(offset=0, m=1, id=ident)
        return layer
    return IP(src=f"10.0.{addr % 250}.1", dst=f"10.1.{addr % 250}.2", id=ident,
              options=list(ip_options), flags="MF" if frag else 0)


def build(*, outer_v6: bool = False, inner_v6: bool = False, l4: str = "tcp",
          gre_checksum: bool = False, key: int | None = None, seq: int | None = None,
          vlan: bool = False, outer_ext: tuple = (), inner_ext: tuple = (),
          outer_ip_options: tuple = (), inner_ip_options: tuple = (), tcp_options: tuple = (),
          payload: bytes = b"", outer_id: int = 0x1234, inner_id: int = 0x4321,
          tcp_seq: int = 1000, flags: int = ACK, udp_zero_sum: bool = False,
          gre_proto: int = 0x6558, gre_version: int = 0, gre_flags: int = 0) -> NvgreFrame:
    """One finished NVGRE frame (module docstring). ``outer_ext``/``inner_ext``: IPv6
    extension headers as ``(("hbh", 8), ("dst", 16))``; ``udp_zero_sum``: the last two
    payload bytes chosen so that the inner UDP checksum computes to 0 (sent as 0xFFFF);
    ``gre_proto``/``gre_version``/``gre_flags`` make GRE that is not NVGRE."""
    outer = Ether(**MAC_OUT)
    if vlan:
        outer = outer / Dot1Q(vlan=100, prio=3)
    outer = outer / _ip(outer_v6, outer_ext, outer_ip_options, outer_id, 10)
    gre = GRE(chksum_present=int(gre_checksum), key_present=int(key is not None),
              seqnum_present=int(seq is not None), proto=gre_proto, version=gre_version,
              flags=gre_flags)
    if key is not None:
        gre.key = key
    if seq is not None:
        gre.sequence_number = seq
    inner_ip = _ip(inner_v6, inner_ext, inner_ip_options, inner_id, 20, frag=l4 == "frag")
    if l4 == "tcp":
        upper = TCP(sport=40000, dport=80, seq=tcp_seq, ack=777, flags=flags,
                    options=list(tcp_options)) / Raw(payload)
    elif l4 == "udp":
        upper = UDP(sport=40001, dport=4789) / Raw(payload)
    elif l4 == "icmp":
        upper = (ICMPv6EchoRequest(data=payload) if inner_v6 else ICMP() / Raw(payload))
    else:
        upper = Raw(b"\x9c\x40\x00\x50" + payload)     # a fragment: some of a TCP header
    pkt = outer / gre / Ether(**MAC_IN) / inner_ip / upper
    if udp_zero_sum:
        pkt = _zero_udp_sum(pkt)
        payload = bytes(pkt[UDP].payload)
    data = bytes(pkt)
    desc = (f"{'v6' if outer_v6 else 'v4'}/{'v6' if inner_v6 else 'v4'} {l4}"
            f"{' C' if gre_checksum else ''}{' K' if key is not None else ''}"
            f"{' S' if seq is not None else ''}{' vlan' if vlan else ''}"
            f"{' oext' if outer_ext else ''}{' iext' if inner_ext else ''}"
            f"{' ipopt' if outer_ip_options or inner_ip_options else ''}"
            f"{' tcpopt' if tcp_options else ''} {len(payload)}B")
    return NvgreFrame(data, outer_v6, inner_v6, l4, gre_checksum, key, seq, vlan, payload,
                      desc)


def _zero_udp_sum(pkt):
    """``pkt`` with its inner UDP payload's last two bytes set so the checksum computes to 0:
    with those bytes zero the checksum is c = ~s; making them c makes the sum 0xFFFF."""
    udp = pkt[UDP]
    body = bytearray(bytes(udp.payload) or b"\x00\x00")
    if len(body) % 2:
        body += b"\x00"
    body[-2:] = b"\x00\x00"
    udp.remove_payload()
    udp.add_payload(Raw(bytes(body)))
    udp.chksum = None
    c = Ether(bytes(pkt))[UDP].chksum
    body[-2:] = c.to_bytes(2, "big")
    udp.remove_payload()
    udp.add_payload(Raw(bytes(body)))
    return pkt


def random_nvgre(rng: random.Random, *, max_payload: int = 1400, **fixed) -> NvgreFrame:
    """An NVGRE frame with every knob drawn from ``rng`` unless given in ``fixed``."""
    outer_v6 = fixed.pop("outer_v6", rng.random() < 0.5)
    inner_v6 = fixed.pop("inner_v6", rng.random() < 0.5)
    l4 = fixed.pop("l4", rng.choice(("tcp", "tcp", "udp", "udp", "icmp", "frag")))
    knobs = dict(
        gre_checksum=rng.random() < 0.5,
        key=rng.getrandbits(32) if rng.random() < 0.6 else None,
        seq=rng.getrandbits(32) if rng.random() < 0.5 else None,
        vlan=rng.random() < 0.3,
        outer_ext=tuple(_random_ext(rng)) if outer_v6 else (),
        inner_ext=tuple(_random_ext(rng)) if inner_v6 else (),
        outer_ip_options=((IPOption_NOP(),) * 4 if rng.random() < 0.2 and not outer_v6
                          else ()),
        inner_ip_options=((IPOption_Router_Alert(),) if rng.random() < 0.3 and not inner_v6
                          else ()),
        tcp_options=(((("MSS", 1400), ("NOP", None), ("WScale", 7),
                       ("Timestamp", (rng.getrandbits(32), 0))) if rng.random() < 0.4
                      else ()) if l4 == "tcp" else ()),
        payload=rng.randbytes(rng.randint(0, max_payload)),
        outer_id=rng.getrandbits(16), inner_id=rng.getrandbits(16),
        tcp_seq=rng.getrandbits(32),
        flags=rng.choice((ACK, ACK | PSH, ACK | FIN | PSH, ACK | CWR | ECE)),
        udp_zero_sum=l4 == "udp" and rng.random() < 0.15)
    knobs.update(fixed)
    return build(outer_v6=outer_v6, inner_v6=inner_v6, l4=l4, **knobs)


def _random_ext(rng: random.Random):
    if rng.random() < 0.3:
        yield "hbh", rng.choice((8, 16))
    if rng.random() < 0.3:
        yield "dst", rng.choice((8, 24))


def frames(seed: int, count: int, **fixed) -> list[NvgreFrame]:
    """``count`` frames of ``random_nvgre`` from ``random.Random(seed)``."""
    rng = random.Random(seed)
    return [random_nvgre(rng, **dict(fixed)) for _ in range(count)]


_CHECKSUMMED = (IP, TCP, UDP, GRE)
_LENGTHS = {IP: "len", IPv6: "plen", UDP: "len"}


def rebuilt(frame: bytes, *, lengths: bool = False) -> bytes:
    """scapy's rebuild of ``frame`` with every checksum (and with ``lengths`` every IP/UDP
    length) forgotten (module docstring)."""
    pkt = Ether(frame)
    layer = pkt
    while layer is not None and not isinstance(layer, Raw):
        if isinstance(layer, _CHECKSUMMED) and hasattr(layer, "chksum"):
            if not isinstance(layer, GRE) or layer.chksum_present:
                layer.chksum = None
        for cls, name in _LENGTHS.items():
            if lengths and isinstance(layer, cls):
                setattr(layer, name, None)
        layer = layer.payload if layer.payload else None
    return bytes(pkt)


def scapy_ok(frame: bytes, *, lengths: bool = False) -> bool:
    """scapy writes the same checksums (and lengths) that ``frame`` carries."""
    return rebuilt(frame, lengths=lengths) == frame
