"""What every evaluation step shares: the variants, the error type, default locations,
progress lines, the geometric mean and JSON conversion."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LeopardError
from ..paths import project_root
from ..progress import format_seconds, note

__all__ = ["REPO", "VARIANTS", "EvaluationError", "progress", "geomean", "to_json", "rel"]


#: Repository root (traces/, results/, docs/ are found relative to it by default).
REPO = project_root()


#: The three designs compared (SPEC section 6), in report order.
VARIANTS = ("leopard", "pruning_only", "baseline")


class EvaluationError(LeopardError, ValueError):
    """A bad input to the evaluation (missing trace, unusable preset); one-line message."""


_T0 = time.monotonic()


def progress(msg: str, quiet: bool = False) -> None:
    """A stage line on stderr with the time since the evaluation module was loaded."""
    if not quiet:
        note(f"[{format_seconds(time.monotonic() - _T0)}] {msg}")


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive numbers (``nan`` for an empty list)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan")
    if any(v <= 0 for v in vals):
        raise ValueError(f"geomean needs positive values, got {vals}")
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def to_json(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)
