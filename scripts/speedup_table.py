#!/usr/bin/env python3
"""Speedup of the new preset against three honest baselines; writes results/speedup/README.md.

On the committed real traces at their learned thresholds (exact mode, margin 0), the
golden model and the cycle-exact performance model give the core's cycles of: ``paper``
and its baseline; the new preset (``fast``) and its same-hardware baseline; dense
candidates (baseline switches) over lanes x planes_per_cycle x overlap_norm. Areas and
fmax come from whole-core syntheses where there are some (``results/speedup/cores.json``,
:func:`leopard_rtl.eval.speedup.core_design_area`: measured for the synthesized designs,
estimated from their blocks for the others), else are estimated from the unit syntheses
in ``results/speedup/units.json`` (:func:`leopard_rtl.eval.speedup.design_area`);
wall-clock time is cycles / fmax.

``--core LABEL=REPORT``: record the whole-core synthesis ``REPORT`` (its ``report.json``)
as design ``LABEL`` in the cores file first (e.g. ``--core paper=build/core13/paper/
report.json``).

``--committed``: the traces committed at HEAD (``git archive``), not a working copy that
is being re-exported.

Usage::

    .venv/bin/python scripts/speedup_table.py [--committed | --traces traces] [--preset fast]
        [--new-lanes 9] [--core LABEL=REPORT ...]
        [--out results/speedup/README.md] [--json results/speedup/speedup.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from leopard_rtl.config import preset
from leopard_rtl.eval.common import REPO, geomean
from leopard_rtl.eval.inputs import discover_traces, family_configs, requantize, trace_label
from leopard_rtl.eval.speedup import (
    best_dense,
    core_design_area,
    core_record,
    design_area,
    design_config,
    limits,
    markdown,
    speedup_rows,
    standard_designs,
)
from sim.trace import load_trace

SWITCHES = ("lanes", "planes_per_cycle", "overlap_norm")


def margin_geomeans(path: Path, margins: tuple[str, ...] = ("0.1016", "0.1484", "0.1992")
                    ) -> list[str]:
    """The geomean rows of the margin study (results/eval/margin.md) for ``margins``."""
    if not path.is_file():
        return []
    rows = [ln for ln in path.read_text().splitlines() if ln.startswith("| **geomean**")]
    head = [ln for ln in path.read_text().splitlines() if ln.startswith("| trace | margin")]
    keep = [r for r in rows if r.split("|")[2].strip() in margins]
    return head[:1] + ["|" + "---|" * (head[0].count("|") - 1)] + keep if head and keep else []


def update_cores(path: Path, add: list[str]) -> dict[str, dict]:
    """The whole-core records of ``path`` (none if it does not exist), with each
    ``LABEL=REPORT`` of ``add`` recorded (and written back to ``path``)."""
    cores = json.loads(path.read_text()) if path.is_file() else {}
    for item in add:
        label, sep, rep = item.partition("=")
        if not sep or not label or not Path(rep).is_file():
            raise SystemExit(f"--core {item!r}: want LABEL=REPORT with an existing report.json")
        r = json.loads(Path(rep).read_text())
        sets = " ".join(f"--set {k}={v}" for k, v in sorted(r["config"].items())
                        if k in ("early_termination", "pruning")
                        and v != getattr(preset(r["preset"]), k))
        cmd = (f"leopard-rtl synth --preset {r['preset']} {sets} --unit core --pdk "
               f"{r['pdk']['name']} --clock-ns {r['clock_ns']}").replace("  ", " ")
        cores[label] = core_record(r, f"{cmd} ({r['seconds']['total']:.0f} s)")
    if add:
        path.write_text(json.dumps(cores, indent=1) + "\n")
    return cores


def area_note(from_cores: bool, n_meas: int, n_all: int) -> list[str]:
    """The paragraph that says where the areas and fmax come from."""
    if from_cores:
        return [f"**Areas and fmax**: {n_meas} of the {n_all} designs were synthesized as a "
                "whole core (nangate45, 1.0 ns, pre-layout OpenSTA, `leopard-rtl synth --unit "
                "core`, records in `results/speedup/cores.json`; area = standard cells + the "
                "flow's SRAM macro-area estimate): `measured`. The others are `estimate`s "
                "from those cores' measured blocks: the front end of the core with the same "
                "planes per cycle (QK lanes scaled linearly to the lane count), the back end "
                "of the core with the same overlap_norm, fmax the lower of the two cores'.", ""]
    return ["**Areas and fmax are estimates**: the sum of unit syntheses (nangate45, 1.0 ns, "
            "pre-layout OpenSTA, committed figures in `results/speedup/units.json`, each with "
            "its command), the front end's QK lanes scaled linearly to the lane count, the "
            "SRAMs by the flow's macro-area estimate; fmax = the slowest unit. No core was "
            "synthesized as a whole for this table. The overlap_norm bank is a flip-flop count "
            "estimate (not synthesized). Dense designs are costed as the LeOPArd unit of the "
            "same lanes (the switches-off generator was not synthesized separately).", ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default=str(REPO / "traces"))
    ap.add_argument("--preset", default="fast", help="the new preset (default fast)")
    ap.add_argument("--new-lanes", type=int, nargs="*", default=[9],
                    help="also evaluate the new preset at these lane counts")
    ap.add_argument("--units", default=str(REPO / "results/speedup/units.json"))
    ap.add_argument("--cores", default=str(REPO / "results/speedup/cores.json"),
                    help="whole-core synthesis records (used if the file exists)")
    ap.add_argument("--core", action="append", default=[], metavar="LABEL=REPORT",
                    help="add a whole-core synthesis report to the cores file (repeatable)")
    ap.add_argument("--margin-md", default=str(REPO / "results/eval/margin.md"))
    ap.add_argument("--out", default=None, help="write the Markdown here")
    ap.add_argument("--json", default=None, help="write the rows (JSON) here")
    ap.add_argument("--committed", action="store_true",
                    help="use the traces committed at HEAD (git archive into build/speedup/)"
                         " instead of --traces")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    if args.committed:
        dest = REPO / "build" / "speedup"
        shutil.rmtree(dest / "traces", ignore_errors=True)
        dest.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD", "traces"],
                             check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
        args.traces = str(dest / "traces")
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.strip()
        args.traces_note = f"the traces committed at {rev}"
    else:
        args.traces_note = args.traces
    new = preset(args.preset)
    paper = preset("paper")
    over = {k: getattr(new, k) for k in SWITCHES if getattr(new, k) != getattr(paper, k)}
    designs = standard_designs(over, args.preset, new_lanes=args.new_lanes)
    paths = discover_traces(Path(args.traces))
    traces = {str(p): load_trace(p) for p in paths}
    fams = family_configs(traces, "paper")
    runs = {}
    for p in paths:
        t = traces[str(p)]
        cfg = fams[t.head_dim]
        wl, layer = trace_label(p)
        runs[f"{wl}/{layer}"] = (requantize(t, cfg.qk_bits, cfg.v_bits), cfg)
    rows, skipped = speedup_rows(runs, designs)
    units = json.loads(Path(args.units).read_text())
    cores = update_cores(Path(args.cores), args.core)
    areas = {}
    for d in designs:
        if d.label not in skipped:
            areas[d.label] = (core_design_area(d, paper.lanes, cores) if cores else None) \
                or design_area(d, units)
    n_meas = sum(a["kind"] == "measured" for a in areas.values())
    ref_area = areas["paper"]["area_um2"]
    new_area = areas[args.preset]["area_um2"]
    dense = best_dense(rows, areas, new_area)
    refs = [f"{args.preset}+baseline", "paper+baseline"] + ([dense] if dense else [])
    lim = {name: limits(t, design_config(fam, designs[2])) for name, (t, fam) in runs.items()}
    paper_sp = geomean([r["cycles"]["paper+baseline"] / r["cycles"]["paper"] for r in rows])
    cmd = "python scripts/speedup_table.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = [f"# Speedup of `{args.preset}` against honest baselines (issue 14)", "",
           f"Generated by `{cmd.strip()}` ({time.monotonic() - t0:.0f} s) on "
           f"{len(rows)} real traces ({args.traces_note}) at their learned thresholds, exact mode "
           "(margin 0). Cycles: golden model + cycle-exact performance model (`sim.perf`), "
           "per trace the sum over heads; speedups are geomeans over the traces of a "
           f"workload. `{args.preset}` = `paper` with {over}. Wall-clock: cycles / fmax of "
           "each design.", "",
           *area_note(bool(cores), n_meas, len(areas)),
           f"## `{args.preset}` vs (a) its same-hardware baseline, (b) `paper`'s baseline, "
           f"(c) the best dense design of area <= {new_area / ref_area:.3f}x paper "
           f"({dense})", "", markdown(rows, args.preset, refs, areas), "",
           f"`paper` vs its baseline: {paper_sp:.3f}x cycles.", "",
           "## Designs (area, fmax)", "",
           "| design | area um^2 | vs paper | fmax MHz | kind | from | geomean cycles vs "
           "paper+baseline |",
           "|---|---|---|---|---|---|---|"]
    for d in designs:
        if d.label in skipped:
            continue
        a = areas[d.label]
        sp = geomean([r["cycles"]["paper+baseline"] / r["cycles"][d.label] for r in rows])
        out.append(f"| {d.label} | {a['area_um2']:,.0f} | {a['area_um2'] / ref_area:.3f}x | "
                   f"{a['fmax_mhz']:.1f} | {a['kind']} | {a['source']} | {sp:.3f}x |")
    out += ["", "Skipped (not evaluated): " + ("; ".join(f"{k}: {v}" for k, v in
                                                        skipped.items()) or "none") + ".", "",
            "## Per trace (cycles)", "",
            "| trace | config | keys | " + " | ".join(
                [args.preset, "paper"] + refs) + " | survivors | planes/pruned key | "
            f"{args.preset} FE share | survivors/cycle |",
            "|---|---|---|" + "---|" * (len(refs) + 6)]
    for r in rows:
        lm = lim[r["trace"]]
        out.append(f"| {r['trace']} | {r['config']} | {r['keys']} | " + " | ".join(
            str(r["cycles"][k]) for k in [args.preset, "paper"] + refs)
            + f" | {lm['survivors']:.3f} | {lm['planes_per_pruned']:.2f} | "
            f"{lm['fe_share']:.3f} | {lm['survivors_per_cycle']:.3f} |")
    out += ["", "FE share: the front end's cycles alone (sum over queries) over the core's; "
            "near 1 the front end bounds the core. Survivors/cycle: the back end takes at "
            "most one survivor per cycle, which is also what bounds every dense design "
            "(lanes beyond 12 / planes_per_cycle at 6 lanes add nothing).", ""]
    out += [f"## What still limits `{args.preset}` (means over each workload's traces)", "",
            "| workload | survivors (of visible keys) | planes per pruned key (of "
            f"{new.qk_bits}) | FE share | survivors/cycle |", "|---|---|---|---|---|"]
    for wl in sorted({r["workload"] for r in rows}):
        ls = [lim[r["trace"]] for r in rows if r["workload"] == wl]
        out.append(f"| {wl} | " + " | ".join(
            f"{sum(x[k] for x in ls) / len(ls):.3f}" for k in
            ("survivors", "planes_per_pruned", "fe_share", "survivors_per_cycle")) + " |")
    out += ["", "The front end bounds the core wherever a trace has more than one query "
            "(FE share near 1; MemN2N's single query is latency, not throughput). Its work "
            "is every survivor's full plane count plus the planes read per pruned key, so "
            "the remaining levers are the pruning rate (learned thresholds) and planes per "
            "pruned key; the back end (one survivor per cycle) is not the bound for "
            f"`{args.preset}`, but it is for every dense design.", ""]
    mg = margin_geomeans(Path(args.margin_md))
    if mg:
        out += ["## Margin knob (lossy; from results/eval/margin.md, `paper` hardware)", "",
                *mg, ""]
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "areas": areas,
                                               "skipped": skipped, "limits": lim},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
