"""Step ``grant``: the secret's resource policy lets exactly this function's role session read it.

No identity policy is created and nothing is attached to any role: the two statements of
:mod:`runbook_lib.secret_grant` go on the secret itself, validated first (Secrets Manager's
``ValidateResourcePolicy`` where the endpoint answers it, the runbook's own lint always) and
put with ``BlockPublicPolicy``. A customer managed key the operator named must already let
that session decrypt through Secrets Manager: the plan blocks with the reason when it does not.
"""

from __future__ import annotations

import json

from .. import iam, secret_grant, secrets_store
from ..change.intents import write_ahead
from ..exceptions import ChangeRefused
from ..records import SecretPolicy
from ..steps import ADOPT, BLOCKED, CREATE, NONE, UPDATE, Step


def _normalised(statements: list[dict]) -> str:
    """Statements compared as JSON with one-item lists and single values made alike."""
    def norm(value):
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return norm(value[0]) if len(value) == 1 else sorted((norm(v) for v in value), key=json.dumps)
        return value
    return json.dumps([norm(s) for s in statements], sort_keys=True)


class GrantStep(Step):
    name = "grant"
    permissions = ("iam:GetRole", "secretsmanager:GetResourcePolicy", "secretsmanager:PutResourcePolicy",
                   "secretsmanager:ValidateResourcePolicy", "kms:GetKeyPolicy", "iam:ListRolePolicies",
                   "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion")

    def __init__(self, ctx):
        self.c = ctx
        self.note = ""

    def _ours(self) -> list[dict] | None:
        role = self.c.role()
        if role is None:
            return None
        return secret_grant.function_read_statements(role["Arn"], role["RoleId"], self.c.function_name)

    def _grant_words(self) -> str:
        role = self.c.role_arn() or "(the dedicated role)"
        return (f"resource policy on the secret: GetSecretValue and DescribeSecret for {iam.role_name_from_arn(role)}"
                f" only in the session of {self.c.function_name} (aws:userid {self.c.session_userid() or '<role id>'}"
                f":...), GetSecretValue denied to every other session of that role; BlockPublicPolicy")

    def key_problem(self) -> str:
        """Why a customer managed key the operator named does not let the function decrypt ("" when it does)."""
        if self.c.kms_key in (secrets_store.AWS_MANAGED_KEY, secrets_store.CREATE_KEY):
            return ""
        role = self.c.role()
        if role is None:
            return ""  # a dedicated role not made yet: the plan is re-made before this step applies
        key_arn = self.c.kms_key_arn()
        facts = secret_grant.session_facts(role["Arn"], role["RoleId"], self.c.function_name, self.c.region,
                                           self.c.secret_pattern(), key_arn or "")
        problem = secret_grant.key_decrypt_problem(secrets_store.get_key_policy(self.c.kms, key_arn),
                                                   self._role_statements(role["RoleName"]), facts)
        return f"key {key_arn}: {problem}" if problem else ""

    def _role_statements(self, role_name: str) -> list[dict]:
        documents = list(iam.inline_policies(self.c.iam, role_name).values())
        for arn in iam.attached_policy_arns(self.c.iam, role_name):
            policy = iam.get_policy(self.c.iam, arn)
            if policy is not None:
                documents.append(iam.default_document(self.c.iam, policy))
        return [s for doc in documents for s in (doc.get("Statement") if isinstance(doc.get("Statement"), list)
                                                 else [doc.get("Statement") or {}])]

    def plan(self):
        problem = self.key_problem()
        if problem:
            return [self.c.row(self.name, self.c.kms_key, BLOCKED, problem)]
        secret_arn, ours = self.c.secret_arn(), self._ours()
        if not secret_arn or ours is None:
            return [self.c.row(self.name, self.c.secret_name, CREATE, self._grant_words())]
        current = secret_grant.get_resource_policy(self.c.sm, secret_arn)
        wanted = secret_grant.function_read_policy(ours[0]["Principal"]["AWS"], self._role_id(), self.c.function_name,
                                                   current)
        problems = secret_grant.lint_secret_policy(wanted)
        if problems:
            return [self.c.row(self.name, secret_arn, BLOCKED, "the secret's resource policy would fail the lint: "
                               + "; ".join(problems))]
        have = secret_grant.runbook_statements(current)
        if _normalised(have) == _normalised(ours):
            if self.c.ledger.latest(SecretPolicy, secret_arn) is None:
                return [self.c.row(self.name, secret_arn, ADOPT, "the runbook's statements are on the secret (an "
                                   "earlier run): record them, so backout removes them")]
            return [self.c.row(self.name, secret_arn, NONE, "resource policy lets only this function's session "
                               "read the secret")]
        kept = len(secret_grant.without_runbook_statements(current)["Statement"]) \
            if secret_grant.without_runbook_statements(current) else 0
        action = UPDATE if have else CREATE
        return [self.c.row(self.name, secret_arn, action, self._grant_words()
                           + (f"; the policy's {kept} other statement(s) are kept" if kept else ""))]

    def _role_id(self) -> str:
        role = self.c.role()
        return role["RoleId"] if role else ""

    def apply(self):
        secret_arn, ours = self.c.secret_arn(), self._ours()
        if not secret_arn or ours is None:
            raise ChangeRefused(self.c.secret_name, "the secret and the role must exist before the grant")
        problem = self.key_problem()
        if problem:
            raise ChangeRefused(self.c.kms_key, problem)
        role_arn, role_id = ours[0]["Principal"]["AWS"], self._role_id()
        current = secret_grant.get_resource_policy(self.c.sm, secret_arn)
        record = SecretPolicy(resource=secret_arn, step=self.name, role_arn=role_arn, role_id=role_id,
                              function=self.c.function_name, statements=list(secret_grant.RUNBOOK_SIDS))
        if _normalised(secret_grant.runbook_statements(current)) == _normalised(ours):
            if self.c.ledger.latest(SecretPolicy, secret_arn) is None:
                self.c.ledger.put(record.replace(action=self.c.adopted_action(SecretPolicy, secret_arn)))
            return
        wanted = secret_grant.function_read_policy(role_arn, role_id, self.c.function_name, current)
        problems, self.note = secret_grant.validate(self.c.sm, secret_arn, wanted)
        if problems:
            raise ChangeRefused(secret_arn, "resource policy refused: " + "; ".join(problems))
        earlier = self.c.ledger.latest(SecretPolicy, secret_arn)
        with write_ahead(self.c.ledger, record.replace(validation=self.note,
                                                       action=earlier.action if earlier else "created")):
            secret_grant.put_resource_policy(self.c.sm, secret_arn, wanted)

    def verify(self):
        secret_arn, ours = self.c.secret_arn(), self._ours()
        if not secret_arn or ours is None:
            raise ChangeRefused(self.c.secret_name, "no secret or no role to grant")
        current = secret_grant.get_resource_policy(self.c.sm, secret_arn)
        if _normalised(secret_grant.runbook_statements(current)) != _normalised(ours):
            raise ChangeRefused(secret_arn, "the secret's resource policy does not hold the runbook's two statements "
                                "for this function's session")
        recorded = self.c.ledger.latest(SecretPolicy, secret_arn)
        note = self.note or (recorded.validation if recorded else "")
        userid = ours[0]["Condition"]["StringEquals"]["aws:userid"]
        return (f"{secret_arn}: resource policy allows GetSecretValue and DescribeSecret to {ours[0]['Principal']['AWS']}"
                f" only as aws:userid {userid}, and denies GetSecretValue to every other session of that role"
                + (f"; {note}" if note else ""))
