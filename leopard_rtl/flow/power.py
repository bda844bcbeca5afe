"""Switching activity from simulation, mapped onto the netlist; energy per attention head.

Method (docs/ENERGY.md):

1. Simulate the unit's RTL Verilog (the same file Yosys reads) on the trace with
   Verilator (default) or Icarus and dump a VCD of the DUT (:mod:`leopard_rtl.flow.activity`).
2. :func:`vcd_activity` counts, per signal bit, toggles per clock cycle (rising edges of
   ``clk``) and the fraction of cycles it is high (duty).
3. :func:`activity_tcl` maps them onto the synthesized netlist: every flip-flop whose
   output net keeps an RTL register name (after ``opt_clean -purge`` one public alias of
   the net survives; the VCD has all aliases) and every primary input bit.
4. Power. OpenSTA 2.0.17 (Debian) has no VCD reader, its ``set_power_activity -pins`` is
   broken (calls a missing ``get_pins_error``), and the underlying
   ``sta::set_power_pin_activity`` is ignored on register outputs (register activity is
   always propagated from the D input): tests/test_flow_power.py pins this behaviour
   down. So the power run uses the *simulated mean toggle rate of the matched registers*
   as the ``-global`` activity of every net (method ``vcd-mean``); the per-pin file is
   still written (``activity.tcl``) for OpenSTA versions that honour it.
5. :func:`energy_per_head`: energy/head = power x cycles/head x clock period.

Validation: a free-running counter, whose bit i toggles exactly 2**-i times per cycle,
gives those rates from its VCD, and every flip-flop of its netlist is matched to its
register bit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .pdk import Pdk
from .synth import sequential_cells

__all__ = ["vcd_activity", "saif_activity", "read_activity", "activity_tcl", "energy_per_head",
           "unit_energy", "flop_outputs", "PIN_ACTIVITY_PROC"]


def vcd_activity(vcd: Path, root: str = "", clock: str = "clk"
                 ) -> tuple[dict[str, tuple[float, float]], int]:
    """Per-bit (toggles per cycle, duty) of every signal in a VCD, and the cycle count.

    ``root`` is the DUT's scope (``tb_top.u.dut``; empty: the first scope). Names are
    hierarchical below it, joined with ``.``, with ``[i]`` for bits of vectors
    (``lanes.lane0.acc[3]``); the DUT's own signals have no prefix. Cycles are rising
    edges of the DUT's ``clock``; duty is the fraction of those edges where the bit is 1.
    """
    ids: dict[str, list[tuple[str, int]]] = {}
    scope: list[str] = []
    clk_id = None
    fh = open(vcd)                       # streamed: VCDs of real traces are 100s of MB
    head_lines = []
    for line in fh:
        head_lines.append(line)
        if "$enddefinitions" in line:
            break
    head = "".join(head_lines)
    want = root.split(".") if root else None
    for tok in re.finditer(r"\$scope\s+\w+\s+(\S+)\s+\$end|\$upscope\s+\$end|"
                           r"\$var\s+\w+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end", head):
        if tok.group(1):
            scope.append(tok.group(1))
        elif tok.group(2) is None:
            scope.pop()
        else:
            width, code, name = int(tok.group(2)), tok.group(3), tok.group(4).lstrip("\\")
            base = want if want is not None else scope[:1]
            if scope[:len(base)] != base:
                continue
            path = ".".join(scope[len(base):] + [name])
            ids.setdefault(code, []).append((path, width))
            if len(scope) == len(base) and name == clock:
                clk_id = code
    if clk_id is None:
        fh.close()
        raise ValueError(f"{vcd}: no {clock!r} signal in scope {root or '(top)'}")
    widths = {c: v[0][1] for c, v in ids.items()}
    # One pass over the value changes: per signal, the rising-edge count at each change
    # and the value; then per signal, vectorized toggles and duty (a value set before
    # edge c+1 holds at edges c+1 .. next change).
    at: dict[str, list[int]] = {c: [] for c in widths}
    vals: dict[str, list[str]] = {c: [] for c in widths}
    cycles = 0
    clk_val = ""
    with fh:
        for val, code in _vcd_changes(fh):
            if code == clk_id:
                if val == "1" and clk_val == "0":
                    cycles += 1
                clk_val = val
                continue
            lst = at.get(code)
            if lst is not None:
                lst.append(cycles)
                vals[code].append(val)
    out: dict[str, tuple[float, float]] = {}
    n = max(cycles, 1)
    table = str.maketrans("xXzZ", "0000")
    for code, names in ids.items():
        w = widths[code]
        t = np.zeros(w)
        h = np.zeros(w)
        if vals[code]:
            text = "".join(v.translate(table).rjust(w, "0")[-w:] for v in vals[code])
            bits = (np.frombuffer(text.encode(), np.uint8) == ord("1")).reshape(-1, w)
            t = (bits[1:] != bits[:-1]).sum(axis=0).astype(float)
            edges = np.asarray(at[code], dtype=np.int64)
            hold = np.diff(np.append(edges, cycles))
            h = (bits * hold[:, None]).sum(axis=0).astype(float)
        t /= n
        h /= n
        for path, _ in names:
            for i in range(w):
                bit = w - 1 - i          # VCD vectors are MSB first
                key = f"{path}[{bit}]" if w > 1 else path
                out[key] = (float(t[i]), float(h[i]))
    return out, cycles


_SAIF_NET = re.compile(r"^\s*\((\S+)\s+\(T0 (\d+)\)\s+\(T1 (\d+)\).*?\(TC (\d+)\)")


def saif_activity(saif: Path, root: str = "", clock: str = "clk"
                  ) -> tuple[dict[str, tuple[float, float]], int]:
    """Per-bit (toggles per cycle, duty) of every net in a SAIF, and the cycle count.

    The SAIF counterpart of :func:`vcd_activity`, with the same keys: ``root`` is the
    DUT's instance path (``leopard_vcd_top.t.dut``; empty: the first instance), names below
    it are joined with ``.``, bits as ``name[i]``. Cycles are the rising edges of the DUT's
    ``clock`` (half its toggle count, rounded up: it starts low); toggles per cycle is the
    net's toggle count (``TC``) over the cycles, duty its time high (``T1``) over the
    duration. Verilator writes one net per line, which this reader relies on.
    """
    want = root.split(".") if root else None
    stack: list[str] = []
    in_net: list[bool] = []
    raw: dict[str, tuple[int, int]] = {}
    duration = 0
    with open(saif) as fh:
        for line in fh:
            t = line.strip()
            if t.startswith("(INSTANCE"):
                stack.append(t.split()[1].replace("\\", ""))
                in_net.append(False)
            elif t.startswith("(NET"):
                in_net.append(True)
            elif t == ")":
                if in_net:
                    if not in_net.pop():
                        stack.pop()
            elif t.startswith("(DURATION"):
                duration = int(t.split()[1].rstrip(")"))
            elif in_net and in_net[-1]:
                m = _SAIF_NET.match(t)
                if m is None:
                    continue
                base = want if want is not None else stack[:1]
                if stack[:len(base)] != base:
                    continue
                name = m.group(1).replace("\\", "")
                path = ".".join(stack[len(base):] + [name])
                raw[path] = (int(m.group(4)), int(m.group(3)))
    if clock not in raw:
        raise ValueError(f"{saif}: no {clock!r} net in instance {root or '(top)'}")
    cycles = (raw[clock][0] + 1) // 2
    n = max(cycles, 1)
    dur = max(duration, 1)
    return {k: (tc / n, t1 / dur) for k, (tc, t1) in raw.items()}, cycles


def read_activity(path: Path, root: str = "", clock: str = "clk"
                  ) -> tuple[dict[str, tuple[float, float]], int]:
    """:func:`saif_activity` or :func:`vcd_activity`, by the file's suffix."""
    if Path(path).suffix == ".saif":
        return saif_activity(path, root, clock)
    return vcd_activity(path, root, clock)


