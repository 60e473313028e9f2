"""Backout step ``secret``: schedule the secret's deletion, restorable within the recovery window."""

from __future__ import annotations

from .. import secrets_store
from ..exceptions import ChangeRefused
from ..records import Secret
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class SecretUndo(RecordUndo):
    name = "secret"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret")
    kinds = (Secret,)
    none_reason = "no secret in the ledger"

    def check(self, record):
        secret = secrets_store.describe_secret(self.c.sm, record.resource)
        if secret is None:
            return NONE, "already deleted"
        if secret.get("DeletedDate"):
            return NONE, f"already scheduled for deletion ({secret['DeletedDate']})"
        if secret["ARN"] != record.resource or not self.c.managed(secrets_store.tags_dict(secret.get("Tags"))):
            return BLOCKED, "secret lacks the runbook's tags for this function: not deleting it"
        if self.o.recovery_days == 0:
            return DELETE, "delete at once, without recovery (force=True)"
        return DELETE, f"schedule deletion; restorable for {self.o.recovery_days} days (RestoreSecret)"

    def undo(self, record):
        response = secrets_store.schedule_secret_deletion(self.c.sm, record.resource, self.o.recovery_days)
        self.c.ledger.put(record.replace(deletion_date=str(response.get("DeletionDate", ""))))

    def confirm(self, record):
        secret = secrets_store.describe_secret(self.c.sm, record.resource)
        if secret is not None and not secret.get("DeletedDate"):
            raise ChangeRefused(record.resource, "secret not scheduled for deletion")
        return f"deletion scheduled ({secret['DeletedDate'] if secret else 'deleted'})", True
