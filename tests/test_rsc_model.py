"""model/rsc.py against scapy, the NDIS RSC pages and DESIGN.md 3 "RSC".

Traffic is built with scapy; receive checksum words come from ``checksum.rx_validate`` (the
stage before RSC) or are given by hand. What the engine hands up is checked by things that
are not the model: scapy dissects every frame and rebuilds its IPv4 and TCP checksums and
lengths from scratch (``scapy_consistent``); payloads, sequence numbers, ACKs, windows,
timestamps and counts are the test's own arithmetic. Random traffic uses fixed seeds.

Pages (shared/reference/ndis/): rules-for-coalescing-tcp-ip-packets.md (and rsc-rules1..3.png),
exception-conditions-that-terminate-coalescing.md,
updating-the-ip-headers-for-coalesced-segments.md, indicating-coalesced-segments.md,
examples-of-receive-segment-coalescing.md, oid-tcp-rsc-statistics.md,
querying-and-changing-rsc-state.md.
"""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from nicoffload.model.checksum import rx_validate
from nicoffload.model.nbl import ChecksumRx, RscInfo, RscTcpTimestampDelta
from nicoffload.model.rsc import (DEFAULT_MAX_SCU_BYTES, Cause, Indication, RscEngine,
                                  RscStatistics)

MAC = dict(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
ADDR = {4: ("192.0.2.1", "198.51.100.7"), 6: ("2001:db8::1", "2001:db8::2")}
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
SUCCEEDED4 = ChecksumRx(IpChecksumSucceeded=1, TcpChecksumSucceeded=1)
SUCCEEDED6 = ChecksumRx(TcpChecksumSucceeded=1)


# --- building traffic with scapy -------------------------------------------------------------

def tcp(seq, payload=b"", *, v=4, ack=1, flags=ACK, win=8192, ts=None, sport=40000, dport=80,
        src=None, dst=None, tos=0, tc=0, fl=0, df=True, ttl=64, ipid=7, vlan=None, prio=0,
        options=(), ip_options=(), ext=(), urgptr=0, mac_src=None, chksum=None):
    """One Ethernet/IP/TCP frame as bytes. ``ts`` = (TSval, TSecr) adds a timestamp option."""
    l2 = Ether(dst=MAC["dst"], src=mac_src or MAC["src"])
    if vlan is not None:
        l2 = l2 / Dot1Q(vlan=vlan, prio=prio)
    if v == 4:
        l3 = IP(src=src or ADDR[4][0], dst=dst or ADDR[4][1], tos=tos, flags="DF" if df else 0,
                ttl=ttl, id=ipid, options=list(ip_options))
    else:
        l3 = IPv6(src=src or ADDR[6][0], dst=dst or ADDR[6][1], tc=tc, fl=fl, hlim=ttl)
        for e in ext:
            l3 = l3 / e
    opts = list(options)
    if ts is not None:
        opts.append(("Timestamp", ts))
    t = TCP(sport=sport, dport=dport, seq=seq % 2**32, ack=ack % 2**32, flags=flags,
            window=win, options=opts, urgptr=urgptr)
    if chksum is not None:
        t.chksum = chksum
    return bytes(l2 / l3 / t / Raw(payload)) if payload else bytes(l2 / l3 / t)


def data_run(n, size=100, *, seq=1000, **kw):
    """n in-sequence data segments of ``size`` bytes (distinct payload bytes)."""
    return [tcp(seq + i * size, bytes([(i * 7 + j) & 0xFF for j in range(size)]), **kw)
            for i in range(n)]


def feed(engine, frames, *, t0=0, step=1, end=True):
    """Each item a frame (word from rx_validate) or (frame, word); times t0, t0+step, ..."""
    out, t = [], t0
    for item in frames:
        frame, word = item if isinstance(item, tuple) else (item, rx_validate(item))
        out += engine.receive(frame, word, t)
        t += step
    if end:
        out += engine.end_indication()
    return out


def coalesce(frames, **engine_kw):
    return feed(RscEngine(**engine_kw), frames)


def dissect(frame):
    p = Ether(frame)
    return p, (p[IP] if IP in p else p[IPv6]), p[TCP]


def payload_of(frame):
    p = Ether(frame)
    return p[Raw].load if Raw in p and TCP in p else b""


def scapy_consistent(frame):
    """scapy recomputes IPv4 header checksum, Total Length / Payload Length, TCP checksum
    from scratch and gets the same bytes."""
    p = Ether(frame)
    if IP in p:
        del p[IP].chksum
        del p[IP].len
    else:
        del p[IPv6].plen
    del p[TCP].chksum
    return bytes(Ether(bytes(p))) == frame


def counts(out):
    return [i.rsc.CoalescedSegCount for i in out]


def check_scu(ind, parts, v):
    """A multi-segment SCU made of ``parts`` (input frames, in order): DESIGN 3 "The SCU"."""
    p, ip, t = dissect(ind.frame)
    p0, ip0, t0 = dissect(parts[0])
    pl, ipl, tl = dissect(parts[-1])
    assert scapy_consistent(ind.frame)
    assert payload_of(ind.frame) == b"".join(payload_of(f) for f in parts)
    assert ind.checksum == (SUCCEEDED4 if v == 4 else SUCCEEDED6)
    assert ind.rsc.DupAckCount == 0
    assert bytes(p)[:14] == parts[0][:14]                          # Ethernet header of the first
    assert t.seq == t0.seq and t.ack == tl.ack and t.window == tl.window
    assert t.urgptr == t0.urgptr and t.dataofs == t0.dataofs
    psh = any(dissect(f)[2].flags & PSH for f in parts)
    assert int(t.flags) == (int(t0.flags) & ~PSH) | (PSH if psh else 0)
    if v == 4:
        assert ip.id == ip0.id and ip.tos == ip0.tos and ip.flags == ip0.flags
        assert ip.ttl == min(dissect(f)[1].ttl for f in parts)
        assert ip.ihl == 5 and ip.len <= 65535
    else:
        assert ip.tc == ip0.tc and ip.fl == ip0.fl and ip.plen <= 65535
        assert ip.hlim == min(dissect(f)[1].hlim for f in parts)
    ts = dict(t.options).get("Timestamp")
    if ts is not None:
        first = dict(t0.options)["Timestamp"][0]
        assert ts == dict(tl.options)["Timestamp"]
        assert ind.timestamp_delta.RscTcpTimestampDelta == (ts[0] - first) % 2**32
    else:
        assert ind.timestamp_delta.RscTcpTimestampDelta == 0


def check_alone(ind, frame, cause=None):
    """A frame indicated alone: unchanged, its own word, CoalescedSegCount 0."""
    assert ind.frame == frame
    assert ind.checksum == rx_validate(frame)
    assert ind.rsc == RscInfo() and ind.timestamp_delta == RscTcpTimestampDelta()
    if cause is not None:
        assert ind.cause == cause


V = pytest.mark.parametrize("v", [4, 6])


# --- examples-of-receive-segment-coalescing.md ----------------------------------------------

@V
def test_example1_ten_data_segments_one_scu(v):
    frames = data_run(10, v=v)
    out = coalesce(frames)
    assert counts(out) == [10]
    check_scu(out[0], frames, v)
    assert out[0].cause == Cause.END_OF_INDICATION


@V
def test_example2_exception_between_runs(v):
    # The 6th segment is a duplicate ACK with a SACK option: exception 4 takes precedence.
    frames = data_run(5, v=v)
    dup = tcp(1500, v=v, options=[("NOP", None), ("NOP", None), ("SAck", (1, 2))])
    more = data_run(2, seq=1500, v=v)
    out = coalesce(frames + [dup] + more)
    assert counts(out) == [5, 0, 2]
    check_scu(out[0], frames, v)
    check_alone(out[1], dup, Cause.TCP_OPTIONS)
    check_scu(out[2], more, v)
    assert out[0].cause == Cause.EXCEPTION


@V
def test_example3_window_updates_coalesce_uncounted(v):
    frames = data_run(5, v=v, win=1000)
    nxt = 1000 + 500
    updates = [tcp(nxt, v=v, win=65535), tcp(nxt, v=v, win=40000)]
    out = coalesce(frames + updates)
    assert counts(out) == [5]
    check_scu(out[0], frames + updates, v)
    assert dissect(out[0].frame)[2].window == 40000


@V
def test_example4_piggybacked_acks(v):
    frames = data_run(3, v=v, ack=100) + [tcp(1300, b"a" * 100, v=v, ack=150),
                                          tcp(1400, b"b" * 100, v=v, ack=200)]
    out = coalesce(frames)
    assert counts(out) == [5]
    check_scu(out[0], frames, v)
    assert dissect(out[0].frame)[2].ack == 200


# --- the SCU -----------------------------------------------------------------------------------

@V
def test_one_segment_scu_is_the_segment_unchanged(v):
    f = tcp(5, b"hello", v=v, ts=(9, 3))
    out = coalesce([f])
    assert len(out) == 1 and out[0].frame == f and out[0].checksum == rx_validate(f)
    assert out[0].rsc == RscInfo(CoalescedSegCount=1)
    assert out[0].timestamp_delta.RscTcpTimestampDelta == 0


def test_scu_header_fields_first_last_min_or():
    frames = [tcp(0, b"a" * 10, ttl=64, ipid=100, ack=5, win=10, urgptr=7),
              tcp(10, b"b" * 10, ttl=30, ipid=101, ack=6, win=11, urgptr=8, flags=PSH | ACK),
              tcp(20, b"c" * 10, ttl=50, ipid=9, ack=7, win=12, urgptr=9)]
    out = coalesce(frames)
    assert counts(out) == [3]
    check_scu(out[0], frames, 4)
    p, ip, t = dissect(out[0].frame)
    assert (ip.ttl, ip.id, t.ack, t.window, t.urgptr) == (30, 100, 7, 12, 7)
    assert t.flags & PSH                                # PSH in the middle: OR, and no break
    assert len(out[0].frame) == 14 + 20 + 20 + 30       # no Ethernet padding


def test_scu_timestamp_layout_of_the_first_and_tsecr_of_last():
    lay1 = [("NOP", None), ("NOP", None)]
    frames = [tcp(0, b"a" * 10, ts=(100, 50), options=lay1),
              tcp(10, b"b" * 10, ts=(105, 51)),                 # TS first, EOL padding
              tcp(20, b"c" * 10, ts=(107, 52), options=lay1)]
    out = coalesce(frames)
    assert counts(out) == [3]
    check_scu(out[0], frames, 4)
    t = dissect(out[0].frame)[2]
    assert t.options == [("NOP", None), ("NOP", None), ("Timestamp", (107, 52))]
    assert out[0].timestamp_delta.RscTcpTimestampDelta == 7


# --- exceptions (exception-conditions-that-terminate-coalescing.md) ---------------------------

def _exceptions(v):
    nxt = 1200
    cases = {
        "syn": (tcp(nxt, b"x" * 100, v=v, flags=SYN | ACK), Cause.FLAGS),
        "fin": (tcp(nxt, b"x" * 100, v=v, flags=FIN | ACK), Cause.FLAGS),
        "rst": (tcp(nxt, v=v, flags=RST | ACK), Cause.FLAGS),
        "urg": (tcp(nxt, b"x" * 100, v=v, flags=URG | ACK, urgptr=3), Cause.FLAGS),
        "ns": (tcp(nxt, b"x" * 100, v=v, flags=0x100 | ACK), Cause.FLAGS),
        "no_ack": (tcp(nxt, b"x" * 100, v=v, flags=PSH), Cause.FLAGS),
        "mss": (tcp(nxt, b"x" * 100, v=v, options=[("MSS", 1460)]), Cause.TCP_OPTIONS),
        "wscale": (tcp(nxt, b"x" * 100, v=v, options=[("WScale", 3), ("NOP", None)]),
                   Cause.TCP_OPTIONS),
        "sack": (tcp(nxt, v=v, options=[("NOP", None), ("NOP", None), ("SAck", (5, 9))]),
                 Cause.TCP_OPTIONS),
        "two_ts": (tcp(nxt, b"x" * 100, v=v, options=[("Timestamp", (1, 1)),
                                                        ("Timestamp", (2, 2))]),
                   Cause.TCP_OPTIONS),
        "bad_tcp_checksum": (tcp(nxt, b"x" * 100, v=v, chksum=0x1234), Cause.CHECKSUM),
        "unverified": ((tcp(nxt, b"x" * 100, v=v), ChecksumRx()), Cause.CHECKSUM),
    }
    if v == 4:
        cases["ip_options"] = (tcp(nxt, b"x" * 100, ip_options=[IPOption_Router_Alert()]),
                               Cause.IP_OPTIONS)
        bad = bytearray(tcp(nxt, b"x" * 100))
        bad[14 + 10] ^= 0x01
        cases["bad_ip_checksum"] = (bytes(bad), Cause.CHECKSUM)
        frag = Ether(**MAC) / IP(src=ADDR[4][0], dst=ADDR[4][1], flags="MF", proto=6) / \
            Raw(bytes(TCP(sport=40000, dport=80, seq=nxt, ack=1, flags=ACK)) + b"x" * 16)
        cases["fragment"] = (bytes(frag), Cause.FRAGMENT)
        cases["fragment_later"] = (bytes(Ether(**MAC) / IP(src=ADDR[4][0], dst=ADDR[4][1],
                                                           frag=100, proto=6) / Raw(b"y" * 64)),
                                   Cause.FRAGMENT)
    else:
        cases["hop_by_hop"] = (tcp(nxt, b"x" * 100, v=6, ext=[IPv6ExtHdrHopByHop()]),
                               Cause.IP_OPTIONS)
        cases["dest_opts"] = (tcp(nxt, b"x" * 100, v=6, ext=[IPv6ExtHdrDestOpt()]),
                              Cause.IP_OPTIONS)
        cases["atomic_fragment"] = (tcp(nxt, b"x" * 100, v=6, ext=[IPv6ExtHdrFragment()]),
                                    Cause.IP_OPTIONS)
        frag = Ether(**MAC) / IPv6(src=ADDR[6][0], dst=ADDR[6][1]) / \
            IPv6ExtHdrFragment(m=1, nh=6) / \
            Raw(bytes(TCP(sport=40000, dport=80, seq=nxt, ack=1, flags=ACK)) + b"x" * 16)
        cases["fragment"] = (bytes(frag), Cause.FRAGMENT)
    return cases


@pytest.mark.parametrize("v,name", [(4, n) for n in _exceptions(4)] +
                         [(6, n) for n in _exceptions(6)])
def test_exception_indicates_scu_then_segment_alone(v, name):
    item, cause = _exceptions(v)[name]
    frame = item[0] if isinstance(item, tuple) else item
    before = data_run(2, v=v)                       # 1000..1200
    after = data_run(2, seq=1200, v=v)
    engine = RscEngine()
    out = feed(engine, before + [item] + after)
    assert counts(out) == [2, 0, 2]
    check_scu(out[0], before, v)
    assert out[0].cause == Cause.EXCEPTION
    assert out[1].frame == frame and out[1].cause == cause
    assert out[1].checksum == (item[1] if isinstance(item, tuple) else rx_validate(frame))
    assert out[1].rsc == RscInfo() and out[1].timestamp_delta == RscTcpTimestampDelta()
    check_scu(out[2], after, v)
    st = engine.statistics
    assert st == RscStatistics(CoalescedPkts=4, CoalescedOctets=400, CoalesceEvents=2, Aborts=1)


@V
def test_exception_takes_no_context(v):
    engine = RscEngine(contexts=1)
    a = tcp(0, b"a" * 10, v=v, sport=1)
    syn = tcp(0, v=v, sport=2, flags=SYN | ACK)
    out = feed(engine, [a, syn], end=False)
    assert [i.cause for i in out] == [Cause.FLAGS]
    assert engine.open_scus == 1
    assert [i.frame for i in engine.end_indication()] == [a]


def test_fragment_finalizes_only_scus_of_its_addresses():
    other = [tcp(0, b"o" * 10, sport=7, src="192.0.2.99"), tcp(10, b"o" * 10, sport=7,
                                                                 src="192.0.2.99")]
    mine = [tcp(0, b"m" * 10, sport=1), tcp(10, b"m" * 10, sport=1)]
    mine2 = [tcp(0, b"n" * 10, sport=2)]
    frag = bytes(Ether(**MAC) / IP(src=ADDR[4][0], dst=ADDR[4][1], frag=10, proto=6) /
                 Raw(b"y" * 40))
    out = coalesce([other[0], mine[0], mine2[0], other[1], mine[1], frag])
    check_scu(out[0], mine, 4)                  # both SCUs of 192.0.2.1, in opening order
    assert out[0].cause == out[1].cause == Cause.EXCEPTION and out[1].frame == mine2[0]
    assert out[2].frame == frag and out[2].cause == Cause.FRAGMENT
    check_scu(out[3], other, 4)


def test_ethernet_padding_is_not_payload_and_scu_has_none():
    frames = [tcp(i * 2, b"ab") + b"\0" * 4 for i in range(3)]     # 56 bytes + padding
    out = coalesce(frames)
    assert counts(out) == [3]
    assert payload_of(out[0].frame) == b"ab" * 3
    assert len(out[0].frame) == 14 + 40 + 6 and scapy_consistent(out[0].frame)
    (one,) = coalesce(frames[:1])
    assert one.frame == frames[0]                                 # unchanged, padding too


def test_llc_snap_and_qinq_frames_coalesce_with_first_l2_header():
    from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot3
    snap = [bytes(Dot3(len=1500, **MAC) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) /
                  SNAP(OUI=0, code=0x0800) / IP(src=ADDR[4][0], dst=ADDR[4][1]) /
                  TCP(sport=1, dport=2, seq=i * 10, flags=ACK) / Raw(b"s" * 10))
            for i in range(2)]
    qinq = [bytes(Ether(**MAC) / Dot1AD(vlan=3) / Dot1Q(vlan=4) /
                  IPv6(src=ADDR[6][0], dst=ADDR[6][1]) /
                  TCP(sport=1, dport=2, seq=i * 10, flags=ACK) / Raw(b"q" * 10))
            for i in range(2)]
    out = coalesce([snap[0], qinq[0], snap[1], qinq[1]])
    assert counts(out) == [2, 2]
    # DESIGN 3: the Ethernet header of the first segment, 802.3 length field included.
    assert out[0].frame[:22] == snap[0][:22] and payload_of(out[0].frame) == b"s" * 20
    assert out[1].frame[:22] == qinq[0][:22] and scapy_consistent(out[1].frame)


