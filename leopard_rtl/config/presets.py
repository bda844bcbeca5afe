"""Named generator presets and preset files (:func:`preset`)."""

from __future__ import annotations

import json

from . import ConfigError, LeopardConfig

__all__ = ["PRESETS", "preset"]

_PAPER = LeopardConfig(name="paper")

#: Named presets. ``paper``: d=64, 12-bit Q/K/V (SPEC defaults); ``minilm``: d=32 for the
#: MiniLM workloads; ``tiny``: small widths for fast tests; ``baseline`` and
#: ``pruning_only``: the SPEC section 6 references of ``paper``.
PRESETS: dict[str, LeopardConfig] = {
    "paper": _PAPER,
    "minilm": _PAPER.replace(head_dim=32, max_keys=128, name="minilm"),
    "tiny": LeopardConfig(head_dim=4, qk_bits=4, v_bits=6, lanes=2, max_keys=16,
                          exp_frac_bits=4, exp_bits=8, scale_bits=8, scale_shift_bits=5,
                          recip_bits=10, name="tiny"),
    "baseline": _PAPER.replace(early_termination=False, pruning=False, name="baseline"),
    "pruning_only": _PAPER.replace(early_termination=False, pruning=True,
                                   name="pruning_only"),
    # From `leopard-rtl sweep` (results/eval/sweep.md): best speedup per area of
    # lanes x qk_bits x back-end width among the points with mean output error <= 0.5 V LSB
    # (1.04x faster at 0.97x area than `paper`): the paper design, back end F=6/E=12/R=12.
    "sweep_best": _PAPER.replace(exp_frac_bits=6, exp_bits=12, recip_bits=12,
                                 name="sweep_best"),
    # Issue 14 (results/speedup/README.md, scripts/speedup_table.py): `paper` with two K
    # bit-planes per lane per cycle and overlapped normalization, both exact; lanes stay 8
    # (at most plane_slots + 3 = 9 keep the cycle model exact at two planes per cycle).
    "fast": _PAPER.replace(planes_per_cycle=2, overlap_norm=True, name="fast"),
}


def preset(name: str) -> LeopardConfig:
    """The preset called ``name``, or the one in the preset file ``name`` (``*.json``).

    A preset file holds ``{"config": {parameter: value, ...}}`` (``leopard-rtl sweep``
    writes its chosen design as one, ``chosen_preset.json``) or the bare parameters;
    parameters it leaves out take their defaults. An unknown name, a missing or unreadable
    file, or an unknown or invalid parameter is a :class:`ConfigError`.
    """
    if name.endswith(".json"):
        return _preset_file(name)
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, not {name!r}") from None


def _preset_file(path: str) -> LeopardConfig:
    """The configuration in the JSON preset file ``path`` (see :func:`preset`)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such preset file")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a JSON preset file ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset file is a JSON object of parameters")
    try:
        return LeopardConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
