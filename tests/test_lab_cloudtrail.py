"""CloudTrail event history: recording, identity, redaction, LookupEvents; request resolution."""

import json
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from runbook_lib.lab import cloudtrail, operations
from runbook_lib.lab.identity import resolve_caller

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
#: Lambda and the lab's own account may assume it: the tests assume these roles as lab-admin.
TRUST_ACCOUNT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"},
     "Action": "sts:AssumeRole"}]}


def _events(lab, **attributes):
    lookup = [{"AttributeKey": k, "AttributeValue": v} for k, v in attributes.items()]
    return lab.client("cloudtrail").lookup_events(LookupAttributes=lookup, MaxResults=50)["Events"]


def _session_client(lab, role_name, session_name, service):
    iam = lab.client("iam")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
    creds = lab.client("sts").assume_role(RoleArn=arn, RoleSessionName=session_name)["Credentials"]
    return boto3.client(service, endpoint_url=lab.endpoint_url, region_name=lab.region,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"]), creds["AccessKeyId"], arn


def test_moto_still_lacks_lookup_events():
    from moto import mock_aws

    with mock_aws():
        with pytest.raises(Exception) as caught:
            boto3.client("cloudtrail", region_name="us-east-1").lookup_events()
    assert "not been implemented" in str(caught.value)


def test_admin_call_is_attributed_to_the_iam_user(lab):
    name = f"ct-admin-{uuid.uuid4().hex[:6]}"
    lab.client("secretsmanager").create_secret(Name=name, SecretString=secrets.token_hex(8))
    [event] = _events(lab, ResourceName=name)
    record = json.loads(event["CloudTrailEvent"])
    assert event["Username"] == "lab-admin" and event["EventName"] == "CreateSecret"
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/lab-admin"
    assert record["userIdentity"]["accessKeyId"] == lab.env["AWS_ACCESS_KEY_ID"]
    assert record["eventSource"] == "secretsmanager.amazonaws.com" and record["readOnly"] is False
    assert record["awsRegion"] == "us-east-1" and record["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3" in record["userAgent"]


def test_role_session_call_is_attributed_to_the_assumed_role(lab):
    suffix = uuid.uuid4().hex[:6]
    sm, key_id, role_arn = _session_client(lab, f"ct-role-{suffix}", f"ct-session-{suffix}", "secretsmanager")
    sm.list_secrets()
    [event] = _events(lab, AccessKeyId=key_id)
    record = json.loads(event["CloudTrailEvent"])
    identity = record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::123456789012:assumed-role/ct-role-{suffix}/ct-session-{suffix}"
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer == {"type": "Role", "principalId": issuer["principalId"], "arn": role_arn,
                      "accountId": "123456789012", "userName": f"ct-role-{suffix}"}
    assert identity["principalId"] == f"{issuer['principalId']}:ct-session-{suffix}"
    assert identity["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    assert event["Username"] == f"ct-session-{suffix}"
    assert [e["EventId"] for e in _events(lab, Username=f"ct-session-{suffix}")] == [event["EventId"]]


def test_in_process_assumed_role_resolves_like_the_runtime_uses_it(lab):
    """The runtime assumes roles through moto's STS backend; identity reads the same store."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    iam_backends["123456789012"]["aws"].create_role(
        role_name="inproc-role", assume_role_policy_document=json.dumps(TRUST), path="/",
        permissions_boundary=None, description="", tags=[], max_session_duration="3600",
        linked_service=None)
    session = sts_backends["123456789012"]["aws"].assume_role(
        region_name="us-east-1", role_session_name="orders-api",
        role_arn="arn:aws:iam::123456789012:role/inproc-role", policy=None, duration=900, external_id=None)
    caller = resolve_caller(session.access_key_id)
    assert caller.kind == "AssumedRole" and caller.user_name == "orders-api"
    assert caller.arn == "arn:aws:sts::123456789012:assumed-role/inproc-role/orders-api"
    assert resolve_caller("AKIAUNKNOWNKEY000000").kind == "Unknown"  # credentials refuse it before anyone reads it


def test_get_secret_value_event_has_secret_id_and_no_secret(lab):
    value = "tok-" + secrets.token_hex(12)
    name = f"ct-gsv-{uuid.uuid4().hex[:6]}"
    sm = lab.client("secretsmanager")
    arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
    sm.get_secret_value(SecretId=name)
    sm.put_secret_value(SecretId=name, SecretString=value + "-2")
    events = _events(lab, ResourceName=name)
    assert [e["EventName"] for e in events] == ["PutSecretValue", "GetSecretValue", "CreateSecret"]
    assert all(bool(value in e["CloudTrailEvent"]) is False for e in events)
    get = json.loads(events[1]["CloudTrailEvent"])
    assert get["requestParameters"] == {"secretId": name}
    assert get["readOnly"] is True and get["responseElements"] is None
    assert get["resources"][0]["ARN"] == arn
    assert [e["EventName"] for e in _events(lab, ResourceName=arn)][-1] == "CreateSecret"
    create = json.loads(events[2]["CloudTrailEvent"])
    assert create["requestParameters"]["secretString"] == cloudtrail.HIDDEN


def test_lambda_events_hide_code_and_environment_values(lab):
    value = "pw-" + secrets.token_hex(10)
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"KEY = '{value}'\n")
    iam = lab.client("iam")
    role = iam.create_role(RoleName=f"ct-fn-{uuid.uuid4().hex[:6]}",
                           AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    name = f"ct-fn-{uuid.uuid4().hex[:6]}"
    lam = lab.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": buffer.getvalue()}, Environment={"Variables": {"DB_PASSWORD": value}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})  # Pending first
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"DB_PASSWORD": value}})
    events = [e for e in _events(lab, ResourceName=name) if e["EventName"] != "GetFunction"]  # the waiter's
    assert [e["EventName"] for e in events] == ["UpdateFunctionConfiguration", "CreateFunction"]
    assert all(bool(value in e["CloudTrailEvent"]) is False for e in events)
    create = json.loads(events[1]["CloudTrailEvent"])
    assert create["requestParameters"]["functionName"] == name
    assert create["requestParameters"]["environment"]["variables"] == cloudtrail.HIDDEN


def test_failed_call_records_error_code(lab):
    name = f"ct-missing-{uuid.uuid4().hex[:6]}"
    sm = lab.client("secretsmanager")
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=name)
    [event] = _events(lab, ResourceName=name)
    record = json.loads(event["CloudTrailEvent"])
    assert record["errorCode"] == "ResourceNotFoundException" and record["errorMessage"]


def test_lookup_filters_paging_and_time_range(lab):
    name = f"ct-page-{uuid.uuid4().hex[:6]}"
    sm = lab.client("secretsmanager")
    sm.create_secret(Name=name, SecretString="x" * 12)
    before = datetime.now(timezone.utc)
    time.sleep(1.1)
    for _ in range(5):
        sm.describe_secret(SecretId=name)
    ct = lab.client("cloudtrail")
    page = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
                            MaxResults=2)
    ids = [e["EventId"] for e in page["Events"]]
    while "NextToken" in page:
        page = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
                                MaxResults=2, NextToken=page["NextToken"])
        ids += [e["EventId"] for e in page["Events"]]
    assert len(ids) == len(set(ids)) == 6
    everything = _events(lab, ResourceName=name)
    assert [e["EventId"] for e in everything] == ids  # same order: newest first
    times = [e["EventTime"] for e in everything]
    assert times == sorted(times, reverse=True)
    recent = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
                              StartTime=before)["Events"]
    assert {e["EventName"] for e in recent} == {"DescribeSecret"} and len(recent) == 5
    older = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
                             EndTime=before)["Events"]
    assert [e["EventName"] for e in older] == ["CreateSecret"]
    none = ct.lookup_events(StartTime=datetime.now(timezone.utc) + timedelta(hours=1))["Events"]
    assert none == []
    by_source = _events(lab, EventSource="secretsmanager.amazonaws.com")
    assert by_source and {e["EventSource"] for e in by_source} == {"secretsmanager.amazonaws.com"}
    by_name = _events(lab, EventName="DescribeSecret")
    assert by_name and {e["EventName"] for e in by_name} == {"DescribeSecret"}


def test_lookup_rejects_bad_input(lab):
    ct = lab.client("cloudtrail")
    with pytest.raises(ct.exceptions.InvalidLookupAttributesException):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "Colour", "AttributeValue": "x"}])
    with pytest.raises(ct.exceptions.InvalidMaxResultsException):
        ct.lookup_events(MaxResults=51)


def test_event_store_is_bounded_and_thread_safe():
    import threading

    store = cloudtrail.EventStore(max_events=100)
    caller = resolve_caller("")
    call = operations.ApiCall(service="sts", operation="GetCallerIdentity", region="us-east-1")

    def work():
        for _ in range(50):
            event = cloudtrail.build_event(call, caller, cloudtrail.Outcome(200), when=datetime.now(timezone.utc),
                                           source_ip="127.0.0.1", user_agent="t", request_id="r")
            store.add(event, caller)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 100
    answer = store.lookup({"MaxResults": 50})
    assert len(answer["Events"]) == 50 and "NextToken" in answer


# ------------------------------------------------------------------ request resolution

def _captured(service: str, method: str, **kwargs):
    """Build the real HTTP request boto3 would send, and resolve it like the lab does."""
    client = boto3.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                          aws_access_key_id="AKIAEXAMPLEKEY000001", aws_secret_access_key="x")
    seen = {}

    def capture(request, **_):
        seen["request"] = request
        return AWSResponse(request.url, 599, {}, None)

    client.meta.events.register("before-send", capture)
    try:
        getattr(client, method)(**kwargs)
    except Exception:  # the fake 599 answer; only the request matters
        pass
    request = seen["request"]
    path, _, query = request.url.split("://", 1)[1].partition("/")[2].partition("?")
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else (body if isinstance(body, bytes) else body.read())
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    environ = {"REQUEST_METHOD": request.method, "PATH_INFO": "/" + path, "RAW_URI": "/" + path,
               "QUERY_STRING": query, "CONTENT_TYPE": headers.get("Content-Type", "")}
    for key, value in headers.items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    return operations.resolve(environ, body)


@pytest.mark.parametrize("service, method, kwargs, operation, params", [
    ("secretsmanager", "get_secret_value", {"SecretId": "app/a"}, "GetSecretValue", {"SecretId": "app/a"}),
    ("iam", "create_role", {"RoleName": "r", "AssumeRolePolicyDocument": "{}",
                            "Tags": [{"Key": "k", "Value": "v"}]},
     "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": "{}", "Tags": [{"Key": "k", "Value": "v"}]}),
    ("lambda", "get_function", {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f",
                                "Qualifier": "3"},
     "GetFunction", {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f", "Qualifier": "3"}),
    ("lambda", "get_layer_version_by_arn", {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1"},
     "GetLayerVersionByArn", {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1"}),
    ("lambda", "list_layers", {}, "ListLayers", {}),
    ("lambda", "invoke", {"FunctionName": "f", "InvocationType": "Event", "Payload": b"{}"},
     "Invoke", {"FunctionName": "f", "InvocationType": "Event"}),
    ("dynamodb", "get_item", {"TableName": "orders", "Key": {"order_id": {"S": "1"}}},
     "GetItem", {"TableName": "orders", "Key": {"order_id": {"S": "1"}}}),
    ("cloudfront", "get_distribution_config", {"Id": "E123"}, "GetDistributionConfig", {"Id": "E123"}),
    ("s3", "get_object", {"Bucket": "b", "Key": "dir/file.txt"}, "GetObject",
     {"Bucket": "b", "Key": "dir/file.txt"}),
])
def test_resolve_every_protocol(service, method, kwargs, operation, params):
    call = _captured(service, method, **kwargs)
    assert (call.service, call.operation) == (service, operation)
    assert {k: v for k, v in call.params.items() if k in params} == params
    assert call.region == "us-east-1" and call.access_key_id == "AKIAEXAMPLEKEY000001"


def test_resolve_rest_xml_payload_keeps_lambda_associations():
    config = {"CallerReference": "c", "Comment": "", "Enabled": True,
              "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "example.com"}]},
              "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                       "LambdaFunctionAssociations": {"Quantity": 1, "Items": [
                                           {"LambdaFunctionARN": "arn:aws:lambda:us-east-1:1:function:f:1",
                                            "EventType": "viewer-request"}]}}}
    call = _captured("cloudfront", "update_distribution", Id="E1", IfMatch="x", DistributionConfig=config)
    assert call.operation == "UpdateDistribution" and call.params["Id"] == "E1"
    items = call.params["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"]
    assert items[0]["EventType"] == "viewer-request"


def test_request_parameters_hide_sensitive_members():
    value = secrets.token_hex(8)
    call = _captured("secretsmanager", "create_secret", Name="n", SecretString=value, KmsKeyId="alias/k")
    parameters = cloudtrail.request_parameters(call)
    assert parameters["name"] == "n" and parameters["kmsKeyId"] == "alias/k"
    assert parameters["secretString"] == cloudtrail.HIDDEN
    assert bool(value in json.dumps(parameters)) is False
    kms = _captured("kms", "encrypt", KeyId="k", Plaintext=value.encode())
    assert bool(value in json.dumps(cloudtrail.request_parameters(kms))) is False
    iam = _captured("iam", "create_login_profile", UserName="u", Password=value)
    assert bool(value in json.dumps(cloudtrail.request_parameters(iam))) is False


def test_dynamodb_item_values_are_hidden_but_table_and_key_kept():
    value = secrets.token_hex(8)
    call = _captured("dynamodb", "put_item", TableName="orders",
                     Item={"order_id": {"S": "1"}, "note": {"S": value}})
    parameters = cloudtrail.request_parameters(call)
    assert parameters["tableName"] == "orders" and parameters["item"] == cloudtrail.HIDDEN
    assert bool(value in json.dumps(parameters)) is False
    get = cloudtrail.request_parameters(_captured("dynamodb", "get_item", TableName="orders",
                                                  Key={"order_id": {"S": "1"}}))
    assert get == {"tableName": "orders", "key": {"order_id": {"S": "1"}}}


def test_function_calls_are_attributed_to_its_role_session_once_per_call(lab):
    import io
    import zipfile

    if lab.health()["runtime"] != "ready":
        pytest.skip("runbook_lib.lab.runtime is not available")
    suffix = uuid.uuid4().hex[:6]
    name, role_name = f"ct-caller-{suffix}", f"ct-caller-role-{suffix}"
    secret = lab.client("secretsmanager").create_secret(Name=f"ct/fn-{suffix}", SecretString="v-fn-00001")
    role = lab.client("iam").create_role(RoleName=role_name,
                                         AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    code = ("import boto3\n"
            "def handler(event, context):\n"
            "    boto3.client('secretsmanager').get_secret_value(SecretId=event['id'])\n"
            "    return {'ok': True}\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # world-readable, as Lambda's runtime user needs
        archive.writestr(zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0)), code)
        archive.infolist()[0].external_attr = 0o644 << 16
    lam = lab.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": buffer.getvalue()}, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})  # Pending first
    for _ in range(2):
        answer = lam.invoke(FunctionName=name, Payload=json.dumps({"id": secret["ARN"]}).encode())
        assert answer.get("FunctionError") is None, answer["Payload"].read()[:300]
    events = [e for e in _events(lab, EventName="GetSecretValue")
              if json.loads(e["CloudTrailEvent"])["userIdentity"].get("arn", "").endswith(f"/{name}")]
    assert len(events) == 2
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["userIdentity"]["arn"] == f"arn:aws:sts::123456789012:assumed-role/{role_name}/{name}"
    assert record["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == role
    assert "exec-env/AWS_Lambda_python3.12" in record["userAgent"]
    assert record["requestParameters"] == {"secretId": secret["ARN"]}


# ------------------------------------------------------------------ event history as AWS keeps it
def test_one_lookup_attribute_only(lab):
    ct = lab.client("cloudtrail")
    with pytest.raises(ct.exceptions.InvalidLookupAttributesException):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"},
                                           {"AttributeKey": "Username", "AttributeValue": "lab-admin"}])


def test_a_next_token_works_only_with_the_parameters_that_made_it(lab):
    name = f"ct-token-{uuid.uuid4().hex[:6]}"
    sm = lab.client("secretsmanager")
    sm.create_secret(Name=name, SecretString="x" * 12)
    for _ in range(3):
        sm.describe_secret(SecretId=name)
    ct = lab.client("cloudtrail")
    by_name = [{"AttributeKey": "ResourceName", "AttributeValue": name}]
    first = ct.lookup_events(LookupAttributes=by_name, MaxResults=2)
    assert ct.lookup_events(LookupAttributes=by_name, MaxResults=2, NextToken=first["NextToken"])["Events"]
    with pytest.raises(ct.exceptions.InvalidNextTokenException):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DescribeSecret"}],
                         MaxResults=2, NextToken=first["NextToken"])
    with pytest.raises(ct.exceptions.InvalidNextTokenException):
        ct.lookup_events(LookupAttributes=by_name, NextToken="bm90LWEtdG9rZW4=")


def test_a_burst_of_lookups_is_throttled(lab):
    from botocore.config import Config

    ct = lab.client("cloudtrail", config=Config(retries={"total_max_attempts": 1}))
    codes = []
    for _ in range(6):
        try:
            ct.lookup_events(MaxResults=1)
            codes.append("ok")
        except ct.exceptions.ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert "ThrottlingException" in codes and codes.count("ok") <= 3
    time.sleep(1.1)
    ct.lookup_events(MaxResults=1)  # the next second has room again


def test_lookup_throttle_window_per_account_and_region():
    now = [100.0]
    throttle = cloudtrail.LookupThrottle(clock=lambda: now[0])
    assert [throttle.allow("1", "us-east-1") for _ in range(3)] == [True, True, False]
    assert throttle.allow("1", "eu-west-1") and throttle.allow("2", "us-east-1")
    now[0] += 1.0
    assert throttle.allow("1", "us-east-1")


def test_data_events_are_not_in_event_history(lab):
    import io
    import zipfile

    suffix = uuid.uuid4().hex[:6]
    ddb, s3 = lab.client("dynamodb"), lab.client("s3")
    table, bucket = f"ct-data-{suffix}", f"ct-data-{suffix}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item={"k": {"S": "1"}})
    ddb.get_item(TableName=table, Key={"k": {"S": "1"}})
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    s3.get_object(Bucket=bucket, Key="o")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    role = lab.client("iam").create_role(RoleName=f"ct-data-{suffix}",
                                         AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    lam = lab.client("lambda")
    lam.create_function(FunctionName=f"ct-data-{suffix}", Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": buffer.getvalue()})
    lam.get_waiter("function_active_v2").wait(FunctionName=f"ct-data-{suffix}", WaiterConfig={"Delay": 1})
    lam.invoke(FunctionName=f"ct-data-{suffix}")
    names = [e["EventName"] for name in (table, bucket, f"ct-data-{suffix}") for e in _events(lab, ResourceName=name)]
    assert {"CreateTable", "CreateBucket", "CreateFunction"} <= set(names)
    assert not {"PutItem", "GetItem", "PutObject", "GetObject", "Invoke"} & set(names)


def test_a_delivery_delay_holds_events_back_until_it_has_passed(lab):
    name = f"ct-delay-{uuid.uuid4().hex[:6]}"
    lab.configure(trail_delay_seconds=60)  # far longer than any loaded machine takes for the two calls
    try:
        lab.client("secretsmanager").create_secret(Name=name, SecretString="x" * 12)
        assert _events(lab, ResourceName=name) == []
        lab.configure(trail_delay_seconds=0.5)
        time.sleep(0.6)
        assert [e["EventName"] for e in _events(lab, ResourceName=name)] == ["CreateSecret"]
    finally:
        lab.configure(trail_delay_seconds=0)


def test_the_runbooks_polling_rides_out_the_delay_and_the_throttle():
    """A validation-style lookup (evidence.lookup_secret_events, the runbook's adaptive retries)
    against a lab that delivers events 4 s late while another reader of the same account's event
    history fills a second's two LookupEvents just before the runbook's second poll.

    Deterministic on a loaded machine: the first poll is sent right after the call (well inside
    the delay), and the throttle is provoked on the second poll, not left to timing.
    """
    from botocore.config import Config

    from runbook_lib import evidence
    from runbook_lib.lab import Lab
    from runbook_lib.session import Target

    with Lab(seed=False, trail_delay=4) as lab:
        target = Target.from_parameters("lab", region=lab.region, endpoint_url=lab.endpoint_url,
                                        session=lab.session())
        sm, cloudtrail_client = target.client("secretsmanager"), target.client("cloudtrail")
        neighbour = lab.client("cloudtrail", config=Config(retries={"total_max_attempts": 1}))
        polls, retried_for, answered = [], [], []

        def before_poll(**_):  # once per LookupEvents call, not per retry attempt
            polls.append(time.monotonic())
            if len(polls) == 2:  # the neighbour fills this second's two calls, until it is refused
                for _ in range(5):
                    try:
                        neighbour.lookup_events(MaxResults=1)
                    except neighbour.exceptions.ClientError:
                        break

        def after_attempt(response=None, **_):
            retried_for.append((response or (None, {}))[1].get("Error", {}).get("Code"))

        def after_poll(parsed=None, **_):
            answered.append(len((parsed or {}).get("Events", [])))

        cloudtrail_client.meta.events.register("before-call.cloudtrail.LookupEvents", before_poll)
        cloudtrail_client.meta.events.register("needs-retry.cloudtrail.LookupEvents", after_attempt)
        cloudtrail_client.meta.events.register("after-call.cloudtrail.LookupEvents", after_poll)
        start = datetime.now(timezone.utc) - timedelta(seconds=5)
        secret = sm.create_secret(Name="ct/polled", SecretString="v-polled-0001")
        sm.get_secret_value(SecretId=secret["ARN"])
        rows, polling = evidence.lookup_secret_events(
            cloudtrail_client, secret["ARN"], "ct/polled", start,
            datetime.now(timezone.utc) + timedelta(minutes=1), wait_seconds=30, poll_seconds=1)
    assert [r["eventName"] for r in rows] == ["GetSecretValue"]
    assert answered[0] == 0 and answered[-1] == 1  # not delivered at first, then delivered
    assert polling["satisfied"] is True and polling["attempts"] == len(answered) >= 2
    assert polling["waited_seconds"] >= 3
    assert "ThrottlingException" in retried_for  # throttled, retried by botocore, and still answered
