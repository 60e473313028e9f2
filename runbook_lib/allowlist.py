"""Allowlist: findings a user has reviewed and accepted, in a form they can commit.

Two mechanisms:

* an inline marker on the line, ``# runbook: allow-secret`` or ``// runbook: allow-secret``;
* a file of entries, one per line, ``#`` comments allowed. An entry is ``sha256:<hex>``,
  the *unkeyed* SHA-256 of the value, because fingerprints (``fp:…``) are keyed per run
  and would not match in the next run. ``runbook scan --print-allowlist-entries`` prints
  the entries of the current findings (hashes, never values). Per-run ``fp:`` entries are
  accepted too, for use within one run whose key is shared through ``RUNBOOK_FINGERPRINT_KEY``.

An unkeyed hash of a short password can be reversed by guessing, so an allowlist file
is for values that are not secret after all (test fixtures, public sample tokens), not
a place to park live credentials.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

from .exceptions import InputError

INLINE_MARKER = "runbook: allow-secret"
_ENTRY = re.compile(r"^(sha256:[0-9a-f]{64}|fp:[0-9a-f]{16})$")


def allowlist_entry(value: str) -> str:
    """The stable allowlist entry of ``value``: ``sha256:<hex>`` of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class Allowlist:
    """A set of accepted values, held as hashes and fingerprints only."""

    def __init__(self, entries: Iterable[str] = ()):
        self._entries: set[str] = set()
        for number, raw in enumerate(entries, start=1):
            entry = raw.partition("#")[0].strip()
            if not entry:
                continue
            if not _ENTRY.match(entry):
                raise InputError("allowlist", f"entry {number} is not sha256:<64 hex> or fp:<16 hex>")
            self._entries.add(entry)

    @classmethod
    def from_file(cls, path: str | Path) -> "Allowlist":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError("allowlist", f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
        return cls(text.splitlines())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Allowlist({len(self._entries)} entries)"

    def allows(self, entry: str, fingerprint: str) -> bool:
        return entry in self._entries or fingerprint in self._entries


def has_inline_marker(line: str) -> bool:
    return INLINE_MARKER in line
