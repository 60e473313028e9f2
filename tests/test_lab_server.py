"""The lab process: start, admin credentials, control plane, code download, Invoke hook."""

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

from runbook_lib.exceptions import LabError
from runbook_lib.lab import Lab

ROOT = Path(__file__).resolve().parents[1]
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _zip(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16  # world-readable, as Lambda's runtime user needs
            archive.writestr(info, text)
    return buffer.getvalue()


def _wait_active(lam, name):
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})


def _role(lab, name):
    iam = lab.client("iam")
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_admin_is_an_iam_user_with_working_credentials(lab):
    identity = lab.client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:iam::123456789012:user/lab-admin"
    assert lab.env["AWS_ENDPOINT_URL"] == lab.endpoint_url
    assert lab.env["AWS_DEFAULT_REGION"] == lab.env["AWS_REGION"] == "us-east-1"
    assert lab.endpoint_url.startswith("http://127.0.0.1:")


def test_health_and_runtime_config_switch(lab):
    health = lab.health()
    assert health["status"] == "ok" and health["enforce_iam"] is False
    lab.set_enforce_iam(True)
    try:
        assert lab.health()["enforce_iam"] is True
    finally:
        lab.set_enforce_iam(False)
    assert lab.health()["enforce_iam"] is False


def test_config_refuses_unknown_settings(lab):
    request = urllib.request.Request(lab.endpoint_url + "/_lab/config", data=b'{"colour": 1}',
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400


def test_moto_still_gives_an_unreachable_code_location():
    """moto's GetFunction Location points at a fake S3 host; the lab replaces it."""
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
        lam = boto3.client("lambda", region_name="us-east-1")
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role["Role"]["Arn"],
                            Handler="app.handler", Code={"ZipFile": _zip({"app.py": "x = 1"})})
        location = lam.get_function(FunctionName="f")["Code"]["Location"]
    assert location.startswith("https://awslambda-us-east-1-tasks.s3.")


def test_code_download_returns_exact_bytes_for_latest_version_and_layer(lab):
    lam = lab.client("lambda")
    role = _role(lab, "code-download-role")
    first = _zip({"app.py": "def handler(e, c):\n    return 1\n"})
    second = _zip({"app.py": "def handler(e, c):\n    return 2\n"})
    lam.create_function(FunctionName="code-dl", Runtime="python3.12", Role=role,
                        Handler="app.handler", Code={"ZipFile": first})
    _wait_active(lam, "code-dl")  # a new function is Pending: PublishVersion would conflict
    version = lam.publish_version(FunctionName="code-dl")["Version"]
    lam.update_function_code(FunctionName="code-dl", ZipFile=second)

    latest = lam.get_function(FunctionName="code-dl")["Code"]["Location"]
    published = lam.get_function(FunctionName="code-dl", Qualifier=version)["Code"]["Location"]
    assert latest.startswith(lab.endpoint_url + "/_lab/code/")
    assert bool(_fetch(latest) == second)
    assert bool(_fetch(published) == first)

    layer_zip = _zip({"python/shared_config.json": '{"k": "v"}'})
    layer = lam.publish_layer_version(LayerName="code-dl-layer", Content={"ZipFile": layer_zip})
    by_name = lam.get_layer_version(LayerName="code-dl-layer", VersionNumber=layer["Version"])
    by_arn = lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
    assert bool(_fetch(by_name["Content"]["Location"]) == layer_zip)
    assert bool(_fetch(by_arn["Content"]["Location"]) == layer_zip)


def test_code_download_needs_the_lab_token(lab):
    lam = lab.client("lambda")
    lam.create_function(FunctionName="code-token", Runtime="python3.12", Role=_role(lab, "code-token-role"),
                        Handler="app.handler", Code={"ZipFile": _zip({"app.py": "x = 1"})})
    location = lam.get_function(FunctionName="code-token")["Code"]["Location"]
    token = location.split("/_lab/code/")[1].split("/")[0]
    with pytest.raises(urllib.error.HTTPError) as caught:
        _fetch(location.replace(token, "not-the-token"))
    assert caught.value.code == 404


def test_code_downloads_are_not_recorded(lab):
    lam = lab.client("lambda")
    lam.create_function(FunctionName="code-quiet", Runtime="python3.12", Role=_role(lab, "code-quiet-role"),
                        Handler="app.handler", Code={"ZipFile": _zip({"app.py": "x = 1"})})
    _fetch(lam.get_function(FunctionName="code-quiet")["Code"]["Location"])
    lab.health()
    events = lab.client("cloudtrail").lookup_events(MaxResults=5)["Events"]
    assert [e["EventName"] for e in events][:1] == ["GetFunction"]


def test_invoke_goes_to_the_runtime_hook(lab):
    """Invoke is answered by runbook_lib.lab.runtime, or a clear error while it is missing."""
    lam = lab.client("lambda", config=__import__("botocore.config").config.Config(
        retries={"max_attempts": 1}))
    lam.create_function(FunctionName="invoke-hook", Runtime="python3.12", Role=_role(lab, "invoke-hook-role"),
                        Handler="app.handler",
                        Code={"ZipFile": _zip({"app.py": "def handler(e, c):\n    return {'ok': e}\n"})})
    _wait_active(lam, "invoke-hook")
    health = lab.health()
    if health["runtime"] != "ready":
        with pytest.raises(lam.exceptions.ServiceException) as caught:
            lam.invoke(FunctionName="invoke-hook", Payload=b'{"a": 1}')
        assert "runtime is missing" in str(caught.value)
        return
    answer = lam.invoke(FunctionName="invoke-hook", Payload=b'{"a": 1}')
    assert answer["StatusCode"] == 200
    assert json.loads(answer["Payload"].read()) == {"ok": {"a": 1}}
    assert lam.invoke(FunctionName="invoke-hook", InvocationType="Event")["StatusCode"] == 202


