"""Capture I/O (``sim/pcapio.py``) and what ``tx``/``rx`` do with it: link types and truncation
checked in pcap and pcapng alike, records streamed with their times, times carried to the
output. pcapng files are built here byte by byte (the format's blocks), so every corner can
be made; scapy's writers make the ordinary ones."""

import struct
import subprocess
import sys
import tracemalloc

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap, wrpcapng

from nicoffload.sim import cli as cli_mod
from nicoffload.sim import pcapio

CLI = [sys.executable, "-m", "nicoffload.sim.cli"]


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True)


def one_error_line(r, *words):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nicoffload: error:"), r.stderr
    for word in words:
        assert word in lines[0], r.stderr


# --- pcapng, block by block ------------------------------------------------------------------

def block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = 12 + len(body)
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def shb() -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(linktype: int = 1, snaplen: int = 0, tsresol: int | None = None) -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
    return block(1, struct.pack("<HHI", linktype, 0, snaplen) + options)


def epb(frame: bytes, ticks: int = 0, interface: int = 0, wirelen: int | None = None) -> bytes:
    return block(6, struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF,
                                len(frame), len(frame) if wirelen is None else wirelen) + frame)


def spb(frame: bytes) -> bytes:
    return block(3, struct.pack("<I", len(frame)) + frame)


# rx with RSC (on by default) holds TCP segments in SCUs and gives each host frame the time
# it is indicated (tests/test_cli_rx_rsc.py); the tests of capture times here turn it off.
RSC_OFF = ("--keyword", "*RscIPv4=0", "--keyword", "*RscIPv6=0")
FRAMES = [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A") / Raw(b"a" * n))
          for n in (0, 1, 100, 1400)]


def test_pcapng_records_and_times(tmp_path):
    """Times from the interface's if_tsresol (ns here), a Simple Packet Block with the time
    before it, a zero-length record; ``rx`` writes a nanosecond pcap with the same times."""
    times = [1_700_000_000_123_456_789, 1_700_000_000_123_456_790, 1_700_000_001_000_000_001]
    data = shb() + idb(tsresol=9) + epb(FRAMES[0], times[0]) + epb(FRAMES[1], times[1]) + \
        spb(FRAMES[2]) + epb(b"", times[2]) + epb(FRAMES[3], times[2])
    path = tmp_path / "in.pcapng"
    path.write_bytes(data)
    want = [(times[0], FRAMES[0]), (times[1], FRAMES[1]), (times[1], FRAMES[2]),
            (times[2], b""), (times[2], FRAMES[3])]
    with pcapio.CaptureReader(path) as reader:
        assert reader.format == "pcapng" and reader.nanosecond
        assert list(reader) == want
        assert reader.records == 5
    out = tmp_path / "out.pcap"
    r = cli("rx", path, out, *RSC_OFF)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"      # nanosecond pcap
    assert list(pcapio.read(out)) == want


def test_pcapng_microseconds_by_default(tmp_path):
    path = tmp_path / "in.pcapng"
    path.write_bytes(shb() + idb() + epb(FRAMES[2], 1_600_000_000_654_321))
    with pcapio.CaptureReader(path) as reader:
        assert not reader.nanosecond
        assert list(reader) == [(1_600_000_000_654_321_000, FRAMES[2])]


def test_scapy_pcapng_reads(tmp_path):
    pkts = [Ether(f) for f in FRAMES]
    for i, p in enumerate(pkts):
        p.time = 1000 + i / 4
    wrpcapng(str(tmp_path / "s.pcapng"), pkts)
    got = list(pcapio.read(tmp_path / "s.pcapng"))
    assert [f for _, f in got] == FRAMES
    assert [t for t, _ in got] == [1000_000_000_000 + i * 250_000_000 for i in range(4)]


