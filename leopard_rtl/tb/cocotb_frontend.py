"""cocotb tests of the emitted ``leopard_frontend`` Verilog against sim.golden.

Run by :func:`leopard_rtl.tb.cocotb_runner.run_cocotb` on Icarus and Verilator, which passes
the configuration and the seed.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from amaranth import unsigned
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from leopard_rtl.config import LeopardConfig
from leopard_rtl.hw import layouts
from leopard_rtl.tb.cocotb_runner import config_from_env, seed_from_env
from leopard_rtl.tb.packing import k_load_rows, pack, unpack
from leopard_rtl.tb.streams import StreamSink, StreamSource
from sim.golden import bitserial_prune, k_align_shifts, threshold_register


class TB:
    """Clock, reset and the four streams of the front end."""

    def __init__(self, dut, cfg: LeopardConfig, pause_in: float, pause_out: float, seed: int):
        self.dut, self.cfg = dut, cfg
        rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.k = StreamSource(dut, "k_load", dut.clk, pause_in, rng)
        self.q = StreamSource(dut, "query", dut.clk, pause_in, rng)
        self.res = StreamSink(dut, "result", dut.clk, pause_out, rng)
        self.surv = StreamSink(dut, "survivor", dut.clk, pause_out, rng)
        self.klay, self.qlay = layouts.k_load(cfg), layouts.query(cfg)
        self.rlay, self.slay = layouts.result(cfg), layouts.survivor(cfg)
        dut.threshold.value = 0
        dut.early_termination.value = 1
        dut.pruning.value = 1

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    async def load_k(self, k: np.ndarray) -> None:
        cfg = self.cfg
        align = k_align_shifts(k[None], cfg.qk_bits, cfg.k_align)[0] if cfg.k_align else None
        for pay in k_load_rows(k, align):
            await self.k.send(pack(self.klay, pay))

    async def send_query(self, q: np.ndarray, n_visible: int, th: int) -> None:
        self.dut.threshold.value = pack(unsigned(self.cfg.threshold_bits), th)
        await self.q.send(pack(self.qlay, {"data": [int(x) for x in q],
                                           "n_visible": int(n_visible)}))

    async def collect(self, n_queries: int):
        """Result keys and stats per query (from ``result``)."""
        out = []
        for _ in range(n_queries):
            keys, stats = {}, None
            while stats is None:
                pay = unpack(self.rlay, await self.res.recv())
                for r in pay["lanes"]:
                    if r["valid"]:
                        keys[r["key"]] = (r["survivor"], r["planes"], r["score"])
                if pay["last"]:
                    st = pay["stats"]
                    stats = (st["survivors"], st["planes"], st["cycles"])
            out.append((keys, stats))
        return out

    async def collect_survivors(self, n_queries: int):
        out = []
        for _ in range(n_queries):
            recs = []
            while True:
                pay = unpack(self.slay, await self.surv.recv())
                recs.append((pay["key"], pay["score"], pay["empty"]))
                if pay["last"]:
                    break
            out.append(recs)
        return out


def _check(cfg, k, q, nv, ths, got, survs, seed):
    p = cfg.qk_bits
    for i in range(len(q)):
        where = f"seed={seed} query={i}"
        vis = (np.arange(len(k)) < nv[i])[None, None]
        g = bitserial_prune(q[None, i:i + 1], k[None], np.array([ths[i]]), p, visible=vis,
                            k_align=cfg.k_align, planes_per_cycle=cfg.planes_per_cycle)
        keys, stats = got[i]
        assert sorted(keys) == list(range(nv[i])), f"{where}: keys {sorted(keys)}"
        for j, (s, pl, sc) in keys.items():
            assert s == g["mask"][0, 0, j], f"{where} key={j}: survivor"
            assert pl == g["planes_used"][0, 0, j], f"{where} key={j}: planes"
            exact = int(k[j] @ q[i])
            if exact >= ths[i]:
                assert s, f"{where} key={j}: S={exact} >= Th={ths[i]} pruned"
            if s:
                assert sc == exact, f"{where} key={j}: score {sc} != {exact}"
        assert stats[0] == int(g["mask"].sum()) and stats[1] == int(g["planes_used"].sum())
        want = sorted((int(j), int(k[j] @ q[i])) for j in np.flatnonzero(g["mask"][0, 0]))
        recs = survs[i]
        if want:
            assert sorted((a, b) for a, b, _e in recs) == want, f"{where}: survivors"
        else:
            assert len(recs) == 1 and recs[0][2] == 1, f"{where}: empty record"


async def _scenario(dut, pause_in: float, pause_out: float, n_heads: int = 2, nq: int = 6):
    cfg, seed = config_from_env(), seed_from_env()
    tb = TB(dut, cfg, pause_in, pause_out, seed)
    await tb.reset()
    rng = np.random.default_rng(seed)
    p, d, nk = cfg.qk_bits, cfg.head_dim, cfg.max_keys
    for _h in range(n_heads):
        k = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (nk, d))
        q = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (nq, d))
        k[0] = -(1 << (p - 1))
        q[0] = -(1 << (p - 1))
        nv = rng.integers(0, nk + 1, nq)
        s = q @ k.T
        # A different threshold for every query (changed between queries).
        ths = [int(threshold_register(int(np.percentile(s[i], 60)) + int(rng.integers(-3, 3)),
                                      cfg)) for i in range(nq)]
        ths[1 % nq] = int(threshold_register(-(1 << 60), cfg))     # nothing pruned
        res_task = cocotb.start_soon(tb.collect(nq))
        surv_task = cocotb.start_soon(tb.collect_survivors(nq))
        await tb.load_k(k)
        for i in range(nq):
            await tb.send_query(q[i], int(nv[i]), ths[i])
        got = await res_task
        survs = await surv_task
        _check(cfg, k, q, nv, ths, got, survs, seed)


@cocotb.test()
async def random_no_stall(dut):
    await _scenario(dut, 0.0, 0.0)


@cocotb.test()
async def random_with_backpressure(dut):
    await _scenario(dut, 0.3, 0.5)


@cocotb.test()
async def reset_mid_query(dut):
    """Reset while a query runs; nothing stale comes out, the next query is exact."""
    cfg, seed = config_from_env(), seed_from_env()
    tb = TB(dut, cfg, 0.0, 0.0, seed)
    await tb.reset()
    rng = np.random.default_rng(seed + 1)
    p, d, nk = cfg.qk_bits, cfg.head_dim, cfg.max_keys
    k = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (nk, d))
    q = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (2, d))
    await tb.load_k(k)
    await tb.send_query(q[0], nk, 0)
    await ClockCycles(dut.clk, 3)
    assert int(dut.busy.value) == 1
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    assert int(dut.busy.value) == 0
    assert int(dut.result__valid.value) == 0 and int(dut.survivor__valid.value) == 0
    res_task = cocotb.start_soon(tb.collect(1))
    surv_task = cocotb.start_soon(tb.collect_survivors(1))
    await tb.send_query(q[1], nk, 0)
    got = await res_task
    survs = await surv_task
    _check(cfg, k, q[1:], [nk], [0], got, survs, seed)
