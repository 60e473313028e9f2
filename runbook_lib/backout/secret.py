"""Backout step ``secret``: schedule the secret's deletion, restorable within the recovery window."""

from __future__ import annotations

from .. import secrets_store
from ..records import Secret
from .undo import ScheduledDeletion


class SecretUndo(ScheduledDeletion):
    name, what = "secret", "secret"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret")
    kinds = (Secret,)
    none_reason = "no secret in the ledger"

    def live(self, record):
        return secrets_store.describe_secret(self.c.sm, record.resource)

    def scheduled(self, live):
        return str(live.get("DeletedDate") or "")

    def owned(self, record, live):
        return live["ARN"] == record.resource and self.c.managed(secrets_store.tags_dict(live.get("Tags")))

    def delete_reason(self):
        if self.o.recovery_days == 0:
            return "delete at once, without recovery (force=True)"
        return f"schedule deletion; restorable for {self.o.recovery_days} days (RestoreSecret)"

    def undo(self, record):
        response = secrets_store.schedule_secret_deletion(self.c.sm, record.resource, self.o.recovery_days)
        self.c.ledger.put(record.replace(deletion_date=str(response.get("DeletionDate", ""))))
