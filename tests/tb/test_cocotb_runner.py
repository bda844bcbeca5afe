"""The cocotb runner never passes a run that collected no test (it used to pass with zero)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.errors import UserError
from leopard_rtl.tb.cocotb_runner import run_cocotb


@pytest.mark.cocotb
def test_zero_collected_tests_fail(build_root: Path, seed: int,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The real front-end module, with a filter that selects none of its 3 tests."""
    require_tool("iverilog")
    monkeypatch.setenv("COCOTB_TEST_FILTER", "no_test_has_this_name")
    with pytest.raises(UserError, match=r"cocotb frontend on icarus \(seed \d+\): 0 test "
                                        r"cases \(expected 3\)"):
        run_cocotb("frontend", preset("tiny"), "icarus",
                   build_root / "frontend" / "cocotb-none", seed=seed, expect_tests=3)
