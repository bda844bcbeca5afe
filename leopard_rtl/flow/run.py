"""One synthesis + STA run of a unit (or a given Verilog file) on one library.

:func:`synth_unit` is what ``leopard-rtl synth`` calls: emit the unit's Verilog with
:func:`leopard_rtl.emit.write_build` into ``<out>/rtl``, synthesize it
(:mod:`~leopard_rtl.flow.synth`), time and power it (:mod:`~leopard_rtl.flow.sta`), and
write ``<out>/report.json`` and ``<out>/summary.txt``.

Default unit: ``core`` when it elaborates, else ``frontend`` (:func:`default_unit`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ..config import LeopardConfig
from ..paths import atomic_write, build_root
from .pdk import Pdk, resolve_pdk
from .sta import SDC_TEMPLATE, run_sta
from .synth import DEFAULT_MAX_FANOUT, sram_area_um2, synthesize

__all__ = ["default_unit", "emit_unit", "synth_unit", "synth_verilog", "summary_text",
           "flow_fingerprint", "DEFAULT_MACRO_BITS"]

#: Where compressed liberty files are expanded (shared by all runs).
LIB_CACHE = build_root() / "flow" / "_lib"

#: Memories of at least this many bits are black-boxed as SRAM macros in synthesis.
DEFAULT_MACRO_BITS = 4096

#: Black-box macro modules the units may instantiate (memory="macro"), with the Python
#: attribute holding their behavioural Verilog (read by Yosys as a -lib black box).
MACRO_STUBS = {"leopard_kbuf_bank": "leopard_rtl.hw.kbuffer:MACRO_VERILOG"}


def default_unit(cfg: LeopardConfig) -> str:
    """``core`` if its module exists (``leopard_rtl.hw.core``), else ``frontend``.

    (Only the module is looked up: constructing the component without elaborating it
    would raise Amaranth's UnusedElaboratable warning.)
    """
    import importlib.util

    from ..emit import UNITS
    mod = UNITS["core"].split(":")[0]
    try:
        found = importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        found = False
    return "core" if found else "frontend"


def emit_unit(unit: str, cfg: LeopardConfig, out_dir: Path) -> tuple[Path, str, dict]:
    """Emit ``unit`` into ``out_dir``; (verilog path, top name, manifest)."""
    from ..emit import write_build
    paths = write_build(unit, cfg, out_dir)
    manifest = json.loads(paths["manifest"].read_text())
    return paths["verilog"], manifest["top"], manifest


def _stubs(verilog: Path, out_dir: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    import importlib
    text = verilog.read_text()
    stubs: list[Path] = []
    insts: list[dict[str, Any]] = []
    for mod, spec in MACRO_STUBS.items():
        if not re.search(rf"^\s*{mod}\b", text, re.M):
            continue
        m_name, attr = spec.split(":")
        path = out_dir / f"{mod}_stub.v"
        path.write_text(getattr(importlib.import_module(m_name), attr))
        stubs.append(path)
        for m in re.finditer(rf"^\s*{mod}\s*#\s*\((.*?)\)\s*(\\?\S+)\s*\(", text, re.M | re.S):
            params = dict(re.findall(r"\.(\w+)\(\s*(?:\d+'[sd]?)?(\d+)\s*\)", m.group(1)))
            insts.append({"cell": m.group(2), "type": mod,
                          "width": int(params.get("WIDTH", 0)),
                          "size": int(params.get("DEPTH", 0))})
    return stubs, insts


def flow_fingerprint() -> str:
    """SHA-256 of the sources that decide a synthesis result besides the Verilog: the
    Yosys script, fan-out repair, STA and PDK modules and the SDC (for result caches)."""
    import hashlib

    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in [here / f for f in ("synth.py", "fanout.py", "sta.py", "pdk.py", "run.py")] + \
            [SDC_TEMPLATE, SDC_TEMPLATE.parent / "platforms.json"]:
        h.update(p.name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()


def synth_verilog(verilog: Path, top: str, pdk: Pdk, out_dir: Path, *, clock_ns: float,
                  macro_bits: int | None = DEFAULT_MACRO_BITS, io_pct: float = 0.2,
                  activity: float = 0.1, activity_tcl: Path | None = None,
                  max_fanout: int = DEFAULT_MAX_FANOUT) -> dict[str, Any]:
    """Synthesize and time ``top`` of ``verilog``; the report dict (also written).

    A report left by an earlier run is removed first, so an interrupted run never leaves
    a report next to another design's netlist.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in ("report.json", "summary.txt"):
        (out_dir / old).unlink(missing_ok=True)
    stubs, inst_macros = _stubs(verilog, out_dir)
    syn = synthesize(verilog, top, pdk, out_dir, clock_ns=clock_ns,
                     macro_bits=macro_bits or None, stubs=stubs, max_fanout=max_fanout)
    for m in inst_macros:
        m["bits"] = m["width"] * m["size"]
        m["area_um2"] = round(sram_area_um2(pdk.name, m["bits"]), 3)
    syn.macros += inst_macros
    syn.macro_area_um2 = sum(m["area_um2"] for m in syn.macros)
    sta = run_sta(syn.netlist, top, pdk, out_dir, clock_ns=clock_ns, io_pct=io_pct,
                  global_activity=activity, activity_tcl=activity_tcl)
    report = {"top": top, "pdk": pdk.to_dict(), "clock_ns": clock_ns, "io_pct": io_pct,
              "synth": syn.to_dict(), "sta": sta.to_dict(),
              "memory_model": {"macro_bits": macro_bits,
                               "note": "memories >= macro_bits are black-box SRAM macros "
                                       "(area: SRAM_MODEL estimate, docs/ENERGY.md); "
                                       "smaller ones are flip-flops"},
              "seconds": {"synth": round(syn.seconds, 2), "sta": round(sta.seconds, 2)}}
    _write_report(out_dir, report)
    return report


def synth_unit(unit: str | None, cfg: LeopardConfig, pdk_name: str, out_dir: Path, *,
               clock_ns: float | None = None, liberty: list[str] | None = None,
               lef: list[str] | None = None, platform_dir: str | None = None,
               macro_bits: int | None = DEFAULT_MACRO_BITS, io_pct: float = 0.2,
               activity: float = 0.1, max_fanout: int = DEFAULT_MAX_FANOUT) -> dict[str, Any]:
    """Emit, synthesize and time ``unit`` for ``cfg`` on ``pdk_name`` (see module doc)."""
    t0 = time.monotonic()
    unit = unit or default_unit(cfg)
    pdk = resolve_pdk(pdk_name, LIB_CACHE, liberty=liberty, lef=lef,
                      platform_dir=platform_dir)
    verilog, top, manifest = emit_unit(unit, cfg, out_dir / "rtl")
    t_emit = time.monotonic() - t0
    report = synth_verilog(verilog, top, pdk, out_dir, clock_ns=clock_ns or pdk.clock_ns,
                           macro_bits=macro_bits, io_pct=io_pct, activity=activity,
                           max_fanout=max_fanout)
    report.update({"unit": unit, "preset": cfg.name, "config": cfg.to_dict(),
                   "latencies": manifest.get("latencies", {})})
    report["seconds"]["emit"] = round(t_emit, 2)
    report["seconds"]["total"] = round(time.monotonic() - t0, 2)
    _write_report(out_dir, report)
    return report


def _write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """``report.json`` and ``summary.txt``, each written atomically, the report last."""
    atomic_write(out_dir / "summary.txt", summary_text(report))
    atomic_write(out_dir / "report.json", json.dumps(report, indent=2) + "\n")


def summary_text(r: dict[str, Any]) -> str:
    """A readable summary of a synthesis report."""
    s, t = r["synth"], r["sta"]
    cp = t["critical_path"]
    lines = [f"{r.get('unit', r['top'])} ({r.get('preset', '-')}) on {r['pdk']['name']}, "
             f"clock {r['clock_ns']} ns",
             f"  area      {s['area_um2']:.1f} um^2 in {s['cells']} cells "
             f"({s['flops']} flip-flops, sequential {s['sequential_area_um2']:.1f} um^2)"]
    if s["macros"]:
        lines.append(f"  macros    {len(s['macros'])} SRAM, "
                     f"{sum(m['bits'] for m in s['macros'])} bits, est. "
                     f"{s['macro_area_um2']:.1f} um^2")
    lines.append("  blocks    " + ", ".join(f"{k} {v:.1f}" for k, v in s["blocks_um2"].items()))
    fo = s.get("fanout") or {}
    if fo:
        lines.append(f"  fan-out   {fo['buffers']} x {fo['buffer_cell']} "
                     f"({fo['area_um2']:.1f} um^2) on {fo['nets_repaired']} nets with more "
                     f"than {fo['max_fanout']} loads (worst fan-out {fo['worst_fanout_before']}"
                     f" -> {fo['worst_fanout_after']})")
    lines += [f"  timing    worst slack {t['worst_slack_ns']:.3f} ns, fmax "
              f"{t['fmax_mhz']:.1f} MHz; critical path {cp.get('startpoint', '?')} -> "
              f"{cp.get('endpoint', '?')} ({cp.get('arrival_ns', '?')} ns)",
              f"  power     total {t['power_w']['total'] * 1e3:.4f} mW (internal "
              f"{t['power_w']['internal'] * 1e3:.4f}, switching "
              f"{t['power_w']['switching'] * 1e3:.4f}, leakage "
              f"{t['power_w']['leakage'] * 1e3:.6f}) at activity "
              f"{t['activity']['global'] or t['activity']['inputs']} toggles/cycle"
              + (f", annotated {t['activity']['annotated']}" if t["activity"]["annotated"]
                 else ""),
              "  seconds   " + ", ".join(f"{k} {v}" for k, v in r["seconds"].items())]
    return "\n".join(lines) + "\n"
