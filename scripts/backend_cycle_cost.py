"""Cycle cost of the pipelined back end on the committed real traces.

Core cycles from the performance model (cycle-exact against the core RTL) with the back
end's per-query overhead of the unpipelined design (``recip_bits + 8``) against the
current one (``cfg.be_query_overhead``), the front end as configured; and, where the
cycle model has a front-end decision latency, both pipelined against neither.

    .venv/bin/python scripts/backend_cycle_cost.py
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import sim.perf as perf
from leopard_rtl.config import LeopardConfig
from leopard_rtl.eval.inputs import discover_traces, family_configs, requantize
from sim.golden import run_golden
from sim.trace import load_trace

orig = perf.timing


def with_be(old: bool, fe_old: bool) -> Callable[[LeopardConfig], perf.Timing]:
    """``perf.timing`` with the unpipelined back-end overhead (``old``) and/or no front-end
    decision latency (``fe_old``)."""
    def t(cfg: LeopardConfig) -> perf.Timing:
        x = orig(cfg)
        if old:
            old_be = cfg.recip_bits + 8
            x = dataclasses.replace(x, be_query_overhead=old_be, be_drain_cycles=0,
                                    be_norm_cycles=old_be, be_release_latency=old_be)
        if fe_old and hasattr(x, "fe_decision_latency"):
            x = dataclasses.replace(x, fe_decision_latency=0)
        return x
    return t


paths = discover_traces(Path("traces"))
traces = {str(p): load_trace(p) for p in paths}
fams = family_configs(traces)
tot: dict[tuple[str, str], int] = {}
for p in paths:
    t = traces[str(p)]
    cfg = fams[t.head_dim]
    tq = requantize(t, cfg.qk_bits, cfg.v_bits)
    row = []
    for variant, c in (("leopard", cfg), ("baseline", cfg.baseline())):
        g = run_golden(tq, c)
        vals = {}
        for name, old, fe_old in (("old", True, True), ("be_new", False, True),
                                  ("new", False, False)):
            perf.timing = with_be(old, fe_old)
            vals[name] = int(perf.core_cycles(g.planes_used, g.mask, c).sum())
            tot.setdefault((variant, name), 0)
            tot[(variant, name)] += vals[name]
        perf.timing = orig
        row.append(f"{variant} {vals['old']} -> BE {vals['be_new']} "
                   f"(+{100 * (vals['be_new'] / vals['old'] - 1):.2f} %)"
                   f" -> BE+FE {vals['new']} (+{100 * (vals['new'] / vals['old'] - 1):.2f} %)")
    print(p, cfg.name, "; ".join(row))
for v in ("leopard", "baseline"):
    o, b, n = tot[(v, "old")], tot[(v, "be_new")], tot[(v, "new")]
    print(f"TOTAL {v}: {o} -> BE pipelined {b} (+{100 * (b / o - 1):.2f} %) -> "
          f"BE+FE pipelined {n} (+{100 * (n / o - 1):.2f} %)")
