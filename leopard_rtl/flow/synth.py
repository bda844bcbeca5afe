"""Logic synthesis to a standard-cell library with Yosys (pyosys 0.70).

The script (:func:`yosys_script`, template ``constraints/yosys/synth.tcl`` shows the same
steps for standalone use) is::

    read_verilog -sv <top>.v            ; macro stubs read with -lib (black boxes)
    hierarchy -check -top <top>
    synth -top <top> -run :fine         ; generic, hierarchy kept (one module per block)
    [memory macros: chtype $mem_v2 -> LEOPARD_SRAM (black box, memory model below)]
    synth -top <top> -run fine:         ; memories that stay become flip-flops
    dfflibmap -liberty <seq>            ; flip-flops first, then the combinational logic
    abc -D <period in ps> -script ABC_SCRIPT -liberty <each liberty>  ; delay-driven
    setundef -zero ; opt_clean
    stat -json -liberty ...             ; per-module area (hierarchical split)
    flatten ; opt_clean -purge
    splitnets ; opt_clean -purge        ; one-bit nets: no ``assign {a, b} = {c, d};``
    hilomap -singleton (tie cells)      ; constants from the library's tie-high/low cells
    insbuf -buf <buffer>                ; a buffer for every wire-to-wire assignment
    autoname                            ; internal cells and nets named after the public
                                        ; (hierarchical) nets they drive: block names in
                                        ; timing paths
    stat -json                          ; the totals
    write_verilog -noattr -noexpr       ; netlist for OpenSTA
    [fan-out repair in Python: buffer trees on nets with > 16 loads, leopard_rtl.flow.fanout]

Hierarchy is kept through mapping (ORFS ``SYNTH_HIERARCHICAL=1`` style), so no logic is
shared across block boundaries and the per-block areas add up to the total (tie cells and
the buffers ``insbuf`` adds after flattening are the ``(ties, assign buffers)`` entry). The
netlist steps after flattening are those of ORFS, OpenLane and Hammer (``splitnets``,
``hilomap``, ``insbuf``); the tie cells and buffer are found in the liberty
(:func:`tie_cells`, :func:`~leopard_rtl.flow.fanout.pick_buffer`). Nets keep one
public RTL name each (``opt_clean -purge`` keeps public names of driven nets and drops only
unused aliases), which is what the power flow uses to map simulation activity onto the netlist.

Memory model. ``memory="ff"`` memories below ``macro_bits`` are synthesized as
flip-flops, as any other register. Larger ones (``macro`` or ``auto`` model) become black
boxes ``LEOPARD_SRAM`` whose area comes from :func:`sram_area_um2` (see docs/ENERGY.md);
timing paths through them are cut (the macro's read data start new paths).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LeopardError
from ..paths import atomic_write
from ..progress import stage
from .pdk import PDKS, Pdk

__all__ = ["SynthResult", "yosys_script", "run_yosys", "synthesize", "SynthError",
           "sram_area_um2", "hier_areas", "tie_cells"]


class SynthError(LeopardError):
    """Yosys failed; the message quotes its error line and names the log."""


_MACRO_TYPE = "LEOPARD_SRAM"

#: nets with more loads than this get a buffer tree after mapping (leopard_rtl.flow.fanout)
DEFAULT_MAX_FANOUT = 16

#: ABC script for liberty mapping (``{D}`` becomes ``-D <clock period in ps>``). Yosys's
#: default delay script (``&dch -f; &nf -D``) meets the clock target in ABC's own delay
#: model and then recovers area, which turns the adders' parallel-prefix carry trees back
#: into ripple chains (the paper lane's 30-bit accumulate + compare: 2.0 ns). Instead:
#: two rounds of SOP balancing (``&if -g``, delay-optimal restructuring) with
#: ``&synch2`` in between, structural choices (``dch -f``) and the classic mapper for
#: minimum delay (``map`` with no target, area recovered only where delay allows), then
#: buffering and gate sizing against the clock target (what ORFS's resizer does later).
#: ``cleanup`` after ``map``: ``buffer -p`` fails on a dangling node ("node has no
#: fanout", seen on a paper QK lane inside the core).
#: Measured on nangate45 at 1.0 ns, one paper block synthesized alone, against Yosys's
#: script: QK lane 499 -> 787 MHz (area +23 %), normalizer lane 628 -> 1165 MHz (+1 %),
#: MAC lane 624 -> 1278 MHz (+0.5 %); tiny front end at 2 ns 801 -> 881 MHz (+11 %).
#: ``map -D`` (area recovered down to the target) instead of ``map`` keeps the lane's
#: area (+0 %) at 799 MHz but leaves the normalizer and MAC lanes at 891 and 901 MHz.
ABC_SCRIPT = ("+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;"
              "&if,-g;&synch2;&if,-g;&put;dch,-f;map;cleanup;"
              "buffer,-p;upsize,{D};dnsize,{D};stime,-p")

#: Black-box declaration of the SRAM macro: the ports and parameters of Yosys's $mem_v2,
#: so that ``chtype`` keeps every connection.
SRAM_STUB = """\
(* blackbox *)
module LEOPARD_SRAM #(
  parameter MEMID = "", parameter SIZE = 1, parameter OFFSET = 0, parameter ABITS = 1,
  parameter WIDTH = 1, parameter INIT = 0, parameter RD_PORTS = 1,
  parameter RD_CLK_ENABLE = 0, parameter RD_CLK_POLARITY = 0,
  parameter RD_TRANSPARENCY_MASK = 0, parameter RD_COLLISION_X_MASK = 0,
  parameter RD_WIDE_CONTINUATION = 0, parameter RD_CE_OVER_SRST = 0,
  parameter RD_ARST_VALUE = 0, parameter RD_SRST_VALUE = 0, parameter RD_INIT_VALUE = 0,
  parameter WR_PORTS = 1, parameter WR_CLK_ENABLE = 0, parameter WR_CLK_POLARITY = 0,
  parameter WR_PRIORITY_MASK = 0, parameter WR_WIDE_CONTINUATION = 0
) (
  input [RD_PORTS-1:0] RD_CLK, input [RD_PORTS-1:0] RD_EN, input [RD_PORTS-1:0] RD_ARST,
  input [RD_PORTS-1:0] RD_SRST, input [RD_PORTS*ABITS-1:0] RD_ADDR,
  output [RD_PORTS*WIDTH-1:0] RD_DATA,
  input [WR_PORTS-1:0] WR_CLK, input [WR_PORTS*WIDTH-1:0] WR_EN,
  input [WR_PORTS*ABITS-1:0] WR_ADDR, input [WR_PORTS*WIDTH-1:0] WR_DATA
);
endmodule
"""
_PY_RUNNER = ("import sys\nfrom pyosys import libyosys as ys\n"
              "d = ys.Design()\n"
              "ys.run_pass('script ' + sys.argv[1], d)\n")


def sram_area_um2(pdk: str, bits: int) -> float:
    """Estimated area of a memory macro of ``bits`` bits on ``pdk`` (um^2).

    The 6T bit-cell area and array efficiency of each platform are in the platform table
    (``constraints/platforms.json``, ``sram``): order-of-magnitude estimates for a small
    1R1W macro, documented in docs/ENERGY.md, NOT the area of a real compiled macro.
    """
    m = PDKS[pdk].sram if pdk in PDKS else PDKS["nangate45"].sram
    return bits * m["bitcell_um2"] / m["efficiency"]


@dataclass
class SynthResult:
    """What synthesis produced: netlist path, areas and cell counts."""

    netlist: Path
    top: str
    area_um2: float
    cells: int
    flops: int
    cells_by_type: dict[str, int]
    #: inclusive area of each top-level block (instance name -> um^2) plus "(top glue)"
    blocks: dict[str, float]
    #: per-module own area (module -> um^2, cells)
    modules: dict[str, dict[str, float]]
    macros: list[dict[str, Any]] = field(default_factory=list)
    #: what the fan-out repair did (:class:`~leopard_rtl.flow.fanout.FanoutResult`)
    fanout: dict[str, Any] = field(default_factory=dict)
    macro_area_um2: float = 0.0
    sequential_area_um2: float = 0.0
    seconds: float = 0.0
    log: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"netlist": str(self.netlist), "top": self.top,
                "area_um2": round(self.area_um2, 3), "cells": self.cells,
                "flops": self.flops,
                "sequential_area_um2": round(self.sequential_area_um2, 3),
                "cells_by_type": self.cells_by_type,
                "blocks_um2": {k: round(v, 3) for k, v in self.blocks.items()},
                "modules": self.modules, "macros": self.macros, "fanout": self.fanout,
                "macro_area_um2": round(self.macro_area_um2, 3),
                "total_area_with_macros_um2": round(self.area_um2 + self.macro_area_um2, 3),
                "seconds": round(self.seconds, 2),
                "log": str(self.log) if self.log else None}


def _q(p: Path | str) -> str:
    s = str(p)
    if any(c.isspace() for c in s):
        raise SynthError(f"path with spaces is not supported by the Yosys script: {s}")
    return s


def yosys_script(verilog: Path, top: str, pdk: Pdk, out_dir: Path, *,
                 clock_ns: float, macro_bits: int | None,
                 stubs: list[Path] | None = None) -> str:
    """The Yosys script text (see the module docstring)."""
    libs = " ".join(f"-liberty {_q(p)}" for p in pdk.liberty)
    dont = " ".join(f"-dont_use {c}" for c in pdk.dont_use)
    from .fanout import pick_buffer, read_liberty_cells
    cells = read_liberty_cells(pdk.liberty)
    buf = pick_buffer(cells, pdk.dont_use)
    hi, lo = tie_cells(cells, pdk.dont_use)
    lines = [f"read_verilog -sv {_q(verilog)}"]
    for s in stubs or []:
        lines.append(f"read_verilog -lib -sv {_q(s)}")
    lines += [f"hierarchy -check -top {top}",
              f"synth -top {top} -run :fine"]
    widths = memory_widths(verilog) if macro_bits is not None else set()
    if widths:
        # Memories at least macro_bits big become black-box macros (kept with params).
        # Yosys's select has no arithmetic: one WIDTH=w, SIZE>=ceil(bits/w) term per
        # memory width found in the Verilog; the stack's union is the selection.
        terms = " ".join(f"t:$mem_v2 r:WIDTH={w} %i r:SIZE>={-(-macro_bits // w)} %i"
                         for w in sorted(widths))
        lines += [f"select -set bigmem {terms}",
                  f"tee -q -o {_q(out_dir / 'macros.json')} select -list @bigmem",
                  f"tee -q -o {_q(out_dir / 'macros_dump.txt')} dump @bigmem",
                  f"chtype -set {_MACRO_TYPE} @bigmem",
                  f"read_verilog -lib {_q(out_dir / 'leopard_sram_stub.v')}",
                  f"hierarchy -top {top}"]
    lines += [f"synth -top {top} -run fine:",
              f"dfflibmap -liberty {_q(pdk.seq_liberty)} {dont}".strip(),
              # -D is the delay target in ps, whatever the liberty's unit (buffering and
              # sizing use it). Yosys 0.70's default liberty script never buffers and
              # recovers area down to the target: see ABC_SCRIPT.
              f"abc -D {clock_ns * 1000:.0f} -script {ABC_SCRIPT} {libs} {dont}".strip(),
              "setundef -zero",
              "opt_clean",
              f"tee -q -o {_q(out_dir / 'stat_hier.json')} stat -json {libs}",
              "flatten",
              f"hierarchy -top {top}",
              # -purge drops alias wires (OpenSTA cannot read concatenations on the left
              # of an assign); every net keeps one public name when it has one.
              "opt_clean -purge",
              # One-bit nets: write_verilog then never writes a concatenation on the
              # left of an assign (OpenSTA reads none).
              "splitnets",
              "opt_clean -purge"]
    if hi and lo:
        lines.append(f"hilomap -singleton -hicell {hi[0]} {hi[1]} -locell {lo[0]} {lo[1]}")
    lines += [f"insbuf -buf {buf.name} {buf.inputs[0]} {next(iter(buf.outputs))}",
              "autoname",
              f"tee -q -o {_q(out_dir / 'stat.json')} stat -json {libs}",
              f"write_verilog -noattr -noexpr -nohex -nodec {_q(out_dir / 'netlist.v')}"]
    return "\n".join(lines) + "\n"


def tie_cells(cells: dict[str, Any], dont_use: tuple[str, ...] | list[str] = ()
              ) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """``(cell, pin)`` of the smallest tie-high and tie-low cells of a library (cells with
    no input whose output function is ``1`` or ``0``); ``None`` where there is none."""
    import fnmatch
    found: dict[str, list[tuple[float, str, str]]] = {"1": [], "0": []}
    for c in cells.values():
        if c.inputs or any(fnmatch.fnmatch(c.name, p) for p in dont_use):
            continue
        for pin, func in c.outputs.items():
            f = func.strip().strip("()").strip()
            if f in found:
                found[f].append((c.area, c.name, pin))
    pick = {k: (min(v)[1], min(v)[2]) if v else None for k, v in found.items()}
    return pick["1"], pick["0"]


def memory_widths(verilog: Path) -> set[int]:
    """Word widths of the memories (``reg [w-1:0] name [..];`` arrays) in a Verilog file."""
    text = verilog.read_text()
    out = {int(m.group(1)) + 1 for m in
           re.finditer(r"^\s*reg\s*\[(\d+):0\]\s*\S+\s*\[\d+:\d+\]\s*;", text, re.M)}
    out |= {1 for _ in re.finditer(r"^\s*reg\s+[^\s\[]+\s*\[\d+:\d+\]\s*;", text, re.M)}
    return out


def run_yosys(script: Path, log: Path, timeout: float = 3600) -> float:
    """Run a Yosys script with pyosys in a child process; seconds taken."""
    t0 = time.monotonic()
    with open(log, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, "-c", _PY_RUNNER, str(script)], stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            raise SynthError(f"yosys ran past its time limit of {timeout:.0f} s "
                             f"(log: {log})") from None
    text = log.read_text(errors="replace")
    err = re.search(r"^ERROR: .*$", text, re.M)
    if proc.returncode != 0 or err:
        what = err.group(0) if err else f"exit status {proc.returncode}"
        if proc.returncode != 0 and not err and "ModuleNotFoundError" in text:
            what = "pyosys is not installed (pip install pyosys==0.70)"
        raise SynthError(f"yosys failed: {what} (log: {log})")
    return time.monotonic() - t0


def hier_areas(stat: dict[str, Any], top: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Area of each top-level block instance (inclusive) and own area per module.

    Yosys 0.70's ``stat`` reports a module's ``area`` including its submodules; a module's
    own area is that minus its submodules' areas.
    """
    mods = {k.lstrip("\\"): v for k, v in stat.get("modules", {}).items()}
    incl = {k: float(v.get("area", 0.0)) for k, v in mods.items()}
    by_type = {k: {t.lstrip("\\"): int(n) for t, n in v.get("num_cells_by_type", {}).items()}
               for k, v in mods.items()}
    own = {k: incl[k] - sum(n * incl[t] for t, n in by_type[k].items() if t in incl and t != k)
           for k in mods}
    blocks: dict[str, float] = {}
    t = top.lstrip("\\")
    for sub, n in by_type.get(t, {}).items():
        if sub in incl:
            label = sub[len(t) + 1:] if sub.startswith(t + ".") else sub
            blocks[label] = blocks.get(label, 0.0) + n * incl[sub]
    blocks["(top glue)"] = own.get(t, 0.0)
    modules = {k: {"own_area_um2": round(own[k], 3), "inclusive_area_um2": round(incl[k], 3),
                   "cells": int(mods[k].get("num_cells", 0)),
                   "sequential_area_um2": round(float(mods[k].get("sequential_area", 0)), 3)}
               for k in mods}
    return blocks, modules


