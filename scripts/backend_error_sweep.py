#!/usr/bin/env python3
"""Fixed-point error of the back end against float pruned attention (golden model only).

For each configuration the golden model (bit-exact with the RTL) runs on a trace and its
output is compared with :func:`sim.golden.attention_float` over the same survivors; the
error is in LSBs of V (|out - ref|, max and mean over every output element), next to the
largest rigorous bound of :func:`sim.golden.error_bound`. Widths are swept one at a time
around the preset's defaults: ``exp_frac_bits`` (LUT size), ``exp_bits`` and
``recip_bits``.

Usage::

    .venv/bin/python scripts/backend_error_sweep.py     # paper (random realistic d=64)
                                                        # and minilm (real trace)
    .venv/bin/python scripts/backend_error_sweep.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from leopard_rtl.config import ConfigError, LeopardConfig, preset
from sim.golden import attention_float, error_bound, run_golden
from sim.trace import Trace, load_trace
from sim.vectors import random_trace

ROOT = Path(__file__).resolve().parents[1]

SWEEPS = {
    "exp_frac_bits": (2, 4, 6, 8, 10, 12),
    "exp_bits": (6, 8, 12, 16, 20, 24),
    "recip_bits": (6, 8, 12, 16, 20, 24),
}


def measure(trace: Trace, cfg: LeopardConfig) -> dict[str, Any]:
    g = run_golden(trace, cfg)
    ref = attention_float(trace.q, trace.k, trace.v, trace.scale_q, trace.scale_k, g.mask)
    bound = error_bound(g.score, g.mask, trace.v, trace.scale_q, trace.scale_k, g.scale_mant,
                        g.scale_shift, g.backend, ref, cfg)
    live = ~g.all_pruned
    err = np.abs(g.out - ref)[live]
    return {"max": float(err.max()) if err.size else 0.0,
            "mean": float(err.mean()) if err.size else 0.0,
            "bound_max": float(bound[live].max()) if live.any() else 0.0,
            "within_bound": bool((np.abs(g.out - ref).max(axis=-1) <= bound + 1e-9).all()),
            "survivors_per_query": float(g.survivors.mean())}


def sweep(name: str, trace: Trace, base: LeopardConfig) -> list[dict[str, Any]]:
    rows = [{"param": "default", "value": "-", **measure(trace, base)}]
    for param, values in SWEEPS.items():
        for val in values:
            try:
                cfg = base.replace(**{param: val})
            except ConfigError as exc:
                rows.append({"param": param, "value": val, "skipped": str(exc)})
                continue
            rows.append({"param": param, "value": val, **measure(trace, cfg)})
    print(f"\n### {name}: preset {base.name} (F={base.exp_frac_bits}, E={base.exp_bits}, "
          f"R={base.recip_bits}), {trace.heads} heads x {trace.n_queries} queries x "
          f"{trace.n_keys} keys, {rows[0]['survivors_per_query']:.1f} survivors/query\n")
    print("| parameter | value | max err (LSB) | mean err (LSB) | max bound (LSB) | within bound |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['param']} | {r['value']} | skipped: {r['skipped']} | | | |")
            continue
        print(f"| {r['param']} | {r['value']} | {r['max']:.3f} | {r['mean']:.4f} | "
              f"{r['bound_max']:.3f} | {r['within_bound']} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20260425)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--keys", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--real-trace", default=str(ROOT / "traces" / "minilm" / "sample_l3.npz"))
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    paper = preset("paper")
    t = random_trace(np.random.default_rng(args.seed), heads=args.heads,
                     n_queries=args.queries, n_keys=args.keys, head_dim=paper.head_dim,
                     qk_bits=paper.qk_bits, v_bits=paper.v_bits, kind="realistic",
                     causal=False, prune_quantile=0.8)
    results["paper_random_realistic"] = sweep("paper, random realistic trace (seed "
                                              f"{args.seed})", t, paper)
    real = Path(args.real_trace)
    if real.is_file():
        results["minilm_real"] = sweep(f"minilm, real trace {real.name}", load_trace(real),
                                       preset("minilm"))
    else:
        print(f"\n(real trace {real} not found: skipped)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
