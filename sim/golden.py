"""Bit-exact numpy golden model of LeOPArd pruned attention (SPEC sections 3-5).

One function per hardware block and one for the whole core. Integers only in the
bit-exact path (int64, or float64 where every value is provably an exact integer below
2**53); the float reference is separate. No Amaranth import: this is the independent
reference the RTL is checked against.

Blocks
------
:func:`bitserial_prune`
    Front end (QK lanes + threshold compare-and-terminate unit): exact scores, survivor
    mask and ``planes_used`` with the early-termination rule of SPEC section 3.
:func:`softmax_value`
    Back end (softmax/value pipeline): fixed-point exp with a LUT, running sum, e*v
    accumulation, one reciprocal per query, rounding to ``v_bits``.
:func:`run_golden`
    The whole core on a :class:`sim.trace.Trace`, with statistics and predicted cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leopard_rtl.config import LeopardConfig
from leopard_rtl.errors import LeopardError

from . import align as align_mod
from . import margin as margin_mod
from . import perf
from .align import k_align_shifts
from .quant import softmax_scale
from .reference import attention_float, error_bound
from .trace import Trace, visibility

__all__ = [
    "GoldenError", "GoldenResult", "threshold_register", "plane_partial_sums",
    "bitserial_prune", "exp_lut", "softmax_value", "attention_float", "error_bound",
    "scale_registers", "check_fits", "check_memory", "run_golden", "stored_survivors",
    "k_align_shifts",
]


class GoldenError(LeopardError, ValueError):
    """The input does not fit the configuration (the message says which parameter)."""


# --------------------------------------------------------------------------- front end
def threshold_register(th: np.ndarray | int, cfg: LeopardConfig) -> np.ndarray:
    """The value the signed ``threshold_bits`` register holds for threshold ``th``.

    Saturates to ``[-2**score_bits, 2**score_bits - 1]``. Every score fits in
    ``signed(score_bits)``, so saturation never changes the prune set ``{S < Th}``; it can
    only change *when* a key is pruned, and the RTL holds exactly this value.
    """
    sb = cfg.score_bits
    return np.clip(np.asarray(th, dtype=np.int64), -(1 << sb), (1 << sb) - 1)


def _exact_matmul(a: np.ndarray, b: np.ndarray, max_abs_bits: int) -> np.ndarray:
    """int64 a @ b; in float64 (BLAS) when every partial sum is below 2**53."""
    if max_abs_bits <= 52:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def plane_partial_sums(q: np.ndarray, k: np.ndarray, qk_bits: int, r: int,
                       q_bits: int | None = None) -> np.ndarray:
    """A_r = sum_i q_i * (k_i >> (p - r)) for all query/key pairs: int64 [..., Nq, Nk].

    ``k_i >> (p - r)`` is an arithmetic shift: the top ``r`` bits of ``k_i`` read as a
    signed ``r``-bit number. ``A_p`` is the exact score ``S``. ``q_bits``: signed width
    of ``q`` (default ``qk_bits``; wider for the aligned q' of :mod:`sim.align`).
    """
    kr = np.right_shift(np.asarray(k, dtype=np.int64), qk_bits - r)
    d = q.shape[-1]
    qb = qk_bits if q_bits is None else q_bits
    bits = (qb - 1) + (r - 1) + max(1, math.ceil(math.log2(max(d, 2))))
    return _exact_matmul(q, np.swapaxes(kr, -1, -2), bits)


def bitserial_prune(q: np.ndarray, k: np.ndarray, threshold: np.ndarray, qk_bits: int,
                    *, early_termination: bool = True, pruning: bool = True,
                    visible: np.ndarray | None = None,
                    return_bounds: bool = False, planes_per_cycle: int = 1,
                    margin_qpos: np.ndarray | None = None, k_align: int = 0,
                    align: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Front end: bit-serial Q.K with early termination against a threshold.

    Parameters
    ----------
    q : int array [H, Nq, d]
        Queries, signed ``qk_bits``-bit.
    k : int array [H, Nk, d]
        Keys, signed ``qk_bits``-bit, consumed MSB-first one bit-plane per cycle.
    threshold : int array [H]
        Threshold register value per head (see :func:`threshold_register`).
    qk_bits : int
        p, the number of bit-planes.
    early_termination, pruning : bool
        The two switches of SPEC section 6.
    visible : bool array [Nq, Nk] or [H, Nq, Nk], optional
        Keys a query may see (causal mode); hidden keys cost nothing and never survive.
    return_bounds : bool
        Also return ``ub`` int64 [p, H, Nq, Nk], UB_r for r = 1..p.
    planes_per_cycle : int
        c, planes a lane reads per cycle (1 or 2): the bound is tested only after planes
        c, 2c, ... and after plane p, so ``planes_used`` of a pruned key is the plane that
        ends the slot in which the bound first falls below ``Th`` (the planes read up to
        the decision). ``UB_r`` never increases with r, so this is ``min(c ceil(r/c), p)``
        for the r of one plane per cycle, and the prune set is the same.
    margin_qpos : int array [H, Nq], optional
        ``Q+'`` of a speculative margin (:func:`sim.margin.effective_qpos`): the bound
        tests of planes r < p use it in place of ``Q+`` (lossy: keys with ``S >= Th`` can
        be pruned; ``ub`` still holds the exact bounds). With ``k_align`` it is of ``q'``.
    k_align : int
        A > 0: per-channel power-of-two alignment of K (:mod:`sim.align`): the bound runs
        on ``(q', K', Th << A)`` and ``score`` is ``S' >> A = S`` (exact, same prune set).
    align : int array [H, d], optional
        The alignment shifts (default :func:`sim.align.k_align_shifts`); shifts a key does
        not fit raise :class:`sim.align.AlignError`.

    Returns
    -------
    dict
        ``score`` int64 [H, Nq, Nk] (exact S for every pair), ``mask`` bool (survivors),
        ``planes_used`` int64 (0 for hidden keys, the first r with UB_r < Th for pruned
        keys, p for survivors), ``qpos`` int64 [H, Nq] (Q+, of q' with ``k_align``), ``ub``
        if asked (of S' with ``k_align``), and ``align`` int64 [H, d] with ``k_align``.

    Notes
    -----
    With ``Q+ = sum max(q_i, 0)`` the unread low bits of each k_i add at most
    ``Q+ (2^(p-r) - 1)``, so ``UB_r = 2^(p-r) A_r + Q+ (2^(p-r) - 1) >= S`` and
    ``UB_p = S``. A key is pruned at the first r with ``UB_r < Th``; the prune set is
    exactly ``{S < Th}``.
    """
    if planes_per_cycle not in (1, 2):
        raise GoldenError(f"planes_per_cycle must be 1 or 2, not {planes_per_cycle!r}")
    q_bits = qk_bits
    if k_align:
        shifts = align_mod.k_align_shifts(k, qk_bits, k_align) if align is None else \
            np.asarray(align, dtype=np.int64)
        q, k, threshold = align_mod.align_operands(q, k, threshold, shifts, qk_bits, k_align)
        q_bits = qk_bits + k_align
    q = np.asarray(q, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    H, Nq, _ = q.shape
    Nk = k.shape[1]
    p = qk_bits
    th = np.asarray(threshold, dtype=np.int64).reshape(H, 1, 1)
    vis = np.ones((H, Nq, Nk), dtype=bool) if visible is None else \
        np.broadcast_to(np.asarray(visible, dtype=bool), (H, Nq, Nk))
    qpos = np.maximum(q, 0).sum(axis=-1)                      # [H, Nq]
    qp = qpos[:, :, None]
    qtest = qp if margin_qpos is None else np.asarray(margin_qpos, np.int64)[:, :, None]
    planes = np.zeros((H, Nq, Nk), dtype=np.int64)            # 0 = not yet terminated
    ubs = []
    score = None
    for r in range(1, p + 1):
        a_r = plane_partial_sums(q, k, p, r, q_bits)
        m = p - r
        ub = (a_r << m) + qp * ((1 << m) - 1)
        if return_bounds:
            ubs.append(ub)
        if early_termination and pruning and (r % planes_per_cycle == 0 or r == p):
            test = ub if qtest is qp else (a_r << m) + qtest * ((1 << m) - 1)
            newly = (planes == 0) & (test < th)
            planes[newly] = r
        if r == p:
            score = a_r
    assert score is not None
    if early_termination and pruning:
        mask = (planes == 0) & vis               # == (score >= th) without a margin
    elif pruning:
        mask = (score >= th) & vis
    else:
        mask = vis.copy()
    planes = np.where(planes == 0, p, planes) if (early_termination and pruning) \
        else np.full((H, Nq, Nk), p, dtype=np.int64)
    planes = np.where(vis, planes, 0)
    out = {"score": score >> k_align, "mask": mask, "planes_used": planes, "qpos": qpos}
    if k_align:
        out["align"] = shifts
    if return_bounds:
        out["ub"] = np.stack(ubs)
    return out


# ---------------------------------------------------------------------------- back end
def exp_lut(cfg: LeopardConfig) -> np.ndarray:
    """The exp lookup table: ``LUT[f] = round(2**E * 2**(-f / 2**F))``, int64 [2**F].

    Values lie in ``(2**(E-1), 2**E]``; ``LUT[0] = 2**E``. The RTL builds its ROM from
    this function, so both agree by construction.
    """
    F, E = cfg.exp_frac_bits, cfg.exp_bits
    f = np.arange(1 << F, dtype=np.float64)
    return np.floor(np.exp2(E - f / (1 << F)) + 0.5).astype(np.int64)


def scale_registers(scale_q: np.ndarray, scale_k: np.ndarray,
                    cfg: LeopardConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-head softmax-scale registers ``(mant, shift)`` for this configuration."""
    return softmax_scale(scale_q, scale_k, cfg.head_dim, cfg.exp_frac_bits,
                         cfg.scale_bits, cfg.scale_shift_bits)


def softmax_value(score: np.ndarray, mask: np.ndarray, v: np.ndarray,
                  mant: np.ndarray, shift: np.ndarray,
                  cfg: LeopardConfig) -> dict[str, np.ndarray]:
    """Back end: fixed-point softmax of the surviving scores and the weighted sum of V.

    Parameters
    ----------
    score : int64 [H, Nq, Nk]
        Exact scores (only survivors are read).
    mask : bool [H, Nq, Nk]
        Survivors.
    v : int [H, Nk, dv]
        Values, signed ``v_bits``-bit.
    mant, shift : int [H]
        Softmax-scale registers (:func:`scale_registers`).
    cfg : LeopardConfig
        Widths ``exp_frac_bits`` F, ``exp_bits`` E, ``recip_bits`` R, ``v_bits``.

    Returns
    -------
    dict
        ``out`` int64 [H, Nq, dv]; ``all_pruned`` bool [H, Nq]; intermediates ``m``
        (max surviving score, 0 if none), ``e`` int64 [H, Nq, Nk] (0 for non-survivors),
        ``sum`` [H, Nq], ``acc`` [H, Nq, dv], ``recip`` [H, Nq] (0 if all pruned),
        ``l`` [H, Nq] (floor(log2(sum)), 0 if all pruned).

    Notes
    -----
    Per survivor: ``x = M - S``; ``t = ((x * mant) >> (shift - 1)) + 1) >> 1`` (round
    half up of ``x * mant / 2**shift``); ``e = LUT[t mod 2**F] >> (t >> F)`` (0 once the
    shift exceeds E). Per query: ``sum = sum e``, ``acc = sum e * v``,
    ``L = floor(log2 sum)``, ``recip = floor(2**(L+R) / sum)``,
    ``out = sat((acc * recip + 2**(L+R-1)) >> (L+R))`` (arithmetic shift: round half up).
    """
    score = np.asarray(score, dtype=np.int64)
    mask = np.asarray(mask, dtype=bool)
    v = np.asarray(v, dtype=np.int64)
    H = score.shape[0]
    F, E, R = cfg.exp_frac_bits, cfg.exp_bits, cfg.recip_bits
    mant = np.asarray(mant, dtype=np.int64).reshape(H, 1, 1)
    shift = np.asarray(shift, dtype=np.int64).reshape(H, 1, 1)
    lo = np.iinfo(np.int64).min
    any_surv = mask.any(axis=-1)                                           # [H, Nq]
    m = np.where(any_surv, np.where(mask, score, lo).max(axis=-1), 0)      # [H, Nq]
    x = np.where(mask, m[:, :, None] - score, 0)
    t = (np.right_shift(x * mant, shift - 1) + 1) >> 1
    ipart = np.minimum(t >> F, E + 1)
    lut = exp_lut(cfg)
    e = np.right_shift(lut[t & ((1 << F) - 1)], ipart)
    e = np.where(mask, e, 0)
    total = e.sum(axis=-1)                                                 # [H, Nq]
    acc = _exact_matmul(e, v, cfg.acc_bits)                                # [H, Nq, dv]
    safe = np.where(total > 0, total, 1)
    L = np.frexp(safe.astype(np.float64))[1].astype(np.int64) - 1          # exact: < 2**53
    recip = np.left_shift(np.int64(1), L + R) // safe
    sh = (L + R)[:, :, None]
    out = np.right_shift(acc * recip[:, :, None] + np.left_shift(np.int64(1), sh - 1), sh)
    vmin, vmax = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1)) - 1
    out = np.clip(out, vmin, vmax)
    out = np.where(any_surv[:, :, None], out, 0)
    return {"out": out, "all_pruned": ~any_surv, "m": m, "e": e, "sum": total,
            "acc": np.where(any_surv[:, :, None], acc, 0),
            "recip": np.where(any_surv, recip, 0), "l": np.where(any_surv, L, 0)}


# ------------------------------------------------------------------------- whole core
def stored_survivors(mask: np.ndarray, capacity: int) -> np.ndarray:
    """The survivors the survivor store keeps: bool, the shape of ``mask`` [..., Nk].

    The store keeps a query's first ``capacity`` survivor records and counts (and flags)
    the rest. Records leave the front end in completion order, lanes in index order within
    a cycle; survivors all take ``qk_bits`` planes and are dispatched in key order, so that
    order is key order and the kept ones are the first ``capacity`` survivors by key.
    """
    mask = np.asarray(mask, dtype=bool)
    return mask & (np.cumsum(mask, axis=-1) <= capacity)


@dataclass
class GoldenResult:
    """Everything the golden model computes for one trace (arrays indexed [head, ...])."""

    cfg: LeopardConfig
    mask: np.ndarray            # bool [H, Nq, Nk]
    planes_used: np.ndarray     # int64 [H, Nq, Nk]
    score: np.ndarray           # int64 [H, Nq, Nk]
    out: np.ndarray             # int64 [H, Nq, dv]
    all_pruned: np.ndarray      # bool [H, Nq]
    visible: np.ndarray         # bool [Nq, Nk]
    threshold: np.ndarray       # int64 [H], register values
    scale_mant: np.ndarray      # int64 [H]
    scale_shift: np.ndarray     # int64 [H]
    cycles: np.ndarray          # int64 [H], predicted by sim.perf.core_cycles
    baseline_cycles: np.ndarray  # int64 [H], the same model for cfg.baseline()
    #: bool [H, Nq]: more survivors than ``cfg.survivor_capacity``; ``out`` then covers
    #: the first ``survivor_capacity`` of them (key order), as in the hardware.
    overflow: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    backend: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    #: int64 [H]: margin register per head (0: exact pruning).
    margin: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Per head, what the margin lost against exact pruning (:func:`sim.margin.margin_loss`);
    #: empty when every margin register is 0.
    margin_loss: list[dict[str, Any]] = field(default_factory=list)
    #: int64 [H, d]: the K alignment shifts the host sends (:func:`k_align_shifts`);
    #: [H, 0] without alignment (``cfg.k_align == 0``).
    align: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    @property
    def survivors(self) -> np.ndarray:
        """int64 [H, Nq]: surviving keys per query."""
        return self.mask.sum(axis=-1)

    def summary(self) -> dict[str, Any]:
        """Per-head and total statistics, JSON-serializable."""
        vis = np.broadcast_to(self.visible, self.mask.shape)
        heads = []
        for h in range(self.mask.shape[0]):
            heads.append(_stats(vis[h], self.mask[h], self.planes_used[h],
                                int(self.cycles[h]), int(self.baseline_cycles[h]),
                                int(self.all_pruned[h].sum())))
        total = _stats(vis, self.mask, self.planes_used, int(self.cycles.sum()),
                       int(self.baseline_cycles.sum()), int(self.all_pruned.sum()))
        for h, row in enumerate(heads):
            row["overflow_queries"] = int(self.overflow[h].sum())
        total["overflow_queries"] = int(self.overflow.sum())
        # K bit-plane words read, the speculative reads of a pending decision included
        reads = perf.k_plane_reads(self.planes_used, self.cfg)
        for h, row in enumerate(heads):
            row["k_plane_reads"] = int(reads[h].sum())
        total["k_plane_reads"] = int(reads.sum())
        for h, loss in enumerate(self.margin_loss):
            heads[h].update(margin=int(self.margin[h]) / (1 << self.cfg.margin_frac_bits),
                            **loss)
        if self.margin_loss:
            total.update(margin_mod.loss_total(self.margin_loss))
        return {"config": self.cfg.name, "heads": heads, "total": total}


def _stats(vis: np.ndarray, mask: np.ndarray, planes: np.ndarray, cycles: int,
           base: int, all_pruned: int) -> dict[str, Any]:
    keys = int(vis.sum())
    surv = int(mask.sum())
    return {
        "keys": keys, "survivors": surv,
        "pruned_fraction": round(1 - surv / keys, 6) if keys else 0.0,
        "mean_planes": round(float(planes[vis].mean()), 6) if keys else 0.0,
        "all_pruned_queries": all_pruned,
        "cycles": cycles, "baseline_cycles": base,
        "speedup": round(base / cycles, 6) if cycles else None,
    }


def check_fits(trace: Trace, cfg: LeopardConfig) -> None:
    """Raise :class:`GoldenError` if ``trace`` cannot run on the hardware ``cfg`` describes."""
    checks = [
        ("head_dim", trace.head_dim, cfg.head_dim),
        ("qk_bits", trace.qk_bits, cfg.qk_bits),
        ("v_bits", trace.v_bits, cfg.v_bits),
    ]
    for name, have, want in checks:
        if have != want:
            raise GoldenError(f"{trace.source}: trace has {name}={have} but the configuration "
                              f"'{cfg.name}' has {name}={want} (choose another --preset or "
                              f"--set {name}={have})")
    if trace.v_dim != cfg.head_dim:
        raise GoldenError(f"{trace.source}: V rows have {trace.v_dim} elements but head_dim is "
                          f"{cfg.head_dim}; the value pipeline is head_dim wide")
    if trace.n_keys > cfg.max_keys:
        raise GoldenError(f"{trace.source}: trace has {trace.n_keys} keys but max_keys is "
                          f"{cfg.max_keys} (--set max_keys={trace.n_keys} or split the trace)")


#: Bytes the golden model holds per (head, query, key) at its peak: about 32 int64
#: arrays of shape [H, Nq, Nk] (scores, bounds, planes, masks, exponents, temporaries).
BYTES_PER_SCORE = 32 * 8


def available_memory() -> int | None:
    """Bytes of memory available to this process (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(trace: Trace) -> None:
    """Raise :class:`GoldenError` if the golden model of ``trace`` would not fit in memory
    (checked before any array is allocated, instead of dying of exhaustion)."""
    need = trace.heads * trace.n_queries * trace.n_keys * BYTES_PER_SCORE
    have = available_memory()
    if have is not None and need > have:
        raise GoldenError(
            f"{trace.source}: {trace.heads} heads x {trace.n_queries} queries x "
            f"{trace.n_keys} keys need about {need / 2**30:.1f} GiB for the golden model, "
            f"but only {have / 2**30:.1f} GiB of memory is available (split the trace)")


def _front(trace: Trace, cfg: LeopardConfig, th: np.ndarray, vis: np.ndarray,
           margin_qpos: np.ndarray | None = None) -> dict[str, np.ndarray]:
    return bitserial_prune(trace.q, trace.k, th, cfg.qk_bits,
                           early_termination=cfg.early_termination, pruning=cfg.pruning,
                           visible=vis, margin_qpos=margin_qpos,
                           planes_per_cycle=cfg.planes_per_cycle, k_align=cfg.k_align)


def aligned_q(trace: Trace, cfg: LeopardConfig) -> np.ndarray:
    """The queries the front end's bound sees: ``q'`` with ``cfg.k_align`` (shifts from
    :func:`k_align_shifts`), else ``trace.q``; int64 [H, Nq, d]."""
    if not cfg.k_align:
        return np.asarray(trace.q, dtype=np.int64)
    s = k_align_shifts(trace.k, cfg.qk_bits, cfg.k_align)
    return np.asarray(trace.q, dtype=np.int64) << (cfg.k_align - s)[:, None, :]


def run_golden(trace: Trace, cfg: LeopardConfig,
               margin: np.ndarray | None = None) -> GoldenResult:
    """Run the whole core on ``trace``: outputs, statistics and predicted cycles.

    The baseline's cycles (``cfg.baseline()``) come from the same performance model on
    the same input, so ``summary()`` can report the predicted speedup. A query with more
    survivors than ``cfg.survivor_capacity`` gets the hardware's output: the softmax over
    its first ``survivor_capacity`` survivors (:func:`stored_survivors`), flagged in
    ``overflow``.

    ``margin``: margin register values per head (:func:`sim.margin.margin_registers`;
    default ``cfg.margin_register`` for every head). A non-zero margin is lossy; the
    result then also holds ``margin_loss``, measured against exact pruning.
    """
    check_fits(trace, cfg)
    check_memory(trace)
    vis = trace.visible()
    th = threshold_register(trace.threshold, cfg)
    mreg = margin_mod.margin_registers(margin, trace.heads, cfg)
    lossy = bool(mreg.any()) and cfg.early_termination and cfg.pruning
    qeff = margin_mod.effective_qpos(aligned_q(trace, cfg), mreg, cfg.margin_frac_bits) \
        if lossy else None
    fe = _front(trace, cfg, th, vis, qeff)
    mant, shift = scale_registers(trace.scale_q, trace.scale_k, cfg)
    stored = stored_survivors(fe["mask"], cfg.survivor_capacity)
    be = softmax_value(fe["score"], stored, trace.v, mant, shift, cfg)
    loss: list[dict[str, Any]] = []
    if lossy:
        exact = _front(trace, cfg, th, vis)["mask"]
        ex_out = softmax_value(fe["score"], stored_survivors(exact, cfg.survivor_capacity),
                               trace.v, mant, shift, cfg)["out"]
        loss = margin_mod.margin_loss(fe["score"], fe["mask"], exact, be["out"], ex_out,
                                      trace.scale_q, trace.scale_k, cfg.head_dim)
    overflow = fe["mask"].sum(axis=-1) > cfg.survivor_capacity
    cycles = perf.core_cycles(fe["planes_used"], fe["mask"], cfg)
    base = cfg.baseline()
    base_planes = np.where(vis, cfg.qk_bits, 0)[None].repeat(trace.heads, axis=0)
    base_cycles = perf.core_cycles(base_planes, base_planes > 0, base)
    return GoldenResult(cfg=cfg, mask=fe["mask"], planes_used=fe["planes_used"],
                        score=fe["score"], out=be["out"], all_pruned=be["all_pruned"],
                        visible=vis, threshold=th, scale_mant=mant, scale_shift=shift,
                        cycles=cycles, baseline_cycles=base_cycles, overflow=overflow,
                        backend=be, margin=mreg, margin_loss=loss,
                        align=fe.get("align", np.zeros((trace.heads, 0), np.int64)))


def visible_mask(n_queries: int, n_keys: int, causal: bool) -> np.ndarray:
    """Bool [Nq, Nk] causal visibility (query i sees keys 0 .. i + Nk - Nq)."""
    return visibility(n_queries, n_keys, causal)
