"""Validation checks: unit tests on fabricated evidence (moto in-process), then the lab end to end."""

import datetime as dt
import json

import boto3
import pytest
from moto import mock_aws

from runbook_lib.checks import FAIL, PASS, SKIP, WARN
from runbook_lib.evidence import event_row, iso
from runbook_lib.exceptions import InputError
from runbook_lib.ledger import Ledger
from runbook_lib.records import FunctionCode, Policy, Secret, Snapshot
from runbook_lib.redaction import Fingerprinter
from runbook_lib.validation import CHECK_IDS, CONTROL_MAP, Validation

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION = "orders-api"
ROLE = "orders-api-role"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{FUNCTION}"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}


def contains(text, value):
    """Whether ``value`` is in ``text``, as a bare bool so a failing assert never prints the value."""
    return bool(value in text)


# -- unit: fabricated evidence ------------------------------------------------------------
class FakeTarget:
    """A Target stand-in handing out moto in-process clients."""

    def __init__(self, name="lab"):
        self.name, self.region = name, REGION

    def client(self, service, region=None, **kwargs):
        return boto3.client(service, region_name=region or REGION)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def secret(aws):
    sm = boto3.client("secretsmanager", region_name=REGION)
    values = {"PARTNER_API_KEY": "pk_" + "x7" * 12, "DB_PASSWORD": "pw-" + "q9" * 8}
    arn = sm.create_secret(Name=f"lambda/{FUNCTION}/config", SecretString=json.dumps(values))["ARN"]
    return arn, values


def make_validation(tmp_path, secret_arn="", target=None, **kw):
    ledger = Ledger.open(tmp_path)
    ledger.bind(account=ACCOUNT, region=REGION, function_name=FUNCTION)
    if secret_arn:
        ledger.put(Secret(resource=secret_arn, name="lambda/fn/config", kms_key="aws/secretsmanager"))
    v = Validation(target or FakeTarget(), ledger, tmp_path, invocations=5, scanner=kw.pop("scanner", None),
                   fingerprinter=Fingerprinter(b"k" * 32), **kw)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    v.window_start, v.window_end = start, start + dt.timedelta(seconds=5)
    v.role_name = ROLE
    v.function = {"Configuration": {"FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
                                    "Role": f"arn:aws:iam::{ACCOUNT}:role/{ROLE}",
                                    "Environment": {"Variables": {"TABLE_NAME": "orders"}}}}
    v.invocations = [{"index": i, "start": iso(start + dt.timedelta(seconds=i)), "end": "", "duration_ms": 5.0,
                      "status_code": 200, "function_error": "", "executed_version": "$LATEST", "request_id": "",
                      "http_status": 200, "response_bytes": 10,
                      "response_shape": {"statusCode": "int", "body": {"orders": "int"}}} for i in range(5)]
    v.collected = True
    return v


def log_events(v, messages, stream="2024/05/01/[$LATEST]abc"):
    base = int(v.window_start.timestamp() * 1000) + 100
    return [{"stream": stream, "timestamp": base + i, "message": m} for i, m in enumerate(messages)]


def trail(v, count, arn=SESSION_ARN, agent="Boto3 exec-env/AWS_Lambda_python3.12"):
    rows = []
    for i in range(count):
        when = v.window_start + dt.timedelta(seconds=i)
        rows.append(event_row({"eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": "GetSecretValue",
                               "userIdentity": {"type": "AssumedRole", "arn": arn},
                               "userAgent": agent, "requestParameters": {"secretId": "x"}}))
    return rows


def invocation_logs(v, fetch_every_call=False, extra=()):
    messages = []
    for i in range(5):
        messages.append(f"START RequestId: r{i} Version: $LATEST")
        if i == 0 or fetch_every_call:
            messages.append("[INFO] secret retrieved from Secrets Manager (cached for next invocations)")
        messages.extend(extra)
        messages += [f"END RequestId: r{i}", f"REPORT RequestId: r{i} Duration: 1 ms"]
    return log_events(v, messages)


