"""The ledger: what this runbook found, created and changed, shared by the notebooks of a run.

``ledger.json`` lives in the run folder. The test plan writes its findings (redacted)
and the migration candidate; the implementation writes one :class:`Entry` per resource
it created or changed, with what backout needs to undo it (ARNs, previous version,
previous attachments), never a value; validation reads it to know what to check;
backout reads it to know exactly what to undo, and marks entries undone.

Writes are atomic (temporary file + rename) and happen after every change, so a
failure in the middle of an implementation leaves a ledger that says exactly what exists.

Examples
--------
>>> ledger = Ledger.open(run_dir)                                          # doctest: +SKIP
>>> ledger.record("secret", arn, action="created", step="secret",
...               data={"kms_key": "aws/secretsmanager"})                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .exceptions import ChangeRefused, InputError

LEDGER_FILE = "ledger.json"
FORMAT_VERSION = 1

#: Tags the runbook puts on everything it creates; backout deletes only what carries them.
MANAGED_BY_TAG = ("managed-by", "lambda-secrets-runbook")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    """One resource the runbook created or changed.

    ``kind`` is the resource type (``snapshot``, ``kms_key``, ``secret``, ``policy``,
    ``role``, ``policy_attachment``, ``function_config``, ``function_code``,
    ``access_key``, ``edge_association``, ...). ``action`` is ``created`` or ``changed``.
    ``data`` holds what undoing needs. ``undone`` is set by backout.
    """

    kind: str
    resource: str
    action: str
    step: str
    at: str = field(default_factory=utc_now)
    data: dict = field(default_factory=dict)
    undone: str | None = None


class Ledger:
    """A run's ledger file, kept in memory and written through on every change."""

    def __init__(self, path: Path, doc: dict):
        self.path = Path(path)
        self.doc = doc

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | os.PathLike, create: bool = True) -> "Ledger":
        """Open ``run_dir/ledger.json``, creating the folder and an empty ledger if asked."""
        run_dir = Path(run_dir)
        path = run_dir / LEDGER_FILE
        if path.exists():
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise InputError("run_dir", f"{path} is not valid JSON ({exc.msg}); "
                                 "restore it from the run archive") from None
            if doc.get("format") != FORMAT_VERSION:
                raise InputError("run_dir", f"{path} has format {doc.get('format')!r}, "
                                 f"this runbook reads format {FORMAT_VERSION}")
            return cls(path, doc)
        if not create:
            raise InputError("run_dir", f"no {LEDGER_FILE} in {run_dir}: pass the folder of "
                             "the run whose implementation you want to act on")
        run_dir.mkdir(parents=True, exist_ok=True)
        ledger = cls(path, {"format": FORMAT_VERSION, "created": utc_now(), "context": {},
                            "baseline": {}, "entries": [], "events": []})
        ledger.save()
        return ledger

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.doc, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
        os.replace(tmp, self.path)

    # -- context: which account/function this run is about --------------------------
    @property
    def context(self) -> dict:
        return self.doc.setdefault("context", {})

    def bind(self, **context: Any) -> None:
        """Record (or check) the account, region and function this run acts on.

        A ledger bound to one account or function refuses another, so a backout can
        never be pointed at the wrong place by a mistyped ``run_dir``.
        """
        for key, value in context.items():
            if value in (None, ""):
                continue
            known = self.context.get(key)
            if known not in (None, "") and known != value:
                raise InputError("run_dir", f"this run's ledger is for {key} {known!r}, "
                                 f"not {value!r}: use the run folder of that {key}")
        self.context.update({k: v for k, v in context.items() if v not in (None, "")})
        self.save()

    # -- baseline (test plan) -------------------------------------------------------
    @property
    def baseline(self) -> dict:
        return self.doc.setdefault("baseline", {})

    def set_baseline(self, **values: Any) -> None:
        self.baseline.update(values)
        self.save()

    # -- entries (implementation / backout) ---------------------------------------
    def entries(self, kind: str | None = None, active_only: bool = False) -> list[Entry]:
        out = [Entry(**e) for e in self.doc.get("entries", [])]
        if kind:
            out = [e for e in out if e.kind == kind]
        if active_only:
            out = [e for e in out if not e.undone]
        return out

    def find(self, kind: str, resource: str | None = None) -> Entry | None:
        """The newest active entry of ``kind`` (and ``resource`` when given)."""
        for entry in reversed(self.entries(kind, active_only=True)):
            if resource is None or entry.resource == resource:
                return entry
        return None

    def record(self, kind: str, resource: str, action: str, step: str,
               data: dict | None = None) -> Entry:
        """Add (or refresh) the entry for one resource and write the ledger at once."""
        entry = Entry(kind=kind, resource=resource, action=action, step=step, data=data or {})
        entries = self.doc.setdefault("entries", [])
        for i, existing in enumerate(entries):
            if existing["kind"] == kind and existing["resource"] == resource and not existing.get("undone"):
                merged = dict(existing["data"])
                merged.update(entry.data)
                entries[i] = {**existing, "data": merged}
                self.save()
                return Entry(**entries[i])
        entries.append(asdict(entry))
        self.save()
        return entry

    def mark_undone(self, kind: str, resource: str, how: str) -> None:
        for existing in self.doc.get("entries", []):
            if existing["kind"] == kind and existing["resource"] == resource and not existing.get("undone"):
                existing["undone"] = f"{utc_now()} {how}"
        self.save()

    # -- events: a human-readable journal of what each notebook did -------------
    def log(self, notebook: str, message: str) -> None:
        self.doc.setdefault("events", []).append({"at": utc_now(), "notebook": notebook,
                                                  "message": message})
        self.save()

    # -- locks: one change at a time per function -----------------------------------
    def lock_holder(self) -> str | None:
        return self.doc.get("lock")

    def acquire(self, owner: str) -> None:
        holder = self.doc.get("lock")
        if holder and holder != owner:
            raise ChangeRefused(str(self.path), f"locked by {holder}; wait for it or remove "
                                "the lock if that run is dead")
        self.doc["lock"] = owner
        self.save()

    def release(self, owner: str) -> None:
        if self.doc.get("lock") == owner:
            self.doc.pop("lock")
            self.save()


def iter_values(doc: Any) -> Iterable[str]:
    """Every string in a JSON-like document (for leak checks on the ledger)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield str(k)
            yield from iter_values(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from iter_values(v)
    elif isinstance(doc, str):
        yield doc
