"""OpenROAD-flow-scripts hand-off: an out-of-tree design per platform.

``leopard-rtl generate --platform P`` calls :func:`write_orfs`, which writes into
``<out>/flow/<platform>/``:

``config.mk``
    ``DESIGN_NAME`` (the unit's Verilog top), ``DESIGN_NICKNAME`` (``leopard_<preset>_<unit>``),
    ``PLATFORM``, ``VERILOG_FILES`` (absolute path of the emitted Verilog), ``SDC_FILE``,
    ``LEOPARD_CONSTRAINTS`` (the folder holding ``leopard.sdc``), and ``?=`` knobs
    (``CORE_UTILIZATION``, ``PLACE_DENSITY``, ``SYNTH_HIERARCHICAL``, ``ABC_AREA``).
``constraint.sdc``
    the ``set`` lines (``clk_port_name``, ``clk_period`` in the platform's unit: ps for
    asap7, ns otherwise, ``clk_io_pct``) then ``source $::env(LEOPARD_CONSTRAINTS)/leopard.sdc``.

Run with ``make -C $ORFS/flow DESIGN_CONFIG=<out>/flow/<platform>/config.mk`` (see
``constraints/README.md``). The time unit is converted in one place: :func:`period_in_unit`.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..emit import write_if_changed
from .pdk import PDKS

__all__ = ["PLATFORMS", "period_in_unit", "write_orfs", "sdc_text", "config_mk_text"]

#: The folder holding ``leopard.sdc`` (constraints/, shipped as leopard_rtl.constraints).
CONSTRAINTS = Path(str(files("leopard_rtl.constraints")))

#: ORFS platforms: time unit, default clock and knobs, from the one platform table
#: (constraints/platforms.json, read by :mod:`leopard_rtl.flow.pdk`).
PLATFORMS: dict[str, dict[str, Any]] = {
    name: {"time_unit": spec.time_unit, "clock_ns": spec.clock_ns, **spec.orfs}
    for name, spec in PDKS.items() if spec.orfs}


def period_in_unit(period_ns: float, platform: str) -> float:
    """A clock period given in ns, in ``platform``'s SDC time unit (ps for asap7)."""
    unit = PLATFORMS[platform]["time_unit"]
    scale = {"ns": 1.0, "ps": 1000.0}[unit]
    return round(period_ns * scale, 6)


def _fmt(x: float) -> str:
    return f"{x:g}"


def sdc_text(platform: str, period_ns: float, io_pct: float) -> str:
    """The per-design ``constraint.sdc``."""
    p = PLATFORMS[platform]
    return (f"# LeOPArd constraints for {platform} (time unit: {p['time_unit']}).\n"
            f"# Clock period {_fmt(period_ns)} ns = {_fmt(period_in_unit(period_ns, platform))}"
            f" {p['time_unit']}.\n"
            "set clk_port_name clk\n"
            f"set clk_period {_fmt(period_in_unit(period_ns, platform))}\n"
            f"set clk_io_pct {_fmt(io_pct)}\n"
            "source $::env(LEOPARD_CONSTRAINTS)/leopard.sdc\n")


def config_mk_text(platform: str, top: str, nickname: str, verilog: Path,
                   knobs: dict[str, Any]) -> str:
    """The per-design ``config.mk``."""
    return "\n".join([
        f"# LeOPArd design {nickname} for OpenROAD-flow-scripts, platform {platform}.",
        "# make -C $ORFS/flow DESIGN_CONFIG=$(realpath config.mk)",
        f"export DESIGN_NAME = {top}",
        f"export DESIGN_NICKNAME = {nickname}",
        f"export PLATFORM = {platform}",
        "",
        f"export VERILOG_FILES = {verilog.resolve()}",
        "export SDC_FILE = $(dir $(DESIGN_CONFIG))constraint.sdc",
        f"export LEOPARD_CONSTRAINTS = {CONSTRAINTS.resolve()}",
        "",
        "# Knobs (?=: override on the make command line).",
        f"export CORE_UTILIZATION ?= {knobs['core_utilization']}",
        f"export PLACE_DENSITY ?= {knobs['place_density']}",
        "# Keep the blocks (front end lanes, buffers, softmax) as separate modules in reports.",
        f"export SYNTH_HIERARCHICAL ?= {knobs['synth_hierarchical']}",
        "# Area-oriented ABC script: the datapath is wide and shallow.",
        f"export ABC_AREA ?= {knobs['abc_area']}",
        "",
    ])


def write_orfs(paths: dict[str, Path], cfg: Any, platform: str,
               out_dir: Path) -> dict[str, Path]:
    """Write ``out_dir/flow/<platform>/{config.mk,constraint.sdc}`` for an emitted build.

    Parameters
    ----------
    paths : dict
        ``{"verilog": Path, "manifest": Path}`` from :func:`leopard_rtl.emit.write_build`.
    cfg : LeopardConfig
        The configuration (its ``name`` makes the nickname).
    platform : str
        ``sky130hd``, ``nangate45`` or ``asap7``.
    out_dir : Path
        The build folder.

    Returns
    -------
    dict
        ``{"orfs_<platform>_config": Path, "orfs_<platform>_sdc": Path}``.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    manifest = json.loads(Path(paths["manifest"]).read_text())
    top = manifest["top"]
    unit = manifest.get("unit", top)
    knobs = PLATFORMS[platform]
    nickname = f"leopard_{cfg.name}_{unit}".replace("+", "_")
    d = Path(out_dir) / "flow" / platform
    cfg_path, sdc_path = d / "config.mk", d / "constraint.sdc"
    write_if_changed(cfg_path, config_mk_text(platform, top, nickname,
                                              Path(paths["verilog"]), knobs))
    write_if_changed(sdc_path, sdc_text(platform, knobs["clock_ns"], knobs["io_pct"]))
    return {f"orfs_{platform}_config": cfg_path, f"orfs_{platform}_sdc": sdc_path}
