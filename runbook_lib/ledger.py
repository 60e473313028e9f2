"""The ledger: what this runbook found, created and changed, shared by the notebooks of a run.

``ledger.json`` lives in the run folder. The test plan writes its findings (redacted)
and the migration candidate; the implementation writes one typed record
(:mod:`runbook_lib.records`) per resource it created or changed, with what backout needs
to undo it (ARNs, previous version, previous attachments), never a value; validation
reads it to know what to check; backout reads it to know exactly what to undo, and marks
records undone. A ledger with an unknown or malformed record is refused when opened,
with the file and the record named.

Writes are atomic (temporary file + rename) and happen after every change, so a
failure in the middle of an implementation leaves a ledger that says exactly what exists.

Examples
--------
>>> ledger = Ledger.open(run_dir)                                          # doctest: +SKIP
>>> ledger.put(Secret(resource=arn, name="lambda/orders-api/config",
...                   kms_key="aws/secretsmanager", step="secret"))       # doctest: +SKIP
>>> ledger.snapshot("orders-api").moved_variables                         # doctest: +SKIP
['DB_PASSWORD', 'PARTNER_API_KEY']
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, TypeVar

from .exceptions import ChangeRefused, InputError
from .records import Intent, Record, Snapshot, utc_now
from .records import Secret as SecretRecord

R = TypeVar("R", bound=Record)

LEDGER_FILE = "ledger.json"
FORMAT_VERSION = 1

#: Tags the runbook puts on everything it creates; backout deletes only what carries them.
MANAGED_BY_TAG = ("managed-by", "lambda-secrets-runbook")


class Ledger:
    """A run's ledger file, kept in memory and written through on every change."""

    def __init__(self, path: Path, doc: dict):
        self.path = Path(path)
        self.doc = doc
        self._records: list[Record] = [Record.from_json(e, str(self.path)) for e in doc.get("entries", [])]

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
        self.doc["entries"] = [r.to_json() for r in self._records]
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

    # -- records (implementation, backout, close-out) --------------------------------
    def records(self, kind: type[R] | str | None = None, active_only: bool = False) -> list[R]:
        """Every record (of ``kind``: a record class or its kind name), oldest first."""
        name = kind if isinstance(kind, str) or kind is None else kind.kind
        out = [r for r in self._records if name is None or r.kind == name]
        return [r for r in out if r.active] if active_only else out

    def latest(self, kind: type[R] | str, resource: str | None = None) -> R | None:
        """The newest active record of ``kind`` (and ``resource`` when given)."""
        for record in reversed(self.records(kind, active_only=True)):
            if resource is None or record.resource == resource:
                return record
        return None

    def snapshot(self, function_name: str | None = None) -> Snapshot | None:
        """The backout snapshot of ``function_name`` (default: the run's function)."""
        return self.latest(Snapshot, function_name or self.context.get("function_name") or None)

    def secret(self) -> SecretRecord | None:
        return self.latest(SecretRecord)

    def put(self, record: R) -> R:
        """Store ``record``, replacing the active record of its kind and resource; write at once."""
        for i, existing in enumerate(self._records):
            if existing.kind == record.kind and existing.resource == record.resource and existing.active:
                self._records[i] = record
                break
        else:
            self._records.append(record)
        self.save()
        return record

    def undo(self, record: Record, how: str) -> None:
        """Mark ``record`` undone (backout did ``how``): it is no longer active."""
        self.put(record.replace(undone=f"{utc_now()} {how}"))

    def pending_intents(self) -> list[Intent]:
        """Creates written down before their AWS call and not resolved since, oldest first."""
        return self.records(Intent, active_only=True)

    def resolve(self, intent: Intent, how: str) -> None:
        """Close a pending intent (``how``: what was found or made); it is no longer active."""
        self.undo(intent, how)

    # -- events: a human-readable journal of what each notebook did -------------
    def log(self, notebook: str, message: str) -> None:
        self.doc.setdefault("events", []).append({"at": utc_now(), "notebook": notebook,
                                                  "message": message})
        self.save()

    # -- locks: one change at a time per function -----------------------------------
    def lock_holder(self) -> str | None:
        """Who holds the lock, as the file says now (another process may have taken it)."""
        return self._on_disk().get("lock", self.doc.get("lock"))

    def _on_disk(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def reload(self) -> None:
        """Read the file again: another process (an earlier, killed run) may have written it."""
        doc = self._on_disk()
        if doc.get("format") == FORMAT_VERSION:
            self.doc = doc
            self._records = [Record.from_json(e, str(self.path)) for e in doc.get("entries", [])]

    def acquire(self, owner: str) -> None:
        """Take the lock for ``owner``, working from the file as it is now; refuse another holder.

        :mod:`runbook_lib.change.locks` explains a refusal (is the holder still running?);
        this check is the backstop.
        """
        self.reload()
        holder = self.doc.get("lock")
        if holder and holder != owner:
            raise ChangeRefused(str(self.path), f"locked by {holder}; wait for it, or release "
                                "a dead run's lock with `runbook unlock RUN_DIR`")
        self.doc["lock"] = owner
        self.save()

    def release(self, owner: str) -> None:
        if owner and self.doc.get("lock") == owner:
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
