"""The Dask sweep's objectives, Pareto front, chosen preset, table and plot.

Split from :mod:`leopard_rtl.eval.dse` (which runs the tasks); these functions only read
the records the sweep persisted, so a finished ``sweep.json`` can be re-reported without
Dask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .common import geomean
from .spec import SweepSpec

__all__ = ["pareto_front", "objectives", "write_preset", "markdown", "plot"]


# ------------------------------------------------------------------------ objectives
def pareto_front(rows: list[dict[str, Any]], objectives: dict[str, str]) -> list[int]:
    """Indices of ``rows`` not dominated in ``objectives`` (name -> ``min`` or ``max``)."""
    sign = {k: (1.0 if v == "min" else -1.0) for k, v in objectives.items()}

    def vec(r: dict[str, Any]) -> list[float]:
        return [sign[k] * float(r[k]) for k in objectives]

    vs = [vec(r) for r in rows]
    keep = []
    for i, a in enumerate(vs):
        if not any(all(x <= y for x, y in zip(b, a, strict=True)) and b != a for b in vs):
            keep.append(i)
    return keep


def objectives(spec: SweepSpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Each point's objectives against the reference records of its library; front; choice.

    Wall-clock speedup = geomean over traces of ``ref_baseline_cycles x ref_baseline_period
    / (cycles x period)``, ``period = 1 / fmax``; without synthesis only the cycle speedup
    is known. Area relative to the reference design on the same library. Energy per head
    ``power x clock_ns x cycles / heads`` (nJ), mean over traces, and its reduction (geomean
    of ratios) against the reference baseline. Error: mean over traces of the mean output
    error in V LSBs.
    """
    refs: dict[tuple[str, str], dict[str, Any]] = {(r["role"], r["pdk"]): r for r in records
                                                   if r["role"] != "point"}
    rows: list[dict[str, Any]] = []
    for r in records:
        base = refs.get(("reference_baseline", r["pdk"]))
        ref = refs.get(("reference", r["pdk"]))
        if base is None or ref is None:
            continue                        # its reference failed: listed in failures
        paths = sorted(r["traces"])
        row: dict[str, Any] = {"label": r["label"], "role": r["role"], "pdk": r["pdk"],
                               "knobs": r["knobs"], "key": r["key"],
                               "cycles": {p: r["traces"][p]["cycles"] for p in paths},
                               "seconds": r["seconds"]}
        row["cycle_speedup"] = geomean([base["traces"][p]["cycles"] / r["traces"][p]["cycles"]
                                        for p in paths])
        row["error_v_lsb"] = float(np.mean([r["traces"][p]["error_v_lsb"] for p in paths]))
        s, sb, sr = r["synth"], base["synth"], ref["synth"]
        if s and sb and sr:
            per, per_b = 1e3 / s["fmax_mhz"], 1e3 / sb["fmax_mhz"]
            row.update({"area_um2": s["area_um2"], "fmax_mhz": s["fmax_mhz"],
                        "area_rel": s["area_um2"] / sr["area_um2"]})
            row["wall_clock_speedup"] = geomean(
                [base["traces"][p]["cycles"] * per_b / (r["traces"][p]["cycles"] * per)
                 for p in paths])

            def e_head(rec: dict[str, Any], p: str) -> float:
                syn = rec["synth"]
                return (syn["power_w"] * syn["clock_ns"] * rec["traces"][p]["cycles"]
                        / rec["traces"][p]["heads"])

            row["energy_per_head_nj"] = float(np.mean([e_head(r, p) for p in paths]))
            row["energy_reduction"] = geomean([e_head(base, p) / e_head(r, p) for p in paths])
        else:
            row.update({"area_um2": None, "fmax_mhz": None, "area_rel": None,
                        "wall_clock_speedup": None, "energy_per_head_nj": None,
                        "energy_reduction": None})
        rows.append(row)
    speed = "wall_clock_speedup" if spec.synthesize else "cycle_speedup"
    pts = [i for i, r in enumerate(rows) if r["role"] == "point"]
    res: dict[str, Any] = {"speed_objective": speed, "points": rows,
                           "references": [r for r in rows if r["role"] != "point"]}
    if pts and spec.synthesize:
        sub = [rows[i] for i in pts]
        for i in (pts[j] for j in pareto_front(sub, {"area_um2": "min", speed: "max"})):
            rows[i]["pareto"] = True
        for i in (pts[j] for j in pareto_front(
                sub, {"area_um2": "min", speed: "max", "energy_per_head_nj": "min",
                      "error_v_lsb": "min"})):
            rows[i]["pareto_all"] = True
    ok = [i for i in pts if rows[i]["error_v_lsb"] <= spec.choose["max_error_v_lsb"]
          and (not spec.synthesize or rows[i]["area_rel"] <= spec.choose["max_area_rel"])]
    res["chosen"] = max(ok, key=lambda i: rows[i][speed]) if ok else None
    return res


