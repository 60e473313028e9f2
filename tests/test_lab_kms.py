"""KMS through Secrets Manager and Lambda: key policies, kms:ViaService, encryption context."""

import io
import json
import uuid
import zipfile

import boto3
import pytest

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com", "AWS": f"arn:aws:iam::{ACCOUNT}:root"},
     "Action": "sts:AssumeRole"}]}
ROOT_ADMINISTERS = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*", "Resource": "*"}
READ_SECRETS = {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                                              "lambda:GetFunctionConfiguration", "lambda:GetFunction"],
                "Resource": "*"}


def _key(lab, *statements):
    policy = {"Version": "2012-10-17", "Statement": [ROOT_ADMINISTERS, *statements]}
    return lab.client("kms").create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]


def _session(lab, *statements):
    name = f"kms-{uuid.uuid4().hex[:8]}"
    iam = lab.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [READ_SECRETS, *statements]}))
    creds = lab.client("sts").assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=lab.region), arn


def _secret(lab, key_arn=None):
    extra = {"KmsKeyId": key_arn} if key_arn else {}
    return lab.client("secretsmanager").create_secret(Name=f"kms/{uuid.uuid4().hex[:8]}",
                                                      SecretString="v-kms-" + uuid.uuid4().hex, **extra)


def _decrypt(via):
    return {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": via}}}


def test_moto_still_returns_a_customer_key_secret_without_kms():
    from moto import mock_aws

    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))["KeyMetadata"]["Arn"]
        sm = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        sm.create_secret(Name="s", SecretString="v-0001", KmsKeyId=key)
        assert bool(sm.get_secret_value(SecretId="s")["SecretString"] == "v-0001")  # a key policy allowing nobody


def test_a_customer_key_secret_without_kms_decrypt_is_denied(enforcing):
    key = _key(enforcing)
    secret = _secret(enforcing, key)
    session, _ = _session(enforcing)
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    with pytest.raises(sm.exceptions.ClientError) as denied:
        sm.get_secret_value(SecretId=secret["ARN"])
    assert denied.value.response["Error"] == {"Code": "AccessDeniedException", "Message": "Access to KMS is not allowed"}
    events = enforcing.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "Decrypt"}])["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["errorCode"] == "AccessDenied" and record["userIdentity"]["invokedBy"] == "secretsmanager.amazonaws.com"
    assert record["requestParameters"]["encryptionContext"] == {"SecretARN": secret["ARN"],
                                                                "SecretVersionId": secret["VersionId"]}
    assert record["resources"][0]["ARN"] == key


def test_decrypt_via_secrets_manager_with_the_key_policy_delegating_to_the_account(enforcing):
    key = _key(enforcing)
    secret = _secret(enforcing, key)
    allowed, _ = _session(enforcing, _decrypt("secretsmanager.us-east-1.amazonaws.com"))
    wrong_service, _ = _session(enforcing, _decrypt("lambda.us-east-1.amazonaws.com"))
    sm = allowed.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.get_secret_value(SecretId=secret["ARN"])["ARN"] == secret["ARN"]
    sm.put_secret_value(SecretId=secret["ARN"], SecretString="v-kms-second")  # GenerateDataKey, same grant
    other = wrong_service.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    with pytest.raises(other.exceptions.ClientError):
        other.get_secret_value(SecretId=secret["ARN"])


def test_a_key_policy_naming_the_role_allows_without_an_identity_grant(enforcing):
    session, role = _session(enforcing)
    key = _key(enforcing, {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"StringLike": {"kms:EncryptionContext:SecretARN": "*:secret:kms/*"},
                              "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                                               "kms:CallerAccount": ACCOUNT}}})
    secret = _secret(enforcing, key)
    sm = session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    assert sm.get_secret_value(SecretId=secret["ARN"])["ARN"] == secret["ARN"]
    elsewhere = enforcing.client("secretsmanager").create_secret(
        Name=f"other/{uuid.uuid4().hex[:8]}", SecretString="v-other", KmsKeyId=key)
    with pytest.raises(sm.exceptions.ClientError):  # the encryption context names another secret
        sm.get_secret_value(SecretId=elsewhere["ARN"])


def test_a_key_policy_without_the_account_stops_even_the_administrator(enforcing):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/lab-admin"},
         "Action": ["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey"], "Resource": "*"}]}
    key = enforcing.client("kms").create_key(Policy=json.dumps(policy),
                                             BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["Arn"]
    secret = _secret(enforcing, key)  # GenerateDataKey is granted to the administrator by name
    sm = enforcing.client("secretsmanager")
    with pytest.raises(sm.exceptions.ClientError) as denied:
        sm.get_secret_value(SecretId=secret["ARN"])
    assert denied.value.response["Error"]["Message"] == "Access to KMS is not allowed"


def test_an_identity_deny_on_decrypt_stops_even_the_aws_managed_key(enforcing):
    secret = _secret(enforcing)  # aws/secretsmanager
    plain, _ = _session(enforcing)
    denied_session, _ = _session(enforcing, {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})
    assert plain.client("secretsmanager", endpoint_url=enforcing.endpoint_url).get_secret_value(
        SecretId=secret["ARN"])["ARN"] == secret["ARN"]
    sm = denied_session.client("secretsmanager", endpoint_url=enforcing.endpoint_url)
    with pytest.raises(sm.exceptions.ClientError) as denied:
        sm.get_secret_value(SecretId=secret["ARN"])
    assert denied.value.response["Error"]["Message"] == "Access to KMS is not allowed"


def test_a_disabled_key_fails_decryption_whatever_the_policies(lab):
    key = _key(lab)
    secret = _secret(lab, key)
    kms, sm = lab.client("kms"), lab.client("secretsmanager")
    kms.disable_key(KeyId=key.split("/")[-1])  # moto's DisableKey takes the bare key id only
    try:
        with pytest.raises(sm.exceptions.ClientError) as failed:
            sm.get_secret_value(SecretId=secret["ARN"])
        assert failed.value.response["Error"]["Code"] == "DecryptionFailure"
    finally:
        kms.enable_key(KeyId=key.split("/")[-1])
    assert sm.get_secret_value(SecretId=secret["ARN"])["ARN"] == secret["ARN"]


def _function(lab, key_arn, value):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    role = lab.client("iam").create_role(RoleName=f"kms-fn-{uuid.uuid4().hex[:6]}",
                                         AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    name = f"kms-fn-{uuid.uuid4().hex[:6]}"
    lab.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                                         Code={"ZipFile": buffer.getvalue()}, KMSKeyArn=key_arn,
                                         Environment={"Variables": {"API_TOKEN": value}})
    return name


def test_lambda_shows_customer_key_environment_only_to_who_may_decrypt_it(enforcing):
    key = _key(enforcing)
    value = "tok-" + uuid.uuid4().hex
    name = _function(enforcing, key, value)
    blind, _ = _session(enforcing)
    seeing, _ = _session(enforcing, _decrypt("lambda.us-east-1.amazonaws.com"))
    lam = blind.client("lambda", endpoint_url=enforcing.endpoint_url)
    environment = lam.get_function_configuration(FunctionName=name)["Environment"]
    assert "Variables" not in environment and environment["Error"]["ErrorCode"] == "AccessDeniedException"
    assert "kms:Decrypt" in environment["Error"]["Message"] and bool(value in json.dumps(environment)) is False
    assert "Variables" not in lam.get_function(FunctionName=name)["Configuration"]["Environment"]
    visible = seeing.client("lambda", endpoint_url=enforcing.endpoint_url).get_function_configuration(
        FunctionName=name)["Environment"]
    assert bool(visible["Variables"]["API_TOKEN"] == value) is True


def test_moto_still_shows_customer_key_environment_to_anyone():
    from moto import mock_aws

    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))["KeyMetadata"]["Arn"]
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "x = 1\n")
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="app.h",
                            Code={"ZipFile": buffer.getvalue()}, KMSKeyArn=key, Environment={"Variables": {"K": "v1"}})
        assert lam.get_function_configuration(FunctionName="f")["Environment"] == {"Variables": {"K": "v1"}}



