"""Energy per head of each variant: power and area split of the synthesized core netlist
(cached by the Verilog's hash) times model cycles times the clock period."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import LeopardConfig
from ..flow.qor import BUFFER_BLOCKS
from ..flow.run import emit_unit, flow_fingerprint, synth_unit
from .common import VARIANTS, progress

__all__ = ["PowerInfo", "synth_cached", "synth_power", "energy_rows", "access_energy_rows",
           "rows_from_setting"]


# ------------------------------------------------------------------------ energy
@dataclass
class PowerInfo:
    """Synthesis result of one core variant used for energy."""

    config: str
    pdk: str
    clock_ns: float
    power_w: float
    area_um2: float
    macro_area_um2: float
    fmax_mhz: float
    split: dict[str, float]        # share of area: frontend / backend / buffers
    seconds: float
    cached: bool
    #: switching activity of the power run (toggles per cycle on every net; None when
    #: annotated from a simulation)
    activity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _area_split(report: dict[str, Any]) -> dict[str, float]:
    """Shares of the core's std-cell + macro area: front end, back end, buffers."""
    syn = report["synth"]
    mods: dict[str, dict[str, float]] = syn.get("modules", {})
    blocks: dict[str, float] = syn.get("blocks_um2", {})
    total = syn["area_um2"] + syn.get("macro_area_um2", 0.0)
    buf = sum(m["inclusive_area_um2"] for name, m in mods.items()
              if name.rsplit(".", 1)[-1] in BUFFER_BLOCKS)
    buf_fe = sum(m["inclusive_area_um2"] for name, m in mods.items()
                 if name.rsplit(".", 1)[-1] in ("kbuf", "survq"))
    # black-box macros: the exp LUT (a ROM, "lut") belongs to the back end's datapath,
    # every other macro is a buffer (K/V storage)
    rom = sum(float(m.get("area_um2", 0.0)) for m in syn.get("macros", [])
              if "lut" in str(m.get("memid", m.get("cell", ""))))
    fe = blocks.get("frontend", 0.0) - buf_fe
    be = (total - syn.get("macro_area_um2", 0.0) - blocks.get("frontend", 0.0)
          - (buf - buf_fe) + rom)
    buf += syn.get("macro_area_um2", 0.0) - rom
    if total <= 0 or fe < 0 or be < 0:
        return {"frontend": float("nan"), "backend": float("nan"), "buffers": float("nan")}
    return {"frontend": fe / total, "backend": be / total, "buffers": buf / total}


def synth_cached(unit: str, cfg: LeopardConfig, pdk: str, cache_dir: Path, *,
                 quiet: bool = False) -> tuple[dict[str, Any], bool, float]:
    """Synthesize ``unit`` for ``cfg`` on ``pdk`` unless an identical Verilog was done before.

    The cache is ``cache_dir/<pdk>-<unit>-<key>/report.json`` (the report of
    :func:`leopard_rtl.flow.run.synth_unit`), the key a SHA-256 of the Verilog and of the
    flow's own sources (:func:`leopard_rtl.flow.run.flow_fingerprint`: a change of the
    synthesis script, fan-out repair or STA invalidates it). Returns (report, cached,
    seconds).
    """

    t0 = time.monotonic()
    tmp = Path(cache_dir) / "rtl" / f"{unit}-{cfg.name}"
    verilog, _top, _ = emit_unit(unit, cfg, tmp)
    key = hashlib.sha256(verilog.read_bytes() + flow_fingerprint().encode()).hexdigest()[:16]
    out = Path(cache_dir) / f"{pdk}-{unit}-{key}"
    rep_path = out / "report.json"
    cached = rep_path.is_file()
    if cached:
        rep = json.loads(rep_path.read_text())
    else:
        progress(f"  synthesizing {unit} {cfg.name} on {pdk} (1-5 min) ...", quiet)
        rep = synth_unit(unit, cfg, pdk, out)
    return rep, cached, round(time.monotonic() - t0, 1)


