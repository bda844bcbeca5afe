"""The double-buffered survivor store between the front end and the back end."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .carry_save import prefix_add

__all__ = ["SurvivorStore"]


class SurvivorStore(wiring.Component):
    """Double-buffered survivor store with per-query max tracking.

    Two halves of ``cfg.survivor_capacity`` entries ``{key, score}``. The writer fills
    one half with a query's survivor records while the reader (the back end's exp/MAC
    pipeline) works on the other. While writing it tracks, per query, the stored count,
    the largest stored score M, the number of survivor records and an overflow flag; on
    the ``last`` record the half is committed (``full``) together with ``scale_mant`` and
    ``scale_shift`` as sampled in that cycle, and the writer moves to the other half.

    Input handshake: ``survivor.ready`` is ``~full`` of the half being written, so the
    writer stalls only when both halves hold queries the reader has not released.
    One record per cycle. A record with ``empty=1`` carries no survivor (a query
    without survivors is a single ``empty=1, last=1`` record).

    Overflow: a query with more than ``survivor_capacity`` survivors keeps its first
    ``survivor_capacity``; the others are still accepted (no deadlock: M needs the whole
    query before the back end can start) and counted, and the query's ``overflow`` flag is
    set. Nothing is dropped silently: the back end reports the flag with the query.

    Read side: ``valid`` says the current read half holds a committed query; its
    metadata is on ``count``, ``m``, ``total``, ``overflow``, ``mant``, ``shift`` while
    ``valid``; entry ``rd_idx`` appears on ``rd_data`` one cycle later (synchronous
    read); ``release`` (one cycle, while ``valid``) frees the half and moves to the other.
    ``idle`` is high when no half is committed and no query is partly written.

    Reset: both halves empty, writer and reader on half 0.

    Members
    -------
    survivor : In(stream.Signature(survivor(cfg)))
    scale_mant : In(unsigned(scale_bits))
    scale_shift : In(unsigned(scale_shift_bits))
    valid, overflow, idle : Out(1)
    count : Out(range(capacity + 1))
    total : Out(unsigned(key_count_bits))
    m : Out(signed(score_bits))
    mant, shift : Out
    rd_idx : In(range(capacity))
    rd_data : Out(survivor_entry(cfg))
    release : In(1)
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        cap = cfg.survivor_capacity
        super().__init__({
            "survivor": In(stream.Signature(layouts.survivor(cfg))),
            "scale_mant": In(unsigned(cfg.scale_bits)),
            "scale_shift": In(unsigned(cfg.scale_shift_bits)),
            "valid": Out(1),
            "count": Out(range(cap + 1)),
            "total": Out(unsigned(cfg.key_count_bits)),
            "m": Out(signed(cfg.score_bits)),
            "overflow": Out(1),
            "mant": Out(unsigned(cfg.scale_bits)),
            "shift": Out(unsigned(cfg.scale_shift_bits)),
            "rd_idx": In(range(max(2, cap))),
            "rd_data": Out(layouts.survivor_entry(cfg)),
            "release": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        cap = cfg.survivor_capacity
        m.submodules.mem = mem = Memory(shape=layouts.survivor_entry(cfg), depth=2 * cap, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        full = [Signal(name=f"full{h}") for h in range(2)]
        h_count = [Signal(range(cap + 1), name=f"count{h}", reset_less=True) for h in range(2)]
        h_total = [Signal(cfg.key_count_bits, name=f"total{h}", reset_less=True)
                   for h in range(2)]
        h_max = [Signal(signed(cfg.score_bits), name=f"max{h}", reset_less=True)
                 for h in range(2)]
        h_ovf = [Signal(name=f"ovf{h}", reset_less=True) for h in range(2)]
        h_mant = [Signal(cfg.scale_bits, name=f"mant{h}", reset_less=True) for h in range(2)]
        h_shift = [Signal(cfg.scale_shift_bits, name=f"shift{h}", reset_less=True)
                   for h in range(2)]

        # Writer.
        wr_half = Signal()
        wr_cnt = Signal(range(cap + 1))
        wr_total = Signal(cfg.key_count_bits)
        wr_max = Signal(signed(cfg.score_bits), reset_less=True)
        wr_ovf = Signal()
        wr_active = Signal()
        rec = self.survivor.payload
        m.d.comb += self.survivor.ready.eq(~Mux(wr_half, full[1], full[0]))
        accept = self.survivor.valid & self.survivor.ready
        is_surv = accept & ~rec.empty
        room = wr_cnt < cap
        store = is_surv & room
        cnt_next = Signal.like(wr_cnt)
        total_next = Signal.like(wr_total)
        max_next = Signal.like(wr_max)
        ovf_next = Signal()
        max_total = (1 << cfg.key_count_bits) - 1
        # rec.score > wr_max (signed) by a parallel-prefix subtraction: the carry out of
        # wr_max - score, both offset to unsigned, is wr_max >= score.
        sw = cfg.score_bits
        msb = 1 << (sw - 1)
        geq = prefix_add(m, wr_max.as_unsigned() ^ msb, ~(rec.score.as_unsigned() ^ msb), sw, 1,
                         name="max_cmp")[sw]
        gt = Signal()
        m.d.comb += gt.eq(~geq)
        m.d.comb += [
            cnt_next.eq(wr_cnt + store),
            total_next.eq(Mux(is_surv & (wr_total != max_total), wr_total + 1, wr_total)),
            max_next.eq(Mux(store & ((wr_cnt == 0) | gt), rec.score, wr_max)),
            ovf_next.eq(wr_ovf | (is_surv & ~room)),
            wr.addr.eq(Mux(wr_half, cap, 0) + wr_cnt),
            wr.data.key.eq(rec.key), wr.data.score.eq(rec.score),
            wr.en.eq(store),
        ]
        with m.If(accept & rec.last):
            for h in range(2):
                with m.If(wr_half == h):
                    m.d.sync += [full[h].eq(1), h_count[h].eq(cnt_next),
                                 h_total[h].eq(total_next), h_max[h].eq(max_next),
                                 h_ovf[h].eq(ovf_next), h_mant[h].eq(self.scale_mant),
                                 h_shift[h].eq(self.scale_shift)]
            m.d.sync += [wr_half.eq(~wr_half), wr_cnt.eq(0), wr_total.eq(0), wr_ovf.eq(0),
                         wr_active.eq(0)]
        with m.Elif(accept):
            m.d.sync += [wr_cnt.eq(cnt_next), wr_total.eq(total_next), wr_max.eq(max_next),
                         wr_ovf.eq(ovf_next), wr_active.eq(1)]

        # Reader.
        rd_half = Signal()
        m.d.comb += [
            self.valid.eq(Mux(rd_half, full[1], full[0])),
            self.count.eq(Mux(rd_half, h_count[1], h_count[0])),
            self.total.eq(Mux(rd_half, h_total[1], h_total[0])),
            self.m.eq(Mux(rd_half, h_max[1], h_max[0])),
            self.overflow.eq(Mux(rd_half, h_ovf[1], h_ovf[0])),
            self.mant.eq(Mux(rd_half, h_mant[1], h_mant[0])),
            self.shift.eq(Mux(rd_half, h_shift[1], h_shift[0])),
            rd.addr.eq(Mux(rd_half, cap, 0) + self.rd_idx), rd.en.eq(1),
            self.rd_data.eq(rd.data),
            self.idle.eq(~full[0] & ~full[1] & ~wr_active),
        ]
        with m.If(self.release):
            for h in range(2):
                with m.If(rd_half == h):
                    m.d.sync += full[h].eq(0)
            m.d.sync += rd_half.eq(~rd_half)
        return m
