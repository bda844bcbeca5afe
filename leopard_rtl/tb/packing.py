"""Payloads to and from integers through the Amaranth layouts: the one packer.

Every stream payload a testbench writes or reads is packed with :func:`pack` and unpacked
with :func:`unpack`, both built on :meth:`amaranth.lib.data.Layout.const` and
:meth:`~amaranth.lib.data.Layout.from_bits`, so no bit offset is ever written by hand.
:func:`field_range` gives the offset and width of a nested field for the few places where
a Verilog testbench slices a payload itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "field_range", "verilog_slice", "width", "records_to_arrays",
           "k_load_rows"]


def k_load_rows(k: Any, align: Any = None) -> list[dict[str, Any]]:
    """The ``k_load`` payloads (:func:`leopard_rtl.hw.layouts.k_load`) of one head's keys
    ``k`` [Nk, d]: ``first`` on row 0 and, with ``align`` (the head's K alignment shifts
    [d], :func:`sim.golden.k_align_shifts`; None or empty without ``k_align``), the
    ``align`` field on every row (the core captures it with ``first``)."""
    extra = {} if align is None or len(align) == 0 else \
        {"align": [int(x) for x in align]}
    return [{"data": [int(x) for x in row], "first": int(j == 0), **extra}
            for j, row in enumerate(np.asarray(k).tolist())]


def width(layout: Any) -> int:
    """Width in bits of a layout or shape."""
    return Shape.cast(layout).width


def _wrap(shape: Any, value: Any) -> Any:
    """``value`` with every integer wrapped into its field (two's complement)."""
    if isinstance(shape, data.ArrayLayout):
        return [_wrap(shape.elem_shape, v) for v in value]
    if isinstance(shape, data.StructLayout):
        return {name: _wrap(f.shape, value[name]) for name, f in shape if name in value}
    s = Shape.cast(shape)
    raw = int(value) & ((1 << s.width) - 1)
    if s.signed and s.width and raw >> (s.width - 1):
        raw -= 1 << s.width
    return raw


def pack(layout: Any, value: Any) -> int:
    """The integer of ``value`` (dict for a struct, sequence for an array, int otherwise)
    in ``layout``; missing struct fields are 0 and integers wrap to their field's width."""
    if isinstance(layout, data.Layout):
        return int(layout.const(_wrap(layout, value)).as_bits())
    return _wrap(Shape.cast(layout), value) & ((1 << width(layout)) - 1)


def _plain(value: Any) -> Any:
    if isinstance(value, data.Const):
        lay = value.shape()
        if isinstance(lay, data.ArrayLayout):
            return [_plain(value[i]) for i in range(lay.length)]
        return {name: _plain(value[name]) for name, _ in lay}
    return int(value)


def unpack(layout: Any, raw: int) -> Any:
    """Inverse of :func:`pack`: dicts for structs, lists for arrays, (signed) ints else."""
    raw = int(raw) & ((1 << width(layout)) - 1)
    if isinstance(layout, data.Layout):
        return _plain(layout.from_bits(raw))
    return _wrap(Shape.cast(layout), raw)


def field_range(layout: Any, *path: Any) -> tuple[int, int]:
    """(offset, width) of a nested field, e.g. ``field_range(result, "lanes", 0, "key")``."""
    off = 0
    lay = layout
    for name in path:
        if isinstance(lay, data.ArrayLayout):
            off += width(lay.elem_shape) * name
            lay = lay.elem_shape
        else:
            fld = lay[name]
            off += fld.offset
            lay = fld.shape
    return off, width(lay)


def verilog_slice(signal: str, layout: Any, *path: Any) -> str:
    """``signal[msb:lsb]`` of a nested field of ``layout``."""
    off, w = field_range(layout, *path)
    return f"{signal}[{off + w - 1}:{off}]"


def records_to_arrays(records: list[tuple[int, dict[str, Any]]], heads: int,
                      n_queries: int) -> dict[str, np.ndarray]:
    """Per-query output records (``(cycle, unpacked payload)``, in query order) as arrays.

    Every field of the payload becomes an int64 array ``[heads, n_queries]`` (a list field,
    such as an output row, gains a last axis); ``out_cycle`` holds each record's cycle.
    """
    if len(records) != heads * n_queries:
        raise ValueError(f"{len(records)} records for {heads} x {n_queries} queries")
    res: dict[str, np.ndarray] = {"out_cycle": np.zeros((heads, n_queries), np.int64)}
    for k, (cyc, rec) in enumerate(records):
        h, i = divmod(k, n_queries)
        res["out_cycle"][h, i] = cyc
        for name, val in rec.items():
            if name not in res:
                extra = (len(val),) if isinstance(val, list) else ()
                res[name] = np.zeros((heads, n_queries, *extra), np.int64)
            res[name][h, i] = val
    return res