def test_constructor_validates_parameters(tmp_path):
    ledger = Ledger.open(tmp_path)
    with pytest.raises(InputError, match="function_name"):
        Validation(FakeTarget(), ledger, tmp_path)
    with pytest.raises(InputError, match="payload"):
        Validation(FakeTarget(), ledger, tmp_path, FUNCTION, payload="{nope")
    v = Validation(FakeTarget("aws"), ledger, tmp_path, FUNCTION, payload='{"a": 1}')
    assert v.payload == {"a": 1} and v.trail_wait_seconds == 900
    assert Validation(FakeTarget("lab"), ledger, tmp_path, FUNCTION).trail_wait_seconds == 0


def test_every_check_maps_to_known_controls():
    from runbook_lib.checks import CONTROLS
    assert set(CONTROL_MAP) == set(CHECK_IDS)
    assert all(c in CONTROLS for controls in CONTROL_MAP.values() for c in controls)


def test_function_invokes_and_parity(tmp_path):
    v = make_validation(tmp_path)
    assert v.check_function_invokes().status == PASS
    assert v.check_functional_parity().status == SKIP
    v.ledger.set_baseline(response_shape={"statusCode": "int", "body": {"orders": "int"}})
    assert v.check_functional_parity().status == PASS
    v.ledger.set_baseline(response_shape={"statusCode": "int", "body": {"orders": "int", "partner": "str"}})
    check = v.check_functional_parity()
    assert check.status == FAIL and "$.body.partner: missing" in check.reason
    v.invocations[2]["function_error"] = "Unhandled"
    check = v.check_function_invokes()
    assert check.status == FAIL and check.reason == "invocation 2: FunctionError Unhandled"


def test_variable_left_behind_fails_environment(tmp_path):
    v = make_validation(tmp_path)
    v.ledger.put(Snapshot(resource=FUNCTION, version="1", version_arn=f"arn:{FUNCTION}:1", code_sha256="old",
                          role="arn:aws:iam::123456789012:role/r", moved_variables=["DB_PASSWORD"]))
    v.scanner  # the real engine
    assert v.check_no_secrets_in_environment().status == PASS
    v.function["Configuration"]["Environment"]["Variables"]["DB_PASSWORD"] = "correct-horse-battery-staple"
    check = v.check_no_secrets_in_environment()
    assert check.status == FAIL and "DB_PASSWORD" in check.reason
    assert check.evidence["left_behind"] == ["DB_PASSWORD"]
    assert contains(json.dumps(check.evidence), "correct-horse-battery-staple") is False


def test_retrieval_line_and_cache(tmp_path, secret):
    v = make_validation(tmp_path, secret[0])
    v.secret = {"ARN": secret[0], "Name": f"lambda/{FUNCTION}/config"}
    v.log_events = invocation_logs(v)
    v.trail_rows = trail(v, 1)
    assert v.check_secret_retrieved_at_runtime().status == PASS
    cached = v.check_secret_cached()
    assert cached.status == PASS
    assert (cached.evidence["get_secret_value_calls"], cached.evidence["execution_environments"]) == (1, 1)
    attribution = v.check_cloudtrail_attribution()
    assert attribution.status == PASS and attribution.evidence["matched"][0]["ARN"] == SESSION_ARN


def test_fetch_on_every_call_fails_cache(tmp_path, secret):
    v = make_validation(tmp_path, secret[0])
    v.secret = {"ARN": secret[0], "Name": f"lambda/{FUNCTION}/config"}
    v.log_events = invocation_logs(v, fetch_every_call=True)
    v.trail_rows = trail(v, 5)
    check = v.check_secret_cached()
    assert check.status == FAIL and "5 fetches for 5 invocations on 1 execution environment" in check.reason


def test_attribution_needs_the_function_role_from_lambda(tmp_path, secret):
    v = make_validation(tmp_path, secret[0])
    v.secret = {"ARN": secret[0], "Name": "n"}
    v.trail_rows = trail(v, 1, arn=f"arn:aws:iam::{ACCOUNT}:user/lab-admin") + trail(v, 1, agent="aws-cli/2")
    check = v.check_cloudtrail_attribution()
    assert check.status == FAIL and "lab-admin" in check.reason
    assert check.evidence["expected_identity"] == SESSION_ARN


