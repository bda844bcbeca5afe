"""Honest speedup of a preset: against its own baseline, the ``paper`` baseline and dense designs.

Issue 14 item 6. For each trace (one configuration per trace family,
:func:`leopard_rtl.eval.inputs.family_configs`) the golden model and the cycle-exact
performance model (:func:`sim.perf.core_cycles`, through :func:`sim.golden.run_golden`)
give the core's cycles for a list of :class:`Design` points: LeOPArd designs (early
termination and pruning on) and dense designs (both off: every key reads every plane and
survives). Wall-clock time divides each design's cycles by its own fmax; areas and fmax
come from a JSON file of synthesis figures (:func:`load_areas`), each marked measured or
estimated. Only designs whose cycle model is exact (``cycle_model_exact``) are evaluated;
the others are listed as skipped with the reason.

``scripts/speedup_table.py`` writes ``results/speedup/README.md`` from this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim import perf
from sim.golden import run_golden
from sim.trace import Trace

from ..config import LeopardConfig
from .common import EvaluationError, geomean

__all__ = ["Design", "standard_designs", "design_config", "design_cycles", "speedup_rows",
           "load_areas", "summarize", "markdown", "best_dense", "design_area", "limits",
           "core_record", "core_design_area"]


@dataclass(frozen=True)
class Design:
    """One design point: overrides applied to a family's configuration.

    Parameters
    ----------
    label : str
        Name in the tables (and key into the areas file).
    overrides : dict
        Configuration parameters set on the family configuration (e.g. ``lanes``).
    dense : bool
        True for the baseline switches (``early_termination=False, pruning=False``).
    """

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dense: bool = False


def standard_designs(new_overrides: Mapping[str, Any], new_label: str = "fast",
                     dense_lanes: Sequence[int] = (6, 8, 9, 10, 12, 16),
                     dense_ppc: Sequence[int] = (1, 2),
                     dense_overlap: Sequence[bool] = (False, True),
                     new_lanes: Sequence[int] = ()) -> list[Design]:
    """``paper`` and its baseline, the new design and its same-hardware baseline, the
    dense candidates (``dense_lanes`` x ``dense_ppc`` x ``dense_overlap``) and the new
    design at each of ``new_lanes`` (label ``<new_label>-L<n>``)."""
    out = [Design("paper"), Design("paper+baseline", dense=True),
           Design(new_label, dict(new_overrides)),
           Design(f"{new_label}+baseline", dict(new_overrides), dense=True)]
    out += [Design(f"{new_label}-L{n}", {**new_overrides, "lanes": n}) for n in new_lanes]
    for c in dense_ppc:
        for ov in dense_overlap:
            for n in dense_lanes:
                out.append(Design(f"dense-L{n}-c{c}{'-ov' if ov else ''}",
                                  {"lanes": n, "planes_per_cycle": c, "overlap_norm": ov},
                                  dense=True))
    return out


def design_config(family: LeopardConfig, d: Design) -> LeopardConfig:
    """``family`` with the design's overrides (and the baseline switches if dense)."""
    cfg = family.replace(**d.overrides, name=f"{family.name}:{d.label}")
    return cfg.replace(early_termination=False, pruning=False) if d.dense else cfg


def design_cycles(trace: Trace, cfg: LeopardConfig) -> int:
    """Core cycles of ``trace`` on ``cfg`` (summed over heads), cycle-exact model.

    Raises
    ------
    EvaluationError
        If the cycle model is not exact for ``cfg`` (see ``cycle_model_exact``).
    """
    if not cfg.cycle_model_exact:
        raise EvaluationError(f"{cfg.name}: the cycle model is not exact for lanes="
                              f"{cfg.lanes}, planes_per_cycle={cfg.planes_per_cycle}")
    g = run_golden(trace, cfg)
    cyc = int(g.cycles.sum())
    if cfg.is_baseline and cyc != int(g.baseline_cycles.sum()):
        raise EvaluationError(f"{cfg.name}: dense cycles {cyc} != the golden model's "
                              f"baseline cycles {int(g.baseline_cycles.sum())}")
    return cyc


