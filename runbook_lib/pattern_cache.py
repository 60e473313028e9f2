"""Compiled Hyperscan databases kept on disk, so a scan does not compile its patterns every run.

Compiling the scanner's prefilter database takes most of a second; loading a serialised one
takes milliseconds. :func:`compiled_database` looks for a file named by the hash of exactly
what would be compiled (every expression, id and flag, the mode, the ``hyperscan`` version
and the machine), loads it when it holds that key and an intact payload, and otherwise
compiles and stores the result. A rule added or changed anywhere gives a new key, so a stale
database can never be used for new patterns.

The folder is ``$XDG_CACHE_HOME/lambda-secrets-runbook`` (``~/.cache/lambda-secrets-runbook``
when the variable is unset or not absolute). Files are written atomically (a temporary file
renamed into place) and only the newest :data:`KEEP_FILES` are kept. Nothing here is needed for
correctness: a folder that cannot be created or written, a file that cannot be read, is cut
short, fails its digest or is refused by Hyperscan, or a file or folder that another user owns
or could write (a deserialised database is code Hyperscan runs), means the patterns are compiled
as if there were no cache. Delete the folder to clear it.

File layout: :data:`MAGIC`, the 32-byte key, the SHA-256 of the payload, the payload
(``hyperscan.dumpb``). The cache holds patterns only: no scanned content, no value.

Examples
--------
>>> import hyperscan
>>> db = compiled_database([b"AKIA[0-9A-Z]{16}"], [0], [0], hyperscan.HS_MODE_BLOCK)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Sequence

FOLDER_NAME = "lambda-secrets-runbook"
MAGIC = b"lambda-secrets-runbook hyperscan v1\n"
#: How many database files the folder keeps (the newest): a few rule sets side by side, not every one ever used.
KEEP_FILES = 8
_KEY_BYTES = _DIGEST_BYTES = 32


def cache_folder() -> Path:
    """Where compiled databases are kept: ``$XDG_CACHE_HOME/lambda-secrets-runbook`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / FOLDER_NAME


def database_key(expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int], mode: int) -> bytes:
    """SHA-256 of everything the compiled database depends on (32 bytes)."""
    import hyperscan

    described = {"format": 1, "hyperscan": hyperscan.__version__, "machine": platform.machine(), "mode": mode,
                 "patterns": [[e.decode("utf-8", "surrogateescape"), i, f] for e, i, f in zip(expressions, ids, flags)]}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode("utf-8", "surrogateescape")).digest()


def cache_file(key: bytes, folder: Path | None = None) -> Path:
    return (folder or cache_folder()) / f"hyperscan-{key.hex()}.db"


def load(key: bytes, mode: int, folder: Path | None = None):
    """The database stored under ``key``, or ``None`` (missing, unreadable, another key, corrupt, refused)."""
    import hyperscan

    path = cache_file(key, folder)
    try:
        with open(path, "rb") as file:
            if not _trusted(os.fstat(file.fileno())) or not _trusted(os.stat(path.parent)):
                return None  # someone else could have written it: Hyperscan would run their bytes
            blob = file.read()
    except OSError:
        return None
    head = len(MAGIC)
    stored_key, digest = blob[head:head + _KEY_BYTES], blob[head + _KEY_BYTES:head + _KEY_BYTES + _DIGEST_BYTES]
    payload = blob[head + _KEY_BYTES + _DIGEST_BYTES:]
    if blob[:head] != MAGIC or stored_key != key or hashlib.sha256(payload).digest() != digest or not payload:
        return None  # not ours, not this key, or cut short/changed: Hyperscan itself does not check its payload
    try:
        database = hyperscan.loadb(payload, mode)
    except (hyperscan.error, ValueError, TypeError):  # another platform or version, or refused: compile again
        return None
    try:
        os.utime(path)  # in use: the last to be pruned
    except OSError:
        pass
    return database


def _trusted(status: os.stat_result) -> bool:
    """Owned by this user and writable by no one else (a shared ``XDG_CACHE_HOME`` is not trusted)."""
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def store(key: bytes, database, folder: Path | None = None) -> Path | None:
    """Write ``database`` under ``key`` atomically; the file, or ``None`` when the folder cannot be written."""
    import hyperscan

    folder = folder or cache_folder()
    temporary = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(os.stat(folder)):
            return None  # it would not be loaded from there
        payload = hyperscan.dumpb(database)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".hyperscan-", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + key + hashlib.sha256(payload).digest() + payload)
        target = cache_file(key, folder)
        os.replace(temporary, target)
        temporary = None
        _prune(folder)
        return target
    except OSError:
        return None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _prune(folder: Path) -> None:
    """Keep the newest :data:`KEEP_FILES` database files (another rule set's files go last)."""
    files = []
    for path in folder.glob("hyperscan-*.db"):
        try:
            files.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(files, reverse=True)[KEEP_FILES:]:
        try:
            path.unlink()
        except OSError:
            pass


def compiled_database(expressions: Sequence[bytes], ids: Sequence[int], flags: Sequence[int], mode: int,
                      folder: Path | None = None):
    """A Hyperscan database of these patterns: loaded from the cache when it holds them, else compiled (and stored).

    Raises
    ------
    hyperscan.error
        The patterns do not compile (never because of the cache).
    """
    import hyperscan

    key = database_key(expressions, ids, flags, mode)
    database = load(key, mode, folder)
    if database is None:
        database = hyperscan.Database(mode=mode)
        database.compile(expressions=list(expressions), ids=list(ids), flags=list(flags))
        store(key, database, folder)
    return database