def synth_power(cfg: LeopardConfig, pdk: str, cache_dir: Path, *,
                quiet: bool = False) -> PowerInfo:
    """Power, area and block split of the core for ``cfg`` on ``pdk`` (:func:`synth_cached`)."""
    rep, cached, secs = synth_cached("core", cfg, pdk, cache_dir, quiet=quiet)
    syn, sta = rep["synth"], rep["sta"]
    return PowerInfo(config=cfg.name, pdk=pdk, clock_ns=float(rep["clock_ns"]),
                     power_w=float(sta["power_w"]["total"]), area_um2=float(syn["area_um2"]),
                     macro_area_um2=float(syn.get("macro_area_um2", 0.0)),
                     fmax_mhz=float(sta["fmax_mhz"]), split=_area_split(rep),
                     seconds=float(rep.get("seconds", {}).get("total", secs)), cached=cached,
                     activity=sta.get("activity", {}).get("global"))


def energy_rows(cycles: dict[str, list[int]], power: dict[str, PowerInfo]
                ) -> dict[str, Any]:
    """Energy per head (nJ) of each variant and its split, from power and model cycles.

    ``E = P x mean cycles per head x clock period``; the split applies the area shares of
    the front end, back end and buffers to ``E`` (uniform activity: power ~ area).
    """
    rows: dict[str, Any] = {}
    for v in VARIANTS:
        p = power[v]
        e = p.power_w * float(np.mean(cycles[v])) * p.clock_ns      # W x ns = nJ
        rows[v] = {"energy_per_head_nj": e,
                   "split_nj": {k: e * s for k, s in p.split.items()}}
    base = rows["baseline"]["energy_per_head_nj"]
    for v in VARIANTS:
        rows[v]["reduction_vs_baseline"] = base / rows[v]["energy_per_head_nj"]
    return rows


def access_energy_rows(trace: Any, cfg: LeopardConfig, pdk: str, out_dir: Path, *,
                       synth_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Energy per head (nJ) of each variant on ``trace`` by the access method
    (:func:`leopard_rtl.flow.energy.head_energy`: SRAM accesses counted in a simulation of
    the RTL x CACTI energy, per-block logic energy at the simulated activity with clock
    gating modelled, leakage x time at each design's own clock), split into
    :data:`~leopard_rtl.flow.energy.CATEGORIES`; same keys as :func:`energy_rows`."""
    from ..flow.energy import head_energy

    res = head_energy(cfg, trace, pdk, out_dir, synth_cache=synth_cache)
    rows: dict[str, Any] = {}
    for v in VARIANTS:
        r = res["variants"][v]
        rows[v] = {"energy_per_head_nj": r["energy_per_head_pj"] / 1e3,
                   "split_nj": {k: x / 1e3 for k, x in r["split_pj"].items()},
                   "energy_ungated_nj": r["energy_ungated_per_head_pj"] / 1e3,
                   "clock_ns": r["clock_ns"],
                   "reduction_vs_baseline": r["energy_reduction_vs_baseline"]}
    rows["method"] = "access"
    rows["power_from"] = cfg.name
    rows["absolute"] = True
    return rows


def rows_from_setting(setting: dict[str, Any], cfg_name: str) -> dict[str, Any]:
    """The rows of :func:`access_energy_rows` from one setting of a
    :func:`leopard_rtl.eval.energy_traces.trace_energy` record (same numbers)."""
    rows: dict[str, Any] = {}
    for v in VARIANTS:
        r = setting["variants"][v]
        rows[v] = {k: r[k] for k in ("energy_per_head_nj", "split_nj", "energy_ungated_nj",
                                     "clock_ns")}
        rows[v]["reduction_vs_baseline"] = (setting["variants"]["baseline"]
                                            ["energy_per_head_nj"] / r["energy_per_head_nj"])
    rows.update({"method": "access", "power_from": cfg_name, "absolute": True,
                 "pruned_fraction": setting["pruned_fraction"]})
    return rows
