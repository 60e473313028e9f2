"""Backout step ``role``: delete the dedicated role the runbook made (its policies first)."""

from __future__ import annotations

from .. import iam
from ..exceptions import ChangeRefused
from ..records import Role
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class RoleUndo(RecordUndo):
    name = "role"
    permissions = ("iam:GetRole", "iam:ListRoleTags", "iam:ListAttachedRolePolicies", "iam:DetachRolePolicy",
                   "iam:ListRolePolicies", "iam:DeleteRolePolicy", "iam:DeleteRole")
    kinds = (Role,)
    none_reason = "no dedicated role in the ledger"

    def check(self, record):
        name = iam.role_name_from_arn(record.resource)
        role = iam.get_role(self.c.iam, name)
        if role is None:
            return NONE, "already deleted"
        if role["Arn"] != record.resource or not self.c.managed(iam.role_tags(self.c.iam, name)):
            return BLOCKED, "role lacks the runbook's tags for this function: not deleting it"
        if self.c.function_exists() and self.c.live()["Role"] == role["Arn"]:
            return BLOCKED, "the function still runs as this role (its restore did not happen): left in place"
        return DELETE, "delete the dedicated role (its inline policies first)"

    def undo(self, record):
        iam.delete_role(self.c.iam, iam.role_name_from_arn(record.resource))

    def confirm(self, record):
        if iam.get_role(self.c.iam, iam.role_name_from_arn(record.resource)) is not None:
            raise ChangeRefused(record.resource, "role still exists")
        return "deleted", True
