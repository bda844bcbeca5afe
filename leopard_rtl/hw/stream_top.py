"""A narrow top level for boards: the core behind one byte stream in and one byte stream out.

Every wide port of :class:`~leopard_rtl.hw.core.LeopardCore` (K/V/query payloads, the
run-time registers, output records) becomes a packet of bytes, so that the whole core
needs two data pins on an FPGA (a UART) instead of one pin per port bit.

Protocol (:class:`StreamTop`). A host sends packets: one command byte, then the payload
of that command as ``ceil(width / 8)`` bytes, least significant byte first:

==========  =================================================  ==========================
command     payload                                             layout
==========  =================================================  ==========================
``0x01``    one K row                                           :func:`layouts.k_load`
``0x02``    one V row                                           :func:`layouts.v_load`
``0x03``    one query                                           :func:`core_query`
``0x04``    the run-time registers                              :func:`registers_layout`
==========  =================================================  ==========================

Any other command byte is ignored (it resynchronizes a host that lost count). Every output
record of the core (:func:`core_out`) comes back as ``ceil(width / 8)`` bytes, least
significant first. :func:`packet_bytes` and :func:`record_bytes` give the sizes.

:class:`BoardTop` puts :class:`StreamTop` behind an 8N1 UART (:class:`UartRx`,
:class:`UartTx`, with a receive FIFO) on a board's ``uart`` resource and shows ``busy`` on
``led`` 0; :mod:`leopard_rtl.flow.fpga` builds it for an ECP5 board.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, io, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..config import LeopardConfig
from . import layouts
from .core import LeopardCore, causal_offset_shape, core_out, core_query

__all__ = ["StreamTop", "BoardTop", "UartRx", "UartTx", "registers_layout", "COMMANDS",
           "packet_bytes", "record_bytes"]

#: command byte of each packet kind
COMMANDS = {"k": 0x01, "v": 0x02, "query": 0x03, "registers": 0x04}


def registers_layout(cfg: LeopardConfig) -> data.StructLayout:
    """Payload of the ``registers`` packet: the core's run-time registers (the margin
    register last, only with ``cfg.margin > 0``)."""
    fields = {
        "threshold": signed(cfg.threshold_bits),
        "scale_mant": unsigned(cfg.scale_bits),
        "scale_shift": unsigned(cfg.scale_shift_bits),
        "n_keys": unsigned(cfg.key_count_bits),
        "causal": 1,
        "causal_offset": causal_offset_shape(cfg),
        "early_termination": 1,
        "pruning": 1,
    }
    if cfg.margin:
        fields["margin"] = unsigned(cfg.margin_frac_bits)
    return data.StructLayout(fields)


def _payloads(cfg: LeopardConfig) -> dict[str, data.Layout]:
    return {"k": layouts.k_load(cfg), "v": layouts.v_load(cfg), "query": core_query(cfg),
            "registers": registers_layout(cfg)}


def packet_bytes(cfg: LeopardConfig) -> dict[str, int]:
    """Payload bytes of each packet kind (the command byte not counted)."""
    return {k: -(-lay.size // 8) for k, lay in _payloads(cfg).items()}


def record_bytes(cfg: LeopardConfig) -> int:
    """Bytes of one output record."""
    return -(-core_out(cfg).size // 8)


class StreamTop(wiring.Component):
    """:class:`LeopardCore` behind a byte stream in and a byte stream out (module docstring).

    Parameters
    ----------
    cfg : LeopardConfig

    Members
    -------
    rx : In(stream.Signature(8))
        Command and payload bytes from the host.
    tx : Out(stream.Signature(8))
        Output record bytes to the host, least significant first.
    busy : Out(1)
        The core has a query in flight.
    """

    def __init__(self, cfg: LeopardConfig) -> None:
        self._cfg = cfg
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "busy": Out(1)})

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.core = core = LeopardCore(cfg)
        sizes = packet_bytes(cfg)
        buf_bytes = max(sizes.values())
        buf = Signal(8 * buf_bytes)
        cmd = Signal(8)                       # 0: waiting for a command byte
        left = Signal(range(buf_bytes + 1))   # payload bytes still to come
        index = Signal(range(buf_bytes + 1))  # next payload byte position
        pending = Signal()                    # a complete packet waits for its stream
        regs = Signal(registers_layout(cfg))

        targets = {"k": core.k_load, "v": core.v_load, "query": core.query}
        for name, port in targets.items():
            m.d.comb += [port.payload.eq(buf[:port.payload.shape().size]),
                         port.valid.eq(pending & (cmd == COMMANDS[name]))]
        done = Signal()
        m.d.comb += done.eq(Cat(p.valid & p.ready for p in targets.values()).any())
        with m.If(done):
            m.d.sync += [pending.eq(0), cmd.eq(0)]

        m.d.comb += self.rx.ready.eq(~pending)
        with m.If(self.rx.valid & self.rx.ready):
            with m.If(cmd == 0):
                with m.Switch(self.rx.payload):
                    for name, code in COMMANDS.items():
                        with m.Case(code):
                            m.d.sync += [cmd.eq(code), left.eq(sizes[name]), index.eq(0)]
            with m.Else():
                m.d.sync += [buf.word_select(index, 8).eq(self.rx.payload),
                             index.eq(index + 1), left.eq(left - 1)]
                with m.If(left == 1):
                    with m.If(cmd == COMMANDS["registers"]):
                        # the last byte arrives now; the registers take effect at once
                        last = 8 * (sizes["registers"] - 1)
                        m.d.sync += [regs.eq(Cat(buf[:last], self.rx.payload)), cmd.eq(0)]
                    with m.Else():
                        m.d.sync += pending.eq(1)

        m.d.comb += [
            core.threshold.eq(regs.threshold), core.scale_mant.eq(regs.scale_mant),
            core.scale_shift.eq(regs.scale_shift), core.n_keys.eq(regs.n_keys),
            core.causal.eq(regs.causal), core.causal_offset.eq(regs.causal_offset),
            core.early_termination.eq(regs.early_termination),
            core.pruning.eq(regs.pruning), self.busy.eq(core.busy)]
        if cfg.margin:
            m.d.comb += core.margin.eq(regs.margin)

        # Output: one record at a time, shifted out a byte per transfer.
        n_out = record_bytes(cfg)
        obuf = Signal(8 * n_out)
        oleft = Signal(range(n_out + 1))
        m.d.comb += [core.out.ready.eq(oleft == 0), self.tx.valid.eq(oleft != 0),
                     self.tx.payload.eq(obuf[:8])]
        with m.If(core.out.valid & core.out.ready):
            m.d.sync += [obuf.eq(core.out.payload.as_value()), oleft.eq(n_out)]
        with m.Elif(self.tx.valid & self.tx.ready):
            m.d.sync += [obuf.eq(obuf >> 8), oleft.eq(oleft - 1)]
        return m


class UartTx(wiring.Component):
    """8N1 UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 2.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        Serial line (idle high).
    """

    def __init__(self, divisor: int) -> None:
        if divisor < 2:
            raise ValueError(f"UART divisor must be at least 2, not {divisor}")
        self._div = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        shreg = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        timer = Signal(range(self._div))
        m.d.comb += [self.data.ready.eq(bits == 0), self.tx.eq(shreg[0])]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(self._div - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(self._div - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """8N1 UART receiver; a byte with a bad stop bit is dropped.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 2.

    Members
    -------
    rx : In(1)
        Serial line (idle high), synchronized here.
    data : Out(stream.Signature(8))
        Received bytes; ``valid`` for one cycle each (no back-pressure: buffer it).
    """

    def __init__(self, divisor: int) -> None:
        if divisor < 2:
            raise ValueError(f"UART divisor must be at least 2, not {divisor}")
        self._div = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        shreg = Signal(8)
        bits = Signal(range(11))
        timer = Signal(range(self._div))
        m.d.sync += self.data.valid.eq(0)
        m.d.comb += self.data.payload.eq(shreg[:8])
        with m.If(bits == 0):
            with m.If(~line):     # start bit: sample mid-bit from now on
                m.d.sync += [bits.eq(10), timer.eq(self._div // 2)]
        with m.Elif(timer == 0):
            m.d.sync += [timer.eq(self._div - 1), bits.eq(bits - 1)]
            with m.If(bits == 10):
                with m.If(line):  # a glitch, not a start bit
                    m.d.sync += bits.eq(0)
            with m.Elif(bits == 1):  # mid stop bit: the byte is good if the line is high
                m.d.sync += self.data.valid.eq(line)
            with m.Else():           # data bits, least significant first
                m.d.sync += shreg.eq(Cat(shreg[1:], line))
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class BoardTop(wiring.Component):
    """:class:`StreamTop` on a board: UART ``uart`` 0 and ``led`` 0 (``busy``).

    Parameters
    ----------
    cfg : LeopardConfig
    baud : int
        UART bit rate; the divisor is the board's default clock over ``baud``.
    rx_depth : int
        Receive FIFO depth in bytes (the host may send this much ahead of the core).
    """

    def __init__(self, cfg: LeopardConfig, baud: int = 115200, rx_depth: int = 64) -> None:
        self._cfg, self._baud, self._depth = cfg, baud, rx_depth
        super().__init__({})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        divisor = int(platform.default_clk_frequency // self._baud)  # type: ignore[attr-defined]
        uart = platform.request("uart", 0, dir="-")  # type: ignore[attr-defined]
        led = platform.request("led", 0, dir="-")  # type: ignore[attr-defined]
        m.submodules.rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.submodules.led_pin = led_pin = io.Buffer("o", led)
        m.submodules.top = top = StreamTop(self._cfg)
        m.submodules.urx = urx = UartRx(divisor)
        m.submodules.utx = utx = UartTx(divisor)
        m.submodules.rxq = rxq = fifo.SyncFIFOBuffered(width=8, depth=self._depth)
        m.d.comb += [
            urx.rx.eq(rx_pin.i), tx_pin.o.eq(utx.tx), led_pin.o.eq(top.busy),
            rxq.w_data.eq(urx.data.payload), rxq.w_en.eq(urx.data.valid),
            top.rx.payload.eq(rxq.r_data), top.rx.valid.eq(rxq.r_rdy),
            rxq.r_en.eq(top.rx.ready)]
        wiring.connect(m, top.tx, utx.data)
        return m
