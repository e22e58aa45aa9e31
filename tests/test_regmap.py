"""model/regmap.py: the map is well formed, config -> CSR values -> config round-trips, the
bus view answers as documented, and the generated Markdown page and C header say the same
as the map (the header is compiled and its values checked by a C program when a compiler
is at hand)."""

import dataclasses
import re
import shutil
import subprocess
import sys

import pytest

from nicoffload.model import regmap as rm
from nicoffload.model.config import (BIND_ENCAPSULATION, OFFLOAD_SWITCHES, Adapter,
                                     EncapsulationIP, NdisOffloadEncapsulation,
                                     NdisOffloadParameters, NicCapabilities, bind)
from nicoffload.model.config.constants import NDIS_OFFLOAD_SET_OFF
from nicoffload.model.nbl import TxStatus


def test_map_is_well_formed():
    regs = rm.REGISTERS.registers
    assert [r.address for r in regs] == sorted({r.address for r in regs})
    assert all(r.address % 4 == 0 and r.address < 1 << rm.ADDRESS_BITS for r in regs)
    assert rm.REGISTERS.at(0x000).name == "ID" and rm.REGISTERS.at(0x003).name == "ID"
    assert rm.REGISTERS.at(0x014) is None
    # Every TX drop reason has its counter; every counter has an LO and an HI word.
    names = {c.name for c in rm.COUNTERS}
    assert {f"TX_DROP_{s.name}" for s in TxStatus if s} <= names
    assert {"RSC_COALESCED_PKTS", "RSC_COALESCED_OCTETS", "RSC_COALESCE_EVENTS",
            "RSC_ABORTS"} <= names
    for c in rm.COUNTERS:
        assert rm.REGISTERS.at(c.address).name == f"{c.name}_LO"
        assert rm.REGISTERS.at(c.address + 4).name == f"{c.name}_HI"
    # The enables have one bit per offload switch, in the same places as the capabilities.
    assert [f.name for f in rm.REGISTERS["OFFLOAD_EN"].fields] == list(OFFLOAD_SWITCHES)
    def places(name):
        return [(f.name, f.offset, f.width) for f in rm.REGISTERS[name].fields]
    assert places("OFFLOAD_EN") == places("CAP_OFFLOADS")


def test_bad_map_is_refused():
    with pytest.raises(ValueError, match="unique"):
        rm.RegisterMap([rm.REGISTERS["ID"], rm.REGISTERS["ID"]], [])
    clash = rm.Register("X", 0x10, rm.RW, (rm.Field("a", 0, 8), rm.Field("b", 4, 8)), "config")
    with pytest.raises(ValueError, match="overlaps"):
        rm.RegisterMap([clash], [])


def test_reset_is_the_bound_default_config():
    view = rm.RegisterView()
    decoded = view.decode(view.reset_values())
    assert decoded.datapath == bind().datapath()
    # Every receive check on, NVGRE (encap) included: bind switches it on.
    assert decoded.rx_enables == dict.fromkeys(decoded.rx_enables, True)
    assert decoded.rsc_idle_timeout is None
    assert decoded.lso_limits.id_mode == "ndis"
    assert decoded.encapsulation["IPv4"] == {"EncapsulationType": 0x16, "Enabled": 1,
                                             "HeaderSize": 14}


@pytest.mark.parametrize("keywords", [
    (), ("*LsoV2IPv6=0",), ("*TCPUDPChecksumOffloadIPv4=1", "*RscIPv6=0"),
    ("DisableTaskOffload=1",), ("*IPChecksumOffloadIPv4=2", "*UDPChecksumOffloadIPv6=0"),
])
def test_config_round_trips(keywords):
    adapter = bind(keywords)
    view = rm.RegisterView()
    values = view.adapter_values(adapter, id_mode="linux", rsc_idle_timeout=1234)
    decoded = view.decode(values)
    assert decoded.datapath == adapter.datapath()
    assert decoded.lso_limits.id_mode == "linux" and decoded.rsc_idle_timeout == 1234
    en = rm.REGISTERS["OFFLOAD_EN"].unpack(values["OFFLOAD_EN"])
    assert en == {n: int(getattr(adapter.datapath(), n)) for n in OFFLOAD_SWITCHES}


def test_encapsulation_off_clears_enabled_and_rx():
    adapter = bind()
    adapter.set_offload_encapsulation(NdisOffloadEncapsulation(
        IPv6=EncapsulationIP(Enabled=NDIS_OFFLOAD_SET_OFF)))
    view = rm.RegisterView()
    decoded = view.decode(view.adapter_values(adapter))
    assert decoded.encapsulation["IPv6"]["Enabled"] == 0
    assert decoded.encapsulation["IPv4"]["Enabled"] == 1
    assert not decoded.datapath.rx_tcp_ipv6 and not decoded.datapath.lso_v2_ipv6
    assert decoded.rx_enables["rx_active"]


def test_values_that_do_not_fit_are_errors():
    view = rm.RegisterView()
    big = dataclasses.replace(bind().datapath(), min_segment_count=70000)
    with pytest.raises(ValueError, match="LSO_V1_MIN_SEG.IPv4=70000"):
        view.config_values(big)
    with pytest.raises(ValueError, match="id_mode"):
        view.config_values(bind().datapath(), id_mode="bsd")


