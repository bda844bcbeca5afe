"""Amaranth-simulation helpers: stream put/get with seeded random idle and back-pressure.

Use from async testbenches (``sim.add_testbench(async def bench(ctx): ...)``)::

    await stream_put(ctx, dut.query, {"data": row, "n_visible": 5}, stall=Stall(rng, 0.3))
    payload = await stream_get(ctx, dut.result, stall=Stall(rng, 0.5))

A :class:`Stall` draws, before every transfer, a number of idle cycles (producer: ``valid``
low; consumer: ``ready`` low) from a seeded ``numpy.random.Generator``: with probability
``p`` per cycle, geometric bursts, so tests see both isolated and long stalls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.sim import Simulator

__all__ = ["Stall", "stream_put", "stream_get", "run_sim", "NO_STALL", "FrontEndCase",
           "golden_case", "run_frontend", "check_frontend"]


class Stall:
    """Seeded random idle cycles: before each transfer, wait while ``rng.random() < p``."""

    def __init__(self, rng: np.random.Generator | None = None, p: float = 0.0,
                 max_run: int = 16) -> None:
        self.rng = rng
        self.p = p
        self.max_run = max_run

    def cycles(self) -> int:
        if self.rng is None or self.p <= 0:
            return 0
        n = 0
        while n < self.max_run and self.rng.random() < self.p:
            n += 1
        return n


NO_STALL = Stall()


async def stream_put(ctx: Any, stream: Any, payload: Any, stall: Stall = NO_STALL) -> None:
    """Send one ``payload`` on the In stream ``stream`` of the DUT (after random idles)."""
    for _ in range(stall.cycles()):
        await ctx.tick()
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx: Any, stream: Any, stall: Stall = NO_STALL) -> Any:
    """Receive one payload from the Out stream ``stream`` (after random back-pressure)."""
    for _ in range(stall.cycles()):
        await ctx.tick()
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_sim(dut: Any, benches: Iterable[Callable[..., Any]], name: str,
            deadline: float | None = None, processes: Iterable[Callable[..., Any]] = ()
            ) -> None:
    """Simulate ``dut`` with a 100 MHz clock and the given async testbenches.

    A VCD is written to ``build/tests/vcd/<name>.vcd`` only when ``LEOPARD_VCD=1``.
    ``processes`` are background processes (``add_process``) that may run forever.
    """
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    for proc in processes:
        sim.add_process(proc)
    if os.environ.get("LEOPARD_VCD") == "1":
        out = Path(__file__).resolve().parents[1] / "build" / "tests" / "vcd"
        out.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(out / f"{name}.vcd")):
            _run(sim, deadline)
    else:
        _run(sim, deadline)


def _run(sim: Simulator, deadline: float | None) -> None:
    if deadline is None:
        sim.run()
    else:
        sim.run_until(deadline)


# ----------------------------------------------------------------- front-end scenarios
class FrontEndCase:
    """Stimulus for :class:`leopard_rtl.hw.frontend.FrontEnd`: a list of heads.

    Each head is ``(k [Nk, d], q [Nq, d], n_visible [Nq], threshold [Nq], et, pr)``: the
    threshold register may change from query to query.
    """

    def __init__(self) -> None:
        self.heads: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, bool]] = []

    def add(self, k: np.ndarray, q: np.ndarray, n_visible: Any, threshold: Any,
            et: bool = True, pr: bool = True) -> None:
        nq = q.shape[0]
        nv = np.broadcast_to(np.asarray(n_visible, dtype=np.int64), (nq,)).copy()
        th = np.broadcast_to(np.asarray(threshold, dtype=np.int64), (nq,)).copy()
        self.heads.append((np.asarray(k, np.int64), np.asarray(q, np.int64), nv, th, et, pr))

    @property
    def n_queries(self) -> int:
        return sum(h[1].shape[0] for h in self.heads)


def golden_case(case: FrontEndCase, cfg: Any) -> list[dict[str, np.ndarray]]:
    """Golden front-end results per query (flattened over heads, in order)."""
    from sim.golden import bitserial_prune, threshold_register
    from sim.perf import frontend_cycles

    out = []
    for k, q, nv, th, et, pr in case.heads:
        nk = k.shape[0]
        for i in range(q.shape[0]):
            vis = (np.arange(nk) < nv[i])[None, None, :]
            g = bitserial_prune(q[None, i:i + 1], k[None], threshold_register(th[i:i + 1], cfg),
                                cfg.qk_bits, early_termination=et and cfg.early_termination,
                                pruning=pr and cfg.pruning, visible=vis,
                                planes_per_cycle=cfg.planes_per_cycle, k_align=cfg.k_align)
            planes = g["planes_used"][0, 0]
            out.append({
                "mask": g["mask"][0, 0], "planes": planes, "score": g["score"][0, 0],
                "n_visible": int(nv[i]),
                # Independent of the golden model: exact q.k and the register value.
                "exact": (k @ q[i]).astype(np.int64),
                "th": int(threshold_register(th[i], cfg)),
                "pruning": bool(pr and cfg.pruning),
                "cycles": int(frontend_cycles(planes, cfg)),
            })
    return out


def run_frontend(dut: Any, case: FrontEndCase, cfg: Any, *, rng: np.random.Generator,
                 p_in: float = 0.0, p_out: float = 0.0, name: str = "frontend"
                 ) -> dict[str, Any]:
    """Run ``case`` through ``dut``; return results, survivors and cycle stamps per query.

    ``p_in``: idle probability of the K and query producers; ``p_out``: back-pressure
    probability of the ``result`` and ``survivor`` consumers.
    """
    from leopard_rtl.hw import layouts
    from sim.golden import k_align_shifts

    nq = case.n_queries
    results: list[list[tuple[int, int, int, int]]] = [[] for _ in range(nq)]
    stats: list[dict[str, int]] = [{} for _ in range(nq)]
    survivors: list[list[tuple[int, int, int, int]]] = [[] for _ in range(nq)]
    accepts: list[int] = []
    lasts: list[int] = []
    in_stall = Stall(rng, p_in)
    res_stall = Stall(rng, p_out)
    surv_stall = Stall(rng, p_out)
    qlay = layouts.query(cfg)
    klay = layouts.k_load(cfg)

    async def producer(ctx: Any) -> None:
        for k, q, nv, th, et, pr in case.heads:
            ctx.set(dut.early_termination, int(et))
            ctx.set(dut.pruning, int(pr))
            # with k_align: the head's alignment shifts, on every row (used with first)
            extra = {"align": k_align_shifts(k[None], cfg.qk_bits, cfg.k_align)[0].tolist()} \
                if cfg.k_align else {}
            for j in range(k.shape[0]):
                await stream_put(ctx, dut.k_load,
                                 klay.const({"data": [int(x) for x in k[j]], "first": j == 0,
                                             **extra}),
                                 in_stall)
            for i in range(q.shape[0]):
                from sim.golden import threshold_register
                ctx.set(dut.threshold, int(threshold_register(th[i], cfg)))
                await stream_put(ctx, dut.query,
                                 qlay.const({"data": [int(x) for x in q[i]],
                                             "n_visible": int(nv[i])}), in_stall)

    async def result_consumer(ctx: Any) -> None:
        i = 0
        while i < nq:
            pay = await stream_get(ctx, dut.result, res_stall)
            for lane in range(cfg.lanes):
                r = pay.lanes[lane]
                if r.valid:
                    results[i].append((int(r.key), int(r.survivor), int(r.planes),
                                       int(r.score)))
            if pay.last:
                stats[i] = {"survivors": int(pay.stats.survivors),
                            "planes": int(pay.stats.planes), "cycles": int(pay.stats.cycles)}
                i += 1

    async def survivor_consumer(ctx: Any) -> None:
        i = 0
        while i < nq:
            pay = await stream_get(ctx, dut.survivor, surv_stall)
            survivors[i].append((int(pay.key), int(pay.score), int(pay.last), int(pay.empty)))
            if pay.last:
                i += 1

    async def monitor(ctx: Any) -> None:
        cycle = 0
        while True:
            _clk, _rst, qv, qr, rv, rr, rl = await ctx.tick().sample(
                dut.query.valid, dut.query.ready, dut.result.valid, dut.result.ready,
                dut.result.payload.last)
            if qv and qr:
                accepts.append(cycle)
            if rv and rr and rl:
                lasts.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (producer, result_consumer, survivor_consumer):
        sim.add_testbench(bench)
    sim.add_testbench(monitor, background=True)
    if os.environ.get("LEOPARD_VCD") == "1":
        out = Path(__file__).resolve().parents[1] / "build" / "tests" / "vcd"
        out.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(out / f"{name}.vcd")):
            sim.run()
    else:
        sim.run()
    return {"results": results, "stats": stats, "survivors": survivors,
            "accepts": accepts, "lasts": lasts}


def check_frontend(got: dict[str, Any], gold: list[dict[str, np.ndarray]], *, seed: int,
                   exact_cycles: bool) -> None:
    """Compare :func:`run_frontend` output with :func:`golden_case`, naming seed/query/key."""
    for i, g in enumerate(gold):
        where = f"seed={seed} query={i}"
        nv = g["n_visible"]
        res = got["results"][i]
        keys = sorted(r[0] for r in res)
        assert keys == list(range(nv)), f"{where}: keys reported {keys}, want 0..{nv - 1}"
        for key, surv, planes, score in res:
            w = f"{where} key={key}"
            # The property that must never fail: no key with S >= Th is pruned, every
            # survivor's score is the exact q.k.
            if g["exact"][key] >= g["th"] or not g["pruning"]:
                assert surv, f"{w}: S={g['exact'][key]} >= Th={g['th']} but pruned"
            if surv:
                assert score == int(g["exact"][key]), f"{w}: score {score} != q.k"
            assert surv == int(g["mask"][key]), f"{w}: survivor {surv} != golden {g['mask'][key]}"
            assert planes == int(g["planes"][key]), \
                f"{w}: planes {planes} != golden {g['planes'][key]}"
            if surv:
                assert score == int(g["score"][key]), \
                    f"{w}: score {score} != exact q.k {g['score'][key]}"
        st = got["stats"][i]
        assert st["survivors"] == int(g["mask"].sum()), f"{where}: stats.survivors {st}"
        assert st["planes"] == int(g["planes"].sum()), f"{where}: stats.planes {st}"
        if exact_cycles:
            assert st["cycles"] == g["cycles"], \
                f"{where}: stats.cycles {st['cycles']} != perf model {g['cycles']}"
        surv = got["survivors"][i]
        want = sorted((int(j), int(g["score"][j])) for j in np.flatnonzero(g["mask"]))
        if not want:
            assert surv == [(0, 0, 1, 1)], f"{where}: survivor stream {surv}, want one empty"
        else:
            assert sorted((s[0], s[1]) for s in surv) == want, \
                f"{where}: survivor stream {surv} != golden {want}"
            assert [s[2] for s in surv] == [0] * (len(surv) - 1) + [1], f"{where}: last bits"
            assert all(s[3] == 0 for s in surv), f"{where}: empty bit set"
