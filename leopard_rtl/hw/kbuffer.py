"""The K buffer, stored bit-plane major (SPEC section 4, blocks 2 and 5).

Bank b (0 = the sign plane) holds bit ``p - 1 - b`` of every element of every key: one
``head_dim``-bit word per key. A lane reads one plane slot of one key per cycle: one word
(``planes_per_cycle`` = 1) or, with two planes per cycle, one word from each of the two
plane groups (even banks, odd banks: planes 2j and 2j + 1 of slot j), so a key terminated
after r planes never reads banks r..p-1 (beyond its slot) and no bank has more than one
read port per lane.
"""

from __future__ import annotations

from amaranth import Cat, ClockSignal, Instance, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts

__all__ = ["KBuffer", "MACRO_NAME", "MACRO_VERILOG"]

#: Verilog module name of the black-box bank macro used with ``memory="macro"``.
MACRO_NAME = "leopard_kbuf_bank"

#: Behavioural model of the macro interface (for simulation and lint of macro builds; the
#: layout flow replaces it by an SRAM macro or a fake-RAM of the same interface).
MACRO_VERILOG = """\
// leopard_kbuf_bank: 1 write port, 1 read port, synchronous read, WIDTH x DEPTH.
// Write: on the rising edge of clk, if we, mem[waddr] <= wdata.
// Read:  on the rising edge of clk, if re, rdata <= mem[raddr]; rdata holds otherwise.
// Reads and writes never target the same word in the same cycle (the front end writes
// K only while no query runs), so the read-during-write behaviour is irrelevant.
module leopard_kbuf_bank #(parameter WIDTH = 8, parameter DEPTH = 16, parameter ABITS = 4) (
    input  wire             clk,
    input  wire             we,
    input  wire [ABITS-1:0] waddr,
    input  wire [WIDTH-1:0] wdata,
    input  wire             re,
    input  wire [ABITS-1:0] raddr,
    output reg  [WIDTH-1:0] rdata
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        if (re) rdata <= mem[raddr];
    end
endmodule
"""


class KBuffer(wiring.Component):
    """K rows stored bit-plane major, with one write port and ``n_read`` plane read ports.

    Write: one K row per cycle (``w_en``, ``w_addr``, ``w_data``); the row is split into
    its ``qk_bits`` planes, each written to its own bank at address ``w_addr``.

    Read: each port requests plane slot ``plane`` (planes ``c plane .. c plane + c - 1``,
    c = ``planes_per_cycle``) of key ``key`` with ``en``; the words appear on ``rdata`` one
    cycle later (synchronous read; plane ``c plane + u`` at bits ``u d .. u d + d - 1``, 0
    for a plane beyond the last) and are held while ``en`` is low. Only the banks of the
    requested planes are enabled; each plane group's bank select is registered one-hot, so
    ``rdata`` is the banks' output registers behind one AND-OR level.

    Implementation (``cfg.memory``): ``"ff"`` uses one :class:`amaranth.lib.memory.Memory`
    per bank with ``n_read`` read ports (flip-flops, simulatable). ``"macro"`` instantiates,
    for every (read port, bank) pair, the black box :data:`MACRO_NAME` (interface and model
    in :data:`MACRO_VERILOG`: 1W1R, ``WIDTH=head_dim``, ``DEPTH=max_keys``): the banks are
    replicated per read port, all copies written together.

    Reset: none (storage and read data are not reset).

    Members
    -------
    w_en : In(1)
    w_addr : In(unsigned(key_index_bits))
    w_data : In(layouts.qk_row(cfg))
    read : In(ArrayLayout(layouts.kbuf_read(cfg), n_read))
    rdata : Out(ArrayLayout(unsigned(planes_per_cycle * head_dim), n_read))
    """

    def __init__(self, cfg: LeopardConfig, n_read: int) -> None:
        self._cfg = cfg
        self._n_read = n_read
        super().__init__({
            "w_en": In(1),
            "w_addr": In(unsigned(cfg.key_index_bits)),
            "w_data": In(layouts.qk_row(cfg)),
            "read": In(data.ArrayLayout(layouts.kbuf_read(cfg), n_read)),
            "rdata": Out(data.ArrayLayout(unsigned(cfg.planes_per_cycle * cfg.head_dim),
                                          n_read)),
        })

    @property
    def latency(self) -> int:
        """Cycles from a read request to its data."""
        return 1

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._cfg
        p, d = cfg.qk_bits, cfg.head_dim
        # Plane word of bank b: bit (p - 1 - b) of every element, element i at bit i.
        words = [Cat(*[self.w_data[i][p - 1 - b] for i in range(d)])
                 for b in range(p)]
        mems: dict[int, Memory] = {}
        if cfg.memory == "ff":
            for b in range(p):
                mems[b] = m.submodules[f"bank{b}"] = Memory(
                    shape=unsigned(d), depth=cfg.max_keys, init=[])
                wp = mems[b].write_port()
                m.d.comb += [wp.en.eq(self.w_en), wp.addr.eq(self.w_addr),
                             wp.data.eq(words[b])]
        c = cfg.planes_per_cycle
        for j in range(self._n_read):
            req = self.read[j]
            group_words = []
            for u in range(c):
                banks = [b for b in range(p) if b % c == u]
                # The bank select is registered one-hot with the request, so the read mux
                # is one AND-OR level behind the banks' output registers.
                sel = Signal(len(banks), name=f"port{j}_sel" + (f"{u}" if c > 1 else ""),
                             reset_less=True)
                enables, outs = [], []
                for b in banks:
                    re = Signal(name=f"port{j}_re{b}")
                    m.d.comb += re.eq(req.en & (req.plane == b // c))
                    enables.append(re)
                    outs.append(self._bank_port(m, mems, j, b, words[b], re, req.key))
                with m.If(req.en):
                    m.d.sync += sel.eq(Cat(*enables))
                acc = outs[0] & sel[0].replicate(d)
                for i in range(1, len(banks)):
                    acc = acc | (outs[i] & sel[i].replicate(d))
                group_words.append(acc)
            m.d.comb += self.rdata[j].eq(Cat(*group_words))
        return m

    def _bank_port(self, m: Module, mems: dict[int, Memory], j: int, b: int, word, re,
                   raddr) -> Signal:
        cfg = self._cfg
        d = cfg.head_dim
        if cfg.memory == "macro":
            rdata = Signal(unsigned(d), name=f"port{j}_bank{b}_rdata")
            m.submodules[f"bank{b}_port{j}"] = Instance(
                MACRO_NAME,
                p_WIDTH=d, p_DEPTH=cfg.max_keys, p_ABITS=cfg.key_index_bits,
                i_clk=ClockSignal(), i_we=self.w_en, i_waddr=self.w_addr, i_wdata=word,
                i_re=re, i_raddr=raddr, o_rdata=rdata)
            return rdata
        rp = mems[b].read_port(domain="sync")
        m.d.comb += [rp.en.eq(re), rp.addr.eq(raddr)]
        return rp.data
