"""The speculative pruning margin (lossy, opt-in; ``LeopardConfig.margin``).

With ``m = p - r`` planes unread, the unread low bits of every k_i lie in ``[0, 2^m - 1]``,
so ``LB_r = 2^m A_r - Q- (2^m - 1) <= S <= UB_r = 2^m A_r + Q+ (2^m - 1)`` with
``Q+ = sum max(q_i, 0)`` and ``Q- = sum max(-q_i, 0)``: ``UB_r - LB_r = (Q+ + Q-)(2^m - 1)``.
The margin ``mu`` prunes at plane ``r < p`` when ``UB_r - mu (UB_r - LB_r) < Th``, which is
the exact bound test with ``Q+`` replaced by the per-query constant::

    Q+' = Q+ - floor(margin_register * (Q+ + Q-) / 2**margin_frac_bits)

(``mu = margin_register / 2**margin_frac_bits``; the floor makes ``Q+' >= Q+ - mu ||q||_1``,
so the test is never more aggressive than the real-valued margin). The last plane's test
is ``S < Th`` whatever the margin, so a margin only loses survivors (keys with ``S >= Th``
pruned early), never adds any. Golden model, performance model (through ``planes_used``
and the mask) and RTL (:class:`leopard_rtl.hw.threshold.PlaneThresholds`) use this one rule.

:func:`margin_loss` measures what a margin costs against exact pruning at the same threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from leopard_rtl.config import ConfigError, LeopardConfig

__all__ = ["margin_registers", "effective_qpos", "margin_loss", "loss_total"]


def margin_registers(margin: np.ndarray | float | None, heads: int,
                     cfg: LeopardConfig) -> np.ndarray:
    """Per-head margin register values, int64 [heads].

    ``margin`` None: every head holds ``cfg.margin_register``; otherwise register values
    (integers in ``[0, 2**margin_frac_bits)``), one per head or one for all. A non-zero
    value needs a configuration built with a margin (``cfg.margin > 0``).
    """
    if margin is None:
        return np.full(heads, cfg.margin_register, dtype=np.int64)
    reg = np.broadcast_to(np.asarray(margin, dtype=np.int64), (heads,)).copy()
    hi = (1 << cfg.margin_frac_bits) - 1
    if (reg < 0).any() or (reg > hi).any():
        raise ConfigError(f"margin registers must be in [0, {hi}], not {reg.tolist()}")
    if reg.any() and cfg.margin == 0:
        raise ConfigError(f"configuration '{cfg.name}' has no margin register (margin=0); "
                          f"build it with --set margin=M to run a non-zero margin")
    return reg


def effective_qpos(q: np.ndarray, margin_reg: np.ndarray, frac_bits: int) -> np.ndarray:
    """``Q+'`` of every query, int64 [H, Nq] (module docstring); ``Q+`` where the register is 0.

    Parameters
    ----------
    q : int array [H, Nq, d]
        Queries.
    margin_reg : int array [H]
        Margin register per head.
    frac_bits : int
        ``margin_frac_bits``.
    """
    q = np.asarray(q, dtype=np.int64)
    qpos = np.maximum(q, 0).sum(axis=-1)
    qabs = np.abs(q).sum(axis=-1)
    reg = np.asarray(margin_reg, dtype=np.int64).reshape(-1, 1)
    return qpos - ((reg * qabs) >> frac_bits)


def margin_loss(score: np.ndarray, mask: np.ndarray, exact_mask: np.ndarray,
                out: np.ndarray, exact_out: np.ndarray, scale_q: np.ndarray,
                scale_k: np.ndarray, head_dim: int) -> list[dict[str, float | int]]:
    """Per head, what a margin lost against exact pruning at the same threshold.

    Parameters
    ----------
    score : int [H, Nq, Nk]
        Exact scores.
    mask, exact_mask : bool [H, Nq, Nk]
        Survivors with the margin and with exact pruning (visible keys only).
    out, exact_out : int [H, Nq, dv]
        The core's outputs with the margin and with exact pruning (V's integer units).
    scale_q, scale_k : float [H]
        Quantization scales (softmax argument ``S s_q s_k / sqrt(d)``).
    head_dim : int
        d.

    Returns
    -------
    list of dict
        Per head: ``survivors_lost`` (exact survivors the margin pruned), ``queries_hit``
        (queries that lost any), ``mass_lost_mean`` / ``mass_lost_max`` (over queries: the
        float softmax weight, over the exact survivors, of the lost ones), and
        ``out_error_mean`` / ``out_error_max`` (``|out - exact_out|`` in V LSBs, over all
        output elements).
    """
    mask = np.asarray(mask, dtype=bool)
    exact_mask = np.asarray(exact_mask, dtype=bool)
    lost = exact_mask & ~mask
    c = (np.asarray(scale_q, np.float64) * np.asarray(scale_k, np.float64)
         / math.sqrt(head_dim)).reshape(-1, 1, 1)
    z = np.where(exact_mask, np.asarray(score, np.float64) * c, -np.inf)
    zmax = z.max(axis=-1, keepdims=True)
    zmax = np.where(np.isfinite(zmax), zmax, 0.0)
    w = np.where(exact_mask, np.exp(z - zmax), 0.0)
    tot = w.sum(axis=-1)
    mass = np.where(lost, w, 0.0).sum(axis=-1) / np.where(tot > 0, tot, 1.0)   # [H, Nq]
    err = np.abs(np.asarray(out, np.int64) - np.asarray(exact_out, np.int64))
    rows = []
    for h in range(mask.shape[0]):
        rows.append({"survivors_lost": int(lost[h].sum()),
                     "queries_hit": int(lost[h].any(axis=-1).sum()),
                     "mass_lost_mean": round(float(mass[h].mean()), 6),
                     "mass_lost_max": round(float(mass[h].max()), 6),
                     "out_error_mean": round(float(err[h].mean()), 6),
                     "out_error_max": int(err[h].max())})
    return rows


def loss_total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-head margin losses summed (counts), averaged (means) or maxed."""
    return {"survivors_lost": sum(r["survivors_lost"] for r in rows),
            "queries_hit": sum(r["queries_hit"] for r in rows),
            "mass_lost_mean": round(float(np.mean([r["mass_lost_mean"] for r in rows])), 6),
            "mass_lost_max": max(r["mass_lost_max"] for r in rows),
            "out_error_mean": round(float(np.mean([r["out_error_mean"] for r in rows])), 6),
            "out_error_max": max(r["out_error_max"] for r in rows)}
