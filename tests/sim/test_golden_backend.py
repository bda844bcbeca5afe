"""Golden model, back end: fixed-point softmax/value arithmetic and its error bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leopard_rtl import LeopardConfig, preset
from sim.golden import (
    attention_float,
    bitserial_prune,
    error_bound,
    exp_lut,
    scale_registers,
    softmax_value,
    threshold_register,
)
from sim.quant import QuantError, softmax_scale
from sim.vectors import KINDS, random_trace


def _scalar_backend(scores: list[int], vrows: list[list[int]], mant: int, shift: int,
                    cfg: LeopardConfig) -> list[int]:
    """Plain-Python ints, written from the README's description, for one query."""
    F, E, R = cfg.exp_frac_bits, cfg.exp_bits, cfg.recip_bits
    if not scores:
        return [0] * len(vrows[0]) if vrows else []
    m = max(scores)
    es = []
    for s in scores:
        t = ((((m - s) * mant) >> (shift - 1)) + 1) >> 1
        lut = math.floor(2.0 ** (E - (t % (1 << F)) / (1 << F)) + 0.5)
        es.append(lut >> min(t >> F, E + 1))
    total = sum(es)
    L = total.bit_length() - 1
    recip = (1 << (L + R)) // total
    out = []
    for col in range(len(vrows[0])):
        acc = sum(e * row[col] for e, row in zip(es, vrows, strict=True))
        y = (acc * recip + (1 << (L + R - 1))) >> (L + R)
        out.append(max(-(1 << (cfg.v_bits - 1)), min((1 << (cfg.v_bits - 1)) - 1, y)))
    return out


def _backend(t, cfg):  # noqa: ANN001, ANN202 - test helper
    vis = t.visible()
    fe = bitserial_prune(t.q, t.k, threshold_register(t.threshold, cfg), cfg.qk_bits,
                         pruning=cfg.pruning, early_termination=cfg.early_termination,
                         visible=vis)
    mant, shift = scale_registers(t.scale_q, t.scale_k, cfg)
    be = softmax_value(fe["score"], fe["mask"], t.v, mant, shift, cfg)
    return fe, be, mant, shift


def test_exp_lut() -> None:
    cfg = preset("paper")
    lut = exp_lut(cfg)
    assert lut.shape == (1 << cfg.exp_frac_bits,)
    assert lut[0] == 1 << cfg.exp_bits
    assert (np.diff(lut) <= 0).all()
    assert lut[-1] > 1 << (cfg.exp_bits - 1)
    f = np.arange(lut.size)
    exact = 2.0 ** (cfg.exp_bits - f / lut.size)
    assert np.abs(lut - exact).max() <= 0.5


@pytest.mark.parametrize("name", ["tiny", "minilm", "paper"])
@pytest.mark.parametrize("kind", KINDS)
def test_against_scalar_reference(name: str, kind: str, seed: int) -> None:
    cfg = preset(name)
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=4, n_keys=min(12, cfg.max_keys),
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind=kind,
                     causal=kind == "realistic")
    fe, be, mant, shift = _backend(t, cfg)
    for h in range(2):
        for i in range(4):
            idx = np.flatnonzero(fe["mask"][h, i])
            want = _scalar_backend([int(fe["score"][h, i, j]) for j in idx],
                                   [list(map(int, t.v[h, j])) for j in idx] or
                                   [[0] * cfg.head_dim], int(mant[h]), int(shift[h]), cfg)
            assert list(be["out"][h, i]) == want, f"seed={seed} head={h} query={i}"
            assert be["all_pruned"][h, i] == (idx.size == 0)


def test_one_survivor_is_exact() -> None:
    cfg = preset("paper")
    rng = np.random.default_rng(0)
    v = rng.integers(-2048, 2048, size=(1, 5, 64))
    score = rng.integers(-(1 << 20), 1 << 20, size=(1, 5, 5))
    mask = np.eye(5, dtype=bool)[None]
    mant, shift = scale_registers(np.array([0.01]), np.array([0.01]), cfg)
    be = softmax_value(score, mask, v, mant, shift, cfg)
    assert np.array_equal(be["out"][0], v[0])


def test_equal_scores_average() -> None:
    cfg = preset("paper")
    v = np.array([[[-2048] * 64, [2047] * 64, [100] * 64, [-7] * 64]])
    score = np.full((1, 1, 4), 12345)
    mask = np.ones((1, 1, 4), bool)
    mant, shift = scale_registers(np.array([0.01]), np.array([0.01]), cfg)
    be = softmax_value(score, mask, v, mant, shift, cfg)
    assert (be["e"] == 1 << cfg.exp_bits).all()
    assert (be["out"] == round((-2048 + 2047 + 100 - 7) / 4)).all()


