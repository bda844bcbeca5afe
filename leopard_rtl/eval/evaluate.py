"""Evaluation: speedup, energy and accuracy of LeOPArd against the baseline.

``leopard-rtl evaluate [--preset P] [--rtl] --out DIR`` (see docs/EVALUATION.md). One job:
run the steps in order; each lives in its own module.

For every committed real trace (``traces/*/*.npz``; ``sample_*.npz`` are copies of a
layer and are skipped):

* **configuration** (:mod:`.inputs`): the widths and lanes of the preset (``auto``:
  ``minilm`` widths for d=32, ``paper`` widths otherwise), ``head_dim`` = the trace's d and
  ``max_keys`` = the next power of two >= the longest key sequence of that d (one
  *family* per d, synthesized once); traces requantized when the widths differ;
* **cycles** (:mod:`.cycles`) of LeOPArd, pruning-only and the baseline from the
  performance model, cycle-exact against the core RTL; with ``--rtl`` every trace (by
  default the smallest one) also runs on the core RTL and the cycles are compared;
* **energy per head** (:mod:`.energy`): SRAM accesses counted in a simulation of the
  RTL x CACTI energy + per-block logic energy at the simulated activity (clock gating
  modelled) + leakage x time (``--energy access``, the default; docs/ENERGY.md), or the
  older power of the synthesized core at activity 0.1 x model cycles (``ref``/``full``);
* **accuracy** with and without learned pruning from ``results/learn/results.json``;
* **report** (:mod:`.report`) and **plots** (:mod:`.plots`).

It writes ``DIR/results.json``, ``DIR/report.md`` and plots.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.trace import Trace, load_trace

from ..config import ConfigError
from .common import REPO, VARIANTS, EvaluationError, progress, rel, to_json
from .cycles import rtl_check, speedups, trace_cycles
from .energy import PowerInfo, energy_rows, rows_from_setting, synth_power
from .energy_traces import setting_name, summarize_energy, trace_energy
from .inputs import (
    accuracy_table,
    discover_traces,
    family_configs,
    qor_rows,
    requantize,
    trace_label,
)
from .plots import write_plots
from .report import summarize, write_report
from .sweep import sweep

__all__ = ["evaluate", "main_evaluate", "parse_rtl"]


# ------------------------------------------------------------------------ main flow
def evaluate(out_dir: Path, *, preset_name: str = "auto", overrides: Sequence[str] = (),
             traces_root: Path | None = None, only: Sequence[str] = (),
             rtl: str = "one", simulator: str = "verilator", energy: str = "access",
             pdk: str = "nangate45", learn_results: Path | None = None,
             qor_json: Path | None = None, build_dir: Path | None = None,
             plots: bool = True, quiet: bool = False, with_sweep: bool = False,
             energy_prune: Sequence[float] = ()) -> dict[str, Any]:
    """Run the evaluation and write ``out_dir/results.json``, ``report.md`` and plots.

    Parameters
    ----------
    rtl : ``"none"``, ``"one"`` (the smallest trace) or ``"all"``
        Which traces also run through the core RTL to check the model's cycles.
    energy : ``"none"``, ``"access"``, ``"ref"`` or ``"full"``
        ``access`` (default): every trace, every variant, by
        :func:`leopard_rtl.flow.energy.head_energy` (SRAM accesses counted in a SAIF
        simulation of the RTL x CACTI energy per access, per-block logic energy at the
        simulated activity with clock gating modelled, leakage x time at each design's
        own clock; docs/ENERGY.md). The older uniform-activity modes follow.
        ``ref``: synthesize the three variants of the family with the smallest head_dim
        only; traces of that family get their energy from its powers, the others from the
        same powers (their rows say ``absolute: false``: the per-head energy then is that
        of the reference netlist running the trace's cycles, and the reduction is the
        cycle reduction weighted by the variants' power ratio). ``full``: synthesize every
        family (minutes each; tens of minutes for d=64).
    energy_prune : fractions
        With ``access``: also each fraction of pruning, every head's threshold
        recalibrated (:func:`leopard_rtl.flow.energy.prune_to`); the report gives the
        geometric-mean energy reduction and the saving's split at each.
    """
    t_start = time.monotonic()
    out_dir = Path(out_dir)
    traces_root = Path(traces_root) if traces_root else REPO / "traces"
    learn_results = Path(learn_results) if learn_results else REPO / "results/learn/results.json"
    qor_json = Path(qor_json) if qor_json else REPO / "docs/qor.json"
    build_dir = Path(build_dir) if build_dir else REPO / "build/eval"
    for name, val, ok in (("rtl", rtl, ("none", "one", "all")),
                          ("energy", energy, ("none", "access", "ref", "full"))):
        if val not in ok:
            raise EvaluationError(f"--{name} must be one of {', '.join(ok)}, not {val!r}")
    for f in energy_prune:
        if not 0.0 < f < 1.0:
            raise EvaluationError(f"--energy-prune-to must be in (0, 1), not {f}")
    paths = discover_traces(traces_root, only)
    traces: dict[str, Trace] = {}
    for p in paths:
        traces[str(p)] = load_trace(p)
    try:
        fams = family_configs(traces, preset_name, overrides)
    except ConfigError as exc:
        raise EvaluationError(f"configuration: {exc}") from None
    accuracy = accuracy_table(learn_results)
    out_dir.mkdir(parents=True, exist_ok=True)

    # ---- cycles per trace
    rows: list[dict[str, Any]] = []
    n = len(paths)
    for i, p in enumerate(paths):
        t = traces[str(p)]
        cfg = fams[t.head_dim]
        wl, layer = trace_label(p)
        progress(f"[{i + 1}/{n}] {wl}/{layer}: {t.heads} heads x {t.n_queries}x{t.n_keys}, "
                  f"d={t.head_dim}, config {cfg.name}", quiet)
        tq = requantize(t, cfg.qk_bits, cfg.v_bits)
        r = trace_cycles(tq, cfg)
        r.update({"trace": rel(p), "workload": wl, "layer": layer,
                  "layer_index": t.meta.get("layer"), "requantized": tq is not t,
                  "speedup": speedups(r["cycles"])})
        rows.append(r)

    # ---- RTL check
    rtl_res: list[dict[str, Any]] = []
    if rtl != "none":
        # "one": a trace of the smallest hardware (head_dim x max_keys), the one that
        # prunes most among those (the most early terminations and back-end skips).
        def size(j: int) -> tuple[int, float]:
            c = fams[traces[str(paths[j])].head_dim]
            return (c.head_dim * c.max_keys, -rows[j]["pruned_fraction"])
        order = sorted(range(n), key=size)
        pick = order[:1] if rtl == "one" else order
        for c, j in enumerate(pick):
            p = paths[j]
            t = traces[str(p)]
            cfg = fams[t.head_dim]
            progress(f"[rtl {c + 1}/{len(pick)}] {rel(p)}: core RTL ({simulator}), 3 "
                      f"variants, config {cfg.name} ...", quiet)
            chk = rtl_check(requantize(t, cfg.qk_bits, cfg.v_bits), cfg, rows[j]["cycles"],
                            simulator=simulator, build_dir=build_dir / "rtl" / cfg.name)
            chk["trace"] = rel(p)
            rtl_res.append(chk)

    # ---- energy
    energy_res: dict[str, Any] = {"mode": energy, "pdk": pdk, "families": {}}
    if energy == "access":
        cache: dict[str, Any] = {}
        records: list[dict[str, Any]] = []
        for i, (p, r) in enumerate(zip(paths, rows, strict=True)):
            t = traces[str(p)]
            cfg = fams[t.head_dim]
            progress(f"[energy {i + 1}/{n}] {rel(p)}: SRAM accesses + gated logic + "
                     f"leakage, 3 variants x 2 units on {pdk}, {1 + len(energy_prune)} "
                     f"threshold setting(s) ...", quiet)
            rec = trace_energy(requantize(t, cfg.qk_bits, cfg.v_bits), cfg, pdk,
                               build_dir / "energy" / f"{r['workload']}-{r['layer']}",
                               prune=energy_prune, synth_cache=cache)
            rec.update({"trace": rel(p), "workload": r["workload"], "layer": r["layer"],
                        "config": cfg.name})
            records.append(rec)
            r["energy"] = rows_from_setting(rec["settings"][setting_name(None)], cfg.name)
        energy_res["summary"] = summarize_energy(records)
        energy_res["memories"] = {rec["config"]: rec["memories"] for rec in records}
        energy_res["settings"] = [{"trace": rec["trace"], **{
            s: {"pruned_fraction": x["pruned_fraction"],
                "reduction": {v: x["variants"]["baseline"]["energy_per_head_nj"]
                              / x["variants"][v]["energy_per_head_nj"] for v in VARIANTS}}
            for s, x in rec["settings"].items()}} for rec in records]
    elif energy != "none":
        ds = sorted(fams) if energy == "full" else [min(fams)]
        for d in ds:
            cfg = fams[d]
            progress(f"[energy] {cfg.name}: core netlists of 3 variants on {pdk}", quiet)
            pw = {"leopard": synth_power(cfg, pdk, build_dir / "synth", quiet=quiet),
                  "pruning_only": synth_power(cfg.pruning_only(), pdk, build_dir / "synth",
                                              quiet=quiet),
                  "baseline": synth_power(cfg.baseline(), pdk, build_dir / "synth",
                                          quiet=quiet)}
            energy_res["families"][str(d)] = {v: pw[v].to_dict() for v in VARIANTS}
        ref_d = str(min(fams))
        for r in rows:
            d = str(r["head_dim"])
            fam = energy_res["families"].get(d)
            src = d if fam is not None else ref_d
            pw = {v: PowerInfo(**energy_res["families"][src][v]) for v in VARIANTS}
            e = energy_rows(r["cycles"], pw)
            e["power_from"] = fams[int(src)].name
            e["absolute"] = fam is not None       # False: power of another family
            r["energy"] = e

    # ---- summary
    summary = summarize(rows, accuracy, energy != "none")
    res = {"command": "leopard-rtl evaluate", "preset": preset_name,
           "overrides": list(overrides), "families": {str(d): c.to_dict()
                                                       for d, c in fams.items()},
           "traces": rows, "rtl_check": rtl_res, "energy": energy_res,
           "accuracy": accuracy, "qor": qor_rows(qor_json), "summary": summary}
    if with_sweep:
        progress("[sweep] design-space sweep (synthesis cached in build/eval/synth) ...",
                  quiet)
        sw = sweep(out_dir, pdk=pdk, traces_root=traces_root, build_dir=build_dir,
                   plots=plots)
        res["sweep"] = {k: sw.get(k) for k in ("best_speedup_per_area",
                                                "best_speedup_per_area_precise",
                                                "best_at_iso_area", "error_limit_v_lsb",
                                                "seconds")}
        res["sweep"]["points"] = sw["points"]
    res["seconds"] = round(time.monotonic() - t_start, 1)
    (out_dir / "results.json").write_text(json.dumps(res, indent=1, default=to_json) + "\n")
    if plots and _have_matplotlib():
        res["plots"] = write_plots(res, out_dir)
        if (out_dir / "pareto.png").is_file() and with_sweep:
            res["plots"].append(str(out_dir / "pareto.png"))
    write_report(res, out_dir / "report.md")
    (out_dir / "results.json").write_text(json.dumps(res, indent=1, default=to_json) + "\n")
    return res


def _have_matplotlib() -> bool:
    if importlib.util.find_spec("matplotlib") is None:
        progress("warning: matplotlib is not installed: no plots (pip install matplotlib)")
        return False
    return True


# ------------------------------------------------------------------------ CLI glue
def parse_rtl(flag: bool, mode: str | None) -> str:
    """``--rtl`` means all traces; otherwise ``mode`` (default ``one``)."""
    return "all" if flag else (mode or "one")


def main_evaluate(args: Any) -> int:
    """``leopard-rtl evaluate`` (registered by :mod:`leopard_rtl.cli.eval`)."""
    res = evaluate(Path(args.out), preset_name=args.preset, overrides=args.set,
                   traces_root=Path(args.traces) if args.traces else None, only=args.trace,
                   rtl=parse_rtl(args.rtl, args.rtl_mode), simulator=args.simulator,
                   energy=args.energy, pdk=args.pdk,
                   learn_results=Path(args.learn_results) if args.learn_results else None,
                   build_dir=Path(args.build_dir) if args.build_dir else None,
                   plots=not args.no_plots, with_sweep=args.sweep,
                   energy_prune=tuple(getattr(args, "energy_prune_to", None) or ()))
    s = res["summary"]
    line = {"geomean_speedup": round(s["geomean_speedup"], 4),
            "geomean_energy_reduction": (round(s["geomean_energy_reduction"], 4)
                                         if "geomean_energy_reduction" in s else None),
            "traces": s["traces"], "rtl_cycles_equal_model": all(
                c["all_equal"] for c in res["rtl_check"]) if res["rtl_check"] else None,
            "seconds": res["seconds"], "report": str(Path(args.out) / "report.md")}
    print(json.dumps(line))
    if res["rtl_check"] and not all(c["all_equal"] for c in res["rtl_check"]):
        print("leopard-rtl: error: RTL cycles differ from the performance model "
              "(see report.md, 'Model vs RTL cycles')", file=sys.stderr)
        return 1
    return 0
