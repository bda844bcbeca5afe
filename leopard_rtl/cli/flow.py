"""The ``synth``, ``pnr``, ``qor`` and ``energy`` subcommands of ``leopard-rtl``.

``leopard-rtl synth [--preset P (default paper)] [--unit U] [--set K=V]
[--pdk osu018|sky130hd|nangate45|asap7] [--clock-ns X] [--liberty F]... [--lef F]
[--platform-dir D] --out DIR``
    Yosys + OpenSTA; writes DIR/report.json, DIR/summary.txt, DIR/netlist.v.
``leopard-rtl pnr [--preset P (default tiny)] [--unit U (default frontend)] --out DIR
[--clock-ns X] [--utilization U (default 75)]``
    qflow place-and-route on osu018; DIR/pnr_report.json, DIR/layout.png.
``leopard-rtl qor --out DIR``
    the QoR table (docs/QOR.md form) over presets x PDKs x units.
``leopard-rtl energy --preset P --trace T --pdk L [--activity-source saif|vcd|global]
--out DIR``
    energy per attention head of LeOPArd, pruning-only and the baseline (docs/ENERGY.md).
``leopard-rtl fpga [--preset P (default tiny)] [--device ecp5-25k] [--baud B] --out DIR``
    the core behind a UART on an ECP5 board (ULX3S): synth_ecp5, nextpnr-ecp5, bitstream;
    DIR/fpga_report.json (LUTs, flip-flops, BRAM, DSP, IO, fmax).

``--unit`` defaults to ``core`` when the core elaborates, else ``frontend``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sim.golden import check_fits
from sim.trace import load_trace

from ..emit import UNITS
from ..errors import UserError
from ..flow.fpga import DEVICES, fpga_build
from ..flow.pnr import DEFAULT_UTILIZATION, pnr_unit
from ..flow.power import energy_per_head
from ..flow.qor import run_qor
from ..flow.run import synth_unit
from .common import (
    add_config_args,
    add_pdk_arg,
    add_unit_arg,
    check_out_dir,
    config_from_args,
    nonneg_int,
    positive_float,
    positive_int,
)

__all__ = ["register"]


def _add_common(p: argparse.ArgumentParser, default_preset: str = "tiny") -> None:
    add_config_args(p, default=default_preset)
    add_unit_arg(p, default=None, help_default="core if it elaborates, else frontend")
    p.add_argument("--clock-ns", type=positive_float, default=None,
                   help="clock period in ns (default: per library; converted to ps "
                        "for asap7)")


def cmd_synth(args: argparse.Namespace) -> int:
    check_out_dir(args.out, "--out")
    if args.max_fanout == 1:
        raise UserError(f"--max-fanout must be 0 (no fan-out repair) or >= 2, "
                        f"not {args.max_fanout}")
    cfg = config_from_args(args)
    rep = synth_unit(args.unit, cfg, args.pdk, Path(args.out), clock_ns=args.clock_ns,
                         liberty=args.liberty or None, lef=args.lef or None,
                         platform_dir=args.platform_dir,
                         macro_bits=args.macro_bits, activity=args.activity,
                         max_fanout=args.max_fanout)
    print((Path(args.out) / "summary.txt").read_text(), end="")
    if args.json:
        print(json.dumps(rep, indent=2))
    return 0


def cmd_pnr(args: argparse.Namespace) -> int:
    check_out_dir(args.out, "--out")
    cfg = config_from_args(args)
    rep = pnr_unit(args.unit, cfg, Path(args.out), clock_ns=args.clock_ns,
                       utilization=args.utilization, timeout=args.timeout)
    print(json.dumps(rep, indent=2))
    return 0


def cmd_qor(args: argparse.Namespace) -> int:
    check_out_dir(args.out, "--out")
    md = run_qor(Path(args.out), presets=args.preset or None, pdks=args.pdk or None,
                     units=args.unit or None, doc=Path(args.doc) if args.doc else None,
                     readme=Path(args.readme) if args.readme else None)
    print(md)
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    check_out_dir(args.out, "--out")
    if args.all_traces:
        return _energy_all_traces(args)
    if args.trace is None:
        raise UserError("--trace T.npz or --all-traces is required")
    if args.prune_to and len(args.prune_to) > 1:
        raise UserError("one --prune-to with --trace (several only with --all-traces)")
    cfg = config_from_args(args)
    # Everything about the trace is checked before minutes of synthesis.
    trace = load_trace(args.trace)
    check_fits(trace, cfg)
    if args.heads is not None and args.heads > trace.heads:
        raise UserError(f"--heads {args.heads}: the trace {args.trace} has only "
                        f"{trace.heads} heads")
    if args.activity_source == "saif":
        from ..flow.energy import head_energy

        if args.simulator != "verilator":
            raise UserError(f"--simulator {args.simulator}: --activity-source saif needs "
                            f"verilator (Icarus writes no SAIF)")

        if args.prune_to:
            from ..flow.energy import prune_to

            trace = prune_to(trace, args.prune_to[0])
        res = head_energy(cfg, trace, args.pdk, Path(args.out), heads=args.heads,
                          clock_ns=args.clock_ns)
        print(json.dumps({v: {"energy_per_head_pj": round(r["energy_per_head_pj"], 1),
                              "reduction_vs_baseline": round(
                                  r["energy_reduction_vs_baseline"], 4),
                              "split_pj": {k: round(x, 1) for k, x in r["split_pj"].items()},
                              "clock_ns": round(r["clock_ns"], 3)}
                          for v, r in res["variants"].items()}, indent=1))
        return 0
    rep: dict[str, Any] = energy_per_head(
            cfg, Path(args.trace), args.pdk, Path(args.out), unit=args.unit,
            clock_ns=args.clock_ns, activity_source=args.activity_source, heads=args.heads,
            simulator=args.simulator)
    print(json.dumps(rep, indent=2))
    return 0


def _energy_all_traces(args: argparse.Namespace) -> int:
    """``energy --all-traces``: every committed trace, on its family's configuration."""
    from ..eval.energy_traces import energy_all_traces

    if args.trace is not None:
        raise UserError("--trace and --all-traces exclude each other")
    if args.activity_source != "saif" or args.simulator != "verilator":
        raise UserError("--all-traces uses --activity-source saif on verilator")
    res = energy_all_traces(Path(args.out), traces_root=Path(args.traces) if args.traces
                            else None, only=args.only, preset_name=args.family_preset,
                            overrides=args.set, pdk=args.pdk,
                            prune=tuple(args.prune_to or ()), heads=args.heads,
                            variants=tuple(args.variants.split(",")))
    print(json.dumps({s: {"geomean_reduction": {v: round(x, 4) for v, x in
                                                r["geomean_reduction"].items()},
                          "pruned_fraction_mean": round(r["pruned_fraction_mean"], 4),
                          "saving_share_groups": {g: round(x, 4) for g, x in
                                                  r["saving_share_groups"].items()}}
                      for s, r in res["summary"].items()}, indent=1))
    return 0


