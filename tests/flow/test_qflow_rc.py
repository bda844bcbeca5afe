"""Repair of qrouter's RC trees for qflow's ``rc2dly`` (cheap: a three-net fixture).

``data/qrouter_error_tree.rc``: three lines of the tiny front end's routed ``.rc`` (qflow
1.3.17): a healthy net, net ``_4318_`` whose tree qrouter wrote as a 1,025-node chain with
receiver ``OAI21X1_209/A`` listed twice and an ``ERROR`` token, and a net whose 24-character
name overflows ``rc2dly``'s heap. ``data/qrouter_error_tree.def``: those nets' pins from
the routed DEF.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.flow.qflow_rc import (
    overflows_rc2dly,
    rc_problems,
    rename_overflow_nets,
    sanitize_rc,
)

pytestmark = pytest.mark.synth

DATA = Path(__file__).parent / "data"
LIB = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
RC2DLY = Path("/usr/lib/qflow/bin/rc2dly")
BAD = "_4318_"
LONG = "lanes.lane0.cur_plane[0]"


def _fixture(tmp_path: Path) -> tuple[Path, Path]:
    rc, df = tmp_path / "top.rc", tmp_path / "top.def"
    shutil.copyfile(DATA / "qrouter_error_tree.rc", rc)
    shutil.copyfile(DATA / "qrouter_error_tree.def", df)
    return rc, df


def _lines(rc: Path) -> dict[str, str]:
    return {ln.split()[0]: ln for ln in rc.read_text().splitlines() if ln.strip()}


def _rc2dly(rc: Path) -> tuple[int, dict[str, list[str]]]:
    """rc2dly's exit status and its vesta delay file: net -> sink pins."""
    require_tool("qflow")
    assert RC2DLY.is_file(), f"qflow's rc2dly is missing at {RC2DLY}"
    dly = rc.with_suffix(".dly")
    proc = subprocess.run([str(RC2DLY), "-r", str(rc), "-l", str(LIB), "-d", str(dly)],
                          capture_output=True, text=True)
    nets: dict[str, list[str]] = {}
    for block in dly.read_text(errors="replace").split("\n\n") if dly.exists() else []:
        rows = block.split("\n")
        if len(rows) >= 2 and rows[0]:
            nets[rows[0]] = [r.split()[0] for r in rows[2:] if r.strip()]
    return proc.returncode, nets


def test_sanitize_rc_lumps_the_error_tree(tmp_path: Path) -> None:
    rc, df = _fixture(tmp_path)
    before = _lines(rc)
    raw = before[BAD].split()
    problems, rx, r_tot, c_tot = rc_problems(raw[4:])
    assert problems == ["ERROR token", "receiver(s) OAI21X1_209/A listed twice"]
    assert rx == ["OAI21X1_209/A", "AOI21X1_51/B", "OAI21X1_209/A"]
    repaired = sanitize_rc(rc, df)
    assert [r["net"] for r in repaired] == [BAD]
    assert repaired[0]["reason"] == "ERROR token; receiver(s) OAI21X1_209/A listed twice"
    assert repaired[0]["receivers"] == ["AOI21X1_51/B", "OAI21X1_209/A"]   # each once
    # The lumped node carries the whole tree's R and C (summed here independently).
    rs = [float(raw[i + 1]) for i, t in enumerate(raw) if t == "("]
    cs = [float(raw[i + 2]) for i, t in enumerate(raw) if t == "("]
    assert len(rs) == 1025
    assert repaired[0]["r_ohm"] == pytest.approx(sum(rs)) == pytest.approx(r_tot)
    assert repaired[0]["c_pf"] == pytest.approx(sum(cs)) == pytest.approx(c_tot)
    after = _lines(rc)
    new = after[BAD].split()
    assert new[:4] == [BAD, "1", "OAI21X1_208/Y", "2"]
    assert new.count("(") == new.count(")") == 1 and "ERROR" not in new
    assert rc_problems(new[4:])[:2] == ([], ["AOI21X1_51/B", "OAI21X1_209/A"])
    # Healthy nets untouched; the original kept; a second pass changes nothing.
    assert {k: v for k, v in after.items() if k != BAD} == \
        {k: v for k, v in before.items() if k != BAD}
    assert _lines(rc.with_name("top.rc.orig")) == before
    assert sanitize_rc(rc, df) == []


