"""Design-space exploration on Dask: ``leopard-rtl sweep --spec S`` (docs/EVALUATION.md).

* **Tasks.** Each design point of the spec (:mod:`leopard_rtl.eval.spec`) is one Dask task,
  :func:`evaluate_point`: synthesis of the point's core at ``synth_at`` (Yosys + OpenSTA,
  :func:`leopard_rtl.flow.run.synth_unit` through the netlist cache of
  :func:`leopard_rtl.eval.energy.synth_cached`: area, fmax, power) and the cycle model on
  every trace (at the trace's size, requantized to the point's widths), with the output
  error against float attention over the reference design's survivors. Its inputs are the
  configurations and the traces, its result a small JSON record. Traces travel as the
  bytes of their files inside the graph (a task per trace), and each trace's reference
  output is one task too, so a worker that dies holding them costs a recomputation,
  never a lost input, and workers need no shared file system.
* **Cluster.** A local cluster (one single-threaded worker process per core, or
  ``--workers N``) unless ``--scheduler tcp://host:port`` names a running one. Dask's
  text progress bar runs while the results are collected (on stderr).
* **Results persist as they complete.** The client writes each record the moment its task
  finishes to ``<build>/points/<key>.json`` (written whole, then renamed), the key a
  SHA-256 of the point's configurations, library, the generator's and the flow's source
  fingerprints, the tool versions and the traces' bytes. The cache is **returned to the
  client**, not written by the workers into a shared directory: remote workers need no
  common file system with the client, one writer means no two processes race on a
  record, and a worker killed mid-task cannot leave a half-written one. An interrupted
  sweep resumes where it stopped; a repeated one computes nothing. (Netlists stay in each
  worker's ``<build>/synth``: on a local cluster the workers share it.)
* **Faults.** A worker that dies mid-task has its task rescheduled by the scheduler
  (``distributed.scheduler.allowed-failures`` times); finished records are already on
  disk. A task that raises, or dies too often, is listed with its reason in ``failures``
  of ``sweep.json``, and the command exits 1 after writing everything else.
* **Objectives** (:func:`objectives`): wall-clock speedup over the reference preset's
  baseline (cycles x each design's own clock period, ``1/fmax`` from its synthesis;
  geometric mean over the traces), area (relative to the reference design: ``<= 1`` is
  iso-area), energy per head (``P x clock period at the synthesis clock x cycles per
  head``, the method of :mod:`leopard_rtl.eval.energy` at the synthesis report's uniform
  activity), output error (mean |output - float attention| in V LSBs). The Pareto front of
  area against wall-clock speedup is plotted (``pareto.png``); the chosen design (fastest
  in wall clock within ``choose``) is written as a preset file ``chosen_preset.json``
  that every ``--preset`` accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace as dc_replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from sim.golden import attention_float, run_golden
from sim.trace import Trace, load_trace

from ..config import LeopardConfig
from ..paths import atomic_write
from .common import REPO, EvaluationError, progress, rel
from .dse_report import markdown, objectives, pareto_front, plot, write_preset
from .spec import DesignPoint, SweepSpec, load_spec

__all__ = ["RECORD_VERSION", "point_key", "evaluate_point", "run_sweep", "objectives",
           "dask_client", "pareto_front", "main_dse", "DEFAULT_SPEC"]

#: Bumped when a record's meaning changes (old records are then recomputed).
RECORD_VERSION = 1
#: The spec ``leopard-rtl sweep`` runs without ``--spec`` (shipped in the package).
DEFAULT_SPEC = Path(str(files("leopard_rtl.constraints"))) / "sweeps" / "default.yaml"


# ------------------------------------------------------------------------ keys
def tool_versions(synthesize: bool) -> dict[str, str]:
    """Versions of every tool a record depends on (Python packages; OpenSTA if synthesizing)."""
    import shutil
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    from ..emit import tool_versions as emit_versions

    out = dict(emit_versions())
    if synthesize:
        try:
            out["pyosys"] = version("pyosys")
        except PackageNotFoundError:
            out["pyosys"] = "not installed"
        sta = shutil.which("sta")
        out["opensta"] = (subprocess.run([sta, "-version"], capture_output=True, text=True,
                                         timeout=60).stdout.strip() if sta else "not installed")
    return out


def _model_fingerprint() -> str:
    """SHA-256 of the model sources a record's cycles and errors come from."""
    here = Path(__file__).resolve().parent
    srcs = sorted((here.parents[1] / "sim").glob("*.py")) + [here / "inputs.py"]
    h = hashlib.sha256()
    for p in srcs:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def point_key(pt: DesignPoint, spec: SweepSpec, context: dict[str, Any]) -> str:
    """Cache key of ``pt``: its configurations, library and ``context`` (see :func:`_context`)."""
    from ..emit import fingerprint

    data = [RECORD_VERSION, pt.role, pt.pdk, spec.synthesize,
            pt.synth_config.to_dict(),
            {str(d): c.to_dict() for d, c in sorted(pt.trace_configs.items())},
            fingerprint("core", pt.synth_config), context]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]


