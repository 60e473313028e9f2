"""``secret-encrypted``: the secret is encrypted under a usable KMS key; rotation reported (validation)."""

from __future__ import annotations

from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="secret-encrypted",
    title="The secret is encrypted with KMS; rotation reported",
    proves=("Secrets Manager encrypts the secret under the AWS managed key or an Enabled customer managed key "
            "(DescribeSecret, DescribeKey), with automatic rotation of the secret and yearly rotation of a "
            "customer managed key on."),
    controls=("SC-28", "SC-12"),
    phases=("validation",),
    evidence_file="",
    permissions=("secretsmanager:DescribeSecret", "kms:DescribeKey", "kms:GetKeyRotationStatus"),
)


def judge(ev) -> Verdict:
    missing = unavailable(ev, "secret", "key")
    if missing:
        return missing
    if not ev.secret:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID")
    key = ev.key
    evidence = {"secret_arn": ev.secret_arn, **key, "ledger_kms_key": ev.ledger_kms_key,
                "rotation_enabled": bool(ev.secret.get("RotationEnabled")),
                "rotation_rules": ev.secret.get("RotationRules", {}),
                "last_rotated": str(ev.secret.get("LastRotatedDate", "") or "")}
    if key.get("key_state") and key["key_state"] != "Enabled":
        return Verdict(FAIL, f"the secret's KMS key is {key['key_state']}: the secret cannot be decrypted", evidence)
    warnings = []
    if not evidence["rotation_enabled"]:
        warnings.append("automatic rotation is not enabled on the secret: the migrated values stay valid until "
                        "rotated at their source (close-out)")
    if key.get("key_rotation_enabled") is False:
        warnings.append("yearly rotation of the customer managed key is off")
    if warnings:
        return Verdict(WARN, "; ".join(warnings), evidence)
    return Verdict(PASS, f"encrypted with {key.get('key_arn') or key.get('kms_key_id')} ({key.get('key_manager')} "
                         "managed key), automatic rotation on", evidence)
