"""ValueAccumulator (leopard_rtl.hw.mac) and RowNormalizer (leopard_rtl.hw.normalizer)
against the golden model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from leopard_rtl.config import LeopardConfig, preset
from leopard_rtl.hw.mac import ValueAccumulator
from leopard_rtl.hw.normalizer import RowNormalizer
from leopard_rtl.hw.reciprocal import Reciprocal
from leopard_rtl.hw.vbuffer import VBuffer
from sim.golden import softmax_value


class _AccHarness(wiring.Component):
    """ValueAccumulator reading a real VBuffer (so the one-cycle read is the RTL's)."""

    def __init__(self, cfg: LeopardConfig) -> None:
        self.acc_unit = ValueAccumulator(cfg)
        self.vbuf = VBuffer(cfg)
        super().__init__({})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.acc = self.acc_unit
        m.submodules.vbuf = self.vbuf
        m.d.comb += [self.vbuf.addr.eq(self.acc_unit.v_addr),
                     self.acc_unit.v_data.eq(self.vbuf.data), self.vbuf.enable.eq(1)]
        return m


@pytest.mark.parametrize("p_idle,v_bits", [(0.0, None), (0.5, None), (0.0, 4), (0.0, 8)])
def test_value_accumulator(p_idle: float, v_bits: int | None, seed: int) -> None:
    """Includes v_bits 4 and 8, whose offset correction once lost its top bit."""
    cfg = preset("tiny") if v_bits is None else preset("tiny").replace(v_bits=v_bits)
    rng = np.random.default_rng(seed)
    nk, d = cfg.max_keys, cfg.head_dim
    vlo, vhi = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1))
    v = rng.integers(vlo, vhi, size=(nk, d))
    v[0] = vlo                                          # most negative row
    queries = []
    for _ in range(4):
        n = int(rng.integers(1, nk + 1))
        keys = rng.choice(nk, size=n, replace=False)
        es = rng.integers(0, (1 << cfg.exp_bits) + 1, size=n)
        es[0] = 1 << cfg.exp_bits
        queries.append((keys, es))
    h = _AccHarness(cfg)
    dut = h.acc_unit
    results = []

    async def bench(ctx: Any) -> None:
        for j in range(nk):
            ctx.set(h.vbuf.v_load.payload, {"data": [int(x) for x in v[j]], "first": j == 0})
            ctx.set(h.vbuf.v_load.valid, 1)
            await ctx.tick()
        ctx.set(h.vbuf.v_load.valid, 0)
        for keys, es in queries:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for k, e in zip(keys, es, strict=True):
                while rng.random() < p_idle:
                    ctx.set(dut.e_in.valid, 0)
                    await ctx.tick()
                ctx.set(dut.e_in.valid, 1)
                ctx.set(dut.e_in.payload, {"key": int(k), "e": int(e)})
                await ctx.tick()
            ctx.set(dut.e_in.valid, 0)
            await ctx.tick().repeat(dut.latency - 1)
            results.append(([ctx.get(dut.acc[i]) for i in range(d)], ctx.get(dut.sum)))

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for qi, ((keys, es), (acc, total)) in enumerate(zip(queries, results, strict=True)):
        want = (es[:, None] * v[keys]).sum(axis=0)
        assert total == es.sum(), f"seed={seed} query={qi}: sum {total} != {es.sum()}"
        assert acc == list(want), f"seed={seed} query={qi}: acc {acc} != {list(want)}"


@pytest.mark.parametrize("preset_name, recip_bits", [("tiny", None), ("minilm", None),
                                                    ("tiny", 9)])
def test_row_normalizer(preset_name: str, recip_bits: int | None, seed: int) -> None:
    """Reciprocal digits folded into d shift-and-add products == golden rounding (R+1 odd
    in the presets, even with R=9)."""
    cfg = preset(preset_name)
    if recip_bits is not None:
        cfg = cfg.replace(recip_bits=recip_bits)
    rng = np.random.default_rng(seed)
    d = cfg.head_dim

    class Harness(wiring.Component):
        def __init__(self) -> None:
            self.recip = Reciprocal(cfg.sum_bits, cfg.recip_bits)
            self.norm = RowNormalizer(cfg)
            super().__init__({})

        def elaborate(self, platform: object) -> Module:
            m = Module()
            m.submodules.recip, m.submodules.norm = self.recip, self.norm
            m.d.comb += [self.norm.q_digit.eq(self.recip.q_digit_next),
                         self.norm.step.eq(self.recip.q_valid_next)]
            return m

    h = Harness()
    cases = []
    vlo, vhi = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1))
    for trial in range(6):
        n = int(rng.integers(1, 12))
        score = rng.integers(-200, 200, size=(1, 1, n))
        if trial == 0:
            score[:] = 7                                   # equal scores
        v = rng.integers(vlo, vhi, size=(1, n, d))
        if trial == 1:
            v[:] = vlo                                     # most negative V
        if trial == 2:
            v[:] = vhi - 1
        be = softmax_value(score, np.ones_like(score, bool), v,
                           np.array([int(rng.integers(1, 1 << cfg.scale_bits))]),
                           np.array([int(rng.integers(1, 8))]), cfg)
        cases.append(be)
    got = []

    async def bench(ctx: Any) -> None:
        for be in cases:
            for i in range(d):
                ctx.set(h.norm.acc[i], int(be["acc"][0, 0, i]))
            ctx.set(h.recip.sum, int(be["sum"][0, 0]))
            ctx.set(h.recip.start, 1)
            await ctx.tick()
            ctx.set(h.recip.start, 0)
            ctx.set(h.norm.init, 1)                # L is registered at start
            ctx.set(h.norm.l, ctx.get(h.recip.l))
            await ctx.tick()
            ctx.set(h.norm.init, 0)
            await ctx.tick().repeat(h.recip.latency - 1 + h.norm.latency)
            got.append(([ctx.get(h.norm.out[i]) for i in range(d)], ctx.get(h.recip.recip)))

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for t, (be, (out, recip)) in enumerate(zip(cases, got, strict=True)):
        assert recip == be["recip"][0, 0], f"seed={seed} trial={t}: recip"
        assert out == list(be["out"][0, 0]), f"seed={seed} trial={t}: out {out} != golden"
