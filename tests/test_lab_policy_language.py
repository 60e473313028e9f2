"""The policy language: operators, wildcards, variables, principals, and failing closed."""

import pytest

from runbook_lib.lab import policy_language as language
from runbook_lib.lab.policy_language import ALLOW, DENY, NEUTRAL, Policy, Principal, UnknownKey
from runbook_lib.lab.request_keys import RequestContext

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/key-AbCdEf"


UNREADABLE = object()


def _context(values=None, services=("secretsmanager",), tags=None):
    return RequestContext({k.lower(): v for k, v in (values or {}).items()}, frozenset(services),
                          resource_tags=None if tags is UNREADABLE else (tags or {}))


def _verdict(statement, values=None, resource=ARN, action="secretsmanager:GetSecretValue", **kw):
    document = {"Version": "2012-10-17", "Statement": [statement]}
    return language.evaluate_policies([Policy(f"test policy {id(statement)}", document)], action, resource,
                                      _context(values, **kw).lookup).effect


def _allow(condition):
    return {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}


def _deny(condition):
    return {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}


# ------------------------------------------------------------------ operators
@pytest.mark.parametrize("condition, values, expected", [
    ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:SourceIp": ["127.0.0.1"]}, True),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}, {"aws:SourceIp": ["127.0.0.1"]}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["127.0.0.1"]}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:CurrentTime": ["2026-05-01T10:00:00Z"]}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:CurrentTime": ["2026-05-01T10:00:00Z"]}, False),
    ({"DateLessThanEquals": {"aws:EpochTime": "1700000000"}}, {"aws:EpochTime": ["1600000000"]}, True),
    ({"DateNotEquals": {"aws:CurrentTime": "2026-05-01T10:00:00Z"}}, {"aws:CurrentTime": ["2026-05-01T10:00:00Z"]}, False),
    ({"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "8"}}, {"secretsmanager:RecoveryWindowInDays": ["7"]}, True),
    ({"NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": 30}},
     {"secretsmanager:RecoveryWindowInDays": ["7"]}, False),
    ({"NumericNotEquals": {"secretsmanager:RecoveryWindowInDays": 7}}, {"secretsmanager:RecoveryWindowInDays": ["7"]}, False),
    ({"Bool": {"aws:SecureTransport": False}}, {"aws:SecureTransport": ["false"]}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": ["false"]}, False),
    ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": ["alice"]}, True),
    ({"StringNotLike": {"aws:username": "a*"}}, {"aws:username": ["alice"]}, False),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/app-*"}},
     {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/app-api"]}, True),
    ({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}},
     {"aws:PrincipalArn": ["arn:aws:iam::123456789012:user/bob"]}, False),
    ({"Null": {"aws:SourceVpce": "true"}}, {}, True),
    ({"Null": {"aws:SourceVpce": "false"}}, {}, False),
    ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {}, True),
    ({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, {}, False),
    ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}, {"aws:TagKeys": ["team"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["team", "owner"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}, {"aws:TagKeys": ["team", "owner"]}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}, {}, False),
])
def test_condition_operators(condition, values, expected):
    assert _verdict(_allow(condition), values) == (ALLOW if expected else NEUTRAL)


