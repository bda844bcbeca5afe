"""The ``leopard-rtl`` command-line tool.

Subcommands, one module each, every one registered with a plain import:

* :mod:`.sim`: ``golden`` (numpy golden model), ``generate`` (Verilog + manifest),
  ``simulate`` (the emitted Verilog on a trace);
* :mod:`.flow`: ``synth``, ``pnr``, ``qor``, ``energy``;
* :mod:`.eval`: ``evaluate``, ``sweep``.

Every error caused by the user's input or environment (any
:class:`leopard_rtl.errors.LeopardError`, a bad option, an unreadable or unwritable path,
a full disk, exhausted memory, a closed output pipe, an interrupt) is reported on one line
as ``leopard-rtl: error: ...`` with exit status 2 (130 for an interrupt), never as a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..config import PRESETS
from ..errors import LeopardError
from . import eval as eval_commands
from . import flow as flow_commands
from . import sim as sim_commands

__all__ = ["main", "build_parser"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``leopard-rtl: error: ...``, exit 2
    (argparse's default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        cmd = self.prog.removeprefix("leopard-rtl").strip()
        where = f"{cmd}: " if cmd else ""
        self.exit(2, f"leopard-rtl: error: {where}{message} (see leopard-rtl "
                     f"{cmd + ' ' if cmd else ''}--help)\n")


def _report(message: str) -> None:
    try:
        print(f"leopard-rtl: error: {message}", file=sys.stderr, flush=True)
    except OSError:
        pass


def build_parser() -> argparse.ArgumentParser:
    """The ``leopard-rtl`` argument parser with every subcommand."""
    parser = OneLineParser(
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
    except LeopardError as exc:
        _report(str(exc))
    except BrokenPipeError:
        # The reader of stdout went away: stop quietly, and keep the interpreter's final
        # flush of stdout from raising again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        _report("output closed early (broken pipe)")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _report(f"{where}{exc.strerror or exc}")
    except MemoryError:
        _report("out of memory (the input is too large for this machine)")
    except KeyboardInterrupt:
        _report("interrupted")
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
