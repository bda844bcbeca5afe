"""``leopard-rtl evaluate`` and ``leopard-rtl sweep`` (docs/EVALUATION.md)."""

from __future__ import annotations

from typing import Any

from ..eval.dse import main_dse
from ..eval.evaluate import main_evaluate
from .common import add_pdk_arg, check_out_dir

__all__ = ["register"]


def _evaluate(args: Any) -> int:
    check_out_dir(args.out, "--out")
    return main_evaluate(args)


def _dse(args: Any) -> int:
    check_out_dir(args.out, "--out")
    return main_dse(args)


def register(sub: Any) -> None:
    """Add the ``evaluate`` and ``sweep`` subcommands to ``sub``."""
    p = sub.add_parser("evaluate", help="speedup, energy and accuracy vs the baseline on "
                                        "the real traces; report.md, results.json, plots")
    p.add_argument("--preset", default="auto",
                   help="widths and lanes (default auto: minilm for d=32, paper otherwise); "
                        "head_dim and max_keys always follow the traces")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a configuration parameter (repeatable)")
    p.add_argument("--traces", default=None, help="traces directory (default: traces/)")
    p.add_argument("--trace", action="append", default=[], metavar="NPZ",
                   help="evaluate only this trace (repeatable)")
    rtl = p.add_mutually_exclusive_group()
    rtl.add_argument("--rtl", action="store_true",
                     help="run the core RTL on every trace and check its cycles against "
                          "the model (default: the smallest trace only); = --rtl-mode all")
    rtl.add_argument("--rtl-mode", default=None, choices=("none", "one", "all"),
                     help="RTL check on no trace, the smallest one (default) or all")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--energy", default="access", choices=("none", "access", "ref", "full"),
                   help="access (default): every trace by SRAM accesses x CACTI energy + "
                        "per-block gated logic at simulated activity + leakage x time "
                        "(docs/ENERGY.md; slow); ref: uniform activity 0.1, the 3 variants "
                        "of the smallest-d family only; full: ref on every family; none: skip")
    p.add_argument("--energy-prune-to", type=float, action="append", default=[], metavar="F",
                   help="with --energy access: also at pruning fraction F, every head's "
                        "threshold recalibrated on the same traces (repeatable)")
    add_pdk_arg(p, "nangate45")
    p.add_argument("--learn-results", default=None,
                   help="learned-threshold results (default results/learn/results.json)")
    p.add_argument("--build-dir", default=None, help="build directory (default build/eval)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--sweep", action="store_true",
                   help="also run the fixed lanes x qk_bits x back-end sweep "
                        "(eval/sweep.py) into the same directory; `leopard-rtl sweep` "
                        "is the spec-driven one on Dask")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("sweep", help="design-space sweep on Dask (a spec file of knobs): "
                                     "wall-clock speedup, area, energy, error; Pareto plot; "
                                     "the chosen design as a preset file")
    p.add_argument("--spec", default=None,
                   help="sweep spec, YAML or JSON (default: the shipped "
                        "constraints/sweeps/default.yaml)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: the cores)")
    p.add_argument("--build-dir", default=None,
                   help="record cache and netlists (default build/dse)")
    p.add_argument("--no-synth", action="store_true",
                   help="cycles and error only (no area, clock, energy)")
    p.add_argument("--no-progress", action="store_true", help="no Dask progress bar")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_dse)
