"""Function helpers: deterministic packages, package checks, config comparison, restore (moto)."""

import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from runbook_lib import functions
from runbook_lib.exceptions import InputError
from runbook_lib.handlers import PACKAGE_CONFIG_FILE


def test_reference_package_is_deterministic_and_holds_an_arn_not_a_value():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/x/config-AbCdEf"
    one = functions.build_reference_package(arn, "us-east-1")
    assert one == functions.build_reference_package(arn, "us-east-1")
    assert functions.code_sha256(one) != functions.code_sha256(functions.build_reference_package(arn + "x", "us-east-1"))
    with zipfile.ZipFile(io.BytesIO(one)) as zf:
        assert sorted(zf.namelist()) == sorted([PACKAGE_CONFIG_FILE, "reference_handler.py"])
        config = json.loads(zf.read(PACKAGE_CONFIG_FILE))
    assert config == {"SECRET_ID": arn, "region": "us-east-1", "environment": {}}


def test_read_code_package(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        functions.read_code_package(str(tmp_path / "missing.zip"), "app.handler")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pkg/app.py", "def handler(e, c): pass\n")
    path = tmp_path / "p.zip"
    path.write_bytes(buf.getvalue())
    assert functions.read_code_package(str(path), "pkg.app.handler") == buf.getvalue()
    with pytest.raises(InputError, match="lacks the handler module app.py"):
        functions.read_code_package(str(path), "app.handler")


def test_config_differences_compare_environment_exactly():
    base = {"Handler": "app.handler", "Role": "r", "Environment": {"Variables": {"A": "1"}}, "Layers": []}
    assert functions.config_differences(base, base) == []
    changed = {**base, "Environment": {"Variables": {"A": "2"}}, "Handler": "x.handler"}
    assert functions.config_differences(changed, base) == ["Handler", "Environment"]


def test_restore_version_puts_code_and_configuration_back(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        original = functions.build_reference_package("arn:one", "us-east-1")
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": original}, Environment={"Variables": {"A": "1", "B": "2"}})
        version = lam.publish_version(FunctionName="f")["Version"]
        functions.deploy_zip(lam, "f", functions.build_reference_package("arn:two", "us-east-1"))
        functions.update_configuration(lam, "f", variables={"A": "1"}, handler="reference_handler.handler")
        monkeypatch.setattr(functions, "version_code", lambda l, n, v: original)
        functions.restore_version(lam, "f", version)
        live = functions.get_configuration(lam, "f")
        assert live["CodeSha256"] == functions.code_sha256(original)
        assert functions.environment(live) == {"A": "1", "B": "2"} and live["Handler"] == "app.handler"
        with pytest.raises(InputError, match="function 'nope' not found"):
            functions.get_configuration(lam, "nope")


@pytest.mark.parametrize("runtime, handler, files", [
    ("nodejs20.x", "index.handler", ["index.js", "index.mjs", "index.cjs"]),
    ("nodejs20.x", "src/api.routes.get", ["src/api.js", "src/api.mjs", "src/api.cjs"]),
    ("python3.12", "pkg.app.handler", ["pkg/app.py", "pkg/app/__init__.py"]),
    ("provided.al2023", "anything", ["bootstrap"]),
    ("java21", "com.example.Handler::handle", []),
])
def test_handler_files_follow_the_runtime(runtime, handler, files):
    assert functions.handler_files(handler, runtime) == files


def test_a_node_package_with_index_mjs_or_a_nested_module_is_accepted(tmp_path):
    for member, handler in (("index.mjs", "index.handler"), ("src/api.cjs", "src/api.handler")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(member, "export const handler = async () => 1;\n")
        path = tmp_path / "node.zip"
        path.write_bytes(buf.getvalue())
        assert functions.read_code_package(str(path), handler, "nodejs20.x") == buf.getvalue()
        with pytest.raises(InputError):
            functions.read_code_package(str(path), "other.handler", "nodejs20.x")


class _UpdatedWaiter:
    """``get_waiter("function_updated")`` whose waits record their config and fail ``failures`` times first."""

    def __init__(self, endpoint_url, failures=0):
        self.meta = type("Meta", (), {"endpoint_url": endpoint_url})()
        self.configs, self.failures = [], failures

    def get_waiter(self, name):
        assert name == "function_updated"
        return self

    def wait(self, FunctionName, WaiterConfig):
        from botocore.exceptions import WaiterError

        self.configs.append(WaiterConfig)
        if self.failures:
            self.failures -= 1
            raise WaiterError(name="FunctionUpdated", reason="Max attempts exceeded", last_response={})


def test_waiting_for_an_update_on_the_lab_polls_every_fifty_milliseconds_for_the_same_two_seconds():
    lam = _UpdatedWaiter("http://127.0.0.1:41231", failures=1)
    functions.wait_updated(lam, "f")
    assert lam.configs == [{"Delay": 0.05, "MaxAttempts": 40}, {"Delay": 2, "MaxAttempts": 150}]


def test_waiting_for_an_update_on_aws_polls_at_a_quarter_second_then_two():
    lam = _UpdatedWaiter("https://lambda.us-east-1.amazonaws.com", failures=1)
    functions.wait_updated(lam, "f")
    assert lam.configs == [{"Delay": 0.25, "MaxAttempts": 8}, {"Delay": 2, "MaxAttempts": 150}]
