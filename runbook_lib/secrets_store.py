"""Secrets Manager and KMS: the secret the function's values move into, and its key.

The secret's value is a JSON object of the migrated variables; it is read from the live
function configuration at apply time and handed straight to ``CreateSecret`` /
``PutSecretValue``; this module never returns, logs or stores it. Comparisons ("does the
secret already hold these values?") happen in memory and return a bool.

KMS: ``aws/secretsmanager`` (the AWS managed key, the default), ``create`` (a customer
managed key whose policy lets the account administer it and the function's role decrypt
only through Secrets Manager), or the ARN of an existing key.
"""

from __future__ import annotations

import json
import re
import uuid

from .exceptions import AwsCallError, InputError
from .ledger import MANAGED_BY_TAG
from .session import aws_call

AWS_MANAGED_KEY = "aws/secretsmanager"
CREATE_KEY = "create"
AWS_MANAGED_KEY_ALIAS = "alias/aws/secretsmanager"
KEY_ARN = re.compile(r"^arn:aws[\w-]*:kms:([a-z0-9-]+):(\d{12}):(key/[\w-]+|alias/[\w/+=,.@-]+)$")
KEY_PENDING_DAYS = 7  # the shortest window KMS allows


def default_secret_name(function_name: str) -> str:
    return f"lambda/{function_name}/config"


def key_alias(function_name: str) -> str:
    return f"alias/lambda-secrets-runbook/{function_name}"


def runbook_tags(function_name: str, change_ticket: str) -> dict:
    tags = {MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1], "function": function_name}
    if change_ticket:
        tags["change-ticket"] = change_ticket
    return tags


def tag_list(tags: dict, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def tags_dict(tags: list[dict] | None, key: str = "Key", value: str = "Value") -> dict:
    return {t[key]: t[value] for t in tags or []}


def is_runbook_managed(tags: dict, function_name: str) -> bool:
    """True when the resource carries the runbook's tags for this function."""
    return tags.get(MANAGED_BY_TAG[0]) == MANAGED_BY_TAG[1] and tags.get("function") == function_name


def request_token(*parts: str) -> str:
    """A ClientRequestToken derived from the run, so a retried write is a no-op, not a new version."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "lambda-secrets-runbook:" + "|".join(parts)))


def secret_string(values: dict) -> str:
    """The SecretString for a set of values: deterministic JSON (sorted keys)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


# -- secrets -----------------------------------------------------------------------------
def describe_secret(sm, secret_id: str) -> dict | None:
    """DescribeSecret, or None when there is no such secret."""
    try:
        with aws_call("DescribeSecret", secret_id, "secretsmanager:DescribeSecret"):
            return sm.describe_secret(SecretId=secret_id)
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise


def current_values(sm, secret_arn: str) -> dict:
    """The secret's current JSON object, for in-memory comparison only (never output it)."""
    try:
        with aws_call("GetSecretValue", secret_arn, "secretsmanager:GetSecretValue"):
            response = sm.get_secret_value(SecretId=secret_arn)
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":  # exists but holds no version yet
            return {}
        raise
    raw = response.get("SecretString")
    if raw is None:
        raw = (response.get("SecretBinary") or b"{}").decode("utf-8")
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def create_secret(sm, name: str, values: dict, kms_key_id: str | None, tags: dict,
                  token: str, description: str) -> str:
    """CreateSecret (idempotent through ``token``); returns the ARN."""
    kwargs = {"Name": name, "SecretString": secret_string(values), "ClientRequestToken": token,
              "Description": description, "Tags": tag_list(tags)}
    if kms_key_id:
        kwargs["KmsKeyId"] = kms_key_id
    with aws_call("CreateSecret", name, "secretsmanager:CreateSecret + secretsmanager:TagResource"):
        return sm.create_secret(**kwargs)["ARN"]


def put_values(sm, secret_arn: str, values: dict, token: str) -> str:
    with aws_call("PutSecretValue", secret_arn, "secretsmanager:PutSecretValue"):
        return sm.put_secret_value(SecretId=secret_arn, SecretString=secret_string(values),
                                   ClientRequestToken=token)["VersionId"]


def restore_secret(sm, secret_arn: str) -> None:
    with aws_call("RestoreSecret", secret_arn, "secretsmanager:RestoreSecret"):
        sm.restore_secret(SecretId=secret_arn)


def set_kms_key(sm, secret_arn: str, kms_key_id: str | None) -> None:
    with aws_call("UpdateSecret", secret_arn, "secretsmanager:UpdateSecret"):
        sm.update_secret(SecretId=secret_arn, KmsKeyId=kms_key_id or AWS_MANAGED_KEY_ALIAS)


def schedule_secret_deletion(sm, secret_arn: str, recovery_days: int) -> dict:
    """DeleteSecret with a recovery window (7-30 days), or at once when ``recovery_days`` is 0."""
    kwargs = {"SecretId": secret_arn}
    if recovery_days == 0:
        kwargs["ForceDeleteWithoutRecovery"] = True
    else:
        kwargs["RecoveryWindowInDays"] = recovery_days
    with aws_call("DeleteSecret", secret_arn, "secretsmanager:DeleteSecret"):
        return sm.delete_secret(**kwargs)


# -- KMS ---------------------------------------------------------------------------------
def check_kms_parameter(kms_key: str, region: str) -> None:
    """``aws/secretsmanager``, ``create`` or a KMS key/alias ARN in the function's region."""
    if kms_key in (AWS_MANAGED_KEY, CREATE_KEY):
        return
    match = KEY_ARN.match(kms_key or "")
    if not match:
        raise InputError("kms_key", f"{kms_key!r} is not 'aws/secretsmanager', 'create' or a KMS key ARN "
                         "(arn:aws:kms:<region>:<account>:key/<id>)")
    if match.group(1) != region:
        raise InputError("kms_key", f"key is in {match.group(1)}, the secret will be in {region}: "
                         "Secrets Manager needs a key in the same region")


def describe_key(kms, key_id: str) -> dict | None:
    try:
        with aws_call("DescribeKey", key_id, "kms:DescribeKey"):
            return kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except AwsCallError as exc:
        if exc.code == "NotFoundException":
            return None
        raise


def secret_arn_pattern(partition: str, region: str, account: str, secret_name: str) -> str:
    """The ARN of a secret named ``secret_name`` before it exists: AWS appends ``-`` and 6 random characters."""
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret_name}-??????"


