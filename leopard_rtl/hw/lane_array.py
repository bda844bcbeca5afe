"""Lane array with dynamic key dispatch (SPEC section 4, block 2)."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .lane import QKLane, adder_tree
from .threshold import PlaneThresholds

__all__ = ["LaneArray"]


class LaneArray(wiring.Component):
    """``lanes`` pipelined :class:`~leopard_rtl.hw.lane.QKLane` lanes on keys of one query.

    Holds the query register (row, ``Q+``, ``n_visible``) and the query's per-plane
    thresholds (:class:`~leopard_rtl.hw.threshold.PlaneThresholds`, registered once and
    broadcast), and dispatches keys ``0 .. n_visible - 1`` in key order into the lanes'
    prefetch slots: in the accept cycle, lanes ``0 .. lanes - 1`` start keys
    ``0 .. lanes - 1`` directly; afterwards, in every advancing cycle, the lanes whose slot
    is empty
    (a registered flag) receive the next keys in lane-index order. A lane empties its
    slot when it starts the key in it, so each lane's next key is assigned the cycle
    after it starts its current one, and a lane runs its keys back to back. No signal
    crosses lanes in the lanes' request path. This is exactly the schedule of
    :func:`sim.perf.frontend_schedule`.

    Timing. ``start`` (with ``advance``) accepts a query: it must only be raised while not
    ``active``. The lanes start their first keys in the accept cycle; ``done`` is high in the
    cycle the query's last result appears (or in the accept cycle itself when
    ``n_visible == 0``), and the array is free to accept the next query in the cycle after
    ``done``. Unstalled, a query occupies the array for ``M + 1`` cycles, ``M`` the
    makespan of :func:`sim.perf.frontend_schedule`. Results are tagged with their key
    index (up to ``lanes`` per cycle, registered, in ``results``).

    No handshake inside: ``advance`` low freezes the whole array (the front end drops it
    when an output cannot take this cycle's results). Reset: not active, all lanes idle.

    Members
    -------
    start : In(1)
        Accept ``query``/``n_visible`` this cycle if it advances.
    query : In(layouts.fe_q_row(cfg))
        The query row (aligned: ``q'`` with ``cfg.k_align``), sampled at ``start``.
    n_visible : In(unsigned(key_count_bits))
    advance : In(1)
    threshold : In(signed(threshold_bits))
        ``Th``, stable from the cycle after ``start`` for the whole query.
    early_termination, pruning : In(1)
    margin : In(unsigned(margin_frac_bits))
        Only with a margin (``cfg.margin > 0``): the margin register, stable like
        ``threshold``; the array also registers ``sum |q_i|`` at accept.
    planes : In(ArrayLayout(unsigned(planes_per_cycle * head_dim), lanes))
        K-buffer read data, one plane slot per lane.
    read : Out(ArrayLayout(layouts.kbuf_read(cfg), lanes))
        K-buffer read requests.
    results : Out(ArrayLayout(layouts.lane_result(cfg), lanes))
    done : Out(1)
        The query ends in this (advancing) cycle.
    ending : Out(1)
        ``done`` before the ``advance`` gate (the query ends if this cycle advances).
    active : Out(1)
        A query is in progress.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "start": In(1),
            "query": In(layouts.fe_q_row(cfg)),
            "n_visible": In(unsigned(cfg.key_count_bits)),
            "advance": In(1),
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "planes": In(data.ArrayLayout(unsigned(cfg.planes_per_cycle * cfg.head_dim),
                                          cfg.lanes)),
            "read": Out(data.ArrayLayout(layouts.kbuf_read(cfg), cfg.lanes)),
            "results": Out(data.ArrayLayout(layouts.lane_result(cfg), cfg.lanes)),
            "done": Out(1),
            "ending": Out(1),
            "active": Out(1),
        }
        if cfg.margin:
            sig["margin"] = In(unsigned(cfg.margin_frac_bits))
        super().__init__(sig)

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        n = cfg.lanes
        kw = cfg.key_count_bits + n.bit_length()     # candidates may run past n_visible

        q_reg = Signal(layouts.fe_q_row(cfg), reset_less=True)
        qpos = Signal(signed(cfg.fe_qsum_bits), reset_less=True)
        n_vis = Signal(unsigned(cfg.key_count_bits), reset_less=True)
        next_key = Signal(unsigned(kw), reset_less=True)
        pending = Signal(range(cfg.max_keys + 1))    # keys started, result not yet out
        active = Signal()

        accept = Signal()
        m.d.comb += accept.eq(self.start & self.advance)

        # Per-plane thresholds: from Th and Q+ (both registered at accept), registered.
        m.submodules.planes_t = pt = PlaneThresholds(cfg)
        t_reg = Signal.like(pt.t, reset_less=True)
        m.d.comb += [pt.threshold.eq(self.threshold), pt.qpos.eq(qpos)]
        m.d.sync += t_reg.eq(pt.t)
        if cfg.margin:
            qabs = Signal(unsigned(cfg.fe_qsum_bits), reset_less=True)
            m.d.comb += [pt.qabs.eq(qabs), pt.margin.eq(self.margin)]
            with m.If(accept):
                m.d.sync += qabs.eq(adder_tree([Mux(self.query[i] < 0, -self.query[i],
                                                    self.query[i])
                                                for i in range(cfg.head_dim)]))

        lanes = []
        for i in range(n):
            lane = QKLane(cfg)
            m.submodules[f"lane{i}"] = lane
            lanes.append(lane)
            m.d.comb += [
                lane.query.eq(q_reg),
                lane.thresholds.eq(t_reg),
                lane.early_termination.eq(self.early_termination),
                lane.pruning.eq(self.pruning),
                lane.advance.eq(self.advance),
                lane.plane.eq(self.planes[i]),
                self.read[i].eq(lane.read),
                self.results[i].eq(lane.result),
            ]

        # The accepted query's first keys start at once; the running query's next keys go
        # into empty prefetch slots. Every input of the fill chain is a register.
        base = Signal(unsigned(kw))
        m.d.comb += base.eq(next_key)
        offset = Signal(unsigned(n.bit_length()), name="offset0")
        fills = []
        for i, lane in enumerate(lanes):
            cand = Signal(unsigned(kw), name=f"cand{i}")
            fill = Signal(name=f"fill{i}")
            m.d.comb += [
                lane.start.eq(self.start & (self.n_visible > i)),
                lane.start_key.eq(i),
                cand.eq(base + offset),
                fill.eq(active & lane.empty & (cand < n_vis)),
                lane.fill.eq(fill),
                lane.fill_key.eq(cand),
            ]
            fills.append(fill)
            nxt = Signal(unsigned(n.bit_length()), name=f"offset{i + 1}")
            m.d.comb += nxt.eq(offset + lane.empty)
            offset = nxt
        n_filled = Signal(unsigned(n.bit_length()))
        n_taken = Signal(unsigned(n.bit_length()))
        n_results = Signal(unsigned(n.bit_length()))
        m.d.comb += [
            n_filled.eq(adder_tree(fills)),
            n_taken.eq(adder_tree([lane.take for lane in lanes])),
            n_results.eq(adder_tree([lane.result.valid for lane in lanes])),
        ]

        all_empty = Signal()
        m.d.comb += all_empty.eq(Cat(*[lane.empty for lane in lanes]).all())
        finishing = Signal()
        m.d.comb += finishing.eq(active & (next_key >= n_vis) & all_empty
                                 & (pending == n_results))
        m.d.comb += [
            self.ending.eq(finishing | (self.start & (self.n_visible == 0))),
            self.done.eq(self.advance & self.ending),
            self.active.eq(active),
        ]

        with m.If(accept):
            m.d.sync += [
                q_reg.eq(self.query),
                qpos.eq(adder_tree([Mux(self.query[i] > 0, self.query[i], 0)
                                    for i in range(cfg.head_dim)])),
                n_vis.eq(self.n_visible),
                next_key.eq(n_taken),
                pending.eq(n_taken),
                active.eq(self.n_visible != 0),
            ]
        with m.Elif(self.advance & active):
            m.d.sync += [next_key.eq(next_key + n_filled),
                         pending.eq(pending + n_taken - n_results)]
            with m.If(finishing):
                m.d.sync += active.eq(0)
        return m