def write_preset(spec: SweepSpec, res: dict[str, Any], path: Path) -> str:
    """The chosen point as a preset file (``--preset path``): the base preset + its knobs."""
    row = res["points"][res["chosen"]]
    pt = next(p for p in spec.points if p.label == row["label"])
    cfg = pt.preset_config
    keep = ("cycle_speedup", "wall_clock_speedup", "area_um2", "area_rel", "fmax_mhz",
            "energy_per_head_nj", "energy_reduction", "error_v_lsb")
    data = {"preset": cfg.name, "config": cfg.to_dict(),
            "from": {"spec": spec.path, "base": spec.base, "knobs": row["knobs"],
                     "pdk": row["pdk"], "reference": spec.reference,
                     "synth_at": spec.synth_at, "choose": spec.choose,
                     "objectives": {k: row[k] for k in keep}}}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return str(path)


def _dur(seconds: float) -> str:
    """``seconds`` as ``1.2 h``, ``3.4 min`` or ``5.6 s``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _fmt(v: Any, f: str = ".3f") -> str:
    return "-" if v is None else format(v, f)


def markdown(res: dict[str, Any]) -> str:
    """The sweep's table, front and choice as markdown."""
    sp = res["spec"]
    c = res["counts"]
    L = ["# Design-space sweep (Dask)", "",
         f"Spec `{sp['path']}`: base `{sp['base']}`, reference `{sp['reference']}` (speedup "
         f"against its baseline), {c['points']} points on {', '.join(sp['pdk'])}, "
         f"{len(sp['traces'])} traces; {c['computed']} computed, {c['cached']} cached, "
         f"{c['failed']} failed, in {res['seconds']['total']} s on {res['workers']} workers "
         f"(mean {res['seconds']['per_point_mean']} s of worker time per computed point).",
         f"Synthesis at {sp['synth_at']}." if sp["synthesize"] else
         "Cycles only (no synthesis: no area, clock or energy).", ""]
    cpu = res["seconds"].get("per_point_cpu_mean")
    if cpu:
        L += [f"Cost: {cpu} CPU s per computed point (the worker and the tools it ran; "
              "points whose netlist was cached not counted), so "
              f"1,000 such points take about {_dur(1000 * cpu)} of CPU: "
              + ", ".join(f"{_dur(1000 * cpu / n)} on {n}" for n in (2, 16, 64))
              + " single-threaded workers on otherwise idle cores (the tasks are "
              "independent).", ""]
    L += [
         "| point | area um^2 | area rel | fmax MHz | wall-clock speedup | cycle speedup | "
         "energy/head nJ | energy red. | error V LSB | Pareto |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(res["points"]):
        mark = ("front" if r.get("pareto") else "") + (" (chosen)" if i == res["chosen"]
                                                      else "")
        L.append(f"| {r['label']} | {_fmt(r['area_um2'], '.0f')} | {_fmt(r['area_rel'])} | "
                 f"{_fmt(r['fmax_mhz'], '.1f')} | {_fmt(r['wall_clock_speedup'])} | "
                 f"{r['cycle_speedup']:.3f} | {_fmt(r['energy_per_head_nj'], '.4g')} | "
                 f"{_fmt(r['energy_reduction'])} | {r['error_v_lsb']:.3f} | {mark} |")
    if res["chosen"] is not None:
        r = res["points"][res["chosen"]]
        L += ["", f"**Chosen** (fastest by {res['speed_objective']} with error <= "
              f"{sp['choose']['max_error_v_lsb']} V LSB"
              + (f" and area <= {sp['choose']['max_area_rel']} x the reference's"
                 if sp["synthesize"] else "") + f"): `{r['label']}`, written to "
              f"`{res.get('chosen_preset')}`."]
    else:
        L += ["", "No point meets the `choose` limits."]
    if res["failures"]:
        L += ["", "## Failures", ""] + [f"- {f['point']}: {f['error']}" for f in res["failures"]]
    return "\n".join(L) + "\n"


def plot(res: dict[str, Any], path: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp = res["speed_objective"]
    rows = res["points"]
    pts = [r for r in rows if r["role"] == "point"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=90)
    sc = ax.scatter([r["area_um2"] / 1e3 for r in pts], [r[sp] for r in pts],
                    c=[r["error_v_lsb"] for r in pts], cmap="viridis", s=30,
                    edgecolors=["k" if r.get("pareto") else "none" for r in pts])
    fig.colorbar(sc, ax=ax, label="mean output error, V LSB")
    fr = sorted((r for r in pts if r.get("pareto")), key=lambda r: r["area_um2"])
    ax.plot([r["area_um2"] / 1e3 for r in fr], [r[sp] for r in fr], "k--", lw=0.8,
            label="Pareto front")
    for r in res["references"]:
        ax.scatter([r["area_um2"] / 1e3], [r[sp]], marker="x", c="r", s=50)
        ax.annotate(r["role"], (r["area_um2"] / 1e3, r[sp]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if res["chosen"] is not None:
        r = rows[res["chosen"]]
        ax.scatter([r["area_um2"] / 1e3], [r[sp]], marker="*", c="tab:orange", s=160,
                   edgecolors="k", label="chosen", zorder=3)
    ax.set_xlabel(f"core area, 10^3 um^2 ({', '.join(res['spec']['pdk'])}, "
                  f"{res['spec']['synth_at']})")
    ax.set_ylabel(f"{sp.replace('_', ' ')} vs {res['spec']['reference']} baseline")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
