"""Switching activity (SAIF or VCD) of the real units running a real trace, for the power flow.

The simulation runners (:mod:`leopard_rtl.tb.frontend` / ``backend``) do not dump
waveforms. This module reuses their generated testbenches and stimulus writers unchanged,
wraps the testbench in a top module that calls ``$dumpfile``/``$dumpvars`` for the DUT,
and runs the unit's emitted Verilog on the heads of the trace, with Verilator
(``--binary --timing``, the default: ~100x faster than Icarus here) writing a SAIF
(``--trace-saif``: per-bit toggle counts and time high, ~30x smaller than the VCD and
read in a fraction of the time) or a VCD (``--trace``), or Icarus (VCD only,
(with :func:`leopard_rtl.tb.toolchain.icarus_compat`, as the runners do; without it a
configuration whose registers are written with their initial values keeps ``x`` in
Icarus and never finishes). Returns the activity file, the hierarchical scope of the DUT in
it, and the heads simulated.

The coupling is to these runner functions: frontend ``testbench_verilog(cfg, ports)`` and
``write_stimulus(path, heads, cfg)``; backend ``front(trace, cfg)``, ``write_stimulus(path,
score, mask, v, mant, shift, cfg)``, ``testbench(cfg, ports)``; both are module ``tb``
(``+stim=``/``+out=``, DUT ``tb.dut``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LeopardError

__all__ = ["simulate_vcd", "simulate_activity", "ActivityError"]


class ActivityError(LeopardError):
    """The activity simulation could not run."""


def _dump_module(tb_module: str, dut_path: str, vcd: str) -> str:
    """A top module instantiating the (port-less) testbench and dumping its DUT (Verilator
    built with ``--trace-saif`` writes the dump as SAIF)."""
    return ("`timescale 1ns/1ps\n"
            "module leopard_vcd_top;\n"
            f"  {tb_module} t ();\n"
            f'  initial begin $dumpfile("{vcd}"); $dumpvars(0, t.{dut_path}); end\n'
            "endmodule\n")


def _run(cmd: list[str], cwd: Path, timeout: float) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ActivityError(f"{cmd[0]} failed in {cwd}: {(proc.stderr or proc.stdout)[-500:]}")


def _build_and_run(simulator: str, work: Path, sources: list[str], plusargs: list[str],
                   timeout: float, fmt: str = "vcd") -> None:
    from leopard_rtl.tb.toolchain import tool, verilator_build_args

    if simulator == "verilator":
        # The executable depends only on the sources (the stimulus is a run-time file):
        # built once per source set under build/flow/_activity/<hash>, run in ``work``.
        import hashlib

        from ..paths import build_root

        verilator = tool("verilator")
        trace = "--trace-saif" if fmt == "saif" else "--trace"
        args = [*verilator_build_args(), trace, "--top-module", "leopard_vcd_top"]
        h = hashlib.sha256(" ".join(args).encode())
        for src in sources:
            h.update(src.encode() + b"\0" + (work / src).read_bytes())
        cache = build_root() / "flow" / "_activity" / h.hexdigest()[:20]
        exe = cache / "obj_dir" / "Vact"
        if not exe.is_file():
            tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for src in sources:
                shutil.copy(work / src, tmp / src)
            _run([verilator, *args, "-Mdir", "obj_dir", "-o", "Vact", *sources], tmp, timeout)
            shutil.rmtree(cache, ignore_errors=True)
            tmp.rename(cache)
        _run([str(exe.resolve()), *plusargs], work, timeout)
    elif simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise ActivityError("Icarus Verilog (iverilog, vvp) not found; "
                                "apt-get install iverilog")
        _run(["iverilog", "-g2012", "-o", "act.vvp", "-s", "leopard_vcd_top", *sources],
             work, timeout)
        _run(["vvp", "-n", "act.vvp", *plusargs], work, timeout)
    else:
        raise ActivityError(f"simulator must be verilator or icarus, not {simulator!r}")


def _unit_ports(unit: str, cfg: Any) -> list[dict[str, Any]]:
    """The unit's ports (its component is built for its signature only, never elaborated:
    Amaranth's UnusedElaboratable warning is silenced for it)."""
    from ..emit import elaborate_unit, ports_of

    comp = elaborate_unit(unit, cfg)
    comp._MustUse__silence = True
    return ports_of(comp)


