"""The float reference of attention and the rigorous bound on the fixed-point back end's
error against it (used by the golden model, the evaluation and the tests).

Split from :mod:`sim.golden`; :mod:`sim.golden` re-exports both functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from leopard_rtl.config import LeopardConfig

__all__ = ["attention_float", "error_bound"]


def attention_float(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale_q: np.ndarray,
                    scale_k: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Float64 attention over ``mask`` in V's integer units: [H, Nq, dv].

    ``z = (q.k) * s_q * s_k / sqrt(d)`` from the integer q and k, softmax over the keys
    where ``mask`` is True, times the integer V. Rows with no key give zeros. With
    ``mask`` = survivors this is float pruned attention (the reference for the back
    end's fixed-point error); with ``mask`` = visible keys it is unpruned attention.
    """
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    d = q.shape[-1]
    c = (np.asarray(scale_q, np.float64) * np.asarray(scale_k, np.float64)
         / math.sqrt(d)).reshape(-1, 1, 1)
    z = np.matmul(q, np.swapaxes(k, -1, -2)) * c
    z = np.where(mask, z, -np.inf)
    zmax = np.max(z, axis=-1, keepdims=True)
    zmax = np.where(np.isfinite(zmax), zmax, 0.0)
    w = np.where(mask, np.exp(z - zmax), 0.0)
    s = w.sum(axis=-1, keepdims=True)
    w = w / np.where(s > 0, s, 1.0)
    return np.matmul(w, np.asarray(v, dtype=np.float64))


def error_bound(score: np.ndarray, mask: np.ndarray, v: np.ndarray, scale_q: np.ndarray,
                scale_k: np.ndarray, mant: np.ndarray, shift: np.ndarray,
                backend: dict[str, np.ndarray], ref: np.ndarray,
                cfg: LeopardConfig) -> np.ndarray:
    """Rigorous per-query bound on ``|out - ref|`` (LSBs of V), float64 [H, Nq].

    With ``ê_j = 2**E 2**(-x_j c)`` the exact weights (``c = log2(e) s_q s_k / sqrt(d)``)
    and ``e_j`` the computed ones, ``y - ŷ = sum_j (e_j - ê_j)(v_j - ŷ) / sum_j e_j`` where
    ``y = acc/sum``. Each ``e_j = ê_j 2^(xc - t/2^F) (1 + λ) - φ`` with ``|λ| <= 2**-E``
    (LUT rounding), ``0 <= φ < 1`` (the shift truncates) and
    ``|xc - t/2^F| <= τ_j = (1/2 + x_j |mant/2^shift - c 2^F|) / 2^F``. The reciprocal
    loses at most a relative ``2**(1-R)`` and the final rounding half an LSB::

        |out - ŷ| <= 1/2 + |y| 2^(1-R)
                     + sum_j (ê_j ((1 + 2^-E) 2^τ_j - 1) + 1) |v_j - ŷ| / sum_j e_j
    """
    H = score.shape[0]
    F, E, R = cfg.exp_frac_bits, cfg.exp_bits, cfg.recip_bits
    d = cfg.head_dim
    c = math.log2(math.e) * np.asarray(scale_q, np.float64) * np.asarray(scale_k, np.float64) \
        / math.sqrt(d)
    c = c.reshape(H, 1, 1)
    eps_c = np.abs(np.asarray(mant, np.float64).reshape(H, 1, 1)
                   / np.exp2(np.asarray(shift, np.float64).reshape(H, 1, 1)) - c * 2.0 ** F)
    x = np.where(mask, backend["m"][:, :, None] - score, 0).astype(np.float64)
    tau = (0.5 + x * eps_c) / 2.0 ** F
    # ê ((1 + 2^-E) 2^τ - 1) in the log domain: ê alone may underflow to 0 where 2^τ
    # overflows, and 0 * inf would be NaN; here a huge term is +inf (no bound), never NaN.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        per_key = (np.exp2(E - x * c + tau) * (1 + 2.0 ** -E) - np.exp2(E - x * c)) + 1
        per_key = np.where(mask, per_key, 0.0)
        dv = np.abs(np.asarray(v, np.float64)[:, None, :, :] - ref[:, :, None, :])
        terms = per_key[..., None] * dv                                    # H,Nq,Nk,dv
        terms = np.where(per_key[..., None] == np.inf, np.inf, terms)      # inf * 0 -> inf
        num = terms.sum(axis=2)
    tot = backend["sum"].astype(np.float64)
    safe = np.where(tot > 0, tot, 1.0)
    y = backend["acc"] / safe[:, :, None]
    bound = 0.5 + np.abs(y) * 2.0 ** (1 - R) + num / safe[:, :, None]
    bound = np.where(np.isnan(bound), np.inf, bound)
    return np.where(tot[:, :, None] > 0, bound, 0.0).max(axis=-1)
