"""Validation's collection, source by source: moto in-process, small fakes where moto has no answer."""

import io
import json
import zipfile

import boto3
import pytest
from evidence_factory import ACCOUNT, FUNCTION, REGION, SESSION_ARN, T0, at, invocations, log_event
from moto import mock_aws

from runbook_lib import evidence, validation_collect
from runbook_lib.exceptions import AwsCallError, RunbookError
from runbook_lib.ledger import Ledger
from runbook_lib.records import FunctionCode, FunctionConfig, Secret, Snapshot
from runbook_lib.redaction import Fingerprinter
from runbook_lib.scanning import Scanner
from runbook_lib.session import Target
from runbook_lib.validation_collect import (Collection, deployed_at, new_evidence, read_cloudtrail, read_function,
                                           read_key, read_logs, read_secret, read_secret_policy, run_sources,
                                           scan_code, scan_log_values, write_files)

FP = Fingerprinter(b"v" * 32)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "lambda.amazonaws.com"}}]})
VALUES = {"PARTNER_API_KEY": "pk_" + "Zq8rT2vLk9pW4mX7" * 2, "DB_PASSWORD": "Db" + "N7vQ2xK9mR4tW8zB"}


def contains(text, value):
    """A bare bool, so a failing assert never prints the value."""
    return bool(value in text)


def package(files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        target = Target("lab", REGION, session=boto3.session.Session(region_name=REGION))
        iam = target.client("iam")
        role = iam.create_role(RoleName="orders-api-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        secret = target.client("secretsmanager").create_secret(Name=f"lambda/{FUNCTION}/config",
                                                               SecretString=json.dumps(VALUES))["ARN"]
        target.client("lambda").create_function(
            FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": package({"app.py": "def handler(e, c):\n    return 1\n"})},
            Environment={"Variables": {"SECRET_ID": secret, "TABLE_NAME": "orders"}})
        ledger = Ledger.open(tmp_path / "run")
        ledger.bind(account=ACCOUNT, region=REGION, function_name=FUNCTION)
        ledger.put(Secret(resource=secret, name=f"lambda/{FUNCTION}/config", kms_key="aws/secretsmanager"))
        yield target, ledger, secret


def collection(target, ledger, **kw):
    return Collection(target, ledger, Scanner(fingerprinter=FP), FP, run_dir=ledger.path.parent, **kw)


def fresh(c, function=FUNCTION, count=5):
    return new_evidence(c, function, invocations(count), T0, at(5))


# -- the ledger's side ------------------------------------------------------------------------
def test_deployed_at_is_the_newest_code_or_configuration_change(tmp_path):
    ledger = Ledger.open(tmp_path)
    assert deployed_at(ledger, FUNCTION) is None
    ledger.put(FunctionCode(resource=FUNCTION, at="2026-01-01T09:00:00Z"))
    ledger.put(FunctionConfig(resource=FUNCTION, snapshot_version="1", at="2026-01-01T09:30:00Z"))
    ledger.put(FunctionCode(resource="another", at="2026-01-01T09:59:00Z"))
    assert deployed_at(ledger, FUNCTION) == at(-1800)
    ledger.put(FunctionConfig(resource=FUNCTION, snapshot_version="1", at="not a time"))
    assert deployed_at(ledger, FUNCTION) == at(-3600)


def test_new_evidence_takes_what_the_ledger_says(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.set_baseline(response_shape={"a": "int"})
    ledger.put(Snapshot(resource=FUNCTION, version="1", version_arn="v1", code_sha256="old", role="r",
                        moved_variables=["DB_PASSWORD"]))
    ledger.put(FunctionCode(resource=FUNCTION, at="2026-01-01T09:59:30Z"))
    ledger.put(Secret(resource="arn:s", name="s", kms_key="alias/custom"))
    target = Target("aws", REGION, session=boto3.session.Session(region_name=REGION))
    ev = new_evidence(collection(target, ledger), FUNCTION, invocations(2), T0, at(5), retrieval_log_pattern="x")
    assert (ev.window.read_from, ev.moved_variables, ev.snapshot_code_sha256) == (at(-30), ["DB_PASSWORD"], "old")
    assert (ev.baseline["response_shape"], ev.ledger_kms_key, ev.target, len(ev.invocations)) == (
        {"a": "int"}, "alias/custom", "aws", 2)
    assert ev.retrieval_log_pattern == "x" and ev.errors == {}


def test_run_sources_records_runbook_errors_and_lets_bugs_through(tmp_path):
    target = Target("lab", REGION, session=boto3.session.Session(region_name=REGION))
    ev = fresh(collection(target, Ledger.open(tmp_path)))
    ran = []

    def denied():
        raise AwsCallError("GetRole", "r", "AccessDenied", permission="iam:GetRole")

    run_sources(ev, (("role", denied), ("trails", lambda: ran.append("trails"))))
    assert ev.errors == {"role": "GetRole on r failed: AccessDenied (needs iam:GetRole)"} and ran == ["trails"]
    with pytest.raises(ZeroDivisionError):
        run_sources(ev, (("edge", lambda: 1 / 0),))


# -- the function, its code, the secret, its key --------------------------------------------------
def test_read_function_scans_the_environment(aws):
    target, ledger, _ = aws
    c = collection(target, ledger)
    ev = fresh(c)
    read_function(c, ev)
    assert ev.config["FunctionName"] == FUNCTION and ev.environment_findings == [] and c.code_location
    target.client("lambda").update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {
        "DB_PASSWORD": VALUES["DB_PASSWORD"]}})
    read_function(c, ev)
    assert [f["variable"] for f in ev.environment_findings] == ["DB_PASSWORD"]
    assert contains(json.dumps(ev.environment_findings), VALUES["DB_PASSWORD"]) is False


