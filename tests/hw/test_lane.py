"""QKLane alone, fed by a model of the K buffer and its per-plane thresholds, against the
golden model and the lane timing of the cycle model."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module
from amaranth.sim import Simulator

from leopard_rtl.config import preset
from leopard_rtl.hw.lane import QKLane
from leopard_rtl.hw.threshold import PlaneThresholds
from sim.golden import bitserial_prune, threshold_register


def _plane_word(row: np.ndarray, plane: int, p: int) -> int:
    """Bank ``plane`` (0 = sign plane) of a K row: bit p-1-plane of each element."""
    return sum((((int(x) >> (p - 1 - plane)) & 1) << i) for i, x in enumerate(row))


def _slot_word(row: np.ndarray, slot: int, p: int, c: int) -> int:
    """Plane slot ``slot`` of a K row: planes c*slot .. c*slot + c - 1 side by side (plane
    c*slot + u at bits u*d), 0 for a plane beyond the last."""
    d = len(row)
    return sum(_plane_word(row, c * slot + u, p) << (u * d) for u in range(c)
               if c * slot + u < p)


def _run_lane(cfg, q, k, th, et, pr, rng, p_stall):
    """Offer every key of ``k`` through the prefetch slot, in order, as soon as it is
    empty; return [(key, survivor, planes, score, take cycle, result cycle)] with cycles
    counted in advancing cycles."""
    dut = QKLane(cfg)
    p = cfg.qk_bits
    qpos = int(np.maximum(q, 0).sum())
    tt = PlaneThresholds(cfg)
    out = []

    async def bench(ctx):
        ctx.set(dut.query, [int(x) for x in q])
        ctx.set(tt.threshold, th)
        ctx.set(tt.qpos, qpos)
        ctx.set(dut.thresholds, ctx.get(tt.t))
        ctx.set(dut.early_termination, et)
        ctx.set(dut.pruning, pr)
        nxt = 0
        took = {}
        cycle = 0
        while len(out) < len(k):
            adv = int(rng.random() >= p_stall)
            ctx.set(dut.advance, adv)
            fill = adv and ctx.get(dut.empty) and nxt < len(k)
            ctx.set(dut.fill, int(fill))
            ctx.set(dut.fill_key, nxt if nxt < len(k) else 0)
            res = ctx.get(dut.result)
            req = ctx.get(dut.read)
            if adv and res.valid:
                key = int(res.key)
                out.append((key, int(res.survivor), int(res.planes), int(res.score),
                            took[key], cycle))
            if adv and ctx.get(dut.take):
                took[int(req.key)] = cycle
            if fill:
                nxt += 1
            await ctx.tick()
            if adv:
                cycle += 1
            if req.en:
                ctx.set(dut.plane, _slot_word(k[int(req.key)], int(req.plane), p,
                                              cfg.planes_per_cycle))
        ctx.set(dut.advance, 0)

    top = Module()
    top.submodules.dut = dut
    top.submodules.thresholds = tt
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("name,p_stall,ppc", [
    ("tiny", 0.0, 1), ("tiny", 0.4, 1), ("minilm", 0.2, 1),
    # two planes per cycle: even p (tiny), odd p with padding (p = 5, 4 lanes: 3 slots
    # padded to 4 cycles), d = 32 widths
    ("tiny", 0.3, 2), ("odd", 0.3, 2), ("minilm", 0.2, 2),
    ("p2", 0.3, 2)])                                   # qk_bits = 2: a key is one slot
@pytest.mark.parametrize("et,pr", [(1, 1), (0, 1), (0, 0)])
def test_lane_matches_golden(rng, seed, name, p_stall, ppc, et, pr):
    if name == "odd":
        cfg = preset("tiny").replace(qk_bits=5, lanes=4, planes_per_cycle=ppc)
    elif name == "p2":
        cfg = preset("tiny").replace(qk_bits=2, lanes=3, planes_per_cycle=ppc)
    else:
        cfg = preset(name).replace(planes_per_cycle=ppc)
    p, d = cfg.qk_bits, cfg.head_dim
    lo, hi = -(1 << (p - 1)), 1 << (p - 1)
    nk = 12
    for trial in range(3):
        q = rng.integers(lo, hi, d)
        if trial == 1:
            q[:] = lo                                  # most negative query
        k = rng.integers(lo, hi, (nk, d))
        k[0] = lo
        k[1] = hi - 1
        k[2] = 0
        scores = k @ q
        th = int(threshold_register(int(np.median(scores)) + trial, cfg))
        out = _run_lane(cfg, q, k, th, et, pr, rng, p_stall)
        g = bitserial_prune(q[None, None], k[None], np.array([th]), p,
                            early_termination=bool(et), pruning=bool(pr),
                            planes_per_cycle=ppc)
        assert [o[0] for o in out] == list(range(nk)), f"seed={seed}: keys out of order"
        lat = cfg.fe_decision_latency
        ns = cfg.plane_slots
        for key, surv, planes, score, took, cycle in out:
            w = f"seed={seed} trial={trial} key={key}"
            assert surv == g["mask"][0, 0, key], w
            assert planes == g["planes_used"][0, 0, key], w
            slots = -(-planes // ppc)
            # The result appears r + latency cycles (slots) after the key starts ...
            assert cycle == took + slots + lat, f"{w}: result {cycle - took} after start"
            # ... and the key holds the lane min(r + latency, p) cycles (keys back to back;
            # fe_full_key_cycles if it requested its last slot).
            if key + 1 < nk:
                hold = out[key + 1][4] - took
                want = min(slots + lat, ns)
                want = cfg.fe_full_key_cycles if want == ns else want
                assert hold == want, f"{w}: {hold} cycles for {planes} planes"
            if surv:
                assert score == scores[key], w
            if scores[key] >= th or not pr:
                assert surv, f"{w}: S >= Th pruned"