def _macros(out_dir: Path, pdk: str) -> list[dict[str, Any]]:
    dump = out_dir / "macros_dump.txt"
    if not dump.is_file():
        return []
    out = []
    cur: dict[str, Any] | None = None
    for line in dump.read_text().splitlines():
        line = line.strip()
        if line.startswith("cell "):
            cur = {"cell": line.split()[2]}
            out.append(cur)
        elif cur is not None and line.startswith("parameter "):
            parts = line.split()
            if parts[1] in ("\\SIZE", "\\WIDTH", "\\RD_PORTS", "\\WR_PORTS", "\\MEMID"):
                v = parts[2]
                m = re.fullmatch(r"(\d+)'([01]+)", v)
                cur[parts[1].lstrip("\\").lower()] = int(m.group(2), 2) if m else v.strip('"')
    for m in out:
        m["bits"] = int(m.get("size", 0)) * int(m.get("width", 0))
        m["area_um2"] = round(sram_area_um2(pdk, m["bits"]), 3)
    return out


def synthesize(verilog: Path, top: str, pdk: Pdk, out_dir: Path, *, clock_ns: float,
               macro_bits: int | None = None, stubs: list[Path] | None = None,
               timeout: float = 3600, max_fanout: int = DEFAULT_MAX_FANOUT) -> SynthResult:
    """Synthesize ``top`` from ``verilog`` onto ``pdk`` into ``out_dir``.

    Then buffer nets with more than ``max_fanout`` loads (:mod:`~leopard_rtl.flow.fanout`;
    0 disables it; the buffers are counted in the area, cells and ``blocks``).
    """
    if max_fanout < 0 or max_fanout == 1:
        raise SynthError(f"--max-fanout must be 0 (no fan-out repair) or >= 2, "
                         f"not {max_fanout}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("macros_dump.txt", "macros.json"):
        (out_dir / stale).unlink(missing_ok=True)
    (out_dir / "leopard_sram_stub.v").write_text(SRAM_STUB)
    script = out_dir / "synth.ys"
    script.write_text(yosys_script(verilog, top, pdk, out_dir, clock_ns=clock_ns,
                                   macro_bits=macro_bits, stubs=stubs))
    log = out_dir / "yosys.log"
    with stage(f"synth: yosys {top} on {pdk.name} (log {log})"):
        secs = run_yosys(script, log, timeout=timeout)
    stat = json.loads((out_dir / "stat.json").read_text())
    hier = json.loads((out_dir / "stat_hier.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cbt = {k.lstrip("\\"): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    seq = sequential_cells(pdk.liberty)
    flops = sum(n for c, n in cbt.items() if c in seq)
    blocks, modules = hier_areas(hier, top)
    extra = float(design.get("area", 0.0)) - sum(blocks.values())
    if extra > 1e-6:
        blocks["(ties, assign buffers)"] = extra
    macros = _macros(out_dir, pdk.name)
    net = out_dir / "netlist.v"
    text = net.read_text()
    if re.search(r"^\s*assign\s*\{", text, re.M):
        raise SynthError(f"netlist: a concatenation on the left of an assign after "
                         f"splitnets (OpenSTA cannot read it): {net}")
    # OpenSTA reads no parameters on instances; the macros become black boxes there.
    text = re.sub(rf"({_MACRO_TYPE}|\\\$paramod\S*{_MACRO_TYPE}\S*)\s*#\(.*?\n\s*\)\s*(\S+\s*\()",
                  rf"{_MACRO_TYPE} \2", text, flags=re.S)
    fan: dict[str, Any] = {}
    area = float(design.get("area", 0.0))
    n_cells = int(design.get("num_cells", 0))
    if max_fanout:
        from .fanout import pick_buffer, read_liberty_cells, repair_fanout
        lib_cells = read_liberty_cells(pdk.liberty)
        buf = pick_buffer(lib_cells, pdk.dont_use)
        (out_dir / "netlist_unbuffered.v").write_text(text)
        text, fres = repair_fanout(text, top, lib_cells, buf, max_fanout)
        fan = {"max_fanout": max_fanout, **fres.to_dict()}
        if fres.buffers:
            area += fres.area_um2
            n_cells += fres.buffers
            cbt[buf.name] = cbt.get(buf.name, 0) + fres.buffers
            blocks["(fan-out buffers)"] = fres.area_um2
    atomic_write(net, text)
    return SynthResult(netlist=out_dir / "netlist.v", top=top,
                       area_um2=area, cells=n_cells, flops=flops, fanout=fan,
                       cells_by_type=dict(sorted(cbt.items())), blocks=blocks,
                       modules=modules, macros=macros,
                       macro_area_um2=sum(m["area_um2"] for m in macros),
                       sequential_area_um2=float(design.get("sequential_area", 0.0)),
                       seconds=secs, log=log)


def sequential_cells(liberty: list[Path]) -> set[str]:
    """Names of the liberty cells that hold state (an ``ff`` or ``latch`` group)."""
    out: set[str] = set()
    for path in liberty:
        text = path.read_text(errors="replace")
        starts = [(m.start(), m.group(1)) for m in
                  re.finditer(r"^\s*cell\s*\(\s*\"?([\w$]+)\"?\s*\)", text, re.M)]
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            if re.search(r"^\s*(ff|latch|ff_bank|latch_bank)\s*\(", text[pos:end], re.M):
                out.add(name)
    return out