def test_scan_code_reads_the_package_and_each_layer(aws, monkeypatch):
    target, ledger, _ = aws
    lam = target.client("lambda")
    layer = lam.publish_layer_version(LayerName="shared", Content={"ZipFile": package({"x": "1"})})["LayerVersionArn"]
    lam.update_function_configuration(FunctionName=FUNCTION, Layers=[layer])
    key = "AKIA" + "Q7RT2VX4ZB6NM3KP"
    served = iter([package({"app.py": f'KEY = "{key}"\n'}), package({"cfg.json": "{}"})])  # function, then layer
    monkeypatch.setattr(evidence, "download_code", lambda url: next(served))
    c = collection(target, ledger)
    ev = fresh(c)
    read_function(c, ev)
    scan_code(c, ev)
    assert ev.code["files_scanned"] == 1 and [f["rule"] for f in ev.code["findings"]] == ["aws-access-key-id"]
    assert [(x["layer"], x["files_scanned"], x["findings"]) for x in ev.layers] == [(layer, 1, [])]


def test_scan_code_keeps_a_layer_error_with_the_layer_and_a_download_error_names_no_url(aws, monkeypatch):
    target, ledger, _ = aws
    lam = target.client("lambda")
    layer = lam.publish_layer_version(LayerName="gone", Content={"ZipFile": package({"x": "1"})})
    lam.update_function_configuration(FunctionName=FUNCTION, Layers=[layer["LayerVersionArn"]])
    lam.delete_layer_version(LayerName="gone", VersionNumber=layer["Version"])

    def refuse(url):
        raise OSError(f"HTTP Error 403 fetching {url}")

    monkeypatch.setattr(evidence, "download_code", refuse)
    c = collection(target, ledger)
    ev = fresh(c)
    read_function(c, ev)
    run_sources(ev, (("code", lambda: scan_code(c, ev)),))
    assert ev.errors["code"].startswith("GetFunction (code download) on orders-api failed: OSError")
    assert "://" not in ev.errors["code"]
    monkeypatch.setattr(evidence, "download_code", lambda url: package({"app.py": "x = 1\n"}))
    scan_code(c, ev)
    assert ev.layers[0]["layer"] == layer["LayerVersionArn"] and "GetLayerVersion" in ev.layers[0]["error"]


def test_scan_code_without_the_function_or_for_an_image(aws):
    target, ledger, _ = aws
    c = collection(target, ledger)
    ev = fresh(c)
    ev.errors["function"] = "denied"
    with pytest.raises(RunbookError, match="the function's configuration could not be read"):
        scan_code(c, ev)
    ev = fresh(c)
    ev.config = {"PackageType": "Image"}
    scan_code(c, ev)
    assert ev.code is None
    ev.config = {"PackageType": "Zip"}
    with pytest.raises(RunbookError, match="returned no Code.Location"):
        scan_code(c, ev)


def test_the_secret_its_resource_policy_and_its_default_key(aws):
    target, ledger, secret = aws
    c = collection(target, ledger)
    ev = fresh(c)
    read_secret(c, ev)
    read_secret_policy(c, ev)
    read_key(c, ev)
    assert ev.secret_arn == secret and "SecretString" not in ev.secret and ev.secret_policy is None
    assert ev.key == {"kms_key_id": "alias/aws/secretsmanager (default)", "key_manager": "AWS", "key_arn": "",
                      "key_state": "", "key_rotation_enabled": None}
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                                                        "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]}
    target.client("secretsmanager").put_resource_policy(SecretId=secret, ResourcePolicy=json.dumps(document))
    read_secret_policy(c, ev)
    assert ev.secret_policy == document


