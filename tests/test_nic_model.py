"""model/nic.py: the NIC as one object. Traffic through both paths, the statistics counters
(and their register words), configuration changes between frames with one status indication
each, RSC switched off with SCUs open, the idle timer, and the same results as the
functions the command line used before the Nic existed."""

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from nicoffload.model import nbl
from nicoffload.model import regmap as rm
from nicoffload.model import rsc as rsc_model
from nicoffload.model.checksum import tx_fill
from nicoffload.model.config import NdisOffloadParameters, OidError, bind
from nicoffload.model.config.constants import NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG
from nicoffload.model.nic import Nic, RxPath, TxRequest, rx_model_stream, rx_rsc_engine
from nicoffload.model.transport import prepare_checksum
from nicoffload.sim.datapath import prepare_send

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def segment(seq, payload=b"x" * 100, *, sport=1000, flags="A", chksum=None):
    tcp = TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=1, window=100)
    if chksum is not None:
        tcp.chksum = chksum
    return bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / tcp / payload)


def reg(nic, name):
    """A counter read over the model's bus view, LO then HI."""
    lo = rm.REGISTERS[f"{name}_LO"].address
    low, _ = nic.registers.read(lo)
    high, _ = nic.registers.read(lo + 4)
    return high << 32 | low


def test_default_nic_is_bound_and_reads_its_identity():
    nic = Nic()
    assert nic.datapath == bind().datapath()
    assert nic.registers.read(0x000) == (rm.MAP_ID, rm.OKAY)
    assert nic.csr_values() == rm.RegisterView().reset_values()
    assert nic.indications == bind().indications      # bind's one encapsulation set


def test_transmit_counts_what_it_does():
    nic = Nic()
    plain = bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / (b"u" * 50))
    frame, info = prepare_checksum(plain, nic.datapath)
    result = nic.transmit(frame, checksum=info)
    assert result.segments == (tx_fill(frame, info),) and result.completion.Status == 0
    [request] = prepare_send(segment(1, b"y" * 3000), nic.datapath, mss=1000)
    assert request.lso
    segments, completion = nic.transmit(request)
    assert len(segments) == 3 and completion.Status == 0
    counts = nic.counters()
    assert counts["TX_IN_FRAMES"] == 2 and counts["TX_OUT_FRAMES"] == 4
    assert counts["TX_IN_BYTES"] == len(frame) + len(request.frame)
    assert counts["TX_OUT_BYTES"] == len(result.segments[0]) + sum(map(len, segments))
    assert reg(nic, "TX_OUT_FRAMES") == 4 and reg(nic, "TX_OUT_BYTES") == counts["TX_OUT_BYTES"]


def test_lso_off_between_frames_drops_and_counts_the_reason():
    nic = Nic()
    [request] = prepare_send(segment(1, b"y" * 3000), nic.datapath, mss=1000, lso="v2")
    before = len(nic.indications)
    change = nic.set_offload_parameters(NdisOffloadParameters(LsoV2IPv4=1))
    assert len(nic.indications) == before + 1
    assert change.status.StatusCode == NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG
    assert change.status is nic.indications[-1] and change.indicated == ()
    en = rm.REGISTERS["OFFLOAD_EN"]
    assert [(a, en.unpack(v)["lso_v2_ipv4"]) for a, v in change.writes] == [(en.address, 0)]
    result = nic.transmit(request)
    assert result.segments == () and result.completion.Status == nbl.TxStatus.LSO_DISABLED
    assert nic.counters()["TX_DROP_LSO_DISABLED"] == reg(nic, "TX_DROP_LSO_DISABLED") == 1


def test_refused_change_changes_nothing():
    nic = Nic()
    before = (len(nic.indications), nic.csr_values())
    with pytest.raises(OidError):
        nic.set_offload_parameters(NdisOffloadParameters(IPsecV1=2))
    assert (len(nic.indications), nic.csr_values()) == before


def test_receive_coalesces_and_counts():
    nic = Nic()
    out = []
    for k in range(3):
        out += nic.receive(segment(1 + 100 * k), now=10 * k)
    assert out == []
    bad = segment(5000, sport=2000, chksum=0x1234)
    [(time, alone)] = nic.receive(bad, now=40)
    assert time == 40 and alone.checksum.TcpChecksumFailed and alone.rsc.CoalescedSegCount == 0
    [(time, scu)] = nic.end_indication()
    assert time == 40 and scu.rsc.CoalescedSegCount == 3
    counts = nic.counters()
    assert counts["RX_IN_FRAMES"] == 4 and counts["RX_OUT_FRAMES"] == 2
    assert counts["RX_OUT_BYTES"] == len(bad) + len(scu.frame)
    assert counts["RX_TCP_CHECKSUM_FAILED"] == 1 and counts["RX_IP_CHECKSUM_FAILED"] == 0
    assert counts["RSC_COALESCED_PKTS"] == 3 and counts["RSC_COALESCED_OCTETS"] == 300
    assert counts["RSC_COALESCE_EVENTS"] == 1 and counts["RSC_ABORTS"] == 1
    assert reg(nic, "RSC_COALESCED_OCTETS") == 300


