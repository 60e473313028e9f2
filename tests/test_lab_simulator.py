"""The lab's ``iam:SimulatePrincipalPolicy``: the decisions its own calls get, and AWS's refusals."""

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/config-AbCdEf"


def _role(lab, *statements, boundary=None) -> str:
    iam, name = lab.client("iam"), f"sim-{uuid.uuid4().hex[:8]}"
    extra = {"PermissionsBoundary": boundary} if boundary else {}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), **extra)["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
    return arn


def _decisions(lab, source, resources, action="secretsmanager:GetSecretValue", **extra):
    answer = lab.client("iam").simulate_principal_policy(PolicySourceArn=source, ActionNames=[action],
                                                          ResourceArns=resources, **extra)
    return [r["EvalDecision"] for r in answer["EvaluationResults"]]


def _refusal(lab, **request):
    with pytest.raises(ClientError) as caught:
        lab.client("iam").simulate_principal_policy(**request)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_a_scoped_grant_allows_its_secret_only(lab):
    role = _role(lab, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET})
    assert _decisions(lab, role, [SECRET, "*", SECRET + "x"]) == ["allowed", "implicitDeny", "implicitDeny"]


def test_an_explicit_deny_is_named_as_such(lab):
    role = _role(lab, {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
                 {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET})
    assert _decisions(lab, role, [SECRET, "*"]) == ["explicitDeny", "allowed"]


def test_the_permissions_boundary_limits_the_simulation(lab):
    boundary = lab.client("iam").create_policy(PolicyName=f"b-{uuid.uuid4().hex[:6]}", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}))
    role = _role(lab, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                 boundary=boundary["Policy"]["Arn"])
    assert _decisions(lab, role, [SECRET]) == ["implicitDeny"]


def test_context_entries_decide_conditions(lab):
    role = _role(lab, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET,
                       "Condition": {"StringLike": {"aws:userid": "*:orders-api"}}})
    entry = {"ContextKeyName": "aws:userid", "ContextKeyType": "string"}
    assert _decisions(lab, role, [SECRET], ContextEntries=[{**entry, "ContextKeyValues": ["AROA1:orders-api"]}]) \
        == ["allowed"]
    assert _decisions(lab, role, [SECRET], ContextEntries=[{**entry, "ContextKeyValues": ["AROA1:other"]}]) \
        == ["implicitDeny"]


def test_a_condition_the_lab_cannot_judge_fails_closed_and_is_listed_missing(lab):
    role = _role(lab, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET,
                       "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    answer = lab.client("iam").simulate_principal_policy(PolicySourceArn=role, ActionNames=[
        "secretsmanager:GetSecretValue"], ResourceArns=[SECRET])["EvaluationResults"][0]
    assert answer["EvalDecision"] == "implicitDeny"
    assert answer["MissingContextValues"] == ["aws:SourceIp"]  # a simulation has no source address


def test_a_user_is_simulated_with_a_resource_policy(lab):
    user = lab.client("iam").create_user(UserName=f"sim-{uuid.uuid4().hex[:6]}")["User"]["Arn"]
    grant = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    assert _decisions(lab, user, [SECRET]) == ["implicitDeny"]
    assert _decisions(lab, user, [SECRET], ResourcePolicy=json.dumps(grant)) == ["allowed"]


def test_aws_refusals(lab):
    role = _role(lab)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    action = ["secretsmanager:GetSecretValue"]
    assert _refusal(lab, PolicySourceArn=role, ActionNames=action, ResourcePolicy=policy)[0] == "InvalidInput"
    assert _refusal(lab, PolicySourceArn=role, ActionNames=action, CallerArn=role.replace(":role/", ":user/x"),
                    ResourcePolicy=policy)[0] == "NotImplemented"
    assert _refusal(lab, PolicySourceArn=role, ActionNames=action,
                    CallerArn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s")[0] == "InvalidInput"
    assert _refusal(lab, PolicySourceArn=role + "-gone", ActionNames=action)[0] == "NoSuchEntity"
    assert _refusal(lab, PolicySourceArn="not-an-arn-of-any-principal", ActionNames=action)[0] == "InvalidInput"
    assert _refusal(lab, PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:group/g", ActionNames=action)[0] == "NotImplemented"
    code, message = _refusal(lab, PolicySourceArn=role, ActionNames=action, PolicyInputList=[policy])
    assert code == "NotImplemented" and "PolicyInputList" in message


def test_with_enforcement_the_caller_needs_simulate_principal_policy(lab):
    role = _role(lab)
    iam = lab.client("iam")
    name = f"sim-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = boto3.client("iam", endpoint_url=lab.endpoint_url, region_name=lab.region,
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    lab.set_enforce_iam(True)
    try:
        with pytest.raises(ClientError) as caught:
            client.simulate_principal_policy(PolicySourceArn=role, ActionNames=["s3:GetObject"])
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
        iam.put_user_policy(UserName=name, PolicyName="sim", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy",
                                                    "Resource": role}]}))
        answer = client.simulate_principal_policy(PolicySourceArn=role, ActionNames=["s3:GetObject"])
        assert [r["EvalDecision"] for r in answer["EvaluationResults"]] == ["implicitDeny"]
    finally:
        lab.set_enforce_iam(False)


def test_moto_still_has_no_policy_simulator():
    from moto.iam.responses import IamResponse

    assert not hasattr(IamResponse, "simulate_principal_policy")
