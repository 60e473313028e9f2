"""The lab's Lambda runtime: real handler runs, warm state, Timeout, errors, logs, credentials.

Most tests go through the lab's real Invoke API (the session ``lab`` fixture); a few
drive :class:`LambdaRuntime` in-process against moto's backends (``mock_aws``) to see
the worker processes themselves.
"""

import base64
import io
import json
import os
import re
import time
import uuid
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_lib.lab.runtime import InvokeResult, LambdaRuntime, trust_allows_lambda

TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _zip(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _role(iam, trust=TRUST_LAMBDA, policy=None) -> str:
    name = _name("rt-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return arn


def _function(lab, code: str, role: str | None = None, **extra) -> str:
    name = extra.pop("FunctionName", None) or _name("rt-fn")
    lab.client("lambda").create_function(
        FunctionName=name, Runtime=extra.pop("Runtime", "python3.12"),
        Role=role or _role(lab.client("iam")), Handler=extra.pop("Handler", "app.handler"),
        Code={"ZipFile": _zip({"app.py": code})}, **extra)
    return name


def _invoke(lab, name: str, event=None, **kwargs) -> tuple[dict, dict | None]:
    response = lab.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


# --------------------------------------------------------------------------- through Invoke
def test_handler_really_runs_and_writes_with_its_role_credentials(lab):
    dynamodb = lab.client("dynamodb")
    table = _name("rt-table")
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    code = """
import os, boto3
def handler(event, context):
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    boto3.client("dynamodb").put_item(TableName=event["table"], Item={
        "id": {"S": context.aws_request_id}, "caller": {"S": caller}})
    return {"id": context.aws_request_id}
"""
    role = _role(lab.client("iam"), policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}]})
    name = _function(lab, code, role=role)
    response, result = _invoke(lab, name, {"table": table})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": result["id"]}})["Item"]
    role_name = role.split("/")[-1]
    assert item["caller"]["S"] == f"arn:aws:sts::123456789012:assumed-role/{role_name}/{name}"


def test_function_calls_are_signed_as_its_role_session_with_the_lambda_user_agent(lab):
    code = """
import boto3
def handler(event, context):
    boto3.client("sts").get_caller_identity()
"""
    name = _function(lab, code)
    _invoke(lab, name)
    events = lab.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "Username", "AttributeValue": name}])["Events"]
    [event] = [json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == "GetCallerIdentity"]
    assert event["userIdentity"]["type"] == "AssumedRole"
    assert event["userIdentity"]["arn"].endswith(f"/{name}")
    assert "exec-env/AWS_Lambda_python3.12" in event["userAgent"]


def test_concurrent_invocations_share_one_environment_one_at_a_time(lab):
    from concurrent.futures import ThreadPoolExecutor

    code = """
import time
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    seen = COUNT
    time.sleep(0.2)
    return [seen, COUNT]
"""
    name = _function(lab, code)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: _invoke(lab, name)[1], range(3)))
    assert sorted(results) == [[1, 1], [2, 2], [3, 3]], "invocations overlapped in one environment"


def test_warm_invocation_keeps_module_state_and_a_config_change_recycles_it(lab):
    code = """
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return COUNT
"""
    name = _function(lab, code)
    assert [_invoke(lab, name)[1] for _ in range(3)] == [1, 2, 3]
    lab.client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"CHANGED": "1"}})
    assert _invoke(lab, name)[1] == 1, "a configuration change must start a fresh environment"
    lab.client("lambda").update_function_code(
        FunctionName=name, ZipFile=_zip({"app.py": code.replace("COUNT = 0", "COUNT = 100")}))
    assert _invoke(lab, name)[1] == 101, "new code must run in a fresh environment"


def test_timeout_is_enforced_and_the_next_invocation_recovers(lab):
    code = """
import time
def handler(event, context):
    if event.get("sleep"):
        print("going to sleep")
        time.sleep(30)
    return "ok"
"""
    name = _function(lab, code, Timeout=1)
    started = time.monotonic()
    response, error = _invoke(lab, name, {"sleep": True}, LogType="Tail")
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "going to sleep" in tail and "Task timed out after 1.00 seconds" in tail
    assert "Status: timeout" in tail
    assert _invoke(lab, name)[1] == "ok"


def test_handler_exception_gives_function_error_with_lambda_error_shape(lab):
    code = """
def handler(event, context):
    raise ValueError("order total is negative")
"""
    name = _function(lab, code)
    response, error = _invoke(lab, name)
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "order total is negative"
    assert any("app.py" in frame for frame in error["stackTrace"])


