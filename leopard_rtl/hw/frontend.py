"""The LeOPArd front end: K buffer, bit-serial lane array, threshold unit, survivor queue.

SPEC sections 3 and 4 (blocks 1-3). The Verilog top is ``leopard_frontend``
(``leopard-rtl generate --unit frontend``).
"""

from __future__ import annotations

from typing import Any

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .kbuffer import KBuffer
from .lane import adder_tree
from .lane_array import LaneArray
from .survivor_queue import SurvivorQueue
from .threshold import ThresholdUnit

__all__ = ["FrontEnd"]


class FrontEnd(wiring.Component):
    """LeOPArd front end: bit-serial Q.K with early termination over a bit-plane K buffer.

    Computes, for every query and every visible key, the result of
    :func:`sim.golden.bitserial_prune` bit for bit: ``mask`` (survivor), ``planes_used``
    and the exact score of every survivor.

    Operation. K rows are written through ``k_load`` in key order (``first`` restarts at
    key 0); ``k_load`` is ready whenever no query is running. A query is accepted when no
    query is running and no K row is offered (K loading has priority); ``threshold`` and
    the two switches are captured with it. Keys ``0..n_visible-1`` are dispatched to the
    ``lanes`` pipelined lanes (:class:`~leopard_rtl.hw.lane_array.LaneArray`); a key that
    uses r planes holds its lane for ``min(r + cfg.fe_decision_latency, qk_bits)`` cycles
    (in plane slots of ``cfg.planes_per_cycle`` planes: :func:`sim.perf.request_slots`,
    ``cfg.plane_slots``, ``cfg.fe_full_key_cycles``).

    Cycle count (no back-pressure): a query accepted in cycle t occupies the front end for
    ``M + cfg.fe_query_overhead`` cycles, ``M`` the makespan of
    :func:`sim.perf.frontend_schedule` (the cycle of its last lane result): the next query
    can be accepted in cycle ``t + M + 1`` (:func:`sim.perf.frontend_cycles`). The result
    bundle with ``last=1`` is valid in cycle ``t + M + 1`` (:attr:`latencies`
    ``"result"``: 1 cycle after the lane result).

    Outputs.

    * ``result`` (only when ``results=True``): one bundle per cycle in which a key finished
      (:func:`layouts.result`), the lanes' results tagged with their key index (keys finish
      out of order: a bundle can hold up to ``lanes`` keys), ``last`` and the query's
      ``stats`` on the query's final bundle (a query with no visible key sends one bundle
      with ``last=1`` and no key). It is for tests and statistics; the core may build the
      front end with ``results=False``.
    * ``survivor`` (to the back end): :func:`layouts.survivor` records, one per surviving
      key, in completion order (not key order), the last one of a query with ``last=1``; a
      query without survivors sends one ``empty=1, last=1`` record.
    * ``stats`` / ``stats_valid``: the statistics of the last finished query (registered;
      ``stats_valid`` pulses for one cycle when they change).

    Back-pressure on ``result`` or a full survivor queue stalls the whole lane array
    (global clock enable; no handshake inside the array); stalled cycles count in
    ``stats.cycles``. The cycle count above is exact when ``result`` and ``survivor`` are
    always ready and the survivor queue (:func:`survivor_queue_depth` entries, drained
    one per cycle) never fills: survivors arrive at most ``lanes / fe_full_key_cycles`` per
    cycle on average, so this holds for every preset (``cfg.cycle_model_exact``); a design
    with more
    lanes than planes can be throttled by the one-survivor-per-cycle back end.

    K rows beyond ``max_keys`` are dropped; keys are never read past ``n_visible``.

    Alignment (``cfg.k_align > 0``, :mod:`sim.align`). The ``k_load`` row with ``first=1``
    carries the head's per-channel shifts ``s`` (field ``align``), held in a register;
    every K row of the head is written as ``K_c << s_c`` (before it is split into
    bit-planes), and an accepted query is registered as ``q'_c = q_c << (k_align - s_c)``
    (a shift mux in the accept cycle: no extra cycle), its ``Q+`` of ``q'``; the lanes test
    against ``Th << k_align`` and send ``S' >> k_align = S``. Same results and cycles as
    without alignment. A written K row that does not fit its channel's shift (or a shift
    above ``k_align``) sets ``align_error``.

    Reset (synchronous, ``rst``): no query running, lanes idle, queues empty, K write
    pointer at 0; the K buffer contents survive. Registers: ``threshold``, switches.

    Parameters
    ----------
    cfg : LeopardConfig
    results : bool
        Include the ``result`` stream (default True).

    Members
    -------
    k_load : In(stream.Signature(layouts.k_load(cfg)))
    query : In(stream.Signature(layouts.query(cfg)))
    threshold : In(signed(threshold_bits))
        Threshold register value (:func:`sim.golden.threshold_register`), sampled with a query.
    early_termination, pruning : In(1)
        Run-time switches, sampled with a query; both low give the SPEC section 6 baseline.
    margin : In(unsigned(margin_frac_bits))
        Only with a margin (``cfg.margin > 0``): the margin register value
        (:func:`sim.margin.margin_registers`), sampled with a query like ``threshold``.
    result : Out(stream.Signature(layouts.result(cfg)))
    survivor : Out(stream.Signature(layouts.survivor(cfg)))
    stats : Out(layouts.query_stats(cfg))
    stats_valid : Out(1)
    busy : Out(1)
        A query is running.
    align_error : Out(1)
        Only with ``cfg.k_align > 0``: sticky; set by a written K row with an element
        outside ``p - s_c`` signed bits in some channel c (or ``s_c > k_align``), i.e. host
        shifts that do not fit the keys (results are then wrong); cleared by the next row
        with ``first=1`` (set again if that row does not fit). Reset: 0.
    """

    def __init__(self, cfg: LeopardConfig, *, results: bool = True) -> None:
        self._cfg = cfg
        self._results = results
        sig: dict[str, Any] = {
            "k_load": In(stream.Signature(layouts.k_load(cfg))),
            "query": In(stream.Signature(layouts.query(cfg))),
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
        }
        if cfg.margin:
            sig["margin"] = In(unsigned(cfg.margin_frac_bits))
        if results:
            sig["result"] = Out(stream.Signature(layouts.result(cfg)))
        sig.update({
            "survivor": Out(stream.Signature(layouts.survivor(cfg))),
            "stats": Out(layouts.query_stats(cfg)),
            "stats_valid": Out(1),
            "busy": Out(1),
        })
        if cfg.k_align:
            sig["align_error"] = Out(1)
        super().__init__(sig)

    @property
    def cfg(self) -> LeopardConfig:
        return self._cfg

    @property
    def latencies(self) -> dict[str, int]:
        """Fixed latencies in cycles (recorded in the build manifest).

        ``query_overhead``: cycles per query besides the makespan of its keys (the accept
        cycle). ``decision``: planes a lane requests after a key's deciding plane
        (``cfg.fe_decision_latency``). ``result``: from a lane result to its result bundle.
        ``kbuf_read``: K-buffer read latency (hidden: a lane requests a plane two stages
        ahead of its use). ``survivor_min``: from a lane result to its earliest survivor
        record.
        """
        return {"query_overhead": self._cfg.fe_query_overhead,
                "decision": self._cfg.fe_decision_latency, "result": 1, "kbuf_read": 1,
                "survivor_min": 1}

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        n = cfg.lanes
        m.submodules.kbuf = kbuf = KBuffer(cfg, n)
        m.submodules.thresh = thr = ThresholdUnit(cfg)
        m.submodules.lanes = arr = LaneArray(cfg)
        m.submodules.survq = survq = SurvivorQueue(cfg)

        advance = Signal()
        if self._results:
            m.d.comb += advance.eq((~self.result.valid | self.result.ready) & survq.room)
        else:
            m.d.comb += advance.eq(survq.room)

        # K loading: only between queries.
        wptr = Signal(unsigned(cfg.key_count_bits))
        waddr = Signal(unsigned(cfg.key_count_bits))
        m.d.comb += [
            self.k_load.ready.eq(~arr.active),
            waddr.eq(Mux(self.k_load.payload.first, 0, wptr)),
            kbuf.w_addr.eq(waddr),
            kbuf.w_en.eq(self.k_load.valid & self.k_load.ready & (waddr < cfg.max_keys)),
        ]
        if cfg.k_align:
            q_aligned = self._alignment(m, kbuf)
        else:
            m.d.comb += kbuf.w_data.eq(self.k_load.payload.data)
            q_aligned = self.query.payload.data
        with m.If(self.k_load.valid & self.k_load.ready & (waddr < cfg.max_keys)):
            m.d.sync += wptr.eq(waddr + 1)

        # Query acceptance.
        accept = Signal()
        m.d.comb += [
            self.query.ready.eq(~arr.active & advance & ~self.k_load.valid),
            accept.eq(self.query.valid & self.query.ready),
            thr.threshold.eq(self.threshold),
            thr.early_termination.eq(self.early_termination),
            thr.pruning.eq(self.pruning),
            thr.load.eq(accept),
            # Not gated by ``advance`` (a late stall enable): the array gates it itself.
            arr.start.eq(self.query.valid & ~arr.active & ~self.k_load.valid),
            arr.query.eq(q_aligned),
            arr.n_visible.eq(self.query.payload.n_visible),
            arr.advance.eq(advance),
            arr.threshold.eq(thr.th),
            arr.early_termination.eq(thr.et),
            arr.pruning.eq(thr.pr),
            kbuf.read.eq(arr.read),
            arr.planes.eq(kbuf.rdata),
            self.busy.eq(arr.active),
        ]
        if cfg.margin:
            m.d.comb += [thr.margin.eq(self.margin), arr.margin.eq(thr.mg)]

        # Per-query statistics.
        res = arr.results
        surv_now = Signal(range(n + 1))
        planes_now = Signal(range(n * cfg.qk_bits + 1))
        m.d.comb += [
            surv_now.eq(adder_tree([res[i].valid & res[i].survivor for i in range(n)])),
            planes_now.eq(adder_tree([Mux(res[i].valid, res[i].planes, 0) for i in range(n)])),
        ]
        st = layouts.query_stats(cfg)
        surv_acc = Signal(st["survivors"].shape, reset_less=True)
        planes_acc = Signal(st["planes"].shape, reset_less=True)
        cyc = Signal(st["cycles"].shape, reset_less=True)
        cyc_max = (1 << st["cycles"].shape.width) - 1
        cur = Signal(st)
        m.d.comb += [
            cur.survivors.eq(surv_acc + surv_now),
            cur.planes.eq(planes_acc + planes_now),
            cur.cycles.eq(Mux(accept, 1, Mux(cyc == cyc_max, cyc, cyc + 1))),
        ]
        with m.If(accept):
            m.d.sync += [surv_acc.eq(0), planes_acc.eq(0), cyc.eq(1)]
        with m.Elif(arr.active):
            with m.If(cyc != cyc_max):
                m.d.sync += cyc.eq(cyc + 1)
            with m.If(advance):
                m.d.sync += [surv_acc.eq(cur.survivors), planes_acc.eq(cur.planes)]
        stats = Signal(st, reset_less=True)
        stats_valid = Signal()
        m.d.sync += stats_valid.eq(arr.done)
        with m.If(arr.done):
            m.d.sync += stats.eq(Mux(accept, st.const({"cycles": 1}), cur))
        m.d.comb += [self.stats.eq(stats), self.stats_valid.eq(stats_valid)]

        # Survivor queue.
        for i in range(n):
            m.d.comb += [
                survq.w_valid[i].eq(res[i].valid & res[i].survivor),
                survq.w_key[i].eq(res[i].key),
                survq.w_score[i].eq(res[i].score),
            ]
        m.d.comb += [survq.w_end.eq(arr.ending), survq.w_en.eq(advance)]
        wiring.connect(m, survq.o, wiring.flipped(self.survivor))

        # Result bundles (output register idiom: load when the register is free or taken).
        if self._results:
            any_valid = Signal()
            m.d.comb += any_valid.eq(Cat(*[res[i].valid for i in range(n)]).any())
            with m.If(self.result.ready):
                m.d.sync += self.result.valid.eq(0)
            with m.If(advance & (any_valid | arr.done)):
                m.d.sync += [
                    self.result.valid.eq(1),
                    self.result.payload.lanes.eq(res),
                    self.result.payload.last.eq(arr.done),
                    self.result.payload.stats.eq(Mux(accept, st.const({"cycles": 1}), cur)),
                ]
        return m

    def _alignment(self, m: Module, kbuf: KBuffer) -> Signal:
        """K-row shift, ``align_error`` and the aligned query (``cfg.k_align > 0``); returns
        ``q'`` (combinational, from the held shifts)."""
        cfg = self._cfg
        p, d, a = cfg.qk_bits, cfg.head_dim, cfg.k_align
        n_codes = 1 << cfg.align_bits
        kl = self.k_load.payload
        held = Signal(layouts.align_row(cfg), reset_less=True)
        shifts = Signal(layouts.align_row(cfg))
        m.d.comb += shifts.eq(Mux(kl.first, kl.align, held))
        with m.If(self.k_load.valid & self.k_load.ready & kl.first):
            m.d.sync += held.eq(kl.align)
        bad = []
        for c in range(d):
            k = kl.data[c]
            kv = Value.cast(k)
            # the row fits p - j signed bits in channel c: its top j + 1 bits are equal
            fits = [Signal(name=f"fits{c}_{j}") for j in range(a + 1)]
            for j, f in enumerate(fits):
                top = kv[p - 1 - j:p]
                m.d.comb += f.eq(top.all() | ~top.any())
            ok = Array(fits + [Const(0, 1)] * (n_codes - a - 1))     # s > k_align: bad
            bad.append(~ok[shifts[c]])
            sh = Array([k << j for j in range(a + 1)] + [k] * (n_codes - a - 1))
            m.d.comb += kbuf.w_data[c].eq(sh[shifts[c]])
        row_bad = Signal()
        m.d.comb += row_bad.eq(Cat(*bad).any())
        err = Signal(name="align_err")
        with m.If(kbuf.w_en):
            with m.If(kl.first):
                m.d.sync += err.eq(row_bad)
            with m.Elif(row_bad):
                m.d.sync += err.eq(1)
        m.d.comb += self.align_error.eq(err)
        q = self.query.payload.data
        q_al = Signal(layouts.fe_q_row(cfg))
        for c in range(d):
            opts = [q[c] << (a - j) for j in range(a + 1)]
            m.d.comb += q_al[c].eq(Array(opts + [opts[0]] * (n_codes - a - 1))[held[c]])
        return q_al
