import pytest
from botocore.exceptions import ClientError

from runbook_lib.exceptions import AwsCallError, InputError
from runbook_lib.session import Target, aws_call


def test_unknown_target_and_region_are_input_errors(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(InputError, match="target: 'prod' is not one of lab, aws"):
        Target.from_parameters("prod", region="us-east-1")
    with pytest.raises(InputError, match="unknown region 'us-east-42'"):
        Target.from_parameters("aws", region="us-east-42")
    with pytest.raises(InputError, match="no lab endpoint"):
        Target.from_parameters("lab", region="us-east-1")


def test_lab_endpoint_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    target = Target.from_parameters("lab", region="us-east-1")
    assert target.endpoint_url == "http://127.0.0.1:9"
    assert target.client("lambda").meta.endpoint_url == "http://127.0.0.1:9"
    assert target.client("lambda") is target.client("lambda")


def test_aws_call_names_call_resource_and_permission():
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not\nallowed"}}, "CreatePolicy")
    with pytest.raises(AwsCallError) as info:
        with aws_call("CreatePolicy", "LambdaSecretsManagerPolicy-orders-api", "iam:CreatePolicy"):
            raise error
    assert str(info.value) == ("CreatePolicy on LambdaSecretsManagerPolicy-orders-api failed: "
                               "AccessDenied (needs iam:CreatePolicy) - not allowed")
    assert info.value.access_denied


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_loopback_endpoint_is_one_line_at_once(monkeypatch):
    import time

    from runbook_lib.exceptions import LabError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    target = Target.from_parameters("lab", "us-east-1", endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(LabError, match=r"^GetCallerIdentity on sts: cannot reach http://127\.0\.0\.1:\d+/ "
                                       r"\(is the lab still running\?\)$"):
        target.caller_identity()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("endpoint, expected", [
    ("http://127.0.0.1:5000", True), ("http://localhost:5000", True), ("http://[::1]:5000", True),
    ("http://127.8.9.10", True), ("https://lambda.us-east-1.amazonaws.com", False), ("http://10.0.0.1:5000", False),
    ("", False)])
def test_only_loopback_endpoints_give_up_on_a_refused_connection(endpoint, expected):
    from runbook_lib.session import is_loopback

    assert is_loopback(endpoint) is expected


def test_sessions_share_one_parsed_model_loader_and_still_make_working_clients():
    from runbook_lib.session import new_session

    one, two = new_session(region_name="us-east-1"), new_session(region_name="eu-west-1")
    assert one._session.get_component("data_loader") is two._session.get_component("data_loader")
    assert two.client("lambda", aws_access_key_id="x", aws_secret_access_key="y").meta.region_name == "eu-west-1"


def test_warming_the_models_looks_for_no_credentials(monkeypatch, tmp_path):
    import botocore.credentials

    from runbook_lib.session import SERVICES, warm_service_models

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    looked = []
    monkeypatch.setattr(botocore.credentials.CredentialResolver, "load_credentials",
                        lambda self: looked.append(1))
    warm_service_models()
    assert looked == [] and "lambda" in SERVICES


def test_the_runner_does_not_load_boto3_before_it_needs_it():
    import subprocess
    import sys

    code = "import sys, runbook_lib.cli, runbook_lib.runner; print('boto3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
