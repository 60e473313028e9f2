"""The keys that sign run manifests: Ed25519, always kept outside the run folder.

A hash manifest alone proves nothing against someone who can write the folder: they
edit a file and re-hash. Like CloudTrail's signed digest files, the manifest is signed
with a private key the folder does not hold, and verified against a public key the
auditor trusts. The key comes from ``--signing-key FILE``, else
``RUNBOOK_SIGNING_KEY_FILE``, else a per-user key created on first use (mode 0600) in the
user's config folder. A key is named by its fingerprint, ``ed25519:`` and the first 128
bits of the SHA-256 of the raw public key, in hex.

Examples
--------
>>> key = load_signing_key()                         # doctest: +SKIP
>>> key.public.fingerprint                           # doctest: +SKIP
'ed25519:6f1c0a...'
>>> key.public.verify(key.sign(b"doc"), b"doc")      # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .exceptions import InputError

KEY_FILE_ENV = "RUNBOOK_SIGNING_KEY_FILE"
APP_NAME = "lambda-secrets-runbook"
DEFAULT_KEY_NAME = "signing-key.pem"
ALGORITHM = "ed25519"
_FINGERPRINT = re.compile(r"ed25519:[0-9a-f]{32}")


def default_key_path() -> Path:
    """``<user config folder>/lambda-secrets-runbook/signing-key.pem`` (XDG on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / DEFAULT_KEY_NAME


def fingerprint_of(raw_public_key: bytes) -> str:
    return f"{ALGORITHM}:" + hashlib.sha256(raw_public_key).hexdigest()[:32]


@dataclass(frozen=True)
class PublicKey:
    """The public half of a signing key, as recorded in a manifest (base64 of the raw 32 bytes)."""

    raw: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @classmethod
    def from_b64(cls, text: str) -> "PublicKey":
        raw = base64.b64decode(text, validate=True)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return cls(raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class SigningKey:
    """An Ed25519 private key and the file it came from; its repr shows only the fingerprint."""

    __slots__ = ("_private", "path", "public")

    def __init__(self, private, path: Path):
        from cryptography.hazmat.primitives import serialization

        self._private = private
        self.path = Path(path)
        self.public = PublicKey(private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey({self.public.fingerprint}, path={str(self.path)!r})"


def _source(explicit: str | os.PathLike | None) -> tuple[Path, str]:
    """The key file and the option that named it (for error messages)."""
    if explicit:
        return Path(explicit).expanduser(), "--signing-key"
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV]).expanduser(), KEY_FILE_ENV
    return default_key_path(), "signing key"


def _create_default(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:  # O_EXCL: of two first runs at once, one creates the key and both use it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _read_private(path: Path, option: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(option, f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(option, f"{path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
                         f"chmod 600 {path}")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, Ed25519PrivateKey):
        raise InputError(option, f"{path} is not an unencrypted Ed25519 private key in PEM (PKCS#8); "
                         f"make one with `openssl genpkey -algorithm ed25519 -out {path}`")
    return private


def load_signing_key(explicit: str | os.PathLike | None = None) -> SigningKey:
    """The key that signs this user's manifests; the per-user default is created on first use.

    Raises
    ------
    InputError
        A named key file is missing, unreadable, readable by other users, or not Ed25519.
    """
    path, option = _source(explicit)
    if not path.exists():
        if option != "signing key":
            raise InputError(option, f"no key file at {path}: make one with `openssl genpkey -algorithm "
                             f"ed25519 -out {path}` and chmod 600 it, or leave {option} unset to use "
                             "your per-user key")
        _create_default(path)
    return SigningKey(_read_private(path, option), path)


def configured_public_key(explicit: str | os.PathLike | None = None) -> PublicKey | None:
    """The public half of the key :func:`load_signing_key` would use, without creating one."""
    path, _ = _source(explicit)
    if not path.exists():
        return None
    return load_signing_key(explicit).public


def _public_from_file(path: Path) -> PublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError("--trusted-key", f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    key = None
    for loader in (serialization.load_pem_public_key, serialization.load_ssh_public_key):
        try:
            key = loader(data)
            break
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if key is None and b"PRIVATE KEY" in data:
        key = _read_private(path, "--trusted-key").public_key()
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("--trusted-key", f"{path} holds no Ed25519 public key (PEM or OpenSSH)")
    return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def trusted_fingerprint(spec: str) -> str:
    """The fingerprint named by ``--trusted-key``: a fingerprint itself, or a public key file.

    Examples
    --------
    >>> trusted_fingerprint("ED25519:" + "ab" * 16)
    'ed25519:abababababababababababababababab'
    """
    text = str(spec).strip()
    if _FINGERPRINT.fullmatch(text.lower()):
        return text.lower()
    path = Path(text).expanduser()
    if not path.is_file():
        raise InputError("--trusted-key", f"{text!r} is neither a key fingerprint (ed25519:<32 hex>) "
                         "nor a public key file")
    return _public_from_file(path).fingerprint


def trusted_fingerprints(specs: Iterable[str], signing_key: str | os.PathLike | None = None) -> list[str]:
    """What a folder may be signed by: the ``--trusted-key`` values, else your own signing key."""
    specs = [s for s in specs if s]
    if specs:
        return sorted({trusted_fingerprint(s) for s in specs})
    own = configured_public_key(signing_key)
    return [own.fingerprint] if own else []


def ensure_outside(key: SigningKey, folder: Path) -> None:
    """Refuse a key that lives inside the folder it would sign: whoever holds the folder holds the key."""
    key_path, folder = key.path.resolve(), Path(folder).resolve()
    if key_path == folder or folder in key_path.parents:
        raise InputError("--signing-key", f"{key.path} is inside the run folder {folder}: keep the signing "
                         "key outside the folders it signs")
