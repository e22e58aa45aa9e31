"""Test ordering for ``make test``'s two workers."""


def pytest_collection_modifyitems(items):
    """The RTL tests first, in their collected order, then the rest: each RTL test builds and
    simulates for minutes, and run last (the alphabetical order put the TX path, RX path and
    RSC benches there) they left one worker running them alone at the end of the suite
    (stop 14's fresh-clone run). The model tests, seconds each, now fill the end."""
    items.sort(key=lambda item: item.get_closest_marker("rtl") is None)


# --- what the cocotb runs cross-checked, per width (the CI log's evidence) ---------------

_STARTED = []


def pytest_sessionstart(session):
    import time
    _STARTED.append(time.time())


def pytest_terminal_summary(terminalreporter):
    """Sum the ``NICOFFLOAD_TALLY`` lines (``tb.common.tally``) of every simulation this
    session ran and print, per width, the input frames the scoreboards compared with the
    model, how many were NVGRE, and the large sends (NVGRE ones apart)."""
    import json
    from collections import Counter, defaultdict

    from nicoffload.sim.runner import BUILD_ROOT
    if not _STARTED:
        return
    per_width, units = defaultdict(Counter), defaultdict(set)
    for log in (BUILD_ROOT / "sim").glob("*/run-*/sim.log"):
        if log.stat().st_mtime < _STARTED[0]:
            continue
        for line in log.read_text(errors="replace").splitlines():
            at = line.find("NICOFFLOAD_TALLY ")
            if at < 0:
                continue
            tally = json.loads(line[at + len("NICOFFLOAD_TALLY "):])
            width = tally.pop("width", 0)
            units[width].add(tally.pop("unit", "?"))
            per_width[width].update({k: v for k, v in tally.items() if isinstance(v, int)})
    if not per_width:
        return
    write = terminalreporter.write_line
    terminalreporter.section("cross-checked against the model, per width")
    write(f"{'W':>4} {'frames':>8} {'NVGRE':>7} {'sends':>7} {'NVGRE sends':>12}  units")
    for width in sorted(per_width):
        c = per_width[width]
        write(f"{width:>4} {c['frames']:>8} {c['nvgre']:>7} {c['sends']:>7} "
              f"{c['nvgre_sends']:>12}  {', '.join(sorted(units[width]))}")