def _context(spec: SweepSpec) -> dict[str, Any]:
    """What every key shares: tools, flow and model sources, the traces' bytes, reference."""
    ctx: dict[str, Any] = {"tools": tool_versions(spec.synthesize),
                           "model": _model_fingerprint(),
                           "traces": sorted(_file_digest(p) for p in spec.trace_paths),
                           "reference": spec.reference}
    if spec.synthesize:
        from ..flow.run import flow_fingerprint
        ctx["flow"] = flow_fingerprint()
    return ctx


# ------------------------------------------------------------------------ worker side
def load_trace_bytes(name: str, data: bytes) -> Trace:
    """A trace from the bytes of its ``.npz`` file (``name`` for error messages)."""
    with tempfile.TemporaryDirectory(prefix="leopard-dse-") as tmp:
        p = Path(tmp) / Path(name).name
        p.write_bytes(data)
        t = load_trace(p)
    return dc_replace(t, source=name)


def reference_output(trace: Trace, ref_cfg: dict[str, Any]) -> np.ndarray:
    """Float attention of ``trace`` over the survivors of the reference design ``ref_cfg``.

    A point's error against it isolates what the point's widths change (quantization, the
    prune set that follows, the back end's fixed point) from the pruning every point shares.
    """
    cfg = LeopardConfig.from_dict(ref_cfg)
    mask = run_golden(trace, cfg).mask
    return attention_float(trace.q, trace.k, trace.v, trace.scale_q, trace.scale_k, mask)


