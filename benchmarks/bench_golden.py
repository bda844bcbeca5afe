"""Benchmark: golden model speed and peak memory on a 12-head, 128x128, d=64 trace.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_golden.py``). Prints the
median of several runs of ``sim.golden.run_golden`` (front end, back end and the
performance model for the design and the baseline) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from leopard_rtl import preset
from sim.golden import run_golden
from sim.vectors import random_trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--causal", action="store_true")
    args = ap.parse_args()
    cfg = preset(args.preset)
    rng = np.random.default_rng(0)
    t = random_trace(rng, heads=args.heads, n_queries=args.seq, n_keys=args.seq,
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                     kind="realistic", causal=args.causal, prune_quantile=0.7)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = run_golden(t, cfg)
        times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tot = res.summary()["total"]
    print(json.dumps({
        "trace": f"{args.heads} heads x {args.seq} queries x {args.seq} keys, "
                 f"d={cfg.head_dim}, realistic, causal={args.causal}",
        "preset": args.preset,
        "seconds_median": round(float(np.median(times)), 4),
        "seconds_min": round(min(times), 4),
        "keys_per_second": round(tot["keys"] / float(np.median(times))),
        "peak_rss_mb": round(peak_mb, 1),
        "pruned_fraction": tot["pruned_fraction"],
        "predicted_speedup": tot["speedup"],
    }, indent=2))


if __name__ == "__main__":
    main()
