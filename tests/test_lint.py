"""Verilator's lint (``--lint-only -Wall``) on the Verilog of every unit at W=64.

Waived by flag, each for a reason that lies in how Amaranth writes Verilog, not in our design:

- WIDTHEXPAND, WIDTHTRUNC: Amaranth's arithmetic widens and truncates by its own rules
  (``a + b`` is one bit wider, ``.eq`` truncates or extends to the target) and writes the
  operands at their own widths; Verilog's implicit extension then does what Amaranth meant.
- UNUSEDSIGNAL: Amaranth declares a wire for every port of every component and every field
  of every ``data`` view, whether or not anything reads it.
- PROCASSINIT: Amaranth declares each register with its ``init`` value and assigns it in the
  clocked process; the declaration is the power-on value, the process holds the reset.
- DECLFILENAME: Amaranth writes all modules of a design into one file named after the top.

Every other warning is a finding, and no unit may have one. Amaranth writes a ``Switch``
whose cases leave values unassigned as a Verilog ``case`` without ``default``
(CASEINCOMPLETE): where that happens our RTL uses an ``If``/``Elif`` chain instead.
"""

import collections
import re
import subprocess

import pytest

from nicoffload.sim import runner, units

WIDTH = 64
WAIVED = ["WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "PROCASSINIT", "DECLFILENAME"]
#: Units whose findings are known and not fixed yet, with the issue that owns them (none).
KNOWN: dict[str, str] = {}
CLEAN = set(units.UNITS) - set(KNOWN)

_WARNING = re.compile(r"^%Warning-(\w+): [^:]+:(\d+):\d+: (.*)$")


def lint(unit: str, tmp_path) -> list[tuple[str, int, str]]:
    """(code, line, message) of every warning Verilator gives on ``unit``'s Verilog."""
    runner.verilator_env()
    vfile = tmp_path / f"{unit}.v"
    vfile.write_text(units.verilog_text(unit, WIDTH))
    proc = subprocess.run(
        ["verilator", "--lint-only", "-Wall", "-Wno-fatal",
         *[f"-Wno-{code}" for code in WAIVED], "--top-module", unit, vfile.name],
        cwd=tmp_path, capture_output=True, text=True)
    found = [(m[1], int(m[2]), m[3]) for m in map(_WARNING.match, proc.stderr.splitlines())
             if m]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("%Error")]
    assert proc.returncode == 0 and not errors, f"verilator failed on {unit}: {proc.stderr}"
    return found


def summary(found) -> str:
    counts = collections.Counter(code for code, _, _ in found)
    first = {}
    for code, line, message in found:
        first.setdefault(code, f"line {line}: {message}")
    return "; ".join(f"{code} x{n} (first: {first[code]})" for code, n in sorted(counts.items()))


@pytest.mark.parametrize("unit", sorted(units.UNITS))
def test_lint(unit, tmp_path):
    found = lint(unit, tmp_path)
    if unit in KNOWN and found:
        pytest.xfail(f"{KNOWN[unit]}: {summary(found)}")
    assert not found, f"{unit}: {summary(found)}"


# --- size: no function in hdl/ over 200 lines, no file over 1,000 ---------------------------

MAX_FUNCTION_LINES = 200
MAX_FILE_LINES = 1000
HDL = runner.ROOT / "hdl"


def _oversized(path):
    import ast

    text = path.read_text()
    found = []
    lines = len(text.splitlines())
    if lines > MAX_FILE_LINES:
        found.append(f"{path.name}: {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    return found


@pytest.mark.parametrize("path", sorted(HDL.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(HDL)))
def test_size(path):
    found = _oversized(path)
    assert not found, ", ".join(found)


def test_no_source_file_over_1000_lines():
    long = [f"{p.relative_to(runner.ROOT)}: {n}" for folder in ("hdl", "model", "tb", "sim",
                                                                "tests")
            for p in sorted((runner.ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, ", ".join(long)
