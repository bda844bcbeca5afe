"""Bad input, interruption and concurrency: every case gives the right answer or one line
``leopard-rtl: error: ...`` with exit status 2, never a traceback, a silent wrong answer, a
partial output or a poisoned cache.

Each test reproduces an observed failure (bad traces, scale saturation, survivor-store
overflow ignored by the model, overwritten inputs, interrupted writes and builds, argparse
usage blocks, work done before validation, concurrent runs sharing a build folder).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import require_tool

from leopard_rtl import emit, preset
from leopard_rtl.cli import main
from leopard_rtl.cli import sim as cli_sim
from leopard_rtl.flow import run as flow_run
from leopard_rtl.paths import atomic_write
from leopard_rtl.tb import toolchain
from leopard_rtl.tb.backend import expected
from sim.golden import error_bound, run_golden, softmax_value
from sim.trace import MAX_ELEMENTS, Trace, TraceError, load_trace, save_trace
from sim.vectors import random_trace

EXE = shutil.which("leopard-rtl", path=str(Path(sys.executable).parent))


def _trace(rng: np.random.Generator, **kw: Any) -> Trace:
    args: dict[str, Any] = dict(heads=2, n_queries=4, n_keys=6, head_dim=4, qk_bits=4,
                                v_bits=6, kind="realistic")
    args.update(kw)
    return random_trace(rng, **args)


def _fields(t: Trace) -> dict[str, Any]:
    return {"q": t.q, "k": t.k, "v": t.v, "threshold": t.threshold, "scale_q": t.scale_q,
            "scale_k": t.scale_k, "scale_v": t.scale_v, "qk_bits": np.int64(t.qk_bits),
            "v_bits": np.int64(t.v_bits), "causal": np.bool_(t.causal),
            "meta": np.str_(json.dumps(t.meta))}


def _one_line(err: str) -> str:
    assert err.startswith("leopard-rtl: error: ") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err
    return err


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = main(args)
    except SystemExit as exc:          # argparse
        rc = int(exc.code or 0)
    return rc, capsys.readouterr().err


# ------------------------------------------------------------------ bad trace files
def test_uint64_threshold_is_refused(tmp_path: Path, rng: np.random.Generator,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """2**63 stored as uint64 wrapped to a negative int64: prune-all became keep-all."""
    t = _trace(rng)
    f = _fields(t)
    f["threshold"] = np.array([1 << 63, 5], dtype=np.uint64)
    np.savez(tmp_path / "t.npz", **f)
    with pytest.raises(TraceError, match=r"field 'threshold': value 9223372036854775808 at "
                                         r"head 0 does not fit int64"):
        load_trace(tmp_path / "t.npz")
    # uint64 values that fit are read exactly.
    f["threshold"] = np.array([(1 << 63) - 1, 5], dtype=np.uint64)
    np.savez(tmp_path / "ok.npz", **f)
    assert load_trace(tmp_path / "ok.npz").threshold[0] == (1 << 63) - 1
    rc, err = _cli(["golden", "--trace", str(tmp_path / "t.npz"), "--preset", "tiny",
                    "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 2 and "does not fit int64" in _one_line(err)
    assert not (tmp_path / "r.npz").exists()


def _corrupt_deflate(path: Path, out: Path) -> None:
    """Flip bytes inside the compressed data of member ``q.npy`` (zip structure intact)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("q.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0x5A
    out.write_bytes(bytes(data))


def _bad_npy_header(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("q.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <garbage  \n")


def _huge_header(path: Path, t: Trace) -> None:
    """A member whose header claims a legal but enormous shape (and holds no data)."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<i8", "fortran_order": False, "shape": (4, 4096, 8192)})
    f = _fields(t)
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in f.items():
            if name == "k":
                zf.writestr("k.npy", buf.getvalue())
            else:
                b = io.BytesIO()
                np.save(b, arr)
                zf.writestr(f"{name}.npy", b.getvalue())


@pytest.mark.parametrize("case", ["deflate", "npy", "npy_header", "huge", "deep_meta",
                                  "nested_meta", "nan_meta", "directory"])
def test_bad_trace_files_one_line(case: str, tmp_path: Path, rng: np.random.Generator,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    t = _trace(rng)
    good = tmp_path / "good.npz"
    save_trace(t, good)
    bad = tmp_path / "bad.npz"
    f = _fields(t)
    want = {"deflate": r"not a readable \.npz trace", "npy": r"not a zip archive",
            "npy_header": r"not a readable \.npz trace", "huge": rf"field 'k': shape "
            rf"\(4, 4096, 8192\) has {4 * 4096 * 8192} elements, more than the "
            rf"{MAX_ELEMENTS}", "deep_meta": r"field 'meta': not valid JSON",
            "nested_meta": r"field 'meta': nested deeper than", "nan_meta":
            r"field 'meta': not valid JSON .*NaN", "directory": r"not a file"}[case]
    if case == "deflate":
        _corrupt_deflate(good, bad)
    elif case == "npy":
        bad = tmp_path / "q.npy"
        np.save(bad, t.q)
    elif case == "npy_header":
        _bad_npy_header(bad)
    elif case == "huge":
        _huge_header(bad, t)
    elif case == "deep_meta":
        np.savez(bad, **{**f, "meta": np.str_("[" * 200_000 + "]" * 200_000)})
    elif case == "nested_meta":
        np.savez(bad, **{**f, "meta": np.str_('{"a": ' + "[" * 40 + "]" * 40 + "}")})
    elif case == "nan_meta":
        np.savez(bad, **{**f, "meta": np.str_('{"x": NaN}')})
    else:
        bad = tmp_path / "dir.npz"
        bad.mkdir()
    import re
    with pytest.raises(TraceError) as info:
        load_trace(bad)
    assert re.search(want, str(info.value)), str(info.value)
    rc, err = _cli(["golden", "--trace", str(bad), "--preset", "tiny",
                    "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 2 and str(bad) in _one_line(err)


def test_save_refuses_nan_meta(tmp_path: Path, rng: np.random.Generator) -> None:
    t = _trace(rng)
    t2 = Trace(**{**{k: getattr(t, k) for k in ("q", "k", "v", "threshold", "scale_q",
                                                "scale_k", "scale_v", "qk_bits", "v_bits",
                                                "causal")}, "meta": {"x": float("nan")}})
    with pytest.raises(TraceError, match="field 'meta': not representable as strict JSON"):
        save_trace(t2, tmp_path / "t.npz")
    assert not list(tmp_path.iterdir()), "a refused save left a file"


# ------------------------------------------------------------------ scale and bound
def test_scale_saturation_is_an_error(tmp_path: Path, rng: np.random.Generator,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A scale product beyond the mantissa used to saturate silently (error up to 578 LSB)."""
    t = _trace(rng, heads=1)
    f = _fields(t)
    f["scale_q"] = np.array([1e3])
    f["scale_k"] = np.array([1e3])
    np.savez(tmp_path / "t.npz", **f)
    rc, err = _cli(["golden", "--trace", str(tmp_path / "t.npz"), "--preset", "tiny",
                    "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 2 and "softmax scale of head 0" in _one_line(err) and "saturate" in err
    assert not (tmp_path / "r.npz").exists()
    # Products that overflow float64 are the same error, not a traceback.
    f["scale_q"] = f["scale_k"] = np.array([1e300])
    np.savez(tmp_path / "t.npz", **f)
    rc, err = _cli(["golden", "--trace", str(tmp_path / "t.npz"), "--preset", "tiny",
                    "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 2 and "would saturate" in _one_line(err)


def test_denormal_scale_runs(tmp_path: Path, rng: np.random.Generator,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """A legal denormal scale (product underflows to 0) gives mant 0: every survivor
    weighs the same; it used to be a traceback."""
    t = _trace(rng, heads=1)
    f = _fields(t)
    f["scale_q"] = np.array([5e-324])
    np.savez(tmp_path / "t.npz", **f)
    rc, err = _cli(["golden", "--trace", str(tmp_path / "t.npz"), "--preset", "tiny",
                    "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 0, err
    g = run_golden(load_trace(tmp_path / "t.npz"), preset("tiny"))
    assert int(g.scale_mant[0]) == 0


def test_error_bound_is_never_nan() -> None:
    """Large x * scale error made e_hat underflow to 0 while 2**tau overflowed: NaN, so a
    test written ``not (err > bound)`` passed vacuously."""
    cfg = preset("tiny")
    score = np.array([[[2000, -2000, 0]]])
    mask = np.ones((1, 1, 3), bool)
    v = np.array([[[10] * 4, [-20] * 4, [0] * 4]])
    mant, shift = np.array([255]), np.array([1])
    be = softmax_value(score, mask, v, mant, shift, cfg)
    ref = np.zeros((1, 1, 4))
    b = error_bound(score, mask, v, np.array([1e-3]), np.array([1e-3]), mant, shift, be,
                    ref, cfg)
    assert not np.isnan(b).any(), b
    assert (b >= np.abs(be["out"] - ref).max(axis=-1)).all()


# ------------------------------------------------------------------ survivor store
def test_golden_honours_survivor_depth(tmp_path: Path, rng: np.random.Generator,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``survivor_depth=1`` used to give outputs the hardware never produces."""
    t = _trace(rng, n_keys=8, kind="uniform")
    t = Trace(**{**{k: getattr(t, k) for k in ("q", "k", "v", "scale_q", "scale_k",
                                               "scale_v", "qk_bits", "v_bits", "causal",
                                               "meta")},
                 "threshold": np.full(t.heads, -(1 << 20), np.int64)})   # keep all
    for depth in (1, 3):
        cfg = preset("tiny").replace(survivor_depth=depth)
        g = run_golden(t, cfg)
        want = expected(g.score, g.mask, t.v, g.scale_mant, g.scale_shift, cfg)
        assert g.overflow.all(), f"depth {depth}: every query keeps 8 > {depth} survivors"
        assert np.array_equal(g.overflow, want["overflow"])
        bad = np.argwhere(g.out != want["out"])
        assert not bad.size, f"depth {depth}: out differs at {bad[0].tolist()}"
        full = run_golden(t, preset("tiny"))
        assert not np.array_equal(g.out, full.out), "overflow changed nothing (vacuous)"
        assert (g.cycles < full.cycles).all(), "the back end reads only stored survivors"
    path = tmp_path / "t.npz"
    save_trace(t, path)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--set",
                    "survivor_depth=1", "--out", str(tmp_path / "r.npz")], capsys)
    assert rc == 0, err
    with np.load(tmp_path / "r.npz") as r:
        assert r["overflow"].all()


def test_memory_is_checked_before_allocation(tmp_path: Path, rng: np.random.Generator,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Legal large dimensions exhausted memory (a traceback, or the OOM killer)."""
    import sim.golden as golden
    path = tmp_path / "t.npz"
    t = _trace(rng)
    save_trace(t, path)
    need = t.heads * t.n_queries * t.n_keys * golden.BYTES_PER_SCORE
    monkeypatch.setattr(golden, "available_memory", lambda: need - 1)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                    str(tmp_path / "r.npz")], capsys)
    assert rc == 2 and "2 heads x 4 queries x 6 keys need about" in _one_line(err)
    monkeypatch.setattr(golden, "available_memory", lambda: need)
    rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                    str(tmp_path / "r.npz")], capsys)
    assert rc == 0, err


# ------------------------------------------------------------------ outputs and inputs
def test_golden_refuses_to_overwrite_its_trace(tmp_path: Path, rng: np.random.Generator,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)
    before = path.read_bytes()
    for out in (path, tmp_path / "." / "t.npz"):
        rc, err = _cli(["golden", "--trace", str(path), "--preset", "tiny", "--out",
                        str(out)], capsys)
        assert rc == 2 and "refusing to overwrite" in _one_line(err)
    assert path.read_bytes() == before


_OUT_CASES = [(cmd, where) for cmd in ("golden", "simulate", "generate", "synth", "energy",
                                        "evaluate", "sweep", "qor", "pnr")
              for where in ("directory", "under_file", "build_dir_file", "suffix")
              if not (where == "build_dir_file" and cmd != "simulate")
              and not (where == "suffix" and cmd not in ("golden", "simulate"))]


def test_rtl_flag_does_not_silently_beat_rtl_mode(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _cli(["evaluate", "--rtl", "--rtl-mode", "none", "--out", "x"], capsys)
    assert rc == 2 and "not allowed with argument --rtl" in _one_line(err)


@pytest.mark.parametrize("cmd,where", _OUT_CASES, ids=[f"{c}-{w}" for c, w in _OUT_CASES])
def test_bad_output_paths_before_any_work(cmd: str, where: str, tmp_path: Path,
                                          rng: np.random.Generator,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused in the first milliseconds: nothing is elaborated, simulated or synthesized."""
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    file_out = cmd in ("golden", "simulate")
    out = {"directory": folder if file_out else afile,
           "under_file": afile / "r.npz", "build_dir_file": tmp_path / "r.npz",
           "suffix": tmp_path / "r.txt"}[where]

    def no_work(*a: Any, **k: Any) -> None:
        raise AssertionError("work started before the arguments were validated")

    for mod, name in ((cli_sim, "run_golden"), (cli_sim, "write_build"),
                      (cli_sim.tb_core, "simulate"), (cli_sim.tb_frontend, "simulate")):
        monkeypatch.setattr(mod, name, no_work)
    from leopard_rtl.cli import flow as cli_flow
    monkeypatch.setattr(cli_flow, "synth_unit", no_work)
    monkeypatch.setattr(cli_flow, "energy_per_head", no_work)
    monkeypatch.setattr(cli_flow, "run_qor", no_work)
    monkeypatch.setattr(cli_flow, "pnr_unit", no_work)
    from leopard_rtl.cli import eval as cli_eval
    monkeypatch.setattr(cli_eval, "main_evaluate", no_work)
    monkeypatch.setattr(cli_eval, "main_dse", no_work)
    monkeypatch.setitem(cli_sim.RUNNERS, "core", no_work)
    args = {"golden": ["golden", "--trace", str(path), "--preset", "tiny"],
            "simulate": ["simulate", "--trace", str(path), "--preset", "tiny"],
            "generate": ["generate", "--preset", "tiny"],
            "synth": ["synth", "--preset", "tiny"],
            "energy": ["energy", "--trace", str(path), "--preset", "tiny"],
            "evaluate": ["evaluate"], "sweep": ["sweep"], "qor": ["qor"],
            "pnr": ["pnr"]}[cmd]
    args += ["--out", str(out)]
    if where == "build_dir_file":
        args += ["--build-dir", str(afile)]
    rc, err = _cli(args, capsys)
    assert rc == 2, err
    _one_line(err)


def test_energy_checks_the_trace_before_synthesis(tmp_path: Path, rng: np.random.Generator,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``energy`` synthesized for minutes before noticing the trace does not fit."""
    from leopard_rtl.cli import flow as cli_flow

    def no_work(*a: Any, **k: Any) -> None:
        raise AssertionError("synthesis started before the trace was checked")

    monkeypatch.setattr(cli_flow, "energy_per_head", no_work)
    path = tmp_path / "t.npz"
    save_trace(_trace(rng), path)
    rc, err = _cli(["energy", "--trace", str(path), "--preset", "minilm", "--out",
                    str(tmp_path / "e")], capsys)
    assert rc == 2 and "head_dim=4 but the configuration 'minilm' has head_dim=32" in \
        _one_line(err)
    rc, err = _cli(["energy", "--trace", str(path), "--preset", "tiny", "--heads", "3",
                    "--out", str(tmp_path / "e")], capsys)
    assert rc == 2 and "has only 2 heads" in _one_line(err)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("args", [
    [],
    ["golden"],
    ["golden", "--trace"],
    ["nope"],
    ["golden", "--trace", "t.npz", "--out", "r.npz", "--bogus"],
    ["generate", "--unit", "gpu", "--out", "x"],
    ["simulate", "--trace", "t.npz", "--out", "r.npz", "--simulator", "modelsim"],
    ["synth", "--clock-ns", "0", "--out", "x"],
    ["synth", "--clock-ns", "-3", "--out", "x"],
    ["synth", "--clock-ns", "nan", "--out", "x"],
    ["synth", "--max-fanout", "-1", "--out", "x"],
    ["synth", "--macro-bits", "many", "--out", "x"],
    ["pnr", "--utilization", "0", "--out", "x"],
    ["pnr", "--timeout", "-1", "--out", "x"],
    ["energy", "--trace", "t.npz", "--heads", "0", "--out", "x"],
    ["energy", "--trace", "t.npz", "--clock-ns", "inf", "--out", "x"],
    ["qor"],
    ["evaluate", "--rtl", "--rtl-mode", "none", "--out", "x"],
], ids=lambda a: " ".join(a) or "no-command")
def test_argparse_errors_are_one_line(args: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """argparse printed a usage block; a bad number silently became the default."""
    rc, err = _cli(args, capsys)
    assert rc == 2
    _one_line(err)


def test_clock_zero_is_not_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _cli(["synth", "--clock-ns", "0", "--out", "x"], capsys)
    assert rc == 2 and "--clock-ns: must be a finite number > 0, not '0'" in err


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
