"""cocotb on the emitted leopard_frontend Verilog, under Icarus and Verilator."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.tb.cocotb_runner import run_cocotb


# Verilator is slow (~1.5 min of cold build): cocotb under Verilator stays in the default
# suite through the back end and the core (tests/tb/test_backend.py, test_core.py), and the
# front end's Verilog under Verilator through its runner (tests/tb/test_frontend.py).
@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus",
                                       pytest.param("verilator", marks=pytest.mark.slow)])
def test_cocotb_frontend(build_root: Path, seed: int, simulator: str) -> None:
    require_tool("iverilog" if simulator == "icarus" else "verilator")
    run_cocotb("frontend", preset("tiny"), simulator,
               build_root / "frontend" / f"cocotb-{simulator}", seed=seed, expect_tests=3)
