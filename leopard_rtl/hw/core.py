"""The LeOPArd core: front end and back end behind stream interfaces (SPEC section 4, block 5).

The Verilog top is ``leopard_top`` (``leopard-rtl generate --unit core``).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .backend import BackEnd
from .frontend import FrontEnd

__all__ = ["LeopardCore", "core_query", "core_out", "causal_offset_shape", "query_index_bits"]

def query_index_bits(cfg: LeopardConfig) -> int:
    """Width of the saturating query counter used for the causal mask."""
    return cfg.key_count_bits + 1


def causal_offset_shape(cfg: LeopardConfig) -> signed:
    """Shape of the ``causal_offset`` register (``Nk - Nq``, negative when Nq > Nk)."""
    return signed(cfg.key_count_bits + 2)


def core_query(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the core's ``query`` stream.

    ``data``: one Q row. ``first``: this is query 0 of a head (restarts the query counter
    that the causal mask uses).
    """
    return data.StructLayout({"data": layouts.qk_row(cfg), "first": 1})


def core_out(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the core's ``out`` stream: one record per query, in query order.

    ``data``: the output row (zeros when ``all_pruned``); ``all_pruned``: no key survived;
    ``survivors``: surviving keys; ``overflow``: more survivors than the survivor store
    holds (``data`` then covers the first ``survivor_capacity`` only; never with the
    default ``survivor_depth``); ``planes``: K bit-planes the query consumed (sum of
    planes_used over its keys); ``fe_cycles``: the query's front-end cycles (accept to last
    key, stalls included).
    """
    stats = layouts.query_stats(cfg)
    return data.StructLayout({
        "data": layouts.out_row(cfg),
        "all_pruned": 1,
        "survivors": unsigned(cfg.key_count_bits),
        "overflow": 1,
        "planes": stats["planes"].shape,
        "fe_cycles": stats["cycles"].shape,
    })


class LeopardCore(wiring.Component):
    """LeOPArd attention core: pruned attention of one head at a time, one output per query.

    Bit-exact with :func:`sim.golden.run_golden` (``mask`` through ``survivors``,
    ``planes_used`` through ``planes``, ``out``, ``all_pruned``); its cycles are those of
    :func:`sim.perf.core_cycles`.

    Operation. Load a head's K rows (``k_load``) and V rows (``v_load``) in key order,
    ``first`` on row 0; set the run-time registers; then send its queries (``first`` on
    query 0). K loading waits while the front end runs a query; V loading waits while
    the back end holds a query, so a new head's K/V may be streamed as soon as the
    previous head's queries have drained. The front end (:class:`FrontEnd`) scores each
    query's visible keys bit-serially over ``lanes`` lanes and streams the survivors into
    the back end's double-buffered store; the back end (:class:`BackEnd`) computes the
    fixed-point softmax and the weighted sum of V rows while the front end works on the
    next query. At most ``cfg.queries_in_flight`` queries are in flight (with
    ``cfg.overlap_norm``: three, one of them in the normalizer, and query i enters only
    once query i-2 has left the survivor store).

    Causal mode: query i (counted from the last ``first``) sees keys
    ``0 .. i + causal_offset`` (``causal_offset = Nk - Nq``), clamped to ``[0, n_keys]``;
    hidden keys cost nothing. Otherwise every query sees keys ``0 .. n_keys - 1``.

    The generator switches ``cfg.early_termination`` and ``cfg.pruning`` gate the run-time
    switches of the same name: a configuration built without them (the SPEC section 6
    baseline) has the logic folded away; one built with them can still run as the baseline
    at run time.

    Reset (synchronous ``rst``): no query in flight, all streams idle; K/V buffer contents
    survive.

    Parameters
    ----------
    cfg : LeopardConfig

    Members
    -------
    k_load : In(stream.Signature(layouts.k_load(cfg)))
        ``{data: head_dim x signed(qk_bits), first}``: K rows in key order.
    v_load : In(stream.Signature(backend_layouts.v_load(cfg)))
        ``{data: head_dim x signed(v_bits), first}``: V rows in key order.
    query : In(stream.Signature(core_query(cfg)))
        ``{data: head_dim x signed(qk_bits), first}``: Q rows in query order.
    threshold : In(signed(threshold_bits))
        Threshold register (:func:`sim.golden.threshold_register`); sampled per query.
    scale_mant : In(unsigned(scale_bits)), scale_shift : In(unsigned(scale_shift_bits))
        Softmax-scale register (:func:`sim.golden.scale_registers`); sampled per query.
    n_keys : In(unsigned(key_count_bits))
        Keys of the current head (1 .. max_keys).
    causal : In(1)
        Causal mask on.
    causal_offset : In(signed(key_count_bits + 2))
        ``Nk - Nq`` for the causal mask.
    early_termination, pruning : In(1)
        Run-time switches (ANDed with the generator switches).
    margin : In(unsigned(margin_frac_bits))
        Only with a margin (``cfg.margin > 0``): the margin register
        (:func:`sim.margin.margin_registers`); sampled per query.
    align_error : Out(1)
        Only with K alignment (``cfg.k_align > 0``): the front end's sticky flag, a K
        row that does not fit the head's alignment shifts (the ``align`` field of the
        ``k_load`` row with ``first=1``); cleared by the next ``first`` row.
    out : Out(stream.Signature(core_out(cfg)))
        One record per query, in order; back-pressure honoured.
    busy : Out(1)
        A query is in flight.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "k_load": In(stream.Signature(layouts.k_load(cfg))),
            "v_load": In(stream.Signature(layouts.v_load(cfg))),
            "query": In(stream.Signature(core_query(cfg))),
            "threshold": In(signed(cfg.threshold_bits)),
            "scale_mant": In(unsigned(cfg.scale_bits)),
            "scale_shift": In(unsigned(cfg.scale_shift_bits)),
            "n_keys": In(unsigned(cfg.key_count_bits)),
            "causal": In(1),
            "causal_offset": In(causal_offset_shape(cfg)),
            "early_termination": In(1),
            "pruning": In(1),
            "out": Out(stream.Signature(core_out(cfg))),
            "busy": Out(1),
        }
        if cfg.margin:
            sig["margin"] = In(unsigned(cfg.margin_frac_bits))
        if cfg.k_align:
            sig["align_error"] = Out(1)
        super().__init__(sig)

    @property
    def cfg(self) -> LeopardConfig:
        return self._cfg

    @property
    def latencies(self) -> dict[str, int]:
        """Fixed latencies in cycles (recorded in the build manifest)."""
        cfg = self._cfg
        return {"fe_query_overhead": cfg.fe_query_overhead,
                "be_query_overhead": cfg.be_query_overhead,
                "max_in_flight": cfg.queries_in_flight}

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.frontend = fe = FrontEnd(cfg, results=False)
        m.submodules.backend = be = BackEnd(cfg)
        stats_shape = layouts.query_stats(cfg)
        # Not SyncFIFOBuffered: at depth 2 it refuses a write in the cycle after a write,
        # and two queries that see no key finish in consecutive cycles.
        m.submodules.stats = stats_q = fifo.SyncFIFO(
            width=stats_shape.size, depth=cfg.queries_in_flight)

        wiring.connect(m, wiring.flipped(self.k_load), fe.k_load)
        wiring.connect(m, wiring.flipped(self.v_load), be.v_load)
        wiring.connect(m, fe.survivor, be.survivor)
        m.d.comb += [
            fe.threshold.eq(self.threshold),
            fe.early_termination.eq(self.early_termination & int(cfg.early_termination)),
            fe.pruning.eq(self.pruning & int(cfg.pruning)),
            be.scale_mant.eq(self.scale_mant),
            be.scale_shift.eq(self.scale_shift),
        ]
        if cfg.margin:
            m.d.comb += fe.margin.eq(self.margin)
        if cfg.k_align:
            m.d.comb += self.align_error.eq(fe.align_error)

        # Queries in flight: accepted by the front end, not yet output.
        in_flight = Signal(range(cfg.queries_in_flight + 1))
        fe_accept = Signal()
        out_take = Signal()
        m.d.sync += in_flight.eq(in_flight + fe_accept - out_take)

        # Causal visibility from the query counter.
        qi_bits = query_index_bits(cfg)
        q_count = Signal(unsigned(qi_bits))          # index of the next query
        q_index = Signal(unsigned(qi_bits))
        m.d.comb += q_index.eq(Mux(self.query.payload.first, 0, q_count))
        vis = Signal(signed(qi_bits + 2))
        m.d.comb += vis.eq(q_index + 1 + self.causal_offset)
        n_visible = Signal(unsigned(cfg.key_count_bits))
        with m.If(~self.causal):
            m.d.comb += n_visible.eq(self.n_keys)
        with m.Elif(vis <= 0):
            m.d.comb += n_visible.eq(0)
        with m.Elif(vis >= self.n_keys):
            m.d.comb += n_visible.eq(self.n_keys)
        with m.Else():
            m.d.comb += n_visible.eq(vis)

        gate = Signal()
        room = in_flight < cfg.queries_in_flight
        if cfg.overlap_norm:
            # Queries accepted but not yet released from the survivor store: query i
            # enters only once query i-2's store half is free (be.released).
            in_store = Signal(range(3))
            m.d.sync += in_store.eq(in_store + fe_accept - be.released)
            room = room & (in_store < 2)
        m.d.comb += [
            gate.eq(room),
            fe.query.valid.eq(self.query.valid & gate),
            fe.query.payload.data.eq(self.query.payload.data),
            fe.query.payload.n_visible.eq(n_visible),
            self.query.ready.eq(fe.query.ready & gate),
            fe_accept.eq(fe.query.valid & fe.query.ready),
        ]
        with m.If(fe_accept):
            m.d.sync += q_count.eq(Mux(q_index == (1 << qi_bits) - 1, q_index, q_index + 1))

        # Per-query front-end statistics wait for the back end's output of that query.
        m.d.comb += [stats_q.w_data.eq(fe.stats.as_value()),
                     stats_q.w_en.eq(fe.stats_valid)]
        st = data.View(stats_shape, stats_q.r_data)
        m.d.comb += [
            self.out.valid.eq(be.out.valid),
            self.out.payload.data.eq(be.out.payload.data),
            self.out.payload.all_pruned.eq(be.out.payload.all_pruned),
            self.out.payload.survivors.eq(be.out.payload.survivors),
            self.out.payload.overflow.eq(be.out.payload.overflow),
            self.out.payload.planes.eq(st.planes),
            self.out.payload.fe_cycles.eq(st.cycles),
            be.out.ready.eq(self.out.ready),
            out_take.eq(be.out.valid & self.out.ready),
            stats_q.r_en.eq(out_take),
            self.busy.eq(in_flight != 0),
        ]
        return m
