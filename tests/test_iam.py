"""IAM helpers: documents, validation, policy lifecycle, access keys by fingerprint (moto)."""

import boto3
import pytest
from moto import mock_aws

from runbook_lib import iam
from runbook_lib.redaction import Fingerprinter

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/f/config-AbCdEf"


def test_secret_read_policy_passes_the_lint_and_a_wildcard_does_not():
    doc = iam.secret_read_policy(SECRET)
    assert iam.validate_document(doc) == ([], "Access Analyzer not asked (no client)")
    with_key = iam.secret_read_policy(SECRET, "arn:aws:kms:us-east-1:123456789012:key/k", "us-east-1")
    assert iam.validate_document(with_key)[0] == []
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
                                                    "Resource": "*"}]}
    assert len(iam.validate_document(wide)[0]) == 2


def test_trust_policy_and_logging():
    lam = iam.trust_policy("123456789012", edge=False)["Statement"][0]
    assert lam["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert lam["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    edge = iam.trust_policy("123456789012", edge=True)["Statement"][0]
    assert edge["Principal"]["Service"] == ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]
    logs = iam.logging_policy("aws", "us-east-1", "123456789012", "f", edge=False)
    assert logs["Statement"][1]["Resource"] == ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"]


@pytest.fixture()
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def test_access_analyzer_missing_is_said_not_hidden(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        analyzer = boto3.client("accessanalyzer", region_name="us-east-1")
        problems, note = iam.validate_document(iam.secret_read_policy(SECRET), analyzer)
    assert problems == [] and "not implemented by this endpoint" in note


def test_policy_lifecycle(client):
    tags = {"managed-by": "lambda-secrets-runbook", "function": "f"}
    client.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    arn = iam.create_policy(client, iam.policy_name("f"), iam.secret_read_policy(SECRET), tags, "d")
    assert arn.endswith(":policy/LambdaSecretsManagerPolicy-f") and iam.policy_tags(client, arn) == tags
    new_doc = iam.secret_read_policy(SECRET[:-1] + "X")
    for _ in range(6):  # more than IAM's 5 versions: the oldest non-default one goes
        iam.update_policy(client, arn, new_doc)
    assert iam.default_document(client, iam.get_policy(client, arn)) == new_doc
    iam.attach(client, "r", arn)
    assert iam.policy_attachments(client, arn) == ["r"]
    iam.detach(client, "r", arn)
    iam.detach(client, "r", arn)  # idempotent
    iam.delete_policy(client, arn)
    assert iam.get_policy(client, arn) is None


def test_access_keys_are_found_by_fingerprint_and_evidence_is_redacted(client):
    client.create_user(UserName="legacy")
    client.create_user(UserName="other")
    key = client.create_access_key(UserName="legacy")["AccessKey"]["AccessKeyId"]
    client.create_access_key(UserName="other")
    fp = Fingerprinter(b"k" * 32)
    [match] = iam.find_access_keys(client, {fp(key)}, fp)
    assert match["user"] == "legacy" and match["status"] == "Active"
    line = iam.set_access_key_status(client, "legacy", match["key_id"], "Inactive")
    assert "--status Inactive" in line and (key in line) is False
    assert iam.access_key_status(client, "legacy", key) == "Inactive"
