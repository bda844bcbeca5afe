"""``--config manifest.json`` rebuilds the recorded configuration; bad files are one-line
errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leopard_rtl.cli import main


def test_config_from_manifest_rebuilds_the_same_design(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["generate", "--preset", "tiny", "--set", "lanes=3", "--set",
                 "recip_bits=9", "--out", str(a)]) == 0
    assert main(["generate", "--config", str(a / "manifest.json"), "--out", str(b)]) == 0
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert mb["config"] == ma["config"] and mb["config"]["lanes"] == 3
    assert mb["fingerprint"] == ma["fingerprint"]
    assert (a / "leopard_core.v").read_text() == (b / "leopard_core.v").read_text()
    # --set still applies on top of the recorded configuration
    c = tmp_path / "c"
    assert main(["generate", "--config", str(a / "manifest.json"), "--set", "lanes=2",
                 "--out", str(c)]) == 0
    assert json.loads((c / "manifest.json").read_text())["config"]["lanes"] == 2


@pytest.mark.parametrize("content, reason", [
    (None, "no such file"),
    ("{not json", "not a JSON file"),
    ("[1, 2]", "expected a manifest.json"),
    ('{"config": {"lanes": 4, "colour": "red"}}', "unknown parameter 'colour'"),
    ('{"head_dim": 0}', "head_dim"),
])
def test_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         content: str | None, reason: str) -> None:
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    assert main(["generate", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and reason in err[0], err
