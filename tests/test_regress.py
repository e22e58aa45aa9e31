"""``nicoffload regress``'s parts that run without a simulator: the bench's offload choice and
configuration changes, the progress-line reader, the summary table and the command's
errors. (The run itself is ``tests/test_nic_rtl.py``: the same bench, the same test.)"""

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from nicoffload.model.config import NdisOffloadParameters
from nicoffload.model.nic import Nic
from nicoffload.sim import cli as cli_mod
from nicoffload.sim import regress_nic
from nicoffload.tb import nic_bench


def test_offloads_from_the_environment(monkeypatch):
    monkeypatch.delenv("NICOFFLOAD_OFFLOADS", raising=False)
    assert nic_bench.offloads() == ("checksum", "lso", "rsc", "nvgre")
    monkeypatch.setenv("NICOFFLOAD_OFFLOADS", "rsc, lso")
    assert nic_bench.offloads() == ("rsc", "lso")
    monkeypatch.setenv("NICOFFLOAD_OFFLOADS", "lso,tso")
    with pytest.raises(ValueError, match="tso"):
        nic_bench.offloads()


def test_offloads_left_out_are_off_and_never_switched_on():
    """The keywords switch off what is not chosen; the changes touch only what is."""
    dp = Nic(keywords=nic_bench.off_keywords(("rsc",))).datapath
    assert dp.rsc_ipv4 and dp.rsc_ipv6
    assert not (dp.lso_v1_ipv4 or dp.lso_v2_ipv4 or dp.lso_v2_ipv6)
    changes = nic_bench.changes(("rsc",))
    assert [name for name, _ in changes] == ["RSC off", "RSC on, checksum RX off"]
    assert all(set(fields) <= {"RscIPv4", "RscIPv6"} for _, fields in changes)
    assert len(nic_bench.changes(tuple(nic_bench.OFFLOADS))) == len(nic_bench.CHANGES)
    assert nic_bench.changes(("lso",), enabled=False) == []


def test_nvgre_is_bound_on_switched_off_and_on_again():
    """Chosen, the encapsulated packet task offload is on at bind and the changes switch it
    off and on; left out, it is off throughout and no change touches it."""
    assert Nic(keywords=nic_bench.off_keywords(tuple(nic_bench.OFFLOADS))).datapath.encap
    nic = Nic(keywords=nic_bench.off_keywords(("nvgre",)))
    changes = nic_bench.changes(("nvgre",))
    assert [name for name, _ in changes] == ["NVGRE off", "all on"]
    for name, fields in changes:
        nic.set_offload_parameters(NdisOffloadParameters(**fields))
        assert nic.datapath.encap == (name == "all on")
    assert not Nic(keywords=nic_bench.off_keywords(("lso",))).datapath.encap
    assert all("EncapsulatedPacketTaskOffload" not in fields
               for _, fields in nic_bench.changes(("checksum", "lso", "rsc")))


def test_progress_file_reads_whole_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    reader = regress_nic._ProgressFile(path)
    assert reader.poll() is None                        # not there yet
    path.write_text(json.dumps({"sent": 1}) + "\n" + '{"sent": 2')
    assert reader.poll() == {"sent": 1}                 # the half line waits
    with open(path, "a") as f:
        f.write("}\n")
    assert reader.poll() == {"sent": 2}


def _summary(tx_bad=0):
    path = {"frames_in": 10, "frames_out": 12, "bytes_in": 1000, "bytes_out": 1100,
            "cycles": 500, "bytes_per_cycle": 2.2, "mismatches": 0, "drops": {}}
    return {"width": 64, "seed": 1, "offloads": ["checksum", "lso", "rsc"],
            "phases": [{}] * 6, "counter_mismatches": 0,
            "tx": dict(path, mismatches=tx_bad, drops={"LSO_BAD_MSS": 2}),
            "rx": dict(path, checksum_failed_indicated={"IP": 0, "TCP": 1, "UDP": 0}),
            "rsc": {"scus": 3, "scus_of_2_or_more": 2, "coalesced_segments": 7}}


@pytest.mark.parametrize("bad, verdict", [(0, "PASS"), (1, "FAIL")])
def test_summary_table(bad, verdict):
    out = io.StringIO()
    Console(file=out, width=100).print(regress_nic.table(_summary(bad), not bad))
    text = out.getvalue()
    for word in ("frames in", "mismatches", "LSO_BAD_MSS", "bytes/cycle", "RSC SCUs",
                 "coalesced segs", "TCP 1", verdict):
        assert word in text


@pytest.mark.parametrize("args, word", [
    (["--units", "--offload", "lso"], "--units"),
    (["--units", "--out", "x"], "--units"),
    (["--offload", "tso"], "--offload"),
    (["--frames", "0"], "--frames"),
])
def test_regress_errors_are_one_line(args, word):
    result = CliRunner().invoke(cli_mod.main, ["regress", *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code in (1, 2) and len(lines) == 1, result.stderr
    assert lines[0].startswith("nicoffload: error: ") and word in lines[0]


def test_units_runs_the_per_unit_checks_with_their_options(monkeypatch):
    """``--units`` hands today's options to the per-unit checks; without it the NIC runs."""
    from nicoffload.sim import regress as regress_mod
    calls = []
    monkeypatch.setattr(regress_mod, "run_units", lambda **kw: calls.append(("units", kw)))
    monkeypatch.setattr(regress_nic, "run", lambda **kw: calls.append(("nic", kw)) or True)
    result = CliRunner().invoke(cli_mod.main, ["regress", "--units", "--width", "128",
                                               "--frames", "7", "--seed", "3"])
    assert result.exit_code == 1        # the stand-in says nothing passed
    assert calls[-1] == ("units", {"frames": 7, "widths": [128], "seed": 3, "waves": False})
    result = CliRunner().invoke(cli_mod.main, ["regress", "--offload", "rsc", "--no-changes"])
    assert result.exit_code == 0
    kind, kw = calls[-1]
    assert kind == "nic" and kw["widths"] == [64] and kw["frames"] == 1000
    assert kw["offloads"] == ("rsc",) and kw["changes"] is False
