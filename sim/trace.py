"""The LeOPArd attention-trace format: one ``.npz`` per attention layer instance.

A trace holds the quantized Q, K and V of every head of one attention layer on one
input, the per-head learned threshold in the integer score domain, and the scales that
map the integers back to real values. The RTL flow, the golden model, the tests and the
training side all read and write this format through :func:`load_trace` and
:func:`save_trace`.

Fields (all arrays; ``H`` heads, ``Nq`` queries, ``Nk`` keys, ``d`` = head_dim):

============= ================ ============================================================
name          dtype, shape     meaning
============= ================ ============================================================
``q``         int, [H, Nq, d]  queries, signed ``qk_bits``-bit two's complement
``k``         int, [H, Nk, d]  keys, signed ``qk_bits``-bit
``v``         int, [H, Nk, dv] values, signed ``v_bits``-bit
``threshold`` int64, [H]       Th: a score S = q.k survives iff S >= Th
``scale_q``   float64, [H]     real q = scale_q * q_int (likewise k, v); finite, > 0
``scale_k``   float64, [H]
``scale_v``   float64, [H]
``qk_bits``   int, scalar      2..16
``v_bits``    int, scalar      2..16
``causal``    bool, scalar     query i sees keys 0 .. i + Nk - Nq only
``meta``      str, scalar      JSON object: model, layer, input, provenance, ...
============= ================ ============================================================

Values may use the full two's-complement range (``-2**(b-1)`` included). The file is
read with ``allow_pickle=False``; nothing in it is executed.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leopard_rtl.errors import LeopardError
from leopard_rtl.paths import atomic_path

__all__ = ["Trace", "TraceError", "load_trace", "save_trace", "BITS_RANGE"]

#: Allowed range of ``qk_bits`` and ``v_bits`` in a trace (inclusive).
BITS_RANGE = (2, 16)

#: Largest number of elements a trace array may hold (q, k, v each): far above any real
#: attention layer, and small enough that loading and the golden model fit in memory.
MAX_ELEMENTS = 1 << 26

#: Deepest nesting of the ``meta`` JSON (objects and arrays) that is accepted.
MAX_META_DEPTH = 32

_INT_FIELDS = {"q": 3, "k": 3, "v": 3}
_HEAD_FLOAT_FIELDS = ("scale_q", "scale_k", "scale_v")
_REQUIRED = ("q", "k", "v", "threshold", "scale_q", "scale_k", "scale_v",
             "qk_bits", "v_bits", "causal", "meta")


class TraceError(LeopardError, ValueError):
    """A trace file or trace object is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Trace:
    """One attention layer instance, quantized (see the module docstring for the fields).

    Construct with keyword arguments and call :meth:`validate` (``save_trace`` and
    ``load_trace`` do), or load from a file with :func:`load_trace`.
    """

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    threshold: np.ndarray
    scale_q: np.ndarray
    scale_k: np.ndarray
    scale_v: np.ndarray
    qk_bits: int
    v_bits: int
    causal: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    #: Where the trace came from (a path), used in error messages only.
    source: str = "<trace>"

    @property
    def heads(self) -> int:
        return int(self.q.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.q.shape[1])

    @property
    def n_keys(self) -> int:
        return int(self.k.shape[1])

    @property
    def head_dim(self) -> int:
        return int(self.q.shape[2])

    @property
    def v_dim(self) -> int:
        return int(self.v.shape[2])

    def visible(self) -> np.ndarray:
        """Bool [Nq, Nk]: True where query i may see key j (all True unless causal)."""
        return visibility(self.n_queries, self.n_keys, self.causal)

    def validate(self) -> Trace:
        """Check every field; raise :class:`TraceError` naming the source and field."""
        src = self.source

        def fail(name: str, why: str) -> None:
            raise TraceError(f"{src}: field '{name}': {why}")

        for name in ("qk_bits", "v_bits"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                fail(name, f"must be an integer, not {type(val).__name__}")
            if not BITS_RANGE[0] <= int(val) <= BITS_RANGE[1]:
                fail(name, f"must be in [{BITS_RANGE[0]}, {BITS_RANGE[1]}], not {int(val)}")
        for name, rank in _INT_FIELDS.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray):
                fail(name, f"must be a numpy array, not {type(arr).__name__}")
            if arr.ndim != rank:
                fail(name, f"must have rank {rank} [H, N, d], has shape {arr.shape}")
            if arr.dtype.kind not in "iu":
                fail(name, f"must have an integer dtype, not {arr.dtype}")
        H, Nq, d = self.q.shape
        if self.k.shape[0] != H or self.v.shape[0] != H:
            fail("k" if self.k.shape[0] != H else "v",
                 f"head count mismatch: q {self.q.shape}, k {self.k.shape}, v {self.v.shape}")
        if self.k.shape[2] != d:
            fail("k", f"head_dim {self.k.shape[2]} differs from q's {d}")
        if self.v.shape[1] != self.k.shape[1]:
            fail("v", f"has {self.v.shape[1]} rows but k has {self.k.shape[1]} keys")
        if H < 1 or Nq < 1 or d < 1 or self.k.shape[1] < 1 or self.v.shape[2] < 1:
            fail("q", f"empty dimension: q {self.q.shape}, k {self.k.shape}, v {self.v.shape}")
        for name, bits in (("q", self.qk_bits), ("k", self.qk_bits), ("v", self.v_bits)):
            arr = getattr(self, name)
            lo, hi = -(1 << (int(bits) - 1)), (1 << (int(bits) - 1)) - 1
            amin, amax = int(arr.min()), int(arr.max())
            if amin < lo or amax > hi:
                bad = np.argwhere((arr < lo) | (arr > hi))[0]
                fail(name, f"value {int(arr[tuple(bad)])} at index {tuple(int(i) for i in bad)} "
                           f"is outside the signed {int(bits)}-bit range [{lo}, {hi}]")
        th = self.threshold
        if not isinstance(th, np.ndarray) or th.shape != (H,):
            fail("threshold", f"must have shape [H] = ({H},), has "
                              f"{getattr(th, 'shape', type(th).__name__)}")
        if th.dtype.kind not in "iu":
            fail("threshold", f"must have an integer dtype (score domain), not {th.dtype}")
        i64 = np.iinfo(np.int64)
        if th.dtype.kind == "u" and th.size and int(th.max()) > i64.max:
            h = int(np.argmax(th))
            fail("threshold", f"value {int(th[h])} at head {h} does not fit int64 "
                              f"[{i64.min}, {i64.max}]")
        for name in _HEAD_FLOAT_FIELDS:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != (H,):
                fail(name, f"must have shape [H] = ({H},), has "
                           f"{getattr(arr, 'shape', type(arr).__name__)}")
            if arr.dtype.kind != "f":
                fail(name, f"must have a floating dtype, not {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                fail(name, f"non-finite value at head {int(np.argmin(np.isfinite(arr)))}")
            if not np.all(arr > 0):
                fail(name, f"must be > 0, head {int(np.argmin(arr > 0))} has {arr.min()}")
        if not isinstance(self.causal, (bool, np.bool_)):
            fail("causal", f"must be a bool, not {type(self.causal).__name__}")
        if not isinstance(self.meta, dict):
            fail("meta", f"must be a JSON object, not {type(self.meta).__name__}")
        try:
            json.dumps(self.meta, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            fail("meta", f"not representable as strict JSON ({exc})")
        return self


def visibility(n_queries: int, n_keys: int, causal: bool) -> np.ndarray:
    """Bool [Nq, Nk] visibility: causal query i sees keys 0 .. i + Nk - Nq."""
    if not causal:
        return np.ones((n_queries, n_keys), dtype=bool)
    i = np.arange(n_queries)[:, None]
    j = np.arange(n_keys)[None, :]
    return j <= i + (n_keys - n_queries)


def _scalar(data: Any, name: str, src: str) -> Any:
    arr = data[name]
    if arr.shape != ():
        raise TraceError(f"{src}: field '{name}': must be a scalar, has shape {arr.shape}")
    return arr[()]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(obj: Any) -> int:
    """Nesting depth of a JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        val, d = stack.pop()
        if isinstance(val, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_META_DEPTH:
                stack.extend((v, d + 1) for v in (val.values() if isinstance(val, dict)
                                                  else val))
    return deepest


def _check_member_sizes(zf: zipfile.ZipFile, src: str) -> None:
    """Read each array's ``.npy`` header (not its data) and refuse oversized arrays."""
    for info in zf.infolist():
        name = info.filename.removesuffix(".npy")
        with zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(fh)
        n = math.prod(shape)
        if n > MAX_ELEMENTS:
            raise TraceError(f"{src}: field '{name}': shape {shape} has {n} elements, more "
                             f"than the {MAX_ELEMENTS} a trace array may hold")


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a trace file.

    Parameters
    ----------
    path : path-like
        A ``.npz`` written by :func:`save_trace` (or by hand, with the fields above).

    Returns
    -------
    Trace
        The validated trace; ``q``, ``k``, ``v`` and ``threshold`` as int64, scales as float64.

    Raises
    ------
    TraceError
        If the file is missing, unreadable, or any field is missing, of the wrong rank,
        dtype or shape, out of range, or non-finite. The message starts with the path.
    """
    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{src}: no such file" if not p.exists() else f"{src}: not a file")
    try:
        if not zipfile.is_zipfile(p):
            raise TraceError(f"{src}: not a readable .npz trace (not a zip archive: a "
                             f".npy or another kind of file)")
        with zipfile.ZipFile(p) as zf:
            _check_member_sizes(zf, src)
        with np.load(p, allow_pickle=False) as data:
            missing = [n for n in _REQUIRED if n not in data.files]
            if missing:
                raise TraceError(f"{src}: field '{missing[0]}': missing "
                                 f"(required fields: {', '.join(_REQUIRED)})")
            arrays = {n: data[n] for n in ("q", "k", "v", "threshold", *_HEAD_FLOAT_FIELDS)}
            scal = {n: _scalar(data, n, src) for n in ("qk_bits", "v_bits", "causal", "meta")}
    except TraceError:
        raise
    except Exception as exc:  # noqa: BLE001 - parsing an untrusted file: any failure is
        # the file's (numpy raises zlib, tokenize, zip, value, key and type errors here).
        raise TraceError(f"{src}: not a readable .npz trace "
                         f"({type(exc).__name__}: {exc})") from None
    for n in ("qk_bits", "v_bits"):
        if not isinstance(scal[n], np.integer) or isinstance(scal[n], np.bool_):
            raise TraceError(f"{src}: field '{n}': must be an integer scalar, "
                             f"not {type(scal[n]).__name__}")
    if not isinstance(scal["causal"], np.bool_):
        raise TraceError(f"{src}: field 'causal': must be a bool scalar, "
                         f"not {type(scal['causal']).__name__}")
    if not isinstance(scal["meta"], np.str_):
        raise TraceError(f"{src}: field 'meta': must be a JSON string, "
                         f"not {type(scal['meta']).__name__}")
    try:
        meta = json.loads(str(scal["meta"]), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise TraceError(f"{src}: field 'meta': not valid JSON "
                         f"({type(exc).__name__}: {exc})") from None
    if _depth(meta) > MAX_META_DEPTH:
        raise TraceError(f"{src}: field 'meta': nested deeper than {MAX_META_DEPTH} levels")
    for name in ("q", "k", "v", "threshold"):
        if arrays[name].dtype.kind not in "iu":
            raise TraceError(f"{src}: field '{name}': must have an integer dtype, "
                             f"not {arrays[name].dtype}")
    trace = Trace(**arrays, qk_bits=int(scal["qk_bits"]), v_bits=int(scal["v_bits"]),
                  causal=bool(scal["causal"]), meta=meta, source=src)
    trace.validate()
    return Trace(
        q=trace.q.astype(np.int64), k=trace.k.astype(np.int64), v=trace.v.astype(np.int64),
        threshold=trace.threshold.astype(np.int64),
        scale_q=trace.scale_q.astype(np.float64), scale_k=trace.scale_k.astype(np.float64),
        scale_v=trace.scale_v.astype(np.float64), qk_bits=trace.qk_bits,
        v_bits=trace.v_bits, causal=trace.causal, meta=meta, source=src)


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Validate ``trace`` and write it to ``path`` (compressed ``.npz``).

    Integer arrays are stored in the narrowest of int8/int16/int32 that holds their
    declared width, so committed traces stay small. The file is written to a temporary
    file next to ``path`` and renamed over it, so an interrupted save never leaves a
    truncated trace.
    """
    trace.validate()

    def narrow(arr: np.ndarray, bits: int) -> np.ndarray:
        dt = np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32
        return arr.astype(dt)

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            q=narrow(trace.q, trace.qk_bits), k=narrow(trace.k, trace.qk_bits),
            v=narrow(trace.v, trace.v_bits),
            threshold=np.asarray(trace.threshold, dtype=np.int64),
            scale_q=np.asarray(trace.scale_q, dtype=np.float64),
            scale_k=np.asarray(trace.scale_k, dtype=np.float64),
            scale_v=np.asarray(trace.scale_v, dtype=np.float64),
            qk_bits=np.int64(trace.qk_bits), v_bits=np.int64(trace.v_bits),
            causal=np.bool_(trace.causal),
            meta=np.str_(json.dumps(trace.meta, sort_keys=True, allow_nan=False)),
        )
