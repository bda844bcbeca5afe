"""Sequential restoring division for the back end's one reciprocal per query."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["leading_one", "RestoringDivider", "Reciprocal"]


def leading_one(m: Module, value: Value, width: int, name: str = "lead") -> Signal:
    """``floor(log2(value))`` as a combinational priority encoder (0 for ``value == 0``)."""
    out = Signal(max(1, (width - 1).bit_length()), name=name)
    for b in range(width):          # later (higher) bits take priority
        with m.If(value[b]):
            m.d.comb += out.eq(b)
    return out


class RestoringDivider(wiring.Component):
    """Restoring division, one quotient bit per cycle, most significant bit first.

    Computes ``floor(dividend * 2**(quotient_bits - 1) / divisor)`` for
    ``dividend < 2 * divisor`` (so the quotient fits ``quotient_bits`` bits). Each step
    compares the partial remainder with the divisor, emits the quotient bit, subtracts
    when it is 1 and doubles the remainder: no multiplier.

    Timing: ``start`` is sampled on a clock edge; quotient bits come out of a register
    on ``q_bit`` (with ``q_valid``) in the ``quotient_bits`` following cycles, MSB first,
    ``q_last`` marking the last one (the bit is computed a cycle ahead, so a consumer's
    fan-out is not behind the comparator); ``quotient`` holds the full result from the
    cycle after the last bit until the next ``start``. ``busy`` is high while bits are
    being produced. Reset: idle (``busy`` low); datapath registers are reset-less.

    Parameters
    ----------
    width : int
        Width of ``dividend`` and ``divisor``.
    quotient_bits : int
        Quotient bits produced (= cycles per division).

    Members
    -------
    start : In(1)
        Load ``dividend`` and ``divisor`` and begin.
    dividend, divisor : In(unsigned(width))
        Sampled when ``start`` is high.
    q_valid, q_bit, q_last : Out(1)
        The quotient bit of this cycle, MSB first (``q_bit`` is a register output).
    quotient : Out(unsigned(quotient_bits))
    busy : Out(1)
    """

    def __init__(self, width: int, quotient_bits: int) -> None:
        self._width = width
        self._qbits = quotient_bits
        super().__init__({
            "start": In(1),
            "dividend": In(unsigned(width)),
            "divisor": In(unsigned(width)),
            "q_valid": Out(1),
            "q_bit": Out(1),
            "q_last": Out(1),
            "quotient": Out(unsigned(quotient_bits)),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the last quotient bit (inclusive of that cycle)."""
        return self._qbits

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w, qb = self._width, self._qbits
        rem = Signal(w + 1, reset_less=True)
        dsr = Signal(w, reset_less=True)
        quo = Signal(qb, reset_less=True)
        count = Signal(range(qb + 1))
        busy = Signal()
        # The quotient bit is registered (``bit == rem >= dsr`` holds while busy) and
        # computed one cycle ahead without waiting for the subtraction: the next remainder
        # is ``2 (rem - bit dsr)``, and ``2 (rem - dsr) >= dsr`` is ``2 rem >= 3 dsr``, so
        # the next bit is one of two comparisons of ``2 rem`` against registered divisor
        # multiples, in parallel with the subtraction.
        bit = Signal(reset_less=True)
        dsr3 = Signal(w + 2, reset_less=True)
        rem2 = Signal(w + 2)
        rem_next = Signal(w + 1)
        nxt = Signal()
        m.d.comb += [rem2.eq(rem << 1),
                     rem_next.eq(Mux(bit, rem - dsr, rem) << 1),
                     nxt.eq(Mux(self.start, self.dividend >= self.divisor,
                                Mux(bit, rem2 >= dsr3, rem2 >= dsr))),
                     self.q_bit.eq(bit), self.q_valid.eq(busy),
                     self.q_last.eq(busy & (count == 1)), self.busy.eq(busy),
                     self.quotient.eq(quo)]
        m.d.sync += bit.eq(nxt)
        with m.If(self.start):
            m.d.sync += [rem.eq(self.dividend), dsr.eq(self.divisor),
                         dsr3.eq(self.divisor + (self.divisor << 1)), count.eq(qb),
                         busy.eq(1), quo.eq(0)]
        with m.Elif(busy):
            m.d.sync += [rem.eq(rem_next), quo.eq((quo << 1) | bit),
                         count.eq(count - 1), busy.eq(count != 1)]
        return m