def test_a_customer_key_is_described_with_its_state_and_rotation(aws):
    target, ledger, _ = aws
    kms = target.client("kms")
    key = kms.create_key()["KeyMetadata"]
    arn = target.client("secretsmanager").create_secret(Name="cmk", SecretString="{}", KmsKeyId=key["Arn"])["ARN"]
    ledger.put(Secret(resource=arn, name="cmk"))
    kms.disable_key(KeyId=key["KeyId"])
    c = collection(target, ledger)
    ev = fresh(c)
    read_secret(c, ev)
    read_key(c, ev)
    assert (ev.key["key_manager"], ev.key["key_state"], ev.key["key_arn"]) == ("CUSTOMER", "Disabled", key["Arn"])
    assert ev.key["key_rotation_enabled"] is False


def test_without_a_secret_the_secret_sources_are_empty_and_after_an_error_they_say_so(tmp_path):
    target = Target("lab", REGION, session=boto3.session.Session(region_name=REGION))
    c = collection(target, Ledger.open(tmp_path))
    ev = fresh(c)
    for step in (read_secret, read_secret_policy, read_key, read_cloudtrail):
        step(c, ev)
    assert (ev.secret, ev.secret_policy, ev.trail_rows) == ({}, None, [])
    ev.errors["secret"] = "denied"
    for step in (read_secret_policy, read_key, read_cloudtrail):
        with pytest.raises(RunbookError, match="the secret could not be read"):
            step(c, ev)


def test_the_secret_id_falls_back_to_the_functions_secret_id(aws):
    target, ledger, secret = aws
    empty = Ledger.open(ledger.path.parent / "other")
    c = collection(target, empty)
    ev = fresh(c)
    read_function(c, ev)
    read_secret(c, ev)
    assert ev.secret_arn == secret


# -- logs, CloudTrail, values -----------------------------------------------------------------------
class FakeLogs:
    """FilterLogEvents answering from batches: each call returns the next (delivery lag)."""

    class exceptions:
        ResourceNotFoundException = type("ResourceNotFoundException", (Exception,), {})

    def __init__(self, *batches):
        self.batches, self.calls = list(batches), 0

    def get_paginator(self, name):
        logs = self

        class Pages:
            def paginate(self, **kwargs):
                events = logs.batches[min(logs.calls, len(logs.batches) - 1)]
                logs.calls += 1
                return [{"events": [{"logStreamName": e["stream"], "timestamp": e["timestamp"],
                                     "message": e["message"]} for e in events]}]
        return Pages()


class Clients:
    def __init__(self, **clients):
        self.name, self.region, self.clients = "lab", REGION, clients

    def client(self, service, region=None, **kwargs):
        return self.clients[service]


def end_lines(count):
    return [log_event(i, f"END RequestId: req-{i}") for i in range(1, count + 1)]


def test_logs_are_polled_until_every_end_line_is_there(tmp_path):
    logs = FakeLogs(end_lines(2), end_lines(5))
    c = Collection(Clients(logs=logs), Ledger.open(tmp_path), None, FP, trail_wait_seconds=300, poll_seconds=1)
    ev = fresh(c)
    slept = []
    read_logs(c, ev, clock=lambda: 0.0, sleep=slept.append)
    assert (len(ev.log_events), logs.calls, slept) == (5, 2, [1])


def test_logs_polling_gives_up_after_the_wait(tmp_path):
    logs = FakeLogs(end_lines(1))
    ticks = iter([0.0, 50.0, 130.0])
    c = Collection(Clients(logs=logs), Ledger.open(tmp_path), None, FP, trail_wait_seconds=900, poll_seconds=30)
    ev = fresh(c)
    read_logs(c, ev, clock=lambda: next(ticks), sleep=lambda s: None)
    assert logs.calls == 2 and len(ev.log_events) == 1  # waited at most 120 s for logs


