"""Real functions through ``runbook run --target aws --endpoint-url <lab>``, with IAM enforced.

Every function here is built by the test (``lab_functions.deploy``), never the seeded demo: a
Python and a Node.js function that read their secrets from the environment (strategy
``wrapper``, no code parameter), a refactored package that logs its own words, packages that
use the AWS caching client and Powertools Parameters (the real libraries, vendored from this
test environment with their ``dist-info``), a role shared by two functions, and the functions
no strategy can change (container image, OS-only runtime), refused with exit 2.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import zipfile
from pathlib import Path

import pytest

from lab_functions import deploy, invoke, make_role, needs_node, unique
from runbook_lib import cli

PASSWORD = "Zr8#kq2!vLp9Wm4xT7b-" + "q" * 4
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SECRETS = {"DB_PASSWORD": PASSWORD, "API_TOKEN": TOKEN}
PY_ENV_HANDLER = ("import os\n"
                  "def handler(event, context):\n"
                  "    return {'db': len(os.environ['DB_PASSWORD']), 'token': os.environ['API_TOKEN'][:4],\n"
                  "            'level': os.environ.get('LOG_LEVEL')}\n")
EXPECTED = {"db": len(PASSWORD), "token": "ghp_", "level": "INFO"}
COMPARED = ("Environment", "Layers", "CodeSha256", "Handler", "Role", "Runtime", "KMSKeyArn")


@pytest.fixture(scope="module")
def iam_lab():
    """An empty lab of this module's own with IAM enforced, and a trail that logs (as an account has)."""
    from runbook_lib.lab import Lab

    with Lab(seed=False, enforce_iam=True) as running:
        s3, trail = running.client("s3"), running.client("cloudtrail")
        s3.create_bucket(Bucket="rt-trail-logs")
        trail.create_trail(Name="rt-trail", S3BucketName="rt-trail-logs", IsMultiRegionTrail=True)
        trail.put_event_selectors(TrailName="rt-trail", EventSelectors=[
            {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}])
        trail.start_logging(Name="rt-trail")
        yield running


def _function_names(lab) -> set[str]:
    pages = lab.client("lambda").get_paginator("list_functions").paginate()
    return {f["FunctionName"] for page in pages for f in page["Functions"]}


@pytest.fixture()
def lab_env(iam_lab, monkeypatch):
    for key, value in iam_lab.env.items():
        monkeypatch.setenv(key, value)
    before = _function_names(iam_lab)
    yield iam_lab
    # a test's functions go with it: the next test's test plan audits every function of the lab, and would
    # otherwise download and scan the packages of all the tests before it (Powertools, the caching client)
    for name in sorted(_function_names(iam_lab) - before):
        iam_lab.client("lambda").delete_function(FunctionName=name)


def failed(run_dir) -> str:
    """What a failed run says: the end of its summary and the leak guard's hits (locations and rules only)."""
    if run_dir is None:
        return "no run folder"
    guard = run_dir / "checks" / "99_leak_guard.json"
    return (run_dir / "summary.md").read_text()[-3000:] + (guard.read_text()[-2000:] if guard.exists() else "")


def run(lab, tmp_path, name, *extra) -> tuple[int, Path | None]:
    """``runbook run --target aws --endpoint-url <lab> --function name --apply -p change_ticket CHG-RT``."""
    out = tmp_path / "runs"
    code = cli.main(["run", "--target", "aws", "--endpoint-url", lab.endpoint_url, "--function", name,
                     "--apply", "-p", "change_ticket", "CHG-RT", "--out", str(out), *extra])
    folders = sorted(out.glob("*")) if out.exists() else []
    return code, (folders[-1] if folders else None)


def backout(lab, run_dir) -> int:
    return cli.main(["backout", str(run_dir), "--endpoint-url", lab.endpoint_url, "--apply",
                     "-p", "change_ticket", "CHG-RT-B"])


def config_of(lab, name) -> dict:
    config = lab.client("lambda").get_function_configuration(FunctionName=name)
    return {key: config.get(key) for key in COMPARED}


def assert_no_value_in(config: dict) -> None:
    text = json.dumps(config)
    assert PASSWORD not in text and TOKEN not in text