def test_receive_indication_is_a_batch_then_its_end():
    frames = data_run(3)
    engine = RscEngine()
    out = engine.receive_indication([(f, rx_validate(f), t) for t, f in enumerate(frames)])
    assert counts(out) == [3] and out[0].cause == Cause.END_OF_INDICATION
    assert engine.open_scus == 0


def test_parse_result_from_the_sideband_is_used():
    from nicoffload.model.parse import parse
    frames = data_run(2)
    engine = RscEngine()
    out = []
    for t, f in enumerate(frames):
        out += engine.receive(f, rx_validate(f), t, headers=parse(f))
    out += engine.end_indication()
    check_scu(out[0], frames, 4)


# --- joining: the equal-field rules, ECN, ACKs -----------------------------------------------

def _changes(v):
    c = {"mac": dict(mac_src="02:00:00:00:00:09"), "tcp_header_length":
         dict(options=[("NOP", None)] * 4), "timestamp_presence": dict(ts=(5, 5)),
         "ece": dict(flags=ECE | ACK), "cwr": dict(flags=CWR | ACK)}
    if v == 4:
        c.update(dscp=dict(tos=0x20), ecn=dict(tos=0x01), df=dict(df=False))
    else:
        c.update(traffic_class=dict(tc=0x20), ecn=dict(tc=0x02), flow_label=dict(fl=0x12345))
    return c


