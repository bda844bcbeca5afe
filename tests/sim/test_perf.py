"""Performance model: dispatch and pipeline overlap against cycle-by-cycle references."""

from __future__ import annotations

import numpy as np
import pytest

from leopard_rtl import preset
from sim.golden import run_golden
from sim.perf import (
    core_cycles,
    core_schedule,
    frontend_query_cycles,
    frontend_schedule,
    k_plane_reads,
    pipeline_cycles,
    request_slots,
    survivor_commit,
    timing,
)
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


def _cycle_sim_pipelined(planes: np.ndarray, lanes: int, lat: int, p: int,
                         full: int | None = None) -> list[int]:
    """Result cycle of each key (0 if hidden) of the pipelined lanes, stepped cycle by cycle.

    Keys 0..lanes-1 wait in the lanes' slots at the accept (cycle 0); from cycle 0 a lane
    takes its slot's key when its request slot is free, and a slot empty at the start of
    a cycle is refilled at its end, lowest lane first. A key of r planes holds the lane
    min(r + lat, p) cycles (``full`` if that is p and ``full`` is given); its result
    appears r + lat cycles after it starts.
    """
    keys = [j for j, c in enumerate(planes) if c > 0]
    slot: list[int | None] = [None] * lanes
    free = [0] * lanes
    nxt = 0
    for i in range(lanes):
        if nxt < len(keys):
            slot[i], nxt = keys[nxt], nxt + 1
    out = [0] * len(planes)
    t, n_out = 0, 0
    while n_out < len(keys):
        empty_at_start = [s is None for s in slot]
        for i in range(lanes):
            if slot[i] is not None and free[i] <= t:
                c = int(planes[slot[i]])
                out[slot[i]] = t + c + lat
                n_out += 1
                hold = min(c + lat, p)
                free[i] = t + (full if full is not None and hold == p else hold)
                slot[i] = None
        for i in range(lanes):
            if empty_at_start[i] and nxt < len(keys):
                slot[i], nxt = keys[nxt], nxt + 1
        t += 1
    return out


@pytest.mark.parametrize("lanes", [1, 2, 3, 8])
@pytest.mark.parametrize("lat", [1, 2, 3])
def test_pipelined_dispatch_matches_cycle_simulation(lanes: int, lat: int,
                                                     rng: np.random.Generator) -> None:
    p = 6
    planes = rng.integers(0, p + 1, size=(30, 23))
    planes[:4] = p                           # baseline-like rows
    planes[4:6] = 0                          # queries that see nothing
    planes[6:9, 15:] = 0                     # causal: hidden suffix
    makespan, finish = frontend_schedule(planes, lanes, lat, p)
    for r, row in enumerate(planes):
        want = _cycle_sim_pipelined(row, lanes, lat, p)
        assert list(finish[r]) == want, f"row {r}: {list(finish[r])} != {want}"
        assert makespan[r] == max(want, default=0), f"row {r}"


@pytest.mark.parametrize("lanes,full", [(8, 8), (3, 5), (4, 9)])
def test_padded_dispatch_matches_cycle_simulation(lanes: int, full: int,
                                                  rng: np.random.Generator) -> None:
    """Two planes per cycle: a key that requests its last slot holds its lane ``full``
    (fe_full_key_cycles) cycles."""
    p, lat = 6, 2
    planes = rng.integers(0, p + 1, size=(30, 23))
    planes[:4] = p
    planes[6:9, 15:] = 0
    makespan, finish = frontend_schedule(planes, lanes, lat, p, full)
    for r, row in enumerate(planes):
        want = _cycle_sim_pipelined(row, lanes, lat, p, full)
        assert list(finish[r]) == want, f"row {r}: {list(finish[r])} != {want}"
        assert makespan[r] == max(want, default=0), f"row {r}"


def test_two_planes_slots_reads_and_config() -> None:
    from leopard_rtl.config import ConfigError
    cfg = preset("paper").replace(planes_per_cycle=2)          # p = 12, 8 lanes
    assert cfg.plane_slots == 6 and cfg.fe_full_key_cycles == 8 and cfg.cycle_model_exact
    odd = cfg.replace(qk_bits=7, lanes=4)
    assert odd.plane_slots == 4 and odd.fe_full_key_cycles == 4
    assert list(request_slots(np.array([0, 1, 2, 3, 7]), odd)) == [0, 1, 1, 2, 4]
    # slots requested: min(slots + 2, 4); planes read: 2 per slot, the last slot one
    assert list(k_plane_reads(np.array([0, 2, 4, 6, 7]), odd)) == [0, 6, 7, 7, 7]
    one = preset("paper")
    assert list(k_plane_reads(np.array([0, 1, 10, 12]), one)) == [0, 3, 12, 12]
    assert not cfg.replace(lanes=10).cycle_model_exact          # 10 > 6 + 2 + 1
    with pytest.raises(ConfigError, match="planes_per_cycle"):
        preset("paper").replace(planes_per_cycle=3)
    with pytest.raises(ConfigError, match="planes_per_cycle"):
        preset("paper").with_overrides(["planes_per_cycle=x"])
    # survivors of 8 lanes at 6 slots are padded to 8 cycles: 16 survivors, 2 rounds
    assert frontend_schedule(request_slots(np.array([12] * 16), cfg), 8, 2, 6, 8)[0] == 8 + 6 + 2


