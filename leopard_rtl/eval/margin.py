"""What the speculative margin (``LeopardConfig.margin``, lossy) buys and costs on a trace.

Each margin runs through the golden model (bit-exact with the RTL) and the cycle-exact
performance model, against exact pruning (margin 0) at the same learned thresholds on the
same hardware: cycle speedup, survivors lost, attention mass lost and output error
(:func:`sim.margin.margin_loss`). ``leopard-rtl evaluate --set margin=M`` reports it per
trace; ``scripts/margin_study.py`` tabulates several margins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.golden import GoldenResult, run_golden
from sim.margin import loss_total
from sim.trace import Trace

from ..config import LeopardConfig
from .common import geomean

__all__ = ["margin_summary", "margin_rows", "margin_table", "margin_section"]


def margin_summary(g: GoldenResult, exact: GoldenResult) -> dict[str, Any]:
    """The margin's effect in ``g`` against ``exact`` (the same trace, margin 0).

    Returns ``margin`` (the register's value), ``cycles`` / ``exact_cycles`` (summed over
    heads), ``speedup_vs_exact``, ``speedup`` (vs the baseline), ``survivors`` of exact
    pruning, the totals of :func:`sim.margin.loss_total` and ``heads`` (per head: the
    losses of :func:`sim.margin.margin_loss` and the head's cycles both ways).
    """
    frac = 1 << g.cfg.margin_frac_bits
    heads = [{"head": h, "margin": int(g.margin[h]) / frac, "cycles": int(g.cycles[h]),
              "exact_cycles": int(exact.cycles[h]), **loss}
             for h, loss in enumerate(g.margin_loss)]
    cyc, ex = int(g.cycles.sum()), int(exact.cycles.sum())
    return {"margin": g.cfg.margin_register / frac, "cycles": cyc, "exact_cycles": ex,
            "speedup_vs_exact": ex / cyc, "speedup": int(g.baseline_cycles.sum()) / cyc,
            "exact_speedup": int(g.baseline_cycles.sum()) / ex,
            "survivors": int(exact.mask.sum()),
            **(loss_total(g.margin_loss) if g.margin_loss else {}), "heads": heads}


def margin_rows(traces: dict[str, tuple[Trace, LeopardConfig]],
                margins: Sequence[float]) -> list[dict[str, Any]]:
    """:func:`margin_summary` of every trace (label -> (trace, configuration)) at every
    margin in ``margins`` (each > 0), one row per trace and margin."""
    rows = []
    for label, (t, cfg) in traces.items():
        exact = run_golden(t, cfg.replace(margin=0))
        for m in margins:
            g = run_golden(t, cfg.replace(margin=m))
            rows.append({"trace": label, "config": cfg.name, **margin_summary(g, exact)})
    return rows


def margin_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`margin_rows`, with the geometric-mean speedup per margin."""
    L = ["| trace | margin | speedup vs m=0 | speedup vs baseline (m=0) | survivors lost "
         "(of exact) | queries hit | mass lost mean / max | output error mean / max (V LSB) |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['trace']} | {r['margin']:.4g} | {r['speedup_vs_exact']:.3f}x | "
                 f"{r['speedup']:.3f}x ({r['exact_speedup']:.3f}x) | "
                 f"{r.get('survivors_lost', 0)} ({r['survivors']}) | "
                 f"{r.get('queries_hit', 0)} | {r.get('mass_lost_mean', 0):.2e} / "
                 f"{r.get('mass_lost_max', 0):.3g} | {r.get('out_error_mean', 0):.3g} / "
                 f"{r.get('out_error_max', 0)} |")
    for m in sorted({r["margin"] for r in rows}):
        sel = [r for r in rows if r["margin"] == m]
        L.append(f"| **geomean** | {m:.4g} | "
                 f"{geomean([r['speedup_vs_exact'] for r in sel]):.3f}x | "
                 f"{geomean([r['speedup'] for r in sel]):.3f}x "
                 f"({geomean([r['exact_speedup'] for r in sel]):.3f}x) | "
                 f"{sum(r.get('survivors_lost', 0) for r in sel)} "
                 f"({sum(r['survivors'] for r in sel)}) | "
                 f"{sum(r.get('queries_hit', 0) for r in sel)} | "
                 f"max {max(r.get('mass_lost_max', 0) for r in sel):.3g} | "
                 f"max {max(r.get('out_error_max', 0) for r in sel)} |")
    return "\n".join(L)


def margin_section(res: dict[str, Any]) -> list[str]:
    """The report's section on the margin: per trace of ``res["traces"]`` that ran with a
    non-zero margin (``evaluate --set margin=M``), speedup and losses; empty otherwise."""
    rows = [{"trace": r["trace"], **r["margin"]} for r in res.get("traces", [])
            if r.get("margin")]
    if not rows:
        return []
    return ["", "## Speculative margin (lossy) against exact pruning at the same thresholds",
            "", "Per head in `results.json` (`traces[i].margin.heads`); mass lost: the "
            "softmax weight, over the exact survivors, of the survivors the margin pruned.",
            "", margin_table(rows)]
