#!/usr/bin/env python3
"""Front-end cycle cost of the lane's decision latency on the committed real traces.

Issue 13 item 1: the bound decision returns ``L = fe_decision_latency`` cycles after a plane
is read. Two ways for a lane to use those cycles, both from the cycle-exact dispatch model
(:func:`sim.perf.frontend_schedule`) on the golden model's planes per key:

* streaming (the RTL): the lane keeps requesting planes of the same key and the reads
  after the deciding plane are wasted (a key holds its lane ``min(r + L, p)`` cycles);
* interleaved (not built): each lane time-shares ``L + 1`` keys round robin, so no read is
  wasted, but a key takes ``(L + 1) r`` cycles and a query's keys spread over
  ``lanes (L + 1)`` slower contexts (modelled as that many lanes, no waste, plus ``L``).

Prints, summed over the traces' queries and heads, the front end's cycles (no
back-pressure, without the per-query accept cycle) against the unpipelined lane (L = 0), for
L = 0, 1, 2 at 8-10 lanes and the interleaved alternative at the preset's L.

Usage: ``.venv/bin/python scripts/decision_latency.py [--traces traces]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from leopard_rtl.eval.inputs import discover_traces, family_configs, requantize
from sim import perf
from sim.golden import run_golden
from sim.trace import load_trace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default="traces")
    args = ap.parse_args(argv)
    paths = discover_traces(Path(args.traces))
    traces = {str(p): load_trace(p) for p in paths}
    fams = family_configs(traces)
    tot: dict[tuple[str, int, int], int] = {}
    for p in paths:
        t = traces[str(p)]
        cfg = fams[t.head_dim]
        g = run_golden(requantize(t, cfg.qk_bits, cfg.v_bits), cfg)
        slots = perf.request_slots(g.planes_used, cfg)
        lat = cfg.fe_decision_latency
        for L in (0, 1, 2):
            for n in (cfg.lanes, cfg.lanes + 1, cfg.lanes + 2):
                v = perf.frontend_schedule(slots, n, L, cfg.plane_slots)[0]
                tot[("streaming", L, n)] = tot.get(("streaming", L, n), 0) + int(v.sum())
        il = perf.frontend_schedule(slots * (lat + 1), cfg.lanes * (lat + 1), 0)[0] + lat
        key = ("interleaved", lat, cfg.lanes)
        tot[key] = tot.get(key, 0) + int(np.sum(il))
    base = tot[("streaming", 0, fams[next(iter(fams))].lanes)]
    print(f"{len(paths)} traces in {args.traces}; front-end cycles summed over queries")
    print("| lane | L | lanes | FE cycles | vs unpipelined (L=0, same lanes as the preset) |")
    print("|---|---|---|---|---|")
    for (kind, L, n), v in sorted(tot.items()):
        print(f"| {kind} | {L} | {n} | {v:,} | {100 * (v / base - 1):+.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
