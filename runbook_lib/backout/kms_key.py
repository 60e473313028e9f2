"""Backout step ``kms-key``: schedule the deletion of the customer managed key the runbook made."""

from __future__ import annotations

from .. import secrets_store
from ..exceptions import ChangeRefused
from ..records import KmsKey
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class KmsKeyUndo(RecordUndo):
    name = "kms-key"
    permissions = ("kms:DescribeKey", "kms:ListResourceTags", "kms:DeleteAlias", "kms:ScheduleKeyDeletion")
    kinds = (KmsKey,)
    none_reason = "no customer managed key in the ledger"

    def check(self, record):
        meta = secrets_store.describe_key(self.c.kms, record.resource)
        if meta is None:
            return NONE, "already deleted"
        if meta.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
            return NONE, f"already pending deletion ({meta.get('DeletionDate')})"
        if meta["Arn"] != record.resource or not self.c.managed(secrets_store.key_tags(self.c.kms, record.resource)):
            return BLOCKED, "key lacks the runbook's tags for this function: not deleting it"
        return DELETE, f"schedule deletion in {secrets_store.KEY_PENDING_DAYS} days (cancel with CancelKeyDeletion)"

    def undo(self, record):
        secrets_store.schedule_key_deletion(self.c.kms, record.resource, record.alias)

    def confirm(self, record):
        meta = secrets_store.describe_key(self.c.kms, record.resource)
        if meta is not None and meta.get("KeyState") != "PendingDeletion":
            raise ChangeRefused(record.resource, "key not pending deletion")
        return f"deletion scheduled ({meta.get('DeletionDate') if meta else 'deleted'})", True
