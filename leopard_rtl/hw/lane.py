"""The bit-serial Q.K lane (SPEC section 4, block 1)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .threshold import ThresholdCompare

__all__ = ["QKLane", "adder_tree"]


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


class QKLane(wiring.Component):
    """One bit-serial Q.K lane: one K bit-plane per cycle, MSB (sign) plane first.

    Computes, for the key it holds, ``A_r = 2 A_(r-1) + sum_i q_i b_i`` (the sign plane,
    r = 1, gives ``A_1 = -sum_i q_i b_i``) with shifts and adds only, and terminates the key
    at the first r with ``UB_r < Th`` (:class:`~leopard_rtl.threshold.ThresholdCompare`) or
    after the last plane. Matches :func:`sim.golden.bitserial_prune` bit for bit: the
    reported ``planes`` is that function's ``planes_used`` and ``survivor`` its ``mask``;
    ``score`` is the exact ``S`` for survivors.

    The query row and ``Q+`` are inputs: all lanes of a
    :class:`~leopard_rtl.lane_array.LaneArray` work on the same query, so the array holds
    one copy of the query register and broadcasts it.

    Timing. When ``start`` is high in a cycle with ``advance`` high, the lane takes key
    ``start_key``: it requests plane 0 on ``read`` in that cycle, and from the next cycle on
    consumes one plane per advancing cycle from ``plane`` (the K buffer's registered read
    data, one cycle after the request). A key that uses r planes occupies the lane for
    exactly r cycles; ``finish`` and ``result`` are combinational in the key's last cycle,
    and the lane may be given the next key (``start``) in that same cycle, so there is no
    idle cycle between keys. ``advance`` low freezes the lane (a global stall).

    Reset: not busy. The datapath registers (key, plane, partial sum) have no reset.

    Parameters
    ----------
    cfg : LeopardConfig

    Members
    -------
    query : In(layouts.qk_row(cfg))
        The query row (held stable during a query).
    qpos : In(signed(qsum_bits))
        ``Q+`` of the query.
    threshold : In(signed(threshold_bits))
    early_termination, pruning : In(1)
        Effective switches (from :class:`~leopard_rtl.threshold.ThresholdUnit`).
    advance : In(1)
        Clock enable of the whole lane.
    start : In(1)
        Take key ``start_key`` (only while ``free``).
    start_key : In(unsigned(key_index_bits))
    plane : In(unsigned(head_dim))
        Bits of the current plane of the current key, element i at bit i.
    busy : Out(1)
        Holding a key.
    free : Out(1)
        ``~busy | finish``: may take a key this cycle.
    read : Out(layouts.kbuf_read(cfg))
        The plane to read for the next cycle (to the K buffer).
    result : Out(layouts.lane_result(cfg))
        ``valid`` in the last cycle of a key (combinational).
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "query": In(layouts.qk_row(cfg)),
            "qpos": In(signed(cfg.qsum_bits)),
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "advance": In(1),
            "start": In(1),
            "start_key": In(unsigned(cfg.key_index_bits)),
            "plane": In(unsigned(cfg.head_dim)),
            "busy": Out(1),
            "free": Out(1),
            "read": Out(layouts.kbuf_read(cfg)),
            "result": Out(layouts.lane_result(cfg)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to a result, per plane used (result in the last one)."""
        return 1

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        p = cfg.qk_bits
        m.submodules.compare = cmp = ThresholdCompare(cfg)

        busy = Signal(name="busy_reg")
        key = Signal(unsigned(cfg.key_index_bits), reset_less=True)
        r = Signal(range(p), reset_less=True)          # planes consumed before this cycle
        acc = Signal(signed(cfg.score_bits), reset_less=True)

        # sum_i q_i b_i: the plane's contribution, one balanced adder tree.
        psum = Signal(signed(cfg.qsum_bits), name="plane_sum")
        m.d.comb += psum.eq(adder_tree(
            [Mux(self.plane[i], self.query[i], 0) for i in range(cfg.head_dim)]))
        acc_new = Signal(signed(cfg.score_bits))
        # The MSB plane has weight -2^(p-1): A_1 = -sum q_i b_i; later planes A_r = 2 A + sum.
        m.d.comb += acc_new.eq(Mux(r == 0, -psum, (acc << 1) + psum))

        last_plane = Signal()
        m.d.comb += [
            last_plane.eq(r == p - 1),
            cmp.acc.eq(acc_new),
            cmp.qpos.eq(self.qpos),
            cmp.shift.eq(p - 1 - r),
            cmp.threshold.eq(self.threshold),
            cmp.enable.eq(self.early_termination & self.pruning),
        ]
        finish = Signal()
        survivor = Signal()
        m.d.comb += [
            finish.eq(busy & (cmp.below | last_plane)),
            # At the last plane UB_p = S: with early termination on, ``below`` already
            # decided S < Th; otherwise compare the exact score once.
            survivor.eq(last_plane & ~cmp.below
                        & (~self.pruning | (acc_new >= self.threshold))),
            self.busy.eq(busy),
            self.free.eq(~busy | finish),
            self.result.valid.eq(finish),
            self.result.key.eq(key),
            self.result.survivor.eq(survivor),
            self.result.planes.eq(r + 1),
            self.result.score.eq(acc_new),
        ]

        cont = Signal()
        m.d.comb += cont.eq(busy & ~finish)
        with m.If(self.start):
            m.d.comb += [self.read.key.eq(self.start_key), self.read.plane.eq(0)]
        with m.Else():
            m.d.comb += [self.read.key.eq(key), self.read.plane.eq(r + 1)]
        m.d.comb += self.read.en.eq(self.advance & (self.start | cont))

        with m.If(self.advance):
            with m.If(self.start):
                m.d.sync += [busy.eq(1), key.eq(self.start_key), r.eq(0)]
            with m.Elif(cont):
                m.d.sync += [r.eq(r + 1), acc.eq(acc_new)]
            with m.Else():
                m.d.sync += busy.eq(0)
        return m
