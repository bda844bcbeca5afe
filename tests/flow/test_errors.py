"""Bad inputs to the flow give one-line errors (exit status 2), never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from leopard_rtl.cli import main
from leopard_rtl.flow.pdk import PdkError, resolve_pdk

pytestmark = pytest.mark.synth


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_unknown_pdk_cli(capsys: pytest.CaptureFixture[str], build_root: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--pdk", "gf180", "--out", str(build_root / "flow" / "bad")])
    assert exc.value.code == 2
    assert "invalid choice: 'gf180'" in _err(capsys)


def test_unknown_pdk_api(build_root: Path) -> None:
    with pytest.raises(PdkError, match=r"^unknown PDK 'gf180'; known: osu018, sky130hd, "):
        resolve_pdk("gf180", build_root)


def test_missing_liberty(capsys: pytest.CaptureFixture[str], build_root: Path) -> None:
    missing = build_root / "no_such.lib"
    assert main(["synth", "--preset", "tiny", "--unit", "frontend", "--pdk", "nangate45",
                 "--liberty", str(missing), "--out", str(build_root / "flow" / "bad")]) == 2
    err = _err(capsys)
    assert err == f"leopard-rtl: error: --liberty {missing}: no such file"


def test_missing_pdk_folder(capsys: pytest.CaptureFixture[str], build_root: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEOPARD_PDK_ROOT", str(build_root / "flow" / "no_pdk_here"))
    assert main(["synth", "--preset", "tiny", "--unit", "frontend", "--pdk", "sky130hd",
                 "--out", str(build_root / "flow" / "bad")]) == 2
    err = _err(capsys)
    assert err.count("\n") == 0
    assert "PDK sky130hd: folder" in err and "does not exist" in err
    assert "--platform-dir" in err


def test_platform_dir_without_liberty(capsys: pytest.CaptureFixture[str],
                                      build_root: Path) -> None:
    empty = build_root / "flow" / "empty_platform"
    empty.mkdir(parents=True, exist_ok=True)
    assert main(["synth", "--preset", "tiny", "--unit", "frontend", "--pdk", "asap7",
                 "--platform-dir", str(empty), "--out", str(build_root / "flow" / "bad")]) == 2
    err = _err(capsys)
    assert "PDK asap7: liberty file asap7sc7p5t_AO_RVT_TT_nldm*.lib* not found" in err


def test_unroutable_utilization(capsys: pytest.CaptureFixture[str], build_root: Path) -> None:
    assert main(["pnr", "--preset", "tiny", "--unit", "frontend", "--utilization", "99",
                 "--out", str(build_root / "flow" / "bad-pnr")]) == 2
    err = _err(capsys)
    assert err == ("leopard-rtl: error: --utilization must be in [5, 90] percent (qflow "
                   "cannot route denser placements), not 99.0")


def test_bad_max_fanout(capsys: pytest.CaptureFixture[str], build_root: Path) -> None:
    assert main(["synth", "--preset", "tiny", "--unit", "frontend", "--pdk", "nangate45",
                 "--max-fanout", "1", "--out", str(build_root / "flow" / "bad-fanout")]) == 2
    err = _err(capsys)
    assert err == ("leopard-rtl: error: --max-fanout must be 0 (no fan-out repair) or >= 2, "
                   "not 1")
