"""Energy per attention head that follows the work (method ``access``; docs/ENERGY.md).

For each variant (LeOPArd, pruning-only, baseline) and unit (front end, back end):

1. **Netlist without buffers.** The unit is synthesized with every memory a black-box
   macro (``macro_bits=1``): the K-buffer banks, the V buffer, the survivor store and the
   exp LUT (a ROM). What remains is logic and registers.
2. **Simulation.** The unit's emitted Verilog runs every head of the trace under Verilator
   writing a SAIF (:func:`leopard_rtl.flow.activity.simulate_activity`); from it come
   per-bit toggle rates and the cycles each enable is high.
3. **SRAM accesses** are counted from the simulated enables (:data:`ACCESSES`): K bank
   reads (``kbuf.port<j>_re<b>``: one per plane a lane reads), K row writes (x planes x
   lanes: the banks are replicated per lane, ``memory="macro"``), V row writes, survivor
   store writes, and one V row read, one survivor read and one LUT read per survivor that
   enters the exp unit. Each is charged CACTI's energy per access
   (:mod:`leopard_rtl.flow.sram`).
4. **Logic per block.** OpenSTA reports the power of every cell at two global activities
   (0 and :data:`REF_ACTIVITY`); each cell belongs to the block of the registers whose
   inputs it computes (:func:`instance_blocks`). Per block: clock power (at activity 0,
   minus leakage: the flops' clock pins), data power per unit activity (the slope), and
   leakage. The data power is scaled by the block's own simulated mean register toggle
   rate (OpenSTA 2.0.17 cannot take per-net activities: docs/ENERGY.md).
5. **Clock gating (modelled).** The RTL has no clock gates; the model charges a block's
   clock power only in the cycles its gating enable would be on (:data:`GATING`: a lane
   while it holds a key, the reciprocal unit while it divides, every other block of a
   unit while the unit is busy or loading), the enabled cycles taken from the simulation
   (an upper bound: the sum of the enables' high cycles, at most every cycle). The
   ungated energy is reported next to it.
6. **Leakage x time.** Logic leakage (OpenSTA) plus SRAM leakage (CACTI), over the core's
   cycles per head (the performance model, cycle-exact against the core RTL) at the
   design's own clock: the slower of the two units' critical paths and the SRAM access
   time.

Energies are per head: the simulated run (loads, queries, drain) divided by the heads.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LeopardError
from .pdk import Pdk
from .sram import design_memories, pdk_node_nm, sram_cost
from .synth import sequential_cells

__all__ = ["EnergyError", "ACCESSES", "GATING", "REF_ACTIVITY", "CATEGORIES",
           "instance_blocks", "instance_power", "high_cycles", "unit_access_energy",
           "head_energy", "prune_to"]

#: Version of the cached per-block power record (bump when its content changes).
_SYN_FORMAT = b"energy-blocks-2"
#: Global activity of the second OpenSTA run (the slope of data power vs activity).
REF_ACTIVITY = 0.1
#: Categories of the energy split.
CATEGORIES = ("k_reads", "v_reads", "frontend_logic", "backend_logic", "other_storage",
              "leakage")
#: SRAM accesses per unit: name -> (regex of the SAIF nets whose high cycles count them,
#: memory block, read or write, copies touched per access (a callable of cfg)).
ACCESSES: dict[str, dict[str, tuple[str, str, str, Any]]] = {
    "frontend": {
        "k_read": (r"kbuf\.port\d+_re\d+", "kbuf", "read", lambda c: 1),
        "k_write": (r"kbuf\.w_en", "kbuf", "write", lambda c: c.qk_bits * c.lanes),
    },
    "backend": {
        "v_read": (r"exp\.i__valid", "vbuf", "read", lambda c: 1),
        "v_write": (r"vbuf\.wr__en", "vbuf", "write", lambda c: 1),
        "s_write": (r"store\.wr__en", "sstore", "write", lambda c: 1),
        "s_read": (r"exp\.i__valid", "sstore", "read", lambda c: 1),
        "lut_read": (r"exp\.i__valid", "lut", "read", lambda c: 1),
    },
}
#: Category of each access.
ACCESS_CATEGORY = {"k_read": "k_reads", "v_read": "v_reads", "lut_read": "backend_logic",
                   "k_write": "other_storage", "v_write": "other_storage",
                   "s_write": "other_storage", "s_read": "other_storage"}
#: Clock-gating domains per unit: (block prefix, regexes of the enables); the first match
#: of a block wins; the last entry ("") is the rest of the unit.
GATING: dict[str, list[tuple[str, list[str]]]] = {
    "frontend": [(r"lanes\.lane(\d+)", [r"lanes\.lane{0}\.busy"]),
                 ("", [r"busy", r"kbuf\.w_en"])],
    "backend": [(r"recip", [r"recip\.busy"]),
                ("", [r"busy", r"vbuf\.wr__en"])],
}


class EnergyError(LeopardError):
    """The energy flow met a netlist or simulation it cannot account for."""


def high_cycles(rates: dict[str, tuple[float, float]], cycles: int, pattern: str
                ) -> tuple[float, list[str]]:
    """Cycles in which the nets matching ``pattern`` (whole name) are high, summed."""
    rx = re.compile(pattern)
    names = [k for k in rates if rx.fullmatch(k)]
    return float(sum(round(rates[k][1] * cycles) for k in names)), names


_CELL = re.compile(r"^\s*(\S+)\s+(\S+)\s*\((.*?)\);", re.M | re.S)
_PIN = re.compile(r"\.(\w+)\(\s*(.*?)\s*\)\s*(?:,|$)", re.S)


def _norm(net: str) -> str:
    net = net.strip()
    m = re.fullmatch(r"\\(\S+)\s*(\[\d+\])?", net)
    return (m.group(1) + (m.group(2) or "")) if m else net.replace(" ", "")


def _block_of(net_key: str) -> str:
    """The module instance path of an RTL net name (``lanes.lane0.acc[3]`` -> ``lanes.lane0``)."""
    base = net_key.split("[", 1)[0]
    return base.rsplit(".", 1)[0] if "." in base else ""


def instance_blocks(netlist: Path, pdk: Pdk) -> dict[str, str]:
    """Block (RTL instance path, ``""`` for the unit's top) of every cell of a flat netlist.

    A flip-flop belongs to the block of the RTL register on its output; a combinational
    cell to the block of the first register whose input cone it lies in (backward
    traversal from every register input); cells that feed only outputs or macros take the
    block of a public net they drive, else the top.
    """
    from .fanout import read_liberty_cells

    libcells = read_liberty_cells(list(pdk.liberty))
    seq = sequential_cells(pdk.liberty)
    text = netlist.read_text()
    alias: dict[str, str] = {}
    for m in re.finditer(r"^\s*assign\s+(\\\S+\s*(?:\[\d+\])?|\w+(?:\[\d+\])?)\s*=\s*"
                         r"(\\\S+\s*(?:\[\d+\])?|\w+(?:\[\d+\])?)\s*;", text, re.M):
        alias[_norm(m.group(1))] = _norm(m.group(2))

    def root(n: str) -> str:
        seen = 0
        while n in alias and seen < 64:
            n, seen = alias[n], seen + 1
        return n

    driver: dict[str, str] = {}
    inputs: dict[str, list[str]] = {}
    outs: dict[str, list[str]] = {}
    kind: dict[str, str] = {}
    macros: list[str] = []
    for m in _CELL.finditer(text):
        ctype, inst = m.group(1), m.group(2)
        lc = libcells.get(ctype)
        if lc is None:
            if ctype != "module":                     # a black-box macro: its RTL path
                macros.append(inst[1:] if inst.startswith("\\") else inst)
            continue
        name = inst[1:] if inst.startswith("\\") else inst
        kind[name] = ctype
        ins, os_ = [], []
        for pm in _PIN.finditer(m.group(3)):
            net = root(_norm(pm.group(2)))
            if pm.group(1) in lc.outputs:
                os_.append(net)
                driver.setdefault(net, name)
            else:
                ins.append(net)
        inputs[name], outs[name] = ins, os_
    block: dict[str, str] = {}
    flops = [c for c in kind if kind[c] in seq]
    for f in flops:
        pub = [n for n in outs[f] if not n.startswith("_")]
        block[f] = _block_of(pub[0]) if pub else ""
    for f in flops:
        b = block[f]
        stack = list(inputs[f])
        while stack:
            d = driver.get(stack.pop())
            if d is None or d in block:
                continue
            block[d] = b
            stack.extend(inputs[d])
    for c in kind:
        if c not in block:
            pub = [n for n in outs[c] if not n.startswith("_")]
            block[c] = _block_of(pub[0]) if pub else ""
    for c in macros:
        block[c] = _block_of(c)
    return block


def _instance_tcl(out_dir: Path, activities: tuple[float, ...], tag: str) -> Path:
    """OpenSTA commands reporting every cell's power at each global activity in turn
    (inputs included); the last activity stays set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = out_dir / f"{tag}_instances.tcl"
    lines = []
    for i, a in enumerate(activities):
        lines += [f"set_power_activity -input -activity {a} -duty 0.5",
                  f"set_power_activity -global -activity {a} -duty 0.5",
                  f'puts "@@INST_BEGIN {i}"', "report_power -instances [get_cells *] -digits 6",
                  f'puts "@@INST_END {i}"']
    extra.write_text("\n".join(lines) + "\n")
    return extra


def _instance_reports(log: Path, n: int) -> list[dict[str, tuple[float, float, float]]]:
    """The ``n`` per-cell power reports of :func:`_instance_tcl` in an OpenSTA log."""
    text = log.read_text()
    out: list[dict[str, tuple[float, float, float]]] = []
    for i in range(n):
        body = text.split(f"@@INST_BEGIN {i}", 1)[1].split(f"@@INST_END {i}", 1)[0]
        res: dict[str, tuple[float, float, float]] = {}
        for m in re.finditer(r"^\s*([-\d.e+]+)\s+([-\d.e+]+)\s+([-\d.e+]+)\s+([-\d.e+]+)"
                             r"\s+(\S+)\s*$", body, re.M):
            name = m.group(5)
            res[name[1:] if name.startswith("\\") else name] = (
                float(m.group(1)), float(m.group(2)), float(m.group(3)))
        if not res:
            raise EnergyError(f"OpenSTA reported no per-instance power (log: {log})")
        out.append(res)
    return out


def instance_power(netlist: Path, top: str, pdk: Pdk, out_dir: Path, *, clock_ns: float,
                   activities: tuple[float, ...], tag: str
                   ) -> tuple[list[dict[str, tuple[float, float, float]]], Any]:
    """Per-cell (internal, switching, leakage) power in W at each global activity of
    ``activities`` (inputs included), in one OpenSTA run; and the
    :class:`~leopard_rtl.flow.sta.StaResult` of the run (timing; its total power is at the
    last activity)."""
    from .sta import run_sta

    extra = _instance_tcl(out_dir, activities, tag)
    sta = run_sta(netlist, top, pdk, out_dir, clock_ns=clock_ns,
                  global_activity=activities[-1], activity_tcl=extra, tag=tag)
    return _instance_reports(sta.report, len(activities)), sta


def _memory_costs(cfg: Any, node_nm: float) -> dict[str, Any]:
    mems = {m.block: m for m in design_memories(cfg)}
    out: dict[str, Any] = {}
    for blk, m in mems.items():
        if blk == "kbuf" and "kbuf" in out:
            continue
        c = sram_cost(m.words, m.bits, node_nm)
        copies = sum(x.copies for x in design_memories(cfg) if x.block == blk)
        out[blk] = {"words": m.words, "bits": m.bits, "copies": copies, **c.to_dict()}
    c = sram_cost(cfg.exp_lut_size, cfg.e_bits, node_nm)
    out["lut"] = {"words": cfg.exp_lut_size, "bits": cfg.e_bits, "copies": 1, **c.to_dict(),
                  "note": "exp LUT (a ROM) charged as an SRAM read: an upper bound"}
    return out


def unit_access_energy(unit: str, cfg: Any, trace: Any, pdk_name: str, out_dir: Path, *,
                       heads: int | None = None, clock_ns: float | None = None,
                       synth_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Energy of one unit (``frontend`` or ``backend``) over a simulated run (module
    docstring, steps 1-5); per head, in pJ, by category, plus what went into it."""
    from ..paths import atomic_write, build_root
    from .activity import simulate_activity
    from .pdk import resolve_pdk
    from .power import read_activity
    from .run import LIB_CACHE, emit_unit, flow_fingerprint, synth_verilog

    if unit not in ACCESSES:
        raise EnergyError(f"unit must be frontend or backend, not {unit!r}")
    t0 = time.monotonic()
    verilog, top, _manifest = emit_unit(unit, cfg, out_dir / "rtl")
    key = hashlib.sha256(verilog.read_bytes() + pdk_name.encode() + str(clock_ns).encode()
                         + flow_fingerprint().encode() + _SYN_FORMAT).hexdigest()[:20]
    pdk = resolve_pdk(pdk_name, LIB_CACHE)
    disk = build_root() / "flow" / "_energy_synth" / f"{pdk_name}-{unit}-{key}"
    if synth_cache is not None and key in synth_cache:
        syn = synth_cache[key]
    elif (disk / "syn.json").is_file():
        syn = json.loads((disk / "syn.json").read_text())
    else:
        # synthesis and its STA run, which also reports every cell's power at activity
        # 0 and REF_ACTIVITY (the Verilog emitted above: no second emit, no second STA)
        extra = _instance_tcl(disk, (0.0, REF_ACTIVITY), "sta_power")
        rep = synth_verilog(verilog, top, pdk, disk, clock_ns=clock_ns or pdk.clock_ns,
                            macro_bits=1, activity=REF_ACTIVITY, activity_tcl=extra)
        netlist = Path(rep["synth"]["netlist"])
        t_ns = float(rep["clock_ns"])
        p0, p1 = _instance_reports(Path(rep["sta"]["report"]), 2)
        blocks = instance_blocks(netlist, pdk)
        per: dict[str, dict[str, float]] = {}
        for inst, (i0, s0, l0) in p0.items():
            b = blocks.get(inst, "")
            i1, s1, _l1 = p1.get(inst, (i0, s0, l0))
            d = per.setdefault(b, {"clock_w": 0.0, "slope_w": 0.0, "leak_w": 0.0, "cells": 0})
            d["clock_w"] += i0 + s0
            d["slope_w"] += ((i1 + s1) - (i0 + s0)) / REF_ACTIVITY
            d["leak_w"] += l0
            d["cells"] += 1
        syn = {"blocks": per, "clock_ns": t_ns, "fmax_mhz": rep["sta"]["fmax_mhz"],
               "area_um2": rep["synth"]["area_um2"], "netlist": str(netlist),
               "cells_unassigned": sum(1 for i in p0 if i not in blocks),
               # the per-cell powers must add up to OpenSTA's total (tests check it)
               "power_check_w": {"sta_total": rep["sta"]["power_w"]["total"],
                                 "cells_sum": sum(sum(v) for v in p1.values())}}
        atomic_write(disk / "syn.json", json.dumps(syn) + "\n")
    if synth_cache is not None:
        synth_cache[key] = syn
    t_synth = time.monotonic() - t0

    t1 = time.monotonic()
    saif, scope, n_heads = simulate_activity(unit, trace, cfg, out_dir / "sim", verilog,
                                             heads=heads, fmt="saif")
    rates, cycles = read_activity(saif, scope)
    t_sim = time.monotonic() - t1

    # register toggle rate per block (flip-flop outputs carry RTL register names)
    from .power import flop_outputs
    reg_rates: dict[str, list[float]] = {}
    for _inst, _pin, net in flop_outputs(Path(syn["netlist"]), pdk):
        k = _norm(net)
        if k in rates:
            reg_rates.setdefault(_block_of(k), []).append(rates[k][0])
    t_ns = syn["clock_ns"]                      # energy per cycle: P x T at the STA clock
    logic: dict[str, dict[str, float]] = {}
    gated_total = ungated_total = 0.0
    for b, d in syn["blocks"].items():
        act = float(np.mean(reg_rates[b])) if b in reg_rates else float(
            np.mean([r for v in reg_rates.values() for r in v])) if reg_rates else 0.0
        en_cycles = float(cycles)
        for prefix, enables in GATING[unit]:
            m = re.match(prefix, b) if prefix else True
            if m:
                groups = m.groups() if prefix else ()
                en_cycles = min(float(cycles), sum(
                    high_cycles(rates, cycles, e.format(*groups))[0] for e in enables))
                break
        data_pj = d["slope_w"] * act * cycles * t_ns * 1e3
        clk_gated = d["clock_w"] * en_cycles * t_ns * 1e3
        clk_full = d["clock_w"] * cycles * t_ns * 1e3
        logic[b] = {"activity": act, "enabled_cycles": en_cycles, "data_pj": data_pj,
                    "clock_pj": clk_gated, "clock_ungated_pj": clk_full,
                    "leak_w": d["leak_w"], "cells": d["cells"]}
        gated_total += data_pj + clk_gated
        ungated_total += data_pj + clk_full

    mem = _memory_costs(cfg, pdk_node_nm(pdk_name))
    acc: dict[str, dict[str, Any]] = {}
    for name, (pattern, blk, op, copies) in ACCESSES[unit].items():
        n, nets = high_cycles(rates, cycles, pattern)
        if not nets:
            raise EnergyError(f"{unit}: no net matching {pattern!r} in {saif} "
                              f"(needed to count {name} accesses)")
        n_acc = n * copies(cfg)
        e = n_acc * mem[blk][f"{op}_pj"]
        acc[name] = {"count": n_acc, "pj_each": mem[blk][f"{op}_pj"], "energy_pj": e,
                     "memory": blk, "category": ACCESS_CATEGORY[name]}
    own = {"frontend": ("kbuf",), "backend": ("vbuf", "sstore", "lut")}[unit]
    sram_leak_w = sum(mem[b]["leakage_uw"] * 1e-6 * mem[b]["copies"] for b in own)
    per_head = 1.0 / n_heads
    cat = {c: 0.0 for c in CATEGORIES}
    cat[f"{unit}_logic"] += gated_total * per_head
    for a in acc.values():
        cat[a["category"]] += a["energy_pj"] * per_head
    return {"unit": unit, "heads": n_heads, "cycles": cycles, "cycles_per_head":
            cycles * per_head, "split_pj": cat,
            "logic_ungated_pj": ungated_total * per_head,
            "logic_leak_w": sum(d["leak_w"] for d in syn["blocks"].values()),
            "sram_leak_w": sram_leak_w, "fmax_mhz": syn["fmax_mhz"],
            "area_um2": syn["area_um2"], "accesses": acc, "blocks": logic,
            "memories": {b: mem[b] for b in own}, "cells_unassigned": syn["cells_unassigned"],
            "power_check_w": syn["power_check_w"],
            "flops_matched": sum(len(v) for v in reg_rates.values()),
            "seconds": {"synth": round(t_synth, 1), "simulate": round(t_sim, 1)}}


def prune_to(trace: Any, fraction: float) -> Any:
    """``trace`` with each head's threshold recalibrated to prune ``fraction`` of its
    visible keys: the integer threshold is the head's ``fraction`` quantile of its visible
    integer scores q.k (a key is pruned when its score is below the threshold)."""
    import dataclasses

    if not 0.0 <= fraction < 1.0:
        raise EnergyError(f"--prune-to must be in [0, 1), not {fraction}")
    q = trace.q.astype(np.int64)
    k = trace.k.astype(np.int64)
    scores = np.einsum("hqd,hkd->hqk", q, k)
    vis = trace.visible()
    th = np.array([int(np.ceil(np.quantile(scores[h][vis], fraction))) if vis.any() else 0
                   for h in range(trace.heads)], dtype=np.int64)
    return dataclasses.replace(trace, threshold=th,
                               meta={**trace.meta, "threshold": f"recalibrated: prune "
                                     f"{fraction:g} of visible keys per head"}).validate()


def head_energy(cfg: Any, trace: Any, pdk_name: str, out_dir: Path, *,
                heads: int | None = None, clock_ns: float | None = None,
                variants: dict[str, Any] | None = None,
                synth_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Energy per head (pJ) of each variant on ``trace``, split into :data:`CATEGORIES`.

    ``variants``: name -> configuration (default LeOPArd ``cfg``, ``pruning_only`` and
    ``baseline``). Writes ``out_dir/energy.json``.
    """
    from sim.golden import run_golden

    from ..paths import atomic_write

    if variants is None:
        variants = {"leopard": cfg, "pruning_only": cfg.pruning_only(),
                    "baseline": cfg.baseline()}
    cache: dict[str, Any] = {} if synth_cache is None else synth_cache
    n = trace.heads if heads is None else max(1, min(heads, trace.heads))
    res: dict[str, Any] = {"method": "access", "pdk": pdk_name, "preset": cfg.name,
                           "heads": n, "variants": {}}
    for name, vcfg in variants.items():
        units = {u: unit_access_energy(u, vcfg, trace, pdk_name, out_dir / name / u,
                                       heads=heads, clock_ns=clock_ns, synth_cache=cache)
                 for u in ("frontend", "backend")}
        core_cycles = float(np.mean(run_golden(trace, vcfg).cycles[:n]))
        mem_access = max(m["access_ns"] for u in units.values()
                         for m in u["memories"].values())
        period = max(max(1e3 / u["fmax_mhz"] for u in units.values()), mem_access)
        leak_w = sum(u["logic_leak_w"] + u["sram_leak_w"] for u in units.values())
        split = {c: sum(u["split_pj"][c] for u in units.values()) for c in CATEGORIES}
        split["leakage"] = leak_w * core_cycles * period * 1e3
        total = sum(split.values())
        ungated = total - split["frontend_logic"] - split["backend_logic"] + sum(
            u["logic_ungated_pj"] for u in units.values()) + sum(
            u["accesses"].get("lut_read", {}).get("energy_pj", 0.0) / u["heads"]
            for u in units.values())
        res["variants"][name] = {"energy_per_head_pj": total, "split_pj": split,
                                 "energy_ungated_per_head_pj": ungated,
                                 "core_cycles_per_head": core_cycles, "clock_ns": period,
                                 "leakage_w": leak_w, "units": units}
    base = res["variants"]["baseline"]["energy_per_head_pj"] if "baseline" in variants else None
    for v in res["variants"].values():
        if base:
            v["energy_reduction_vs_baseline"] = base / v["energy_per_head_pj"]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "energy.json", json.dumps(res, indent=1) + "\n")
    return res
