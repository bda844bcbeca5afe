"""PNG plots of :func:`leopard_rtl.eval.evaluate.evaluate` (matplotlib, Agg backend).

Each plot is small (a few tens of KB at 90 dpi) so that results/eval can be committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_plots"]


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return str(path)


def write_plots(res: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the evaluation's plots into ``out_dir``; return their paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    rows = res["traces"]
    paths: list[str] = []
    labels = [f"{r['workload']}\n{r['layer']}" for r in rows]
    x = np.arange(len(rows))

    # speedup per workload and layer
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(x - 0.2, [r["speedup"]["leopard"] for r in rows], 0.4, label="LeOPArd")
    ax.bar(x + 0.2, [r["speedup"]["pruning_only"] for r in rows], 0.4,
           label="pruning only")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("speedup over baseline")
    ax.set_title(f"Speedup (model cycles = RTL cycles); geomean "
                 f"{res['summary']['geomean_speedup']:.2f}x")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "speedup.png"))

    # energy per workload with its split
    if "geomean_energy_reduction" in res["summary"]:
        wls = res["summary"]["workloads"]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        names = list(wls)
        xs = np.arange(len(names))
        norm = np.array([sum(wls[w]["energy_split_nj"]["baseline"].values()) for w in names])
        for off, v, hatch in ((-0.2, "leopard", ""), (0.2, "baseline", "//")):
            bottom = np.zeros(len(names))
            for part, col in (("frontend", "tab:blue"), ("backend", "tab:orange"),
                              ("buffers", "tab:green")):
                vals = np.array([wls[w]["energy_split_nj"][v][part] for w in names]) / norm
                ax.bar(xs + off, vals, 0.4, bottom=bottom, color=col, hatch=hatch,
                       edgecolor="k", lw=0.3,
                       label=f"{part}" if v == "leopard" else None)
                bottom += vals
            if v == "leopard":
                for i, w in enumerate(names):
                    ax.annotate(f"{wls[w]['energy_reduction']:.2f}x less",
                                (xs[i] + off, bottom[i]), fontsize=7, ha="center",
                                va="bottom")
        ax.set_xticks(xs, [f"{w}\nbaseline {n:.0f} nJ/head" for w, n in zip(names, norm,
                                                                          strict=True)],
                      fontsize=7)
        ax.set_ylabel("energy per head / baseline's")
        ax.set_ylim(0, 1.15)
        ax.set_title(f"Energy per head (left LeOPArd, right baseline, hatched); geomean "
                     f"reduction {res['summary']['geomean_energy_reduction']:.2f}x")
        ax.legend(fontsize=8, loc="lower right")
        paths.append(_save(fig, out_dir / "energy.png"))

    # planes used per key, per workload
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    wl_hist: dict[str, np.ndarray] = {}
    for r in rows:
        h = np.asarray(r["planes_hist"], float)
        wl_hist[r["workload"]] = wl_hist.get(r["workload"], np.zeros_like(h)) + h
    for wl, h in wl_hist.items():
        ax.plot(np.arange(1, len(h) + 1), h / max(1.0, h.sum()), marker="o", ms=3, label=wl)
    ax.set_xlabel("bit planes read per key (early termination)")
    ax.set_ylabel("fraction of visible keys")
    ax.set_title("Distribution of planes used per key")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "planes.png"))

    # pruned fraction per layer
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.bar(x, [100 * r["pruned_fraction"] for r in rows], color="tab:purple")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("keys pruned, %")
    ax.set_title("Pruned fraction per layer (learned thresholds)")
    paths.append(_save(fig, out_dir / "pruned.png"))

    # area / fmax per PDK from the QoR table
    qor = [q for q in res.get("qor", []) if q["unit"] == "core"] or res.get("qor", [])
    if qor:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.4))
        lab = [f"{q['pdk']}\n{q['preset']} {q['unit']}" for q in qor]
        xq = np.arange(len(qor))
        a1.bar(xq, [q["area_um2"] + q["macro_area_um2"] for q in qor], color="tab:gray")
        a1.set_yscale("log")
        a1.set_xticks(xq, lab, fontsize=6)
        a1.set_ylabel("area um^2 (log)")
        a2.bar(xq, [q["fmax_mhz"] for q in qor], color="tab:red")
        a2.set_xticks(xq, lab, fontsize=6)
        a2.set_ylabel("fmax MHz")
        fig.suptitle("Area and fmax per PDK (docs/QOR.md, synthesis + STA)", fontsize=9)
        paths.append(_save(fig, out_dir / "qor.png"))
    return paths
