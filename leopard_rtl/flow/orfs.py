"""OpenROAD-flow-scripts hand-off: a self-contained out-of-tree design per platform.

``leopard-rtl generate --platform P`` calls :func:`write_orfs`, which writes into
``<out>/flow/<platform>/`` everything ORFS needs, so the folder can be copied anywhere:

``<top>.v``
    the emitted Verilog; with ``memory="macro"`` each parameterized black-box bank
    ``leopard_kbuf_bank #(...)`` becomes a concrete macro ``leopard_kbuf_bank_<W>x<D>``.
``leopard.sdc``
    the project's constraints (a copy of ``constraints/leopard.sdc``).
``constraint.sdc``
    the ``set`` lines (``clk_port_name``, ``clk_period`` in the platform's unit: ps for
    asap7, ns otherwise, ``clk_io_pct``) then ``source $::env(LEOPARD_CONSTRAINTS)/leopard.sdc``.
``macros/<macro>.lef``, ``macros/<macro>.lib``
    stand-in SRAM macros (fake-RAMs, as ORFS's own ``fakeram`` macros) for each concrete
    bank: area from the platform's SRAM area model, signal pins on one edge on the
    platform's macro pin layer, power pins, and a liberty model with stand-in timing
    (access 20 % and setup 5 % of the platform's default clock). Replace them with a
    compiled SRAM's views for sign-off.
``config.mk``
    ``DESIGN_NAME`` (the unit's Verilog top), ``DESIGN_NICKNAME`` (``leopard_<preset>_<unit>``),
    ``PLATFORM``, every path relative to the config's own folder (``$(dir
    $(DESIGN_CONFIG))``): ``VERILOG_FILES``, ``SDC_FILE``, ``LEOPARD_CONSTRAINTS``,
    ``ADDITIONAL_LEFS``/``ADDITIONAL_LIBS`` (macros); and ``?=`` knobs (``CORE_UTILIZATION``,
    ``PLACE_DENSITY``, ``SYNTH_HIERARCHICAL``, ``ABC_AREA``).

Run with ``make -C $ORFS/flow DESIGN_CONFIG=$(realpath <out>/flow/<platform>/config.mk)``
(see ``constraints/README.md``). The time unit is converted in one place:
:func:`period_in_unit`. Platform facts come from the one platform table.
"""

from __future__ import annotations

import json
import math
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..emit import write_if_changed
from ..hw.kbuffer import MACRO_NAME
from .pdk import PDKS
from .synth import sram_area_um2

__all__ = ["PLATFORMS", "period_in_unit", "write_orfs", "sdc_text", "config_mk_text",
           "concrete_macros", "macro_lef", "macro_lib"]

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


def config_mk_text(platform: str, top: str, nickname: str, verilog_name: str,
                   knobs: dict[str, Any], macros: list[str] | None = None) -> str:
    """The per-design ``config.mk``; every path is relative to its folder."""
    here = "$(dir $(DESIGN_CONFIG))"
    lines = [
        f"# LeOPArd design {nickname} for OpenROAD-flow-scripts, platform {platform}.",
        "# make -C $ORFS/flow DESIGN_CONFIG=$(realpath config.mk)",
        f"export DESIGN_NAME = {top}",
        f"export DESIGN_NICKNAME = {nickname}",
        f"export PLATFORM = {platform}",
        "",
        "# Every file is beside this config.mk.",
        f"export VERILOG_FILES = {here}{verilog_name}",
        f"export SDC_FILE = {here}constraint.sdc",
        f"export LEOPARD_CONSTRAINTS = {here}",
    ]
    if macros:
        lines += [
            "# Stand-in SRAM macros (K buffer banks): replace with compiled SRAM views.",
            "export ADDITIONAL_LEFS = " + " ".join(f"{here}macros/{m}.lef" for m in macros),
            "export ADDITIONAL_LIBS = " + " ".join(f"{here}macros/{m}.lib" for m in macros),
        ]
    lines += [
        "",
        "# Knobs (?=: override on the make command line).",
        f"export CORE_UTILIZATION ?= {knobs['core_utilization']}",
        f"export PLACE_DENSITY ?= {knobs['place_density']}",
        "# Keep the blocks (front end lanes, buffers, softmax) as separate modules in reports.",
        f"export SYNTH_HIERARCHICAL ?= {knobs['synth_hierarchical']}",
        "# Area-oriented ABC script: the datapath is wide and shallow.",
        f"export ABC_AREA ?= {knobs['abc_area']}",
        "",
    ]
    return "\n".join(lines)


_BANK = re.compile(rf"^(\s*){MACRO_NAME}\s*#\s*\((.*?)\)\s*(\\?\S+)\s*\(", re.M | re.S)


