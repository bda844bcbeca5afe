"""The suite's scheduling list (tests/conftest.py :data:`LONG_FIRST`) names test files that
exist, each once: a renamed file would silently lose its place at the front."""

from __future__ import annotations

from conftest import LONG_FIRST
from support import ROOT


def test_long_first_names_existing_files() -> None:
    missing = [name for name in LONG_FIRST if not (ROOT / name).is_file()]
    assert not missing, f"tests/conftest.py LONG_FIRST names missing files: {missing}"
    assert len(set(LONG_FIRST)) == len(LONG_FIRST), "LONG_FIRST names a file twice"
