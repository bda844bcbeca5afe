"""``leopard-rtl evaluate`` and ``leopard-rtl sweep`` (docs/EVALUATION.md)."""

from __future__ import annotations

from typing import Any

from ..eval.evaluate import main_evaluate
from ..eval.sweep import main_sweep
from .common import add_pdk_arg

__all__ = ["register"]


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
    p.add_argument("--rtl", action="store_true",
                   help="run the core RTL on every trace and check its cycles against "
                        "the model (default: the smallest trace only)")
    p.add_argument("--rtl-mode", default=None, choices=("none", "one", "all"),
                   help="RTL check on no trace, the smallest one (default) or all")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--energy", default="ref", choices=("none", "ref", "full"),
                   help="ref (default): synthesize the 3 variants of the smallest-d family "
                        "only; full: every family (slow); none: skip")
    add_pdk_arg(p, "nangate45")
    p.add_argument("--learn-results", default=None,
                   help="learned-threshold results (default results/learn/results.json)")
    p.add_argument("--build-dir", default=None, help="build directory (default build/eval)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--sweep", action="store_true",
                   help="also run the design-space sweep into the same directory "
                        "(as `leopard-rtl sweep`)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=main_evaluate)

    p = sub.add_parser("sweep", help="design-space sweep (lanes, qk_bits, back-end width): "
                                     "speedup per area, Pareto plot")
    add_pdk_arg(p, "nangate45")
    p.add_argument("--traces", default=None, help="traces directory (default: traces/)")
    p.add_argument("--build-dir", default=None, help="build directory (default build/eval)")
    p.add_argument("--no-synth", action="store_true",
                   help="cycles only (no area, no figure of merit)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=main_sweep)
