"""The pipelined bit-serial Q.K lane (SPEC section 4, block 1)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Array, Module, Mux, Signal, signed, unsigned
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
    """Partial sums per plane a lane registers between its two adder-tree stages:
    ``min(4, head_dim) // planes_per_cycle`` (at least 1).

    The first stage reduces the ``head_dim`` ANDed terms of each plane of a slot to this
    many sums (``ceil(log2 head_dim) - 2`` adder levels with one plane per cycle, one more
    with two), the second adds the ``planes_per_cycle`` x this many sums to ``2 A`` (``4 A``)
    and compares (the same levels for c = 1 and 2).
    """
    return max(1, min(4, cfg.head_dim) // cfg.planes_per_cycle)


class QKLane(wiring.Component):
    """One pipelined bit-serial Q.K lane: one K plane-slot request per cycle, MSB plane first.

    Computes, for each key it takes, ``A_r = 2 A_(r-1) + sum_i q_i b_i`` (the sign plane,
    r = 1, gives ``A_1 = -sum_i q_i b_i``) and terminates the key at the first r with
    ``A_r < T_r`` (the per-plane threshold of :class:`~leopard_rtl.hw.threshold.
    PlaneThresholds`, equivalent to ``UB_r < Th``) or after the last plane.
    With two planes per cycle (``cfg.planes_per_cycle``) a request slot j
    reads planes 2j and 2j + 1 (one word from each K plane bank) and the update is
    ``A_(2j+2) = 4 A_(2j) + 2 s_(2j+1) + s_(2j+2)`` (twice the one-plane step; the first
    slot ``-2 s_1 + s_2``, and with odd ``qk_bits`` the last slot holds one plane,
    ``A_p = 2 A_(p-1) + s_p``), compared with the threshold of the slot's last plane. Matches
    :func:`sim.golden.bitserial_prune` bit for bit: the reported ``planes`` is that
    function's ``planes_used`` (the plane that decided, not the planes read) and
    ``survivor`` its ``mask``; ``score`` is the exact ``S`` for survivors. With
    ``cfg.k_align`` the query and K planes are the aligned ``q'`` and ``K'`` (the
    thresholds those of ``Th << k_align``): ``A`` is ``fe_score_bits`` wide and ``score``
    is ``S' >> k_align = S``.

    Pipeline (one token per requested plane slot — a plane with one plane per cycle —,
    all stages advance together with ``advance``):

    * request (cycle c): ``read`` asks the K buffer for plane slot k of the current key;
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
    key's last plane needs no decision to end its requests); in slots, with
    ``cfg.plane_slots`` in place of ``qk_bits``, and a key that requests its last slot
    holds the lane ``cfg.fe_full_key_cycles`` cycles (with two planes per cycle and more
    lanes than slots the lane idles after it: one survivor per ``lanes`` cycles per lane
    at most; ``start`` ends the idling). Tokens carry a one-bit key
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
    query : In(layouts.fe_q_row(cfg))
        The (aligned, ``cfg.k_align``) query row, held stable during a query.
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
    plane : In(unsigned(planes_per_cycle * head_dim))
        K-buffer read data: the plane slot requested in the previous advancing cycle,
        plane ``c k + u`` at bits ``u d ..``, element i at bit ``u d + i``.
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
            "query": In(layouts.fe_q_row(cfg)),
            "thresholds": In(data.ArrayLayout(plane_threshold_shape(cfg), cfg.qk_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "advance": In(1),
            "start": In(1),
            "start_key": In(unsigned(cfg.key_index_bits)),
            "fill": In(1),
            "fill_key": In(unsigned(cfg.key_index_bits)),
            "plane": In(unsigned(cfg.planes_per_cycle * cfg.head_dim)),
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
        c, ns = cfg.planes_per_cycle, cfg.plane_slots
        pad_cycles = cfg.fe_full_key_cycles - ns
        kb = cfg.key_index_bits
        g = lane_groups(cfg)
        adv = self.advance
        rs = self.result

        # Request stage: the current key and the prefetch slot.
        cur_v = Signal(name="cur_valid")
        cur_key = Signal(unsigned(kb), reset_less=True)
        cur_plane = Signal(range(ns), reset_less=True)
        cur_ep = Signal(reset_less=True)
        nxt_v = Signal(name="next_valid")
        nxt_key = Signal(unsigned(kb), reset_less=True)
        # Stage 1 and stage 2 tokens.
        s1_v = Signal(name="s1_valid")
        s1_key = Signal(unsigned(kb), reset_less=True)
        s1_plane = Signal(range(ns), reset_less=True)
        s1_ep = Signal(reset_less=True)
        s2_v = Signal(name="s2_valid")
        s2_key = Signal(unsigned(kb), reset_less=True)
        s2_plane = Signal(range(ns), reset_less=True)
        s2_ep = Signal(reset_less=True)
        s2_t = Signal(plane_threshold_shape(cfg), reset_less=True)
        s2_pp = [[Signal(signed(cfg.fe_qsum_bits),
                          name=f"s2_pp{i}" if c == 1 else f"s2_pp{u}_{i}", reset_less=True)
                   for i in range(g)] for u in range(c)]
        acc = Signal(signed(cfg.fe_score_bits), reset_less=True)
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

        # After a key's last slot the lane idles pad_cycles cycles (none with one plane per
        # cycle or lanes <= plane_slots).
        pad_free = Signal()
        if pad_cycles > 0:
            pad = Signal(range(pad_cycles + 1), name="pad")
            m.d.comb += pad_free.eq(pad == 0)
        else:
            m.d.comb += pad_free.eq(1)
        take = Signal()
        cont = Signal()
        m.d.comb += [
            take.eq((nxt_v & (~cur_v | kill_cur) & pad_free) | self.start),
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
                # (a key of one slot, qk_bits = 2 at two planes per cycle, ends its
                # requests with the take)
                m.d.sync += [cur_v.eq(ns > 1), cur_key.eq(self.read.key), cur_plane.eq(1),
                             cur_ep.eq(new_ep), nxt_v.eq(0)]
                if pad_cycles > 0:
                    m.d.sync += pad.eq(0 if ns > 1 else pad_cycles)
            with m.Elif(cont):
                m.d.sync += cur_plane.eq(cur_plane + 1)
                with m.If(cur_plane == ns - 1):
                    m.d.sync += cur_v.eq(0)
                    if pad_cycles > 0:
                        m.d.sync += pad.eq(pad_cycles)
            with m.Else():
                m.d.sync += cur_v.eq(0)
                if pad_cycles > 0:
                    with m.If(~pad_free):
                        m.d.sync += pad.eq(pad - 1)
            with m.If(self.fill):
                m.d.sync += [nxt_v.eq(1), nxt_key.eq(self.fill_key)]

        # Stage 1: AND with the query, reduce each plane to g partial sums; select the
        # threshold of the slot's last plane.
        bounds = [d * i // g for i in range(g + 1)]
        if c == 1:
            t_sel = self.thresholds[s1_plane]
        else:
            t_sel = Array([self.thresholds[min(c * j + c - 1, p - 1)]
                           for j in range(ns)])[s1_plane]
        with m.If(adv):
            m.d.sync += [s2_v.eq(s1_v & ~(kill & (s1_ep == res_ep))), s2_key.eq(s1_key),
                         s2_plane.eq(s1_plane), s2_ep.eq(s1_ep), s2_t.eq(t_sel)]
            for u in range(c):
                terms = [Mux(self.plane[u * d + i], self.query[i], 0) for i in range(d)]
                m.d.sync += [s2_pp[u][i].eq(adder_tree(terms[bounds[i]:bounds[i + 1]]))
                             for i in range(g)]

        # Stage 2: accumulate (the sign plane negates: -x = ~x + 1 per partial sum) and
        # compare with the plane's threshold.
        first = Signal()
        m.d.comb += first.eq(s2_plane == 0)
        acc_new = Signal(signed(cfg.fe_score_bits))
        hi = [Mux(first, ~pp, pp) for pp in s2_pp[0]]
        if c == 1:
            m.d.comb += acc_new.eq(adder_tree(hi + [Mux(first, g, acc << 1)]))
        elif p % 2 == 0:
            # A = 4 A + 2 s_hi + s_lo; the sign plane: -2 s = 2 (~s + 1).
            m.d.comb += acc_new.eq(adder_tree(
                [h << 1 for h in hi] + s2_pp[1] + [Mux(first, 2 * g, acc << 2)]))
        else:
            # Odd qk_bits: the last slot holds one plane (A = 2 A + s).
            single = Signal()
            m.d.comb += single.eq(s2_plane == ns - 1)
            m.d.comb += acc_new.eq(adder_tree(
                [Mux(single, h, h << 1) for h in hi]
                + [Mux(single, 0, lo) for lo in s2_pp[1]]
                + [Mux(first, 2 * g, Mux(single, acc << 1, acc << 2))]))
        live = Signal()
        below = Signal()
        last = Signal()
        end = Signal()
        m.d.comb += [
            live.eq(s2_v & ~(kill & (s2_ep == res_ep))),
            below.eq(acc_new < Mux(first, self.thresholds[c - 1], s2_t)),
            last.eq(s2_plane == ns - 1),
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
                res.planes.eq(s2_plane + 1 if c == 1 else Mux(last, p, (s2_plane + 1) * c)),
                # S' = S << k_align is exact at the last plane: S = S' >> k_align.
                res.score.eq((acc_new >> cfg.k_align) if cfg.k_align else acc_new),
            ]
        m.d.comb += [rs.eq(res), rs.valid.eq(res_v)]
        return m
