"""runbook_lib.lab.resources: policy documents parsed once per text, and every change seen at once.

The cache is keyed by the document's text, so the tests that matter are end to end: each
write that changes what a caller may do (an inline policy edited, a managed policy's new
default version, a policy detached, a resource or key policy replaced, a key disabled)
takes effect on the very next call.
"""

import json
import uuid
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError

from runbook_lib.lab import resources

ALLOW_DESCRIBE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
     "Resource": "*"}]}
ALLOW_NOTHING_USEFUL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}]}
TRUST_ACCOUNT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}


# ------------------------------------------------------------------ the cache itself
def test_the_same_text_is_parsed_once():
    text = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": uuid.uuid4().hex}]})
    misses = resources.parsed_document.cache_info().misses
    first = resources.load_document(text)
    assert resources.load_document(text) is first
    assert resources.load_document(text.encode()) is first  # bytes of the same text too
    assert resources.parsed_document.cache_info().misses == misses + 1


def test_new_text_is_a_new_document():
    sid = uuid.uuid4().hex
    old = resources.load_document(json.dumps({"Statement": [{"Sid": sid, "Effect": "Allow"}]}))
    new = resources.load_document(json.dumps({"Statement": [{"Sid": sid, "Effect": "Deny"}]}))
    assert old["Statement"][0]["Effect"] == "Allow" and new["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize("stored, expected", [
    (quote(json.dumps({"Version": "2012-10-17"})), {"Version": "2012-10-17"}),  # IAM keeps them URL-encoded
    ({"Version": "2012-10-17"}, {"Version": "2012-10-17"}),
    ("not json", {}), ("[1, 2]", {}), ("", {}), (None, {}), (b"\xff", {}),
])
def test_every_stored_form(stored, expected):
    assert resources.load_document(stored) == expected


# ------------------------------------------------------------------ writes take effect on the next call
def _user(lab, policy):
    iam, name = lab.client("iam"), f"cache-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = boto3.client("secretsmanager", endpoint_url=lab.endpoint_url, region_name=lab.region,
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    return name, client


def _secret(lab, **extra):
    return lab.client("secretsmanager").create_secret(Name=f"cache/{uuid.uuid4().hex[:8]}",
                                                      SecretString="v-" + uuid.uuid4().hex, **extra)["ARN"]


def _allowed(client, secret_arn):
    try:
        client.describe_secret(SecretId=secret_arn)
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException", exc.response["Error"]
        return False


def test_an_edited_inline_policy_takes_effect_on_the_next_call(enforcing):
    name, client = _user(enforcing, ALLOW_DESCRIBE)
    arn = _secret(enforcing)
    assert _allowed(client, arn)
    enforcing.client("iam").put_user_policy(UserName=name, PolicyName="inline",
                                            PolicyDocument=json.dumps(ALLOW_NOTHING_USEFUL))
    assert not _allowed(client, arn)
    enforcing.client("iam").put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(ALLOW_DESCRIBE))
    assert _allowed(client, arn)
    enforcing.client("iam").delete_user_policy(UserName=name, PolicyName="inline")
    assert not _allowed(client, arn)


def test_a_new_default_version_and_a_detach_take_effect_on_the_next_call(enforcing):
    iam = enforcing.client("iam")
    name, client = _user(enforcing, ALLOW_NOTHING_USEFUL)
    arn = _secret(enforcing)
    policy = iam.create_policy(PolicyName=f"cache-{uuid.uuid4().hex[:8]}",
                               PolicyDocument=json.dumps(ALLOW_NOTHING_USEFUL))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=policy)
    assert not _allowed(client, arn)
    iam.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(ALLOW_DESCRIBE), SetAsDefault=True)
    assert _allowed(client, arn)
    iam.set_default_policy_version(PolicyArn=policy, VersionId="v1")
    assert not _allowed(client, arn)
    iam.set_default_policy_version(PolicyArn=policy, VersionId="v2")
    assert _allowed(client, arn)
    iam.detach_user_policy(UserName=name, PolicyArn=policy)
    assert not _allowed(client, arn)


def test_a_replaced_resource_policy_takes_effect_on_the_next_call(enforcing):
    name, client = _user(enforcing, ALLOW_DESCRIBE)
    arn = _secret(enforcing)
    user_arn = f"arn:aws:iam::123456789012:user/{name}"
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": user_arn},
                                                    "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]}
    secrets = enforcing.client("secretsmanager")
    assert _allowed(client, arn)
    secrets.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(deny))
    assert not _allowed(client, arn)
    deny["Statement"][0]["Action"] = "secretsmanager:DeleteSecret"
    secrets.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(deny))
    assert _allowed(client, arn)
    deny["Statement"][0]["Action"] = "secretsmanager:DescribeSecret"
    secrets.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(deny))
    assert not _allowed(client, arn)
    secrets.delete_resource_policy(SecretId=arn)
    assert _allowed(client, arn)


def test_a_key_policy_change_and_a_disabled_key_take_effect_on_the_next_call(enforcing):
    kms = enforcing.client("kms")
    name, client = _user(enforcing, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "kms:Decrypt"], "Resource": "*"}]})
    root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
            "Resource": "*"}
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [root]}))["KeyMetadata"]
    arn = _secret(enforcing, KmsKeyId=key["Arn"])
    assert client.get_secret_value(SecretId=arn)["SecretString"].startswith("v-")
    user_arn = f"arn:aws:iam::123456789012:user/{name}"
    deny = {"Effect": "Deny", "Principal": {"AWS": user_arn}, "Action": "kms:Decrypt", "Resource": "*"}
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                       Policy=json.dumps({"Version": "2012-10-17", "Statement": [root, deny]}))
    with pytest.raises(ClientError) as denied:
        client.get_secret_value(SecretId=arn)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                       Policy=json.dumps({"Version": "2012-10-17", "Statement": [root]}))
    assert client.get_secret_value(SecretId=arn)["SecretString"].startswith("v-")
    kms.disable_key(KeyId=key["KeyId"])  # moto's DisableKey takes the bare key id only
    with pytest.raises(ClientError) as disabled:
        client.get_secret_value(SecretId=arn)
    assert disabled.value.response["Error"]["Code"] == "DecryptionFailure"  # Secrets Manager's word for it
    kms.enable_key(KeyId=key["KeyId"])
    assert client.get_secret_value(SecretId=arn)["SecretString"].startswith("v-")


def test_a_role_session_sees_its_role_policy_change_on_the_next_call(enforcing):
    iam, name = enforcing.client("iam"), f"cache-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(ALLOW_DESCRIBE))
    creds = enforcing.client("sts").assume_role(RoleArn=role, RoleSessionName="cache-test")["Credentials"]
    client = boto3.client("secretsmanager", endpoint_url=enforcing.endpoint_url, region_name=enforcing.region,
                          aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])
    arn = _secret(enforcing)
    assert _allowed(client, arn)
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(ALLOW_NOTHING_USEFUL))
    assert not _allowed(client, arn)