@pytest.mark.parametrize("v,name", [(4, n) for n in _changes(4)] + [(6, n) for n in _changes(6)])
def test_changed_field_starts_new_scu(v, name):
    before = data_run(2, v=v)
    after = data_run(2, seq=1200, v=v, **_changes(v)[name])
    engine = RscEngine()
    out = feed(engine, before + after)
    assert counts(out) == [2, 2]
    check_scu(out[0], before, v)
    check_scu(out[1], after, v)
    expected = Cause.ECN_CHANGE if name in ("ecn", "ece", "cwr") else Cause.HEADER_CHANGE
    assert out[0].cause == expected
    assert engine.statistics.Aborts == 1               # exception 8 and rule breaks are Aborts


def test_vlan_priority_is_header_not_flow():
    before = data_run(2, vlan=5, prio=0)
    after = data_run(2, seq=1200, vlan=5, prio=3)
    out = coalesce(before + after)
    assert counts(out) == [2, 2] and out[0].cause == Cause.HEADER_CHANGE


def test_vlan_id_is_flow_identity():
    a, b = data_run(2, vlan=5), data_run(2, vlan=6)
    out = coalesce([a[0], b[0], a[1], b[1]])
    assert counts(out) == [2, 2]
    check_scu(out[0], a, 4)
    check_scu(out[1], b, 4)


