"""The row normalizer: the accumulated value row times the reciprocal, rounded and saturated."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .carry_save import compress, prefix_add
from .mac import acc_row

__all__ = ["RowNormalizer", "NormLane"]


class RowNormalizer(wiring.Component):
    """``out = sat((acc * recip + 2**(L+R-1)) >> (L+R))`` with the reciprocal's digits serially.

    Matches ``out`` of :func:`sim.golden.softmax_value`. Instead of ``head_dim``
    ``acc_bits x (R+1)`` multipliers, each element keeps a product ``P`` that takes the
    reciprocal's radix-4 digits MSB first as the divider produces them (Horner:
    ``P <- 4 P + k * acc``, ``k * acc`` as two rows ``2 k1 acc + k0 acc``), in carry-save
    form ``P = Ps + Pc`` (modulo ``2**norm_product_bits``, which holds every ``P`` as a
    signed value), so a step is two levels of full adders and no carry propagates: no
    multipliers. The rounding constant ``2**(L+R-1)`` is preloaded (``init``) as
    ``2**(L+R-1) / 4**digits`` (``2**(L-2)``, or ``2**(L-3)`` when R+1 is odd); ``L >=
    exp_bits >= 4`` whenever a survivor exists (the max survivor has ``e = 2**E``).

    ``head_dim`` lanes (:class:`NormLane`), each with its own registered copy of
    ``init``, ``step`` and ``q_digit``, so each takes effect one cycle after it is
    presented (feed it the divider's ``q_digit_next``/``q_valid_next``). After the
    steps (:attr:`latency` = ``cfg.norm_latency`` cycles from the last ``step`` taking
    effect to ``out``): the carry-propagate add ``Ps + Pc``; the arithmetic shift by
    ``L + R`` (kept to the bits that decide the saturation); ``out`` is the
    combinational saturation of that register. The add and shift stages run every
    cycle; ``out`` holds until the next ``init``.

    Timing: ``l`` is sampled with ``init`` (one cycle later, as ``init``, by the lanes:
    hold it). No handshake. Reset: the datapath registers are reset-less (loaded by
    ``init``).

    With ``cfg.overlap_norm`` each lane holds its own copy of ``acc`` (the second
    accumulator bank), loaded one cycle after ``capture`` is presented; the steps use that
    copy, so ``acc`` need not be held and the accumulator may start the next query.

    Members
    -------
    acc : In(ArrayLayout(signed(acc_bits), head_dim))
        Held during the steps.
    l : In(range)
        L; sampled with ``init``.
    init : In(1)
        Preload the rounding constant.
    step : In(1)
        One Horner step with ``q_digit``.
    q_digit : In(unsigned(2))
        The reciprocal digit of this step (0..3).
    capture : In(1)
        Only with ``cfg.overlap_norm``: copy ``acc`` into the lanes' second bank.
    out : Out(out_row(cfg))
        The saturated output row.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "acc": In(acc_row(cfg)),
            "l": In(unsigned(layouts.l_bits(cfg))),
            "init": In(1),
            "step": In(1),
            "q_digit": In(unsigned(2)),
            "out": Out(layouts.out_row(cfg)),
        }
        if cfg.overlap_norm:
            sig["capture"] = In(1)
        super().__init__(sig)

    @property
    def latency(self) -> int:
        """Cycles from the last ``step`` taking effect (the cycle after it is presented)
        until ``out`` shows the result."""
        return self._cfg.norm_latency

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        # 2**(L+R-1) / 4**digits: 2**(L-2), or 2**(L-3) when R+1 is odd (one more doubling).
        rnd = Signal(cfg.norm_product_bits, name="round_init")
        sh = Signal(range(cfg.sum_bits + cfg.recip_bits + 1))
        odd = 2 * cfg.recip_digits - cfg.recip_width
        m.d.comb += [rnd.eq((1 << self.l) >> (2 + odd)), sh.eq(self.l + cfg.recip_bits)]
        for i in range(cfg.head_dim):
            lane = NormLane(cfg)
            m.submodules[f"lane{i}"] = lane
            m.d.comb += [lane.acc.eq(self.acc[i]), lane.init.eq(self.init),
                         lane.step.eq(self.step), lane.q_digit.eq(self.q_digit),
                         lane.rnd.eq(rnd), lane.sh.eq(sh), self.out[i].eq(lane.out)]
            if cfg.overlap_norm:
                m.d.comb += lane.capture.eq(self.capture)
        return m


