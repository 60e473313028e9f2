"""Least-privilege lint of one policy document, and the analysis of a role's policies (moto)."""

import json

import pytest

from runbook_lib.iam_analysis import lint_policy_document

ACCOUNT = "123456789012"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:lambda/orders-api/config-AbCdEf"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


VIA_SM = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


# -- lint_policy_document -----------------------------------------------------------------
def test_lint_accepts_exact_secret_arn():
    assert lint_policy_document(policy(allow("secretsmanager:GetSecretValue", SECRET_ARN))) == []


def test_lint_accepts_json_text_and_kms_via_secrets_manager():
    doc = policy(allow("secretsmanager:GetSecretValue", [SECRET_ARN]),
                 allow(["kms:Decrypt"], KEY_ARN, Condition=VIA_SM))
    assert lint_policy_document(json.dumps(doc)) == []


def test_lint_accepts_documented_secret_suffix_pattern():
    pattern = SECRET_ARN[:-7] + "-??????"
    assert lint_policy_document(policy(allow("secretsmanager:GetSecretValue", pattern))) == []


def test_lint_accepts_wildcard_resource_for_other_services():
    # The basic logging policy of a Lambda role uses "*": not what this lint restricts.
    doc = policy(allow(["logs:CreateLogStream", "logs:PutLogEvents"], "*"),
                 allow("secretsmanager:GetSecretValue", SECRET_ARN))
    assert lint_policy_document(doc) == []


@pytest.mark.parametrize("doc, expected", [
    (policy(allow("*", "*")), "wildcard action *"),
    (policy(allow("secretsmanager:*", SECRET_ARN)), "wildcard action secretsmanager:*"),
    (policy(allow("secretsmanager:Get*", SECRET_ARN)), "wildcard action secretsmanager:Get*"),
    (policy(allow("kms:*", KEY_ARN, Condition=VIA_SM)), "wildcard action kms:*"),
    (policy(allow("secretsmanager:GetSecretValue", "*")), "wildcard resource * for secretsmanager"),
    (policy(allow("secretsmanager:GetSecretValue",
                  f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:lambda/*")), "wildcard resource"),
    (policy(allow("kms:Decrypt", "*", Condition=VIA_SM)), "wildcard resource * for kms"),
    (policy(allow("kms:Decrypt", KEY_ARN)), "kms:ViaService"),
    (policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), "NotAction"),
    (policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": SECRET_ARN}),
     "NotResource"),
    (policy(allow("secretsmanager:GetSecretValue", SECRET_ARN, Principal="*")), "Principal"),
    ({"Version": "2008-10-17", "Statement": [allow("secretsmanager:GetSecretValue", SECRET_ARN)]}, "Version"),
    ({"Version": "2012-10-17", "Statement": []}, "no Statement"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "s3:GetObject",
                                              "Resource": "*"}]}, "Effect"),
    ("{not json", "not valid JSON"),
])
def test_lint_reports_problem(doc, expected):
    problems = lint_policy_document(doc)
    assert any(expected in p for p in problems), problems


def test_lint_names_statement_by_sid():
    problems = lint_policy_document(policy(allow("secretsmanager:*", "*", Sid="TooWide")))
    assert problems and all(p.startswith("statement TooWide:") for p in problems)


def test_lint_ignores_deny_statements():
    doc = policy(allow("secretsmanager:GetSecretValue", SECRET_ARN),
                 {"Effect": "Deny", "Action": "*", "Resource": "*",
                  "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert lint_policy_document(doc) == []
