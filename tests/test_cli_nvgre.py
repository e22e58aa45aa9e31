"""``nicoffload tx`` / ``rx`` with NVGRE traffic, and the configuration that gates it.

NVGRE is in ``config.BUILT_OFFLOADS``; the tests of a build without it stand in for one the
way ``config.adapter`` allows (``BUILT_OFFLOADS`` is read whenever it is needed, and the CLI
runs in-process, click's runner, so the stand-in reaches it). The wire is judged by scapy
(``nvgre_frames.rebuilt``) and by the test's own arithmetic; with the offload on, off, or not
built, it must be the same bytes. ``--engine rtl`` runs the NIC top with NVGRE on and must
write what the model writes.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner
from scapy.layers.inet import TCP
from scapy.layers.l2 import GRE, Ether

import nvgre_frames as nf
from nicoffload.model import config as c
from nicoffload.model.config import constants as k
from nicoffload.sim import datapath, pcapio
from nicoffload.sim.cli import main

def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


# --- configuration ---------------------------------------------------------------------------

@pytest.fixture
def nvgre_left_out(monkeypatch):
    """A build variant whose datapath leaves NVGRE out."""
    monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", c.BUILT_OFFLOADS - {"encap"})


def test_built_in_this_nic():
    assert "encap" in c.BUILT_OFFLOADS


def test_left_out_so_not_claimed_and_not_operational(nvgre_left_out):
    adapter = c.bind([])
    gre = adapter.hardware_capabilities().EncapsulatedPacketTaskOffloadGre
    assert gre.MaxHeaderSizeSupported == 0 and gre.LsoV2Supported == 0
    assert adapter.datapath().encap is False
    assert adapter.datapath().lso_limits()["encap"] is False


def test_built_capability_keyword_and_oid_state():
    adapter = c.Adapter()
    gre = adapter.hardware_capabilities().EncapsulatedPacketTaskOffloadGre
    assert gre.MaxHeaderSizeSupported == 256
    assert gre.TransmitChecksumOffloadSupported == gre.ReceiveChecksumOffloadSupported == \
        gre.LsoV2Supported == k.ALL_ENCAPSULATED_IP_VERSIONS
    assert adapter.datapath().encap is False              # enabled, not yet operational
    adapter.set_offload_parameters(c.BIND_NVGRE_ON)
    assert adapter.datapath().encap is True
    assert adapter.datapath().lso_limits()["encap"] is True
    assert c.bind([]).datapath().encap is True
    assert c.bind(["*EncapsulatedPacketTaskOffload=0"]).datapath().encap is False


# --- tx --------------------------------------------------------------------------------------

def _write(tmp_path, frames, name="in.pcap"):
    path = tmp_path / name
    pcapio.write_frames(path, [f.frame for f in frames])
    return path


def test_tx_requests_encapsulated_offloads_only_when_built_and_on():
    f = nf.build(payload=b"a" * 100, gre_checksum=True, key=3)
    on = datapath.prepare_send(f.frame, c.bind([]).datapath())
    off = datapath.prepare_send(f.frame, c.bind(["*EncapsulatedPacketTaskOffload=0"])
                                .datapath())
    assert len(on) == len(off) == 1
    assert on[0].supplemental & 1 and on[0].checksum.TcpChecksum
    assert off[0].supplemental == 0 and not off[0].checksum.TcpChecksum
    large = datapath.prepare_send(nf.build(payload=b"b" * 5000).frame, c.bind([]).datapath(),
                                  mss=1000)
    assert len(large) == 1 and large[0].lso and large[0].supplemental & 1


@pytest.mark.parametrize("keyword", ["1", "0", "unbuilt"])
def test_tx_wire_is_right_either_way(keyword, tmp_path, monkeypatch):
    if keyword == "unbuilt":
        monkeypatch.setattr(c.adapter, "BUILT_OFFLOADS", c.BUILT_OFFLOADS - {"encap"})
    frames = nf.frames(31, 40, max_payload=3000)
    path = _write(tmp_path, frames)
    out = tmp_path / "out.pcap"
    extra = ["--keyword", "*EncapsulatedPacketTaskOffload=0"] if keyword == "0" else []
    code, text = run("tx", path, out, "--mss", 1200, *extra)
    assert code == 0, text
    wire = pcapio.read_frames(out)
    i = 0
    for f in frames:
        large = f.l4 == "tcp" and len(f.payload) > 1200
        count = -(-len(f.payload) // 1200) if large else 1
        got = wire[i:i + count]
        i += count
        if not large:
            assert got == [f.frame], f.desc          # checksums filled, nothing else changed
            continue
        assert b"".join(bytes(Ether(s)[TCP].payload) for s in got) == f.payload
        for n, s in enumerate(got):
            assert nf.scapy_ok(s, lengths=True), (f.desc, n)
            if f.seq is not None:
                assert Ether(s)[GRE].sequence_number == (f.seq + n) & 0xFFFFFFFF
    assert i == len(wire)


def test_tx_same_wire_with_the_offload_on_and_off(tmp_path):
    path = _write(tmp_path, nf.frames(32, 30, max_payload=4000))
    outs = []
    for value in ("1", "0"):
        out = tmp_path / f"out{value}.pcap"
        code, text = run("tx", path, out, "--mss", 900,
                         "--keyword", f"*EncapsulatedPacketTaskOffload={value}")
        assert code == 0, text
        outs.append(pcapio.read_frames(out))
    assert outs[0] == outs[1]


@pytest.mark.rtl
def test_rtl_engine_writes_what_the_model_writes(tmp_path):
    """NVGRE frames (every outer/inner mix, GRE options, large inner TCP payloads) through
    the NIC top with NVGRE on: TX with --mss 1000 (LSOv2 over NVGRE and the encapsulated
    checksums) and RX with RSC off give the model's capture and report, which scapy
    confirms."""
    frames = nf.frames(33, 24, max_payload=3000)
    path = _write(tmp_path, frames)
    wires, reports = {}, {}
    for engine in ("model", "rtl"):
        out = tmp_path / f"tx-{engine}.pcap"
        code, text = run("tx", path, out, "--mss", 1000, "--engine", engine)
        assert code == 0, text
        wires[engine] = pcapio.read_frames(out)
        rep = tmp_path / f"rx-{engine}.jsonl"
        code, text = run("rx", path, tmp_path / f"rx-{engine}.pcap", "--report", rep,
                         "--engine", engine, "--keyword", "*RscIPv4=0", "--keyword",
                         "*RscIPv6=0")
        assert code == 0, text
        reports[engine] = rep.read_text()
    assert wires["rtl"] == wires["model"]
    assert len(wires["rtl"]) > len(frames)                  # some were large sends
    assert all(nf.scapy_ok(w, lengths=True) for w in wires["rtl"])
    assert reports["rtl"] == reports["model"]
    assert any(json.loads(line)["TcpChecksumSucceeded"]
               for line in reports["rtl"].splitlines())


# --- rx --------------------------------------------------------------------------------------

def _rx_report(tmp_path, frames, *keywords):
    path = _write(tmp_path, frames, "rx.pcap")
    rep = tmp_path / "rx.jsonl"
    code, text = run("rx", path, tmp_path / "rx-out.pcap", "--report", rep,
                     "--keyword", "*RscIPv4=0", "--keyword", "*RscIPv6=0", *keywords)
    assert code == 0, text
    return [json.loads(line) for line in rep.read_text().splitlines()]


def _bad_inner_ipv4(f):
    out = bytearray(f.frame)
    at = 14 + 20 + 4 + 14 + 10          # IPv4 in IPv4, plain GRE: the inner header checksum
    out[at] ^= 0x10
    return dataclasses.replace(f, frame=bytes(out))


def test_rx_reports_inner_verdicts_when_built(tmp_path):
    good = nf.build(payload=b"c" * 30)
    udp = nf.build(payload=b"c" * 30, l4="udp", inner_v6=True)
    bad = _bad_inner_ipv4(good)
    got = _rx_report(tmp_path, [good, udp, bad])
    assert got[0]["IpChecksumSucceeded"] and got[0]["TcpChecksumSucceeded"]
    assert got[1]["IpChecksumSucceeded"] and got[1]["UdpChecksumSucceeded"]
    assert got[2]["IpChecksumFailed"] and not got[2]["IpChecksumSucceeded"]
    assert got[2]["TcpChecksumSucceeded"]
    off = _rx_report(tmp_path, [good, bad], "--keyword", "*EncapsulatedPacketTaskOffload=0")
    for line in off:                     # outer verdict only
        assert line["IpChecksumSucceeded"] and not line["TcpChecksumSucceeded"]


def test_rx_outer_verdict_only_while_left_out(tmp_path, nvgre_left_out):
    good = nf.build(payload=b"c" * 30)
    got = _rx_report(tmp_path, [good, _bad_inner_ipv4(good)])
    for line in got:
        assert line["IpChecksumSucceeded"] and not line["TcpChecksumSucceeded"]
        assert not line["IpChecksumFailed"]
