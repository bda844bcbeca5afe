"""qflow place-and-route of the tiny front end on osu018 (default suite, ~4-7 minutes).

``leopard-rtl pnr``'s defaults (preset tiny, unit frontend, 75 % target utilization): 0
failed routes, 0 DRC errors, LVS match, a post-route fmax from the extracted layout, and
the layout picture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.cli import main
from leopard_rtl.flow.layout_png import render_def
from leopard_rtl.flow.pnr import DEFAULT_UTILIZATION, QFLOW_STEPS

pytestmark = pytest.mark.synth


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
    assert 20 < rep["post_route_fmax_mhz"] < 1000
    assert "critical_path" in rep["post_route_sta"]
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
