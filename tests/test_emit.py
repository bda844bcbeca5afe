"""Emission of leopard_frontend: deterministic, lint-clean under verilator -Wall."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.emit import TOP_NAMES, convert, write_build
from leopard_rtl.hw.frontend import FrontEnd
from leopard_rtl.tb.toolchain import verilator_env
from sim.perf import timing

#: Verilator -Wall warnings waived for Amaranth/Yosys output (none points at a design bug):
#: WIDTHEXPAND/WIDTHTRUNC: Amaranth's implicit widening/truncation (TOOLCHAIN.md);
#: DECLFILENAME: submodules are named ``leopard_frontend.lanes.lane0`` etc.;
#: PROCASSINIT: Yosys gives every register an initial value and assigns it in always blocks;
#: UNUSEDSIGNAL: Amaranth keeps named intermediate wires and unused field views;
#: CASEINCOMPLETE: per-element writes of an Array become partial ``casez`` statements
#: after a default assignment (no latch).
WAIVED = ("WIDTHEXPAND", "WIDTHTRUNC", "DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL",
          "CASEINCOMPLETE")


@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_lint_wall(build_root, name):
    require_tool("verilator")
    out = build_root / "frontend" / f"emit-{name}"
    paths = write_build("frontend", preset(name), out)
    cmd = ["verilator", "--lint-only", "-Wall", *[f"-Wno-{w}" for w in WAIVED],
           str(paths["verilog"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=verilator_env())
    assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr[:4000]
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["top"] == TOP_NAMES["frontend"] == "leopard_frontend"
    # The performance model's per-query overhead is the RTL's (sim/perf.py).
    assert manifest["latencies"]["query_overhead"] == timing(preset(name)).fe_query_overhead
    names = {p["name"] for p in manifest["ports"]}
    for port in ("k_load__payload", "query__ready", "result__valid", "survivor__payload",
                 "threshold", "early_termination", "pruning"):
        assert port in names
        assert port in paths["verilog"].read_text()


def test_deterministic():
    cfg = preset("tiny")
    a = convert(FrontEnd(cfg), "leopard_frontend")
    b = convert(FrontEnd(cfg), "leopard_frontend")
    assert a == b
    assert os.getcwd() not in a and "/work" not in a


def test_cli_generate(tmp_path):
    from leopard_rtl.cli import main
    assert main(["generate", "--unit", "frontend", "--preset", "tiny", "--set", "lanes=3",
                 "--out", str(tmp_path)]) == 0
    text = (tmp_path / "leopard_frontend.v").read_text()
    assert "module leopard_frontend(" in text
