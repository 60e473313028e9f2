"""Credentials as AWS checks them: unknown, inactive, deleted keys, tokens, signatures, clock."""

import json
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from runbook_lib.lab import credentials
from runbook_lib.lab.operations import ApiCall

ONCE = Config(retries={"total_max_attempts": 1})
TRUST_ACCOUNT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}


def _client(lab, service, key_id, secret, token=None):
    return boto3.client(service, endpoint_url=lab.endpoint_url, region_name=lab.region, config=ONCE,
                        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token)


def _error(exc_info):
    response = exc_info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def user_key(lab):
    iam = lab.client("iam")
    name = f"cred-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


# ------------------------------------------------------------------ moto's gap
def test_moto_still_accepts_unknown_inactive_keys_and_wrong_secrets(moto_endpoint):
    def client(service, key_id, secret):
        return boto3.client(service, endpoint_url=moto_endpoint, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    assert "SecretList" in client("secretsmanager", "AKIAUNKNOWN000000000", "x").list_secrets()
    iam = client("iam", "AKIAIOSFODNN7EXAMPLE", "x")
    iam.create_user(UserName="moto-inactive")
    key = iam.create_access_key(UserName="moto-inactive")["AccessKey"]
    iam.update_access_key(UserName="moto-inactive", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert "SecretList" in client("secretsmanager", key["AccessKeyId"], "not-the-secret").list_secrets()


# ------------------------------------------------------------------ refused, in each protocol
@pytest.mark.parametrize("service, method, kwargs, code, status", [
    ("sts", "get_caller_identity", {}, "InvalidClientTokenId", 403),
    ("secretsmanager", "list_secrets", {}, "UnrecognizedClientException", 400),
    ("dynamodb", "list_tables", {}, "UnrecognizedClientException", 400),
    ("lambda", "list_functions", {}, "UnrecognizedClientException", 403),
    ("s3", "list_buckets", {}, "InvalidAccessKeyId", 403),
    ("ec2", "describe_regions", {}, "AuthFailure", 401),
    ("cloudfront", "list_distributions", {}, "InvalidClientTokenId", 403),
])
def test_an_unknown_key_is_refused_with_the_services_own_error(lab, service, method, kwargs, code, status):
    client = _client(lab, service, "AKIAUNKNOWN000000000", "x")
    with pytest.raises(client.exceptions.ClientError) as refused:
        getattr(client, method)(**kwargs)
    assert _error(refused)[:2] == (code, status)


@pytest.mark.parametrize("service, method, code", [
    ("sts", "get_caller_identity", "SignatureDoesNotMatch"),
    ("secretsmanager", "list_secrets", "InvalidSignatureException"),
    ("lambda", "list_functions", "InvalidSignatureException"),
    ("s3", "list_buckets", "SignatureDoesNotMatch"),
])
def test_a_wrong_secret_fails_the_signature(lab, user_key, service, method, code):
    _, key_id, _ = user_key
    client = _client(lab, service, key_id, "0" * 40)
    with pytest.raises(client.exceptions.ClientError) as refused:
        getattr(client, method)()
    assert _error(refused)[0] == code
    if service != "s3":
        assert _error(refused)[2].startswith("The request signature we calculated does not match")


def test_the_right_secret_works_and_an_inactive_or_deleted_key_does_not(lab, user_key):
    name, key_id, secret = user_key
    sts = _client(lab, "sts", key_id, secret)
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    iam = lab.client("iam")
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Inactive")
    try:
        with pytest.raises(sts.exceptions.ClientError) as refused:
            sts.get_caller_identity()
        assert _error(refused) == ("InvalidClientTokenId", 403, "The security token included in the request is invalid.")
    finally:
        iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Active")
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    spare = iam.create_access_key(UserName=name)["AccessKey"]
    iam.delete_access_key(UserName=name, AccessKeyId=spare["AccessKeyId"])
    gone = _client(lab, "secretsmanager", spare["AccessKeyId"], spare["SecretAccessKey"])
    with pytest.raises(gone.exceptions.ClientError) as refused:
        gone.list_secrets()
    assert _error(refused)[0] == "UnrecognizedClientException"


def test_a_refused_call_is_in_cloudtrail_with_its_error_code(lab, user_key):
    name, key_id, _ = user_key
    client = _client(lab, "secretsmanager", key_id, "1" * 40)
    with pytest.raises(client.exceptions.ClientError):
        client.describe_secret(SecretId="cred/anything")
    events = lab.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "AccessKeyId", "AttributeValue": key_id}])["Events"]
    record = json.loads(next(e for e in events if e["EventName"] == "DescribeSecret")["CloudTrailEvent"])
    assert record["errorCode"] == "InvalidSignatureException"
    assert record["userIdentity"]["userName"] == name


