"""The ``leopard-rtl`` command-line tool.

Subcommands
-----------
``golden``    run the numpy golden model on a trace; write its outputs and a JSON summary.
``generate``  emit Verilog and the manifest of a unit for a preset.
``simulate``  run a unit's emitted Verilog on every head of a trace.

Every user error (bad trace, bad parameter, missing tool) is reported on one line as
``leopard-rtl: error: ...`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, LeopardConfig, preset

__all__ = ["main", "UserError"]

#: Simulation runners: unit -> "module:function". Each function is called as
#: ``fn(trace, cfg, simulator=..., build_dir=...)`` and returns ``(arrays, summary)``.
RUNNERS: dict[str, str] = {
    "frontend": "leopard_rtl.runners.frontend:simulate",
    "backend": "leopard_rtl.runners.backend:simulate",
    "core": "leopard_rtl.runners.core:simulate",
}


#: Modules that add subcommands: each has ``register(subparsers)``, which adds parsers whose
#: ``func`` default takes the parsed arguments and returns an exit status.
EXTRA_COMMANDS: tuple[str, ...] = ("leopard_rtl.flow.commands", "leopard_rtl.eval_commands")


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback."""


def _config(args: argparse.Namespace) -> LeopardConfig:
    cfg = preset(args.preset)
    if getattr(args, "set", None):
        cfg = cfg.with_overrides(args.set)
    return cfg


def _add_config_args(p: argparse.ArgumentParser, default: str = "paper") -> None:
    p.add_argument("--preset", default=default,
                   help=f"configuration preset (default: {default})")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a configuration parameter (repeatable)")


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".npz":
        raise UserError(f"{path}: --out must end in .npz")
    np.savez_compressed(path, **arrays)


def cmd_golden(args: argparse.Namespace) -> int:
    from sim.golden import run_golden
    from sim.trace import load_trace

    trace = load_trace(args.trace)
    cfg = _config(args)
    res = run_golden(trace, cfg)
    _write_npz(Path(args.out), {
        "mask": res.mask, "planes_used": res.planes_used, "out": res.out,
        "all_pruned": res.all_pruned, "cycles": res.cycles,
        "baseline_cycles": res.baseline_cycles,
    })
    summary = res.summary()
    summary["trace"] = str(args.trace)
    summary["meta"] = trace.meta
    print(json.dumps(summary, indent=2 if args.pretty else None))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .emit import write_build

    cfg = _config(args)
    paths = write_build(args.unit, cfg, args.out)
    for platform in args.platform:
        write_orfs = _resolve("leopard_rtl.flow.orfs:write_orfs")
        paths.update(write_orfs(paths, cfg, platform, Path(args.out)))
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _resolve(spec: str) -> Callable[..., Any]:
    mod_name, fn = spec.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name == mod_name:
            raise UserError(f"{mod_name} is not implemented yet") from None
        raise
    return getattr(mod, fn)


def cmd_simulate(args: argparse.Namespace) -> int:
    from sim.trace import load_trace

    trace = load_trace(args.trace)
    cfg = _config(args)
    fn = _resolve(RUNNERS[args.unit])
    build_dir = Path(args.build_dir or f"build/sim/{args.unit}-{cfg.name}")
    arrays, summary = fn(trace, cfg, simulator=args.simulator, build_dir=build_dir)
    _write_npz(Path(args.out), arrays)
    summary["trace"] = str(args.trace)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    if args.format == "table" and args.unit == "core":
        print(core_table(summary))
    else:
        print(json.dumps(summary, indent=2 if args.pretty else None))
    ok = summary.get("matched", True)
    if not ok:
        print("leopard-rtl: error: the RTL did not match the golden or performance model "
              "(see the summary's 'variants')", file=sys.stderr)
    return 0 if ok else 1


def core_table(summary: dict[str, Any]) -> str:
    """Readable table of ``simulate --unit core``: cycles and speedups per head."""
    v = summary["variants"]
    exact = all(all(x["golden_match"].values()) for x in v.values())
    model = all(x["cycles_match_model"] for x in v.values())
    lines = [
        f"LeOPArd core, preset {summary['config']}, {summary['simulator']}, "
        f"trace {summary['trace']}",
        f"RTL outputs == golden model (all variants): {'yes' if exact else 'NO'};  "
        f"RTL cycles == performance model: {'yes' if model else 'NO'}",
        "",
        f"{'head':>5} {'keys':>7} {'survivors':>9} {'pruned':>7} {'LeOPArd':>9} "
        f"{'pruning-only':>12} {'baseline':>9} {'speedup':>8} {'(pruning-only)':>14}",
    ]

    def row(name: str, r: dict[str, Any]) -> str:
        pruned = 1 - r["survivors"] / max(1, r["keys"])
        return (f"{name:>5} {r['keys']:>7} {r['survivors']:>9} {pruned:>7.1%} "
                f"{r['cycles']:>9} {r['pruning_only_cycles']:>12} {r['baseline_cycles']:>9} "
                f"{r['baseline_cycles'] / r['cycles']:>7.3f}x "
                f"{r['baseline_cycles'] / r['pruning_only_cycles']:>13.3f}x")

    lines += [row(str(h["head"]), h) for h in summary["heads"]]
    lines.append(row("total", summary["total"]))
    lines.append(f"(cycles per head: first query accepted to last output; K/V loading, "
                 f"{v['leopard']['load_cycles'][0]} cycles per head here, excluded)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="leopard-rtl",
        description="LeOPArd attention accelerator: golden model, RTL generator, flows.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("golden", help="run the bit-exact golden model on a trace")
    p.add_argument("--trace", required=True, help="trace .npz (see README: trace format)")
    _add_config_args(p)
    p.add_argument("--out", required=True, help="result .npz")
    p.add_argument("--pretty", action="store_true", help="indent the JSON summary")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("generate", help="emit Verilog and manifest.json")
    _add_config_args(p)
    p.add_argument("--unit", default="core", choices=sorted(RUNNERS),
                   help="which top level to emit (default: core)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--platform", action="append", default=[],
                   choices=("sky130hd", "nangate45", "asap7"),
                   help="also write an OpenROAD-flow-scripts design (config.mk + "
                        "constraint.sdc) for this platform (repeatable)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("simulate", help="run emitted Verilog on every head of a trace")
    p.add_argument("--trace", required=True)
    _add_config_args(p)
    p.add_argument("--unit", default="core", choices=sorted(RUNNERS))
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--build-dir", default=None,
                   help="simulator build directory (default: build/sim/<unit>-<preset>)")
    p.add_argument("--out", required=True, help="result .npz")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("--format", choices=("json", "table"), default="json",
                   help="print the summary as JSON (default) or, for the core, a table")
    p.add_argument("--summary", default=None, help="also write the JSON summary here")
    p.set_defaults(func=cmd_simulate)

    for mod_name in EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and mod_name.startswith(exc.name):
                continue                      # that part of the tool is not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leopard-rtl``; returns the exit status."""
    from sim.golden import GoldenError
    from sim.trace import TraceError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UserError, ConfigError, TraceError, GoldenError, FileNotFoundError) as exc:
        print(f"leopard-rtl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
