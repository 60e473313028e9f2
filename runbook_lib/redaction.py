"""Redacted previews and keyed fingerprints: how a secret is shown without being shown.

Every finding, log excerpt and ledger entry refers to a value only through
:func:`redact` (at most the first four characters and the length) and a
:class:`Fingerprinter` digest (an HMAC keyed per run), so two sightings of one value
can be matched without the value being stored anywhere.

Examples
--------
>>> redact("AKIAIOSFODNN7EXAMPLE")
'AKIA…(20)'
>>> redact("hunter2")
'…(7)'
>>> fp = Fingerprinter(b"k" * 32)
>>> fp("hunter2") == fp("hunter2") != fp("hunter3")
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

#: Environment variable through which the runner shares one key with every notebook of a run
#: (and through which a user gives ``runbook scan`` a stable key): hex, at least 16 bytes.
KEY_ENV = "RUNBOOK_FINGERPRINT_KEY"
MIN_KEY_BYTES = 16


def redact(value: str | bytes) -> str:
    """A preview that cannot give the value away: a short prefix for long values only."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    n = len(value)
    shown = 4 if n >= 16 else 2 if n >= 10 else 0
    return f"{value[:shown]}…({n})"


class Fingerprinter:
    """Keyed hash of values; the key never leaves the process that made it.

    Parameters
    ----------
    key:
        Raw key bytes. Default: the hex key in ``RUNBOOK_FINGERPRINT_KEY`` (set by the
        runner so all notebooks of one run agree), else a fresh random key.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None = None):
        if key is None:
            env = os.environ.get(KEY_ENV, "")
            key = parse_key_hex(env) if env else secrets.token_bytes(32)
        self._key = key

    def __call__(self, value: str | bytes) -> str:
        if isinstance(value, str):
            value = value.encode("utf-8")
        return "fp:" + hmac.new(self._key, value, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:  # the key is as sensitive as the values it hashes
        return "Fingerprinter(key=<hidden>)"

    @staticmethod
    def new_key_hex() -> str:
        return secrets.token_bytes(32).hex()

    @classmethod
    def from_key_file(cls, path: str | os.PathLike) -> "Fingerprinter":
        """A fingerprinter keyed by the hex key in ``path`` (as :data:`KEY_ENV` holds it).

        Raises
        ------
        InputError
            The file cannot be read, or holds no hex key of at least :data:`MIN_KEY_BYTES` bytes.
        """
        from .exceptions import InputError

        try:
            text = open(path, encoding="ascii", errors="replace").read()
        except OSError as exc:
            raise InputError("--fingerprint-key-file", f"cannot read {path}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        return cls(parse_key_hex(text, f"--fingerprint-key-file {path}"))


def parse_key_hex(text: str, source: str = KEY_ENV) -> bytes:
    """The key bytes of a hex key; a bad key is one line naming ``source``, never echoing it.

    Examples
    --------
    >>> len(parse_key_hex("ab" * 32))
    32
    """
    from .exceptions import InputError

    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise InputError(source, f"needs a hex key of at least {MIN_KEY_BYTES} bytes "
                         "(make one with: openssl rand -hex 32)")
    return key