def test_no_secret_in_logs_fails_on_a_printed_value_and_keeps_it_out(tmp_path, secret):
    arn, values = secret
    v = make_validation(tmp_path, arn)
    v.secret = {"ARN": arn, "Name": "n"}
    v.log_events = invocation_logs(v, extra=[f"debug config key={values['PARTNER_API_KEY']}"])
    v._scan_log_values()
    v._write_log_excerpt()
    check = v.check_no_secret_in_logs()
    assert check.status == FAIL and "5 log event(s) hold a value of the secret" in check.reason
    fp = Fingerprinter(b"k" * 32)(values["PARTNER_API_KEY"])
    assert check.evidence["hits"][0]["fingerprint"] == fp
    excerpt = (tmp_path / "log_excerpt.json").read_text()
    assert contains(excerpt, values["PARTNER_API_KEY"]) is False
    assert fp in excerpt
    assert contains(json.dumps(check.evidence), values["PARTNER_API_KEY"]) is False


def test_no_secret_in_logs_passes_on_clean_logs(tmp_path, secret):
    v = make_validation(tmp_path, secret[0])
    v.secret = {"ARN": secret[0], "Name": "n"}
    v.log_events = invocation_logs(v)
    v._scan_log_values()
    check = v.check_no_secret_in_logs()
    assert check.status == PASS and check.evidence["values_searched"] == 2


def test_secret_encrypted_warns_without_rotation(tmp_path, secret):
    v = make_validation(tmp_path, secret[0])
    v._collect_secret()
    check = v.check_secret_encrypted()
    assert check.status == WARN and "rotation is not enabled" in check.reason
    assert check.evidence["kms_key_id"].startswith("alias/aws/secretsmanager")


def test_secret_encrypted_with_disabled_cmk_fails(tmp_path, aws):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="s", SecretString="{}", KmsKeyId=key["Arn"])["ARN"]
    v = make_validation(tmp_path, arn)
    v._collect_secret()
    kms.disable_key(KeyId=key["KeyId"])
    check = v.check_secret_encrypted()
    assert check.status == FAIL and "Disabled" in check.reason
    assert check.evidence["key_manager"] == "CUSTOMER"


def test_audit_logging(tmp_path, aws):
    v = make_validation(tmp_path)
    assert v.check_audit_logging().status == FAIL
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="trail-bucket")
    ct = boto3.client("cloudtrail", region_name=REGION)
    ct.create_trail(Name="org-trail", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    ct.start_logging(Name="org-trail")
    check = v.check_audit_logging()
    assert check.status == PASS and check.evidence["qualifying"] == ["org-trail"]
    ct.put_event_selectors(TrailName="org-trail", EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    check = v.check_audit_logging()
    assert check.status == FAIL and "no management read events" in check.reason
    ct.put_event_selectors(TrailName="org-trail", EventSelectors=[{"ReadWriteType": "All"}])
    ct.stop_logging(Name="org-trail")
    check = v.check_audit_logging()
    assert check.status == FAIL and "org-trail: not logging" in check.reason


def test_least_privilege_with_moto(tmp_path, secret):
    arn = secret[0]
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName=ROLE, PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                 "Resource": arn}]}))
    v = make_validation(tmp_path, arn, live_probe=False)
    v._collect_secret()
    v._collect_iam()
    check = v.check_least_privilege()
    assert check.status == PASS, check.reason
    assert check.evidence["live_probe"] == {"performed": False, "reason": "live_probe parameter"}
    assert json.loads((tmp_path / "iam_analysis.json").read_text())["problems"] == []
    iam.put_role_policy(RoleName=ROLE, PolicyName="wide", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
                                                 "Resource": "*"}]}))
    v._collect_iam()
    check = v.check_least_privilege()
    assert check.status == FAIL and "wildcard action secretsmanager:*" in check.reason


def test_edge_association_skips_without_ledger_entry(tmp_path):
    check = make_validation(tmp_path).check_edge_association()
    assert check.status == SKIP and "no Lambda@Edge" in check.reason


