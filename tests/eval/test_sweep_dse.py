"""``leopard-rtl sweep`` on Dask (leopard_rtl/eval/dse.py, spec.py): spec validation before
any work, a tiny sweep on a 2-worker local cluster checked against the model run in
process, a worker killed mid-run, resume after an interruption, the objectives' arithmetic
and the chosen design as a preset file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import ROOT, require_tool

from leopard_rtl.config import ConfigError, preset
from leopard_rtl.eval.dse import dask_client, evaluate_point, objectives, pareto_front, run_sweep
from leopard_rtl.eval.inputs import requantize
from leopard_rtl.eval.spec import SpecError, load_spec, parse_spec
from sim.golden import run_golden
from sim.trace import load_trace

#: Cycles only (no synthesis), the three small MemN2N traces: every point takes
#: milliseconds, so the tests time the cluster, not the model.
TINY = {"base": "paper", "knobs": {"lanes": [2, 4], "qk_bits": [8, 12]},
        "synthesize": False, "traces": ["traces/memn2n"]}


def _spec(tmp: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    p = tmp / name
    p.write_text(json.dumps(data))          # JSON is YAML
    return p


def _expected(spec: Any) -> dict[str, dict[str, int]]:
    """Each point's cycles per trace, from the model run here (not on the cluster)."""
    out = {}
    for pt in spec.points:
        cyc = {}
        for path in spec.trace_paths:
            t = load_trace(path)
            cfg = pt.trace_configs[t.head_dim]
            cyc[str(path.relative_to(ROOT))] = int(
                run_golden(requantize(t, cfg.qk_bits, cfg.v_bits), cfg).cycles.sum())
        out[pt.label] = cyc
    return out


@pytest.fixture(scope="module")
def cluster():
    """The local cluster ``leopard-rtl sweep --workers 2`` starts (two worker processes),
    reached by address as ``--scheduler`` would (one start for every test here)."""
    with dask_client(None, 2) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
        yield client.scheduler.address


# ----------------------------------------------------------------- spec validation
@pytest.mark.parametrize("change, words", [
    ({"knobs": {"lanez": [2]}}, "unknown knob 'lanez'"),
    ({"knobs": {"lanes": []}}, "knob 'lanes': empty list"),
    ({"knobs": {"qk_bits": [8, 17]}}, "knob 'qk_bits': qk_bits must be in [2, 16], not 17"),
    ({"knobs": {"head_dim": [16]}}, "knob 'head_dim': not a sweep knob"),
    ({"tied": {"be": [{"exp_bits": 12}, {"recip_bits": 12}]}}, "tied 'be': every entry"),
    ({"tied": {"be": [{"exp_bits": 99}]}}, "exp_bits must be in [4, 24], not 99"),
    ({"pdk": ["tsmc5"]}, "pdk: must be one of"),
    ({"frobnicate": 1}, "unknown key 'frobnicate'"),
    ({"traces": ["no/such/dir"]}, "traces:"),
    ({"choose": {"max_error_v_lsb": -1}}, "choose: max_error_v_lsb must be a positive"),
    ({"knobs": {"lanes": [16], "qk_bits": [8]}}, "no design point left"),
])
def test_bad_spec_fails_naming_the_knob(tmp_path: Path, change: dict[str, Any],
                                        words: str) -> None:
    with pytest.raises(SpecError) as e:
        load_spec(_spec(tmp_path, {**TINY, **change}))
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "spec.yaml")) and words in msg, msg
    assert "\n" not in msg


def test_bad_spec_on_the_command_line_is_one_line_before_any_work(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {**TINY, "knobs": {"lanes": [2, 300]}})
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "leopard_rtl", "sweep", "--spec", str(spec),
                        "--build-dir", str(tmp_path / "b"), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leopard-rtl: error: ") \
        and "knob 'lanes'" in lines[0] and "300" in lines[0], r.stderr
    assert not (tmp_path / "b").exists() and not out.exists()


