"""Line rate as cycle counts in Verilator (``sim/bench.py``), and the ``bench`` command.

These count output bytes per clock cycle, not seconds: they hold on any machine. The figures
are the issues' targets (>= 0.95 of W/8 for 1500-byte frames, for 64 KB sends at MSS 1460 and
for 64 KB sends over NVGRE at MSS 1400, that one at W=512 only) at the narrowest and the
widest W; ``nicoffload bench`` prints the whole tables. The RX path with RSC is not line rate
yet (issue 9's 0.95 is not met): its test holds the bench's figures to be consistent and
every output to match the model, not to a target.
"""

import re
import subprocess
import sys

import pytest

from nicoffload.sim import bench


@pytest.mark.rtl
@pytest.mark.parametrize("unit", ["txcsum", "rxcsum"])
@pytest.mark.parametrize("width, size, least", [
    (64, 1500, 0.95), (512, 1500, 0.95),
    (64, 64, 0.99),             # minimum frames back to back: no idle cycle between frames
])
def test_checksum_units_keep_line_rate(unit, width, size, least):
    fraction = bench.rtl_fraction(unit, width, size, frames=8)
    assert least <= fraction <= 1.0, f"{unit} W={width} {size} B: {fraction:.3f} of W/8"


@pytest.mark.rtl
@pytest.mark.parametrize("width", [64, 512])
def test_tx_path_keeps_line_rate_on_large_sends(width):
    fraction = bench.lso_fraction(width, 65536, 1460)
    assert 0.95 <= fraction <= 1.0, f"TX path W={width}: {fraction:.3f} of W/8"


@pytest.mark.rtl
@pytest.mark.parametrize("width", [512])
def test_tx_path_keeps_line_rate_on_nvgre_large_sends(width):
    """LSOv2 over NVGRE, 64 KB sends at MSS 1400 (issue 10's figure), at the widest W (CI
    time; ``nicoffload bench --offload nvgre`` prints every W)."""
    fraction = bench.lso_fraction(width, 65536, 1400, encap=True)
    assert 0.95 <= fraction <= 1.0, f"TX path NVGRE W={width}: {fraction:.3f} of W/8"


@pytest.mark.rtl
def test_rx_path_rsc_bench_figures():
    """``nicoffload bench --offload rsc``'s run, small: 1500-byte segments of 8 flows (as many
    as the contexts: every flow coalesces) at W=64, on the build the RX path tests use. The
    RX path is not line rate with RSC (README "Line rate"), so this holds the figures to be
    measurements, not to a target: a fraction of W/8 in (0, 1.01], fewer bytes out than in,
    every output checked against the model, and the counts adding up to the segments."""
    segments, flows = 48, 8
    r = bench.rsc_figures(64, 1500, flows, segments=segments)
    assert r["segments"] == segments and r["in_bytes"] == segments * 1500
    for name in ("in_fraction", "out_fraction", "in_arrival_fraction"):
        assert 0 < r[name] <= 1.01, f"{name} {r[name]:.3f} of W/8"
    assert r["out_fraction"] < r["in_fraction"]     # SCUs carry one set of headers
    assert r["outputs"] == r["model_outputs"] > 0     # each one compared with the model's
    assert r["segments_out"] == segments            # none lost, none counted twice
    assert r["coalesced"] + r["alone"] == segments
    # round-robin over as many flows as contexts, one marker at the end: every flow's
    # segments make one SCU
    assert r["scus"] == flows and r["outputs"] == flows
    assert r["stats"]["CoalescedPkts"] == segments


def test_bench_command_prints_the_model_tables():
    r = subprocess.run([sys.executable, "-m", "nicoffload.sim.cli", "bench", "--model-only",
                        "--offload", "lso", "--size", "2048"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "LSO model throughput" in r.stdout
    row = next(line for line in r.stdout.splitlines() if "2048 B" in line)
    assert len(re.findall(r"\d+\.\d\d", row)) == 3         # one Gb/s figure per MSS
    assert "TX path" not in r.stdout                        # --model-only: no RTL run
