"""Figures of :func:`leopard_rtl.eval.evaluate.evaluate` (matplotlib, Agg backend).

Every figure is written twice: ``<name>.png`` (200 dpi, for reading) and ``<name>.pdf``
(vector, for papers). Keys are legends, never titles; each figure carries a caption that
states its method (what was measured or modelled, clock, activity, which baseline), and
``captions.md`` beside them repeats the captions for a paper's text.
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


#: what every comparison is against (SPEC section 6)
BASELINE = ("baseline: the same generator with early termination and pruning off "
            "(every key, all bit-planes)")


def _save(fig: Any, path: Path, caption: str, captions: dict[str, str]) -> str:
    """Write ``path`` (PNG) and the PDF beside it with ``caption`` under the axes."""
    import textwrap
    width_in = fig.get_size_inches()[0]
    text = textwrap.fill(caption, width=int(width_in * 15))
    lines = text.count("\n") + 1
    fig.tight_layout(rect=(0, 0.035 * lines + 0.02, 1, 1))
    fig.text(0.01, 0.01, text, fontsize=6.5, ha="left", va="bottom", wrap=False)
    fig.savefig(path, dpi=200)
    fig.savefig(path.with_suffix(".pdf"))
    _plt().close(fig)
    captions[path.stem] = caption
    return str(path)


def _write_captions(captions: dict[str, str], out_dir: Path) -> None:
    lines = ["# Figures", "", "Each figure is in PNG (200 dpi) and PDF.", ""]
    for stem, cap in captions.items():
        lines += [f"**{stem}** (`{stem}.png`, `{stem}.pdf`): {cap}", ""]
    (out_dir / "captions.md").write_text("\n".join(lines))


def write_plots(res: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the evaluation's plots into ``out_dir``; return their paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    rows = res["traces"]
    paths: list[str] = []
    captions: dict[str, str] = {}
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
    ax.set_title("Speedup per layer")
    ax.legend(fontsize=8, title=f"geomean {res['summary']['geomean_speedup']:.2f}x "
              f"(LeOPArd)", title_fontsize=7)
    paths.append(_save(fig, out_dir / "speedup.png",
                       "Speedup in clock cycles over the baseline, per workload and layer, "
                       "on the real traces with learned thresholds. Cycles from the "
                       "cycle-exact performance model, equal to the core RTL's cycles "
                       "(checked by simulation); same clock for every design. " + BASELINE
                       + "; pruning only: early termination off.", captions))

    # energy per workload with its split
    if "geomean_energy_reduction" in res["summary"]:
        wls = res["summary"]["workloads"]
        fig, ax = plt.subplots(figsize=(9.5, 3.6))
        names = list(wls)
        xs = np.arange(len(names))
        norm = np.array([sum(wls[w]["energy_split_nj"]["baseline"].values()) for w in names])
        from matplotlib.patches import Patch
        for off, v, hatch in ((-0.2, "leopard", ""), (0.2, "baseline", "//")):
            bottom = np.zeros(len(names))
            for part, col in _energy_parts(res):
                vals = np.array([wls[w]["energy_split_nj"][v][part] for w in names]) / norm
                ax.bar(xs + off, vals, 0.4, bottom=bottom, color=col, hatch=hatch,
                       edgecolor="k", lw=0.3)
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
        ax.set_title("Energy per head")
        handles = [Patch(facecolor=c, edgecolor="k", lw=0.3, label=part.replace("_", " "))
                   for part, c in _energy_parts(res)]
        handles += [Patch(facecolor="white", edgecolor="k", lw=0.3, label="LeOPArd (left)"),
                    Patch(facecolor="white", edgecolor="k", lw=0.3, hatch="//",
                          label="baseline (right)")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
                  title=f"geomean reduction "
                        f"{res['summary']['geomean_energy_reduction']:.2f}x",
                  title_fontsize=7)
        paths.append(_save(fig, out_dir / "energy.png", _energy_caption(res), captions))

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
    ax.set_title("Bit-planes read per key")
    ax.legend(fontsize=8, title="workload", title_fontsize=7)
    paths.append(_save(fig, out_dir / "planes.png",
                       "Bit-planes of K read per visible key (MSB first) before the key is "
                       "ruled out or kept, from the golden model (bit-exact with the RTL) on "
                       "the real traces with learned thresholds; a surviving key reads all "
                       "qk_bits planes.", captions))

    # pruned fraction per layer
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.bar(x, [100 * r["pruned_fraction"] for r in rows], color="tab:purple")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("keys pruned, %")
    ax.set_title("Pruned keys per layer")
    paths.append(_save(fig, out_dir / "pruned.png",
                       "Share of visible keys whose score falls below the learned per-head "
                       "threshold (pruned), per workload and layer, golden model on the real "
                       "traces.", captions))

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
        fig.suptitle("Area and fmax per library", fontsize=9)
        paths.append(_save(fig, out_dir / "qor.png",
                           "Cell area (plus estimated SRAM macro area) and fmax of each "
                           "configuration after Yosys synthesis and OpenSTA at each "
                           "library's typical corner (docs/QOR.md); no placement or "
                           "wires.", captions))
    _write_captions(captions, out_dir)
    return paths


def _energy_parts(res: dict[str, Any]) -> list[tuple[str, str]]:
    """(split key, colour) of the energy figure, in the split's order."""
    keys = list(res["traces"][0]["energy"]["leopard"]["split_nj"])
    cols = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:gray",
            "tab:brown", "tab:olive"]
    return list(zip(keys, cols, strict=False))


def _energy_caption(res: dict[str, Any]) -> str:
    """The energy figure's method: library, clock, activity, what the split means."""
    if res.get("energy", {}).get("mode") == "access":
        return ("Energy per attention head by simulated work (docs/ENERGY.md): SRAM "
                "accesses counted in a Verilator SAIF simulation of the RTL on each trace x "
                f"CACTI 7 energy per access ({res['energy']['pdk']} node); logic energy per "
                "block from OpenSTA cell powers at the block's simulated register activity, "
                "clock power only in cycles the block's gating enable is on (clock gating "
                "modelled, not in the RTL); leakage x cycles x each design's own clock "
                "period. Normalized to the baseline. " + BASELINE + ".")
    fams = res.get("energy", {}).get("families", {})
    infos = [v for fam in fams.values() for v in fam.values() if isinstance(v, dict)]
    pdks = sorted({str(i.get("pdk")) for i in infos}) or ["?"]
    clocks = sorted({float(i["clock_ns"]) for i in infos if "clock_ns" in i})
    acts = sorted({i.get("activity") for i in infos if i.get("activity") is not None})
    if infos and not acts:
        # results written before PowerInfo recorded it: synth_unit's default was used
        import inspect

        from ..flow.run import synth_unit
        acts = [inspect.signature(synth_unit).parameters["activity"].default]
    act = (f"a uniform switching activity of {', '.join(f'{a:g}' for a in acts)} "
           f"toggles per cycle on every net (assumed, not simulated)" if acts else
           "the switching activity recorded in results.json")
    clk = f"{', '.join(f'{c:g}' for c in clocks)} ns" if clocks else "the library's clock"
    return (f"Energy per attention head = OpenSTA power of the synthesized core on "
            f"{', '.join(pdks)} at {act}, x cycles per head (performance model = RTL) x "
            f"the clock period ({clk}); normalized to the baseline. The split shares the "
            f"energy by cell area (power ~ area under uniform activity). " + BASELINE
            + ". Simulated per-register activity: leopard-rtl energy (docs/ENERGY.md).")
