"""The lab's Lambda runtime: real handler runs, warm state, Timeout, errors, logs, credentials.

Most tests go through the lab's real Invoke API (the session ``lab`` fixture); a few
drive :class:`LambdaRuntime` in-process against moto's backends (``mock_aws``) to see
the worker processes themselves. Node.js, exec wrappers, isolation, logs permissions and
function states have their own files (``test_lab_node_bootstrap.py``,
``test_lab_environment.py``, ``test_lab_function_logs.py``, ``test_lab_function_states.py``).
"""

import json
import os
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lab_functions import deploy, invoke, log_messages, make_role, package, tail, unique, wait_updated
from runbook_lib.lab.runtime import InvokeResult, LambdaRuntime, trust_allows_lambda

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})
#: What AWSLambdaBasicExecutionRole allows, inline (moto in-process loads no managed policies).
BASIC_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]}


def _deploy(lab, code: str, **config) -> str:
    return deploy(lab, {"app.py": code}, **config)


# --------------------------------------------------------------------------- through Invoke
def test_handler_really_runs_and_writes_with_its_role_credentials(lab):
    dynamodb = lab.client("dynamodb")
    table = unique("rt-table")
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
    role = make_role(lab.client("iam"), policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}]})
    name = _deploy(lab, code, role=role)
    response, result = invoke(lab, name, {"table": table})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": result["id"]}})["Item"]
    role_name = role.split("/")[-1]
    assert item["caller"]["S"] == f"arn:aws:sts::123456789012:assumed-role/{role_name}/{name}"


def test_function_calls_are_signed_as_its_role_session_with_the_lambda_user_agent(lab):
    name = _deploy(lab, "import boto3\ndef handler(event, context):\n    boto3.client('sts').get_caller_identity()\n")
    invoke(lab, name)
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
    name = _deploy(lab, code)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: invoke(lab, name)[1], range(3)))
    assert sorted(results) == [[1, 1], [2, 2], [3, 3]], "invocations overlapped in one environment"


def test_warm_invocation_keeps_module_state_and_a_config_change_recycles_it(lab):
    code = "COUNT = 0\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    return COUNT\n"
    name = _deploy(lab, code)
    lam = lab.client("lambda")
    assert [invoke(lab, name)[1] for _ in range(3)] == [1, 2, 3]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"CHANGED": "1"}})
    wait_updated(lab, name)
    assert invoke(lab, name)[1] == 1, "a configuration change must start a fresh environment"
    lam.update_function_code(FunctionName=name, ZipFile=package({"app.py": code.replace("COUNT = 0", "COUNT = 100")}))
    wait_updated(lab, name)
    assert invoke(lab, name)[1] == 101, "new code must run in a fresh environment"


def test_timeout_is_enforced_and_the_next_invocation_recovers(lab):
    code = """
import time
def handler(event, context):
    if event.get("sleep"):
        print("going to sleep")
        time.sleep(30)
    return "ok"
"""
    name = _deploy(lab, code, Timeout=1)
    started = time.monotonic()
    response, error = invoke(lab, name, {"sleep": True}, LogType="Tail")
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    log = tail(response)
    assert "going to sleep" in log and "Task timed out after 1.00 seconds" in log and "Status: timeout" in log
    assert invoke(lab, name)[1] == "ok"


def test_handler_exception_gives_function_error_with_lambda_error_shape(lab):
    name = _deploy(lab, "def handler(event, context):\n    raise ValueError('order total is negative')\n")
    response, error = invoke(lab, name)
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
    name = _deploy(lab, code)
    response, _ = invoke(lab, name, {"n": 7})
    request_id = response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid", "")
    logs = lab.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", streams[0]["logStreamName"])
    messages = log_messages(lab, name)
    assert messages[0].startswith("INIT_START Runtime Version: python:3.12")
    assert messages[1].startswith("START RequestId: ") and "Version: $LATEST" in messages[1]
    assert "processing 7" in messages
    assert any(m.startswith("[INFO]\t") and m.endswith("done with 7") for m in messages)
    assert messages[-2].startswith("END RequestId: ")
    assert messages[-1].startswith("REPORT RequestId: ") and "Billed Duration: " in messages[-1]
    assert "Init Duration: " in messages[-1]
    assert request_id and request_id in messages[1], "Invoke's RequestId is the one in the log"


