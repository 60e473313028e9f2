"""Resource-level IAM enforcement, trust checks, and the moto gaps they fill."""

import json
import uuid

import boto3
import pytest

from runbook_lib.lab import iam_enforcement as enforcement

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
#: Lambda and the lab's own account may assume it: the tests assume these roles as lab-admin.
TRUST_ACCOUNT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"},
     "Action": "sts:AssumeRole"}]}


def _role_session(lab, policy: dict, service: str):
    name = f"lp-{uuid.uuid4().hex[:8]}"
    iam = lab.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
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
    records = [json.loads(e["CloudTrailEvent"]) for e in events if e["EventSource"] != "kms.amazonaws.com"]
    decrypts = [json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == "Decrypt"]
    assert len(decrypts) == 2  # Secrets Manager decrypted each value it returned, as the caller
    assert {d["userIdentity"]["invokedBy"] for d in decrypts} == {"secretsmanager.amazonaws.com"}
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


def test_admin_passes_and_an_unknown_key_is_refused_with_enforcement_on(enforcing):
    lab = enforcing
    assert "Roles" in lab.client("iam").list_roles()
    anonymous = boto3.client("sts", endpoint_url=lab.endpoint_url, region_name=lab.region,
                             aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x")
    with pytest.raises(anonymous.exceptions.ClientError) as refused:
        anonymous.get_caller_identity()
    assert _error(refused)["Code"] == "InvalidClientTokenId"


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
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
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


# ------------------------------------------------------------------ every policy type, in-process
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/key-AbCdEf"
ALLOW_ALL_SECRETS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}


