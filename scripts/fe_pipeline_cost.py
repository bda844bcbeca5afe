#!/usr/bin/env python3
"""Cycle cost of the pipelined front end on the committed real traces (cycle model only).

Compares, per trace family (``eval.inputs.family_configs``: minilm for d=32, paper
otherwise), the head cycles of the double-buffered core (:func:`sim.perf.pipeline_cycles`,
the same back end for every row) for:

* ``unpipelined``: the former single-cycle lane (a key holds its lane ``planes_used``
  cycles, greedy dispatch to the first free lane);
* ``streaming``: the RTL (:func:`sim.perf.frontend_cycles`): a lane keeps requesting the
  key's next planes for ``fe_decision_latency`` cycles after the deciding one (wasted
  reads), prefetched next key per lane;
* ``interleaved``: the alternative of interleaving ``L + 1`` keys per lane
  (``L = fe_decision_latency``) so that no read is wasted: modelled as ``lanes (L + 1)``
  virtual lanes each ``L + 1`` times slower, greedy dispatch (an optimistic bound for
  that design).

Usage::

    .venv/bin/python scripts/fe_pipeline_cost.py [--traces traces] [--decision-latency L]
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
    ap.add_argument("--decision-latency", type=int, default=None,
                    help="override cfg.fe_decision_latency (what-if)")
    args = ap.parse_args(argv)
    traces = {str(p): load_trace(p) for p in discover_traces(args.traces)}
    cfgs = family_configs(traces)
    rows = []
    total = {"unpipelined": 0, "streaming": 0, "interleaved": 0}
    for name, t in sorted(traces.items()):
        cfg = cfgs[t.head_dim]
        g = run_golden(t, cfg)
        lat = cfg.fe_decision_latency if args.decision_latency is None else args.decision_latency
        pu, p, n = g.planes_used, cfg.qk_bits, cfg.lanes
        be = perf.backend_query_cycles(g.mask.sum(-1), cfg.be_query_overhead)
        ovh = cfg.fe_query_overhead
        fe = {
            "unpipelined": perf.frontend_query_cycles(pu, n, ovh),
            "streaming": perf.frontend_query_cycles(pu, n, ovh, lat, p),
            "interleaved": perf.frontend_query_cycles(pu * (lat + 1), n * (lat + 1), ovh),
        }
        cyc = {k: int(perf.pipeline_cycles(v, be).sum()) for k, v in fe.items()}
        for k, v in cyc.items():
            total[k] += v
        vis = pu > 0
        rows.append((name, cfg.name, float(pu[vis].mean()), cyc))
    print(f"decision latency {lat}; head cycles summed over heads (same back end)\n")
    print("| trace | config | mean planes | unpipelined | streaming | interleaved |")
    print("|---|---|---|---|---|---|")
    for name, cname, mp, c in rows:
        u = c["unpipelined"]
        print(f"| {name} | {cname} | {mp:.2f} | {u} | {c['streaming']} "
              f"({c['streaming'] / u - 1:+.1%}) | {c['interleaved']} "
              f"({c['interleaved'] / u - 1:+.1%}) |")
    u = total["unpipelined"]
    print(f"| **all** | | | {u} | {total['streaming']} ({total['streaming'] / u - 1:+.1%}) "
          f"| {total['interleaved']} ({total['interleaved'] / u - 1:+.1%}) |")
    return 0 if np.isfinite(u) else 1


if __name__ == "__main__":
    raise SystemExit(main())
