"""Resource-level IAM enforcement, trust checks, and the moto gaps they fill."""

import json
import uuid

import boto3
import pytest

from runbook_lib.lab import iam_enforcement as enforcement

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def enforcing(lab):
    lab.set_enforce_iam(True)
    try:
        yield lab
    finally:
        lab.set_enforce_iam(False)


def _role_session(lab, policy: dict, service: str):
    name = f"lp-{uuid.uuid4().hex[:8]}"
    iam = lab.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="scoped", PolicyDocument=json.dumps(policy))
    creds = lab.client("sts").assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    client = boto3.client(service, endpoint_url=lab.endpoint_url, region_name=lab.region,
                          aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])
    return client, name, creds["AccessKeyId"]


def _error(exc_info):
    return exc_info.value.response["Error"]


# ------------------------------------------------------------------ moto's gaps

def test_moto_authorises_secrets_kms_dynamodb_lambda_logs_against_star():
    """moto's responses for these services have no resource resolver: resource is always '*'."""
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.kms.responses import KmsResponse
    from moto.logs.responses import LogsResponse
    from moto.secretsmanager.responses import SecretsManagerResponse

    for response in (SecretsManagerResponse, KmsResponse, DynamoHandler, LambdaResponse, LogsResponse):
        assert not hasattr(response, "_determine_resource"), response.__name__


def test_moto_trust_check_crashes_on_a_service_principal_ours_does_not():
    from moto.iam.access_control import IAMPolicy

    with pytest.raises(TypeError):
        IAMPolicy(json.dumps(TRUST)).is_action_permitted(
            "sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/r", f"arn:aws:iam::{ACCOUNT}:user/u")
    assert enforcement.trust_allows(TRUST, "lambda.amazonaws.com") is True
    assert enforcement.trust_allows(TRUST, "edgelambda.amazonaws.com") is False


def test_moto_policy_ignores_not_resource_ours_does_not():
    from moto.iam.access_control import IAMPolicy, PermissionResult

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
                                                      "NotResource": "arn:aws:secretsmanager:*:*:secret:a-*"}]}
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:a-AbCdEf"
    assert IAMPolicy(json.dumps(policy)).is_action_permitted("secretsmanager:GetSecretValue", arn) \
        == PermissionResult.PERMITTED
    assert enforcement.evaluate([policy], "secretsmanager:GetSecretValue", arn) == enforcement.NEUTRAL


# ------------------------------------------------------------------ evaluation

@pytest.mark.parametrize("statement, action, resource, context, expected", [
    ({"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "arn:aws:secretsmanager:*:*:secret:a-??????"},
     "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf", {}, "Allow"),
    ({"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "arn:aws:secretsmanager:*:*:secret:a-??????"},
     "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEfG", {}, "Neutral"),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "kms:Decrypt", "k", {}, "Allow"),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "iam:CreateUser", "u", {}, "Neutral"),
    ({"Effect": "Allow", "Action": "S3:getobject", "Resource": "*"}, "s3:GetObject", "o", {}, "Allow"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
     "kms:Decrypt", "k", {"aws:requestedregion": ["us-east-1"]}, "Neutral"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/lp-*"}}},
     "kms:Decrypt", "k", {"aws:principalarn": ["arn:aws:iam::1:role/lp-x"]}, "Allow"),
    ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
      "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}},
     "kms:Decrypt", "k", {}, "Neutral"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": "1"}}}, "kms:Decrypt", "k", {}, "Allow"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:user/*"}}},
     "kms:Decrypt", "k", {"aws:principalarn": ["arn:aws:iam::1:role/r"]}, "Neutral"),
    ({"Effect": "Deny", "Action": "*", "Resource": "*"}, "kms:Decrypt", "k", {}, "Deny"),
])
def test_evaluate(statement, action, resource, context, expected):
    assert enforcement.evaluate([{"Statement": [statement]}], action, resource, context) == expected


def test_explicit_deny_wins_over_allow():
    documents = [{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}},
                 {"Statement": [{"Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
                                 "Resource": "arn:aws:secretsmanager:*:*:secret:b-*"}]}]
    assert enforcement.evaluate(documents, "secretsmanager:GetSecretValue",
                                "arn:aws:secretsmanager:us-east-1:1:secret:b-xyz") == "Deny"
    assert enforcement.evaluate(documents, "secretsmanager:GetSecretValue",
                                "arn:aws:secretsmanager:us-east-1:1:secret:a-xyz") == "Allow"


# ------------------------------------------------------------------ against the lab

def test_role_allowed_one_secret_reads_it_and_is_denied_another(enforcing):
    lab = enforcing
    admin = lab.client("secretsmanager")
    allowed = admin.create_secret(Name=f"lp/allowed-{uuid.uuid4().hex[:6]}", SecretString="v-allowed-0001")
    other = admin.create_secret(Name=f"lp/other-{uuid.uuid4().hex[:6]}", SecretString="v-other-0001")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": allowed["ARN"]}]}
    sm, role, key_id = _role_session(lab, policy, "secretsmanager")

    assert bool(sm.get_secret_value(SecretId=allowed["Name"])["SecretString"] == "v-allowed-0001")
    assert bool(sm.get_secret_value(SecretId=allowed["ARN"])["SecretString"] == "v-allowed-0001")
    with pytest.raises(sm.exceptions.ClientError) as denied:
        sm.get_secret_value(SecretId=other["Name"])
    error = _error(denied)
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/fn is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {other['ARN']} because no identity-based policy "
        f"allows the secretsmanager:GetSecretValue action")
    with pytest.raises(sm.exceptions.ClientError):
        sm.list_secrets()

    events = lab.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": key_id}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert [(r["eventName"], r.get("errorCode")) for r in records] == [
        ("ListSecrets", "AccessDenied"), ("GetSecretValue", "AccessDenied"),
        ("GetSecretValue", None), ("GetSecretValue", None)]
    assert records[1]["resources"][0]["ARN"] == other["ARN"]
    assert "not authorized" in records[1]["errorMessage"]


