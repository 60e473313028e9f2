"""The policy simulator and the live probe: answers judged, trust followed, decoys fresh."""

import json

import pytest
from botocore.exceptions import ClientError

from runbook_lib.access_probes import (PROBE_SESSION, decoy_secret_arn, probe_secret_access, simulate_secret_access,
                                       trust_names_caller)

ACCOUNT = "123456789012"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:lambda/orders-api/config-AbCdEf"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/orders-api-role"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:user/auditor"
LAMBDA_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                       "Principal": {"Service": "lambda.amazonaws.com"}}]}


def trust(principal, action="sts:AssumeRole", effect="Allow"):
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Principal": principal}]}


class Simulator:
    """``SimulatePrincipalPolicy`` answering from a table, recording what it was asked."""

    def __init__(self, decisions=None, error=""):
        self.decisions, self.error, self.calls = decisions or {}, error, []

    def simulate_principal_policy(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "SimulatePrincipalPolicy")
        return {"EvaluationResults": [{"EvalDecision": self.decisions.get(kwargs["ResourceArns"][0], "implicitDeny")}]}


# -- the simulator ------------------------------------------------------------------------------
def test_simulator_unavailable_is_reported_not_raised():
    result = simulate_secret_access(Simulator(error="NotImplemented"), ROLE_ARN, SECRET_ARN, SECRET_ARN + "x")
    assert result == {"available": False, "reason": "this endpoint has no policy simulator", "code": "NotImplemented"}


def test_simulator_denied_names_the_permission():
    result = simulate_secret_access(Simulator(error="AccessDenied"), ROLE_ARN, SECRET_ARN, SECRET_ARN + "x")
    assert result["reason"] == "SimulatePrincipalPolicy failed: AccessDenied (needs iam:SimulatePrincipalPolicy)"


def test_simulator_decisions_are_judged():
    result = simulate_secret_access(Simulator({SECRET_ARN: "allowed"}), ROLE_ARN, SECRET_ARN, SECRET_ARN + "x")
    assert result == {"available": True, "as_expected": True,
                      "decisions": {SECRET_ARN: "allowed", "*": "implicitDeny", SECRET_ARN + "x": "implicitDeny"}}


@pytest.mark.parametrize("decisions", [{SECRET_ARN: "implicitDeny"}, {SECRET_ARN: "allowed", "*": "allowed"},
                                       {SECRET_ARN: "allowed", SECRET_ARN + "x": "allowed"}])
def test_simulator_surprises_are_not_as_expected(decisions):
    result = simulate_secret_access(Simulator(decisions), ROLE_ARN, SECRET_ARN, SECRET_ARN + "x")
    assert result["available"] is True and result["as_expected"] is False


def test_simulator_is_given_the_functions_userid_never_the_resource_policy():
    # AWS refuses ResourcePolicy for a role as the source unless CallerArn (a user) is given
    simulator = Simulator({SECRET_ARN: "allowed"})
    resource_policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "*"}]}
    simulate_secret_access(simulator, ROLE_ARN, SECRET_ARN, "decoy", resource_policy=resource_policy,
                           userid="AROAEXAMPLE:orders-api")
    assert [c["ResourceArns"] for c in simulator.calls] == [[SECRET_ARN], ["*"], ["decoy"]]
    assert all("ResourcePolicy" not in c and "CallerArn" not in c for c in simulator.calls)
    assert all(c["ContextEntries"] == [{"ContextKeyName": "aws:userid", "ContextKeyValues": ["AROAEXAMPLE:orders-api"],
                                        "ContextKeyType": "string"}] for c in simulator.calls)
    plain = Simulator({SECRET_ARN: "allowed"})
    simulate_secret_access(plain, ROLE_ARN, SECRET_ARN, "decoy")
    assert all("ContextEntries" not in c for c in plain.calls)


def test_a_grant_by_the_resource_policy_leaves_the_secret_to_static_analysis():
    resource_policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "*"}]}
    result = simulate_secret_access(Simulator({}), ROLE_ARN, SECRET_ARN, "decoy", resource_policy=resource_policy)
    assert result["as_expected"] is True and "resource policy" in result["note"]
    assert simulate_secret_access(Simulator({}), ROLE_ARN, SECRET_ARN, "decoy")["as_expected"] is False
    leaky = simulate_secret_access(Simulator({"*": "allowed"}), ROLE_ARN, SECRET_ARN, "decoy",
                                   resource_policy=resource_policy)
    assert leaky["as_expected"] is False
    granted = simulate_secret_access(Simulator({SECRET_ARN: "allowed"}), ROLE_ARN, SECRET_ARN, "decoy",
                                     resource_policy=resource_policy)
    assert granted["as_expected"] is True and "note" not in granted


# -- trust ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("document, expected", [
    (LAMBDA_ONLY, False),
    (trust({"AWS": OPERATOR}), True),
    (trust({"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}), True),
    (trust({"AWS": ACCOUNT}), True),
    (trust({"AWS": "*"}), True),
    (trust("*"), True),
    (trust({"AWS": "arn:aws:iam::999999999999:root"}), False),
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/someone-else"}), False),
    (trust({"AWS": OPERATOR}, effect="Deny"), False),
    (trust({"AWS": OPERATOR}, action="sts:TagSession"), False),
    (trust({"AWS": OPERATOR}, action=["sts:*"]), True),
    ({}, False),
])
def test_trust_names_the_operator(document, expected):
    assert trust_names_caller(document, OPERATOR) is expected
    assert trust_names_caller(json.dumps(document), OPERATOR) is expected


def test_an_assumed_role_operator_is_named_by_its_role():
    operator = f"arn:aws:sts::{ACCOUNT}:assumed-role/SecurityAudit/jane"
    assert trust_names_caller(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/SecurityAudit"}), operator) is True
    assert trust_names_caller(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"}), operator) is False


# -- the probe ----------------------------------------------------------------------------------------
def test_decoy_arns_are_fresh_and_well_formed():
    first, second = decoy_secret_arn("aws", "us-east-1", ACCOUNT), decoy_secret_arn("aws", "us-east-1", ACCOUNT)
    assert first != second
    assert first.startswith(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:runbook-decoy-")
    assert len(first.rsplit("-", 1)[1]) == 6


class RefusingTarget:
    region = "us-east-1"

    def client(self, service):
        class Sts:
            def assume_role(self, **kwargs):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not trusted"}}, "AssumeRole")
        return Sts()


def test_a_refused_assume_role_is_a_probe_not_performed():
    result = probe_secret_access(RefusingTarget(), ROLE_ARN, SECRET_ARN, "decoy")
    assert result == {"performed": False, "error": f"AssumeRole on {ROLE_ARN} failed: AccessDenied (needs "
                                                   "sts:AssumeRole) - not trusted"}
    assert PROBE_SESSION == "runbook-least-privilege-probe"