def test_spec_expands_the_cross_product_and_drops_inexact_points(tmp_path: Path) -> None:
    spec = parse_spec({**TINY, "knobs": {"lanes": [4, 12], "qk_bits": [8, 12]},
                       "tied": {"be": [{"exp_bits": 12, "recip_bits": 12},
                                       {"exp_bits": 16, "recip_bits": 16}]}}, "s")
    pts = [p for p in spec.points if p.role == "point"]
    # lanes 12 > qk_bits 8 is where the cycle model is only a bound: dropped (2 of 8)
    assert len(pts) == 6 and len(spec.dropped) == 2, (spec.dropped, [p.label for p in pts])
    assert {p.role for p in spec.points} == {"point", "reference", "reference_baseline"}
    for p in pts:
        assert p.synth_config.head_dim == 16 and p.synth_config.max_keys == 32
        assert all(c.lanes == p.knobs["lanes"] and c.exp_bits == p.knobs["exp_bits"]
                   for c in p.trace_configs.values())


# ----------------------------------------------------------------- the cluster
def test_tiny_sweep_on_two_local_workers(tmp_path: Path, cluster: str) -> None:
    spec = load_spec(_spec(tmp_path, TINY))
    res = run_sweep(spec, tmp_path / "out", scheduler=cluster, build_dir=tmp_path / "b",
                    progress_bar=False, quiet=True)
    assert res["counts"] == {"points": 6, "cached": 0, "computed": 6, "failed": 0}, res
    assert res["workers"] == cluster
    want = _expected(spec)
    by_label = {r["label"]: r for r in res["points"]}
    assert set(by_label) == set(want)
    for label, cyc in want.items():
        assert by_label[label]["cycles"] == cyc, label
    # cycle speedup against the paper baseline, recomputed from the model's cycles
    base = want["reference_baseline@nangate45"]
    for label, r in by_label.items():
        sp = float(np.exp(np.mean([np.log(base[p] / c) for p, c in want[label].items()])))
        assert r["cycle_speedup"] == pytest.approx(sp, rel=1e-12), label
    assert len(list((tmp_path / "b" / "points").glob("*.json"))) == 6
    # the chosen design is a preset file every --preset accepts
    chosen = res["points"][res["chosen"]]
    assert chosen["role"] == "point" and chosen["error_v_lsb"] <= 0.5
    cfg = preset(res["chosen_preset"])
    assert cfg.lanes == chosen["knobs"]["lanes"] and cfg.qk_bits == chosen["knobs"]["qk_bits"]
    assert cfg.head_dim == preset("paper").head_dim
    # a repeated sweep computes nothing and starts no cluster
    again = run_sweep(spec, tmp_path / "out2", scheduler="tcp://no-cluster-needed:1",
                      build_dir=tmp_path / "b", progress_bar=False, quiet=True)
    assert again["counts"]["cached"] == 6 and again["counts"]["computed"] == 0
    assert [r["cycles"] for r in again["points"]] == [r["cycles"] for r in res["points"]]


def test_worker_killed_mid_run_loses_nothing(tmp_path: Path, cluster: str) -> None:
    spec = load_spec(_spec(tmp_path, TINY))
    calls = tmp_path / "calls"
    calls.mkdir()
    marker = tmp_path / "killed"

    def dies_once(task: dict[str, Any], traces: Any, refs: Any) -> dict[str, Any]:
        # from the 4th task on, the first to claim the marker kills its own worker
        # process (SIGKILL, mid-task)
        n = len(list(calls.iterdir()))
        (calls / f"{n}-{os.getpid()}-{task['key']}").touch()
        if n >= 3:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, f"{n} {task['key']}".encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return evaluate_point(task, traces, refs)

    persisted: list[str] = []
    res = run_sweep(spec, tmp_path / "out", scheduler=cluster,
                    build_dir=tmp_path / "b", progress_bar=False, quiet=True,
                    task_fn=dies_once, on_record=lambda r: persisted.append(r["label"]))
    n_killed, key_killed = marker.read_text().split()
    again = [p.name for p in calls.iterdir()
             if int(p.name.split("-")[0]) > int(n_killed) and p.name.endswith(key_killed)]
    # the killed task ran again (on a live worker) and every point has its record
    assert again, sorted(p.name for p in calls.iterdir())
    assert res["failures"] == [] and res["counts"]["computed"] == 6, res["failures"]
    assert sorted(persisted) == sorted(r["label"] for r in res["points"])
    assert len(list((tmp_path / "b" / "points").glob("*.json"))) == 6
    want = _expected(spec)
    for r in res["points"]:
        assert r["cycles"] == want[r["label"]], r["label"]


