"""Figures of the evaluation: PNG and PDF of each, captions that state the method."""

from __future__ import annotations

import json
from pathlib import Path

from support import ROOT

from leopard_rtl.eval.plots import write_plots


def test_figures_png_pdf_and_captions(tmp_path: Path) -> None:
    res = json.loads((ROOT / "results" / "eval" / "results.json").read_text())
    paths = [Path(p) for p in write_plots(res, tmp_path)]
    assert {p.stem for p in paths} >= {"speedup", "energy", "planes", "pruned"}
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
        assert p.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", p
    caps = (tmp_path / "captions.md").read_text()
    energy = next(line for line in caps.splitlines() if line.startswith("**energy**"))
    # the method: library, activity assumption, clock and the baseline
    for word in ("nangate45", "switching activity of 0.1", "clock period (2 ns)", "baseline:"):
        assert word in energy, (word, energy)
    speed = next(line for line in caps.splitlines() if line.startswith("**speedup**"))
    assert "baseline:" in speed and "RTL" in speed
