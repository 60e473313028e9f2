"""Who can read a secret: conditions, principals, identity and resource policies, as AWS decides in one account."""

import pytest

from runbook_lib.secret_readers import (ALLOWED, DENIED, UNKNOWN, Caller, broad_resource_grants, condition_holds,
                                        principal_matches, read_decision)

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/shared-role"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:lambda/orders-api/config-AbCdEf"
ORDERS = Caller(ROLE_ARN, "AROASHARED", "orders-api")
REPORTS = Caller(ROLE_ARN, "AROASHARED", "reports-api")
READ = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET}


def pinned(function="orders-api"):
    return {"Statement": [
        {"Sid": "ReadByFunction", "Effect": "Allow", "Principal": {"AWS": ROLE_ARN},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": f"AROASHARED:{function}"}}},
        {"Sid": "OnlyThisFunction", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE_ARN},
                       "StringNotEquals": {"aws:userid": f"AROASHARED:{function}"}}}]}


def test_the_caller_is_the_functions_role_session():
    assert ORDERS.userid == "AROASHARED:orders-api" and ORDERS.account == ACCOUNT
    assert ORDERS.session_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/shared-role/orders-api"
    assert ORDERS.context()["aws:principalarn"] == ROLE_ARN


@pytest.mark.parametrize("condition, expected", [
    (None, True), ({}, True),
    ({"StringEquals": {"aws:userid": "AROASHARED:orders-api"}}, True),
    ({"StringEquals": {"aws:userid": ["x", "AROASHARED:orders-api"]}}, True),
    ({"StringEquals": {"aws:userid": "AROASHARED:reports-api"}}, False),
    ({"StringNotEquals": {"aws:userid": "AROASHARED:orders-api"}}, False),
    ({"StringNotEquals": {"aws:userid": "AROASHARED:reports-api"}}, True),
    ({"StringLike": {"aws:userid": "AROASHARED:*"}}, True),
    ({"StringNotLike": {"aws:userid": "AROASHARED:orders-*"}}, False),
    ({"StringEqualsIgnoreCase": {"AWS:UserId": "aroashared:ORDERS-API"}}, True),
    ({"StringNotEqualsIgnoreCase": {"aws:userid": "aroashared:orders-api"}}, False),
    ({"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}, True),
    ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/shared-*"}}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}}, False),
    ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/other"}}, True),
    ({"StringEquals": {"aws:userid": "AROASHARED:orders-api"}, "ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, None),
    ({"StringEquals": {"aws:SourceVpce": "vpce-1"}}, None),
    ({"StringEqualsIfExists": {"aws:userid": "AROASHARED:orders-api"}}, None),
    ({"ForAnyValue:StringEquals": {"aws:userid": "AROASHARED:orders-api"}}, None),
    ({"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:userid": "nobody"}}, False),
    ("not a block", None),
])
def test_condition_holds(condition, expected):
    assert condition_holds(condition, ORDERS.context()) is expected


@pytest.mark.parametrize("statement, expected", [
    ({"Effect": "Allow", "Principal": "*"}, True),
    ({"Effect": "Allow", "Principal": {"AWS": "*"}}, True),
    ({"Effect": "Allow", "Principal": {"AWS": [ROLE_ARN]}}, True),
    ({"Effect": "Allow", "Principal": {"AWS": ORDERS.session_arn}}, True),
    ({"Effect": "Allow", "Principal": {"AWS": REPORTS.session_arn}}, False),
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, False),  # delegates to IAM
    ({"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, True),
    ({"Effect": "Deny", "Principal": {"AWS": ACCOUNT}}, True),
    ({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}, False),
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}, False),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": ROLE_ARN}}, None),
])
def test_principal_matches(statement, expected):
    assert principal_matches(statement, ORDERS) is expected


def test_an_identity_grant_lets_every_session_of_the_role_read():
    for caller in (ORDERS, REPORTS):
        decision = read_decision([READ], None, caller, SECRET)
        assert (decision.outcome, decision.because) == (ALLOWED, ("identity policy statement 1",))


def test_the_pinned_resource_policy_lets_only_the_functions_session_read():
    assert read_decision([], pinned(), ORDERS, SECRET).to_dict() == {"outcome": ALLOWED,
                                                                     "because": ["resource policy statement ReadByFunction"]}
    assert read_decision([], pinned(), REPORTS, SECRET).to_dict() == {"outcome": DENIED,
                                                                      "because": ["resource policy statement OnlyThisFunction"]}


def test_the_pinned_deny_wins_over_an_identity_grant_of_another_session():
    assert read_decision([READ], pinned(), REPORTS, SECRET).outcome == DENIED
    assert read_decision([READ], pinned(), ORDERS, SECRET).outcome == ALLOWED


def test_the_pinned_deny_does_not_touch_other_roles():
    other = Caller(f"arn:aws:iam::{ACCOUNT}:role/other", "AROAOTHER", "billing")
    wide = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    assert read_decision([wide], pinned(), other, SECRET).outcome == ALLOWED
    assert read_decision([], pinned(), other, SECRET).to_dict() == {"outcome": DENIED,
                                                                    "because": ["no statement allows it"]}


def test_an_identity_deny_wins():
    deny = {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*", "_policy": "inline:guard"}
    decision = read_decision([READ, deny], None, ORDERS, SECRET)
    assert (decision.outcome, decision.because) == (DENIED, ("inline:guard statement 2",))


def test_not_action_and_not_resource_are_evaluated():
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert read_decision([not_action], None, ORDERS, SECRET).outcome == ALLOWED
    excludes = {"Effect": "Allow", "NotAction": "secretsmanager:*", "Resource": "*"}
    assert read_decision([excludes], None, ORDERS, SECRET).outcome == DENIED
    not_resource = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": SECRET}
    assert read_decision([not_resource], None, ORDERS, SECRET).outcome == DENIED
    other_secret = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET + "x"}
    assert read_decision([other_secret], None, ORDERS, SECRET).outcome == DENIED


def test_a_condition_that_cannot_be_evaluated_is_unknown_never_a_guess():
    conditional = dict(READ, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    assert read_decision([conditional], None, ORDERS, SECRET).outcome == UNKNOWN
    doubtful_deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}
    decision = read_decision([READ, doubtful_deny], None, ORDERS, SECRET)
    assert decision.outcome == UNKNOWN and decision.because == ("identity policy statement 1", "identity policy statement 2")
    not_principal = {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "*", "Resource": "*"}]}
    assert read_decision([], not_principal, ORDERS, SECRET).outcome == UNKNOWN


