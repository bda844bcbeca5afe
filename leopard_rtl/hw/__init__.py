"""Amaranth components of the LeOPArd core, one block per file (README: Architecture).

Imports Amaranth, the configuration and the golden model's exp table only; the three
top levels are :class:`~.frontend.FrontEnd`, :class:`~.backend.BackEnd` and
:class:`~.core.LeopardCore`.
"""
