"""The runtime catalogue: AWS's schedule at create and update, layer and search paths, launchers."""

import os
from datetime import date
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lab_functions import deploy, make_role, package, unique, wait_updated
from runbook_lib.lab import runtimes

DECEMBER_2026 = date(2026, 12, 1)


@pytest.mark.parametrize("runtime, creating, today, refused", [
    ("python3.7", True, DECEMBER_2026, True),        # create blocked since 2024-01-09
    ("python3.7", False, DECEMBER_2026, False),      # updates allowed until 2027-03-03
    ("python3.7", False, date(2027, 3, 3), True),
    ("nodejs18.x", True, DECEMBER_2026, False),      # deprecated, still creatable until 2027-02-01
    ("nodejs18.x", True, date(2027, 2, 1), True),
    ("python3.12", True, DECEMBER_2026, False),
    ("python2.7", False, DECEMBER_2026, True),
    ("nodejs22.x", True, date(2027, 6, 1), True),
])
def test_lifecycle_follows_the_published_block_dates(runtime, creating, today, refused):
    answer = runtimes.lifecycle_refusal(runtime, creating=creating, today=today)
    assert (answer is not None) is refused
    if refused:
        code, message, status = answer
        assert code == "InvalidParameterValueException" and status == 400
        assert message == (f"The runtime parameter of {runtime} is no longer supported for creating or "
                           "updating AWS Lambda functions. We recommend you use a supported runtime while "
                           "creating or updating functions.")


def test_a_name_lambda_never_had_fails_enum_validation_listing_the_names():
    code, message, status = runtimes.lifecycle_refusal("python4", creating=True, today=DECEMBER_2026)
    assert code == "ValidationException" and status == 400
    assert message.startswith("1 validation error detected: Value 'python4' at 'runtime' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [")
    assert "python3.12" in message and "nodejs20.x" in message


def test_a_name_botocore_knows_but_aws_has_not_scheduled_is_refused_not_guessed():
    future = [r for r in runtimes._runtime_enum() if r not in runtimes.LIFECYCLE]
    assert future, "botocore lists no runtime beyond the lab's table: nothing to judge here"
    code, message, _ = runtimes.lifecycle_refusal(future[0], creating=True, today=DECEMBER_2026)
    assert code == "InvalidParameterValueException" and future[0] in message and "lab" in message


def test_every_runtime_the_lab_runs_is_a_real_lambda_identifier():
    enum = set(runtimes._runtime_enum())
    assert set(runtimes.PYTHON_RUNTIMES + runtimes.NODEJS_RUNTIMES) <= enum & set(runtimes.LIFECYCLE)
    assert runtimes.family("python3.13") == "python" and runtimes.family("nodejs22.x") == "nodejs"
    assert runtimes.family("java21") is None and runtimes.family("nodejs24.x") is None


def test_layer_and_search_paths_are_those_aws_documents(tmp_path):
    opt = tmp_path / "opt"
    assert runtimes.layer_paths("python3.11", opt) == [opt / "python/lib/python3.11/site-packages", opt / "python"]
    assert runtimes.layer_paths("nodejs18.x", opt) == [opt / "nodejs/node18/node_modules", opt / "nodejs/node_modules"]
    rt, sdk, task = tmp_path / "var/runtime", tmp_path / "sdk", tmp_path / "var/task"
    assert runtimes.search_path("python3.12", rt, sdk, task) == ("PYTHONPATH", str(rt))
    name, value = runtimes.search_path("nodejs20.x", rt, sdk, task)
    assert name == "NODE_PATH" and value.split(":") == [
        "/opt/nodejs/node20/node_modules", "/opt/nodejs/node_modules", str(sdk / "node_modules"), str(rt), str(task)]


