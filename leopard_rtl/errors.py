"""Errors that reach the user as one line, ``leopard-rtl: error: ...``, never a traceback.

Every layer raises a subclass of :class:`LeopardError` for a problem with its input or its
environment (a bad parameter, trace, file or missing tool); the command line catches this
one base class. The module imports nothing, so every layer may import it.
"""

from __future__ import annotations

__all__ = ["LeopardError", "UserError"]


class LeopardError(Exception):
    """Base of every error caused by the user's input or environment."""


class UserError(LeopardError):
    """A generic user error (bad option, missing tool, failed external run)."""
