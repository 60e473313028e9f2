"""The secret's resource policy: its exact shape, the lint, merging with others' statements, the key check."""

import pytest

from runbook_lib import secret_grant as G

ROLE = "arn:aws:iam::123456789012:role/shared"
ROLE_ID = "AROAEXAMPLEROLEID"
FACTS = G.session_facts(ROLE, ROLE_ID, "orders", "us-east-1", "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/orders/config-AbCdEf",
                        key_arn="arn:aws:kms:us-east-1:123456789012:key/k1")


def test_the_policy_has_exactly_the_shape_least_privilege_recognises():
    doc = G.function_read_policy(ROLE, ROLE_ID, "orders")
    assert doc == {"Version": "2012-10-17", "Statement": [
        {"Sid": "LambdaSecretsRunbookReadByFunction", "Effect": "Allow", "Principal": {"AWS": ROLE},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": f"{ROLE_ID}:orders"}}},
        {"Sid": "LambdaSecretsRunbookOnlyThisFunction", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE},
                       "StringNotEquals": {"aws:userid": f"{ROLE_ID}:orders"}}}]}
    assert G.lint_secret_policy(doc) == []


def test_others_statements_are_kept_and_backout_removes_only_ours():
    theirs = {"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/audit"},
              "Action": "secretsmanager:DescribeSecret", "Resource": "*"}
    merged = G.function_read_policy(ROLE, ROLE_ID, "orders", {"Version": "2012-10-17", "Statement": theirs})
    assert merged["Statement"][0] == theirs and len(G.runbook_statements(merged)) == 2
    assert G.without_runbook_statements(merged) == {"Version": "2012-10-17", "Statement": [theirs]}
    assert G.without_runbook_statements(G.function_read_policy(ROLE, ROLE_ID, "orders")) is None


@pytest.mark.parametrize("change, problem", [
    ({"Principal": "*"}, "principal * is not one role or user"),
    ({"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}, "is not one role or user"),
    ({"Action": "secretsmanager:*"}, "wildcard action"),
    ({"Condition": {}}, "not pinned to one session"),
    ({"NotAction": "kms:*"}, "NotPrincipal or NotAction"),
    ({"Effect": "Maybe"}, "Effect 'Maybe'"),
])
def test_the_lint_names_what_makes_a_grant_broader(change, problem):
    doc = G.function_read_policy(ROLE, ROLE_ID, "orders")
    doc["Statement"][0] = {**doc["Statement"][0], **change}
    problems = G.lint_secret_policy(doc)
    assert any(problem in p for p in problems), problems
    assert G.lint_secret_policy({**G.function_read_policy(ROLE, ROLE_ID, "orders"), "Version": "2008-10-17"})


VIA = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def key_policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_key_that_lets_the_session_decrypt_via_secrets_manager_has_no_problem():
    direct = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*",
              "Condition": {"StringEquals": {**VIA["StringEquals"], "aws:userid": f"{ROLE_ID}:orders"}}}
    assert G.key_decrypt_problem(key_policy(direct), [], FACTS) == ""
    root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    identity = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": FACTS["key_arn"], "Condition": VIA}
    assert G.key_decrypt_problem(key_policy(root), [identity], FACTS) == ""


def test_a_key_that_does_not_allow_it_or_cannot_be_judged_blocks_with_one_line():
    root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    missing = G.key_decrypt_problem(key_policy(root), [], FACTS)
    assert "does not let" in missing and "kms_key=create" in missing and "\n" not in missing
    other_service = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*",
                     "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}
    assert "does not let" in G.key_decrypt_problem(key_policy(other_service), [], FACTS)
    unknown = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*",
               "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    assert "cannot judge" in G.key_decrypt_problem(key_policy(unknown), [], FACTS)
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    direct = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*", "Condition": VIA}
    assert "cannot judge" in G.key_decrypt_problem(key_policy(direct, deny), [], FACTS)


class StubSecretsManager:
    """Answers ValidateResourcePolicy as told: a response, or an exception to raise."""

    def __init__(self, answer):
        self.answer = answer

    def validate_resource_policy(self, **_):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def client_error(code):
    import botocore.exceptions
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "m"}}, "ValidateResourcePolicy")


def test_validate_uses_secrets_managers_answer_and_the_lint_when_it_is_not_answered():
    doc = G.function_read_policy(ROLE, ROLE_ID, "orders")
    assert G.validate(StubSecretsManager({"PolicyValidationPassed": True, "ValidationErrors": []}), "s", doc) == (
        [], "ValidateResourcePolicy passed and the runbook's own lint")
    problems, _ = G.validate(StubSecretsManager({"PolicyValidationPassed": False, "ValidationErrors": [
        {"CheckName": "BROAD_ACCESS", "ErrorMessage": "too broad"}]}), "s", doc)
    assert problems == ["ValidateResourcePolicy: BROAD_ACCESS too broad", "ValidateResourcePolicy: the policy did not pass"]
    problems, note = G.validate(StubSecretsManager(client_error("NotImplemented")), "s", doc)
    assert problems == [] and "own lint only" in note
    problems, _ = G.validate(StubSecretsManager(client_error("MalformedPolicyDocumentException")), "s", doc)
    assert problems == ["ValidateResourcePolicy: MalformedPolicyDocumentException"]
