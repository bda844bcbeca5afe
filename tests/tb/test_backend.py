"""The emitted back-end Verilog: file-driven runner (Verilator, Icarus), CLI, cocotb."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import ROOT, require_tool

from leopard_rtl.config import LeopardConfig, preset
from leopard_rtl.tb.backend import (
    expected,
    front,
    predicted_cycles,
    run_arrays,
    simulate,
)
from leopard_rtl.tb.cocotb_runner import run_cocotb
from sim.golden import attention_float, error_bound, run_golden
from sim.trace import Trace, load_trace, save_trace
from sim.vectors import random_trace

REAL_TRACE = ROOT / "traces" / "minilm" / "sample_l3.npz"


def _tool_for(simulator: str) -> None:
    require_tool("verilator" if simulator == "verilator" else "iverilog")


def _check_trace(arrays: dict[str, np.ndarray], summary: dict[str, Any], trace: Trace,
                 cfg: LeopardConfig, what: str) -> None:
    g = run_golden(trace, cfg)
    assert summary["matched"], f"{what}: {summary['match']}"
    if not (g.mask.sum(axis=-1) > cfg.survivor_capacity).any():
        np.testing.assert_array_equal(arrays["out"], g.out, err_msg=what)
        np.testing.assert_array_equal(arrays["all_pruned"], g.all_pruned, err_msg=what)
    np.testing.assert_array_equal(arrays["cycles"], arrays["predicted_cycles"], err_msg=what)
    # Within the documented error of float pruned attention.
    ref = attention_float(trace.q, trace.k, trace.v, trace.scale_q, trace.scale_k, g.mask)
    bound = error_bound(g.score, g.mask, trace.v, trace.scale_q, trace.scale_k, g.scale_mant,
                        g.scale_shift, g.backend, ref, cfg)
    err = np.abs(arrays["out"] - ref).max(axis=-1)
    assert (err <= bound + 1e-9).all(), f"{what}: error {err.max()} > bound"


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_runner_random(simulator: str, seed: int, build_root: Path) -> None:
    _tool_for(simulator)
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    for kind, causal in (("uniform", False), ("adversarial", False), ("realistic", True)):
        t = random_trace(rng, heads=3, n_queries=12, n_keys=cfg.max_keys, kind=kind,
                         causal=causal, prune_quantile=0.6 if kind != "adversarial" else None)
        arrays, summary = simulate(t, cfg, simulator=simulator,
                                   build_dir=build_root / "backend" / f"tiny-{simulator}")
        _check_trace(arrays, summary, t, cfg, f"seed={seed} {simulator} {kind}")


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_runner_overlap_norm(simulator: str, seed: int, build_root: Path) -> None:
    """overlap_norm: the back end alone is bit-exact and cycle-exact (perf model), and
    keeps its outputs under input idles and output back-pressure."""
    _tool_for(simulator)
    cfg = preset("tiny").replace(overlap_norm=True, name="tiny-overlap")
    rng = np.random.default_rng(seed + 3)
    bd = build_root / "backend" / f"tiny-overlap-{simulator}"
    for kind, causal in (("realistic", True), ("uniform", False)):
        t = random_trace(rng, heads=2, n_queries=10, n_keys=cfg.max_keys, kind=kind,
                         causal=causal, prune_quantile=0.6 if causal else 0.1)
        arrays, summary = simulate(t, cfg, simulator=simulator, build_dir=bd)
        _check_trace(arrays, summary, t, cfg, f"seed={seed} {simulator} overlap {kind}")
        fe = front(t, cfg)
        want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
        plain = predicted_cycles(want["survivors"], cfg.replace(overlap_norm=False))
        assert (arrays["cycles"] < plain).all(), f"seed={seed}: no gain {arrays['cycles']}"
        if simulator == "icarus":
            got = run_arrays(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg,
                             simulator=simulator, build_dir=bd, stall_in=30, stall_out=50,
                             seed=seed % 1000 + 1)
            for key in ("out", "all_pruned", "survivors", "overflow"):
                np.testing.assert_array_equal(got[key], want[key],
                                              err_msg=f"seed={seed} overlap stalls {key}")


@pytest.mark.cocotb
def test_runner_stalls_and_overflow(seed: int, build_root: Path) -> None:
    """Random input idles and output back-pressure in the Verilog testbench; overflow."""
    require_tool("iverilog")
    cfg = preset("tiny").replace(survivor_depth=5)
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=10, n_keys=cfg.max_keys, kind="uniform",
                     prune_quantile=0.3)
    fe = front(t, cfg)
    want = expected(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg)
    assert want["overflow"].any()
    bd = build_root / "backend" / "tiny-depth5-icarus"
    for stall_in, stall_out in ((0, 0), (30, 50)):
        got = run_arrays(fe["score"], fe["mask"], t.v, fe["mant"], fe["shift"], cfg,
                         simulator="icarus", build_dir=bd, stall_in=stall_in,
                         stall_out=stall_out, seed=seed % 1000 + 1)
        for key in ("out", "all_pruned", "survivors", "overflow"):
            np.testing.assert_array_equal(got[key], want[key],
                                          err_msg=f"seed={seed} stalls={stall_in},{stall_out}")
        if not stall_in and not stall_out:
            np.testing.assert_array_equal(got["cycles"],
                                          predicted_cycles(want["survivors"], cfg))


@pytest.mark.cocotb
def test_runner_real_trace(build_root: Path) -> None:
    """The real MiniLM trace (d=32): bit-exact, cycles, error bound."""
    require_tool("verilator")
    if not REAL_TRACE.is_file():
        pytest.fail(f"{REAL_TRACE} is missing (it is part of the repository)")
    cfg = preset("minilm")
    t = load_trace(REAL_TRACE)
    arrays, summary = simulate(t, cfg, simulator="verilator",
                               build_dir=build_root / "backend" / "minilm-verilator")
    _check_trace(arrays, summary, t, cfg, "minilm real trace")


@pytest.mark.cocotb
def test_cli_simulate_backend(tmp_path: Path, seed: int, build_root: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("iverilog")
    from leopard_rtl.cli import main

    cfg = preset("tiny")
    t = random_trace(np.random.default_rng(seed), heads=2, n_queries=4, n_keys=cfg.max_keys)
    save_trace(t, tmp_path / "t.npz")
    rc = main(["simulate", "--unit", "backend", "--trace", str(tmp_path / "t.npz"),
               "--preset", "tiny", "--simulator", "icarus", "--out", str(tmp_path / "r.npz"),
               "--build-dir", str(build_root / "backend" / "tiny-icarus")])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["matched"] and summary["unit"] == "backend"
    with np.load(tmp_path / "r.npz") as r:
        g = run_golden(t, cfg)
        np.testing.assert_array_equal(r["out"], g.out)
        np.testing.assert_array_equal(r["all_pruned"], g.all_pruned)
        assert r["cycles"].shape == (2,)


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb_backend(simulator: str, seed: int, build_root: Path) -> None:
    _tool_for(simulator)
    results = run_cocotb("backend", preset("tiny"), simulator,
                         build_root / "backend" / f"cocotb-{simulator}", seed=seed,
                         expect_tests=2)
    assert results.count("test_backend_trace/stalls=") == 2, results


@pytest.mark.slow
@pytest.mark.cocotb
def test_runner_paper_preset(seed: int, build_root: Path) -> None:
    """The paper preset (d=64, 12-bit, 512 keys) under Verilator (~40 s build)."""
    require_tool("verilator")
    cfg = preset("paper")
    t = random_trace(np.random.default_rng(seed), heads=2, n_queries=24, n_keys=256,
                     head_dim=64, qk_bits=12, v_bits=12, kind="realistic", prune_quantile=0.8)
    arrays, summary = simulate(t, cfg, simulator="verilator",
                               build_dir=build_root / "backend" / "paper-verilator")
    _check_trace(arrays, summary, t, cfg, f"seed={seed} paper")
