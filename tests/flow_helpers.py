"""Small Amaranth designs with known behaviour for the flow tests (not LeOPArd units)."""

from __future__ import annotations

from pathlib import Path

from amaranth import Module, Signal, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Counter(wiring.Component):
    """Free-running ``width``-bit counter: bit i toggles exactly 2**-i times per cycle."""

    def __init__(self, width: int = 8) -> None:
        self.width = width
        super().__init__({"en": In(1), "count": Out(unsigned(width))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cnt = Signal(self.width, name="cnt")
        with m.If(self.en):
            m.d.sync += cnt.eq(cnt + 1)
        m.d.comb += self.count.eq(cnt)
        return m


class AdderTree(wiring.Component):
    """Registered inputs, a registered sum of ``n`` ``w``-bit words and an accumulator."""

    def __init__(self, n: int = 4, w: int = 8) -> None:
        self.n, self.w = n, w
        super().__init__({"x": In(unsigned(w * n)), "s": Out(unsigned(w + 6))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        regs = [Signal(self.w, name=f"in{i}") for i in range(self.n)]
        for i, r in enumerate(regs):
            m.d.sync += r.eq(self.x[i * self.w:(i + 1) * self.w])
        s = Signal(self.w + 2, name="sum")
        m.d.sync += s.eq(sum(regs))
        acc = Signal(self.w + 6, name="acc")
        m.d.sync += acc.eq(acc + s)
        m.d.comb += self.s.eq(acc)
        return m


def emit(component: wiring.Component, name: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.v"
    text = verilog.convert(component, name=name, emit_src=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


COUNTER_TB = """\
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, en = 0;
  wire [{w1}:0] count;
  counter dut (.clk(clk), .rst(rst), .en(en), .count(count));
  always #5 clk = ~clk;
  initial begin
    $dumpfile("counter.vcd");
    $dumpvars(0, tb.dut);
    @(negedge clk); rst = 0; en = 1;
    repeat ({cycles}) @(negedge clk);
    $finish;
  end
endmodule
"""
