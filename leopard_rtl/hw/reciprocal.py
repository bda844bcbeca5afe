"""Sequential restoring division for the back end's one reciprocal per query."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .carry_save import prefix_add

__all__ = ["leading_one", "RestoringDivider", "Reciprocal"]


def leading_one(m: Module, value: Value, width: int, name: str = "lead") -> Signal:
    """``floor(log2(value))`` (0 for ``value == 0``) by a tree of halves: log-depth."""
    nb = max(1, (width - 1).bit_length())

    def tree(lo: int, n: int) -> tuple[Value, Value]:
        """(any bit set, index of the highest set bit relative to lo) of bits lo..lo+n-1."""
        if n == 1:
            return value[lo], Const(0, 1)
        half = 1 << ((n - 1).bit_length() - 1)        # the lower part: a power of two
        any_lo, idx_lo = tree(lo, half)
        any_hi, idx_hi = tree(lo + half, n - half)
        idx = Signal(max(1, (n - 1).bit_length()), name=f"{name}_{lo}_{n}")
        m.d.comb += idx.eq(Mux(any_hi, idx_hi + half, idx_lo))
        return any_lo | any_hi, idx

    _, idx = tree(0, width)
    out = Signal(nb, name=name)
    m.d.comb += out.eq(idx)
    return out


class RestoringDivider(wiring.Component):
    """Radix-4 restoring division, two quotient bits (one digit) per cycle, MSB first.

    Computes ``floor(dividend * 2**(2 * digits - 1) / divisor)`` for
    ``dividend < 2 * divisor`` (so the quotient fits ``2 * digits`` bits). The partial
    remainder ``r`` stays below ``2 * divisor``; each step's digit is
    ``k = floor(2 r / divisor)`` (0..3), found by comparing ``2 r`` with ``divisor``,
    ``2 divisor`` and ``3 divisor`` in parallel (three subtractions whose results are
    also the candidate remainders), and ``r <- 2 (2 r - k divisor)``: no multiplier.

    Timing: ``start`` in cycle s loads the operands; s+1 registers ``3 * divisor``; the
    digits are computed in cycles s+2 .. s+1+digits (``q_digit_next``, with
    ``q_valid_next``) and come out of a register on ``q_digit`` (with ``q_valid``) in
    cycles s+3 .. s+2+digits, MSB first, ``q_last`` marking the last one; ``quotient``
    holds the full result from the cycle after the last digit until the next ``start``.
    ``busy`` is high from s+1 until the last digit. Reset: idle; datapath registers are
    reset-less.

    Parameters
    ----------
    width : int
        Width of ``dividend`` and ``divisor``.
    digits : int
        Radix-4 digits produced (= cycles per division after the set-up cycle).

    Members
    -------
    start : In(1)
        Load ``dividend`` and ``divisor`` and begin.
    dividend, divisor : In(unsigned(width))
        Sampled when ``start`` is high.
    q_valid_next : Out(1)
        A digit is computed this cycle (``q_valid`` next cycle).
    q_digit_next : Out(unsigned(2))
        That digit (combinational).
    q_valid, q_last : Out(1)
    q_digit : Out(unsigned(2))
        The digit of this cycle, MSB first (registered ``q_digit_next``).
    quotient : Out(unsigned(2 * digits))
    busy : Out(1)
    """

    #: Cycles from ``start`` to the first ``q_valid_next``.
    setup = 2

    def __init__(self, width: int, digits: int) -> None:
        self._width = width
        self._digits = digits
        super().__init__({
            "start": In(1),
            "dividend": In(unsigned(width)),
            "divisor": In(unsigned(width)),
            "q_valid_next": Out(1),
            "q_digit_next": Out(unsigned(2)),
            "q_valid": Out(1),
            "q_digit": Out(unsigned(2)),
            "q_last": Out(1),
            "quotient": Out(unsigned(2 * digits)),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the last ``q_valid`` (inclusive of that cycle)."""
        return self.setup + self._digits

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w, n = self._width, self._digits
        rem = Signal(w + 1, reset_less=True)
        dsr = Signal(w, reset_less=True)
        dsr3 = Signal(w + 2, reset_less=True)
        quo = Signal(2 * n, reset_less=True)
        count = Signal(range(n + 1))
        setup = Signal()
        run = Signal()
        rem2 = Signal(w + 2)
        m.d.comb += rem2.eq(rem << 1)
        # 2r - k*divisor for k = 1, 2, 3, each one extra bit for the borrow.
        diffs = []
        ge = []
        for k, mult in ((1, dsr), (2, dsr << 1), (3, dsr3)):
            mk = Signal(w + 2, name=f"mult{k}")
            m.d.comb += mk.eq(mult)
            dk = prefix_add(m, rem2, ~mk, w + 2, 1, name=f"diff{k}")
            diffs.append(dk[:w + 2])
            ge.append(dk[w + 2])                 # carry out: 2r >= k*divisor
        k = Signal(2)
        nxt = Signal(w + 2)
        with m.If(ge[2]):
            m.d.comb += [k.eq(3), nxt.eq(diffs[2])]
        with m.Elif(ge[1]):
            m.d.comb += [k.eq(2), nxt.eq(diffs[1])]
        with m.Elif(ge[0]):
            m.d.comb += [k.eq(1), nxt.eq(diffs[0])]
        with m.Else():
            m.d.comb += [k.eq(0), nxt.eq(rem2)]
        qv = Signal()
        qd = Signal(2, reset_less=True)
        ql = Signal()
        m.d.sync += [qv.eq(run), qd.eq(k), ql.eq(run & (count == 1))]
        m.d.comb += [self.q_valid_next.eq(run), self.q_digit_next.eq(k),
                     self.q_valid.eq(qv), self.q_digit.eq(qd), self.q_last.eq(ql),
                     self.busy.eq(setup | run), self.quotient.eq(quo)]
        m.d.sync += setup.eq(self.start)
        with m.If(self.start):
            m.d.sync += [rem.eq(self.dividend), dsr.eq(self.divisor), quo.eq(0)]
        with m.If(setup):
            m.d.sync += [dsr3.eq(prefix_add(m, dsr, dsr << 1, w + 2, name="dsr3")[:w + 2]),
                         count.eq(n), run.eq(1)]
        with m.Elif(run):
            m.d.sync += [rem.eq(nxt << 1), quo.eq((quo << 2) | k),
                         count.eq(count - 1), run.eq(count != 1)]
        return m


