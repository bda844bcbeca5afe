"""Energy on every trace in one run (leopard_rtl.eval.energy_traces).

* The summary's arithmetic on records with known answers: geometric means, the split of
  the saving (each trace weighted equally) and the shares of the baseline's energy.
* Option errors of ``leopard-rtl energy --all-traces`` are one line before any work.
* (slow) End to end on two tiny random traces: every trace, every setting and variant has
  an energy, the recalibrated thresholds prune what they were set to, and the baseline
  does not depend on the thresholds beyond the threshold register's own activity.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from support import require_tool

from leopard_rtl.eval.energy_traces import (
    energy_all_traces,
    energy_markdown,
    setting_name,
    summarize_energy,
    what_if,
)
from leopard_rtl.flow.energy import CATEGORIES


def _variant(total: float, split: dict[str, float], clock_ns: float = 2.0,
             fe_cycles: float = 10.0, survivors: float = 10.0) -> dict[str, object]:
    s = {c: split.get(c, 0.0) for c in CATEGORIES}
    assert math.isclose(sum(s.values()), total)
    return {"energy_per_head_nj": total, "split_nj": s, "energy_ungated_nj": total,
            "clock_ns": clock_ns, "core_cycles_per_head": 10.0,
            "unit_cycles_per_head": {"frontend": fe_cycles, "backend": 10.0},
            "accesses_per_head": {"v_read": survivors}}


def _row(base: dict[str, float], leo: dict[str, float], po: float, pruned: float
         ) -> dict[str, object]:
    b, ll = sum(base.values()), sum(leo.values())
    return {"trace": "t", "config": "c", "memories": {}, "settings": {"learned": {
        "pruned_fraction": pruned,
        "variants": {"baseline": _variant(b, base), "leopard": _variant(ll, leo),
                     "pruning_only": _variant(po, {"backend_logic": po})}}}}


def test_summary_known_answers() -> None:
    # trace A: baseline 100 (k 20, backend 60, leak 20) -> LeOPArd 50 (k 10, backend 30,
    #   leak 10): 2x, saved 50 % of its baseline: 10 % k, 30 % backend, 10 % leakage
    # trace B: baseline 10 (backend 10) -> LeOPArd 1.25 (backend 1.25): 8x, saved 87.5 %
    rows = [_row({"k_reads": 20, "backend_logic": 60, "leakage": 20},
                 {"k_reads": 10, "backend_logic": 30, "leakage": 10}, 80.0, 0.5),
            _row({"backend_logic": 10.0}, {"backend_logic": 1.25}, 5.0, 0.9)]
    s = summarize_energy(rows)["learned"]
    assert s["traces"] == 2
    assert s["geomean_reduction"]["leopard"] == pytest.approx(4.0)          # sqrt(2 x 8)
    assert s["geomean_reduction"]["baseline"] == pytest.approx(1.0)
    assert s["geomean_reduction"]["pruning_only"] == pytest.approx(math.sqrt(1.25 * 2.0))
    assert (s["min_reduction"], s["max_reduction"]) == pytest.approx((2.0, 8.0))
    assert s["pruned_fraction_mean"] == pytest.approx(0.7)
    # mean saved share of the baseline: k (0.1 + 0) / 2, backend (0.3 + 0.875) / 2,
    # leakage (0.1 + 0) / 2; total (0.5 + 0.875) / 2
    tot = (0.5 + 0.875) / 2
    assert s["saved_of_baseline"] == pytest.approx(tot)
    assert s["saving_share"]["k_reads"] == pytest.approx(0.05 / tot)
    assert s["saving_share"]["backend_logic"] == pytest.approx(0.5875 / tot)
    assert s["saving_share"]["leakage"] == pytest.approx(0.05 / tot)
    assert sum(s["saving_share"].values()) == pytest.approx(1.0)
    assert sum(s["saving_share_groups"].values()) == pytest.approx(1.0)
    assert s["baseline_share"]["backend_logic"] == pytest.approx((0.6 + 1.0) / 2)
    assert sum(s["baseline_share"].values()) == pytest.approx(1.0)
    assert sum(s["leopard_share"].values()) == pytest.approx((0.5 + 0.125) / 2)
    md = energy_markdown({"pdk": "nangate45", "families": {"4": {"name": "c"}},
                          "traces": rows, "summary": {"learned": s}})
    assert "**4.000x**" in md
    assert setting_name(None) == "learned" and setting_name(0.8) == "prune80"
    # counterfactuals: baseline 100 nJ (front end 20 over 10 cycles, back end 60 for 10
    # survivors, leakage 20 at 2 ns); LeOPArd 60 (front end 30 over 5 cycles, back end 20
    # for 2 survivors, leakage 10 at 4 ns)
    x = {"variants": {
        "baseline": _variant(100, {"frontend_logic": 20, "backend_logic": 60,
                                   "leakage": 20}),
        "leopard": _variant(60, {"frontend_logic": 30, "backend_logic": 20, "leakage": 10},
                            clock_ns=4.0, fe_cycles=5.0, survivors=2.0)}}
    w = what_if(x)
    assert w["leakage_at_baseline_clock"] == pytest.approx(100 / (60 - 10 + 5))
    assert w["frontend_at_baseline_cost"] == pytest.approx(100 / (60 - 30 + 10))
    assert w["backend_per_survivor"] == pytest.approx(100 / (60 - 20 + 12))
    assert w["all_three"] == pytest.approx(100 / (5 + 10 + 12))
    # a run without pruning-only (--variants leopard,baseline)
    for r in rows:
        del r["settings"]["learned"]["variants"]["pruning_only"]
    s2 = summarize_energy(rows)["learned"]
    assert set(s2["geomean_reduction"]) == {"leopard", "baseline"}
    assert s2["geomean_reduction"]["leopard"] == pytest.approx(4.0)
    md = energy_markdown({"pdk": "nangate45", "families": {"4": {"name": "c"}},
                          "traces": rows, "summary": {"learned": s2}})
    assert "not run" in md


@pytest.mark.parametrize("argv, msg", [
    (["--all-traces", "--trace", "x.npz"], "exclude each other"),
    (["--all-traces", "--activity-source", "vcd"], "saif"),
    ([], "--all-traces is required"),
    (["--trace", "x.npz", "--prune-to", "0.8", "--prune-to", "0.9"], "one --prune-to"),
])
def test_all_traces_option_errors(argv: list[str], msg: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from leopard_rtl.cli import main

    rc = main(["energy", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("leopard-rtl: error: ") and err.count("\n") == 1, err
    assert msg in err, err


@pytest.mark.slow
@pytest.mark.synth
def test_all_traces_tiny_end_to_end(tmp_path: Path, seed: int) -> None:
    require_tool("verilator")
    require_tool("sta")
    from sim.trace import save_trace
    from sim.vectors import random_trace

    rng = np.random.default_rng(seed)
    root = tmp_path / "traces"
    for wl, nk in (("a", 12), ("b", 16)):
        (root / wl).mkdir(parents=True)
        save_trace(random_trace(rng, heads=2, n_queries=4, n_keys=nk, kind="realistic"),
                   root / wl / "layer0.npz")
    res = energy_all_traces(tmp_path / "out", traces_root=root, preset_name="tiny",
                            prune=(0.5,), build_dir=tmp_path / "build", quiet=True)
    assert [r["workload"] for r in res["traces"]] == ["a", "b"]
    for r in res["traces"]:
        assert set(r["settings"]) == {"learned", "prune50"}, seed
        assert r["settings"]["prune50"]["pruned_fraction"] == pytest.approx(0.5, abs=0.15)
        for x in r["settings"].values():
            for v in ("leopard", "pruning_only", "baseline"):
                e = x["variants"][v]
                assert e["energy_per_head_nj"] > 0
                assert sum(e["split_nj"].values()) == pytest.approx(e["energy_per_head_nj"])
        b = [x["variants"]["baseline"]["accesses_per_head"]["k_read"]
             for x in r["settings"].values()]
        assert b[0] == b[1], f"seed {seed}: baseline K reads depend on the threshold"
    assert set(res["summary"]) == {"learned", "prune50"}
    assert (tmp_path / "out" / "energy_traces.md").is_file()
    # evaluate's access energy is the same computation (same cache, same simulations)
    from leopard_rtl.eval.evaluate import evaluate

    ev = evaluate(tmp_path / "eval", preset_name="tiny", traces_root=root, rtl="none",
                  energy="access", energy_prune=(0.5,), build_dir=tmp_path / "evb",
                  plots=False, quiet=True)
    for r, e in zip(res["traces"], ev["traces"], strict=True):
        want = r["settings"]["learned"]["variants"]["leopard"]["energy_per_head_nj"]
        assert e["energy"]["leopard"]["energy_per_head_nj"] == pytest.approx(want), seed
    assert set(ev["energy"]["summary"]) == {"learned", "prune50"}
    assert "per threshold setting" in (tmp_path / "eval" / "report.md").read_text()