def test_a_session_needs_its_own_token(lab):
    iam = lab.client("iam")
    role = iam.create_role(RoleName=f"cred-role-{uuid.uuid4().hex[:6]}",
                           AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
    creds = lab.client("sts").assume_role(RoleArn=role, RoleSessionName="cred-session")["Credentials"]
    good = _client(lab, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert good.get_caller_identity()["Arn"].endswith("/cred-session")
    for token in (None, creds["SessionToken"][:-4] + "AAAA"):
        bad = _client(lab, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], token)
        with pytest.raises(bad.exceptions.ClientError) as refused:
            bad.get_caller_identity()
        assert _error(refused)[0] == "InvalidClientTokenId"


def test_an_unsigned_call_is_refused_and_the_control_plane_is_not(lab):
    request = urllib.request.Request(lab.endpoint_url + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "secretsmanager.ListSecrets", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["__type"] == "MissingAuthenticationTokenException"
    with urllib.request.urlopen(lab.endpoint_url + "/_lab/health", timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "ok"
    with pytest.raises(urllib.error.HTTPError) as hidden:  # moto's unsigned dashboard and data dump
        urllib.request.urlopen(lab.endpoint_url + "/moto-api/data.json", timeout=10)
    assert hidden.value.code == 404


def test_presigned_urls_verify_and_a_tampered_or_version_2_one_does_not(lab):
    s3 = lab.client("s3", config=Config(signature_version="s3v4"))
    bucket = f"cred-presign-{uuid.uuid4().hex[:6]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"presigned body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a.txt"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"presigned body"
    tampered = url.replace("a.txt", "b.txt")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403 and b"SignatureDoesNotMatch" in refused.value.read()
    legacy = lab.client("s3", config=Config(signature_version="s3")).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a.txt"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(legacy, timeout=10)
    assert refused.value.code == 400 and b"Please use AWS4-HMAC-SHA256" in refused.value.read()


def test_a_request_signed_twenty_minutes_ago_is_refused(lab, monkeypatch):
    import botocore.auth

    skewed = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    client = lab.client("secretsmanager", config=ONCE)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.list_secrets()
    code, _, message = _error(refused)
    assert code == "InvalidSignatureException" and message.startswith("Signature expired:")


# ------------------------------------------------------------------ in-process: expiry, signatures, errors
def _signed_environ(key_id, secret, token=None, service="secretsmanager"):
    client = boto3.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                          aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token)
    seen = {}

    def capture(request, **_):
        seen["request"] = request
        return AWSResponse(request.url, 599, {}, None)

    client.meta.events.register("before-send", capture)
    try:
        client.list_secrets() if service == "secretsmanager" else client.get_caller_identity()
    except Exception:  # the stand-in 599 answer
        pass
    request = seen["request"]
    host, _, path = request.url.split("://", 1)[1].partition("/")
    body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
    environ = {"REQUEST_METHOD": request.method, "RAW_URI": "/" + path, "QUERY_STRING": "", "HTTP_HOST": host}
    for name, value in request.headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ, body


def test_an_expired_session_token_is_refused():
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
        sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        creds = sts.assume_role(RoleArn=role, RoleSessionName="cred-session", DurationSeconds=900)["Credentials"]
        environ, body = _signed_environ(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        assert credentials.authenticate(environ, body) is None
        later = creds["Expiration"].astimezone(timezone.utc) + timedelta(seconds=1)
        failure = credentials.authenticate(environ, body, now=later)
    assert failure.kind == credentials.EXPIRED_TOKEN
    json_call, query_call = ApiCall("secretsmanager", "ListSecrets", protocol="json"), \
        ApiCall("sts", "GetCallerIdentity", protocol="query")
    assert credentials.failure_error(json_call, failure) == (
        "ExpiredTokenException", "The security token included in the request is expired", 400)
    assert credentials.failure_error(query_call, failure)[0] == "ExpiredToken"


def test_a_malformed_authorization_header_is_refused():
    environ, body = _signed_environ("AKIAEXAMPLEKEY000001", "s3cret")
    environ["HTTP_AUTHORIZATION"] = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY000001/20260101/us-east-1"
    assert credentials.authenticate(environ, body).kind == credentials.MALFORMED
    environ["HTTP_AUTHORIZATION"] = "AWS AKIAEXAMPLEKEY000001:c2lnbmF0dXJl"  # Signature Version 2
    assert credentials.authenticate(environ, body).kind == credentials.UNSUPPORTED
    del environ["HTTP_AUTHORIZATION"]
    assert credentials.authenticate(environ, body) is None  # unsigned: the caller decides


# ------------------------------------------------------------------ the hardcoded key of the seeded function
@pytest.fixture(scope="module")
def own_seeded_lab():
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running


def test_orders_api_loses_dynamodb_when_its_hardcoded_key_is_deactivated(own_seeded_lab):
    lab = own_seeded_lab
    lam, iam = lab.client("lambda"), lab.client("iam")
    user = lab.seed_info["legacy_user"]
    [key] = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    before = lam.invoke(FunctionName="orders-api")
    assert "FunctionError" not in before and json.loads(before["Payload"].read())["statusCode"] == 200
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    try:
        after = lam.invoke(FunctionName="orders-api")
        payload = after["Payload"].read().decode()
        assert after.get("FunctionError") == "Unhandled"
        assert "UnrecognizedClientException" in payload and "Scan" in payload
    finally:
        iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    again = lam.invoke(FunctionName="orders-api")
    assert "FunctionError" not in again
