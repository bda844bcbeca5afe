"""Physical flow of the LeOPArd RTL: synthesis, timing, power, place-and-route, ORFS hand-off.

Modules
-------
``pdk``        standard-cell libraries from the one platform table
               (``constraints/platforms.json``: osu018 from Debian's qflow; sky130hd,
               nangate45, asap7 from ``../shared/pdk`` or a user path) and their units.
``synth``      Yosys (pyosys 0.70) synthesis to a liberty; per-module area; memory macros.
``run``        emit + synthesize + time one unit (``leopard-rtl synth``).
``sta``        OpenSTA timing and power reports, parsed into dicts.
``activity``   VCDs of the real units running a trace (Icarus, the runners' testbenches).
``power``      switching activity from a VCD, mapped onto the netlist; energy per head.
``pnr``        qflow place-and-route on osu018; DRC/LVS; post-route timing.
``layout_png`` a dependency-free PNG picture of a routed DEF.
``orfs``       OpenROAD-flow-scripts design files (config.mk + constraint.sdc).
``qor``        the QoR table over presets and PDKs.
The ``synth``, ``pnr``, ``qor`` and ``energy`` subcommands are in :mod:`leopard_rtl.cli.flow`.
Elaboration happens through :func:`leopard_rtl.emit.write_build`.
"""

from __future__ import annotations

__all__: list[str] = []
