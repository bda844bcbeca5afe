"""FrontEnd with per-channel K alignment (``k_align``) against the golden model; align_error."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from sim_helpers import FrontEndCase, check_frontend, golden_case, run_frontend, stream_put

from leopard_rtl.config import preset
from leopard_rtl.hw import layouts
from leopard_rtl.hw.frontend import FrontEnd

TINY = preset("tiny")


def _case(rng: np.random.Generator, cfg, heads: int = 2, nq: int = 5) -> FrontEndCase:
    """Random heads whose K channels hold narrower values (non-trivial shifts), some keys
    at the edges of their channel's range."""
    p, d, nk = cfg.qk_bits, cfg.head_dim, cfg.max_keys
    case = FrontEndCase()
    for _ in range(heads):
        w = rng.integers(1, p + 1, d)                            # bits per channel
        k = rng.integers(-(1 << (w - 1)), 1 << (w - 1), (nk, d))
        k[0] = -(1 << (w - 1))
        k[1] = (1 << (w - 1)) - 1
        q = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (nq, d))
        s = q @ k.T
        th = np.quantile(s, rng.random(nq), axis=1).astype(np.int64).diagonal()
        case.add(k, q, rng.integers(0, nk + 1, nq), th)
    return case


@pytest.mark.parametrize("k_align,ppc,p_in,p_out", [(1, 1, 0.0, 0.0), (2, 1, 0.0, 0.0),
                                                     (2, 1, 0.3, 0.5), (2, 2, 0.0, 0.0)])
def test_aligned_matches_golden(rng, seed, k_align, ppc, p_in, p_out):
    cfg = TINY.replace(k_align=k_align, planes_per_cycle=ppc)
    print(f"LEOPARD_SEED={seed} k_align={k_align} ppc={ppc}")
    case = _case(rng, cfg)
    got = run_frontend(FrontEnd(cfg), case, cfg, rng=rng, p_in=p_in, p_out=p_out)
    check_frontend(got, golden_case(case, cfg), seed=seed, exact_cycles=p_out == 0)


def test_paper_widths_aligned(rng, seed):
    cfg = preset("paper").replace(max_keys=8, head_dim=8, k_align=3)
    print(f"LEOPARD_SEED={seed}")
    case = _case(rng, cfg, heads=1, nq=3)
    got = run_frontend(FrontEnd(cfg), case, cfg, rng=rng)
    check_frontend(got, golden_case(case, cfg), seed=seed, exact_cycles=True)


def test_align_error_is_sticky_until_first():
    """A K row outside its channel's shifted range raises align_error; the next head's
    ``first`` row clears it; host shifts from k_align_shifts never raise it."""
    cfg = TINY.replace(k_align=2)                                # p = 4, s <= 2
    klay = layouts.k_load(cfg)
    dut = FrontEnd(cfg)
    seen: list[tuple[str, int]] = []

    async def bench(ctx):
        def row(data, first, align):
            return klay.const({"data": data, "first": first, "align": align})
        # head 1: shifts [2, 2, 0, 0]: rows fit ([-2, 1] in channels 0-1)
        await stream_put(ctx, dut.k_load, row([1, -2, 7, -8], 1, [2, 2, 0, 0]))
        await stream_put(ctx, dut.k_load, row([-1, 0, 3, 3], 0, [0, 0, 0, 0]))
        await ctx.tick()
        seen.append(("fits", ctx.get(dut.align_error)))
        # a row with 2 in channel 0 does not fit 2 signed bits
        await stream_put(ctx, dut.k_load, row([2, 0, 0, 0], 0, [0, 0, 0, 0]))
        await ctx.tick()
        seen.append(("bad row", ctx.get(dut.align_error)))
        await stream_put(ctx, dut.k_load, row([0, 0, 0, 0], 0, [0, 0, 0, 0]))
        await ctx.tick()
        seen.append(("sticky", ctx.get(dut.align_error)))
        # head 2: a first row clears it; a shift of 3 > k_align is an error itself
        await stream_put(ctx, dut.k_load, row([0, 0, 0, 0], 1, [1, 0, 0, 0]))
        await ctx.tick()
        seen.append(("cleared", ctx.get(dut.align_error)))
        await stream_put(ctx, dut.k_load, row([0, 0, 0, 0], 1, [3, 0, 0, 0]))
        await ctx.tick()
        seen.append(("shift > k_align", ctx.get(dut.align_error)))
        await stream_put(ctx, dut.k_load, row([-5, 3, 0, 0], 1, [1, 1, 2, 2]))
        await ctx.tick()
        seen.append(("first row bad", ctx.get(dut.align_error)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [("fits", 0), ("bad row", 1), ("sticky", 1), ("cleared", 0),
                    ("shift > k_align", 1), ("first row bad", 1)], seen
