"""The speculative margin (``LeopardConfig.margin``): the rule, its fixed point, the
configuration's checks and the loss report of the golden model."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from leopard_rtl import preset
from leopard_rtl.config import ConfigError, LeopardConfig
from sim import perf
from sim.golden import bitserial_prune, run_golden
from sim.margin import effective_qpos, margin_loss
from sim.trace import Trace
from sim.vectors import random_trace

P, D, F = 4, 2, 8


def _reference(q: list[int], k: list[int], th: int, reg: int) -> tuple[bool, int]:
    """Plain-Python reference per key: (survives, planes used). The bounds are the max and
    min of S over every completion of k's unread low bits (brute force), the rule
    ``UB - mu (UB - LB) < Th`` with ``mu (UB - LB)`` rounded down to a multiple of
    ``2^m - 1`` as the fixed point ``floor(mu ||q||_1)`` does."""
    mu = Fraction(reg, 1 << F)
    for r in range(1, P + 1):
        m = P - r
        top = [(x >> m) << m for x in k]
        s_all = [sum(a * (b + low) for a, b, low in zip(q, top, lows, strict=True))
                 for lows in itertools.product(range(1 << m), repeat=len(k))]
        ub, lb = max(s_all), min(s_all)
        slack = Fraction(ub - lb, (1 << m) - 1) if m else Fraction(0)
        cut = int(mu * slack) * ((1 << m) - 1)       # floor(mu ||q||_1) (2^m - 1)
        if ub - cut < th:
            return False, r
    return True, P


@pytest.mark.parametrize("reg", [0, 1, 38, 128, 255])
def test_margin_rule_matches_brute_force(reg: int, seed: int) -> None:
    """For random q, k, Th (p=4, d=2) and margin registers up to 255/256: survivors and
    planes equal the brute-force bounds with the fixed-point margin."""
    rng = np.random.default_rng(seed + reg)
    q = rng.integers(-(1 << (P - 1)), 1 << (P - 1), size=(1, 40, D))
    k = rng.integers(-(1 << (P - 1)), 1 << (P - 1), size=(1, 30, D))
    for th in (-20, -3, 0, 4, 15):
        qeff = effective_qpos(q, np.array([reg]), F)
        res = bitserial_prune(q, k, np.array([th]), P, margin_qpos=qeff)
        for i, j in itertools.product(range(40), range(30)):
            want = _reference(q[0, i].tolist(), k[0, j].tolist(), th, reg)
            got = (bool(res["mask"][0, i, j]), int(res["planes_used"][0, i, j]))
            assert got == want, f"seed={seed} reg={reg} th={th} q={q[0, i]} k={k[0, j]}"


def _trace(seed: int, heads: int = 4) -> Trace:
    return random_trace(np.random.default_rng(seed), heads=heads, n_queries=12, n_keys=16,
                        head_dim=8, qk_bits=6, v_bits=6, kind="realistic",
                        prune_quantile=0.5)


def test_margin_monotone_and_lossy_only(seed: int) -> None:
    """A larger margin never keeps a key a smaller one pruned, never reads more planes,
    never adds a survivor to exact pruning; register 0 is exact pruning; the predicted
    cycles are the performance model's on the margin's planes and mask."""
    t = _trace(seed)
    cfg = preset("tiny").replace(head_dim=8, qk_bits=6, max_keys=16, margin=0.5)
    exact = run_golden(t, cfg.replace(margin=0))
    zero = run_golden(t, cfg, margin=np.zeros(4, np.int64))
    assert np.array_equal(zero.mask, exact.mask) and np.array_equal(zero.out, exact.out)
    assert np.array_equal(zero.planes_used, exact.planes_used) and not zero.margin_loss
    prev = exact
    for reg in (16, 64, 128, 192, 255):
        g = run_golden(t, cfg, margin=np.full(4, reg))
        assert not (g.mask & ~prev.mask).any(), f"seed={seed} reg={reg}: a survivor appeared"
        assert (g.planes_used <= prev.planes_used).all(), f"seed={seed} reg={reg}"
        assert np.array_equal(g.cycles, perf.core_cycles(g.planes_used, g.mask, cfg))
        lost = exact.mask & ~g.mask
        assert sum(r["survivors_lost"] for r in g.margin_loss) == lost.sum()
        assert (g.planes_used[lost] < cfg.qk_bits).all()      # lost only by early tests
        prev = g
    assert prev.mask.sum() < exact.mask.sum(), f"seed={seed}: 255/256 lost nothing"


def test_margin_needs_early_termination(seed: int) -> None:
    """Without early termination (pruning-only, baseline) the margin changes nothing."""
    t = _trace(seed, heads=2)
    cfg = preset("tiny").replace(head_dim=8, qk_bits=6, max_keys=16, margin=0.9)
    for ref in (cfg.pruning_only(), cfg.baseline()):
        a = run_golden(t, ref)
        b = run_golden(t, ref.replace(margin=0))
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.cycles, b.cycles)
        assert not a.margin_loss


def test_margin_loss_report() -> None:
    """Mass lost: the lost keys' softmax weight over the exact survivors; output error in
    V LSBs; the summary carries both per head and in total."""
    score = np.array([[[0, 0, -10 ** 6]]])                  # two equal survivors, one not
    exact = np.array([[[True, True, False]]])
    kept = np.array([[[True, False, False]]])
    out = np.array([[[5, 1]]])
    rows = margin_loss(score, kept, exact, out, np.array([[[2, 1]]]), np.ones(1),
                       np.ones(1), 4)
    assert rows == [{"survivors_lost": 1, "queries_hit": 1, "mass_lost_mean": 0.5,
                     "mass_lost_max": 0.5, "out_error_mean": 1.5, "out_error_max": 3}]
    t = _trace(3)
    cfg = preset("tiny").replace(head_dim=8, qk_bits=6, max_keys=16, margin=0.75)
    s = run_golden(t, cfg).summary()
    assert s["heads"][0]["margin"] == 0.75
    for key in ("survivors_lost", "mass_lost_mean", "mass_lost_max", "out_error_mean",
                "out_error_max"):
        assert key in s["total"] and all(key in h for h in s["heads"])
    assert "survivors_lost" not in run_golden(t, cfg.replace(margin=0)).summary()["total"]


@pytest.mark.parametrize("bad", ["margin=1", "margin=-0.01", "margin=0.999", "margin=x",
                                 "margin=nan"])
def test_margin_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="margin"):
        preset("tiny").with_overrides([bad])


def test_margin_register_rounding_and_errors() -> None:
    assert LeopardConfig(margin=0.15).margin_register == 38      # round(38.4)
    assert LeopardConfig(margin=0.99609375).margin_register == 255
    with pytest.raises(ConfigError, match="margin"):
        LeopardConfig(margin=True)
    t = _trace(1, heads=2)
    cfg = preset("tiny").replace(head_dim=8, qk_bits=6, max_keys=16)
    with pytest.raises(ConfigError, match="margin"):
        run_golden(t, cfg, margin=np.array([0, 10]))            # no margin register
    with pytest.raises(ConfigError, match="margin"):
        run_golden(t, cfg.replace(margin=0.5), margin=np.array([0, 256]))


def test_margin_evaluation_report(seed: int) -> None:
    """The evaluation's margin rows, table and report section: speedup against exact
    pruning from the same models, losses summed over heads."""
    from leopard_rtl.eval.cycles import trace_cycles
    from leopard_rtl.eval.margin import margin_rows, margin_section, margin_table

    t = _trace(seed)
    cfg = preset("tiny").replace(head_dim=8, qk_bits=6, max_keys=16)
    rows = margin_rows({"random": (t, cfg)}, [0.25, 0.75])
    exact = run_golden(t, cfg)
    for r, m in zip(rows, (0.25, 0.75), strict=True):
        g = run_golden(t, cfg.replace(margin=m))
        assert r["margin"] == m and r["exact_cycles"] == exact.cycles.sum()
        assert r["speedup_vs_exact"] == exact.cycles.sum() / g.cycles.sum()
        assert r["survivors_lost"] == (exact.mask & ~g.mask).sum()
        assert len(r["heads"]) == t.heads
    assert "| random | 0.75 |" in margin_table(rows)
    tc = trace_cycles(t, cfg.replace(margin=0.75))
    assert tc["margin"]["survivors_lost"] == rows[1]["survivors_lost"]
    assert "margin" not in trace_cycles(t, cfg)
    assert margin_section({"traces": [{"trace": "x", **tc}]})[1].startswith("## Speculative")
    assert margin_section({"traces": [{"trace": "x", **trace_cycles(t, cfg)}]}) == []