def test_two_planes_survivor_queue_never_backs_up(rng: np.random.Generator) -> None:
    """With the padding, the survivors of one query never wait more than ``lanes + 1``
    deep in the one-per-cycle queue (so the queue of 2 lanes + 4 entries never stalls)."""
    for lanes, p in ((8, 12), (8, 13), (4, 5), (3, 4)):
        cfg = preset("paper").replace(lanes=lanes, qk_bits=p, planes_per_cycle=2)
        assert cfg.cycle_model_exact
        planes = rng.integers(1, p + 1, size=(60, 40))
        planes[:20] = p                                     # all survive
        mask = planes == p
        mk, fin = frontend_schedule(request_slots(planes, cfg), lanes, cfg.fe_decision_latency,
                                    cfg.plane_slots, cfg.fe_full_key_cycles)
        for r in range(planes.shape[0]):
            arrivals = np.bincount(fin[r][mask[r]], minlength=int(mk[r]) + 2)
            backlog = 0
            for a in arrivals:
                backlog = max(backlog + a - 1, 0)
                assert backlog <= lanes + 1, f"lanes={lanes} p={p} row {r}: backlog {backlog}"


def test_pipelined_dispatch_simple_cases() -> None:
    # 16 survivors of 12 planes on 8 lanes: two rounds, starting in cycle 0, result 2 late.
    assert frontend_schedule(np.array([12] * 16), 8, 2, 12)[0] == 12 + 12 + 2
    # A key pruned at plane 1 holds its lane 3 cycles (two wasted reads).
    assert list(frontend_schedule(np.array([1, 1, 1]), 1, 2, 12)[1]) == [3, 6, 9]
    # ... but never more than its planes.
    assert list(frontend_schedule(np.array([3, 4]), 1, 2, 4)[1]) == [5, 4 + 4 + 2]


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


def _queue_reference(finish: list[int], mask: list[bool], makespan: int) -> int:
    """Cycle-stepped survivor queue: entries become visible at finish + 1 (survivors) and
    makespan + 1 (end marker); one record leaves per cycle; a survivor leaves only when the
    entry behind it is visible; the last survivor leaves with the marker. Returns the
    commit cycle (one after the last record leaves)."""
    entries = sorted(f + 1 for f, m in zip(finish, mask, strict=True) if m)
    entries.append(makespan + 1)                  # end marker
    head = 0
    cycle = 0
    while True:
        if head == len(entries) - 1:               # only the marker left (empty query)
            if entries[head] <= cycle:
                return cycle + 1
        elif entries[head + 1] <= cycle:           # survivor with its successor visible
            if head + 1 == len(entries) - 1:       # ... which is the marker: both leave
                return cycle + 1
            head += 1
        cycle += 1


def test_survivor_commit_matches_queue_reference(rng: np.random.Generator) -> None:
    planes = rng.integers(1, 5, size=(200, 9))
    planes[:20, 5:] = 0                            # hidden keys
    mask = (rng.random((200, 9)) < 0.5) & (planes == 4)
    mask[20:40] = False                            # queries with no survivor
    makespan, finish = frontend_schedule(planes, 3)
    got = survivor_commit(finish, mask, makespan)
    for r in range(200):
        assert got[r] == _queue_reference(list(finish[r]), list(mask[r]), int(makespan[r]))


def test_core_schedule_recurrence(rng: np.random.Generator) -> None:
    cfg = preset("tiny")
    planes = rng.integers(1, 5, size=(3, 10, 12))
    mask = planes == 4
    sch = core_schedule(planes, mask, cfg)
    t = timing(cfg)
    makespan, finish = frontend_schedule(planes, cfg.lanes, t.fe_decision_latency, cfg.qk_bits)
    commit = survivor_commit(finish, mask, makespan)
    for h in range(3):
        fe_end = out_1 = 0
        outs: list[int] = []
        for i in range(10):
            start = max(fe_end, outs[i - 2] + 1 if i >= 2 else 0)
            assert sch["start"][h, i] == start
            fe_end = start + makespan[h, i] + t.fe_query_overhead
            out_1 = max(start + commit[h, i], out_1) + mask[h, i].sum() + t.be_query_overhead
            outs.append(out_1)
        assert list(sch["out"][h]) == outs
    assert np.array_equal(core_cycles(planes, mask, cfg), sch["out"][:, -1])


def test_baseline_cycles_and_speedup(rng: np.random.Generator) -> None:
    cfg = preset("minilm")
    t = random_trace(rng, heads=2, n_queries=16, n_keys=32, head_dim=32, qk_bits=12,
                     v_bits=12, kind="realistic", prune_quantile=0.8)
    res = run_golden(t, cfg)
    base = cfg.baseline()
    planes = np.full((2, 16, 32), 12)
    assert np.array_equal(res.baseline_cycles, core_cycles(planes, planes > 0, base))
    assert np.array_equal(res.cycles, core_cycles(res.planes_used, res.mask, cfg))
    assert (res.cycles < res.baseline_cycles).all()
    s = res.summary()
    assert s["total"]["speedup"] == round(res.baseline_cycles.sum() / res.cycles.sum(), 6)
