"""KBuffer: bit-plane-major storage, synchronous plane reads, macro option."""

from __future__ import annotations

import subprocess

import pytest
from amaranth.sim import Simulator
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.hw.kbuffer import MACRO_NAME, MACRO_VERILOG, KBuffer


def _plane_word(row, plane, p):
    return sum((((int(x) >> (p - 1 - plane)) & 1) << i) for i, x in enumerate(row))


@pytest.mark.parametrize("name,ppc,p", [("tiny", 1, None), ("minilm", 1, None),
                                        ("tiny", 2, None), ("tiny", 2, 5)])
def test_plane_reads(rng, seed, name, ppc, p):
    """Plane slot reads: one plane, or two (one from each plane bank; odd p: the last slot
    has one plane and the other word reads 0)."""
    cfg = preset(name).replace(max_keys=16, planes_per_cycle=ppc, qk_bits=p or preset(name).qk_bits)
    p, d, n = cfg.qk_bits, cfg.head_dim, 3
    dut = KBuffer(cfg, n)
    k = rng.integers(-(1 << (p - 1)), 1 << (p - 1), (cfg.max_keys, d))
    k[0] = -(1 << (p - 1))

    async def bench(ctx):
        for j in range(cfg.max_keys):
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_addr, j)
            ctx.set(dut.w_data, [int(x) for x in k[j]])
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        held = [None] * n
        for step in range(200):
            reqs = []
            for j in range(n):
                en = int(rng.random() < 0.7)
                key, plane = int(rng.integers(cfg.max_keys)), int(rng.integers(cfg.plane_slots))
                ctx.set(dut.read[j], {"en": en, "key": key, "plane": plane})
                reqs.append((en, key, plane))
            await ctx.tick()
            for j, (en, key, plane) in enumerate(reqs):
                if en:
                    held[j] = sum(_plane_word(k[key], ppc * plane + u, p) << (u * d)
                                  for u in range(ppc) if ppc * plane + u < p)
                if held[j] is not None:
                    got = ctx.get(dut.rdata[j])
                    assert got == held[j], f"seed={seed} step={step} port={j}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_macro_build_instantiates_black_box(tmp_path):
    """memory="macro": one 1W1R bank macro per (read port, plane); the model lints."""
    from leopard_rtl.emit import convert
    from leopard_rtl.hw.frontend import FrontEnd

    cfg = preset("tiny").replace(memory="macro")
    text = convert(FrontEnd(cfg), "leopard_frontend")
    assert text.count(f"{MACRO_NAME} #(") == cfg.lanes * cfg.qk_bits
    (tmp_path / "m.v").write_text(MACRO_VERILOG)
    (tmp_path / "f.v").write_text(text)
    iverilog = require_tool("iverilog")
    proc = subprocess.run([iverilog, "-g2012", "-o", str(tmp_path / "a.out"),
                           "-s", "leopard_frontend", str(tmp_path / "m.v"),
                           str(tmp_path / "f.v")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