def simulate_vcd(unit: str, trace: Any, cfg: Any, work: Path, verilog: Path,
                 heads: int | None = None, timeout: float = 3600,
                 simulator: str = "verilator") -> tuple[Path, str, int]:
    """Run ``verilog`` (the emitted ``unit``) on the first ``heads`` heads of ``trace``
    (all when None) with ``simulator``; returns (VCD, DUT scope in it, heads simulated)."""
    return simulate_activity(unit, trace, cfg, work, verilog, heads=heads, timeout=timeout,
                             simulator=simulator, fmt="vcd")


def simulate_activity(unit: str, trace: Any, cfg: Any, work: Path, verilog: Path,
                      heads: int | None = None, timeout: float = 3600,
                      simulator: str = "verilator", fmt: str = "saif"
                      ) -> tuple[Path, str, int]:
    """As :func:`simulate_vcd`, writing ``fmt`` (``saif``: Verilator only, or ``vcd``);
    returns (activity file, DUT scope in it, heads simulated)."""
    from ..tb.toolchain import icarus_compat

    if fmt not in ("saif", "vcd"):
        raise ActivityError(f"activity format must be saif or vcd, not {fmt!r}")
    if fmt == "saif" and simulator != "verilator":
        raise ActivityError(f"SAIF activity needs --simulator verilator, not {simulator!r}")
    n_heads = trace.heads if heads is None else max(1, min(heads, trace.heads))
    work.mkdir(parents=True, exist_ok=True)
    vcd = work / f"activity.{fmt}"
    vcd.unlink(missing_ok=True)
    rtl = work / "dut.v"
    text = Path(verilog).read_text()
    rtl.write_text(icarus_compat(text) if simulator == "icarus" else text)
    if unit == "frontend":
        from leopard_rtl.tb import frontend as rf
        from sim.golden import check_fits, threshold_register

        check_fits(trace, cfg)
        vis = trace.visible()
        th = threshold_register(trace.threshold, cfg)
        nq = trace.q.shape[1]
        n_visible = vis.sum(axis=-1).astype(np.int64)
        head_list = [{"k": trace.k[h], "q": trace.q[h], "n_visible": n_visible,
                      "threshold": np.full(nq, th[h]), "et": cfg.early_termination,
                      "pr": cfg.pruning} for h in range(n_heads)]
        (work / "tb.v").write_text(rf.testbench_verilog(cfg, _unit_ports(unit, cfg)))
        rf.write_stimulus(work / "stim.txt", head_list, cfg)
        tb_module, dut_path, plusargs = "tb", "dut", ["+stim=stim.txt", "+out=out.txt"]
    elif unit == "backend":
        from leopard_rtl.tb import backend as rb

        fe = rb.front(trace, cfg)
        sl = slice(0, n_heads)
        rb.write_stimulus(work / "stim.txt", fe["score"][sl], fe["mask"][sl], trace.v[sl],
                          fe["mant"][sl], fe["shift"][sl], cfg)
        (work / "tb.v").write_text(rb.testbench(cfg, _unit_ports(unit, cfg)))
        tb_module, dut_path, plusargs = "tb", "dut", ["+stim=stim.txt", "+out=out.txt"]
    else:
        raise ActivityError(f"no activity testbench for unit {unit!r} (frontend, backend)")
    (work / "dump.v").write_text(_dump_module(tb_module, dut_path, vcd.name))
    _build_and_run(simulator, work, ["dump.v", "tb.v", rtl.name], plusargs, timeout, fmt)
    if not vcd.is_file():
        raise ActivityError(f"simulation wrote no {fmt.upper()} in {work}")
    return vcd, f"leopard_vcd_top.t.{dut_path}", n_heads