def test_the_sdk_folders_are_found_from_the_labs_interpreter_or_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("RUNBOOK_LAB_RUNTIMES", raising=False)
    import sys

    assert runtimes.runtimes_home() == Path(sys.prefix) / "lambda-runtimes"
    monkeypatch.setenv("RUNBOOK_LAB_RUNTIMES", str(tmp_path))
    assert runtimes.runtimes_home() == tmp_path
    missing = runtimes.launcher("python")
    assert missing.problem == (f"the lab's python runtime SDK (boto3 for Python) is missing from "
                               f"{tmp_path / 'python'}: run `runbook lab-runtimes`")


def test_launchers_use_the_installed_sdk_and_the_sandbox_user_when_root():
    launcher = runtimes.launcher("python")
    assert launcher.problem == "" and (launcher.sdk / "boto3" / "__init__.py").is_file()
    assert launcher.command(Path("/rt")) == [launcher.executable, "-S", "/rt/bootstrap.py"]
    if os.geteuid() == 0:
        assert launcher.user == runtimes.SANDBOX_UID, "this root lab could run functions unprivileged"
    else:
        assert launcher.user is None


def test_no_node_binary_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(runtimes, "_node_candidates", lambda: [])
    assert runtimes.launcher("nodejs").problem == \
        "node is not installed on this machine: the lab cannot run Node.js functions"


def test_others_can_use_needs_every_folder_on_the_way():
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp_path sits in a private folder
    try:
        folder = top / "a" / "b"
        folder.mkdir(parents=True)
        (folder / "tool").write_text("#!/bin/sh\n")
        for path, mode in ((folder / "tool", 0o755), (top, 0o755), (top / "a", 0o755), (folder, 0o755)):
            os.chmod(path, mode)
        assert runtimes._others_can_use(folder / "tool", execute=True)
        os.chmod(folder / "tool", 0o750)
        assert not runtimes._others_can_use(folder / "tool", execute=True)
        os.chmod(folder / "tool", 0o755)
        os.chmod(top / "a", 0o700)
        assert not runtimes._others_can_use(folder / "tool", execute=True)
        assert not runtimes._others_can_use(top / "absent", execute=False)
    finally:
        shutil.rmtree(top)


# --------------------------------------------------------------------------- through the lab
def test_python37_is_refused_at_create_with_awss_error(lab):
    lam = lab.client("lambda")
    name = unique("old-runtime")
    with pytest.raises(ClientError) as caught:
        lam.create_function(FunctionName=name, Runtime="python3.7", Role=make_role(lab.client("iam")),
                            Handler="app.handler", Code={"ZipFile": package({"app.py": "x = 1"})})
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"].startswith("The runtime parameter of python3.7 is no longer supported")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)  # nothing was created


def test_an_unknown_runtime_and_a_missing_one_are_refused_at_create(lab):
    lam, role = lab.client("lambda"), make_role(lab.client("iam"))
    with pytest.raises(ClientError) as caught:
        lam.create_function(FunctionName=unique("bad"), Runtime="python4", Role=role, Handler="app.handler",
                            Code={"ZipFile": package({"app.py": "x = 1"})})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as caught:
        lam.create_function(FunctionName=unique("bad"), Role=role, Handler="app.handler",
                            Code={"ZipFile": package({"app.py": "x = 1"})})
    assert caught.value.response["Error"]["Message"] == \
        "Runtime and Handler are mandatory parameters for functions created with deployment packages."


def test_changing_to_a_blocked_runtime_is_refused_and_the_function_keeps_its_own(lab):
    lam = lab.client("lambda")
    name = deploy(lab, {"app.py": "def handler(e, c):\n    return 1\n"})
    with pytest.raises(ClientError) as caught:
        lam.update_function_configuration(FunctionName=name, Runtime="python2.7")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.get_function_configuration(FunctionName=name)["Runtime"] == "python3.12"
    lam.update_function_configuration(FunctionName=name, Runtime="python3.13")
    wait_updated(lab, name)
    assert lam.get_function_configuration(FunctionName=name)["Runtime"] == "python3.13"
