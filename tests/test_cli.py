"""The ``leopard-rtl`` command line: golden outputs, summary, and one-line user errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leopard_rtl import preset
from leopard_rtl.cli import main
from sim.golden import run_golden
from sim.trace import load_trace, save_trace
from sim.vectors import random_trace


@pytest.fixture
def trace_path(tmp_path: Path, rng: np.random.Generator) -> Path:
    t = random_trace(rng, heads=3, n_queries=8, n_keys=12, head_dim=4, qk_bits=4, v_bits=6,
                     causal=True, kind="realistic")
    path = tmp_path / "t.npz"
    save_trace(t, path)
    return path


def test_golden_command(trace_path: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.npz"
    assert main(["golden", "--trace", str(trace_path), "--preset", "tiny",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    with np.load(out) as r:
        assert r["mask"].dtype == bool and r["mask"].shape == (3, 8, 12)
        assert r["planes_used"].shape == (3, 8, 12) and r["planes_used"].dtype.kind == "i"
        assert r["out"].shape == (3, 8, 4) and r["all_pruned"].shape == (3, 8)
        ref = run_golden(load_trace(trace_path), preset("tiny"))
        for name in ("mask", "planes_used", "out", "all_pruned"):
            assert np.array_equal(r[name], getattr(ref, name)), name
        vis = load_trace(trace_path).visible()
        assert (r["planes_used"][:, ~vis] == 0).all()
    assert len(summary["heads"]) == 3
    tot = summary["total"]
    assert tot["keys"] == 3 * int(vis.sum())
    assert tot["survivors"] == int(ref.mask.sum())
    assert tot["cycles"] == int(ref.cycles.sum())
    assert tot["baseline_cycles"] == int(ref.baseline_cycles.sum())
    assert tot["speedup"] == pytest.approx(tot["baseline_cycles"] / tot["cycles"], rel=1e-5)
    for key in ("pruned_fraction", "mean_planes"):
        assert key in summary["heads"][0]


def test_set_overrides(trace_path: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.npz"
    assert main(["golden", "--trace", str(trace_path), "--preset", "tiny",
                 "--set", "pruning=false", "--out", str(out)]) == 0
    with np.load(out) as r:
        assert r["mask"].sum() == load_trace(trace_path).visible().sum() * 3


@pytest.mark.parametrize("args,msg", [
    (["--preset", "paper"], r"trace has head_dim=4 but the configuration 'paper' has "
                            r"head_dim=64"),
    (["--preset", "tiny", "--set", "max_keys=8"], r"trace has 12 keys but max_keys is 8"),
    (["--preset", "nope"], r"preset must be one of"),
    (["--preset", "tiny", "--set", "lanes=0"], r"lanes must be in \[1, 256\], not 0"),
])
def test_user_errors(trace_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                     args: list[str], msg: str) -> None:
    rc = main(["golden", "--trace", str(trace_path), "--out", str(tmp_path / "r.npz"), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("leopard-rtl: error: ") and err.count("\n") == 1
    assert re.search(msg, err), err


def test_bad_trace_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, q=np.zeros((1, 2, 3)))
    exe = shutil.which("leopard-rtl", path=str(Path(sys.executable).parent))
    assert exe, "the leopard-rtl console script is not installed in the venv"
    proc = subprocess.run([exe, "golden", "--trace", str(bad), "--out",
                           str(tmp_path / "r.npz")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"leopard-rtl: error: {bad}: field 'k': missing (required " \
                          f"fields: q, k, v, threshold, scale_q, scale_k, scale_v, qk_bits, " \
                          f"v_bits, causal, meta)\n"
    proc = subprocess.run([exe, "golden", "--trace", str(tmp_path / "none.npz"), "--out",
                           str(tmp_path / "r.npz")], capture_output=True, text=True)
    assert proc.returncode == 2 and "none.npz: no such file" in proc.stderr


def test_committed_sample_trace_runs(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`make run`'s job on the committed real trace."""
    root = Path(__file__).resolve().parents[1]
    sample = root / "traces" / "minilm" / "sample_l3.npz"
    assert sample.is_file(), "traces/minilm/sample_l3.npz is missing"
    assert main(["golden", "--trace", str(sample), "--preset", "minilm",
                 "--out", str(tmp_path / "r.npz")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["meta"]["model"]
    assert 0 < summary["total"]["pruned_fraction"] < 1
