"""K alignment (``k_align``) on the emitted Verilog (Icarus): the core and the front end
bit- and cycle-exact against the golden and performance models, with the host's shifts
(:attr:`sim.golden.GoldenResult.align`) in the ``k_load`` rows; shifts that do not fit
raise ``align_error``, which the testbenches refuse."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from support import assert_core_exact, require_tool

from leopard_rtl import preset
from leopard_rtl.errors import UserError
from leopard_rtl.tb import frontend as tb_frontend
from leopard_rtl.tb.core import compare, run_trace
from sim.golden import run_golden
from sim.trace import Trace
from sim.vectors import random_trace


def _narrow_trace(rng: np.random.Generator, cfg, heads: int = 3, causal: bool = False) -> Trace:
    """A realistic trace whose K channels use fewer bits (non-trivial shifts)."""
    t = random_trace(rng, heads=heads, n_queries=5, n_keys=min(12, cfg.max_keys),
                     head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                     kind="realistic", causal=causal, prune_quantile=0.6)
    k = np.asarray(t.k) >> rng.integers(0, cfg.qk_bits - 1, (heads, 1, cfg.head_dim))
    return Trace(**{**t.__dict__, "k": k.astype(t.k.dtype)}).validate()


@pytest.mark.cocotb
@pytest.mark.parametrize(("k_align", "ppc", "overlap", "causal", "simulator"),
                         [(2, 1, False, False, "icarus"), (1, 2, True, True, "icarus"),
                          (2, 2, True, True, "verilator")])
def test_core_aligned_bit_and_cycle_exact(k_align: int, ppc: int, overlap: bool,
                                          causal: bool, simulator: str, seed: int,
                                          build_root: Path) -> None:
    require_tool("iverilog" if simulator == "icarus" else "verilator")
    cfg = preset("tiny").replace(lanes=3, k_align=k_align, planes_per_cycle=ppc,
                                 overlap_norm=overlap, name=f"tiny-ka{k_align}-c{ppc}")
    rng = np.random.default_rng(seed + 14)
    t = _narrow_trace(rng, cfg, causal=causal)
    g = run_golden(t, cfg)
    assert g.align.any(), f"seed={seed}: every shift is 0 (the test would not bite)"
    assert np.array_equal(g.mask, run_golden(t, cfg.replace(k_align=0)).mask)
    got = run_trace(t, cfg, simulator=simulator,
                    build_dir=build_root / "k_align" / f"{cfg.name}-{simulator}", golden=g)
    assert_core_exact(got, g, cfg, seed)


@pytest.mark.cocotb
def test_core_refuses_align_error(seed: int, build_root: Path) -> None:
    """Shifts of k_align on every channel do not fit these keys: the core raises
    align_error and the testbench says so instead of reporting wrong outputs."""
    require_tool("iverilog")
    cfg = preset("tiny").replace(lanes=3, k_align=2, name="tiny-ka2-c1")   # same build
    t = _narrow_trace(np.random.default_rng(seed + 15), cfg, heads=1)
    g = run_golden(t, cfg)
    bad = dataclasses.replace(g, align=np.full_like(g.align, cfg.k_align))
    assert not (bad.align == g.align).all()
    with pytest.raises(UserError, match="head 0: the core raised align_error"):
        run_trace(t, cfg, simulator="icarus", build_dir=build_root / "k_align" / cfg.name,
                  golden=bad)


@pytest.mark.cocotb
def test_frontend_aligned_exact(seed: int, build_root: Path) -> None:
    require_tool("iverilog")
    cfg = preset("tiny").replace(k_align=2, name="tiny-ka2-fe")
    t = _narrow_trace(np.random.default_rng(seed + 16), cfg, causal=True)
    _, summary = tb_frontend.simulate(t, cfg, simulator="icarus",
                                      build_dir=build_root / "k_align" / "frontend")
    for key in ("cycles_match_perf", "query_cycles_match_perf", "mask_matches_golden",
                "planes_used_match_golden", "scores_match_golden",
                "every_key_reported_once", "survivor_records_match"):
        assert summary[key], f"seed={seed}: {key} is false: {summary}"


@pytest.mark.cocotb
def test_core_aligned_with_margin(seed: int, build_root: Path) -> None:
    """The margin's Q+' is of the aligned query q' (sim.margin.effective_qpos on q'): per-head
    margin registers with k_align, bit- and cycle-exact."""
    require_tool("iverilog")
    cfg = preset("tiny").replace(lanes=3, k_align=2, margin=0.5, name="tiny-ka2-margin")
    t = _narrow_trace(np.random.default_rng(seed + 17), cfg)
    g = run_golden(t, cfg, margin=np.array([0, 64, 200], np.int64))
    assert g.align.any(), f"seed={seed}: every shift is 0"
    got = run_trace(t, cfg, simulator="icarus", build_dir=build_root / "k_align" / cfg.name,
                    golden=g)
    for name, res in compare(got, g).items():
        assert res["match"], f"seed={seed} {cfg.name}: {name} differs: {res}"
    assert np.array_equal(got["cycles"], g.cycles), f"seed={seed}: cycles {got['cycles']}"


@pytest.mark.slow
@pytest.mark.cocotb
def test_core_aligned_real_trace(build_root: Path) -> None:
    """A committed real trace (MemN2N layer 2, d=32) on `fast` with k_align=2 (Icarus,
    about 2 minutes): outputs and cycles equal the models, and the same outputs as
    without alignment."""
    require_tool("iverilog")
    from support import ROOT

    from leopard_rtl.eval.inputs import requantize
    from sim.trace import load_trace
    t = load_trace(ROOT / "traces" / "memn2n" / "layer2.npz")
    cfg = preset("fast").replace(head_dim=t.head_dim, max_keys=64, k_align=2,
                                 name="fast-ka2-d32")
    t = requantize(t, cfg.qk_bits, cfg.v_bits)
    g = run_golden(t, cfg)
    assert g.align.any()
    got = run_trace(t, cfg, simulator="icarus", build_dir=build_root / "k_align" / cfg.name,
                    golden=g)
    for name, res in compare(got, g).items():
        assert res["match"], f"{name} differs: {res}"
    assert np.array_equal(got["cycles"], g.cycles)
    assert np.array_equal(g.out, run_golden(t, cfg.replace(k_align=0)).out)
