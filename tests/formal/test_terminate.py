"""Formal proof (Yosys ``sat``) that the emitted front end prunes exactly ``S < Th`` and stops
each key at the first plane whose bound allows it (:mod:`leopard_rtl.flow.formal`).

The default suite proves the smallest configuration and shows the proof can fail: a harness
whose reference keeps only ``S > Th`` (one threshold value off) must get a counterexample.
The ``slow`` test proves every configuration of :data:`PROOF_CONFIGS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import require_module

from leopard_rtl.config import LeopardConfig
from leopard_rtl.flow import formal
from leopard_rtl.flow.formal import PROOF_CONFIGS, proof_config, prove_terminate


def _prove(cfg_args: tuple[int, int, int, int], out: Path) -> formal.FormalResult:
    require_module("pyosys")
    cfg = proof_config(*cfg_args)
    return prove_terminate(cfg, out / cfg.name)


def test_terminate_proven_small(build_root: Path) -> None:
    res = _prove(PROOF_CONFIGS[0], build_root / "formal")
    assert res.proven, f"{res.config}: counterexample\n{res.counterexample}\nlog {res.log}"


def test_proof_can_fail(build_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference off by one threshold value (``S > Th`` survives) must be refuted."""
    real = formal.harness

    def wrong(cfg: LeopardConfig, ports: list[dict[str, Any]]) -> str:
        text = real(cfg, ports)
        assert ">= thw" in text
        return text.replace(">= thw", "> thw")

    monkeypatch.setattr(formal, "harness", wrong)
    res = _prove(PROOF_CONFIGS[0], build_root / "formal" / "mutant")
    assert not res.proven, f"{res.config}: the mutated property was proven (vacuous proof)"
    assert res.counterexample


def test_lemma_can_fail(build_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference's two's-complement expansion is itself proven against ``q * (k >>> m)``:
    an expansion that forgets the sign bit's weight must be refuted."""
    real = formal._product_term

    def wrong(tag: str, q: str, k: str, p: int, m: int, rw: int) -> list[str]:
        return [line.replace(f"<<< {p - m - 1})", f"<<< {p - m})", 1)
                for line in real(tag, q, k, p, m, rw)]

    monkeypatch.setattr(formal, "_product_term", wrong)
    res = _prove(PROOF_CONFIGS[0], build_root / "formal" / "mutant-lemma")
    assert not res.proven, f"{res.config}: a wrong expansion was proven (vacuous lemma)"


@pytest.mark.slow
@pytest.mark.parametrize("cfg_args", PROOF_CONFIGS[1:],
                         ids=lambda c: "d{}p{}k{}l{}".format(*c))
def test_terminate_proven(cfg_args: tuple[int, int, int, int], build_root: Path) -> None:
    res = _prove(cfg_args, build_root / "formal")
    assert res.proven, f"{res.config}: counterexample\n{res.counterexample}\nlog {res.log}"