def key_policy(account: str, partition: str, region: str, role_arn: str, userid: str = "",
               secret_pattern: str = "") -> dict:
    """Account root administers the key; the function's role session decrypts only through Secrets Manager.

    ``userid`` (``<role id>:<function>``) pins the decrypt to the function's own session, so another
    function sharing the role cannot use the key; ``secret_pattern`` to the function's secret (the
    encryption context Secrets Manager passes, ``SecretARN``).
    """
    condition: dict = {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                                        "kms:CallerAccount": account}}
    if userid:
        condition["StringEquals"]["aws:userid"] = userid
    if secret_pattern:
        condition["StringLike"] = {"kms:EncryptionContext:SecretARN": secret_pattern}
    return {
        "Version": "2012-10-17",
        "Id": "lambda-secrets-runbook",
        "Statement": [
            {"Sid": "AccountAdministersTheKey", "Effect": "Allow",
             "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "FunctionRoleDecryptsOnlyViaSecretsManager", "Effect": "Allow",
             "Principal": {"AWS": role_arn}, "Action": "kms:Decrypt", "Resource": "*",
             "Condition": condition},
        ],
    }


def get_key_policy(kms, key_id: str) -> dict:
    with aws_call("GetKeyPolicy", key_id, "kms:GetKeyPolicy"):
        return json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def create_key(kms, alias: str, policy: dict, tags: dict, description: str) -> str:
    """CreateKey with the policy and tags (``alias`` names it in errors); returns the key ARN.

    The alias is a second call (:func:`create_alias`), so the caller can record the key between
    the two: a key without its alias is still found by its tags.
    """
    with aws_call("CreateKey", alias, "kms:CreateKey + kms:TagResource"):
        return kms.create_key(Policy=json.dumps(policy), Description=description,
                              KeyUsage="ENCRYPT_DECRYPT", Tags=tag_list(tags, "TagKey", "TagValue"))["KeyMetadata"]["Arn"]


def create_alias(kms, alias: str, key_arn: str) -> None:
    with aws_call("CreateAlias", alias, "kms:CreateAlias"):
        kms.create_alias(AliasName=alias, TargetKeyId=key_arn.split(":key/", 1)[-1])


def key_tags(kms, key_id: str) -> dict:
    with aws_call("ListResourceTags", key_id, "kms:ListResourceTags"):
        return tags_dict(kms.list_resource_tags(KeyId=key_id).get("Tags"), "TagKey", "TagValue")


def schedule_key_deletion(kms, key_arn: str, alias: str | None, days: int = KEY_PENDING_DAYS) -> str:
    """Delete the alias and schedule the key's deletion; returns the deletion date (ISO)."""
    if alias:
        try:
            with aws_call("DeleteAlias", alias, "kms:DeleteAlias"):
                kms.delete_alias(AliasName=alias)
        except AwsCallError as exc:
            if exc.code != "NotFoundException":
                raise
    with aws_call("ScheduleKeyDeletion", key_arn, "kms:ScheduleKeyDeletion"):
        # The bare key id works everywhere (some emulators accept only the id, AWS takes both).
        key_id = key_arn.split(":key/", 1)[-1]
        response = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=max(7, min(30, days)))
    return str(response.get("DeletionDate", ""))
