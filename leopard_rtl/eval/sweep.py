"""Design-space sweep: lanes x qk_bits x back-end width, speedup per area.

``leopard-rtl sweep --out DIR`` (docs/EVALUATION.md).

* **Area** from synthesis (Yosys + OpenSTA, nangate45) of the design points at the
  *sweep family* (``head_dim=16, max_keys=32``, the ViT traces' size: small enough to
  synthesize a dozen points in about 20 minutes on 2 cores). The front end depends only on
  ``(lanes, qk_bits)`` and the back end on ``(qk_bits, exp_frac_bits, exp_bits,
  recip_bits)``, so each is synthesized once per distinct Verilog (cache keyed by the
  Verilog's hash, :func:`leopard_rtl.eval.energy.synth_cached`) and a point's core area is
  ``frontend + backend + glue``, the glue (statistics counters and top level) taken from
  the synthesized reference core. The sum is checked against a full core synthesis of the
  reference point when it is in the cache.
* **Cycles** from the performance model on every real trace (each at its own head_dim,
  with the point's lanes, qk_bits and back end; traces requantized to ``qk_bits`` with the
  learned thresholds re-derived, :func:`leopard_rtl.eval.inputs.requantize`). ``lanes`` is
  kept ``<= qk_bits``, where the model is cycle-exact.
* **Figure of merit**: speedup per area = (reference cycles / point cycles, geometric mean
  over the traces) / (point area / reference area); the Pareto front of (area, geomean
  cycles) and the best point at iso-area (area <= the reference's) are reported.
* **Precision proxy**: narrower Q/K or back end changes the outputs; the mean absolute
  error of the core's output against float attention of the original 12-bit trace over
  the reference design's survivors (``sim.golden.attention_float``, in V LSBs) is
  reported per point, and the preset is the best speedup per area among the points whose
  error is at most :data:`ERROR_LIMIT_LSB` (half an output LSB). (The task metrics of
  results/learn are for the 12-bit design.)
"""

from __future__ import annotations

import json
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from sim.golden import attention_float, run_golden
from sim.trace import load_trace

from ..config import LeopardConfig, preset
from .common import REPO, geomean, progress
from .energy import synth_cached
from .inputs import discover_traces, family_configs, requantize

__all__ = ["BACK_ENDS", "LANES", "QK_BITS", "design_points", "point_config", "sweep",
           "pareto", "SWEEP_FAMILY"]

LANES = (2, 4, 8, 12)
QK_BITS = (8, 12)
#: Back-end widths: exp LUT fraction bits F, exp precision E, reciprocal precision R.
BACK_ENDS: dict[str, dict[str, int]] = {
    "be12": {"exp_frac_bits": 6, "exp_bits": 12, "recip_bits": 12},
    "be16": {"exp_frac_bits": 8, "exp_bits": 16, "recip_bits": 16},
}
#: Where area is synthesized (head_dim, max_keys).
SWEEP_FAMILY = (16, 32)
#: The reference point (the paper preset's lanes, widths and back end).
REFERENCE = (8, 12, "be16")
#: A point is "precise" when its mean output error is below this many V LSBs (half an LSB:
#: on average the output stays within rounding of the float reference).
ERROR_LIMIT_LSB = 0.5


def design_points() -> list[tuple[int, int, str]]:
    """(lanes, qk_bits, back end) with lanes <= qk_bits (where the model is exact)."""
    return [(lanes, qk, be) for qk, lanes, be in product(QK_BITS, LANES, BACK_ENDS)
            if lanes <= qk]


def point_config(base: LeopardConfig, lanes: int, qk: int, be: str) -> LeopardConfig:
    """``base`` with the point's lanes, qk_bits and back-end widths."""
    return base.replace(lanes=lanes, qk_bits=qk, **BACK_ENDS[be],
                        name=f"{base.name}-L{lanes}q{qk}{be}")


