"""Differential fuzzing of the core: random configurations and traces, golden model vs the
emitted core's Verilog (every output, flag and per-query statistic bit-exact; cycles equal
the performance model).

One build per configuration, :data:`TRACES` traces per build (shapes, causal mode, stimulus
kinds, thresholds that keep everything, so a small ``survivor_depth`` overflows, or prune
everything). ``tests/tb/test_fuzz.py`` runs it; ``python -m leopard_rtl.tb.fuzz --seeds N``
runs a campaign and prints its figures.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from leopard_rtl.config import ConfigError, LeopardConfig, preset
from sim.golden import run_golden
from sim.trace import Trace
from sim.vectors import KINDS, random_trace

from .core import compare, run_trace

__all__ = ["TRACES", "random_config", "random_case", "fuzz_config", "main"]

#: Traces per configuration (one build each).
TRACES = 6


def random_config(rng: np.random.Generator, lanes: tuple[int, ...] = (1, 2, 4)
                  ) -> LeopardConfig:
    """A valid random configuration with small sizes (``lanes <= qk_bits``)."""
    while True:
        qk = int(rng.integers(2, 7))
        mk = int(rng.integers(2, 13))
        ln = [x for x in lanes if x <= min(qk, mk)]
        depth = None if rng.random() < 0.5 else int(rng.integers(1, mk + 1))
        try:
            return preset("tiny").replace(
                head_dim=int(rng.integers(1, 7)), qk_bits=qk, v_bits=int(rng.integers(2, 10)),
                lanes=int(rng.choice(ln)), max_keys=mk,
                exp_frac_bits=int(rng.integers(1, 7)), exp_bits=int(rng.integers(4, 11)),
                scale_bits=int(rng.integers(6, 13)), scale_shift_bits=int(rng.integers(2, 7)),
                recip_bits=int(rng.integers(4, 13)), survivor_depth=depth, name="fuzz")
        except ConfigError:
            continue


def random_case(rng: np.random.Generator, cfg: LeopardConfig) -> Trace:
    """A random trace that fits ``cfg``; scales inside the softmax-scale register's range."""
    nk = int(rng.integers(1, cfg.max_keys + 1))
    nq = int(rng.integers(1, 6))
    causal = bool(rng.random() < 0.3) and nq - nk <= cfg.max_keys
    t = random_trace(rng, heads=int(rng.integers(1, 4)), n_queries=nq, n_keys=nk,
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                     causal=causal, kind=str(rng.choice(KINDS)))
    # c 2^F = log2(e) s_q s_k / sqrt(d) 2^F must fit the register: at most mmax / 2.
    top = ((1 << cfg.scale_bits) - 1) / 2
    target = np.exp(rng.uniform(math.log(1e-3), math.log(top * 0.99), t.heads))
    prod = target * math.sqrt(cfg.head_dim) / (math.log2(math.e) * 2.0 ** cfg.exp_frac_bits)
    th = t.threshold.copy()
    mode = rng.integers(0, 4)
    if mode == 1:
        th[:] = -(1 << 40)                       # keep every key (overflow if depth small)
    elif mode == 2:
        th[:] = 1 << 40                          # prune every key
    elif mode == 3:
        lim = 1 << (cfg.score_bits - 1)
        th = rng.integers(-lim, lim, t.heads)
    return Trace(q=t.q, k=t.k, v=t.v, threshold=np.asarray(th, np.int64),
                 scale_q=np.sqrt(prod), scale_k=np.sqrt(prod), scale_v=t.scale_v,
                 qk_bits=t.qk_bits, v_bits=t.v_bits, causal=t.causal, meta={"fuzz": True},
                 source="<fuzz>").validate()


def fuzz_config(seed: int, build_dir: Path, lanes: tuple[int, ...] = (1, 2, 4),
                simulator: str = "verilator") -> dict[str, Any]:
    """Build one random configuration (from ``seed``) and run :data:`TRACES` random traces
    on it; the configuration, the failures (first mismatch of each) and counts."""
    rng = np.random.default_rng(seed)
    cfg = random_config(rng, lanes)
    failures = []
    overflow = 0
    for n in range(TRACES):
        t = random_case(rng, cfg)
        g = run_golden(t, cfg)
        got = run_trace(t, cfg, simulator=simulator, build_dir=build_dir, golden=g)
        cmp = compare(got, g)
        bad = {k: v["first_mismatch"] for k, v in cmp.items() if not v["match"]}
        if not np.array_equal(got["cycles"], g.cycles):
            bad["cycles"] = {"rtl": got["cycles"].tolist(), "model": g.cycles.tolist()}
        overflow += int(g.overflow.sum())
        if bad:
            failures.append({"trace": n, "shape": [t.heads, t.n_queries, t.n_keys],
                             "causal": t.causal, "threshold": t.threshold.tolist(),
                             "mismatch": bad})
    return {"seed": seed, "config": cfg.to_dict(), "failures": failures,
            "traces": TRACES, "overflow_queries": overflow}



def main(argv: list[str] | None = None) -> int:
    """``python -m leopard_rtl.tb.fuzz``: a campaign over ``--seeds`` configurations."""
    ap = argparse.ArgumentParser(prog="python -m leopard_rtl.tb.fuzz")
    ap.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--seeds", type=int, default=4, help="configurations (default 4)")
    ap.add_argument("--lanes", default="1,2,3,4", help="lane counts to draw from")
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--build-dir", default="build/fuzz")
    ap.add_argument("--out", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    lanes = tuple(int(x) for x in args.lanes.split(","))
    results = []
    t0 = time.monotonic()
    for s in range(args.seed, args.seed + args.seeds):
        res = fuzz_config(s, Path(args.build_dir) / f"s{s}", lanes, args.simulator)
        results.append(res)
        print(json.dumps({"seed": s, "failures": len(res["failures"]),
                          "overflow_queries": res["overflow_queries"],
                          "first": res["failures"][:1]}), flush=True)
    total = {"configurations": len(results), "traces": sum(r["traces"] for r in results),
             "failing_configurations": sum(1 for r in results if r["failures"]),
             "failing_traces": sum(len(r["failures"]) for r in results),
             "overflow_queries": sum(r["overflow_queries"] for r in results),
             "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(total))
    if args.out:
        Path(args.out).write_text(json.dumps({"total": total, "runs": results}, indent=2,
                                             default=str) + "\n")
    return 1 if total["failing_traces"] else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
