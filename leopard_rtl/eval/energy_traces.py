"""Energy per head by the access method on every committed trace, in one run
(``leopard-rtl energy --all-traces``; docs/ENERGY.md).

For every trace (:func:`leopard_rtl.eval.inputs.discover_traces`), on the configuration of
its family (:func:`leopard_rtl.eval.inputs.family_configs`: one per head_dim, synthesized
once per variant and library and cached), the three variants run through
:func:`leopard_rtl.flow.energy.head_energy` with the learned thresholds and, for each
``prune_to`` fraction, with every head's threshold recalibrated to prune that fraction of
its visible keys (:func:`leopard_rtl.flow.energy.prune_to`). The summary gives the
geometric-mean energy reduction per setting, where the saving comes from (the
categories of :data:`leopard_rtl.flow.energy.CATEGORIES`, each trace weighted equally:
energies normalized by its baseline's), the SRAM energies used (CACTI, with their
source) and each category's share of the baseline's energy, the budget a 4x reduction
leaves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.golden import run_golden
from sim.trace import Trace, load_trace

from ..paths import atomic_write, build_root
from .common import REPO, VARIANTS, EvaluationError, geomean, progress, rel
from .inputs import discover_traces, family_configs, requantize, trace_label

__all__ = ["trace_energy", "energy_all_traces", "summarize_energy", "energy_markdown",
           "setting_name", "what_if"]

#: Groups of the saving asked for in the closing note (category -> group).
GROUPS = {"k_reads": "K reads (early termination)",
          "v_reads": "V reads + back-end work (pruning)",
          "backend_logic": "V reads + back-end work (pruning)",
          "frontend_logic": "front-end logic",
          "other_storage": "other storage (K/V loads, survivor store)",
          "leakage": "leakage x time"}


def setting_name(fraction: float | None) -> str:
    """``learned`` or ``prune<percent>`` (``prune80``)."""
    return "learned" if fraction is None else f"prune{round(fraction * 100):d}"


def _pruned_fraction(trace: Trace, cfg: Any, heads: int) -> float:
    """Fraction of the visible keys of the first ``heads`` heads that the golden model
    prunes."""
    mask = run_golden(trace, cfg).mask[:heads]
    vis = np.broadcast_to(trace.visible(), mask.shape)
    return float(1.0 - mask[vis].sum() / max(1, int(vis.sum())))


def _compact(res: dict[str, Any]) -> dict[str, Any]:
    """What the summary keeps of a :func:`head_energy` result (nJ per head)."""
    out: dict[str, Any] = {}
    for v, r in res["variants"].items():
        acc = {k: a["count"] / u["heads"] for u in r["units"].values()
               for k, a in u["accesses"].items()}
        out[v] = {"energy_per_head_nj": r["energy_per_head_pj"] / 1e3,
                  "split_nj": {k: x / 1e3 for k, x in r["split_pj"].items()},
                  "energy_ungated_nj": r["energy_ungated_per_head_pj"] / 1e3,
                  "clock_ns": r["clock_ns"], "core_cycles_per_head": r["core_cycles_per_head"],
                  "unit_cycles_per_head": {u: x["cycles_per_head"]
                                           for u, x in r["units"].items()},
                  "fmax_mhz": {u: x["fmax_mhz"] for u, x in r["units"].items()},
                  "accesses_per_head": acc,
                  "reduction_vs_baseline": r.get("energy_reduction_vs_baseline")}
    return out


def trace_energy(trace: Trace, cfg: Any, pdk: str, out_dir: Path, *,
                 prune: Sequence[float] = (), heads: int | None = None,
                 synth_cache: dict[str, Any] | None = None,
                 variants: Sequence[str] = VARIANTS) -> dict[str, Any]:
    """Energy per head of the ``variants`` (default all three; the baseline always) on one
    (requantized) trace, with the learned thresholds and at each ``prune`` fraction;
    compact records per setting, the SRAM costs used, and the pruned fraction of each
    setting (golden model)."""
    from ..flow.energy import head_energy, prune_to

    every = {"leopard": cfg, "pruning_only": cfg.pruning_only(), "baseline": cfg.baseline()}
    bad = [v for v in variants if v not in every]
    if bad or "baseline" not in variants:
        raise EvaluationError(f"variants must be among {', '.join(VARIANTS)} and include "
                              f"the baseline, not {', '.join(variants)}")
    run = {v: every[v] for v in VARIANTS if v in variants}
    n = trace.heads if heads is None else max(1, min(heads, trace.heads))
    rec: dict[str, Any] = {"heads_simulated": n, "heads": trace.heads, "settings": {}}
    for f in (None, *prune):
        t = trace if f is None else prune_to(trace, f)
        name = setting_name(f)
        res = head_energy(cfg, t, pdk, out_dir / name, heads=n, variants=run,
                          synth_cache=synth_cache)
        rec["settings"][name] = {"pruned_fraction": _pruned_fraction(t, cfg, n),
                                 "variants": _compact(res)}
        if "memories" not in rec:
            rec["memories"] = {b: m for u in res["variants"]["leopard"]["units"].values()
                               for b, m in u["memories"].items()}
    return rec


def energy_all_traces(out_dir: Path, *, traces_root: Path | None = None,
                      only: Sequence[str] = (), preset_name: str = "auto",
                      overrides: Sequence[str] = (), pdk: str = "nangate45",
                      prune: Sequence[float] = (0.8, 0.9), heads: int | None = None,
                      build_dir: Path | None = None, quiet: bool = False,
                      variants: Sequence[str] = VARIANTS) -> dict[str, Any]:
    """Energy of the three variants on every committed trace (module docstring).

    Writes ``out_dir/energy_traces.json`` (per trace and summary) and
    ``out_dir/energy_traces.md`` (small files); each run's details (netlists, SAIFs,
    ``energy.json``) under ``build_dir`` (default ``build/flow/energy-traces``). Families
    with the most traces run first (then the smallest head_dim): each family's netlists
    are synthesized when its first trace comes, and the JSON is rewritten after every
    trace, so an interrupted run leaves the traces done.
    """
    out_dir = Path(out_dir)
    build_dir = Path(build_dir) if build_dir else build_root() / "flow" / "energy-traces"
    paths = discover_traces(Path(traces_root) if traces_root else REPO / "traces", only)
    traces = {str(p): load_trace(p) for p in paths}
    fams = family_configs(traces, preset_name, overrides)
    for f in prune:
        if not 0.0 < f < 1.0:
            raise EvaluationError(f"--prune-to must be in (0, 1), not {f}")
    n_of = {d: sum(1 for t in traces.values() if t.head_dim == d) for d in fams}
    order = sorted(paths, key=lambda p: (-n_of[traces[str(p)].head_dim],
                                         traces[str(p)].head_dim, str(p)))
    cache: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    res: dict[str, Any] = {"method": "access", "pdk": pdk, "preset": preset_name,
                           "variants": [v for v in VARIANTS if v in variants],
                           "overrides": list(overrides), "prune_to": list(prune),
                           "families": {str(d): c.to_dict() for d, c in fams.items()},
                           "traces": rows}
    for i, p in enumerate(order):
        t = traces[str(p)]
        cfg = fams[t.head_dim]
        wl, layer = trace_label(p)
        progress(f"[energy {i + 1}/{len(order)}] {rel(p)}: {t.heads} heads, config "
                 f"{cfg.name}, {1 + len(prune)} settings x 3 variants x 2 units", quiet)
        rec = trace_energy(requantize(t, cfg.qk_bits, cfg.v_bits), cfg, pdk,
                           build_dir / f"{wl}-{layer}", prune=prune, heads=heads,
                           synth_cache=cache, variants=variants)
        rec.update({"trace": rel(p), "workload": wl, "layer": layer, "config": cfg.name})
        rows.append(rec)
        res["summary"] = summarize_energy(rows)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "energy_traces.json", json.dumps(res, indent=1) + "\n")
    atomic_write(out_dir / "energy_traces.md", energy_markdown(res))
    return res


def summarize_energy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per setting: geomean reductions, the saving's split and the baseline shares."""
    from ..flow.energy import CATEGORIES

    out: dict[str, Any] = {}
    names = [s for s in rows[0]["settings"]] if rows else []
    for s in names:
        rs = [r["settings"][s] for r in rows if s in r["settings"]]
        red = {v: geomean([x["variants"]["baseline"]["energy_per_head_nj"]
                           / x["variants"][v]["energy_per_head_nj"] for x in rs])
               for v in VARIANTS if all(v in x["variants"] for x in rs)}
        # per category, LeOPArd's and the baseline's energy over the baseline's total
        # (each trace weighs the same), their mean over traces
        base_share = {c: float(np.mean([x["variants"]["baseline"]["split_nj"][c]
                                        / x["variants"]["baseline"]["energy_per_head_nj"]
                                        for x in rs])) for c in CATEGORIES}
        leo_share = {c: float(np.mean([x["variants"]["leopard"]["split_nj"][c]
                                       / x["variants"]["baseline"]["energy_per_head_nj"]
                                       for x in rs])) for c in CATEGORIES}
        saved = {c: base_share[c] - leo_share[c] for c in CATEGORIES}
        tot = sum(saved.values())
        groups: dict[str, float] = {}
        for c in CATEGORIES:
            groups[GROUPS[c]] = groups.get(GROUPS[c], 0.0) + saved[c]
        wi = [what_if(x) for x in rs]
        out[s] = {"traces": len(rs),
                  "what_if_geomean": {k: geomean([w[k] for w in wi]) for k in WHAT_IF},
                  "pruned_fraction_mean": float(np.mean([x["pruned_fraction"] for x in rs])),
                  "geomean_reduction": red,
                  "min_reduction": min(x["variants"]["baseline"]["energy_per_head_nj"]
                                       / x["variants"]["leopard"]["energy_per_head_nj"]
                                       for x in rs),
                  "max_reduction": max(x["variants"]["baseline"]["energy_per_head_nj"]
                                       / x["variants"]["leopard"]["energy_per_head_nj"]
                                       for x in rs),
                  "baseline_share": base_share, "leopard_share": leo_share,
                  "saving_share": {c: (saved[c] / tot if tot else float("nan"))
                                   for c in CATEGORIES},
                  "saving_share_groups": {g: (x / tot if tot else float("nan"))
                                          for g, x in groups.items()},
                  "saved_of_baseline": tot}
    return out


