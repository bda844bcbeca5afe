"""What the tests share besides fixtures: the project root, the build folder, the seed,
:func:`require_tool`, :func:`require_module` and :func:`assert_core_exact`. Importable
from every test folder (``pythonpath = ["tests"]``)."""

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


def assert_core_exact(got: dict, golden, cfg, seed: int) -> None:
    """The core testbench's outputs (``leopard_rtl.tb.core.run_trace``) equal the golden
    model's ``golden`` bit for bit, and its accept/output cycles and cycle counts equal the
    cycle-exact model's; a failure names the seed, the configuration and the head/query."""
    import numpy as np

    from leopard_rtl.tb.core import compare
    from sim import perf

    for name, res in compare(got, golden).items():
        assert res["match"], f"seed={seed} {cfg.name}: {name} differs: {res}"
    sch = perf.core_schedule(golden.planes_used, golden.mask, cfg)
    acc = got["accept_cycle"] - got["accept_cycle"][:, :1]
    out = got["out_cycle"] - got["accept_cycle"][:, :1]
    for what, rtl, model in (("accept", acc, sch["start"]), ("output", out, sch["out"])):
        bad = np.argwhere(rtl != model)
        assert bad.size == 0, (f"seed={seed} {cfg.name}: {what} cycle of head/query "
                               f"{tuple(bad[0])}: RTL {rtl[tuple(bad[0])]} model "
                               f"{model[tuple(bad[0])]}")
    assert np.array_equal(got["cycles"], golden.cycles), f"seed={seed}: cycles {got['cycles']}"
    assert np.array_equal(got["fe_cycles"], sch["fe_cycles"]), f"seed={seed}: FE cycles"