@V
def test_ack_below_starts_new_scu_ack_above_joins(v):
    frames = [tcp(0, b"a" * 10, v=v, ack=100), tcp(10, b"b" * 10, v=v, ack=200),
              tcp(20, b"c" * 10, v=v, ack=150), tcp(30, b"d" * 10, v=v, ack=150)]
    out = coalesce(frames)
    assert counts(out) == [2, 2] and out[0].cause == Cause.ACK_BELOW
    check_scu(out[0], frames[:2], v)
    check_scu(out[1], frames[2:], v)


def test_ack_and_seq_serial_arithmetic_wrap():
    frames = [tcp(2**32 - 10, b"a" * 10, ack=2**32 - 5), tcp(0, b"b" * 10, ack=3),
              tcp(10, b"c" * 10, ack=3)]
    out = coalesce(frames)
    assert counts(out) == [3]
    check_scu(out[0], frames, 4)


@V
def test_out_of_sequence_gap_and_retransmission(v):
    a = tcp(0, b"a" * 10, v=v)
    gap = tcp(20, b"c" * 10, v=v)            # 10..20 missing
    filler = tcp(10, b"b" * 10, v=v)          # arrives late (reordering)
    retx = tcp(0, b"a" * 10, v=v)             # retransmission of ``a``
    again = [retx, tcp(10, b"b" * 10, v=v), tcp(20, b"c" * 10, v=v)]
    out = coalesce([a, gap, filler] + again)
    assert counts(out) == [1, 1, 1, 3]
    assert [i.cause for i in out[:3]] == [Cause.NOT_IN_SEQUENCE] * 3
    assert [i.frame for i in out[:3]] == [a, gap, filler]
    check_scu(out[3], again, v)


# --- pure ACKs, window updates, duplicate ACKs ----------------------------------------------

