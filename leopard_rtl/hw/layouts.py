"""Data layouts of every stream payload and internal record (SPEC sections 3-4), as
functions of the configuration.

Front end (K rows, queries, lane results, survivors) and back end (V rows, survivor store
entries, exp in/out, output rows) are built here, once, so that the testbenches in
:mod:`leopard_rtl.tb` pack and unpack through the same layouts and never restate a bit
offset or a width.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data

from ..config import LeopardConfig

__all__ = [
    "qk_row", "fe_q_row", "align_row", "k_load", "query", "lane_result", "result",
    "survivor", "query_stats",
    "planes_total_bits", "cycles_bits", "kbuf_read",
    "v_row", "v_load", "out_row", "backend_out", "survivor_entry", "exp_in", "exp_out",
    "e_shape", "lut_shape", "ipart_bits", "shift_amount_bits", "l_bits",
]


def qk_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """One Q or K row: ``head_dim`` signed ``qk_bits`` elements (element i at bits i*p)."""
    return data.ArrayLayout(signed(cfg.qk_bits), cfg.head_dim)


def fe_q_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """The query row the lanes work on: ``head_dim`` signed ``fe_q_bits`` elements, the
    aligned ``q' = q << (k_align - s)`` (:mod:`sim.align`; ``qk_row`` without alignment)."""
    return data.ArrayLayout(signed(cfg.fe_q_bits), cfg.head_dim)


def align_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """A head's alignment shifts: ``head_dim`` unsigned ``align_bits`` fields (only with
    ``cfg.k_align > 0``)."""
    return data.ArrayLayout(unsigned(cfg.align_bits), cfg.head_dim)


def k_load(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``k_load`` stream: one K row, in key order.

    ``first`` restarts the write pointer at key 0 (the row is written as key 0).
    ``align`` (only with ``cfg.k_align > 0``, :func:`align_row`): the head's per-channel
    alignment shifts ``s`` (:func:`sim.golden.k_align_shifts`), captured with the row that
    has ``first=1`` and applied to every K row of the head (ignored on the other rows).
    """
    fields: dict[str, object] = {"data": qk_row(cfg), "first": 1}
    if cfg.k_align:
        fields["align"] = align_row(cfg)
    return data.StructLayout(fields)


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
    """A K-buffer read request: plane slot ``plane`` of key ``key``, i.e. bit-planes
    ``c plane .. c plane + c - 1`` (0 = sign plane) with c = ``planes_per_cycle`` (the
    plane itself with one plane per cycle)."""
    return data.StructLayout({
        "en": 1,
        "key": unsigned(cfg.key_index_bits),
        "plane": unsigned(max(1, (cfg.plane_slots - 1).bit_length())),
    })


# Back end (SPEC section 4, block 4); ``survivor`` above is shared with the front end.
def v_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """One V row: ``head_dim`` signed ``v_bits`` elements (element i at bits i*v_bits)."""
    return data.ArrayLayout(signed(cfg.v_bits), cfg.head_dim)


def out_row(cfg: LeopardConfig) -> data.ArrayLayout:
    """One output row: ``head_dim`` signed ``v_bits`` elements."""
    return data.ArrayLayout(signed(cfg.v_bits), cfg.head_dim)


def v_load(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``v_load`` stream: one V row, in key order.

    ``first`` restarts the write pointer: the row is written as key 0.
    """
    return data.StructLayout({"data": v_row(cfg), "first": 1})


def backend_out(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the back end's ``out`` stream: one record per query.

    ``data`` is the output row (zeros when ``all_pruned``); ``survivors`` counts the
    query's survivor records (all of them, also those an overflow could not store);
    ``overflow`` says the query had more survivors than ``cfg.survivor_capacity`` and
    ``data`` was computed over the first ``survivor_capacity`` of them only.
    """
    return data.StructLayout({
        "data": out_row(cfg),
        "all_pruned": 1,
        "survivors": unsigned(cfg.key_count_bits),
        "overflow": 1,
    })


def survivor_entry(cfg: LeopardConfig) -> data.StructLayout:
    """One entry of the survivor store: key index and exact score."""
    return data.StructLayout({
        "key": unsigned(cfg.key_index_bits),
        "score": signed(cfg.score_bits),
    })


def e_shape(cfg: LeopardConfig) -> unsigned:
    """Unsigned shape of an exp value ``e`` (at most ``2**exp_bits``)."""
    return unsigned(cfg.e_bits)


def lut_shape(cfg: LeopardConfig) -> unsigned:
    """Unsigned shape of an exp-LUT entry (``(2**(E-1), 2**E]``)."""
    return unsigned(cfg.exp_bits + 1)


def ipart_bits(cfg: LeopardConfig) -> int:
    """Width of the saturated integer part ``min(t >> F, E + 1)``."""
    return (cfg.exp_bits + 1).bit_length()


def shift_amount_bits(cfg: LeopardConfig) -> int:
    """Width of ``scale_shift - 1`` (the rounding shift of the exponent)."""
    return cfg.scale_shift_bits


def l_bits(cfg: LeopardConfig) -> int:
    """Width of ``L = floor(log2(sum))`` (0 .. sum_bits - 1)."""
    return max(1, (cfg.sum_bits - 1).bit_length())


def exp_in(cfg: LeopardConfig) -> data.StructLayout:
    """Input of :class:`~leopard_rtl.softmax.ExpUnit`: a score tagged with its key."""
    return data.StructLayout({"key": unsigned(cfg.key_index_bits),
                              "score": signed(cfg.score_bits)})


def exp_out(cfg: LeopardConfig) -> data.StructLayout:
    """Output of :class:`~leopard_rtl.softmax.ExpUnit`: ``e`` tagged with its key."""
    return data.StructLayout({"key": unsigned(cfg.key_index_bits), "e": e_shape(cfg)})
