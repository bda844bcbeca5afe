"""Robustness under environment failures, interrupted writes and builds, and concurrency:
one line ``leopard-rtl: error: ...`` or the right answer, never a partial output or a
poisoned cache (split from test_robustness.py)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from robustness_helpers import EXE, _cli, _one_line, _trace
from support import require_tool

from leopard_rtl import emit, preset
from leopard_rtl.cli import sim as cli_sim
from leopard_rtl.flow import run as flow_run
from leopard_rtl.paths import atomic_write
from leopard_rtl.tb import toolchain
from sim.golden import run_golden
from sim.trace import load_trace, save_trace


# ------------------------------------------------------------------ environment failures
def test_disk_full_and_interrupt_leave_nothing(tmp_path: Path, rng: np.random.Generator,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "r.npz").write_bytes(b"previous result")
    real = np.savez_compressed

    def full(fh: Any, **arrays: Any) -> None:
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                    str(out_dir / "r.npz")], capsys)
    assert rc == 2 and "No space left on device" in _one_line(err)
    assert sorted(p.name for p in out_dir.iterdir()) == ["r.npz"]
    assert (out_dir / "r.npz").read_bytes() == b"previous result"

    def interrupted(fh: Any, **arrays: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                    str(out_dir / "r.npz")], capsys)
    assert rc == 130 and err == "leopard-rtl: error: interrupted\n"
    assert sorted(p.name for p in out_dir.iterdir()) == ["r.npz"]
    monkeypatch.setattr(np, "savez_compressed", real)


@pytest.mark.parametrize("exc", [PermissionError(errno.EACCES, "Permission denied", "b/x"),
                                 MemoryError(), IsADirectoryError(21, "Is a directory", "d")])
def test_environment_errors_are_one_line(exc: BaseException, tmp_path: Path,
                                         rng: np.random.Generator,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)

    def fail(*a: Any, **k: Any) -> None:
        raise exc

    monkeypatch.setattr(cli_sim, "run_golden", fail)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                    str(tmp_path / "r.npz")], capsys)
    assert rc == 2
    _one_line(err)


def test_broken_pipe_is_quiet(tmp_path: Path, rng: np.random.Generator) -> None:
    assert EXE, "the leopard-rtl console script is not installed in the venv"
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)
    r, w = os.pipe()
    os.close(r)                         # the reader is gone before anything is written
    proc = subprocess.run([EXE, "golden", "--trace", str(path), "--preset", "tiny",
                           "--out", str(tmp_path / "r.npz"), "--pretty"], stdout=w,
                          stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert proc.stderr == "leopard-rtl: error: output closed early (broken pipe)\n"


# ------------------------------------------------------------------ interrupted writes
def test_atomic_write_keeps_the_old_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("leopard_rtl.paths.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new text")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"], "a temporary file was left"


def test_emit_never_reuses_a_damaged_build(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Verilog file, or another design's Verilog, behind a valid manifest was
    reused with exit 0."""
    cfg1 = preset("tiny").replace(lanes=1)
    cfg2 = preset("tiny")
    a, b = tmp_path / "a", tmp_path / "b"
    pa = emit.write_build("frontend", cfg2, a)
    good = pa["verilog"].read_text()
    pb = emit.write_build("frontend", cfg1, b)
    assert pb["verilog"].read_text() != good
    pa["verilog"].write_text("")                          # truncated by an interrupt
    assert emit.write_build("frontend", cfg2, a)["verilog"].read_text() == good
    shutil.copy(pb["verilog"], pa["verilog"])             # lanes=1 behind lanes=2
    assert emit.write_build("frontend", cfg2, a)["verilog"].read_text() == good
    manifest = json.loads(pa["manifest"].read_text())
    assert manifest["verilog_sha256"] == emit.file_sha256(pa["verilog"])

    # Interrupted while writing the new Verilog: no manifest vouches for what is there.
    def boom(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("leopard_rtl.paths.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        emit.write_build("frontend", cfg1, a)
    monkeypatch.undo()
    assert not any(p.name.endswith(".tmp") for p in a.iterdir())
    assert not emit.build_is_current(pa["verilog"], pa["manifest"],
                                     emit.fingerprint("frontend", cfg1))
    assert emit.write_build("frontend", cfg1, a)["verilog"].read_text() == \
        pb["verilog"].read_text()


def test_interrupted_synthesis_leaves_no_report(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A QoR report of the previous design stayed next to a half-made netlist."""
    out = tmp_path / "syn"
    out.mkdir()
    (out / "report.json").write_text('{"design": "previous"}')
    (out / "summary.txt").write_text("previous")

    def interrupted(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(flow_run, "synthesize", interrupted)
    monkeypatch.setattr(flow_run, "_stubs", lambda v, o: ([], []))
    with pytest.raises(KeyboardInterrupt):
        flow_run.synth_verilog(tmp_path / "x.v", "top", None, out,  # type: ignore[arg-type]
                               clock_ns=1.0)
    assert not (out / "report.json").exists() and not (out / "summary.txt").exists()


def test_interrupted_testbench_build_is_redone(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A build interrupted at link kept its old stamp: later runs reused a broken build."""
    require_tool("iverilog")
    paths = emit.write_build("frontend", preset("tiny"), tmp_path)
    tb1 = "module tb; initial $finish; endmodule\n"
    tb2 = "module tb; initial begin $display(\"two\"); $finish; end endmodule\n"
    exe = toolchain.build_testbench(paths["verilog"], tb1, "tb_x.v", "icarus", tmp_path)
    stamp = tmp_path / "tb_x.icarus.sha256"
    assert stamp.is_file()
    real = toolchain.run_tool

    def interrupted(cmd: list[str], cwd: Path) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(toolchain, "run_tool", interrupted)
    with pytest.raises(KeyboardInterrupt):
        toolchain.build_testbench(paths["verilog"], tb2, "tb_x.v", "icarus", tmp_path)
    assert not stamp.exists(), "an interrupted build kept the previous build's stamp"
    monkeypatch.setattr(toolchain, "run_tool", real)
    exe = toolchain.build_testbench(paths["verilog"], tb2, "tb_x.v", "icarus", tmp_path)
    assert stamp.is_file() and exe.is_file()
    out = subprocess.run([toolchain.tool("vvp"), "-n", str(exe)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert "two" in out.stdout


# ------------------------------------------------------------------ concurrency
@pytest.mark.cocotb
def test_concurrent_simulate_runs_share_a_build_dir(tmp_path: Path, seed: int) -> None:
    """Two runs in one build folder read each other's stimulus and output files (false
    mismatches in 8/10 runs, the other trace's results in 5/10 files). Three runs on
    different traces start together on a cold build folder; each must match its own
    golden model."""
    require_tool("iverilog")
    assert EXE, "the leopard-rtl console script is not installed in the venv"
    build = tmp_path / "shared"
    procs = []
    for n in range(3):
        rng = np.random.default_rng(seed + n)
        t = _trace(rng, heads=2, n_queries=3 + n, n_keys=5 + n)
        path = tmp_path / f"t{n}.npz"
        save_trace(t, path)
        procs.append((path, subprocess.Popen(
            [EXE, "simulate", "--unit", "frontend", "--trace", str(path), "--preset", "tiny",
             "--simulator", "icarus", "--build-dir", str(build), "--out",
             str(tmp_path / f"r{n}.npz")], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)))
    for n, (path, proc) in enumerate(procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"seed {seed + n}: run {n} failed: {err[-2000:]}"
        g = run_golden(load_trace(path), preset("tiny"))
        with np.load(tmp_path / f"r{n}.npz") as r:
            bad = np.argwhere(r["mask"] != g.mask)
            assert not bad.size, f"seed {seed + n}: run {n} mask differs at {bad[0]}"
    assert not [p for p in build.iterdir() if p.name.startswith("run-")], \
        "a run folder was left behind"


def test_default_build_dir_depends_on_the_configuration() -> None:
    from leopard_rtl.cli.common import config_key
    a = preset("tiny")
    assert config_key(a) != config_key(a.replace(lanes=1))
    assert config_key(a) == config_key(preset("tiny"))
