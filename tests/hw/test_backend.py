"""BackEnd (leopard_rtl.hw.backend) in Amaranth simulation: bit-exact, flags, cycles, overflow."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator
from sim_helpers import Stall, stream_get, stream_put

from leopard_rtl.config import LeopardConfig, preset
from leopard_rtl.hw import layouts as bl
from leopard_rtl.hw.backend import BackEnd
from leopard_rtl.tb.backend import expected, front, predicted_cycles
from sim import perf
from sim.golden import attention_float, error_bound
from sim.vectors import random_trace


def run_backend(cfg: LeopardConfig, score: np.ndarray, mask: np.ndarray, v: np.ndarray,
                mant: np.ndarray, shift: np.ndarray, *, rng: np.random.Generator,
                p_in: float = 0.0, p_out: float = 0.0, order: str = "key"
                ) -> dict[str, Any]:
    """Drive every head through a BackEnd; return outputs, flags and cycle stamps.

    ``order="random"`` sends each query's survivors in a random key order (the front end
    reports keys out of order); the golden result does not depend on the order unless the
    store overflows.
    """
    H, Nq, _ = score.shape
    dut = BackEnd(cfg)
    slay, vlay = bl.survivor(cfg), bl.v_load(cfg)
    outs: list[Any] = []
    starts: list[int] = []
    out_cycles: list[int] = []
    in_stall, out_stall = Stall(rng, p_in), Stall(rng, p_out)

    async def producer(ctx: Any) -> None:
        for h in range(H):
            for j in range(v.shape[1]):
                await stream_put(ctx, dut.v_load,
                                 vlay.const({"data": [int(x) for x in v[h, j]],
                                             "first": j == 0}), in_stall)
            ctx.set(dut.scale_mant, int(mant[h]))
            ctx.set(dut.scale_shift, int(shift[h]))
            for i in range(Nq):
                keys = np.flatnonzero(mask[h, i])
                if order == "random":
                    keys = rng.permutation(keys)
                if keys.size == 0:
                    await stream_put(ctx, dut.survivor,
                                     slay.const({"key": 0, "score": 0, "last": 1,
                                                 "empty": 1}), in_stall)
                for n, j in enumerate(keys):
                    await stream_put(ctx, dut.survivor,
                                     slay.const({"key": int(j), "score": int(score[h, i, j]),
                                                 "last": n == keys.size - 1, "empty": 0}),
                                     in_stall)

    async def consumer(ctx: Any) -> None:
        for _ in range(H * Nq):
            pay = await stream_get(ctx, dut.out, out_stall)
            outs.append({"data": [int(x) for x in pay.data],
                         "all_pruned": int(pay.all_pruned),
                         "survivors": int(pay.survivors), "overflow": int(pay.overflow)})

    async def monitor(ctx: Any) -> None:
        cycle = 0
        first = True
        while True:
            _, _, sv, sr, ov, orr, busy = await ctx.tick().sample(
                dut.survivor.valid, dut.survivor.ready, dut.out.valid, dut.out.ready,
                dut.busy)
            if sv and sr and first:
                starts.append(cycle)
                first = False
            if ov and orr:
                out_cycles.append(cycle)
                if len(out_cycles) % Nq == 0:
                    first = True
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(monitor, background=True)
    sim.run()
    d = cfg.head_dim
    res: dict[str, Any] = {
        "out": np.array([o["data"] for o in outs], np.int64).reshape(H, Nq, d),
        "all_pruned": np.array([o["all_pruned"] for o in outs], bool).reshape(H, Nq),
        "survivors": np.array([o["survivors"] for o in outs], np.int64).reshape(H, Nq),
        "overflow": np.array([o["overflow"] for o in outs], bool).reshape(H, Nq),
        "cycles": np.array([out_cycles[(h + 1) * Nq - 1] - starts[h] for h in range(H)]),
    }
    return res


def check(got: dict[str, Any], want: dict[str, Any], seed: int, what: str) -> None:
    H, Nq = want["all_pruned"].shape
    for h in range(H):
        for i in range(Nq):
            w = f"{what} seed={seed} head={h} query={i}"
            assert list(got["out"][h, i]) == list(want["out"][h, i]), \
                f"{w}: out {list(got['out'][h, i])} != golden {list(want['out'][h, i])}"
            for key in ("all_pruned", "survivors", "overflow"):
                assert got[key][h, i] == want[key][h, i], \
                    f"{w}: {key} {got[key][h, i]} != {want[key][h, i]}"


def test_overhead_matches_perf_model() -> None:
    for name in ("tiny", "minilm", "paper"):
        cfg = preset(name)
        assert perf.timing(cfg).be_query_overhead == cfg.be_query_overhead
        assert cfg.be_query_overhead == (1 + cfg.exp_latency + cfg.mac_sum_latency
                                         + cfg.recip_prep_cycles
                                         + (cfg.recip_bits + 2) // 2
                                         + cfg.norm_latency + 1)
    be = BackEnd(preset("tiny"))
    assert be.latencies["be_query_overhead"] == preset("tiny").be_query_overhead
    Fragment.get(be, None)          # elaborate it (an unused Elaboratable warns)


@pytest.mark.parametrize("kind,p_in,p_out", [
    ("uniform", 0.0, 0.0),
    ("adversarial", 0.3, 0.5),
    ("realistic", 0.5, 0.3),
])
def test_backend_random(kind: str, p_in: float, p_out: float, seed: int) -> None:
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=5, n_keys=cfg.max_keys, kind=kind,
                     causal=kind == "realistic", prune_quantile=0.5)
    fe = front(t, cfg)
    got = run_backend(cfg, fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], rng=rng,
                      p_in=p_in, p_out=p_out, order="random" if p_in else "key")
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    check(got, want, seed, kind)
    if p_in == 0 and p_out == 0:
        pred = predicted_cycles(want["survivors"], cfg)
        assert list(got["cycles"]) == list(pred), f"seed={seed}: cycles vs perf model"


def _directed(cfg: LeopardConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Edge cases, one head each (Nq queries over max_keys keys)."""
    nk, d, nq = cfg.max_keys, cfg.head_dim, 6
    slo, shi = -(1 << (cfg.score_bits - 1)), (1 << (cfg.score_bits - 1)) - 1
    vlo, vhi = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1)) - 1
    mmax, smax = (1 << cfg.scale_bits) - 1, (1 << cfg.scale_shift_bits) - 1
    heads = []
    # 0: one survivor, all survivors, all pruned, equal scores, largest gap, two survivors.
    score = rng.integers(slo, shi + 1, size=(nq, nk))
    mask = np.zeros((nq, nk), bool)
    mask[0, 3] = True                                   # one survivor
    mask[1, :] = True                                   # all survivors
    #    row 2: all pruned
    score[3, :] = 1234 % shi
    mask[3, :] = True                                   # equal scores
    score[4, :] = slo
    score[4, 5] = shi
    mask[4, :] = True                                   # largest gap to the max
    mask[5, [0, nk - 1]] = True
    v = rng.integers(vlo, vhi + 1, size=(nk, d))
    heads.append((score, mask, v, 181 % (mmax + 1), 3))
    # 1: most negative V everywhere, the largest scale (shift 1, mant max).
    v1 = np.full((nk, d), vlo)
    heads.append((score, mask, v1, mmax, 1))
    # 2: most positive V, the smallest scale (every e equal), alternating signs.
    v2 = np.where(np.arange(nk)[:, None] % 2 == 0, vhi, vlo) * np.ones((1, d), np.int64)
    heads.append((score, mask, v2, 0, smax))
    return {"score": np.stack([h[0] for h in heads]), "mask": np.stack([h[1] for h in heads]),
            "v": np.stack([h[2] for h in heads]),
            "mant": np.array([h[3] for h in heads]), "shift": np.array([h[4] for h in heads])}


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_backend_directed(p: float, seed: int) -> None:
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    c = _directed(cfg, rng)
    got = run_backend(cfg, c["score"], c["mask"], c["v"], c["mant"], c["shift"], rng=rng,
                      p_in=p, p_out=p)
    want = expected(c["score"], c["mask"], c["v"], c["mant"], c["shift"], cfg)
    check(got, want, seed, "directed")
    # One survivor returns its V row exactly; all pruned gives zeros and the flag.
    for h in range(3):
        assert list(got["out"][h, 0]) == list(c["v"][h, 3])
        assert got["all_pruned"][h, 2] and not got["out"][h, 2].any()
    assert (got["out"][1][~got["all_pruned"][1]] == -(1 << (cfg.v_bits - 1))).all()
    if p == 0:
        assert list(got["cycles"]) == list(predicted_cycles(want["survivors"], cfg))


