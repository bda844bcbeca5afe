"""Performance model: cycles per query and per head for a LeOPArd core (SPEC section 4).

Front end: ``lanes`` bit-serial lanes work on the keys of one query. Keys are dispatched
in key order; each goes to the lane that frees first (lowest index on ties) and occupies
it for ``planes_used`` cycles; a lane that finishes a key takes the next one on the next
cycle, so there is no idle cycle between keys. Keys hidden by the causal mask cost
nothing. A query's front-end time is the finish time of its last key plus
:attr:`Timing.fe_query_overhead`.

Back end: one survivor per cycle plus :attr:`Timing.be_query_overhead` per query
(reciprocal and normalization).

Overlap: the survivor store is double-buffered, so the back end works on query i while
the front end works on query i+1; the front end may start query i only once the back end
has finished query i-2 (whose buffer half it reuses). A head's cycles are the back end's
finish time of its last query.

The constants in :class:`Timing` are those of the RTL; :func:`timing` is the one place
that states them, and the RTL's tests check them against simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leopard_rtl.config import LeopardConfig

__all__ = ["Timing", "timing", "frontend_query_cycles", "backend_query_cycles",
           "pipeline_cycles", "head_cycles"]


@dataclass(frozen=True)
class Timing:
    """Fixed per-query costs (cycles) of the pipeline stages."""

    #: Front end: cycles per query besides key work (loading the query row and Q+).
    fe_query_overhead: int
    #: Back end: cycles per query besides one per survivor (reciprocal, normalization).
    be_query_overhead: int


def timing(cfg: LeopardConfig) -> Timing:
    """The pipeline constants of the RTL generated from ``cfg``."""
    # Back end (leopard_rtl.backend.query_overhead): 5 cycles to drain the exp/MAC
    # pipeline, 1 to normalize the sum, recip_bits + 1 quotient bits of the restoring
    # divider (one per cycle, fused with the row's shift-and-add products), 1 to round
    # and load the output register.
    return Timing(fe_query_overhead=1, be_query_overhead=cfg.recip_width + 7)


def frontend_query_cycles(planes_used: np.ndarray, lanes: int,
                          overhead: int = 0) -> np.ndarray:
    """Front-end cycles of each query with dynamic dispatch over ``lanes`` lanes.

    Parameters
    ----------
    planes_used : int array [..., Nk]
        Cost of each key in cycles (0 = hidden, costs nothing).
    lanes : int
        Number of lanes.
    overhead : int
        Added to every query.

    Returns
    -------
    int64 array [...]
        Makespan of the greedy in-order list schedule, plus ``overhead``.
    """
    cost = np.asarray(planes_used, dtype=np.int64)
    lead = cost.shape[:-1]
    cost = cost.reshape(-1, cost.shape[-1])
    rows = cost.shape[0]
    free = np.zeros((rows, lanes), dtype=np.int64)
    idx = np.arange(rows)
    for j in range(cost.shape[1]):
        c = cost[:, j]
        if not c.any():
            continue
        lane = np.argmin(free, axis=1)          # first lane to free up, lowest index
        free[idx, lane] += c
    return (free.max(axis=1) + overhead).reshape(lead)


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


def head_cycles(planes_used: np.ndarray, survivors: np.ndarray,
                cfg: LeopardConfig) -> np.ndarray:
    """Predicted cycles per head: int64 [H] from planes_used [H, Nq, Nk] and survivors."""
    t = timing(cfg)
    fe = frontend_query_cycles(planes_used, cfg.lanes, t.fe_query_overhead)
    be = backend_query_cycles(survivors, t.be_query_overhead)
    return pipeline_cycles(fe, be)
