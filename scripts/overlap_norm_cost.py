"""Cycle gain of ``overlap_norm`` (a second accumulator bank) on the committed real traces.

For every committed trace (``traces/``, at its learned thresholds, in its family's
configuration): core cycles from the cycle-exact performance model without and with
``overlap_norm``, for LeOPArd and for the same-hardware baseline (``cfg.baseline()``);
geometric means over short (at most 32 keys) and long layers, and over all.
``--truncate N`` keeps only the first N queries and keys of every trace (a what-if for
short sequences: the committed traces have 41-128 keys; thresholds as learned).

    .venv/bin/python scripts/overlap_norm_cost.py [--truncate 17]
"""

import math
import sys
from pathlib import Path

from leopard_rtl.eval.inputs import discover_traces, family_configs, requantize
from sim.golden import run_golden
from sim.trace import Trace, load_trace

SHORT_KEYS = 32


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


paths = discover_traces(Path("traces"))
traces = {str(p): load_trace(p) for p in paths}
if "--truncate" in sys.argv:
    n = int(sys.argv[sys.argv.index("--truncate") + 1])
    traces = {k: Trace(**{**t.__dict__, "q": t.q[:, :n], "k": t.k[:, :n],
                          "v": t.v[:, :n]}).validate() for k, t in traces.items()}
fams = family_configs(traces)
gains: dict[str, dict[str, list[float]]] = {"leopard": {}, "baseline": {}}
print(f"{'trace':58s} {'keys':>4s} {'leopard off':>11s} {'on':>9s} {'gain':>6s} "
      f"{'baseline off':>12s} {'on':>9s} {'gain':>6s}")
for p in paths:
    t = traces[str(p)]
    cfg = fams[t.head_dim]
    tq = requantize(t, cfg.qk_bits, cfg.v_bits)
    row = []
    kind = "short" if t.n_keys <= SHORT_KEYS else "long"
    for variant, c in (("leopard", cfg), ("baseline", cfg.baseline())):
        off = int(run_golden(tq, c).cycles.sum())
        on = int(run_golden(tq, c.replace(overlap_norm=True)).cycles.sum())
        g = off / on
        gains[variant].setdefault(kind, []).append(g)
        row.append(f"{off:11d} {on:9d} {g:6.3f}")
    print(f"{str(p):58s} {t.n_keys:4d} {row[0]} {' ' + row[1]}")
for variant, d in gains.items():
    allg = [g for v in d.values() for g in v]
    parts = ", ".join(f"{k} ({len(v)}) {geomean(v):.3f}x" for k, v in sorted(d.items()))
    print(f"GEOMEAN {variant}: {parts}, all ({len(allg)}) {geomean(allg):.3f}x")