# -- enforcement off: the key's state is judged, no policy is evaluated ---------------------------------
def _in_process_secret(key_policy_statements, disable=False):
    """A customer-key secret in moto's in-process backends (inside ``mock_aws``): (caller, call)."""
    from runbook_lib.lab.identity import Caller
    from runbook_lib.lab.operations import ApiCall

    kms = boto3.client("kms", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": key_policy_statements}))
    if disable:
        kms.disable_key(KeyId=key["KeyMetadata"]["KeyId"])
    sm = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    arn = sm.create_secret(Name="s", SecretString="v-0001", KmsKeyId=key["KeyMetadata"]["Arn"])["ARN"]
    caller = Caller("IAMUser", f"arn:aws:iam::{ACCOUNT}:user/u", ACCOUNT, "AKIAEXAMPLE", "AIDAEXAMPLE", "u")
    return caller, ApiCall("secretsmanager", "GetSecretValue", {"SecretId": arn}, "us-east-1"), key


def test_without_enforcement_the_kms_use_is_allowed_without_evaluating_a_policy(monkeypatch):
    from moto import mock_aws

    from runbook_lib.lab import kms_enforcement

    with mock_aws():
        caller, call, key = _in_process_secret([])  # a key policy allowing nobody
        judged = kms_enforcement.secrets_manager_kms(caller, call)
        assert not judged.decision.allowed and kms_enforcement.secrets_manager_refusal(judged)[0] == "AccessDenied"

        def no_policy_evaluation(*_, **__):
            raise AssertionError("a policy was evaluated with enforcement off")

        monkeypatch.setattr(kms_enforcement, "decide", no_policy_evaluation)
        use = kms_enforcement.secrets_manager_kms(caller, call, judge=False)
    assert use.decision.allowed and kms_enforcement.secrets_manager_refusal(use) is None
    assert (use.action, use.key_arn, use.key_state) == ("kms:Decrypt", key["KeyMetadata"]["Arn"], "Enabled")
    assert use.encryption_context["SecretARN"] == call.params["SecretId"]  # the event CloudTrail records


def test_without_enforcement_a_disabled_key_still_fails_decryption():
    from moto import mock_aws

    from runbook_lib.lab import kms_enforcement

    with mock_aws():
        caller, call, _ = _in_process_secret([ROOT_ADMINISTERS], disable=True)
        use = kms_enforcement.secrets_manager_kms(caller, call, judge=False)
    assert use.key_state == "Disabled" and kms_enforcement.secrets_manager_refusal(use)[0] == "DecryptionFailure"
