"""A function's logs are written with its role's permission, always, as Lambda writes them."""

import time

import pytest

from lab_functions import deploy, invoke, log_messages, make_role, tail, unique

HELLO = {"app.py": "def handler(e, c):\n    print('hello from the function')\n    return 'answered'\n"}


def _policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _logs(actions, resource="*") -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def test_a_role_without_logs_permissions_runs_but_writes_no_log_group(lab):
    name = deploy(lab, HELLO, role=make_role(lab.client("iam"), basic_logs=False))
    response, answer = invoke(lab, name, LogType="Tail")
    assert answer == "answered" and "FunctionError" not in response
    assert "hello from the function" in tail(response), "Invoke's own log copy does not need the role"
    assert lab.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"] == []


def test_aws_lambda_basic_execution_role_is_enough(lab):
    name = deploy(lab, HELLO)  # the helper attaches AWSLambdaBasicExecutionRole
    invoke(lab, name)
    assert "hello from the function" in log_messages(lab, name)


def test_scoped_permissions_as_aws_evaluates_them(lab):
    """A policy on the group ARN without ``:*`` does not allow creating it (Lambda asks for
    ``log-group:<name>:log-stream:``); with ``:*`` it does."""
    iam = lab.client("iam")
    name = unique("logs-scoped")
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{name}"
    bare = make_role(iam, basic_logs=False, policy=_policy(
        _logs("logs:CreateLogGroup", group), _logs(["logs:CreateLogStream", "logs:PutLogEvents"], f"{group}:*")))
    deploy(lab, HELLO, role=bare, FunctionName=name)
    invoke(lab, name)
    assert log_messages(lab, name) == [], "CreateLogGroup on the bare group ARN must not be enough"
    starred = make_role(iam, basic_logs=False, policy=_policy(
        _logs(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], f"{group}:*")))
    lab.client("lambda").update_function_configuration(FunctionName=name, Role=starred)
    from lab_functions import wait_updated

    wait_updated(lab, name)
    invoke(lab, name)
    assert "hello from the function" in log_messages(lab, name)


@pytest.mark.parametrize("actions, group_made, events", [
    (["logs:CreateLogStream", "logs:PutLogEvents"], False, False),   # no group, no right to make one
    (["logs:CreateLogGroup", "logs:PutLogEvents"], True, False),     # group made, no stream
    (["logs:CreateLogGroup", "logs:CreateLogStream"], True, False),  # stream made, nothing put
])
def test_each_missing_permission_stops_the_write_where_aws_stops(lab, actions, group_made, events):
    name = deploy(lab, HELLO, role=make_role(lab.client("iam"), basic_logs=False, policy=_policy(_logs(actions))))
    assert invoke(lab, name)[1] == "answered"
    groups = lab.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert bool(groups) is group_made
    assert bool(log_messages(lab, name)) is events


def test_an_explicit_deny_wins_over_the_managed_policy(lab):
    role = make_role(lab.client("iam"), policy=_policy(
        {"Effect": "Deny", "Action": "logs:PutLogEvents", "Resource": "*"}))
    name = deploy(lab, HELLO, role=role)
    invoke(lab, name)
    assert log_messages(lab, name) == []


@pytest.fixture
def moto_session(monkeypatch):
    """A role session made in-process as the runtime makes it, and a way to deliver with it."""
    import json

    import boto3
    from moto import mock_aws
    from moto.sts.models import sts_backends

    from lab_functions import TRUST_LAMBDA
    from runbook_lib.lab.function_logs import deliver

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")

        def session_with(*statements) -> str:
            role = iam.create_role(RoleName=unique("logs-unit"), AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
            if statements:
                iam.put_role_policy(RoleName=role["Role"]["RoleName"], PolicyName="p",
                                    PolicyDocument=json.dumps(_policy(*statements)))
            return sts_backends["123456789012"]["aws"].assume_role(
                region_name="us-east-1", role_session_name="fn", role_arn=role["Role"]["Arn"], policy=None,
                duration=900, external_id=None).access_key_id

        def write(key: str, events=((1, "line"),)) -> str:
            return deliver(account_id="123456789012", region="us-east-1", group="/aws/lambda/unit",
                           stream="2026/12/01/[$LATEST]abc", access_key_id=key, events=list(events))

        yield session_with, write, boto3.client("logs", region_name="us-east-1")


def test_deliver_says_what_it_did_and_what_was_missing(moto_session):
    session_with, write, logs = moto_session
    everything = _logs(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"])
    assert write(session_with(everything), events=()) == "nothing to write"
    assert write("AKIANOTAROLESESSION") == "logs:CreateLogGroup"
    assert write(session_with()) == "logs:CreateLogGroup"
    assert write(session_with(_logs("logs:CreateLogGroup"))) == "logs:CreateLogStream"
    assert write(session_with(_logs(["logs:CreateLogGroup", "logs:CreateLogStream"]))) == "logs:PutLogEvents"
    now = int(time.time() * 1000)
    assert write(session_with(everything), events=[(now + 5, "late"), (now + 3, "early")]) == "written"
    events = logs.get_log_events(logGroupName="/aws/lambda/unit", logStreamName="2026/12/01/[$LATEST]abc",
                                 startFromHead=True)["events"]
    assert [(e["timestamp"], e["message"]) for e in events] == [(now + 5, "late"), (now + 5, "early")], \
        "CloudWatch keeps a stream in time order: a line never goes before the one printed earlier"