def test_all_pruned_gives_zero_row_and_flag() -> None:
    cfg = preset("tiny")
    rng = np.random.default_rng(1)
    t = random_trace(rng, heads=2, n_queries=3, n_keys=8, head_dim=4, qk_bits=4)
    t = type(t)(**{**t.__dict__, "threshold": np.array([1 << 40, -(1 << 40)])})
    fe, be, *_ = _backend(t, cfg)
    assert be["all_pruned"][0].all() and not be["all_pruned"][1].any()
    assert (be["out"][0] == 0).all()


def test_largest_gap_underflows_to_zero() -> None:
    """A survivor far below the max gets e = 0 (shift past E), never a wrapped value."""
    cfg = preset("paper")
    sb = cfg.score_bits
    score = np.array([[[(1 << (sb - 1)) - 1, -(1 << (sb - 1)) + 1]]])
    mask = np.ones((1, 1, 2), bool)
    v = np.array([[[2047] * 64, [-2048] * 64]])
    mant, shift = scale_registers(np.array([1.0]), np.array([1.0]), cfg)
    be = softmax_value(score, mask, v, mant, shift, cfg)
    assert list(be["e"][0, 0]) == [1 << cfg.exp_bits, 0]
    assert (be["out"] == 2047).all()


def test_softmax_scale_register() -> None:
    mant, shift = softmax_scale(np.array([0.003, 1e-9]), np.array([0.004, 1e-9]),
                                64, 8, 16, 6)
    c = math.log2(math.e) * np.array([0.003 * 0.004, 1e-18]) / 8 * 256
    assert (mant < 1 << 16).all() and (shift >= 1).all() and (shift <= 63).all()
    # Normalized where the shift range allows: relative error <= 2**-16.
    assert abs(mant[0] / 2.0 ** shift[0] / c[0] - 1) <= 2.0 ** -16
    assert mant[0] >= 1 << 15
    # Too small for the largest shift: shift = 63, mantissa what that gives (here 0).
    assert shift[1] == 63 and mant[1] == round(c[1] * 2.0 ** 63)
    # Too large for shift = 1: the mantissa would saturate, which is an error naming the head.
    with pytest.raises(QuantError, match="softmax scale of head 1: .* would saturate"):
        softmax_scale(np.array([0.003, 1e3]), np.array([0.004, 1e3]), 64, 8, 16, 6)
    with pytest.raises(QuantError, match="scale_q of head 0 is nan; it must be finite"):
        softmax_scale(np.array([np.nan]), np.array([1.0]), 64, 8, 16, 6)


@pytest.mark.parametrize("name", ["minilm", "paper"])
@pytest.mark.parametrize("kind", ["uniform", "realistic", "adversarial"])
@pytest.mark.parametrize("causal", [False, True])
def test_error_within_documented_bound(name: str, kind: str, causal: bool, seed: int) -> None:
    """|out - float pruned attention| <= error_bound for every query (LSBs of V)."""
    cfg = preset(name)
    rng = np.random.default_rng(seed + len(kind) + causal)
    t = random_trace(rng, heads=3, n_queries=32, n_keys=min(64, cfg.max_keys),
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind=kind,
                     causal=causal, prune_quantile=0.5)
    fe, be, mant, shift = _backend(t, cfg)
    ref = attention_float(t.q, t.k, t.v, t.scale_q, t.scale_k, fe["mask"])
    err = np.abs(be["out"] - ref).max(-1)
    bound = error_bound(fe["score"], fe["mask"], t.v, t.scale_q, t.scale_k, mant, shift, be,
                        ref, cfg)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert (err <= bound + 1e-9).all(), (
        f"seed={seed}: head/query {worst}: error {err[worst]:.4f} > bound {bound[worst]:.4f}")
    # The bound is meaningful (not vacuous) at the default widths on realistic data.
    if kind == "realistic":
        assert bound.max() < 16


def test_error_shrinks_with_lut_width(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=4, n_queries=32, n_keys=64, head_dim=64, qk_bits=12,
                     v_bits=12, kind="realistic", prune_quantile=0.3)
    errs = []
    for f in (4, 8, 12):
        cfg = preset("paper").replace(exp_frac_bits=f)
        fe, be, *_ = _backend(t, cfg)
        ref = attention_float(t.q, t.k, t.v, t.scale_q, t.scale_k, fe["mask"])
        errs.append(np.abs(be["out"] - ref).mean())
    assert errs[0] > errs[1] > errs[2] * 0.99, errs
