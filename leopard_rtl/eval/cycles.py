"""Cycles of the three variants on a trace from the performance model, and the check of
those cycles against the core RTL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.golden import run_golden
from sim.perf import timing
from sim.trace import Trace

from ..config import LeopardConfig
from ..tb.core import simulate_variants
from .common import VARIANTS
from .margin import margin_summary

__all__ = ["trace_cycles", "speedups", "wall_clock", "rtl_check"]

#: The common clock at which the variants are also compared (MHz): the target of
#: the pipelined core on nangate45.
COMMON_CLOCK_MHZ = 1000.0


# ------------------------------------------------------------------------ cycles
def trace_cycles(trace: Trace, cfg: LeopardConfig) -> dict[str, Any]:
    """Model cycles of the three variants on ``trace`` and the pruning statistics.

    Returns a dict with ``cycles`` (variant -> int list [H]), ``pruned_fraction`` (total
    and per head), ``planes_hist`` (keys that used 1..qk_bits planes, visible keys only),
    ``mean_planes``, ``survivors`` and ``keys``; with a non-zero ``cfg.margin`` also
    ``margin`` (:func:`leopard_rtl.eval.margin.margin_summary`).
    """

    g = run_golden(trace, cfg)
    po = run_golden(trace, cfg.pruning_only())
    vis = np.broadcast_to(g.visible, g.mask.shape)
    keys_h = vis.sum(axis=(1, 2))
    surv_h = g.mask.sum(axis=(1, 2))
    planes = g.planes_used[vis]
    hist = np.bincount(planes, minlength=cfg.qk_bits + 1)[1:cfg.qk_bits + 1]
    out = {
        "config": cfg.name,
        "heads": trace.heads, "n_queries": trace.n_queries, "n_keys": trace.n_keys,
        "head_dim": trace.head_dim, "causal": bool(trace.causal),
        "cycles": {"leopard": [int(c) for c in g.cycles],
                   "pruning_only": [int(c) for c in po.cycles],
                   "baseline": [int(c) for c in g.baseline_cycles]},
        "keys": int(keys_h.sum()), "survivors": int(surv_h.sum()),
        "pruned_fraction": float(1 - surv_h.sum() / max(1, keys_h.sum())),
        "pruned_fraction_heads": [float(1 - s / max(1, k)) for s, k in zip(surv_h, keys_h,
                                                                          strict=True)],
        "planes_hist": [int(x) for x in hist],
        "mean_planes": float(planes.mean()) if planes.size else 0.0,
        # bit-plane work of the baseline / LeOPArd: the front end's ideal speedup
        "plane_work_ratio": float(cfg.qk_bits * planes.size / max(1, planes.sum())),
        # per query: back-end fixed cycles vs baseline front-end cycles per query
        "be_overhead_per_query": int(timing(cfg).be_query_overhead),
        "baseline_fe_cycles_per_query": float(cfg.qk_bits * planes.size
                                              / (trace.heads * trace.n_queries * cfg.lanes)),
    }
    if g.margin_loss:       # lossy: what the margin cost against exact pruning
        out["margin"] = margin_summary(g, run_golden(trace, cfg.replace(margin=0)))
    return out


def speedups(cyc: dict[str, list[int]]) -> dict[str, float]:
    """Baseline cycles / variant cycles, summed over heads."""
    base = sum(cyc["baseline"])
    return {v: base / sum(cyc[v]) for v in VARIANTS}


def wall_clock(cycles: dict[str, int], fmax_mhz: dict[str, float] | None = None,
               common_mhz: float = COMMON_CLOCK_MHZ) -> dict[str, dict[str, float | None]]:
    """Cycles, clock and time of each variant, and its speedup over the baseline.

    Parameters
    ----------
    cycles : dict
        Cycles per variant (``leopard``, ``pruning_only``, ``baseline``), e.g. summed
        over heads.
    fmax_mhz : dict or None
        Each variant's own fmax from synthesis (MHz); ``None`` (or a missing variant)
        leaves the own-clock columns ``None``.
    common_mhz : float
        The common clock (MHz) every variant is also timed at.

    Returns
    -------
    dict
        Per variant: ``cycles``; ``speedup_cycles`` (baseline cycles / cycles, which is
        also the speedup at the common clock); ``common_mhz`` and ``time_us_common``;
        ``fmax_mhz``, ``time_us`` (cycles at the variant's own fmax) and
        ``speedup_wall`` (baseline time / time, each at its own fmax).
    """
    fmax = fmax_mhz or {}
    if common_mhz <= 0:
        raise ValueError(f"common clock must be positive, not {common_mhz}")
    base = cycles["baseline"]
    out: dict[str, dict[str, float | None]] = {}
    for v, c in cycles.items():
        f = fmax.get(v)
        t = c / f if f else None
        tb = base / fmax["baseline"] if fmax.get("baseline") else None
        out[v] = {"cycles": c, "speedup_cycles": round(base / c, 4),
                  "common_mhz": common_mhz, "time_us_common": round(c / common_mhz, 4),
                  "fmax_mhz": f, "time_us": None if t is None else round(t, 4),
                  "speedup_wall": None if t is None or tb is None else round(tb / t, 4)}
    return out


# ------------------------------------------------------------------------ RTL check
def rtl_check(trace: Trace, cfg: LeopardConfig, expected: dict[str, list[int]], *,
              simulator: str, build_dir: Path) -> dict[str, Any]:
    """Run the core RTL on ``trace`` (all three variants) and compare cycles with the model.

    Returns per variant the RTL's cycles, whether they equal ``expected`` (the model's),
    and whether every output matched the golden model.
    """

    t0 = time.monotonic()
    runs = simulate_variants(trace, cfg, simulator=simulator, build_dir=build_dir,
                             variants=VARIANTS, progress=False)
    out: dict[str, Any] = {"simulator": simulator, "config": cfg.name, "variants": {}}
    for v in VARIANTS:
        info = runs[v][1]
        out["variants"][v] = {"rtl_cycles": info["cycles"],
                              "cycles_equal_model": info["cycles"] == expected[v],
                              "golden_match": all(info["golden_match"].values())}
    out["all_equal"] = all(x["cycles_equal_model"] and x["golden_match"]
                           for x in out["variants"].values())
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out