@pytest.mark.parametrize("linktype, name", [(113, "LINUX_SLL"), (101, "RAW"), (276, "")])
@pytest.mark.parametrize("command", ["tx", "rx"])
def test_pcapng_other_link_types_are_refused(tmp_path, linktype, name, command):
    """A pcapng of Linux cooked or raw-IP frames is not Ethernet: refused as the pcap is."""
    path = tmp_path / "in.pcapng"
    path.write_bytes(shb() + idb(linktype) + epb(bytes(IP() / UDP())))
    out = tmp_path / "out.pcap"
    one_error_line(cli(command, path, out), f"link type {linktype}", name, "not Ethernet")
    assert not out.exists()


def test_pcapng_second_interface_of_other_link_type(tmp_path):
    """Link type is per interface in pcapng: the first record on the cooked interface is
    the error, the Ethernet records before it are not."""
    path = tmp_path / "in.pcapng"
    path.write_bytes(shb() + idb(1) + idb(113) + epb(FRAMES[1], interface=0) +
                     epb(bytes(CookedLinux() / IP()), interface=1))
    reader = pcapio.CaptureReader(path)
    assert next(reader).frame == FRAMES[1]
    with pytest.raises(pcapio.PcapError, match=r"record 1: link type 113 \(LINUX_SLL\)"):
        next(reader)
    reader.close()


@pytest.mark.parametrize("writer", [wrpcap, wrpcapng], ids=["pcap", "pcapng"])
def test_scapy_cooked_capture_refused_either_format(tmp_path, writer):
    path = tmp_path / "cooked.cap"
    writer(str(path), [CookedLinux() / IP() / UDP()])
    one_error_line(cli("tx", path, tmp_path / "o.pcap"), "link type 113", "not Ethernet")


def _cuts(data: bytes, last: int):
    """Cut points inside the last block (``last`` bytes long): header, body, trailer."""
    end = len(data)
    return sorted({end - 1, end - 3, end - 4, end - 5, end - last // 2, end - last + 1,
                   end - last + 4, end - last + 7})


@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_truncated_capture_is_refused(tmp_path, fmt):
    """A capture cut anywhere inside its last record is an error naming the record, never a
    capture one frame shorter; cut at a record boundary it is a valid shorter capture."""
    path = tmp_path / f"full.{fmt}"
    if fmt == "pcapng":
        last = epb(FRAMES[3], 5)
        data = shb() + idb() + epb(FRAMES[2], 4) + last
        last = len(last)
    else:
        pcapio.write_frames(path, FRAMES[2:])
        data = path.read_bytes()
        last = 16 + len(FRAMES[3])
    for cut in _cuts(data, last):
        path.write_bytes(data[:cut])
        with pytest.raises(pcapio.PcapError, match="runs past the end of the file"):
            pcapio.read_frames(path)
    path.write_bytes(data[:len(data) - last])
    assert pcapio.read_frames(path) == [FRAMES[2]]
    path.write_bytes(data[:-2])
    out = tmp_path / "out.pcap"
    for command in ("tx", "rx"):
        one_error_line(cli(command, path, out), "record 1", "truncated")
        assert not out.exists()


def test_pcapng_snaplen_cut_and_bad_blocks_are_refused(tmp_path):
    path = tmp_path / "x.pcapng"
    path.write_bytes(shb() + idb(snaplen=64) + epb(FRAMES[3][:64], wirelen=len(FRAMES[3])))
    with pytest.raises(pcapio.PcapError, match="cut to 64 of 1454 bytes by the capture's snap"):
        pcapio.read_frames(path)
    path.write_bytes(shb() + idb() + epb(FRAMES[1], interface=3))
    with pytest.raises(pcapio.PcapError, match="names interface 3"):
        pcapio.read_frames(path)
    bad = bytearray(epb(FRAMES[1]))
    bad[-4:] = struct.pack("<I", 4)         # trailing length disagrees with the leading one
    path.write_bytes(shb() + idb() + bytes(bad) + epb(FRAMES[2]))
    with pytest.raises(pcapio.PcapError, match="malformed block"):
        pcapio.read_frames(path)
    path.write_bytes(b"\x0a\x0d\x0d\x0a\x1c\x00")
    one_error_line(cli("rx", path, tmp_path / "o.pcap"), "section header")


