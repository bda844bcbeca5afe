"""RestoringDivider and Reciprocal (leopard_rtl.hw.reciprocal) against exact integer division."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from amaranth.sim import Simulator

from leopard_rtl.config import preset
from leopard_rtl.hw.reciprocal import Reciprocal, RestoringDivider


def run_recip(sum_bits: int, r: int, sums: list[int]) -> list[tuple[int, int, list[int]]]:
    dut = Reciprocal(sum_bits, r)
    out: list[tuple[int, int, list[int]]] = []

    async def bench(ctx: Any) -> None:
        for s in sums:
            ctx.set(dut.sum, s)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            lval = ctx.get(dut.l)                 # registered at start
            for _ in range(dut.prep):
                assert not ctx.get(dut.q_valid), f"sum={s}: q_valid during the prep cycles"
                assert ctx.get(dut.busy), f"sum={s}: busy must be high from start"
                await ctx.tick()
            bits: list[int] = []
            cycles = dut.prep
            while True:
                qv, qb, ql = ctx.get(dut.q_valid), ctx.get(dut.q_bit), ctx.get(dut.q_last)
                assert qv, f"sum={s}: q_valid must be high in every cycle after the prep"
                bits.append(qb)
                cycles += 1
                await ctx.tick()
                if ql:
                    break
            assert cycles == dut.latency == dut.prep + r + 1
            assert ctx.get(dut.l) == lval
            assert not ctx.get(dut.busy)
            out.append((ctx.get(dut.recip), ctx.get(dut.l), bits))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("preset_name", ["tiny", "paper"])
def test_reciprocal(preset_name: str, seed: int) -> None:
    cfg = preset(preset_name)
    rng = np.random.default_rng(seed)
    sb, r = cfg.sum_bits, cfg.recip_bits
    top = (1 << sb) - 1
    sums = [1, 2, 3, 1 << cfg.exp_bits, (1 << cfg.exp_bits) + 1, top, top - 1, 1 << (sb - 1),
            (1 << (sb - 1)) + 1, (1 << (sb - 1)) - 1]
    sums += [int(x) for x in rng.integers(1, top + 1, size=20)]
    sums += [int(1 << rng.integers(0, sb)) for _ in range(4)]
    for s, (recip, lval, bits) in zip(sums, run_recip(sb, r, sums), strict=True):
        L = s.bit_length() - 1
        want = (1 << (L + r)) // s
        assert lval == L, f"seed={seed} sum={s}: L={lval} != {L}"
        assert recip == want, f"seed={seed} sum={s}: recip={recip} != {want}"
        assert int("".join(map(str, bits)), 2) == want, f"sum={s}: serial bits {bits}"
        assert (1 << (r - 1)) <= recip <= (1 << r)


def test_divider_generic(seed: int) -> None:
    """floor(dividend * 2**(Q-1) / divisor) for dividend < 2 * divisor."""
    rng = np.random.default_rng(seed)
    w, q = 9, 7
    dut = RestoringDivider(w, q)
    cases = []
    for _ in range(30):
        dsr = int(rng.integers(1, 1 << w))
        dvd = int(rng.integers(0, min(2 * dsr, 1 << w)))
        cases.append((dvd, dsr))
    got: list[int] = []

    async def bench(ctx: Any) -> None:
        for dvd, dsr in cases:
            ctx.set(dut.dividend, dvd)
            ctx.set(dut.divisor, dsr)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().repeat(q)
            got.append(ctx.get(dut.quotient))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (dvd, dsr), g in zip(cases, got, strict=True):
        assert g == (dvd << (q - 1)) // dsr, f"seed={seed} {dvd}/{dsr}"
