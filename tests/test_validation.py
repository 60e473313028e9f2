"""Validation end to end: the orchestrator, then real invocations in the lab of functions written many ways.

The checks themselves are tested on fabricated evidence in ``tests/catalog/``; collection
source by source in ``test_validation_collect.py`` and ``test_validation_access.py``. Here
the lab runs real code: the reference-style handler, a function that fetches with plain
boto3 and logs its own words, one that fetches at init (a caching pattern), one that fetches
on every call, one that leaks, a role shared by two functions.
"""

import io
import json
import secrets
import string
import textwrap
import time
import zipfile

import pytest

from runbook_lib.checks import FAIL, PASS, SKIP, WARN
from runbook_lib.exceptions import InputError
from runbook_lib.ledger import Ledger
from runbook_lib.records import EdgeAssociation, FunctionCode, Policy, Secret, Snapshot
from runbook_lib.session import Target
from runbook_lib.validation import CHECK_IDS, Validation

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


# -- the orchestrator ------------------------------------------------------------------------------
class FakeTarget:
    def __init__(self, name="lab"):
        self.name, self.region = name, REGION


def test_constructor_validates_parameters(tmp_path):
    ledger = Ledger.open(tmp_path)
    with pytest.raises(InputError, match="^function_name: no function given"):
        Validation(FakeTarget(), ledger, tmp_path)
    with pytest.raises(InputError, match="^payload: not valid JSON"):
        Validation(FakeTarget(), ledger, tmp_path, FUNCTION, payload="{nope")
    with pytest.raises(InputError, match="^invocations: must be at least 1"):
        Validation(FakeTarget(), ledger, tmp_path, FUNCTION, invocations=0)
    with pytest.raises(InputError, match=r"^retrieval_log_pattern: not a regular expression \(missing \), unterminated subpattern\)$"):
        Validation(FakeTarget(), ledger, tmp_path, FUNCTION, retrieval_log_pattern="loaded (config")
    v = Validation(FakeTarget("aws"), ledger, tmp_path, FUNCTION, payload='{"a": 1}', retrieval_log_pattern="")
    assert v.payload == {"a": 1} and v.trail_wait_seconds == 900 and v.retrieval_log_pattern == ""
    assert Validation(FakeTarget("lab"), ledger, tmp_path, FUNCTION).trail_wait_seconds == 0
    assert Validation(FakeTarget("lab"), ledger, tmp_path, FUNCTION, trail_wait_seconds=30).trail_wait_seconds == 30
    ledger.bind(function_name="from-ledger")
    assert Validation(FakeTarget(), ledger, tmp_path).function_name == "from-ledger"


def test_collect_and_check_need_their_steps_first(tmp_path):
    v = Validation(FakeTarget(), Ledger.open(tmp_path), tmp_path, FUNCTION)
    with pytest.raises(InputError, match="^invocations: call invoke"):
        v.collect()
    with pytest.raises(InputError, match="^check: call invoke"):
        v.check("least-privilege")


def test_every_validation_check_comes_from_the_catalog():
    from runbook_lib import catalog
    assert CHECK_IDS == ("function-invokes", "functional-parity", "no-secrets-in-environment", "no-secrets-in-code",
                         "secret-retrieved-at-runtime", "no-secret-in-logs", "cloudtrail-attribution", "secret-cached",
                         "least-privilege", "secret-encrypted", "audit-logging", "edge-association",
                         "no-secret-residue", "exposed-credentials-rotated")
    assert all("validation" in catalog.spec(cid).phases for cid in CHECK_IDS)


def test_summary_labels_the_target(tmp_path):
    from runbook_lib.checks import Check
    v = Validation(FakeTarget(), Ledger.open(tmp_path), tmp_path, FUNCTION)
    v.checks = [Check("a", "A", "validation", PASS), Check("b", "B", "validation", SKIP, reason="r")]
    text = str(v.summary())
    assert "target lab" in text and "NOT production evidence" in text
    assert "1 passed, 0 failed, 0 warned, 1 skipped" in text and "invocation window:  .. " in text
    assert v.summary().to_dict()["counts"][PASS] == 1
    assert "AWS account" in str(Validation(FakeTarget("aws"), Ledger.open(tmp_path), tmp_path, FUNCTION).summary())


