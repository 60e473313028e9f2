"""Backout step ``access-keys``: re-activate the keys the runbook deactivated, only when asked.

The function no longer uses them: by default they stay inactive (and their records active,
so a later backout with ``reactivate_access_keys=True`` still finds them).
"""

from __future__ import annotations

from ..change import access_keys
from ..exceptions import ChangeRefused
from ..records import AccessKey
from ..steps import NONE, UPDATE
from .undo import RecordUndo


class AccessKeyUndo(RecordUndo):
    name = "access-keys"
    permissions = ("iam:ListUsers", "iam:ListAccessKeys", "iam:UpdateAccessKey")
    kinds = (AccessKey,)
    none_reason = "no access key deactivated by the runbook"

    def check(self, record):
        key = access_keys.key_of(self.c, record)
        if key is None:
            return NONE, "key no longer exists"
        if not self.o.reactivate_access_keys:
            return NONE, (f"left {key['status']} (the function no longer uses it; reactivate_access_keys=True to "
                          "re-activate)")
        if key["status"] == "Inactive":
            return UPDATE, "re-activate (asked)"
        return NONE, "already active"

    def undo(self, record):
        access_keys.reactivate(self.c, record)

    def confirm(self, record):
        key = access_keys.key_of(self.c, record)
        if self.o.reactivate_access_keys and key and key["status"] != "Active":
            raise ChangeRefused(record.resource, "key still inactive")
        return (key["status"] if key else "gone"), bool(self.o.reactivate_access_keys and key)
