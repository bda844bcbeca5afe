"""ExpUnit (leopard_rtl.hw.exp_unit) against the golden model's per-survivor exp."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from amaranth.sim import Simulator

from leopard_rtl.config import LeopardConfig, preset
from leopard_rtl.hw.exp_unit import ExpUnit
from sim.golden import softmax_value


def golden_e(scores: np.ndarray, m: int, mant: int, shift: int, cfg: LeopardConfig) -> np.ndarray:
    """e of each score for a query whose max is ``m`` (via sim.golden.softmax_value)."""
    n = scores.size
    # Force the golden max to m by adding m as an extra survivor.
    sc = np.concatenate([scores, [m]]).reshape(1, 1, n + 1)
    mask = np.ones_like(sc, dtype=bool)
    v = np.zeros((1, n + 1, 1), np.int64)
    be = softmax_value(sc, mask, v, np.array([mant]), np.array([shift]), cfg)
    return be["e"][0, 0, :n]


def run_exp(cfg: LeopardConfig, scores: list[int], m: int, mant: int, shift: int,
            rng: np.random.Generator, p_idle: float) -> list[tuple[int, int]]:
    dut = ExpUnit(cfg)
    got: list[tuple[int, int]] = []
    stamps: list[tuple[int, int]] = []

    async def bench(ctx: Any) -> None:
        ctx.set(dut.m, m)
        ctx.set(dut.mant, mant)
        ctx.set(dut.shift, shift)
        cycle = 0
        pending = list(enumerate(scores))
        sent: list[int] = []
        while len(got) < len(scores):
            if pending and rng.random() >= p_idle:
                k, s = pending.pop(0)
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, {"key": k % (1 << cfg.key_index_bits), "score": s})
                sent.append(cycle)
            else:
                ctx.set(dut.i.valid, 0)
            _, _, ov, ok, oe = await ctx.tick().sample(dut.o.valid, dut.o.payload.key,
                                                       dut.o.payload.e)
            if ov:
                got.append((int(ok), int(oe)))
                stamps.append((sent[len(got) - 1], cycle))
            cycle += 1
        for s_in, s_out in stamps:
            # Samples are taken just before each edge: an input presented in cycle c shows
            # on the output during cycle c + latency.
            assert s_out - s_in == dut.latency, f"latency {s_out - s_in} != {dut.latency}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("preset_name", ["tiny", "minilm"])
@pytest.mark.parametrize("p_idle", [0.0, 0.4])
def test_exp_random(preset_name: str, p_idle: float, seed: int) -> None:
    cfg = preset(preset_name)
    rng = np.random.default_rng(seed)
    sb = cfg.score_bits
    for trial in range(3):
        scores = rng.integers(-(1 << (sb - 1)), 1 << (sb - 1), size=24)
        # Narrow gaps for most trials so e is not always 0.
        if trial < 2:
            scores = rng.integers(-(1 << 6), 1 << 6, size=24) * (trial + 1)
        m = int(scores.max())
        mant = int(rng.integers(0, 1 << cfg.scale_bits))
        shift = int(rng.integers(1, 1 << cfg.scale_shift_bits))
        got = run_exp(cfg, [int(s) for s in scores], m, mant, shift, rng, p_idle)
        want = golden_e(scores, m, mant, shift, cfg)
        for j, (k, e) in enumerate(got):
            assert k == j % (1 << cfg.key_index_bits), f"seed={seed} trial={trial}: key order"
            assert e == want[j], (f"seed={seed} trial={trial} index={j} score={scores[j]} "
                                  f"M={m} mant={mant} shift={shift}: e={e} != {want[j]}")


def test_exp_extremes(seed: int) -> None:
    """Largest gap to the max, equal scores, mant 0 / max, shift 1 / max."""
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (cfg.score_bits - 1)), (1 << (cfg.score_bits - 1)) - 1
    smax, mmax = (1 << cfg.scale_shift_bits) - 1, (1 << cfg.scale_bits) - 1
    scores = [hi, lo, hi, hi - 1, lo + 1, 0, -1, 1]
    for mant, shift in [(mmax, 1), (mmax, smax), (0, 1), (1, 1), (mmax, 2), (37, 9)]:
        got = run_exp(cfg, scores, hi, mant, shift, rng, 0.0)
        want = golden_e(np.array(scores), hi, mant, shift, cfg)
        assert [e for _, e in got] == list(want), f"mant={mant} shift={shift}"
    # Max survivor gets exactly 2**E.
    got = run_exp(cfg, [5, 5, 5], 5, mmax, 3, rng, 0.0)
    assert [e for _, e in got] == [1 << cfg.exp_bits] * 3