def test_backend_sustained_one_per_cycle(seed: int) -> None:
    """Steady state: a query of n survivors costs exactly n + overhead cycles."""
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    nk, nq = cfg.max_keys, 4
    score = rng.integers(-100, 100, size=(1, nq, nk))
    mask = np.ones((1, nq, nk), bool)
    v = rng.integers(-8, 8, size=(1, nk, cfg.head_dim))
    got = run_backend(cfg, score, mask, v, np.array([77]), np.array([4]), rng=rng)
    ov = cfg.be_query_overhead
    # Records take nk cycles per query and the back end nk + ov: the back end is the
    # bottleneck, so the head costs the first query's records plus nq * (nk + ov).
    assert got["cycles"][0] == nk + nq * (nk + ov)
    # Adding one survivor to every query adds exactly one cycle per query.
    mask2 = mask.copy()
    mask2[:, :, -1] = False
    got2 = run_backend(cfg, score, mask2, v, np.array([77]), np.array([4]), rng=rng)
    assert got["cycles"][0] - got2["cycles"][0] == nq + 1


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_backend_overflow(p: float, seed: int) -> None:
    """More survivors than survivor_depth: first ones kept, flag raised, nothing hidden."""
    cfg = preset("tiny").replace(survivor_depth=3)
    rng = np.random.default_rng(seed)
    nk, nq = cfg.max_keys, 5
    score = rng.integers(-300, 300, size=(2, nq, nk))
    mask = rng.random((2, nq, nk)) < 0.4
    mask[0, 0, :] = True                   # far over capacity
    mask[0, 1, :] = False
    mask[0, 1, :3] = True                  # exactly at capacity
    mask[0, 2, :] = False                  # all pruned
    mask[1, 3, :] = False
    mask[1, 3, :4] = True                  # one over capacity
    score[1, 3, 3] = 10_000                # the dropped survivor would have been the max
    v = rng.integers(-32, 32, size=(2, nk, cfg.head_dim))
    mant, shift = np.array([99, 200]), np.array([5, 7])
    got = run_backend(cfg, score, mask, v, mant, shift, rng=rng, p_in=p, p_out=p)
    want = expected(score, mask, v, mant, shift, cfg)
    assert want["overflow"][0, 0] and want["overflow"][1, 3] and not want["overflow"][0, 1]
    check(got, want, seed, "overflow")
    if p == 0:
        assert list(got["cycles"]) == list(predicted_cycles(want["survivors"], cfg))


