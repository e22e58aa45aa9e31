"""Tests of ``nicoffload config`` (sim/config_cmd.py) through click and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nicoffload.sim import cli, config_cmd

NICOFFLOAD = Path(sys.executable).with_name("nicoffload")


def invoke(*args: str):
    return CliRunner().invoke(cli.main, ["config", *args])


def config_json(*args: str) -> dict:
    result = invoke("--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_table_output():
    result = invoke()
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "NDIS_OFFLOAD revision 3, 156 bytes" in text
    assert "*LsoV2IPv4" in text and "DisableTaskOffload" in text
    assert "OID_OFFLOAD_ENCAPSULATION IPv4: on" in text
    assert "on (262144, 2)" in text and "on (65535, 2)" in text
    assert result.stderr == ""


@pytest.mark.parametrize("revision,size", [(1, 112), (2, 144), (3, 156)])
def test_json_header_follows_the_revision(revision, size):
    report = config_json("--revision", str(revision))
    current = report["OID_TCP_OFFLOAD_CURRENT_CONFIG"]
    assert current["Header"] == {"Type": 0xA7, "Revision": revision, "Size": size}
    assert ("Rsc" in current) == (revision == 3)
    assert ("IPsecV2" in current) == (revision >= 2)
    assert report["OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES"]["Header"]["Size"] == size
    result = invoke("--revision", str(revision))
    assert f"NDIS_OFFLOAD revision {revision}, {size} bytes" in result.stdout


def test_json_reflects_keywords_and_bind():
    report = config_json("--keyword", "*LsoV2IPv4=0", "--keyword", "*TCPUDPChecksumOffloadIPv6=1",
                         "--keyword", "*udpchecksumoffloadipv6=3")
    assert report["Keywords"]["*LsoV2IPv4"] == 0
    assert report["Keywords"]["*TCPChecksumOffloadIPv6"] == 1
    assert report["Keywords"]["*UDPChecksumOffloadIPv6"] == 3
    current = report["OID_TCP_OFFLOAD_CURRENT_CONFIG"]
    assert current["LsoV2"]["IPv4"] == {"Encapsulation": 0, "MaxOffLoadSize": 0,
                                        "MinSegmentCount": 0}
    assert current["LsoV2"]["IPv6"]["MaxOffLoadSize"] == 262144
    assert current["LsoV1"]["IPv4"]["MaxOffLoadSize"] == 65535
    assert current["Checksum"]["IPv6Receive"]["TcpChecksum"] == 0
    assert current["Checksum"]["IPv6Receive"]["UdpChecksum"] == 1
    assert report["OID_OFFLOAD_ENCAPSULATION"]["IPv4"] == {"Enabled": 1, "EncapsulationType": 0x16,
                                                           "HeaderSize": 14}
    # bind: the keywords, then OID_OFFLOAD_ENCAPSULATION, then OID_TCP_OFFLOAD_PARAMETERS
    # switching NVGRE on (its keyword defaults to 1).
    assert [i["Oid"] for i in report["StatusIndications"]] == ["OID_OFFLOAD_ENCAPSULATION",
                                                               "OID_TCP_OFFLOAD_PARAMETERS"]
    assert report["Datapath"]["lso_v2_ipv4"] is False
    assert report["Datapath"]["rx_tcp_ipv6"] is False and report["Datapath"]["tx_tcp_ipv6"]


def test_a_build_without_nvgre_reports_it_not_supported(monkeypatch):
    from nicoffload.model import config as cfg
    monkeypatch.setattr(cfg.adapter, "BUILT_OFFLOADS", cfg.BUILT_OFFLOADS - {"encap"})
    report = config_json("--keyword", "*EncapsulatedPacketTaskOffload=1")
    assert report["Keywords"]["*EncapsulatedPacketTaskOffload"] == 1
    zero = {"TransmitChecksumOffloadSupported": 0, "ReceiveChecksumOffloadSupported": 0,
            "LsoV2Supported": 0, "RssSupported": 0, "VmqSupported": 0,
            "MaxHeaderSizeSupported": 0}
    for oid in ("OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES", "OID_TCP_OFFLOAD_CURRENT_CONFIG"):
        assert report[oid]["EncapsulatedPacketTaskOffloadGre"] == zero
    assert report["Datapath"]["encap"] is False
    text = invoke().stdout
    assert "Not built in the datapath, reported not supported: encap (NVGRE)" in \
        " ".join(text.split())
    row = next(line for line in text.splitlines() if "NVGRE by outer IP" in line)
    assert row.count("not supported") == 2


def test_rsc_not_built_is_reported_not_supported(monkeypatch):
    from nicoffload.model import config as cfg
    monkeypatch.setattr(cfg.adapter, "BUILT_OFFLOADS",
                        cfg.BUILT_OFFLOADS - {"rsc_ipv4", "rsc_ipv6"})
    report = config_json()
    assert report["Keywords"]["*RscIPv4"] == report["Keywords"]["*RscIPv6"] == 1
    for oid in ("OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES", "OID_TCP_OFFLOAD_CURRENT_CONFIG"):
        assert report[oid]["Rsc"] == {"IPv4": {"Enabled": 0}, "IPv6": {"Enabled": 0}}
    assert report["Datapath"]["rsc_ipv4"] is False and report["Datapath"]["rsc_ipv6"] is False
    text = invoke().stdout
    row = next(line for line in text.splitlines() if line.startswith("│ RSC"))
    assert row.count("not supported") == 2
    assert "Not built in the datapath, reported not supported: rsc_ipv4, rsc_ipv6" in \
        " ".join(text.split())


def test_rsc_built_is_reported_on():
    text = invoke().stdout
    row = next(line for line in text.splitlines() if line.startswith("│ RSC"))
    assert "not supported" not in row and row.count(" on ") == 2


def test_disable_task_offload():
    report = config_json("--keyword", "DisableTaskOffload=1")
    assert report["StatusIndications"] == []
    assert not any(v for v in report["Datapath"].values() if isinstance(v, bool))
    assert report["OID_TCP_OFFLOAD_CURRENT_CONFIG"]["LsoV1"]["IPv4"]["Encapsulation"] == 0
    assert "DisableTaskOffload=1" in invoke("--keyword", "DisableTaskOffload=1").stdout


@pytest.mark.parametrize("entry,needles", [
    ("*LsoV2IPv4=2", ["*LsoV2IPv4", "0 (Disabled)", "1 (Enabled)"]),
    ("*TCPChecksumOffloadIPv4=4", ["*TCPChecksumOffloadIPv4", "3 (Rx & Tx Enabled)"]),
    ("*TCPUDPChecksumOffloadIPv6=-1", ["*TCPUDPChecksumOffloadIPv6"]),
    ("*IPsecOffloadV2=9", ["*IPsecOffloadV2", "2 (ESP Enabled)"]),
    ("DisableTaskOffload=2", ["DisableTaskOffload"]),
    ("*RscIPv4=yes", ["*RscIPv4", "not an integer"]),
    ("LsoV2IPv4=0", ["LsoV2IPv4", "*LsoV2IPv4"]),
    ("*NoSuchKeyword=1", ["*NoSuchKeyword", "unknown keyword"]),
    ("*LsoV2IPv4", ["NAME=VALUE"]),
])
def test_bad_keywords_exit_non_zero_with_one_line_on_stderr(entry, needles):
    result = invoke("--keyword", "*RscIPv6=0", "--keyword", entry)
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nicoffload: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_json_errors_too():
    result = invoke("--json", "--keyword", "*LsoV1IPv4=3")
    assert result.exit_code != 0 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1


def test_run_raises_cli_error_directly():
    with pytest.raises(cli.CliError, match=r"\*LsoV1IPv4"):
        config_cmd.run(["*LsoV1IPv4=5"])
    with pytest.raises(cli.CliError, match="revision"):
        config_cmd.run([], revision=4)


def test_report_is_json_serializable_for_every_revision():
    from nicoffload.model import config as cfg
    adapter = cfg.bind([])
    for revision in (1, 2, 3):
        json.dumps(config_cmd.report(adapter, revision))


@pytest.mark.skipif(not NICOFFLOAD.exists(), reason="console script not installed in this env")
def test_real_process_exit_codes_and_stderr():
    env = {**os.environ, "COLUMNS": "100"}
    ok = subprocess.run([str(NICOFFLOAD), "config", "--json", "--keyword", "*RscIPv4=0"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Keywords"]["*RscIPv4"] == 0
    bad = subprocess.run([str(NICOFFLOAD), "config", "--keyword", "*RscIPv4=7"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "*RscIPv4" in bad.stderr
