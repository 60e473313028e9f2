"""The signed manifest that makes an archived run folder tamper-evident.

``manifest.json`` lists every file of a run folder, hidden ones included (the ledger's
temporary files, locks, ``checks/``), with its SHA-256 and size, and is signed with an
Ed25519 key that the folder does not hold (:mod:`runbook_lib.signing`), the way
CloudTrail signs its digest files. :func:`verify_run` re-hashes the folder, checks the
signature, and says which key signed and whether that key is trusted. A folder that
was edited and re-hashed, re-signed with another key, or never signed fails; so does a
symlink or a special file anywhere in it (a run never makes one, and writing through a
planted link would change files outside the folder).

Examples
--------
>>> write_manifest(run_dir, load_signing_key())      # doctest: +SKIP
>>> verify_run(run_dir).ok                           # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from . import __version__
from .exceptions import ChangeRefused, InputError
from .signing import PublicKey, SigningKey, ensure_outside, load_signing_key, trusted_fingerprints

MANIFEST_FILE = "manifest.json"
FORMAT = 2


@dataclass(frozen=True, order=True)
class Difference:
    path: str
    problem: str  # changed / missing / unexpected / symlink / special file / not signed / ...
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.problem}: {self.path}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Verification:
    """What :func:`verify_run` found: every difference, who signed, whether they are trusted."""

    run_dir: Path
    differences: list[Difference] = field(default_factory=list)
    signer: str = ""       # fingerprint of the signing key; empty when unsigned
    public_key: str = ""   # base64 of the raw Ed25519 public key
    trusted: bool = False
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_folder(run_dir: Path) -> tuple[dict[str, Path], list[Difference]]:
    """Regular files of ``run_dir`` by relative path, and every entry that may not be there."""
    run_dir = Path(run_dir)
    files: dict[str, Path] = {}
    odd: list[Difference] = []

    def unreadable(error: OSError) -> None:
        rel = Path(error.filename).relative_to(run_dir).as_posix() if error.filename else "."
        odd.append(Difference(rel, "unreadable", error.strerror or type(error).__name__))

    for root, dirs, names in os.walk(run_dir, onerror=unreadable):  # never follows a linked folder
        for name in dirs + names:
            path = Path(root) / name
            rel = path.relative_to(run_dir).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                odd.append(Difference(rel, "symlink", "a run folder holds regular files only"))
            elif stat.S_ISREG(mode):
                if rel != MANIFEST_FILE:
                    files[rel] = path
            elif not stat.S_ISDIR(mode):
                odd.append(Difference(rel, "special file", "a run folder holds regular files only"))
    return dict(sorted(files.items())), sorted(odd)


def signed_bytes(doc: dict) -> bytes:
    """The bytes a signature covers: the manifest without its signature, as canonical JSON."""
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _previous(path: Path) -> dict | None:
    """The manifest being replaced (a later backout or close-out), named by hash and signer."""
    if not path.is_file() or path.is_symlink():
        return None
    data = path.read_bytes()
    try:
        signer = json.loads(data).get("signer", {}).get("fingerprint", "")
    except (ValueError, AttributeError):
        signer = ""
    return {"sha256": hashlib.sha256(data).hexdigest(), "signer": signer}


def write_manifest(run_dir: str | Path, key: SigningKey | None = None) -> dict:
    """Hash every file of ``run_dir`` into a signed ``manifest.json``; return the document.

    Raises
    ------
    ChangeRefused
        The folder holds a symlink or a special file: it is not signed.
    InputError
        The signing key is unusable, or lies inside ``run_dir``.
    """
    run_dir = Path(run_dir)
    key = key or load_signing_key()
    ensure_outside(key, run_dir)
    files, odd = scan_folder(run_dir)
    if odd:
        raise ChangeRefused(str(run_dir), f"not signed: {odd[0]}")
    doc = {"tool": "lambda-secrets-runbook", "version": __version__, "format": FORMAT,
           "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "algorithm": "sha256",
           "files": [{"path": rel, "sha256": sha256_file(p), "size": p.stat().st_size} for rel, p in files.items()],
           "signer": {"algorithm": "ed25519", "public_key": key.public.b64, "fingerprint": key.public.fingerprint}}
    previous = _previous(run_dir / MANIFEST_FILE)
    if previous:
        doc["previous_manifest"] = previous
    doc["signature"] = base64.b64encode(key.sign(signed_bytes(doc))).decode()
    tmp = run_dir / f".manifest-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # readable like any artifact (umask)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, run_dir / MANIFEST_FILE)  # replaces a planted link, never writes through it
    return doc


def _load(run_dir: Path) -> dict:
    path = run_dir / MANIFEST_FILE
    if not run_dir.is_dir():
        raise InputError("RUN_DIR", f"{run_dir} is not a folder: pass the folder of an archived run")
    if path.is_symlink() or not path.is_file():
        raise InputError("RUN_DIR", f"no {MANIFEST_FILE} in {run_dir}: is this a run folder?")
    try:
        doc = json.loads(path.read_text())
        listed = doc["files"]
        if not all(isinstance(f["path"], str) and isinstance(f["sha256"], str) and isinstance(f["size"], int)
                   for f in listed):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InputError("RUN_DIR", f"{path} is not a valid manifest") from None
    return doc


def _signature(doc: dict, trusted: list[str], verification: Verification) -> list[Difference]:
    signer, signature = doc.get("signer"), doc.get("signature")
    if not signer or not signature:
        return [Difference(MANIFEST_FILE, "not signed", "hashes alone prove nothing: anyone can re-hash")]
    try:
        public = PublicKey.from_b64(signer["public_key"])
        raw_signature = base64.b64decode(signature, validate=True)
    except (KeyError, TypeError, ValueError):
        return [Difference(MANIFEST_FILE, "malformed signature")]
    verification.signer, verification.public_key = public.fingerprint, public.b64
    if signer.get("fingerprint") != public.fingerprint:
        return [Difference(MANIFEST_FILE, "bad signature", "the recorded fingerprint is not its key's")]
    if not public.verify(raw_signature, signed_bytes(doc)):
        return [Difference(MANIFEST_FILE, "bad signature", f"changed after {public.fingerprint} signed it")]
    verification.trusted = public.fingerprint in trusted
    if not trusted:
        return [Difference(MANIFEST_FILE, "untrusted signer", f"signed by {public.fingerprint}; no trusted key "
                           "is known: pass --trusted-key PUBFILE|FINGERPRINT")]
    if not verification.trusted:
        return [Difference(MANIFEST_FILE, "untrusted signer",
                           f"signed by {public.fingerprint}, trusted: {', '.join(trusted)}")]
    return []


def verify_run(run_dir: str | Path, trusted: Iterable[str] | None = None,
               signing_key: str | os.PathLike | None = None) -> Verification:
    """Check signature and hashes of ``run_dir``; signature problems come first.

    Parameters
    ----------
    trusted:
        Fingerprints a valid signature must come from. Default: your own signing key's
        (``--signing-key``, ``RUNBOOK_SIGNING_KEY_FILE`` or the per-user key).
    """
    run_dir = Path(run_dir)
    doc = _load(run_dir)
    trusted = sorted(trusted) if trusted is not None else trusted_fingerprints([], signing_key)
    verification = Verification(run_dir)
    differences = _signature(doc, trusted, verification)
    listed = {f["path"]: f for f in doc["files"]}
    present, odd = scan_folder(run_dir)
    file_differences = list(odd)
    for rel, entry in listed.items():
        path = present.get(rel)
        if path is None:
            file_differences.append(Difference(rel, "missing"))
        elif path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            file_differences.append(Difference(rel, "changed"))
    file_differences += [Difference(rel, "unexpected") for rel in present if rel not in listed]
    verification.differences = differences + sorted(file_differences)
    verification.files = len(listed)
    return verification


def verify_manifest(run_dir: str | Path, trusted: Iterable[str] | None = None) -> list[Difference]:
    """Every difference between ``run_dir`` and its signed manifest (empty list: untampered)."""
    return verify_run(run_dir, trusted).differences
