"""The emitted front-end Verilog under Verilator and Icarus (file-driven testbench)."""

from __future__ import annotations

import numpy as np
import pytest
from support import ROOT, require_tool

from leopard_rtl.config import preset
from leopard_rtl.tb.frontend import simulate
from sim.golden import bitserial_prune, threshold_register
from sim.trace import Trace, load_trace

REAL = ROOT / "traces" / "minilm" / "sample_l3.npz"


def _trace(rng, cfg, heads=3, nq=7, nk=None, causal=False) -> Trace:
    nk = nk or cfg.max_keys
    p = cfg.qk_bits
    lo, hi = -(1 << (p - 1)), 1 << (p - 1)
    q = rng.integers(lo, hi, (heads, nq, cfg.head_dim))
    k = rng.integers(lo, hi, (heads, nk, cfg.head_dim))
    q[0, 0] = lo
    k[0, 0] = lo
    if nq > 1:
        q[0, 1] = 0
    s = np.einsum("hqd,hkd->hqk", q, k)
    th = np.percentile(s.reshape(heads, -1), 70, axis=1).astype(np.int64)
    th[0] = s.min() - 5                 # nothing pruned
    if heads > 1:
        th[1] = s.max() + 1             # everything pruned
    v = rng.integers(-(1 << (cfg.v_bits - 1)), 1 << (cfg.v_bits - 1), (heads, nk, cfg.head_dim))
    return Trace(q=q, k=k, v=v, threshold=th, scale_q=np.ones(heads), scale_k=np.ones(heads),
                 scale_v=np.ones(heads), qk_bits=p, v_bits=cfg.v_bits, causal=causal,
                 meta={"source": "random"}, source="random")


def _check(arrays, summary, trace, cfg, seed):
    where = f"seed={seed} {summary['simulator']} {cfg.name}"
    th = threshold_register(trace.threshold, cfg)
    g = bitserial_prune(trace.q, trace.k, th, cfg.qk_bits,
                        early_termination=cfg.early_termination, pruning=cfg.pruning,
                        visible=trace.visible(), planes_per_cycle=cfg.planes_per_cycle)
    bad = np.argwhere(arrays["mask"] != g["mask"])
    assert not len(bad), f"{where}: mask differs at [h, q, k] = {bad[:5].tolist()}"
    bad = np.argwhere(arrays["planes_used"] != g["planes_used"])
    assert not len(bad), f"{where}: planes_used differs at {bad[:5].tolist()}"
    for key in ("scores_match_golden", "every_key_reported_once", "survivor_records_match",
                "cycles_match_perf", "query_cycles_match_perf"):
        assert summary[key], f"{where}: {key} is false: {summary}"
    assert np.array_equal(arrays["cycles"], arrays["perf_cycles"]), where


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("causal", [False, True])
def test_random_tiny(rng, seed, build_root, simulator, causal):
    require_tool("verilator" if simulator == "verilator" else "iverilog")
    cfg = preset("tiny")
    trace = _trace(rng, cfg, causal=causal)
    arrays, summary = simulate(trace, cfg, simulator=simulator,
                               build_dir=build_root / "frontend" / f"runner-tiny-{simulator}")
    _check(arrays, summary, trace, cfg, seed)


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow),
                                       "icarus"])
def test_two_planes_per_cycle(rng, seed, build_root, simulator):
    """planes_per_cycle=2, odd qk_bits and more lanes than plane slots (padding). The
    Verilator build (about 2 minutes) is in the slow suite; the core test runs it there."""
    require_tool("verilator" if simulator == "verilator" else "iverilog")
    cfg = preset("tiny").replace(planes_per_cycle=2, qk_bits=5, lanes=4, name="tiny-ppc2")
    trace = _trace(rng, cfg, heads=3, nq=5, causal=simulator == "icarus")
    arrays, summary = simulate(trace, cfg, simulator=simulator,
                               build_dir=build_root / "frontend" / f"runner-ppc2-{simulator}")
    _check(arrays, summary, trace, cfg, seed)


@pytest.mark.slow
@pytest.mark.cocotb
def test_two_planes_per_cycle_real_trace_verilator(seed, build_root):
    """The real MiniLM trace at planes_per_cycle=2 (8 lanes, 6 slots: padded)."""
    require_tool("verilator")
    cfg = preset("minilm").replace(planes_per_cycle=2, name="minilm-ppc2")
    trace = load_trace(REAL)
    arrays, summary = simulate(trace, cfg, simulator="verilator",
                               build_dir=build_root / "frontend" / "runner-minilm-ppc2")
    _check(arrays, summary, trace, cfg, seed)


@pytest.mark.cocotb
def test_macro_memory_icarus(rng, seed, build_root):
    """memory="macro" with the behavioural bank model gives the same results."""
    require_tool("iverilog")
    cfg = preset("tiny").replace(memory="macro")
    trace = _trace(rng, cfg, heads=2, nq=4)
    arrays, summary = simulate(trace, cfg, simulator="icarus",
                               build_dir=build_root / "frontend" / "runner-macro")
    _check(arrays, summary, trace, cfg, seed)


@pytest.mark.cocotb
@pytest.mark.parametrize("mode", ["leopard", pytest.param("baseline", marks=pytest.mark.slow)])
def test_real_trace_minilm_verilator(seed, build_root, mode):
    """The real MiniLM trace (d=32), LeOPArd and baseline switches (same Verilog build)."""
    require_tool("verilator")
    if not REAL.is_file():
        pytest.fail(f"{REAL} is missing")
    cfg = preset("minilm")
    if mode == "baseline":
        cfg = cfg.replace(early_termination=False, pruning=False, name="minilm-baseline")
    trace = load_trace(REAL)
    arrays, summary = simulate(trace, cfg, simulator="verilator",
                               build_dir=build_root / "frontend" / f"runner-minilm-{mode}")
    _check(arrays, summary, trace, cfg, seed)
    if mode == "baseline":
        assert (arrays["planes_used"] == cfg.qk_bits).all()


@pytest.mark.slow
@pytest.mark.cocotb
def test_d64_causal_verilator(rng, seed, build_root):
    """d=64, 12-bit (paper widths, 8 lanes) with a small key buffer, causal."""
    require_tool("verilator")
    cfg = preset("paper").replace(max_keys=24, name="paper-k24")
    trace = _trace(rng, cfg, heads=2, nq=10, nk=20, causal=True)
    arrays, summary = simulate(trace, cfg, simulator="verilator",
                               build_dir=build_root / "frontend" / "runner-paper-k24")
    _check(arrays, summary, trace, cfg, seed)


@pytest.mark.slow
@pytest.mark.cocotb
def test_real_trace_minilm_icarus(seed, build_root):
    """Two heads of the real trace under Icarus (about a minute per head: Icarus is slow)."""
    import dataclasses

    require_tool("iverilog")
    cfg = preset("minilm")
    full = load_trace(REAL)
    trace = dataclasses.replace(
        full, q=full.q[:2], k=full.k[:2], v=full.v[:2], threshold=full.threshold[:2],
        scale_q=full.scale_q[:2], scale_k=full.scale_k[:2], scale_v=full.scale_v[:2])
    arrays, summary = simulate(trace, cfg, simulator="icarus",
                               build_dir=build_root / "frontend" / "runner-minilm-icarus")
    _check(arrays, summary, trace, cfg, seed)
