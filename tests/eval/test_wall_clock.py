"""Wall-clock speedups (leopard_rtl.eval.cycles.wall_clock) and their place in the
``simulate`` summary and table (leopard_rtl.cli.sim)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leopard_rtl.cli import main
from leopard_rtl.cli.sim import core_table
from leopard_rtl.eval.cycles import wall_clock


def test_wall_clock_figures() -> None:
    cyc = {"leopard": 600, "pruning_only": 900, "baseline": 1000}
    wc = wall_clock(cyc, {"leopard": 200.0, "pruning_only": 250.0, "baseline": 400.0}, 1000.0)
    assert wc["leopard"]["speedup_cycles"] == round(1000 / 600, 4)
    assert wc["leopard"]["time_us_common"] == 0.6
    assert wc["leopard"]["time_us"] == 3.0                  # 600 cycles at 200 MHz
    assert wc["baseline"]["time_us"] == 2.5
    # At its own clock LeOPArd is slower than the baseline despite fewer cycles.
    assert wc["leopard"]["speedup_wall"] == round(2.5 / 3.0, 4)
    assert wc["pruning_only"]["speedup_wall"] == round(2.5 / 3.6, 4)
    assert wc["baseline"]["speedup_wall"] == 1.0


def test_wall_clock_without_fmax() -> None:
    wc = wall_clock({"leopard": 5, "pruning_only": 8, "baseline": 10}, None, 500.0)
    assert wc["leopard"]["time_us_common"] == 0.01
    assert all(r["fmax_mhz"] is None and r["speedup_wall"] is None for r in wc.values())
    # Without the baseline's fmax no variant has a wall-clock speedup.
    wc = wall_clock({"leopard": 5, "pruning_only": 8, "baseline": 10}, {"leopard": 100.0})
    assert wc["leopard"]["time_us"] == 0.05 and wc["leopard"]["speedup_wall"] is None


def _summary() -> dict:
    head = {"head": 0, "keys": 10, "survivors": 4, "cycles": 600, "pruning_only_cycles": 900,
            "baseline_cycles": 1000}
    var = {"golden_match": {"out": True}, "cycles_match_model": True, "load_cycles": [7]}
    return {"config": "tiny", "simulator": "verilator", "trace": "t.npz", "heads": [head],
            "total": dict(head), "variants": {"leopard": var, "pruning_only": var,
                                              "baseline": var}}


def test_core_table_shows_wall_clock() -> None:
    s = _summary()
    s["wall_clock"] = wall_clock({"leopard": 600, "pruning_only": 900, "baseline": 1000},
                                 {"leopard": 200.0, "pruning_only": 250.0, "baseline": 400.0})
    text = core_table(s)
    assert "Wall-clock time" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("leopard"))
    assert re.search(r"600\s+1\.667x\s+0\.60 us\s+200\.0\s+3\.00 us\s+0\.833x", row), row
    s["wall_clock"] = wall_clock({"leopard": 600, "pruning_only": 900, "baseline": 1000})
    assert "need --fmax" in core_table(s)


@pytest.mark.parametrize("value, msg", [
    ("fast=300", "VARIANT one of leopard"),
    ("leopard", "expected VARIANT=MHZ"),
    ("leopard=-3", "must be a finite number > 0"),
    ("baseline=missing.json", r"missing\.json: --fmax needs a leopard-rtl synth report"),
])
def test_fmax_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str,
                     msg: str) -> None:
    trace = tmp_path / "t.npz"
    trace.write_bytes(b"")
    rc = main(["simulate", "--unit", "core", "--trace", str(trace), "--out",
               str(tmp_path / "r.npz"), "--fmax", value])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("leopard-rtl: error: ") and err.count("\n") == 1, err
    assert re.search(msg, err), err


def test_fmax_from_synth_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A synth report.json is read for its fmax (then the bad trace stops the run)."""
    rep = tmp_path / "report.json"
    rep.write_text(json.dumps({"sta": {"fmax_mhz": 512.5}}))
    trace = tmp_path / "t.npz"
    trace.write_bytes(b"not a trace")
    rc = main(["simulate", "--unit", "core", "--trace", str(trace), "--out",
               str(tmp_path / "r.npz"), "--fmax", f"baseline={rep}"])
    err = capsys.readouterr().err
    assert rc == 2 and "--fmax" not in err and str(trace) in err, err


def test_report_wall_clock_section() -> None:
    """The evaluation report states cycles, clocks and times side by side with the baseline."""
    from leopard_rtl.eval.report import _wall_clock_section, wall_clock_rows

    cyc = {"leopard": [300, 300], "pruning_only": [450, 450], "baseline": [500, 500]}
    res = {"traces": [{"workload": "w", "layer": 1, "head_dim": 16, "cycles": cyc},
                      {"workload": "w", "layer": 2, "head_dim": 64, "cycles": cyc}],
           "energy": {"pdk": "nangate45", "families": {"16": {
               "leopard": {"fmax_mhz": 200.0}, "pruning_only": {"fmax_mhz": 250.0},
               "baseline": {"fmax_mhz": 400.0}}}}}
    rows = wall_clock_rows(res)
    assert rows[0]["wall_clock"]["leopard"]["speedup_wall"] == round(2.5 / 3.0, 4)
    assert rows[1]["wall_clock"]["leopard"]["speedup_wall"] is None    # not synthesized
    text = "\n".join(_wall_clock_section(res))
    assert "| w | 1 | 600 | 200.0 | 3.00 | 900 | 250.0 | 3.60 | 1000 | 400.0 | 2.50 | " \
           "1.667 | 0.833 | 0.694 |" in text, text
    assert "| w | 2 | 600 | - | - | 900 | - | - | 1000 | - | - | 1.667 | - | - |" in text
    assert "**0.833x** on 1 trace(s)" in text
