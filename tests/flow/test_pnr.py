"""qflow place-and-route of the tiny front end on osu018 (default suite, ~10 minutes).

``leopard-rtl pnr``'s defaults (preset tiny, unit frontend, 75 % target utilization): 0
failed routes, 0 DRC errors, LVS match, a post-route fmax from the extracted layout, and
the layout picture. Cheap tests first: the net renaming that keeps qflow's netlist tools
from cutting the LVS netlist short, the LVS verdict parser, and the timeout that kills a
step's whole process tree.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.cli import main
from leopard_rtl.flow.layout_png import render_def
from leopard_rtl.flow.pnr import (
    DEFAULT_UTILIZATION,
    QFLOW_STEPS,
    TECH,
    _run_step,
    parse_lvs,
    sanitize_blif,
)

pytestmark = pytest.mark.synth

# A flattened submodule signal ``lanes.ending`` (the pipelined lanes' last-key flag) and
# the traps qflow 1.3's tools hold for names: blif2BSpice ends the subcircuit at any line
# containing ".end"; annotate.tcl at any line matching "ends".
_BLIF = """# test
.model top
.inputs clk a b \\
 sub.gate_in
.outputs y lanes_ending
.gate INVX1 A=a Y=lanes.ending
.gate NAND2X1 A=lanes.ending B=b Y=q.trends
.gate NOR2X1 A=q.trends B=sub.gate_in Y=y
.gate BUFX2 A=lanes.ending Y=lanes_ending
.gate DFFPOSX1 CLK=clk D=q.trends Q=x.plain
.end
"""


def _spice_subckts(blif: Path) -> tuple[int, int]:
    """(``.ends`` lines, instances) of qflow's own blif2BSpice output for ``blif``."""
    out = subprocess.run(["/usr/lib/qflow/bin/blif2BSpice", "-i", "-p", "vdd", "-g", "gnd",
                          "-l", str(TECH / "osu018_stdcells.sp"), str(blif)],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    return (sum(ln.startswith(".ends") for ln in lines),
            sum(ln.startswith("X") for ln in lines))


def test_sanitize_blif_keeps_qflow_netlists_whole(tmp_path: Path) -> None:
    require_tool("qflow")
    blif = tmp_path / "top.blif"
    blif.write_text(_BLIF)
    assert _spice_subckts(blif)[0] > 1                   # the bug: cut short at lanes.ending
    renames = sanitize_blif(blif)
    # lanes_ending is taken (an output), so the renamed net gets a suffix; the port with
    # a dot and "gate" is renamed on its continuation line too; plain names stay.
    assert renames == {"lanes.ending": "lanes_ending_q1", "q.trends": "q_trend_s",
                       "sub.gate_in": "sub_gate_in"}
    text = blif.read_text()
    assert "x.plain" in text and "lanes.ending" not in text and "\nsub_gate_in\n" in text
    assert text.count("lanes_ending_q1") == 3 and text.count("q_trend_s") == 3
    assert _spice_subckts(blif) == (1, 5)
    assert sanitize_blif(blif) == {}                      # idempotent


def test_parse_lvs_reads_the_final_verdict() -> None:
    ok = ("Circuits match uniquely.\nLVS reports no net, device, pin, or property "
          "mismatches.\n\nTotal errors = 0\n")
    assert parse_lvs(ok) == "match"
    # A black-boxed subcell matching must not hide the top cell's mismatch.
    bad = ("Circuits match uniquely.\nCircuit 1 contains 6469 devices, Circuit 2 contains "
           "963 devices. *** MISMATCH ***\nNetlists do not match.\nTotal errors = 14945\n")
    assert parse_lvs(bad) == "mismatch"
    assert parse_lvs("Netlists do not match.") == "mismatch"
    assert parse_lvs("") == "unknown"


def test_step_timeout_kills_the_process_tree(tmp_path: Path) -> None:
    # qflow runs tcsh scripts that start graywolf/qrouter/magic: a timeout must not leave
    # them running (an orphan qrouter kept writing the layout after `pnr` gave up).
    pidfile = tmp_path / "child.pid"
    with open(tmp_path / "log", "w") as log:
        t0 = time.monotonic()
        rc = _run_step(["bash", "-c", f"sleep 30 & echo $! > {pidfile}; wait"],
                       tmp_path, log, timeout=1.0)
    assert rc is None and time.monotonic() - t0 < 10
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or \
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"


def test_pnr_tiny_frontend(build_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("qflow")
    out = build_root / "flow" / "pnr-tiny-frontend"
    assert main(["pnr", "--out", str(out)]) == 0           # the command's defaults
    rep = json.loads((out / "pnr_report.json").read_text())
    assert json.loads(capsys.readouterr().out)["die_area_um2"] == rep["die_area_um2"]
    assert rep["preset"] == "tiny" and rep["unit"] == "frontend"
    assert rep["top"] == "leopard_frontend"
    assert rep["failed_routes"] == 0
    assert rep["drc_errors"] == 0
    assert rep["lvs"] == "match"
    # The placement honours the target density (fill excluded from the cell area).
    assert 0.5 < rep["utilization"] <= DEFAULT_UTILIZATION / 100 + 0.02
    assert rep["die_area_um2"] == pytest.approx(rep["die_um"][0] * rep["die_um"][1], rel=1e-3)
    assert rep["cells"] > 1000
    # Post-route timing comes from vesta on the extracted layout (10 ns clock).
    assert rep["post_route_fmax_mhz"] is not None, rep["post_route_sta"]
    assert 20 < rep["post_route_fmax_mhz"] < 1000
    assert "critical_path" in rep["post_route_sta"]
    # Every net's extracted wire delay reached vesta: qrouter's malformed RC trees are
    # lumped (and listed), names that overflow rc2dly renamed for the timing run.
    sta_errors = [ln for ln in (out / "log" / "post_sta.log").read_text().splitlines()
                  if ln.startswith("ERROR")]
    assert not sta_errors, sta_errors[:5]
    for net in rep["rc_repaired_nets"]:
        assert net["reason"] and net["receivers"], net
    assert set(rep["seconds"]) == set(QFLOW_STEPS)
    png = Path(rep["layout_png"])
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head[16:20], "big") > 100      # width
    # The picture is drawn from the routed DEF: wires on several metal layers.
    stats = render_def(Path(rep["def"]), [Path("/usr/share/qflow/tech/osu018/"
                                               "osu018_stdcells.lef")],
                       out / "again.png", max_px=300)
    assert stats["wire_segments"] > 1000 and stats["layers"] >= 3
