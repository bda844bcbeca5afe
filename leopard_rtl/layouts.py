"""Data layouts of the front end (SPEC sections 3-4), as functions of the configuration.

Every stream payload and every internal record of the front end is built here, so that
testbenches (``tb/``, ``leopard_rtl/runners/frontend.py``) pack and unpack through the
same layouts and never duplicate bit offsets.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data

from .config import LeopardConfig

__all__ = [
    "qk_row", "k_load", "query", "lane_result", "result", "survivor", "query_stats",
    "planes_total_bits", "cycles_bits", "kbuf_read",
]


def qk_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """One Q or K row: ``head_dim`` signed ``qk_bits`` elements (element i at bits i*p)."""
    return data.ArrayLayout(signed(cfg.qk_bits), cfg.head_dim)


def k_load(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``k_load`` stream: one K row, in key order.

    ``first`` restarts the write pointer at key 0 (the row is written as key 0).
    """
    return data.StructLayout({"data": qk_row(cfg), "first": 1})


def query(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``query`` stream: one Q row and the keys it sees (0..n_visible-1)."""
    return data.StructLayout({"data": qk_row(cfg), "n_visible": unsigned(cfg.key_count_bits)})


def planes_total_bits(cfg: LeopardConfig) -> int:
    """Unsigned width of the bit-planes consumed by one query (up to max_keys * qk_bits)."""
    return (cfg.max_keys * cfg.qk_bits).bit_length()


def cycles_bits(cfg: LeopardConfig) -> int:
    """Unsigned width of a query's cycle count (at most max_keys * qk_bits + 1 unstalled).

    The counter saturates, so a long stall cannot wrap it.
    """
    return (cfg.max_keys * cfg.qk_bits + 1).bit_length() + 1


def lane_result(cfg: LeopardConfig) -> data.StructLayout:
    """What a lane reports in the cycle a key finishes.

    ``valid``: a key finished this cycle; ``key``: its index; ``survivor``: S >= Th (or
    pruning off); ``planes``: planes consumed (1..qk_bits); ``score``: the exact S, valid
    for survivors only (for a pruned key it is the partial sum A_r).
    """
    return data.StructLayout({
        "valid": 1,
        "key": unsigned(cfg.key_index_bits),
        "survivor": 1,
        "planes": unsigned(cfg.planes_bits),
        "score": signed(cfg.score_bits),
    })


def query_stats(cfg: LeopardConfig) -> data.StructLayout:
    """Per-query statistics: survivors, bit-planes consumed, front-end cycles."""
    return data.StructLayout({
        "survivors": unsigned(cfg.key_count_bits),
        "planes": unsigned(planes_total_bits(cfg)),
        "cycles": unsigned(cycles_bits(cfg)),
    })


def result(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``result`` stream: one bundle per cycle in which any key finished.

    ``lanes[i]`` is lane i's :func:`lane_result` (tagged with the key index: keys finish
    out of order); ``last`` marks the bundle that ends the query (it may carry no key when
    the query sees no key); ``stats`` are the query's statistics, valid when ``last``.
    """
    return data.StructLayout({
        "lanes": data.ArrayLayout(lane_result(cfg), cfg.lanes),
        "last": 1,
        "stats": query_stats(cfg),
    })


def survivor(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``survivor`` stream to the back end: one record per surviving key.

    ``last`` marks the query's last record; a query without survivors sends a single
    record with ``empty=1, last=1`` (``key`` and ``score`` are then 0).
    """
    return data.StructLayout({
        "key": unsigned(cfg.key_index_bits),
        "score": signed(cfg.score_bits),
        "last": 1,
        "empty": 1,
    })


def kbuf_read(cfg: LeopardConfig) -> data.StructLayout:
    """A K-buffer read request: bit-plane ``plane`` (0 = sign plane) of key ``key``."""
    return data.StructLayout({
        "en": 1,
        "key": unsigned(cfg.key_index_bits),
        "plane": unsigned(max(1, (cfg.qk_bits - 1).bit_length())),
    })
