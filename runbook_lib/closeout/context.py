"""What the close-out steps share: the change context, the replacement values, the migrated fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

from .. import edge, residue
from ..change.context import ChangeContext
from ..exceptions import InputError
from ..records import EdgeAssociation, EdgeVersion


class NewValues:
    """Replacement values, in memory only; nothing about it shows them."""

    __slots__ = ("items",)

    def __init__(self, items: dict):
        self.items = items

    def __repr__(self) -> str:
        return f"<{len(self.items)} new values hidden>"

    def __bool__(self) -> bool:
        return bool(self.items)


def read_rotation_file(path: str, allowed: list[str]) -> NewValues:
    """The JSON object of new values in ``path``; errors name keys and the file, never a value."""
    if not path:
        return NewValues({})
    file = Path(path)
    if not file.is_file():
        raise InputError("rotate_from", f"{path} does not exist or is not a file")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("rotate_from", f"{path} is not valid JSON (expected an object of "
                         "variable name to new value)") from None
    if not isinstance(doc, dict) or not doc:
        raise InputError("rotate_from", f"{path} must hold a non-empty JSON object of variable name to new value")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise InputError("rotate_from", f"{path} names {', '.join(unknown)}, which this run did not move "
                         f"into the secret (moved: {', '.join(allowed) or 'none'})")
    bad = sorted(k for k, v in doc.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise InputError("rotate_from", f"{path}: the new value of {', '.join(bad)} must be a non-empty string")
    return NewValues(doc)


class CloseoutContext(ChangeContext):
    """The change context plus the new values and the fingerprints of the exposed ones."""

    def __init__(self, target, ledger, function_name: str, change_ticket: str, new_values: NewValues,
                 scanner=None, fingerprinter=None):
        super().__init__(target, ledger, function_name, change_ticket, scanner, fingerprinter)
        self.new_values = new_values
        # read once, before anything changes: after the snapshot is deleted and the secret
        # rotated, these fingerprints are the only memory of the exposed values
        self.migrated = residue.migrated_fingerprints(self.lam, self.sm, ledger, function_name, self.fingerprinter)

    def snapshot_version(self) -> str:
        snap = self.snapshot()
        return snap.version if snap else ""

    def edge_version_arns(self) -> set[str]:
        arns = {r.resource for r in self.ledger.records(EdgeVersion)}
        for record in self.ledger.records(EdgeAssociation):
            arns |= {a for a in (record.version_arn, record.previous_arn) if a}
        return arns

    def associated_arns(self) -> dict[str, list[str]]:
        """``{version ARN: [distribution ids]}`` still associated, for the distributions in the ledger."""
        out: dict[str, list[str]] = {}
        for dist in sorted({r.resource for r in self.ledger.records(EdgeAssociation)}):
            config, _ = edge.get_distribution_config(self.cf, dist)
            behaviours = [config.get("DefaultCacheBehavior") or {}] + list(
                (config.get("CacheBehaviors") or {}).get("Items") or [])
            for behaviour in behaviours:
                for item in (behaviour.get("LambdaFunctionAssociations") or {}).get("Items") or []:
                    out.setdefault(item.get("LambdaFunctionARN", ""), []).append(dist)
        return out

    def sweep(self) -> residue.Sweep:
        snap = self.snapshot()
        version = "" if (snap and snap.deleted_by_closeout) else self.snapshot_version()
        return residue.sweep_function(self.lam, self.function_name, self.migrated, self.scanner,
                                      self.fingerprinter, snapshot_version=version,
                                      edge_version_arns=self.edge_version_arns())
