"""The host side of :class:`leopard_rtl.hw.stream_top.StreamTop`'s byte protocol.

:func:`head_bytes` encodes one head of a trace (registers, K and V rows, queries) as the
bytes a host sends, and :func:`decode_records` turns the bytes that come back into output
records. Both pack through the same Amaranth layouts as the hardware
(:mod:`leopard_rtl.tb.packing`). Over a UART (``BoardTop`` on a board) the host writes
:func:`head_bytes` and reads ``n_queries * record_bytes(cfg)`` bytes per head.
"""

from __future__ import annotations

from typing import Any

from amaranth.lib import data

from sim.golden import GoldenResult
from sim.trace import Trace

from ..config import LeopardConfig
from ..hw import layouts
from ..hw.core import core_out, core_query
from ..hw.stream_top import COMMANDS, packet_bytes, record_bytes, registers_layout
from .core import head_registers
from .packing import k_load_rows, pack, unpack

__all__ = ["packet", "head_bytes", "decode_records"]


def packet(cfg: LeopardConfig, kind: str, layout: data.Layout, value: Any) -> bytes:
    """One packet: the command byte of ``kind``, then ``value`` packed in ``layout``."""
    n = packet_bytes(cfg)[kind]
    return bytes([COMMANDS[kind]]) + pack(layout, value).to_bytes(n, "little")


def head_bytes(trace: Trace, golden: GoldenResult, h: int, cfg: LeopardConfig) -> bytes:
    """Everything a host sends for head ``h``: registers, K rows, V rows, then queries."""
    r = head_registers(trace, golden, h)
    regs = {"threshold": r["threshold"], "scale_mant": r["scale_mant"],
            "scale_shift": r["scale_shift"], "n_keys": r["n_keys"], "causal": r["causal"],
            "causal_offset": r["causal_offset"],
            "early_termination": int(cfg.early_termination), "pruning": int(cfg.pruning)}
    if cfg.margin:
        regs["margin"] = r["margin"]
    out = [packet(cfg, "registers", registers_layout(cfg), regs)]
    out += [packet(cfg, "k", layouts.k_load(cfg), pay) for pay in
            k_load_rows(trace.k[h], golden.align[h] if cfg.k_align else None)]
    for kind, lay, rows in (("v", layouts.v_load(cfg), trace.v[h]),
                            ("query", core_query(cfg), trace.q[h])):
        out += [packet(cfg, kind, lay, {"data": [int(x) for x in row], "first": int(j == 0)})
                for j, row in enumerate(rows)]
    return b"".join(out)


def decode_records(raw: bytes, cfg: LeopardConfig) -> list[dict[str, Any]]:
    """Output records (``core_out`` fields) from the bytes ``StreamTop`` sent."""
    n = record_bytes(cfg)
    if len(raw) % n:
        raise ValueError(f"{len(raw)} bytes is not a whole number of {n}-byte records")
    lay = core_out(cfg)
    return [unpack(lay, int.from_bytes(raw[i:i + n], "little")) for i in range(0, len(raw), n)]