def test_summary_labels_the_target(tmp_path):
    v = make_validation(tmp_path)
    v.checks = [v.check_function_invokes(), v.check_functional_parity()]
    text = str(v.summary())
    assert "target lab" in text and "NOT production evidence" in text
    assert "1 passed, 0 failed, 0 warned, 1 skipped" in text
    assert v.summary().to_dict()["counts"][PASS] == 1


# -- integration: the lab ----------------------------------------------------------------------
import io  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402

from runbook_lib.session import Target  # noqa: E402

LAB_HANDLER = textwrap.dedent('''
    import json, os
    import boto3

    _cache = {}

    def _secret():
        if "config" not in _cache or os.environ.get("FETCH_EVERY_CALL"):
            value = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["SECRET_ID"])
            _cache["config"] = json.loads(value["SecretString"])
            print("[INFO] secret retrieved from Secrets Manager (cached for next invocations)")
            if os.environ.get("PRINT_SECRET"):
                print("debug:", _cache["config"]["PARTNER_API_KEY"])
        return _cache["config"]

    def handler(event, context):
        config = _secret()
        return {"statusCode": 200, "body": json.dumps({"orders": 3, "partner": "accepted",
                                                       "db_configured": bool(config.get("DB_PASSWORD"))})}
''')
BASIC_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]}
BASELINE_SHAPE = {"statusCode": "int", "body": {"orders": "int", "partner": "str", "db_configured": "bool"}}


def _zip(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16  # world-readable, as Lambda's runtime user needs
        zf.writestr(info, source)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lab_env():
    from runbook_lib.lab import Lab

    with Lab(seed=False) as running:
        s3 = running.client("s3")
        s3.create_bucket(Bucket="audit-trail-logs")
        ct = running.client("cloudtrail")
        ct.create_trail(Name="org-trail", S3BucketName="audit-trail-logs", IsMultiRegionTrail=True)
        ct.start_logging(Name="org-trail")
        yield running


def deploy(lab, tmp_path, name, variables=None, secret_policy=None, role=None, extra_env=None):
    """The state the implementation leaves: secret, scoped policy, function fetching at run time."""
    iam, sm, lam = lab.client("iam"), lab.client("secretsmanager"), lab.client("lambda")
    role = role or f"{name}-role"
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="basic-logs", PolicyDocument=json.dumps(BASIC_LOGS))
    values = {"PARTNER_API_KEY": "pk-" + name + "-a8f3k2m9x7q1w4e6", "DB_PASSWORD": "db-" + name + "-Zr5t8y2u"}
    secret_arn = sm.create_secret(Name=f"lambda/{name}/config", SecretString=json.dumps(values))["ARN"]
    document = secret_policy or {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]}
    policy_arn = iam.create_policy(PolicyName=f"LambdaSecretsManagerPolicy-{name}",
                                   PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    ledger = Ledger.open(tmp_path)
    ledger.bind(target="lab", account=ACCOUNT, region=REGION, function_name=name)
    ledger.set_baseline(response_shape=BASELINE_SHAPE, baseline_status="ok")
    ledger.put(Snapshot(resource=name, version="1", version_arn=f"{name}:1", code_sha256="old", role=role_arn,
                        moved_variables=["PARTNER_API_KEY", "DB_PASSWORD"]))
    ledger.put(Secret(resource=secret_arn, name=f"lambda/{name}/config", kms_key="aws/secretsmanager"))
    ledger.put(Policy(resource=policy_arn, step="iam"))
    ledger.put(FunctionCode(resource=name, action="changed", step="function"))
    env = {"SECRET_ID": secret_arn, "TABLE_NAME": "orders", **(variables or {}), **(extra_env or {})}
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
                        Code={"ZipFile": _zip(LAB_HANDLER)}, Environment={"Variables": env}, Timeout=30)
    for _ in range(100):
        if lam.get_function_configuration(FunctionName=name).get("State", "Active") == "Active":
            break
        time.sleep(0.1)
    return ledger, values


def run_validation(lab, tmp_path, name, ledger, **kw):
    target = Target.from_parameters("lab", region=REGION, endpoint_url=lab.endpoint_url, session=lab.session())
    v = Validation(target, ledger, tmp_path, name, invocations=5, **kw)
    v.invoke()
    v.collect()
    checks = {c.id: c for c in v.run_checks()}
    return v, checks


