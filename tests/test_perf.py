"""Performance model: dispatch and pipeline overlap against cycle-by-cycle references."""

from __future__ import annotations

import numpy as np
import pytest

from leopard_rtl import preset
from sim.golden import run_golden
from sim.perf import frontend_query_cycles, head_cycles, pipeline_cycles, timing
from sim.vectors import random_trace


def _cycle_sim_frontend(costs: list[int], lanes: int) -> int:
    """Cycle-stepped lanes: at each cycle every idle lane (lowest index first) takes the
    next key; a key of cost c occupies its lane for c cycles. Zero-cost keys are skipped."""
    pending = [c for c in costs if c > 0]
    busy = [0] * lanes                      # remaining cycles per lane
    cycle = 0
    while pending or any(busy):
        for lane in range(lanes):
            if busy[lane] == 0 and pending:
                busy[lane] = pending.pop(0)
        busy = [max(b - 1, 0) for b in busy]
        cycle += 1
    return cycle


@pytest.mark.parametrize("lanes", [1, 2, 3, 8])
def test_dispatch_matches_cycle_simulation(lanes: int, rng: np.random.Generator) -> None:
    costs = rng.integers(0, 13, size=(40, 37))
    costs[:5] = 12                          # baseline-like rows
    costs[5:8] = 0                          # queries that see nothing
    model = frontend_query_cycles(costs, lanes)
    for row, want in zip(costs, model, strict=True):
        assert _cycle_sim_frontend(list(row), lanes) == want


def test_dispatch_simple_cases() -> None:
    assert frontend_query_cycles(np.array([12] * 16), 8) == 24
    assert frontend_query_cycles(np.array([12] * 17), 8) == 36
    assert frontend_query_cycles(np.array([1, 12, 1, 1]), 2) == 12
    assert frontend_query_cycles(np.array([0, 0]), 4, overhead=3) == 3


def _naive_pipeline(fe: list[int], be: list[int]) -> int:
    """Event reference: FE(i) starts when FE(i-1) is done and buffer half i%2 is free
    (BE(i-2) done); BE(i) starts when FE(i) and BE(i-1) are done."""
    fe_end: list[int] = []
    be_end: list[int] = []
    for i, (f, b) in enumerate(zip(fe, be, strict=True)):
        start = max(fe_end[i - 1] if i else 0, be_end[i - 2] if i >= 2 else 0)
        fe_end.append(start + f)
        be_end.append(max(fe_end[i], be_end[i - 1] if i else 0) + b)
    return be_end[-1]


def test_pipeline_overlap(rng: np.random.Generator) -> None:
    fe = rng.integers(1, 60, size=(5, 30))
    be = rng.integers(1, 60, size=(5, 30))
    got = pipeline_cycles(fe, be)
    for h in range(5):
        assert got[h] == _naive_pipeline(list(fe[h]), list(be[h]))
    # Bounds: never faster than either stage alone, never slower than no overlap.
    assert (got >= fe.sum(1)).all() and (got >= be.sum(1)).all()
    assert (got <= fe.sum(1) + be.sum(1)).all()


def test_baseline_cycles_and_speedup(rng: np.random.Generator) -> None:
    cfg = preset("minilm")
    t = random_trace(rng, heads=2, n_queries=16, n_keys=32, head_dim=32, qk_bits=12,
                     v_bits=12, kind="realistic", prune_quantile=0.8)
    res = run_golden(t, cfg)
    base = cfg.baseline()
    planes = np.full((2, 16, 32), 12)
    assert np.array_equal(res.baseline_cycles, head_cycles(planes, np.full((2, 16), 32), base))
    fe = 12 * 32 // cfg.lanes + timing(base).fe_query_overhead
    be = 32 + timing(base).be_query_overhead
    assert res.baseline_cycles[0] == _naive_pipeline([fe] * 16, [be] * 16)
    assert (res.cycles < res.baseline_cycles).all()
    s = res.summary()
    assert s["total"]["speedup"] == round(res.baseline_cycles.sum() / res.cycles.sum(), 6)
