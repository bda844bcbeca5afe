"""Performance model: cycles per query and per head for a LeOPArd core (SPEC section 4).

Front end: ``lanes`` pipelined bit-serial lanes work on the keys of one query
(``leopard_rtl.hw.lane_array``), each reading ``planes_per_cycle`` (c) bit-planes of a key
per cycle: the lanes' unit of work is the request slot (:func:`request_slots`, ``ceil(r /
c)`` for a key that uses r planes; ``plane_slots`` for a whole key), and the sentences below
count slots where they say planes. Keys are assigned in key order to the lanes' prefetch
slots: lanes ``0 .. lanes - 1`` start keys ``0 .. lanes - 1`` in the accept cycle, then
each lane's next key is assigned in the cycle after it starts its current one (ties:
lowest lane index first). A lane runs its keys back to back from the accept cycle; a key
that uses r planes holds it for ``min(r + fe_decision_latency, qk_bits)`` cycles (the lane
keeps requesting planes until the bound test's decision comes back) and its result
appears ``r + fe_decision_latency`` cycles after its start. Keys hidden by the causal
mask cost nothing. A key that requests its last slot holds its lane
``fe_full_key_cycles`` cycles (``plane_slots``, padded to ``lanes`` with two planes per
cycle so that survivors never arrive faster than the back end takes them). A query's
front-end time is the cycle of its last result plus :attr:`Timing.fe_query_overhead`.

Back end: one survivor per cycle plus :attr:`Timing.be_query_overhead` per query
(the exp/MAC drain, reciprocal and normalization). Two stages: the accumulator reads
query i's stored survivors from ``t0(i)`` and holds its sums from ``t0(i) + n_i +
be_drain_cycles``; the query is handed off to the normalizer at ``h(i)``, the later of
that and query i-1's output; it is output ``be_norm_cycles`` after ``h(i)``; the
accumulator may start query i+1 from ``h(i) + be_release_latency``. Without
``overlap_norm`` that latency is ``be_norm_cycles`` (one query at a time,
``n_i + be_query_overhead`` each); with it, 1 (a second accumulator bank), so the
normalization of query i overlaps the accumulation of query i+1
(:func:`backend_step`).

Overlap: the survivor store is double-buffered, so the back end works on query i while
the front end works on query i+1; the front end may start query i only once the back end
has finished query i-2 (whose buffer half it reuses). A head's cycles are the back end's
finish time of its last query.

The constants in :class:`Timing` are those of the RTL, read from the configuration's
timing properties (the one place that states them); the RTL's tests check them against
simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leopard_rtl.config import LeopardConfig

__all__ = ["Timing", "timing", "request_slots", "k_plane_reads", "frontend_schedule",
           "frontend_query_cycles",
           "frontend_cycles", "backend_query_cycles", "backend_step",
           "pipeline_cycles", "backend_pipeline_cycles", "head_cycles"]


@dataclass(frozen=True)
class Timing:
    """Fixed per-query and per-key costs (cycles) of the pipeline stages."""

    #: Front end: cycles per query besides key work (the accept cycle).
    fe_query_overhead: int
    #: Back end: cycles per query besides one per survivor (reciprocal, normalization).
    be_query_overhead: int
    #: Front end: planes a lane requests after a key's deciding plane.
    fe_decision_latency: int = 0
    #: Back end: last survivor's store read to the sums including it, less one.
    be_drain_cycles: int = 0
    #: Back end: hand-off to the normalizer to output (``be_query_overhead`` without a drain).
    be_norm_cycles: int = 0
    #: Back end: hand-off to the accumulator's next start (``be_norm_cycles``: no overlap).
    be_release_latency: int = 0

    def __post_init__(self) -> None:
        if not self.be_norm_cycles:          # plain (fe, be) models: no overlap
            object.__setattr__(self, "be_norm_cycles",
                               self.be_query_overhead - self.be_drain_cycles)
        if not self.be_release_latency:
            object.__setattr__(self, "be_release_latency", self.be_norm_cycles)
        if self.be_drain_cycles + self.be_norm_cycles != self.be_query_overhead:
            raise ValueError("Timing: be_query_overhead must be be_drain_cycles + "
                             "be_norm_cycles")


def timing(cfg: LeopardConfig) -> Timing:
    """The pipeline constants of the RTL generated from ``cfg`` (its timing properties)."""
    return Timing(fe_query_overhead=cfg.fe_query_overhead,
                  be_query_overhead=cfg.be_query_overhead,
                  fe_decision_latency=cfg.fe_decision_latency,
                  be_drain_cycles=cfg.be_drain_cycles, be_norm_cycles=cfg.be_norm_cycles,
                  be_release_latency=cfg.be_release_latency)


def request_slots(planes_used: np.ndarray, cfg: LeopardConfig) -> np.ndarray:
    """Request slots (lane cycles of work) of each key: ``ceil(planes_used /
    planes_per_cycle)``, int64 of the same shape (0 for hidden keys)."""
    return -(-np.asarray(planes_used, dtype=np.int64) // cfg.planes_per_cycle)


def k_plane_reads(planes_used: np.ndarray, cfg: LeopardConfig) -> np.ndarray:
    """K bit-plane words read per key, int64 of the same shape: the planes of the slots a
    lane requests for it, ``min(slots + fe_decision_latency, plane_slots)`` slots of
    ``planes_per_cycle`` planes (the last slot holding the rest), i.e. ``planes_used``
    plus the speculative reads while the decision is pending; survivors read all
    ``qk_bits`` planes, hidden keys none."""
    pu = np.asarray(planes_used, dtype=np.int64)
    held = np.minimum(request_slots(pu, cfg) + cfg.fe_decision_latency, cfg.plane_slots)
    return np.where(pu > 0, np.minimum(held * cfg.planes_per_cycle, cfg.qk_bits), 0)


def frontend_schedule(planes_used: np.ndarray, lanes: int, latency: int = 0,
                      qk_bits: int | None = None, full_hold: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Prefetched in-order dispatch of each query's keys over ``lanes`` pipelined lanes.

    Parameters
    ----------
    planes_used : int array [..., Nk]
        Planes (request slots, :func:`request_slots`) each key uses (0 = hidden, costs
        nothing).
    lanes : int
        Number of lanes.
    latency : int
        ``fe_decision_latency``: planes requested after the deciding one. 0 gives the
        plain greedy list schedule (each key to the lane that frees first).
    qk_bits : int, optional
        Planes (slots) of a key (caps a key's lane time); required when ``latency > 0``.
    full_hold : int, optional
        Lane time of a key that requests its last plane (slot) (``fe_full_key_cycles``);
        default ``qk_bits``.

    Returns
    -------
    (makespan, finish) : int64 arrays [...] and [..., Nk]
        ``finish[j]``: the cycle, counted from the query's accept cycle 0, in which key j's
        result appears (its start + ``planes_used[j]`` + ``latency``; lanes start in
        cycle 0); 0 for hidden keys.
        ``makespan``: the last ``finish`` (0 without visible keys).
    """
    cost = np.asarray(planes_used, dtype=np.int64)
    lead = cost.shape
    cost = cost.reshape(-1, cost.shape[-1])
    rows = cost.shape[0]
    if latency > 0 and qk_bits is None:
        raise ValueError("frontend_schedule: qk_bits is required with latency > 0")
    hold = cost if latency == 0 else np.minimum(cost + latency, qk_bits)
    if full_hold is not None and qk_bits is not None and full_hold != qk_bits:
        hold = np.where(hold >= qk_bits, full_hold, hold)
    free = np.zeros((rows, lanes), dtype=np.int64)       # when each lane frees
    # Dispatch key: latency 0: the lane that frees first; otherwise the lane whose
    # current key started first (its prefetch slot empties the cycle after).
    order = free.copy() if latency == 0 else np.full((rows, lanes), -1, dtype=np.int64)
    finish = np.zeros_like(cost)
    idx = np.arange(rows)
    for j in range(cost.shape[1]):
        c = cost[:, j]
        if not c.any():
            continue
        lane = np.argmin(order, axis=1)        # lowest index on ties
        start = free[idx, lane]
        vis = c > 0
        finish[:, j] = np.where(vis, start + c + latency, 0)
        free[idx, lane] = np.where(vis, start + hold[:, j], start)
        if latency == 0:
            order[idx, lane] = free[idx, lane]
        else:
            order[idx, lane] = np.where(vis, start, order[idx, lane])
    makespan = finish.max(axis=1, initial=0)
    return makespan.reshape(lead[:-1]), finish.reshape(lead)


