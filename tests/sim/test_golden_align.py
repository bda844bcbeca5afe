"""Golden model, per-channel power-of-two alignment of K (``k_align``, sim/align.py): exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leopard_rtl import LeopardConfig, preset
from leopard_rtl.config import ConfigError
from sim.align import AlignError, align_operands, fits_shifts, k_align_shifts
from sim.golden import bitserial_prune, run_golden
from sim.trace import load_trace
from sim.vectors import KINDS, random_trace

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ config
@pytest.mark.parametrize("bad", [-1, 11, 12, True, 1.5, "2"])
def test_k_align_range(bad: object) -> None:
    with pytest.raises(ConfigError, match="k_align"):
        LeopardConfig(qk_bits=12, k_align=bad)  # type: ignore[arg-type]


def test_k_align_range_follows_qk_bits() -> None:
    assert preset("tiny").replace(k_align=2).k_align == 2      # qk_bits = 4
    with pytest.raises(ConfigError, match=r"k_align must be an integer in \[0, qk_bits - 2 = 2\]"):
        preset("tiny").with_overrides(["k_align=3"])
    cfg = preset("paper").with_overrides(["k_align=3"])
    assert (cfg.align_bits, cfg.fe_q_bits, cfg.fe_score_bits, cfg.fe_threshold_bits) == \
        (2, 15, cfg.score_bits + 3, cfg.threshold_bits + 3)
    assert preset("paper").align_bits == 0


# ------------------------------------------------------------------------------ shifts
def test_shifts_at_the_range_edges() -> None:
    p, A = 6, 4
    # channel c holds keys exactly at the edges of p - c signed bits: shift c (capped at A)
    cols = []
    for s in range(p - 1):
        lo, hi = -(1 << (p - 1 - s)), (1 << (p - 1 - s)) - 1
        cols.append([lo, hi, 0])
    k = np.array(cols, dtype=np.int64).T[None]                    # [1, 3, p - 1]
    assert k_align_shifts(k, p, A).tolist() == [[0, 1, 2, 3, 4]]
    # one past an edge costs one bit
    k2 = k.copy()
    k2[0, 0, 2] -= 1                                             # -9 needs 5 bits: s = 1
    k2[0, 1, 3] += 1                                             # 4 needs 4 bits: s = 2
    assert k_align_shifts(k2, p, A).tolist() == [[0, 1, 1, 2, 4]]
    assert k_align_shifts(k, p, 0).tolist() == [[0] * (p - 1)]


def test_shifts_zero_channel_single_key_and_no_key() -> None:
    k = np.array([[[0, -1, 3]]], dtype=np.int64)                 # one key
    assert k_align_shifts(k, 8, 5).tolist() == [[5, 5, 5]]
    assert k_align_shifts(np.zeros((2, 0, 3), np.int64), 8, 3).tolist() == [[3] * 3] * 2
    s = k_align_shifts(k, 8, 5)
    assert fits_shifts(k, s, 8).all()
    assert not fits_shifts(k, s + 1, 8).any()                    # 6 bits of shift: too many


def test_bad_shifts_are_an_error() -> None:
    k = np.array([[[5, 0]]], dtype=np.int64)
    q = np.ones((1, 1, 2), np.int64)
    with pytest.raises(AlignError, match="key 0 of head 0"):
        align_operands(q, k, np.zeros(1, np.int64), np.array([[3, 0]]), 6, 3)
    with pytest.raises(AlignError, match="k_align=3"):
        align_operands(q, k, np.zeros(1, np.int64), np.array([[0, 4]]), 6, 3)


# ------------------------------------------------------------------------ exactness
def _narrowed(rng: np.random.Generator, kind: str, p: int) -> tuple[np.ndarray, ...]:
    """A random trace whose channels hold keys of random narrower widths."""
    t = random_trace(rng, heads=3, n_queries=5, n_keys=int(rng.integers(1, 9)), head_dim=5,
                     qk_bits=p, v_bits=6, kind=kind)
    k = np.asarray(t.k, np.int64) >> rng.integers(0, p, size=(3, 1, 5))
    return np.asarray(t.q, np.int64), k, np.asarray(t.threshold, np.int64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ppc", [1, 2])
def test_alignment_is_exact(kind: str, ppc: int) -> None:
    seed = 1400 + 10 * KINDS.index(kind) + ppc
    rng = np.random.default_rng(seed)
    for i in range(40):
        p = int(rng.integers(3, 10))
        q, k, th = _narrowed(rng, kind, p)
        vis = rng.random((q.shape[1], k.shape[1])) < 0.8
        ref = bitserial_prune(q, k, th, p, visible=vis, planes_per_cycle=ppc,
                              return_bounds=True)
        for A in range(1, p - 1):
            got = bitserial_prune(q, k, th, p, visible=vis, planes_per_cycle=ppc, k_align=A,
                                  return_bounds=True)
            why = f"seed {seed} case {i} p {p} k_align {A}"
            assert (got["mask"] == ref["mask"]).all(), why
            assert (got["score"] == ref["score"]).all(), why
            assert ((got["planes_used"] > 0) == (ref["planes_used"] > 0)).all(), why
            assert (got["ub"][-1] == ref["ub"][-1] << A).all(), why          # UB_p = S'
            # per channel the aligned bound exceeds 2**A times the plain one by at most
            # q+_c (2**A - 2**(A - s_c)): a key can rarely take more planes (see below)
            slack = (np.maximum(q, 0) * ((1 << A) - (1 << (A - got["align"]))[:, None])
                     ).sum(-1)
            assert (got["ub"] <= (ref["ub"] << A) + slack[None, :, :, None]).all(), why


def test_alignment_can_cost_a_plane() -> None:
    """The aligned bound is not tighter for every key: with every bit of k's channel set
    below the planes read, the plain bound's upper end equals the finer one, and the
    aligned slack's fractional part ``q+ (1 - 2**-s)`` is then a loss. Pinned so that a
    change of the rule is seen."""
    q = np.array([[[0, 29, 19, 16]]])
    k = np.array([[[-1, -2, -10, -19]], [[0, 0, 0, 0]]])[:1]
    plain = bitserial_prune(q, k, np.array([-58]), 6)
    aligned = bitserial_prune(q, k, np.array([-58]), 6, k_align=3)
    assert plain["planes_used"].item() < aligned["planes_used"].item()
    assert not plain["mask"].any() and not aligned["mask"].any()


@pytest.mark.parametrize("name", ["smollm2/layer15", "memn2n/layer0"])
def test_real_trace_exact_and_fewer_planes(name: str) -> None:
    trace = load_trace(ROOT / "traces" / f"{name}.npz")
    cfg = preset("minilm" if trace.head_dim == 32 else "paper").replace(
        head_dim=trace.head_dim, qk_bits=trace.qk_bits, v_bits=trace.v_bits,
        max_keys=max(16, trace.n_keys), lanes=8)
    ref = run_golden(trace, cfg)
    got = run_golden(trace, cfg.replace(k_align=2))
    assert (got.mask == ref.mask).all() and (got.score == ref.score).all()
    assert (got.out == ref.out).all()
    assert got.planes_used.sum() < ref.planes_used.sum()
    assert got.cycles.sum() <= ref.cycles.sum()


def test_margin_uses_the_aligned_query() -> None:
    rng = np.random.default_rng(1417)
    t = random_trace(rng, heads=2, n_queries=6, n_keys=12, head_dim=4, qk_bits=8,
                     v_bits=6, kind="realistic")
    cfg = preset("tiny").replace(qk_bits=8, margin=0.25, k_align=3)
    exact = run_golden(t, cfg.replace(margin=0))
    lossy = run_golden(t, cfg)
    assert not (lossy.mask & ~exact.mask).any()                  # a margin only loses
    assert (lossy.planes_used <= exact.planes_used).all()
