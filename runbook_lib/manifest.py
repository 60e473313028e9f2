"""The hash manifest that makes an archived run folder tamper-evident.

``manifest.json`` lists every artifact of a run folder with its SHA-256 and size.
:func:`verify_manifest` re-hashes the folder and reports every difference: a changed,
missing or added file, so an auditor can show that an archived run is untampered.

Examples
--------
>>> write_manifest(run_dir)                 # doctest: +SKIP
>>> verify_manifest(run_dir)                # doctest: +SKIP
[]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .exceptions import InputError
from .ledger import utc_now

MANIFEST_FILE = "manifest.json"
#: Files that are not artifacts: the manifest itself and a run's transient lock.
_EXCLUDED = {MANIFEST_FILE, ".lock"}


@dataclass(frozen=True)
class Difference:
    path: str
    problem: str  # changed / missing / unexpected

    def __str__(self) -> str:
        return f"{self.problem}: {self.path}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_paths(run_dir: Path) -> list[Path]:
    run_dir = Path(run_dir)
    return sorted(p for p in run_dir.rglob("*")
                  if p.is_file() and p.relative_to(run_dir).as_posix() not in _EXCLUDED
                  and not p.name.startswith(".ledger-"))


def write_manifest(run_dir: str | Path) -> dict:
    """Hash every artifact of ``run_dir`` into ``manifest.json`` and return the document."""
    run_dir = Path(run_dir)
    files = [{"path": p.relative_to(run_dir).as_posix(), "sha256": sha256_file(p),
              "size": p.stat().st_size} for p in artifact_paths(run_dir)]
    doc = {"tool": "lambda-secrets-runbook", "version": __version__, "created": utc_now(),
           "algorithm": "sha256", "files": files}
    (run_dir / MANIFEST_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def verify_manifest(run_dir: str | Path) -> list[Difference]:
    """Every difference between ``run_dir`` and its manifest (empty list: untampered)."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise InputError("RUN_DIR", f"no {MANIFEST_FILE} in {run_dir}: is this a run folder?")
    try:
        listed = {f["path"]: f for f in json.loads(path.read_text())["files"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError("RUN_DIR", f"{path} is not a valid manifest") from None
    differences = []
    present = {p.relative_to(run_dir).as_posix(): p for p in artifact_paths(run_dir)}
    for rel, entry in listed.items():
        file = present.get(rel)
        if file is None:
            differences.append(Difference(rel, "missing"))
        elif file.stat().st_size != entry["size"] or sha256_file(file) != entry["sha256"]:
            differences.append(Difference(rel, "changed"))
    differences.extend(Difference(rel, "unexpected") for rel in sorted(set(present) - set(listed)))
    return differences