def cmd_fpga(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    rep = fpga_build(cfg, args.device, Path(args.out), baud=args.baud, timeout=args.timeout)
    print(json.dumps(rep, indent=2))
    return 0


def register(sub: Any) -> None:
    """Add the flow subcommands to the ``leopard-rtl`` parser's subparsers."""
    p = sub.add_parser("synth", help="synthesize a unit to a liberty; timing, area, power")
    # paper: synthesis + STA of a paper unit takes ~7 min on 2 shared cores (< 15 min).
    _add_common(p, default_preset="paper")
    add_pdk_arg(p, "osu018")
    p.add_argument("--liberty", action="append", default=[], metavar="FILE",
                   help="liberty file(s) to use instead of the PDK's (repeatable)")
    p.add_argument("--lef", action="append", default=[], metavar="FILE",
                   help="cell LEF to use instead of the PDK's (repeatable)")
    p.add_argument("--platform-dir", default=None, metavar="DIR",
                   help="an OpenROAD-flow-scripts platform folder to take files from")
    p.add_argument("--macro-bits", type=nonneg_int, default=4096,
                   help="memories of at least this many bits become black-box SRAM "
                        "macros (0: never; default 4096)")
    p.add_argument("--activity", type=positive_float, default=0.1,
                   help="default switching activity, toggles per cycle (default 0.1)")
    p.add_argument("--max-fanout", type=nonneg_int, default=16,
                   help="buffer nets with more loads than this after mapping (0: off; "
                        "default 16)")
    p.add_argument("--json", action="store_true", help="also print the JSON report")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("pnr", help="place and route a unit with qflow on osu018")
    # tiny front end: what qflow places and routes in a few minutes (~4-7 minutes for its
    # ~5.7k cells; the tiny core, 19k cells, takes 42 minutes on 2 shared cores).
    _add_common(p, default_preset="tiny")
    p.set_defaults(unit="frontend")
    p.add_argument("--utilization", type=positive_float, default=DEFAULT_UTILIZATION,
                   help=f"target core utilization in percent (default "
                        f"{DEFAULT_UTILIZATION:g}; qflow's own choice, ~94 %%, left a DRC "
                        f"error and an open net in the tiny front end)")
    p.add_argument("--timeout", type=positive_float, default=1800, help="seconds (default 1800)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_pnr)

    p = sub.add_parser("qor", help="QoR table over presets, PDKs and units")
    p.add_argument("--preset", action="append", default=[],
                   help="presets (default: tiny, minilm, paper; repeatable)")
    add_pdk_arg(p, None, multiple=True)
    p.add_argument("--unit", action="append", default=[], choices=tuple(UNITS),
                   help="units (default: frontend, backend, and core if it elaborates)")
    p.add_argument("--doc", default=None, help="also write the markdown to this file")
    p.add_argument("--readme", default=None,
                   help="also update the QoR table between the qor:begin/end markers of "
                        "this README")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_qor)

    p = sub.add_parser("energy", help="energy per head: LeOPArd vs pruning-only vs baseline")
    _add_common(p, default_preset="minilm")
    p.add_argument("--trace", default=None, help="trace .npz")
    p.add_argument("--all-traces", action="store_true",
                   help="every committed trace (traces/*/*.npz), each on its family's "
                        "configuration (one per head_dim, as evaluate), in one run; writes "
                        "OUT/energy_traces.json and .md")
    p.add_argument("--traces", default=None, metavar="DIR",
                   help="with --all-traces: the traces folder (default: traces/)")
    p.add_argument("--only", action="append", default=[], metavar="T.npz",
                   help="with --all-traces: only these traces (repeatable)")
    p.add_argument("--variants", default="leopard,pruning_only,baseline", metavar="V,V",
                   help="with --all-traces: the variants (default all three; the baseline "
                        "is always needed)")
    p.add_argument("--family-preset", default="auto", metavar="NAME",
                   help="with --all-traces: the preset of the families (default auto: "
                        "minilm widths for d=32, paper otherwise)")
    add_pdk_arg(p, "nangate45")
    p.add_argument("--activity-source", default="saif", choices=("saif", "vcd", "global"),
                   help="saif (default): SRAM accesses counted in a Verilator SAIF run x "
                        "CACTI energy + per-block logic energy at the simulated activity, "
                        "clock gating modelled, leakage x time; vcd: the older method (one "
                        "mean register activity per unit, memories uncharged); global: one "
                        "average activity (see docs/ENERGY.md)")
    p.add_argument("--heads", type=positive_int, default=None,
                   help="simulate only the first N heads for the activity (default: all)")
    p.add_argument("--prune-to", type=float, action="append", default=[], metavar="F",
                   help="recalibrate each head's threshold to prune the fraction F of its "
                        "visible keys (saif only; default: the trace's thresholds); with "
                        "--all-traces repeatable, each F in addition to the learned "
                        "thresholds")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"),
                   help="simulator of the activity run (default: verilator)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("fpga", help="bitstream for an ECP5 board: the core behind a UART")
    add_config_args(p, default="tiny")
    p.add_argument("--device", default="ecp5-25k", choices=tuple(DEVICES),
                   help="ECP5 size, on the ULX3S board of that size (default: ecp5-25k)")
    p.add_argument("--baud", type=int, default=115200,
                   help="UART bit rate (default 115200)")
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds per tool (default 1800)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_fpga)