# -- the lab: functions written many ways ----------------------------------------------------------
REFERENCE_STYLE = textwrap.dedent('''
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
            if os.environ.get("PRINT_FOREIGN"):
                print("legacy fallback key", os.environ["PRINT_FOREIGN"])
        return _cache["config"]

    def handler(event, context):
        config = _secret()
        return {"statusCode": 200, "body": json.dumps({"orders": 3, "partner": "accepted",
                                                       "db_configured": bool(config.get("DB_PASSWORD"))})}
''')
#: A team's refactor: plain boto3, lazily on first call, its own log words.
PLAIN_BOTO3 = textwrap.dedent('''
    import json, os
    import boto3

    CLIENT = boto3.client("secretsmanager")
    SETTINGS = None

    def handler(event, context):
        global SETTINGS
        if SETTINGS is None:
            SETTINGS = json.loads(CLIENT.get_secret_value(SecretId=os.environ["SECRET_ID"])["SecretString"])
            print("partner settings loaded for this container")
        return {"statusCode": 200, "body": json.dumps({"orders": 3, "partner": "accepted",
                                                       "db_configured": "DB_PASSWORD" in SETTINGS})}
''')
#: Another caching pattern: the secret is fetched during init, at import, and never again.
INIT_TIME_FETCH = textwrap.dedent('''
    import json, os
    import boto3

    def _load():
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["SECRET_ID"])
        return json.loads(answer["SecretString"])

    CONFIG = _load()

    def handler(event, context):
        return {"statusCode": 200, "body": json.dumps({"orders": 3, "partner": "accepted",
                                                       "db_configured": bool(CONFIG.get("DB_PASSWORD"))})}
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
        running.client("s3").create_bucket(Bucket="audit-trail-logs")
        ct = running.client("cloudtrail")
        ct.create_trail(Name="org-trail", S3BucketName="audit-trail-logs", IsMultiRegionTrail=True)
        ct.start_logging(Name="org-trail")
        yield running


def create_function(lab, name, role_arn, env, code=REFERENCE_STYLE):
    lam = lab.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
                        Code={"ZipFile": _zip(code)}, Environment={"Variables": env}, Timeout=30)
    for _ in range(100):
        if lam.get_function_configuration(FunctionName=name).get("State", "Active") == "Active":
            break
        time.sleep(0.1)


def deploy(lab, tmp_path, name, variables=None, secret_policy=None, role=None, extra_env=None, code=REFERENCE_STYLE,
           trust=None):
    """The state the implementation leaves: secret, scoped policy, function fetching at run time."""
    iam, sm = lab.client("iam"), lab.client("secretsmanager")
    role = role or f"{name}-role"
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust or TRUST))["Role"]["Arn"]
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
    create_function(lab, name, role_arn, env, code)
    return ledger, values


def lab_target(lab):
    return Target.from_parameters("lab", region=REGION, endpoint_url=lab.endpoint_url, session=lab.session())


def run_validation(lab, tmp_path, name, ledger, **kw):
    v = Validation(lab_target(lab), ledger, tmp_path, name, invocations=5, **kw)
    v.invoke()
    v.collect()
    return v, {c.id: c for c in v.run_checks()}


def no_value_in_run_folder(folder, values):
    texts = [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.suffix == ".json"]
    return not any(value in text for text in texts for value in values.values())


#: What the lab gives a freshly deployed function: the lab's policy simulator, a role trusting only Lambda
#: (no probe), rotation off, no edge, no published version, the moved values not yet replaced.
LAB_EXPECTED = {**{cid: PASS for cid in CHECK_IDS}, "secret-encrypted": WARN,
                "edge-association": SKIP, "exposed-credentials-rotated": WARN}


def statuses_of(checks):
    return {cid: c.status for cid, c in checks.items()}


def test_lab_reference_style_function_every_check_with_evidence(lab_env, tmp_path):
    ledger, values = deploy(lab_env, tmp_path, "orders-api", role="orders-api-role")
    v, checks = run_validation(lab_env, tmp_path, "orders-api", ledger)
    assert statuses_of(checks) == LAB_EXPECTED, {c: checks[c].reason for c in checks
                                                 if checks[c].status != LAB_EXPECTED[c]}
    attribution = checks["cloudtrail-attribution"].evidence
    assert attribution["matched"][0]["ARN"] == SESSION_ARN
    assert attribution["matched"][0]["session issuer"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    assert "exec-env/AWS_Lambda_python3.12" in attribution["matched"][0]["userAgent"]
    cached = checks["secret-cached"].evidence
    assert (cached["invocations"], cached["get_secret_value_calls"], cached["execution_environments"]) == (5, 1, 1)
    lp = checks["least-privilege"]
    assert lp.evidence["grants"][0]["resources"] == [ledger.secret().resource]
    assert lp.reason.endswith("proven by static analysis, policy simulator"), lp.reason
    decisions = lp.evidence["simulation"]["decisions"]  # the secret, "*" and a decoy, from the lab's evaluation
    assert decisions[ledger.secret().resource] == "allowed" and decisions["*"] == "implicitDeny"
    assert list(decisions.values()) == ["allowed", "implicitDeny", "implicitDeny"]
    assert checks["audit-logging"].evidence["qualifying"] == ["org-trail"]
    assert "rotation is not enabled" in checks["secret-encrypted"].reason
    for name in ("invocations.json", "cloudtrail_events.json", "log_excerpt.json", "iam_analysis.json"):
        assert json.loads((tmp_path / name).read_text())["target"] == "lab", name
    assert v.cache_chart(tmp_path / "secret_cache.png").path.read_bytes()[:4] == b"\x89PNG"
    frame = v.cloudtrail_table()
    assert frame[frame["by the function"]]["ARN"].tolist() == [SESSION_ARN]
    assert len(v.log_table()) > 0 and "0 failed" in str(v.summary())
    assert v.check("secret-cached").status == PASS
    assert no_value_in_run_folder(tmp_path, values)


def test_lab_plain_boto3_function_logging_its_own_words_passes_from_cloudtrail(lab_env, tmp_path):
    ledger, values = deploy(lab_env, tmp_path, "refactored-api", code=PLAIN_BOTO3)
    _, checks = run_validation(lab_env, tmp_path, "refactored-api", ledger,
                               retrieval_log_pattern=r"partner settings loaded")
    for cid in ("secret-retrieved-at-runtime", "secret-cached", "cloudtrail-attribution", "no-secret-in-logs"):
        assert checks[cid].status == PASS, (cid, checks[cid].reason)
    assert checks["secret-retrieved-at-runtime"].evidence["log_lines"]["lines"] == 1
    assert checks["secret-cached"].evidence["get_secret_value_calls"] == 1
    assert no_value_in_run_folder(tmp_path, values)


def test_lab_init_time_fetch_is_cached_per_environment(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "init-fetch-api", code=INIT_TIME_FETCH)
    _, checks = run_validation(lab_env, tmp_path, "init-fetch-api", ledger, retrieval_log_pattern="never printed")
    assert checks["secret-retrieved-at-runtime"].status == PASS, checks["secret-retrieved-at-runtime"].reason
    assert checks["secret-retrieved-at-runtime"].evidence["log_lines"]["lines"] == 0
    assert checks["secret-cached"].status == PASS, checks["secret-cached"].reason
    assert checks["secret-cached"].evidence["execution_environments"] == 1


def test_lab_fetch_on_every_call_fails_cache(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "uncached-api", extra_env={"FETCH_EVERY_CALL": "1"})
    _, checks = run_validation(lab_env, tmp_path, "uncached-api", ledger)
    check = checks["secret-cached"]
    assert check.status == FAIL and check.reason.startswith("5 fetches for 5 invocations on 1 execution environment")
    assert check.evidence["get_secret_value_calls"] == 5
    assert checks["secret-retrieved-at-runtime"].status == PASS


def test_lab_a_declared_ttl_allows_the_refetches_it_explains(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "ttl-api", extra_env={"FETCH_EVERY_CALL": "1", "SECRET_TTL_SECONDS": "0.001"})
    v, checks = run_validation(lab_env, tmp_path, "ttl-api", ledger)
    assert v.evidence.cache_ttl_seconds == 0.001
    # a TTL far shorter than any invocation (a lab invocation takes milliseconds even on an idle machine):
    # 5 fetches are allowed, so the 5 invocations show nothing either way
    check = checks["secret-cached"]
    assert check.evidence["allowed_fetches"] >= 5 and check.status == WARN
    assert check.reason.startswith("5 invocation(s) on 1 execution environment(s) cannot tell caching from fetching")


def test_lab_handler_printing_the_secret_or_a_foreign_key_fails_logs(lab_env, tmp_path):
    foreign = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    ledger, values = deploy(lab_env, tmp_path, "leaky-api", extra_env={"PRINT_SECRET": "1", "PRINT_FOREIGN": foreign})
    _, checks = run_validation(lab_env, tmp_path, "leaky-api", ledger)
    check = checks["no-secret-in-logs"]
    assert check.status == FAIL and "1 log event(s) hold a value of the secret" in check.reason
    assert "credential(s) that are not the secret's in the logs: aws-access-key-id" in check.reason
    assert no_value_in_run_folder(tmp_path, dict(values, foreign=foreign))


def test_lab_wide_policy_fails_least_privilege(lab_env, tmp_path):
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}
    ledger, _ = deploy(lab_env, tmp_path, "wide-api", secret_policy=wide)
    try:
        _, checks = run_validation(lab_env, tmp_path, "wide-api", ledger)
    finally:  # it can read every secret: the other functions' least-privilege would name it
        lab_env.client("lambda").delete_function(FunctionName="wide-api")
    check = checks["least-privilege"]
    assert check.status == FAIL
    assert "wildcard action secretsmanager:*" in check.reason and "grant on *" in check.reason
    assert checks["function-invokes"].status == PASS


def test_lab_a_role_shared_by_two_functions_fails_least_privilege_naming_the_other(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "shared-a", role="shared-role")
    role_arn = lab_env.client("iam").get_role(RoleName="shared-role")["Role"]["Arn"]
    create_function(lab_env, "shared-b", role_arn, {"TABLE_NAME": "orders"})
    _, checks = run_validation(lab_env, tmp_path, "shared-a", ledger)
    check = checks["least-privilege"]
    assert check.status == FAIL
    assert "the secret can be read by 1 other function(s): shared-b (role shared-role)" in check.reason
    assert {"function": "shared-b", "role": role_arn, "outcome": "allowed",
            "because": [f"managed:arn:aws:iam::{ACCOUNT}:policy/LambdaSecretsManagerPolicy-shared-a statement 1"]} \
        in check.evidence["other_functions"]
    assert checks["cloudtrail-attribution"].status == PASS


def test_lab_live_probe_when_the_trust_names_the_operator_with_iam_enforcement(lab_env, tmp_path):
    operator = lab_target(lab_env).caller_identity()["arn"]
    trust = {"Version": "2012-10-17", "Statement": [
        TRUST["Statement"][0], {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": operator}}]}
    ledger, _ = deploy(lab_env, tmp_path, "probe-api", trust=trust)
    lab_env.set_enforce_iam(True)
    try:
        _, checks = run_validation(lab_env, tmp_path, "probe-api", ledger)
    finally:
        lab_env.set_enforce_iam(False)
    check = checks["least-privilege"]
    probe = check.evidence["live_probe"]
    assert check.status == PASS, check.reason
    assert (probe["performed"], probe["own_secret"], probe["decoy"]) == (True, "allowed", "AccessDeniedException")
    assert check.evidence["proven_by"] == ["static analysis", "policy simulator", "live probe"]
    assert check.reason.endswith("proven by static analysis, policy simulator, live probe")


def test_lab_variable_left_behind_fails_environment(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "leftover-api", variables={"DB_PASSWORD": "Zr5t8y2u-left-behind"})
    _, checks = run_validation(lab_env, tmp_path, "leftover-api", ledger)
    check = checks["no-secrets-in-environment"]
    assert check.status == FAIL and check.reason.startswith("migrated variable(s) still set: DB_PASSWORD")


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
    ledger, _ = deploy(lab_env, tmp_path, "probe-root-api")
    # the probe follows the trust policy: this role also trusts the account, so it may be assumed
    lab_env.client("iam").update_assume_role_policy(RoleName="probe-root-api-role", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": TRUST["Statement"] + [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    lab_env.set_enforce_iam(True)
    try:
        _, checks = run_validation(lab_env, tmp_path, "probe-root-api", ledger)
    finally:
        lab_env.set_enforce_iam(False)
    check = checks["least-privilege"]
    probe = check.evidence["live_probe"]
    assert check.status == PASS, check.reason
    assert (probe["performed"], probe["own_secret"], probe["decoy"]) == (True, "allowed", "AccessDeniedException")
    assert probe["denial_shown"] is True


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
    ledger.put(EdgeAssociation(resource=distribution, version_arn=first, step="edge"))
    v, checks = run_validation(lab_env, tmp_path, "edge-api", ledger)
    check = checks["edge-association"]
    assert check.status == PASS, check.reason
    assert check.evidence["associations"] == [{"behaviour": "default", "event_type": "viewer-request",
                                               "function_arn": first}]
    lam.update_function_configuration(FunctionName="edge-api", Description="v2")
    lam.get_waiter("function_updated_v2").wait(FunctionName="edge-api", WaiterConfig={"Delay": 0.1})
    second = lam.publish_version(FunctionName="edge-api")["FunctionArn"]
    ledger.put(EdgeAssociation(resource=distribution, action="changed", version_arn=second, step="edge"))
    v.collect()
    check = v.check("edge-association")
    assert check.status == FAIL and check.reason == (f"no viewer-request association of {second} on distribution "
                                                     f"{distribution}")


def test_lab_layer_with_a_token_warns_code_check(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "layered-api")
    lam = lab_env.client("lambda")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/shared_config.json", json.dumps({"service_token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2}))
    layer = lam.publish_layer_version(LayerName="shared-config", Content={"ZipFile": buf.getvalue()},
                                      CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    lam.update_function_configuration(FunctionName="layered-api", Layers=[layer])
    _, checks = run_validation(lab_env, tmp_path, "layered-api", ledger)
    check = checks["no-secrets-in-code"]
    assert check.status == WARN and "layer(s)" in check.reason, check.reason
    assert check.evidence["findings"] == [] and check.evidence["files_scanned"] == 1
    assert check.evidence["layers"][0]["layer"] == layer and check.evidence["layers"][0]["findings"]


def test_lab_a_denied_source_is_a_failed_check_not_a_pass(lab_env, tmp_path, monkeypatch):
    ledger, _ = deploy(lab_env, tmp_path, "denied-api")
    from runbook_lib import evidence as evidence_module
    from runbook_lib.exceptions import AwsCallError

    def denied(*args, **kwargs):
        raise AwsCallError("LookupEvents", "GetSecretValue", "AccessDeniedException", permission="cloudtrail:LookupEvents")

    monkeypatch.setattr(evidence_module, "lookup_secret_events", denied)
    v, checks = run_validation(lab_env, tmp_path, "denied-api", ledger)
    reason = "CloudTrail could not be read: LookupEvents on GetSecretValue failed: AccessDeniedException " \
             "(needs cloudtrail:LookupEvents)"
    for cid in ("secret-retrieved-at-runtime", "cloudtrail-attribution", "secret-cached"):
        assert (checks[cid].status, checks[cid].reason) == (FAIL, reason), cid
    assert v.collect()["errors"] == {"cloudtrail": reason.split(": ", 1)[1]}


def test_lab_residue_checks_alone_sweep_again_each_call(lab_env, tmp_path):
    ledger, _ = deploy(lab_env, tmp_path, "residue-api")
    v = Validation(lab_target(lab_env), ledger, tmp_path, "residue-api")
    residue_check, rotated = v.residue_checks()
    assert (residue_check.id, residue_check.status, residue_check.phase) == ("no-secret-residue", PASS, "validation")
    assert residue_check.notebook == "03_functional_validation" and residue_check.evidence["target"] == "lab"
    assert rotated.status == WARN and "DB_PASSWORD" in rotated.reason
    lam = lab_env.client("lambda")
    for level in ("INFO", "DEBUG"):  # version 1 is the ledger's snapshot, version 2 one more copy
        lam.update_function_configuration(FunctionName="residue-api", Environment={"Variables": {
            "DB_PASSWORD": "db-residue-api-Zr5t8y2u", "LOG_LEVEL": level}})
        time.sleep(0.2)
        lam.publish_version(FunctionName="residue-api")
    again = v.residue_checks()[0]
    assert again.status == FAIL and again.reason.startswith("1 published version(s) besides the backout snapshot hold "
                                                            "secret values: version 2: DB_PASSWORD")


# -- the seeded lab after the real implementation ------------------------------------------------------
@pytest.fixture(scope="module")
def seeded_after_implementation(tmp_path_factory):
    """Seeded lab -> test plan baseline invocation -> implementation applied (reference handler)."""
    from runbook_lib.audit import baseline_invocation
    from runbook_lib.implementation import Implementation
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        target = lab_target(running)
        run_dir = tmp_path_factory.mktemp("seeded-run")
        env = running.client("lambda").get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
        seeded_values = {k: env[k] for k in running.seed_info["secret_env_vars"]}
        ledger = Ledger.open(run_dir)
        ledger.bind(target="lab", account=ACCOUNT, region=REGION, function_name=FUNCTION)
        assert baseline_invocation(target, FUNCTION, ledger)["baseline_status"] == "ok"
        Implementation(target, ledger, FUNCTION, change_ticket="CHG-VALIDATION", apply=True,
                       strategy="reference").apply()
        yield running, target, ledger, run_dir, seeded_values


def test_seeded_lab_after_implementation_every_check(seeded_after_implementation):
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
    # WARNs with their reason: no simulator and no probe in the lab; rotation is off until close-out; the
    # seeded layer's token is another change; the snapshot keeps the old values until close-out.
    expected = {**LAB_EXPECTED, "no-secrets-in-code": WARN, "no-secret-residue": WARN}
    assert statuses_of(checks) == expected, {c: checks[c].reason for c in checks if checks[c].status != expected[c]}
    assert "orders-shared-config" in checks["no-secrets-in-code"].reason
    assert checks["no-secrets-in-code"].evidence["findings"] == []
    assert checks["no-secrets-in-code"].evidence["code_changed_since_snapshot"] is True
    assert checks["functional-parity"].evidence["baseline_shape"] == ledger.baseline["response_shape"]
    assert checks["no-secrets-in-environment"].evidence["left_behind"] == []
    matched = checks["cloudtrail-attribution"].evidence["matched"]
    assert {m["ARN"] for m in matched} == {SESSION_ARN} and matched[0]["userIdentity type"] == "AssumedRole"
    assert matched[0]["request secret id"] == ledger.secret().resource
    cached = checks["secret-cached"].evidence
    assert (cached["invocations"], cached["execution_environments"]) == (5, 1)
    assert cached["get_secret_value_calls"] <= 1 <= cached["fetches_since_deployment"]
    others = checks["least-privilege"].evidence["other_functions"]
    assert {o["function"] for o in others} == set(lab.seed_info["decoy_functions"])
    assert {o["outcome"] for o in others} == {"denied"}
    probe = checks["least-privilege"].evidence["live_probe"]
    # orders-api-role trusts only Lambda: the probe is not performed, in the lab as on AWS
    assert probe["performed"] is False and "does not name the operator" in probe["reason"]
    assert checks["audit-logging"].evidence["organization_trail"] is True
    assert no_value_in_run_folder(run_dir, seeded_values)
    assert "0 failed" in str(v.summary())
