"""The value side of the back end: sum of e*v (one survivor per cycle) and normalization."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts

__all__ = ["ValueAccumulator", "acc_row"]


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
            "e_in": In(stream.Signature(layouts.exp_out(cfg), always_ready=True)),
            "v_addr": Out(unsigned(cfg.key_index_bits)),
            "v_data": In(layouts.v_row(cfg)),
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


