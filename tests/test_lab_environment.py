"""Execution environments: isolation, package extraction, reserved variables, exec wrappers."""

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from lab_functions import deploy, invoke, log_messages, needs_node, package, tail, unique
from runbook_lib.lab import runtimes
from runbook_lib.lab.environment import Refusal, extract

PROJECT = str(Path(__file__).resolve().parents[1])
SANDBOXED = os.geteuid() == 0 and runtimes.launcher("python").user is not None
needs_sandbox_user = pytest.mark.skipif(
    not SANDBOXED, reason="the lab runs functions as its own user here: file modes and a read-only "
                          "task root are not enforced (docs/lab.md)")
EXECUTABLE = 0o755


def _layer(lab, files: dict, modes: dict | None = None) -> str:
    return lab.client("lambda").publish_layer_version(
        LayerName=unique("env-layer"), Content={"ZipFile": package(files, modes=modes)})["LayerVersionArn"]


# --------------------------------------------------------------------------- isolation
def test_the_function_sees_lambdas_folders_none_of_them_in_the_project(lab):
    code = """
import os, sys, tempfile
def handler(e, c):
    names = ["LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "PYTHONPATH", "PATH", "LD_LIBRARY_PATH"]
    return {"env": {n: os.environ.get(n, "") for n in names}, "cwd": os.getcwd(), "path": sys.path,
            "runtime_files": sorted(os.listdir(os.environ["LAMBDA_RUNTIME_DIR"]))}
"""
    _, seen = invoke(lab, deploy(lab, {"app.py": code}))
    env = seen["env"]
    task_root, runtime_dir = env["LAMBDA_TASK_ROOT"], env["LAMBDA_RUNTIME_DIR"]
    assert seen["cwd"] == task_root and task_root.endswith("/var/task") and runtime_dir.endswith("/var/runtime")
    assert env["PYTHONPATH"] == runtime_dir
    for value in (task_root, runtime_dir, env["PATH"], env["LD_LIBRARY_PATH"], *seen["path"]):
        assert not (value.startswith(PROJECT) and "/lambda-runtimes/" not in value), value
    # the runtime's own files, and its boto3 (links to the lab's pinned SDK), as /var/runtime holds them on AWS
    from runbook_lib.lab import runtimes
    sdk = sorted(e.name for e in runtimes.launcher("python").sdk.iterdir()
                 if not e.name.startswith(".") and e.name not in ("bin", "__pycache__"))
    assert seen["runtime_files"] == sorted(["bootstrap.py", "lab-runtime.json", *sdk]) and "boto3" in sdk


TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")


@pytest.mark.parametrize("runtime, files", [
    ("python3.12", {"app.py": "import os\ndef handler(e, c):\n    return os.environ.get('_X_AMZN_TRACE_ID')\n"}),
    pytest.param("nodejs22.x", {"index.js": "exports.handler = async () => process.env._X_AMZN_TRACE_ID;\n"},
                 marks=needs_node),
], ids=["python", "nodejs"])
def test_each_invocation_gets_its_own_x_ray_trace_header(lab, runtime, files):
    name = deploy(lab, files, Runtime=runtime, Handler="app.handler" if runtime.startswith("python") else "index.handler")
    first, second = invoke(lab, name)[1], invoke(lab, name)[1]
    assert TRACE.match(first) and TRACE.match(second), (first, second)
    assert first != second


@needs_sandbox_user
def test_the_task_root_is_read_only_and_tmp_is_writable(lab):
    code = """
import os, tempfile
def handler(e, c):
    results = {"uid": os.getuid()}
    for where in (os.environ["LAMBDA_TASK_ROOT"], "/opt", tempfile.gettempdir()):
        try:
            with open(os.path.join(where, "probe.txt"), "w") as out:
                out.write("x")
            results[where] = "written"
        except OSError as exc:
            results[where] = type(exc).__name__
    return results
"""
    _, seen = invoke(lab, deploy(lab, {"app.py": code}))
    assert seen.pop("uid") == runtimes.SANDBOX_UID
    task_root = next(k for k in seen if k.endswith("/var/task"))
    assert seen[task_root] == "PermissionError" and seen["/tmp"] == "written"


@needs_sandbox_user
def test_a_file_the_package_does_not_make_readable_cannot_be_imported(lab):
    name = unique("env-modes")
    lab.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Handler="app.handler",
        Role=lab.client("iam").get_role(RoleName=_any_role(lab))["Role"]["Arn"],
        Code={"ZipFile": package({"app.py": "def handler(e, c):\n    return 1\n"}, mode=0o600)})
    lab.client("lambda").get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05})
    response, error = invoke(lab, name)
    # the AWS Python runtime turns only ImportError into Runtime.ImportModuleError
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "PermissionError"
    assert error["errorMessage"].startswith("[Errno 13] Permission denied: '")
    assert error["errorMessage"].endswith("/var/task/app.py'")


def _any_role(lab) -> str:
    from lab_functions import make_role

    return make_role(lab.client("iam")).split("/")[-1]


# --------------------------------------------------------------------------- extraction
def _zip_with(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is None:  # made on a system without Unix modes (zipfile itself always writes one)
                info.create_system, info.external_attr = 0, 0x20
            else:
                info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def test_extraction_keeps_modes_links_and_defaults_missing_modes(tmp_path):
    data = _zip_with([("bin/tool", "#!/bin/sh\n", 0o100755), ("data.txt", "x", 0o100600),
                      ("nomode.txt", "y", None), ("link", "data.txt", 0o120777)])
    extract(data, tmp_path)
    assert (tmp_path / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "bin").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "data.txt").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "nomode.txt").stat().st_mode & 0o777 == 0o644
    assert os.readlink(tmp_path / "link") == "data.txt"


