"""Validation of the activity-annotated power method on a design with known toggle rates.

A free-running counter's bit i toggles exactly 2**-i times per cycle. The VCD parser must
recover those rates, every flip-flop of the synthesized netlist must be matched to its RTL
register bit, and the mean register activity must be the analytic mean. The last test pins
down the OpenSTA 2.0.17 limitation that makes the flow use that mean (docs/ENERGY.md):
per-pin activities on register outputs do not change the power.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from flow_helpers import COUNTER_TB, Counter, emit
from support import require_tool

from leopard_rtl.flow.pdk import resolve_pdk
from leopard_rtl.flow.power import PIN_ACTIVITY_PROC, activity_tcl, flop_outputs, vcd_activity
from leopard_rtl.flow.run import LIB_CACHE
from leopard_rtl.flow.sta import run_sta
from leopard_rtl.flow.synth import synthesize

pytestmark = pytest.mark.synth

WIDTH = 8
CYCLES = 1023


@pytest.fixture(scope="module")
def counter(build_root: Path) -> dict:
    require_tool("iverilog")
    out = build_root / "flow" / "power-counter"
    v = emit(Counter(WIDTH), "counter", out)
    (out / "tb.v").write_text(COUNTER_TB.format(w1=WIDTH - 1, cycles=CYCLES))
    subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "-s", "tb", "tb.v", v.name],
                   cwd=out, check=True)
    subprocess.run(["vvp", "-n", "tb.vvp"], cwd=out, check=True, capture_output=True)
    rates, cycles = vcd_activity(out / "counter.vcd", "tb.dut")
    return {"out": out, "verilog": v, "rates": rates, "cycles": cycles}


def test_vcd_rates_match_analytic(counter: dict) -> None:
    rates, cycles = counter["rates"], counter["cycles"]
    assert cycles == CYCLES + 1                     # one reset edge, then CYCLES counting
    for i in range(WIDTH):
        a, duty = rates[f"cnt[{i}]"]
        expect = (CYCLES >> i) / cycles             # floor(CYCLES / 2**i) toggles
        assert a == pytest.approx(expect, abs=1.5 / cycles), (i, a, expect)
        assert a == pytest.approx(rates[f"count[{i}]"][0])
        if i < WIDTH - 1:
            assert duty == pytest.approx(0.5, abs=0.02), (i, duty)
    assert rates["en"][0] == pytest.approx(1 / cycles)


def test_flop_matching_and_opensta_activity(counter: dict) -> None:
    require_tool("sta")
    pdk = resolve_pdk("nangate45", LIB_CACHE)
    out = counter["out"]
    syn = synthesize(counter["verilog"], "counter", pdk, out, clock_ns=2.0)
    flops = flop_outputs(syn.netlist, pdk)
    assert len({inst for inst, _, _ in flops}) == WIDTH
    stats = activity_tcl(syn.netlist, pdk, counter["rates"], out / "act_vcd.tcl",
                         input_ports=["en", "rst"])
    assert {k: stats[k] for k in ("flops_annotated", "flops_unmatched",
                                  "input_bits_annotated")} == {
        "flops_annotated": WIDTH, "flops_unmatched": 0, "input_bits_annotated": 2}
    # The same pins annotated with the exact rates 2**-i and duty 0.5.
    bit = {inst: int(re.search(r"\[(\d+)\]", net).group(1)) for inst, pin, net in flops
           if pin == "Q"}

    def exact(scale: float, name: str) -> Path:
        lines = [f"leopard_pin_activity {{{inst.lstrip(chr(92))}/{pin}}} "
                 f"{scale * 2.0 ** -bit[inst]:.6g} 0.5" for inst, pin, _net in flops]
        lines += ["set_power_activity -input_ports [get_ports en] -activity 0 -duty 1",
                  "set_power_activity -input_ports [get_ports rst] -activity 0 -duty 0"]
        (out / name).write_text(PIN_ACTIVITY_PROC + "\n".join(lines) + "\n")
        return out / name

    def power(tcl: Path | None, tag: str, act: float = 0.1) -> dict[str, float]:
        return run_sta(syn.netlist, "counter", pdk, out, clock_ns=2.0, activity_tcl=tcl,
                       global_activity=act, tag=tag).power_w

    # Mean register activity = mean of floor(N / 2**i) / (N + 1) over the bits.
    mean = sum((CYCLES >> i) for i in range(WIDTH)) / (CYCLES + 1) / WIDTH
    assert stats["mean_flop_activity"] == pytest.approx(mean, rel=1e-9)
    p_exact = power(exact(1.0, "act_exact.tcl"), "sta_exact")
    p_half = power(exact(0.5, "act_half.tcl"), "sta_half")
    p_mean = power(None, "sta_glob", stats["mean_flop_activity"])
    p_low = power(None, "sta_glob_low", stats["mean_flop_activity"] / 2)
    # OpenSTA 2.0.17 ignores register-output pin activities: halving them changes nothing.
    # (When this fails after an OpenSTA upgrade, switch energy to per-pin annotation.)
    assert p_half["switching"] == pytest.approx(p_exact["switching"], rel=1e-6)
    # The -global activity the flow uses does drive the power, linearly for switching.
    assert p_low["switching"] == pytest.approx(0.5 * p_mean["switching"], rel=1e-3)


@pytest.mark.parametrize("variant", ["leopard", "baseline"])
def test_activity_simulators_agree(variant: str, build_root: Path, seed: int) -> None:
    """The activity run on the real front end: Verilator and Icarus see the same toggles.

    Regression: the baseline front end used to hang under Icarus (a register written with
    its initial value kept ``x`` without ``icarus_compat``), so the baseline's front-end
    energy could not be simulated.
    """
    import numpy as np

    from leopard_rtl.config import preset
    from leopard_rtl.emit import write_build
    from leopard_rtl.flow.activity import simulate_vcd
    from leopard_rtl.flow.power import vcd_activity
    from sim.vectors import random_trace

    require_tool("iverilog")
    cfg = preset("tiny")
    cfg = cfg.baseline() if variant == "baseline" else cfg
    trace = random_trace(np.random.default_rng(seed), heads=2, n_queries=6, n_keys=16,
                         kind="realistic")
    out = build_root / "flow" / f"activity-agree-{variant}"
    verilog = write_build("frontend", cfg, out)["verilog"]
    res = {}
    for sim_name in ("verilator", "icarus"):
        vcd, scope, n = simulate_vcd("frontend", trace, cfg, out / sim_name, verilog,
                                     simulator=sim_name, timeout=120)
        assert n == 2
        res[sim_name] = vcd_activity(vcd, scope)
    (rv, cv), (ri, ci) = res["verilator"], res["icarus"]
    assert cv == ci > 0, f"seed {seed}: cycles verilator {cv} icarus {ci}"
    regs = [k for k in rv if k in ri and "dump_module" not in k]
    assert len(regs) > 1000
    # Icarus starts registers at x: at most one extra start-up toggle per bit.
    worst = max(regs, key=lambda k: abs(rv[k][0] - ri[k][0]))
    assert abs(rv[worst][0] - ri[worst][0]) * cv <= 1 + 1e-9, \
        f"seed {seed}: {worst}: verilator {rv[worst]} icarus {ri[worst]}"
    assert np.mean([rv[k][0] for k in regs]) > 0.01


def test_saif_rates_match_analytic(build_root: Path) -> None:
    """Verilator's SAIF (the energy flow's activity source) gives the counter's exact rates."""
    require_tool("verilator")
    from leopard_rtl.flow.power import saif_activity
    from leopard_rtl.tb.toolchain import tool, verilator_build_args

    out = build_root / "flow" / "power-counter-saif"
    v = emit(Counter(WIDTH), "counter", out)
    (out / "tb.v").write_text(COUNTER_TB.format(w1=WIDTH - 1, cycles=CYCLES)
                              .replace("counter.vcd", "counter.saif"))
    subprocess.run([tool("verilator"), *verilator_build_args(), "--trace-saif",
                    "--top-module", "tb", "-Mdir", "obj", "-o", "Vtb", "tb.v", v.name],
                   cwd=out, check=True, capture_output=True)
    subprocess.run([str(out / "obj" / "Vtb")], cwd=out, check=True, capture_output=True)
    rates, cycles = saif_activity(out / "counter.saif", "tb.dut")
    assert cycles == CYCLES + 1
    for i in range(WIDTH):
        a, duty = rates[f"cnt[{i}]"]
        assert a * cycles == pytest.approx(CYCLES >> i), (i, a)      # exact toggle counts
        if i < WIDTH - 1:
            assert duty == pytest.approx(0.5, abs=0.02), (i, duty)
    assert rates["en"][0] * cycles == pytest.approx(1)
