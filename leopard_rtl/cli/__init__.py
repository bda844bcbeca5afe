"""The ``leopard-rtl`` command-line tool.

Subcommands, one module each, every one registered with a plain import:

* :mod:`.sim`: ``golden`` (numpy golden model), ``generate`` (Verilog + manifest),
  ``simulate`` (the emitted Verilog on a trace);
* :mod:`.flow`: ``synth``, ``pnr``, ``qor``, ``energy``;
* :mod:`.eval`: ``evaluate``, ``sweep``.

Every error caused by the user's input or environment (any
:class:`leopard_rtl.errors.LeopardError`) is reported on one line as
``leopard-rtl: error: ...`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..config import PRESETS
from ..errors import LeopardError
from . import eval as eval_commands
from . import flow as flow_commands
from . import sim as sim_commands

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``leopard-rtl`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="leopard-rtl",
        description="LeOPArd attention accelerator: golden model, RTL generator, flows.",
        epilog=f"presets: {', '.join(PRESETS)}")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sim_commands.register(sub)
    flow_commands.register(sub)
    eval_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leopard-rtl``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (LeopardError, FileNotFoundError) as exc:
        print(f"leopard-rtl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
