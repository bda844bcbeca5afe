"""The speculative margin on the core's Verilog: bit- and cycle-exact against the golden and
performance models (Verilator and Icarus; one and two bit-planes per cycle), on traces where
the margin loses survivors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import require_tool

from leopard_rtl import preset
from leopard_rtl.config import LeopardConfig
from leopard_rtl.tb.core import compare, run_trace
from sim import perf
from sim.golden import run_golden
from sim.trace import Trace
from sim.vectors import random_trace


def _trace(rng: np.random.Generator, cfg: LeopardConfig, heads: int = 6) -> Trace:
    return random_trace(rng, heads=heads, n_queries=6, n_keys=min(12, cfg.max_keys),
                        head_dim=cfg.head_dim, qk_bits=cfg.qk_bits, v_bits=cfg.v_bits,
                        kind="realistic", prune_quantile=0.5)


@pytest.mark.parametrize(("simulator", "ppc", "overlap"),
                         [("verilator", 1, False), ("icarus", 2, True)])
def test_core_margin_bit_and_cycle_exact(simulator: str, ppc: int, overlap: bool, seed: int,
                                         build_root: Path) -> None:
    """Per-head margin registers 0 .. 0.99 (one head exact): outputs, survivors, planes and
    every accept/output cycle equal the models, and the margin did lose survivors (so
    the test exercises the lossy path). With two planes per cycle the margin's bound is
    tested after each plane pair, as the exact one; the overlapped normalization does not
    interact with it."""
    require_tool("verilator" if simulator == "verilator" else "iverilog")
    cfg = preset("tiny").replace(lanes=3, margin=0.5, planes_per_cycle=ppc,
                                 overlap_norm=overlap, name=f"tiny-margin-c{ppc}")
    rng = np.random.default_rng(seed)
    t = _trace(rng, cfg)
    regs = np.array([0, 26, 64, 128, 200, 255], np.int64)      # per head, / 256
    g = run_golden(t, cfg, margin=regs)
    exact = run_golden(t, cfg.replace(margin=0))
    lost = int((exact.mask & ~g.mask).sum())
    assert lost > 0, f"seed={seed}: the margin lost no survivor (test would not bite)"
    assert np.array_equal(g.mask[0], exact.mask[0]), f"seed={seed}: head 0 (margin 0) lossy"
    got = run_trace(t, cfg, simulator=simulator,
                    build_dir=build_root / "margin" / f"{simulator}-c{ppc}", golden=g)
    for name, res in compare(got, g).items():
        assert res["match"], f"seed={seed} {simulator}: {name} differs: {res}"
    sch = perf.core_schedule(g.planes_used, g.mask, cfg)
    acc = got["accept_cycle"] - got["accept_cycle"][:, :1]
    out = got["out_cycle"] - got["accept_cycle"][:, :1]
    for what, rtl, model in (("accept", acc, sch["start"]), ("output", out, sch["out"])):
        bad = np.argwhere(rtl != model)
        assert bad.size == 0, (f"seed={seed} {simulator}: {what} cycle of head/query "
                               f"{tuple(bad[0])}: RTL {rtl[tuple(bad[0])]} model "
                               f"{model[tuple(bad[0])]}")
    assert np.array_equal(got["cycles"], g.cycles), f"seed={seed}: cycles {got['cycles']}"


def test_core_margin_zero_register_is_exact(seed: int, build_root: Path) -> None:
    """A core built with a margin, run with every register at 0, is the exact design:
    same outputs, survivors, planes and cycles as the golden model without a margin."""
    require_tool("verilator")
    cfg = preset("tiny").replace(lanes=3, margin=0.5, name="tiny-margin-c1")   # same build
    t = _trace(np.random.default_rng(seed + 1), cfg, heads=3)
    g = run_golden(t, cfg, margin=np.zeros(3, np.int64))
    ref = run_golden(t, cfg.replace(margin=0))
    got = run_trace(t, cfg, simulator="verilator", build_dir=build_root / "margin" / "verilator-c1",
                    golden=g)
    for name, res in compare(got, ref).items():
        assert res["match"], f"seed={seed}: {name} differs from exact pruning: {res}"
    assert np.array_equal(got["cycles"], ref.cycles)


def test_frontend_runner_refuses_margin(tmp_path: Path) -> None:
    """The front-end testbench does not drive the margin register: it says so instead of
    silently running exact pruning."""
    from leopard_rtl.errors import UserError
    from leopard_rtl.tb.frontend import simulate

    cfg = preset("tiny").replace(margin=0.5)
    with pytest.raises(UserError, match="margin"):
        simulate(_trace(np.random.default_rng(0), cfg, heads=1), cfg, build_dir=tmp_path)