def test_every_condition_of_a_block_must_hold():
    condition = {"StringEquals": {"aws:username": "alice"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert _verdict(_allow(condition), {"aws:username": ["alice"], "aws:SourceIp": ["127.0.0.1"]}) == NEUTRAL
    assert _verdict(_allow(condition), {"aws:username": ["alice"], "aws:SourceIp": ["10.1.2.3"]}) == ALLOW


# ------------------------------------------------------------------ wildcards and ARNs
@pytest.mark.parametrize("pattern, value, expected", [
    ("arn:aws:lambda:*:*:function:*", "arn:aws:lambda:us-east-1:1:function:f:3", True),
    ("arn:aws:lambda:*:*:function:*:*", "arn:aws:lambda:us-east-1:1:function:f", False),
    ("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/a:role/x", False),  # * stays inside the account field
    ("arn:aws:secretsmanager:*:*:secret:app/key-??????", ARN, True),
    ("arn:aws:secretsmanager:*:*:secret:app/key-?????", ARN, False),
    ("*", "anything", True),
])
def test_arn_wildcards_stay_within_their_field(pattern, value, expected):
    assert language.arn_like(value, pattern) is expected


def test_not_action_and_not_resource():
    statement = {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:secretsmanager:*:*:secret:b-*"}
    assert _verdict(statement) == ALLOW
    assert _verdict(statement, action="iam:CreateUser") == NEUTRAL
    assert _verdict(statement, resource="arn:aws:secretsmanager:us-east-1:1:secret:b-1") == NEUTRAL


# ------------------------------------------------------------------ policy variables
def test_policy_variables_fill_resource_and_condition_values():
    statement = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                 "Resource": "arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team}/*",
                 "Condition": {"StringLike": {"secretsmanager:SecretId": "*${aws:username}*"}}}
    values = {"aws:PrincipalTag/team": ["app"], "aws:username": ["key"], "secretsmanager:SecretId": ["app/key"]}
    assert _verdict(statement, values) == ALLOW
    assert _verdict(statement, {**values, "aws:PrincipalTag/team": ["other"]}) == NEUTRAL
    assert _verdict(statement, {k: v for k, v in values.items() if k != "aws:PrincipalTag/team"}) == NEUTRAL


def test_policy_variable_default_and_literals():
    assert language.substitute("a-${aws:SourceIdentity, 'nobody'}-${*}", _context().lookup) == "a-nobody-*"
    assert language.substitute("a-${aws:SourceIdentity}", _context().lookup) is None
    statement = {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:secretsmanager:*:*:secret:${aws:username}"}
    old = {"Version": "2008-10-17", "Statement": [statement]}  # no variables before 2012-10-17
    literal = "arn:aws:secretsmanager:us-east-1:1:secret:${aws:username}"
    assert language.evaluate_policies([old], "x:y", literal, _context({"aws:username": ["u"]}).lookup).effect == ALLOW


# ------------------------------------------------------------------ failing closed
def test_an_unknown_key_makes_an_allow_not_match_and_a_deny_apply(capsys):
    unknown = {"StringEquals": {"aws:SomeFutureKey": "x"}}
    assert _verdict(_allow(unknown)) == NEUTRAL
    assert _verdict(_deny(unknown)) == DENY
    # a key of the call's own service that the lab does not compute is unknown too
    assert _verdict(_deny({"StringEquals": {"secretsmanager:SecretPrimaryRegion": "us-east-1"}})) == DENY
    # a key of another service is simply absent from this request
    assert _verdict(_allow({"StringEquals": {"s3:prefix": "x"}})) == NEUTRAL
    assert _verdict(_deny({"StringEquals": {"s3:prefix": "x"}})) == NEUTRAL
    assert "cannot evaluate aws:SomeFutureKey" in capsys.readouterr().err


def test_an_unknown_operator_fails_closed():
    assert _verdict(_allow({"StringSoundsLike": {"aws:username": "x"}}), {"aws:username": ["x"]}) == NEUTRAL
    assert _verdict(_deny({"StringSoundsLike": {"aws:username": "x"}}), {"aws:username": ["x"]}) == DENY


def test_a_false_condition_decides_even_next_to_an_unknown_one():
    condition = {"StringEquals": {"aws:username": "alice", "aws:SomeFutureKey": "x"}}
    assert _verdict(_deny(condition), {"aws:username": ["bob"]}) == NEUTRAL


def test_unreadable_resource_tags_fail_closed_readable_ones_are_judged():
    condition = {"StringEquals": {"aws:ResourceTag/team": "app"}}
    assert _verdict(_allow(condition), tags={"Team": "app"}) == ALLOW  # key names are case-insensitive
    assert _verdict(_allow(condition), tags={"team": "web"}) == NEUTRAL
    assert _verdict(_deny(condition), tags=UNREADABLE) == DENY
    assert _verdict(_allow(condition), tags=UNREADABLE) == NEUTRAL


def test_unevaluable_keys_are_reported_once_per_policy(capsys):
    document = {"Version": "2012-10-17", "Statement": [_deny({"StringEquals": {"aws:OnceOnlyKey": "x"}})]}
    policy = Policy("the once-only test policy", document)
    for _ in range(3):
        language.evaluate_policies([policy], "s3:GetObject", "*", _context().lookup)
    err = capsys.readouterr().err
    assert err.count("the once-only test policy") == 1
    assert {"policy": "the once-only test policy", "key": "aws:OnceOnlyKey"} in language.unevaluated()


def test_lookup_raises_for_unknown_and_returns_none_for_absent():
    context = _context({"aws:username": ["u"]})
    assert context.lookup("AWS:UserName") == ["u"]
    assert context.lookup("aws:SourceVpce") is None
    with pytest.raises(UnknownKey):
        context.lookup("aws:NotAKeyAnyoneKnows")


# ------------------------------------------------------------------ principals (resource-based policies)
SESSION = Principal("arn:aws:sts::123456789012:assumed-role/app-role/fn", "123456789012",
                    "arn:aws:iam::123456789012:role/app-role")


@pytest.mark.parametrize("principal, grant", [
    ("*", language.DIRECT),
    ({"AWS": "arn:aws:sts::123456789012:assumed-role/app-role/fn"}, language.DIRECT),
    ({"AWS": "arn:aws:iam::123456789012:role/app-role"}, language.ROLE),
    ({"AWS": "123456789012"}, language.ACCOUNT),
    ({"AWS": "arn:aws:iam::123456789012:root"}, language.ACCOUNT),
    ({"AWS": "arn:aws:iam::999999999999:root"}, None),
    ({"Service": "lambda.amazonaws.com"}, None),
])
def test_resource_policy_principals(principal, grant):
    document = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "secretsmanager:*",
                               "Resource": "*"}]}
    verdict = language.evaluate_policies([document], "secretsmanager:GetSecretValue", ARN, _context().lookup,
                                         SESSION)
    assert (verdict.effect, verdict.grant) == ((ALLOW, grant) if grant else (NEUTRAL, None))


def test_not_principal_deny_spares_only_the_named():
    document = {"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:role/app-role"},
                               "Action": "*", "Resource": "*"}]}
    other = Principal("arn:aws:iam::123456789012:user/bob", "123456789012")
    assert language.evaluate_policies([document], "x:y", ARN, _context().lookup, SESSION).effect == NEUTRAL
    assert language.evaluate_policies([document], "x:y", ARN, _context().lookup, other).effect == DENY
