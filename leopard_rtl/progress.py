"""Stage lines on stderr for long steps: what runs, and how long it took.

Every long step (synthesis, STA, place-and-route steps, energy runs, evaluation, sweeps,
the FPGA flow) runs inside :func:`stage`::

    with stage("synth: yosys leopard_core on osu018"):
        run_yosys(...)

which prints ``leopard-rtl: synth: yosys leopard_core on osu018 ...`` when it starts and
``leopard-rtl: synth: yosys leopard_core on osu018: done in 5m12s`` (or ``failed after``)
when it ends, on stderr, so that stdout keeps only the results. ``LEOPARD_QUIET=1`` turns
the lines off. The module imports nothing of the project, so every layer may use it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["stage", "note", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``4.2s``, ``5m12s`` or ``1h03m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def note(text: str) -> None:
    """One progress line on stderr (unless ``LEOPARD_QUIET=1``)."""
    if os.environ.get("LEOPARD_QUIET") != "1":
        print(f"leopard-rtl: {text}", file=sys.stderr, flush=True)


@contextmanager
def stage(what: str) -> Iterator[None]:
    """Print a start line, run the body, print its elapsed time (or that it failed)."""
    note(f"{what} ...")
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        note(f"{what}: failed after {format_seconds(time.monotonic() - t0)}")
        raise
    note(f"{what}: done in {format_seconds(time.monotonic() - t0)}")
