"""Secrets Manager and KMS helpers (moto)."""

import json

import boto3
import pytest
from moto import mock_aws

from runbook_lib import secrets_store as ss
from runbook_lib.exceptions import InputError


@pytest.fixture()
def clients(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1"), boto3.client("kms", region_name="us-east-1")


def test_kms_parameter_validation():
    ss.check_kms_parameter("aws/secretsmanager", "us-east-1")
    ss.check_kms_parameter("create", "us-east-1")
    ss.check_kms_parameter("arn:aws:kms:us-east-1:123456789012:key/abcd-1234", "us-east-1")
    with pytest.raises(InputError, match="not 'aws/secretsmanager'"):
        ss.check_kms_parameter("alias/mine", "us-east-1")
    with pytest.raises(InputError, match="same region"):
        ss.check_kms_parameter("arn:aws:kms:eu-west-1:123456789012:key/abcd-1234", "us-east-1")


def test_create_with_token_is_idempotent_and_values_compare_in_memory(clients):
    sm, _ = clients
    token = ss.request_token("run-1", "create")
    assert token == ss.request_token("run-1", "create") != ss.request_token("run-2", "create")
    values = {"B": "2", "A": "1"}
    tags = ss.runbook_tags("f", "CHG-1")
    arn = ss.create_secret(sm, "lambda/f/config", values, None, tags, token, "d")
    assert ss.current_values(sm, arn) == values
    assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == values
    described = ss.describe_secret(sm, "lambda/f/config")
    assert ss.is_runbook_managed(ss.tags_dict(described["Tags"]), "f")
    assert not ss.is_runbook_managed(ss.tags_dict(described["Tags"]), "g")
    assert ss.describe_secret(sm, "missing") is None
    ss.schedule_secret_deletion(sm, arn, 7)
    assert ss.describe_secret(sm, arn).get("DeletedDate")


def test_created_key_policy_limits_the_role_to_decrypt_via_secrets_manager(clients):
    _, kms = clients
    role = "arn:aws:iam::123456789012:role/r"
    policy = ss.key_policy("123456789012", "aws", "us-east-1", role)
    arn = ss.create_key(kms, ss.key_alias("f"), policy, ss.runbook_tags("f", "CHG-1"), "d")
    assert ss.describe_key(kms, ss.key_alias("f")) is None, "the alias is a call of its own"
    ss.create_alias(kms, ss.key_alias("f"), arn)
    stored = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
    role_stmt = [s for s in stored["Statement"] if s["Principal"] == {"AWS": role}]
    assert role_stmt[0]["Action"] == "kms:Decrypt"
    assert role_stmt[0]["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"
    assert ss.describe_key(kms, ss.key_alias("f"))["Arn"] == arn
    assert ss.is_runbook_managed(ss.key_tags(kms, arn), "f")
    ss.schedule_key_deletion(kms, arn, ss.key_alias("f"))
    assert ss.describe_key(kms, arn)["KeyState"] == "PendingDeletion"
