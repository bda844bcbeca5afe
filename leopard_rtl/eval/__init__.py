"""The evaluation: speedup, energy and accuracy against the baseline on the real traces,
and the design-space sweep (``leopard-rtl evaluate``, ``leopard-rtl sweep``).
"""
