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


# -- analyse_role / least_privilege_problems (moto in-process) -----------------------------
from moto import mock_aws  # noqa: E402
import boto3  # noqa: E402

from runbook_lib.iam_analysis import (analyse_role, effective_grants,  # noqa: E402
                                      least_privilege_problems)

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}
LOGS = policy(allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "*"))


@pytest.fixture
def iam(monkeypatch, request):
    # Loading AWS managed policies costs ~1 s per test: only the admin-policy tests need them.
    if "admin" in request.node.name:
        monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        client.create_role(RoleName="orders-api-role", AssumeRolePolicyDocument=json.dumps(TRUST))
        client.put_role_policy(RoleName="orders-api-role", PolicyName="basic", PolicyDocument=json.dumps(LOGS))
        yield client


def attach(iam, name, doc):
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="orders-api-role", PolicyArn=arn)
    return arn


def test_exact_arn_policy_is_least_privilege(iam):
    arn = attach(iam, "LambdaSecretsManagerPolicy-orders-api",
                 policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)))
    analysis = analyse_role(iam, "orders-api-role")
    assert analysis.managed_policies[0]["arn"] == arn
    assert analysis.inline_policies == ["basic"]
    assert least_privilege_problems(analysis, SECRET_ARN) == []
    rows = effective_grants(analysis)
    assert rows == [{"policy": f"managed:{arn}", "sid": "1", "effect": "Allow",
                     "actions": ["secretsmanager:GetSecretValue"], "resources": [SECRET_ARN],
                     "conditions": []}]
    assert json.loads(json.dumps(analysis.to_dict()))["role_name"] == "orders-api-role"


def test_cmk_decrypt_via_secrets_manager_is_least_privilege(iam):
    attach(iam, "p", policy(allow("secretsmanager:GetSecretValue", SECRET_ARN),
                            allow("kms:Decrypt", KEY_ARN, Condition=VIA_SM)))
    analysis = analyse_role(iam, "orders-api-role")
    assert least_privilege_problems(analysis, SECRET_ARN, kms_key_arn=KEY_ARN) == []
    # The same grant without a customer managed key on the secret is one grant too many.
    assert any("kms grant" in p for p in least_privilege_problems(analysis, SECRET_ARN))


def test_wildcard_secretsmanager_on_star_fails(iam):
    iam.put_role_policy(RoleName="orders-api-role", PolicyName="wide",
                        PolicyDocument=json.dumps(policy(allow("secretsmanager:*", "*"))))
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert any("wildcard action secretsmanager:*" in p for p in problems), problems
    assert any("secretsmanager grant on *" in p for p in problems), problems


def test_grant_on_another_secret_fails(iam):
    other = SECRET_ARN.replace("orders-api", "billing")
    attach(iam, "p", policy(allow("secretsmanager:GetSecretValue", [SECRET_ARN, other])))
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert problems == [f"managed:arn:aws:iam::{ACCOUNT}:policy/p statement 1: "
                        f"secretsmanager grant on {other}, not only the secret"]


def test_write_action_on_the_secret_fails(iam):
    attach(iam, "p", policy(allow(["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                                  SECRET_ARN)))
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert any("PutSecretValue" in p for p in problems), problems


@pytest.mark.parametrize("name", ["AdministratorAccess", "PowerUserAccess", "SecretsManagerReadWrite"])
def test_admin_managed_policy_fails(iam, name):
    attach(iam, "p", policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)))
    iam.attach_role_policy(RoleName="orders-api-role", PolicyArn=f"arn:aws:iam::aws:policy/{name}")
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert f"admin managed policy {name} attached" in problems


def test_star_action_inline_fails(iam):
    iam.put_role_policy(RoleName="orders-api-role", PolicyName="admin",
                        PolicyDocument=json.dumps(policy(allow("*", "*"))))
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert any("inline:admin" in p and "wildcard action *" in p for p in problems), problems


def test_not_action_allow_covers_secretsmanager(iam):
    iam.put_role_policy(RoleName="orders-api-role", PolicyName="notaction", PolicyDocument=json.dumps(
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})))
    analysis = analyse_role(iam, "orders-api-role")
    assert [s.policy for s in analysis.grants("secretsmanager")] == ["inline:notaction"]
    assert any("NotAction" in p for p in least_privilege_problems(analysis, SECRET_ARN))


def test_role_without_secret_grant_fails(iam):
    problems = least_privilege_problems(analyse_role(iam, "orders-api-role"), SECRET_ARN)
    assert any("cannot read it" in p for p in problems), problems


def test_role_id_and_trust_are_kept_for_the_session_analysis(iam):
    analysis = analyse_role(iam, "orders-api-role")
    assert analysis.role_id == iam.get_role(RoleName="orders-api-role")["Role"]["RoleId"]
    assert analysis.role_id.startswith("AROA") and analysis.trust_policy == TRUST
    assert analysis.to_dict()["role_id"] == analysis.role_id


def test_check_read_false_leaves_the_read_to_the_caller(iam):
    analysis = analyse_role(iam, "orders-api-role")
    assert least_privilege_problems(analysis, SECRET_ARN, check_read=False) == []


def test_a_shared_policy_cache_reads_a_managed_policy_once(iam):
    arn = attach(iam, "shared", policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)))
    iam.create_role(RoleName="second-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName="second-role", PolicyArn=arn)
    calls = []
    iam.meta.events.register("before-call.iam.GetPolicyVersion", lambda **kw: calls.append(1))
    cache = {}
    first = analyse_role(iam, "orders-api-role", policy_cache=cache)
    second = analyse_role(iam, "second-role", policy_cache=cache)
    assert len(calls) == 1 and first.managed_policies[0]["version"] == second.managed_policies[0]["version"] == "v1"
    assert [s.policy for s in second.statements] == [f"managed:{arn}"]


def test_an_unreadable_managed_policy_is_coverage_not_an_error(iam, monkeypatch):
    arn = attach(iam, "p", policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)))

    def refuse(**kwargs):
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetPolicy")

    monkeypatch.setattr(iam, "get_policy", refuse)
    analysis = analyse_role(iam, "orders-api-role")
    assert analysis.unreadable == [{"policy": arn, "reason": f"GetPolicy on {arn} failed: AccessDenied (needs "
                                                             "iam:GetPolicy) - no"}]
    assert analysis.managed_policies[0]["version"] == ""
