"""The value side of the back end: sum of e*v (one survivor per cycle) and normalization."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import backend_layouts as bl
from .config import LeopardConfig

__all__ = ["ValueAccumulator", "RowNormalizer"]


def acc_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """``head_dim`` signed ``acc_bits`` accumulators."""
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.head_dim)


class ValueAccumulator(wiring.Component):
    """Running ``sum = sum e`` and ``acc = sum e * v`` over a query's survivors.

    Matches ``sum`` and ``acc`` of :func:`sim.golden.softmax_value`. One d-wide
    multiply-accumulate (``head_dim`` multipliers of ``e_bits x v_bits``) per cycle: one
    survivor per cycle sustained.

    Timing: an ``e_in`` transfer in cycle c drives ``v_addr`` (the V buffer's
    synchronous read port) in the same cycle; the row arrives on ``v_data`` in c+1, where
    the products are added; ``acc`` and ``sum`` show the survivor from c+2
    (:attr:`latency` = 2). ``clear`` (one cycle, while no survivor is in flight) zeroes
    both. No handshake (``e_in`` is always ready). Reset: the valid bit clears;
    accumulators are reset-less (cleared by ``clear`` before each query).

    Members
    -------
    e_in : In(stream.Signature(exp_out(cfg), always_ready=True))
        ``{key, e}`` from the :class:`~leopard_rtl.softmax.ExpUnit`.
    v_addr : Out(unsigned(key_index_bits))
        V-buffer read address (the key of the ``e_in`` record).
    v_data : In(v_row(cfg))
        The V row read one cycle earlier.
    clear : In(1)
    acc : Out(ArrayLayout(signed(acc_bits), head_dim))
    sum : Out(unsigned(sum_bits))
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "e_in": In(stream.Signature(bl.exp_out(cfg), always_ready=True)),
            "v_addr": Out(unsigned(cfg.key_index_bits)),
            "v_data": In(bl.v_row(cfg)),
            "clear": In(1),
            "acc": Out(acc_row(cfg)),
            "sum": Out(unsigned(cfg.sum_bits)),
        })

    @property
    def latency(self) -> int:
        """Cycles from an ``e_in`` transfer until ``acc``/``sum`` include it."""
        return 2

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        vq = Signal()
        eq = Signal(cfg.e_bits, reset_less=True)
        m.d.comb += self.v_addr.eq(self.e_in.payload.key)
        m.d.sync += [vq.eq(self.e_in.valid), eq.eq(self.e_in.payload.e)]
        acc = Signal(acc_row(cfg), reset_less=True)
        total = Signal(cfg.sum_bits, reset_less=True)
        # e is unsigned: extend it with a zero sign bit so the product is a signed multiply.
        es = Cat(eq, 0).as_signed()
        with m.If(self.clear):
            m.d.sync += total.eq(0)
            m.d.sync += [acc[i].eq(0) for i in range(cfg.head_dim)]
        with m.Elif(vq):
            m.d.sync += total.eq(total + eq)
            m.d.sync += [acc[i].eq(acc[i] + es * self.v_data[i]) for i in range(cfg.head_dim)]
        m.d.comb += [self.acc.eq(acc), self.sum.eq(total)]
        return m


class RowNormalizer(wiring.Component):
    """``out = sat((acc * recip + 2**(L+R-1)) >> (L+R))`` with the reciprocal's bits serially.

    Matches ``out`` of :func:`sim.golden.softmax_value`. Instead of ``head_dim``
    ``acc_bits x (R+1)`` multipliers, each element keeps a product register ``P`` that
    takes the reciprocal's quotient bits MSB first as the divider produces them (Horner:
    ``P <- 2 P + q * acc``), so the d products are complete in the same cycle as the
    reciprocal: d adders and no multipliers, no extra latency. The rounding constant
    ``2**(L+R-1)`` is preloaded as ``P = 2**(L-2)`` (``init``), which the R+1 doublings
    scale to ``2**(L+R-1)``; ``L >= exp_bits >= 4`` whenever a survivor exists (the max
    survivor has ``e = 2**E``).

    Timing: ``init`` and each ``step`` take effect at the clock edge; ``out`` is
    combinational from the ``P`` registers and ``l`` (a variable arithmetic shift and a
    saturation), valid from the cycle after the last ``step``. No handshake. Reset:
    ``P`` is reset-less (loaded by ``init``).

    Members
    -------
    acc : In(ArrayLayout(signed(acc_bits), head_dim))
        Held during the steps.
    l : In(range)
        L; used by ``init`` and by ``out``.
    init : In(1)
    step : In(1)
    q_bit : In(1)
        The reciprocal bit of this step.
    out : Out(out_row(cfg))
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "acc": In(acc_row(cfg)),
            "l": In(unsigned(bl.l_bits(cfg))),
            "init": In(1),
            "step": In(1),
            "q_bit": In(1),
            "out": Out(bl.out_row(cfg)),
        })

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        d, r = cfg.head_dim, cfg.recip_bits
        pw = cfg.norm_product_bits
        p = [Signal(signed(pw), name=f"p{i}", reset_less=True) for i in range(d)]
        rnd = Signal(pw, name="round_init")
        m.d.comb += rnd.eq((1 << self.l) >> 2)
        vmin, vmax = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1)) - 1
        sh = Signal(range(cfg.sum_bits + r + 1))
        m.d.comb += sh.eq(self.l + r)
        for i in range(d):
            with m.If(self.init):
                m.d.sync += p[i].eq(rnd.as_signed())
            with m.Elif(self.step):
                m.d.sync += p[i].eq((p[i] << 1) + Mux(self.q_bit, self.acc[i], 0))
            y = Signal(signed(pw), name=f"y{i}")
            m.d.comb += y.eq(p[i] >> sh)
            with m.If(y > vmax):
                m.d.comb += self.out[i].eq(vmax)
            with m.Elif(y < vmin):
                m.d.comb += self.out[i].eq(vmin)
            with m.Else():
                m.d.comb += self.out[i].eq(y)
        return m
