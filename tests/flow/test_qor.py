"""The README's QoR table (leopard_rtl.flow.qor.update_readme)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leopard_rtl.flow.qor import README_BEGIN, README_END, readme_table, update_readme

ROW = {"preset": "tiny", "unit": "core", "pdk": "nangate45", "clock_ns": 2.0,
       "area_um2": 900.0, "macro_area_um2": 100.0, "fmax_mhz": 350.4, "power_mw": 14.48,
       "blocks": {"frontend": 400.0, "backend": 500.0}, "buffers_um2": 400.0,
       "cells": 12000, "flops": 1900, "synth_s": 10.0}


def test_readme_table_and_update(tmp_path: Path) -> None:
    table = readme_table([ROW])
    # area = std cells + macros; storage share = (storage flip-flops + macros) / area.
    assert "| tiny | core | nangate45 | 1,000 | 350 | 14.48 @ 2 ns | 50 % |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_BEGIN}\nold table\n{README_END}\n\nrest\n")
    update_readme(readme, [ROW])
    text = readme.read_text()
    assert "old table" not in text and table in text and text.endswith("rest\n")
    update_readme(readme, [ROW])                        # idempotent
    assert readme.read_text() == text


def test_readme_without_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(ValueError, match=str(readme)):
        update_readme(readme, [ROW])


def test_merge_runs_later_replaces(tmp_path: Path) -> None:
    import json

    from leopard_rtl.flow.qor import merge_runs

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    other = {**ROW, "pdk": "asap7", "fmax_mhz": 500.0}
    (a / "qor.json").write_text(json.dumps([ROW, other]))
    (b / "qor.json").write_text(json.dumps([{**ROW, "fmax_mhz": 999.0}]))
    md = merge_runs([str(a), str(b)])
    assert "| 999.0 |" in md and "| 350.4 |" not in md
    assert md.index("| nangate45 |") < md.index("| asap7 |")    # first-appearance order


def test_markdown_measured_column() -> None:
    """Rows merged from runs of different flows say when each was measured."""
    from leopard_rtl.flow.qor import markdown

    plain = markdown([ROW], "x")
    assert "measured" not in plain.split("\n\n")[2]
    md = markdown([{**ROW, "measured": "2026-12-02"}, {**ROW, "pdk": "asap7"}], "x")
    lines = [ln for ln in md.splitlines() if ln.startswith("| tiny | core")]
    assert lines[0].endswith("| 2026-12-02 |") and lines[1].endswith("| - |")
    assert "| measured |" in md