def test_enforcement_off_lets_the_same_role_read_everything(lab):
    admin = lab.client("secretsmanager")
    other = admin.create_secret(Name=f"lp/open-{uuid.uuid4().hex[:6]}", SecretString="v-open-0001")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:*:*:secret:nothing"}]}
    sm, _, _ = _role_session(lab, policy, "secretsmanager")
    assert bool(sm.get_secret_value(SecretId=other["ARN"])["SecretString"] == "v-open-0001")


def test_dynamodb_table_scoped_policy(enforcing):
    lab = enforcing
    ddb = lab.client("dynamodb")
    tables = [f"lp-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for table in tables:
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.put_item(TableName=table, Item={"k": {"S": "1"}})
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"],
        "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{tables[0]}"}]}
    client, _, _ = _role_session(lab, policy, "dynamodb")
    assert client.get_item(TableName=tables[0], Key={"k": {"S": "1"}})["Item"]["k"]["S"] == "1"
    assert client.scan(TableName=tables[0])["Count"] == 1
    with pytest.raises(client.exceptions.ClientError) as denied:
        client.get_item(TableName=tables[1], Key={"k": {"S": "1"}})
    assert _error(denied)["Code"] == "AccessDeniedException"
    assert f"table/{tables[1]}" in _error(denied)["Message"]
    with pytest.raises(client.exceptions.ClientError):
        client.put_item(TableName=tables[0], Item={"k": {"S": "2"}})


def test_lambda_and_iam_denials_use_their_protocol_errors(enforcing):
    lab = enforcing
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": f"arn:aws:lambda:*:*:function:mine"}]}
    lam, _, _ = _role_session(lab, policy, "lambda")
    with pytest.raises(lam.exceptions.ClientError) as denied:
        lam.get_function(FunctionName="theirs")
    assert _error(denied)["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    iam, _, _ = _role_session(lab, policy, "iam")
    with pytest.raises(iam.exceptions.ClientError) as denied:
        iam.list_roles()
    assert _error(denied)["Code"] == "AccessDenied"


def test_iam_user_group_and_managed_policies_and_explicit_deny(enforcing):
    lab = enforcing
    iam = lab.client("iam")
    user, group = f"lp-user-{uuid.uuid4().hex[:6]}", f"lp-group-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.add_user_to_group(UserName=user, GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="g", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    managed = iam.create_policy(PolicyName=f"lp-deny-{uuid.uuid4().hex[:6]}", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=managed)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    kms = boto3.client("kms", endpoint_url=lab.endpoint_url, region_name=lab.region,
                       aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.ClientError) as denied:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    message = _error(denied)["Message"]
    assert "explicit deny" in message and f"key/{key_id}" in message and f"user/{user}" in message


def test_admin_and_unknown_keys_pass_with_enforcement_on(enforcing):
    lab = enforcing
    assert "Roles" in lab.client("iam").list_roles()
    anonymous = boto3.client("sts", endpoint_url=lab.endpoint_url, region_name=lab.region,
                             aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x")
    assert anonymous.get_caller_identity()["Account"] == ACCOUNT


def test_resources_resolve_to_real_arns(lab):
    from runbook_lib.lab.operations import ApiCall

    name = f"lp/arn-{uuid.uuid4().hex[:6]}"
    arn = lab.client("secretsmanager").create_secret(Name=name, SecretString="v-arn-0001")["ARN"]

    def resources(service, operation, **params):
        return enforcement.resources_for(ApiCall(service, operation, params, "us-east-1"), ACCOUNT)

    # the lab runs in a child process, so its backends are not visible here: names fall back
    assert resources("secretsmanager", "GetSecretValue", SecretId=arn) == [arn]
    assert resources("dynamodb", "Query", TableName="orders", IndexName="i") == [
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders/index/i"]
    assert resources("lambda", "GetFunction", FunctionName="f:3") == [  # qualified, as on AWS
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f:3"]
    assert resources("logs", "PutLogEvents", logGroupName="/aws/lambda/f", logStreamName="s") == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/f:log-stream:s"]
    assert resources("sts", "GetCallerIdentity") == ["*"]


def test_role_trusts_service_reads_moto_roles():
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(TRUST))
        assert enforcement.role_trusts_service("fn-role", "lambda.amazonaws.com")
        assert enforcement.role_trusts_service(f"arn:aws:iam::{ACCOUNT}:role/fn-role", "lambda.amazonaws.com")
        assert not enforcement.role_trusts_service("fn-role", "ec2.amazonaws.com")
        assert not enforcement.role_trusts_service("missing-role", "lambda.amazonaws.com")


def test_aws_managed_policies_exist_and_are_enforced(enforcing):
    lab = enforcing
    iam = lab.client("iam")
    name = f"lp-managed-{uuid.uuid4().hex[:6]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name,
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    creds = lab.client("sts").assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=lab.region)
    logs = session.client("logs", endpoint_url=lab.endpoint_url)
    logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
    sm = session.client("secretsmanager", endpoint_url=lab.endpoint_url)
    with pytest.raises(sm.exceptions.ClientError) as denied:
        sm.list_secrets()
    assert _error(denied)["Code"] == "AccessDeniedException"