@pytest.mark.parametrize("entries", [
    [("../escape.txt", "x", 0o100644)],
    [("out", "/etc", 0o120777), ("out/passwd", "x", 0o100644)],  # through a link placed earlier
])
def test_extraction_never_writes_outside_the_folder(tmp_path, entries):
    target = tmp_path / "task"
    target.mkdir()
    with pytest.raises(Refusal) as caught:
        extract(_zip_with(entries), target)
    assert caught.value.code == "InvalidZipFileException"
    assert not (tmp_path / "escape.txt").exists()


def test_a_broken_package_is_refused_as_lambda_refuses_it(lab):
    name = deploy(lab, {"app.py": "x = 1"})
    lab.client("lambda").update_function_code(FunctionName=name, ZipFile=b"PK\x03\x04 not a zip")
    from lab_functions import wait_updated

    wait_updated(lab, name)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        lab.session().client("lambda", endpoint_url=lab.endpoint_url,
                             config=__import__("botocore.config").config.Config(retries={"max_attempts": 1})
                             ).invoke(FunctionName=name)
    assert caught.value.response["Error"]["Code"] == "InvalidZipFileException"


# --------------------------------------------------------------------------- exec wrappers
WRAPPER = """#!/bin/bash
# finds its own files relative to itself, as a wrapper must in the lab
source "$(dirname "$0")/wrapper.env"
export WRAPPED_BY="$(basename "$0")"
export PYTHONPATH="/opt/extra:$PYTHONPATH"
echo "wrapper starting: $#"
exec "$@"
"""


def test_a_python_exec_wrapper_in_a_layer_changes_the_environment_the_handler_sees(lab):
    layer = _layer(lab, {"wrapper": WRAPPER, "wrapper.env": "export FROM_ENV_FILE=yes\n",
                         "extra/added.py": "WHERE = 'mapped /opt/extra'\n"}, modes={"wrapper": EXECUTABLE})
    code = ("import os, added\ndef handler(e, c):\n"
            "    return [os.environ.get('WRAPPED_BY'), os.environ.get('FROM_ENV_FILE'), added.WHERE]\n")
    name = deploy(lab, {"app.py": code}, Layers=[layer],
                  Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    response, seen = invoke(lab, name, LogType="Tail")
    assert seen == ["wrapper", "yes", "mapped /opt/extra"]
    assert "wrapper starting: 3" in tail(response)  # interpreter, -S, bootstrap


def test_a_wrapper_in_the_task_root_is_found_through_var_task(lab):
    files = {"app.py": "import os\ndef handler(e, c):\n    return os.environ['WRAPPED_BY']\n",
             "wrap.sh": WRAPPER.replace('source "$(dirname "$0")/wrapper.env"\n', ""),
             }
    name = unique("env-wrap")
    lam = lab.client("lambda")
    from lab_functions import FAST_WAIT, make_role

    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=make_role(lab.client("iam")),
                        Code={"ZipFile": package(files, modes={"wrap.sh": EXECUTABLE})},
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrap.sh"}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    assert invoke(lab, name)[1] == "wrap.sh"


@pytest.mark.parametrize("script, mode, error_type, message", [
    ("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n", EXECUTABLE, "Runtime.ExitError",
     "Error: Runtime exited with error: exit status 1"),
    ("#!/bin/sh\necho 'forgot to exec'\n", EXECUTABLE, "Runtime.ExitError",
     "Error: Runtime exited without providing a reason"),
    ("#!/bin/sh\nexec \"$@\"\n", 0o644, "Runtime.InvalidEntrypoint",
     "Error: fork/exec /opt/wrapper: permission denied"),
])
def test_a_failing_wrapper_is_an_init_failure_answered_as_lambda_answers_it(lab, script, mode, error_type, message):
    layer = _layer(lab, {"wrapper": script}, modes={"wrapper": mode})
    name = deploy(lab, {"app.py": "def handler(e, c):\n    return 1\n"}, Layers=[layer],
                  Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    response, error = invoke(lab, name, LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert error == {"errorType": error_type, "errorMessage": f"RequestId: {request_id} {message}"}
    messages = log_messages(lab, name)
    assert any(m.startswith("INIT_REPORT Init Duration: ") and m.endswith(f"Status: error\tError Type: {error_type}")
               for m in messages)
    assert messages[-1].startswith(f"REPORT RequestId: {request_id}") and f"Error Type: {error_type}" in messages[-1]
    if "cannot start" in script:
        assert "cannot start" in messages


def test_a_missing_wrapper_is_an_invalid_entrypoint(lab):
    name = deploy(lab, {"app.py": "def handler(e, c):\n    return 1\n"},
                  Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/not-there"}})
    _, error = invoke(lab, name)
    assert error["errorType"] == "Runtime.InvalidEntrypoint"
    assert error["errorMessage"].endswith("Error: fork/exec /opt/not-there: no such file or directory")


@needs_node
def test_a_nodejs_exec_wrapper_changes_the_environment_the_handler_sees(lab):
    layer = _layer(lab, {"wrapper": WRAPPER, "wrapper.env": "export FROM_ENV_FILE=yes\n",
                         "nodejs/node_modules/shared/index.js": "module.exports = 'from the layer';\n"},
                   modes={"wrapper": EXECUTABLE})
    code = ("const shared = require('shared');\nexports.handler = async () => "
            "[process.env.WRAPPED_BY, process.env.FROM_ENV_FILE, shared];\n")
    name = deploy(lab, {"index.js": code}, Runtime="nodejs22.x", Handler="index.handler", Layers=[layer],
                  Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    response, seen = invoke(lab, name, LogType="Tail")
    assert seen == ["wrapper", "yes", "from the layer"]
    assert "wrapper starting: 2" in tail(response)  # node, index.mjs
