"""cocotb tests of the emitted ``leopard_backend`` Verilog (Icarus and Verilator).

Run by :func:`leopard_rtl.tb.cocotb_runner.run_cocotb`, which passes the configuration and
the seed. Survivors come from the golden front end of a seeded random trace; every
output is compared with :func:`leopard_rtl.tb.backend.expected` field by field.
Payloads are packed and unpacked through the Amaranth layouts.
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from leopard_rtl.hw import layouts
from leopard_rtl.tb.backend import expected, front, predicted_cycles
from leopard_rtl.tb.cocotb_runner import config_from_env, seed_from_env
from leopard_rtl.tb.packing import pack, unpack
from sim.vectors import random_trace


class TB:
    """Clock, reset, a survivor/V source and an output sink with random idles."""

    def __init__(self, dut: Any, rng: np.random.Generator, p_in: float, p_out: float) -> None:
        self.dut = dut
        self.rng = rng
        self.p_in = p_in
        self.p_out = p_out
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    @property
    def cycle(self) -> int:
        """Index of the clock edge just seen (from simulation time, period 10 ns)."""
        return int(get_sim_time(unit="ns")) // 10

    async def reset(self) -> None:
        d = self.dut
        d.rst.value = 1
        d.survivor__valid.value = 0
        d.v_load__valid.value = 0
        d.out__ready.value = 0
        for _ in range(2):
            await RisingEdge(d.clk)
        d.rst.value = 0

    async def send(self, name: str, payload: int) -> int:
        """Transfer one payload on stream ``name``; return the cycle of the transfer."""
        d = self.dut
        valid, pay, ready = (getattr(d, f"{name}__{s}") for s in ("valid", "payload", "ready"))
        while self.p_in and self.rng.random() < self.p_in:
            valid.value = 0
            await RisingEdge(d.clk)
        pay.value = payload
        valid.value = 1
        while True:
            await RisingEdge(d.clk)
            if ready.value:
                break
        valid.value = 0
        return self.cycle

    async def receive(self, n: int, layout: Any, out: list[tuple[int, Any]]) -> None:
        d = self.dut
        while len(out) < n:
            rdy = not (self.p_out and self.rng.random() < self.p_out)
            d.out__ready.value = int(rdy)
            await RisingEdge(d.clk)
            if rdy and d.out__valid.value:
                out.append((self.cycle, unpack(layout, d.out__payload.value.to_unsigned())))
        d.out__ready.value = 0


@cocotb.test()
@cocotb.parametrize(stalls=[(0.0, 0.0), (0.3, 0.4)])
async def test_backend_trace(dut: Any, stalls: tuple[float, float]) -> None:
    cfg = config_from_env()
    seed = seed_from_env()
    rng = np.random.default_rng(seed)
    p_in, p_out = stalls
    t = random_trace(rng, heads=2, n_queries=5, n_keys=cfg.max_keys, head_dim=cfg.head_dim,
                     qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind="realistic",
                     causal=True, prune_quantile=0.6)
    fe = front(t, cfg)
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    H, Nq = want["all_pruned"].shape
    tb = TB(dut, rng, p_in, p_out)
    await tb.reset()
    slay, vlay, olay = layouts.survivor(cfg), layouts.v_load(cfg), layouts.backend_out(cfg)
    outs: list[tuple[int, Any]] = []
    sink = cocotb.start_soon(tb.receive(H * Nq, olay, outs))
    starts = []
    for h in range(H):
        for j in range(t.n_keys):
            await tb.send("v_load", pack(vlay, {"data": [int(x) for x in t.v[h, j]],
                                                "first": int(j == 0)}))
        dut.scale_mant.value = int(fe["mant"][h])
        dut.scale_shift.value = int(fe["shift"][h])
        for i in range(Nq):
            keys = np.flatnonzero(fe["mask"][h, i])
            recs = [{"key": 0, "score": 0, "last": 1, "empty": 1}] if keys.size == 0 else [
                {"key": int(j), "score": int(fe["score"][h, i, j]),
                 "last": int(n == keys.size - 1), "empty": 0} for n, j in enumerate(keys)]
            for n, r in enumerate(recs):
                c = await tb.send("survivor", pack(slay, r))
                if i == 0 and n == 0:
                    starts.append(c)
    await sink
    for n, (_, o) in enumerate(outs):
        h, i = divmod(n, Nq)
        where = f"seed={seed} stalls={stalls} head={h} query={i}"
        assert o["data"] == list(want["out"][h, i]), f"{where}: out {o['data']}"
        assert o["all_pruned"] == int(want["all_pruned"][h, i]), f"{where}: all_pruned"
        assert o["survivors"] == int(want["survivors"][h, i]), f"{where}: survivors"
        assert o["overflow"] == int(want["overflow"][h, i]), f"{where}: overflow"
    if not p_in and not p_out:
        pred = predicted_cycles(want["survivors"], cfg)
        got = [outs[(h + 1) * Nq - 1][0] - starts[h] for h in range(H)]
        assert got == list(pred), f"seed={seed}: cycles {got} != perf model {list(pred)}"