def test_resume_after_interruption(tmp_path: Path, cluster: str) -> None:
    spec = load_spec(_spec(tmp_path, TINY))
    got: list[str] = []

    def interrupt_after_two(rec: dict[str, Any]) -> None:
        got.append(rec["key"])
        if len(got) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "out", scheduler=cluster,
                  build_dir=tmp_path / "b", progress_bar=False, quiet=True,
                  on_record=interrupt_after_two)
    kept = sorted(p.stem for p in (tmp_path / "b" / "points").glob("*.json"))
    assert kept == sorted(got), (kept, got)
    res = run_sweep(spec, tmp_path / "out", scheduler=cluster,
                    build_dir=tmp_path / "b", progress_bar=False, quiet=True)
    assert res["counts"] == {"points": 6, "cached": 2, "computed": 4, "failed": 0}, res
    want = _expected(spec)
    for r in res["points"]:
        assert r["cycles"] == want[r["label"]], r["label"]


def test_a_failing_point_is_listed_and_the_rest_complete(tmp_path: Path,
                                                         cluster: str) -> None:
    spec = load_spec(_spec(tmp_path, TINY))

    def fails_for_lanes_2_qk_8(task: dict[str, Any], traces: Any, refs: Any) -> Any:
        if task["knobs"] == {"lanes": 2, "qk_bits": 8}:
            raise RuntimeError("synthesis crashed\nsecond line")
        return evaluate_point(task, traces, refs)

    res = run_sweep(spec, tmp_path / "out", scheduler=cluster,
                    build_dir=tmp_path / "b", progress_bar=False, quiet=True,
                    task_fn=fails_for_lanes_2_qk_8)
    assert res["failures"] == [{"point": "lanes=2,qk_bits=8@nangate45",
                                "error": "RuntimeError: synthesis crashed"}], res["failures"]
    assert res["counts"]["computed"] == 5 and len(res["points"]) == 5
    assert "## Failures" in (tmp_path / "out" / "sweep.md").read_text()


# ----------------------------------------------------------------- objectives
def _rec(role: str, label: str, cycles: dict[str, int], synth: dict[str, float] | None,
         err: float = 0.1) -> dict[str, Any]:
    return {"key": label, "label": label, "role": role, "pdk": "nangate45", "knobs": {},
            "synth": synth, "seconds": {"total": 1.0},
            "traces": {p: {"cycles": c, "heads": 2, "error_v_lsb": err}
                       for p, c in cycles.items()}}


def test_wall_clock_speedup_uses_each_designs_own_fmax() -> None:
    spec = parse_spec({**TINY, "synthesize": True}, "s")
    syn = {"area_um2": 1000.0, "power_w": 1e-3, "clock_ns": 2.0}
    recs = [_rec("reference_baseline", "b", {"t1": 400, "t2": 900},
                 {**syn, "fmax_mhz": 500.0}),
            _rec("reference", "r", {"t1": 200, "t2": 300}, {**syn, "fmax_mhz": 500.0}),
            # same cycles as the reference, half its clock: half its wall-clock speedup
            _rec("point", "slow", {"t1": 200, "t2": 300},
                 {**syn, "fmax_mhz": 250.0, "area_um2": 800.0}),
            _rec("point", "fast", {"t1": 100, "t2": 300},
                 {**syn, "fmax_mhz": 500.0, "area_um2": 1200.0})]
    res = objectives(spec, recs)
    rows = {r["label"]: r for r in res["points"]}
    assert rows["r"]["wall_clock_speedup"] == pytest.approx(np.sqrt(2 * 3))
    assert rows["slow"]["wall_clock_speedup"] == pytest.approx(np.sqrt(2 * 3) / 2)
    assert rows["slow"]["cycle_speedup"] == pytest.approx(rows["r"]["cycle_speedup"])
    assert rows["slow"]["area_rel"] == pytest.approx(0.8)
    # energy per head: P x synthesis clock x cycles / heads, mean over traces
    assert rows["b"]["energy_per_head_nj"] == pytest.approx(1e-3 * 2.0 * (200 + 450) / 2)
    # "fast" is over the iso-area limit: the chosen point is "slow"
    assert res["points"][res["chosen"]]["label"] == "slow"
    assert rows["slow"].get("pareto") and rows["fast"].get("pareto")


