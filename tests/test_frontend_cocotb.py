"""cocotb on the emitted leopard_frontend Verilog, under Icarus and Verilator."""

from __future__ import annotations

import json

import pytest

from leopard_rtl.config import preset
from leopard_rtl.emit import TOP_NAMES, convert, write_if_changed
from leopard_rtl.frontend import FrontEnd
from leopard_rtl.runners.frontend import icarus_compat
from tests.conftest import require_tool


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cocotb_frontend(build_root, seed, simulator):
    from cocotb_tools.runner import get_runner

    require_tool("iverilog" if simulator == "icarus" else "verilator")
    cfg = preset("tiny")
    out = build_root / "frontend" / f"cocotb-{simulator}"
    text = convert(FrontEnd(cfg), TOP_NAMES["frontend"])
    vfile = out / "leopard_frontend.v"
    write_if_changed(vfile, icarus_compat(text) if simulator == "icarus" else text)
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    runner.build(sources=[vfile], hdl_toplevel="leopard_frontend", build_dir=out / "sim",
                 timescale=("1ns", "1ps"), always=False, build_args=build_args)
    runner.test(hdl_toplevel="leopard_frontend", test_module="tb.frontend_test",
                build_dir=out / "sim", test_dir=out / "sim", timescale=("1ns", "1ps"),
                extra_env={"LEOPARD_CONFIG": json.dumps(cfg.to_dict()),
                           "LEOPARD_SEED": str(seed)})
