"""Configuration: presets, derived widths, validation messages, manifest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leopard_rtl import PRESETS, ConfigError, LeopardConfig, preset


def test_presets() -> None:
    assert set(PRESETS) >= {"paper", "minilm", "tiny", "baseline", "pruning_only"}
    paper = preset("paper")
    assert (paper.head_dim, paper.qk_bits) == (64, 12)
    assert preset("minilm").head_dim == 32
    assert preset("baseline").is_baseline
    assert preset("pruning_only").pruning and not preset("pruning_only").early_termination
    assert preset("baseline").replace(name="x") == paper.baseline().replace(name="x")
    for name, cfg in PRESETS.items():
        assert cfg.name == name


def test_derived_widths() -> None:
    cfg = preset("paper")
    assert cfg.score_bits == 2 * 12 + 6
    assert cfg.threshold_bits == cfg.score_bits + 1
    assert cfg.bound_bits == cfg.score_bits + 1
    assert cfg.planes_bits == 4
    assert cfg.key_index_bits == 9 and cfg.key_count_bits == 10
    assert cfg.e_bits == 17 and cfg.exp_lut_size == 256
    assert cfg.survivor_capacity == cfg.max_keys
    assert LeopardConfig(head_dim=1).score_bits == 24
    assert LeopardConfig(head_dim=65).score_bits == 31
    assert LeopardConfig(max_keys=1, lanes=1).key_index_bits == 1


def test_largest_score_fits() -> None:
    for d in (1, 2, 3, 64, 100, 1024):
        for p in (2, 4, 12, 16):
            cfg = LeopardConfig(head_dim=d, qk_bits=p, exp_bits=8, recip_bits=8)
            big = d * (1 << (2 * p - 2))             # (-2^(p-1))^2 summed d times
            assert big <= (1 << (cfg.score_bits - 1)) - 1


@pytest.mark.parametrize("kw,msg", [
    ({"head_dim": 0}, r"^head_dim must be in \[1, 1024\], not 0$"),
    ({"head_dim": 2000}, r"^head_dim must be in \[1, 1024\], not 2000$"),
    ({"qk_bits": 1}, r"^qk_bits must be in \[2, 16\], not 1$"),
    ({"v_bits": 17}, r"^v_bits must be in \[2, 16\], not 17$"),
    ({"lanes": 0}, r"^lanes must be in \[1, 256\], not 0$"),
    ({"max_keys": 0}, r"^max_keys must be in \[1, 65536\], not 0$"),
    ({"exp_frac_bits": 13}, r"^exp_frac_bits must be in \[1, 12\], not 13$"),
    ({"exp_bits": 3}, r"^exp_bits must be in \[4, 24\], not 3$"),
    ({"recip_bits": 31}, r"^recip_bits must be in \[4, 30\], not 31$"),
    ({"scale_shift_bits": 1}, r"^scale_shift_bits must be in \[2, 7\], not 1$"),
    ({"head_dim": 4.0}, r"^head_dim must be an integer in \[1, 1024\], not 4.0$"),
    ({"lanes": True}, r"^lanes must be an integer in \[1, 256\], not True$"),
    ({"memory": "sram"}, r"^memory must be one of ff, macro, not 'sram'$"),
    ({"pruning": 1}, r"^pruning must be a bool \(true/false\), not 1$"),
    ({"survivor_depth": 600}, r"^survivor_depth must be in \[1, max_keys=512\], not 600$"),
    ({"lanes": 16, "max_keys": 8}, r"^lanes must be in \[1, max_keys=8\], not 16$"),
    ({"recip_bits": 30, "exp_bits": 24, "max_keys": 65536},
     r"^recip_bits must be at most .*normalization product"),
])
def test_validation_messages(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        LeopardConfig(**kw)  # type: ignore[arg-type]


def test_overrides() -> None:
    cfg = preset("paper").with_overrides(["lanes=16", "pruning=false", "survivor_depth=64"])
    assert cfg.lanes == 16 and cfg.pruning is False and cfg.survivor_depth == 64
    with pytest.raises(ConfigError, match=r"^unknown parameter 'lane'"):
        preset("paper").with_overrides(["lane=4"])
    with pytest.raises(ConfigError, match=r"^--set expects name=value, not 'lanes'$"):
        preset("paper").with_overrides(["lanes"])
    with pytest.raises(ConfigError, match=r"^lanes must be an integer in \[1, 256\], not 'x'$"):
        preset("paper").with_overrides(["lanes=x"])
    with pytest.raises(ConfigError, match=r"^pruning must be a bool"):
        preset("paper").with_overrides(["pruning=maybe"])
    with pytest.raises(ConfigError, match=r"^preset must be one of"):
        preset("huge")


def test_frozen_and_roundtrip() -> None:
    cfg = preset("minilm")
    with pytest.raises(AttributeError):
        cfg.lanes = 3  # type: ignore[misc]
    assert LeopardConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    man = json.loads(cfg.manifest_json(unit="core"))
    assert man["config"]["head_dim"] == 32 and man["derived"]["score_bits"] == 29
    assert man["unit"] == "core"
    with pytest.raises(ConfigError, match="unknown parameter 'bogus'"):
        LeopardConfig.from_dict({"bogus": 1})


def test_golden_model_imports_no_amaranth() -> None:
    code = ("import sys, sim.golden, sim.perf, sim.trace, sim.vectors, leopard_rtl.config; "
            "bad = [m for m in sys.modules if m.startswith('amaranth')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
