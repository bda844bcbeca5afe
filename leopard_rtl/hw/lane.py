"""The pipelined bit-serial Q.K lane (SPEC section 4, block 1)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .threshold import plane_threshold_shape

__all__ = ["QKLane", "adder_tree", "lane_groups"]


def adder_tree(terms: Sequence[Value]) -> Value:
    """Balanced sum of ``terms`` (depth ceil(log2 n) instead of a chain of n - 1 adders)."""
    terms = list(terms)
    if not terms:
        return Value.cast(0)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def lane_groups(cfg: LeopardConfig) -> int:
    """Partial sums a lane registers between its two adder-tree stages: ``min(4, head_dim)``.

    The first stage reduces the ``head_dim`` ANDed terms of a plane to this many sums
    (``ceil(log2 head_dim) - 2`` adder levels), the second adds them to ``2 A`` and compares
    (two levels, the accumulate and the threshold compare).
    """
    return min(4, cfg.head_dim)


class QKLane(wiring.Component):
    """One pipelined bit-serial Q.K lane: one K bit-plane request per cycle, MSB plane first.

    Computes, for each key it takes, ``A_r = 2 A_(r-1) + sum_i q_i b_i`` (the sign plane,
    r = 1, gives ``A_1 = -sum_i q_i b_i``) and terminates the key at the first r with
    ``A_r < T_r`` (the per-plane threshold of :class:`~leopard_rtl.hw.threshold.
    PlaneThresholds`, equivalent to ``UB_r < Th``) or after the last plane. Matches
    :func:`sim.golden.bitserial_prune` bit for bit: the reported ``planes`` is that
    function's ``planes_used`` (the plane that decided, not the planes read) and
    ``survivor`` its ``mask``; ``score`` is the exact ``S`` for survivors.

    Pipeline (one token per requested plane, all stages advance together with
    ``advance``):

    * request (cycle c): ``read`` asks the K buffer for plane k of the current key;
    * stage 1 (c + 1): the plane word arrives (``plane``), is ANDed with the query and
      reduced to :func:`lane_groups` partial sums; the plane's threshold ``T_(k+1)`` is
      selected; both are registered;
    * stage 2 (c + 2): ``A = 2 A + sum`` (``-sum`` for the sign plane), ``A < T`` (the sign
      plane compares with ``T_1`` directly, so a query's first keys may be requested in
      the cycle its thresholds are computed): the key
      ends when the threshold is crossed (early termination on) or at its last plane; the
      result is registered;
    * result (c + 3): ``result`` is valid for one cycle.

    Decision latency. The lane does not wait for a decision: it keeps requesting the
    key's next planes, so a key terminated at plane r has had planes ``r + 1 .. r + 2``
    requested as well (at most up to the last plane); those in-flight tokens are dropped
    in the cycle the result appears, and in that same cycle the lane starts its next key.
    A key that uses r planes thus holds the lane's request slot for
    ``min(r + cfg.fe_decision_latency, qk_bits)`` cycles (``qk_bits`` for survivors: a
    key's last plane needs no decision to end its requests). Tokens carry a one-bit key
    epoch, so the drop never touches the next key's tokens.

    Dispatch. The lane holds one prefetched key (``fill`` writes it when ``empty``); it
    takes that key, with no cycle lost, when idle or when its current key ends
    (``take`` pulses; the slot is empty from the next cycle). Nothing in the request path
    depends on other lanes.

    Reset: no key, no token, empty slot. The datapath registers have no reset.

    Parameters
    ----------
    cfg : LeopardConfig

    Members
    -------
    query : In(layouts.qk_row(cfg))
        The query row (held stable during a query).
    thresholds : In(ArrayLayout(plane_threshold_shape(cfg), qk_bits))
        ``T_1 .. T_p`` of the query (index r - 1), held stable during a query.
    early_termination, pruning : In(1)
        Effective switches (from :class:`~leopard_rtl.hw.threshold.ThresholdUnit`).
    advance : In(1)
        Clock enable of the whole lane.
    start : In(1)
        Take ``start_key`` now, bypassing the prefetch slot (only while idle with an empty
        slot: the query's first key, in its accept cycle).
    start_key : In(unsigned(key_index_bits))
    fill : In(1)
        Write ``fill_key`` into the prefetch slot (only while ``empty``).
    fill_key : In(unsigned(key_index_bits))
    plane : In(unsigned(head_dim))
        K-buffer read data: the plane requested in the previous advancing cycle, element
        i at bit i.
    empty : Out(1)
        The prefetch slot is empty (registered).
    take : Out(1)
        The lane starts a key (prefetched, or ``start_key``) in this cycle if it advances
        (not gated by ``advance``, which arrives late).
    read : Out(layouts.kbuf_read(cfg))
        The plane requested this cycle (to the K buffer).
    result : Out(layouts.lane_result(cfg))
        Registered; ``valid`` for one cycle per key, three cycles after the request of
        the plane that decided it.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "query": In(layouts.qk_row(cfg)),
            "thresholds": In(data.ArrayLayout(plane_threshold_shape(cfg), cfg.qk_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "advance": In(1),
            "start": In(1),
            "start_key": In(unsigned(cfg.key_index_bits)),
            "fill": In(1),
            "fill_key": In(unsigned(cfg.key_index_bits)),
            "plane": In(unsigned(cfg.head_dim)),
            "empty": Out(1),
            "take": Out(1),
            "read": Out(layouts.kbuf_read(cfg)),
            "result": Out(layouts.lane_result(cfg)),
        })

    @property
    def latency(self) -> int:
        """Cycles from the request of a key's deciding plane to its result."""
        return self._cfg.fe_decision_latency + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        p, d = cfg.qk_bits, cfg.head_dim
        kb = cfg.key_index_bits
        g = lane_groups(cfg)
        adv = self.advance
        rs = self.result

        # Request stage: the current key and the prefetch slot.
        cur_v = Signal(name="cur_valid")
        cur_key = Signal(unsigned(kb), reset_less=True)
        cur_plane = Signal(range(p), reset_less=True)
        cur_ep = Signal(reset_less=True)
        nxt_v = Signal(name="next_valid")
        nxt_key = Signal(unsigned(kb), reset_less=True)
        # Stage 1 and stage 2 tokens.
        s1_v = Signal(name="s1_valid")
        s1_key = Signal(unsigned(kb), reset_less=True)
        s1_plane = Signal(range(p), reset_less=True)
        s1_ep = Signal(reset_less=True)
        s2_v = Signal(name="s2_valid")
        s2_key = Signal(unsigned(kb), reset_less=True)
        s2_plane = Signal(range(p), reset_less=True)
        s2_ep = Signal(reset_less=True)
        s2_t = Signal(plane_threshold_shape(cfg), reset_less=True)
        s2_pp = [Signal(signed(cfg.qsum_bits), name=f"s2_pp{i}", reset_less=True)
                 for i in range(g)]
        acc = Signal(signed(cfg.score_bits), reset_less=True)
        # Result register (valid has a reset; the epoch and "ended early" go with it).
        res_v = Signal(name="res_valid")
        res_ep = Signal(reset_less=True)
        res_early = Signal(reset_less=True)
        res = Signal(layouts.lane_result(cfg), reset_less=True)

        # A key that ended before its last plane drops its tokens still in flight.
        kill = Signal()
        m.d.comb += kill.eq(res_v & res_early)
        kill_cur = Signal()
        m.d.comb += kill_cur.eq(kill & cur_v & (cur_ep == res_ep))

        take = Signal()
        cont = Signal()
        m.d.comb += [
            take.eq((nxt_v & (~cur_v | kill_cur)) | self.start),
            cont.eq(cur_v & ~kill_cur & ~take),
            self.take.eq(take),
            self.empty.eq(~nxt_v),
            self.read.en.eq(adv & (take | cont)),
            self.read.key.eq(Mux(self.start, self.start_key, Mux(take, nxt_key, cur_key))),
            self.read.plane.eq(Mux(take, 0, cur_plane)),
        ]
        new_ep = Signal()
        m.d.comb += new_ep.eq(Mux(take, ~cur_ep, cur_ep))
        with m.If(adv):
            m.d.sync += [s1_v.eq(take | cont), s1_key.eq(self.read.key),
                         s1_plane.eq(self.read.plane), s1_ep.eq(new_ep)]
            with m.If(take):
                m.d.sync += [cur_v.eq(1), cur_key.eq(self.read.key), cur_plane.eq(1),
                             cur_ep.eq(new_ep), nxt_v.eq(0)]
            with m.Elif(cont):
                m.d.sync += cur_plane.eq(cur_plane + 1)
                with m.If(cur_plane == p - 1):
                    m.d.sync += cur_v.eq(0)
            with m.Else():
                m.d.sync += cur_v.eq(0)
            with m.If(self.fill):
                m.d.sync += [nxt_v.eq(1), nxt_key.eq(self.fill_key)]

        # Stage 1: AND with the query, reduce to g partial sums; select the plane's T.
        terms = [Mux(self.plane[i], self.query[i], 0) for i in range(d)]
        bounds = [d * i // g for i in range(g + 1)]
        with m.If(adv):
            m.d.sync += [s2_v.eq(s1_v & ~(kill & (s1_ep == res_ep))), s2_key.eq(s1_key),
                         s2_plane.eq(s1_plane), s2_ep.eq(s1_ep),
                         s2_t.eq(self.thresholds[s1_plane])]
            m.d.sync += [s2_pp[i].eq(adder_tree(terms[bounds[i]:bounds[i + 1]]))
                         for i in range(g)]

        # Stage 2: accumulate (the sign plane negates: -x = ~x + 1 per partial sum) and
        # compare with the plane's threshold.
        first = Signal()
        m.d.comb += first.eq(s2_plane == 0)
        acc_new = Signal(signed(cfg.score_bits))
        m.d.comb += acc_new.eq(adder_tree(
            [Mux(first, ~s2_pp[i], s2_pp[i]) for i in range(g)]
            + [Mux(first, g, acc << 1)]))
        live = Signal()
        below = Signal()
        last = Signal()
        end = Signal()
        m.d.comb += [
            live.eq(s2_v & ~(kill & (s2_ep == res_ep))),
            below.eq(acc_new < Mux(first, self.thresholds[0], s2_t)),
            last.eq(s2_plane == p - 1),
            end.eq(live & (last | (self.early_termination & below))),
        ]
        with m.If(adv):
            m.d.sync += res_v.eq(end)
            with m.If(live):
                m.d.sync += acc.eq(acc_new)
            m.d.sync += [
                res_ep.eq(s2_ep),
                res_early.eq(~last),
                res.valid.eq(end),
                res.key.eq(s2_key),
                # At the last plane T_p = Th: S < Th prunes (pruning on), else it survives.
                res.survivor.eq(last & ~(self.pruning & below)),
                res.planes.eq(s2_plane + 1),
                res.score.eq(acc_new),
            ]
        m.d.comb += [rs.eq(res), rs.valid.eq(res_v)]
        return m
