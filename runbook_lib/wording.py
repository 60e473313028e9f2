"""Counts in words: ``1 function``, ``2 functions``, never ``1 functions`` or ``function(s)``.

Examples
--------
>>> counted(1, "function")
'1 function'
>>> counted(2, "secret")
'2 secrets'
>>> counted(3, "policy", "policies")
'3 policies'
"""

from __future__ import annotations


def plural(noun: str) -> str:
    """The regular English plural of ``noun`` (``check`` -> ``checks``, ``policy`` -> ``policies``)."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "o", "u"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def counted(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is 1."""
    return f"{n} {noun if n == 1 else (plural_form or plural(noun))}"
