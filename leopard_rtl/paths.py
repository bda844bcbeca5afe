"""Where the project's files are: a checkout (the package beside ``pyproject.toml``) or an
installed package (then the working directory stands in for the project root); and how
generated files are written (:func:`atomic_write`: whole or not at all)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["project_root", "build_root", "atomic_write", "atomic_path"]

_HERE = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout this package runs from, else the working directory."""
    root = _HERE.parent
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def build_root() -> Path:
    """``build/`` of :func:`project_root` (generated files, caches)."""
    return project_root() / "build"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path``, renamed onto ``path`` when the block succeeds.

    The caller writes the temporary file inside the ``with`` block; on success it replaces
    ``path`` in one ``os.replace`` (readers see the old file or the new one, never a
    truncated one); on any exception (interrupt, disk full) it is removed and ``path`` is
    left as it was. The parent folder is created if missing.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
