"""Benchmark: ``leopard-rtl simulate`` of a 12-head, 128x128, d=64 trace on the RTL.

Runs LeOPArd, pruning-only and the baseline (``paper`` preset) on the emitted core Verilog
under Verilator, twice: the first run includes elaboration and the Verilator builds, the
second uses the cached builds (the target: under 60 s on 2 cores). Prints both times,
the keys simulated per second, and checks that the RTL matched the golden model and the
performance model. ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from leopard_rtl import preset
from leopard_rtl.tb.core import simulate
from sim.vectors import random_trace


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--simulator", default="verilator")
    ap.add_argument("--build-dir", default="build/bench/simulate")
    args = ap.parse_args()
    cfg = preset(args.preset)
    rng = np.random.default_rng(0)
    t = random_trace(rng, heads=args.heads, n_queries=args.seq, n_keys=args.seq,
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                     kind="realistic", prune_quantile=0.7)
    runs = []
    for label in ("first (builds)", "cached"):
        t0 = time.perf_counter()
        _, s = simulate(t, cfg, simulator=args.simulator, build_dir=Path(args.build_dir))
        runs.append({"run": label, "seconds": round(time.perf_counter() - t0, 2),
                     "matched": s["matched"]})
    keys = 3 * int(s["total"]["keys"])
    print(json.dumps({
        "trace": f"{args.heads} heads x {args.seq} x {args.seq}, d={cfg.head_dim}, realistic",
        "preset": args.preset, "simulator": args.simulator, "runs": runs,
        "keys_per_second_cached": round(keys / runs[-1]["seconds"]),
        "cycles": s["total"]["cycles"], "baseline_cycles": s["total"]["baseline_cycles"],
        "pruning_only_cycles": s["total"]["pruning_only_cycles"],
        "speedup": s["total"]["speedup"]}, indent=2))
    return 0 if all(r["matched"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