def wrapper_round_trip(lab, tmp_path, name):
    lam = lab.client("lambda")
    before, (_, answer_before) = config_of(lab, name), invoke(lab, name)
    raw_before = lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
    code, run_dir = run(lab, tmp_path, name)
    assert code == 0, failed(run_dir)
    after = config_of(lab, name)
    assert_no_value_in(after)
    variables = after["Environment"]["Variables"]
    assert variables["SECRET_ID"].startswith("arn:aws:secretsmanager:") and variables["LOG_LEVEL"] == "INFO"
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/lambda-secrets-runbook/exec-wrapper"
    assert after["CodeSha256"] == before["CodeSha256"], "strategy wrapper changes no code"
    assert [layer["Arn"].split(":")[6] for layer in after["Layers"]] == [f"lambda-secrets-runbook-wrapper-{name}"]
    assert lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read() == raw_before, "byte for byte"
    assert answer_before == EXPECTED
    plan = (run_dir / "02_implementation.ipynb").read_text()
    assert "strategy wrapper" in plan
    assert backout(lab, run_dir) == 0
    assert config_of(lab, name) == before, "backout restores layers, environment and wrapper exactly"
    versions = lam.list_layer_versions(LayerName=f"lambda-secrets-runbook-wrapper-{name}")["LayerVersions"]
    assert versions == [], "the function's layer version is deleted once it no longer uses it"
    assert lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read() == raw_before


def test_python_function_reading_os_environ_moves_to_the_wrapper_and_backs_out_exactly(lab_env, tmp_path):
    name = deploy(lab_env, {"app.py": PY_ENV_HANDLER},
                  Environment={"Variables": {**SECRETS, "LOG_LEVEL": "INFO"}})
    wrapper_round_trip(lab_env, tmp_path, name)


@needs_node
def test_nodejs_function_reading_process_env_moves_to_the_wrapper_and_backs_out_exactly(lab_env, tmp_path):
    source = ("export const handler = async () => ({db: process.env.DB_PASSWORD.length, "
              "token: process.env.API_TOKEN.slice(0, 4), level: process.env.LOG_LEVEL});\n")
    name = deploy(lab_env, {"index.mjs": source}, Runtime="nodejs20.x", Handler="index.handler",
                  Environment={"Variables": {**SECRETS, "LOG_LEVEL": "INFO"}})
    wrapper_round_trip(lab_env, tmp_path, name)


# -- strategy package: the team's refactored code, with the real client libraries ---------------------------
def vendored(*distributions: str) -> dict[str, bytes]:
    """The installed files of ``distributions`` (their dist-info too), as a package's files."""
    files: dict[str, bytes] = {}
    for dist_name in distributions:
        dist = importlib.metadata.distribution(dist_name)
        for path in dist.files or []:
            source = Path(dist.locate_file(path))
            if ".." in path.parts or "__pycache__" in path.parts or not source.is_file():
                continue
            files[path.as_posix()] = source.read_bytes()
    return files