def _vcd_changes(lines: Any) -> Any:
    """(value, id code) of every value change line after the header."""
    for line in lines:
        c0 = line[:1]
        if not c0 or c0 in "#$rR\n":
            continue
        if c0 == "b" or c0 == "B":
            val, code = line[1:].split()
            yield val, code
        else:
            yield c0, line[1:].strip()


def flop_outputs(netlist: Path, pdk: Pdk) -> list[tuple[str, str, str]]:
    """(instance, output pin, net) of every flip-flop in a flat Yosys netlist."""
    seq = sequential_cells(pdk.liberty)
    text = netlist.read_text()
    out = []
    for m in re.finditer(r"^\s*(\S+)\s+(\S+)\s*\((.*?)\);", text, re.M | re.S):
        if m.group(1) not in seq:
            continue
        for pm in re.finditer(r"\.(Q|QN|Q_N|QB)\(\s*(.*?)\s*\)\s*(?:,|$)", m.group(3), re.S):
            out.append((m.group(2), pm.group(1), pm.group(2)))
    return out


#: OpenSTA 2.0.17's ``set_power_activity -pins`` is broken (it calls a missing
#: ``get_pins_error`` and would only annotate input pins): annotate through the
#: underlying command instead.
PIN_ACTIVITY_PROC = """\
proc leopard_pin_activity {name activity duty} {
  foreach pin [get_pins $name] { sta::set_power_pin_activity $pin $activity $duty }
}
"""