def test_pcap_nanosecond_in_nanosecond_out(tmp_path):
    src = tmp_path / "ns.pcap"
    pcapio.write(src, [(5_000_000_007, FRAMES[1]), (5_000_000_009, b"")], nanosecond=True)
    with pcapio.CaptureReader(src) as reader:
        assert reader.format == "pcap" and reader.nanosecond
    r = cli("tx", src, tmp_path / "o.pcap")
    assert r.returncode == 0, r.stderr
    assert list(pcapio.read(tmp_path / "o.pcap")) == [(5_000_000_007, FRAMES[1]),
                                                      (5_000_000_009, b"")]


def test_zero_length_records_pass_through_with_their_times(tmp_path):
    """Zero-length capture records leave ``tx`` and ``rx`` unchanged, in place, with their
    times (there is no beat to carry them through the RTL; the model passes them too)."""
    frames = [b"", FRAMES[2], b"", FRAMES[3], b""]
    times = [10_000_000 * (i + 1) for i in range(5)]
    src = tmp_path / "in.pcap"
    pcapio.write(src, zip(times, frames))
    for command, extra in (("tx", ()), ("rx", RSC_OFF)):
        out = tmp_path / f"{command}.pcap"
        r = cli(command, src, out, *extra)
        assert r.returncode == 0, r.stderr
        got = list(pcapio.read(out))
        assert [t for t, _ in got] == times
        assert [f for f, (_, g) in zip(frames, got) if not f] == [g for _, g in got if not g]
        assert [len(g) for _, g in got][::2] == [0, 0, 0]


def test_output_replaces_input_and_failed_run_leaves_nothing(tmp_path):
    path = tmp_path / "same.pcap"
    pcapio.write_frames(path, FRAMES)
    r = cli("rx", path, path)
    assert r.returncode == 0, r.stderr
    assert pcapio.read_frames(path) == FRAMES
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(path.read_bytes()[:-3])
    out = tmp_path / "out.pcap"
    out.write_bytes(b"old")
    one_error_line(cli("tx", cut, out), "truncated")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pcap", "out.pcap", "same.pcap"]


def test_write_frames_and_read_frames_still_work(tmp_path):
    path = tmp_path / "w.pcap"
    pcapio.write_frames(path, FRAMES, start_time=2.5)
    assert pcapio.read_frames(path) == FRAMES
    assert [t for t, _ in pcapio.read(path)] == [2_500_000_000 + i * 1000 for i in range(4)]
    with pytest.raises(pcapio.PcapError, match="more than snaplen"):
        pcapio.write_frames(path, [bytes(pcapio.SNAPLEN + 1)])
    with pytest.raises(pcapio.PcapError, match="cannot write"):
        pcapio.write_frames(tmp_path / "no" / "such.pcap", FRAMES)


JUMBO = 9000
COUNT = 3000        # 27 MB of frames


def _jumbo_records():
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) /
                  Raw(bytes(JUMBO - 42)))
    for i in range(COUNT):
        yield i * 1000, frame[:-4] + i.to_bytes(4, "big")


def test_streaming_in_bounded_memory(tmp_path):
    """Writing, reading, ``rx`` and ``tx`` (model engine) of a 27 MB capture hold a few
    frames at a time: Python's allocations peak far below the capture's size."""
    path = tmp_path / "big.pcap"
    limit = 8 << 20
    tracemalloc.start()
    try:
        assert pcapio.write(path, _jumbo_records()) == COUNT
        assert tracemalloc.get_traced_memory()[1] < limit
        assert path.stat().st_size > COUNT * JUMBO
        tracemalloc.reset_peak()
        total = sum(len(frame) for _, frame in pcapio.read(path))
        assert total == COUNT * JUMBO
        assert tracemalloc.get_traced_memory()[1] < limit
        runner = CliRunner()
        for command in ("rx", "tx"):
            tracemalloc.reset_peak()
            result = runner.invoke(cli_mod.main, [command, str(path),
                                                  str(tmp_path / f"{command}.pcap")])
            assert result.exit_code == 0, result.output
            assert tracemalloc.get_traced_memory()[1] < limit, command
    finally:
        tracemalloc.stop()
    assert (tmp_path / "rx.pcap").read_bytes() == path.read_bytes()
