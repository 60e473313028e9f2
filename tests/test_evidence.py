"""Evidence helpers: response shapes, invocations, logs, CloudTrail lookups and polling, charts."""

import datetime as dt
import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from runbook_lib import evidence
from runbook_lib.charts import cache_chart
from runbook_lib.evidence import (cloudtrail_frame, event_row, execution_environments,
                                  fetch_log_events, from_lambda, invocation_failures,
                                  lookup_secret_events, redact_line, response_shape,
                                  secret_id_matches, secret_leaves, shape_differences,
                                  write_evidence)
from runbook_lib.redaction import Fingerprinter

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/orders-api/config-AbCdEf"
SECRET_NAME = "lambda/orders-api/config"
ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/orders-api-role/orders-api"
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


# -- response shape -----------------------------------------------------------------------
def test_response_shape_parses_json_body():
    body = json.dumps({"orders": 3, "partner": "accepted", "db_configured": True})
    assert response_shape({"statusCode": 200, "body": body}) == {
        "statusCode": "int", "body": {"orders": "int", "partner": "str", "db_configured": "bool"}}


def test_response_shape_of_scalars_lists_and_null():
    assert response_shape(None) == "null"
    assert response_shape([]) == []
    assert response_shape([{"a": 1}]) == [{"a": "int"}]
    assert response_shape("{not json") == "str"


def test_shape_differences_names_paths():
    base = response_shape({"statusCode": 200, "body": json.dumps({"orders": 3, "partner": "x"})})
    now = response_shape({"statusCode": 200, "body": json.dumps({"orders": "3", "error": "x"})})
    assert shape_differences(base, base) == []
    assert shape_differences(base, now) == ["$.body.error: not in baseline",
                                            "$.body.orders: int in baseline, str now",
                                            "$.body.partner: missing"]


def test_shape_survives_a_json_round_trip_through_the_ledger():
    shape = response_shape({"statusCode": 200, "body": json.dumps({"items": [{"id": "a"}]})})
    assert shape_differences(json.loads(json.dumps(shape)), shape) == []


# -- invocations ----------------------------------------------------------------------------
class FakeLambda:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def invoke(self, **kwargs):
        self.calls.append(kwargs)
        payload, error = self.answers.pop(0)
        out = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(payload).encode()),
               "ExecutedVersion": "$LATEST", "ResponseMetadata": {"RequestId": f"r{len(self.calls)}"}}
        if error:
            out["FunctionError"] = error
        return out


def test_invoke_function_records_shape_not_response():
    ok = {"statusCode": 200, "body": json.dumps({"token": "do-not-keep-this-value"})}
    lam = FakeLambda([(ok, ""), (ok, "")])
    seen = []
    invocations = evidence.invoke_function(lam, "orders-api", {"a": 1}, 2,
                                           progress=lambda d, t, label: seen.append((d, t)))
    assert [i["index"] for i in invocations] == [1, 2] and seen == [(1, 2), (2, 2)]
    assert lam.calls[0]["Payload"] == '{"a": 1}'
    assert invocations[0]["response_shape"] == {"statusCode": "int", "body": {"token": "str"}}
    assert invocations[0]["http_status"] == 200 and invocations[1]["request_id"] == "r2"
    assert ("do-not-keep-this-value" in json.dumps(invocations)) is False
    assert invocation_failures(invocations) == []


def test_invocation_failures_name_the_reason():
    lam = FakeLambda([({"errorMessage": "boom"}, "Unhandled"), ({"statusCode": 401}, "")])
    invocations = evidence.invoke_function(lam, "f", {}, 2)
    assert invocation_failures(invocations) == ["invocation 1: FunctionError Unhandled",
                                                "invocation 2: the function answered statusCode 401"]