def test_broad_resource_grants_name_principals_other_than_the_role():
    open_policy = {"Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": "*",
                                  "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                                 {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root", ROLE_ARN]},
                                  "Action": "secretsmanager:*", "Resource": "*"},
                                 {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:DescribeSecret",
                                  "Resource": "*"},
                                 {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}
    assert broad_resource_grants(open_policy, ROLE_ARN, SECRET) == [
        "the secret's resource policy statement Open lets * read it",
        "the secret's resource policy statement 2 lets arn:aws:iam::999999999999:root read it"]
    assert broad_resource_grants(pinned(), ROLE_ARN, SECRET) == []
    assert broad_resource_grants(None, ROLE_ARN, SECRET) == []


def test_a_role_analysis_is_labelled_by_policy_and_statement():
    from runbook_lib.iam_analysis import RoleAnalysis
    from runbook_lib.secret_readers import identity_statements

    analysis = RoleAnalysis("shared-role", ROLE_ARN).add_document("inline:two", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
        {"Sid": "Read", **READ, "Condition": {"StringEquals": {"aws:userid": "AROASHARED:orders-api"}}}]})
    [statement] = identity_statements(analysis)
    assert statement["Sid"] == "Read" and statement["_policy"] == "inline:two" and statement["Condition"]
    assert read_decision([statement], None, ORDERS, SECRET).because == ("inline:two statement Read",)
    assert read_decision([statement], None, REPORTS, SECRET).outcome == DENIED


