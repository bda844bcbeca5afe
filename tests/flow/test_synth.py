"""Synthesis (pyosys) and STA (OpenSTA) of the tiny units on all four libraries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ROOT, require_module, require_tool

from leopard_rtl.cli import main
from leopard_rtl.config import preset
from leopard_rtl.flow.pdk import PDKS, resolve_pdk
from leopard_rtl.flow.run import LIB_CACHE, synth_unit

pytestmark = pytest.mark.synth


#: Liberty time unit (ns) each PDK must report: asap7 is in ps.
UNIT_NS = {"osu018": 1.0, "sky130hd": 1.0, "nangate45": 1.0, "asap7": 1e-3}


@pytest.fixture(scope="module")
def tools() -> None:
    require_tool("sta")
    require_module("pyosys")


@pytest.mark.parametrize("pdk", list(PDKS))
def test_synth_tiny_frontend(pdk: str, tools: None, build_root: Path) -> None:
    out = build_root / "flow" / f"synth-tiny-frontend-{pdk}"
    rep = synth_unit("frontend", preset("tiny"), pdk, out)
    s, t = rep["synth"], rep["sta"]
    assert rep["pdk"]["time_unit_ns"] == UNIT_NS[pdk]
    assert s["area_um2"] > 0 and s["cells"] > 100
    # Every register of the tiny front end is a flip-flop (memories < 4096 bits).
    assert s["flops"] > 100 and not s["macros"]
    # The per-block split adds up to the flattened total (hierarchy kept through mapping),
    # up to the report's rounding of each block and of the total to 0.001 um^2.
    rounding = 0.0005 * (len(s["blocks_um2"]) + 1)
    assert sum(s["blocks_um2"].values()) == pytest.approx(s["area_um2"], abs=rounding)
    assert {"kbuf", "lanes"} <= set(s["blocks_um2"])
    # The clock went to STA in the library's unit, and times came back in ns.
    period_lib = rep["clock_ns"] / UNIT_NS[pdk]
    sta_tcl = (out / "sta.tcl").read_text()
    assert f"set clk_period {period_lib:.6g}" in sta_tcl
    cp = t["critical_path"]
    assert 0 < cp["arrival_ns"] < 100, cp
    assert t["fmax_mhz"] == pytest.approx(1e3 / (rep["clock_ns"] - t["worst_slack_ns"]),
                                          rel=1e-4)
    assert t["power_w"]["total"] > 0 and t["power_w"]["leakage"] > 0
    assert (out / "summary.txt").read_text().startswith("frontend (tiny) on " + pdk)
    assert json.loads((out / "report.json").read_text())["unit"] == "frontend"
    # QoR gates (constraints/qor/tiny.json, written by leopard_rtl.flow.qor.gates_from).
    gate = json.loads((ROOT / "constraints" / "qor" / "tiny.json").read_text())
    g = gate["gates"]["frontend"][pdk]
    assert s["area_um2"] <= g["synth__design__instance__area__stdcell"]
    assert s["cells"] <= g["synth__design__instance__count__stdcell"]


def test_synth_cli_backend_nangate45(tools: None, build_root: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = build_root / "flow" / "synth-tiny-backend-nangate45-cli"
    assert main(["synth", "--preset", "tiny", "--unit", "backend", "--pdk", "nangate45",
                 "--clock-ns", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "backend (tiny) on nangate45, clock 3.0 ns" in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["clock_ns"] == 3.0
    assert {"exp", "mac", "norm", "recip", "vbuf"} <= set(rep["synth"]["blocks_um2"])


def test_memory_macro_model(tools: None, build_root: Path) -> None:
    """Memories at or above --macro-bits become black boxes with an area estimate."""
    out = build_root / "flow" / "synth-tiny-frontend-macro"
    ff_dir = build_root / "flow" / "synth-tiny-frontend-nangate45"
    ff = (json.loads((ff_dir / "report.json").read_text()) if (ff_dir / "report.json").is_file()
          else synth_unit("frontend", preset("tiny"), "nangate45", ff_dir))
    mac = synth_unit("frontend", preset("tiny"), "nangate45", out, macro_bits=32)
    assert mac["synth"]["macros"], "no memory became a macro"
    bits = sum(m["bits"] for m in mac["synth"]["macros"])
    assert bits >= 32 * len(mac["synth"]["macros"])
    assert mac["synth"]["flops"] < ff["synth"]["flops"]
    assert mac["synth"]["macro_area_um2"] > 0


def test_pdk_resolution_decompresses(tools: None) -> None:
    pdk = resolve_pdk("asap7", LIB_CACHE)
    assert len(pdk.liberty) == 5 and all(p.suffix == ".lib" for p in pdk.liberty)
    assert "SEQ" in pdk.seq_liberty.name
    assert pdk.to_lib_time(1.0) == pytest.approx(1000.0)


#: A registered accumulate-and-compare (the QK lane's ``A = 2A + s``, ``A < T``) at 32 bits.
ACC_VERILOG = """\
module leopard_acc (input clk, input [11:0] x, input [31:0] t, output reg lt);
  reg [31:0] acc, rt;
  reg [11:0] rx;
  wire [31:0] nxt = {acc[30:0], 1'b0} + {{20{rx[11]}}, rx};
  always @(posedge clk) begin
    rx <= x; rt <= t;
    acc <= nxt;
    lt <= $signed(nxt) < $signed(rt);
  end
endmodule
"""


def test_abc_maps_adders_for_delay(tools: None, build_root: Path) -> None:
    """The ABC script keeps a wide add + compare logarithmic (no ripple carry chain).

    Yosys's default delay script (``&dch -f; &nf -D``) maps this to a ripple chain at
    810 MHz on nangate45 (arrival 1.19 ns, 28 cells); the project's script
    (:data:`leopard_rtl.flow.synth.ABC_SCRIPT`) reaches 1078 MHz (0.89 ns, 20 cells).
    """
    from leopard_rtl.flow.run import synth_verilog
    out = build_root / "flow" / "synth-acc-nangate45"
    out.mkdir(parents=True, exist_ok=True)
    v = out / "acc.v"
    v.write_text(ACC_VERILOG)
    rep = synth_verilog(v, "leopard_acc", resolve_pdk("nangate45", LIB_CACHE), out,
                        clock_ns=1.0)
    cp = rep["sta"]["critical_path"]
    assert rep["sta"]["fmax_mhz"] >= 950, cp
    assert cp["depth_cells"] <= 24, cp
