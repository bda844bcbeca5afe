"""Back-end storage: the V buffer and the double-buffered survivor store."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts

__all__ = ["VBuffer"]


class VBuffer(wiring.Component):
    """The V buffer: ``max_keys`` rows of ``head_dim`` signed ``v_bits`` values.

    Rows are written from ``v_load`` in key order (``first`` restarts at row 0) and read
    by key index through a synchronous read port (data one cycle after ``addr``). A
    ``lib.memory.Memory``: flip-flops (or an inferred array) for ``memory="ff"``; a
    ``"macro"`` build uses the same portable memory for now.

    ``v_load.ready`` equals ``enable``: the back end accepts V rows only when no query is
    stored or in flight, so a query never sees a half-loaded V. Throughput: one row per
    cycle. Reset: write pointer 0; contents are not reset.

    Members
    -------
    v_load : In(stream.Signature(v_load(cfg)))
    enable : In(1)
    addr : In(unsigned(key_index_bits))
    data : Out(v_row(cfg))
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "v_load": In(stream.Signature(layouts.v_load(cfg))),
            "enable": In(1),
            "addr": In(unsigned(cfg.key_index_bits)),
            "data": Out(layouts.v_row(cfg)),
        })

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.mem = mem = Memory(shape=layouts.v_row(cfg), depth=cfg.max_keys, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        ptr = Signal(range(cfg.max_keys + 1))
        m.d.comb += self.v_load.ready.eq(self.enable)
        row = Mux(self.v_load.payload.first, 0, ptr)
        m.d.comb += [wr.addr.eq(row), wr.data.eq(self.v_load.payload.data),
                     wr.en.eq(self.v_load.valid & self.v_load.ready & (row < cfg.max_keys))]
        with m.If(self.v_load.valid & self.v_load.ready):
            m.d.sync += ptr.eq(Mux(row < cfg.max_keys, row + 1, row))
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(1), self.data.eq(rd.data)]
        return m


