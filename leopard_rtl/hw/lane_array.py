"""Lane array with dynamic key dispatch (SPEC section 4, block 2)."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .lane import QKLane, adder_tree

__all__ = ["LaneArray"]


class LaneArray(wiring.Component):
    """``lanes`` :class:`~leopard_rtl.lane.QKLane` lanes on different keys of one query.

    Holds the query register (row, ``Q+``, ``n_visible``) and dispatches keys
    ``0 .. n_visible - 1`` in key order: in every advancing cycle, the lanes that are free
    (idle, or finishing their key in this cycle) take the next keys, in lane-index order,
    several in one cycle if several are free. This is exactly the greedy list schedule of
    :func:`sim.perf.frontend_query_cycles` (each key goes to the lane that frees first,
    lowest index on ties), so a query whose keys need ``planes_used`` cycles each finishes
    its last key ``M = frontend_query_cycles(planes_used, lanes)`` cycles after the cycle
    it was accepted in.

    Timing. ``start`` (with ``advance``) accepts a query: it must only be raised while not
    ``active``. Keys start in the next cycle; ``done`` is high in the cycle the query's last
    key finishes (or in the accept cycle itself when ``n_visible == 0``), and the array is
    free to accept the next query in the cycle after ``done``. Unstalled, a query occupies
    the array for ``M + 1`` cycles. Results are tagged with their key index and reported in
    the cycle the key finishes (up to ``lanes`` per cycle, combinational, in ``results``).

    No handshake inside: ``advance`` low freezes the whole array (the front end drops it
    when an output cannot take this cycle's results). Reset: not active, all lanes idle.

    Members
    -------
    start : In(1)
        Accept ``query``/``n_visible`` this cycle.
    query : In(layouts.qk_row(cfg))
    n_visible : In(unsigned(key_count_bits))
    advance : In(1)
    threshold : In(signed(threshold_bits))
    early_termination, pruning : In(1)
    planes : In(ArrayLayout(unsigned(head_dim), lanes))
        K-buffer read data, one plane per lane.
    read : Out(ArrayLayout(layouts.kbuf_read(cfg), lanes))
        K-buffer read requests.
    results : Out(ArrayLayout(layouts.lane_result(cfg), lanes))
    done : Out(1)
        The query ends in this (advancing) cycle.
    active : Out(1)
        A query is in progress.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "start": In(1),
            "query": In(layouts.qk_row(cfg)),
            "n_visible": In(unsigned(cfg.key_count_bits)),
            "advance": In(1),
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "planes": In(data.ArrayLayout(unsigned(cfg.head_dim), cfg.lanes)),
            "read": Out(data.ArrayLayout(layouts.kbuf_read(cfg), cfg.lanes)),
            "results": Out(data.ArrayLayout(layouts.lane_result(cfg), cfg.lanes)),
            "done": Out(1),
            "active": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        n = cfg.lanes
        kw = cfg.key_count_bits + n.bit_length()     # candidates may run past n_visible

        q_reg = Signal(layouts.qk_row(cfg), reset_less=True)
        qpos = Signal(signed(cfg.qsum_bits), reset_less=True)
        n_vis = Signal(unsigned(cfg.key_count_bits), reset_less=True)
        next_key = Signal(unsigned(kw), reset_less=True)
        active = Signal()

        accept = Signal()
        m.d.comb += accept.eq(self.start & self.advance)

        lanes = []
        for i in range(n):
            lane = QKLane(cfg)
            m.submodules[f"lane{i}"] = lane
            lanes.append(lane)
            m.d.comb += [
                lane.query.eq(q_reg),
                lane.qpos.eq(qpos),
                lane.threshold.eq(self.threshold),
                lane.early_termination.eq(self.early_termination),
                lane.pruning.eq(self.pruning),
                lane.advance.eq(self.advance),
                lane.plane.eq(self.planes[i]),
                self.read[i].eq(lane.read),
                self.results[i].eq(lane.result),
            ]

        # Dispatch window: the accepted query's first keys, or the running query's next ones.
        base = Signal(unsigned(kw))
        limit = Signal(unsigned(cfg.key_count_bits))
        can = Signal()
        with m.If(accept):
            m.d.comb += [base.eq(0), limit.eq(self.n_visible), can.eq(1)]
        with m.Else():
            m.d.comb += [base.eq(next_key), limit.eq(n_vis), can.eq(active)]

        offset = Signal(unsigned(n.bit_length()), name="offset0")
        for i, lane in enumerate(lanes):
            cand = Signal(unsigned(kw), name=f"cand{i}")
            m.d.comb += [
                cand.eq(base + offset),
                lane.start.eq(can & lane.free & (cand < limit)),
                lane.start_key.eq(cand),
            ]
            nxt = Signal(unsigned(n.bit_length()), name=f"offset{i + 1}")
            m.d.comb += nxt.eq(offset + lane.free)
            offset = nxt
        n_started = Signal(unsigned(n.bit_length()))
        m.d.comb += n_started.eq(adder_tree([lane.start for lane in lanes]))

        all_free = Signal()
        m.d.comb += all_free.eq(Cat(*[lane.free for lane in lanes]).all())
        finishing = Signal()
        m.d.comb += finishing.eq(active & (next_key >= n_vis) & all_free)
        m.d.comb += [
            self.done.eq(self.advance & (finishing | (accept & (self.n_visible == 0)))),
            self.active.eq(active),
        ]

        with m.If(accept):
            m.d.sync += [
                q_reg.eq(self.query),
                qpos.eq(adder_tree([Mux(self.query[i] > 0, self.query[i], 0)
                                    for i in range(cfg.head_dim)])),
                n_vis.eq(self.n_visible),
                next_key.eq(n_started),
                active.eq(self.n_visible != 0),
            ]
        with m.Elif(self.advance & active):
            m.d.sync += next_key.eq(next_key + n_started)
            with m.If(finishing):
                m.d.sync += active.eq(0)
        return m
