"""Data layouts of the back end (SPEC section 4, block 4), as functions of the configuration.

The ``survivor`` payload is shared with the front end and defined once in
:mod:`leopard_rtl.layouts`; everything else the back end exchanges is built here, so that
testbenches and the runner pack and unpack through the same layouts.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data

from .config import LeopardConfig
from .layouts import survivor

__all__ = ["survivor", "v_row", "v_load", "out_row", "backend_out", "survivor_entry",
           "exp_in", "exp_out", "e_shape", "lut_shape", "ipart_bits", "shift_amount_bits",
           "l_bits"]


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
