"""``nicoffload verilog`` and ``nicoffload synth``: Verilog for FPGA flows, and their errors."""

import json
import os
import re
import subprocess
import sys

import pytest

from nicoffload.model.rsc import DEFAULT_MAX_SCU_BYTES
from nicoffload.sim import synth, units

CLI = [sys.executable, "-m", "nicoffload.sim.cli"]


def cli(*args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("unit", sorted(units.UNITS))
def test_verilog_has_the_flat_axi_ports(unit, tmp_path):
    out = tmp_path / f"{unit}.v"
    r = cli("verilog", "--unit", unit, "--width", 128, "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert re.search(rf"^module {unit}\(", text, re.M)
    # Vivado/Quartus and cocotbext-axi bind by prefix: every stream has the ARM names.
    ports = set(re.findall(r"^\s*(?:input|output)\s+(?:\[[^\]]*\]\s*)?(\w+);", text, re.M))
    assert {"clk", "rst"} <= ports
    if unit == "csr":       # the register block: AXI4-Lite, no streams
        assert {f"s_axil_{n}" for n in ("awaddr", "awvalid", "awready", "wdata", "wstrb",
                                        "wvalid", "wready", "bresp", "bvalid", "bready",
                                        "araddr", "arvalid", "arready", "rdata", "rresp",
                                        "rvalid", "rready")} <= ports
        return
    streams = {p.rsplit("_t", 1)[0] for p in ports if re.search(r"_t(valid|ready)$", p)}
    assert streams
    for s in streams:
        assert {f"{s}_tvalid", f"{s}_tready", f"{s}_tdata"} <= ports, s
        if s.startswith(("s_axis", "m_axis")) and f"{s}_tkeep" in ports:
            assert f"{s}_tlast" in ports
    data = re.search(r"input\s+\[(\d+):0\]\s+s_axis\w*_tdata;", text)
    assert data and int(data.group(1)) == 127


def test_verilog_into_a_folder_writes_the_file_and_its_filelist(tmp_path):
    out = tmp_path / "rtl"
    r = cli("verilog", "--unit", "csr", out)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^module csr\(", (out / "csr.v").read_text(), re.M)
    assert (out / "csr.f").read_text() == "csr.v\n"
    r = cli("verilog", "--unit", "csr", "-o", tmp_path / "x.v", out)
    assert r.returncode != 0 and "not both" in r.stderr


@pytest.mark.parametrize("args, message", [
    (("verilog", "--unit", "nosuch"), "unknown unit"),
    (("verilog", "--unit", "onesum", "-o", "/nonexistent/dir/x.v"), "cannot write"),
    (("synth", "--unit", "nosuch"), "unknown unit"),
    (("verilog", "--unit", "lso.sequencer"), "unknown unit"),     # parts are for synth only
    # The RSC engine's default SCU buffer is more block RAM than the ECP5-85k has: refused
    # before Yosys runs, with the option that makes it fit.
    (("synth", "--unit", "nic"), "--rsc-scu-bytes 16384"),
    (("synth", "--unit", "rxpath", "--width", "512"), "more than the ECP5-85k's 208"),
    (("synth", "--unit", "parse", "--rsc-scu-bytes", "4096"), "holds no RSC engine"),
    (("synth", "--unit", "onesum", "--seeds", "1,x"), "comma-separated list of integers"),
    (("synth", "--unit", "onesum", "--seeds", "2,1,2"), "give each seed once"),
    (("synth", "--unit", "onesum", "--pnr-timeout", "0"), "--pnr-timeout"),
])
def test_hdl_errors_are_one_line(args, message):
    r = cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_synth_reports_counts_and_fmax(tmp_path):
    """Counts and the median Fmax over three placement seeds, each seed's figure printed and
    in the JSON; the critical path is the median run's."""
    # A build directory under /tmp, as in a fresh clone there: yowasp's sandbox once could
    # not open the Verilog by its absolute path.
    out = tmp_path / "onesum.json"
    r = cli("synth", "--unit", "onesum", "--width", 64, "--seeds", "3,1,2", "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr
    m = re.search(r"onesum W=64: (\d+) LUT4, .* (\d+) FF .*Fmax ([\d.]+) MHz", r.stdout)
    assert m, r.stdout
    luts, ffs, fmax = int(m[1]), int(m[2]), float(m[3])
    assert luts > 100 and ffs > 64 and fmax > 10     # a real netlist, placed and timed
    figures = json.loads(out.read_text())
    by_seed = figures["fmax_by_seed"]
    assert sorted(by_seed) == ["1", "2", "3"] and all(by_seed.values())
    assert fmax == figures["fmax_mhz"] == sorted(by_seed.values())[1] == by_seed[str(figures["seed"])]
    assert "Fmax by seed: 3: " in r.stdout
    # The unit's nets with the most loads, most first, each named and with its driver.
    fanout = figures["high_fanout"]
    assert fanout and all(n["net"].startswith("unit.") and n["driver"] for n in fanout)
    assert [n["loads"] for n in fanout] == sorted((n["loads"] for n in fanout), reverse=True)
    assert "most loads: unit." in r.stdout
    assert (tmp_path / "synth" / "onesum-w64" / "pnr-seed2.log").exists()


def test_synth_stops_a_seed_at_its_time_limit(tmp_path):
    """``--pnr-timeout``: a seed whose place and route runs past the limit is stopped and has
    no figure (not the placer's estimate its log may hold); the counts still come, exit 0."""
    out = tmp_path / "onesum.json"
    r = cli("synth", "--unit", "onesum", "--seeds", "1,2", "--pnr-timeout", 1, "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "seed 1: nextpnr stopped after 1 s" in r.stdout, r.stdout
    assert "2: not routed in time" in r.stdout and "Fmax ? MHz" in r.stdout
    figures = json.loads(out.read_text())
    assert figures["unrouted_seeds"] == [1, 2] and figures["fmax_mhz"] is None
    assert figures["fmax_by_seed"] == {"1": None, "2": None} and figures["lut4"] > 100


@pytest.mark.parametrize("by_seed, median", [
    ({1: 80.0}, 1), ({1: 80.0, 2: 70.0, 3: 90.0}, 1), ({4: 70.0, 5: 90.0}, 4),
    ({1: 90.0, 2: None, 3: 60.0}, 3), ({1: 50.0, 2: 50.0, 3: 70.0}, 2)])
def test_the_median_seed_is_one_runs(by_seed, median):
    assert synth.median_seed(by_seed) == median


def test_synth_places_a_part_and_names_its_critical_path(tmp_path):
    """``--unit lso.assembler``: one part of a unit, placed on its own; the JSON names where
    the critical path starts and ends and splits it into logic and routing."""
    out = tmp_path / "part.json"
    r = cli("synth", "--unit", "lso.assembler", "--width", 64, "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=900)
    assert r.returncode == 0, r.stderr
    figures = json.loads(out.read_text())
    assert figures["unit"] == "lso.assembler" and figures["lut4"] > 100
    detail = figures["critical_path_detail"]
    assert detail["from"] and detail["to"] and detail["logic_ns"] > 0
    assert detail["logic_ns"] + detail["routing_ns"] == pytest.approx(1000 / figures["fmax_mhz"],
                                                                      abs=0.2)


@pytest.mark.parametrize("unit, attribute", [("rsc", "engine_kw"), ("rxpath", "engine_kw"),
                                             ("nic", "rx_kw")])
def test_synth_sizes_the_rsc_engine_it_is_told(unit, attribute):
    def kw(**size):
        top = units.make(unit, 64, **size)
        top._MustUse__used = top._unit._MustUse__used = True    # built, not elaborated
        return getattr(top._unit, attribute)
    assert kw(rsc_scu_bytes=16384)["max_scu_bytes"] == 16384
    assert kw().get("max_scu_bytes", DEFAULT_MAX_SCU_BYTES) > 65535
    synth.check_rsc_buffer(unit, 64, 16384)             # fits: no error


@pytest.mark.parametrize("part", sorted(p for p in units.PARTS
                                        if p.startswith("rsc.") and p != "rsc.engine"))
def test_rsc_parts_build_in_the_synth_harness(part):
    """The RSC engine's parts (``--unit rsc.sequencer`` ...) build inside the synthesis
    harness (RTLIL only, no Yosys): their stream, array and struct ports are flattened."""
    from amaranth.back import rtlil
    from nicoffload.sim.synth import Harness
    harness = Harness(units.make(part, 64, parts=True))
    text = rtlil.convert(harness, name=part.replace(".", "_"),
                         ports=[harness.sin, harness.sout], emit_src=False)
    assert "module" in text and harness.overhead_ff > 0


def _rtlil(modules):
    """A stand-in RTLIL text: one module per (name, bytes of body)."""
    return "".join(f"module \\{name}\n{'x' * size}\nend\n" for name, size in modules)


def test_partitions_split_what_is_over_a_quarter_and_keep_what_is_over_1_32():
    """The partitioned mapping's pieces: going down from the unit, a module (with everything
    below it) over a quarter of the design is split into its children, one from 1/32 to 1/4
    is a piece, a smaller one stays with the module above."""
    text = _rtlil([("u", 100), ("u.unit", 100), ("u.unit.unit", 400),
                   ("u.unit.unit.tx", 400), ("u.unit.unit.tx.parser", 1200),
                   ("u.unit.unit.tx.parser.walk", 200), ("u.unit.unit.tx.fifo", 100),
                   ("u.unit.unit.rx", 100), ("u.unit.unit.rx.rsc", 400),
                   ("u.unit.unit.rx.rsc.ingress", 1000), ("u.unit.unit.rx.rsc.mover", 1000),
                   ("u.unit.unit.rx.rsc.mover.copier", 500), ("u.unit.unit.rx.sums", 600)])
    assert synth.partitions(text, "u") == [
        "u.unit.unit.tx.parser", "u.unit.unit.rx.sums", "u.unit.unit.rx.rsc.ingress",
        "u.unit.unit.rx.rsc.mover"]
    assert synth.partitions(_rtlil([("v", 10), ("v.unit", 10), ("v.unit.unit", 10)]), "v") == []


def test_synth_maps_a_unit_in_partitions(tmp_path):
    """``--mapping partitioned`` (the NIC's, whose flat mapping ABC cannot take): the pieces
    mapped each in one piece, the netlist flattened, placed and routed; each piece's share
    printed and in the JSON."""
    out = tmp_path / "onesum.json"
    r = cli("synth", "--unit", "onesum", "--mapping", "partitioned", "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "partitioned mapping" in r.stdout, r.stdout
    figures = json.loads(out.read_text())
    assert figures["mapping"] == "partitioned" and figures["fmax_mhz"] > 10
    pieces = figures["units"]
    assert pieces and all(share["lut4"] > 0 for share in pieces.values())
    assert sum(share["lut4"] for share in pieces.values()) < figures["lut4"]


def _cell(kind, **ports):
    """One mapped cell of a stand-in Yosys netlist: ``ports`` are (direction, bits)."""
    return {"type": kind, "port_directions": {p: d for p, (d, _) in ports.items()},
            "connections": {p: bits for p, (_, bits) in ports.items()}}


def test_logic_levels_count_the_nets_through_the_fabric():
    """A register to a register through two LUTs, a PFUMX beside the second and an adder's
    carry chain: four nets through the routing (into each LUT, the adder and the register);
    the slice's mux and the carry add none; a LUT RAM's read is a level, its write an end."""
    i, o = "input", "output"
    cells = {
        "a": _cell("TRELLIS_FF", CLK=(i, [1]), DI=(i, [9]), Q=(o, [2])),
        "l1": _cell("LUT4", A=(i, [2]), B=(i, ["0"]), C=(i, ["0"]), D=(i, ["0"]), Z=(o, [3])),
        "l2": _cell("LUT4", A=(i, [3]), B=(i, [2]), C=(i, ["0"]), D=(i, ["0"]), Z=(o, [4])),
        "l3": _cell("LUT4", A=(i, [2]), B=(i, ["0"]), C=(i, ["0"]), D=(i, ["0"]), Z=(o, [5])),
        "mux": _cell("PFUMX", ALUT=(i, [4]), BLUT=(i, [5]), C0=(i, [2]), Z=(o, [6])),
        "add0": _cell("CCU2C", A0=(i, [2]), CIN=(i, ["0"]), COUT=(o, [7]), S0=(o, [10])),
        "add1": _cell("CCU2C", A0=(i, [6]), CIN=(i, [7]), COUT=(o, [11]), S0=(o, [8])),
        "b": _cell("TRELLIS_FF", CLK=(i, [1]), DI=(i, [8]), Q=(o, [9])),
        "ram": _cell("TRELLIS_DPR16X4", RAD=(i, [9]), WAD=(i, [2]), DI=(i, [2]),
                     WRE=(i, [2]), WCK=(i, [1]), DO=(o, [12])),
        "c": _cell("TRELLIS_FF", CLK=(i, [1]), DI=(i, [12]), Q=(o, [13])),
    }
    netlist = {"modules": {"top": {"cells": cells, "netnames": {
        "clk": {"bits": [1]}, "unit.a": {"bits": [2]}, "unit.b": {"bits": [9]},
        "unit.c": {"bits": [13]}, "unit.mid": {"bits": [3], "hide_name": 1}}}}}
    levels = synth.logic_levels(netlist, "top")
    deepest = {d["register"]: (d["levels"], d["from"]) for d in levels["deepest"]}
    assert deepest["unit.b"] == (4, "unit.a")      # a -> l1 -> l2 -> mux -> add1 -> b
    assert deepest["unit.c"] == (2, "unit.b")      # b -> the RAM's read -> c
    assert deepest["unit.a"] == (1, "unit.b")
    # Ends: a, b, c's DI; the RAM's WAD, DI and WRE (one net each from a).
    assert levels["histogram"] == {"1": 4, "2": 1, "4": 1} and levels["over_limit"] == 0


def test_synth_without_place_and_route(tmp_path):
    """``--no-place``: Yosys' counts and the logic levels, no Fmax and no nextpnr run."""
    out = tmp_path / "onesum.json"
    r = cli("synth", "--unit", "onesum", "--no-place", "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "not placed" in r.stdout and "logic levels (path ends at each): 1: " in r.stdout
    figures = json.loads(out.read_text())
    assert figures["fmax_mhz"] is None and figures["fmax_by_seed"] == {}
    levels = figures["logic_levels"]
    assert sum(levels["histogram"].values()) >= figures["ff"]
    assert levels["deepest"][0]["register"].startswith("unit.")
    assert not list((tmp_path / "synth" / "onesum-w64").glob("pnr-*.log"))


def test_synth_script_gives_abc9_the_wire_delay():
    """Yosys' own flow at its own delay; another delay re-runs synth_ecp5's mapping of LUTs
    with ``abc9 -W`` between the steps before and after it, the netlist written at the end."""
    assert synth._synth_ecp5("u", " -json n.json", 300) == "synth_ecp5 -top u -json n.json"
    script = synth._synth_ecp5("u", " -json n.json", 3000)
    steps = [step.strip() for step in script.split(";")]
    assert steps[0] == "synth_ecp5 -top u -run :map_luts"
    assert "abc9 -W 3000" in steps
    assert steps[-1] == "synth_ecp5 -top u -run map_cells: -json n.json"
    assert synth._synth_ecp5("u", " -noflatten", 3000).endswith(
        "synth_ecp5 -top u -noflatten -run map_cells:")


def test_synth_with_another_wire_delay_builds_apart(tmp_path):
    out = tmp_path / "onesum.json"
    r = cli("synth", "--unit", "onesum", "--no-place", "--wire-delay", "3000", "--json", out,
            env={**os.environ, "NICOFFLOAD_BUILD": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr
    figures = json.loads(out.read_text())
    assert figures["wire_delay_ps"] == 3000 and figures["lut4"] > 0
    assert (tmp_path / "synth" / "onesum-w64-wire3000" / "onesum.json").exists()
    assert not (tmp_path / "synth" / "onesum-w64").exists()
