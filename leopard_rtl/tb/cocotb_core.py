"""cocotb tests of the emitted ``leopard_core`` Verilog against sim.golden (Icarus, Verilator).

Run by :func:`leopard_rtl.tb.cocotb_runner.run_cocotb`, which passes the configuration and
the seed. Payloads are packed and
unpacked through the Amaranth layouts; every output field is compared with
:func:`sim.golden.run_golden` and a mismatch names the seed, head and query.
"""

from __future__ import annotations

import random
from typing import Any

import cocotb
import numpy as np
from amaranth import unsigned
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from leopard_rtl.config import LeopardConfig
from leopard_rtl.hw import layouts
from leopard_rtl.hw.core import causal_offset_shape, core_out, core_query
from leopard_rtl.tb.cocotb_runner import config_from_env, seed_from_env
from leopard_rtl.tb.packing import k_load_rows, pack, unpack
from leopard_rtl.tb.streams import StreamSink, StreamSource
from sim.golden import GoldenResult, run_golden
from sim.trace import Trace
from sim.vectors import random_trace


class TB:
    """Clock, reset, K/V/query sources and the output sink, with random pauses."""

    def __init__(self, dut: Any, cfg: LeopardConfig, pause_in: float, pause_out: float,
                 seed: int) -> None:
        self.dut, self.cfg = dut, cfg
        rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.k = StreamSource(dut, "k_load", dut.clk, pause_in, rng)
        self.v = StreamSource(dut, "v_load", dut.clk, pause_in, rng)
        self.q = StreamSource(dut, "query", dut.clk, pause_in, rng)
        self.out = StreamSink(dut, "out", dut.clk, pause_out, rng)
        self.klay, self.vlay = layouts.k_load(cfg), layouts.v_load(cfg)
        self.qlay, self.olay = core_query(cfg), core_out(cfg)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    def registers(self, trace: Trace, golden: GoldenResult, h: int) -> None:
        d, cfg = self.dut, self.cfg
        d.threshold.value = pack(unsigned(cfg.threshold_bits), int(golden.threshold[h]))
        d.scale_mant.value = int(golden.scale_mant[h])
        d.scale_shift.value = int(golden.scale_shift[h])
        d.n_keys.value = trace.n_keys
        d.causal.value = int(trace.causal)
        off = trace.n_keys - trace.n_queries
        d.causal_offset.value = pack(causal_offset_shape(cfg), off)
        d.early_termination.value = int(cfg.early_termination)
        d.pruning.value = int(cfg.pruning)

    async def load(self, trace: Trace, h: int, align: np.ndarray | None = None) -> None:
        """K and V rows of head ``h``; ``align``: its K alignment shifts (with k_align)."""
        async def rows(src: StreamSource, lay: Any, pays: list[dict[str, Any]]) -> None:
            for pay in pays:
                await src.send(pack(lay, pay))
        kt = cocotb.start_soon(rows(self.k, self.klay, k_load_rows(trace.k[h], align)))
        await rows(self.v, self.vlay, [{"data": [int(x) for x in row], "first": int(j == 0)}
                                       for j, row in enumerate(trace.v[h])])
        await kt

    async def queries(self, trace: Trace, h: int, count: int | None = None) -> None:
        for i, row in enumerate(trace.q[h][:count]):
            await self.q.send(pack(self.qlay, {"data": [int(x) for x in row],
                                               "first": int(i == 0)}))

    async def collect(self, n: int) -> list[Any]:
        return [unpack(self.olay, await self.out.recv()) for _ in range(n)]


def check(trace: Trace, golden: GoldenResult, h: int, outs: list[Any], seed: int) -> None:
    vis = np.broadcast_to(golden.visible, golden.mask.shape)
    for i, o in enumerate(outs):
        where = f"seed={seed} head={h} query={i}"
        want = [int(x) for x in golden.out[h, i]]
        got = [int(x) for x in o["data"]]
        assert got == want, f"{where}: out {got} != golden {want}"
        assert bool(o["all_pruned"]) == bool(golden.all_pruned[h, i]), f"{where}: all_pruned"
        assert int(o["survivors"]) == int(golden.mask[h, i].sum()), f"{where}: survivors"
        planes = int(np.where(vis[h, i], golden.planes_used[h, i], 0).sum())
        assert int(o["planes"]) == planes, f"{where}: planes {o['planes']} != {planes}"
        assert not o["overflow"], f"{where}: overflow"


def _trace(cfg: LeopardConfig, seed: int, causal: bool) -> Trace:
    rng = np.random.default_rng(seed)
    nq, nk = (6, min(8, cfg.max_keys)) if causal else (5, min(12, cfg.max_keys))
    t = random_trace(rng, heads=3, n_queries=nq, n_keys=nk, head_dim=cfg.head_dim,
                     qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, causal=causal,
                     kind="realistic", prune_quantile=0.6)
    th = t.threshold.copy()
    th[2] = 1 << 40                                 # head 2: every key pruned
    return Trace(**{**t.__dict__, "threshold": th}).validate()


async def _heads(dut: Any, pause_in: float, pause_out: float, causal: bool) -> None:
    cfg, seed = config_from_env(), seed_from_env()
    tb = TB(dut, cfg, pause_in, pause_out, seed)
    await tb.reset()
    trace = _trace(cfg, seed, causal)
    golden = run_golden(trace, cfg)
    for h in range(trace.heads):                    # a new K/V set for every head
        tb.registers(trace, golden, h)
        await tb.load(trace, h, golden.align[h] if cfg.k_align else None)
        sender = cocotb.start_soon(tb.queries(trace, h))
        outs = await tb.collect(trace.n_queries)
        await sender
        check(trace, golden, h, outs, seed)
    assert golden.all_pruned[2].all()


@cocotb.test()
async def heads_back_to_back(dut: Any) -> None:
    """Three heads (the last one fully pruned), no stalls."""
    await _heads(dut, 0.0, 0.0, causal=False)


@cocotb.test()
async def heads_causal_with_stalls(dut: Any) -> None:
    """Causal heads with random idle inputs and back-pressure on the output stream."""
    await _heads(dut, 0.3, 0.5, causal=True)


@cocotb.test()
async def reset_mid_query(dut: Any) -> None:
    """Reset while queries are in the front and back ends; then the head runs correctly
    and nothing from before the reset comes out."""
    cfg, seed = config_from_env(), seed_from_env()
    tb = TB(dut, cfg, 0.0, 0.0, seed)
    await tb.reset()
    trace = _trace(cfg, seed + 1, causal=False)
    golden = run_golden(trace, cfg)
    tb.registers(trace, golden, 0)
    await tb.load(trace, 0, golden.align[0] if cfg.k_align else None)
    # Two queries in flight (the most the core admits while ``out`` is not read) ...
    await tb.queries(trace, 0, count=2)
    await ClockCycles(dut.clk, 3)
    assert int(dut.busy.value) == 1
    await tb.reset()                                # ... reset in the middle
    await RisingEdge(dut.clk)
    assert int(dut.busy.value) == 0 and int(dut.out__valid.value) == 0
    for _ in range(50):                             # no stale output after the reset
        await RisingEdge(dut.clk)
        assert int(dut.out__valid.value) == 0, "output after reset"
    h = 1
    tb.registers(trace, golden, h)
    await tb.load(trace, h, golden.align[h] if cfg.k_align else None)
    sender = cocotb.start_soon(tb.queries(trace, h))
    outs = await tb.collect(trace.n_queries)
    await sender
    check(trace, golden, h, outs, seed)
