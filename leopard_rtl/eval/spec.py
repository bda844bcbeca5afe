"""The sweep-space file of ``leopard-rtl sweep --spec S`` (YAML or JSON; docs/EVALUATION.md).

A spec names a base preset, the generator parameters to vary and how points are judged::

    base: paper                 # preset every point starts from
    knobs:                      # parameter -> list of values (cross product)
      lanes: [2, 4, 8]
      qk_bits: [8, 12]
    tied:                       # parameters that move together: name -> list of value sets
      back_end:
        - {exp_frac_bits: 6, exp_bits: 12, recip_bits: 12}
        - {exp_frac_bits: 8, exp_bits: 16, recip_bits: 16}
    pdk: [nangate45]            # libraries (a knob too)
    synthesize: true            # area, fmax and power from synthesis of each point's core
    synth_at: {head_dim: 16, max_keys: 32}   # design size that is synthesized
    traces: [traces/vit]        # trace files or directories (default: traces/)
    exact_model_only: true      # drop points where the cycle model is only a bound
    reference: paper            # speedup is against this preset's baseline (wall clock)
    choose: {max_error_v_lsb: 0.5, max_area_rel: 1.0}   # 1.0: iso-area with the reference

Every knob value is checked by building the point's :class:`~leopard_rtl.config.LeopardConfig`
(at the synthesis size and at every trace's size) before any work starts, so an unknown
knob, an empty list or an out-of-range value is a one-line error naming the knob.
``head_dim`` and ``max_keys`` are not knobs: cycles run at each trace's own size and
synthesis at ``synth_at``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from itertools import product
from pathlib import Path
from typing import Any

from sim.trace import load_trace

from ..config import ConfigError, LeopardConfig, preset
from ..flow.pdk import PDK_NAMES
from .common import REPO, EvaluationError, rel
from .inputs import discover_traces, family_configs

__all__ = ["SweepSpec", "DesignPoint", "SpecError", "load_spec", "parse_spec", "TOP_KEYS",
           "SIZE_KNOBS"]

#: Keys a spec may have (anything else is an error naming it).
TOP_KEYS = ("base", "knobs", "tied", "pdk", "synthesize", "synth_at", "traces",
            "exact_model_only", "reference", "choose")
#: Parameters fixed by the traces (cycles) and ``synth_at`` (synthesis), not swept.
SIZE_KNOBS = ("head_dim", "max_keys")
_CHOOSE_KEYS = {"max_error_v_lsb": 0.5, "max_area_rel": 1.0}


class SpecError(EvaluationError):
    """A bad sweep spec; the message starts with the spec file and names the key."""


@dataclass(frozen=True)
class DesignPoint:
    """One design point: the knob values, the library and the configurations it runs.

    Parameters
    ----------
    knobs : dict
        Parameter -> value (tied groups expanded), in spec order.
    pdk : str
        Library of the synthesis.
    role : str
        ``point`` (swept), ``reference`` (the reference preset) or ``reference_baseline``
        (its baseline: the speedup denominator).
    synth_config : LeopardConfig
        The configuration synthesized (at ``synth_at``).
    trace_configs : dict
        head_dim -> configuration the cycle model runs at (the trace family's size).
    preset_config : LeopardConfig
        The base preset with the knobs applied, at the preset's own size (what
        ``chosen_preset.json`` holds).
    """

    knobs: dict[str, Any]
    pdk: str
    role: str
    synth_config: LeopardConfig
    trace_configs: dict[int, LeopardConfig]
    preset_config: LeopardConfig

    @property
    def label(self) -> str:
        """Short readable name: ``lanes=4,qk_bits=8,...@pdk`` (reference roles by name)."""
        if self.role != "point":
            return f"{self.role}@{self.pdk}"
        return ",".join(f"{k}={v}" for k, v in self.knobs.items()) + f"@{self.pdk}"


@dataclass
class SweepSpec:
    """A parsed, validated sweep spec (see the module doc for the file format)."""

    path: str
    base: str
    knobs: dict[str, list[Any]]
    tied: dict[str, list[dict[str, Any]]]
    pdks: list[str]
    synthesize: bool
    synth_at: dict[str, int]
    trace_paths: list[Path]
    exact_model_only: bool
    reference: str
    choose: dict[str, float]
    points: list[DesignPoint] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The spec as given (after defaults), JSON-serializable."""
        return {"path": self.path, "base": self.base, "knobs": self.knobs, "tied": self.tied,
                "pdk": self.pdks, "synthesize": self.synthesize, "synth_at": self.synth_at,
                "traces": [rel(p) for p in self.trace_paths],
                "exact_model_only": self.exact_model_only, "reference": self.reference,
                "choose": self.choose}


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate the spec file ``path`` (YAML or JSON) and expand its points.

    Raises
    ------
    SpecError
        Missing or unreadable file, unknown key or knob, empty value list, or a value
        that :class:`LeopardConfig` rejects; the message names the file and the knob.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such sweep spec")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{p}: not valid YAML/JSON{where}") from None
    return parse_spec(data, str(p))


