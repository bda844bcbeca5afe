"""Performance model of the overlapped normalization (``overlap_norm``): the two-stage back
end against a cycle-stepped reference, the core recurrence, config facts, golden parity."""

from __future__ import annotations

import numpy as np
import pytest

from leopard_rtl import preset
from leopard_rtl.config import ConfigError
from sim.golden import run_golden
from sim.perf import (
    backend_pipeline_cycles,
    core_cycles,
    core_schedule,
    frontend_schedule,
    pipeline_cycles,
    survivor_commit,
    timing,
)
from sim.vectors import random_trace


def _cycle_sim_backend(fe: list[int], n: list[int], drain: int, norm: int,
                       overlap: bool) -> int:
    """Cycle-stepped back end fed one record per cycle, as the back-end testbench does.

    Query i's ``fe[i]`` records are offered back to back and accepted while the store half
    being written is free; the half is committed (visible) the cycle after the last
    record. The accumulator, idle with a visible committed half, starts and is done
    (holds the sums) ``n + drain`` cycles later; in a cycle where it is done and the
    normalizer is free the query is handed off; the normalizer outputs ``norm`` cycles
    later and is free again from that cycle. Store half release: at the hand-off
    (``overlap``; the accumulator is idle from the next cycle) or in the output register's
    load cycle (``norm - 1`` after the hand-off; idle from the output cycle). Returns the
    last output cycle.
    """
    nq = len(fe)
    full = [False, False]          # visible state at the start of a cycle
    wr_half = rd_half = 0
    q_w, left = 0, fe[0]
    a_state, a_q, a_done_at, a_idle_at = "IDLE", 0, 0, 0
    b_free = 0
    releases: dict[int, int] = {}  # cycle -> half released at its end
    outs: list[int] = []
    cycle = 0
    while len(outs) < nq:
        nxt_full = list(full)
        # writer
        if q_w < nq and not full[wr_half]:
            left -= 1
            if left == 0:
                nxt_full[wr_half] = True
                wr_half ^= 1
                q_w += 1
                left = fe[q_w] if q_w < nq else 0
        # accumulator
        if a_state == "IDLE" and cycle >= a_idle_at and full[rd_half]:
            a_state, a_done_at = "RUN", cycle + n[a_q] + drain
        if a_state == "RUN" and cycle == a_done_at:
            a_state = "DONE"
        if a_state == "DONE" and cycle >= b_free:          # hand-off
            outs.append(cycle + norm)
            b_free = cycle + norm
            rel = cycle if overlap else cycle + norm - 1
            releases[rel] = rd_half
            a_idle_at = rel + 1
            rd_half ^= 1
            a_state, a_q = "IDLE", a_q + 1
        if cycle in releases:
            nxt_full[releases.pop(cycle)] = False
        full = nxt_full
        cycle += 1
    return outs[-1]


@pytest.mark.parametrize("overlap", [False, True])
def test_backend_pipeline_matches_cycle_simulation(overlap: bool,
                                                   rng: np.random.Generator) -> None:
    cfg = preset("tiny").replace(overlap_norm=overlap)
    t = timing(cfg)
    surv = rng.integers(0, 17, size=(40, 9))
    surv[:8] = 0                              # back-to-back empty queries
    surv[8:12] = 16                           # all survivors
    surv[12:16, ::2] = 0
    fe = np.maximum(surv, 1)
    got = backend_pipeline_cycles(fe, surv, t)
    for h in range(surv.shape[0]):
        want = _cycle_sim_backend(list(fe[h]), list(surv[h]), t.be_drain_cycles,
                                  t.be_norm_cycles, overlap)
        assert got[h] == want, f"row {h} surv={list(surv[h])}"


def test_no_overlap_is_the_old_pipeline(rng: np.random.Generator) -> None:
    cfg = preset("paper")
    t = timing(cfg)
    fe = rng.integers(1, 60, size=(6, 25))
    n = rng.integers(0, 40, size=(6, 25))
    assert np.array_equal(backend_pipeline_cycles(fe, n, t),
                          pipeline_cycles(fe, n + t.be_query_overhead))


