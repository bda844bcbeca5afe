"""The LeOPArd back end (SPEC section 4, block 4): softmax and value pipeline."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .exp_unit import ExpUnit
from .mac import ValueAccumulator
from .normalizer import RowNormalizer
from .reciprocal import Reciprocal
from .survivor_store import SurvivorStore
from .vbuffer import VBuffer

__all__ = ["BackEnd"]


class BackEnd(wiring.Component):
    """Softmax/value back end: one output row per query from its surviving scores.

    Bit-exact with :func:`sim.golden.softmax_value` (``out``, ``all_pruned``; the number
    of survivors is reported too). Per query: M = max surviving score (tracked while the
    survivors are written); per survivor ``e = LUT[t mod 2**F] >> min(t >> F, E+1)`` with
    ``t = round((M - S) * mant / 2**shift)`` (:class:`~leopard_rtl.hw.exp_unit.ExpUnit`);
    ``sum += e`` and ``acc += e * v`` (:class:`~leopard_rtl.hw.mac.ValueAccumulator`, one
    d-wide MAC per cycle); one reciprocal ``floor(2**(L+R) / sum)`` by a radix-4
    restoring divider (:class:`~leopard_rtl.hw.reciprocal.Reciprocal`, ``ceil((R+1)/2)``
    cycles) whose digits drive d carry-save shift-and-add products
    (:class:`~leopard_rtl.hw.normalizer.RowNormalizer`), then
    rounding and saturation to ``v_bits``. A query without survivors gives a zero row with
    ``all_pruned`` set.

    Schedule (the cycle formula; ``sim.perf`` models it). Survivors are written into a
    double-buffered store (:class:`~leopard_rtl.hw.survivor_store.SurvivorStore`); a query is
    committed the cycle after its ``last`` record is accepted. The back end processes
    committed queries in order, one at a time. Query i starts at
    ``be_start(i) = max(commit(i), be_end(i-1))`` and its ``out.valid`` rises at::

        be_end(i) = be_start(i) + n_i + cfg.be_query_overhead

    with ``n_i`` the stored survivors (``min(survivors, survivor_capacity)``) and
    ``cfg.be_query_overhead`` (the exp/MAC drain, the reciprocal's prep and quotient
    bits, the normalizer's pipeline and the output register), all-pruned queries
    included (``n_i = 0``). A store half is released (``survivor.ready`` may rise again for
    the query after next) in the same cycle ``be_end(i)``. With ``out`` always ready this
    is exactly :func:`sim.perf.pipeline_cycles` with ``fe_end(i) = commit(i)``.
    Throughput: one survivor per cycle sustained within a query.

    With ``cfg.overlap_norm`` the back end is two stages (:meth:`_two_stage`): the
    accumulator (store reads, exp, MAC) holds query i's sums from ``t0(i) + n_i +
    cfg.be_drain_cycles``; query i is handed off to the normalizer (reciprocal start, its
    ``acc`` copied into the normalizer's second bank, store half released) at
    ``h(i) = max(t0(i) + n_i + be_drain_cycles, be_end(i-1))`` and output at
    ``be_end(i) = h(i) + cfg.be_norm_cycles``; the accumulator starts query i+1 at
    ``t0(i+1) = max(commit(i+1), h(i) + cfg.be_release_latency)``
    (:func:`sim.perf.backend_step`). ``released`` pulses in each hand-off cycle.

    Handshakes: ``survivor`` stalls only when both store halves are full; ``v_load`` is
    ready only when no query is stored or in flight; ``out`` honours back-pressure (the
    back end waits with the next result until the previous one is taken).

    Reset: no query stored, output invalid, write pointers at 0.

    Parameters
    ----------
    cfg : LeopardConfig

    Members
    -------
    survivor : In(stream.Signature(survivor(cfg)))
        ``{key, score, last, empty}`` records of each query, at most one per cycle.
    v_load : In(stream.Signature(v_load(cfg)))
        ``{data, first}``: V rows in key order.
    scale_mant : In(unsigned(scale_bits))
        Softmax-scale mantissa; sampled with each query's ``last`` record.
    scale_shift : In(unsigned(scale_shift_bits))
        Softmax-scale shift (1 .. 2**scale_shift_bits - 1); sampled likewise.
    out : Out(stream.Signature(backend_out(cfg)))
        ``{data, all_pruned, survivors, overflow}``, one per query, in order.
    busy : Out(1)
        A query is stored or being processed.
    released : Out(1)
        Only with ``cfg.overlap_norm``: a store half is released (the hand-off cycle).
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "survivor": In(stream.Signature(layouts.survivor(cfg))),
            "v_load": In(stream.Signature(layouts.v_load(cfg))),
            "scale_mant": In(unsigned(cfg.scale_bits)),
            "scale_shift": In(unsigned(cfg.scale_shift_bits)),
            "out": Out(stream.Signature(layouts.backend_out(cfg))),
            "busy": Out(1),
        }
        if cfg.overlap_norm:
            sig["released"] = Out(1)
        super().__init__(sig)

    @property
    def cfg(self) -> LeopardConfig:
        return self._cfg

    @property
    def latencies(self) -> dict[str, int]:
        """Cycle counts recorded in the build manifest."""
        cfg = self._cfg
        return {"be_query_overhead": cfg.be_query_overhead, "exp": cfg.exp_latency,
                "mac": cfg.mac_acc_latency, "drain": cfg.be_drain_cycles,
                "norm_stage": cfg.be_norm_cycles, "release": cfg.be_release_latency,
                "reciprocal": cfg.recip_prep_cycles + cfg.recip_digits,
                "normalizer": cfg.norm_latency, "cycles_per_survivor": 1}

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.store = store = SurvivorStore(cfg)
        m.submodules.vbuf = vbuf = VBuffer(cfg)
        m.submodules.exp = exp = ExpUnit(cfg)
        m.submodules.mac = mac = ValueAccumulator(cfg)
        m.submodules.recip = recip = Reciprocal(cfg.sum_bits, cfg.recip_bits)
        m.submodules.norm = norm = RowNormalizer(cfg)

        wiring.connect(m, wiring.flipped(self.survivor), store.survivor)
        wiring.connect(m, wiring.flipped(self.v_load), vbuf.v_load)
        wiring.connect(m, exp.o, mac.e_in)
        m.d.comb += [
            store.scale_mant.eq(self.scale_mant), store.scale_shift.eq(self.scale_shift),
            exp.m.eq(store.m), exp.mant.eq(store.mant), exp.shift.eq(store.shift),
            vbuf.addr.eq(mac.v_addr), mac.v_data.eq(vbuf.data),
            recip.sum.eq(mac.sum), norm.l.eq(recip.l),
            norm.acc.eq(mac.acc), norm.q_digit.eq(recip.q_digit_next),
            norm.step.eq(recip.q_valid_next),
        ]
        # The reciprocal starts once ``sum`` holds the last survivor; ``acc`` follows
        # within the reciprocal's prep cycles, before the first product step.
        assert cfg.mac_acc_latency - cfg.mac_sum_latency <= cfg.recip_prep_cycles + 1
        assert recip.prep == cfg.recip_prep_cycles and recip.digits == cfg.recip_digits
        assert norm.latency == cfg.norm_latency

        cap = cfg.survivor_capacity
        idx = Signal(range(max(2, cap)))
        issue = Signal()
        issued = Signal()                 # a store read was issued last cycle
        m.d.sync += issued.eq(issue)
        m.d.comb += [store.rd_idx.eq(idx), exp.i.valid.eq(issued),
                     exp.i.payload.key.eq(store.rd_data.key),
                     exp.i.payload.score.eq(store.rd_data.score)]
        drain = Signal(range(max(cfg.be_drain_cycles, cfg.norm_latency)))
        init = Signal()                   # the reciprocal started last cycle: L is ready
        m.d.comb += norm.init.eq(init)

        out_free = ~self.out.valid | self.out.ready
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        if cfg.overlap_norm:
            self._two_stage(m, store, mac, recip, norm, issue, idx, init, out_free)
            m.d.comb += vbuf.enable.eq(store.idle)
            return m

        with m.FSM(name="be"):
            _accumulate_states(m, store, mac.clear, issue, idx, drain, cfg.be_drain_cycles,
                               then="NORM")
            with m.State("NORM"):
                m.d.comb += recip.start.eq(1)
                m.d.sync += init.eq(1)
                m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += init.eq(0)
                with m.If(recip.q_last):
                    if cfg.norm_latency:
                        m.d.sync += drain.eq(cfg.norm_latency - 1)
                        m.next = "FINISH"
                    else:
                        m.next = "OUT"
            with m.State("FINISH"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.next = "OUT"
            with m.State("OUT"):
                with m.If(out_free):
                    empty = store.count == 0
                    m.d.sync += [
                        self.out.valid.eq(1),
                        self.out.payload.all_pruned.eq(empty),
                        self.out.payload.survivors.eq(store.total),
                        self.out.payload.overflow.eq(store.overflow),
                    ]
                    m.d.sync += [self.out.payload.data[i].eq(Mux(empty, 0, norm.out[i]))
                                 for i in range(cfg.head_dim)]
                    m.d.comb += store.release.eq(1)
                    m.next = "IDLE"
        m.d.comb += [self.busy.eq(~store.idle), vbuf.enable.eq(store.idle)]
        return m

    def _two_stage(self, m: Module, store: SurvivorStore, mac: ValueAccumulator,
                   recip: Reciprocal, norm: RowNormalizer, issue: Signal, idx: Signal,
                   init: Signal, out_free: Value) -> None:
        """The ``overlap_norm`` control: accumulator and normalizer as two FSMs.

        Hand-off in cycle h (accumulator done, normalizer free): the reciprocal samples
        ``sum``; the query's flags are kept; the store half is released (``released``);
        ``capture`` (presented ``a - 1`` cycles later, ``a = mac_acc_latency -
        mac_sum_latency``) copies ``acc``, final from h + a, into the normalizer's second
        bank before its first product step (h + recip_prep_cycles + 1). The accumulator
        starts the next query from h + 1; its ``clear`` is delayed ``max(0, a - 2)``
        cycles so that ``acc`` (valid one cycle after ``clear``) still holds query i at
        h + a.
        """
        cfg = self._cfg
        a = cfg.mac_acc_latency - cfg.mac_sum_latency
        assert 1 <= a <= cfg.recip_prep_cycles and cfg.be_release_latency == 1
        clear = Signal()
        m.d.comb += mac.clear.eq(_delay(m, clear, max(0, a - 2), "clear"))
        drain = Signal(range(max(2, cfg.be_drain_cycles)))
        done = Signal()                   # the accumulator holds a query's sums
        take = Signal()                   # hand-off
        with m.FSM(name="acc_stage"):
            _accumulate_states(m, store, clear, issue, idx, drain, cfg.be_drain_cycles,
                               then="DONE")
            with m.State("DONE"):
                m.d.comb += done.eq(1)
                with m.If(take):
                    m.next = "IDLE"

        m.d.comb += norm.capture.eq(_delay(m, take, a - 1, "capture"))
        empty = Signal()
        total = Signal.like(store.total)
        ovf = Signal()
        fin = Signal(range(max(2, cfg.norm_latency)))
        with m.FSM(name="norm_stage") as fsm:
            with m.State("WAIT"):
                with m.If(done):
                    m.d.comb += [take.eq(1), recip.start.eq(1), store.release.eq(1)]
                    m.d.sync += [init.eq(1), empty.eq(store.count == 0),
                                 total.eq(store.total), ovf.eq(store.overflow)]
                    m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += init.eq(0)
                with m.If(recip.q_last):
                    if cfg.norm_latency:
                        m.d.sync += fin.eq(cfg.norm_latency - 1)
                        m.next = "FINISH"
                    else:
                        m.next = "OUT"
            with m.State("FINISH"):
                m.d.sync += fin.eq(fin - 1)
                with m.If(fin == 0):
                    m.next = "OUT"
            with m.State("OUT"):
                with m.If(out_free):
                    m.d.sync += [
                        self.out.valid.eq(1),
                        self.out.payload.all_pruned.eq(empty),
                        self.out.payload.survivors.eq(total),
                        self.out.payload.overflow.eq(ovf),
                    ]
                    m.d.sync += [self.out.payload.data[i].eq(Mux(empty, 0, norm.out[i]))
                                 for i in range(cfg.head_dim)]
                    m.next = "WAIT"
        m.d.comb += [self.released.eq(take),
                     self.busy.eq(~store.idle | ~fsm.ongoing("WAIT"))]


def _accumulate_states(m: Module, store: SurvivorStore, clear: Value, issue: Value,
                       idx: Value, drain: Value, drain_cycles: int, *, then: str) -> None:
    """The accumulate phase's FSM states (``IDLE``, ``RUN``, ``DRAIN``), inside an open
    ``m.FSM``: clear the accumulator when a query's survivors are ready, issue them one
    per cycle, wait ``drain_cycles`` for the exp/MAC pipeline, then go to state ``then``.
    Shared by the serial back end and the accumulate stage of ``overlap_norm``."""
    with m.State("IDLE"):
        with m.If(store.valid):
            m.d.comb += clear.eq(1)
            with m.If(store.count == 0):
                m.d.sync += drain.eq(drain_cycles - 2)
                m.next = "DRAIN"
            with m.Else():
                m.d.comb += [issue.eq(1), store.rd_idx.eq(0)]
                m.d.sync += idx.eq(1)
                with m.If(store.count == 1):
                    m.d.sync += drain.eq(drain_cycles - 1)
                    m.next = "DRAIN"
                with m.Else():
                    m.next = "RUN"
    with m.State("RUN"):
        m.d.comb += issue.eq(1)
        m.d.sync += idx.eq(idx + 1)
        with m.If(idx == store.count - 1):
            m.d.sync += drain.eq(drain_cycles - 1)
            m.next = "DRAIN"
    with m.State("DRAIN"):
        m.d.sync += drain.eq(drain - 1)
        with m.If(drain == 0):
            m.next = then


def _delay(m: Module, sig: Value, n: int, name: str) -> Value:
    """``sig`` delayed by ``n`` register stages (``sig`` itself for n = 0)."""
    for k in range(n):
        q = Signal(name=f"{name}_d{k}")
        m.d.sync += q.eq(sig)
        sig = q
    return sig