def no_value_in_run_folder(folder, values):
    texts = [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.suffix == ".json"]
    return not any(value in text for text in texts for value in values.values())


def test_lab_all_checks_pass_with_evidence(lab_env, tmp_path):
    ledger, values = deploy(lab_env, tmp_path, "orders-api", role="orders-api-role")
    v, checks = run_validation(lab_env, tmp_path, "orders-api", ledger)
    statuses = {cid: c.status for cid, c in checks.items()}
    expected = {cid: PASS for cid in CHECK_IDS}
    expected.update({"secret-encrypted": WARN, "edge-association": SKIP})
    assert statuses == expected, {cid: checks[cid].reason for cid in checks if statuses[cid] != expected[cid]}
    attribution = checks["cloudtrail-attribution"].evidence
    assert attribution["matched"][0]["ARN"] == SESSION_ARN
    assert attribution["matched"][0]["session issuer"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    assert "exec-env/AWS_Lambda_python3.12" in attribution["matched"][0]["userAgent"]
    cached = checks["secret-cached"].evidence
    assert (cached["invocations"], cached["get_secret_value_calls"], cached["execution_environments"]) == (5, 1, 1)
    assert checks["least-privilege"].evidence["grants"][0]["resources"] == [ledger.find("secret").resource]
    assert checks["audit-logging"].evidence["qualifying"] == ["org-trail"]
    assert "rotation is not enabled" in checks["secret-encrypted"].reason
    for name in ("invocations.json", "cloudtrail_events.json", "log_excerpt.json", "iam_analysis.json"):
        doc = json.loads((tmp_path / name).read_text())
        assert doc["target"] == "lab", name
    chart = v.cache_chart(tmp_path / "secret_cache.png")
    assert chart.path.read_bytes()[:4] == b"\x89PNG"
    frame = v.cloudtrail_table()
    assert frame[frame["by the function"]]["ARN"].tolist() == [SESSION_ARN]
    assert len(v.log_table()) > 0
    summary = str(v.summary())
    assert "target lab" in summary and "0 failed" in summary
    assert no_value_in_run_folder(tmp_path, values)


def test_lab_wide_policy_fails_least_privilege(lab_env, tmp_path):
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*",
                                                    "Resource": "*"}]}
    ledger, _ = deploy(lab_env, tmp_path, "wide-api", secret_policy=wide)
    _, checks = run_validation(lab_env, tmp_path, "wide-api", ledger)
    check = checks["least-privilege"]
    assert check.status == FAIL
    assert "wildcard action secretsmanager:*" in check.reason and "grant on *" in check.reason
    assert checks["function-invokes"].status == PASS


def test_lab_handler_printing_the_secret_fails_logs(lab_env, tmp_path):
    ledger, values = deploy(lab_env, tmp_path, "leaky-api", extra_env={"PRINT_SECRET": "1"})
    _, checks = run_validation(lab_env, tmp_path, "leaky-api", ledger)
    check = checks["no-secret-in-logs"]
    assert check.status == FAIL and "hold a value of the secret" in check.reason
    assert check.evidence["hits"][0]["events"] == 1
    assert no_value_in_run_folder(tmp_path, values)


def test_lab_fetch_on_every_call_fails_cache(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "uncached-api", extra_env={"FETCH_EVERY_CALL": "1"})
    _, checks = run_validation(lab_env, tmp_path, "uncached-api", ledger)
    check = checks["secret-cached"]
    assert check.status == FAIL and "5 fetches for 5 invocations on 1 execution environment" in check.reason
    assert check.evidence["get_secret_value_calls"] == 5


def test_lab_variable_left_behind_fails_environment(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "leftover-api", variables={"DB_PASSWORD": "Zr5t8y2u-left-behind"})
    _, checks = run_validation(lab_env, tmp_path, "leftover-api", ledger)
    check = checks["no-secrets-in-environment"]
    assert check.status == FAIL and "migrated variable(s) still set: DB_PASSWORD" in check.reason


