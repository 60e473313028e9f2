"""Backout step ``grant``: take the runbook's statements off the secret's resource policy, keep everyone else's."""

from __future__ import annotations

from .. import secret_grant, secrets_store
from ..exceptions import ChangeRefused
from ..records import SecretPolicy
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class GrantUndo(RecordUndo):
    name = "grant"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
                   "secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy")
    kinds = (SecretPolicy,)
    none_reason = "no resource-policy grant in the ledger"

    def _ours(self, record) -> list[dict]:
        return secret_grant.runbook_statements(secret_grant.get_resource_policy(self.c.sm, record.resource))

    def check(self, record):
        secret = secrets_store.describe_secret(self.c.sm, record.resource)
        if secret is None or secret.get("DeletedDate"):
            return NONE, "the secret is gone or scheduled for deletion, and its policy with it"
        if not self.c.managed(secrets_store.tags_dict(secret.get("Tags"))):
            return BLOCKED, "the secret lacks the runbook's tags for this function: its policy is left alone"
        if not self._ours(record):
            return NONE, "the runbook's statements are already off the secret's policy"
        rest = secret_grant.without_runbook_statements(secret_grant.get_resource_policy(self.c.sm, record.resource))
        kept = f"; its {len(rest['Statement'])} other statement(s) stay" if rest else ": no other statement, the policy goes"
        return DELETE, f"remove the runbook's statements ({', '.join(record.statements)}){kept}"

    def undo(self, record):
        rest = secret_grant.without_runbook_statements(secret_grant.get_resource_policy(self.c.sm, record.resource))
        if rest:
            secret_grant.put_resource_policy(self.c.sm, record.resource, rest)
        else:
            secret_grant.delete_resource_policy(self.c.sm, record.resource)

    def confirm(self, record):
        secret = secrets_store.describe_secret(self.c.sm, record.resource)
        if secret is not None and not secret.get("DeletedDate") and self._ours(record):
            raise ChangeRefused(record.resource, "the runbook's statements are still on the secret's policy")
        return "the runbook's statements removed from the secret's resource policy", True
