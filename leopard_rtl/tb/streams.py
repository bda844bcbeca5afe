"""cocotb valid/ready drivers for Amaranth ``lib.stream`` ports (``<name>__payload/valid/ready``).

Payloads are plain integers; pack and unpack them through the Amaranth layouts
(``layout.const({...}).as_bits()``, ``layout.from_bits(raw)``), never with hand-written
offsets. Idle and back-pressure cycles are drawn from a seeded ``random.Random`` with
probability ``pause`` per cycle.

Handshake sampling: a transfer is decided in the ``ReadOnly`` phase before a rising edge
(after every combinational path has settled), so ``ready`` that depends on ``valid``
(or on another stream) is seen correctly in both Icarus and Verilator.
"""

from __future__ import annotations

import random
from typing import Any

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["StreamSource", "StreamSink"]


class _Port:
    def __init__(self, dut: Any, name: str, clk: Any, pause: float, rng: random.Random | None):
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.clk = clk
        self.pause = pause
        self.rng = rng or random.Random(0)

    async def _idle(self) -> None:
        while self.pause > 0 and self.rng.random() < self.pause:
            await RisingEdge(self.clk)


class StreamSource(_Port):
    """Drives an In stream of the DUT: ``await src.send(payload_int)``."""

    def __init__(self, dut: Any, name: str, clk: Any, pause: float = 0.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(dut, name, clk, pause, rng)
        self.valid.value = 0

    async def send(self, payload: int) -> None:
        await self._idle()
        self.payload.value = payload
        self.valid.value = 1
        while True:
            await ReadOnly()
            done = bool(self.ready.value)
            await RisingEdge(self.clk)
            if done:
                break
        self.valid.value = 0


class StreamSink(_Port):
    """Consumes an Out stream of the DUT: ``payload_int = await sink.recv()``."""

    def __init__(self, dut: Any, name: str, clk: Any, pause: float = 0.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(dut, name, clk, pause, rng)
        self.ready.value = 0

    async def recv(self) -> int:
        self.ready.value = 0
        await self._idle()
        self.ready.value = 1
        while True:
            await ReadOnly()
            if self.valid.value:
                value = int(self.payload.value)
                await RisingEdge(self.clk)
                break
            await RisingEdge(self.clk)
        self.ready.value = 0
        return value