def test_lab_stopped_trail_fails_audit_logging(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "trail-api")
    ct = lab_env.client("cloudtrail")
    ct.stop_logging(Name="org-trail")
    try:
        _, checks = run_validation(lab_env, tmp_path, "trail-api", ledger)
    finally:
        ct.start_logging(Name="org-trail")
    check = checks["audit-logging"]
    assert check.status == FAIL and "org-trail: not logging" in check.reason


def test_lab_live_probe_with_iam_enforcement(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "probe-api")
    # the probe follows the trust policy: this role also trusts the account, so it may be assumed
    lab_env.client("iam").update_assume_role_policy(RoleName="probe-api-role", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": TRUST["Statement"] + [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    lab_env.set_enforce_iam(True)
    try:
        _, checks = run_validation(lab_env, tmp_path, "probe-api", ledger)
    finally:
        lab_env.set_enforce_iam(False)
    check = checks["least-privilege"]
    probe = check.evidence["live_probe"]
    assert check.status == PASS, check.reason
    assert (probe["performed"], probe["own_secret"], probe["decoy"]) == (True, "allowed", "AccessDeniedException")
    assert probe["denial_shown"] is True


def lab_validation(lab, tmp_path, name, ledger):
    target = Target.from_parameters("lab", region=REGION, endpoint_url=lab.endpoint_url, session=lab.session())
    v = Validation(target, ledger, tmp_path, name)
    v._read_function()
    return v


def test_lab_edge_association_points_to_the_published_version(lab_env, tmp_path):
    import uuid

    from runbook_lib import edge

    ledger, _ = deploy(lab_env, tmp_path, "edge-api")
    lam, cf = lab_env.client("lambda"), lab_env.client("cloudfront")
    first = lam.publish_version(FunctionName="edge-api")["FunctionArn"]
    behaviour = {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https", "MinTTL": 0,
                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}}
    distribution = cf.create_distribution(DistributionConfig={
        "CallerReference": uuid.uuid4().hex, "Comment": "edge", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": "example.com", "CustomOriginConfig": {
            "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": behaviour})["Distribution"]["Id"]
    edge.set_viewer_request(cf, distribution, first)
    ledger.record("edge_association", distribution, "created", "edge", {"version_arn": first})
    v = lab_validation(lab_env, tmp_path, "edge-api", ledger)
    check = v.check_edge_association()
    assert check.status == PASS, check.reason
    assert check.evidence["associations"] == [{"behaviour": "default", "event_type": "viewer-request",
                                               "function_arn": first}]
    lam.update_function_configuration(FunctionName="edge-api", Description="v2")
    lam.get_waiter("function_updated_v2").wait(FunctionName="edge-api", WaiterConfig={"Delay": 0.1})
    second = lam.publish_version(FunctionName="edge-api")["FunctionArn"]
    ledger.record("edge_association", distribution, "changed", "edge", {"version_arn": second})
    check = v.check_edge_association()
    assert check.status == FAIL and f"no viewer-request association of {second}" in check.reason