#: Counterfactuals of :func:`what_if` (name -> what it assumes).
WHAT_IF = {
    "leakage_at_baseline_clock": "LeOPArd's leakage x time at the baseline's clock period",
    "frontend_at_baseline_cost": "LeOPArd's front-end logic at the baseline front end's "
                                 "energy per cycle (its own cycles)",
    "backend_per_survivor": "LeOPArd's back-end logic = the baseline's x survivors ratio "
                            "(no per-query cost left: reciprocal/normalizer gated off)",
    "all_three": "the three together",
}


def what_if(x: dict[str, Any]) -> dict[str, float]:
    """Energy reduction of LeOPArd over the baseline on one setting record if one cost
    were removed (:data:`WHAT_IF`): modelled counterfactuals from the measured split,
    not measurements; they bound what each lever can give."""
    b, leo = x["variants"]["baseline"], x["variants"]["leopard"]
    base_e = b["energy_per_head_nj"]
    sp = leo["split_nj"]
    leak = sp["leakage"] * b["clock_ns"] / leo["clock_ns"]
    fe = (b["split_nj"]["frontend_logic"] / b["unit_cycles_per_head"]["frontend"]
          * leo["unit_cycles_per_head"]["frontend"])
    surv_b = b["accesses_per_head"]["v_read"]
    be = b["split_nj"]["backend_logic"] * (leo["accesses_per_head"]["v_read"] / surv_b
                                           if surv_b else 0.0)
    tot = leo["energy_per_head_nj"]
    alt = {"leakage_at_baseline_clock": tot - sp["leakage"] + leak,
           "frontend_at_baseline_cost": tot - sp["frontend_logic"] + fe,
           "backend_per_survivor": tot - sp["backend_logic"] + be}
    alt["all_three"] = (tot - sp["leakage"] - sp["frontend_logic"] - sp["backend_logic"]
                        + leak + fe + be)
    return {k: base_e / v for k, v in alt.items()}