class NormLane(wiring.Component):
    """One element of :class:`RowNormalizer`.

    Registers its own copies of ``init``, ``step`` and ``q_digit`` (so no broadcast net
    drives all ``head_dim`` lanes), hence acts one cycle after they are presented:
    ``init`` loads ``Ps = rnd, Pc = 0`` and the shift ``sh``; ``step`` does
    ``(Ps, Pc) <- compress(4 Ps, 4 Pc, 2 k1 acc, k0 acc)``; every cycle ``P = Ps + Pc`` and
    ``y = P >> sh`` are registered; ``out`` saturates ``y`` (combinational).

    Members
    -------
    acc : In(signed(acc_bits))
    init, step : In(1)
    q_digit : In(unsigned(2))
    rnd : In(unsigned(norm_product_bits))
        The rounding constant ``2**(L-2)``, sampled with ``init``.
    sh : In(range)
        ``L + R``, sampled with ``init``.
    capture : In(1)
        Only with ``cfg.overlap_norm``: load the lane's copy of ``acc`` (one cycle later).
    out : Out(signed(v_bits))
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "acc": In(signed(cfg.acc_bits)),
            "init": In(1),
            "step": In(1),
            "q_digit": In(unsigned(2)),
            "rnd": In(unsigned(cfg.norm_product_bits)),
            "sh": In(range(cfg.sum_bits + cfg.recip_bits + 1)),
            "out": Out(signed(cfg.v_bits)),
        }
        if cfg.overlap_norm:
            sig["capture"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        pw = cfg.norm_product_bits
        vmin, vmax = -(1 << (cfg.v_bits - 1)), (1 << (cfg.v_bits - 1)) - 1
        # With a survivor, L >= exp_bits, so the shift is at least exp_bits + R and the
        # shifted value fits ``yw`` signed bits (without one the back end outputs zeros
        # whatever this computes).
        yw = max(cfg.v_bits + 1, pw - (cfg.exp_bits + cfg.recip_bits))
        init = Signal()
        step = Signal()
        q = Signal(2, reset_less=True)
        m.d.sync += [init.eq(self.init), step.eq(self.step), q.eq(self.q_digit)]
        sh = Signal.like(self.sh, reset_less=True)
        ps = Signal(pw, reset_less=True)
        pc = Signal(pw, reset_less=True)
        acc = self.acc
        if cfg.overlap_norm:
            cap = Signal()
            acc = Signal(signed(cfg.acc_bits), name="acc_bank", reset_less=True)
            m.d.sync += cap.eq(self.capture)
            with m.If(cap):
                m.d.sync += acc.eq(self.acc)
        a, b = compress(m, [ps << 2, pc << 2, Mux(q[1], acc << 1, 0),
                            Mux(q[0], acc, 0)], pw, levels=2, name="p")
        with m.If(init):
            m.d.sync += [ps.eq(self.rnd), pc.eq(0), sh.eq(self.sh)]
        with m.Elif(step):
            m.d.sync += [ps.eq(a), pc.eq(b)]
        p = Signal(signed(pw), reset_less=True)
        m.d.sync += p.eq(prefix_add(m, ps, pc, pw, name="resolve")[:pw])
        y_full = Signal(signed(pw))
        m.d.comb += y_full.eq(p >> sh)
        y = Signal(signed(yw), reset_less=True)
        m.d.sync += y.eq(y_full[:yw])
        # Saturate: y fits v_bits when its bits from v_bits-1 up are all equal (OR/AND
        # reductions, no comparator chain).
        top = y[cfg.v_bits - 1:]
        with m.If(~y[-1] & top.any()):
            m.d.comb += self.out.eq(vmax)
        with m.Elif(y[-1] & ~top.all()):
            m.d.comb += self.out.eq(vmin)
        with m.Else():
            m.d.comb += self.out.eq(y[:cfg.v_bits])
        return m
