"""The timing facts of the generated RTL: pipeline depths and per-query overheads.

Stated once here as properties of :class:`~leopard_rtl.config.LeopardConfig` (through the
:class:`TimingFacts` mixin): the RTL (``hw/``) is built from them and the cycle model
(``sim/perf.py``) reads them; the tests check both against simulation.
"""

from __future__ import annotations

#: Carry-save (3:2) levels per pipeline stage of the back end's multipliers.
CSA_LEVELS_PER_STAGE = 3


def csa_levels(rows: int, target: int = 2) -> int:
    """3:2 compressor levels that reduce ``rows`` addends to at most ``target`` (>= 2):
    each level turns every full group of three rows into two."""
    levels = 0
    while rows > target:
        rows -= rows // 3
        levels += 1
    return levels


def csa_stages(rows: int, target: int = 2) -> int:
    """Pipeline stages of :data:`CSA_LEVELS_PER_STAGE` levels for :func:`csa_levels`."""
    return -(-csa_levels(rows, target) // CSA_LEVELS_PER_STAGE)


class TimingFacts:
    """Pipeline constants of the RTL generated from a :class:`LeopardConfig` (a mixin: it
    reads the configuration's parameters and derived widths)."""

    # Attributes of LeopardConfig that the facts below read.
    planes_per_cycle: int
    lanes: int
    scale_bits: int
    v_bits: int
    overlap_norm: bool
    plane_slots: int
    recip_width: int

    # ------------------------------------------------------------- timing facts
    # The pipeline constants of the generated RTL, stated once: the RTL (hw/) is built
    # from them and the cycle model (sim/perf.py) reads them; the tests check both against
    # simulation.

    @property
    def fe_query_overhead(self) -> int:
        """Front-end cycles per query besides the makespan of its keys (the accept
        cycle: loading the query row, Q+ and the first keys' prefetch slots)."""
        return 1

    @property
    def fe_decision_latency(self) -> int:
        """Cycles from a lane's request of a bit-plane to the request slot in which the
        bound test on that plane can end the key, less one: the planes a lane requests
        after the deciding one (K read, then AND + first adder levels, then accumulate
        and compare, each registered). A key that uses r planes holds its lane for
        ``min(r + fe_decision_latency, qk_bits)`` cycles; its result appears
        ``r + fe_decision_latency`` cycles after its first request."""
        return 2

    @property
    def fe_full_key_cycles(self) -> int:
        """Cycles a key that requests its last plane slot holds its lane:
        :attr:`plane_slots`, or ``lanes`` if that is more and ``planes_per_cycle`` is 2.

        The lane waits ``lanes - plane_slots`` cycles after such a key, so each lane
        delivers at most one survivor per ``lanes`` cycles and the survivor queue (drained
        one per cycle) never fills: the cycle model stays exact. With one plane per cycle
        this padding is not applied (a design with ``lanes > qk_bits`` is not exact, see
        :attr:`cycle_model_exact`)."""
        if self.planes_per_cycle == 1:
            return self.plane_slots
        return max(self.plane_slots, self.lanes)

    @property
    def exp_latency(self) -> int:
        """Pipeline stages of the exp unit: ``M - S``; the ``scale_bits`` partial products
        of ``x * mant`` reduced by carry-save stages (:func:`csa_stages`) to two rows; their
        sum; the rounding shift; the LUT read; the integer shift."""
        return 5 + csa_stages(self.scale_bits)

    @property
    def mac_pp_stages(self) -> int:
        """Carry-save stages that reduce the ``v_bits`` partial products of ``e * v`` to at
        most four rows, which the accumulate stage adds to the carry-save accumulator."""
        return csa_stages(self.v_bits, 4)

    @property
    def mac_sum_latency(self) -> int:
        """Cycles from a survivor's e entering the MAC to ``sum`` including it."""
        return 2

    @property
    def mac_acc_latency(self) -> int:
        """Cycles from a survivor's e entering the MAC to ``acc`` including it: V read 1,
        partial-product stages, carry-save accumulate 1, resolve (carry-propagate add) 1."""
        return 3 + self.mac_pp_stages

    @property
    def recip_prep_cycles(self) -> int:
        """Reciprocal cycles from ``start`` before the divider's first digit: leading one
        of the sum 1, normalizing shift into the divider 1, three times the divisor 1."""
        return 3

    @property
    def recip_digits(self) -> int:
        """Radix-4 digits (cycles) of the ``recip_bits + 1``-bit reciprocal."""
        return (self.recip_width + 1) // 2

    @property
    def norm_latency(self) -> int:
        """Normalizer cycles after the last quotient digit: carry-propagate add of the
        carry-save products 1, rounding shift 1 (saturation feeds the output register)."""
        return 2

    @property
    def be_drain_cycles(self) -> int:
        """Back-end cycles from the last survivor's store read to the sum including it,
        less one: store read 1 + :attr:`exp_latency` + :attr:`mac_sum_latency` - 1. The
        accumulators follow :attr:`mac_acc_latency` - :attr:`mac_sum_latency` cycles later,
        within the reciprocal's :attr:`recip_prep_cycles` + 1 before the first product
        step."""
        return self.exp_latency + self.mac_sum_latency

    @property
    def be_norm_cycles(self) -> int:
        """Back-end cycles from a query's hand-off to the normalizer (the reciprocal's
        start) to its ``out.valid``: 1 (start the reciprocal) + :attr:`recip_prep_cycles`
        + :attr:`recip_digits` radix-4 digits of the restoring divider (one per cycle,
        fused with the d carry-save shift-and-add products) + :attr:`norm_latency` + 1
        (saturate, load the output register). The next hand-off comes no earlier."""
        return 1 + self.recip_prep_cycles + self.recip_digits + self.norm_latency + 1

    @property
    def be_query_overhead(self) -> int:
        """Back-end cycles per query besides one per stored survivor, without overlap:
        :attr:`be_drain_cycles` + :attr:`be_norm_cycles`."""
        return self.be_drain_cycles + self.be_norm_cycles

    @property
    def be_release_latency(self) -> int:
        """Cycles from a query's hand-off to the normalizer until its survivor-store half
        is free and the accumulator may start the next query: :attr:`be_norm_cycles`
        (the half is released with the output), or 1 with ``overlap_norm`` (released at
        the hand-off, its ``acc`` copied to the second bank; the release is registered)."""
        return 1 if self.overlap_norm else self.be_norm_cycles

    @property
    def queries_in_flight(self) -> int:
        """Queries accepted by the core's front end but not yet output: query i enters
        only once query i-k has left the back end, k = 2 (double-buffered survivor
        store), or 3 with ``overlap_norm`` (one more in the normalizer; query i then also
        waits for query i-2's store half, :attr:`be_release_latency`)."""
        return 3 if self.overlap_norm else 2

    @property
    def cycle_model_exact(self) -> bool:
        """Whether :func:`sim.perf.core_cycles` is cycle-exact for this configuration:
        ``lanes <= fe_full_key_cycles`` (a lane never finishes twice while another waits)
        and, with two planes per cycle, ``lanes <= plane_slots + fe_decision_latency + 1``
        (the padding of :attr:`fe_full_key_cycles` ends with the query, and a lane's
        survivors across a query boundary are that far apart)."""
        if self.planes_per_cycle == 2 and \
                self.lanes > self.plane_slots + self.fe_decision_latency + 1:
            return False
        return self.lanes <= self.fe_full_key_cycles
