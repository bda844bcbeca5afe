"""Seeded stimulus: random, realistic and adversarial traces for tests and benchmarks.

Every generator takes a :class:`numpy.random.Generator`, so a failing case is reproduced
from its seed alone.
"""

from __future__ import annotations

import numpy as np

from .quant import quantize_symmetric, threshold_to_int
from .trace import Trace

__all__ = ["KINDS", "random_trace"]

#: Stimulus kinds accepted by :func:`random_trace`.
KINDS = ("uniform", "realistic", "adversarial")


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape, dtype=np.int64)


def _adversarial(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Values drawn from the corners of the range: most negative, -1, 0, 1, most positive."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    corners = np.array(sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi}), dtype=np.int64)
    out = corners[rng.integers(0, corners.size, size=shape)]
    # Some rows entirely at one corner (e.g. all most-negative, all zero).
    rows = out.reshape(-1, shape[-1])
    pick = rng.random(rows.shape[0]) < 0.25
    rows[pick] = corners[rng.integers(0, corners.size, size=int(pick.sum()))][:, None]
    return rows.reshape(shape)


def random_trace(rng: np.random.Generator, *, heads: int = 2, n_queries: int = 8,
                 n_keys: int = 8, head_dim: int = 4, qk_bits: int = 4, v_bits: int = 6,
                 causal: bool = False, kind: str = "uniform",
                 prune_quantile: float | None = 0.6) -> Trace:
    """A random trace.

    Parameters
    ----------
    kind : str
        ``"uniform"``: integers uniform over the full range. ``"realistic"``: Gaussian
        q/k with a shared low-rank component (peaked attention, like real heads),
        quantized with symmetric scales, and a logit-domain threshold. ``"adversarial"``:
        values at the corners of the range and whole rows at one corner.
    prune_quantile : float or None
        Threshold per head at this quantile of the head's visible scores (``None``: a
        uniformly random threshold over the score range, both ends included).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    H, Nq, Nk, d = heads, n_queries, n_keys, head_dim
    scale_q = np.ones(H)
    scale_k = np.ones(H)
    scale_v = np.ones(H)
    if kind == "realistic":
        rank = max(1, d // 8)
        basis = rng.normal(size=(H, rank, d))
        qf = rng.normal(size=(H, Nq, d)) + 2.0 * rng.normal(size=(H, Nq, rank)) @ basis
        kf = rng.normal(size=(H, Nk, d)) + 2.0 * rng.normal(size=(H, Nk, rank)) @ basis
        vf = rng.normal(size=(H, Nk, d))
        q = np.empty((H, Nq, d), np.int64)
        k = np.empty((H, Nk, d), np.int64)
        v = np.empty((H, Nk, d), np.int64)
        for h in range(H):
            q[h], scale_q[h] = quantize_symmetric(qf[h], qk_bits)
            k[h], scale_k[h] = quantize_symmetric(kf[h], qk_bits)
            v[h], scale_v[h] = quantize_symmetric(vf[h], v_bits)
    elif kind == "adversarial":
        q = _adversarial(rng, (H, Nq, d), qk_bits)
        k = _adversarial(rng, (H, Nk, d), qk_bits)
        v = _adversarial(rng, (H, Nk, d), v_bits)
        scale_q = scale_k = np.full(H, 2.0 ** -(qk_bits - 1))
    else:
        q = _uniform(rng, (H, Nq, d), qk_bits)
        k = _uniform(rng, (H, Nk, d), qk_bits)
        v = _uniform(rng, (H, Nk, d), v_bits)
        scale_q = scale_k = np.full(H, 2.0 ** -(qk_bits - 1))
    scores = np.einsum("hqd,hkd->hqk", q, k)
    i = np.arange(Nq)[:, None]
    j = np.arange(Nk)[None, :]
    vis = (j <= i + Nk - Nq) if causal else np.ones((Nq, Nk), bool)
    if prune_quantile is None:
        sb = 2 * qk_bits + (d - 1).bit_length()
        th = rng.integers(-(1 << sb), 1 << sb, size=H, dtype=np.int64)
    elif kind == "realistic":
        z = scores * (scale_q * scale_k)[:, None, None] / np.sqrt(d)
        theta = np.array([np.quantile(z[h][vis], prune_quantile) if vis.any() else 0.0
                          for h in range(H)])
        th = threshold_to_int(theta, scale_q, scale_k, d)
    else:
        th = np.array([int(np.quantile(scores[h][vis], prune_quantile)) if vis.any() else 0
                       for h in range(H)], dtype=np.int64)
    return Trace(q=q, k=k, v=v, threshold=th.astype(np.int64), scale_q=np.asarray(scale_q,
                 np.float64), scale_k=np.asarray(scale_k, np.float64),
                 scale_v=np.asarray(scale_v, np.float64), qk_bits=qk_bits, v_bits=v_bits,
                 causal=causal, meta={"model": "random", "kind": kind,
                                      "provenance": "sim.vectors.random_trace"}).validate()
