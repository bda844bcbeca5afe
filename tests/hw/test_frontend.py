"""FrontEnd (Amaranth simulation) against the golden model, with stalls and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.hdl import ResetInserter
from amaranth.sim import Simulator
from sim_helpers import (
    FrontEndCase,
    check_frontend,
    golden_case,
    run_frontend,
    stream_get,
    stream_put,
)
from support import ROOT

from leopard_rtl.config import preset
from leopard_rtl.hw import layouts
from leopard_rtl.hw.frontend import FrontEnd
from sim.golden import threshold_register

TINY = preset("tiny")


def _rand(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape)


def _th_range(cfg) -> int:
    """A threshold spread that prunes some keys and keeps others for random data."""
    return (1 << (2 * cfg.qk_bits - 2)) * max(1, int(np.sqrt(cfg.head_dim))) // 2


def _random_case(rng, cfg, heads=2, nk=None, nq=5, causal=False) -> FrontEndCase:
    case = FrontEndCase()
    nk = nk if nk is not None else cfg.max_keys
    for _ in range(heads):
        k = _rand(rng, (nk, cfg.head_dim), cfg.qk_bits)
        q = _rand(rng, (nq, cfg.head_dim), cfg.qk_bits)
        if causal:
            nv = np.minimum(np.arange(nq) + nk - nq + 1, nk).clip(0)
        else:
            nv = rng.integers(0, nk + 1, nq)
        th = rng.integers(-_th_range(cfg), _th_range(cfg), nq)
        case.add(k, q, nv, th)
    return case


def _run(cfg, case, rng, seed, p_in=0.0, p_out=0.0, **kw):
    print(f"LEOPARD_SEED={seed} p_in={p_in} p_out={p_out}")
    got = run_frontend(FrontEnd(cfg, **kw), case, cfg, rng=rng, p_in=p_in, p_out=p_out)
    check_frontend(got, golden_case(case, cfg), seed=seed, exact_cycles=p_out == 0)
    return got


@pytest.mark.parametrize("p_in,p_out", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.5, 0.7)])
def test_random_tiny(rng, seed, p_in, p_out):
    _run(TINY, _random_case(rng, TINY, heads=3, nq=6), rng, seed, p_in, p_out)


def test_back_to_back_cycles_match_perf_model(rng, seed):
    """Unstalled: query i+1 is accepted exactly frontend_query_cycles after query i."""
    case = _random_case(rng, TINY, heads=1, nq=8)
    got = _run(TINY, case, rng, seed)
    gold = golden_case(case, TINY)
    acc = got["accepts"]
    for i in range(len(acc) - 1):
        assert acc[i + 1] - acc[i] == gold[i]["cycles"], f"seed={seed} query={i}"
    # The last result bundle of a query is taken exactly `cycles` after its accept.
    for i, g in enumerate(gold):
        assert got["lasts"][i] - acc[i] == g["cycles"], f"seed={seed} query={i}"


def test_causal(rng, seed):
    _run(TINY, _random_case(rng, TINY, heads=2, nk=12, nq=12, causal=True), rng, seed, 0.2, 0.2)


@pytest.mark.parametrize("lanes", [1, 3])
def test_other_lane_counts(rng, seed, lanes):
    cfg = TINY.replace(lanes=lanes)
    _run(cfg, _random_case(rng, cfg, heads=1, nq=5), rng, seed, 0.0, 0.0)


@pytest.mark.parametrize("cfg", [
    TINY.replace(planes_per_cycle=2),
    TINY.replace(planes_per_cycle=2, qk_bits=5, lanes=4),            # odd p, padded lanes
    # 4 lanes on 2 slots padded to 4 cycles: unpadded, all-survivor queries would fill
    # the survivor queue and stall (the cycles would then differ from the model)
    TINY.replace(planes_per_cycle=2, lanes=4, max_keys=40)],
    ids=["tiny", "odd-p5-l4", "tiny-l4-k40"])
def test_two_planes_per_cycle(rng, seed, cfg):
    """planes_per_cycle=2: golden results, planes and cycles (unstalled, back to back
    with all keys surviving in one head, so survivors press on the queue) exact."""
    big = cfg.max_keys > 16
    nq = 3 if big else 4
    case = _random_case(rng, cfg, heads=1, nq=nq)
    k = _rand(rng, (cfg.max_keys, cfg.head_dim), cfg.qk_bits)
    case.add(k, _rand(rng, (3, cfg.head_dim), cfg.qk_bits), cfg.max_keys, -(1 << 40))
    got = _run(cfg, case, rng, seed, 0.0, 0.0)
    gold = golden_case(case, cfg)
    acc = got["accepts"]
    for i in range(len(acc) - 1):
        if i != nq - 1:                         # the K rows of the next head load between
            assert acc[i + 1] - acc[i] == gold[i]["cycles"], f"seed={seed} query={i}"
    if not big:
        _run(cfg, case, rng, seed, 0.3, 0.3)


@pytest.mark.parametrize("mode", ["baseline", "pruning_only"])
def test_switches(rng, seed, mode):
    """The run-time switches turn the same hardware into the SPEC section 6 references."""
    case = _random_case(rng, TINY, heads=1, nq=4)
    case.heads = [(k, q, nv, th, False, mode == "pruning_only") for k, q, nv, th, *_ in case.heads]
    got = _run(TINY, case, rng, seed)
    for st, g in zip(got["stats"], golden_case(case, TINY), strict=True):
        assert st["planes"] == TINY.qk_bits * g["n_visible"]


def test_generator_switches_off(rng, seed):
    """cfg.baseline(): the switches are tied off even if the inputs are high."""
    cfg = TINY.baseline()
    _run(cfg, _random_case(rng, cfg, heads=1, nq=4), rng, seed)


def test_adversarial(rng, seed):
    """Most negative operands, zero query, thresholds at both register ends."""
    cfg = TINY
    p, d, nk = cfg.qk_bits, cfg.head_dim, 10
    neg = -(1 << (p - 1))
    pos = (1 << (p - 1)) - 1
    k = _rand(rng, (nk, d), p)
    k[0] = neg
    k[1] = pos
    k[2] = 0
    k[3] = [neg, pos] * (d // 2) + [neg] * (d % 2)
    lo_reg = -(1 << cfg.score_bits)
    hi_reg = (1 << cfg.score_bits) - 1
    qs = np.array([[neg] * d, [pos] * d, [0] * d, [neg, pos] * (d // 2) + [neg] * (d % 2),
                   _rand(rng, (d,), p), _rand(rng, (d,), p)])
    case = FrontEndCase()
    # none pruned (min register), all pruned (max register; S <= max score < Th + 1),
    # threshold exactly at a score (S >= Th survives), and huge thresholds that saturate.
    s0 = int(k[0] @ qs[0])
    for th in (lo_reg, hi_reg, s0, s0 + 1, -(1 << 40), 1 << 40, 0):
        case.add(k, qs, nk, th)
    got = _run(cfg, case, rng, seed, 0.2, 0.3)
    gold = golden_case(case, cfg)
    nq = len(qs)
    assert all(g["mask"].all() for g in gold[:nq]), "min threshold must keep every key"
    assert not any(g["mask"].any() for g in gold[nq:2 * nq]), "max threshold prunes all"
    assert all(s["survivors"] == 0 for s in got["stats"][nq:2 * nq])


def test_thresholds_change_between_queries(rng, seed):
    case = FrontEndCase()
    k = _rand(rng, (TINY.max_keys, TINY.head_dim), TINY.qk_bits)
    q = np.repeat(_rand(rng, (1, TINY.head_dim), TINY.qk_bits), 8, axis=0)
    scores = k @ q[0]
    ths = np.sort(scores)[np.linspace(0, len(scores) - 1, 8).astype(int)]
    case.add(k, q, TINY.max_keys, ths)
    got = _run(TINY, case, rng, seed, 0.0, 0.0)
    surv = [s["survivors"] for s in got["stats"]]
    assert surv == [int((scores >= t).sum()) for t in ths]


@pytest.mark.parametrize("name", ["minilm", "paper"])
def test_d32_d64(rng, seed, name):
    """d=32 (minilm) and d=64 (paper) widths, small key buffer for simulation speed."""
    cfg = preset(name).replace(max_keys=16)
    _run(cfg, _random_case(rng, cfg, heads=1, nk=12, nq=3, causal=name == "paper"), rng, seed,
         0.1, 0.1)


def test_no_result_stream_elaborates():
    from leopard_rtl.emit import convert
    text = convert(FrontEnd(TINY, results=False), "leopard_frontend")
    assert "result__valid" not in text
    assert "survivor__valid" in text


def test_reset_mid_query(rng, seed):
    """A synchronous reset in the middle of a query leaves no stale result or survivor."""
    cfg = TINY
    dut = FrontEnd(cfg)
    rst = Signal()
    m = Module()
    m.submodules.fe = ResetInserter(rst)(dut)
    k = _rand(rng, (cfg.max_keys, cfg.head_dim), cfg.qk_bits)
    q = _rand(rng, (3, cfg.head_dim), cfg.qk_bits)
    klay, qlay = layouts.k_load(cfg), layouts.query(cfg)
    th = 0
    seen: dict[str, list] = {"res": [], "surv": []}

    async def bench(ctx):
        ctx.set(dut.early_termination, 1)
        ctx.set(dut.pruning, 1)
        ctx.set(dut.threshold, th)
        for j in range(cfg.max_keys):
            await stream_put(ctx, dut.k_load, klay.const({"data": [int(x) for x in k[j]],
                                                          "first": j == 0}))
        await stream_put(ctx, dut.query, qlay.const({"data": [int(x) for x in q[0]],
                                                     "n_visible": cfg.max_keys}))
        for _ in range(5):
            await ctx.tick()
        assert ctx.get(dut.busy)
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        assert not ctx.get(dut.busy)
        assert not ctx.get(dut.result.valid)
        assert not ctx.get(dut.survivor.valid)
        # The K buffer survives reset; the write pointer restarts at 0.
        await stream_put(ctx, dut.query, qlay.const({"data": [int(x) for x in q[1]],
                                                     "n_visible": cfg.max_keys}))
        while True:
            pay = await stream_get(ctx, dut.result)
            seen["res"].append(pay)
            if pay.last:
                break

    async def survivors(ctx):
        # Consumed concurrently: a full survivor queue stalls the lane array.
        while not seen["res"]:
            await ctx.tick()
        while True:
            pay = await stream_get(ctx, dut.survivor)
            seen["surv"].append(pay)
            if pay.last:
                break

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(survivors)
    sim.run()
    case = FrontEndCase()
    case.add(k, q[1:2], cfg.max_keys, th)
    gold = golden_case(case, cfg)[0]
    keys = {}
    for pay in seen["res"]:
        for i in range(cfg.lanes):
            r = pay.lanes[i]
            if r.valid:
                keys[int(r.key)] = (int(r.survivor), int(r.planes))
    assert sorted(keys) == list(range(cfg.max_keys)), f"seed={seed}"
    for j, (s, pl) in keys.items():
        assert s == gold["mask"][j] and pl == gold["planes"][j], f"seed={seed} key={j}"
    n_surv = int(gold["mask"].sum())
    assert len(seen["surv"]) == max(1, n_surv), f"seed={seed}"


def test_threshold_register_value():
    assert threshold_register(1 << 60, TINY) == (1 << TINY.score_bits) - 1


def test_real_trace_slice_with_stalls(rng, seed):
    """Queries of the real MiniLM trace (d=32, learned thresholds), random stalls."""

    from sim.trace import load_trace

    path = ROOT / "traces" / "minilm" / "sample_l3.npz"
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    tr = load_trace(path)
    cfg = preset("minilm").replace(max_keys=tr.n_keys)
    vis = tr.visible()
    case = FrontEndCase()
    for h in (0, tr.heads - 1):
        qi = rng.choice(tr.n_queries, 3, replace=False)
        case.add(tr.k[h], tr.q[h, qi], vis[qi].sum(axis=-1), tr.threshold[h])
    _run(cfg, case, rng, seed, 0.2, 0.3)
