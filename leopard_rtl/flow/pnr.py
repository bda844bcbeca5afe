"""Place-and-route with qflow 1.3 (Debian) on the OSU 0.18 um library.

:func:`pnr_verilog` makes a qflow project in the output folder (``source/<top>.v``,
``project_vars.sh``) and runs, timing each step::

    qflow synthesize place route backanno migrate drc lvs -T osu018 <top>

then reports die area and utilization (from the routed DEF and the cell LEF), failed
routes (from qrouter's log; must be 0), post-route critical path and fmax (qflow's
vesta run with wire delays extracted from the layout), DRC errors (magic) and the LVS verdict
(netgen), and draws ``layout.png`` (:mod:`~leopard_rtl.flow.layout_png`).
Between ``route`` and ``backanno`` it repairs qrouter's ``<top>.rc`` for qflow's ``rc2dly``
(:mod:`~leopard_rtl.flow.qflow_rc`): a net whose RC tree is malformed becomes a lumped
(pessimistic) RC model, listed in the report's ``rc_repaired_nets``, and nets whose names
overflow ``rc2dly`` get a ``_q`` suffix for the timing run (``rc_renamed_nets``).
qflow synthesizes with its own Yosys (Debian 0.23), which reads Amaranth's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from ..errors import LeopardError
from ..progress import note, stage
from .layout_png import render_def
from .qflow_rc import rename_overflow_nets, sanitize_rc

__all__ = ["PnrError", "pnr_verilog", "pnr_unit", "collect_report", "sanitize_blif",
           "QFLOW_STEPS",
           "DEFAULT_UTILIZATION"]

TECH = Path("/usr/share/qflow/tech/osu018")
#: target utilization (percent) of ``pnr``: qflow's default (no initial density) packs the
#: tiny front end to ~94 % and left 1 DRC error and an open net (LVS mismatch) there; 75
#: gives 71 % with 0 DRC errors and LVS match, and routes faster than 60.
DEFAULT_UTILIZATION = 75.0
QFLOW_STEPS = ("synthesize", "place", "route", "backanno", "migrate", "drc", "lvs")


class PnrError(LeopardError):
    """qflow is missing, a step failed, or the layout is not clean."""


def _project_vars(clock_ns: float, utilization: float | None) -> str:
    lines = ["#!/usr/bin/tcsh -f", "# written by leopard_rtl.flow.pnr",
             f'set vesta_options = "--period {clock_ns * 1000:.0f} --summary reports --long"']
    if utilization is not None:
        lines.append(f"set initial_density = {utilization / 100:.3f}")
    return "\n".join(lines) + "\n"


def _read(p: Path) -> str:
    return p.read_text(errors="replace") if p.is_file() else ""


def parse_route(log: str) -> int | None:
    """Failed routes reported by qrouter (None if the log has no final line)."""
    if re.search(r"Final:\s*No failed routes", log):
        return 0
    m = re.findall(r"Final:\s*(\d+)\s+(?:failed|unrouted)", log)
    if m:
        return int(m[-1])
    m = re.findall(r"Failed net routes:\s*(\d+)", log)
    return int(m[-1]) if m else None


def parse_sta(log: str) -> dict[str, Any]:
    """Worst slack / critical path of qflow's OpenSTA log (times in ns)."""
    out: dict[str, Any] = {}
    slacks = [float(s) for s in re.findall(r"^\s*(-?[\d.]+)\s+slack \((?:MET|VIOLATED)\)",
                                           log, re.M)]
    arr = [float(s) for s in re.findall(r"^\s*(-?[\d.]+)\s+data arrival time", log, re.M)]
    if slacks:
        out["worst_slack_ns"] = min(slacks)
    if arr:
        out["critical_arrival_ns"] = max(arr)
    # qflow's vesta run with back-annotated (extracted) wire delays: register-to-register
    # paths first ("Slack =" with --period), then input-to-register paths.
    m = re.findall(r"Computed maximum clock frequency \(zero margin\) = ([\d.]+) MHz", log)
    if m:
        out["fmax_mhz"] = float(m[-1])
        out["critical_path_ns"] = round(1e3 / float(m[-1]), 4)
    first = re.search(r"Top \d+ maximum delay paths:(.*?)(?:Top \d+ minimum delay paths:|\Z)",
                      log, re.S)
    if first:
        paths = re.findall(r"^Path (.+?) delay ([\d.]+) ps(?:\s+Slack = (-?[\d.]+) ps)?",
                           first.group(1), re.M)
        if paths:
            out["critical_path"] = paths[0][0]
            out["critical_path_ns"] = out.get("critical_path_ns",
                                              round(float(paths[0][1]) / 1e3, 4))
            slacks = [float(p[2]) for p in paths if p[2]]
            if slacks:
                out["worst_slack_ns"] = round(min(slacks) / 1e3, 4)
    if out:
        out["tool"] = "vesta (wire delays extracted from the routed layout)"
    return out


