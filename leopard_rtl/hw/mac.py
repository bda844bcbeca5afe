"""The value side of the back end: sum of e*v (one survivor per cycle) and normalization."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .carry_save import compress, compress_stage, prefix_add

__all__ = ["ValueAccumulator", "MacLane", "acc_row"]


def acc_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """``head_dim`` signed ``acc_bits`` accumulators."""
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.head_dim)


class ValueAccumulator(wiring.Component):
    """Running ``sum = sum e`` and ``acc = sum e * v`` over a query's survivors.

    Matches ``sum`` and ``acc`` of :func:`sim.golden.softmax_value`. One d-wide
    multiply-accumulate per cycle (``head_dim`` lanes, :class:`MacLane`): one survivor
    per cycle sustained, pipelined for a 1 GHz clock. Each signed ``v`` is offset to
    ``u = v + 2**(v_bits-1)`` (its sign bit flipped), so every partial product of
    ``e * u`` is non-negative; the ``v_bits`` partial products are carry-save reduced
    (``cfg.mac_pp_stages`` register stages) and added into a carry-save accumulator
    pair ``(s, c)`` (no carry propagation per survivor); a resolve stage forms
    ``acc = s + c - sum * 2**(v_bits-1)`` (one carry-propagate add, since
    ``sum e * v = sum e * u - 2**(v_bits-1) sum e``).

    Timing: an ``e_in`` transfer in cycle c drives ``v_addr`` (the V buffer's
    synchronous read port) in the same cycle; the row arrives on ``v_data`` in c+1;
    ``sum`` includes the survivor from c + ``cfg.mac_sum_latency`` and ``acc`` from
    c + :attr:`latency` (``cfg.mac_acc_latency``); both hold until the next ``clear``.
    ``clear`` (one cycle, while no survivor is in flight) zeroes them. No handshake
    (``e_in`` is always ready). Reset: the valid bits clear; the datapath registers are
    reset-less (cleared by ``clear`` before each query).

    Members
    -------
    e_in : In(stream.Signature(exp_out(cfg), always_ready=True))
        ``{key, e}`` from the :class:`~leopard_rtl.hw.exp_unit.ExpUnit`.
    v_addr : Out(unsigned(key_index_bits))
        V-buffer read address (the key of the ``e_in`` record).
    v_data : In(v_row(cfg))
        The V row read one cycle earlier.
    clear : In(1)
        Zero ``sum`` and the accumulators.
    acc : Out(ArrayLayout(signed(acc_bits), head_dim))
        The accumulated ``sum e * v`` per element.
    sum : Out(unsigned(sum_bits))
        The accumulated ``sum e``.
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
        """Cycles from an ``e_in`` transfer until ``acc`` includes it."""
        return self._cfg.mac_acc_latency

    @property
    def sum_latency(self) -> int:
        """Cycles from an ``e_in`` transfer until ``sum`` includes it."""
        return self._cfg.mac_sum_latency

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        vq = Signal()
        eq = Signal(cfg.e_bits, reset_less=True)
        m.d.comb += self.v_addr.eq(self.e_in.payload.key)
        m.d.sync += [vq.eq(self.e_in.valid), eq.eq(self.e_in.payload.e)]
        total = Signal(cfg.sum_bits, reset_less=True)
        with m.If(self.clear):
            m.d.sync += total.eq(0)
        with m.Elif(vq):
            m.d.sync += total.eq(prefix_add(m, total, eq, cfg.sum_bits, name="sum"))
        m.d.comb += self.sum.eq(total)
        for i in range(cfg.head_dim):
            lane = MacLane(cfg)
            m.submodules[f"lane{i}"] = lane
            m.d.comb += [lane.e.eq(self.e_in.payload.e), lane.valid.eq(self.e_in.valid),
                         lane.clear.eq(self.clear), lane.v.eq(self.v_data[i]),
                         lane.total.eq(total), self.acc[i].eq(lane.acc)]
        return m


class MacLane(wiring.Component):
    """One element of :class:`ValueAccumulator`: ``acc = sum e * v`` for one column of V.

    Each lane registers its own copy of ``e``, the valid bit and ``clear`` (so no
    broadcast net drives all ``head_dim`` lanes' partial products), then forms the
    ``v_bits`` partial products of ``e * (v + 2**(v_bits-1))``, reduces them by
    ``cfg.mac_pp_stages`` carry-save stages to at most four rows, adds those into the
    carry-save pair ``(s, c)`` and resolves ``acc = s + c - total * 2**(v_bits-1)``
    every cycle. Timing as :class:`ValueAccumulator` (``e``/``valid``/``clear`` are
    sampled at the edge ending the cycle they are presented in; ``v`` one cycle later).

    Members
    -------
    e : In(unsigned(e_bits))
    valid : In(1)
    clear : In(1)
    v : In(signed(v_bits))
        The V element, one cycle after ``e``.
    total : In(unsigned(sum_bits))
        ``sum e`` of the query (for the offset correction).
    acc : Out(signed(acc_bits))
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "e": In(unsigned(cfg.e_bits)),
            "valid": In(1),
            "clear": In(1),
            "v": In(signed(cfg.v_bits)),
            "total": In(unsigned(cfg.sum_bits)),
            "acc": Out(signed(cfg.acc_bits)),
        })

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        vb, aw = cfg.v_bits, cfg.acc_bits
        pw = cfg.e_bits + vb                  # e * u < 2**pw
        vq = Signal()
        clr = Signal()
        eq = Signal(cfg.e_bits, reset_less=True)
        m.d.sync += [vq.eq(self.valid), clr.eq(self.clear), eq.eq(self.e)]

        # Partial products of e * u, reduced to at most four rows.
        u = self.v.as_unsigned() ^ (1 << (vb - 1))
        rows: list[Value] = [Mux(u[j], eq, 0) << j for j in range(vb)]
        valid = vq
        for n in range(cfg.mac_pp_stages):
            nv = Signal(name=f"pp{n}_valid")
            m.d.sync += nv.eq(valid)
            valid = nv
            comb = compress_stage(m, rows, pw, target=4, name=f"pp{n}")
            regs = [Signal(pw, name=f"pp{n}_r{j}", reset_less=True) for j in range(len(comb))]
            m.d.sync += [r.eq(c) for r, c in zip(regs, comb, strict=True)]
            rows = list(regs)
        assert len(rows) <= 4

        # Carry-save accumulate; resolve acc = s + c - total * 2**(v_bits-1) (mod 2**aw).
        s = Signal(aw, name="acc_s", reset_less=True)
        c = Signal(aw, name="acc_c", reset_less=True)
        nxt = compress(m, [s, c, *rows], aw, levels=len(rows) + 2, name="acc")
        assert len(nxt) == 2
        with m.If(clr):
            m.d.sync += [s.eq(0), c.eq(0)]
        with m.Elif(valid):
            m.d.sync += [s.eq(nxt[0]), c.eq(nxt[1])]
        # ~(total << (v_bits-1)) over the full aw bits: invert after widening, so the
        # bits above the shifted total are ones (a narrower ~ would zero-extend them).
        tsh = Signal(aw)
        m.d.comb += tsh.eq(self.total << (vb - 1))
        corr = Signal(aw)
        m.d.comb += corr.eq(~tsh)
        a, b = compress(m, [s, c, corr], aw, levels=1, name="res")
        res = Signal(signed(aw), reset_less=True)
        m.d.sync += res.eq(prefix_add(m, a, b, aw, 1, name="resolve")[:aw])
        m.d.comb += self.acc.eq(res)
        return m
