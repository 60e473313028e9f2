"""Regular expressions compiled on first use: a scan pays at start-up only for what it reads.

Compiling every confirmation expression of the scanner at import cost each ``runbook scan``
tens of milliseconds before its first byte was read, and most scans never use most of them
(a token format's confirmation runs only on that format's prefilter hits; the ``#define``/SQL,
command-line, login-call and XML forms only on theirs). :class:`LazyPattern` stands for a
compiled :class:`re.Pattern` and compiles it the first time it is used; the expressions every
scan needs (the assignment forms and the value tests) stay compiled at import, before the scan
pool forks, so its workers inherit them instead of each compiling its own.

Examples
--------
>>> digits = LazyPattern(r"\\d+")
>>> digits.is_compiled
False
>>> digits.findall("a1b22"), digits.is_compiled
(['1', '22'], True)
"""

from __future__ import annotations

import re


class LazyPattern:
    """A regular expression compiled on its first use; it answers as the compiled :class:`re.Pattern`."""

    __slots__ = ("source", "flags", "_compiled")

    def __init__(self, source: str | bytes, flags: int = 0):
        self.source = source
        self.flags = flags
        self._compiled: re.Pattern | None = None

    @property
    def is_compiled(self) -> bool:
        return self._compiled is not None

    @property
    def compiled(self) -> re.Pattern:
        if self._compiled is None:
            self._compiled = re.compile(self.source, self.flags)
        return self._compiled

    def __getattr__(self, name: str):
        # only names that are not the slots above reach here: match, search, finditer, groupindex, ...
        return getattr(self.compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self.source!r}{', compiled' if self.is_compiled else ''})"