def frontend_query_cycles(planes_used: np.ndarray, lanes: int, overhead: int = 0,
                          latency: int = 0, qk_bits: int | None = None) -> np.ndarray:
    """Front-end cycles of each query with dynamic dispatch over ``lanes`` lanes.

    Parameters
    ----------
    planes_used : int array [..., Nk]
        Planes each key uses (0 = hidden, costs nothing).
    lanes : int
        Number of lanes.
    overhead : int
        Added to every query.
    latency, qk_bits : int
        As in :func:`frontend_schedule`.

    Returns
    -------
    int64 array [...]
        Makespan of :func:`frontend_schedule`, plus ``overhead``.
    """
    return frontend_schedule(planes_used, lanes, latency, qk_bits)[0] + overhead


def frontend_cycles(planes_used: np.ndarray, cfg: LeopardConfig) -> np.ndarray:
    """Front-end cycles of each query of the RTL generated from ``cfg`` (int64 [...])."""
    t = timing(cfg)
    return frontend_schedule(request_slots(planes_used, cfg), cfg.lanes,
                             t.fe_decision_latency, cfg.plane_slots,
                             cfg.fe_full_key_cycles)[0] + t.fe_query_overhead


def backend_query_cycles(survivors: np.ndarray, overhead: int) -> np.ndarray:
    """Back-end cycles of each query: one per survivor plus ``overhead``."""
    return np.asarray(survivors, dtype=np.int64) + overhead