def test_backend_error_bound(seed: int) -> None:
    """RTL output vs float pruned attention: within sim.golden.error_bound."""
    cfg = preset("tiny")
    rng = np.random.default_rng(seed + 1)
    t = random_trace(rng, heads=2, n_queries=6, n_keys=cfg.max_keys, kind="realistic",
                     prune_quantile=0.4)
    fe = front(t, cfg)
    got = run_backend(cfg, fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], rng=rng)
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    check(got, want, seed, "error-bound")
    ref = attention_float(t.q, t.k, t.v, t.scale_q, t.scale_k, fe["mask"])
    bound = error_bound(fe["score"], fe["mask"], t.v, t.scale_q, t.scale_k, fe["mant"],
                        fe["shift"], want["backend"], ref, cfg)
    err = np.abs(got["out"] - ref).max(axis=-1)
    assert (err <= bound + 1e-9).all(), f"seed={seed}: error {err.max()} over bound"
    assert math.isfinite(float(err.max()))


def test_backend_elaborates_all_presets() -> None:
    from leopard_rtl.emit import convert, ports_of
    for name in ("tiny", "minilm"):
        cfg = preset(name)
        be = BackEnd(cfg)
        names = {p["name"] for p in ports_of(be)}
        assert {"survivor__payload", "v_load__payload", "out__payload", "scale_mant",
                "scale_shift", "busy"} <= names
        assert "module leopard_backend" in convert(be, "leopard_backend")