@V
def test_pure_ack_starts_scu_and_data_never_joins_it(v):
    pure = tcp(1000, v=v, ack=50)
    data = data_run(2, v=v, ack=50)
    out = coalesce([pure] + data)
    assert counts(out) == [1, 2]
    assert out[0].frame == pure and out[0].cause == Cause.PURE_ACK_SCU
    check_scu(out[1], data, v)


@V
def test_pure_ack_that_moves_ack_finalizes_and_starts_new(v):
    data = data_run(2, v=v, ack=50)
    ack = tcp(1200, v=v, ack=60)
    out = coalesce(data + [ack])
    assert counts(out) == [2, 1] and out[0].cause == Cause.PURE_ACK
    assert out[1].frame == ack


@V
def test_duplicate_ack_goes_alone_and_dupackcount_stays_zero(v):
    data = data_run(2, v=v, ack=50, win=700)
    dup = tcp(1200, v=v, ack=50, win=700)
    engine = RscEngine()
    out = feed(engine, data + [dup, dup, dup])
    # dup 1 ends the data SCU and goes alone; dup 2 finds no SCU, starts one; dup 3 is a
    # duplicate of it: that SCU goes up, dup 3 alone.
    assert counts(out) == [2, 0, 1, 0]
    assert [i.cause for i in out] == [Cause.DUPLICATE_ACK] * 4
    assert all(i.rsc.DupAckCount == 0 for i in out)
    check_alone(out[1], dup)
    assert out[2].frame == dup
    assert engine.open_scus == 0


@V
def test_window_update_joins_pure_ack_scu(v):
    pure = tcp(1000, v=v, ack=50, win=10, ttl=40)
    wu1 = tcp(1000, v=v, ack=50, win=20, ttl=50)
    wu2 = tcp(1000, v=v, ack=50, win=30, ttl=60)
    out = coalesce([pure, wu1, wu2])
    assert counts(out) == [1]
    check_scu(out[0], [pure, wu1, wu2], v)
    assert dissect(out[0].frame)[2].window == 30


@V
def test_window_update_then_duplicate_of_it(v):
    data = data_run(2, v=v, ack=50, win=10)
    wu = tcp(1200, v=v, ack=50, win=20)
    dup = tcp(1200, v=v, ack=50, win=20)
    out = coalesce(data + [wu, dup])
    assert counts(out) == [2, 0]
    check_scu(out[0], data + [wu], v)
    check_alone(out[1], dup, Cause.DUPLICATE_ACK)


def test_pure_ack_with_wrong_seq_is_not_window_update():
    data = data_run(2, ack=50, win=10)
    odd = tcp(1100, ack=50, win=20)           # SEG.SEQ != H.NXT
    out = coalesce(data + [odd])
    assert counts(out) == [2, 1] and out[0].cause == Cause.PURE_ACK


# --- timestamps (rsc-rules3.png) ---------------------------------------------------------------

@V
def test_timestamps_forward_equal_backward(v):
    fwd = [tcp(0, b"a" * 10, v=v, ts=(100, 1)), tcp(10, b"b" * 10, v=v, ts=(100, 2)),
           tcp(20, b"c" * 10, v=v, ts=(130, 3))]
    back = [tcp(30, b"d" * 10, v=v, ts=(129, 4)), tcp(40, b"e" * 10, v=v, ts=(129, 5))]
    out = coalesce(fwd + back)
    assert counts(out) == [3, 2] and out[0].cause == Cause.TIMESTAMP
    check_scu(out[0], fwd, v)
    check_scu(out[1], back, v)
    assert out[0].timestamp_delta.RscTcpTimestampDelta == 30
    assert out[1].timestamp_delta.RscTcpTimestampDelta == 0


def test_timestamps_equal_only_and_wraparound():
    eq = [tcp(i * 10, b"q" * 10, ts=(7, 1)) for i in range(3)]
    out = coalesce(eq)
    assert counts(out) == [3] and out[0].timestamp_delta.RscTcpTimestampDelta == 0
    wrap = [tcp(0, b"a" * 10, ts=(2**32 - 16, 1)), tcp(10, b"b" * 10, ts=(16, 2))]
    out = coalesce(wrap)
    assert counts(out) == [2] and out[0].timestamp_delta.RscTcpTimestampDelta == 32
    check_scu(out[0], wrap, 4)


def test_window_update_with_backward_timestamp_starts_new_scu():
    data = [tcp(0, b"a" * 10, ts=(100, 1), win=10)]
    wu = tcp(10, ts=(99, 1), win=20)
    out = coalesce(data + [wu])
    assert counts(out) == [1, 1] and out[0].cause == Cause.TIMESTAMP


# --- limits: 65,535 bytes, SCU buffer, contexts ----------------------------------------------

@V
def test_ip_datagram_limit_starts_new_scu_without_abort(v):
    size = 8000
    frames = data_run(10, size, v=v)
    engine = RscEngine()
    out = feed(engine, frames)
    hdr = 20 + 20 if v == 4 else 20          # Total Length counts the IPv4 header
    per = (65535 - hdr) // size               # 8 segments fit (64,000 + headers)
    assert counts(out) == [per, 10 - per] and out[0].cause == Cause.IP_LENGTH
    check_scu(out[0], frames[:per], v)
    check_scu(out[1], frames[per:], v)
    assert engine.statistics.Aborts == 0


def test_ip_datagram_limit_exactly_65535_joins():
    last = 65535 - 40 - 3 * 16000
    frames = [tcp(0, b"a" * 16000), tcp(16000, b"b" * 16000), tcp(32000, b"c" * 16000),
              tcp(48000, b"d" * last), tcp(48000 + last, b"e")]
    out = coalesce(frames)
    assert counts(out) == [4, 1]
    assert dissect(out[0].frame)[1].len == 65535
    check_scu(out[0], frames[:4], 4)


