"""OpenROAD-flow-scripts hand-off files: content per platform (OpenROAD is not installable
here; the SDC is also checked by reading it into OpenSTA with a synthesized netlist)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from flow_helpers import AdderTree, emit
from support import ROOT, require_tool

from leopard_rtl.cli import main
from leopard_rtl.config import preset
from leopard_rtl.emit import write_build
from leopard_rtl.flow.orfs import PLATFORMS, period_in_unit, write_orfs


@pytest.fixture(scope="module")
def build(build_root: Path) -> dict[str, Path]:
    return write_build("frontend", preset("tiny"), build_root / "flow" / "orfs-tiny")


def _mk_vars(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"^export\s+(\w+)\s*\??=\s*(.*)$", text, re.M)}


# The default clock of each platform is the platform table's (constraints/platforms.json),
# the same that synthesis and STA use: sky130hd 5 ns, nangate45 2 ns, asap7 1 ns = 1000 ps.
@pytest.mark.parametrize("platform,period", [("sky130hd", "5"), ("nangate45", "2"),
                                             ("asap7", "1000")])
def test_orfs_files(platform: str, period: str, build: dict[str, Path]) -> None:
    out = build["verilog"].parent
    paths = write_orfs(build, preset("tiny"), platform, out)
    cfg_mk = paths[f"orfs_{platform}_config"].read_text()
    sdc = paths[f"orfs_{platform}_sdc"].read_text()
    v = _mk_vars(cfg_mk)
    assert v["DESIGN_NAME"] == "leopard_frontend"
    assert v["DESIGN_NICKNAME"] == "leopard_tiny_frontend"
    assert v["PLATFORM"] == platform
    # Self-contained: every file beside config.mk, named relative to it.
    here = "$(dir $(DESIGN_CONFIG))"
    folder = paths[f"orfs_{platform}_config"].parent
    assert v["VERILOG_FILES"] == here + "leopard_frontend.v"
    assert (folder / "leopard_frontend.v").read_text() == build["verilog"].read_text()
    assert v["SDC_FILE"] == here + "constraint.sdc"
    assert v["LEOPARD_CONSTRAINTS"] == here
    assert (folder / "leopard.sdc").read_text() == (ROOT / "constraints" /
                                                    "leopard.sdc").read_text()
    assert str(ROOT) not in cfg_mk and "/" + "work" not in cfg_mk
    assert "ADDITIONAL_LEFS" not in v     # memory="ff": no macros
    for knob in ("CORE_UTILIZATION", "PLACE_DENSITY", "SYNTH_HIERARCHICAL", "ABC_AREA"):
        assert re.search(rf"^export {knob} \?= ", cfg_mk, re.M), knob
    assert re.search(rf"^set clk_period {period}$", sdc, re.M)
    assert "source $::env(LEOPARD_CONSTRAINTS)/leopard.sdc" in sdc
    # Every port the SDC names exists in the Verilog.
    port = re.search(r"^set clk_port_name (\S+)$", sdc, re.M).group(1)
    header = re.search(r"module leopard_frontend\((.*?)\);", build["verilog"].read_text(),
                       re.S).group(1)
    assert port in [p.strip() for p in header.split(",")]
    # Rewritten only on change (ORFS does not rebuild needlessly).
    mtime = paths[f"orfs_{platform}_config"].stat().st_mtime_ns
    write_orfs(build, preset("tiny"), platform, out)
    assert paths[f"orfs_{platform}_config"].stat().st_mtime_ns == mtime


def test_period_units() -> None:
    assert period_in_unit(1.5, "asap7") == 1500.0
    assert period_in_unit(1.5, "nangate45") == 1.5
    assert period_in_unit(1.5, "sky130hd") == 1.5
    assert set(PLATFORMS) == {"sky130hd", "nangate45", "asap7"}


def test_generate_cli(build_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build_root / "flow" / "orfs-cli"
    assert main(["generate", "--unit", "backend", "--preset", "tiny", "--out", str(out),
                 "--platform", "asap7", "--platform", "sky130hd"]) == 0
    assert (out / "flow" / "asap7" / "config.mk").is_file()
    assert "set clk_period 1000" in (out / "flow" / "asap7" / "constraint.sdc").read_text()
    assert "set clk_period 5" in (out / "flow" / "sky130hd" / "constraint.sdc").read_text()


@pytest.mark.synth
def test_sdc_reads_in_opensta(build: dict[str, Path], build_root: Path) -> None:
    """The generated constraint.sdc + leopard.sdc constrain a real netlist in OpenSTA.

    The SDC names only ``clk`` and all inputs/outputs, so a small synthesized design with
    Amaranth's clk/rst ports stands in for the unit (saves a 30 s synthesis).
    """
    sta = require_tool("sta")
    from leopard_rtl.flow.pdk import resolve_pdk
    from leopard_rtl.flow.run import LIB_CACHE
    from leopard_rtl.flow.synth import synthesize

    pdk = resolve_pdk("nangate45", LIB_CACHE)
    out = build_root / "flow" / "orfs-sta"
    v = emit(AdderTree(), "adder_tree", out)
    syn = synthesize(v, "adder_tree", pdk, out, clock_ns=4.0)
    paths = write_orfs(build, preset("tiny"), "nangate45", build["verilog"].parent)
    tcl = out / "check_sdc.tcl"
    tcl.write_text("\n".join([f"read_liberty {pdk.liberty[0]}", f"read_verilog {syn.netlist}",
                              "link_design adder_tree",
                              f"source {paths['orfs_nangate45_sdc']}",
                              "puts \"@@CLK [get_property [get_clocks core_clock] period]\"",
                              "report_checks -path_delay max -group_count 1"]) + "\n")
    proc = subprocess.run([sta, "-no_splash", "-exit", str(tcl)], capture_output=True, text=True,
                          env={"LEOPARD_CONSTRAINTS": str(paths["orfs_nangate45_sdc"].parent),
                               "PATH": "/usr/bin:/bin"})
    text = proc.stdout + proc.stderr
    assert "Error" not in text, text[-2000:]
    assert re.search(r"@@CLK 2(\.0+)?\b", text), text[-2000:]
    assert "slack" in text


@pytest.mark.parametrize("platform", ["sky130hd", "nangate45", "asap7"])
def test_orfs_macros(platform: str, build_root: Path) -> None:
    """memory="macro": concrete bank macros in the Verilog copy, a LEF and a liberty each,
    wired in config.mk; every port bit of the bank is a LEF pin and a liberty pin."""
    cfg = preset("tiny").with_overrides(["memory=macro"])
    out = build_root / "flow" / "orfs-macro"
    b = write_build("frontend", cfg, out)
    paths = write_orfs(b, cfg, platform, out)
    folder = paths[f"orfs_{platform}_config"].parent
    name = f"leopard_kbuf_bank_{cfg.head_dim}x{cfg.max_keys}"
    text = (folder / "leopard_frontend.v").read_text()
    n_inst = len(re.findall(rf"^\s*{name} \S+ \(", text, re.M))
    assert n_inst == cfg.qk_bits * cfg.lanes, n_inst       # one bank per plane and port
    assert "leopard_kbuf_bank #" not in text
    v = _mk_vars(paths[f"orfs_{platform}_config"].read_text())
    assert v["ADDITIONAL_LEFS"] == f"$(dir $(DESIGN_CONFIG))macros/{name}.lef"
    assert v["ADDITIONAL_LIBS"] == f"$(dir $(DESIGN_CONFIG))macros/{name}.lib"
    lef = (folder / "macros" / f"{name}.lef").read_text()
    lib = (folder / "macros" / f"{name}.lib").read_text()
    abits = cfg.key_index_bits
    want = {"clk", "we", "re", *(f"waddr[{i}]" for i in range(abits)),
            *(f"raddr[{i}]" for i in range(abits)),
            *(f"wdata[{i}]" for i in range(cfg.head_dim)),
            *(f"rdata[{i}]" for i in range(cfg.head_dim))}
    pins = set(re.findall(r"^  PIN (\S+)$", lef, re.M))
    assert pins - set(PLATFORMS[platform]["macro_power_pins"]) == want
    layer = PLATFORMS[platform]["macro_pin_layer"]
    assert set(re.findall(r"LAYER (\S+) ;", lef)) == {layer}
    w, h = (float(x) for x in re.search(r"SIZE (\S+) BY (\S+) ;", lef).groups())
    assert re.search(rf"area : {w * h:.3f} ;", lib)
    unit = PLATFORMS[platform]["time_unit"]
    assert f'time_unit : "1{unit}" ;' in lib
    assert set(re.findall(r"(?:bus|pin) \((\w+)\)", lib)) == {"clk", "we", "re", "waddr",
                                                                "raddr", "wdata", "rdata"}


@pytest.mark.synth
def test_orfs_macro_lib_reads_in_opensta(build_root: Path) -> None:
    sta = require_tool("sta")
    cfg = preset("tiny").with_overrides(["memory=macro"])
    out = build_root / "flow" / "orfs-macro-sta"
    paths = write_orfs(write_build("frontend", cfg, out), cfg, "nangate45", out)
    lib = next((paths["orfs_nangate45_config"].parent / "macros").glob("*.lib"))
    tcl = out / "read_lib.tcl"
    tcl.write_text(f"read_liberty {lib}\n"
                   f"puts \"@@CELL [get_full_name [get_lib_cells {lib.stem}/{lib.stem}]]\"\n"
                   f"puts \"@@PINS [llength [get_lib_pins {lib.stem}/{lib.stem}/*]]\"\n")
    proc = subprocess.run([sta, "-no_splash", "-exit", str(tcl)], capture_output=True,
                          text=True)
    text = proc.stdout + proc.stderr
    assert "Error" not in text and "Warning" not in text, text[-2000:]
    assert f"@@CELL {lib.stem}/{lib.stem}" in text, text[-2000:]
    n_pins = int(re.search(r"@@PINS (\d+)", text).group(1))
    assert n_pins >= 7, text[-2000:]       # clk, we, re and the four buses