def test_overlap_bounds(rng: np.random.Generator) -> None:
    """Never slower than without overlap; a query costs at least its normalization."""
    for name in ("tiny", "paper", "minilm"):
        on = timing(preset(name).replace(overlap_norm=True))
        off = timing(preset(name))
        fe = rng.integers(1, 30, size=(6, 25))
        n = rng.integers(0, 30, size=(6, 25))
        c_on, c_off = backend_pipeline_cycles(fe, n, on), backend_pipeline_cycles(fe, n, off)
        assert (c_on <= c_off).all(), name
        assert (c_on >= 25 * on.be_norm_cycles).all(), name
        # Empty queries back to back: one normalization each, plus the first's drain.
        zero = np.zeros((1, 25), np.int64)
        assert backend_pipeline_cycles(zero + 1, zero, on)[0] == (
            1 + on.be_drain_cycles + 25 * on.be_norm_cycles), name


def test_config_facts() -> None:
    for name in ("tiny", "paper", "minilm"):
        off = preset(name)
        on = off.replace(overlap_norm=True)
        for c in (off, on):
            assert c.be_query_overhead == c.be_drain_cycles + c.be_norm_cycles
            assert c.be_norm_cycles == (2 + c.recip_prep_cycles + c.recip_digits
                                        + c.norm_latency)
        assert on.be_query_overhead == off.be_query_overhead
        assert (off.be_release_latency, on.be_release_latency) == (off.be_norm_cycles, 1)
        assert (off.queries_in_flight, on.queries_in_flight) == (2, 3)
        assert on.derived()["be_release_latency"] == 1
    assert preset("paper").with_overrides(["overlap_norm=1"]).overlap_norm is True
    with pytest.raises(ConfigError, match="overlap_norm"):
        preset("tiny").replace(overlap_norm=1)
    with pytest.raises(ConfigError, match="overlap_norm"):
        preset("tiny").with_overrides(["overlap_norm=maybe"])


def test_core_schedule_overlap_recurrence(rng: np.random.Generator) -> None:
    """Query i enters after query i-3's output and query i-2's hand-off + 1; the back end
    hands off at max(accumulator done, previous output)."""
    cfg = preset("tiny").replace(overlap_norm=True)
    t = timing(cfg)
    planes = rng.integers(1, 5, size=(3, 12, 12))
    mask = planes == 4
    mask[:, 3:6] = False                      # empty queries in a row
    mask[:, 7:9] = True
    planes[:, 7:9] = 4
    sch = core_schedule(planes, mask, cfg)
    makespan, finish = frontend_schedule(planes, cfg.lanes, t.fe_decision_latency, cfg.qk_bits)
    commit = survivor_commit(finish, mask, makespan)
    D, B = cfg.be_drain_cycles, cfg.be_norm_cycles
    for h in range(3):
        fe_end = 0
        outs: list[int] = []
        hands: list[int] = []
        for i in range(12):
            start = max([fe_end] + ([outs[i - 3] + 1] if i >= 3 else [])
                        + ([hands[i - 2] + 1] if i >= 2 else []))
            assert sch["start"][h, i] == start, (h, i)
            fe_end = start + makespan[h, i] + t.fe_query_overhead
            t0 = max([start + commit[h, i]] + ([hands[-1] + 1] if i else []))
            hand = max([t0 + int(mask[h, i].sum()) + D] + ([outs[-1]] if i else []))
            hands.append(hand)
            outs.append(hand + B)
        assert list(sch["out"][h]) == outs
        assert list(sch["handoff"][h]) == hands


def test_golden_overlap_same_outputs_fewer_cycles(rng: np.random.Generator) -> None:
    cfg = preset("tiny")
    for kind in ("realistic", "adversarial"):
        tr = random_trace(rng, heads=2, n_queries=10, n_keys=cfg.max_keys, kind=kind,
                          prune_quantile=0.7 if kind != "adversarial" else None)
        off = run_golden(tr, cfg)
        on = run_golden(tr, cfg.replace(overlap_norm=True))
        for key in ("out", "mask", "planes_used", "all_pruned", "overflow"):
            assert np.array_equal(getattr(on, key), getattr(off, key)), key
        assert (on.cycles <= off.cycles).all() and (on.cycles < off.cycles).any(), kind
        assert np.array_equal(on.cycles, core_cycles(on.planes_used, on.mask,
                                                     cfg.replace(overlap_norm=True)))
