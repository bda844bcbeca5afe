"""The row normalizer: the accumulated value row times the reciprocal, rounded and saturated."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .carry_save import compress
from .mac import acc_row

__all__ = ["RowNormalizer"]


class RowNormalizer(wiring.Component):
    """``out = sat((acc * recip + 2**(L+R-1)) >> (L+R))`` with the reciprocal's bits serially.

    Matches ``out`` of :func:`sim.golden.softmax_value`. Instead of ``head_dim``
    ``acc_bits x (R+1)`` multipliers, each element keeps a product ``P`` that takes the
    reciprocal's quotient bits MSB first as the divider produces them (Horner:
    ``P <- 2 P + q * acc``), in carry-save form ``P = Ps + Pc`` (modulo
    ``2**norm_product_bits``, which holds every ``P`` as a signed value), so a step is one
    level of full adders and no carry propagates: d carry-save adders and no multipliers.
    The rounding constant ``2**(L+R-1)`` is preloaded as ``P = 2**(L-2)`` (``init``),
    which the R+1 doublings scale to ``2**(L+R-1)``; ``L >= exp_bits >= 4`` whenever a
    survivor exists (the max survivor has ``e = 2**E``).

    Pipeline after the steps (:attr:`latency` = ``cfg.norm_latency`` register stages):
    the carry-propagate add ``Ps + Pc``; the arithmetic shift by ``L + R`` (kept to the
    bits that decide the saturation); ``out`` is the combinational saturation of that
    register. Both stages run every cycle, so ``out`` is valid :attr:`latency` cycles
    after the last ``step`` took effect, until the next ``init``.

    Timing: ``init`` and each ``step`` take effect at the clock edge; ``l`` is sampled
    with ``init``. No handshake. Reset: the datapath registers are reset-less (loaded by
    ``init``).

    Members
    -------
    acc : In(ArrayLayout(signed(acc_bits), head_dim))
        Held during the steps.
    l : In(range)
        L; sampled with ``init``.
    init : In(1)
        Preload the rounding constant.
    step : In(1)
        One Horner step with ``q_bit``.
    q_bit : In(1)
        The reciprocal bit of this step.
    out : Out(out_row(cfg))
        The saturated output row.
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

    @property
    def latency(self) -> int:
        """Cycles from the last ``step`` taking effect until ``out`` shows the result."""
        return self._cfg.norm_latency

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        d, r = cfg.head_dim, cfg.recip_bits
        pw = cfg.norm_product_bits
        vmin, vmax = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1)) - 1
        # With a survivor, L >= exp_bits, so the shift is at least exp_bits + R and the
        # shifted value fits ``yw`` signed bits (without one the back end outputs zeros
        # whatever this computes).
        yw = max(cfg.v_bits + 1, pw - (cfg.exp_bits + r))
        rnd = Signal(pw, name="round_init")
        m.d.comb += rnd.eq((1 << self.l) >> 2)
        sh = Signal(range(cfg.sum_bits + r + 1), reset_less=True)
        with m.If(self.init):
            m.d.sync += sh.eq(self.l + r)
        for i in range(d):
            ps = Signal(pw, name=f"p{i}_s", reset_less=True)
            pc = Signal(pw, name=f"p{i}_c", reset_less=True)
            a, b = compress(m, [ps << 1, pc << 1, Mux(self.q_bit, self.acc[i], 0)], pw,
                            levels=1, name=f"p{i}")
            with m.If(self.init):
                m.d.sync += [ps.eq(rnd), pc.eq(0)]
            with m.Elif(self.step):
                m.d.sync += [ps.eq(a), pc.eq(b)]
            p = Signal(signed(pw), name=f"p{i}", reset_less=True)
            m.d.sync += p.eq(ps + pc)
            y_full = Signal(signed(pw), name=f"y{i}_full")
            m.d.comb += y_full.eq(p >> sh)
            y = Signal(signed(yw), name=f"y{i}", reset_less=True)
            m.d.sync += y.eq(y_full[:yw])
            with m.If(y > vmax):
                m.d.comb += self.out[i].eq(vmax)
            with m.Elif(y < vmin):
                m.d.comb += self.out[i].eq(vmin)
            with m.Else():
                m.d.comb += self.out[i].eq(y)
        return m