def test_rsc_off_finalizes_open_scus_first():
    nic = Nic()
    nic.receive(segment(1), now=0)
    nic.receive(segment(101), now=1)
    change = nic.set_offload_parameters(NdisOffloadParameters(RscIPv4=1))
    [(_, scu)] = change.indicated
    assert scu.rsc.CoalescedSegCount == 2 and scu.cause == rsc_model.Cause.DISABLED
    assert not nic.datapath.rsc_ipv4 and nic.datapath.rsc_ipv6
    [(_, alone)] = nic.receive(segment(201), now=2)
    assert alone.rsc.CoalescedSegCount == 0 and nic.end_indication() == []
    # RSC on again: coalescing resumes, with one more status indication.
    before = len(nic.indications)
    assert nic.set_offload_parameters(NdisOffloadParameters(RscIPv4=2)).indicated == ()
    assert len(nic.indications) == before + 1
    nic.receive(segment(301), now=3)
    nic.receive(segment(401), now=4)
    [(_, scu)] = nic.end_indication()
    assert scu.rsc.CoalescedSegCount == 2


def test_idle_timer_indicates_at_the_deadline():
    nic = Nic(rsc_idle_timeout=100)
    nic.receive(segment(1), now=0)
    nic.receive(segment(101), now=10)
    assert nic.advance(50) == []
    [(time, scu)] = nic.advance(500)
    assert time == 110 and scu.rsc.CoalescedSegCount == 2
    assert rm.REGISTERS["RSC_IDLE_TIMEOUT"].unpack(nic.csr_values()["RSC_IDLE_TIMEOUT"]) == \
        {"Ticks": 100}


def test_stats_clear_through_the_registers():
    nic = Nic()
    nic.receive(segment(1), now=0)
    nic.receive(segment(101), now=1)
    nic.end_indication()
    assert nic.registers.write(0x00C, 1) == rm.OKAY
    assert all(v == 0 for v in nic.counters().values())
    assert nic.rsc_statistics == rsc_model.RscStatistics()
    nic.receive(segment(5000, sport=7), now=2)
    assert nic.counters()["RX_IN_FRAMES"] == 1


def test_settings_that_do_not_fit_a_register_fail_only_there():
    nic = Nic(rsc_idle_timeout=10 ** 12, rsc_contexts=1000)
    assert nic.receive(segment(1), now=0) == []
    with pytest.raises(ValueError):
        nic.registers  # noqa: B018


def test_same_results_as_the_stream_function():
    rng = random.Random(3)
    seqs = {port: 1 for port in (1000, 1001, 1002)}
    records = []
    for i in range(200):
        port = rng.choice(list(seqs))
        if rng.random() < 0.1:
            seqs[port] += 7            # out of sequence
        records.append((i * 30 + rng.randrange(30), segment(seqs[port], sport=port)))
        seqs[port] += 100
    dp = bind().datapath()
    want = list(rx_model_stream(records, dp, rx_rsc_engine(dp, timeout_us=1), batch=16))
    got = list(Nic(rsc_idle_timeout=1000).receive_stream(records, batch=16))
    assert got == want and len(got) < len(records)
    assert [t for t, _ in got] == sorted(t for t, _ in got)
    engine = rsc_model.RscEngine(idle_timeout=1000)
    assert list(RxPath(dp, engine).stream(records, batch=16)) == want


def test_tx_request_passes_through_transmit():
    nic = Nic()
    frame = segment(1)
    request = TxRequest(frame, nbl.ChecksumTx(IsIPv4=1, TcpChecksum=1, IpHeaderChecksum=1))
    assert nic.transmit(request) == nic.transmit(frame, checksum=request.checksum)


def test_readme_example_runs_and_prints_what_it_says(capsys):
    """The README's "Use the model as a reference" example, as written there."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Use the model as a reference"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    promised = [line.split("#")[-1].strip() for line in code.splitlines()
                if line.startswith("print(")]
    assert capsys.readouterr().out.splitlines() == promised