def energy_markdown(res: dict[str, Any]) -> str:
    """The tables of ``energy_traces.md``."""
    from ..flow.energy import CATEGORIES

    rows, summ = res["traces"], res.get("summary", {})
    L = ["# Energy per head on every committed trace (access method)", "",
         f"Library {res['pdk']}; configurations per family: "
         + ", ".join(f"d={d}: `{c['name']}`" for d, c in res["families"].items())
         + ". nJ per head; reduction = baseline / variant. docs/ENERGY.md gives the method.",
         "", "## Summary (geomean over traces)", "",
         "| setting | traces | pruned (mean) | LeOPArd | pruning-only | min - max (LeOPArd) |",
         "|---|---|---|---|---|---|"]
    for s, x in summ.items():
        g = x["geomean_reduction"]
        L.append(f"| {s} | {x['traces']} | {x['pruned_fraction_mean']:.1%} | "
                 f"**{g['leopard']:.3f}x** | "
                 + (f"{g['pruning_only']:.3f}x" if "pruning_only" in g else "not run")
                 + f" | {x['min_reduction']:.2f} - {x['max_reduction']:.2f} |")

    def po(x: dict[str, Any], b: float, ratio: bool) -> str:
        if "pruning_only" not in x:
            return "-"
        e = x["pruning_only"]["energy_per_head_nj"]
        return f"{b / e:.3f}" if ratio else f"{e:.1f}"

    L += ["", "## Where the saving comes from (LeOPArd vs baseline, share of the saving; "
          "each trace weighted equally)", "",
          "| setting | " + " | ".join(CATEGORIES) + " | saved / baseline |",
          "|---|" + "---|" * (len(CATEGORIES) + 1)]
    for s, x in summ.items():
        L.append(f"| {s} | " + " | ".join(f"{x['saving_share'][c]:+.1%}" for c in CATEGORIES)
                 + f" | {x['saved_of_baseline']:.1%} |")
    L += ["", "Grouped:", ""]
    for s, x in summ.items():
        L.append(f"* {s}: " + "; ".join(f"{g} {v:+.1%}"
                                        for g, v in x["saving_share_groups"].items()))
    L += ["", "## What each lever would give (modelled counterfactuals, geomean reduction)",
          "", "| setting | measured | " + " | ".join(WHAT_IF) + " |",
          "|---|---|" + "---|" * len(WHAT_IF)]
    for s, x in summ.items():
        if "what_if_geomean" in x:
            L.append(f"| {s} | {x['geomean_reduction']['leopard']:.3f} | "
                     + " | ".join(f"{x['what_if_geomean'][k]:.3f}" for k in WHAT_IF) + " |")
    L += [""] + [f"* `{k}`: {v}" for k, v in WHAT_IF.items()]
    L += ["", "## Each category as a share of the baseline's energy (mean over traces)", "",
          "| setting | variant | " + " | ".join(CATEGORIES) + " | total |",
          "|---|---|" + "---|" * (len(CATEGORIES) + 1)]
    for s, x in summ.items():
        for v, sh in (("baseline", x["baseline_share"]), ("leopard", x["leopard_share"])):
            L.append(f"| {s} | {v} | " + " | ".join(f"{sh[c]:.1%}" for c in CATEGORIES)
                     + f" | {sum(sh.values()):.1%} |")
    L += ["", "## Per trace", "",
          "| trace | config | setting | pruned | LeOPArd nJ | pruning-only nJ | baseline nJ "
          "| LeOPArd x | pruning-only x | clock ns (L / B) |", "|---" * 10 + "|"]
    for r in rows:
        for s, x in r["settings"].items():
            v = x["variants"]
            b = v["baseline"]["energy_per_head_nj"]
            L.append(f"| {r['trace']} | {r['config']} | {s} | {x['pruned_fraction']:.1%} | "
                     f"{v['leopard']['energy_per_head_nj']:.1f} | "
                     f"{po(v, b, False)} | {b:.1f} | "
                     f"{b / v['leopard']['energy_per_head_nj']:.3f} | "
                     f"{po(v, b, True)} | "
                     f"{v['leopard']['clock_ns']:.2f} / {v['baseline']['clock_ns']:.2f} |")
    L += ["", "## SRAM energies used (CACTI 7, per access)", "",
          "| config | memory | words x bits | copies | read pJ | write pJ | leakage uW | "
          "access ns | source |", "|---|---|---|---|---|---|---|---|---|"]
    seen: set[str] = set()
    for r in rows:
        if r["config"] in seen:
            continue
        seen.add(r["config"])
        for b, m in r["memories"].items():
            L.append(f"| {r['config']} | {b} | {m['words']} x {m['bits']} | {m['copies']} | "
                     f"{m['read_pj']:.3f} | {m['write_pj']:.3f} | {m['leakage_uw']:.3f} | "
                     f"{m['access_ns']:.2f} | {m.get('source', '')} |")
    return "\n".join(L) + "\n"
