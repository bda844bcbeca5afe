"""The QoR table: area, fmax and power per preset x PDK x unit, as markdown.

``leopard-rtl qor --out DIR [--doc docs/QOR.md]`` runs :func:`leopard_rtl.flow.run.synth_unit`
for every combination (default presets tiny, minilm, paper; all four libraries; units
frontend and backend, plus core when it elaborates), memories of at least 4096 bits as
black-box SRAM macros (area from the documented estimate), and writes ``DIR/qor.json``
and ``DIR/QOR.md``. Power is at each library's default clock with activity 0.1.
"""

from __future__ import annotations

import json
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..config import preset
from .pdk import PDK_NAMES
from .run import default_unit, synth_unit

__all__ = ["run_qor", "markdown", "merge_runs", "write_gates", "gates_from", "BUFFER_BLOCKS",
           "readme_table", "update_readme"]

#: Top-level blocks that are storage: K buffer, survivor queue (front end), V buffer and
#: survivor store (back end).
BUFFER_BLOCKS = ("kbuf", "survq", "vbuf", "store")


def _storage_um2(row: dict[str, Any]) -> float:
    """Std-cell area of the storage blocks of a QoR row (any depth when recorded)."""
    buf = row.get("buffers_um2")
    if buf is None:
        buf = sum(v for k, v in row["blocks"].items() if k in BUFFER_BLOCKS)
    return float(buf)


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The docs/QOR.md section for ``rows`` (a ``measured`` column when a row records
    when and with which flow it was measured: tables merged from runs of several flows)."""
    measured = any("measured" in r for r in rows)
    out = ["## Quality of results", "",
           f"Regenerate with `{command}` (Yosys 0.70 via pyosys, OpenSTA 2.0.17; typical "
           "corners; power at the library's default clock, activity 0.1 toggles/cycle on "
           "every register and input; memories >= 4096 bits as SRAM macros, area estimated, "
           "see docs/ENERGY.md).", "",
           "| preset | unit | PDK | clock ns | std-cell area um^2 | cells | flops | "
           "macro area um^2 (est.) | fmax MHz | power mW | synth s |"
           + (" measured |" if measured else ""),
           "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if measured else "")]
    for r in rows:
        out.append(f"| {r['preset']} | {r['unit']} | {r['pdk']} | {r['clock_ns']:g} | "
                   f"{r['area_um2']:.1f} | {r['cells']} | {r['flops']} | "
                   f"{r['macro_area_um2']:.1f} | {r['fmax_mhz']:.1f} | {r['power_mw']:.4f} | "
                   f"{r['synth_s']:.1f} |" + (f" {r.get('measured', '-')} |" if measured else ""))
    out += ["", "Area split: std-cell um^2 per top-level block; storage buffers = "
            f"{', '.join(BUFFER_BLOCKS)} (flip-flops) plus the estimated macro area; "
            "`(fan-out buffers)` is the buffer trees of the fan-out repair "
            "(leopard_rtl/flow/fanout.py):", "",
            "| preset | unit | PDK | storage buffers um^2 | storage share | blocks |",
            "|---|---|---|---|---|---|"]
    for r in rows:
        buf = _storage_um2(r) + r["macro_area_um2"]
        total = r["area_um2"] + r["macro_area_um2"]
        blocks = ", ".join(f"{k} {v:.1f}" for k, v in r["blocks"].items())
        out.append(f"| {r['preset']} | {r['unit']} | {r['pdk']} | {buf:.1f} | "
                   f"{100 * buf / total:.0f} % | {blocks} |")
    return "\n".join(out) + "\n"


README_BEGIN = "<!-- qor:begin (leopard-rtl qor --readme README.md) -->"
README_END = "<!-- qor:end -->"


def readme_table(rows: list[dict[str, Any]]) -> str:
    """The compact QoR table of the README: area, fmax, power, storage share per row."""
    out = ["| preset | unit | PDK | area um^2 (std cells + est. macros) | fmax MHz | "
           "power mW @ clock | storage share |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        buf = _storage_um2(r)
        total = r["area_um2"] + r["macro_area_um2"]
        out.append(f"| {r['preset']} | {r['unit']} | {r['pdk']} | {total:,.0f} | "
                   f"{r['fmax_mhz']:.0f} | {r['power_mw']:.2f} @ {r['clock_ns']:g} ns | "
                   f"{100 * (buf + r['macro_area_um2']) / total:.0f} % |")
    return "\n".join(out) + "\n"


def update_readme(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the README's QoR table (between README_BEGIN and README_END)."""
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{path}: no '{README_BEGIN}' ... '{README_END}' section to update")
    a = text.index(README_BEGIN) + len(README_BEGIN)
    b = text.index(README_END)
    path.write_text(text[:a] + "\n" + readme_table(rows) + text[b:])