def pipeline_cycles(fe: np.ndarray, be: np.ndarray) -> np.ndarray:
    """Cycles per head of the double-buffered front/back-end pipeline.

    Parameters
    ----------
    fe, be : int array [H, Nq]
        Per-query front-end and back-end times.

    Returns
    -------
    int64 array [H]
        Finish time of the last query's back end.
    """
    fe = np.asarray(fe, dtype=np.int64)
    be = np.asarray(be, dtype=np.int64)
    H, Nq = fe.shape
    fe_end = np.zeros(H, dtype=np.int64)
    be_end = np.zeros(H, dtype=np.int64)
    be_end_prev2 = np.zeros(H, dtype=np.int64)   # back end finish of query i-2
    for i in range(Nq):
        fe_start = np.maximum(fe_end, be_end_prev2)
        fe_end = fe_start + fe[:, i]
        be_start = np.maximum(fe_end, be_end)
        be_end_prev2 = be_end
        be_end = be_start + be[:, i]
    return be_end


def backend_step(commit: np.ndarray, n: np.ndarray, h_prev: np.ndarray,
                 out_prev: np.ndarray, t: Timing) -> tuple[np.ndarray, np.ndarray]:
    """One query through the back end's two stages (accumulate, normalize).

    Parameters
    ----------
    commit : int array [H]
        Cycle from which the query is committed in the survivor store.
    n : int array [H]
        Its stored survivors.
    h_prev, out_prev : int array [H]
        Hand-off and output cycles of the previous query (very negative for none).
    t : Timing

    Returns
    -------
    (h, out) : int64 arrays [H]
        ``h = max(max(commit, h_prev + be_release_latency) + n + be_drain_cycles,
        out_prev)`` and ``out = h + be_norm_cycles`` (the cycle ``out.valid`` rises).
    """
    t0 = np.maximum(commit, h_prev + t.be_release_latency)
    h = np.maximum(t0 + n + t.be_drain_cycles, out_prev)
    return h, h + t.be_norm_cycles


_NONE = np.iinfo(np.int64).min // 4


