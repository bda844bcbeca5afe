"""VCDs of the real units running a real trace, for the power flow.

The simulation runners (``leopard_rtl.runners.frontend`` / ``backend``, owned by the RTL
engineers) do not dump waveforms. This module reuses their generated testbenches and
stimulus writers unchanged, adds a small ``$dumpvars`` module for the DUT, and runs the
unit's emitted Verilog under Icarus on every head of the trace. Returns the VCD, the
hierarchical scope of the DUT in it, and the simulated cycles.

The coupling is to these runner functions: frontend ``testbench_verilog(cfg)``,
``write_stimulus(path, heads, cfg)`` (reads ``stim.txt``, module ``tb_top.u.dut``);
backend ``front(trace, cfg)``, ``write_stimulus(path, score, mask, v, mant, shift, cfg)``,
``testbench(cfg)`` (``+stim=``/``+out=``, module ``tb.dut``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["simulate_vcd", "ActivityError"]


class ActivityError(Exception):
    """The activity simulation could not run."""


def _dump_module(scope: str, vcd: str) -> str:
    return ("module leopard_vcd_dump;\n"
            f'  initial begin $dumpfile("{vcd}"); $dumpvars(0, {scope}); end\n'
            "endmodule\n")


def _run(cmd: list[str], cwd: Path, timeout: float) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ActivityError(f"{cmd[0]} failed in {cwd}: {(proc.stderr or proc.stdout)[-500:]}")


def simulate_vcd(unit: str, trace: Any, cfg: Any, work: Path, verilog: Path,
                 heads: int | None = None, timeout: float = 3600) -> tuple[Path, str, int]:
    """Run ``verilog`` (the emitted ``unit``) on the first ``heads`` heads of ``trace``
    (all when None); returns (VCD, DUT scope, heads simulated)."""
    n_heads = trace.heads if heads is None else max(1, min(heads, trace.heads))
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise ActivityError("Icarus Verilog (iverilog, vvp) not found; apt-get install iverilog")
    work.mkdir(parents=True, exist_ok=True)
    vcd = work / "activity.vcd"
    if unit == "frontend":
        from leopard_rtl.runners import frontend as rf
        from sim.golden import check_fits, threshold_register

        check_fits(trace, cfg)
        vis = trace.visible()
        th = threshold_register(trace.threshold, cfg)
        nq = trace.q.shape[1]
        n_visible = vis.sum(axis=-1).astype(np.int64)
        heads = [{"k": trace.k[h], "q": trace.q[h], "n_visible": n_visible,
                  "threshold": np.full(nq, th[h]), "et": cfg.early_termination,
                  "pr": cfg.pruning} for h in range(n_heads)]
        (work / "tb.v").write_text(rf.testbench_verilog(cfg))
        rf.write_stimulus(work / "stim.txt", heads, cfg)
        scope = "tb_top.u.dut"
        (work / "dump.v").write_text(_dump_module(scope, vcd.name))
        _run(["iverilog", "-g2012", "-o", "act.vvp", "-s", "tb_top", "-s", "leopard_vcd_dump",
              "tb.v", "dump.v", str(verilog.resolve())], work, timeout)
        _run(["vvp", "-n", "act.vvp"], work, timeout)
    elif unit == "backend":
        from leopard_rtl.runners import backend as rb

        fe = rb.front(trace, cfg)
        sl = slice(0, n_heads)
        rb.write_stimulus(work / "stim.txt", fe["score"][sl], fe["mask"][sl], trace.v[sl],
                          fe["mant"][sl], fe["shift"][sl], cfg)
        (work / "tb.v").write_text(rb.testbench(cfg))
        scope = "tb.dut"
        (work / "dump.v").write_text(_dump_module(scope, vcd.name))
        _run(["iverilog", "-g2012", "-o", "act.vvp", "-s", "tb", "-s", "leopard_vcd_dump",
              "tb.v", "dump.v", str(verilog.resolve())], work, timeout)
        _run(["vvp", "-n", "act.vvp", "+stim=stim.txt", "+out=out.txt"], work, timeout)
    else:
        raise ActivityError(f"no activity testbench for unit {unit!r} (frontend, backend)")
    if not vcd.is_file():
        raise ActivityError(f"simulation wrote no VCD in {work}")
    return vcd, scope, n_heads
