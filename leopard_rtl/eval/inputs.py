"""Evaluation inputs: the real traces, one configuration per trace family, requantization,
the learned-threshold accuracy results and the QoR table (``docs/qor.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.quant import threshold_to_int
from sim.trace import Trace

from ..config import LeopardConfig, preset
from .common import EvaluationError

__all__ = ["discover_traces", "family_configs", "requantize", "trace_label", "accuracy_table",
           "qor_rows"]


# ------------------------------------------------------------------------ inputs
def discover_traces(root: Path, only: Sequence[str] = ()) -> list[Path]:
    """The traces to evaluate: ``only`` (paths) if given, else ``root/*/*.npz``.

    ``sample_*.npz`` files are skipped in discovery (``traces/minilm/sample_l3.npz`` is a
    copy of ``layer3.npz`` kept for ``make run``).
    """
    if only:
        paths = [Path(p) for p in only]
        for p in paths:
            if not p.is_file():
                raise EvaluationError(f"{p}: no such trace file")
        return paths
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: no such traces directory")
    paths = sorted(p for p in root.glob("*/*.npz") if not p.name.startswith("sample_"))
    if not paths:
        raise EvaluationError(f"{root}: no traces (*/*.npz) found")
    return paths


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def family_configs(traces: dict[str, Trace], preset_name: str = "auto",
                   overrides: Sequence[str] = ()) -> dict[int, LeopardConfig]:
    """One configuration per head_dim found among ``traces``.

    ``auto``: ``minilm`` for d=32 and ``paper`` otherwise; any other name: that preset's
    widths and lanes. ``head_dim`` is d, ``max_keys`` the next power of two >= the most
    keys of any trace of that d, ``name`` ``<preset>-d<d>k<max_keys>``. ``overrides``
    (``name=value``) are applied last.
    """
    keys: dict[int, int] = {}
    for t in traces.values():
        keys[t.head_dim] = max(keys.get(t.head_dim, 1), t.n_keys)
    out = {}
    for d, nk in sorted(keys.items()):
        base_name = ("minilm" if d == 32 else "paper") if preset_name == "auto" else preset_name
        base = preset(base_name)
        mk = _pow2_at_least(max(nk, base.lanes))
        cfg = base.replace(head_dim=d, max_keys=mk, survivor_depth=None,
                           name=f"{base_name}-d{d}k{mk}")
        if overrides:
            cfg = cfg.with_overrides(list(overrides))
        out[d] = cfg
    return out


def requantize(trace: Trace, qk_bits: int, v_bits: int) -> Trace:
    """``trace`` with Q/K (and V) re-expressed in ``qk_bits`` (``v_bits``) bits.

    Narrower: ``x' = clip(round_half_even(x / 2**s))`` to the symmetric range, scale
    ``* 2**s``; wider: ``x' = x * 2**-s`` (exact). The threshold is re-derived from the
    learned logit-domain ``meta["theta"]`` with the new scales
    (:func:`sim.quant.threshold_to_int`); without ``theta`` it is ``ceil(Th / 4**s)``.
    The same trace is returned when nothing changes.
    """
    from dataclasses import replace as dc_replace


    if qk_bits == trace.qk_bits and v_bits == trace.v_bits:
        return trace

    def conv(x: np.ndarray, old: int, new: int) -> tuple[np.ndarray, float]:
        s = old - new
        if s <= 0:
            return np.asarray(x, np.int64) << (-s), 2.0 ** s
        qmax = (1 << (new - 1)) - 1
        y = np.clip(np.round(np.asarray(x, np.float64) / (1 << s)), -qmax, qmax)
        return y.astype(np.int64), float(1 << s)

    q, fq = conv(trace.q, trace.qk_bits, qk_bits)
    k, fk = conv(trace.k, trace.qk_bits, qk_bits)
    v, fv = conv(trace.v, trace.v_bits, v_bits)
    sq, sk, sv = trace.scale_q * fq, trace.scale_k * fk, trace.scale_v * fv
    theta = trace.meta.get("theta")
    if theta is not None and len(theta) == trace.heads:
        th = threshold_to_int(np.asarray(theta, np.float64), sq, sk, trace.head_dim)
    else:
        th = np.ceil(np.asarray(trace.threshold, np.float64) / (fq * fk)).astype(np.int64)
    meta = dict(trace.meta, requantized={"qk_bits": qk_bits, "v_bits": v_bits,
                                         "from": [trace.qk_bits, trace.v_bits]})
    return dc_replace(trace, q=q, k=k, v=v, threshold=th, scale_q=sq, scale_k=sk,
                      scale_v=sv, qk_bits=qk_bits, v_bits=v_bits, meta=meta).validate()


def trace_label(path: Path) -> tuple[str, str]:
    """(workload, layer name) of a trace file: its folder and its stem."""
    return path.parent.name, path.stem


# ------------------------------------------------------------------------ accuracy
def accuracy_table(results_json: Path) -> dict[str, Any]:
    """Per workload: metric, value with learned pruning, without, change, pruned fractions."""
    path = Path(results_json)
    if not path.is_file():
        raise EvaluationError(f"{path}: learned-threshold results not found "
                              "(run `make learn` or pass --learn-results)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg})") from None
    out = {}
    for wl, r in data.items():
        if not isinstance(r, dict) or "metric_learned" not in r:
            continue
        out[wl] = {"metric": r.get("metric"), "learned": r["metric_learned"],
                   "no_pruning": r["metric_no_pruning"],
                   "change": r["metric_learned"] - r["metric_no_pruning"],
                   "higher_is_better": r.get("higher_is_better", True),
                   "pruned_fraction_layers": r.get("pruned_fraction_layers"),
                   "pruned_fraction_total": r.get("pruned_fraction_total"),
                   "model": r.get("model")}
    return out


# ------------------------------------------------------------------------ QoR table
def qor_rows(path: Path) -> list[dict[str, Any]]:
    """The QoR rows (preset, unit, PDK, clock, area, macro area, fmax, power, ...) that
    ``leopard-rtl qor --doc docs/QOR.md`` wrote beside the table as ``docs/qor.json``;
    ``[]`` when there is none. A file that is not a list of rows is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg})") from None
    need = ("preset", "unit", "pdk", "area_um2", "macro_area_um2", "fmax_mhz", "power_mw")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in need)
                                             for r in rows):
        raise EvaluationError(f"{path}: not a QoR table (a list of rows with {', '.join(need)})")
    return rows
