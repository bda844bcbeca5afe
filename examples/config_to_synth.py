"""From a configuration to a synthesized netlist, through the golden model and the RTL.

    python examples/config_to_synth.py [--out build/examples/flow] [--preset tiny]

1. a configuration (a preset with one override);
2. its Verilog and manifest (``write_build``);
3. a random trace and the golden model's answer (``run_golden``), with the cycle model;
4. the emitted Verilog under Verilator on that trace, checked against both (``simulate``);
5. synthesis and static timing of the front end on the embedded osu018 library
   (``synth_unit``: Yosys, then OpenSTA).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import leopard_rtl as lr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/examples/flow", help="output folder")
    ap.add_argument("--preset", default="tiny", help="configuration preset")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random trace")
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                    help="simulator of step 4")
    args = ap.parse_args()
    out = Path(args.out)

    # 1. configuration: frozen and validated; derived widths are properties
    cfg = lr.preset(args.preset).with_overrides(["lanes=2"])
    print(f"config {cfg.name}: head_dim={cfg.head_dim} qk_bits={cfg.qk_bits} "
          f"score_bits={cfg.score_bits} lanes={cfg.lanes}")

    # 2. Verilog + manifest.json
    files = lr.write_build("core", cfg, out / "rtl")
    print(f"verilog {files['verilog']}")

    # 3. a trace (integers, already quantized) and the golden model
    rng = np.random.default_rng(args.seed)
    trace = lr.random_trace(rng, heads=2, n_queries=6, n_keys=min(12, cfg.max_keys),
                            head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                            kind="realistic")
    golden = lr.run_golden(trace, cfg)
    print(f"golden: {int(golden.mask.sum())} of {golden.mask.size} keys survive; "
          f"predicted cycles per head {golden.cycles.tolist()}")

    # 4. the RTL on the same trace (LeOPArd, pruning-only, baseline): outputs and
    #    cycles checked against both models
    arrays, summary = lr.simulate(trace, cfg, simulator=args.simulator, build_dir=out / "sim")
    assert summary["matched"], "RTL differs from the golden or cycle model"
    assert np.array_equal(arrays["out"], golden.out)
    assert np.array_equal(arrays["cycles"], golden.cycles)
    print(f"rtl: outputs == golden, cycles {arrays['cycles'].tolist()} == model; "
          f"speedup over the baseline {summary['total']['speedup']}x")

    # 5. synthesis + STA of the front end on osu018
    rep = lr.synth_unit("frontend", cfg, "osu018", out / "synth")
    print(json.dumps({"top": rep["top"], "pdk": rep["pdk"]["name"],
                      "area_um2": rep["synth"]["area_um2"],
                      "cells": rep["synth"]["cells"], "fmax_mhz": rep["sta"]["fmax_mhz"]}))


if __name__ == "__main__":
    main()