def test_pareto_front() -> None:
    rows = [{"a": 1, "s": 1.0}, {"a": 2, "s": 2.0}, {"a": 2, "s": 1.5}, {"a": 3, "s": 2.0}]
    assert pareto_front(rows, {"a": "min", "s": "max"}) == [0, 1]


def test_preset_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    with pytest.raises(ConfigError, match="no such preset file"):
        preset(str(p))
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="not a JSON preset file"):
        preset(str(p))
    p.write_text(json.dumps({"config": {"lanes": 0}}))
    with pytest.raises(ConfigError, match=r"p.json: lanes must be in \[1, 256\], not 0"):
        preset(str(p))
    p.write_text(json.dumps({"config": {"lanez": 4}}))
    with pytest.raises(ConfigError, match="unknown parameter 'lanez'"):
        preset(str(p))


# ----------------------------------------------------------------- with synthesis (slow)
@pytest.mark.slow
@pytest.mark.synth
def test_synthesis_sweep_survives_a_worker_killed_mid_synthesis(tmp_path: Path,
                                                                cluster: str) -> None:
    """Four tiny cores synthesized (a few minutes); the first task's worker is killed 10 s
    into its synthesis. Area and fmax of every record are those of its synthesis report."""
    require_tool("sta")
    spec = load_spec(_spec(tmp_path, {
        "base": "tiny", "reference": "tiny", "knobs": {"lanes": [1, 2]},
        "synthesize": True, "synth_at": {"head_dim": 4, "max_keys": 16},
        "traces": ["traces/memn2n"]}))
    marker = tmp_path / "killed"

    def dies_in_synthesis(task: dict[str, Any], traces: Any, refs: Any) -> dict[str, Any]:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return evaluate_point(task, traces, refs)
        os.write(fd, task["key"].encode())
        os.close(fd)
        threading.Timer(10.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return evaluate_point(task, traces, refs)

    res = run_sweep(spec, tmp_path / "out", scheduler=cluster, build_dir=tmp_path / "b",
                    progress_bar=False, quiet=True, task_fn=dies_in_synthesis)
    assert marker.is_file()
    assert res["failures"] == [] and res["counts"]["computed"] == 4, res["failures"]
    reports = [json.loads(p.read_text())
               for p in (tmp_path / "b" / "synth").glob("*/report.json")]
    for rec in (json.loads(p.read_text()) for p in (tmp_path / "b" / "points").glob("*")):
        rep = [r for r in reports if {**r["config"], "name": ""} == {**rec["config"],
                                                                      "name": ""}]
        assert rep, rec["label"]
        assert rec["synth"]["fmax_mhz"] == rep[0]["sta"]["fmax_mhz"], rec["label"]
        assert rec["synth"]["area_um2"] == pytest.approx(
            rep[0]["synth"]["area_um2"] + rep[0]["synth"].get("macro_area_um2", 0.0))
    rows = {r["label"]: r for r in res["points"]}
    base, pt = rows["reference_baseline@nangate45"], rows["lanes=1@nangate45"]
    # with one trace family: speedup = (baseline cycles / fmax_b) / (cycles / fmax)
    want = float(np.exp(np.mean([np.log(base["cycles"][p] * pt["fmax_mhz"]
                                         / (c * base["fmax_mhz"]))
                                 for p, c in pt["cycles"].items()])))
    assert pt["wall_clock_speedup"] == pytest.approx(want, rel=1e-12)
    assert (tmp_path / "out" / "pareto.png").is_file()
