"""The LeOPArd core (``leopard_core``): emitted Verilog against the golden and performance models.

Bit-exact outputs and statistics, and cycle-exact timing (every query's accept and output
cycle equal :func:`sim.perf.core_schedule`), on random, adversarial, causal and real
traces, under Verilator (file-driven runner) and Icarus; cocotb for back-pressure, new
K/V sets between heads and reset in the middle of a query.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from support import ROOT, assert_core_exact, require_tool

from leopard_rtl import preset
from leopard_rtl.cli import main
from leopard_rtl.config import LeopardConfig
from leopard_rtl.emit import TOP_NAMES, convert, write_build, write_if_changed
from leopard_rtl.hw.core import LeopardCore
from leopard_rtl.tb.cocotb_runner import run_cocotb
from leopard_rtl.tb.core import compare, run_trace
from sim import perf
from sim.golden import run_golden
from sim.trace import Trace, load_trace, save_trace
from sim.vectors import random_trace


def _concat(traces: list[Trace]) -> Trace:
    names = ("q", "k", "v", "threshold", "scale_q", "scale_k", "scale_v")
    t0 = traces[0]
    return Trace(**{n: np.concatenate([getattr(t, n) for t in traces]) for n in names},
                 qk_bits=t0.qk_bits, v_bits=t0.v_bits, causal=t0.causal,
                 meta={"model": "random"}).validate()


def _mixed_trace(rng: np.random.Generator, cfg: LeopardConfig, causal: bool) -> Trace:
    """Heads of every stimulus kind and threshold regime; the last two prune every key
    and none."""
    nq, nk = (7, 5) if causal else (6, min(16, cfg.max_keys))   # causal: Nq > Nk too
    parts = [random_trace(rng, heads=1, n_queries=nq, n_keys=nk, head_dim=cfg.head_dim,
                          qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind=kind, causal=causal,
                          prune_quantile=pq)
             for kind in ("uniform", "adversarial", "realistic") for pq in (0.0, 0.5, 0.9, None)]
    t = _concat(parts)
    th = t.threshold.copy()
    th[-2:] = [1 << 40, -(1 << 40)]
    return Trace(**{**t.__dict__, "threshold": th}).validate()


def _assert_exact(t: Trace, cfg: LeopardConfig, got: dict[str, np.ndarray], seed: int) -> None:
    assert_core_exact(got, run_golden(t, cfg), cfg, seed)


@pytest.mark.cocotb
@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_core_bit_and_cycle_exact(lanes: int, seed: int, build_root: Path) -> None:
    require_tool("verilator")
    cfg = preset("tiny").replace(lanes=lanes, name=f"tiny-l{lanes}")
    rng = np.random.default_rng(seed + lanes)
    for causal in (False, True):
        t = _mixed_trace(rng, cfg, causal)
        got = run_trace(t, cfg, simulator="verilator",
                        build_dir=build_root / "core" / f"tiny-l{lanes}")
        _assert_exact(t, cfg, got, seed)


@pytest.mark.cocotb
def test_core_switch_variants_exact(seed: int, build_root: Path) -> None:
    """pruning_only and baseline builds of the same generator, same trace."""
    require_tool("verilator")
    rng = np.random.default_rng(seed)
    base = preset("tiny")
    t = _mixed_trace(rng, base, causal=False)
    for cfg in (base.pruning_only(), base.baseline()):
        got = run_trace(t, cfg, simulator="verilator",
                        build_dir=build_root / "core" / cfg.name.replace("+", "-"))
        _assert_exact(t, cfg, got, seed)


@pytest.mark.cocotb
def test_core_icarus(seed: int, build_root: Path) -> None:
    require_tool("iverilog")
    cfg = preset("tiny")
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=4, n_keys=6, head_dim=4, qk_bits=4, v_bits=6,
                     kind="adversarial", causal=True)
    got = run_trace(t, cfg, simulator="icarus", build_dir=build_root / "core" / "tiny-icarus")
    _assert_exact(t, cfg, got, seed)


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_core_overlap_norm_exact(simulator: str, seed: int, build_root: Path) -> None:
    """overlap_norm (second accumulator bank): bit-exact and every accept/output cycle as
    the model, on short sequences (16 and 17 keys, where it gains most) with heads that
    prune every key and none (back-to-back queries with 0 / all survivors)."""
    require_tool("verilator" if simulator == "verilator" else "iverilog")
    cfg = preset("tiny").replace(overlap_norm=True, max_keys=17, lanes=4, name="tiny-overlap")
    rng = np.random.default_rng(seed + 11)
    bd = build_root / "core" / f"tiny-overlap-{simulator}"
    cases = ((16, False), (17, True)) if simulator == "verilator" else ((17, False),)
    for nk, causal in cases:
        parts = [random_trace(rng, heads=1, n_queries=8, n_keys=nk, head_dim=cfg.head_dim,
                              qk_bits=cfg.qk_bits, v_bits=cfg.v_bits, kind=kind,
                              causal=causal, prune_quantile=pq)
                 for kind, pq in (("realistic", 0.8), ("adversarial", None), ("uniform", 0.5),
                                  ("realistic", 0.0), ("realistic", 0.0))]
        t = _concat(parts)
        th = t.threshold.copy()
        th[-2:] = [1 << 40, -(1 << 40)]
        t = Trace(**{**t.__dict__, "threshold": th}).validate()
        got = run_trace(t, cfg, simulator=simulator, build_dir=bd)
        _assert_exact(t, cfg, got, seed)
        assert got["survivors"][-2].max() == 0 and got["survivors"][-1].max() == nk
        plain = run_golden(t, cfg.replace(overlap_norm=False)).cycles
        assert (got["cycles"] <= plain).all() and got["cycles"].sum() < plain.sum(), \
            f"seed={seed}: {got['cycles']} vs {plain} without overlap"


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.slow),
                                       "icarus"])
def test_core_two_planes_per_cycle_exact(simulator: str, seed: int, build_root: Path) -> None:
    """planes_per_cycle=2 with odd qk_bits (one-plane last slot) and more lanes than plane
    slots (4 lanes, 3 slots: survivor keys padded to 4 cycles): bit-exact and every
    accept/output cycle as the model, keep-all and prune-all heads included."""
    require_tool("verilator" if simulator == "verilator" else "iverilog")
    cfg = preset("tiny").replace(planes_per_cycle=2, qk_bits=5, lanes=4, name="tiny-ppc2")
    rng = np.random.default_rng(seed + 5)
    bd = build_root / "core" / f"tiny-ppc2-{simulator}"
    for causal in ((False, True) if simulator == "verilator" else (True,)):
        t = _mixed_trace(rng, cfg, causal)
        if simulator == "icarus":
            t = _concat([Trace(**{**t.__dict__, **{n: getattr(t, n)[h:h + 1] for n in (
                "q", "k", "v", "threshold", "scale_q", "scale_k", "scale_v")}}).validate()
                for h in (2, 6, t.heads - 1)])
        got = run_trace(t, cfg, simulator=simulator, build_dir=bd)
        _assert_exact(t, cfg, got, seed)
        one = run_golden(t, cfg.replace(planes_per_cycle=1))
        assert np.array_equal(np.asarray(got["survivors"]), one.mask.sum(-1)), \
            f"seed={seed}: prune set differs from one plane per cycle"


@pytest.mark.cocotb
def test_core_stalls_keep_outputs_exact(seed: int, build_root: Path) -> None:
    """Idle cycles on every input and back-pressure on the output: same outputs."""
    require_tool("verilator")
    cfg = preset("tiny")
    rng = np.random.default_rng(seed + 7)
    t = _mixed_trace(rng, cfg, causal=True)
    g = run_golden(t, cfg)
    got = run_trace(t, cfg, simulator="verilator", build_dir=build_root / "core" / "tiny-l2",
                    stall_in=30, stall_out=60, seed=seed % 1000 + 1)
    for name, res in compare(got, g).items():
        assert res["match"], f"seed={seed}: {name} differs under stalls: {res}"
    assert (got["cycles"] >= g.cycles).all()


@pytest.mark.cocotb
def test_core_keep_all_bursts_cycle_exact(seed: int, build_root: Path) -> None:
    """Every key survives and the lanes finish together: bursts of ``lanes`` survivors plus
    an end marker must never fill the survivor queue (the cycle model assumes it; with 3
    lanes and an 8-entry queue the front end stalled and the model was 1-3 cycles short)."""
    require_tool("verilator")
    cfg = preset("tiny").with_overrides([
        "head_dim=6", "qk_bits=6", "v_bits=9", "lanes=3", "max_keys=12", "exp_frac_bits=5",
        "exp_bits=6", "scale_bits=11", "scale_shift_bits=2", "recip_bits=4"])
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=6, n_keys=12, head_dim=6, qk_bits=6, v_bits=9,
                     kind="uniform", causal=False, prune_quantile=None)
    t = Trace(**{**t.__dict__, "threshold": np.full_like(t.threshold, -(1 << 40))}).validate()
    got = run_trace(t, cfg, simulator="verilator", build_dir=build_root / "core" / "keep-all")
    assert got["survivors"].min() == 12, f"seed={seed}: not a keep-all head"
    _assert_exact(t, cfg, got, seed)


@pytest.mark.cocotb
def test_core_real_trace(build_root: Path) -> None:
    """The committed real MiniLM trace: bit-exact and cycle-exact."""
    require_tool("verilator")
    t = load_trace(ROOT / "traces" / "minilm" / "sample_l3.npz")
    cfg = preset("minilm").replace(max_keys=64, name="minilm64")
    got = run_trace(t, cfg, simulator="verilator", build_dir=build_root / "core" / "minilm64")
    _assert_exact(t, cfg, got, 0)


@pytest.mark.slow
@pytest.mark.cocotb
def test_core_real_trace_overlap_norm(build_root: Path) -> None:
    """The committed real MiniLM trace with overlap_norm: bit-exact and cycle-exact."""
    require_tool("verilator")
    t = load_trace(ROOT / "traces" / "minilm" / "sample_l3.npz")
    cfg = preset("minilm").replace(max_keys=64, overlap_norm=True, name="minilm64-overlap")
    got = run_trace(t, cfg, simulator="verilator",
                    build_dir=build_root / "core" / "minilm64-overlap")
    _assert_exact(t, cfg, got, 0)


@pytest.mark.cocotb
def test_simulate_command(tmp_path: Path, seed: int, build_root: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """`leopard-rtl simulate`: arrays, three variants side by side, everything matched."""
    require_tool("verilator")
    rng = np.random.default_rng(seed)
    t = random_trace(rng, heads=2, n_queries=5, n_keys=9, head_dim=4, qk_bits=4, v_bits=6,
                     kind="realistic", causal=True)
    path = tmp_path / "t.npz"
    save_trace(t, path)
    out = tmp_path / "r.npz"
    rc = main(["simulate", "--trace", str(path), "--preset", "tiny", "--out", str(out),
               "--build-dir", str(build_root / "core" / "cli")])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["matched"] is True
    g = run_golden(t, preset("tiny"))
    vis = np.broadcast_to(g.visible, g.mask.shape)
    want = {"out": g.out, "all_pruned": g.all_pruned, "overflow": g.overflow,
            "survivors": g.mask.sum(-1), "planes": np.where(vis, g.planes_used, 0).sum(-1)}
    with np.load(out) as r:
        # Only what the RTL measured is written; no golden array poses as RTL output.
        assert set(r.files) == {*want, "cycles", "baseline_cycles", "pruning_only_cycles",
                                "load_cycles"}, sorted(r.files)
        for name, ref in want.items():
            bad = np.argwhere(r[name] != ref)
            assert not bad.size, f"seed {seed}: {name} differs at {bad[0].tolist()}"
        assert np.array_equal(r["cycles"], g.cycles)
        assert np.array_equal(r["baseline_cycles"], g.baseline_cycles)
    tot = summary["total"]
    assert tot["speedup"] == round(tot["baseline_cycles"] / tot["cycles"], 4)
    assert set(summary["variants"]) == {"leopard", "pruning_only", "baseline"}


def test_trace_longer_than_max_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    t = random_trace(rng, heads=1, n_queries=3, n_keys=20, head_dim=4, qk_bits=4, v_bits=6)
    path = tmp_path / "long.npz"
    save_trace(t, path)
    rc = main(["simulate", "--trace", str(path), "--preset", "tiny", "--out",
               str(tmp_path / "r.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "trace has 20 keys but max_keys is 16" in err and err.count("\n") == 1
    assert not (tmp_path / "r.npz").exists()


def test_core_emission_deterministic_and_ports(build_root: Path) -> None:
    cfg = preset("tiny")
    a = convert(LeopardCore(cfg), TOP_NAMES["core"])
    b = convert(LeopardCore(cfg), TOP_NAMES["core"])
    assert a == b and "/work/" not in a and "module leopard_core(" in a
    paths = write_build("core", cfg, build_root / "core" / "emit")
    man = json.loads(paths["manifest"].read_text())
    names = {p["name"] for p in man["ports"]}
    for port in ("clk", "rst", "k_load__payload", "v_load__valid", "query__ready",
                 "out__payload", "threshold", "scale_mant", "n_keys", "causal_offset"):
        assert port in names
        assert port in a
    assert man["latencies"]["be_query_overhead"] == perf.timing(cfg).be_query_overhead


#: Verilator -Wall warnings waived on Amaranth/Yosys output (not design issues):
#: WIDTHEXPAND/WIDTHTRUNC (implicit extension), UNUSEDSIGNAL (named intermediate wires),
#: DECLFILENAME (submodule names with dots), PROCASSINIT (initial values on registers),
#: CASEINCOMPLETE (casez after a default assignment), VARHIDDEN (a local that shadows a
#: module-level name in a generated function).
LINT_WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "DECLFILENAME", "PROCASSINIT",
                "CASEINCOMPLETE", "VARHIDDEN")


@pytest.mark.parametrize("name", ["tiny", "minilm", "baseline", "overlap"])
def test_core_lint(name: str, build_root: Path) -> None:
    require_tool("verilator")
    cfg = preset("tiny").replace(overlap_norm=True) if name == "overlap" else preset(name)
    if name not in ("tiny", "overlap"):
        cfg = cfg.replace(max_keys=32)
    v = build_root / "core" / f"lint-{name}" / "leopard_core.v"
    write_if_changed(v, convert(LeopardCore(cfg), "leopard_core"))
    cmd = ["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in LINT_WAIVERS), v.name]
    proc = subprocess.run(cmd, cwd=v.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb_core(build_root: Path, seed: int, simulator: str) -> None:
    require_tool("iverilog" if simulator == "icarus" else "verilator")
    run_cocotb("core", preset("tiny"), simulator, build_root / "core" / f"cocotb-{simulator}",
               seed=seed, expect_tests=3)
