"""``nicoffload regress --units``: every per-unit model-vs-RTL cross-check, at every width.

Each check builds its unit in Verilator (cached under build/) and runs its cocotb testbench
against the golden model with random traffic, idles and backpressure. A rich progress bar
while it runs and a summary table at the end; the return value says whether all passed.
The main job, ``nicoffload regress`` without ``--units``, is ``sim/regress_nic.py``.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nicoffload.hdl.axis import WIDTHS
from nicoffload.sim import runner, units


def run_units(frames: int | None = None, widths: list[int] | None = None, seed: int = 1,
        waves: bool = False, checks: list[str] | None = None, console: Console | None = None):
    console = console or Console()
    widths = widths or list(WIDTHS)
    names = checks or list(units.CHECKS)
    jobs = [(name, w) for name in names for w in widths]
    rows = []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("regress", total=len(jobs))
        for name, width in jobs:
            unit, module, default_frames = units.CHECKS[name]
            progress.update(task, description=f"{name} W={width}")
            count = frames or default_frames
            t0 = time.monotonic()
            try:
                result = runner.run(unit, {"width": width}, lambda: units.make(unit, width),
                                    module, seed=seed, waves=waves, by_sources=True,
                                    extra_env={"NICOFFLOAD_FRAMES": str(count),
                                               "NICOFFLOAD_SEED": str(seed)})
                status = "PASS" if result.ok else "FAIL"
                detail = ", ".join(result.failures) or str(result.test_dir / "sim.log")
                tests, failed = result.tests, result.failed
            except Exception as e:          # a build or simulator failure is a FAIL row
                status, detail, tests, failed = "ERROR", f"{type(e).__name__}: {e}", 0, 0
            rows.append((name, width, count, tests, failed, status,
                         time.monotonic() - t0, detail))
            progress.advance(task)

    table = Table(title="nicoffload regress --units: RTL units vs golden model")
    for col in ("check", "W", "frames/test", "tests", "failed", "result", "seconds"):
        table.add_column(col, justify="right" if col not in ("check", "result") else "left")
    for name, width, count, tests, failed, status, secs, _ in rows:
        style = "green" if status == "PASS" else "bold red"
        table.add_row(name, str(width), str(count), str(tests), str(failed),
                      f"[{style}]{status}[/]", f"{secs:.1f}")
    console.print(table)
    for name, width, *_, status, _, detail in rows:
        if status != "PASS":
            console.print(f"[red]{name} W={width}: {detail}[/]")
    ok = all(r[5] == "PASS" for r in rows)
    console.print(f"[bold {'green' if ok else 'red'}]{sum(r[5] == 'PASS' for r in rows)} "
                  f"passed, {sum(r[5] != 'PASS' for r in rows)} failed[/]")
    return ok