def backend_pipeline_cycles(fe: np.ndarray, n: np.ndarray, t: Timing) -> np.ndarray:
    """Cycles per head of the double-buffered pipeline with the two-stage back end.

    Like :func:`pipeline_cycles` (query i's front end starts once the store half of
    query i-2 is free, ``h(i-2) + be_release_latency``, and takes ``fe[:, i]`` cycles;
    then it is committed), with the back end of :func:`backend_step`. Without overlap
    (``be_release_latency == be_norm_cycles``) it equals :func:`pipeline_cycles` with
    ``be = n + be_query_overhead``.

    Parameters
    ----------
    fe, n : int array [H, Nq]
        Per-query front-end times and stored survivors.
    t : Timing

    Returns
    -------
    int64 array [H]
        The last query's output cycle.
    """
    fe = np.asarray(fe, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    H, Nq = fe.shape
    fe_end = np.zeros(H, np.int64)
    hs = [np.full(H, _NONE), np.full(H, _NONE)]      # hand-offs of queries i-2, i-1
    out = np.zeros(H, np.int64)
    for i in range(Nq):
        fe_end = np.maximum(fe_end, hs[0] + t.be_release_latency) + fe[:, i]
        h, out = backend_step(fe_end, n[:, i], hs[1], out, t)
        hs = [hs[1], h]
    return out


def head_cycles(planes_used: np.ndarray, survivors: np.ndarray,
                cfg: LeopardConfig) -> np.ndarray:
    """Predicted cycles per head: int64 [H] from planes_used [H, Nq, Nk] and survivors."""
    fe = frontend_cycles(planes_used, cfg)
    return backend_pipeline_cycles(fe, survivors, timing(cfg))


def survivor_commit(finish: np.ndarray, mask: np.ndarray,
                    makespan: np.ndarray) -> np.ndarray:
    """Cycle (from the query's accept) in which the back end commits a query's survivors.

    A key's result is written into the front end's survivor queue in the cycle it
    appears, ``finish`` (:func:`frontend_schedule`), and the query's end marker in the
    cycle of the query's last result, ``makespan``; entries are visible to the queue's
    output from the next cycle. The queue emits one record per cycle, a survivor only once
    the entry behind it is visible (so its ``last`` bit is known), the last survivor
    together with the end marker, and an empty query as the marker alone. With survivors
    visible at sorted times ``v_1 <= ... <= v_n`` and the marker at
    ``v_(n+1) = makespan + 1``, the last record leaves at
    ``e = max_(k=2..n+1) (v_k + n + 1 - k)`` (the D/1 queue's departure time; ``e = v_1``
    when n = 0), the back end's store takes it in that cycle and commits the query at
    ``e + 1``.
    """
    n_keys = finish.shape[-1]
    v = np.where(mask, finish + 1, np.iinfo(np.int64).min // 4)
    v = np.sort(v, axis=-1)[..., ::-1]                    # descending: v_n first
    n = mask.sum(axis=-1)
    # rank from the end: descending position p = 0 is k = n, so v_k + n + 1 - k = v + 1 + p;
    # k >= 2 means p <= n - 2.
    pos = np.arange(n_keys)
    cand = np.where(pos <= (n[..., None] - 2), v + 1 + pos, np.iinfo(np.int64).min // 4)
    last = np.maximum(makespan + 1, cand.max(axis=-1, initial=np.iinfo(np.int64).min // 4))
    return last + 1


def core_schedule(planes_used: np.ndarray, mask: np.ndarray,
                  cfg: LeopardConfig) -> dict[str, np.ndarray]:
    """Exact per-query timing of the core (``leopard_rtl.hw.core.LeopardCore``), [H, Nq] each.

    With queries offered back to back and ``out`` always ready: the front end accepts
    query i at ``fe_start(i) = max(fe_end(i-1), out(i-k) + 1, h(i-2) +
    be_release_latency)`` (at most ``k = cfg.queries_in_flight`` queries in flight, and
    a free store half; without ``overlap_norm`` the last term never binds), is busy
    ``makespan + fe_query_overhead`` cycles, the back end commits the survivors at
    ``fe_start(i) + survivor_commit`` and hands off and outputs as :func:`backend_step`
    (without ``overlap_norm``:
    ``out(i) = max(commit(i), out(i-1)) + survivors + be_query_overhead``). Exact while the
    survivor queue never fills, which holds when ``lanes <= qk_bits`` (each lane produces at
    most one survivor per ``qk_bits`` cycles, the queue drains one per cycle and holds
    ``2 (lanes + 1)`` or more); with more lanes it is a lower bound.
    """
    t = timing(cfg)
    mask = np.asarray(mask, bool)
    H, Nq, _ = mask.shape
    makespan, finish = frontend_schedule(request_slots(planes_used, cfg), cfg.lanes,
                                         t.fe_decision_latency, cfg.plane_slots,
                                         cfg.fe_full_key_cycles)
    commit_rel = survivor_commit(finish, mask, makespan)
    fe_len = makespan + t.fe_query_overhead
    n = mask.sum(axis=-1)
    start = np.zeros((H, Nq), np.int64)
    out = np.zeros((H, Nq), np.int64)
    hand = np.full((H, Nq), _NONE)
    fe_end = np.zeros(H, np.int64)
    k = cfg.queries_in_flight
    for i in range(Nq):
        s = fe_end.copy()
        if i >= k:
            s = np.maximum(s, out[:, i - k] + 1)
        if i >= 2:
            s = np.maximum(s, hand[:, i - 2] + t.be_release_latency)
        start[:, i] = s
        fe_end = s + fe_len[:, i]
        commit = s + commit_rel[:, i]
        prev = out[:, i - 1] if i else np.zeros(H, np.int64)
        h_prev = hand[:, i - 1] if i else np.full(H, _NONE)
        # The back end reads the stored survivors only (a survivor-store overflow keeps
        # the first survivor_capacity).
        hand[:, i], out[:, i] = backend_step(
            commit, np.minimum(n[:, i], cfg.survivor_capacity), h_prev, prev, t)
    return {"start": start, "out": out, "handoff": hand, "fe_cycles": fe_len}


def core_cycles(planes_used: np.ndarray, survivors_mask: np.ndarray,
                cfg: LeopardConfig) -> np.ndarray:
    """Cycles per head of the core: first query accepted to last output taken, int64 [H]."""
    sch = core_schedule(planes_used, survivors_mask, cfg)
    return sch["out"][:, -1] - sch["start"][:, 0]