def test_output_lands_in_the_function_log_group_with_start_end_report(lab):
    code = """
import logging
logging.getLogger().setLevel(logging.INFO)
def handler(event, context):
    print("processing", event["n"])
    logging.info("done with %s", event["n"])
    return event["n"]
"""
    name = _function(lab, code)
    response, _ = _invoke(lab, name, {"n": 7})
    request_id = response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid", "")
    logs = lab.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", streams[0]["logStreamName"])
    messages = [e["message"] for e in logs.get_log_events(
        logGroupName=f"/aws/lambda/{name}", logStreamName=streams[0]["logStreamName"])["events"]]
    assert messages[0].startswith("INIT_START")
    assert messages[1].startswith("START RequestId: ") and "Version: $LATEST" in messages[1]
    assert "processing 7" in messages
    assert any(m.startswith("[INFO]\t") and m.endswith("done with 7") for m in messages)
    assert messages[-2].startswith("END RequestId: ")
    assert messages[-1].startswith("REPORT RequestId: ") and "Billed Duration: " in messages[-1]
    assert "Init Duration: " in messages[-1]
    assert request_id and request_id in messages[1], "Invoke's RequestId is the one in the log"


def test_log_type_tail_returns_the_invocation_log(lab):
    name = _function(lab, "def handler(event, context):\n    print('tail me')\n    return 1\n")
    response, _ = _invoke(lab, name, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "tail me" in tail and "START RequestId" in tail and "REPORT RequestId" in tail


def test_handler_sees_env_runtime_variables_role_credentials_and_context(lab):
    code = """
import os, boto3
def handler(event, context):
    names = ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_REGION",
             "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_ENDPOINT_URL", "_HANDLER"]
    return {
        "env": {n: os.environ.get(n) for n in names},
        "key_prefix": os.environ["AWS_ACCESS_KEY_ID"][:4],
        "has_token": bool(os.environ.get("AWS_SESSION_TOKEN")),
        "task_root_is_cwd": os.environ["LAMBDA_TASK_ROOT"] == os.getcwd(),
        "caller": boto3.client("sts").get_caller_identity()["Arn"],
        "context": {"function_name": context.function_name,
                    "memory": int(context.memory_limit_in_mb),
                    "arn": context.invoked_function_arn,
                    "group": context.log_group_name,
                    "stream_set": bool(context.log_stream_name),
                    "remaining": context.get_remaining_time_in_millis()},
    }
"""
    role = _role(lab.client("iam"))
    name = _function(lab, code, role=role, MemorySize=256, Timeout=7,
                     Environment={"Variables": {"GREETING": "hello"}})
    _, seen = _invoke(lab, name)
    assert seen["env"] == {
        "GREETING": "hello", "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_ENDPOINT_URL": lab.endpoint_url,
        "_HANDLER": "app.handler"}
    assert seen["key_prefix"] == "ASIA" and seen["has_token"] and seen["task_root_is_cwd"]
    assert seen["caller"] == f"arn:aws:sts::123456789012:assumed-role/{role.split('/')[-1]}/{name}"
    assert seen["context"]["function_name"] == name and seen["context"]["memory"] == 256
    assert seen["context"]["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert seen["context"]["group"] == f"/aws/lambda/{name}" and seen["context"]["stream_set"]
    assert 0 < seen["context"]["remaining"] <= 7000


def test_role_whose_trust_policy_lacks_lambda_fails_invoke(lab):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    name = _function(lab, "def handler(e, c):\n    return 1\n", role=_role(lab.client("iam"), trust=trust))
    with pytest.raises(ClientError) as caught:
        _invoke(lab, name)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "cannot be assumed by Lambda" in caught.value.response["Error"]["Message"]


def test_event_invocation_is_accepted_then_runs_in_the_background(lab):
    dynamodb = lab.client("dynamodb")
    table = _name("rt-async")
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    code = """
import boto3
def handler(event, context):
    boto3.client("dynamodb").put_item(TableName=event["table"], Item={"id": {"S": "async"}})
"""
    name = _function(lab, code)
    response = lab.client("lambda").invoke(FunctionName=name, InvocationType="Event",
                                           Payload=json.dumps({"table": table}))
    assert response["StatusCode"] == 202
    deadline = time.monotonic() + 15
    while "Item" not in dynamodb.get_item(TableName=table, Key={"id": {"S": "async"}}):
        assert time.monotonic() < deadline, "the Event invocation never ran"
        time.sleep(0.1)


def test_layers_python_folder_is_importable_after_the_function_code(lab):
    lam = lab.client("lambda")
    layer = lam.publish_layer_version(
        LayerName=_name("rt-layer"), Content={"ZipFile": _zip({
            "python/shared.py": "WHERE = 'layer'\n", "python/app.py": "raise ImportError\n"})})
    code = "import shared\ndef handler(e, c):\n    return shared.WHERE\n"
    name = _function(lab, code, Layers=[layer["LayerVersionArn"]])
    assert _invoke(lab, name)[1] == "layer"  # and the function's own app.py won over the layer's


def test_versions_qualifiers_dry_run_and_unknown_functions(lab):
    lam = lab.client("lambda")
    name = _function(lab, "def handler(e, c):\n    return c.invoked_function_arn\n")
    version = lam.publish_version(FunctionName=name)["Version"]
    response, arn = _invoke(lab, name, Qualifier=version)
    assert response["ExecutedVersion"] == version and arn.endswith(f":{name}:{version}")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=_name("rt-missing"))
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_non_python_runtimes_are_refused_clearly(lab):
    name = _function(lab, "exports.handler = async () => 1;", Runtime="nodejs20.x",
                     Handler="index.handler")
    no_retry = lab.session().client("lambda", endpoint_url=lab.endpoint_url,
                                    config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    with pytest.raises(ClientError) as caught:
        no_retry.invoke(FunctionName=name)
    assert caught.value.response["Error"]["Code"] == "InvalidRuntimeException"
    assert "python3.x" in caught.value.response["Error"]["Message"]


def test_import_error_and_exit_are_reported_as_lambda_does(lab):
    name = _function(lab, "import not_installed_anywhere\ndef handler(e, c):\n    return 1\n")
    response, error = _invoke(lab, name)
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ImportModuleError"
    name = _function(lab, "import sys\ndef handler(e, c):\n    sys.exit(3)\n")
    response, error = _invoke(lab, name)
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_non_json_payload_is_refused_without_echoing_it(lab):
    name = _function(lab, "def handler(e, c):\n    return e\n")
    with pytest.raises(ClientError) as caught:
        lab.client("lambda").invoke(FunctionName=name, Payload=b"not-json-planted-value")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert ("planted" in str(caught.value)) is False


# --------------------------------------------------------------------------- in-process
@pytest.fixture
def moto_lambda(monkeypatch):
    """moto in this process: functions created with boto3, run by a local LambdaRuntime."""
    from moto import mock_aws

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        runtime = LambdaRuntime("http://127.0.0.1:9")
        yield session, runtime
        runtime.shutdown()


def _local_function(session, code: str, **extra) -> str:
    name = _name("local-fn")
    role = _role(session.client("iam"))
    session.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": code})}, **extra)
    return name


def _local_invoke(runtime, name, **kwargs) -> InvokeResult:
    return runtime.invoke(account_id="123456789012", region="us-east-1", function_name=name, **kwargs)


def test_one_warm_worker_per_version_stopped_on_shutdown(moto_lambda):
    session, runtime = moto_lambda
    name = _local_function(session, "import os\ndef handler(e, c):\n    return os.getpid()\n")
    first = json.loads(_local_invoke(runtime, name).payload)
    second = json.loads(_local_invoke(runtime, name).payload)
    assert first == second, "a warm invocation must reuse the worker"
    [environment] = [e for e in runtime.environments() if e["function_name"] == name]
    assert environment["pid"] == first and environment["invocations"] == 2
    runtime.shutdown()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the pid disappears once the worker was reaped
            os.kill(first, 0)
            time.sleep(0.05)
    refused = _local_invoke(runtime, name)
    assert refused.status_code == 503 and refused.error_code == "ServiceException"


def test_refusals_carry_the_aws_error_code_and_headers(moto_lambda):
    _, runtime = moto_lambda
    result = _local_invoke(runtime, "no-such-function")
    assert result.status_code == 404 and result.error_code == "ResourceNotFoundException"
    assert json.loads(result.payload)["Type"] == "User"
    assert result.headers()["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_success_headers_name_version_error_and_log():
    result = InvokeResult(200, b"{}", function_error="Unhandled", log_result="TG9n",
                          executed_version="3")
    headers = result.headers()
    assert headers["X-Amz-Executed-Version"] == "3"
    assert headers["X-Amz-Function-Error"] == "Unhandled" and headers["X-Amz-Log-Result"] == "TG9n"
    assert "x-amzn-ErrorType" not in headers


@pytest.mark.parametrize("statement, allowed", [
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}, True),
    ({"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "edgelambda.amazonaws.com"]},
      "Action": ["sts:AssumeRole"]}, True),
    ({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}, False),
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:TagSession"}, False),
    ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}, False),
])
def test_trust_policy_check(statement, allowed):
    assert trust_allows_lambda({"Version": "2012-10-17", "Statement": [statement]}) is allowed


def test_an_explicit_deny_of_lambda_wins_over_an_allow():
    allow = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    deny = dict(allow, Effect="Deny")
    assert trust_allows_lambda(json.dumps({"Statement": [allow, deny]})) is False
