"""RxPath (hdl/rxpath.py) against model.checksum.rx_validate + model.rsc.RscEngine, in
Verilator: the tests of ``tb/tb_rsc.py`` (same traffic, recorder and scoreboard) driven
through ``s_axis_wire`` (no ``tuser``: the path's checksum stage makes the word) out of
``m_axis_rx``."""

from nicoffload.tb.tb_rsc import no_timer_long_runs, random_traffic  # noqa: F401