def test_scu_buffer_bound_splits_with_abort_and_too_long_goes_alone():
    frames = data_run(6, 1000)
    engine = RscEngine(max_scu_bytes=14 + 40 + 2500)
    out = feed(engine, frames)
    assert counts(out) == [2, 2, 2] and out[0].cause == Cause.SCU_BYTES
    assert engine.statistics.Aborts == 2
    big = tcp(0, b"z" * 3000, sport=9)
    out = feed(engine, [big], t0=100)
    check_alone(out[0], big, Cause.TOO_LONG)


def test_default_buffer_never_splits_below_ip_limit():
    assert DEFAULT_MAX_SCU_BYTES >= 14 + 8 + 8 + 40 + 65535


def test_contexts_exhausted_finalize_scu_opened_first():
    a, b, c = (data_run(2, sport=s, seq=s * 1000) for s in (1, 2, 3))
    engine = RscEngine(contexts=2)
    out = feed(engine, [a[0], b[0], c[0], a[1], b[1], c[1]])
    # c0 evicts a (opened first); a1 then evicts b; b1 evicts c; c1 evicts a1.
    assert [i.frame for i in out[:4]] == [a[0], b[0], c[0], a[1]]
    assert [i.cause for i in out[:4]] == [Cause.CONTEXTS] * 4
    assert [i.frame for i in out[4:]] == [b[1], c[1]]
    assert engine.statistics.Aborts == 4


def test_contexts_interleaved_within_count_coalesce():
    flows = [data_run(4, sport=s, seq=s * 1000, v=4 if s % 2 else 6) for s in range(1, 9)]
    mixed = [flows[s][i] for i in range(4) for s in range(8)]
    out = coalesce(mixed, contexts=8)
    assert counts(out) == [4] * 8
    for s, ind in enumerate(out):                     # end of indication: opening order
        check_scu(ind, flows[s], 4 if (s + 1) % 2 else 6)


# --- time: idle timer, end of indication, disable --------------------------------------------

def test_idle_timer_finalizes_before_next_arrival():
    frames = data_run(4)
    engine = RscEngine(idle_timeout=10)
    out = []
    for f, t in zip(frames, (0, 5, 14, 15)):           # 14 - 5 < 10; 15 - 14 < 10
        out += engine.receive(f, rx_validate(f), t)
    assert out == []
    other = tcp(0, b"o" * 10, sport=9)
    out += engine.receive(other, rx_validate(other), 25)   # 25 - 15 >= 10
    assert counts(out) == [4] and out[0].cause == Cause.IDLE
    check_scu(out[0], frames, 4)
    assert engine.expire(34) == []
    late = engine.expire(35)
    assert [i.frame for i in late] == [other] and late[0].cause == Cause.IDLE


def test_idle_timer_order_last_join_then_opening():
    a, b, c = (data_run(2, sport=s, seq=0) for s in (1, 2, 3))
    engine = RscEngine(idle_timeout=100)
    for f, t in ((a[0], 0), (b[0], 1), (c[0], 2), (a[1], 3), (b[1], 3)):
        assert engine.receive(f, rx_validate(f), t) == []
    out = engine.expire(200)
    assert out[0].frame == c[0]                 # last join at 2, then a and b (joined at 3)
    check_scu(out[1], a, 4)
    check_scu(out[2], b, 4)


def test_time_must_not_go_backwards():
    engine = RscEngine()
    f = tcp(0, b"x")
    engine.receive(f, rx_validate(f), 10)
    with pytest.raises(ValueError):
        engine.receive(f, rx_validate(f), 9)


def test_end_of_indication_flushes_in_opening_order_and_frees_contexts():
    a, b = data_run(2, sport=1), data_run(2, sport=2)
    engine = RscEngine()
    out = feed(engine, [b[0], a[0], b[1], a[1]])
    check_scu(out[0], b, 4)
    check_scu(out[1], a, 4)
    assert engine.open_scus == 0 and engine.end_indication() == []
    assert engine.statistics == RscStatistics(4, 400, 2, 0)


def test_disable_flushes_all_and_then_passes_frames_unchanged():
    a, b = data_run(2, sport=1, v=4), data_run(2, sport=2, v=6)
    engine = RscEngine()
    feed(engine, [a[0], b[0], a[1], b[1]], end=False)
    assert engine.set_enables(rsc_ipv4=True, rsc_ipv6=True) == []
    out = engine.set_enables(rsc_ipv4=True, rsc_ipv6=False)
    assert [i.cause for i in out] == [Cause.DISABLED] * 2
    check_scu(out[0], a, 4)
    check_scu(out[1], b, 6)
    more6, more4 = data_run(3, v=6, sport=3), data_run(3, v=4, sport=3)
    out = feed(engine, more6 + more4, t0=10)
    assert [i.frame for i in out[:3]] == more6 and counts(out) == [0, 0, 0, 3]
    assert all(i.cause == Cause.PASS_THROUGH for i in out[:3])


def test_pass_through_is_indicated_at_once_around_open_scus():
    data = data_run(3)
    udp = bytes(Ether(**MAC) / IP(src=ADDR[4][0], dst=ADDR[4][1]) / UDP(sport=40000, dport=80) /
                Raw(b"u" * 20))
    icmp = bytes(Ether(**MAC) / IPv6(src=ADDR[6][0], dst=ADDR[6][1]) / Raw(b"\x80\0\0\0"))
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC["src"], type=0x0806) / Raw(b"\0" * 28))
    runt = b"\x01\x02\x03"
    out = coalesce([data[0], udp, data[1], icmp, arp, runt, data[2]])
    assert [i.frame for i in out[:4]] == [udp, icmp, arp, runt]
    for ind, f in zip(out[:4], (udp, icmp, arp, runt)):
        check_alone(ind, f, Cause.PASS_THROUGH)
    check_scu(out[4], data, 4)