# -- details the decisions rest on ------------------------------------------------------------------
def test_the_callers_whole_request_context():
    assert ORDERS.context() == {"aws:userid": "AROASHARED:orders-api", "aws:principalarn": ROLE_ARN,
                                "aws:principalaccount": ACCOUNT, "aws:principaltype": "AssumedRole"}
    assert condition_holds({"StringEquals": {"aws:PrincipalType": "AssumedRole",
                                             "aws:PrincipalAccount": ACCOUNT}}, ORDERS.context()) is True


def test_principal_names_of_each_form():
    from runbook_lib.secret_readers import principal_names
    assert principal_names({"Principal": "*"}) == ["*"]
    assert principal_names({"Principal": {"AWS": [ROLE_ARN, "111122223333"], "Service": "lambda.amazonaws.com"}}) == [
        ROLE_ARN, "111122223333", "service:lambda.amazonaws.com"]
    assert principal_names({"Principal": ROLE_ARN}) == [ROLE_ARN]
    assert principal_names({}) == [] and principal_names({"Principal": ""}) == []


def test_a_service_principal_grant_is_broad_and_names_the_service():
    service = {"Statement": [{"Sid": "Svc", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                              "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    assert broad_resource_grants(service, ROLE_ARN, SECRET) == [
        "the secret's resource policy statement Svc lets service:lambda.amazonaws.com read it"]
    not_principal = {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": ROLE_ARN},
                                    "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    assert broad_resource_grants(not_principal, ROLE_ARN, SECRET) == [
        "the secret's resource policy statement 1 lets every principal but those listed read it"]
    elsewhere = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                                "Resource": SECRET + "x"}]}
    assert broad_resource_grants(elsewhere, ROLE_ARN, SECRET) == []


def test_a_not_resource_grant_covering_the_secret_and_a_resource_policy_not_resource():
    elsewhere = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": SECRET + "x"}
    assert read_decision([elsewhere], None, ORDERS, SECRET).outcome == ALLOWED
    resource = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE_ARN},
                               "Action": "secretsmanager:GetSecretValue", "NotResource": SECRET}]}
    assert read_decision([], resource, ORDERS, SECRET).outcome == DENIED


def test_a_doubtful_allow_names_every_doubtful_statement():
    doubtful = dict(READ, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, _policy="inline:ip")
    guard = {"Effect": "Deny", "Action": "*", "Resource": "*", "_policy": "inline:mfa",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}
    decision = read_decision([doubtful, guard], None, ORDERS, SECRET)
    assert decision.to_dict() == {"outcome": UNKNOWN, "because": ["inline:ip statement 1", "inline:mfa statement 2"]}


def test_an_unknown_key_does_not_stop_the_other_keys_from_being_judged():
    both = {"StringEquals": {"aws:SourceVpc": "vpc-1", "aws:userid": "AROASHARED:reports-api"}}
    assert condition_holds(both, ORDERS.context()) is False


def test_identity_statements_keep_not_action_and_not_resource():
    from runbook_lib.iam_analysis import RoleAnalysis
    from runbook_lib.secret_readers import identity_statements

    analysis = RoleAnalysis("shared-role", ROLE_ARN).add_document("inline:not", {"Statement": [
        {"Sid": "All", "Effect": "Allow", "NotAction": "iam:*", "NotResource": SECRET + "x"}]})
    assert identity_statements(analysis) == [{"Sid": "All", "Effect": "Allow", "NotAction": ["iam:*"],
                                              "NotResource": [SECRET + "x"], "_policy": "inline:not"}]
    assert identity_statements(None) == []


def test_every_statement_of_the_resource_policy_is_looked_at_and_each_principal_named():
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"},
                            {"Sid": "Two", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root",
                                                                                    "arn:aws:iam::888888888888:root"]},
                             "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    assert broad_resource_grants(policy, ROLE_ARN, SECRET) == [
        "the secret's resource policy statement Two lets arn:aws:iam::999999999999:root, "
        "arn:aws:iam::888888888888:root read it"]
