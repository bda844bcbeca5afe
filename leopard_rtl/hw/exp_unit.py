"""The exp unit of the back end: ``e = 2**E * 2**(-(M - S) * scale)`` in fixed point."""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sim.golden import exp_lut

from ..config import LeopardConfig
from . import layouts

__all__ = ["ExpUnit"]


class ExpUnit(wiring.Component):
    """Fixed-point exp of a surviving score relative to the query's maximum.

    Matches the per-survivor part of :func:`sim.golden.softmax_value` bit for bit::

        x = M - S                                   (unsigned, score_bits)
        t = (((x * mant) >> (shift - 1)) + 1) >> 1  (round half up of x*mant / 2**shift)
        e = LUT[t mod 2**F] >> min(t >> F, E + 1)

    The base-2 exponent's integer part is a right shift and its fractional part indexes a
    ``2**F``-entry ROM built at elaboration from :func:`sim.golden.exp_lut`, so the two
    agree by construction.

    Pipeline: three register stages (``x``; ``x * mant``; rounding shift, LUT and
    integer shift), so :attr:`latency` is 3 cycles from ``i`` to ``o``. Throughput: one
    score per cycle. No handshake: both streams are ``always_ready`` (valid bits ride
    along with the data); a valid input always yields a valid output 3 cycles later.
    Reset: the valid bits clear; datapath registers are reset-less.

    Parameters
    ----------
    cfg : LeopardConfig
        Widths ``score_bits``, ``scale_bits``, ``scale_shift_bits``, ``exp_frac_bits`` F,
        ``exp_bits`` E.

    Members
    -------
    i : In(stream.Signature(exp_in(cfg), always_ready=True))
        ``{key, score}``: a surviving score tagged with its key index.
    o : Out(stream.Signature(exp_out(cfg), always_ready=True))
        ``{key, e}``: unsigned ``e_bits`` exp value and the key it belongs to.
    m : In(signed(score_bits))
        M, the query's largest surviving score; held while the query's scores flow.
    mant : In(unsigned(scale_bits))
        Softmax-scale mantissa (:func:`sim.golden.scale_registers`); held.
    shift : In(unsigned(scale_shift_bits))
        Softmax-scale shift, 1 .. 2**scale_shift_bits - 1; held.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "i": In(stream.Signature(layouts.exp_in(cfg), always_ready=True)),
            "o": Out(stream.Signature(layouts.exp_out(cfg), always_ready=True)),
            "m": In(signed(cfg.score_bits)),
            "mant": In(unsigned(cfg.scale_bits)),
            "shift": In(unsigned(cfg.scale_shift_bits)),
        })

    @property
    def cfg(self) -> LeopardConfig:
        return self._cfg

    @property
    def latency(self) -> int:
        """Cycles from a valid ``i`` to the matching valid ``o``."""
        return 3

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        F, E = cfg.exp_frac_bits, cfg.exp_bits

        m.submodules.lut = lut = Memory(shape=layouts.lut_shape(cfg), depth=cfg.exp_lut_size,
                                        init=[int(v) for v in exp_lut(cfg)])
        lut_rd = lut.read_port(domain="comb")

        # Stage a: x = M - S (non-negative: M is the maximum of the query's scores).
        va = Signal()
        ka = Signal(cfg.key_index_bits, reset_less=True)
        xa = Signal(cfg.score_bits, reset_less=True)
        m.d.sync += [va.eq(self.i.valid), ka.eq(self.i.payload.key),
                     xa.eq(self.m - self.i.payload.score)]

        # Stage b: x * mant.
        vb = Signal()
        kb = Signal(cfg.key_index_bits, reset_less=True)
        pb = Signal(cfg.exp_arg_bits, reset_less=True)
        m.d.sync += [vb.eq(va), kb.eq(ka), pb.eq(xa * self.mant)]

        # Stage c: t = round(x * mant / 2**shift); e = LUT[t mod 2**F] >> min(t >> F, E+1).
        sh = Signal(cfg.scale_shift_bits)
        m.d.comb += sh.eq(self.shift - 1)
        half = Signal(cfg.exp_arg_bits + 1)
        m.d.comb += half.eq((pb >> sh) + 1)
        t = Signal(cfg.exp_arg_bits)
        m.d.comb += t.eq(half >> 1)
        ipart_raw = t >> F
        ipart = Signal(layouts.ipart_bits(cfg))
        with m.If(ipart_raw > E + 1):
            m.d.comb += ipart.eq(E + 1)
        with m.Else():
            m.d.comb += ipart.eq(ipart_raw)
        m.d.comb += lut_rd.addr.eq(t[:F])
        vc = Signal()
        kc = Signal(cfg.key_index_bits, reset_less=True)
        ec = Signal(cfg.e_bits, reset_less=True)
        m.d.sync += [vc.eq(vb), kc.eq(kb), ec.eq(lut_rd.data >> ipart)]

        m.d.comb += [self.o.valid.eq(vc), self.o.payload.key.eq(kc), self.o.payload.e.eq(ec)]
        return m
