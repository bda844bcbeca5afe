"""The exp unit of the back end: ``e = 2**E * 2**(-(M - S) * scale)`` in fixed point."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sim.golden import exp_lut

from ..config import LeopardConfig
from . import layouts
from .carry_save import compress_stage, prefix_add

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

    Pipeline (:attr:`latency` = ``cfg.exp_latency`` register stages, each short enough
    for a 1 GHz clock): ``x``; the ``scale_bits`` partial products of ``x * mant``
    reduced by carry-save stages (3:2 compressors, three levels each) to two rows; their
    sum; the rounding shift ``>> (shift - 1)`` (kept to the bits that decide ``t``);
    ``+ 1 >> 1``, the clamp of ``t >> F`` and the LUT read; the integer shift. Throughput:
    one score per cycle. No handshake: both streams are ``always_ready`` (valid bits ride
    along with the data); a valid input always yields a valid output ``latency`` cycles
    later. Reset: the valid bits clear; datapath registers are reset-less.

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
        return self._cfg.exp_latency

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        F, E = cfg.exp_frac_bits, cfg.exp_bits

        m.submodules.lut = lut = Memory(shape=layouts.lut_shape(cfg), depth=cfg.exp_lut_size,
                                        init=[int(v) for v in exp_lut(cfg)])
        lut_rd = lut.read_port(domain="comb")

        stages: list[tuple[Signal, Signal]] = []     # (valid, key) per register stage

        def stage() -> tuple[Signal, Signal]:
            v = Signal(name=f"v{len(stages)}")
            k = Signal(cfg.key_index_bits, name=f"k{len(stages)}", reset_less=True)
            pv, pk = stages[-1] if stages else (self.i.valid, self.i.payload.key)
            m.d.sync += [v.eq(pv), k.eq(pk)]
            stages.append((v, k))
            return v, k

        # x = M - S (non-negative: M is the maximum of the query's scores).
        stage()
        xa = Signal(cfg.score_bits, reset_less=True)
        diff = prefix_add(m, self.m, ~self.i.payload.score, cfg.score_bits, 1, name="x")
        m.d.sync += xa.eq(diff[:cfg.score_bits])

        # x * mant: one partial product per mantissa bit, carry-save reduced to two rows.
        w = cfg.exp_arg_bits
        rows: list[Value] = [Mux(self.mant[j], xa, 0) << j for j in range(cfg.scale_bits)]
        n = 0
        while len(rows) > 2:
            comb = compress_stage(m, rows, w, name=f"pp{n}")
            stage()
            rows = []
            for j, r in enumerate(comb):
                reg = Signal(w, name=f"pp{n}_r{j}", reset_less=True)
                m.d.sync += reg.eq(r)
                rows.append(reg)
            n += 1
        stage()
        pb = Signal(w, reset_less=True)
        assert len(rows) == 2
        m.d.sync += pb.eq(prefix_add(m, rows[0], rows[1], w, name="p")[:w])

        # Rounding shift, kept to the bits that decide t: t = (y + 1) >> 1 only matters
        # through t mod 2**F and min(t >> F, E + 1); K bits above them tell E + 1 apart
        # (2**K > E + 1) and ``hi`` says whether anything above is set.
        K = (E + 2).bit_length()
        yw = min(w, F + 1 + K)
        sh = Signal(cfg.scale_shift_bits)
        m.d.comb += sh.eq(self.shift - 1)
        y_full = Signal(w)
        m.d.comb += y_full.eq(pb >> sh)
        stage()
        y = Signal(yw, reset_less=True)
        hi = Signal(reset_less=True)
        m.d.sync += [y.eq(y_full[:yw]), hi.eq(y_full[yw:].any() if yw < w else 0)]

        # t = (y + 1) >> 1; ipart = min(t >> F, E + 1); LUT[t mod 2**F].
        t = Signal(yw + 1)
        m.d.comb += t.eq(prefix_add(m, y, 0, yw, 1, name="inc") >> 1)
        ipart_raw = t >> F
        ipart = Signal(layouts.ipart_bits(cfg))
        with m.If(hi | (ipart_raw > E + 1)):
            m.d.comb += ipart.eq(E + 1)
        with m.Else():
            m.d.comb += ipart.eq(ipart_raw)
        m.d.comb += lut_rd.addr.eq(t[:F])
        stage()
        lut_q = Signal(layouts.lut_shape(cfg), reset_less=True)
        ip_q = Signal(layouts.ipart_bits(cfg), reset_less=True)
        m.d.sync += [lut_q.eq(lut_rd.data), ip_q.eq(ipart)]

        # e = LUT[...] >> ipart.
        vc, kc = stage()
        ec = Signal(cfg.e_bits, reset_less=True)
        m.d.sync += ec.eq(lut_q >> ip_q)
        assert len(stages) == self.latency, (len(stages), self.latency)

        m.d.comb += [self.o.valid.eq(vc), self.o.payload.key.eq(kc), self.o.payload.e.eq(ec)]
        return m
