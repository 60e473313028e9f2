"""Step ``policy``: read exactly this secret, attached to the role the function runs as."""

from __future__ import annotations

from .. import iam, secrets_store
from ..change.finders import policy_record
from ..change.intents import intent, write_ahead
from ..exceptions import ChangeRefused
from ..records import Policy, PolicyAttachment
from ..steps import ADOPT, BLOCKED, CREATE, NONE, UPDATE, Step


class PolicyStep(Step):
    name = "policy"
    permissions = ("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyTags", "iam:CreatePolicy",
                   "iam:TagPolicy", "iam:CreatePolicyVersion", "iam:ListPolicyVersions",
                   "iam:DeletePolicyVersion", "iam:ListAttachedRolePolicies", "iam:AttachRolePolicy",
                   "access-analyzer:ValidatePolicy")

    def __init__(self, ctx):
        self.c = ctx
        self.policy_name = iam.policy_name(ctx.function_name)
        self.arn = iam.policy_arn(ctx.partition, ctx.account, self.policy_name)
        self.note = ""

    def _document(self, secret_arn: str) -> dict:
        return iam.secret_read_policy(secret_arn, self.c.kms_key_arn(), self.c.region)

    def _attachment(self, role: str) -> PolicyAttachment:
        return PolicyAttachment(resource=f"{role}|{self.arn}", step=self.name, role=role, policy_arn=self.arn)

    def plan(self):
        secret_arn, role_arn = self.c.secret_arn(), self.c.role_arn()
        role = iam.role_name_from_arn(role_arn) if role_arn else "(dedicated role)"
        policy = iam.get_policy(self.c.iam, self.arn)
        if policy is None:
            kms = " + kms:Decrypt via Secrets Manager" if self.c.kms_key != secrets_store.AWS_MANAGED_KEY else ""
            return [self.c.row(self.name, self.arn, CREATE, "secretsmanager:GetSecretValue on exactly the secret's "
                               f"ARN{kms}; attach to {role}")]
        recorded = self.c.ledger.latest(Policy, self.arn)
        if not recorded and not self.c.managed(iam.policy_tags(self.c.iam, self.arn)):
            return [self.c.row(self.name, self.arn, BLOCKED, "a policy of this name exists and was not created "
                               "by this runbook")]
        rows = [] if recorded else [self.c.row(self.name, self.arn, ADOPT, "made for this function by an earlier "
                                               "run of the runbook (tagged): record it, so backout deletes it")]
        if not secret_arn:
            return rows + [self.c.row(self.name, self.arn, UPDATE, "point the policy at the new secret")]
        doc = self._document(secret_arn)
        problems, _ = iam.validate_document(doc)
        if problems:
            return [self.c.row(self.name, self.arn, BLOCKED, "policy fails the lint: " + "; ".join(problems))]
        if iam.default_document(self.c.iam, policy) != doc:
            rows.append(self.c.row(self.name, self.arn, UPDATE, "policy document differs: new default version"))
        if role_arn is None or self.arn not in iam.attached_policy_arns(self.c.iam, iam.role_name_from_arn(role_arn)):
            rows.append(self.c.row(self.name, f"{role}|{self.policy_name}", UPDATE, f"attach to role {role}"))
        elif self.c.ledger.latest(PolicyAttachment, self._attachment(role).resource) is None:
            rows.append(self.c.row(self.name, f"{role}|{self.policy_name}", ADOPT, f"attached to {role} by an "
                                   "earlier run: record it, so backout detaches it"))
        return rows or [self.c.row(self.name, self.arn, NONE, f"scoped to {secret_arn}, attached to {role}")]

    def apply(self):
        secret_arn, role_arn = self.c.secret_arn(), self.c.role_arn()
        if not secret_arn or not role_arn:
            raise ChangeRefused(self.arn, "the secret and the role must exist first")
        doc = self._document(secret_arn)
        problems, self.note = iam.validate_document(doc, self.c.target.client("accessanalyzer"))
        if problems:
            raise ChangeRefused(self.arn, "policy document refused: " + "; ".join(problems))
        self._put_policy(doc, secret_arn)
        role = iam.role_name_from_arn(role_arn)
        attachment = self._attachment(role)
        if self.arn not in iam.attached_policy_arns(self.c.iam, role):
            with write_ahead(self.c.ledger, attachment):
                iam.attach(self.c.iam, role, self.arn)
        elif self.c.ledger.latest(PolicyAttachment, attachment.resource) is None:
            self.c.ledger.put(attachment.replace(action=self.c.adopted_action(PolicyAttachment, attachment.resource)))

    def _put_policy(self, doc: dict, secret_arn: str) -> None:
        policy = iam.get_policy(self.c.iam, self.arn)
        if policy is None:
            details = {"arn": self.arn, "secret": secret_arn}
            with intent(self.c.ledger, "policy", self.policy_name, self.c.token("policy"), self.name, details):
                created = iam.create_policy(self.c.iam, self.policy_name, doc, self.c.tags,
                                            f"Read the secret of {self.c.function_name} (lambda-secrets-runbook)")
                self.c.ledger.put(policy_record(created, self.policy_name, secret_arn, self.name, validation=self.note))
            return
        record = self.c.ledger.latest(Policy, self.arn) or self.c.ledger.put(policy_record(
            self.arn, self.policy_name, secret_arn, self.name, self.c.adopted_action(Policy, self.arn), self.note))
        if iam.default_document(self.c.iam, policy) != doc:
            iam.update_policy(self.c.iam, self.arn, doc)
            self.c.ledger.put(record.replace(secret=secret_arn, validation=self.note))

    def verify(self):
        policy = iam.get_policy(self.c.iam, self.arn)
        secret_arn, role_arn = self.c.secret_arn(), self.c.role_arn()
        if policy is None:
            raise ChangeRefused(self.arn, "policy missing after apply")
        doc = iam.default_document(self.c.iam, policy)
        secret_resources = {s["Resource"] for s in doc["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"}
        if secret_resources != {secret_arn}:
            raise ChangeRefused(self.arn, "policy is not scoped to exactly the secret's ARN")
        role = iam.role_name_from_arn(role_arn)
        if self.arn not in iam.attached_policy_arns(self.c.iam, role):
            raise ChangeRefused(self.arn, f"policy not attached to {role}")
        recorded = self.c.ledger.latest(Policy, self.arn)
        note = self.note or (recorded.validation if recorded else "")
        return f"{self.policy_name}: GetSecretValue on exactly {secret_arn}; attached to {role}; {note}".rstrip("; ")
