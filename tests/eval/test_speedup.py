"""leopard_rtl.eval.speedup on a tiny configuration (cycle model only, a few seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from leopard_rtl.config import preset
from leopard_rtl.eval.common import EvaluationError
from leopard_rtl.eval.speedup import (
    Design,
    best_dense,
    core_design_area,
    core_record,
    design_area,
    design_config,
    design_cycles,
    limits,
    load_areas,
    markdown,
    speedup_rows,
    standard_designs,
    summarize,
)
from sim.golden import run_golden
from sim.vectors import random_trace

SEED = 1414

UNITS = {"fe_c1": {"logic_um2": 100.0, "lanes_um2": 40.0, "lanes": 2, "sram_um2": 50.0,
                   "fmax_mhz": 500.0},
         "fe_c2": {"logic_um2": 140.0, "lanes_um2": 80.0, "lanes": 2, "sram_um2": 50.0,
                   "fmax_mhz": 450.0},
         "be": {"logic_um2": 300.0, "sram_um2": 60.0, "fmax_mhz": 700.0},
         "be_overlap_extra": {"logic_um2": 7.0, "fmax_mhz": 400.0}}


def _runs() -> dict:
    rng = np.random.default_rng(SEED)
    fam = preset("tiny")
    runs = {}
    for wl, n in (("a", 2), ("b", 1)):
        for i in range(n):
            t = random_trace(rng, heads=2, n_queries=6, n_keys=12, head_dim=fam.head_dim,
                             qk_bits=fam.qk_bits, v_bits=fam.v_bits, kind="realistic")
            runs[f"{wl}/l{i}"] = (t, fam)
    return runs


def test_rows_summary_and_best_dense() -> None:
    runs = _runs()
    designs = standard_designs({"planes_per_cycle": 2, "overlap_norm": True}, "new",
                               dense_lanes=(2, 3, 8), dense_ppc=(1, 2),
                               dense_overlap=(False,))
    rows, skipped = speedup_rows(runs, designs)
    # tiny: qk_bits 4, so 8 lanes exceed the exact bound at either planes per cycle
    assert set(skipped) == {"dense-L8-c1", "dense-L8-c2"}, f"seed {SEED}: {skipped}"
    for r in rows:
        t, fam = runs[r["trace"]]
        g = run_golden(t, fam)
        assert r["cycles"]["paper"] == int(g.cycles.sum()), f"seed {SEED} {r['trace']}"
        assert r["cycles"]["paper+baseline"] == int(g.baseline_cycles.sum()), \
            f"seed {SEED} {r['trace']}"
        # the dense point with the family's own lanes and one plane per cycle is its baseline
        assert r["cycles"]["dense-L2-c1"] == r["cycles"]["paper+baseline"], f"seed {SEED}"
        g2 = run_golden(t, design_config(fam, designs[2]))
        assert r["cycles"]["new+baseline"] == int(g2.baseline_cycles.sum())
    s = summarize(rows, "new", ["new", "paper+baseline"])
    assert s["new"]["all"] == pytest.approx(1.0)
    want_a = rows[2]["cycles"]["paper+baseline"] / rows[2]["cycles"]["new"]
    assert s["paper+baseline"]["b"] == pytest.approx(want_a)
    want_all = math.exp(np.mean([math.log(r["cycles"]["paper+baseline"] / r["cycles"]["new"])
                                 for r in rows]))
    assert s["paper+baseline"]["all"] == pytest.approx(want_all)
    # wall clock divides by each design's fmax
    fmax = {"new": 400.0, "paper+baseline": 500.0}
    w = summarize(rows, "new", ["paper+baseline"], fmax)
    assert w["paper+baseline"]["all"] == pytest.approx(want_all * 400.0 / 500.0)
    areas = {d.label: design_area(d, UNITS) for d in designs if d.label not in skipped}
    md = markdown(rows, "new", ["paper+baseline"], areas)
    assert "wall-clock" in md and "| paper+baseline, cycles |" in md
    # best dense: among dense points with area record <= cap, lowest geomean time
    cap = areas["dense-L3-c1"]["area_um2"]
    best = best_dense(rows, areas, cap)
    cands = [k for k, v in areas.items() if k.startswith("dense-") and v["area_um2"] <= cap]
    assert "dense-L3-c2" not in cands and best in cands

    def gm_time(k: str) -> float:
        return float(np.exp(np.mean([np.log(r["cycles"][k] / areas[k]["fmax_mhz"])
                                     for r in rows])))
    assert gm_time(best) == min(gm_time(k) for k in cands)
    lim = limits(*runs["a/l0"])
    assert 0 <= lim["survivors"] <= 1 and 0 < lim["fe_share"] and \
        0 <= lim["survivors_per_cycle"] <= 1


def test_design_area_arithmetic() -> None:
    a = design_area(Design("x", {"lanes": 3, "planes_per_cycle": 2, "overlap_norm": True},
                           dense=True), UNITS)
    assert a["area_um2"] == pytest.approx(140 - 80 + 3 * 40 + 50 + 300 + 60 + 7)
    assert a["fmax_mhz"] == 400.0 and a["kind"] == "estimate"
    b = design_area(Design("p"), UNITS)
    assert b["area_um2"] == pytest.approx(100 + 50 + 300 + 60) and b["fmax_mhz"] == 500.0


def test_not_exact_and_bad_areas(tmp_path: Path) -> None:
    fam = preset("tiny")
    t = random_trace(np.random.default_rng(SEED), heads=1, n_queries=2, n_keys=8,
                     head_dim=fam.head_dim, qk_bits=fam.qk_bits, v_bits=fam.v_bits)
    with pytest.raises(EvaluationError, match="not exact"):
        design_cycles(t, fam.replace(lanes=8))
    p = tmp_path / "areas.json"
    p.write_text(json.dumps({"x": {"area_um2": 1, "fmax_mhz": 1, "kind": "guess",
                                   "source": "s"}}))
    with pytest.raises(EvaluationError, match="kind"):
        load_areas(p)
    p.write_text(json.dumps({"_c": "comment", "x": {"area_um2": 1}}))
    with pytest.raises(EvaluationError, match="fmax_mhz"):
        load_areas(p)


def _core_report(c: int, ov: bool, dense: bool, fe: float, lanes: float, be: float,
                 fmax: float) -> dict:
    cfg = {"lanes": 2, "planes_per_cycle": c, "overlap_norm": ov,
           "early_termination": not dense, "pruning": not dense}
    mods = {"leopard_core.frontend": {"inclusive_area_um2": fe},
            "leopard_core.frontend.lanes": {"inclusive_area_um2": lanes},
            "leopard_core.backend": {"inclusive_area_um2": be}}
    return {"top": "leopard_core", "unit": "core", "config": cfg, "sta": {"fmax_mhz": fmax},
            "synth": {"modules": mods, "area_um2": fe + be + 5.0, "macro_area_um2": 100.0}}


def test_core_design_area() -> None:
    cores = {"p": core_record(_core_report(1, False, False, 40, 20, 60, 500), "a"),
             "pb": core_record(_core_report(1, False, True, 36, 16, 60, 520), "b"),
             "f": core_record(_core_report(2, True, False, 70, 40, 80, 450), "c")}
    assert cores["p"]["area_um2"] == 205.0 and cores["p"]["other_um2"] == 5.0
    # a synthesized design: its own measured record
    m = core_design_area(Design("x", dense=True), 2, cores)
    assert m is not None and m["kind"] == "measured" and m["area_um2"] == 201.0
    assert m["fmax_mhz"] == 520.0
    # dense, 3 lanes, two planes per cycle, no overlap: front end of f (the only c=2 core)
    # with lanes x3/2, back end of pb (same overlap and dense), macros and rest of f
    e = core_design_area(Design("y", {"lanes": 3, "planes_per_cycle": 2}, dense=True), 2,
                         cores)
    assert e is not None and e["kind"] == "estimate"
    assert e["area_um2"] == pytest.approx(70 - 40 + 60 + 60 + 100 + 5)
    assert e["fmax_mhz"] == 450.0
    assert core_design_area(Design("z", {"planes_per_cycle": 2}), 2,
                            {"p": cores["p"]}) is None
    with pytest.raises(EvaluationError, match="not a whole-core"):
        core_record({"unit": "core"}, "bad.json")
    with pytest.raises(EvaluationError, match="not core"):
        core_record({**_core_report(1, False, False, 1, 1, 1, 1), "unit": "frontend"}, "fe")