def test_lab_layer_with_a_token_warns_code_check(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "layered-api")
    lam = lab_env.client("lambda")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/shared_config.json",
                    json.dumps({"service_token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2}))
    layer = lam.publish_layer_version(LayerName="shared-config", Content={"ZipFile": buf.getvalue()},
                                      CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    lam.update_function_configuration(FunctionName="layered-api", Layers=[layer])
    v = lab_validation(lab_env, tmp_path, "layered-api", ledger)
    v._scanner = None
    check = v.check_no_secrets_in_code()
    assert check.status == WARN and "layer(s)" in check.reason, check.reason
    assert check.evidence["findings"] == [] and check.evidence["files_scanned"] == 1
    assert check.evidence["layers"][0]["layer"] == layer and check.evidence["layers"][0]["findings"]


def test_unreadable_source_fails_the_checks_resting_on_it(tmp_path):
    v = make_validation(tmp_path, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf")
    v.collect_errors = {"secret": "DescribeSecret on s failed: AccessDeniedException (needs secretsmanager:DescribeSecret)"}
    for method in (v.check_no_secret_in_logs, v.check_cloudtrail_attribution, v.check_secret_cached,
                   v.check_least_privilege, v.check_secret_encrypted):
        check = method()
        assert check.status == FAIL and "The secret could not be read: DescribeSecret" in check.reason, check.id


# -- integration: the seeded lab after the real implementation ----------------------------------
@pytest.fixture(scope="module")
def seeded_after_implementation(tmp_path_factory):
    """Seeded lab -> test plan baseline invocation -> implementation applied (reference handler)."""
    from runbook_lib.audit import baseline_invocation
    from runbook_lib.implementation import Implementation
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        target = Target.from_parameters("lab", region=REGION, endpoint_url=running.endpoint_url,
                                        session=running.session())
        run_dir = tmp_path_factory.mktemp("seeded-run")
        env = running.client("lambda").get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
        seeded_values = {k: env[k] for k in running.seed_info["secret_env_vars"]}
        ledger = Ledger.open(run_dir)
        ledger.bind(target="lab", account=ACCOUNT, region=REGION, function_name=FUNCTION)
        assert baseline_invocation(target, FUNCTION, ledger)["baseline_status"] == "ok"
        Implementation(target, ledger, FUNCTION, change_ticket="CHG-VALIDATION", apply=True,
                       strategy="reference").apply()
        yield running, target, ledger, run_dir, seeded_values


def test_seeded_lab_after_implementation_every_check_passes(seeded_after_implementation):
    lab, target, ledger, run_dir, seeded_values = seeded_after_implementation
    lab.set_enforce_iam(True)
    try:
        v = Validation(target, ledger, run_dir, "", invocations=5, payload="{}", trail_wait_seconds=-1)
        v.invoke()
        v.collect()
        v.cache_chart(run_dir / "secret_cache.png")
        checks = {c.id: c for c in v.run_checks()}
    finally:
        lab.set_enforce_iam(False)
    statuses = {cid: c.status for cid, c in checks.items()}
    expected = {cid: PASS for cid in CHECK_IDS}
    # WARNs with their reason: rotation is off until close-out; the seeded layer's token is another change.
    expected.update({"secret-encrypted": WARN, "no-secrets-in-code": WARN, "edge-association": SKIP})
    assert statuses == expected, {cid: checks[cid].reason for cid in checks if statuses[cid] != expected[cid]}
    assert "orders-shared-config" in checks["no-secrets-in-code"].reason
    assert checks["no-secrets-in-code"].evidence["findings"] == []
    assert checks["no-secrets-in-code"].evidence["code_changed_since_snapshot"] is True
    assert checks["functional-parity"].evidence["baseline_shape"] == BASELINE_SHAPE
    assert checks["no-secrets-in-environment"].evidence["left_behind"] == []
    matched = checks["cloudtrail-attribution"].evidence["matched"]
    assert [m["ARN"] for m in matched] == ["arn:aws:sts::123456789012:assumed-role/orders-api-role/orders-api"]
    assert matched[0]["userIdentity type"] == "AssumedRole"
    assert matched[0]["request secret id"] == ledger.find("secret").resource
    cached = checks["secret-cached"].evidence
    assert (cached["invocations"], cached["get_secret_value_calls"], cached["execution_environments"]) == (5, 1, 1)
    assert cached["chart"] == "secret_cache.png"
    probe = checks["least-privilege"].evidence["live_probe"]
    # orders-api-role trusts only Lambda: the probe is not performed, in the lab as on AWS
    assert probe["performed"] is False and "trusts only AWS services" in probe["reason"]
    assert checks["audit-logging"].evidence["organization_trail"] is True
    assert no_value_in_run_folder(run_dir, seeded_values)
    assert "0 failed" in str(v.summary())


@pytest.mark.parametrize("selectors, reads", [
    ({}, True),
    ({"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]}, True),
    ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]}, True),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                     {"Field": "readOnly", "Equals": ["false"]}]}]}, False),
])
def test_management_read_selectors(selectors, reads):
    from runbook_lib.evidence import management_reads as _management_reads
    assert _management_reads(selectors)[0] is reads


def test_data_event_selectors_are_listed():
    from runbook_lib.evidence import management_reads as _management_reads
    reads, data = _management_reads({"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]}]}]})
    assert reads is True and data == [{"type": "AWS::Lambda::Function", "values": ["arn:aws:lambda"]}]