def _net_key(net: str) -> str:
    """Netlist net text (``\\lanes.acc [3]``, ``in0[2]``) to a VCD key."""
    net = net.strip()
    if net.startswith("\\"):
        m = re.fullmatch(r"\\(\S+)\s*(\[\d+\])?", net)
        if m:
            return m.group(1) + (m.group(2) or "")
    return net.replace(" ", "")


def activity_tcl(netlist: Path, pdk: Pdk, rates: dict[str, tuple[float, float]],
                 out: Path, input_ports: list[str] | None = None) -> dict[str, int]:
    """Write OpenSTA ``set_power_activity`` lines for flip-flop outputs and inputs."""
    lines = []
    hit = miss = 0
    matched: list[float] = []
    by_inst: dict[str, list[tuple[str, str]]] = {}
    for inst, pin, net in flop_outputs(netlist, pdk):
        by_inst.setdefault(inst, []).append((pin, net))
    for inst, pins in by_inst.items():
        # The register's RTL name is on Q (or, failing that, on QN with inverted duty).
        rate = None
        for pin, net in pins:
            key = _net_key(net)
            if key in rates:
                a, d = rates[key]
                rate = (a, 1.0 - d if pin in ("QN", "Q_N", "QB") else d)
                break
        if rate is None:
            miss += 1
            continue
        hit += 1
        matched.append(rate[0])
        iname = inst[1:] if inst.startswith("\\") else inst
        for pin, _net in pins:
            a, d = rate
            if pin in ("QN", "Q_N", "QB"):
                d = 1.0 - d
            lines.append(f"leopard_pin_activity {{{iname}/{pin}}} {a:.6g} "
                         f"{min(max(d, 0.0), 1.0):.6g}")
    n_in = 0
    for port in input_ports or []:
        bits = [k for k in rates if k == port or k.startswith(port + "[")]
        for b in bits:
            a, d = rates[b]
            lines.append(f"set_power_activity -input_ports [get_ports {{{b}}}] "
                         f"-activity {a:.6g} -duty {min(max(d, 0.0), 1.0):.6g}")
            n_in += 1
    out.write_text(PIN_ACTIVITY_PROC + "\n".join(lines) + "\n")
    return {"flops_annotated": hit, "flops_unmatched": miss, "input_bits_annotated": n_in,
            "mean_flop_activity": float(np.mean(matched)) if matched else 0.0}


