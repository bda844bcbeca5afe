"""The row normalizer: the accumulated value row times the reciprocal, rounded and saturated."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .mac import acc_row

__all__ = ["RowNormalizer"]


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
            "l": In(unsigned(layouts.l_bits(cfg))),
            "init": In(1),
            "step": In(1),
            "q_bit": In(1),
            "out": Out(layouts.out_row(cfg)),
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
