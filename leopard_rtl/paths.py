"""Where the project's files are: a checkout (the package beside ``pyproject.toml``) or an
installed package (then the working directory stands in for the project root)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["project_root", "build_root"]

_HERE = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout this package runs from, else the working directory."""
    root = _HERE.parent
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def build_root() -> Path:
    """``build/`` of :func:`project_root` (generated files, caches)."""
    return project_root() / "build"
