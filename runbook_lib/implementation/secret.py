"""Step ``secret``: the secret that holds the moved variables (their values never leave memory)."""

from __future__ import annotations

from .. import functions, secrets_store
from ..change.finders import secret_record
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..records import Secret
from ..steps import ADOPT, BLOCKED, CREATE, NONE, UPDATE, Step


class SecretStep(Step):
    name = "secret"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:CreateSecret",
                   "secretsmanager:PutSecretValue", "secretsmanager:TagResource", "secretsmanager:RestoreSecret",
                   "secretsmanager:UpdateSecret", "kms:GenerateDataKey", "kms:Decrypt")

    def __init__(self, ctx):
        self.c = ctx

    def _desired(self, current: dict) -> tuple[dict, list[str]]:
        """Wanted values (in memory only) and the names found nowhere."""
        moved, _ = self.c.variables()
        env = functions.environment(self.c.live())
        wanted = {k: current[k] for k in moved if k in current}
        wanted.update({k: env[k] for k in moved if k in env})
        return wanted, [k for k in moved if k not in wanted]

    def _kms_differs(self, secret: dict) -> bool:
        wanted = self.c.kms_key_arn()
        have = secret.get("KmsKeyId")
        if wanted is None:
            return bool(have) and not have.endswith(secrets_store.AWS_MANAGED_KEY_ALIAS)
        meta = secrets_store.describe_key(self.c.kms, have) if have else None
        return not meta or meta["Arn"] != wanted

    def plan(self):
        moved, _ = self.c.variables()
        secret = self.c.secret()
        if secret is None:
            return [self.c.row(self.name, self.c.secret_name, CREATE, f"SecretString = JSON of {', '.join(moved)}; "
                               f"KMS {self.c.kms_key}")]
        recorded = self.c.ledger.latest(Secret, secret["ARN"])
        if not recorded and not self.c.managed(secrets_store.tags_dict(secret.get("Tags"))):
            return [self.c.row(self.name, secret["ARN"], BLOCKED, "a secret of this name exists and was not created "
                               "by this runbook (no managed-by tag): choose another secret_name")]
        rows = [] if recorded or secret.get("DeletedDate") else [self.c.row(
            self.name, secret["ARN"], ADOPT, "made for this function by an earlier run of the runbook (tagged): "
            "record it, so backout schedules its deletion")]
        if secret.get("DeletedDate"):
            return rows + [self.c.row(self.name, secret["ARN"], UPDATE, "secret is scheduled for deletion: restore "
                                      "it and write the values")]
        current = secrets_store.current_values(self.c.sm, secret["ARN"])
        wanted, missing = self._desired(current)
        if missing:
            return [self.c.row(self.name, secret["ARN"], BLOCKED, f"variables {missing} are neither in the "
                               "function's configuration nor in the secret")]
        reasons = []
        if wanted != current:
            reasons.append("new version: the secret does not hold the function's current values")
        if self._kms_differs(secret):
            reasons.append(f"KMS key to {self.c.kms_key}")
        if reasons:
            return rows + [self.c.row(self.name, secret["ARN"], UPDATE, "; ".join(reasons))]
        return rows or [self.c.row(self.name, secret["ARN"], NONE, f"holds {len(wanted)} variable(s) equal to "
                                   "the function's values")]

    def apply(self):
        secret = self.c.secret()
        kms_arn = self.c.kms_key_arn()
        moved, _ = self.c.variables()
        if secret is None:
            self._create(moved, kms_arn)
            return
        arn = secret["ARN"]
        record = self.c.ledger.latest(Secret, arn) or self.c.ledger.put(secret_record(
            arn, secret["Name"], kms_arn, moved, self.name, self.c.adopted_action(Secret, arn), writes=0))
        if secret.get("DeletedDate"):
            secrets_store.restore_secret(self.c.sm, arn)
        if self._kms_differs(secret):
            secrets_store.set_kms_key(self.c.sm, arn, kms_arn)
        current = secrets_store.current_values(self.c.sm, arn)
        wanted, missing = self._desired(current)
        if missing:
            raise ChangeRefused(arn, f"variables {missing} are nowhere to be read")
        if wanted != current:
            writes = record.writes + 1
            secrets_store.put_values(self.c.sm, arn, wanted, self.c.token(f"put-{writes}"))
            record = self.c.ledger.put(record.replace(writes=writes))
        self.c.ledger.put(record.replace(kms_key=kms_arn or secrets_store.AWS_MANAGED_KEY, variables=moved))

    def _create(self, moved: list[str], kms_arn: str | None) -> None:
        wanted, missing = self._desired({})
        if missing:
            raise ChangeRefused(self.c.secret_name, f"variables {missing} not in the function's configuration")
        token = self.c.token("create")  # the ClientRequestToken: a retried create is a no-op, not a new secret
        with intent(self.c.ledger, "secret", self.c.secret_name, token, self.name, {"variables": moved}):
            arn = secrets_store.create_secret(
                self.c.sm, self.c.secret_name, wanted, kms_arn, self.c.tags, token,
                f"Configuration of Lambda function {self.c.function_name} (lambda-secrets-runbook)")
            self.c.ledger.put(secret_record(arn, self.c.secret_name, kms_arn, moved, self.name))

    def verify(self):
        secret = self.c.secret()
        if secret is None or secret.get("DeletedDate"):
            raise ChangeRefused(self.c.secret_name, "secret missing or scheduled for deletion after apply")
        if not self.c.managed(secrets_store.tags_dict(secret.get("Tags"))):
            raise ChangeRefused(secret["ARN"], "secret lacks the runbook's tags")
        current = secrets_store.current_values(self.c.sm, secret["ARN"])
        wanted, missing = self._desired(current)
        if missing or wanted != current:
            raise ChangeRefused(secret["ARN"], "the secret's value does not equal the function's variables")
        return (f"{secret['ARN']} holds {len(current)} variable(s) ({', '.join(sorted(current))}) equal to the "
                f"function's values; KMS {secret.get('KmsKeyId') or secrets_store.AWS_MANAGED_KEY_ALIAS}")
