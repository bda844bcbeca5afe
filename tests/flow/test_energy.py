"""The access-based energy method (leopard_rtl.flow.energy) on cases with known answers.

* SRAM access counts read from the SAIF of the real tiny units equal the counts the golden
  model implies: K planes read = ``planes_used`` per key, plus the planes a lane streams
  while its decision is pending (``cfg.fe_decision_latency``) for keys stopped early, K rows
  written = keys loaded, V rows read = survivors stored = the golden mask's survivors.
* The energy of a unit is the sum of its parts: per-cell powers add up to OpenSTA's total,
  every cell is given a block, the access energies are count x CACTI energy, and the
  modelled clock gating never charges more than the ungated clock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.emit import write_build
from leopard_rtl.flow.activity import simulate_activity
from leopard_rtl.flow.energy import ACCESSES, CATEGORIES, high_cycles, unit_access_energy
from leopard_rtl.flow.power import read_activity
from sim.golden import run_golden
from sim.vectors import random_trace

HEADS, NQ, NK = 2, 6, 16


def _trace(seed: int):
    return random_trace(np.random.default_rng(seed), heads=HEADS, n_queries=NQ, n_keys=NK,
                        kind="realistic")


def _counts(unit: str, cfg, trace, out: Path) -> dict[str, float]:
    verilog = write_build(unit, cfg, out)["verilog"]
    saif, scope, n = simulate_activity(unit, trace, cfg, out / "sim", verilog, timeout=600)
    assert n == HEADS and saif.suffix == ".saif"
    rates, cycles = read_activity(saif, scope)
    assert cycles > 0
    return {name: high_cycles(rates, cycles, pat)[0]
            for name, (pat, *_rest) in ACCESSES[unit].items()}


@pytest.mark.parametrize("variant", ["leopard",
                                     pytest.param("baseline", marks=pytest.mark.slow)])
def test_access_counts_match_golden(variant: str, build_root: Path, seed: int) -> None:
    require_tool("verilator")
    cfg = preset("tiny")
    cfg = cfg.baseline() if variant == "baseline" else cfg
    trace = _trace(seed)
    g = run_golden(trace, cfg)
    out = build_root / "flow" / f"energy-counts-{variant}"
    fe = _counts("frontend", cfg, trace, out / "frontend")
    be = _counts("backend", cfg, trace, out / "backend")
    pu = np.asarray(g.planes_used)
    p = cfg.qk_bits
    # a lane keeps streaming planes until its decision arrives: a key stopped after r
    # planes reads min(r + fe_decision_latency, p) of them (cfg.fe_decision_latency)
    reads = int(np.where((pu > 0) & (pu < p), np.minimum(pu + cfg.fe_decision_latency, p),
                         pu).sum())
    planes = int(pu.sum())
    survivors = int(np.asarray(g.mask).sum())
    print(f"seed {seed} {variant}: planes {planes} reads {reads} survivors {survivors} "
          f"fe {fe} be {be}")
    assert fe["k_read"] == reads, f"seed {seed}: K plane reads {fe['k_read']} != {reads}"
    assert fe["k_write"] == HEADS * NK, f"seed {seed}: K rows written {fe['k_write']}"
    assert be["v_write"] == HEADS * NK, f"seed {seed}: V rows written {be['v_write']}"
    for k in ("v_read", "s_read", "lut_read"):
        assert be[k] == survivors, f"seed {seed}: {k} {be[k]} != survivors {survivors}"
    # the store's write enable follows the testbench's survivor input, driven between
    # clock edges: its time high is counted to within one cycle per run
    assert abs(be["s_write"] - survivors) <= 1, f"seed {seed}: s_write {be['s_write']}"
    if variant == "baseline":
        vis = int(trace.visible().sum()) * HEADS            # visible() is [Nq, Nk]
        assert planes == vis * cfg.qk_bits


@pytest.mark.synth
def test_unit_energy_is_the_sum_of_its_parts(build_root: Path, seed: int) -> None:
    require_tool("verilator")
    require_tool("sta")
    cfg = preset("tiny")
    trace = _trace(seed)
    r = unit_access_energy("frontend", cfg, trace, "nangate45",
                           build_root / "flow" / "energy-unit")
    assert set(r["split_pj"]) == set(CATEGORIES)
    assert r["cells_unassigned"] == 0
    assert r["flops_matched"] > 50
    lanes = [b for b in r["blocks"] if b.startswith("lanes.lane")]
    assert len(lanes) == cfg.lanes, r["blocks"].keys()
    per_head = 1.0 / r["heads"]
    logic = sum(b["data_pj"] + b["clock_pj"] for b in r["blocks"].values()) * per_head
    assert r["split_pj"]["frontend_logic"] == pytest.approx(logic)
    assert r["logic_ungated_pj"] >= r["split_pj"]["frontend_logic"]
    for b in r["blocks"].values():
        assert 0 <= b["enabled_cycles"] <= r["cycles"]
        assert b["clock_pj"] <= b["clock_ungated_pj"] + 1e-9
    k = r["accesses"]["k_read"]
    assert r["split_pj"]["k_reads"] == pytest.approx(k["count"] * k["pj_each"] * per_head)
    assert r["split_pj"]["v_reads"] == 0.0
    assert k["pj_each"] == pytest.approx(r["memories"]["kbuf"]["read_pj"])
    assert r["fmax_mhz"] > 0 and r["logic_leak_w"] > 0 and r["sram_leak_w"] > 0
    # per-cell powers (the basis of the per-block split) add up to OpenSTA's total
    chk = r["power_check_w"]
    assert chk["cells_sum"] == pytest.approx(chk["sta_total"], rel=2e-3)


def test_prune_to_recalibrates_thresholds() -> None:
    from support import ROOT

    from leopard_rtl.flow.energy import EnergyError, prune_to
    from sim.trace import load_trace

    trace = load_trace(ROOT / "traces" / "minilm" / "sample_l3.npz")
    cfg = preset("minilm")
    vis = int(trace.visible().sum()) * trace.heads
    for f in (0.8, 0.9):
        g = run_golden(prune_to(trace, f), cfg)
        pruned = 1 - int(np.asarray(g.mask).sum()) / vis
        assert pruned == pytest.approx(f, abs=0.01), (f, pruned)
    with pytest.raises(EnergyError, match="prune-to"):
        prune_to(trace, 1.0)
