"""Quantization helpers shared by the golden model, the workload export and the tests.

No Amaranth import here: this module is part of the independent reference.

Conventions (SPEC section 2)
----------------------------
* Symmetric per-tensor scales: ``x_int = clip(round(x / s), -(2**(b-1) - 1), 2**(b-1) - 1)``
  with ``s = max|x| / (2**(b-1) - 1)``. ``round`` is numpy's round-half-to-even.
* A learned threshold ``theta`` on the logit ``z = q.k / sqrt(d)`` becomes the integer
  ``Th = ceil(theta * sqrt(d) / (s_q * s_k))``; a score survives iff ``S >= Th``.
* The softmax scale register holds ``c * 2**F = log2(e) * s_q * s_k / sqrt(d) * 2**F`` as a
  mantissa and a right shift: ``c * 2**F ~= mant / 2**shift`` (see :func:`softmax_scale`).
"""

from __future__ import annotations

import math

import numpy as np

from leopard_rtl.errors import LeopardError

__all__ = ["QuantError", "quantize_symmetric", "threshold_to_int", "softmax_scale",
           "int_range"]


class QuantError(LeopardError, ValueError):
    """A value cannot be represented in the hardware's fixed-point format (names which)."""


def int_range(bits: int) -> tuple[int, int]:
    """Full two's-complement range ``(-2**(bits-1), 2**(bits-1) - 1)``."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def quantize_symmetric(x: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Quantize a real tensor to signed ``bits``-bit integers with one symmetric scale.

    Returns
    -------
    (x_int, scale) : (int64 array, float)
        ``x ~= scale * x_int``; ``x_int`` in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
        An all-zero tensor gets ``scale = 1.0``.
    """
    if not 2 <= bits <= 32:
        raise ValueError(f"bits must be in [2, 32], not {bits}")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("quantize_symmetric: input has non-finite values")
    qmax = (1 << (bits - 1)) - 1
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    scale = amax / qmax if amax > 0 else 1.0
    x_int = np.clip(np.round(x / scale), -qmax, qmax).astype(np.int64)
    return x_int, scale


def threshold_to_int(theta: float | np.ndarray, scale_q: float | np.ndarray,
                     scale_k: float | np.ndarray, head_dim: int) -> np.ndarray:
    """Map a logit-domain threshold to the integer score domain.

    ``Th = ceil(theta * sqrt(d) / (s_q * s_k))``, so that for integer scores
    ``S >= Th  <=>  S * s_q * s_k / sqrt(d) >= theta`` (up to float64 rounding of the
    product itself). ``-inf``/``+inf`` map to the int64 extremes (nothing / everything pruned).
    """
    theta = np.asarray(theta, dtype=np.float64)
    real = theta * math.sqrt(head_dim) / (np.asarray(scale_q, dtype=np.float64)
                                          * np.asarray(scale_k, dtype=np.float64))
    lo, hi = np.iinfo(np.int64).min // 2, np.iinfo(np.int64).max // 2
    out = np.where(np.isnan(real), hi, np.clip(np.ceil(np.nan_to_num(real, posinf=hi,
                                                                       neginf=lo)), lo, hi))
    return out.astype(np.int64)


def softmax_scale(scale_q: float | np.ndarray, scale_k: float | np.ndarray, head_dim: int,
                  frac_bits: int, mant_bits: int, shift_bits: int) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Run-time softmax-scale register for each head: ``(mant, shift)``.

    The back end computes the base-2 exponent of ``exp((S - M) * s_q * s_k / sqrt(d))`` as
    ``t = (M - S) * c * 2**F`` with ``c = log2(e) * s_q * s_k / sqrt(d)``, in fixed point with
    ``F = frac_bits`` fractional bits, as ``t = round((M - S) * mant / 2**shift)``.
    This function picks ``shift`` in ``[1, 2**shift_bits - 1]`` and an unsigned
    ``mant_bits``-bit ``mant = round(c * 2**F * 2**shift)`` as large as possible
    (normalized, top bit set) so the relative error of the scale is at most
    ``2**-mant_bits``. If ``c * 2**F`` is too large for ``shift = 1`` (the mantissa would
    saturate) this is a :class:`QuantError` naming the head; if it is too small for the
    largest shift, ``mant`` is what that shift gives (possibly 0: every survivor then weighs
    the same), which :func:`sim.golden.error_bound` accounts for.

    Raises
    ------
    QuantError
        A scale is not finite and > 0, or a head's ``c * 2**F`` does not fit the register.
    """
    sq = np.atleast_1d(np.asarray(scale_q, dtype=np.float64))
    sk = np.atleast_1d(np.asarray(scale_k, dtype=np.float64))
    for name, arr in (("scale_q", sq), ("scale_k", sk)):
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            h = int(np.argmax(bad))
            raise QuantError(f"softmax scale: {name} of head {h} is {float(arr[h])!r}; "
                             f"it must be finite and > 0")
    with np.errstate(over="ignore", under="ignore"):
        c = np.atleast_1d(math.log2(math.e) * sq * sk / math.sqrt(head_dim) * 2.0 ** frac_bits)
    mmax = (1 << mant_bits) - 1
    smax = (1 << shift_bits) - 1
    # The largest value the register represents: mmax / 2**1 (shift >= 1), rounding included.
    too_big = ~np.isfinite(c) | (np.round(c * 2.0) > mmax)
    if too_big.any():
        h = int(np.argmax(too_big))
        raise QuantError(
            f"softmax scale of head {h}: log2(e) * scale_q * scale_k / sqrt(head_dim) * "
            f"2**exp_frac_bits = {c[h]:.6g} exceeds what the {mant_bits}-bit mantissa with "
            f"shift >= 1 holds ({mmax / 2:g}); the scale register would saturate (raise "
            f"scale_bits or lower exp_frac_bits, or requantize the trace)")
    # Largest shift with round(c * 2**shift) <= mmax; then clamp to [1, smax]. A product
    # that underflows to 0 takes the largest shift (mant 0).
    safe = np.where(c > 0, c, 1.0)
    shift = np.where(c > 0, np.floor(np.log2((mmax + 0.5) / safe)), smax)
    shift = np.clip(shift, 1, smax).astype(np.int64)
    # Guard against log2 rounding at the boundary.
    shift = np.where(np.round(c * 2.0 ** shift) > mmax, shift - 1, shift)
    shift = np.clip(shift, 1, smax)
    mant = np.round(c * np.exp2(shift.astype(np.float64))).astype(np.int64)
    return mant, shift