@pytest.fixture
def moto_iam(monkeypatch):
    """moto in this process, and a factory for role sessions with given policies."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")

        def session(policy=None, boundary=None, session_policy=None, account=ACCOUNT):
            from moto.iam.models import iam_backends

            from runbook_lib.lab.identity import ASSUMED_ROLE, Caller

            name = f"r-{uuid.uuid4().hex[:6]}"
            boundary_arn = None
            if boundary is not None:
                boundary_arn = iam.create_policy(PolicyName=f"b-{name}", PolicyDocument=json.dumps(boundary))[
                    "Policy"]["Arn"]
            backend = iam_backends[account]["aws"]
            role = backend.create_role(name, json.dumps(TRUST_ACCOUNT), "/", boundary_arn, "", [], "3600")
            if policy is not None:
                backend.put_role_policy(name, "p", json.dumps(policy))
            return Caller(ASSUMED_ROLE, f"arn:aws:sts::{account}:assumed-role/{name}/s", account, "ASIAX",
                          f"{role.id}:s", "s", role_name=name, role_arn=role.arn, role_id=role.id, session_name="s",
                          session_policy=json.dumps(session_policy) if session_policy else None)

        yield session


def _decide(caller, action, resource, policy=None, required=False):
    from runbook_lib.lab.policy_language import Policy
    from runbook_lib.lab.request_keys import RequestContext

    context = RequestContext({"aws:principalarn": [caller.role_arn]}, frozenset({action.split(":")[0]}))
    policies = [Policy("the test resource policy", policy)] if policy is not None else []
    return enforcement.decide(caller, action, resource, context, resource_policy=policies,
                              resource_policy_required=required)


def _grant(principal, effect="Allow", action="secretsmanager:GetSecretValue"):
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Principal": {"AWS": principal},
                                                     "Action": action, "Resource": "*"}]}


def test_a_permissions_boundary_limits_and_its_deny_wins(moto_iam):
    limited = moto_iam(ALLOW_ALL_SECRETS, boundary={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]})
    assert _decide(limited, "secretsmanager:DescribeSecret", SECRET).allowed
    denied = _decide(limited, "secretsmanager:GetSecretValue", SECRET)
    assert (denied.allowed, denied.source, denied.explicit) == (False, "boundary", False)
    assert "because no permissions boundary allows the secretsmanager:GetSecretValue action" in denied.message(limited)
    explicit = _decide(limited, "secretsmanager:DeleteSecret", SECRET)
    assert (explicit.source, explicit.explicit) == ("boundary", True)


def test_a_session_policy_limits_the_role(moto_iam):
    caller = moto_iam(ALLOW_ALL_SECRETS, session_policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]})
    assert _decide(caller, "secretsmanager:DescribeSecret", SECRET).allowed
    denied = _decide(caller, "secretsmanager:GetSecretValue", SECRET)
    assert (denied.allowed, denied.source) == (False, "session")


def test_same_account_resource_policy_grants(moto_iam):
    nothing = moto_iam(None)
    session_arn, role_arn = nothing.arn, nothing.role_arn
    assert _decide(nothing, "secretsmanager:GetSecretValue", SECRET, _grant(session_arn)).allowed
    assert _decide(nothing, "secretsmanager:GetSecretValue", SECRET, _grant(role_arn)).allowed
    delegated = _decide(nothing, "secretsmanager:GetSecretValue", SECRET, _grant(f"arn:aws:iam::{ACCOUNT}:root"))
    assert (delegated.allowed, delegated.source) == (False, "identity")  # the account grant delegates to IAM
    bounded = moto_iam(None, boundary={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]})
    assert _decide(bounded, "secretsmanager:GetSecretValue", SECRET, _grant(bounded.arn)).allowed
    limited = _decide(bounded, "secretsmanager:GetSecretValue", SECRET, _grant(bounded.role_arn))
    assert (limited.allowed, limited.source) == (False, "boundary")  # a role grant stays within the boundary


def test_an_explicit_deny_in_the_resource_policy_wins_over_the_identity_allow(moto_iam):
    caller = moto_iam(ALLOW_ALL_SECRETS)
    denied = _decide(caller, "secretsmanager:GetSecretValue", SECRET, _grant("*", effect="Deny"))
    assert (denied.allowed, denied.explicit, denied.source) == (False, True, "resource")
    assert "with an explicit deny in a resource-based policy" in denied.message(caller)


def test_across_accounts_both_sides_must_allow(moto_iam):
    other = moto_iam(ALLOW_ALL_SECRETS, account="210987654321")
    bare = moto_iam(None, account="210987654321")
    root = "arn:aws:iam::210987654321:root"
    assert _decide(other, "secretsmanager:GetSecretValue", SECRET, _grant(root)).allowed
    assert _decide(bare, "secretsmanager:GetSecretValue", SECRET, _grant(root)).source == "identity"
    assert _decide(other, "secretsmanager:GetSecretValue", SECRET).source == "resource"


def test_a_kms_key_policy_must_allow_directly_or_by_delegating(moto_iam):
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    admin = moto_iam({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    named = moto_iam(None)
    policy = _grant(named.role_arn, action="kms:Decrypt")
    assert not _decide(admin, "kms:Decrypt", key, policy).allowed  # no root delegation: IAM cannot grant it
    assert _decide(named, "kms:Decrypt", key, policy).allowed
    delegated = _grant(f"arn:aws:iam::{ACCOUNT}:root", action="kms:*")
    assert _decide(admin, "kms:Decrypt", key, delegated).allowed
    assert not _decide(named, "kms:Decrypt", key, delegated).allowed


def test_principal_may_is_the_entry_point_for_the_runtime(moto_iam):
    logs = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:log-stream:s"
    writer = moto_iam({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/fn:*"}]})
    assert enforcement.principal_may(writer.role_arn, "logs:PutLogEvents", logs).allowed
    assert enforcement.principal_may(writer.arn, "logs:PutLogEvents", logs).allowed
    refused = enforcement.principal_may(writer.role_arn, "logs:DeleteLogGroup", logs)
    assert not refused.allowed and refused.source == "identity"
    assert not enforcement.principal_may(f"arn:aws:iam::{ACCOUNT}:role/missing", "logs:PutLogEvents", logs).allowed


# ------------------------------------------------------------------ conditions and resource policies, in the lab
def _session(lab, policy, *, boundary=None, tags=None, session_policy=None, policy_arns=None):
    name = f"lp-{uuid.uuid4().hex[:8]}"
    iam = lab.client("iam")
    extra = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    if boundary is not None:
        extra["PermissionsBoundary"] = iam.create_policy(PolicyName=f"{name}-boundary",
                                                         PolicyDocument=json.dumps(boundary))["Policy"]["Arn"]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT), **extra)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="scoped", PolicyDocument=json.dumps(policy))
    assume = {"RoleArn": arn, "RoleSessionName": "fn"}
    if session_policy:
        assume["Policy"] = json.dumps(session_policy)
    if policy_arns:
        assume["PolicyArns"] = [{"arn": a} for a in policy_arns]
    creds = lab.client("sts").assume_role(**assume)["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=lab.region), arn


def _secret(lab, prefix="lp", **extra):
    return lab.client("secretsmanager").create_secret(Name=f"{prefix}/{uuid.uuid4().hex[:8]}",
                                                      SecretString="v-" + uuid.uuid4().hex, **extra)


def _denied(client, method, **kwargs):
    with pytest.raises(client.exceptions.ClientError) as denied:
        getattr(client, method)(**kwargs)
    return _error(denied)


def test_a_deny_with_an_ip_address_condition_applies(enforcing):
    secret = _secret(enforcing)
    allow = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    for condition in ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}):
        session, _ = _session(enforcing, {"Version": "2012-10-17", "Statement": [allow, {
            "Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*", "Condition": condition}]})
        sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
        error = _denied(sm, "get_secret_value", SecretId=secret["ARN"])
        assert error["Code"] == "AccessDeniedException" and "explicit deny in an identity-based policy" in error["Message"]
        assert sm.describe_secret(SecretId=secret["ARN"])["ARN"] == secret["ARN"]


def test_date_conditions_on_the_current_time(enforcing):
    secret = _secret(enforcing)

    def allow_when(operator):
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*",
            "Condition": {operator: {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}

    expired, _ = _session(enforcing, allow_when("DateLessThan"))
    current, _ = _session(enforcing, allow_when("DateGreaterThan"))
    _denied(expired.client("secretsmanager", endpoint_url=enforcing.endpoint_url), "describe_secret",
            SecretId=secret["ARN"])
    assert current.client("secretsmanager", endpoint_url=enforcing.endpoint_url).describe_secret(
        SecretId=secret["ARN"])["Name"] == secret["Name"]


def test_a_deny_in_a_secrets_resource_policy_applies(enforcing):
    secret = _secret(enforcing)
    session, role_arn = _session(enforcing, ALLOW_ALL_SECRETS)
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.get_secret_value(SecretId=secret["ARN"])["ARN"] == secret["ARN"]
    enforcing.client("secretsmanager").put_resource_policy(SecretId=secret["ARN"], ResourcePolicy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": role_arn},
                                                 "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    error = _denied(sm, "get_secret_value", SecretId=secret["ARN"])
    assert "explicit deny in a resource-based policy" in error["Message"]


def test_a_secrets_resource_policy_alone_grants_its_named_role(enforcing):
    secret = _secret(enforcing)
    session, role_arn = _session(enforcing, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]})
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    _denied(sm, "describe_secret", SecretId=secret["ARN"])
    enforcing.client("secretsmanager").put_resource_policy(SecretId=secret["ARN"], ResourcePolicy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": role_arn},
                                                 "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]}))
    assert sm.describe_secret(SecretId=secret["ARN"])["ARN"] == secret["ARN"]


def test_a_permission_boundary_limits_in_the_lab(enforcing):
    secret = _secret(enforcing)
    session, _ = _session(enforcing, ALLOW_ALL_SECRETS, boundary={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]})
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.describe_secret(SecretId=secret["ARN"])["ARN"] == secret["ARN"]
    error = _denied(sm, "get_secret_value", SecretId=secret["ARN"])
    assert "because no permissions boundary allows the secretsmanager:GetSecretValue action" in error["Message"]


def test_session_policies_inline_and_managed_limit_the_session(enforcing):
    secret = _secret(enforcing)
    describe_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]}
    managed = enforcing.client("iam").create_policy(PolicyName=f"lp-session-{uuid.uuid4().hex[:6]}",
                                                    PolicyDocument=json.dumps(describe_only))["Policy"]["Arn"]
    for extra in ({"session_policy": describe_only}, {"policy_arns": [managed]}):
        session, _ = _session(enforcing, ALLOW_ALL_SECRETS, **extra)
        sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
        assert sm.describe_secret(SecretId=secret["ARN"])["ARN"] == secret["ARN"]
        assert "because no session policy allows" in _denied(sm, "get_secret_value", SecretId=secret["ARN"])["Message"]


def test_resource_request_and_principal_tag_conditions(enforcing):
    tagged = _secret(enforcing, Tags=[{"Key": "team", "Value": "app"}])
    untagged = _secret(enforcing)
    session, _ = _session(enforcing, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
        {"Effect": "Allow", "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "app"},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}}]}, tags={"team": "app"})
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.get_secret_value(SecretId=tagged["ARN"])["ARN"] == tagged["ARN"]
    _denied(sm, "get_secret_value", SecretId=untagged["ARN"])
    name = f"lp/tagged-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString="v-tag-0001", Tags=[{"Key": "team", "Value": "app"}])
    _denied(sm, "create_secret", Name=name + "-2", SecretString="v", Tags=[{"Key": "team", "Value": "web"}])
    _denied(sm, "create_secret", Name=name + "-3", SecretString="v",
            Tags=[{"Key": "team", "Value": "app"}, {"Key": "owner", "Value": "x"}])
    _denied(sm, "create_secret", Name=name + "-4", SecretString="v")


def test_the_secret_id_condition(enforcing):
    secret = _secret(enforcing)
    session, _ = _session(enforcing, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*",
         "Condition": {"StringEquals": {"secretsmanager:SecretId": secret["Name"]}}}]})
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.describe_secret(SecretId=secret["Name"])["ARN"] == secret["ARN"]
    _denied(sm, "describe_secret", SecretId=secret["ARN"])  # the key is the SecretId as sent


def test_an_unevaluable_condition_fails_closed_and_is_reported_once(enforcing):
    secret = _secret(enforcing)
    key = "secretsmanager:SecretPrimaryRegion"  # a real key the lab does not compute
    session, role = _session(enforcing, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*",
         "Condition": {"StringEquals": {key: "us-east-1"}}}]})
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    for _ in range(2):
        _denied(sm, "describe_secret", SecretId=secret["ARN"])
    label = f"inline policy scoped of role {role.split('/')[-1]}"
    assert {"policy": label, "key": key} in enforcing.unevaluated()
    assert enforcing.log_text().count(f"cannot evaluate {key} in {label}") == 1


def test_pass_role_is_checked_with_the_service_it_is_passed_to(enforcing):
    iam = enforcing.client("iam")
    target = iam.create_role(RoleName=f"lp-target-{uuid.uuid4().hex[:6]}",
                             AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    create = {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"}
    for service, allowed in (("ec2.amazonaws.com", False), ("lambda.amazonaws.com", True)):
        session, _ = _session(enforcing, {"Version": "2012-10-17", "Statement": [create, {
            "Effect": "Allow", "Action": "iam:PassRole", "Resource": target,
            "Condition": {"StringEquals": {"iam:PassedToService": service}}}]})
        lam = session.client("lambda", endpoint_url=enforcing.endpoint_url)
        spec = {"FunctionName": f"lp-pass-{uuid.uuid4().hex[:6]}", "Runtime": "python3.12", "Role": target,
                "Handler": "app.handler", "Code": {"ZipFile": buffer.getvalue()}}
        if allowed:
            assert lam.create_function(**spec)["Role"] == target
        else:
            assert "iam:PassRole" in _denied(lam, "create_function", **spec)["Message"]


def test_service_control_policies_bind_a_member_account_but_not_the_management_account(moto_iam):
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(AccountName="m", Email="m@example.com")["CreateAccountStatus"]["AccountId"]
    deny = org.create_policy(Name="no-deletes", Type="SERVICE_CONTROL_POLICY", Description="", Content=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "secretsmanager:DeleteSecret",
                                                 "Resource": "*"}]}))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=deny, TargetId=member)
    inside = moto_iam(ALLOW_ALL_SECRETS, account=member)
    secret = f"arn:aws:secretsmanager:us-east-1:{member}:secret:app/key-AbCdEf"
    assert _decide(inside, "secretsmanager:GetSecretValue", secret).allowed  # FullAWSAccess on the root
    denied = _decide(inside, "secretsmanager:DeleteSecret", secret)
    assert (denied.allowed, denied.explicit, denied.source) == (False, True, "scp")
    assert "with an explicit deny in a service control policy" in denied.message(inside)
    root = org.list_roots()["Roots"][0]["Id"]
    full = next(p["Id"] for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
                if p["Name"] == "FullAWSAccess")
    org.detach_policy(PolicyId=full, TargetId=root)
    org.detach_policy(PolicyId=full, TargetId=member)
    ceiling = _decide(inside, "secretsmanager:GetSecretValue", secret)
    assert (ceiling.allowed, ceiling.source) == (False, "scp")  # a level that allows nothing
    management = moto_iam(ALLOW_ALL_SECRETS)
    assert _decide(management, "secretsmanager:DeleteSecret", SECRET).allowed


# --- what the operator policies need the lab to evaluate (tests/test_escalation.py relies on it) ---
def test_an_untag_call_carries_the_keys_it_removes_as_aws_tag_keys():
    from runbook_lib.lab.identity import IAM_USER, Caller
    from runbook_lib.lab.operations import ApiCall
    from runbook_lib.lab.request_keys import request_context

    caller = Caller(IAM_USER, "arn:aws:iam::123456789012:user/u", "123456789012", "AKIAEXAMPLE", "AIDAEXAMPLE", "u")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    untag = request_context(caller, ApiCall("lambda", "UntagResource", {"Resource": arn, "TagKeys": ["a", "b"]},
                                            "us-east-1"), action_prefix="lambda")
    assert untag.lookup("aws:TagKeys") == ["a", "b"]
    tag = request_context(caller, ApiCall("lambda", "TagResource", {"Resource": arn, "Tags": {"c": "1"}},
                                          "us-east-1"), action_prefix="lambda")
    assert tag.lookup("aws:TagKeys") == ["c"]
    other = request_context(caller, ApiCall("lambda", "GetFunction", {"FunctionName": "f"}, "us-east-1"),
                            action_prefix="lambda")
    assert other.lookup("aws:TagKeys") is None  # not a tagging call: absent, as on AWS


def test_cloudfront_distribution_tags_are_read_for_resource_tag_conditions():
    from moto import mock_aws

    from runbook_lib.lab.resources import resource_tags

    with mock_aws():
        cloudfront = boto3.client("cloudfront", region_name="us-east-1")
        config = {"CallerReference": "r", "Comment": "", "Enabled": True, "Origins": {"Quantity": 1, "Items": [
            {"Id": "o", "DomainName": "example.com", "CustomOriginConfig": {
                "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                     "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {
                                         "Forward": "none"}}}}
        arn = cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
            "DistributionConfig": config, "Tags": {"Items": [{"Key": "team", "Value": "web"}]}})["Distribution"]["ARN"]
        assert resource_tags(arn) == {"team": "web"}
        assert resource_tags(arn.replace("distribution/", "origin-access-identity/")) is None