def test_cloudtrail_rows_are_the_secrets_and_polling_stops_at_the_functions_fetch(tmp_path):
    from test_evidence import FakeTrail, trail_event

    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:lambda/{FUNCTION}/config-AbCdEf"
    trail = FakeTrail([trail_event(at(1), arn="arn:aws:iam::123456789012:user/x", secret_id=secret)],
                      [trail_event(at(1), secret_id=secret), trail_event(at(2), secret_id="other")])
    c = Collection(Clients(cloudtrail=trail), Ledger.open(tmp_path), None, FP, trail_wait_seconds=60, poll_seconds=0)
    ev = fresh(c)
    ev.config = {"FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
                 "Role": f"arn:aws:iam::{ACCOUNT}:role/orders-api-role"}
    ev.secret = {"ARN": secret, "Name": f"lambda/{FUNCTION}/config"}
    read_cloudtrail(c, ev)
    assert [r["ARN"] for r in ev.trail_rows] == [SESSION_ARN] and ev.trail_polling["satisfied"] is True
    assert ev.trail_polling["attempts"] == 2


def test_values_are_compared_in_memory_and_never_written(aws):
    target, ledger, secret = aws
    c = collection(target, ledger)
    ev = fresh(c)
    read_secret(c, ev)
    foreign = "AKIA" + "Z5XW7RT2QK9PM3LV"
    ev.log_events = [log_event(1, "START RequestId: req-1"), log_event(1.1, f"debug key={VALUES['PARTNER_API_KEY']}"),
                     log_event(1.2, f"using {foreign}"), log_event(1.3, "ok")]
    scan_log_values(c, ev)
    scan = ev.value_scan
    assert (scan["values_in_secret"], scan["values_searched"], scan["values_too_short_to_search"]) == (2, 2, 0)
    assert scan["hits"] == [{"fingerprint": FP(VALUES["PARTNER_API_KEY"]), "preview": scan["hits"][0]["preview"],
                             "events": 1, "streams": [ev.log_events[0]["stream"]]}]
    assert sorted(scan["secret_fingerprints"]) == sorted(FP(v) for v in VALUES.values())
    assert "aws-access-key-id" in {f["rule"] for f in scan["scanner_findings"]}
    messages = [line["message"] for line in ev.excerpt]
    assert messages[0] == "START RequestId: req-1" and messages[3] == "ok"
    assert messages[1] == validation_collect.WITHHELD or FP(VALUES["PARTNER_API_KEY"]) in messages[1]
    assert messages[2] == validation_collect.WITHHELD
    write_files(c, ev)
    text = "".join(p.read_text() for p in ledger.path.parent.glob("*.json")) + repr(ev) + json.dumps(ev.excerpt)
    assert contains(text, VALUES["PARTNER_API_KEY"]) is False and contains(text, foreign) is False
    assert json.loads((ledger.path.parent / "log_excerpt.json").read_text())["value_scan"]["hits"][0]["events"] == 1


def test_short_values_are_counted_not_searched(aws):
    target, ledger, secret = aws
    target.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps({"PIN": "12345"}))
    c = collection(target, ledger)
    ev = fresh(c)
    read_secret(c, ev)
    ev.log_events = [log_event(1, "pin 12345")]
    scan_log_values(c, ev)
    assert (ev.value_scan["values_searched"], ev.value_scan["values_too_short_to_search"], ev.value_scan["hits"]) == (
        0, 1, [])


def test_a_denied_value_read_still_redacts_the_excerpt(aws, monkeypatch):
    target, ledger, secret = aws
    c = collection(target, ledger)
    ev = fresh(c)
    read_secret(c, ev)
    ev.log_events = [log_event(1, "hello")]
    sm = target.client("secretsmanager")

    def refuse(**kwargs):
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    monkeypatch.setattr(sm, "get_secret_value", refuse)
    run_sources(ev, (("log_values", lambda: scan_log_values(c, ev)),))
    assert ev.errors["log_values"].startswith("GetSecretValue on ") and ev.excerpt[0]["message"] == "hello"


def test_write_files_marks_each_event(aws):
    target, ledger, secret = aws
    c = collection(target, ledger)
    ev = fresh(c)
    ev.config = {"FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
                 "Role": f"arn:aws:iam::{ACCOUNT}:role/orders-api-role"}
    ev.secret = {"ARN": secret}
    from evidence_factory import trail_row
    ev.trail_rows = [trail_row(1, secret_id=secret), trail_row(-300, secret_id=secret)]
    write_files(c, ev)
    doc = json.loads((ledger.path.parent / "cloudtrail_events.json").read_text())
    assert [(e["attributed"], e["in_invocation_window"]) for e in doc["events"]] == [(True, True), (True, False)]
    assert doc["expected_identity"] == SESSION_ARN and doc["target"] == "lab"
