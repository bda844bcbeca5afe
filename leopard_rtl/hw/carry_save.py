"""Carry-save (3:2) compression and parallel-prefix addition: the back end's arithmetic
at a 1 GHz clock (the synthesis flow maps ``+`` to a ripple-carry adder)."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value

from ..config import CSA_LEVELS_PER_STAGE

__all__ = ["compress", "compress_stage", "prefix_add"]


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


def prefix_add(m: Module, a: Value, b: Value, width: int, cin: Value | int = 0,
               name: str = "add") -> Signal:
    """``a + b + cin`` over ``width`` bits by a Sklansky parallel-prefix carry network.

    ``ceil(log2(width))`` levels of generate/propagate cells instead of a ripple chain.
    Returns an unsigned ``width + 1``-bit Signal: the sum modulo ``2**width`` and, on top,
    the carry out (for a subtraction ``a + ~b + 1``, the carry out is ``a >= b``).
    Operands are truncated or zero-extended to ``width`` bits (sign-extended when
    signed). Combinational.
    """
    av = Signal(width, name=f"{name}_a")
    bv = Signal(width, name=f"{name}_b")
    m.d.comb += [av.eq(a), bv.eq(b)]
    c0 = Signal(name=f"{name}_cin")
    m.d.comb += c0.eq(cin)
    g = [av[i] & bv[i] for i in range(width)]
    p = [av[i] ^ bv[i] for i in range(width)]
    # Bit 0 absorbs the carry in: G0 = g0 | p0 cin.
    gg: list[Value] = [g[0] | (p[0] & c0)] + g[1:]
    pp: list[Value] = list(p)
    span = 1
    lvl = 0
    while span < width:
        ng, npp = list(gg), list(pp)
        for i in range(width):
            if (i // span) % 2 == 1:                  # upper half of a 2*span block
                j = (i // span) * span - 1            # the last bit of the lower half
                gs = Signal(name=f"{name}_g{lvl}_{i}")
                ps = Signal(name=f"{name}_p{lvl}_{i}")
                m.d.comb += [gs.eq(gg[i] | (pp[i] & gg[j])), ps.eq(pp[i] & pp[j])]
                ng[i], npp[i] = gs, ps
        gg, pp = ng, npp
        span *= 2
        lvl += 1
    carries = [c0] + gg                               # carry into bit i; gg[-1] = carry out
    out = Signal(width + 1, name=name)
    m.d.comb += out.eq(Cat(*[p[i] ^ carries[i] for i in range(width)], gg[width - 1]))
    return out