@pytest.mark.parametrize("changes", [
    {"survivor_depth": 1},
    {"max_keys": 12, "head_dim": 1, "lanes": 1},
    {"max_keys": 5, "survivor_depth": 2, "recip_bits": 4, "exp_frac_bits": 1, "exp_bits": 4},
])
def test_backend_config_corners(changes: dict[str, int], seed: int) -> None:
    """Odd sizes: capacity 1, non-power-of-two key counts, d=1, the narrowest widths."""
    cfg = preset("tiny").replace(**changes)
    rng = np.random.default_rng(seed)
    nk, nq = cfg.max_keys, 6
    score = rng.integers(-(1 << (cfg.score_bits - 1)), 1 << (cfg.score_bits - 1),
                         size=(2, nq, nk))
    score[:, :, : nk // 2] //= 64                     # some close scores too
    mask = rng.random((2, nq, nk)) < 0.5
    mask[0, 0] = False
    mask[1, 1] = True
    v = rng.integers(-(1 << (cfg.v_bits - 1)), 1 << (cfg.v_bits - 1), size=(2, nk, cfg.head_dim))
    mant = rng.integers(0, 1 << cfg.scale_bits, size=2)
    shift = rng.integers(1, 1 << cfg.scale_shift_bits, size=2)
    got = run_backend(cfg, score, mask, v, mant, shift, rng=rng)
    want = expected(score, mask, v, mant, shift, cfg)
    check(got, want, seed, f"corners {changes}")
    assert list(got["cycles"]) == list(predicted_cycles(want["survivors"], cfg))


@pytest.mark.slow
@pytest.mark.parametrize("offset", range(20))
def test_backend_random_sweep(offset: int, seed: int) -> None:
    """Many seeds, all kinds, stalls on both sides (make test-slow)."""
    cfg = preset("tiny")
    s = seed + offset
    rng = np.random.default_rng(s)
    kind = ("uniform", "adversarial", "realistic")[offset % 3]
    t = random_trace(rng, heads=2, n_queries=8, n_keys=cfg.max_keys, kind=kind,
                     causal=offset % 2 == 1, prune_quantile=None if offset % 4 == 0 else 0.5)
    fe = front(t, cfg)
    p = 0.3 if offset % 2 else 0.0
    got = run_backend(cfg, fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], rng=rng,
                      p_in=p, p_out=p, order="random" if p else "key")
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    check(got, want, s, kind)


# ------------------------------------------------------------ overlap_norm (second bank)
@pytest.mark.parametrize("changes,p", [
    ({}, 0.4),
    ({"v_bits": 14}, 0.0),        # acc 3 cycles after sum: the MAC's clear is delayed
    ({"v_bits": 3, "survivor_depth": 3}, 0.3),
])
def test_backend_overlap_random(changes: dict[str, int], p: float, seed: int) -> None:
    """overlap_norm: bit-identical to the golden model; cycles equal the perf model."""
    cfg = preset("tiny").replace(overlap_norm=True, **changes)
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=6, n_keys=cfg.max_keys, kind="realistic",
                     causal=True, prune_quantile=0.7, v_bits=cfg.v_bits)
    fe = front(t, cfg)
    got = run_backend(cfg, fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], rng=rng,
                      p_in=p, p_out=p)
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    check(got, want, seed, f"overlap {changes}")
    if p == 0:
        pred = predicted_cycles(want["survivors"], cfg)
        assert list(got["cycles"]) == list(pred), f"seed={seed}: cycles vs perf model"
        assert (pred < predicted_cycles(want["survivors"],
                                        cfg.replace(overlap_norm=False))).all()
        c = _directed(cfg, rng)
        got = run_backend(cfg, c["score"], c["mask"], c["v"], c["mant"], c["shift"],
                          rng=rng)
        want = expected(c["score"], c["mask"], c["v"], c["mant"], c["shift"], cfg)
        check(got, want, seed, f"overlap directed {changes}")
        assert list(got["cycles"]) == list(predicted_cycles(want["survivors"], cfg))


@pytest.mark.parametrize("fill", ["none", "all", "alternate"])
def test_backend_overlap_back_to_back(fill: str, seed: int) -> None:
    """Back-to-back queries with 0 / all survivors: a query costs the longer of its
    accumulation (n + be_drain_cycles + be_release_latency) and its normalization."""
    cfg = preset("tiny").replace(overlap_norm=True)
    rng = np.random.default_rng(seed)
    nk, nq = cfg.max_keys, 5
    score = rng.integers(-300, 300, size=(1, nq, nk))
    mask = np.zeros((1, nq, nk), bool)
    if fill == "all":
        mask[:] = True
    elif fill == "alternate":
        mask[0, ::2] = True
    v = rng.integers(-32, 32, size=(1, nk, cfg.head_dim))
    got = run_backend(cfg, score, mask, v, np.array([150]), np.array([6]), rng=rng)
    want = expected(score, mask, v, np.array([150]), np.array([6]), cfg)
    check(got, want, seed, f"back-to-back {fill}")
    D, B, rl = cfg.be_drain_cycles, cfg.be_norm_cycles, cfg.be_release_latency
    n = mask[0].sum(-1)
    if fill != "alternate":               # closed form: first records, then one period each
        period = max(int(n[0]) + D + rl, B)
        assert got["cycles"][0] == max(1, int(n[0])) + n[0] + D + B + (nq - 1) * period
    assert list(got["cycles"]) == list(predicted_cycles(want["survivors"], cfg))
