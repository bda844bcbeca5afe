"""LaneArray + KBuffer: prefetched dispatch follows the schedule of sim.perf exactly."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module
from amaranth.sim import Simulator

from leopard_rtl.config import preset
from leopard_rtl.hw.kbuffer import KBuffer
from leopard_rtl.hw.lane_array import LaneArray
from sim.golden import bitserial_prune, threshold_register
from sim.perf import frontend_schedule, request_slots


@pytest.mark.parametrize("name,lanes,ppc", [("tiny", 2, 1), ("tiny", 3, 1), ("tiny", 1, 1),
                                           ("minilm", 8, 1), ("tiny", 3, 2), ("minilm", 8, 2)])
def test_dispatch_schedule(rng, seed, name, lanes, ppc):
    cfg = preset(name).replace(max_keys=16, lanes=lanes, planes_per_cycle=ppc)
    p, d = cfg.qk_bits, cfg.head_dim
    m = Module()
    m.submodules.kbuf = kbuf = KBuffer(cfg, cfg.lanes)
    m.submodules.arr = arr = LaneArray(cfg)
    m.d.comb += [kbuf.read.eq(arr.read), arr.planes.eq(kbuf.rdata)]
    k = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (cfg.max_keys, d))
    queries = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (4, d))
    n_vis = [cfg.max_keys, 7, 0, 1]
    scores = queries @ k.T
    ths = [int(threshold_register(int(np.median(s)), cfg)) for s in scores]
    log: list[list[tuple[int, int, int, int]]] = []
    dones: list[int] = []

    async def bench(ctx):
        for j in range(cfg.max_keys):
            ctx.set(kbuf.w_en, 1)
            ctx.set(kbuf.w_addr, j)
            ctx.set(kbuf.w_data, [int(x) for x in k[j]])
            await ctx.tick()
        ctx.set(kbuf.w_en, 0)
        ctx.set(arr.advance, 1)
        ctx.set(arr.early_termination, 1)
        ctx.set(arr.pruning, 1)
        for qi, q in enumerate(queries):
            ctx.set(arr.threshold, ths[qi])
            ctx.set(arr.query, [int(x) for x in q])
            ctx.set(arr.n_visible, n_vis[qi])
            ctx.set(arr.start, 1)
            assert not ctx.get(arr.active)
            cycle = 0
            events = []
            while True:
                res = ctx.get(arr.results)
                for lane in range(cfg.lanes):
                    r = res[lane]
                    if r.valid:
                        events.append((lane, int(r.key), int(r.planes), cycle))
                done = ctx.get(arr.done)
                await ctx.tick()
                ctx.set(arr.start, 0)
                if done:
                    break
                cycle += 1
            log.append(events)
            dones.append(cycle)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    for qi, q in enumerate(queries):
        vis = (np.arange(cfg.max_keys) < n_vis[qi])[None, None]
        g = bitserial_prune(q[None, None], k[None], np.array([ths[qi]]), p, visible=vis,
                            planes_per_cycle=ppc)
        planes = g["planes_used"][0, 0]
        m_span, finish = frontend_schedule(request_slots(planes, cfg), cfg.lanes,
                                           cfg.fe_decision_latency, cfg.plane_slots,
                                           cfg.fe_full_key_cycles)
        want = sorted((j, int(planes[j]), int(finish[j])) for j in range(cfg.max_keys)
                      if planes[j] > 0)
        got = sorted((key, pl, cyc) for _lane, key, pl, cyc in log[qi])
        assert got == want, f"seed={seed} query={qi}: (key, planes, cycle) {got} != {want}"
        assert dones[qi] == int(m_span), \
            f"seed={seed} query={qi}: done at {dones[qi]}, want {m_span}"