def test_capabilities_follow_the_hardware():
    plain = rm.RegisterView(NicCapabilities(rsc=False, lso_v1_max_offload_size=60000))
    caps = plain.constants()
    cap = rm.REGISTERS["CAP_OFFLOADS"].unpack(caps["CAP_OFFLOADS"])
    assert cap["rsc_ipv4"] == cap["rsc_ipv6"] == 0 and cap["lso_v1_ipv4"] == 1
    assert cap["encap"] == 1
    assert caps["CAP_LSO_V1_IPV4"] == 60000
    assert caps["CAP_ENCAPSULATION"] == 0x16
    # A configuration of that NIC never has RSC on.
    adapter = Adapter.from_keywords((), NicCapabilities(rsc=False))
    adapter.set_offload_encapsulation(BIND_ENCAPSULATION)
    en = rm.REGISTERS["OFFLOAD_EN"].unpack(plain.adapter_values(adapter)["OFFLOAD_EN"])
    assert en["rsc_ipv4"] == en["rsc_ipv6"] == 0


def test_bus_view():
    view = rm.RegisterView()
    regs = rm.RegisterFile(view.reset_values())
    assert regs.read(0x000) == (rm.MAP_ID, rm.OKAY)
    assert regs.read(0x014) == (0, rm.DECERR)
    assert regs.write(0x014, 1) == rm.DECERR
    assert regs.write(0x000, 1) == rm.SLVERR and regs.read(0x000)[0] == rm.MAP_ID
    # wstrb picks bytes; reserved bits read 0.
    assert regs.write(0x010, 0xAABBCCDD, strb=0b0101) == rm.OKAY
    assert regs.read(0x010) == (0x00BB00DD, rm.OKAY)
    assert regs.write(0x04C, 0xFFFFFFFF) == rm.OKAY and regs.read(0x04C)[0] == 1
    # Counters: LO latches HI; any HI reads the shadow; clear.
    regs.count("RX_IN_BYTES", 0x1_2345_6789)
    lo = rm.REGISTERS["RX_IN_BYTES_LO"].address
    assert regs.read(lo + 4) == (0, rm.OKAY)
    assert regs.read(lo) == (0x2345_6789, rm.OKAY)
    assert regs.read(lo + 4) == (1, rm.OKAY)
    assert regs.read(rm.REGISTERS["TX_IN_BYTES_HI"].address) == (1, rm.OKAY)
    assert regs.write(0x00C, 1) == rm.OKAY and regs.read(lo) == (0, rm.OKAY)


def test_markdown_page_lists_every_register():
    page = rm.markdown()
    for r in rm.REGISTERS:
        assert re.search(rf"^\| 0x{r.address:03X} \| {r.name} \| {r.access} \|", page, re.M), \
            r.name
    assert "DECERR" in page and "StatsClear" in page


def test_c_header_defines_match_the_map(tmp_path):
    text = rm.c_header()
    defines = dict(re.findall(r"^#define (\w+) (0x[0-9A-F]+|\d+)u$", text, re.M))
    for r in rm.REGISTERS:
        assert int(defines[f"NICOFFLOAD_{r.name}_ADDR"], 0) == r.address
        for f in r.fields:
            key = f"NICOFFLOAD_{r.name}_{f.name.upper()}"
            assert int(defines[f"{key}_SHIFT"], 0) == f.offset
            assert int(defines[f"{key}_MASK"], 0) == f.mask
    resets = rm.RegisterView().reset_values()
    assert int(defines["NICOFFLOAD_OFFLOAD_EN_RESET"], 0) == resets["OFFLOAD_EN"]
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to compile the header")
    (tmp_path / "regmap.h").write_text(text)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "regmap.h"\nint main(void) {\n'
        '  printf("%u %u %u\\n", NICOFFLOAD_RSC_ABORTS_LO_ADDR, '
        'NICOFFLOAD_LSO_V2_MIN_SEG_IPV6_MASK, NICOFFLOAD_ENCAP_IPV4_RESET);\n  return 0;\n}\n')
    subprocess.run([cc, "-Wall", "-Werror", "-o", "main", "main.c"], cwd=tmp_path, check=True)
    out = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(rm.REGISTERS["RSC_ABORTS_LO"].address),
                                  str(0xFFFF0000), str(resets["ENCAP_IPV4"])]


def test_cli_regmap(tmp_path):
    cli = [sys.executable, "-m", "nicoffload.sim.cli", "regmap"]
    r = subprocess.run(cli + ["--format", "c", "-o", tmp_path / "r.h"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.h").read_text() == rm.c_header()
    r = subprocess.run(cli, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == rm.markdown()
    r = subprocess.run(cli + ["--format", "pdf"], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.startswith("nicoffload: error:")


def test_skip_registry_update_changes_registers_too():
    adapter = bind()
    adapter.set_offload_parameters(NdisOffloadParameters(LsoV2IPv4=1, Flags=1))
    en = rm.REGISTERS["OFFLOAD_EN"].unpack(rm.RegisterView().adapter_values(adapter)
                                           ["OFFLOAD_EN"])
    assert en["lso_v2_ipv4"] == 0 and en["lso_v2_ipv6"] == 1
