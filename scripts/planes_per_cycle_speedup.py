#!/usr/bin/env python3
"""Cycle speedup of two K bit-planes per lane per cycle on the committed real traces.

For each trace (``eval.inputs.family_configs``: one configuration per trace family, the
learned thresholds of the trace), the golden model and the cycle-exact performance model
(:func:`sim.perf.core_cycles`) give the core's cycles with ``planes_per_cycle`` 1 and 2
(same lanes, widths and back end), the same-hardware baseline of each, and the K
bit-plane words read (:func:`sim.perf.k_plane_reads`). The prune set of both is checked
to be identical (exact mechanism). Prints a Markdown table and the geometric means.

Usage::

    .venv/bin/python scripts/planes_per_cycle_speedup.py [--traces traces]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from leopard_rtl.eval.inputs import discover_traces, family_configs
from sim import perf
from sim.golden import run_golden
from sim.trace import load_trace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=Path("traces"))
    args = ap.parse_args(argv)
    traces = {str(p): load_trace(p) for p in discover_traces(args.traces)}
    cfgs = family_configs(traces)
    rows = []
    for name, t in sorted(traces.items()):
        c1 = cfgs[t.head_dim]
        c2 = c1.replace(planes_per_cycle=2, name=f"{c1.name}+ppc2")
        g1, g2 = run_golden(t, c1), run_golden(t, c2)
        if not np.array_equal(g1.mask, g2.mask) or not np.array_equal(g1.out, g2.out):
            raise SystemExit(f"{name}: planes_per_cycle=2 changed the prune set or outputs")
        cyc1, cyc2 = int(g1.cycles.sum()), int(g2.cycles.sum())
        base1, base2 = int(g1.baseline_cycles.sum()), int(g2.baseline_cycles.sum())
        reads1 = int(perf.k_plane_reads(g1.planes_used, c1).sum())
        reads2 = int(perf.k_plane_reads(g2.planes_used, c2).sum())
        rows.append((name, c1.name, t.n_keys, cyc1, cyc2, base1, base2, reads1, reads2))
    print("| trace | config | keys | cycles c=1 | cycles c=2 | c2 vs c1 | baseline c=1 | "
          "baseline c=2 | c2 vs baseline c=1 | K reads c2/c1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    sp, spb, spbb = [], [], []
    for name, cn, nk, a, b, ba, bb, ra, rb in rows:
        sp.append(a / b)
        spb.append(ba / b)
        spbb.append(bb / b)
        print(f"| {name} | {cn} | {nk} | {a} | {b} | {a / b:.3f}x | {ba} | {bb} | "
              f"{ba / b:.3f}x | {rb / ra:.3f} |")

    def gm(x: list[float]) -> float:
        return float(np.exp(np.mean(np.log(x))))

    print(f"\ngeomean over {len(rows)} traces: planes_per_cycle=2 vs 1: {gm(sp):.3f}x; "
          f"vs the c=1 baseline: {gm(spb):.3f}x; vs its own (c=2) baseline: {gm(spbb):.3f}x; "
          f"c=1 vs its baseline: {gm([r[5] / r[3] for r in rows]):.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
