"""Differential fuzzing (:mod:`leopard_rtl.tb.fuzz`): random configurations and traces,
golden model vs the core RTL on Verilator. The default suite runs one random configuration
(:data:`~leopard_rtl.tb.fuzz.TRACES` traces on one build); ``-m slow`` runs
:data:`SLOW_CONFIGS` more, lanes=3 included. Every failure names the seed, the
configuration and the trace, and how to rerun it alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import require_tool

from leopard_rtl.tb.fuzz import fuzz_config

#: Configurations of the slow fuzz run (each one Verilator build).
SLOW_CONFIGS = 10


def _check(res: dict[str, Any]) -> None:
    assert not res["failures"], (
        f"seed {res['seed']} (rerun: python -m leopard_rtl.tb.fuzz --seed {res['seed']} "
        f"--seeds 1): config {res['config']}: "
        f"{len(res['failures'])} of {res['traces']} traces differ; first: "
        f"{res['failures'][0]}")


@pytest.mark.cocotb
def test_fuzz_core(seed: int, build_root: Path) -> None:
    require_tool("verilator")
    print(f"fuzz seed {seed}")
    _check(fuzz_config(seed, build_root / "fuzz" / f"s{seed}"))


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("n", range(1, SLOW_CONFIGS + 1))
def test_fuzz_core_slow(n: int, seed: int, build_root: Path) -> None:
    require_tool("verilator")
    s = seed + 1000 * n
    print(f"fuzz seed {s}")
    _check(fuzz_config(s, build_root / "fuzz" / f"s{s}", lanes=(1, 2, 3, 4)))