def zip_file(tmp_path, files: dict[str, str | bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in files.items():
            info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    path = tmp_path / f"{unique('code')}.zip"
    path.write_bytes(buffer.getvalue())
    return path


REFACTORED = {
    "own-words": ("import json, os, boto3\n"
                  "print('orders: fetching my configuration from Secrets Manager')\n"
                  "VALUES = json.loads(boto3.client('secretsmanager').get_secret_value(\n"
                  "    SecretId=os.environ['SECRET_ID'])['SecretString'])\n"
                  "def handler(event, context):\n"
                  "    print('orders: answering with my configuration')\n"
                  "    return {'db': len(VALUES['DB_PASSWORD']), 'token': VALUES['API_TOKEN'][:4],\n"
                  "            'level': os.environ.get('LOG_LEVEL')}\n", ()),
    "caching-client": ("import json, os, boto3\n"
                       "from aws_secretsmanager_caching import SecretCache, SecretCacheConfig\n"
                       "CACHE = SecretCache(config=SecretCacheConfig(), client=boto3.client('secretsmanager'))\n"
                       "def handler(event, context):\n"
                       "    values = json.loads(CACHE.get_secret_string(os.environ['SECRET_ID']))\n"
                       "    return {'db': len(values['DB_PASSWORD']), 'token': values['API_TOKEN'][:4],\n"
                       "            'level': os.environ.get('LOG_LEVEL')}\n", ("aws-secretsmanager-caching",)),
    "powertools": ("import os\n"
                   "from aws_lambda_powertools.utilities.parameters import get_secret\n"
                   "def handler(event, context):\n"
                   "    values = get_secret(os.environ['SECRET_ID'], transform='json')\n"
                   "    return {'db': len(values['DB_PASSWORD']), 'token': values['API_TOKEN'][:4],\n"
                   "            'level': os.environ.get('LOG_LEVEL')}\n",
                   ("aws-lambda-powertools", "typing_extensions", "jmespath")),
}


@pytest.mark.parametrize("kind", sorted(REFACTORED))
def test_refactored_code_path_keeps_the_behaviour_under_the_grant_with_iam_enforced(lab_env, tmp_path, kind):
    source, libraries = REFACTORED[kind]
    name = deploy(lab_env, {"app.py": PY_ENV_HANDLER}, Timeout=30, MemorySize=256,
                  Environment={"Variables": {**SECRETS, "LOG_LEVEL": "INFO"}})
    code_path = zip_file(tmp_path, {**vendored(*libraries), "app.py": source})
    before = lab_env.client("lambda").get_function_configuration(FunctionName=name)
    assert invoke(lab_env, name)[1] == EXPECTED
    code, run_dir = run(lab_env, tmp_path, name, "-p", "code_path", str(code_path))
    assert code == 0, failed(run_dir)
    after = config_of(lab_env, name)
    assert_no_value_in(after)
    assert after["CodeSha256"] != before["CodeSha256"] and after["Handler"] == before["Handler"]
    assert not after["Layers"], "strategy package adds no layer"
    response, answer = invoke(lab_env, name, LogType="Tail")
    assert answer == EXPECTED and "FunctionError" not in response
    if kind == "own-words":
        import base64
        assert "orders: answering with my configuration" in base64.b64decode(response["LogResult"]).decode()
    if libraries:  # the libraries' own strings are someone else's code: a WARN naming the package, never a FAIL
        checks = json.loads((run_dir / "checks.json").read_text())
        rows = checks if isinstance(checks, list) else checks.get("checks", [])
        assert not [r for r in rows if r.get("id") == "no-secrets-in-code" and r.get("status") == "FAIL"]


# -- a shared role -------------------------------------------------------------------------------------------
def test_on_a_shared_role_the_other_function_is_denied_the_new_secret(lab_env, tmp_path):
    from runbook_lib.implementation import Implementation
    from runbook_lib.ledger import Ledger
    from runbook_lib.session import Target

    role = make_role(lab_env.client("iam"), policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    migrated = deploy(lab_env, {"app.py": PY_ENV_HANDLER}, role=role,
                      Environment={"Variables": {**SECRETS, "LOG_LEVEL": "INFO"}})
    reader = ("import boto3\n"
              "def handler(event, context):\n"
              "    try:\n"
              "        boto3.client('secretsmanager').get_secret_value(SecretId=event['id'])\n"
              "        return 'read'\n"
              "    except Exception as exc:\n"
              "        return exc.response['Error']['Code']\n")
    other = deploy(lab_env, {"app.py": reader}, role=role)
    target = Target.from_parameters("aws", region=lab_env.region, endpoint_url=lab_env.endpoint_url,
                                    session=lab_env.session())
    impl = Implementation(target, Ledger.open(tmp_path / "run"), function_name=migrated, role_mode="existing",
                          change_ticket="CHG-RT", apply=True)
    plan_text = "\n".join(str(row) for row in impl.plan())
    assert other in plan_text, "the plan names every function that uses the role"
    impl.apply()
    secret = lab_env.client("lambda").get_function_configuration(
        FunctionName=migrated)["Environment"]["Variables"]["SECRET_ID"]
    assert invoke(lab_env, migrated)[1] == EXPECTED
    assert invoke(lab_env, other, {"id": secret})[1] == "AccessDeniedException"


# -- what no strategy changes: refused in one line, exit 2, nothing changed -----------------------------------
def account_state(lab) -> dict:
    lam, sm, iam = (lab.client(s) for s in ("lambda", "secretsmanager", "iam"))
    functions = {f["FunctionName"]: {k: f.get(k) for k in COMPARED + ("Version", "LastModified")}
                 for f in lam.list_functions(FunctionVersion="ALL")["Functions"]}
    return {"functions": functions,
            "secrets": sorted(s["Name"] for s in sm.list_secrets()["SecretList"]),
            "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
            "layers": sorted(layer["LayerName"] for layer in lam.list_layers()["Layers"])}


@pytest.mark.parametrize("kind", ["image", "provided"])
def test_image_and_os_only_functions_are_refused_in_one_line_and_nothing_changes(lab_env, tmp_path, capsys, kind):
    lam = lab_env.client("lambda")
    name = unique(f"rt-{kind}")
    env = {"Variables": {**SECRETS}}
    if kind == "image":
        lam.create_function(FunctionName=name, Role=make_role(lab_env.client("iam")), PackageType="Image",
                            Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:1"},
                            Environment=env)
    else:
        deploy(lab_env, {"bootstrap": "#!/bin/sh\n"}, FunctionName=name, Runtime="provided.al2023",
               Handler="bootstrap", Environment=env, wait=False)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 400})
    before = account_state(lab_env)
    capsys.readouterr()
    code, _ = run(lab_env, tmp_path, name)
    err = capsys.readouterr().err
    assert code == 2
    refusal = [line for line in err.splitlines() if line.startswith("runbook: ")]
    assert len(refusal) == 1 and "nothing was changed" in refusal[0], err[-3000:]
    assert ("container image" in refusal[0]) if kind == "image" else ("OS-only runtime" in refusal[0])
    assert "strategy package" in refusal[0] or "rebuilt image" in refusal[0]
    assert account_state(lab_env) == before