@pytest.mark.parametrize("v4,v6", [(False, True), (True, False), (False, False)])
def test_rsc_off_per_ip_version_frame_for_frame(v4, v6):
    frames = data_run(4, v=4) + data_run(4, v=6)
    out = coalesce(frames, rsc_ipv4=v4, rsc_ipv6=v6)
    off = frames[:4] * (not v4) + frames[4:] * (not v6)
    assert [i.frame for i in out[:len(off)]] == off
    assert all(i.rsc == RscInfo() for i in out[:len(off)])


def test_parameters_are_checked():
    for kw in (dict(contexts=0), dict(max_scu_bytes=0), dict(idle_timeout=0),
               dict(idle_timeout=1.5)):
        with pytest.raises(ValueError):
            RscEngine(**kw)


def test_indication_unpacks_as_the_three_rx_words():
    f = tcp(0, b"x")
    (ind,) = coalesce([f])
    frame, csum, rsc, delta = ind
    assert (frame, csum, rsc, delta) == (f, rx_validate(f), RscInfo(CoalescedSegCount=1),
                                         RscTcpTimestampDelta())
    assert isinstance(ind, Indication)


# --- random traffic: properties ---------------------------------------------------------------

class Flow:
    def __init__(self, rng, k, v):
        self.rng, self.v, self.sport = rng, v, 10000 + k
        self.seq = rng.randrange(2**32)
        self.ack = rng.randrange(2**32)
        self.tsval = rng.randrange(2**32)
        self.sent = []              # (seq, payload) of data frames, for retransmissions
        self.ts = rng.random() < 0.6
        self.win = 5000 + k

    def frame(self, seq, payload=b"", **kw):
        kw.setdefault("ack", self.ack)
        kw.setdefault("win", self.win)
        if self.ts:
            kw.setdefault("ts", (self.tsval, 77))
        return tcp(seq, payload, v=self.v, sport=self.sport, **kw)

    def next(self):
        """One frame of this flow; the mix the properties must survive."""
        rng = self.rng
        r = rng.random()
        if self.ts and rng.random() < 0.7:
            self.tsval = (self.tsval + rng.choice((0, 1, 1, 3, 1000))) % 2**32
        if r < 0.7 or not self.sent:
            n = rng.choice((1, 7, 100, 536, 1448, 1448, 1448, 8000))
            payload = rng.randbytes(n)
            if rng.random() < 0.1:
                self.ack = (self.ack + rng.randrange(1, 5000)) % 2**32
            seq = self.seq
            if rng.random() < 0.05:
                seq = (seq + 100) % 2**32           # a gap
            self.sent.append((seq, payload))
            self.seq = (seq + n) % 2**32
            return self.frame(seq, payload, flags=ACK | (PSH if rng.random() < 0.2 else 0))
        if r < 0.75:
            seq, payload = rng.choice(self.sent[-5:])   # retransmission
            return self.frame(seq, payload)
        if r < 0.8:
            return self.frame(self.seq)                 # duplicate ACK
        if r < 0.85:
            self.ack = (self.ack + rng.randrange(1, 5000)) % 2**32
            return self.frame(self.seq)                 # pure ACK that moves ACK
        if r < 0.88 and self.ts:
            return self.frame(self.seq, rng.randbytes(50),
                              ts=((self.tsval - 5) % 2**32, 77))   # backward TSval
        if r < 0.91:
            seq, payload = self.seq, rng.randbytes(30)
            self.seq = (seq + 30) % 2**32
            return self.frame(seq, payload, flags=ACK | URG, urgptr=3)   # exception
        if r < 0.93:
            return self.frame(self.seq, flags=ACK | FIN)
        if r < 0.96:                                    # corrupted on the way: bad checksum
            return self.frame(self.seq, rng.randbytes(40), chksum=0xDEAD)
        return tcp(self.seq, b"", v=self.v, sport=self.sport, ack=self.ack, win=self.win,
                   options=[("NOP", None), ("NOP", None), ("SAck", (1, 2))])


def random_traffic(seed, n=300, flows=12):
    rng = random.Random(seed)
    fl = [Flow(rng, k, 4 if k % 3 else 6) for k in range(flows)]
    frames, t, items = [], 0, []
    while len(frames) < n:
        if rng.random() < 0.05:
            frames.append(bytes(Ether(**MAC) / IP(src=ADDR[4][0], dst=ADDR[4][1]) /
                                UDP(sport=1, dport=2) / Raw(rng.randbytes(10))))
        else:                                           # a burst of one flow
            f = rng.choice(fl[:rng.choice((3, flows))])
            frames += [f.next() for _ in range(rng.choice((1, 2, 4, 8)))]
    if len(frames) > 2:                                 # a little reordering
        for _ in range(5):
            i = rng.randrange(len(frames) - 1)
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
    for f in frames:
        t += rng.choice((0, 1, 1, 2, 3, 40))
        items.append((f, t, rng.random() < 0.03))       # (frame, time, end indication after)
    return items


def run_items(engine, items):
    out = []
    for f, t, end in items:
        out += engine.receive(f, rx_validate(f), t)
        if end:
            out += engine.end_indication()
    return out + engine.end_indication()


def flow_key(frame):
    p = Ether(frame)
    if TCP not in p:
        return None
    ip = p[IP] if IP in p else p[IPv6]
    return (ip.src, ip.dst, p[TCP].sport, p[TCP].dport)


ENGINES = [dict(contexts=4, idle_timeout=30), dict(contexts=2, max_scu_bytes=12000),
           dict(contexts=8, idle_timeout=5)]


