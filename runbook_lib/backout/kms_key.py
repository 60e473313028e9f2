"""Backout step ``kms-key``: schedule the deletion of the customer managed key the runbook made."""

from __future__ import annotations

from .. import secrets_store
from ..records import KmsKey
from .undo import ScheduledDeletion


class KmsKeyUndo(ScheduledDeletion):
    name, what = "kms-key", "key"
    permissions = ("kms:DescribeKey", "kms:ListResourceTags", "kms:DeleteAlias", "kms:ScheduleKeyDeletion")
    kinds = (KmsKey,)
    none_reason = "no customer managed key in the ledger"

    def live(self, record):
        return secrets_store.describe_key(self.c.kms, record.resource)

    def scheduled(self, live):
        if live.get("KeyState") not in ("PendingDeletion", "PendingReplicaDeletion"):
            return ""
        return str(live.get("DeletionDate") or live["KeyState"])

    def owned(self, record, live):
        return live["Arn"] == record.resource and self.c.managed(secrets_store.key_tags(self.c.kms, record.resource))

    def delete_reason(self):
        return f"schedule deletion in {secrets_store.KEY_PENDING_DAYS} days (cancel with CancelKeyDeletion)"

    def undo(self, record):
        secrets_store.schedule_key_deletion(self.c.kms, record.resource, record.alias)