def _fail(src: str, msg: str) -> SpecError:
    return SpecError(f"{src}: {msg}")


def _values(src: str, key: str, vals: Any) -> list[Any]:
    if not isinstance(vals, list):
        vals = [vals]
    if not vals:
        raise _fail(src, f"{key}: empty list of values")
    if len({json.dumps(v, sort_keys=True) for v in vals}) != len(vals):
        raise _fail(src, f"{key}: repeated value in {vals}")
    return vals


def parse_spec(data: Any, src: str = "<spec>", *, root: Path | None = None) -> SweepSpec:
    """Validate the spec mapping ``data`` (``src`` names it in errors) and expand the points.

    Relative trace paths are taken from ``root`` (default: the repository).
    """
    if not isinstance(data, dict):
        raise _fail(src, "a sweep spec is a mapping (knobs:, pdk:, ...)")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise _fail(src, f"unknown key {unknown[0]!r}; known: {', '.join(TOP_KEYS)}")
    base_name = data.get("base", "paper")
    try:
        base = preset(str(base_name))
        ref_cfg = preset(str(data.get("reference", "paper")))
    except ConfigError as e:
        raise _fail(src, f"base/reference: {e}") from None
    params = [f.name for f in fields(LeopardConfig) if f.name != "name"]

    def check_knob(key: str) -> None:
        if key in SIZE_KNOBS:
            raise _fail(src, f"knob {key!r}: not a sweep knob (cycles run at each trace's "
                             "size, synthesis at synth_at)")
        if key not in params:
            raise _fail(src, f"unknown knob {key!r}; known: "
                             f"{', '.join(k for k in params if k not in SIZE_KNOBS)}")

    knobs_in = data.get("knobs") or {}
    tied_in = data.get("tied") or {}
    if not isinstance(knobs_in, dict) or not isinstance(tied_in, dict):
        raise _fail(src, "knobs and tied are mappings (name: [values])")
    knobs: dict[str, list[Any]] = {}
    for key, vals in knobs_in.items():
        check_knob(str(key))
        knobs[str(key)] = _values(src, f"knob {key!r}", vals)
        for v in knobs[str(key)]:
            try:
                base.replace(**{key: v})
            except ConfigError as e:
                raise _fail(src, f"knob {key!r}: {e}") from None
    tied: dict[str, list[dict[str, Any]]] = {}
    for group, sets in tied_in.items():
        sets = _values(src, f"tied {group!r}", sets)
        for s in sets:
            if not isinstance(s, dict) or not s:
                raise _fail(src, f"tied {group!r}: each entry is a mapping of knobs, not {s!r}")
            for key in s:
                check_knob(str(key))
                if key in knobs:
                    raise _fail(src, f"knob {key!r}: both in knobs and in tied {group!r}")
            try:
                base.replace(**s)
            except ConfigError as e:
                raise _fail(src, f"tied {group!r} {s}: {e}") from None
        if len({frozenset(s) for s in sets}) != 1:
            raise _fail(src, f"tied {group!r}: every entry must set the same knobs")
        tied[str(group)] = sets

    pdks = _values(src, "pdk", data.get("pdk", ["nangate45"]))
    for pdk in pdks:
        if pdk not in PDK_NAMES:
            raise _fail(src, f"pdk: must be one of {', '.join(PDK_NAMES)}, not {pdk!r}")
    synthesize = data.get("synthesize", True)
    exact_only = data.get("exact_model_only", True)
    for key, val in (("synthesize", synthesize), ("exact_model_only", exact_only)):
        if not isinstance(val, bool):
            raise _fail(src, f"{key}: must be true or false, not {val!r}")
    synth_at = data.get("synth_at", {"head_dim": 16, "max_keys": 32})
    if not isinstance(synth_at, dict) or set(synth_at) != set(SIZE_KNOBS):
        raise _fail(src, f"synth_at: a mapping of exactly {', '.join(SIZE_KNOBS)}")
    choose = dict(_CHOOSE_KEYS)
    ch = data.get("choose") or {}
    if not isinstance(ch, dict):
        raise _fail(src, "choose: a mapping (max_error_v_lsb, max_area_rel)")
    for key, val in ch.items():
        if key not in _CHOOSE_KEYS:
            raise _fail(src, f"choose: unknown key {key!r}; known: {', '.join(_CHOOSE_KEYS)}")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= 0:
            raise _fail(src, f"choose: {key} must be a positive number, not {val!r}")
        choose[key] = float(val)

    root = root or REPO
    tr = data.get("traces", ["traces"])
    tr = _values(src, "traces", tr)
    paths: list[Path] = []
    for t in tr:
        tp = Path(t) if Path(t).is_absolute() else root / t
        direct = sorted(q for q in tp.glob("*.npz") if not q.name.startswith("sample_")) \
            if tp.is_dir() else []
        try:
            paths += [tp] if tp.is_file() else direct or discover_traces(tp)
        except EvaluationError as e:
            raise _fail(src, f"traces: {e}") from None
    traces = {str(p): load_trace(p) for p in paths}

    spec = SweepSpec(path=src, base=str(base_name), knobs=knobs, tied=tied, pdks=list(pdks),
                     synthesize=synthesize, synth_at=dict(synth_at), trace_paths=paths,
                     exact_model_only=exact_only, reference=str(data.get("reference", "paper")),
                     choose=choose)
    # every point, at every size, built (and so validated) before any work starts
    axes: list[list[dict[str, Any]]] = [[{k: v} for v in vals] for k, vals in knobs.items()]
    axes += list(tied.values())
    fam_base = family_configs(traces, spec.base)
    fam_ref = family_configs(traces, spec.reference)
    try:
        synth_base = base.replace(**synth_at)
        synth_ref = ref_cfg.replace(**synth_at)
    except ConfigError as e:
        raise _fail(src, f"synth_at: {e}") from None
    for pdk in pdks:
        for role, cfg, fams in (("reference", synth_ref, fam_ref),
                                ("reference_baseline", synth_ref.baseline(),
                                 {d: c.baseline() for d, c in fam_ref.items()})):
            spec.points.append(DesignPoint(
                knobs={}, pdk=pdk, role=role, synth_config=cfg.replace(name=role),
                trace_configs={d: c.replace(name=f"{role}-d{d}") for d, c in fams.items()},
                preset_config=ref_cfg if role == "reference" else ref_cfg.baseline()))
        for combo in product(*axes):
            kn: dict[str, Any] = {}
            for part in combo:
                kn.update(part)
            name = "dse-" + hashlib.sha256(json.dumps([spec.base, kn], sort_keys=True)
                                           .encode()).hexdigest()[:10]
            try:
                sc = synth_base.replace(**kn, name=name)
                tcs = {d: c.replace(**kn, name=f"{name}-d{d}") for d, c in fam_base.items()}
                pc = base.replace(**kn, name=name)
            except ConfigError as e:
                raise _fail(src, f"point {kn}: {e}") from None
            if exact_only and not all(c.cycle_model_exact for c in (sc, *tcs.values())):
                spec.dropped.append(f"{kn} (cycle model not exact: lanes > qk_bits)")
                continue
            spec.points.append(DesignPoint(knobs=kn, pdk=pdk, role="point", synth_config=sc,
                                           trace_configs=tcs, preset_config=pc))
    if not any(pt.role == "point" for pt in spec.points):
        raise _fail(src, "no design point left (exact_model_only dropped them all)")
    return spec
