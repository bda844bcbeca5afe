"""Static timing and power analysis with OpenSTA (Debian ``sta`` 2.0.17).

:func:`run_sta` reads the liberty files and the synthesized netlist, applies the project's
generic constraints (``constraints/leopard.sdc``: clock on ``clk``, ``clk_io_pct`` of the
period budgeted outside the block on every input and output), and reports

* the critical (setup) path: start point, end point, data arrival, slack;
* worst negative slack and total negative slack;
* fmax = 1 / (period - worst slack) (the clock the worst path would just meet with the
  same I/O budgets; for register-to-register paths this is exact);
* power (internal, switching, leakage, total, in W) at that period with the activity
  given: either a global default (``-global`` activity, transitions per clock cycle, on
  every unannotated input and register output, propagated through the logic by OpenSTA)
  or per-pin activities from simulation (see :mod:`leopard_rtl.flow.power`).

Times in the report are ns (converted from the liberty's unit).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import LeopardError
from ..progress import stage
from .pdk import Pdk

__all__ = ["StaResult", "StaError", "run_sta", "sta_script", "SDC_TEMPLATE"]

SDC_TEMPLATE = Path(str(files("leopard_rtl.constraints"))) / "leopard.sdc"


class StaError(LeopardError):
    """OpenSTA is missing or failed; the message names the log."""


@dataclass
class StaResult:
    """Parsed OpenSTA results (times in ns, power in W)."""

    period_ns: float
    wns_ns: float
    tns_ns: float | None        #: None when OpenSTA reports a non-finite TNS
    worst_slack_ns: float
    fmax_mhz: float
    critical_path: dict[str, Any]
    power_w: dict[str, float]
    activity: dict[str, Any]
    seconds: float = 0.0
    report: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"period_ns": self.period_ns, "wns_ns": self.wns_ns, "tns_ns": self.tns_ns,
                "worst_slack_ns": self.worst_slack_ns, "fmax_mhz": round(self.fmax_mhz, 3),
                "critical_path": self.critical_path, "power_w": self.power_w,
                "activity": self.activity, "seconds": round(self.seconds, 2),
                "report": str(self.report) if self.report else None, **self.extra}


def _tcl_list(paths: list[Path]) -> str:
    return " ".join("{" + str(p) + "}" for p in paths)


def sta_script(netlist: Path, top: str, pdk: Pdk, *, clock_ns: float, io_pct: float = 0.2,
               global_activity: float = 0.1, activity_tcl: Path | None = None) -> str:
    """The OpenSTA command file text."""
    period = pdk.to_lib_time(clock_ns)
    lines = [f"read_liberty {{{p}}}" for p in pdk.liberty]
    lines += [f"read_verilog {{{netlist}}}", f"link_design {top}",
              "set clk_port_name clk", f"set clk_period {period:.6g}",
              f"set clk_io_pct {io_pct}", f"source {{{SDC_TEMPLATE}}}",
              f"set_power_activity -input -activity {global_activity} -duty 0.5"]
    if activity_tcl is None:
        # Every pin switches global_activity times per cycle (no propagation).
        lines.append(f"set_power_activity -global -activity {global_activity} -duty 0.5")
    else:
        # No -global: OpenSTA then ignores per-pin activities. Annotated register outputs
        # and inputs are propagated through the logic (and unannotated registers from
        # their D inputs).
        lines.append(f"source {{{activity_tcl}}}")
    lines += ['puts "@@WNS [sta::worst_slack_cmd max]"',
              "puts \"@@TNS [sta::total_negative_slack_cmd max]\"",
              "report_checks -path_delay max -group_count 1 -fields {fanout} -digits 4",
              'puts "@@POWER_BEGIN"', "report_power -digits 6", 'puts "@@POWER_END"']
    return "\n".join(lines) + "\n"


def parse_power(text: str) -> dict[str, float]:
    """The Total row of ``report_power`` (W)."""
    m = re.search(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if not m:
        raise StaError("no Total line in report_power output")
    names = ("internal", "switching", "leakage", "total")
    out = {n: float(v) for n, v in zip(names, m.groups(), strict=True)}
    for group in ("Sequential", "Combinational", "Macro", "Pad", "Clock"):
        g = re.search(rf"^{group}\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
        if g:
            out[group.lower()] = float(g.group(4))
    return out


def parse_path(text: str, pdk: Pdk) -> dict[str, Any]:
    """Start point, end point, arrival and slack of the first ``report_checks`` path."""
    out: dict[str, Any] = {}
    m = re.search(r"^Startpoint:\s*(.+)$", text, re.M)
    if m:
        out["startpoint"] = m.group(1).strip()
    m = re.search(r"^Endpoint:\s*(.+)$", text, re.M)
    if m:
        out["endpoint"] = m.group(1).strip()
    m = re.search(r"^\s*(-?[\d.]+)\s+data arrival time", text, re.M)
    if m:
        out["arrival_ns"] = round(pdk.from_lib_time(float(m.group(1))), 4)
    m = re.search(r"^\s*(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", text, re.M)
    if m:
        out["slack_ns"] = round(pdk.from_lib_time(float(m.group(1))), 4)
        out["status"] = m.group(2)
    cells = re.findall(r"\s[v^]\s+\S+\s+\((\w+)\)", text)
    out["depth_cells"] = len([c for c in cells if c not in ("in", "out")])
    return out


def run_sta(netlist: Path, top: str, pdk: Pdk, out_dir: Path, *, clock_ns: float,
            io_pct: float = 0.2, global_activity: float = 0.1,
            activity_tcl: Path | None = None, tag: str = "sta",
            timeout: float = 3600) -> StaResult:
    """Run OpenSTA on ``netlist`` and parse its reports (see the module docstring)."""
    exe = shutil.which("sta")
    if exe is None:
        raise StaError("OpenSTA (`sta`) not found on PATH; install Debian's opensta "
                       "(apt-get install opensta)")
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / f"{tag}.tcl"
    script.write_text(sta_script(netlist, top, pdk, clock_ns=clock_ns, io_pct=io_pct,
                                 global_activity=global_activity, activity_tcl=activity_tcl))
    report = out_dir / f"{tag}.log"
    t0 = time.monotonic()
    with stage(f"sta: OpenSTA {top} on {pdk.name} ({tag})"):
        proc = subprocess.run([exe, "-no_splash", "-exit", str(script)], capture_output=True,
                              text=True, timeout=timeout)
    secs = time.monotonic() - t0
    text = proc.stdout + proc.stderr
    report.write_text(text)
    err = re.search(r"^Error:?.*$", text, re.M)
    if proc.returncode != 0 or err or "@@WNS" not in text:
        what = err.group(0) if err else f"exit status {proc.returncode}"
        raise StaError(f"OpenSTA failed: {what} (log: {report})")
    ws = float(re.search(r"^@@WNS (\S+)", text, re.M).group(1))
    tns = float(re.search(r"^@@TNS (\S+)", text, re.M).group(1))
    path = parse_path(text, pdk)
    if "slack_ns" not in path:
        raise StaError(f"OpenSTA found no constrained path (log: {report})")
    # worst_slack_cmd clips at 0 in this version: the worst path's slack is the report's.
    # It also returns -inf for some sky130hd netlists whose worst reported path is finite
    # (minilm front end): then the reported path is the worst one.
    if not math.isfinite(ws):
        ws_ns = path["slack_ns"]
    else:
        ws_ns = min(pdk.from_lib_time(ws), path["slack_ns"]) if ws < 0 else path["slack_ns"]
    period = clock_ns
    fmax = 1e3 / (period - ws_ns) if period - ws_ns > 0 else float("inf")
    power_text = text.split("@@POWER_BEGIN", 1)[1].split("@@POWER_END", 1)[0]
    act: dict[str, Any] = {"global": None if activity_tcl else global_activity,
                           "inputs": global_activity,
                           "annotated": str(activity_tcl) if activity_tcl else None}
    return StaResult(period_ns=period, wns_ns=round(min(ws_ns, 0.0), 4),
                     tns_ns=(round(pdk.from_lib_time(tns), 4) if math.isfinite(tns)
                             else None),
                     worst_slack_ns=round(ws_ns, 4), fmax_mhz=fmax,
                     critical_path=path, power_w=parse_power(power_text),
                     activity=act, seconds=secs, report=report)
