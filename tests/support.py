"""What the tests share besides fixtures: the project root, the build folder, the seed,
:func:`require_tool` and :func:`require_module`. Importable from every test folder
(``pythonpath = ["tests"]``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "tests"

#: Default seed; override with LEOPARD_SEED=<int>. Printed in the pytest header.
SEED = int(os.environ.get("LEOPARD_SEED", "20260425"))


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


def require_module(name: str) -> None:
    """Fail (do not skip) when Python module ``name`` is not installed, like
    :func:`require_tool` (LEOPARD_ALLOW_MISSING_TOOLS=1 skips instead)."""
    if importlib.util.find_spec(name) is None:
        msg = f"required Python module {name!r} is not installed (run `make setup`)"
        if os.environ.get("LEOPARD_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(msg)
        pytest.fail(msg)
