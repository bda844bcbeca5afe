"""PlaneThresholds and ThresholdUnit: ``A_r < T_r`` exactly when ``UB_r < Th``.

The equivalence is proven exhaustively at small widths (every threshold register value,
every Q+, every partial sum, every plane), by property tests at full width (paper), with
thresholds at and beyond the register's range, and against the golden model's bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from leopard_rtl.config import LeopardConfig, preset
from leopard_rtl.hw.threshold import PlaneThresholds, ThresholdUnit
from sim.golden import bitserial_prune, plane_partial_sums, threshold_register


def _plane_thresholds(cfg: LeopardConfig, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """T_1..T_p from the RTL for each (Th, Q+)."""
    dut = PlaneThresholds(cfg)
    out: list[list[int]] = []

    async def bench(ctx):
        for th, qp in pairs:
            ctx.set(dut.threshold, th)
            ctx.set(dut.qpos, qp)
            out.append([int(x) for x in ctx.get(dut.t)])

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def _ub(a: np.ndarray, qp: int, m: int) -> np.ndarray:
    """The golden bound UB_r = 2^m A_r + Q+ (2^m - 1) (python ints: no overflow)."""
    return np.array([(int(x) << m) + qp * ((1 << m) - 1) for x in a], dtype=object)


def _check(cfg: LeopardConfig, th: int, qp: int, t: list[int], a: np.ndarray, where: str
           ) -> None:
    p = cfg.qk_bits
    assert t[p - 1] == th, f"{where}: T_p {t[p - 1]} != Th {th}"
    for r in range(1, p + 1):
        ub = _ub(a, qp, p - r)
        bad = np.flatnonzero((ub < th) != (a < t[r - 1]))
        assert bad.size == 0, (f"{where} r={r}: A={a[bad[0]]} UB={ub[bad[0]]} Th={th} "
                               f"T_r={t[r - 1]}")


@pytest.mark.parametrize("p,d", [(2, 1), (2, 3), (3, 2)])
def test_plane_thresholds_exhaustive(p: int, d: int) -> None:
    """Every register value of Th, every representable Q+ >= 0, every A in the score
    range, every plane."""
    cfg = preset("tiny").replace(qk_bits=p, head_dim=d, name=f"p{p}d{d}")
    tb, sb = cfg.threshold_bits, cfg.score_bits
    pairs = [(th, qp) for th in range(-(1 << (tb - 1)), 1 << (tb - 1))
             for qp in range(1 << (cfg.qsum_bits - 1))]
    a = np.arange(-(1 << (sb - 1)), 1 << (sb - 1))
    for (th, qp), t in zip(pairs, _plane_thresholds(cfg, pairs), strict=True):
        _check(cfg, th, qp, t, a, f"p={p} d={d} Th={th} Q+={qp}")


@settings(max_examples=8, deadline=None)
@given(st.data())
def test_plane_thresholds_full_width(data) -> None:
    """paper widths: random and extreme Th (the register's ends, saturated thresholds far
    beyond it), Q+ and partial sums."""
    cfg = preset("paper")
    tb, sb, qb = cfg.threshold_bits, cfg.score_bits, cfg.qsum_bits
    lo, hi = -(1 << (tb - 1)), (1 << (tb - 1)) - 1
    extreme = [lo, hi, int(threshold_register(-(1 << 62), cfg)),
               int(threshold_register(1 << 62, cfg)), 0, -1, 1]
    th_s = st.one_of(st.sampled_from(extreme), st.integers(lo, hi))
    qp_s = st.one_of(st.sampled_from([0, (1 << (qb - 1)) - 1]),
                     st.integers(0, (1 << (qb - 1)) - 1))
    pairs = data.draw(st.lists(st.tuples(th_s, qp_s), min_size=20, max_size=40))
    a_lo, a_hi = -(1 << (sb - 1)), (1 << (sb - 1)) - 1
    for (th, qp), t in zip(pairs, _plane_thresholds(cfg, pairs), strict=True):
        a = np.array(data.draw(st.lists(st.integers(a_lo, a_hi), min_size=50, max_size=50))
                     + [a_lo, a_hi, 0] + [t_r + e for t_r in t for e in (-1, 0)
                                          if a_lo <= t_r + e <= a_hi], dtype=object)
        _check(cfg, th, qp, t, a, f"Th={th} Q+={qp}")


@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_plane_thresholds_match_golden_bounds(rng, seed, name):
    """On real partial sums: ``A_r < T_r`` is the golden model's ``UB_r < Th``."""
    cfg = preset(name)
    p, d = cfg.qk_bits, cfg.head_dim
    lo, hi = -(1 << (p - 1)), 1 << (p - 1)
    q = rng.integers(lo, hi, (1, 6, d))
    q[0, 0] = lo                       # most negative query
    q[0, 1] = hi - 1                   # largest Q+
    q[0, 2] = 0                        # zero query
    k = rng.integers(lo, hi, (1, 5, d))
    k[0, 0] = lo
    k[0, 1] = hi - 1
    ths = [int(x) for x in threshold_register(
        np.array([-(1 << 62), (1 << 62), 0, 17, -5]), cfg)]
    g = bitserial_prune(q, k, np.array([0]), p, return_bounds=True)
    pairs = [(th, int(g["qpos"][0, i])) for i in range(q.shape[1]) for th in ths]
    tabs = dict(zip(pairs, _plane_thresholds(cfg, pairs), strict=True))
    for r in range(1, p + 1):
        a_r = plane_partial_sums(q, k, p, r)[0]
        ub = g["ub"][r - 1, 0]
        for i in range(q.shape[1]):
            for th in ths:
                t_r = tabs[(th, int(g["qpos"][0, i]))][r - 1]
                assert np.array_equal(ub[i] < th, a_r[i] < t_r), \
                    f"seed={seed} r={r} query={i} Th={th}"


@pytest.mark.parametrize("et_cfg,pr_cfg", [(True, True), (False, True), (False, False)])
def test_unit_registers(et_cfg, pr_cfg):
    cfg = preset("tiny").replace(early_termination=et_cfg, pruning=pr_cfg)
    dut = ThresholdUnit(cfg)

    async def bench(ctx):
        ctx.set(dut.threshold, -123)
        ctx.set(dut.early_termination, 1)
        ctx.set(dut.pruning, 1)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.threshold, 77)
        ctx.set(dut.pruning, 0)
        await ctx.tick()
        assert ctx.get(dut.th) == -123           # held until the next load
        assert ctx.get(dut.pr) == int(pr_cfg)
        assert ctx.get(dut.et) == int(et_cfg and pr_cfg)
        ctx.set(dut.load, 1)
        ctx.set(dut.early_termination, 1)
        await ctx.tick()
        assert ctx.get(dut.th) == 77
        assert ctx.get(dut.pr) == 0
        assert ctx.get(dut.et) == 0               # no early termination without pruning

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