def unit_energy(unit: str, cfg: Any, trace: Any, pdk_name: str, out_dir: Path, *,
                clock_ns: float | None, activity_source: str, activity: float = 0.1,
                heads: int | None = None, simulator: str = "verilator",
                synth_cache: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Power and energy per head of one unit (see :func:`energy_per_head`).

    ``synth_cache`` (Verilog hash -> synthesis report) skips re-synthesizing a unit whose
    Verilog is the same for another variant (the back end does not depend on the
    pruning switches).
    """
    import hashlib
    import time

    from sim.golden import run_golden

    from .activity import simulate_vcd
    from .pdk import resolve_pdk
    from .run import LIB_CACHE, emit_unit, synth_unit
    from .sta import run_sta

    t0 = time.monotonic()
    verilog, top, manifest = emit_unit(unit, cfg, out_dir / "rtl")
    key = hashlib.sha256(verilog.read_bytes() + pdk_name.encode()
                         + str(clock_ns).encode()).hexdigest()
    if synth_cache is not None and key in synth_cache:
        rep = synth_cache[key]
    else:
        rep = synth_unit(unit, cfg, pdk_name, out_dir, clock_ns=clock_ns, activity=activity)
        if synth_cache is not None:
            synth_cache[key] = rep
    t_synth = time.monotonic() - t0
    t_ns = rep["clock_ns"]
    row: dict[str, Any] = {"unit": unit, "area_um2": rep["synth"]["area_um2"],
                           "synth_dir": str(Path(rep["synth"]["netlist"]).parent),
                           "macro_bits": sum(m["bits"] for m in rep["synth"]["macros"]),
                           "clock_ns": t_ns,
                           "perf_cycles_per_head": float(np.mean(run_golden(trace, cfg).cycles))}
    if activity_source == "vcd":
        t1 = time.monotonic()
        vcd, scope, n_heads = simulate_vcd(unit, trace, cfg, out_dir / "sim", verilog,
                                           heads=heads, simulator=simulator)
        t_sim = time.monotonic() - t1
        rates, cycles = vcd_activity(vcd, scope)
        pdk = resolve_pdk(pdk_name, LIB_CACHE)
        netlist = Path(rep["synth"]["netlist"])
        ins = [p["name"] for p in manifest["ports"] if p["dir"] == "in" and p["name"] != "clk"]
        stats = activity_tcl(netlist, pdk, rates, out_dir / "activity.tcl", input_ports=ins)
        if stats["flops_annotated"] == 0:
            raise ValueError(f"no flip-flop of {netlist} matched a signal of {vcd}")
        # OpenSTA 2.0.17 ignores per-pin activities on register outputs (docs/ENERGY.md),
        # so the simulated mean register toggle rate is applied to every net (-global).
        mean_act = stats["mean_flop_activity"]
        sta = run_sta(netlist, top, pdk, out_dir, clock_ns=t_ns, global_activity=mean_act,
                      tag="sta_vcd")
        vcd.unlink()                     # large; the rates are what matter
        power = sta.power_w
        cyc = cycles / n_heads
        row.update({"sim_heads": n_heads, "sim_cycles": cycles, "cycles_per_head": cyc,
                    "annotation": stats, "activity_used": mean_act, "method": "vcd-mean",
                    "simulator": simulator,
                    "seconds": {"synth": round(t_synth, 1), "simulate": round(t_sim, 1),
                                "total": round(time.monotonic() - t0, 1)}})
    else:
        power = rep["sta"]["power_w"]
        cyc = row["perf_cycles_per_head"]
        row.update({"cycles_per_head": cyc, "activity_used": activity, "method": "global",
                    "seconds": {"synth": round(t_synth, 1)}})
    row["power_w"] = power
    row["energy_per_head_nj"] = power["total"] * cyc * t_ns          # W * ns = nJ
    return row


def energy_per_head(cfg: Any, trace_path: Path, pdk_name: str, out_dir: Path, *,
                    unit: str | None = None, clock_ns: float | None = None,
                    activity_source: str = "vcd", activity: float = 0.1,
                    heads: int | None = None, simulator: str = "verilator") -> dict[str, Any]:
    """Energy per head of LeOPArd, pruning-only and the baseline on a trace.

    For each variant and unit (``frontend`` and ``backend``, or ``unit``): synthesize,
    then

    * ``activity_source="vcd"``: simulate the unit's Verilog on every head of the trace
      (``simulator``: Verilator or Icarus, :mod:`~leopard_rtl.flow.activity`),
      annotate flip-flop and input activities (see the module docstring: the mean
      register toggle rate is what OpenSTA 2.0.17 can use), and take energy/head =
      power x (simulated cycles / heads) x clock period: the energy of the whole
      simulated run (loading K/V, queries, drain) divided by the heads (the first
      ``heads`` heads; all when None);
    * ``"global"``: every register and input toggles ``activity`` times per cycle (the
      average-activity approximation) and cycles/head come from the performance model.

    Memory macros (black boxes, >= 4096 bits) add no power here: see docs/ENERGY.md.
    """
    from sim.trace import load_trace

    trace = load_trace(trace_path)
    variants = {"leopard": cfg, "pruning_only": cfg.pruning_only(), "baseline": cfg.baseline()}
    units = [unit] if unit else ["frontend", "backend"]
    res: dict[str, Any] = {"trace": str(trace_path), "pdk": pdk_name, "preset": cfg.name,
                           "activity_source": activity_source, "heads": trace.heads,
                           "units": units, "variants": {}}
    cache: dict[str, dict[str, Any]] = {}
    for name, vcfg in variants.items():
        rows = {u: unit_energy(u, vcfg, trace, pdk_name, out_dir / name / u,
                               clock_ns=clock_ns, activity_source=activity_source,
                               activity=activity, heads=heads, simulator=simulator,
                               synth_cache=cache)
                for u in units}
        res["variants"][name] = {
            "units": rows,
            "energy_per_head_nj": sum(r["energy_per_head_nj"] for r in rows.values()),
            "power_w": sum(r["power_w"]["total"] for r in rows.values()),
            "clock_ns": next(iter(rows.values()))["clock_ns"]}
        (out_dir / "energy.json").write_text(json.dumps(res, indent=2) + "\n")
    base = res["variants"]["baseline"]["energy_per_head_nj"]
    for v in res["variants"].values():
        v["energy_reduction_vs_baseline"] = round(base / v["energy_per_head_nj"], 4)
    (out_dir / "energy.json").write_text(json.dumps(res, indent=2) + "\n")
    return res
