"""Threshold compare-and-terminate unit (SPEC section 4, block 3).

Two components:

* :class:`ThresholdCompare`, the per-lane, per-cycle comparison ``UB_r < Th`` computed
  with one shift and two adds (no multiplier);
* :class:`ThresholdUnit`, the run-time registers (threshold and the two switches
  ``early_termination`` / ``pruning``) loaded once per query, so that changing the inputs
  in the middle of a query never affects it.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig

__all__ = ["ThresholdCompare", "ThresholdUnit", "shift_bits"]


def shift_bits(cfg: LeopardConfig) -> int:
    """Unsigned width of the remaining-plane count m = p - r (0..p-1)."""
    return max(1, (cfg.qk_bits - 1).bit_length())


class ThresholdCompare(wiring.Component):
    """Upper bound of a partially computed score and its comparison with the threshold.

    Matches the rule of :func:`sim.golden.bitserial_prune` bit for bit: after r planes
    with partial sum ``A_r`` and ``m = p - r`` planes left,
    ``UB_r = 2^m A_r + Q+ (2^m - 1)``. Because ``x (2^m - 1) = (x << m) - x``, the bound
    is computed as ``UB_r = ((A_r + Q+) << m) - Q+``: one barrel shift and two adders.

    Purely combinational (latency 0), no handshake, no state.

    Parameters
    ----------
    cfg : LeopardConfig
        Widths: ``score_bits``, ``qsum_bits``, ``bound_bits``, ``threshold_bits``.

    Members
    -------
    acc : In(signed(score_bits))
        ``A_r``, the partial sum after r planes.
    qpos : In(signed(qsum_bits))
        ``Q+ = sum max(q_i, 0)`` of the query (non-negative).
    shift : In(unsigned(shift_bits))
        ``m = p - r``, the planes not yet read.
    threshold : In(signed(threshold_bits))
        The threshold register ``Th``.
    enable : In(1)
        Early termination and pruning both on; when low, ``below`` is 0.
    ub : Out(signed(bound_bits + 1))
        ``UB_r``.
    below : Out(1)
        ``enable & (UB_r < Th)``: terminate the key now.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "acc": In(signed(cfg.score_bits)),
            "qpos": In(signed(cfg.qsum_bits)),
            "shift": In(unsigned(shift_bits(cfg))),
            "threshold": In(signed(cfg.threshold_bits)),
            "enable": In(1),
            "ub": Out(signed(cfg.bound_bits + 1)),
            "below": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        w = self._cfg.bound_bits + 1
        # (A_r + Q+) << m = UB_r + Q+ lies in [-2^(score_bits-2), 2^(score_bits-1) + Q+]:
        # bound_bits + 1 signed bits hold it, so the truncation below is exact.
        shifted = Signal(signed(w))
        m.d.comb += [
            shifted.eq((self.acc + self.qpos) << self.shift),
            self.ub.eq(shifted - self.qpos),
            self.below.eq(self.enable & (self.ub < self.threshold)),
        ]
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
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "threshold": In(signed(cfg.threshold_bits)),
            "early_termination": In(1),
            "pruning": In(1),
            "load": In(1),
            "th": Out(signed(cfg.threshold_bits)),
            "et": Out(1),
            "pr": Out(1),
        })

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
        return m