class Reciprocal(wiring.Component):
    """``recip = floor(2**(L + R) / sum)`` with ``L = floor(log2(sum))``, two bits a cycle.

    Matches ``recip`` and ``l`` of :func:`sim.golden.softmax_value`. ``sum`` is normalized
    (``sum_n = sum << (W - L)``, ``W = sum_bits - 1``, so ``2**W <= sum_n < 2**(W+1)``);
    then ``recip = floor(2**(W+R) / sum_n)`` (R+1 bits, in ``(2**(R-1), 2**R]``) by a radix-4
    :class:`RestoringDivider` of :attr:`digits` = ``ceil((R+1)/2)`` digits, MSB first, so
    a consumer can fold them into a shift-and-add multiply on the fly. For an odd number
    of digit bits (R even) the dividend is ``2**(W-1)`` and the first digit is 0 or 1.

    Timing (:attr:`prep` cycles from ``start`` to the first digit computed, each stage
    short for a 1 GHz clock): ``start`` in cycle c samples ``sum`` and registers its
    leading one ``l`` (valid from c+1); c+1 loads the normalized ``sum_n`` into the
    divider; c+2 its ``3 sum_n``; digits on ``q_digit_next``/``q_valid_next`` in cycles
    c+3 .. c+2+digits and on the registers ``q_digit``/``q_valid`` one cycle later
    (``q_last`` with the last). ``recip`` is valid from the cycle after ``q_last``.
    ``sum == 0`` gives ``l = 0`` and a meaningless quotient (the back end outputs zeros
    then). ``start`` must not be raised again before ``q_last``. Reset: idle.

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
    q_valid_next, q_digit_next, q_valid, q_digit, q_last : Out
        The quotient digits, as :class:`RestoringDivider`.
    recip : Out(unsigned(recip_bits + 1))
    busy : Out(1)
        From ``start`` until the last digit.
    """

    #: Cycles from ``start`` before the first digit is computed (``q_valid_next``).
    prep = 1 + RestoringDivider.setup

    def __init__(self, sum_bits: int, recip_bits: int) -> None:
        self._sum_bits = sum_bits
        self._r = recip_bits
        lb = max(1, (sum_bits - 1).bit_length())
        super().__init__({
            "start": In(1),
            "sum": In(unsigned(sum_bits)),
            "l": Out(unsigned(lb)),
            "q_valid_next": Out(1),
            "q_digit_next": Out(unsigned(2)),
            "q_valid": Out(1),
            "q_digit": Out(unsigned(2)),
            "q_last": Out(1),
            "recip": Out(unsigned(recip_bits + 1)),
            "busy": Out(1),
        })

    @property
    def digits(self) -> int:
        """Radix-4 digits of the R+1-bit reciprocal."""
        return (self._r + 2) // 2

    @property
    def odd(self) -> bool:
        """R+1 is odd: the first digit carries one bit (0 or 1)."""
        return (self._r + 1) % 2 == 1

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the last ``q_valid`` (inclusive)."""
        return self.prep + self.digits

    def elaborate(self, platform: object) -> Module:
        m = Module()
        sb = self._sum_bits
        w = sb - 1
        m.submodules.div = div = RestoringDivider(sb, self.digits)
        lead = leading_one(m, self.sum, sb)
        l_reg = Signal.like(self.l, reset_less=True)
        s_reg = Signal(sb, reset_less=True)
        p1 = Signal()
        m.d.sync += p1.eq(self.start)
        with m.If(self.start):
            m.d.sync += [l_reg.eq(lead), s_reg.eq(self.sum)]
        norm_sh = Signal(range(sb))
        m.d.comb += norm_sh.eq(w - l_reg)
        m.d.comb += [
            self.l.eq(l_reg),
            div.start.eq(p1),
            div.dividend.eq(1 << (w - 1 if self.odd else w)),
            div.divisor.eq((s_reg << norm_sh)[:sb]),
            self.q_valid_next.eq(div.q_valid_next), self.q_digit_next.eq(div.q_digit_next),
            self.q_valid.eq(div.q_valid), self.q_digit.eq(div.q_digit),
            self.q_last.eq(div.q_last), self.recip.eq(div.quotient),
            self.busy.eq(p1 | div.busy),
        ]
        return m
