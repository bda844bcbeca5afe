"""Export captured attention (real-valued q, k, v) as quantized LeOPArd traces.

Torch-free: works on numpy arrays, uses the project's own trace format
(:mod:`sim.trace`) and quantization (:mod:`sim.quant`), never a copy of them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sim.quant import quantize_symmetric, threshold_to_int
from sim.trace import Trace, save_trace

__all__ = ["QK_BITS", "V_BITS", "score_bits", "make_trace", "save_thresholds_json",
           "check_trace_prunes"]

QK_BITS = 12
V_BITS = 12


def score_bits(qk_bits: int, head_dim: int) -> int:
    """Exact score width ``2p + ceil(log2 d)`` (SPEC section 2)."""
    return 2 * qk_bits + math.ceil(math.log2(head_dim))


def make_trace(q: np.ndarray, k: np.ndarray, v: np.ndarray, theta: np.ndarray,
               causal: bool, meta: dict[str, Any], qk_bits: int = QK_BITS,
               v_bits: int = V_BITS) -> Trace:
    """Quantize one layer's q, k, v per head and convert the thresholds.

    Parameters
    ----------
    q : float array [H, Nq, d]
        Queries (after RoPE where the model has it).
    k : float array [H, Nk, d]
        Keys; with grouped-query attention, the K/V head each query head uses.
    v : float array [H, Nk, dv]
        Values.
    theta : float array [H]
        Thresholds on the logit ``z = q.k / sqrt(d)``.
    causal : bool
        Causal visibility (query i sees keys 0 .. i + Nk - Nq).
    meta : dict
        Provenance (model, layer, input, ...); ``theta`` and the scales are added.
    qk_bits, v_bits : int
        Integer widths (12 by default).

    Returns
    -------
    Trace
        Validated trace; ``Th = threshold_to_int(theta, s_q, s_k, d)`` clipped into the
        signed score range ``[-2**(W-1), 2**(W-1) - 1]``, ``W = score_bits(p, d)``
        (clipping never changes which integer scores survive).
    """
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    H, _, d = q.shape
    if theta.shape != (H,):
        raise ValueError(f"theta has shape {theta.shape}, expected ({H},)")
    qi, ki, vi = [], [], []
    sq, sk, sv = np.zeros(H), np.zeros(H), np.zeros(H)
    for h in range(H):
        a, sq[h] = quantize_symmetric(q[h], qk_bits)
        b, sk[h] = quantize_symmetric(k[h], qk_bits)
        c, sv[h] = quantize_symmetric(v[h], v_bits)
        qi.append(a)
        ki.append(b)
        vi.append(c)
    th = threshold_to_int(theta, sq, sk, d)
    w = score_bits(qk_bits, d)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    clipped = bool(np.any((th < lo) | (th > hi)))
    th = np.clip(th, lo, hi).astype(np.int64)
    meta = dict(meta)
    meta.update({
        "theta": [float(t) for t in theta],
        "threshold_formula": "Th = ceil(theta * sqrt(d) / (s_q * s_k)), clipped to the "
                             "signed score range; S = q_int . k_int survives iff S >= Th",
        "threshold_clipped": clipped,
        "quantization": f"symmetric per-tensor per head, qk_bits={qk_bits}, v_bits={v_bits} "
                        "(sim.quant.quantize_symmetric)",
        "logit": "z = q . k / sqrt(d_head)",
    })
    return Trace(q=np.stack(qi), k=np.stack(ki), v=np.stack(vi), threshold=th,
                 scale_q=sq, scale_k=sk, scale_v=sv, qk_bits=qk_bits, v_bits=v_bits,
                 causal=bool(causal), meta=meta).validate()


def write_trace(trace: Trace, path: str | Path) -> int:
    """Save ``trace`` with :func:`sim.trace.save_trace`; return the file size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_trace(trace, path)
    return path.stat().st_size


def save_thresholds_json(path: str | Path, model: str, thetas: list[list[float]],
                         lam: float | None, schedule: dict[str, Any],
                         extra: dict[str, Any] | None = None) -> None:
    """Write ``thresholds.json``: theta per layer and head, lambda and the T schedule."""
    doc: dict[str, Any] = {
        "model": model,
        "theta_domain": "logit z = q . k / sqrt(d_head)",
        "layer_indexing": "0-based, in model order",
        "theta": [[float(t) for t in layer] for layer in thetas],
        "lambda": lam,
        "T_schedule": schedule,
    }
    if extra:
        doc.update(extra)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def check_trace_prunes(trace: Trace) -> dict[str, Any]:
    """Integer-exact check of a trace's thresholds against its own dequantized logits.

    For every head, the integer scores ``S = q_int . k_int`` (int64, exact) survive iff
    ``S >= Th``; with exact rational arithmetic this holds iff
    ``S * s_q * s_k / sqrt(d) >= theta`` except where the float product of
    ``theta * sqrt(d) / (s_q s_k)`` lands exactly on an integer (a tie).

    Returns
    -------
    dict
        ``pruned_fraction`` per head (visible scores), ``mismatch`` count per head
        where the real-domain test disagrees with ``S >= Th`` away from ties.
    """
    vis = trace.visible()
    d = trace.head_dim
    theta = np.asarray(trace.meta.get("theta", [np.nan] * trace.heads), dtype=np.float64)
    frac, mism = [], []
    for h in range(trace.heads):
        S = trace.q[h] @ trace.k[h].T
        keep = (S >= trace.threshold[h]) & vis
        frac.append(1.0 - keep.sum() / vis.sum())
        real = theta[h] * math.sqrt(d) / (trace.scale_q[h] * trace.scale_k[h])
        if np.isfinite(real):
            tie = np.isclose(S.astype(np.float64), real, rtol=0, atol=1e-6 * max(1.0, abs(real)))
            mism.append(int(((S >= real) != (S >= trace.threshold[h]))[vis & ~tie].sum()))
        else:
            mism.append(0)
    return {"pruned_fraction": [float(f) for f in frac], "mismatch": mism}