def test_sanitize_rc_restores_a_receiver_the_tree_lost(tmp_path: Path) -> None:
    rc, df = _fixture(tmp_path)
    # A healthy-looking tree missing a receiver the DEF lists is rewritten too.
    df.write_text(df.read_text().replace("( NAND3X1_74 C )", "( NAND3X1_74 C ) ( BUFX2_1 A )"))
    rep = {r["net"]: r for r in sanitize_rc(rc, df)}
    assert set(rep) == {BAD, "_2527_"}
    assert "BUFX2_1/A" in rep["_2527_"]["reason"]
    assert rep["_2527_"]["receivers"] == ["NAND3X1_74/C", "BUFX2_1/A", "AOI21X1_236/C"]
    # Unbalanced parentheses are caught without the DEF.
    assert "unbalanced ')'" in rc_problems("( 1 2 A/B ) )".split())[0]
    assert "1 unclosed '('" in rc_problems("( 1 2 A/B".split())[0]
    assert rc_problems("( 1 2 A/B , ( 3 4 A/B ) )".split())[0] == \
        ["receiver(s) A/B listed twice"]


def test_rc2dly_reads_the_repaired_tree(tmp_path: Path) -> None:
    rc, df = _fixture(tmp_path)
    lines = _lines(rc)
    raw = tmp_path / "raw.rc"
    raw.write_text(lines["_2527_"] + "\n" + lines[BAD] + "\n")
    status, nets = _rc2dly(raw)
    # Unrepaired, the ERROR token becomes a sink and OAI21X1_209/A two (vesta then
    # rejects the net: "only had 4 receivers in delay file, but expected a fanout of 2").
    assert sorted(nets[BAD]) == ["AOI21X1_51/B", "ERROR", "OAI21X1_209/A", "OAI21X1_209/A"]
    sanitize_rc(raw, df)
    status, nets = _rc2dly(raw)
    assert status == 0
    assert sorted(nets[BAD]) == ["AOI21X1_51/B", "OAI21X1_209/A"]
    assert sorted(nets["_2527_"]) == ["AOI21X1_236/C", "NAND3X1_74/C"]


def test_rc2dly_name_overflow_is_renamed_away(tmp_path: Path) -> None:
    rc, _ = _fixture(tmp_path)
    lines = _lines(rc)
    assert overflows_rc2dly(LONG) and not overflows_rc2dly("_4318_")
    assert not overflows_rc2dly("x" * 8) and overflows_rc2dly("x" * 40)
    # Enough nets after the long name that rc2dly's heap needs to grow past the byte it
    # overwrote.
    filler = [re.sub(r"^_2527_", f"_f{i}_", lines["_2527_"]) for i in range(3000)]
    big = tmp_path / "big.rc"
    big.write_text("\n".join([lines[LONG], *filler]) + "\n")
    status, nets = _rc2dly(big)
    assert status != 0 or LONG not in nets                # aborts or mangles the name
    vlog = tmp_path / "top.v"
    vlog.write_text("DFFPOSX1 DFFPOSX1_710 ( .CLK(clk), .D(d), .Q(lanes_lane0_cur_plane_0_) );\n"
                    "INVX2 INVX2_89 ( .A(lanes_lane0_cur_plane_0_), .Y(y) );\n"
                    "INVX2 INVX2_90 ( .A(lanes_lane0_cur_plane_0_x), .Y(z) );\n")
    assert rename_overflow_nets(big, vlog) == {LONG: LONG + "_q"}
    assert vlog.read_text().count("lanes_lane0_cur_plane_0__q") == 2
    assert "lanes_lane0_cur_plane_0_x" in vlog.read_text()
    status, nets = _rc2dly(big)
    assert status == 0 and len(nets) == 3001
    assert sorted(nets[LONG + "_q"]) == ["INVX2_89/A", "NAND2X1_735/A"]
    with pytest.raises(ValueError, match="not in"):
        rename_overflow_nets(rc, tmp_path / "top.v")
