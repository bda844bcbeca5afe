"""Carry-save compression and the parallel-prefix adder (leopard_rtl.hw.carry_save)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from leopard_rtl.hw.carry_save import compress, prefix_add
from leopard_rtl.hw.reciprocal import leading_one


def _run(m: Module, bench: Any) -> None:
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
def test_prefix_add_exhaustive(width: int) -> None:
    m = Module()
    a, b, c = Signal(width), Signal(width), Signal()
    o = prefix_add(m, a, b, width, c)

    async def bench(ctx: Any) -> None:
        for x, y, z in itertools.product(range(1 << width), range(1 << width), (0, 1)):
            ctx.set(a, x)
            ctx.set(b, y)
            ctx.set(c, z)
            assert ctx.get(o) == x + y + z, f"width={width}: {x} + {y} + {z} != {ctx.get(o)}"

    _run(m, bench)


@pytest.mark.parametrize("width", [13, 38, 55])
def test_prefix_add_random(width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = Module()
    a, b, c = Signal(width), Signal(width), Signal()
    o = prefix_add(m, a, b, width, c)
    top = (1 << width) - 1
    cases = [(top, 1, 0), (top, 0, 1), (top, top, 1), (0, 0, 0)]
    cases += [(int(rng.integers(0, top, endpoint=True)), int(rng.integers(0, top, endpoint=True)),
               int(rng.integers(0, 2))) for _ in range(200)]

    async def bench(ctx: Any) -> None:
        for i, (x, y, z) in enumerate(cases):
            ctx.set(a, x)
            ctx.set(b, y)
            ctx.set(c, z)
            assert ctx.get(o) == x + y + z, f"seed={seed} case {i}: {x} + {y} + {z}"

    _run(m, bench)


def test_compress_keeps_the_sum(seed: int) -> None:
    """Any number of levels: the rows' sum modulo 2**width is unchanged."""
    rng = np.random.default_rng(seed)
    width, n = 20, 9
    m = Module()
    rows = [Signal(width, name=f"r{i}") for i in range(n)]
    outs = {lv: compress(m, rows, width, lv, name=f"c{lv}") for lv in range(5)}
    assert [len(outs[lv]) for lv in range(5)] == [9, 6, 4, 3, 2]

    async def bench(ctx: Any) -> None:
        for t in range(50):
            vals = [int(v) for v in rng.integers(0, 1 << width, size=n)]
            for r, v in zip(rows, vals, strict=True):
                ctx.set(r, v)
            for lv, o in outs.items():
                got = sum(ctx.get(x) for x in o) % (1 << width)
                assert got == sum(vals) % (1 << width), f"seed={seed} trial={t} levels={lv}"

    _run(m, bench)


@pytest.mark.parametrize("width", [1, 2, 5, 8, 11])
def test_leading_one_exhaustive(width: int) -> None:
    m = Module()
    v = Signal(width)
    o = leading_one(m, v, width)

    async def bench(ctx: Any) -> None:
        for x in range(1 << width):
            ctx.set(v, x)
            assert ctx.get(o) == max(0, x.bit_length() - 1), f"width={width} value={x}"

    _run(m, bench)
