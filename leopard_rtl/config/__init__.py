"""The generator configuration: one frozen, validated object with derived widths.

Everything that shapes the hardware is here; run-time settings (threshold, softmax
scale, number of keys, causal mode) are registers, not parameters. This module imports
no Amaranth, so the golden model in ``sim/`` can use it.

Fixed-point choices of the back end (documented in README "Number formats"):

* scores ``S`` are exact: ``score_bits = 2*qk_bits + ceil(log2(head_dim))``;
* threshold register: ``signed(score_bits + 1)``; thresholds outside it saturate, which
  never changes the prune set (every score fits in ``signed(score_bits)``);
* exp: ``t = round((M - S) * mant / 2**shift)`` with ``exp_frac_bits`` (F) fractional bits;
  ``e = LUT[t mod 2**F] >> (t >> F)``, ``LUT[f] = round(2**exp_bits * 2**(-f / 2**F))``,
  so ``e`` is unsigned ``exp_bits + 1`` bits and the max survivor has ``e = 2**exp_bits``;
* normalization: one reciprocal per query, ``recip = floor(2**(L + recip_bits) / sum)``
  with ``L = floor(log2(sum))``, then ``out = (acc * recip + 2**(L+recip_bits-1)) >>
  (L + recip_bits)``, saturated to ``v_bits``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import LeopardError
from .timing import CSA_LEVELS_PER_STAGE, TimingFacts, csa_levels, csa_stages

__all__ = ["LeopardConfig", "PRESETS", "preset", "ConfigError", "MEMORY_STYLES",
           "CSA_LEVELS_PER_STAGE", "csa_levels", "csa_stages"]

#: Memory implementations: flip-flops (simulation, small builds) or black-box macros.
MEMORY_STYLES = ("ff", "macro")

# (low, high) inclusive integer ranges of the integer parameters.
_RANGES: dict[str, tuple[int, int]] = {
    "head_dim": (1, 1024),
    "qk_bits": (2, 16),
    "v_bits": (2, 16),
    "lanes": (1, 256),
    "planes_per_cycle": (1, 2),
    "max_keys": (1, 65536),
    "exp_frac_bits": (1, 12),
    "exp_bits": (4, 24),
    "scale_bits": (4, 24),
    "scale_shift_bits": (2, 7),
    "recip_bits": (4, 30),
    "survivor_depth": (1, 65536),
}

#: Fractional bits of the per-head margin register (``LeopardConfig.margin``).
MARGIN_FRAC_BITS = 8

# The golden model computes in int64; the widest intermediate must stay below 63 bits.
_GOLDEN_INT_BITS = 62


class ConfigError(LeopardError, ValueError):
    """An invalid generator parameter; the message names the parameter and its range."""


def _clog2(n: int) -> int:
    """ceil(log2(n)) for n >= 1 (0 for n == 1)."""
    return (n - 1).bit_length()


@dataclass(frozen=True, kw_only=True)
class LeopardConfig(TimingFacts):
    """Generator parameters of a LeOPArd core (SPEC section 2 and 4).

    Parameters
    ----------
    head_dim : int
        d, elements per q/k/v row, 1..1024.
    qk_bits : int
        p, width of signed Q and K elements and the number of K bit-planes, 2..16.
    v_bits : int
        Width of signed V elements and of the output row, 2..16.
    lanes : int
        Bit-serial Q.K lanes working on different keys of one query, 1..256.
    planes_per_cycle : int
        c, K bit-planes a lane consumes per cycle, 1 or 2 (the K buffer is split into c
        plane banks: plane b in bank b mod c); the bound is tested after every c planes
        and after the last one (:attr:`plane_slots`).
    max_keys : int
        Rows of the K and V buffers (longest key sequence), 1..65536.
    exp_frac_bits : int
        F: fractional bits of the base-2 exponent; the exp LUT has 2**F entries, 1..12.
    exp_bits : int
        E: the exp LUT's fractional precision; e is unsigned E+1 bits, 4..24.
    scale_bits : int
        Width of the softmax-scale mantissa register, 4..24.
    scale_shift_bits : int
        Width of the softmax-scale shift register (shift in 1..2**b - 1), 2..7.
    recip_bits : int
        R: precision of the normalizing reciprocal, 4..30.
    survivor_depth : int or None
        Entries of each half of the double-buffered survivor store; None means
        ``max_keys`` (no query can overflow it).
    memory : str
        ``"ff"`` (flip-flops) or ``"macro"`` (black-box SRAM macros for layout).
    overlap_norm : bool
        A second accumulator bank: query i+1's survivors accumulate while query i's
        reciprocal and normalization run (:attr:`be_release_latency`); same outputs.
    early_termination : bool
        Stop a key at the first bit-plane whose upper bound falls below the threshold.
    pruning : bool
        Apply the threshold at all; ``False`` lets every key survive.
    margin : float
        Speculative pruning margin m in [0, 1), 0 (exact) by default; lossy when > 0: a
        key is pruned at plane r < p when ``UB_r - m (UB_r - LB_r) < Th``. Held in a
        per-head register of :attr:`margin_frac_bits` fractional bits
        (:attr:`margin_register`); a configuration with ``margin > 0`` has that register
        and the ``margin`` port, one with 0 has neither.
    k_align : int
        A, per-channel power-of-two alignment of K, 0 (off, the default) ..
        ``qk_bits - 2``; exact (same prune set and scores). Per head and channel the host
        computes ``s_c <= A``, the leading sign bits every key shares
        (:func:`sim.golden.k_align_shifts`); the front end holds ``K_c << s_c``, works on
        ``q_c << (A - s_c)`` and ``Th << A`` (widths :attr:`fe_q_bits`,
        :attr:`fe_score_bits`, ...) and sends ``S' >> A = S`` to the back end. A > 0 adds
        the ``align`` field of the ``k_load`` payload (:attr:`align_bits` per channel);
        ``qk_bits - 2`` is the largest useful value (a channel then holds keys in
        ``[-2, 1]``; at ``qk_bits - 1`` it could only hold -1 and 0).
    name : str
        Label recorded in the manifest (the preset it came from).
    """

    head_dim: int = 64
    qk_bits: int = 12
    v_bits: int = 12
    lanes: int = 8
    planes_per_cycle: int = 1
    max_keys: int = 512
    exp_frac_bits: int = 8
    exp_bits: int = 16
    scale_bits: int = 16
    scale_shift_bits: int = 6
    recip_bits: int = 16
    survivor_depth: int | None = None
    overlap_norm: bool = False
    memory: str = "ff"
    early_termination: bool = True
    pruning: bool = True
    margin: float = 0.0
    k_align: int = 0
    name: str = "custom"

    def __post_init__(self) -> None:
        for key, (lo, hi) in _RANGES.items():
            val = getattr(self, key)
            if key == "survivor_depth" and val is None:
                continue
            if isinstance(val, bool) or not isinstance(val, int):
                raise ConfigError(f"{key} must be an integer in [{lo}, {hi}], "
                                  f"not {val!r}")
            if not lo <= val <= hi:
                raise ConfigError(f"{key} must be in [{lo}, {hi}], not {val}")
        for key in ("early_termination", "pruning", "overlap_norm"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be a bool (true/false), not "
                                  f"{getattr(self, key)!r}")
        ka = self.k_align
        if isinstance(ka, bool) or not isinstance(ka, int) or not 0 <= ka <= self.qk_bits - 2:
            raise ConfigError(f"k_align must be an integer in [0, qk_bits - 2 = "
                              f"{self.qk_bits - 2}], not {ka!r}")
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1 \
                or self.margin_register >= 1 << self.margin_frac_bits:
            raise ConfigError(f"margin must be a number in [0, {1 - 2.0 ** -MARGIN_FRAC_BITS}] "
                              f"(steps of 2**-{MARGIN_FRAC_BITS}), not {m!r}")
        if self.memory not in MEMORY_STYLES:
            raise ConfigError(f"memory must be one of {', '.join(MEMORY_STYLES)}, "
                              f"not {self.memory!r}")
        if not isinstance(self.name, str):
            raise ConfigError(f"name must be a string, not {self.name!r}")
        if self.survivor_depth is not None and self.survivor_depth > self.max_keys:
            raise ConfigError(f"survivor_depth must be in [1, max_keys={self.max_keys}], "
                              f"not {self.survivor_depth}")
        if self.lanes > self.max_keys:
            raise ConfigError(f"lanes must be in [1, max_keys={self.max_keys}], "
                              f"not {self.lanes}")
        if self.norm_product_bits > _GOLDEN_INT_BITS:
            raise ConfigError(
                f"recip_bits must be at most {_GOLDEN_INT_BITS - self.acc_bits - 1} for "
                f"v_bits={self.v_bits}, exp_bits={self.exp_bits}, max_keys={self.max_keys} "
                f"(the normalization product would be {self.norm_product_bits} bits, over "
                f"the {_GOLDEN_INT_BITS}-bit limit of the golden model), not {self.recip_bits}")
        if self.sum_bits - 1 + self.recip_bits > _GOLDEN_INT_BITS:
            raise ConfigError(
                f"recip_bits must be at most {_GOLDEN_INT_BITS + 1 - self.sum_bits} for "
                f"exp_bits={self.exp_bits}, max_keys={self.max_keys} (2**(L + recip_bits) "
                f"would exceed {_GOLDEN_INT_BITS} bits), not {self.recip_bits}")
        if self.exp_arg_bits > _GOLDEN_INT_BITS:
            raise ConfigError(
                f"scale_bits must be at most {_GOLDEN_INT_BITS - self.score_bits - 1} for "
                f"qk_bits={self.qk_bits}, head_dim={self.head_dim} (the exponent product "
                f"would be {self.exp_arg_bits} bits), not {self.scale_bits}")

    # ----------------------------------------------------------------- derived widths
    @property
    def score_bits(self) -> int:
        """Signed width of an exact score S = q.k: 2p + ceil(log2 d)."""
        return 2 * self.qk_bits + _clog2(self.head_dim)

    @property
    def threshold_bits(self) -> int:
        """Signed width of the threshold register (score_bits + 1)."""
        return self.score_bits + 1

    @property
    def qsum_bits(self) -> int:
        """Signed width of Q+ and Q- (sums of d elements of qk_bits bits)."""
        return self.qk_bits + _clog2(self.head_dim) + 1

    @property
    def bound_bits(self) -> int:
        """Signed width that holds UB_r = 2^(p-r) A_r + Q+ (2^(p-r) - 1) for every r.

        ``|2^(p-r) A_r| <= d 2^(2p-2)`` and ``0 <= Q+ (2^(p-r) - 1) <= d 2^(2p-2)``, so
        ``UB_r`` lies in ``[-2^(score_bits-2), 2^(score_bits-1)]``: ``score_bits + 1`` bits.
        """
        return self.score_bits + 1

    @property
    def align_bits(self) -> int:
        """Unsigned width of one channel's alignment shift (0..k_align); 0 without
        alignment (no ``align`` field)."""
        return _clog2(self.k_align + 1)

    @property
    def fe_q_bits(self) -> int:
        """Signed width of the aligned query elements ``q' = q << (k_align - s)``."""
        return self.qk_bits + self.k_align

    @property
    def fe_score_bits(self) -> int:
        """Signed width of the aligned score ``S' = S << k_align`` in the front end."""
        return self.score_bits + self.k_align

    @property
    def fe_threshold_bits(self) -> int:
        """Signed width of the aligned threshold ``Th << k_align``."""
        return self.threshold_bits + self.k_align

    @property
    def fe_qsum_bits(self) -> int:
        """Signed width of Q+ and Q- of the aligned query."""
        return self.qsum_bits + self.k_align

    @property
    def fe_bound_bits(self) -> int:
        """Signed width of the bound on the aligned operands (:attr:`bound_bits` scaled by
        ``2**k_align``)."""
        return self.bound_bits + self.k_align

    @property
    def margin_frac_bits(self) -> int:
        """Fractional bits of the margin register (value ``margin_register / 2**bits``)."""
        return MARGIN_FRAC_BITS

    @property
    def margin_register(self) -> int:
        """The margin register value ``round(margin * 2**margin_frac_bits)`` (half up)."""
        return int(float(self.margin) * (1 << MARGIN_FRAC_BITS) + 0.5) if \
            isinstance(self.margin, (int, float)) and self.margin >= 0 else -1

    @property
    def planes_bits(self) -> int:
        """Unsigned width of a planes_used count (0..qk_bits)."""
        return self.qk_bits.bit_length()

    @property
    def plane_slots(self) -> int:
        """Request slots (cycles) of a key read to its last plane: ``ceil(qk_bits /
        planes_per_cycle)``; slot j holds planes ``c j .. min(c j + c, p) - 1`` (with an
        odd ``qk_bits`` and c = 2 the last slot has one plane)."""
        return -(-self.qk_bits // self.planes_per_cycle)

    @property
    def key_index_bits(self) -> int:
        """Unsigned width of a key index (0..max_keys-1); at least 1."""
        return max(1, _clog2(self.max_keys))

    @property
    def key_count_bits(self) -> int:
        """Unsigned width of a key count (0..max_keys)."""
        return self.max_keys.bit_length()

    @property
    def exp_lut_size(self) -> int:
        """Entries of the exp lookup table, 2**exp_frac_bits."""
        return 1 << self.exp_frac_bits

    @property
    def e_bits(self) -> int:
        """Unsigned width of an exp value e (max 2**exp_bits)."""
        return self.exp_bits + 1

    @property
    def exp_arg_bits(self) -> int:
        """Unsigned width of (M - S) * mant before the shift (M - S < 2**score_bits)."""
        return self.score_bits + self.scale_bits

    @property
    def sum_bits(self) -> int:
        """Unsigned width of the running sum of exps over up to max_keys survivors."""
        return self.e_bits + _clog2(self.max_keys)

    @property
    def acc_bits(self) -> int:
        """Signed width of the sum of e * v over up to max_keys survivors."""
        return self.e_bits + self.v_bits + _clog2(self.max_keys)

    @property
    def recip_width(self) -> int:
        """Unsigned width of the reciprocal (values in [2**(R-1), 2**R])."""
        return self.recip_bits + 1

    @property
    def norm_product_bits(self) -> int:
        """Signed width of acc * recip."""
        return self.acc_bits + self.recip_width

    @property
    def survivor_capacity(self) -> int:
        """Entries per half of the survivor double buffer."""
        return self.max_keys if self.survivor_depth is None else self.survivor_depth

    @property
    def is_baseline(self) -> bool:
        """True for the SPEC section 6 baseline (no early termination, no pruning)."""
        return not self.early_termination and not self.pruning

    # ---------------------------------------------------------------- construction
    def replace(self, **changes: Any) -> LeopardConfig:
        """A copy with ``changes`` applied (validated)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}; known: "
                              f"{', '.join(f.name for f in fields(self))}")
        return replace(self, **changes)

    def baseline(self) -> LeopardConfig:
        """Same widths and lanes, ``early_termination=False, pruning=False``."""
        return self.replace(early_termination=False, pruning=False,
                            name=f"{self.name}+baseline")

    def pruning_only(self) -> LeopardConfig:
        """Same widths and lanes, ``early_termination=False, pruning=True``."""
        return self.replace(early_termination=False, pruning=True,
                            name=f"{self.name}+pruning_only")

    def with_overrides(self, assignments: list[str] | tuple[str, ...]) -> LeopardConfig:
        """Apply ``name=value`` strings (as from ``--set``), parsing each by field type."""
        changes: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"--set expects name=value, not {item!r}")
            key, raw = (s.strip() for s in item.split("=", 1))
            if key not in types:
                raise ConfigError(f"unknown parameter {key!r}; known: {', '.join(types)}")
            changes[key] = _parse_value(key, raw, str(types[key]))
        return self.replace(**changes)

    # --------------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON-serializable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeopardConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}")
        return cls(**data)

    def derived(self) -> dict[str, int]:
        """Every derived width, by name."""
        names = ("score_bits", "threshold_bits", "qsum_bits", "bound_bits", "planes_bits",
                 "key_index_bits", "key_count_bits", "exp_lut_size", "e_bits",
                 "exp_arg_bits", "sum_bits", "acc_bits", "recip_width",
                 "norm_product_bits", "survivor_capacity", "margin_frac_bits",
                 "margin_register", "fe_query_overhead",
                 "fe_decision_latency",
                 "exp_latency", "mac_acc_latency", "be_drain_cycles", "be_query_overhead",
                 "queries_in_flight", "be_norm_cycles", "be_release_latency",
                 "plane_slots", "fe_full_key_cycles", "align_bits", "fe_q_bits",
                 "fe_score_bits", "fe_threshold_bits", "fe_qsum_bits", "fe_bound_bits")
        return {n: getattr(self, n) for n in names}

    def manifest(self, **extra: Any) -> dict[str, Any]:
        """The JSON manifest written with every build: config, derived widths, extras."""
        from .. import __version__
        return {"generator": "leopard-rtl", "version": __version__,
                "config": self.to_dict(), "derived": self.derived(), **extra}

    def manifest_json(self, **extra: Any) -> str:
        return json.dumps(self.manifest(**extra), indent=2, sort_keys=True) + "\n"


def _parse_value(key: str, raw: str, typ: str) -> Any:
    low = raw.lower()
    if "bool" in typ:
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be a bool (true/false), not {raw!r}")
    if "float" in typ:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {raw!r}") from None
    if "int" in typ:
        if "None" in typ and low in ("none", "null", ""):
            return None
        try:
            return int(raw, 0)
        except ValueError:
            lo, hi = _RANGES[key]
            raise ConfigError(f"{key} must be an integer in [{lo}, {hi}], not {raw!r}") from None
    return raw


# The presets live in presets.py (they need LeopardConfig defined above).
from .presets import PRESETS, preset  # noqa: E402