def test_lab_error_when_the_child_cannot_start():
    blocker = __import__("socket").socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        with pytest.raises(LabError) as caught:
            Lab(seed=False, port=blocker.getsockname()[1]).start()
    finally:
        blocker.close()
    assert "stopped while starting" in str(caught.value) and "in use" in str(caught.value)


def test_lab_error_after_the_child_dies():
    lab = Lab(seed=False).start()
    try:
        lab._process.kill()
        lab._process.wait()
        with pytest.raises(LabError) as caught:
            lab.check()
        assert "not running" in str(caught.value)
    finally:
        lab.stop()


def test_serve_prints_a_working_endpoint_and_export_line():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "runbook_lib.lab", "serve", "--no-seed"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        settings = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("export "):
                settings = dict(item.split("=", 1) for item in line.split()[1:])
                break
        assert set(settings) >= {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                 "AWS_DEFAULT_REGION"}
        session = boto3.Session(aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
                                region_name=settings["AWS_DEFAULT_REGION"])
        dynamodb = session.client("dynamodb", endpoint_url=settings["AWS_ENDPOINT_URL"])
        table = f"t-{uuid.uuid4().hex[:6]}"
        dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        assert table in dynamodb.list_tables()["TableNames"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_moto_still_lacks_layer_by_arn_and_a_docker_free_invoke():
    """Gaps the lab fills: GetLayerVersionByArn is not implemented, Invoke needs Docker."""
    from moto import mock_aws

    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        layer = lam.publish_layer_version(LayerName="l", Content={"ZipFile": _zip({"a": "b"})})
        with pytest.raises(Exception) as caught:
            lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
        assert "not been implemented" in str(caught.value)
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role["Role"]["Arn"],
                            Handler="app.handler",
                            Code={"ZipFile": _zip({"app.py": "def handler(e, c):\n    return 1\n"})})
        answer = lam.invoke(FunctionName="f", Payload=b"{}")
        assert answer.get("FunctionError") and b"docker" in answer["Payload"].read().lower()


def test_an_operation_moto_lacks_fails_fast_with_a_named_error(lab):
    """moto raises NotImplementedError (a bare 500 that botocore retries); the lab answers 501."""
    import time

    from botocore.exceptions import ClientError
    from runbook_lib.session import RETRY_CONFIG

    analyzer = lab.session().client("accessanalyzer", endpoint_url=lab.endpoint_url,
                                    region_name=lab.region, config=RETRY_CONFIG)
    started = time.monotonic()
    with pytest.raises(ClientError) as info:
        analyzer.validate_policy(policyDocument='{"Version": "2012-10-17", "Statement": []}',
                                 policyType="IDENTITY_POLICY")
    assert info.value.response["Error"]["Code"] == "NotImplemented"
    assert "accessanalyzer:ValidatePolicy" in info.value.response["Error"]["Message"] or \
        "ValidatePolicy" in info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert time.monotonic() - started < 2.0, "the error was retried"


def test_managed_policies_are_loaded_in_the_aws_partition_only(monkeypatch):
    """moto builds every partition's IAM backend on a key lookup; the lab keeps that cheap."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam import models as iam_models

    from runbook_lib.lab.server import load_managed_policies_in_aws_partition_only

    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setattr(iam_models.IAMBackend, "_init_aws_policies",
                        iam_models.IAMBackend._init_aws_policies)
    load_managed_policies_in_aws_partition_only()
    load_managed_policies_in_aws_partition_only()  # idempotent
    aws = iam_models.IAMBackend("aws", DEFAULT_ACCOUNT_ID)
    china = iam_models.IAMBackend("aws-cn", DEFAULT_ACCOUNT_ID)
    assert "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" in aws.managed_policies
    assert china.managed_policies == {}


def test_settings_are_validated_one_line_each_and_shown_in_health(lab):
    for bad, word in (({"trail_delay_seconds": -1}, "trail_delay_seconds"),
                      ({"trail_delay_seconds": "soon"}, "trail_delay_seconds"),
                      ({"cloudfront_deploy_seconds": True}, "cloudfront_deploy_seconds"),
                      ({"enforce_iam": "yes"}, "enforce_iam"), ({"colour": 1}, "colour")):
        request = urllib.request.Request(lab.endpoint_url + "/_lab/config", data=json.dumps(bad).encode(),
                                         method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        message = json.loads(caught.value.read())["message"]
        assert caught.value.code == 400 and word in message and "\n" not in message
    before = lab.config()
    try:
        assert lab.configure(trail_delay_seconds=1.5)["trail_delay_seconds"] == 1.5
        health = lab.health()
        assert (health["trail_delay_seconds"], health["cloudfront_deploy_seconds"]) == (1.5, 1.0)
    finally:
        lab.configure(**before)
    assert lab.config() == before


def test_lab_settings_apply_all_or_nothing():
    from runbook_lib.lab.settings import LabSettings

    settings = LabSettings()
    with pytest.raises(TypeError):
        settings.update({"trail_delay_seconds": 5, "cloudfront_deploy_seconds": -2})
    assert settings.to_dict() == {"enforce_iam": False, "trail_delay_seconds": 0.0, "cloudfront_deploy_seconds": 1.0,
                                  "function_state_seconds": 0.1}


def test_command_line_options_for_the_delays():
    import argparse

    from runbook_lib.lab.server import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--trail-delay", "120", "--cloudfront-deploy-seconds", "0"])
    assert (args.trail_delay, args.cloudfront_deploy_seconds) == (120.0, 0.0)
    assert parser.parse_args([]).trail_delay == 0.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--trail-delay", "-3"])