class Reciprocal(wiring.Component):
    """``recip = floor(2**(L + R) / sum)`` with ``L = floor(log2(sum))``, R+1 bits serially.

    Matches ``recip`` and ``l`` of :func:`sim.golden.softmax_value`. ``sum`` is normalized
    (``sum_n = sum << (W - L)``, ``W = sum_bits - 1``, so ``2**W <= sum_n < 2**(W+1)``);
    then ``recip = floor(2**(W+R) / sum_n)`` by a :class:`RestoringDivider` with dividend
    ``2**W``: R+1 quotient bits, one per cycle, MSB first (``q_bit``), so a consumer can
    fold them into a shift-and-add multiply on the fly. ``recip`` lies in
    ``(2**(R-1), 2**R]``.

    Timing (:attr:`prep` = 2 stages before the divider, each short for a 1 GHz clock):
    ``start`` in cycle c samples ``sum`` and registers its leading one ``l`` (valid from
    c+1); c+1 registers the normalized ``sum_n``; the divider starts in c+2; ``q_valid``
    in cycles c+3 .. c+R+3 (``q_last`` in c+R+3); ``recip`` valid from c+R+4. ``sum ==
    0`` gives ``l = 0`` and a meaningless quotient (the back end outputs zeros then).
    ``start`` must not be raised again before ``q_last``. Reset: idle.

    Parameters
    ----------
    sum_bits : int
    recip_bits : int
        R.

    Members
    -------
    start : In(1)
        Sample ``sum`` and begin.
    sum : In(unsigned(sum_bits))
    l : Out(range)
        L, registered at ``start``.
    q_valid, q_bit, q_last : Out(1)
        The quotient bit of this cycle, MSB first (``q_bit`` is a register output).
    recip : Out(unsigned(recip_bits + 1))
    busy : Out(1)
        From ``start`` until the last quotient bit.
    """

    #: Cycles from ``start`` to the divider's start.
    prep = 2

    def __init__(self, sum_bits: int, recip_bits: int) -> None:
        self._sum_bits = sum_bits
        self._r = recip_bits
        lb = max(1, (sum_bits - 1).bit_length())
        super().__init__({
            "start": In(1),
            "sum": In(unsigned(sum_bits)),
            "l": Out(unsigned(lb)),
            "q_valid": Out(1),
            "q_bit": Out(1),
            "q_last": Out(1),
            "recip": Out(unsigned(recip_bits + 1)),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the last quotient bit."""
        return self.prep + self._r + 1

    def elaborate(self, platform: object) -> Module:
        m = Module()
        sb, r = self._sum_bits, self._r
        w = sb - 1
        m.submodules.div = div = RestoringDivider(sb, r + 1)
        lead = leading_one(m, self.sum, sb)
        l_reg = Signal.like(self.l, reset_less=True)
        s_reg = Signal(sb, reset_less=True)
        n_reg = Signal(sb, reset_less=True)
        p1 = Signal()
        p2 = Signal()
        m.d.sync += [p1.eq(self.start), p2.eq(p1)]
        with m.If(self.start):
            m.d.sync += [l_reg.eq(lead), s_reg.eq(self.sum)]
        norm_sh = Signal(range(sb))
        m.d.comb += norm_sh.eq(w - l_reg)
        m.d.sync += n_reg.eq((s_reg << norm_sh)[:sb])
        m.d.comb += [
            self.l.eq(l_reg),
            div.start.eq(p2),
            div.dividend.eq(1 << w),
            div.divisor.eq(n_reg),
            self.q_valid.eq(div.q_valid), self.q_bit.eq(div.q_bit),
            self.q_last.eq(div.q_last), self.recip.eq(div.quotient),
            self.busy.eq(p1 | p2 | div.busy),
        ]
        return m
