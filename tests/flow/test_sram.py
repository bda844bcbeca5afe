"""The CACTI memory model (leopard_rtl.flow.sram) against published 45 nm SRAM energies."""

from __future__ import annotations

import pytest

from leopard_rtl.config import preset
from leopard_rtl.flow.sram import (
    SramError,
    design_memories,
    pdk_node_nm,
    sram_cost,
)

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
# 45 nm, 0.9 V: energy of one 64-bit access to an SRAM of this many bytes (pJ).
HOROWITZ_45NM_64BIT_PJ = {8 * 1024: 10.0, 32 * 1024: 20.0, 1024 * 1024: 100.0}


@pytest.mark.parametrize("size_bytes, pj", sorted(HOROWITZ_45NM_64BIT_PJ.items()))
def test_cacti_45nm_read_energy_near_published(size_bytes: int, pj: float) -> None:
    c = sram_cost(size_bytes * 8 // 64, 64, 45)
    ratio = c.read_pj / pj
    print(f"{size_bytes} B x 64 bit at 45 nm: CACTI {c.read_pj:.2f} pJ, Horowitz {pj} pJ, "
          f"ratio {ratio:.2f}")
    assert 0.5 <= ratio <= 1.5, (size_bytes, c.read_pj, pj)
    assert c.write_pj > 0 and c.leakage_uw > 0 and c.area_um2 > 0 and c.access_ns > 0
    assert "45 nm" in c.source


def test_energy_grows_with_size_width_and_node() -> None:
    small, deep, wide = sram_cost(128, 32, 45), sram_cost(1024, 32, 45), sram_cost(128, 256, 45)
    assert small.read_pj < deep.read_pj and small.read_pj < wide.read_pj
    assert small.area_um2 < deep.area_um2 and small.area_um2 < wide.area_um2
    assert sram_cost(128, 32, 90).read_pj > small.read_pj > sram_cost(128, 32, 22).read_pj
    mid = sram_cost(128, 32, 55)          # interpolated between 45 and 65 nm
    assert small.read_pj < mid.read_pj < sram_cost(128, 32, 65).read_pj
    assert "interpolated" in mid.source and "scaled" in sram_cost(128, 32, 180).source


def test_design_memories_minilm() -> None:
    cfg = preset("minilm")
    mems = {m.name: m for m in design_memories(cfg)}
    banks = [m for m in mems.values() if m.block == "kbuf"]
    assert len(banks) == cfg.qk_bits
    assert all((m.words, m.bits, m.copies) == (cfg.max_keys, cfg.head_dim, cfg.lanes)
               for m in banks)
    assert (mems["vbuf"].words, mems["vbuf"].bits) == (cfg.max_keys, cfg.head_dim * cfg.v_bits)
    assert (mems["sstore"].words, mems["sstore"].copies) == (2 * cfg.survivor_capacity, 1)
    assert pdk_node_nm("nangate45") == 45 and pdk_node_nm("osu018") == 180


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(SramError, match="at least one word"):
        sram_cost(0, 8, 45)
    with pytest.raises(SramError, match="technology node"):
        sram_cost(16, 8, 0)
    with pytest.raises(SramError, match="node_nm"):
        pdk_node_nm("nosuchlib")
