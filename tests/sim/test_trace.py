"""Trace format: round trip and every loader error (message names the file and the field)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.trace import TraceError, load_trace, save_trace
from sim.vectors import random_trace


def _fields(rng: np.random.Generator) -> dict[str, Any]:
    t = random_trace(rng, heads=2, n_queries=3, n_keys=5, head_dim=4, qk_bits=4, v_bits=6)
    return {"q": t.q, "k": t.k, "v": t.v, "threshold": t.threshold, "scale_q": t.scale_q,
            "scale_k": t.scale_k, "scale_v": t.scale_v, "qk_bits": np.int64(4),
            "v_bits": np.int64(6), "causal": np.bool_(False),
            "meta": np.str_(json.dumps({"model": "random"}))}


def test_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    t = random_trace(rng, heads=3, n_queries=4, n_keys=6, head_dim=4, qk_bits=4, causal=True)
    path = tmp_path / "t.npz"
    save_trace(t, path)
    u = load_trace(path)
    for name in ("q", "k", "v", "threshold", "scale_q", "scale_k", "scale_v"):
        assert np.array_equal(getattr(t, name), getattr(u, name)), name
        assert getattr(u, name).dtype in (np.int64, np.float64)
    assert (u.qk_bits, u.v_bits, u.causal) == (4, 6, True)
    assert u.meta["model"] == "random" and u.source == str(path)
    with np.load(path) as raw:
        assert raw["q"].dtype == np.int8          # stored narrow


def test_full_range_values(tmp_path: Path, rng: np.random.Generator) -> None:
    f = _fields(rng)
    f["q"][0, 0, 0] = -8                           # most negative 4-bit value is allowed
    f["k"][...] = 7
    np.savez(tmp_path / "t.npz", **f)
    assert load_trace(tmp_path / "t.npz").q[0, 0, 0] == -8


CASES: list[tuple[str, Any, str]] = [
    ("missing", ("del", "k"), r"field 'k': missing"),
    ("rank", ("set", "q", np.zeros((3, 4), np.int64)), r"field 'q': must have rank 3"),
    ("dtype", ("set", "k", np.zeros((2, 5, 4), np.float32)),
     r"field 'k': must have an integer dtype"),
    ("d mismatch", ("set", "k", np.zeros((2, 5, 3), np.int64)),
     r"field 'k': head_dim 3 differs from q's 4"),
    ("heads", ("set", "v", np.zeros((3, 5, 4), np.int64)), r"field 'k|v': head count mismatch"),
    ("rows", ("set", "v", np.zeros((2, 6, 4), np.int64)),
     r"field 'v': has 6 rows but k has 5 keys"),
    ("range", ("poke", "q", 8), r"field 'q': value 8 at index \(0, 0, 0\) is outside the "
                                r"signed 4-bit range \[-8, 7\]"),
    ("range v", ("poke", "v", -33), r"field 'v': value -33 .* signed 6-bit range"),
    ("nan scale", ("set", "scale_k", np.array([1.0, np.nan])),
     r"field 'scale_k': non-finite value at head 1"),
    ("neg scale", ("set", "scale_v", np.array([1.0, -1.0])), r"field 'scale_v': must be > 0"),
    ("scale int", ("set", "scale_q", np.array([1, 1])), r"field 'scale_q': must have a floating"),
    ("th shape", ("set", "threshold", np.zeros(3, np.int64)),
     r"field 'threshold': must have shape \[H\] = \(2,\)"),
    ("th float", ("set", "threshold", np.zeros(2)), r"field 'threshold': must have an integer"),
    ("bits", ("set", "qk_bits", np.int64(17)), r"field 'qk_bits': must be in \[2, 16\], not 17"),
    ("bits type", ("set", "v_bits", np.float64(6)), r"field 'v_bits': must be an integer scalar"),
    ("bits shape", ("set", "v_bits", np.array([6, 6])), r"field 'v_bits': must be a scalar"),
    ("causal", ("set", "causal", np.int64(1)), r"field 'causal': must be a bool scalar"),
    ("meta json", ("set", "meta", np.str_("{nope")), r"field 'meta': not valid JSON"),
    ("meta obj", ("set", "meta", np.str_("[1]")), r"field 'meta': must be a JSON object"),
    ("meta type", ("set", "meta", np.int64(3)), r"field 'meta': must be a JSON string"),
]


@pytest.mark.parametrize("what,change,msg", CASES, ids=[c[0] for c in CASES])
def test_loader_errors(tmp_path: Path, rng: np.random.Generator, what: str, change: Any,
                       msg: str) -> None:
    f = _fields(rng)
    op, name, *val = change
    if op == "del":
        del f[name]
    elif op == "set":
        f[name] = val[0]
    else:
        f[name] = f[name].copy()
        f[name][0, 0, 0] = val[0]
    path = tmp_path / "bad.npz"
    np.savez(path, **f)
    with pytest.raises(TraceError, match=r"^" + re.escape(str(path)) + r": " + msg):
        load_trace(path)


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nope\.npz: no such file$"):
        load_trace(tmp_path / "nope.npz")
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(TraceError, match=r"garbage\.npz: not a readable \.npz trace"):
        load_trace(bad)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, **{**_fields(np.random.default_rng(0)),
                         "q": np.array([object()], dtype=object)})
    with pytest.raises(TraceError, match=r"obj\.npz: not a readable \.npz trace"):
        load_trace(pickled)
