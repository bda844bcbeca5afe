"""The package installs normally: a wheel built from the checkout, installed into a fresh
virtual environment (not editable), runs every command.

The new environment has no pip and no copy of the checkout on its path; the third-party
dependencies (numpy, Amaranth, ...) come from the test's own environment through a ``.pth``
line, which does not carry the checkout's editable install with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from support import ROOT

COMMANDS = ("golden", "generate", "simulate", "synth", "pnr", "qor", "energy", "evaluate",
            "sweep")


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True)
    wheels = list(dist.glob("leopard_rtl-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheels[0])], check=True, capture_output=True, text=True)
    return py, tmp


def _run(py: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(py), "-m", "leopard_rtl", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_installed_package_is_not_the_checkout(wheel_env: tuple[Path, Path]) -> None:
    py, tmp = wheel_env
    out = subprocess.run([str(py), "-c", "import leopard_rtl, sim, learn; "
                          "print(leopard_rtl.__file__); print(sim.__file__)"],
                         cwd=tmp, check=True, capture_output=True, text=True).stdout
    assert str(ROOT) not in out and str(tmp) in out, out


def test_every_command_is_there(wheel_env: tuple[Path, Path]) -> None:
    py, tmp = wheel_env
    eps = subprocess.run([str(py), "-c", "from importlib.metadata import entry_points; "
                          "print([e.value for e in entry_points(group='console_scripts') "
                          "if e.name == 'leopard-rtl'])"],
                         cwd=tmp, check=True, capture_output=True, text=True).stdout
    assert "leopard_rtl.cli:main" in eps, eps
    top = _run(py, tmp, "--help")
    assert top.returncode == 0, top.stderr
    for cmd in COMMANDS:
        assert cmd in top.stdout, f"`{cmd}` missing from --help of the installed package"
        sub = _run(py, tmp, cmd, "--help")
        assert sub.returncode == 0 and "usage" in sub.stdout, (cmd, sub.stderr[-500:])


def test_generate_from_the_wheel(wheel_env: tuple[Path, Path]) -> None:
    py, tmp = wheel_env
    res = _run(py, tmp, "generate", "--preset", "tiny", "--out", str(tmp / "rtl"),
               "--platform", "nangate45")
    assert res.returncode == 0, res.stderr[-2000:]
    paths = json.loads(res.stdout)
    assert Path(paths["verilog"]).read_text().count("module leopard_core(") == 1
    sdc = Path(paths["orfs_nangate45_sdc"]).read_text()
    assert "set clk_period" in sdc
