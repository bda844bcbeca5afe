"""The FPGA flow (``leopard-rtl fpga``): the tiny core behind a UART on an ECP5-25k (ULX3S),
Yosys synth_ecp5, nextpnr-ecp5 and ecppack from pip packages (default suite, ~2 minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leopard_rtl.cli import main
from leopard_rtl.flow.fpga import parse_nextpnr_report

pytestmark = pytest.mark.synth


def test_fpga_tiny_ecp5_25k(build_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build_root / "flow" / "fpga-tiny-ecp5-25k"
    assert main(["fpga", "--preset", "tiny", "--device", "ecp5-25k", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    rep = json.loads((out / "fpga_report.json").read_text())
    assert json.loads(captured.out) == rep
    # a stage line with its elapsed time for every step
    for step in ("yosys synth_ecp5", "nextpnr-ecp5", "ecppack"):
        assert any(step in line and "done in" in line for line in captured.err.splitlines()), \
            f"no stage line for {step}: {captured.err}"
    assert rep["part"] == "LFE5U-25F" and rep["preset"] == "tiny"
    for res in ("luts", "flip_flops", "bram", "dsp", "io"):
        assert 0 <= rep[res]["used"] <= rep[res]["available"], (res, rep[res])
    assert rep["luts"]["used"] > 500 and rep["flip_flops"]["used"] > 200
    # the narrow top level: clock, UART (rx, tx, rts, dtr) and one LED, not one pin per bit
    assert rep["io"]["used"] <= 6
    # timing closes at the board's 25 MHz clock
    assert rep["target_mhz"] == pytest.approx(25.0)
    assert rep["fmax_mhz"] >= rep["target_mhz"], rep
    bit = Path(rep["bitstream"]).read_bytes()
    assert b"LFE5U-25F" in bit[:64] and b"\xff\xff\xbd\xb3" in bit[:64]   # ECP5 preamble
    assert len(bit) == rep["bitstream_bytes"] > 10_000


def test_parse_nextpnr_report() -> None:
    rep = parse_nextpnr_report({
        "utilization": {"TRELLIS_COMB": {"used": 10, "available": 100},
                        "DP16KD": {"used": 1, "available": 56}},
        "fmax": {"a": {"achieved": 40.0, "constraint": 25.0},
                 "b": {"achieved": 30.5, "constraint": 25.0}}})
    assert rep["luts"] == {"used": 10, "available": 100}
    assert rep["bram"] == {"used": 1, "available": 56}
    assert rep["dsp"] == {"used": 0, "available": 0}
    assert rep["fmax_mhz"] == 30.5 and rep["clock"] == "b"     # the slowest clock


def test_fpga_bad_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fpga", "--device", "ecp5-1k", "--out", "unused"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device" in err[0] and "ecp5-1k" in err[0], err


def test_fpga_timeout_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fpga", "--timeout", "1", "--out", str(tmp_path)]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines()
           if ln.startswith("leopard-rtl: error:")]
    assert len(err) == 1 and "time limit of 1 s" in err[0] and "yosys.log" in err[0], err
