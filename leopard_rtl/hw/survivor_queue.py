"""The survivor queue: serializes the survivors of the lane array to one per cycle."""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .lane import adder_tree

__all__ = ["survivor_queue_depth", "SurvivorQueue"]


def survivor_queue_depth(cfg: LeopardConfig) -> int:
    """Entries of the survivor queue: a power of two >= 2 lanes + 4, at least 8.

    With ``lanes <= qk_bits`` (a survivor holds its lane for ``qk_bits`` cycles, so at
    most ``lanes`` survivors arrive in any ``qk_bits`` cycles) and the output always
    ready, at most ``lanes`` survivors wait, plus the one held for its ``last`` bit and
    an end marker: ``lanes + 2`` entries. The writer needs ``lanes + 1`` free entries
    (``room``), so ``2 lanes + 3`` entries never stall the lanes, which keeps the cycle
    model exact (:attr:`LeopardConfig.cycle_model_exact`).
    """
    need = max(8, 2 * cfg.lanes + 4)
    return 1 << (need - 1).bit_length()


class SurvivorQueue(wiring.Component):
    """Serializes the survivors of the lane array (up to ``lanes`` per cycle) to one per cycle.

    Each cycle with ``w_en`` accepts up to ``lanes`` survivor entries (``w_valid[i]``,
    ``w_key[i]``, ``w_score[i]``) and, after them, an end-of-query marker (``w_end``).
    ``w_en`` (the front end's stall enable) only gates the final write enables and pointer
    updates: the slot arithmetic does not wait for it. The output stream
    ``o`` carries :func:`layouts.survivor` records: survivors in completion order (same
    cycle: lane order), the query's last survivor with ``last=1``; a query without
    survivors gives one record with ``empty=1, last=1``. A survivor is held until the next
    entry (survivor or marker) arrives, so that its ``last`` bit is known.

    ``room`` is high while at least ``lanes + 1`` entries are free; the writer must not
    write when it is low. Flip-flop storage of :func:`survivor_queue_depth` entries.
    ``o.valid`` depends only on registers (never on ``o.ready``). Reset: empty.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        n = cfg.lanes
        self._depth = survivor_queue_depth(cfg)
        super().__init__({
            "w_valid": In(n),
            "w_key": In(data.ArrayLayout(unsigned(cfg.key_index_bits), n)),
            "w_score": In(data.ArrayLayout(layouts.lane_result(cfg)["score"].shape, n)),
            "w_end": In(1),
            "w_en": In(1),
            "room": Out(1),
            "o": Out(stream.Signature(layouts.survivor(cfg))),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        n, depth = cfg.lanes, self._depth
        ab = (depth - 1).bit_length()
        score_shape = layouts.lane_result(cfg)["score"].shape
        ends = Array(Signal(name=f"entry{e}_end", reset_less=True) for e in range(depth))
        keys = Array(Signal(unsigned(cfg.key_index_bits), name=f"entry{e}_key",
                            reset_less=True) for e in range(depth))
        scores = Array(Signal(score_shape, name=f"entry{e}_score", reset_less=True)
                       for e in range(depth))
        wp = Signal(ab)
        rp = Signal(ab)
        count = Signal(range(depth + 1))

        # Writers: survivors of lanes 0..n-1, then the end marker, at consecutive slots
        # (each slot is wp plus a balanced popcount of the writers before it).
        wv = [self.w_valid[i] for i in range(n)] + [self.w_end]
        slots = []
        for w in range(n + 1):
            slot = Signal(ab, name=f"slot{w}")
            m.d.comb += slot.eq(wp + adder_tree(wv[:w]))
            slots.append(slot)
        # One write-select per (entry, writer): slots of one cycle are distinct.
        for e in range(depth):
            sel = [Signal(name=f"we{e}_{w}") for w in range(n + 1)]
            m.d.comb += [sel[w].eq(self.w_en & wv[w] & (slots[w] == e))
                         for w in range(n + 1)]
            with m.If(sel[n]):
                m.d.sync += ends[e].eq(1)
            for w in range(n):
                with m.Elif(sel[w]):
                    m.d.sync += [ends[e].eq(0), keys[e].eq(self.w_key[w]),
                                 scores[e].eq(self.w_score[w])]
        n_writes = Signal(range(n + 2))
        m.d.comb += n_writes.eq(adder_tree(wv))

        rp1 = Signal(ab)
        m.d.comb += rp1.eq(rp + 1)
        pops = Signal(range(3))
        with m.If((count >= 1) & ends[rp]):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.empty.eq(1),
                         self.o.payload.last.eq(1)]
            m.d.comb += pops.eq(self.o.ready)
        with m.Elif((count >= 2) & ~ends[rp]):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.key.eq(keys[rp]),
                         self.o.payload.score.eq(scores[rp]), self.o.payload.last.eq(ends[rp1])]
            with m.If(self.o.ready):
                m.d.comb += pops.eq(1 + ends[rp1])
        # Both outcomes computed, w_en selects (it arrives late: a stall enable).
        wp_w = Signal(ab)
        count_w = Signal.like(count)
        count_n = Signal.like(count)
        m.d.comb += [wp_w.eq(wp + n_writes), count_w.eq(count + n_writes - pops),
                     count_n.eq(count - pops)]
        m.d.sync += [wp.eq(Mux(self.w_en, wp_w, wp)), rp.eq(rp + pops),
                     count.eq(Mux(self.w_en, count_w, count_n))]
        m.d.comb += self.room.eq(count <= depth - (n + 1))
        return m
