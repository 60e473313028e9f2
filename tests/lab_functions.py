"""Building and deploying Lambda functions in the lab, as a team's build and deploy would.

Packages are zipped with world-readable files (what ``zip`` and build tools produce; a
Lambda runtime cannot read a file its user may not read), roles carry
``AWSLambdaBasicExecutionRole`` unless a test says otherwise, and a created function is
waited for until it is ``Active``, as a deploy script must.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile

import pytest

TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
FAST_WAIT = {"Delay": 0.05, "MaxAttempts": 400}


def _node_problem() -> str:
    from runbook_lib.lab import runtimes

    return runtimes.launcher("nodejs").problem  # node or the SDK v3 folder missing (no npm)


NODE_PROBLEM = _node_problem()
needs_node = pytest.mark.skipif(bool(NODE_PROBLEM), reason=NODE_PROBLEM or "node runs here")


def package(files: dict[str, str | bytes], mode: int = 0o644, modes: dict[str, int] | None = None) -> bytes:
    """A zip of ``files`` with Unix ``mode`` (``modes`` per name overrides it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (modes or {}).get(name, mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_role(iam, *, trust: dict = TRUST_LAMBDA, policy: dict | None = None, basic_logs: bool = True) -> str:
    """An execution role; ``basic_logs`` attaches AWSLambdaBasicExecutionRole as a console-made role has."""
    name = unique("rt-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if basic_logs:
        iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION)
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return arn


def deploy(lab, files: dict[str, str | bytes], *, role: str | None = None, wait: bool = True, **config) -> str:
    """Create a function from ``files`` (python3.12, ``app.handler`` unless said) and wait until Active."""
    name = config.pop("FunctionName", None) or unique("rt-fn")
    lam = lab.client("lambda")
    lam.create_function(FunctionName=name, Runtime=config.pop("Runtime", "python3.12"),
                        Role=role or make_role(lab.client("iam")), Handler=config.pop("Handler", "app.handler"),
                        Code={"ZipFile": package(files)}, **config)
    if wait:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    return name


def wait_updated(lab, name: str) -> None:
    lab.client("lambda").get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)


def invoke(lab, name: str, event=None, **kwargs) -> tuple[dict, object]:
    """``(response, decoded payload)`` of a RequestResponse invocation."""
    response = lab.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def tail(response: dict) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def log_messages(lab, name: str) -> list[str]:
    """Every log event of the function's group, stream by stream (none when there is no group)."""
    logs = lab.client("logs")
    group = f"/aws/lambda/{name}"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        return []
    messages = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        messages += [e["message"] for e in logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"])["events"]]
    return messages
