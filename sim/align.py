"""Per-channel power-of-two alignment of K (``LeopardConfig.k_align``; exact).

For one head with keys ``K`` [Nk, d] of ``p = qk_bits`` signed bits and ``A = k_align``,
channel ``c`` gets the shift ``s_c``: the largest ``s <= A`` such that every key of the
head fits in ``p - s`` signed bits in that channel (``-2**(p-1-s) <= K[:, c] <= 2**(p-1-s) - 1``),
i.e. the redundant leading sign bits all keys share. The front end then works on::

    K'_c = K_c << s_c        (still p signed bits: its low s_c bits are known zero)
    q'_c = q_c << (A - s_c)
    Th'  = Th << A

so ``S' = sum_c q'_c K'_c = S << A`` exactly: the prune set ``{S' < Th'} = {S < Th}`` is
unchanged and the survivor score is ``S = S' >> A`` (exact), so the back end is unchanged.
The bit-planes are read MSB-first from ``K'``: a channel with a large ``s_c`` reaches its
significant bits ``s_c`` planes earlier, and the bound (the unchanged rule of
:func:`sim.golden.bitserial_prune` on ``q', K', Th'``) tightens earlier.

The shifts are computed per head by the host, like the thresholds
(:func:`k_align_shifts`); the RTL receives them with a head's first K row.
"""

from __future__ import annotations

import numpy as np

from leopard_rtl.errors import LeopardError

__all__ = ["AlignError", "k_align_shifts", "fits_shifts", "align_operands"]


class AlignError(LeopardError, ValueError):
    """Alignment shifts that do not fit the keys or the configuration."""


def k_align_shifts(k: np.ndarray, qk_bits: int, k_align: int) -> np.ndarray:
    """Per head and channel, the alignment shift ``s`` (module docstring): int64 [H, d].

    Parameters
    ----------
    k : int array [H, Nk, d]
        Keys, signed ``qk_bits``-bit. A head without keys (Nk = 0) gets ``k_align``.
    qk_bits : int
        p.
    k_align : int
        A, the largest shift (0 gives all zeros).

    Returns
    -------
    int64 array [H, d]
        ``s[h, c]`` in ``0..k_align``.
    """
    k = np.asarray(k, dtype=np.int64)
    H, _, d = k.shape
    s = np.zeros((H, d), dtype=np.int64)
    if k.shape[1] == 0:
        return s + k_align
    kmin, kmax = k.min(axis=1), k.max(axis=1)                    # [H, d]
    for j in range(1, k_align + 1):
        lo, hi = -(1 << (qk_bits - 1 - j)), (1 << (qk_bits - 1 - j)) - 1
        s = np.where((kmin >= lo) & (kmax <= hi), j, s)          # fits j => fits j - 1
    return s


def fits_shifts(k: np.ndarray, shifts: np.ndarray, qk_bits: int) -> np.ndarray:
    """Whether every key fits its channel's shift: bool [H, Nk] (False: the hardware
    raises ``align_error``)."""
    k = np.asarray(k, dtype=np.int64)
    s = np.asarray(shifts, dtype=np.int64)[:, None, :]
    lo, hi = -(1 << (qk_bits - 1 - s)), (1 << (qk_bits - 1 - s)) - 1
    return ((k >= lo) & (k <= hi)).all(axis=-1)


def align_operands(q: np.ndarray, k: np.ndarray, threshold: np.ndarray, shifts: np.ndarray,
                   qk_bits: int, k_align: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q', K', Th')`` of the module docstring, int64.

    Parameters
    ----------
    q : int array [H, Nq, d]
    k : int array [H, Nk, d]
    threshold : int array [H]
        Threshold register values.
    shifts : int array [H, d]
        Per head and channel shift in ``0..k_align`` (:func:`k_align_shifts`).
    qk_bits, k_align : int

    Raises
    ------
    AlignError
        A shift outside ``0..k_align`` or a key that does not fit its channel's shift.
    """
    s = np.asarray(shifts, dtype=np.int64)
    H, d = np.shape(q)[0], np.shape(q)[-1]
    if s.shape != (H, d):
        raise AlignError(f"alignment shifts must have shape {(H, d)}, not {s.shape}")
    if (s < 0).any() or (s > k_align).any():
        raise AlignError(f"alignment shifts must be in [0, k_align={k_align}]")
    ok = fits_shifts(k, s, qk_bits)
    if not ok.all():
        h, j = (int(x) for x in np.argwhere(~ok)[0])
        raise AlignError(f"key {j} of head {h} does not fit its alignment shifts "
                         f"(the hardware would raise align_error)")
    q2 = np.asarray(q, dtype=np.int64) << (k_align - s)[:, None, :]
    k2 = np.asarray(k, dtype=np.int64) << s[:, None, :]
    th2 = np.asarray(threshold, dtype=np.int64) << k_align
    return q2, k2, th2
