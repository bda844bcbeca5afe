"""Committed workload traces under traces/: loadable, consistent, small (no torch needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

from learn.export import check_trace_prunes, score_bits  # noqa: E402
from sim.quant import threshold_to_int  # noqa: E402
from sim.trace import load_trace  # noqa: E402

TRACES = ROOT / "traces"
FILES = sorted(TRACES.glob("*/*.npz"))
WORKLOADS = sorted(p.parent for p in TRACES.glob("*/thresholds.json"))
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 6 << 20
HEAD_DIMS = {"minilm": 32, "smollm2": 64, "vit": 16, "memn2n": 32}


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(TRACES)) for p in paths]


def test_traces_exist() -> None:
    assert FILES, "no traces committed under traces/"
    assert (TRACES / "minilm" / "sample_l3.npz").is_file()
    assert (TRACES / "README.md").is_file()


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_trace_loads_and_is_consistent(path: Path) -> None:
    tr = load_trace(path)
    assert tr.qk_bits == 12 and tr.v_bits == 12
    assert tr.q.shape[0] == tr.k.shape[0] == tr.v.shape[0] == tr.heads
    assert tr.k.shape[1] == tr.v.shape[1]
    assert tr.n_keys <= 128 and tr.n_queries <= 128
    workload = path.parent.name
    if workload in HEAD_DIMS:
        assert tr.head_dim == HEAD_DIMS[workload]
    assert tr.causal == (workload == "smollm2")
    # quantized with the symmetric convention: never uses -2**(p-1)
    for name, bits in (("q", tr.qk_bits), ("k", tr.qk_bits), ("v", tr.v_bits)):
        arr = getattr(tr, name)
        assert np.abs(arr).max() <= (1 << (bits - 1)) - 1, name
        # per-tensor symmetric scale: every head reaches the full range in q, k and v
        assert np.all(np.abs(arr).reshape(tr.heads, -1).max(axis=1) == (1 << (bits - 1)) - 1)
    bound = 1 << score_bits(tr.qk_bits, tr.head_dim)
    assert np.all(np.abs(tr.threshold) <= bound)
    for key in ("model", "layer", "input", "provenance", "threshold_method", "theta"):
        assert key in tr.meta, f"meta lacks {key!r}"
    assert len(tr.meta["theta"]) == tr.heads


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_threshold_matches_theta_integer_exact(path: Path) -> None:
    """S >= Th iff S * s_q * s_k / sqrt(d) >= theta, on the trace's own integer scores."""
    tr = load_trace(path)
    theta = np.asarray(tr.meta["theta"], dtype=np.float64)
    th = threshold_to_int(theta, tr.scale_q, tr.scale_k, tr.head_dim)
    w = score_bits(tr.qk_bits, tr.head_dim)
    th = np.clip(th, -(1 << (w - 1)), (1 << (w - 1)) - 1)
    assert np.array_equal(th, tr.threshold)
    chk = check_trace_prunes(tr)
    assert chk["mismatch"] == [0] * tr.heads
    # integer-exact: the smallest surviving score is >= Th, the largest pruned one < Th
    vis = tr.visible()
    for h in range(tr.heads):
        S = tr.q[h] @ tr.k[h].T
        keep = (S >= tr.threshold[h]) & vis
        if keep.any():
            assert S[keep].min() >= tr.threshold[h]
        pruned = ~keep & vis
        if pruned.any():
            assert S[pruned].max() < tr.threshold[h]


@pytest.mark.parametrize("folder", WORKLOADS, ids=[p.name for p in WORKLOADS])
def test_thresholds_json_matches_traces(folder: Path) -> None:
    doc = json.loads((folder / "thresholds.json").read_text())
    for key in ("model", "theta", "lambda", "T_schedule", "trained"):
        assert key in doc
    thetas = doc["theta"]
    learned = 0
    for path in sorted(folder.glob("*.npz")):
        tr = load_trace(path)
        if not str(tr.meta["threshold_method"]).startswith("learned"):
            continue
        learned += 1
        layer = int(tr.meta["layer"])
        heads = tr.meta.get("heads", list(range(tr.heads)))
        theta = np.asarray([thetas[layer][h] for h in heads], dtype=np.float64)
        assert np.allclose(theta, tr.meta["theta"], rtol=0, atol=1e-6)
        th = threshold_to_int(theta, tr.scale_q, tr.scale_k, tr.head_dim)
        w = score_bits(tr.qk_bits, tr.head_dim)
        assert np.array_equal(np.clip(th, -(1 << (w - 1)), (1 << (w - 1)) - 1), tr.threshold)
        assert tr.meta["lambda"] == doc["lambda"]
    assert learned >= 2, f"{folder}: fewer than 2 traces with learned thresholds"


def test_sample_trace_for_make_run() -> None:
    tr = load_trace(TRACES / "minilm" / "sample_l3.npz")
    assert tr.heads == 12 and tr.head_dim == 32 and 32 <= tr.n_queries <= 64
    assert tr.meta["layer"] == 3
    assert tr.meta["threshold_method"]


def test_sizes_small() -> None:
    sizes = {p: p.stat().st_size for p in FILES}
    for p, s in sizes.items():
        assert s <= MAX_FILE_BYTES, f"{p} is {s} bytes"
    total = sum(sizes.values()) + sum(p.stat().st_size for p in TRACES.glob("*/*.json"))
    assert total <= MAX_TOTAL_BYTES


def test_scale_convention_roundtrip() -> None:
    """Dequantized logits stay close to the float logits implied by the scales."""
    tr = load_trace(TRACES / "minilm" / "sample_l3.npz")
    z = np.einsum("hqd,hkd->hqk", tr.q * tr.scale_q[:, None, None],
                  tr.k * tr.scale_k[:, None, None]) / math.sqrt(tr.head_dim)
    assert np.all(np.isfinite(z)) and 0.1 < z.std() < 100