@pytest.mark.parametrize("seed,config", [(1, 0), (2, 0), (3, 1), (4, 1), (7, 2), (8, 2)])
def test_random_traffic_properties(seed, config):
    items = random_traffic(seed, n=400)
    engine = RscEngine(**ENGINES[config])
    out = run_items(engine, items)
    frames = [f for f, _, _ in items]

    # Per flow, the payload bytes handed up are the bytes sent, in order, none lost or twice.
    sent, got = {}, {}
    for f in frames:
        sent.setdefault(flow_key(f), []).append(payload_of(f))
    for ind in out:
        got.setdefault(flow_key(ind.frame), []).append(payload_of(ind.frame))
    assert set(sent) == set(got)
    for key in sent:
        assert b"".join(sent[key]) == b"".join(got[key]), key
    nontcp = [f for f in frames if flow_key(f) is None]
    assert [i.frame for i in out if flow_key(i.frame) is None] == nontcp

    # Every SCU: scapy agrees with its lengths and checksums; no SCU passes 65,535 bytes.
    input_set = set(frames)
    multi = 0
    for ind in out:
        if ind.frame in input_set:
            continue
        multi += 1
        assert scapy_consistent(ind.frame)
        assert ind.checksum in (SUCCEEDED4, SUCCEEDED6)
        _, ip, _ = dissect(ind.frame)
        assert (ip.len if IP in Ether(ind.frame) else ip.plen) <= 65535
        assert ind.rsc.CoalescedSegCount >= 1
        assert len(ind.frame) <= engine.max_scu_bytes
    assert multi > 0
    assert all(i.rsc.DupAckCount == 0 for i in out)

    # Counts: every frame that went in is accounted for once. Window sizes never change in
    # this traffic, so no window update exists and each SCU holds CoalescedSegCount frames.
    assert sum(max(i.rsc.CoalescedSegCount, 1) for i in out) == len(frames)
    st = engine.statistics
    scus = [i for i in out if i.rsc.CoalescedSegCount]
    assert st.CoalesceEvents == len(scus)
    assert st.CoalescedPkts == sum(i.rsc.CoalescedSegCount for i in scus)
    assert st.CoalescedOctets == sum(len(payload_of(i.frame)) for i in scus)
    assert st.Aborts > 0

    # Deterministic: the same input and times give the same output, bit for bit.
    again = run_items(RscEngine(**ENGINES[config]), items)
    assert [tuple(i) for i in again] == [tuple(i) for i in out]


@pytest.mark.parametrize("seed", [5, 6])
def test_random_traffic_rsc_off_is_identity(seed):
    items = random_traffic(seed, n=150)
    out = run_items(RscEngine(rsc_ipv4=False, rsc_ipv6=False), items)
    assert [(i.frame, i.checksum, i.rsc, i.timestamp_delta) for i in out] == \
        [(f, rx_validate(f), RscInfo(), RscTcpTimestampDelta()) for f, _, _ in items]


def test_random_traffic_with_window_updates_keeps_bytes_and_counts():
    rng = random.Random(9)
    frames, seq, win = [], 0, 1000
    data_frames = 0
    for _ in range(200):
        if rng.random() < 0.3:
            win = (win + rng.randrange(1, 100)) % 65536
            frames.append(tcp(seq, win=win))                    # window update
        else:
            p = rng.randbytes(rng.choice((10, 1448)))
            frames.append(tcp(seq, p, win=win))
            seq += len(p)
            data_frames += 1
    engine = RscEngine()
    out = feed(engine, frames)
    assert b"".join(payload_of(i.frame) for i in out) == \
        b"".join(payload_of(f) for f in frames)
    # Window updates after a pure-ACK SCU start... never: the first frame may be one.
    lead = 0
    for f in frames:
        if payload_of(f):
            break
        lead += 1
    assert sum(i.rsc.CoalescedSegCount for i in out) == data_frames + (1 if lead else 0)
    for ind in out:
        if ind.frame not in frames:
            assert scapy_consistent(ind.frame)
    assert engine.statistics.CoalescedPkts == len(frames)


def test_receive_capture_batches_end_indications():
    from nicoffload.model.rsc import receive_capture
    frames = data_run(10)
    out = receive_capture(frames, range(10), RscEngine(), batch=4)
    assert counts(out) == [4, 4, 2]
    assert [i.cause for i in out] == [Cause.END_OF_INDICATION] * 3
    for k, ind in enumerate(out):
        check_scu(ind, frames[4 * k:4 * k + 4], 4)
    assert counts(receive_capture(frames, range(10), RscEngine(), batch=5)) == [5, 5]


def test_single_flow_boundaries_match_a_plain_restatement():
    """Random single-flow data (gaps, retransmissions, ACKs and TSvals up and down, big
    segments): the SCU boundaries are those of the rules restated plainly here."""
    rng = random.Random(11)
    frames, expect = [], []
    seq, ack, tsv = 2**32 - 3000, 2**32 - 10, 2**32 - 50
    h = None                      # (nxt, ack, tsval, ip_length) of the open SCU
    for _ in range(250):
        size = rng.choice((1, 100, 1448, 9000))
        seq = (seq + rng.choice((0, 0, 0, 0, 5, -size))) % 2**32       # gaps, retransmits
        ack = (ack + rng.choice((0, 0, 0, 7, -3))) % 2**32
        tsv = (tsv + rng.choice((0, 1, 1, 2, -1))) % 2**32
        frames.append(tcp(seq, rng.randbytes(size), ack=ack, ts=(tsv, 1)))
        joins = (h is not None and seq == h[0] and (ack - h[1]) % 2**32 < 2**31
                 and (tsv - h[2]) % 2**32 < 2**31 and h[3] + size <= 65535)
        if joins:
            expect[-1] += 1
            h = ((seq + size) % 2**32, ack, tsv, h[3] + size)
        else:
            expect.append(1)
            h = ((seq + size) % 2**32, ack, tsv, 20 + 32 + size)
        seq = (seq + size) % 2**32
    out = coalesce(frames)
    assert counts(out) == expect
    k = 0
    for ind, n in zip(out, expect):
        if n > 1:
            check_scu(ind, frames[k:k + n], 4)
        k += n