# -- logs -----------------------------------------------------------------------------------
@mock_aws
def test_fetch_log_events_and_environments():
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/lambda/f")
    base = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    for stream in ("2024/05/01/[$LATEST]aaa", "2024/05/01/[$LATEST]bbb"):
        logs.create_log_stream(logGroupName="/aws/lambda/f", logStreamName=stream)
        logs.put_log_events(logGroupName="/aws/lambda/f", logStreamName=stream, logEvents=[
            {"timestamp": base, "message": "START RequestId: 1 Version: $LATEST"},
            {"timestamp": base + 1, "message": "hello"}])
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    events, truncated = fetch_log_events(logs, "/aws/lambda/f", start, start + dt.timedelta(minutes=2))
    assert len(events) == 4 and truncated is False
    assert execution_environments(events) == ["2024/05/01/[$LATEST]aaa", "2024/05/01/[$LATEST]bbb"]
    assert fetch_log_events(logs, "/aws/lambda/missing", start, start) == ([], False)


def test_secret_leaves_of_json_plain_and_binary():
    assert sorted(secret_leaves(json.dumps({"A": "x1", "B": {"C": 5}, "D": True}))) == ["5", "x1"]
    assert secret_leaves("just-a-token") == ["just-a-token"]
    assert secret_leaves(None, b"bin-token") == ["bin-token"]
    assert secret_leaves(None, None) == []


def test_redact_line_hides_values():
    fp = Fingerprinter(b"k" * 32)
    value = "s3cr3t-value-1234567"
    line = redact_line(f"got {value} ok", [value], fp)
    assert (value in line) is False
    assert line == f"got [s3cr…(20) {fp(value)}] ok"


# -- CloudTrail ------------------------------------------------------------------------------
def trail_event(when, arn=ROLE_SESSION, secret_id=SECRET_ARN, agent="Boto3/1.34 exec-env/AWS_Lambda_python3.12"):
    return {"eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": "GetSecretValue",
            "userIdentity": {"type": "AssumedRole", "arn": arn, "sessionContext": {
                "sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/orders-api-role"}}},
            "sourceIPAddress": "127.0.0.1", "userAgent": agent,
            "requestParameters": {"secretId": secret_id}}


class FakeTrail:
    """LookupEvents that delivers each batch of events one poll later (like AWS's delay)."""

    def __init__(self, *batches):
        self.batches = list(batches)
        self.calls = 0

    def get_paginator(self, name):
        assert name == "lookup_events"
        trail = self

        class Pages:
            def paginate(self, **kwargs):
                assert kwargs["LookupAttributes"] == [{"AttributeKey": "EventName",
                                                       "AttributeValue": "GetSecretValue"}]
                events = trail.batches[min(trail.calls, len(trail.batches) - 1)]
                trail.calls += 1
                return [{"Events": [{"EventName": e["eventName"], "CloudTrailEvent": json.dumps(e)}
                                    for e in events]}]
        return Pages()


def test_event_row_flattens_identity():
    row = event_row(trail_event(T0))
    assert row["ARN"] == ROLE_SESSION and row["userIdentity type"] == "AssumedRole"
    assert row["session issuer"] == "arn:aws:iam::123456789012:role/orders-api-role"
    assert row["request secret id"] == SECRET_ARN and from_lambda(row)
    assert not from_lambda(event_row(trail_event(T0, agent="aws-cli/2.15")))
    frame = cloudtrail_frame([row])
    assert list(frame.columns) == evidence.CLOUDTRAIL_COLUMNS and frame.iloc[0]["ARN"] == ROLE_SESSION


@pytest.mark.parametrize("secret_id, expected", [
    (SECRET_ARN, True), (SECRET_NAME, True), (SECRET_ARN[:-7], True),
    ("lambda/other", False), ("", False), (SECRET_ARN.replace("orders", "billing"), False)])
def test_secret_id_matches(secret_id, expected):
    assert secret_id_matches(secret_id, SECRET_ARN, SECRET_NAME) is expected


def test_lookup_polls_until_found_then_stops():
    other = trail_event(T0, secret_id="lambda/other/config")
    trail = FakeTrail([other], [other], [other, trail_event(T0)])
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    rows, polling = lookup_secret_events(trail, SECRET_ARN, SECRET_NAME, T0, T0, wait_seconds=300,
                                         poll_seconds=30, sleep=sleep, clock=lambda: now[0])
    assert [r["ARN"] for r in rows] == [ROLE_SESSION]
    assert polling == {"attempts": 3, "waited_seconds": 60.0, "satisfied": True}
    assert sleeps == [30, 30]