def parse_drc(log: str) -> int | None:
    m = re.findall(r"[Tt]otal DRC errors found:\s*(\d+)", log)
    if m:
        return int(m[-1])
    m = re.findall(r"There are (\d+) DRC errors", log)
    if m:
        return int(m[-1])
    m = re.findall(r"^drc = (\d+)", log, re.M)
    if m:
        return int(m[-1])
    return 0 if re.search(r"No DRC errors found", log) else None


def parse_lvs(log: str) -> str:
    """netgen's verdict on the top cell: qflow's count_lvs.py total when present (0 errors:
    match), else netgen's own result line."""
    m = re.findall(r"^Total errors = (\d+)", log, re.M)
    if m:
        return "match" if int(m[-1]) == 0 else "mismatch"
    if re.search(r"[Nn]etlists do not match|Circuits do not match|\*\*\* MISMATCH", log):
        return "mismatch"
    if re.search(r"Circuits match uniquely|Final result: Circuits match", log):
        return "match"
    return "unknown"


def _run_step(cmd: list[str], cwd: Path, log: IO[str], timeout: float) -> int | None:
    """Run one qflow step in its own process group; its exit status, or None (and the whole
    group killed: qflow's tcsh scripts leave graywolf/qrouter/magic running otherwise, and
    an orphan writing the layout would corrupt the next run in the same folder) when it
    runs past ``timeout`` seconds."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.returncode is None:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


#: Net names qflow 1.3's netlist tools misread: blif2BSpice and blif2Verilog take a line
#: holding ``.end``, ``.gate``, ``.model``, ... *anywhere* (``strstr``) for that BLIF
#: directive, and annotate.tcl (adding the fill cells to the LVS netlist) ends the
#: subcircuit at any line matching ``.ends`` unanchored and case-blind. Yosys's flatten
#: makes such names from a submodule's signals (``lanes.ending`` cut the LVS netlist
#: after 963 of 6,469 cells).
_UNSAFE_NET = re.compile(r"(?i)\.(?:model|end|inputs|outputs|gate|subckt|names|latch|exdc)"
                         r"|ends|endmodule")
#: BLIF lines whose tokens after the keyword are net names (``PIN=NET`` on gate lines).
_NET_LINES = (".inputs", ".outputs", ".names", ".latch", ".conn")
_GATE_LINES = (".gate", ".subckt")


def _blif_nets(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """``(line, token, prefix, net)`` of every net reference in a BLIF netlist."""
    out: list[tuple[int, int, str, str]] = []
    kind: str | None = None
    cont = False
    for i, line in enumerate(lines):
        toks = line.split()
        if cont:
            first = 0                                   # continues the previous line
        else:
            kind = toks[0] if toks and toks[0] in _NET_LINES + _GATE_LINES else None
            first = 1 if kind in _NET_LINES else 2
        cont = line.rstrip().endswith("\\")
        if kind is None:
            continue
        for j, tok in enumerate(toks[first:], first):
            if tok == "\\":
                continue
            if kind in _GATE_LINES:
                pin, sep, net = tok.partition("=")
                if sep:
                    out.append((i, j, pin + "=", net))
            else:
                out.append((i, j, "", tok))
    return out


def sanitize_blif(path: Path) -> dict[str, str]:
    """Rename, in place, the nets of the BLIF netlist ``path`` that qflow's tools misread
    (see ``_UNSAFE_NET``): dots become ``_`` (as blif2Verilog writes them anyway) and
    ``ends``/``endmodule`` get an ``_`` after ``end``; a clash with an existing name gets
    ``_q<N>``. Returns the renames (old name: new name)."""
    lines = path.read_text().split("\n")
    refs = _blif_nets(lines)
    names = {net for *_, net in refs}
    renames: dict[str, str] = {}
    for net in sorted(names):
        if not _UNSAFE_NET.search(net):
            continue
        new = re.sub(r"(?i)(end)(s|module)", r"\1_\2", net.replace(".", "_"))
        base, n = new, 0
        while new in names or new in renames.values():
            n += 1
            new = f"{base}_q{n}"
        renames[net] = new
    if renames:
        rows: dict[int, list[str]] = {}
        for i, j, prefix, net in refs:
            if net in renames:
                toks = rows.setdefault(i, lines[i].split())
                toks[j] = prefix + renames[net]
        for i, toks in rows.items():
            lines[i] = " ".join(toks)
        path.write_text("\n".join(lines))
    return renames


def _check_utilization(utilization: float | None) -> None:
    if utilization is not None and not 5 <= utilization <= 90:
        raise PnrError(f"--utilization must be in [5, 90] percent (qflow cannot route "
                       f"denser placements), not {utilization}")


def pnr_verilog(verilog: Path, top: str, out_dir: Path, *, clock_ns: float = 10.0,
                utilization: float | None = DEFAULT_UTILIZATION,
                timeout: float = 1800) -> dict[str, Any]:
    """Place and route ``top`` of ``verilog`` with qflow in ``out_dir``; the report."""
    exe = shutil.which("qflow")
    if exe is None or not TECH.is_dir():
        raise PnrError("qflow or its osu018 technology is missing; apt-get install qflow")
    _check_utilization(utilization)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "source").mkdir(exist_ok=True)
    shutil.copyfile(verilog, out_dir / "source" / f"{top}.v")
    (out_dir / "project_vars.sh").write_text(_project_vars(clock_ns, utilization))
    logdir = out_dir / "log"
    seconds: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    for step in QFLOW_STEPS:
        t0 = time.monotonic()
        left = deadline - t0
        if left <= 0:
            raise PnrError(f"qflow ran out of time (--timeout {timeout:.0f} s) before {step}")
        with open(out_dir / f"qflow_{step}.out", "w") as fh, \
                stage(f"pnr: qflow {step} {top}"):
            returncode = _run_step([exe, step, "-T", "osu018", top], out_dir, fh, left)
            if returncode is None:
                raise PnrError(f"qflow {step} ran past --timeout {timeout:.0f} s "
                               f"(log: {out_dir / f'qflow_{step}.out'})")
        seconds[step] = round(time.monotonic() - t0, 1)
        out = _read(out_dir / f"qflow_{step}.out")
        if step == "route":
            failed = parse_route(_read(logdir / "route.log") + out)
            if failed is None or failed > 0:
                raise PnrError(f"routing failed: {failed if failed is not None else '?'} "
                               f"failed routes at utilization "
                               f"{utilization if utilization else 'default'}% "
                               f"(lower --utilization; log: {logdir / 'route.log'})")
        if returncode != 0 and step in ("synthesize", "place", "route", "migrate"):
            raise PnrError(f"qflow {step} failed with status {returncode} "
                           f"(log: {out_dir / f'qflow_{step}.out'})")
        if step == "route":
            _repair_rc(out_dir, top)
        if step == "backanno":
            _restore_netlist(out_dir, top)
        if step == "synthesize":
            # Before placement, which makes every later netlist from this BLIF.
            renames = sanitize_blif(out_dir / f"{top}.blif")
            (out_dir / "renamed_nets.json").write_text(json.dumps(renames, indent=2) + "\n")
    return collect_report(out_dir, top, clock_ns, seconds)


def _project_file(out_dir: Path, sub: str, name: str) -> Path:
    """``out_dir/sub/name`` if qflow made that folder, else ``out_dir/name``."""
    p = out_dir / sub / name
    return p if p.is_file() else out_dir / name


def _repair_rc(out_dir: Path, top: str) -> None:
    """Make qrouter's ``<top>.rc`` readable by ``rc2dly`` (run by ``qflow backanno``):
    malformed nets become lumped RC models, names that overflow ``rc2dly`` get a suffix
    (also in the vesta netlist, restored after backanno by :func:`_restore_netlist`).
    Both lists go to ``rc_repair.json`` for the report."""
    rc = _project_file(out_dir, "layout", f"{top}.rc")
    if not rc.is_file():
        raise PnrError(f"qrouter wrote no delay file {rc.name} in {out_dir}")
    try:
        repaired = sanitize_rc(rc, _project_file(out_dir, "layout", f"{top}.def"))
        vlog = _project_file(out_dir, "synthesis", f"{top}.rtlnopwr.v")
        keep = vlog.with_name(vlog.name + ".orig")
        shutil.copyfile(vlog, keep)
        renamed = rename_overflow_nets(rc, vlog)
    except ValueError as e:
        raise PnrError(f"cannot repair {rc}: {e}") from e
    for r in repaired:
        note(f"pnr: qrouter's RC tree of net {r['net']} is malformed ({r['reason']}): "
             f"its wire delay is a lumped, pessimistic estimate (rc_repaired_nets)")
    (out_dir / "rc_repair.json").write_text(json.dumps(
        {"rc_repaired_nets": repaired, "rc_renamed_nets": renamed}, indent=2) + "\n")


def _restore_netlist(out_dir: Path, top: str) -> None:
    """Put back the vesta netlist :func:`_repair_rc` renamed nets in."""
    vlog = _project_file(out_dir, "synthesis", f"{top}.rtlnopwr.v")
    keep = vlog.with_name(vlog.name + ".orig")
    if keep.is_file():
        shutil.move(keep, vlog)


def collect_report(out_dir: Path, top: str, clock_ns: float,
                   seconds: dict[str, float]) -> dict[str, Any]:
    """Read a finished qflow project in ``out_dir``: the P&R report (also written) and the
    layout picture."""
    logdir = out_dir / "log"
    def_path = out_dir / "layout" / f"{top}.def"
    if not def_path.is_file():
        def_path = out_dir / f"{top}.def"
    if not def_path.is_file():
        raise PnrError(f"no routed DEF found for {top} in {out_dir}")
    pic = render_def(def_path, [TECH / "osu018_stdcells.lef"], out_dir / "layout.png")
    route_log = _read(logdir / "route.log") + _read(out_dir / "qflow_route.out")
    sta = parse_sta(_read(logdir / "post_sta.log") or _read(out_dir / "qflow_backanno.out"))
    rc = _read(out_dir / f"{top}.rc")
    repair = json.loads(_read(out_dir / "rc_repair.json") or "{}")
    if "fmax_mhz" not in sta and "worst_slack_ns" not in sta and re.search(r"\bERROR\b", rc):
        # qrouter's delay writer lost a net's route tree and rc2dly then aborts: no
        # post-route timing (say so rather than leave an empty result).
        nets = re.findall(r"^(\S+) .*\bERROR\b", rc, re.M)
        sta["error"] = (f"qrouter wrote an unwalkable RC tree for net(s) {', '.join(nets)} "
                        f"in {top}.rc (rc2dly aborts on it): no post-route timing")
    fmax = sta.get("fmax_mhz")
    if fmax is None and "worst_slack_ns" in sta and clock_ns - sta["worst_slack_ns"] > 0:
        fmax = round(1e3 / (clock_ns - sta["worst_slack_ns"]), 2)
    drc = parse_drc(_read(logdir / "drc.log") + _read(out_dir / "qflow_drc.out"))
    lvs = parse_lvs(_read(logdir / "lvs.log") + _read(out_dir / "qflow_lvs.out")
                    + _read(out_dir / f"{top}_comp.out") + _read(out_dir / "comp.out"))
    report = {"top": top, "pdk": "osu018", "clock_ns": clock_ns,
              "die_area_um2": round(pic["die_area_um2"], 1),
              "die_um": [pic["die_width_um"], pic["die_height_um"]],
              "cells": pic["cells"], "cell_area_um2": round(pic["cell_area_um2"], 1),
              "utilization": round(pic["cell_area_um2"] / pic["die_area_um2"], 4),
              "failed_routes": parse_route(route_log),
              "post_route_sta": sta, "post_route_fmax_mhz": fmax,
              "drc_errors": drc, "lvs": lvs,
              "def": str(def_path), "layout_png": str(out_dir / "layout.png"),
              "renamed_nets": json.loads(_read(out_dir / "renamed_nets.json") or "{}"),
              # Nets whose wire delay is a lumped (pessimistic) estimate: qrouter's RC
              # tree for them was malformed (see leopard_rtl.flow.qflow_rc).
              "rc_repaired_nets": repair.get("rc_repaired_nets", []),
              "rc_renamed_nets": repair.get("rc_renamed_nets", {}),
              "seconds": seconds, "seconds_total": round(sum(seconds.values()), 1)}
    (out_dir / "pnr_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def pnr_unit(unit: str | None, cfg: Any, out_dir: Path, *, clock_ns: float | None = None,
             utilization: float | None = DEFAULT_UTILIZATION,
             timeout: float = 1800) -> dict[str, Any]:
    """Emit ``unit`` for ``cfg`` and place-and-route it (see :func:`pnr_verilog`)."""
    from .run import default_unit, emit_unit
    _check_utilization(utilization)
    unit = unit or default_unit(cfg)
    verilog, top, _ = emit_unit(unit, cfg, out_dir / "rtl")
    rep = pnr_verilog(verilog, top, out_dir, clock_ns=clock_ns or 10.0,
                      utilization=utilization, timeout=timeout)
    rep.update({"unit": unit, "preset": cfg.name})
    (out_dir / "pnr_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    return rep
