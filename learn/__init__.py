"""Learned runtime pruning (LeOPArd, ISCA 2022) on real models: the training side.

This package is an optional extra. The RTL flow never needs it; only
:mod:`learn.export` helpers that work on numpy arrays are torch-free. Everything that
trains (``learn.threshold``, ``learn.workloads.*``) imports torch, so nothing here is
imported by the default test suite except the torch-free :mod:`learn.export`.

Entry point: ``python -m learn all --out build/learn`` (see ``docs/LEARNING.md``).
"""

__all__: list[str] = []
