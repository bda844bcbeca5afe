"""Carry-save (3:2) compression, the building block of the back end's pipelined multipliers."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value

from ..config import CSA_LEVELS_PER_STAGE

__all__ = ["compress", "compress_stage"]


def _full_adders(m: Module, a: Value, b: Value, c: Value, width: int,
                 name: str) -> tuple[Signal, Signal]:
    s = Signal(width, name=f"{name}_s")
    k = Signal(width, name=f"{name}_c")
    m.d.comb += [s.eq(a ^ b ^ c), k.eq(Cat(0, ((a & b) | (a & c) | (b & c))[:width - 1]))]
    return s, k


def compress(m: Module, rows: list[Value], width: int, levels: int,
             target: int = 2, name: str = "csa") -> list[Value]:
    """Reduce ``rows`` addends to fewer with at most ``levels`` levels of 3:2 compressors.

    Every level turns each full group of three rows into a sum row and a carry row
    (shifted left by one); the rest pass through. Stops at ``target`` rows or after
    ``levels`` levels. The sum of the returned rows equals the sum of ``rows`` modulo
    ``2**width`` (exactly, when that sum and every row are non-negative and below
    ``2**width``). Each input row is first extended to ``width`` bits (sign-extended when
    signed). Combinational: the caller registers the rows.
    """
    ext: list[Value] = []
    for i, r in enumerate(rows):          # extend (sign-extend a signed row) to ``width``
        w = Signal(width, name=f"{name}_in{i}")
        m.d.comb += w.eq(r)
        ext.append(w)
    rows = ext
    for lvl in range(levels):
        if len(rows) <= target:
            break
        nxt: list[Value] = []
        for g in range(len(rows) // 3):
            a, b, c = rows[3 * g:3 * g + 3]
            nxt += _full_adders(m, a, b, c, width, f"{name}_l{lvl}_{g}")
        nxt += rows[len(rows) // 3 * 3:]
        rows = nxt
    return rows


def compress_stage(m: Module, rows: list[Value], width: int, target: int = 2,
                   name: str = "csa") -> list[Value]:
    """One pipeline stage of :func:`compress` (:data:`~leopard_rtl.config.CSA_LEVELS_PER_STAGE`
    levels)."""
    return compress(m, rows, width, CSA_LEVELS_PER_STAGE, target, name)
