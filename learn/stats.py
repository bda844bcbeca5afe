"""Paired measurement protocol: a pruned model against its control on the same test items.

Torch-free (numpy only). Two statistics:

* accuracy: per-item correctness of both models; the difference of accuracies is the mean
  of ``d_i = c_pruned_i - c_control_i`` in {-1, 0, 1}. Its 95 % interval comes from a
  paired bootstrap (resampling items; done exactly by resampling the counts of the three
  values of ``d_i`` with a multinomial) and, as a check, from the normal approximation;
  McNemar's exact test gives the p-value of "no difference" from the discordant pairs.
* perplexity: per-block sums of negative log-likelihood and token counts of both models on
  the same blocks; the relative change ``ppl_pruned / ppl_control - 1`` with a paired
  bootstrap over blocks.

The verdict against a tolerance (0.2 % by default: 0.002 absolute for accuracy, relative
for perplexity) is "within" when the whole 95 % interval is on the good side of
``-tolerance`` (accuracy) or ``+tolerance`` (perplexity), "beyond" when the whole interval
is on the bad side, and "undecided" otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["paired_accuracy", "paired_perplexity", "mcnemar_exact", "verdict"]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Parameters
    ----------
    b, c : int
        Items right under model A only, and under model B only.

    Returns
    -------
    float
        ``P(X <= min(b, c)) * 2`` (capped at 1) for ``X ~ Binomial(b + c, 1/2)``.
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(k + 1)]
    m = max(logs)
    return min(1.0, 2.0 * math.exp(m) * sum(math.exp(v - m) for v in logs))


def paired_accuracy(correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int = 20000,
                    seed: int = 0) -> dict[str, Any]:
    """Paired difference of accuracies ``acc(a) - acc(b)`` on the same items.

    Parameters
    ----------
    correct_a, correct_b : bool arrays [n]
        Per-item correctness of model A (e.g. pruned) and model B (e.g. control).
    n_boot : int
        Bootstrap resamples.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``n``, ``acc_a``, ``acc_b``, ``diff``, ``ci95_bootstrap`` [lo, hi],
        ``ci95_normal`` [lo, hi], ``a_only``/``b_only`` (discordant counts),
        ``discordant_share`` and ``mcnemar_p``.
    """
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired arrays must have the same non-zero length")
    n = a.size
    n_pos = int((a & ~b).sum())
    n_neg = int((~a & b).sum())
    diff = (n_pos - n_neg) / n
    rng = np.random.default_rng(seed)
    p = np.array([n_pos, n_neg, n - n_pos - n_neg], dtype=np.float64) / n
    counts = rng.multinomial(n, p, size=n_boot)
    boots = (counts[:, 0] - counts[:, 1]) / n
    lo, hi = np.percentile(boots, [2.5, 97.5])
    var = ((n_pos + n_neg) / n - diff ** 2) / n
    half = 1.959964 * math.sqrt(max(var, 0.0))
    return {"n": n, "acc_a": float(a.mean()), "acc_b": float(b.mean()), "diff": diff,
            "ci95_bootstrap": [float(lo), float(hi)], "ci95_normal": [diff - half, diff + half],
            "a_only": n_pos, "b_only": n_neg, "discordant_share": (n_pos + n_neg) / n,
            "mcnemar_p": mcnemar_exact(n_pos, n_neg)}


def paired_perplexity(nll_a: np.ndarray, nll_b: np.ndarray, tokens: np.ndarray,
                      n_boot: int = 5000, seed: int = 0) -> dict[str, Any]:
    """Paired relative perplexity change ``ppl(a) / ppl(b) - 1`` over the same blocks.

    Parameters
    ----------
    nll_a, nll_b : float arrays [blocks]
        Summed negative log-likelihood (nats) per block under model A and model B.
    tokens : int array [blocks]
        Predicted tokens per block.
    n_boot : int
        Bootstrap resamples (over blocks).
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``blocks``, ``tokens``, ``ppl_a``, ``ppl_b``, ``rel_change`` and ``ci95_bootstrap``.
    """
    na = np.asarray(nll_a, dtype=np.float64)
    nb = np.asarray(nll_b, dtype=np.float64)
    t = np.asarray(tokens, dtype=np.float64)
    ppl_a = math.exp(na.sum() / t.sum())
    ppl_b = math.exp(nb.sum() / t.sum())
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(0, n_boot, 500):
        idx = rng.integers(0, na.size, size=(500, na.size))
        ts = t[idx].sum(1)
        boots.append(np.exp((na[idx].sum(1) - nb[idx].sum(1)) / ts) - 1.0)
    bs = np.concatenate(boots)[:n_boot]
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return {"blocks": int(na.size), "tokens": int(t.sum()), "ppl_a": ppl_a, "ppl_b": ppl_b,
            "rel_change": ppl_a / ppl_b - 1.0, "ci95_bootstrap": [float(lo), float(hi)]}


def verdict(ci: list[float], tolerance: float = 0.002, higher_is_better: bool = True) -> str:
    """Classify a 95 % interval of the change against a tolerance.

    Parameters
    ----------
    ci : [lo, hi]
        Interval of ``metric(pruned) - metric(control)`` (accuracy) or of the relative
        perplexity change.
    tolerance : float
        Allowed loss (0.002 = 0.2 %).
    higher_is_better : bool
        True for accuracy, False for perplexity.

    Returns
    -------
    str
        ``"within"`` (loss < tolerance with 95 % confidence), ``"beyond"`` (loss >
        tolerance with 95 % confidence) or ``"undecided"``.
    """
    lo, hi = ci
    if higher_is_better:
        if lo >= -tolerance:
            return "within"
        if hi < -tolerance:
            return "beyond"
        return "undecided"
    if hi <= tolerance:
        return "within"
    if lo > tolerance:
        return "beyond"
    return "undecided"