def test_lookup_gives_up_after_wait_seconds():
    trail = FakeTrail([])
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    rows, polling = lookup_secret_events(trail, SECRET_ARN, SECRET_NAME, T0, T0, wait_seconds=100,
                                         poll_seconds=30, sleep=sleep, clock=lambda: now[0])
    assert rows == [] and polling["satisfied"] is False and polling["attempts"] == 5
    assert polling["waited_seconds"] == 100.0


def test_lookup_without_wait_looks_once():
    trail = FakeTrail([])
    rows, polling = lookup_secret_events(trail, SECRET_ARN, SECRET_NAME, T0, T0, wait_seconds=0,
                                         sleep=lambda s: pytest.fail("slept"))
    assert rows == [] and polling["attempts"] == 1 and trail.calls == 1


# -- files and charts -------------------------------------------------------------------------
def test_write_evidence_and_chart(tmp_path):
    path = write_evidence(tmp_path, "x.json", {"b": 1, "a": T0})
    assert json.loads(path.read_text()) == {"a": str(T0), "b": 1}
    invocations = [{"start": (T0 + dt.timedelta(seconds=i)).isoformat()} for i in range(5)]
    rows = [event_row(trail_event(T0))]
    png = cache_chart(invocations, rows, tmp_path / "charts" / "cache.png")
    assert png.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png._repr_png_() == png.path.read_bytes()


def test_download_code_reads_bounded(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "print('hi')\n")
    package = tmp_path / "code.zip"
    package.write_bytes(buf.getvalue())
    assert evidence.download_code(package.as_uri()) == buf.getvalue()
    with pytest.raises(ValueError, match="larger than"):
        evidence.download_code(package.as_uri(), limit=10)


def test_execution_environments_counts_only_streams_that_served_the_given_requests():
    events = [
        {"stream": "old", "message": "START RequestId: baseline-1 Version: $LATEST", "timestamp": 1},
        {"stream": "new", "message": "START RequestId: req-1 Version: $LATEST", "timestamp": 2},
        {"stream": "new", "message": "START RequestId: req-2 Version: $LATEST", "timestamp": 3},
    ]
    assert execution_environments(events) == ["new", "old"]
    assert execution_environments(events, ["req-1", "req-2"]) == ["new"]
    # request ids no START line names: no environment is guessed
    assert execution_environments(events, ["elsewhere"]) == []
    assert execution_environments([{"stream": "s", "message": "hello", "timestamp": 1}]) == []


def test_execution_environments_read_the_json_log_format_too():
    json_start = '{"time":"2026-01-01T10:00:01.000Z","type":"platform.start","record":{"requestId":"req-1","version":"$LATEST"}}'
    events = [{"stream": "json", "message": json_start, "timestamp": 1},
              {"stream": "app", "message": '{"level":"INFO","message":"platform.start is a word"}', "timestamp": 2},
              {"stream": "bad", "message": "{platform.start", "timestamp": 3}]
    assert execution_environments(events, ["req-1"]) == ["json"]
    assert execution_environments(events) == ["json"]


@pytest.mark.parametrize("selectors, reads", [
    ({}, True),
    ({"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]}, True),
    ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False),
    ({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}, False),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]}, True),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                     {"Field": "readOnly", "Equals": ["false"]}]}]}, False),
])
def test_management_read_selectors(selectors, reads):
    assert evidence.management_reads(selectors)[0] is reads


def test_data_event_selectors_are_listed():
    reads, data = evidence.management_reads({"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]}]}]})
    assert reads is True and data == [{"type": "AWS::Lambda::Function", "values": ["arn:aws:lambda"]}]


def test_json_document_parses_policies_and_refuses_other_json():
    assert evidence.json_document(None) is None and evidence.json_document("") is None
    assert evidence.json_document('{"Statement": []}') == {"Statement": []}
    assert evidence.json_document({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match="not a JSON object"):
        evidence.json_document("[1]")
