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
            rel = 1                               # cycles since the start cycle
            for _ in range(dut.prep - 1):
                assert not ctx.get(dut.q_valid_next), f"sum={s}: digit during the prep"
                assert ctx.get(dut.busy), f"sum={s}: busy must be high from start"
                await ctx.tick()
                rel += 1
            digits: list[int] = []
            nxt: list[int] = []
            while True:
                if ctx.get(dut.q_valid_next):
                    nxt.append(ctx.get(dut.q_digit_next))
                qv, qd, ql = ctx.get(dut.q_valid), ctx.get(dut.q_digit), ctx.get(dut.q_last)
                assert qv or not digits, f"sum={s}: q_valid must be high in every digit cycle"
                if qv:
                    digits.append(qd)
                if ql:
                    break
                await ctx.tick()
                rel += 1
            assert rel == dut.latency == dut.prep + dut.digits, (rel, dut.latency)
            assert len(digits) == dut.digits
            await ctx.tick()
            assert nxt == digits, f"sum={s}: q_digit_next {nxt} != q_digit {digits}"
            assert ctx.get(dut.l) == lval
            assert not ctx.get(dut.busy)
            out.append((ctx.get(dut.recip), ctx.get(dut.l), digits))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("preset_name", ["tiny", "paper"])
@pytest.mark.parametrize("recip_bits", [None, 9, 4, 30])
def test_reciprocal(preset_name: str, recip_bits: int | None, seed: int) -> None:
    """Every digit and the result, for R+1 odd (preset R=16 and 10, R=4, 30) and even (R=9)."""
    cfg = preset(preset_name)
    if recip_bits is not None:
        cfg = cfg.replace(recip_bits=min(recip_bits, 62 - cfg.acc_bits - 1))
    rng = np.random.default_rng(seed)
    sb, r = cfg.sum_bits, cfg.recip_bits
    top = (1 << sb) - 1
    sums = [1, 2, 3, 1 << cfg.exp_bits, (1 << cfg.exp_bits) + 1, top, top - 1, 1 << (sb - 1),
            (1 << (sb - 1)) + 1, (1 << (sb - 1)) - 1]
    sums += [int(x) for x in rng.integers(1, top + 1, size=20)]
    sums += [int(1 << rng.integers(0, sb)) for _ in range(4)]
    for s, (recip, lval, digits) in zip(sums, run_recip(sb, r, sums), strict=True):
        L = s.bit_length() - 1
        want = (1 << (L + r)) // s
        assert lval == L, f"seed={seed} r={r} sum={s}: L={lval} != {L}"
        assert recip == want, f"seed={seed} r={r} sum={s}: recip={recip} != {want}"
        serial = 0
        for k in digits:
            serial = 4 * serial + k
        assert serial == want, f"seed={seed} r={r} sum={s}: serial digits {digits}"
        assert (1 << (r - 1)) <= recip <= (1 << r)


def run_divider(w: int, n: int, cases: list[tuple[int, int]]) -> list[int]:
    dut = RestoringDivider(w, n)
    got: list[int] = []

    async def bench(ctx: Any) -> None:
        for dvd, dsr in cases:
            ctx.set(dut.dividend, dvd)
            ctx.set(dut.divisor, dsr)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().repeat(dut.latency)
            assert not ctx.get(dut.busy)
            got.append(ctx.get(dut.quotient))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def test_divider_generic(seed: int) -> None:
    """floor(dividend * 2**(2n-1) / divisor) for dividend < 2 * divisor."""
    rng = np.random.default_rng(seed)
    w, n = 9, 4
    cases = []
    for _ in range(30):
        dsr = int(rng.integers(1, 1 << w))
        dvd = int(rng.integers(0, min(2 * dsr, 1 << w)))
        cases.append((dvd, dsr))
    cases += [((1 << w) - 1, (1 << w) - 1), ((1 << w) - 1, 1 << (w - 1)), (1, 1), (0, 1)]
    for (dvd, dsr), g in zip(cases, run_divider(w, n, cases), strict=True):
        assert g == (dvd << (2 * n - 1)) // dsr, f"seed={seed} {dvd}/{dsr}"


def test_divider_exhaustive() -> None:
    """Every dividend < 2 * divisor at width 4 (the radix-4 digit selection, all cases)."""
    w, n = 4, 3
    cases = [(dvd, dsr) for dsr in range(1, 1 << w) for dvd in range(min(2 * dsr, 1 << w))]
    for (dvd, dsr), g in zip(cases, run_divider(w, n, cases), strict=True):
        assert g == (dvd << (2 * n - 1)) // dsr, f"{dvd}/{dsr}"
