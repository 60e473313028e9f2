"""Backout step ``policy``: detach the runbook's policy from the roles it attached it to, then delete it."""

from __future__ import annotations

from .. import iam
from ..exceptions import ChangeRefused
from ..records import Policy, PolicyAttachment
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class PolicyUndo(RecordUndo):
    name = "policy"
    permissions = ("iam:GetPolicy", "iam:ListPolicyTags", "iam:ListEntitiesForPolicy", "iam:DetachRolePolicy",
                   "iam:ListPolicyVersions", "iam:DeletePolicyVersion", "iam:DeletePolicy")
    kinds = (PolicyAttachment, Policy)  # attachments first: IAM deletes only a detached policy
    none_reason = "no policy in the ledger"

    def _attached(self, record: PolicyAttachment) -> bool:
        return bool(iam.get_role(self.c.iam, record.role)) and \
            record.policy_arn in iam.attached_policy_arns(self.c.iam, record.role)

    def _our_roles(self, arn: str) -> set[str]:
        return {r.role for r in self.c.ledger.records(PolicyAttachment) if r.policy_arn == arn}

    def check(self, record):
        if isinstance(record, PolicyAttachment):
            return (DELETE, f"detach from {record.role}") if self._attached(record) else (NONE, "already detached")
        policy = iam.get_policy(self.c.iam, record.resource)
        if policy is None:
            return NONE, "already deleted"
        if policy["Arn"] != record.resource or not self.c.managed(iam.policy_tags(self.c.iam, record.resource)):
            return BLOCKED, ("policy lacks the runbook's tags for this function: not deleting a resource the runbook "
                             "cannot prove it owns")
        others = [r for r in iam.policy_attachments(self.c.iam, record.resource) if r not in self._our_roles(record.resource)]
        if others:
            return BLOCKED, f"also attached to {', '.join(others)} outside the runbook: left alone"
        return DELETE, "delete the policy (all versions)"

    def undo(self, record):
        if isinstance(record, PolicyAttachment):
            iam.detach(self.c.iam, record.role, record.policy_arn)
        else:
            iam.delete_policy(self.c.iam, record.resource)

    def confirm(self, record):
        if isinstance(record, PolicyAttachment):
            if self._attached(record):
                raise ChangeRefused(record.resource, "policy still attached")
            return "detached", True
        if iam.get_policy(self.c.iam, record.resource) is not None:
            raise ChangeRefused(record.resource, "policy still exists")
        return "deleted", True