def test_log_type_tail_returns_the_invocation_log(lab):
    name = _deploy(lab, "def handler(event, context):\n    print('tail me')\n    return 1\n")
    response, _ = invoke(lab, name, LogType="Tail")
    log = tail(response)
    assert "tail me" in log and "START RequestId" in log and "REPORT RequestId" in log


def test_handler_sees_env_runtime_variables_role_credentials_and_context(lab):
    code = """
import os, boto3
def handler(event, context):
    names = ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_REGION",
             "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_ENDPOINT_URL", "_HANDLER",
             "AWS_LAMBDA_INITIALIZATION_TYPE", "TZ", "LANG"]
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
    role = make_role(lab.client("iam"))
    name = _deploy(lab, code, role=role, MemorySize=256, Timeout=7,
                   Environment={"Variables": {"GREETING": "hello"}})
    _, seen = invoke(lab, name)
    assert seen["env"] == {
        "GREETING": "hello", "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_ENDPOINT_URL": lab.endpoint_url,
        "_HANDLER": "app.handler", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "TZ": ":UTC",
        "LANG": "en_US.UTF-8"}
    assert seen["key_prefix"] == "ASIA" and seen["has_token"] and seen["task_root_is_cwd"]
    assert seen["caller"] == f"arn:aws:sts::123456789012:assumed-role/{role.split('/')[-1]}/{name}"
    assert seen["context"]["function_name"] == name and seen["context"]["memory"] == 256
    assert seen["context"]["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert seen["context"]["group"] == f"/aws/lambda/{name}" and seen["context"]["stream_set"]
    assert 0 < seen["context"]["remaining"] <= 7000


def test_role_whose_trust_policy_lacks_lambda_fails_invoke(lab):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    name = _deploy(lab, "def handler(e, c):\n    return 1\n", role=make_role(lab.client("iam"), trust=trust))
    with pytest.raises(ClientError) as caught:
        invoke(lab, name)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "cannot be assumed by Lambda" in caught.value.response["Error"]["Message"]


def test_event_invocation_is_accepted_then_runs_in_the_background(lab):
    dynamodb = lab.client("dynamodb")
    table = unique("rt-async")
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    code = """
import boto3
def handler(event, context):
    boto3.client("dynamodb").put_item(TableName=event["table"], Item={"id": {"S": "async"}})
