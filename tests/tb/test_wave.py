"""``simulate --wave``: waveforms of a chosen window of heads and queries (Icarus VCD,
Verilator FST); the window's outputs are the whole trace's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import SEED, require_tool

from leopard_rtl.cli import main
from leopard_rtl.config import preset
from leopard_rtl.tb.core import wave_window, write_wave
from sim.golden import run_golden
from sim.trace import Trace, save_trace
from sim.vectors import random_trace


def _trace(causal: bool, n_queries: int = 6, n_keys: int = 9) -> Trace:
    return random_trace(np.random.default_rng(SEED), heads=3, n_queries=n_queries,
                        n_keys=n_keys, causal=causal, kind="realistic")


@pytest.mark.parametrize("causal, nq, nk", [(False, 6, 9), (True, 6, 9), (True, 9, 6),
                                            (True, 9, 4)])
def test_window_outputs_are_the_whole_traces(causal: bool, nq: int, nk: int) -> None:
    cfg = preset("tiny")
    trace = _trace(causal, nq, nk)
    full = run_golden(trace, cfg)
    for heads, queries in (((1, 1), (2, 3)), ((0, 2), (4, nq - 1)), (None, (0, 0))):
        part, win = wave_window(trace, heads, queries)
        h0, h1 = win["heads"]
        q0, q1 = win["queries"]
        assert part.heads == h1 - h0 + 1 and part.n_queries == q1 - q0 + 1
        assert q0 == (0 if causal else queries[0])
        got = run_golden(part, cfg)
        where = f"seed={SEED} causal={causal} heads={heads} queries={queries}"
        assert np.array_equal(got.out, full.out[h0:h1 + 1, q0:q1 + 1]), where
        assert np.array_equal(got.all_pruned, full.all_pruned[h0:h1 + 1, q0:q1 + 1]), where


def test_window_out_of_range() -> None:
    from leopard_rtl.errors import LeopardError
    with pytest.raises(LeopardError, match="--wave-heads 2:3 is outside 0:2"):
        wave_window(_trace(False), (2, 3), None)


@pytest.mark.cocotb
def test_simulate_wave_icarus_vcd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("iverilog")
    path = tmp_path / "t.npz"
    save_trace(_trace(True), path)
    wave = tmp_path / "w.vcd"
    assert main(["simulate", "--preset", "tiny", "--trace", str(path), "--simulator",
                 "icarus", "--out", str(tmp_path / "r.npz"), "--build-dir",
                 str(tmp_path / "b"), "--wave", str(wave), "--wave-heads", "1",
                 "--wave-queries", "2:3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    info = summary["wave"]
    assert info["golden_match"] and summary["matched"]
    assert info["heads"] == [1, 1] and info["queries"] == [0, 3]    # causal: from query 0
    text = wave.read_text()
    assert "$enddefinitions" in text and "query__valid" in text and "module dut" in text


@pytest.mark.cocotb
def test_write_wave_verilator_fst(tmp_path: Path) -> None:
    require_tool("verilator")
    wave = tmp_path / "w.fst"
    info = write_wave(_trace(False), preset("tiny"), wave, simulator="verilator",
                      build_dir=tmp_path / "b", heads=(0, 0), queries=(1, 4))
    assert info["golden_match"], f"seed={SEED}: {info}"
    assert info["heads"] == [0, 0] and info["queries"] == [1, 4]
    data = wave.read_bytes()
    assert len(data) > 1000 and data[0] == 0    # an FST header block comes first


def test_wave_bad_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.npz"
    save_trace(_trace(False), path)
    assert main(["simulate", "--preset", "tiny", "--trace", str(path), "--out",
                 str(tmp_path / "r.npz"), "--wave", str(tmp_path / "w.ghw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--wave must end in .fst or .vcd" in err[0], err
