"""``nicoffload regress --waves``: the NIC top built with tracing, a short run, and the
waveform file in the run folder, naming the top's ports.

Slow: the traced build of the top is a cache entry of its own (``build/sim/nic-width64-waves``)
and took 4 min 48 s on the shared 2-core machine (39 s of Verilog export, 4 min 9 s of
Verilator and g++), so it runs with the soaks (``make soak``)."""

import json
import os
import subprocess
import sys

import pytest

from nicoffload.sim import regress_nic

CLI = [sys.executable, "-m", "nicoffload.sim.cli"]

#: Ports of the top (DESIGN.md 2), one per interface, that the VCD's header must declare.
PORTS = ("s_axis_tx_tdata", "m_axis_wire_tdata", "m_axis_txc_tvalid", "s_axis_wire_tlast",
         "m_axis_rx_tuser", "s_axis_eoi_tvalid", "s_axil_awaddr")


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NICOFFLOAD_SOAK") != "1",
                    reason="the traced build of the top takes ~5 min; NICOFFLOAD_SOAK=1 runs it")
def test_regress_waves_writes_a_waveform_file(tmp_path):
    folder = tmp_path / "run"
    r = subprocess.run(CLI + ["regress", "--width", "64", "--frames", "12", "--waves",
                              "--out", str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    dump = folder / regress_nic.WAVES_FILE
    try:
        assert dump.is_file(), sorted(p.name for p in folder.iterdir())
        size = dump.stat().st_size
        assert size > 0
        with open(dump, "rb") as f:
            head = f.read(4 << 20).decode("ascii", "replace")
        assert head.startswith("$version") and "$enddefinitions" in head, \
            "no VCD header (or one cut short)"
        head = head[:head.index("$enddefinitions")]
        missing = [p for p in PORTS if f" {p} " not in head]
        assert not missing, f"ports not in the waveform file: {missing}"
        assert "waveforms" in r.stdout
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["tx"]["mismatches"] == 0 and summary["rx"]["mismatches"] == 0
    finally:
        dump.unlink(missing_ok=True)        # hundreds of MB