def concrete_macros(text: str) -> tuple[str, dict[str, dict[str, int]]]:
    """``text`` with every ``leopard_kbuf_bank #(...)`` instance renamed to a concrete
    ``leopard_kbuf_bank_<WIDTH>x<DEPTH>``, and those macros' parameters."""
    found: dict[str, dict[str, int]] = {}

    def sub(m: re.Match[str]) -> str:
        params = {k.lower(): int(v) for k, v in
                  re.findall(r"\.(\w+)\(\s*(?:\d+'[sd]?)?(\d+)\s*\)", m.group(2))}
        name = f"{MACRO_NAME}_{params['width']}x{params['depth']}"
        found[name] = params
        return f"{m.group(1)}{name} {m.group(3)} ("
    return _BANK.sub(sub, text), found


def _pins(p: dict[str, int]) -> list[tuple[str, str, int]]:
    """(name, direction, width) of a bank's ports (the interface of MACRO_VERILOG)."""
    return [("clk", "input", 1), ("we", "input", 1), ("waddr", "input", p["abits"]),
            ("wdata", "input", p["width"]), ("re", "input", 1),
            ("raddr", "input", p["abits"]), ("rdata", "output", p["width"])]


def _grid(x: float) -> float:
    return math.ceil(x * 100 - 1e-9) / 100          # 0.01 um: on every platform's grid


def macro_size(platform: str, p: dict[str, int]) -> tuple[float, float]:
    """(width, height) in um: the SRAM area model's area, tall enough for the pins."""
    pitch = PLATFORMS[platform]["macro_pin_pitch_um"]
    n_pins = sum(w for _, _, w in _pins(p))
    area = sram_area_um2(platform, p["width"] * p["depth"])
    h = _grid(max(math.sqrt(area), (n_pins + 4) * pitch))
    return _grid(max(area / h, 8 * pitch)), h


def macro_lef(platform: str, name: str, p: dict[str, int]) -> str:
    """LEF of a stand-in bank: signal pins on the left edge, power rails top and bottom."""
    k = PLATFORMS[platform]
    layer, pitch = k["macro_pin_layer"], k["macro_pin_pitch_um"]
    w, h = macro_size(platform, p)
    pw = _grid(pitch / 2)
    out = ["VERSION 5.7 ;", 'BUSBITCHARS "[]" ;', 'DIVIDERCHAR "/" ;', f"MACRO {name}",
           "  CLASS BLOCK ;", "  ORIGIN 0 0 ;", f"  SIZE {w:.2f} BY {h:.2f} ;",
           "  SYMMETRY X Y ;"]
    y = 2 * pitch
    for pin, direction, width in _pins(p):
        for b in range(width):
            bit = f"{pin}[{b}]" if width > 1 else pin
            use = "CLOCK" if pin == "clk" else "SIGNAL"
            out += [f"  PIN {bit}", f"    DIRECTION {direction.upper()} ;", f"    USE {use} ;",
                    "    PORT", f"      LAYER {layer} ;",
                    f"      RECT 0.00 {_grid(y):.2f} {pw:.2f} {_grid(y) + pw:.2f} ;",
                    "    END", f"  END {bit}"]
            y += pitch
    for i, pin in enumerate(k["macro_power_pins"]):
        y0 = h - 2 * pitch if i == 0 else pitch / 2
        out += [f"  PIN {pin}", "    DIRECTION INOUT ;",
                f"    USE {'POWER' if i == 0 else 'GROUND'} ;", "    PORT",
                f"      LAYER {layer} ;",
                f"      RECT {2 * pitch:.2f} {_grid(y0):.2f} {w - 2 * pitch:.2f} "
                f"{_grid(y0) + pw:.2f} ;", "    END", f"  END {pin}"]
    out += ["  OBS", f"    LAYER {layer} ;", f"      RECT {pw + pitch:.2f} {2 * pitch:.2f} "
            f"{w - pitch:.2f} {h - 3 * pitch:.2f} ;", "  END", f"END {name}", "",
            "END LIBRARY", ""]
    return "\n".join(out)


