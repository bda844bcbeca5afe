"""The speculative margin on the committed real traces at their learned thresholds.

For every trace (``traces/*/*.npz``, the evaluation's configuration families: ``minilm``
for d=32, ``paper`` otherwise, requantized as ``leopard-rtl evaluate`` does) and every
margin: cycle speedup against exact pruning (m = 0) on the same hardware, survivors lost,
attention mass lost and output error against exact pruned attention. Golden model
(bit-exact with the RTL) and cycle-exact performance model; no simulation.

    .venv/bin/python scripts/margin_study.py [--margins 0.1 0.15 0.2] [--set k=v ...]
                                             [--out results/eval/margin.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from leopard_rtl.eval.common import REPO
from leopard_rtl.eval.inputs import discover_traces, family_configs, requantize, trace_label
from leopard_rtl.eval.margin import margin_rows, margin_table
from sim.trace import load_trace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margins", type=float, nargs="+", default=[0.1, 0.15, 0.2])
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="configuration override for every family (e.g. lanes=4)")
    ap.add_argument("--traces", default=str(REPO / "traces"))
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    ap.add_argument("--json", default=None, help="also write the rows (JSON) here")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    paths = discover_traces(Path(args.traces))
    traces = {str(p): load_trace(p) for p in paths}
    fams = family_configs(traces, "auto", args.set)
    runs = {}
    for p in paths:
        t = traces[str(p)]
        cfg = fams[t.head_dim]
        wl, layer = trace_label(p)
        runs[f"{wl}/{layer}"] = (requantize(t, cfg.qk_bits, cfg.v_bits), cfg)
    rows = margin_rows(runs, args.margins)
    cmd = "python scripts/margin_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (f"Speculative margin on the committed traces at their learned thresholds "
            f"(`{cmd.strip()}`, {time.monotonic() - t0:.0f} s; configurations "
            f"{', '.join(c.name for c in fams.values())}).\n\n" + margin_table(rows) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
