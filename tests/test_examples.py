"""The runnable examples under examples/ run as a user runs them (a child process, tiny
preset) and finish with what they promise (~1 minute in all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, require_tool

EXAMPLES = ROOT / "examples"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_every_example_is_tested() -> None:
    tested = {"config_to_synth.py", "embed_core.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.synth
def test_config_to_synth(tmp_path: Path) -> None:
    require_tool("iverilog")
    require_tool("sta")
    out = _run("config_to_synth.py", "--out", str(tmp_path), "--simulator", "icarus")
    assert "rtl: outputs == golden" in out
    assert (tmp_path / "rtl" / "leopard_core.v").is_file()
    rep = json.loads(out.strip().splitlines()[-1])
    assert rep["top"] == "leopard_frontend" and rep["pdk"] == "osu018"
    assert rep["area_um2"] > 0 and rep["cells"] > 1000 and rep["fmax_mhz"] > 0


def test_embed_core(tmp_path: Path) -> None:
    out = _run("embed_core.py", "--out", str(tmp_path))
    assert "output rows == golden" in out
    text = (tmp_path / "my_accelerator.v").read_text()
    assert "module my_accelerator" in text
