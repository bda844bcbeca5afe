"""Golden model, front end: the early-termination bound and the prune rule (SPEC section 3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leopard_rtl import LeopardConfig, preset
from sim.golden import bitserial_prune, plane_partial_sums, threshold_register
from sim.vectors import KINDS, random_trace


def _all_vectors(bits: int, d: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    return np.array(list(itertools.product(range(lo, hi), repeat=d)), dtype=np.int64)


def _first_plane_reference(q: list[int], k: list[int], th: int, p: int) -> tuple[int, int]:
    """Plain-Python per-key reference: (exact score, first r with UB_r < Th or p)."""
    qpos = sum(max(x, 0) for x in q)
    score = sum(a * b for a, b in zip(q, k, strict=True))
    for r in range(1, p + 1):
        m = p - r
        a_r = sum(a * (b >> m) for a, b in zip(q, k, strict=True))
        ub = (a_r << m) + qpos * ((1 << m) - 1)
        if ub < th:
            return score, r
    return score, p


# ------------------------------------------------------------------ exhaustive, tiny widths
P, D = 4, 2
Q_ALL = _all_vectors(P, D)          # every q in [-8, 7]^2
K_ALL = _all_vectors(P, D)          # every k


def test_bound_sound_and_tight_exhaustive() -> None:
    """For every q, k (p=4, d=2) and every r: UB_r is the max of S over all completions of
    the unread low bits of k (sound: >= S; tight: attained), and LB_r (with Q-) the min."""
    q = Q_ALL[None]
    k = K_ALL[None]
    qpos = np.maximum(Q_ALL, 0).sum(-1)[:, None]
    qneg = np.minimum(Q_ALL, 0).sum(-1)[:, None]
    res = bitserial_prune(q, k, np.array([0]), P, return_bounds=True)
    exact = Q_ALL @ K_ALL.T
    assert np.array_equal(res["score"][0], exact)
    for r in range(1, P + 1):
        m = P - r
        hi = (K_ALL >> m) << m                                  # top r bits kept
        lows = _all_vectors(m + 1, D) if m else np.zeros((1, D), np.int64)
        lows = lows[(lows >= 0).all(-1) & (lows < (1 << m)).all(-1)] if m else lows
        assert lows.shape[0] == (1 << m) ** D
        s_all = np.einsum("qd,kld->qkl", Q_ALL, hi[:, None, :] + lows[None, :, :])
        ub = res["ub"][r - 1, 0]
        assert np.array_equal(ub, s_all.max(-1)), f"UB_{r} is not the max over completions"
        a_r = plane_partial_sums(Q_ALL, K_ALL, P, r)
        lb = (a_r << m) + qneg * ((1 << m) - 1)
        assert np.array_equal(lb, s_all.min(-1)), f"LB_{r} is not the min over completions"
        assert (ub >= exact).all() and (lb <= exact).all()
    assert np.array_equal(res["ub"][-1, 0], exact), "UB_p must equal S"
    del qpos


@pytest.mark.parametrize("early_termination", [True, False])
def test_prune_set_and_first_plane_exhaustive(early_termination: bool) -> None:
    """Every q, k of p=4, d=2 against every threshold from below min S to above max S."""
    q = Q_ALL[None]
    k = K_ALL[None]
    exact = Q_ALL @ K_ALL.T
    ub = bitserial_prune(q, k, np.array([0]), P, return_bounds=True)["ub"][:, 0]
    for th in range(int(exact.min()) - 1, int(exact.max()) + 2):
        res = bitserial_prune(q, k, np.array([th]), P, early_termination=early_termination)
        mask, planes = res["mask"][0], res["planes_used"][0]
        assert np.array_equal(mask, exact >= th), f"Th={th}: prune set != {{S < Th}}"
        if not early_termination:
            assert (planes == P).all()
            continue
        below = ub < th                                           # [p, Nq, Nk]
        first = np.where(below.any(0), below.argmax(0) + 1, P)
        assert np.array_equal(planes, first), f"Th={th}: planes_used is not the first plane"
        # A survivor uses all planes; a pruned key's bound at planes_used is below Th and
        # at every earlier plane it is not.
        assert (planes[mask] == P).all()


# ---------------------------------------------------------------- property tests (hypothesis)
@st.composite
def _case(draw: st.DrawFn) -> tuple[int, list[int], list[list[int]], int]:
    p = draw(st.integers(2, 16))
    d = draw(st.integers(1, 8))
    nk = draw(st.integers(1, 6))
    lo, hi = -(1 << (p - 1)), (1 << (p - 1)) - 1
    elem = st.integers(lo, hi)
    q = draw(st.lists(elem, min_size=d, max_size=d))
    k = draw(st.lists(st.lists(elem, min_size=d, max_size=d), min_size=nk, max_size=nk))
    sb = 2 * p + (d - 1).bit_length()
    th = draw(st.one_of(st.integers(-(1 << sb), (1 << sb) - 1),
                        st.sampled_from([-(1 << sb), (1 << sb) - 1, 0]),
                        st.integers(-(1 << 62), 1 << 62)))
    return p, q, k, th


@settings(max_examples=300, deadline=None)
@given(_case())
def test_prune_rule_property(case: tuple[int, list[int], list[list[int]], int]) -> None:
    p, q, k, th = case
    d = len(q)
    cfg = LeopardConfig(head_dim=d, qk_bits=p, v_bits=p, max_keys=64, lanes=1)
    th_reg = int(threshold_register(th, cfg))
    res = bitserial_prune(np.array([[q]]), np.array([k]), np.array([th_reg]), p)
    for j, kj in enumerate(k):
        score, first = _first_plane_reference(q, kj, th_reg, p)
        assert res["score"][0, 0, j] == score, f"key {j}: score"
        survives = score >= th
        assert res["mask"][0, 0, j] == survives, f"key {j}: S={score} Th={th}"
        assert res["planes_used"][0, 0, j] == (p if survives else first), f"key {j}: planes"
        # two planes per cycle: same prune set, the deciding plane rounded up to its slot
        two = bitserial_prune(np.array([[q]]), np.array([k]), np.array([th_reg]), p,
                              planes_per_cycle=2)
        assert two["mask"][0, 0, j] == survives, f"key {j}: planes_per_cycle=2 prune set"
        want = p if survives else min(2 * -(-first // 2), p)
        assert two["planes_used"][0, 0, j] == want, f"key {j}: planes_per_cycle=2 planes"


def test_threshold_register_saturation_keeps_prune_set(rng: np.random.Generator) -> None:
    cfg = preset("tiny")
    sb = cfg.score_bits
    assert threshold_register(np.int64(-(1 << 62)), cfg) == -(1 << sb)
    assert threshold_register(np.int64(1 << 62), cfg) == (1 << sb) - 1
    t = random_trace(rng, heads=1, n_queries=4, n_keys=16, head_dim=4, qk_bits=4)
    s = t.q[0] @ t.k[0].T
    for th in (-(1 << 62), 1 << 62):
        reg = threshold_register(np.array([th]), cfg)
        res = bitserial_prune(t.q, t.k, reg, 4)
        assert np.array_equal(res["mask"][0], s >= th)


# ---------------------------------------------------------------------------- extremes
def _run(q: np.ndarray, k: np.ndarray, th: int, p: int, **kw: bool) -> dict[str, np.ndarray]:
    return bitserial_prune(q[None], k[None], np.array([th]), p, **kw)


def test_most_negative_values() -> None:
    p, d = 12, 64
    q = np.full((1, d), -(1 << (p - 1)), np.int64)
    k = np.full((3, d), -(1 << (p - 1)), np.int64)
    k[1] = (1 << (p - 1)) - 1
    k[2] = 0
    res = _run(q, k, 0, p, early_termination=True)
    assert res["score"][0, 0, 0] == d * (1 << (2 * p - 2))       # the largest score there is
    assert res["score"][0, 0, 0] < (1 << (2 * p + 6 - 1))          # fits signed(score_bits)
    assert list(res["mask"][0, 0]) == [True, False, True]
    # k = max positive against q = most negative: the sign plane of k is 0, so UB_1 = 0
    # is not below Th = 0; the second plane makes A_2 = -d 2^(p-1) and UB_2 < 0.
    assert res["planes_used"][0, 0, 1] == 2


def test_zero_query() -> None:
    q = np.zeros((1, 8), np.int64)
    k = np.arange(-32, 32, dtype=np.int64).reshape(8, 8)
    res = _run(q, k, 1, 8)                      # S = 0 < 1 for every key: all pruned ...
    assert not res["mask"].any()
    assert (res["planes_used"] == 1).all()      # ... at the first plane (Q+ = 0: UB_r = 0)
    res = _run(q, k, 0, 8)                      # S = 0 >= 0: every key survives
    assert res["mask"].all() and (res["planes_used"] == 8).all()


def test_thresholds_at_both_ends() -> None:
    cfg = preset("tiny")
    rng = np.random.default_rng(3)
    t = random_trace(rng, heads=1, n_queries=5, n_keys=16, head_dim=4, qk_bits=4)
    lo = threshold_register(np.array([-(1 << 62)]), cfg)
    hi = threshold_register(np.array([1 << 62]), cfg)
    none_pruned = bitserial_prune(t.q, t.k, lo, 4)
    assert none_pruned["mask"].all() and (none_pruned["planes_used"] == 4).all()
    all_pruned = bitserial_prune(t.q, t.k, hi, 4)
    assert not all_pruned["mask"].any()
    # The sign plane bounds every score by far below 2**score_bits - 1: pruned at r = 1.
    assert (all_pruned["planes_used"] == 1).all()


def test_switches() -> None:
    rng = np.random.default_rng(5)
    t = random_trace(rng, heads=2, n_queries=6, n_keys=10, head_dim=4, qk_bits=4)
    full = bitserial_prune(t.q, t.k, t.threshold, 4)
    only = bitserial_prune(t.q, t.k, t.threshold, 4, early_termination=False)
    base = bitserial_prune(t.q, t.k, t.threshold, 4, early_termination=False, pruning=False)
    assert np.array_equal(full["mask"], only["mask"])
    assert (only["planes_used"] == 4).all() and (base["planes_used"] == 4).all()
    assert base["mask"].all()
    assert (full["planes_used"] <= 4).all() and full["planes_used"].sum() < 4 * full["mask"].size


@pytest.mark.parametrize("kind", KINDS)
def test_causal_hidden_keys(kind: str) -> None:
    rng = np.random.default_rng(11)
    t = random_trace(rng, heads=2, n_queries=5, n_keys=8, head_dim=4, qk_bits=4,
                     causal=True, kind=kind)
    vis = t.visible()
    assert vis[0].sum() == 4 and vis[-1].all()      # query i sees keys 0 .. i + Nk - Nq
    res = bitserial_prune(t.q, t.k, t.threshold, 4, visible=vis)
    assert (res["planes_used"][:, ~vis] == 0).all()
    assert not res["mask"][:, ~vis].any()
    assert (res["planes_used"][:, vis] >= 1).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p,d", [(12, 64), (12, 32), (8, 16), (16, 8)])
def test_random_against_scalar_reference(kind: str, p: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed + p * 100 + d)
    t = random_trace(rng, heads=2, n_queries=3, n_keys=12, head_dim=d, qk_bits=p,
                     v_bits=8, kind=kind)
    res = bitserial_prune(t.q, t.k, t.threshold, p)
    for h, i, j in itertools.product(range(2), range(3), range(12)):
        score, first = _first_plane_reference(list(t.q[h, i]), list(t.k[h, j]),
                                              int(t.threshold[h]), p)
        where = f"seed={seed} kind={kind} head={h} query={i} key={j}"
        assert res["score"][h, i, j] == score, where
        surv = score >= t.threshold[h]
        assert res["mask"][h, i, j] == surv, where
        assert res["planes_used"][h, i, j] == (p if surv else first), where


# ------------------------------------------------------------- two planes per cycle
@pytest.mark.parametrize("p", [4, 5])
def test_two_planes_per_cycle_exhaustive(p: int) -> None:
    """planes_per_cycle=2 (bound tested after planes 2, 4, ... and p): for every k of d=2
    (p=4 and the odd p=5, whose last slot holds one plane), a spread of q and thresholds
    (every q and threshold of p=4 is too slow for the default suite), the
    prune set and the scores are those of one plane per cycle, and planes_used is the
    end of the slot holding the one-plane-per-cycle deciding plane r: min(2 ceil(r/2), p)."""
    qa = _all_vectors(p, 2)[None, ::3] if p == 4 else _all_vectors(p, 2)[None, ::29]
    ka = _all_vectors(p, 2)[None]
    exact = qa[0] @ ka[0].T
    ub = bitserial_prune(qa, ka, np.array([0]), p, return_bounds=True)["ub"][:, 0]
    for th in range(int(exact.min()) - 1, int(exact.max()) + 2, 3 if p == 4 else 23):
        one = bitserial_prune(qa, ka, np.array([th]), p)
        two = bitserial_prune(qa, ka, np.array([th]), p, planes_per_cycle=2)
        assert np.array_equal(two["mask"], one["mask"]), f"Th={th}: prune set changed"
        assert np.array_equal(two["score"], one["score"])
        r = one["planes_used"]
        assert np.array_equal(two["planes_used"], np.minimum(2 * -(-r // 2), p)), f"Th={th}"
        pu = two["planes_used"][0]
        # the bound at the reported plane is below Th for pruned keys, and at every
        # earlier tested plane (2, 4, ...) it is not
        pruned = ~two["mask"][0]
        at = np.take_along_axis(ub, (pu - 1)[None], 0)[0]
        assert (at[pruned] < th).all(), f"Th={th}: bound at planes_used not below Th"
        for tested in range(2, p, 2):
            before = pu > tested
            assert (ub[tested - 1][before] >= th).all(), f"Th={th}: missed plane {tested}"


def test_two_planes_per_cycle_real_trace_and_errors(rng: np.random.Generator) -> None:
    from sim.golden import GoldenError, run_golden
    t = random_trace(rng, heads=2, n_queries=6, n_keys=16, head_dim=8, qk_bits=7,
                     v_bits=6, kind="realistic", prune_quantile=0.7)
    cfg = LeopardConfig(head_dim=8, qk_bits=7, v_bits=6, lanes=4, max_keys=16,
                        exp_frac_bits=4, exp_bits=8, scale_bits=8, scale_shift_bits=5,
                        recip_bits=10)
    g1 = run_golden(t, cfg)
    g2 = run_golden(t, cfg.replace(planes_per_cycle=2))
    assert np.array_equal(g1.mask, g2.mask) and np.array_equal(g1.out, g2.out)
    assert (g2.planes_used >= g1.planes_used).all()
    assert (g2.planes_used[g2.planes_used > 0] % 2 == 0).sum() + (g2.planes_used == 7).sum() \
        == (g2.planes_used > 0).sum()
    from sim.perf import k_plane_reads
    assert g2.summary()["total"]["k_plane_reads"] == \
        int(k_plane_reads(g2.planes_used, g2.cfg).sum())
    with pytest.raises(GoldenError, match="planes_per_cycle"):
        bitserial_prune(t.q, t.k, t.threshold, 7, planes_per_cycle=3)
