"""Shared helpers of the robustness tests (test_robustness*.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leopard_rtl.cli import main
from sim.trace import Trace
from sim.vectors import random_trace

EXE = shutil.which("leopard-rtl", path=str(Path(sys.executable).parent))


def _trace(rng: np.random.Generator, **kw: Any) -> Trace:
    args: dict[str, Any] = dict(heads=2, n_queries=4, n_keys=6, head_dim=4, qk_bits=4,
                                v_bits=6, kind="realistic")
    args.update(kw)
    return random_trace(rng, **args)


def _fields(t: Trace) -> dict[str, Any]:
    return {"q": t.q, "k": t.k, "v": t.v, "threshold": t.threshold, "scale_q": t.scale_q,
            "scale_k": t.scale_k, "scale_v": t.scale_v, "qk_bits": np.int64(t.qk_bits),
            "v_bits": np.int64(t.v_bits), "causal": np.bool_(t.causal),
            "meta": np.str_(json.dumps(t.meta))}


def _one_line(err: str) -> str:
    assert err.startswith("leopard-rtl: error: ") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err
    return err


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = main(args)
    except SystemExit as exc:          # argparse
        rc = int(exc.code or 0)
    return rc, capsys.readouterr().err
