"""Bad input, interruption and concurrency: every case gives the right answer or one line
``leopard-rtl: error: ...`` with exit status 2, never a traceback, a silent wrong answer, a
partial output or a poisoned cache.

Each test reproduces an observed failure (bad traces, scale saturation, survivor-store
overflow ignored by the model, overwritten inputs, interrupted writes and builds, argparse
usage blocks, work done before validation, concurrent runs sharing a build folder).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from robustness_helpers import _cli, _fields, _one_line, _trace

from leopard_rtl import preset
from leopard_rtl.cli import sim as cli_sim
from leopard_rtl.tb.backend import expected
from sim.golden import error_bound, run_golden, softmax_value
from sim.trace import MAX_ELEMENTS, Trace, TraceError, load_trace, save_trace


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