def speedup_rows(runs: Mapping[str, tuple[Trace, LeopardConfig]],
                 designs: Sequence[Design]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Cycles per trace and design.

    ``runs``: label (``workload/layer``) -> (trace, family configuration). Returns the
    rows (``trace``, ``workload``, ``config``, ``keys``, ``cycles``: label -> cycles) and
    the skipped designs (label -> reason; a design is skipped if its cycle model is not
    exact on some family).
    """
    skipped: dict[str, str] = {}
    for d in designs:
        for _, (_, fam) in runs.items():
            cfg = design_config(fam, d)
            if not cfg.cycle_model_exact:
                skipped[d.label] = (f"cycle model not exact (lanes={cfg.lanes} > the "
                                    f"planes_per_cycle={cfg.planes_per_cycle} bound)")
    rows = []
    for name, (t, fam) in runs.items():
        cyc = {d.label: design_cycles(t, design_config(fam, d))
               for d in designs if d.label not in skipped}
        rows.append({"trace": name, "workload": name.split("/")[0], "config": fam.name,
                     "keys": t.n_keys, "cycles": cyc})
    return rows, skipped


def load_areas(path: Path) -> dict[str, dict[str, Any]]:
    """Area/fmax records by design label from a JSON file.

    Each record: ``area_um2``, ``fmax_mhz``, ``kind`` (``measured`` or ``estimate``) and
    ``source`` (how it was obtained). Keys starting with ``_`` are comments.
    """
    data = json.loads(Path(path).read_text())
    out = {}
    for k, v in data.items():
        if k.startswith("_"):
            continue
        for f in ("area_um2", "fmax_mhz", "kind", "source"):
            if f not in v:
                raise EvaluationError(f"{path}: {k}: missing {f!r}")
        if v["kind"] not in ("measured", "estimate"):
            raise EvaluationError(f"{path}: {k}: kind must be measured or estimate")
        out[k] = v
    return out


def summarize(rows: Sequence[dict[str, Any]], new: str, refs: Sequence[str],
              fmax: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Geomean speedup of ``new`` over each of ``refs`` per workload and ``all``.

    In cycles (``fmax`` None) or in wall-clock time (``fmax``: MHz by label).
    """
    def t(r: dict[str, Any], lab: str) -> float:
        c = r["cycles"][lab]
        return c / fmax[lab] if fmax is not None else float(c)

    out: dict[str, dict[str, float]] = {}
    groups = sorted({r["workload"] for r in rows}) + ["all"]
    for ref in refs:
        out[ref] = {}
        for g in groups:
            sel = [r for r in rows if g == "all" or r["workload"] == g]
            out[ref][g] = geomean([t(r, ref) / t(r, new) for r in sel])
    return out


def markdown(rows: Sequence[dict[str, Any]], new: str, refs: Sequence[str],
             areas: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Per-workload and overall geomean speedups of ``new`` vs ``refs`` (cycles, and
    wall-clock where ``areas`` gives every fmax)."""
    groups = sorted({r["workload"] for r in rows}) + ["all"]
    cyc = summarize(rows, new, refs)
    have = areas is not None and all(x in areas for x in (new, *refs))
    wall = summarize(rows, new, refs, {k: float(v["fmax_mhz"]) for k, v in areas.items()}) \
        if have and areas is not None else None
    head = "| vs | " + " | ".join(f"{g} (traces)" if g == "all" else g for g in groups)
    lines = [head + " |", "|---|" + "---|" * len(groups)]
    for ref in refs:
        lines.append(f"| {ref}, cycles | " + " | ".join(f"{cyc[ref][g]:.3f}x" for g in groups)
                     + " |")
        if wall is not None:
            lines.append(f"| {ref}, wall-clock | "
                         + " | ".join(f"{wall[ref][g]:.3f}x" for g in groups) + " |")
    return "\n".join(lines)


def best_dense(rows: Sequence[dict[str, Any]], areas: Mapping[str, Mapping[str, Any]],
               max_area: float, wall_clock: bool = True) -> str | None:
    """The dense design (label ``dense-*``) with the lowest geomean time over ``rows``
    among those with an area record of at most ``max_area`` (ties: the smaller area)."""
    best, best_key = None, (np.inf, np.inf)
    for lab, rec in areas.items():
        if not lab.startswith("dense-") or float(rec["area_um2"]) > max_area:
            continue
        if any(lab not in r["cycles"] for r in rows):
            continue
        f = float(rec["fmax_mhz"]) if wall_clock else 1.0
        key = (round(geomean([r["cycles"][lab] / f for r in rows]), 12),
               float(rec["area_um2"]))
        if key < best_key:  # ties: the smaller design
            best, best_key = lab, key
    return best


def design_area(d: Design, units: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Estimated core area and fmax of a design from unit syntheses (``units.json``).

    Core area = front end (its logic with the QK lanes scaled to the design's lane count,
    plus the K SRAM estimate) + back end (logic + SRAM estimate) + the second
    accumulator bank's estimate with ``overlap_norm``; fmax = the minimum of the units'.
    Always an ``estimate`` (the core is not synthesized as a whole); a dense design is
    costed as the LeOPArd unit of the same lanes and planes per cycle. A design without
    a ``lanes`` override has the synthesized unit's lanes.
    """
    c = int(d.overrides.get("planes_per_cycle", 1))
    ov = bool(d.overrides.get("overlap_norm", False))
    fe, be = units[f"fe_c{c}"], units["be"]
    n = int(d.overrides.get("lanes", fe["lanes"]))
    fe_logic = fe["logic_um2"] - fe["lanes_um2"] + n * fe["lanes_um2"] / fe["lanes"]
    area = fe_logic + fe["sram_um2"] + be["logic_um2"] + be["sram_um2"]
    fmax = min(fe["fmax_mhz"], be["fmax_mhz"])
    parts = [f"fe_c{c}" + (f" lanes x{n}/{fe['lanes']}" if n != fe["lanes"] else ""), "be"]
    if ov:
        extra = units["be_overlap_extra"]
        area += extra["logic_um2"]
        fmax = min(fmax, extra["fmax_mhz"])
        parts.append("be_overlap_extra")
    return {"area_um2": area, "fmax_mhz": fmax, "kind": "estimate",
            "source": " + ".join(parts)}


def core_record(report: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Measured area and fmax of a whole-core synthesis (``leopard-rtl synth --unit core``).

    ``report``: the synthesis's ``report.json``; ``source``: how it was made (the command).
    Returns ``area_um2`` (standard cells + the SRAM macro estimate), ``fmax_mhz``, ``kind``
    ``measured``, ``source``, the switches of the synthesized configuration (``lanes``,
    ``planes_per_cycle``, ``overlap_norm``, ``dense``) and the block split used to estimate
    designs that were not synthesized: ``fe_um2`` (front end, standard cells),
    ``lanes_um2`` (its QK lanes), ``be_um2`` (back end), ``macro_um2`` and ``other_um2``
    (the rest: top glue, statistics, fan-out buffers).
    """
    try:
        syn, cfg = report["synth"], report["config"]
        mods = syn["modules"]
        top = str(report["top"])
        fe = float(mods[f"{top}.frontend"]["inclusive_area_um2"])
        lanes = float(mods[f"{top}.frontend.lanes"]["inclusive_area_um2"])
        be = float(mods[f"{top}.backend"]["inclusive_area_um2"])
        cells, macro = float(syn["area_um2"]), float(syn["macro_area_um2"])
        rec = {"area_um2": cells + macro, "fmax_mhz": float(report["sta"]["fmax_mhz"]),
               "kind": "measured", "source": source,
               "lanes": int(cfg["lanes"]), "planes_per_cycle": int(cfg["planes_per_cycle"]),
               "overlap_norm": bool(cfg["overlap_norm"]),
               "dense": not (cfg["early_termination"] or cfg["pruning"]),
               "fe_um2": fe, "lanes_um2": lanes, "be_um2": be, "macro_um2": macro,
               "other_um2": cells - fe - be}
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluationError(f"{source}: not a whole-core synthesis report ({e!r} missing "
                              "or malformed)") from None
    if report.get("unit") != "core":
        raise EvaluationError(f"{source}: unit {report.get('unit')!r}, not core")
    return rec


def core_design_area(d: Design, family_lanes: int,
                     cores: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Area and fmax of ``d`` from whole-core syntheses (:func:`core_record` values).

    A design whose switches (lanes, planes per cycle, overlapped normalization, dense)
    equal a synthesized core's gets that core's ``measured`` record. Otherwise an
    ``estimate`` from measured blocks: the front end of a core with the same planes per
    cycle (and the same dense flag if one exists) with its lanes scaled linearly to the
    design's count, the back end of a core with the same ``overlap_norm`` (same
    preference), the macros and the rest of the front end's core; fmax = the lower of the
    two source cores'. None if no core has the planes per cycle or the ``overlap_norm``.
    """
    c = int(d.overrides.get("planes_per_cycle", 1))
    ov = bool(d.overrides.get("overlap_norm", False))
    n = int(d.overrides.get("lanes", family_lanes))
    for lab, r in cores.items():
        if (r["planes_per_cycle"], r["overlap_norm"], r["lanes"], r["dense"]) == \
                (c, ov, n, d.dense):
            return {**r, "source": f"{lab}: {r['source']}"}

    def pick(key: str, val: Any) -> tuple[str, Mapping[str, Any]] | None:
        cands = sorted((r["dense"] != d.dense, lab) for lab, r in cores.items()
                       if r[key] == val)
        return (cands[0][1], cores[cands[0][1]]) if cands else None

    fe_src, be_src = pick("planes_per_cycle", c), pick("overlap_norm", ov)
    if fe_src is None or be_src is None:
        return None
    (fl, f), (bl, b) = fe_src, be_src
    fe = f["fe_um2"] - f["lanes_um2"] + n * f["lanes_um2"] / f["lanes"]
    area = fe + b["be_um2"] + f["macro_um2"] + f["other_um2"]
    scaled = f" lanes x{n}/{f['lanes']}" if n != f["lanes"] else ""
    return {"area_um2": area, "fmax_mhz": min(f["fmax_mhz"], b["fmax_mhz"]),
            "kind": "estimate",
            "source": f"front end of {fl}{scaled} + back end of {bl} (measured cores)"}


def limits(trace: Trace, cfg: LeopardConfig) -> dict[str, float]:
    """What bounds ``cfg`` on ``trace``: survivor fraction, mean planes per pruned key,
    front-end cycles alone over core cycles (1.0: the front end bounds the core) and
    survivors per core cycle (the back end takes at most one per cycle)."""
    g = run_golden(trace, cfg)
    vis = np.broadcast_to(g.visible, g.mask.shape)
    pruned = vis & ~g.mask
    fe = int(perf.frontend_cycles(g.planes_used, cfg).sum())
    core = int(g.cycles.sum())
    return {"survivors": float(g.mask.sum() / vis.sum()),
            "planes_per_pruned": float(g.planes_used[pruned].mean()) if pruned.any() else 0.0,
            "fe_share": fe / core, "survivors_per_cycle": float(g.mask.sum() / core)}
