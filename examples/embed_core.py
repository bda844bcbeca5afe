"""Embedding the LeOPArd core in your own Amaranth design, simulated against the golden model.

    python examples/embed_core.py [--out build/examples/embed]

``MyAccelerator`` is a user's design: it holds the core, fixes the run-time registers of
one head (threshold, softmax scale, keys) at construction, and puts a FIFO on the output
stream. The example simulates it with Amaranth's simulator on one head of a random trace,
compares every output row with :func:`sim.golden.run_golden`, and writes its Verilog.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

import leopard_rtl as lr
from leopard_rtl.hw import layouts
from leopard_rtl.hw.core import core_out, core_query


class MyAccelerator(wiring.Component):
    """The core for one head with fixed registers, and an output FIFO of ``depth`` records.

    Members
    -------
    k_load, v_load, query : In(stream.Signature(...))
        The core's input streams, passed through.
    out : Out(stream.Signature(core_out(cfg)))
        Output records after the FIFO.
    """

    def __init__(self, cfg: lr.LeopardConfig, regs: dict[str, int], depth: int = 4) -> None:
        self.cfg, self.regs, self.depth = cfg, regs, depth
        super().__init__({
            "k_load": In(stream.Signature(layouts.k_load(cfg))),
            "v_load": In(stream.Signature(layouts.v_load(cfg))),
            "query": In(stream.Signature(core_query(cfg))),
            "out": Out(stream.Signature(core_out(cfg))),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.core = core = lr.LeopardCore(self.cfg)
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=core_out(self.cfg).size,
                                                      depth=self.depth)
        for name in ("k_load", "v_load", "query"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        m.d.comb += [getattr(core, k).eq(v) for k, v in self.regs.items()]
        m.d.comb += [q.w_data.eq(core.out.payload), q.w_en.eq(core.out.valid),
                     core.out.ready.eq(q.w_rdy),
                     self.out.payload.eq(q.r_data), self.out.valid.eq(q.r_rdy),
                     q.r_en.eq(self.out.ready)]
        return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/examples/embed", help="output folder")
    ap.add_argument("--seed", type=int, default=2, help="seed of the random trace")
    args = ap.parse_args()
    cfg = lr.preset("tiny")
    rng = np.random.default_rng(args.seed)
    trace = lr.random_trace(rng, heads=1, n_queries=5, n_keys=10, head_dim=cfg.head_dim,
                            qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind="realistic")
    golden = lr.run_golden(trace, cfg)
    regs = {"threshold": int(golden.threshold[0]), "scale_mant": int(golden.scale_mant[0]),
            "scale_shift": int(golden.scale_shift[0]), "n_keys": trace.n_keys,
            "causal": 0, "causal_offset": 0, "early_termination": 1, "pruning": 1}
    dut = MyAccelerator(cfg, regs)
    klay, vlay, qlay = layouts.k_load(cfg), layouts.v_load(cfg), core_query(cfg)
    got: list[list[int]] = []

    async def put(ctx: Any, port: Any, value: Any) -> None:
        ctx.set(port.payload, value)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)

    async def host(ctx: Any) -> None:
        for j in range(trace.n_keys):
            await put(ctx, dut.k_load, klay.const({"data": trace.k[0, j].tolist(),
                                                   "first": j == 0}))
            await put(ctx, dut.v_load, vlay.const({"data": trace.v[0, j].tolist(),
                                                   "first": j == 0}))
        for i in range(trace.n_queries):
            await put(ctx, dut.query, qlay.const({"data": trace.q[0, i].tolist(),
                                                  "first": i == 0}))

    async def reader(ctx: Any) -> None:
        ctx.set(dut.out.ready, 1)
        for _ in range(20_000):               # a bound, so that a hang fails
            _, _, valid, rec = await ctx.tick().sample(dut.out.valid, dut.out.payload)
            if valid:
                got.append([int(rec.data[i]) for i in range(cfg.head_dim)])
                if len(got) == trace.n_queries:
                    return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(reader)
    sim.run()
    want = golden.out[0].tolist()
    assert got == want, f"seed={args.seed}: outputs {got} != golden {want}"
    print(f"MyAccelerator: {len(got)} output rows == golden")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "my_accelerator.v"
    path.write_text(verilog.convert(dut, name="my_accelerator", emit_src=False))
    print(f"verilog {path}")


if __name__ == "__main__":
    main()
