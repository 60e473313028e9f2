"""Step ``kms-key`` (``kms_key="create"``): a customer managed key for the secret."""

from __future__ import annotations

from .. import secret_grant, secrets_store
from ..change.finders import TOKEN_TAG, key_record
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..records import KmsKey
from ..session import aws_call
from ..steps import ADOPT, BLOCKED, CREATE, NONE, UPDATE, Step


class KmsKeyStep(Step):
    name = "kms-key"
    permissions = ("kms:DescribeKey", "kms:CreateKey", "kms:CreateAlias", "kms:TagResource",
                   "kms:ListResourceTags", "kms:GetKeyPolicy", "kms:CancelKeyDeletion", "kms:EnableKey")

    def __init__(self, ctx):
        self.c = ctx
        self.alias = secrets_store.key_alias(ctx.function_name)

    def _recorded_without_alias(self) -> KmsKey | None:
        """A key this run made whose alias a crash prevented (reconciled by its token tag)."""
        record = self.c.ledger.latest(KmsKey)
        if record and record.alias == self.alias and secrets_store.describe_key(self.c.kms, record.resource):
            return record
        return None

    def plan(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None:
            if self._recorded_without_alias():
                return [self.c.row(self.name, self.alias, UPDATE, "the key this run made has no alias yet: "
                                   "create it")]
            return [self.c.row(self.name, self.alias, CREATE, "customer managed key: account administers it, "
                               "the function's role decrypts only via Secrets Manager")]
        if not self.c.managed(secrets_store.key_tags(self.c.kms, meta["Arn"])):
            return [self.c.row(self.name, meta["Arn"], BLOCKED, f"{self.alias} names a key this runbook did "
                               "not create (no managed-by tag)")]
        if meta.get("KeyState") == "PendingDeletion":
            return [self.c.row(self.name, meta["Arn"], UPDATE, "key is scheduled for deletion: cancel it")]
        if self.c.ledger.latest(KmsKey, meta["Arn"]) is None:
            return [self.c.row(self.name, meta["Arn"], ADOPT, "made for this function by an earlier run of the "
                               "runbook (tagged): record it, so backout schedules its deletion")]
        return [self.c.row(self.name, meta["Arn"], NONE, f"key {self.alias} exists")]

    def apply(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None:
            record = self._recorded_without_alias() or self._create()
            secrets_store.create_alias(self.c.kms, self.alias, record.resource)
            return
        if meta.get("KeyState") == "PendingDeletion":
            with aws_call("CancelKeyDeletion", meta["Arn"], "kms:CancelKeyDeletion"):
                self.c.kms.cancel_key_deletion(KeyId=meta["Arn"])
                self.c.kms.enable_key(KeyId=meta["Arn"])
        if self.c.ledger.latest(KmsKey, meta["Arn"]) is None:
            self.c.ledger.put(key_record(meta["Arn"], self.alias, self.c.role_arn() or "", self.name,
                                         self.c.adopted_action(KmsKey, meta["Arn"])))

    def _create(self) -> KmsKey:
        role = self.c.role_arn()
        token = self.c.token("kms-key")
        with intent(self.c.ledger, "kms_key", self.alias, token, self.name, {"role": role}):
            policy = secrets_store.key_policy(self.c.account, self.c.partition, self.c.region, role,
                                              self.c.session_userid() or "", self._secret_pattern())
            arn = secrets_store.create_key(self.c.kms, self.alias, policy, {**self.c.tags, TOKEN_TAG: token},
                                           f"Secrets of {self.c.function_name} (lambda-secrets-runbook)")
            return self.c.ledger.put(key_record(arn, self.alias, role, self.name))

    def _secret_pattern(self) -> str:
        return secrets_store.secret_arn_pattern(self.c.partition, self.c.region, self.c.account, self.c.secret_name)

    def verify(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None or meta.get("KeyState") != "Enabled":
            raise ChangeRefused(self.alias, f"key not enabled ({meta and meta.get('KeyState')})")
        role = self.c.role()
        if role is None:
            raise ChangeRefused(self.alias, "the function's role is gone")
        facts = secret_grant.session_facts(role["Arn"], role["RoleId"], self.c.function_name, self.c.region,
                                           self._secret_pattern(), meta["Arn"])
        problem = secret_grant.key_decrypt_problem(secrets_store.get_key_policy(self.c.kms, meta["Arn"]), [], facts)
        if problem:
            raise ChangeRefused(meta["Arn"], problem)
        return (f"{meta['Arn']} enabled, alias {self.alias}; its policy lets only {facts['aws:userid']} decrypt, "
                f"via {facts['kms:viaservice']}, for {self._secret_pattern()}")