def macro_lib(platform: str, name: str, p: dict[str, int]) -> str:
    """Liberty of a stand-in bank (module docstring: stand-in timing, no power)."""
    spec = PDKS[platform]
    unit = spec.time_unit
    period = period_in_unit(spec.clock_ns, platform)
    access, setup = round(0.2 * period, 4), round(0.05 * period, 4)
    cap_unit = "ff" if unit == "ps" else "pf"
    cap = 1.0 if unit == "ps" else 0.001
    w, h = macro_size(platform, p)
    out = [f"/* Stand-in SRAM macro {name} for the ORFS hand-off (leopard_rtl.flow.orfs):",
           f"   {p['depth']} x {p['width']} bits, 1R1W, synchronous read. Timing is a stand-in",
           "   (access 20 %, setup/hold 5 % of the platform's default clock), not a",
           "   characterized SRAM: replace with a compiled macro's liberty. */",
           f"library ({name}) {{",
           "  technology (cmos) ;", "  delay_model : table_lookup ;",
           f'  time_unit : "1{unit}" ;', '  voltage_unit : "1V" ;', '  current_unit : "1mA" ;',
           f"  capacitive_load_unit (1, {cap_unit}) ;", '  pulling_resistance_unit : "1kohm" ;',
           '  leakage_power_unit : "1nW" ;',
           *(f"  {k}_threshold_pct_{e} : {v} ;" for k, v in
             (("input", 50), ("output", 50), ("slew_lower", 20), ("slew_upper", 80))
             for e in ("rise", "fall")),
           "  nom_temperature : 25 ;", "  nom_process : 1 ;"]
    for _, _, width in _pins(p):
        if width > 1:
            out += [f"  type (bus{width}) {{", "    base_type : array ;",
                    "    data_type : bit ;", f"    bit_width : {width} ;",
                    f"    bit_from : {width - 1} ;", "    bit_to : 0 ;",
                    "    downto : true ;", "  }"]
    out += [f"  cell ({name}) {{", f"    area : {w * h:.3f} ;", "    interface_timing : true ;",
            "    dont_use : true ;", "    dont_touch : true ;",
            f"    pin (clk) {{ direction : input ; capacitance : {cap} ; clock : true ; }}"]

    def arcs(direction: str) -> list[str]:
        if direction == "output":
            return ["      timing () {", '        related_pin : "clk" ;',
                    "        timing_type : rising_edge ;",
                    f'        cell_rise (scalar) {{ values ("{access}") ; }}',
                    f'        cell_fall (scalar) {{ values ("{access}") ; }}',
                    f'        rise_transition (scalar) {{ values ("{setup}") ; }}',
                    f'        fall_transition (scalar) {{ values ("{setup}") ; }}', "      }"]
        return [f"      timing () {{ related_pin : \"clk\" ; timing_type : {kind} ;"
                f' rise_constraint (scalar) {{ values ("{setup}") ; }}'
                f' fall_constraint (scalar) {{ values ("{setup}") ; }} }}'
                for kind in ("setup_rising", "hold_rising")]
    for pin, direction, width in _pins(p):
        if pin == "clk":
            continue
        body = [f"      direction : {direction} ;"]
        if direction == "input":
            body.append(f"      capacitance : {cap} ;")
        else:
            body.append(f"      max_capacitance : {cap * 50} ;")
        body += arcs(direction)
        if width > 1:
            out += [f"    bus ({pin}) {{", f"      bus_type : bus{width} ;", *body, "    }"]
        else:
            out += [f"    pin ({pin}) {{", *body, "    }"]
    out += ["  }", "}", ""]
    return "\n".join(out)


def write_orfs(paths: dict[str, Path], cfg: Any, platform: str,
               out_dir: Path) -> dict[str, Path]:
    """Write the self-contained ORFS design folder ``out_dir/flow/<platform>/`` (module
    docstring) for an emitted build.

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
        ``orfs_<platform>_config``, ``_sdc``, ``_verilog``, ``_leopard_sdc`` and one
        ``_macro_<name>`` (its LEF; the liberty is beside it) per stand-in macro.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    manifest = json.loads(Path(paths["manifest"]).read_text())
    top = manifest["top"]
    unit = manifest.get("unit", top)
    knobs = PLATFORMS[platform]
    nickname = f"leopard_{cfg.name}_{unit}".replace("+", "_")
    d = Path(out_dir) / "flow" / platform
    d.mkdir(parents=True, exist_ok=True)
    verilog = Path(paths["verilog"])
    text, macros = concrete_macros(verilog.read_text())
    out = {f"orfs_{platform}_config": d / "config.mk", f"orfs_{platform}_sdc":
           d / "constraint.sdc", f"orfs_{platform}_verilog": d / verilog.name,
           f"orfs_{platform}_leopard_sdc": d / "leopard.sdc"}
    write_if_changed(out[f"orfs_{platform}_verilog"], text)
    write_if_changed(out[f"orfs_{platform}_leopard_sdc"], (CONSTRAINTS / "leopard.sdc").read_text())
    for name, p in sorted(macros.items()):
        (d / "macros").mkdir(exist_ok=True)
        write_if_changed(d / "macros" / f"{name}.lef", macro_lef(platform, name, p))
        write_if_changed(d / "macros" / f"{name}.lib", macro_lib(platform, name, p))
        out[f"orfs_{platform}_macro_{name}"] = d / "macros" / f"{name}.lef"
    write_if_changed(out[f"orfs_{platform}_config"],
                     config_mk_text(platform, top, nickname, verilog.name, knobs,
                                    sorted(macros)))
    write_if_changed(out[f"orfs_{platform}_sdc"],
                     sdc_text(platform, knobs["clock_ns"], knobs["io_pct"]))
    return out