def buffer_area(modules: dict[str, dict[str, float]]) -> float:
    """Std-cell area of the storage blocks (any depth): modules named ``*.kbuf`` etc."""
    return sum(m["inclusive_area_um2"] for name, m in modules.items()
               if name.rsplit(".", 1)[-1] in BUFFER_BLOCKS)


def run_qor(out_dir: Path, *, presets: list[str] | None = None, pdks: list[str] | None = None,
            units: list[str] | None = None, doc: Path | None = None,
            readme: Path | None = None) -> str:
    """Run every combination; return (and write) the markdown."""
    presets = presets or ["tiny", "minilm", "paper"]
    pdks = pdks or list(PDK_NAMES)
    rows: list[dict[str, Any]] = []
    for pname in presets:
        cfg = preset(pname)
        us = units or (["frontend", "backend"] +
                       (["core"] if default_unit(cfg) == "core" else []))
        for unit in us:
            for pdk in pdks:
                t0 = time.monotonic()
                rep = synth_unit(unit, cfg, pdk, out_dir / f"{pname}-{unit}-{pdk}")
                s, t = rep["synth"], rep["sta"]
                rows.append({"preset": pname, "unit": unit, "pdk": pdk,
                             "clock_ns": rep["clock_ns"], "area_um2": s["area_um2"],
                             "cells": s["cells"], "flops": s["flops"],
                             "macro_area_um2": s["macro_area_um2"],
                             "fmax_mhz": t["fmax_mhz"], "power_mw": t["power_w"]["total"] * 1e3,
                             "synth_s": rep["seconds"]["synth"],
                             "total_s": round(time.monotonic() - t0, 1),
                             "blocks": s["blocks_um2"],
                             "buffers_um2": buffer_area(s["modules"])})
                (out_dir / "qor.json").write_text(json.dumps(rows, indent=2) + "\n")
    cmd = f"leopard-rtl qor --out {out_dir}"
    md = markdown(rows, cmd)
    (out_dir / "QOR.md").write_text(md)
    if doc is not None:
        doc.parent.mkdir(parents=True, exist_ok=True)
        # The rows beside the table: what the evaluation reads (never the markdown).
        (doc.parent / "qor.json").write_text(json.dumps(rows, indent=1) + "\n")
        doc.write_text(md)
    if readme is not None:
        update_readme(readme, rows)
    return md


def write_gates(rows: list[dict[str, Any]], path: Path, margin: float = 1.25) -> dict:
    """QoR gates (upper bounds = measured x ``margin``) per unit and PDK, written as JSON.

    ``constraints/qor/<preset>.json`` is produced by this function (never edited by hand):
    ``python -c "from leopard_rtl.flow.qor import gates_from; gates_from('build/flow/qor')"``.
    """
    gates: dict[str, Any] = {"comment": f"upper bounds = measured x {margin}; "
                                        "regenerate with leopard_rtl.flow.qor.gates_from",
                             "gates": {}}
    for r in rows:
        gates["gates"].setdefault(r["unit"], {})[r["pdk"]] = {
            "synth__design__instance__area__stdcell": round(r["area_um2"] * margin, 1),
            "synth__design__instance__count__stdcell": int(r["cells"] * margin)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gates, indent=2) + "\n")
    return gates


def gates_from(qor_dir: str, preset_name: str = "tiny") -> dict:
    """Regenerate ``constraints/qor/<preset>.json`` from a ``leopard-rtl qor`` run."""
    rows = [r for r in json.loads((Path(qor_dir) / "qor.json").read_text())
            if r["preset"] == preset_name]
    return write_gates(rows, Path(str(files("leopard_rtl.constraints"))) / "qor"
                       / f"{preset_name}.json")


def merge_runs(qor_dirs: list[str], doc: Path | None = None,
               readme: Path | None = None) -> str:
    """The markdown of several partial ``leopard-rtl qor`` runs.

    Rows keep the order of their first appearance; a later run's row for the same
    (preset, unit, PDK) replaces an earlier one (a re-run of some combinations).
    """
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for d in qor_dirs:
        for r in json.loads((Path(d) / "qor.json").read_text()):
            rep = Path(d) / f"{r['preset']}-{r['unit']}-{r['pdk']}" / "report.json"
            if "buffers_um2" not in r and rep.is_file():
                r["buffers_um2"] = buffer_area(json.loads(rep.read_text())["synth"]["modules"])
            by_key[(r["preset"], r["unit"], r["pdk"])] = r
    rows = list(by_key.values())
    cmds = " ; ".join(f"leopard-rtl qor --out {d} ..." for d in qor_dirs)
    md = markdown(rows, "leopard-rtl qor --out build/flow/qor") + (
        f"\nThis table was assembled from partial runs ({cmds}) with "
        "`leopard_rtl.flow.qor.merge_runs`.\n")
    if doc is not None:
        doc.write_text(md)
    if readme is not None:
        update_readme(readme, rows)
    return md
