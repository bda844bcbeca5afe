"""``golden``, ``generate`` and ``simulate``: the golden model, Verilog emission and the
emitted Verilog run on a trace."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sim.golden import check_fits, run_golden
from sim.trace import load_trace

from ..emit import write_build
from ..errors import UserError
from ..eval.common import VARIANTS
from ..eval.cycles import COMMON_CLOCK_MHZ, wall_clock
from ..flow.orfs import PLATFORMS, write_orfs
from ..paths import atomic_path, atomic_write, build_root
from ..tb import backend as tb_backend
from ..tb import core as tb_core
from ..tb import frontend as tb_frontend
from ..tb.toolchain import wave_format
from .common import (
    add_config_args,
    add_unit_arg,
    check_out_dir,
    check_out_file,
    config_from_args,
    config_key,
    positive_float,
)

__all__ = ["register", "core_table", "RUNNERS"]

#: Simulation runners: unit -> function called as ``fn(trace, cfg, simulator=...,
#: build_dir=...)``, returning ``(arrays, summary)``.
RUNNERS: dict[str, Callable[..., tuple[dict[str, Any], dict[str, Any]]]] = {
    "frontend": tb_frontend.simulate,
    "backend": tb_backend.simulate,
    "core": tb_core.simulate,
}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (an interrupted run leaves no partial file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def cmd_golden(args: argparse.Namespace) -> int:
    out = check_out_file(args.out, "--out", ".npz", inputs=(args.trace,))
    trace = load_trace(args.trace)
    cfg = config_from_args(args)
    res = run_golden(trace, cfg)
    _write_npz(out, {
        "mask": res.mask, "planes_used": res.planes_used, "out": res.out,
        "all_pruned": res.all_pruned, "overflow": res.overflow, "cycles": res.cycles,
        "baseline_cycles": res.baseline_cycles,
    })
    summary = res.summary()
    summary["trace"] = str(args.trace)
    summary["meta"] = trace.meta
    print(json.dumps(summary, indent=2 if args.pretty else None))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    check_out_dir(args.out, "--out")
    cfg = config_from_args(args)
    paths = write_build(args.unit, cfg, args.out)
    for platform in args.platform:
        paths.update(write_orfs(paths, cfg, platform, Path(args.out)))
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    out = check_out_file(args.out, "--out", ".npz", inputs=(args.trace,))
    if args.summary:
        check_out_file(args.summary, "--summary", inputs=(args.trace, args.out))
    fmax = _fmax_arg(args.fmax)
    if args.wave:
        _check_wave_args(args)
    trace = load_trace(args.trace)
    cfg = config_from_args(args)
    check_fits(trace, cfg)
    fn = RUNNERS[args.unit]
    build_dir = check_out_dir(
        args.build_dir or build_root() / "sim" / f"{args.unit}-{cfg.name}-{config_key(cfg)}",
        "--build-dir")
    arrays, summary = fn(trace, cfg, simulator=args.simulator, build_dir=build_dir)
    _write_npz(out, arrays)
    summary["trace"] = str(args.trace)
    if args.wave:
        summary["wave"] = tb_core.write_wave(
            trace, cfg, Path(args.wave), simulator=args.simulator, build_dir=build_dir,
            heads=args.wave_heads, queries=args.wave_queries)
        summary["matched"] = summary.get("matched", True) and summary["wave"]["golden_match"]
    if args.unit == "core":
        tot = summary["total"]
        summary["wall_clock"] = wall_clock(
            {"leopard": tot["cycles"], "pruning_only": tot["pruning_only_cycles"],
             "baseline": tot["baseline_cycles"]}, fmax, args.common_clock_mhz)
    if args.summary:
        atomic_write(args.summary, json.dumps(summary, indent=2) + "\n")
    if args.format == "table" and args.unit == "core":
        print(core_table(summary))
    else:
        print(json.dumps(summary, indent=2 if args.pretty else None))
    ok = summary.get("matched", True)
    if not ok:
        print("leopard-rtl: error: the RTL did not match the golden or performance model "
              "(see the summary's 'variants')", file=sys.stderr)
    return 0 if ok else 1


def _index_range(text: str) -> tuple[int, int]:
    """argparse type: ``A:B`` (inclusive) or ``A``, integers >= 0."""
    lo, _, hi = text.partition(":")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B or A (integers), not {text!r}") from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"expected 0 <= A <= B, not {text!r}")
    return a, b


def _check_wave_args(args: argparse.Namespace) -> None:
    if args.unit != "core":
        raise UserError(f"--wave: only --unit core writes waveforms, not {args.unit}")
    check_out_file(args.wave, "--wave", inputs=(args.trace, args.out))
    wave_format(args.wave)


def _fmax_arg(items: list[str] | None) -> dict[str, float]:
    """``--fmax VARIANT=MHZ`` or ``VARIANT=REPORT.json`` (a ``leopard-rtl synth`` report)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, eq, val = item.partition("=")
        if not eq or name not in VARIANTS:
            raise UserError(f"--fmax {item!r}: expected VARIANT=MHZ or VARIANT=REPORT.json "
                            f"with VARIANT one of {', '.join(VARIANTS)}")
        if val.endswith(".json"):
            try:
                mhz = float(json.loads(Path(val).read_text())["sta"]["fmax_mhz"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{val}: --fmax needs a leopard-rtl synth report.json with "
                                f"sta.fmax_mhz ({type(exc).__name__}: {exc})") from None
        else:
            try:
                mhz = positive_float(val)
            except argparse.ArgumentTypeError as exc:
                raise UserError(f"--fmax {item!r}: the clock {exc}") from None
        if not mhz > 0:
            raise UserError(f"--fmax {item!r}: fmax must be > 0 MHz, not {mhz}")
        out[name] = mhz
    return out


def wall_clock_table(wc: dict[str, dict[str, Any]]) -> str:
    """Cycles, clock and time of each variant side by side with the baseline."""
    common = next(iter(wc.values()))["common_mhz"]
    lines = [f"{'variant':>12} {'cycles':>9} {'speedup':>8} "
             f"{'time @ ' + format(common, 'g') + ' MHz':>18} "
             f"{'own fmax':>9} {'time @ fmax':>12} {'speedup':>8}",
             f"{'':>12} {'':>9} {'(cycles)':>8} {'(common clock)':>18} {'MHz':>9} "
             f"{'':>12} {'(wall)':>8}"]
    for v, r in wc.items():
        own = ("-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}")
        t = "-" if r["time_us"] is None else f"{r['time_us']:.2f} us"
        sw = "-" if r["speedup_wall"] is None else f"{r['speedup_wall']:.3f}x"
        lines.append(f"{v:>12} {r['cycles']:>9} {r['speedup_cycles']:>7.3f}x "
                     f"{r['time_us_common']:>15.2f} us {own:>9} {t:>12} {sw:>8}")
    if any(r["fmax_mhz"] is None for r in wc.values()):
        lines.append("(own-fmax columns need --fmax VARIANT=MHZ or VARIANT=REPORT.json for "
                     "every variant)")
    return "\n".join(lines)


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
    if "survivors_lost" in summary["total"]:
        lines += ["", f"Speculative margin {summary['total']['margin']:.4g} (lossy) against "
                  "exact pruning at the same thresholds:",
                  f"{'head':>5} {'lost':>6} {'queries hit':>11} {'mass lost mean':>14} "
                  f"{'max':>8} {'out error mean':>14} {'max':>5}"]
        lines += [f"{name:>5} {r['survivors_lost']:>6} {r['queries_hit']:>11} "
                  f"{r['mass_lost_mean']:>14.3g} {r['mass_lost_max']:>8.3g} "
                  f"{r['out_error_mean']:>14.3g} {r['out_error_max']:>5}"
                  for name, r in [*((str(h["head"]), h) for h in summary["heads"]),
                                  ("total", summary["total"])]]
    if "wall_clock" in summary:
        lines += ["", "Wall-clock time (all heads; each variant at a common clock and at its "
                  "own fmax from synthesis):", wall_clock_table(summary["wall_clock"])]
    return "\n".join(lines)


def register(sub: Any) -> None:
    """Add ``golden``, ``generate`` and ``simulate`` to the ``leopard-rtl`` subparsers."""
    p = sub.add_parser("golden", help="run the bit-exact golden model on a trace")
    p.add_argument("--trace", required=True, help="trace .npz (see README: trace format)")
    add_config_args(p)
    p.add_argument("--out", required=True, help="result .npz")
    p.add_argument("--pretty", action="store_true", help="indent the JSON summary")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("generate", help="emit Verilog and manifest.json")
    add_config_args(p)
    add_unit_arg(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--platform", action="append", default=[],
                   choices=tuple(PLATFORMS),
                   help="also write an OpenROAD-flow-scripts design (config.mk + "
                        "constraint.sdc) for this platform (repeatable)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("simulate", help="run emitted Verilog on every head of a trace")
    p.add_argument("--trace", required=True)
    add_config_args(p)
    add_unit_arg(p)
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--build-dir", default=None,
                   help="simulator build directory (default: "
                        "build/sim/<unit>-<preset>-<hash of the configuration>)")
    p.add_argument("--out", required=True, help="result .npz")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("--format", choices=("json", "table"), default="json",
                   help="print the summary as JSON (default) or, for the core, a table")
    p.add_argument("--summary", default=None, help="also write the JSON summary here")
    p.add_argument("--fmax", action="append", metavar="VARIANT=MHZ|REPORT.json",
                   help="core: a variant's own clock (leopard, pruning_only, baseline) in "
                        "MHz or from a 'leopard-rtl synth' report.json, for the wall-clock "
                        "speedup (repeat per variant)")
    p.add_argument("--common-clock-mhz", type=positive_float, default=COMMON_CLOCK_MHZ,
                   help=f"core: the common clock of the wall-clock comparison "
                        f"(default {COMMON_CLOCK_MHZ:g})")
    p.add_argument("--wave", default=None, metavar="FILE.fst|FILE.vcd",
                   help="core: also write every signal of a LeOPArd run of the chosen heads "
                        "and queries (Verilator --trace-fst / Icarus -fst, or VCD)")
    p.add_argument("--wave-heads", type=_index_range, default=None, metavar="A:B",
                   help="heads in the waveform, inclusive (default: all)")
    p.add_argument("--wave-queries", type=_index_range, default=None, metavar="A:B",
                   help="queries in the waveform, inclusive (default: all; a causal trace "
                        "starts at query 0)")
    p.set_defaults(func=cmd_simulate)
