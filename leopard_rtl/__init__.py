"""LeOPArd RTL: an Amaranth generator for the LeOPArd attention accelerator (ISCA 2022).

Importing this package loads no Amaranth: the configuration is plain Python so that the
golden model in ``sim/`` stays independent. The hardware, emission, simulation and flow
entry points below are loaded on first use (``leopard_rtl.LeopardCore`` imports Amaranth
then). docs/API.md walks through them; examples/ runs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, ConfigError, LeopardConfig, preset
from .errors import LeopardError

__version__ = "0.1.0"

#: lazily loaded public names: name -> (module, attribute)
_LAZY = {
    "LeopardCore": ("leopard_rtl.hw.core", "LeopardCore"),
    "FrontEnd": ("leopard_rtl.hw.frontend", "FrontEnd"),
    "BackEnd": ("leopard_rtl.hw.backend", "BackEnd"),
    "StreamTop": ("leopard_rtl.hw.stream_top", "StreamTop"),
    "UNITS": ("leopard_rtl.emit", "UNITS"),
    "elaborate_unit": ("leopard_rtl.emit", "elaborate_unit"),
    "write_build": ("leopard_rtl.emit", "write_build"),
    "run_golden": ("sim.golden", "run_golden"),
    "Trace": ("sim.trace", "Trace"),
    "load_trace": ("sim.trace", "load_trace"),
    "save_trace": ("sim.trace", "save_trace"),
    "random_trace": ("sim.vectors", "random_trace"),
    "core_cycles": ("sim.perf", "core_cycles"),
    "simulate": ("leopard_rtl.tb.core", "simulate"),
    "synth_unit": ("leopard_rtl.flow.run", "synth_unit"),
    "fpga_build": ("leopard_rtl.flow.fpga", "fpga_build"),
}

__all__ = ["LeopardConfig", "PRESETS", "preset", "ConfigError", "LeopardError",
           "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leopard_rtl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