def pareto(points: list[dict[str, Any]], x: str, y: str) -> list[int]:
    """Indices of the points not dominated in (``x`` lower, ``y`` lower)."""
    keep = []
    for i, p in enumerate(points):
        dom = any((q[x] <= p[x] and q[y] <= p[y]) and (q[x] < p[x] or q[y] < p[y])
                  for q in points)
        if not dom:
            keep.append(i)
    return keep


def _output_error(ref: np.ndarray, trace: Any, cfg: LeopardConfig) -> float:
    """Mean |core output - ``ref``| in V LSBs (``trace`` keeps the original V bits)."""

    return float(np.mean(np.abs(run_golden(trace, cfg).out - ref)))


def _reference_output(orig: Any, ref_cfg: LeopardConfig) -> np.ndarray:
    """Float attention of the original trace over the reference design's survivors.

    The error of a point against it isolates what the point's widths change (Q/K
    quantization, the prune set that follows from it, the back end's fixed point) from
    the pruning that every point shares.
    """

    mask = run_golden(orig, ref_cfg).mask
    return attention_float(orig.q, orig.k, orig.v, orig.scale_q, orig.scale_k, mask)


def sweep(out_dir: Path, *, pdk: str = "nangate45", traces_root: Path | None = None,
          build_dir: Path | None = None, synthesize: bool = True,
          plots: bool = True) -> dict[str, Any]:
    """Run the sweep; write ``out_dir/sweep.json``, ``sweep.md`` and ``pareto.png``."""

    t0 = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir = Path(build_dir) if build_dir else REPO / "build/eval"
    cache = build_dir / "synth"
    paths = discover_traces(Path(traces_root) if traces_root else REPO / "traces")
    traces = {str(p): load_trace(p) for p in paths}
    fams = family_configs(traces, "paper")
    d, mk = SWEEP_FAMILY
    area_base = preset("paper").replace(head_dim=d, max_keys=mk, name=f"paper-d{d}k{mk}")
    pts = design_points()

    # ---- area: front ends and back ends, synthesized once each
    area: dict[tuple[int, int, str], dict[str, float]] = {}
    ref_core = None
    if synthesize:
        rep, _, _ = synth_cached("core", area_base, pdk, cache)
        ref_core = rep
    glue = 0.0
    if ref_core is not None:
        b = ref_core["synth"]["blocks_um2"]
        # the core's fan-out buffers are not glue: each unit's own synthesis has its own
        glue = sum(v for k, v in b.items()
                   if k not in ("frontend", "backend", "(fan-out buffers)"))
    for n, (lanes, qk, be) in enumerate(pts):
        cfg = point_config(area_base, lanes, qk, be)
        progress(f"[sweep area {n + 1}/{len(pts)}] {cfg.name}")
        if not synthesize:
            continue
        fe, fe_c, _ = synth_cached("frontend", cfg, pdk, cache)
        bk, be_c, _ = synth_cached("backend", cfg, pdk, cache)
        area[(lanes, qk, be)] = {
            "frontend_um2": fe["synth"]["area_um2"] + fe["synth"].get("macro_area_um2", 0.0),
            "backend_um2": bk["synth"]["area_um2"] + bk["synth"].get("macro_area_um2", 0.0),
            "fmax_mhz": min(fe["sta"]["fmax_mhz"], bk["sta"]["fmax_mhz"])}

    # ---- cycles on every real trace
    rows: list[dict[str, Any]] = []
    tq_cache: dict[tuple[str, int], Any] = {}
    refs: dict[str, np.ndarray] = {}
    for n, (lanes, qk, be) in enumerate(pts):
        progress(f"[sweep cycles {n + 1}/{len(pts)}] lanes={lanes} qk_bits={qk} {be}")
        cyc, base_cyc, err = [], [], []
        for p, t in traces.items():
            cfg = point_config(fams[t.head_dim], lanes, qk, be)
            key = (p, qk)
            if key not in tq_cache:
                tq_cache[key] = requantize(t, qk, t.v_bits)
            g = run_golden(tq_cache[key], cfg)
            cyc.append(int(g.cycles.sum()))
            base_cyc.append(int(g.baseline_cycles.sum()))
            if p not in refs:
                refs[p] = _reference_output(t, fams[t.head_dim])
            err.append(_output_error(refs[p], tq_cache[key], cfg))
        row: dict[str, Any] = {"lanes": lanes, "qk_bits": qk, "back_end": be,
                               **BACK_ENDS[be], "cycles": cyc,
                               "baseline_cycles": base_cyc,
                               "speedup_vs_own_baseline": geomean(
                                   [b / c for b, c in zip(base_cyc, cyc, strict=True)]),
                               "mean_abs_error_v_lsb": float(np.mean(err))}
        if (lanes, qk, be) in area:
            a = area[(lanes, qk, be)]
            row.update(a)
            row["area_um2"] = a["frontend_um2"] + a["backend_um2"] + glue
        rows.append(row)
    ref_i = pts.index(REFERENCE)
    ref = rows[ref_i]
    for r in rows:
        r["speedup_vs_reference"] = geomean([c0 / c for c0, c in
                                             zip(ref["cycles"], r["cycles"], strict=True)])
        r["geomean_cycles"] = geomean(r["cycles"])
        if "area_um2" in r and "area_um2" in ref:
            r["area_rel"] = r["area_um2"] / ref["area_um2"]
            r["speedup_per_area"] = r["speedup_vs_reference"] / r["area_rel"]
    res: dict[str, Any] = {"command": "leopard-rtl sweep", "pdk": pdk,
                           "area_family": {"head_dim": d, "max_keys": mk}, "glue_um2": glue,
                           "traces": [str(Path(p).relative_to(REPO)) if Path(p).is_absolute()
                                      else p for p in traces],
                           "reference": dict(zip(("lanes", "qk_bits", "back_end"), REFERENCE,
                                                 strict=True)),
                           "points": rows}
    if ref_core is not None:
        res["reference_core_um2"] = (ref_core["synth"]["area_um2"]
                                     + ref_core["synth"].get("macro_area_um2", 0.0))
        res["reference_sum_um2"] = ref.get("area_um2")
    with_area = [i for i, r in enumerate(rows) if "speedup_per_area" in r]
    if with_area:
        sub = [rows[i] for i in with_area]
        front = [with_area[i] for i in pareto(sub, "area_um2", "geomean_cycles")]
        for i in front:
            rows[i]["pareto"] = True
        best = max(with_area, key=lambda i: rows[i]["speedup_per_area"])
        iso = [i for i in with_area if rows[i]["area_um2"] <= rows[ref_i]["area_um2"]]
        best_iso = max(iso, key=lambda i: rows[i]["speedup_vs_reference"]) if iso else None
        res["best_speedup_per_area"] = best
        # the same among points whose output error stays below ERROR_LIMIT_LSB (a
        # narrower point can win by losing precision)
        lim = ERROR_LIMIT_LSB
        ok = [i for i in with_area if rows[i]["mean_abs_error_v_lsb"] <= lim]
        res["error_limit_v_lsb"] = lim
        res["best_speedup_per_area_precise"] = (
            max(ok, key=lambda i: rows[i]["speedup_per_area"]) if ok else None)
        res["best_at_iso_area"] = best_iso
    res["seconds"] = round(time.monotonic() - t0, 1)
    import importlib.util
    if plots and with_area and importlib.util.find_spec("matplotlib") is not None:
        res["plot"] = _plot(res, out_dir / "pareto.png")
    (out_dir / "sweep.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "sweep.md").write_text(markdown(res))
    return res


def markdown(res: dict[str, Any]) -> str:
    """The sweep table as markdown."""
    L = ["# Design-space sweep: lanes x qk_bits x back-end width", "",
         f"Generated by `leopard-rtl sweep` in {res['seconds']} s. Area: synthesized on "
         f"{res['pdk']} at head_dim={res['area_family']['head_dim']}, max_keys="
         f"{res['area_family']['max_keys']} (front end + back end + glue "
         f"{res['glue_um2']:.0f} um^2); cycles: performance model on "
         f"{len(res['traces'])} real traces. Reference = lanes 8, qk_bits 12, be16 "
         "(the paper preset).", ""]
    if "reference_core_um2" in res and res.get("reference_sum_um2"):
        L += [f"Check of the area sum: reference core synthesized whole "
              f"{res['reference_core_um2']:.0f} um^2, sum of its parts "
              f"{res['reference_sum_um2']:.0f} um^2.", ""]
    L += ["| lanes | qk_bits | back end (F/E/R) | area um^2 | area rel | fmax MHz | "
          "speedup vs ref | speedup vs own baseline | speedup/area | mean abs err (V LSB) "
          "| Pareto |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["points"]:
        L.append(f"| {r['lanes']} | {r['qk_bits']} | {r['exp_frac_bits']}/{r['exp_bits']}/"
                 f"{r['recip_bits']} | {r.get('area_um2', float('nan')):.0f} | "
                 f"{r.get('area_rel', float('nan')):.3f} | "
                 f"{r.get('fmax_mhz', float('nan')):.1f} | "
                 f"{r['speedup_vs_reference']:.3f} | {r['speedup_vs_own_baseline']:.3f} | "
                 f"{r.get('speedup_per_area', float('nan')):.3f} | "
                 f"{r['mean_abs_error_v_lsb']:.2f} | {'yes' if r.get('pareto') else ''} |")
    if res.get("best_speedup_per_area") is not None:
        b = res["points"][res["best_speedup_per_area"]]
        L += ["", f"**Best speedup per area**: lanes {b['lanes']}, qk_bits {b['qk_bits']}, "
              f"back end {b['back_end']} ({b['speedup_vs_reference']:.3f}x the reference's "
              f"speed at {b['area_rel']:.3f}x its area: {b['speedup_per_area']:.3f})."]
    if res.get("best_speedup_per_area_precise") is not None:
        b = res["points"][res["best_speedup_per_area_precise"]]
        L += [f"**Best speedup per area with a mean output error <= "
              f"{res['error_limit_v_lsb']:.2f} V LSB**: lanes {b['lanes']}, "
              f"qk_bits {b['qk_bits']}, back end {b['back_end']} "
              f"({b['speedup_vs_reference']:.3f}x at {b['area_rel']:.3f}x area: "
              f"{b['speedup_per_area']:.3f}). This is the `sweep_best` preset."]
    if res.get("best_at_iso_area") is not None:
        b = res["points"][res["best_at_iso_area"]]
        L += [f"**Fastest at iso-area** (area <= reference): lanes {b['lanes']}, qk_bits "
              f"{b['qk_bits']}, back end {b['back_end']} ({b['speedup_vs_reference']:.3f}x, "
              f"area {b['area_rel']:.3f}x)."]
    return "\n".join(L) + "\n"


def _plot(res: dict[str, Any], path: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in res["points"] if "area_um2" in r]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=90)
    for r in pts:
        mk = "o" if r["qk_bits"] == 12 else "s"
        col = "tab:blue" if r["back_end"] == "be16" else "tab:orange"
        ax.scatter(r["area_um2"] / 1e3, r["speedup_vs_reference"], marker=mk, c=col,
                   edgecolors="k" if r.get("pareto") else "none", s=50)
        ax.annotate(f"L{r['lanes']}", (r["area_um2"] / 1e3, r["speedup_vs_reference"]),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    fr = sorted((r for r in pts if r.get("pareto")), key=lambda r: r["area_um2"])
    ax.plot([r["area_um2"] / 1e3 for r in fr], [r["speedup_vs_reference"] for r in fr],
            "k--", lw=0.8, label="Pareto front")
    ax.set_xlabel("core area, 10^3 um^2 (nangate45, d=16, 32 keys)")
    ax.set_ylabel("speed vs reference (geomean, real traces)")
    ax.set_title("Design space: o qk=12, s qk=8; blue be16, orange be12")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
