"""Threshold unit (SPEC section 4, block 3).

Two components:

* :class:`PlaneThresholds`, the per-query, per-plane thresholds
  ``T_r = ceil((Th - Q+ (2^(p-r) - 1)) / 2^(p-r))``, r = 1..p, computed once per query and
  shared by all lanes, so that a lane's bound test ``UB_r < Th`` is the plain compare
  ``A_r < T_r`` (no per-lane shift or add);
* :class:`ThresholdUnit`, the run-time registers (threshold and the two switches
  ``early_termination`` / ``pruning``) loaded once per query, so that changing the inputs
  in the middle of a query never affects it.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig

__all__ = ["PlaneThresholds", "ThresholdUnit", "plane_threshold_shape"]


def plane_threshold_shape(cfg: LeopardConfig) -> signed:
    """Signed shape that holds every ``T_r`` exactly (no saturation).

    ``Th - Q+ (2^m - 1)`` lies within ``2^(threshold_bits-1) + 2^(qsum_bits-1+p-1)`` of 0
    for ``m <= p - 1``; one more bit for the rounding constant ``2^m - 1``. With
    ``k_align`` the aligned ``Th << k_align`` and ``Q+`` of ``q'``: the ``fe_`` widths.
    """
    return signed(max(cfg.fe_threshold_bits, cfg.fe_qsum_bits + cfg.qk_bits - 1) + 2)


class PlaneThresholds(wiring.Component):
    """Per-plane thresholds of one query: ``A_r < T_r`` exactly when ``UB_r < Th``.

    With ``m = p - r`` planes unread, ``UB_r = 2^m A_r + Q+ (2^m - 1)`` (the rule of
    :func:`sim.golden.bitserial_prune`). For integer ``A_r``,
    ``2^m A_r < x  <=>  A_r < ceil(x / 2^m)`` with ``x = Th - Q+ (2^m - 1)``, so
    ``T_r = (Th + Q+ - (Q+ << m) + 2^m - 1) >> m`` (arithmetic shift: floor). ``T_p = Th``.
    Computed in full width (:func:`plane_threshold_shape`): a threshold beyond every
    reachable ``A_r`` gives a ``T_r`` beyond it too.

    With a margin (``cfg.margin > 0``) ``Q+`` is first replaced by
    ``Q+' = Q+ - ((margin * qabs) >> margin_frac_bits)`` (:mod:`sim.margin`); ``T_p = Th``
    still, so the last plane's test stays exact.

    With ``k_align`` (:mod:`sim.align`) the bound is on the aligned operands: ``Th`` is
    replaced by ``Th << k_align`` and ``qpos`` (``qabs``) are of ``q'``.

    Purely combinational; the lane array registers the outputs (they depend only on the
    query's ``Th``, ``Q+`` (``qabs``, ``margin``), stable for the whole query).

    Members
    -------
    threshold : In(signed(threshold_bits))
        The threshold register ``Th``.
    qpos : In(signed(fe_qsum_bits))
        ``Q+ = sum max(q_i, 0)`` of the (aligned) query (non-negative).
    qabs : In(unsigned(fe_qsum_bits)), margin : In(unsigned(margin_frac_bits))
        Only with a margin: ``Q+ + Q- = sum |q_i|`` and the margin register.
    t : Out(ArrayLayout(plane_threshold_shape(cfg), qk_bits))
        ``t[r - 1] = T_r``.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "threshold": In(signed(cfg.threshold_bits)),
            "qpos": In(signed(cfg.fe_qsum_bits)),
            "t": Out(data.ArrayLayout(plane_threshold_shape(cfg), cfg.qk_bits)),
        }
        if cfg.margin:
            sig.update(qabs=In(unsigned(cfg.fe_qsum_bits)),
                       margin=In(unsigned(cfg.margin_frac_bits)))
        super().__init__(sig)

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        p = cfg.qk_bits
        shape = plane_threshold_shape(cfg)
        qpos = self.qpos
        if cfg.margin:      # Q+' = Q+ - floor(margin * qabs / 2^F): within [-Q-, Q+]
            qpos = Signal(signed(cfg.fe_qsum_bits), name="qpos_margin")
            m.d.comb += qpos.eq(self.qpos - ((self.margin * self.qabs)
                                              >> cfg.margin_frac_bits))
        base = Signal(shape)
        th = (self.threshold << cfg.k_align) if cfg.k_align else self.threshold
        m.d.comb += base.eq(th + qpos)
        for r in range(1, p + 1):
            sh = p - r
            x = Signal(shape, name=f"x{r}")
            m.d.comb += [x.eq(base - (qpos << sh) + ((1 << sh) - 1)),
                         self.t[r - 1].eq(x >> sh)]
        return m


class ThresholdUnit(wiring.Component):
    """Run-time registers of the compare-and-terminate unit, loaded once per query.

    The host drives ``threshold`` (the register value of :func:`sim.golden.
    threshold_register` for the head being processed) and the switches; they are captured
    when ``load`` is high (the front end pulses it when it accepts a query) and held for
    the whole query. With both switches low the same hardware is the baseline of SPEC
    section 6. A switch whose generator parameter (``cfg.early_termination`` /
    ``cfg.pruning``) is False is tied low, so the compare logic is removed by synthesis.

    Latency 1 (registered outputs); no handshake. Reset: threshold 0, switches 0.

    Members
    -------
    threshold : In(signed(threshold_bits))
    early_termination, pruning : In(1)
    load : In(1)
        Capture the three inputs at the next clock edge.
    th : Out(signed(threshold_bits))
    et : Out(1)
        Early termination in effect (``early_termination & pruning``, as in the golden model:
        without a threshold nothing can terminate early).
    pr : Out(1)
        Pruning in effect.
    margin : In(unsigned(margin_frac_bits)), mg : Out(unsigned(margin_frac_bits))
        Only with a margin (``cfg.margin > 0``): the margin register, loaded like
        ``threshold``.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        sig = {
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "load": In(1),
            "th": Out(signed(cfg.threshold_bits)),
            "et": Out(1),
            "pr": Out(1),
        }
        if cfg.margin:
            sig.update(margin=In(unsigned(cfg.margin_frac_bits)),
                       mg=Out(unsigned(cfg.margin_frac_bits)))
        super().__init__(sig)

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        th = Signal.like(self.th, name="th_reg")
        et = Signal(name="et_reg")
        pr = Signal(name="pr_reg")
        with m.If(self.load):
            m.d.sync += [th.eq(self.threshold), et.eq(self.early_termination),
                         pr.eq(self.pruning)]
        m.d.comb += [
            self.th.eq(th),
            self.pr.eq(pr if cfg.pruning else 0),
            self.et.eq((et & pr) if (cfg.early_termination and cfg.pruning) else 0),
        ]
        if cfg.margin:
            mg = Signal.like(self.mg, name="mg_reg")
            with m.If(self.load):
                m.d.sync += mg.eq(self.margin)
            m.d.comb += self.mg.eq(mg)
        return m