"""
    name = _deploy(lab, code)
    response = lab.client("lambda").invoke(FunctionName=name, InvocationType="Event",
                                           Payload=json.dumps({"table": table}))
    assert response["StatusCode"] == 202
    deadline = time.monotonic() + 15
    while "Item" not in dynamodb.get_item(TableName=table, Key={"id": {"S": "async"}}):
        assert time.monotonic() < deadline, "the Event invocation never ran"
        time.sleep(0.1)


def test_layers_python_folders_are_importable_after_the_function_code(lab):
    lam = lab.client("lambda")
    layer = lam.publish_layer_version(LayerName=unique("rt-layer"), Content={"ZipFile": package({
        "python/shared.py": "WHERE = 'layer'\n", "python/app.py": "raise ImportError\n",
        "python/lib/python3.12/site-packages/versioned.py": "WHERE = 'site-packages'\n"})})
    code = "import shared, versioned\ndef handler(e, c):\n    return [shared.WHERE, versioned.WHERE]\n"
    name = _deploy(lab, code, Layers=[layer["LayerVersionArn"]])
    assert invoke(lab, name)[1] == ["layer", "site-packages"]  # and the function's own app.py won


def test_versions_qualifiers_dry_run_and_unknown_functions(lab):
    lam = lab.client("lambda")
    name = _deploy(lab, "def handler(e, c):\n    return c.invoked_function_arn\n")
    version = lam.publish_version(FunctionName=name)["Version"]
    response, arn = invoke(lab, name, Qualifier=version)
    assert response["ExecutedVersion"] == version and arn.endswith(f":{name}:{version}")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=unique("rt-missing"))
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_runtimes_the_lab_cannot_run_are_refused_naming_what_it_runs(lab):
    name = deploy(lab, {"Handler.java": "class Handler {}"}, Runtime="java21", Handler="Handler::handleRequest")
    no_retry = lab.session().client("lambda", endpoint_url=lab.endpoint_url, config=NO_RETRY)
    with pytest.raises(ClientError) as caught:
        no_retry.invoke(FunctionName=name)
    assert caught.value.response["Error"]["Code"] == "InvalidRuntimeException"
    message = caught.value.response["Error"]["Message"]
    assert "java21" in message and "python3.8 to python3.14" in message and "nodejs22.x" in message


@pytest.mark.parametrize("module", ["pandas", "runbook_lib", "moto", "requests"])
def test_importing_a_module_the_package_does_not_ship_fails_as_on_lambda(lab, module):
    """The lab's own packages are not the function's: Lambda's Python runtime offers boto3 only."""
    name = _deploy(lab, f"import {module}\ndef handler(e, c):\n    return 1\n")
    response, error = invoke(lab, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert error == {"errorMessage": f"Unable to import module 'app': No module named '{module}'",
                     "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}
    log = tail(response)
    assert f"[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named '{module}'" in log
    assert "INIT_REPORT Init Duration: " in log and "Status: error\tError Type: Runtime.ImportModuleError" in log


def test_boto3_is_the_pinned_runtime_sdk_and_nothing_of_the_lab_is_on_the_path(lab):
    code = """
import os, sys, boto3, botocore
def handler(e, c):
    return {"boto3": boto3.__version__, "botocore": botocore.__version__, "file": os.path.realpath(boto3.__file__),
            "path": sys.path, "site_modules": sorted(m for m in sys.modules if m in ("site", "sitecustomize"))}
"""
    from pathlib import Path

    pins = dict(line.split("==") for line in (Path(__file__).parents[1] / "runbook_lib/lab/sdk/python-requirements.txt")
                .read_text().splitlines() if "==" in line)
    _, seen = invoke(lab, _deploy(lab, code))
    assert seen["boto3"] == pins["boto3"] and seen["botocore"] == pins["botocore"]
    assert "/lambda-runtimes/python/boto3/" in seen["file"]
    project = str(Path(__file__).parents[1])
    assert not [p for p in seen["path"] if "site-packages" in p and "/opt/python/" not in p]
    assert not [p for p in seen["path"] if p.startswith(project) and "/lambda-runtimes/" not in p]


def test_import_error_and_exit_are_reported_as_lambda_does(lab):
    name = _deploy(lab, "import sys\ndef handler(e, c):\n    sys.exit(3)\n")
    response, error = invoke(lab, name)
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]
    name = _deploy(lab, "def handler(e, c):\n    return 1\n", Handler="app.missing")
    response, error = invoke(lab, name)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'missing' missing on module 'app'"


def test_a_result_json_cannot_carry_is_a_marshal_error_and_decimals_are_numbers(lab):
    name = _deploy(lab, "import decimal\ndef handler(e, c):\n"
                        "    return decimal.Decimal('2.5') if e.get('decimal') else object()\n")
    response, error = invoke(lab, name)
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"] == "Unable to marshal response: Object of type object is not JSON serializable"
    assert invoke(lab, name, {"decimal": True})[1] == 2.5


def test_non_json_payload_is_refused_without_echoing_it(lab):
    name = _deploy(lab, "def handler(e, c):\n    return e\n")
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
    name = unique("local-fn")
    session.client("lambda").create_function(
        FunctionName=name, Runtime=extra.pop("Runtime", "python3.12"),
        Role=make_role(session.client("iam"), basic_logs=False, policy=BASIC_LOGS),
        Handler="app.handler", Code={"ZipFile": package({"app.py": code})}, **extra)
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


def test_a_missing_runtime_sdk_fails_closed_naming_it_and_the_install_command(moto_lambda, monkeypatch, tmp_path):
    session, runtime = moto_lambda
    monkeypatch.setenv("RUNBOOK_LAB_RUNTIMES", str(tmp_path / "nothing-installed"))
    result = _local_invoke(runtime, _local_function(session, "def handler(e, c):\n    return 1\n"))
    assert result.status_code == 502 and result.error_code == "InvalidRuntimeException"
    message = json.loads(result.payload)["Message"]
    assert "nothing-installed/python" in message and "runbook lab-runtimes" in message
    assert len(message.splitlines()) == 1


def test_without_node_a_nodejs_function_fails_closed_saying_so(moto_lambda, monkeypatch):
    from runbook_lib.lab import runtimes

    session, runtime = moto_lambda
    monkeypatch.setattr(runtimes, "_node_candidates", lambda: [])
    name = unique("local-node")
    session.client("lambda").create_function(
        FunctionName=name, Runtime="nodejs22.x", Handler="index.handler",
        Role=make_role(session.client("iam"), basic_logs=False, policy=BASIC_LOGS),
        Code={"ZipFile": package({"index.js": "exports.handler = async () => 1;\n"})})
    result = _local_invoke(runtime, name)
    assert result.status_code == 502 and result.error_code == "InvalidRuntimeException"
    assert json.loads(result.payload)["Message"] == \
        "node is not installed on this machine: the lab cannot run Node.js functions"


def test_an_init_that_never_finishes_is_a_timeout_and_the_environment_is_dropped(moto_lambda, monkeypatch):
    from runbook_lib.lab import environment

    session, runtime = moto_lambda
    monkeypatch.setattr(environment, "INIT_TIMEOUT_S", 0.5)
    layer = session.client("lambda").publish_layer_version(LayerName=unique("hang"), Content={"ZipFile": package(
        {"wrapper": "#!/bin/sh\nsleep 30\n"}, mode=0o755)})["LayerVersionArn"]
    name = _local_function(session, "def handler(e, c):\n    return 1\n", Layers=[layer],
                           Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    result = _local_invoke(runtime, name)
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == f"RequestId: {result.request_id} Error: init did not finish within 0.5 s"
    assert [e["pid"] for e in runtime.environments() if e["function_name"] == name] == [None]


def test_refusals_carry_the_aws_error_code_and_headers(moto_lambda):
    _, runtime = moto_lambda
    result = _local_invoke(runtime, "no-such-function")
    assert result.status_code == 404 and result.error_code == "ResourceNotFoundException"
    assert json.loads(result.payload)["Type"] == "User"
    assert result.headers()["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_success_headers_name_version_error_and_log():
    result = InvokeResult(200, b"{}", function_error="Unhandled", log_result="TG9n", executed_version="3")
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


def test_moto_still_accepts_runtimes_lambda_refuses_and_makes_functions_active_at_once():
    """Gaps the lab fills: moto creates a python3.7 function, Active and Successful immediately."""
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        lam = boto3.client("lambda", region_name="us-east-1")
        created = lam.create_function(FunctionName="old", Runtime="python3.7", Role=make_role(iam, basic_logs=False),
                                      Handler="app.handler", Code={"ZipFile": package({"app.py": "x = 1"})})
        updated = lam.update_function_configuration(FunctionName="old", Description="changed")
        assert created["State"] == "Active" and updated["LastUpdateStatus"] == "Successful"
        assert lam.get_function_configuration(FunctionName="old")["Runtime"] == "python3.7"