def evaluate_point(task: dict[str, Any], traces: dict[str, Trace],
                   refs: dict[str, np.ndarray]) -> dict[str, Any]:
    """One design point (a Dask task): synthesis (if asked) and the model on every trace.

    Parameters
    ----------
    task : dict
        ``key``, ``label``, ``role``, ``pdk``, ``knobs``, ``synthesize``, ``build_dir``,
        ``synth_config`` (a config dict) and ``trace_configs`` (head_dim -> config dict).
    traces : dict
        Trace path -> :class:`sim.trace.Trace` (the original widths).
    refs : dict
        Trace path -> reference output (:func:`reference_output`).

    Returns
    -------
    dict
        The record: the task's fields, ``synth`` (``area_um2`` including macros,
        ``fmax_mhz``, ``power_w``, ``clock_ns``, ``cached``) or None, ``traces`` (path ->
        ``cycles``, ``heads``, ``error_v_lsb``), ``tools``, ``worker`` and ``seconds``
        (wall: ``synth``, ``model``, ``total``; ``cpu``: CPU seconds of the worker and of
        the tools it ran).
    """
    from .inputs import requantize

    t0 = time.monotonic()
    cpu0 = _cpu_seconds()
    rec: dict[str, Any] = {k: task[k] for k in ("key", "label", "role", "pdk", "knobs")}
    rec["config"] = task["synth_config"]
    rec["tools"] = tool_versions(task["synthesize"])
    rec["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    rec["synth"] = None
    if task["synthesize"]:
        from .energy import synth_cached
        cfg = LeopardConfig.from_dict(task["synth_config"])
        rep, cached, _ = synth_cached("core", cfg, task["pdk"],
                                      Path(task["build_dir"]) / "synth", quiet=True)
        syn, sta = rep["synth"], rep["sta"]
        rec["synth"] = {"area_um2": float(syn["area_um2"]) + float(syn.get("macro_area_um2",
                                                                             0.0)),
                        "fmax_mhz": float(sta["fmax_mhz"]),
                        "power_w": float(sta["power_w"]["total"]),
                        "clock_ns": float(rep["clock_ns"]), "cached": cached}
    t1 = time.monotonic()
    out: dict[str, Any] = {}
    for path, t in traces.items():
        cfg = LeopardConfig.from_dict(task["trace_configs"][str(t.head_dim)])
        tq = requantize(t, cfg.qk_bits, cfg.v_bits)
        g = run_golden(tq, cfg)
        # outputs in the original trace's V LSBs
        o = g.out.astype(np.float64) * 2.0 ** (t.v_bits - cfg.v_bits)
        out[path] = {"cycles": int(g.cycles.sum()), "heads": int(t.heads),
                     "error_v_lsb": float(np.mean(np.abs(o - refs[path])))}
    rec["traces"] = out
    rec["seconds"] = {"synth": round(t1 - t0, 3), "model": round(time.monotonic() - t1, 3),
                      "total": round(time.monotonic() - t0, 3),
                      "cpu": round(_cpu_seconds() - cpu0, 3)}
    return rec


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (Yosys, OpenSTA) so far: a
    point's cost independent of how busy the machine was."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# ------------------------------------------------------------------------ client side
class _Cache:
    """One JSON record per key under ``root`` (written whole, then renamed into place)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None                     # unreadable: recompute it
        return rec if isinstance(rec, dict) and rec.get("key") == key else None

    def put(self, rec: dict[str, Any]) -> None:
        atomic_write(self.path(rec["key"]), json.dumps(rec, indent=1) + "\n")


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A Dask client on ``scheduler``, or on a new local cluster of ``workers``
    single-threaded worker processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise EvaluationError(f"--scheduler {scheduler}: cannot connect ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    # ":0": the scheduler's HTTP server on a free port (8787 may be another cluster's)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


def _collect(client: Any, futs: dict[Any, DesignPoint], cache: _Cache,
             expected_tools: dict[str, str], done: list[dict[str, Any]],
             failures: list[dict[str, str]], on_record: Callable[[dict[str, Any]], None] | None,
             errors: list[BaseException]) -> None:
    """Write each finished record to ``cache`` as it arrives (runs in a thread)."""
    from distributed import as_completed

    try:
        for fut in as_completed(list(futs)):
            pt = futs[fut]
            try:
                # waits if the result was lost with its worker since (it is recomputed)
                rec = fut.result()
            except Exception as exc:        # the task raised, or killed workers too often
                msg = (str(exc).splitlines() or [""])[0]
                failures.append({"point": pt.label, "error": f"{type(exc).__name__}: {msg}"})
                continue
            if rec.get("tools") != expected_tools:
                failures.append({"point": pt.label, "error": f"worker {rec.get('worker')} "
                                 f"runs other tool versions: {rec.get('tools')}"})
                continue
            cache.put(rec)
            done.append(rec)
            if on_record is not None:
                on_record(rec)
    except BaseException as e:  # re-raised by the caller's thread
        errors.append(e)
        client.cancel(list(futs))


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, build_dir: str | Path | None = None,
              progress_bar: bool = True, plots: bool = True, quiet: bool = False,
              task_fn: Callable[..., dict[str, Any]] = evaluate_point,
              on_record: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep ``spec`` on Dask; write the results into ``out_dir``.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`leopard_rtl.eval.spec.load_spec`.
    out_dir : path
        Receives ``sweep.json``, ``sweep.md``, ``pareto.png`` (with synthesis) and
        ``chosen_preset.json``.
    scheduler : str, optional
        Address of a running Dask scheduler; default a local cluster.
    workers : int, optional
        Worker processes of the local cluster (default: the machine's cores).
    build_dir : path, optional
        Record cache (``points/``) and netlists (``synth/``); default ``build/dse``.
    progress_bar : bool
        Dask's text progress bar (on stderr).
    task_fn : callable
        The task run per point (default :func:`evaluate_point`; same signature).
    on_record : callable, optional
        Called in the client with each record as it is persisted.

    Returns
    -------
    dict
        What ``sweep.json`` holds: every point's record and objectives, the Pareto front,
        the chosen point, ``failures``, counts and seconds.
    """
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    build = Path(build_dir) if build_dir else REPO / "build" / "dse"
    cache = _Cache(build / "points")
    ctx = _context(spec)
    keyed = [(point_key(pt, spec, ctx), pt) for pt in spec.points]
    records: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, DesignPoint]] = []
    for key, pt in keyed:
        rec = cache.get(key)
        if rec is None:
            todo.append((key, pt))
        else:
            records[key] = rec
    progress(f"[sweep] {len(keyed)} design points ({len(spec.dropped)} dropped), "
             f"{len(records)} cached, {len(todo)} to run", quiet)
    failures: list[dict[str, str]] = []
    computed: list[dict[str, Any]] = []
    t_run = time.monotonic()
    if todo:
        with dask_client(scheduler, workers) as client:
            n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
            progress(f"[sweep] Dask scheduler {client.scheduler.address}, {n_workers} "
                     "workers", quiet)
            trace_futs = {}
            ref_futs = {}
            ref_cfgs = next(pt for pt in spec.points if pt.role == "reference").trace_configs
            for p in spec.trace_paths:
                name = rel(p)
                data = Path(p).read_bytes()
                dig = hashlib.sha256(data).hexdigest()[:16]
                tf = client.submit(load_trace_bytes, name, data, key=f"trace-{dig}")
                trace_futs[name] = tf
                # the reference configuration follows the trace's size (known once loaded)
                ref_futs[name] = client.submit(
                    _reference_for, tf, {str(d): c.to_dict() for d, c in ref_cfgs.items()},
                    key=f"ref-{dig}")
            futs = {}
            run_id = uuid.uuid4().hex[:8]
            for key, pt in todo:
                task = {"key": key, "label": pt.label, "role": pt.role, "pdk": pt.pdk,
                        "knobs": pt.knobs, "synthesize": spec.synthesize,
                        "build_dir": str(build.resolve()),
                        "synth_config": pt.synth_config.to_dict(),
                        "trace_configs": {str(d): c.to_dict()
                                          for d, c in pt.trace_configs.items()}}
                # a key of this run only: another client's task of the same point (with
                # another task_fn) is not this one's result
                futs[client.submit(task_fn, task, trace_futs, ref_futs,
                                   key=f"point-{key}-{run_id}")] = pt
            errors: list[BaseException] = []
            th = threading.Thread(target=_collect, args=(client, futs, cache, ctx["tools"],
                                                         computed, failures, on_record,
                                                         errors), daemon=True)
            th.start()
            try:
                if progress_bar and not quiet:
                    from distributed.diagnostics.progressbar import progress as dask_progress
                    with contextlib.redirect_stdout(sys.stderr):
                        dask_progress(list(futs))
                    print(file=sys.stderr)
                th.join()
            except KeyboardInterrupt:
                progress(f"[sweep] interrupted: {len(computed)} records of this run kept in "
                         f"{cache.root} ({len(records) + len(computed)} of {len(keyed)} "
                         "done); the same command resumes", quiet)
                raise
            finally:
                if th.is_alive():
                    client.cancel(list(futs))
                    th.join(timeout=10)
            if errors:
                raise errors[0]
    run_s = time.monotonic() - t_run
    for rec in computed:
        records[rec["key"]] = rec
    res = objectives(spec, [records[k] for k, _ in keyed if k in records])
    cpu = [r["seconds"]["cpu"] for r in computed
           if not (r["synth"] or {}).get("cached") and "cpu" in r["seconds"]]
    res.update({"command": "leopard-rtl sweep", "spec": spec.to_dict(),
                "dropped": spec.dropped, "failures": failures,
                "counts": {"points": len(keyed), "cached": len(keyed) - len(todo),
                           "computed": len(computed), "failed": len(failures)},
                "seconds": {"run": round(run_s, 2), "total": round(time.monotonic() - t0, 2),
                            "per_point_mean": (round(float(np.mean(
                                [r["seconds"]["total"] for r in computed])), 3)
                                if computed else None),
                            # points whose netlist came from the synthesis cache excluded
                            "per_point_cpu_mean": (round(float(np.mean(cpu)), 3)
                                                   if cpu else None)},
                "workers": (workers or os.cpu_count()) if not scheduler else scheduler})
    if plots and res.get("points") and all(p.get("area_rel") is not None
                                           for p in res["points"]):
        import importlib.util
        if importlib.util.find_spec("matplotlib") is not None:
            res["plot"] = plot(res, out_dir / "pareto.png")
    if res.get("chosen") is not None:
        res["chosen_preset"] = write_preset(spec, res, out_dir / "chosen_preset.json")
    (out_dir / "sweep.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "sweep.md").write_text(markdown(res))
    return res


def _reference_for(trace: Trace, ref_cfgs: dict[str, dict[str, Any]]) -> np.ndarray:
    """:func:`reference_output` at the reference configuration of ``trace``'s size."""
    return reference_output(trace, ref_cfgs[str(trace.head_dim)])


def main_dse(args: Any) -> int:
    """``leopard-rtl sweep`` (registered by :mod:`leopard_rtl.cli.eval`)."""
    if args.workers is not None and args.workers < 1:
        raise EvaluationError(f"--workers must be at least 1, not {args.workers}")
    spec = load_spec(args.spec or DEFAULT_SPEC)
    if args.no_synth:
        spec.synthesize = False
    try:
        res = run_sweep(spec, args.out, scheduler=args.scheduler, workers=args.workers,
                        build_dir=args.build_dir, progress_bar=not args.no_progress)
    except KeyboardInterrupt:
        return 130                          # what was kept is reported on stderr
    chosen = res["points"][res["chosen"]] if res["chosen"] is not None else None
    print(json.dumps({"counts": res["counts"], "seconds": res["seconds"],
                      "failures": res["failures"],
                      "chosen": chosen and {k: chosen[k] for k in (
                          "label", "wall_clock_speedup", "cycle_speedup", "area_rel",
                          "energy_reduction", "error_v_lsb")},
                      "chosen_preset": res.get("chosen_preset"),
                      "report": str(Path(args.out) / "sweep.md")}))
    return 1 if res["failures"] else 0
