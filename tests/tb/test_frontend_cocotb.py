"""cocotb on the emitted leopard_frontend Verilog, under Icarus and Verilator."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.tb.cocotb_runner import run_cocotb


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb_frontend(build_root: Path, seed: int, simulator: str) -> None:
    require_tool("iverilog" if simulator == "icarus" else "verilator")
    run_cocotb("frontend", preset("tiny"), simulator,
               build_root / "frontend" / f"cocotb-{simulator}", seed=seed, expect_tests=3)
