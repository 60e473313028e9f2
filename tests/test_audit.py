"""Tests for runbook_lib.audit and runbook_lib.inventory.

moto in-process covers inventory, regions, organizations and coverage; the lab covers
what moto lacks (served code packages, layers, IAM enforcement). Planted values are
compared only inside ``bool(...)`` so a failing assertion never prints them.
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from runbook_lib.audit import Audit, baseline_invocation, download_package
from runbook_lib.exceptions import RunbookError
from runbook_lib.inventory import CallCounter, edge_reason, group_versions, unqualified_arn
from runbook_lib.ledger import Ledger
from runbook_lib.redaction import Fingerprinter
from runbook_lib.session import Target

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "lambda.amazonaws.com"}}]})
ANYONE = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"AWS": "*"}}]})


KEY = bytes(range(32))


def real_scanner():
    """The runbook's own scanner (every rule, the allowlist) with a fixed fingerprint key."""
    from runbook_lib.scanning import Scanner
    return Scanner(fingerprinter=Fingerprinter(KEY))


def make_zip(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():  # fixed timestamps: equal files make equal packages
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


PLANTED_KEY = "AKIA" + "Q3EXAMPLE7PLANTED"[:16]  # built at run time; not a real key
PLANTED_PASSWORD = "Planted" + "N7vQ2xK9mR4tW8zB"  # high entropy, as a real one: the real scanner judges it


@pytest.fixture
def aws_env(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


class Packages:
    """Code packages put in (moto) S3, served to the audit by an injected downloader."""

    def __init__(self):
        self.by_key: dict[str, bytes] = {}
        self.downloads = 0
        self.lock = threading.Lock()

    def create(self, session, region, name, files=None, env=None, role_name="fn-role", **extra):
        iam = session.client("iam")
        try:
            role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        s3 = session.client("s3", region_name="us-east-1")
        bucket = "code-" + session.client("sts").get_caller_identity()["Account"]
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        key = f"{region}-{name}.zip"
        self.by_key[key] = make_zip(files or {"app.py": "def handler(e, c):\n    return 1\n"})
        s3.put_object(Bucket=bucket, Key=key, Body=self.by_key[key])
        return session.client("lambda", region_name=region).create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"S3Bucket": bucket, "S3Key": key}, Environment={"Variables": env or {}}, **extra)

    def download(self, url, limit):
        with self.lock:
            self.downloads += 1
        return self.by_key[url.rsplit("/", 1)[-1]]


def moto_target(session=None) -> Target:
    return Target("aws", "us-east-1", session=session or boto3.session.Session(region_name="us-east-1"))


# -- pure helpers ------------------------------------------------------------------------
def test_group_versions_and_unqualified_arn():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    groups = group_versions([{"FunctionName": "f", "Version": "$LATEST", "FunctionArn": arn + ":$LATEST"},
                             {"FunctionName": "f", "Version": "2", "FunctionArn": arn + ":2"},
                             {"FunctionName": "f", "Version": "10", "FunctionArn": arn + ":10"}])
    assert [v["Version"] for v in groups["f"]["versions"]] == ["2", "10"]
    assert unqualified_arn(arn + ":$LATEST") == arn


def test_edge_reason_only_in_us_east_1():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:router"
    assert edge_reason("us-east-1", arn, "router", {}, {arn: ["E1"]}) == "CloudFront association E1"
    assert edge_reason("us-east-1", arn, "web-edge-router", {}, {}) == "name"
    assert edge_reason("us-east-1", arn, "router", {"lambda-edge": "true"}, {}) == "tag lambda-edge"
    assert edge_reason("eu-west-1", arn, "web-edge-router", {}, {}) == ""
    assert edge_reason("us-east-1", arn, "knowledge-base", {}, {}) == ""


def test_download_error_never_names_the_url():
    url = "http://127.0.0.1:9/code.zip?X-Amz-Security-Token=planted-token-value"
    with pytest.raises(RunbookError) as info:
        download_package(url, 1000, timeout=2)
    assert "planted-token-value" not in str(info.value) and "127.0.0.1" not in str(info.value)


# -- moto: inventory, versions, budget, coverage -------------------------------------------
def test_versions_env_and_code_are_scanned_within_the_call_budget(aws_env, tmp_path):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    lam = session.client("lambda")
    packages.create(session, "us-east-1", "legacy", env={"DB_PASSWORD": PLANTED_PASSWORD},
                    files={"app.py": f'KEY = "{PLANTED_KEY}"\n'}, Publish=True)
    lam.update_function_configuration(FunctionName="legacy", Environment={"Variables": {"LOG_LEVEL": "INFO"}})
    lam.create_alias(FunctionName="legacy", Name="live", FunctionVersion="1")
    for i in range(3):
        packages.create(session, "us-east-1", f"clean-{i}", env={"LOG_LEVEL": "INFO"},
                        files={"app.py": f"N = {i}\n"})
    scanner = real_scanner()
    calls = []
    result = Audit(moto_target(session), regions=["us-east-1"], scanner=scanner, max_workers=4,
                   downloader=packages.download, progress=lambda d, t, l="": calls.append((d, t))).run()
    findings = result.finding_records
    # the password lives on only in published version 1; the key is in the code of $LATEST
    assert [(f["function"], f["version"], f["location"], f["where"]) for f in findings] == [
        ("legacy", "$LATEST", "code", "app.py:1"), ("legacy", "1", "environment", "DB_PASSWORD")]
    assert {f["remediation"] for f in findings} == {"remove-use-role", "move-to-secrets-manager"}
    assert result.summary["functions_seen"] == 4 and result.summary["functions_fully_scanned"] == 4
    assert result.api_calls["GetFunction"] == 4 and result.api_calls["ListAliases"] == 1
    assert result.inventory.set_index("function").loc["legacy", "aliases"] == "live->1"
    assert result.summary["api_calls_per_function_beyond_listing"] <= 2
    assert packages.downloads == 4 and result.summary["packages_downloaded"] == 4
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    status = {c.id: c.status for c in result.checks()}
    assert status == {"no-secrets-in-environment": "FAIL", "no-secrets-in-code": "FAIL",
                      "audit-coverage-complete": "PASS"}
    paths = result.write(tmp_path)
    ledger = Ledger.open(tmp_path)
    result.record(ledger, "legacy")
    assert ledger.baseline["candidates"] == ["legacy"]
    assert ledger.baseline["target_function"]["old_versions_with_findings"] == ["1"]
    texts = [open(p).read() for p in paths.values()] + [(tmp_path / "ledger.json").read_text()]
    assert not any(bool(PLANTED_KEY in t or PLANTED_PASSWORD in t) for t in texts), "planted value in output"


def test_csv_cells_from_the_account_cannot_act_as_formulas(aws_env, tmp_path):
    """A zip member and an alias are named by the audited account: findings.csv and inventory.csv neutralise them."""
    import pandas as pd
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    member = '=HYPERLINK("http://attacker.example/x").py'
    packages.create(session, "us-east-1", "legacy", files={member: f'KEY = "{PLANTED_KEY}"\n'}, Publish=True)
    session.client("lambda").create_alias(FunctionName="legacy", Name="-live", FunctionVersion="1")
    result = Audit(moto_target(session), scanner=real_scanner(), downloader=packages.download).run()
    assert [f["path"] for f in result.finding_records if f["version"] == "$LATEST"] == [member]
    result.write(tmp_path)
    findings = pd.read_csv(tmp_path / "findings.csv", dtype=str, keep_default_na=False)
    assert set(findings["path"]) == {"'" + member}
    inventory = pd.read_csv(tmp_path / "inventory.csv", dtype=str, keep_default_na=False)
    assert list(inventory["aliases"]) == ["'-live->1"]
    assert list(inventory["code_size"]) == [str(result.inventory["code_size"][0])]  # numbers stay numbers
    assert not any(bool(PLANTED_KEY in p.read_text()) for p in tmp_path.iterdir()), "planted value in output"


def test_shared_package_is_downloaded_once_and_attributed_to_each_function(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    files = {"lib/creds.py": f'ID = "{PLANTED_KEY}"\n'}
    for name in ("a", "b", "c"):
        packages.create(session, "us-east-1", name, files=files)  # identical zips: one CodeSha256
    result = Audit(moto_target(session), scanner=real_scanner(), downloader=packages.download).run()
    assert sorted(f["function"] for f in result.finding_records) == ["a", "b", "c"]
    assert packages.downloads == 1


def test_image_oversize_and_missing_functions_are_coverage_rows(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    packages.create(session, "us-east-1", "small")
    packages.create(session, "us-east-1", "big", files={"blob.txt": "y" * 5000})
    audit = Audit(moto_target(session), function_names=["small", "big", "ghost"], scanner=real_scanner(),
                  downloader=packages.download, max_package_bytes=1000)
    result = audit.run()
    gaps = {(g.subject.split(":")[0], g.status) for g in result.gaps}
    assert ("big", "not-scanned") in gaps and ("ghost", "not-found") in gaps
    coverage = result.coverage
    assert "function 'ghost' not found" in " ".join(coverage["reason"])
    check = {c.id: c for c in result.checks()}["audit-coverage-complete"]
    assert check.status == "FAIL" and "ghost" in check.reason
    assert sorted(result.inventory["function"]) == ["big", "small"]


@pytest.fixture
def organization(aws_env):
    """A management account (123456789012) and one member, each with functions in two regions."""
    session = boto3.session.Session(region_name="us-east-1")
    org = session.client("organizations")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(AccountName="member", Email="member@example.com"
                                )["CreateAccountStatus"]["AccountId"]
    creds = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="setup")["Credentials"]
    member_session = boto3.session.Session(creds["AccessKeyId"], creds["SecretAccessKey"],
                                           creds["SessionToken"], region_name="us-east-1")
    member_session.client("iam").create_role(RoleName="AuditRole", AssumeRolePolicyDocument=ANYONE)
    packages = Packages()
    packages.create(session, "us-east-1", "mgmt-api", env={"API_KEY": PLANTED_PASSWORD})
    packages.create(session, "eu-west-1", "mgmt-worker")
    packages.create(member_session, "us-east-1", "member-api", files={"app.py": f'K = "{PLANTED_KEY}"\n'})
    packages.create(member_session, "eu-west-1", "member-eu", env={"DB_PASSWORD": PLANTED_PASSWORD})
    packages.create(member_session, "eu-west-1", "member-eu-2")
    return session, member, packages


def test_organization_audit_across_regions_and_accounts(organization, tmp_path):
    session, member, packages = organization
    result = Audit(moto_target(session), regions=["us-east-1", "eu-west-1", "xx-nowhere-1"],
                   accounts=["organization"], assume_role_name="AuditRole", scanner=real_scanner(),
                   downloader=packages.download, max_workers=4).run()
    inventory = result.inventory
    seen = {(r.account, r.region, r.function) for r in inventory.itertuples()}
    assert seen == {("123456789012", "us-east-1", "mgmt-api"), ("123456789012", "eu-west-1", "mgmt-worker"),
                    (member, "us-east-1", "member-api"), (member, "eu-west-1", "member-eu"),
                    (member, "eu-west-1", "member-eu-2")}
    found = {(f["account"], f["region"], f["function"], f["location"]) for f in result.finding_records}
    assert found == {("123456789012", "us-east-1", "mgmt-api", "environment"),
                     (member, "us-east-1", "member-api", "code"),
                     (member, "eu-west-1", "member-eu", "environment")}
    summary = result.summary
    assert (summary["accounts"], summary["regions"], summary["functions_seen"],
            summary["functions_fully_scanned"]) == (2, 4, 5, 5)
    assert summary["api_calls_by_operation"]["AssumeRole"] == 1
    coverage = result.coverage
    per_region = coverage[coverage["call"] == "ListFunctions"]
    assert set(zip(per_region["account"], per_region["region"], per_region["subject"])) == {
        ("123456789012", "us-east-1", "1 functions"), ("123456789012", "eu-west-1", "1 functions"),
        (member, "us-east-1", "1 functions"), (member, "eu-west-1", "2 functions")}
    unknown = coverage[coverage["status"] == "unknown-region"]
    assert sorted(unknown["account"]) == sorted(["123456789012", member])
    check = {c.id: c for c in result.checks()}["audit-coverage-complete"]
    assert check.status == "FAIL" and "xx-nowhere-1" in check.reason
    result.write(tmp_path)
    coverage_json = json.loads((tmp_path / "coverage.json").read_text())
    assert coverage_json["summary"]["functions_seen"] == 5
    assert len(coverage_json["regions"]) == 4


def test_member_account_without_role_is_a_coverage_row(organization):
    session, member, packages = organization
    result = Audit(moto_target(session), accounts=[member, "123456789012", "12345"],
                   assume_role_name="", scanner=real_scanner(), downloader=packages.download).run()
    statuses = {(g.account, g.status) for g in result.gaps}
    assert (member, "error") in statuses and ("12345", "error") in statuses
    assert set(result.inventory["account"]) == {"123456789012"}
    assert {c.id: c.status for c in result.checks()}["audit-coverage-complete"] == "FAIL"


def test_all_regions_uses_describe_regions(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    packages.create(session, "ap-southeast-2", "far-away")
    result = Audit(moto_target(session), regions="all", scanner=real_scanner(), include_code=False,
                   max_workers=8).run()
    assert result.api_calls["DescribeRegions"] == 1
    assert result.summary["regions"] > 10
    assert list(result.inventory["function"]) == ["far-away"]
    assert {c.id: c.status for c in result.checks()}["no-secrets-in-code"] == "PASS"


def test_call_counter_counts_each_call_once_and_detaches(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    counter = CallCounter()
    sts = counter.attach(session.client("sts"))
    counter.attach(sts)
    sts.get_caller_identity()
    sts.get_caller_identity()
    counter.detach_all()
    sts.get_caller_identity()
    assert counter.by_operation == {"GetCallerIdentity": 2}


def test_baseline_invocation_records_an_error_instead_of_raising(aws_env, tmp_path):
    ledger = Ledger.open(tmp_path)
    out = baseline_invocation(moto_target(), "no-such-function", ledger)
    assert out["baseline_status"].startswith("not-invoked: Invoke on no-such-function failed")
    assert ledger.baseline["baseline_status"] == out["baseline_status"]


# -- the lab: served code packages, layers, IAM enforcement ----------------------------------
DECOYS = ("inventory-sync", "thumbnail-resize", "web-edge-router")


@pytest.fixture
def enforcing_lab():
    """A seeded lab of its own with IAM enforcement on: the test adds a user to it."""
    from runbook_lib.lab import Lab
    with Lab(seed=True, enforce_iam=True) as running:
        yield running


def lab_target(lab, session=None) -> Target:
    return Target("lab", lab.region, endpoint_url=lab.endpoint_url, session=session or lab.session())


def seeded_values(lab) -> dict[str, str]:
    """The seeded secrets, read live (random per lab start); callers never print them."""
    import urllib.request
    lam = lab.client("lambda")
    env = lam.get_function_configuration(FunctionName="orders-api")["Environment"]["Variables"]
    code = zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(
        lam.get_function(FunctionName="orders-api")["Code"]["Location"]).read()))
    app = code.read("app.py").decode()
    key_id = lab.client("iam").list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"][0]["AccessKeyId"]
    secret_key = next(m for m in re.findall(r"[\"']([A-Za-z0-9/+]{40})[\"']", app))
    layer_arn = lam.get_function_configuration(FunctionName="orders-api")["Layers"][0]["Arn"]
    name, number = layer_arn.rsplit(":", 1)
    layer = zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(lam.get_layer_version(
        LayerName=name, VersionNumber=int(number))["Content"]["Location"]).read()))
    token = json.loads(layer.read("python/shared_config.json"))["service_token"]
    return {"PARTNER_API_KEY": env["PARTNER_API_KEY"], "DB_PASSWORD": env["DB_PASSWORD"],
            "key_id": key_id, "secret_key": secret_key, "service_token": token}


def test_seeded_lab_every_secret_found_and_no_decoy(seeded_lab, tmp_path):
    lab = seeded_lab
    from runbook_lib.scanning import Scanner
    fp = Fingerprinter(KEY)
    result = Audit(lab_target(lab), scanner=Scanner(fingerprinter=fp)).run()
    paths = result.write(tmp_path)
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    values = seeded_values(lab)
    mine = [f for f in findings if f["function"] == "orders-api" and f["version"] == "$LATEST"]
    env_found = {f["variable"]: f["fingerprint"] for f in mine if f["location"] == "environment"}
    assert sorted(env_found) == ["DB_PASSWORD", "PARTNER_API_KEY"]
    assert bool(env_found["PARTNER_API_KEY"] == fp(values["PARTNER_API_KEY"])), "fingerprint mismatch"
    assert bool(env_found["DB_PASSWORD"] == fp(values["DB_PASSWORD"])), "fingerprint mismatch"
    code = {f["rule"]: f for f in mine if f["location"] == "code"}
    assert {"aws-access-key-id", "aws-secret-access-key"} <= set(code)
    assert all(f["path"] == "app.py" and f["remediation"] == "remove-use-role"
               for f in code.values() if f["rule"].startswith("aws-"))
    assert bool(code["aws-access-key-id"]["fingerprint"] == fp(values["key_id"])), "key id not matched"
    assert bool(code["aws-secret-access-key"]["fingerprint"] == fp(values["secret_key"])), "secret not matched"
    layer = [f for f in mine if f["location"] == "layer"]
    assert [(f["layer"], f["path"]) for f in layer] == [("orders-shared-config:1", "python/shared_config.json")]
    assert bool(layer[0]["fingerprint"] == fp(values["service_token"])), "layer token not matched"
    assert layer[0]["remediation"] == "move-to-secrets-manager"
    assert [f["function"] for f in findings if f["function"] in DECOYS] == []
    inventory = result.inventory.set_index("function")
    assert set(DECOYS) | {"orders-api"} <= set(inventory.index)
    assert inventory.loc["web-edge-router", "edge_candidate"] and not inventory.loc["orders-api", "edge_candidate"]
    status = {c.id: c.status for c in result.checks()}
    assert status == {"no-secrets-in-environment": "FAIL", "no-secrets-in-code": "FAIL",
                      "audit-coverage-complete": "PASS"}
    chart = tmp_path / "findings_by_rule.png"
    result.chart(chart)
    ledger = Ledger.open(tmp_path)
    result.record(ledger, "orders-api")
    target = ledger.baseline["target_function"]
    assert target["environment_variables"] == ["DB_PASSWORD", "PARTNER_API_KEY"] and target["audited"]
    assert ledger.baseline["candidates"] == ["orders-api"]
    outputs = [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir() if p.is_file()]
    leaks = [name for name, value in values.items() if any(bool(value in text) for text in outputs)]
    assert leaks == [], "a seeded value reached an output file"
    assert sorted(Path(p).name for p in paths.values()) == ["coverage.json", "findings.csv", "findings.json",
                                                            "inventory.csv"]


def test_seeded_lab_baseline_invocation_records_the_shape(seeded_lab, tmp_path):
    lab = seeded_lab
    ledger = Ledger.open(tmp_path)
    out = baseline_invocation(lab_target(lab), "orders-api", ledger)
    assert out["baseline_status"] == "ok"
    assert set(ledger.baseline["response_shape"]) == {"statusCode", "body"}
    assert "accepted" not in (tmp_path / "ledger.json").read_text()


def test_role_without_get_function_gives_partial_coverage_and_a_failing_check(enforcing_lab, tmp_path):
    lab = enforcing_lab
    iam = lab.client("iam")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "lambda:ListFunctions", "lambda:GetLayerVersion", "cloudfront:ListDistributions"]}]}
    iam.create_user(UserName="auditor-no-getfunction")
    iam.put_user_policy(UserName="auditor-no-getfunction", PolicyName="audit",
                        PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="auditor-no-getfunction")["AccessKey"]
    session = boto3.session.Session(key["AccessKeyId"], key["SecretAccessKey"], region_name=lab.region)
    from runbook_lib.scanning import Scanner
    result = Audit(lab_target(lab, session), scanner=Scanner(fingerprinter=Fingerprinter(KEY))).run()
    denied = [g for g in result.gaps if g.status == "denied"]
    assert {g.subject for g in denied} >= {"orders-api", *DECOYS}
    assert {(g.call, g.permission) for g in denied} == {("GetFunction", "lambda:GetFunction")}
    assert all("code package not scanned" in g.reason for g in denied)
    # what could be read still was: environment variables and the layer
    assert {f["location"] for f in result.finding_records if f["function"] == "orders-api"} == {"environment",
                                                                                                "layer"}
    assert result.summary["functions_fully_scanned"] == 0
    coverage = result.coverage
    assert set(coverage.loc[coverage["call"] == "ListFunctions", "status"]) == {"partial"}
    checks = {c.id: c for c in result.checks()}
    assert checks["audit-coverage-complete"].status == "FAIL"
    assert "lambda:GetFunction" in checks["audit-coverage-complete"].reason
    # the layer's token is found; the check also says the code packages could not be read
    assert checks["no-secrets-in-code"].status == "FAIL"
    assert "not everything could be read" in checks["no-secrets-in-code"].reason
    result.write(tmp_path)
    gaps = json.loads((tmp_path / "coverage.json").read_text())["gaps"]
    assert any(g["call"] == "GetFunction" and g["permission"] == "lambda:GetFunction" for g in gaps)


def test_failed_download_is_a_gap_and_the_code_check_warns(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    Packages().create(session, "us-east-1", "unreachable")

    def refuse(url, limit):
        raise RunbookError("download of the package failed: HTTP 403")

    result = Audit(moto_target(session), scanner=real_scanner(), downloader=refuse).run()
    assert [(g.subject, g.call, g.status) for g in result.gaps] == [("unreachable:$LATEST", "download", "error")]
    checks = {c.id: c for c in result.checks()}
    assert checks["no-secrets-in-code"].status == "WARN"
    assert checks["audit-coverage-complete"].status == "FAIL" and "HTTP 403" in checks["audit-coverage-complete"].reason
    assert list(result.inventory["code"]) == ["error"]


def test_all_regions_falls_back_to_the_partition_when_describe_regions_is_denied(aws_env):
    from botocore.stub import Stubber

    from runbook_lib.inventory import AccountScope, resolve_regions
    target = moto_target()
    scope = AccountScope("123456789012", target)
    ec2 = target.session.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    stub.add_client_error("describe_regions", "UnauthorizedOperation", "not allowed")
    scope.clients[("ec2", "us-east-1")] = ec2
    with stub:
        regions, gaps, fell_back = resolve_regions(scope, ["all"], CallCounter())
    assert fell_back and "eu-west-1" in regions and "us-east-1" in regions
    assert [(g.call, g.status, g.permission) for g in gaps] == [("DescribeRegions", "note", "ec2:DescribeRegions")]
    assert "audited every Lambda region of the partition" in gaps[0].reason


def test_the_findings_chart_is_a_png_that_displays_and_counts_in_whole_numbers(tmp_path):
    from runbook_lib.audit_result import AuditResult

    records = [{"rule": "keyword-assignment", "function": "orders-api"}] * 3 + [
        {"rule": "github-token", "function": "billing"}]
    result = AuditResult([], records, [], {}, 0.0, [])
    chart = result.chart(tmp_path / "findings_by_rule.png")
    png = chart._repr_png_()
    assert png.startswith(b"\x89PNG") and png == (tmp_path / "findings_by_rule.png").read_bytes()
    assert "Figure" not in repr(chart)
    assert result.chart()._repr_png_().startswith(b"\x89PNG")  # no file asked: the image itself
    for ax in chart.figure.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    empty = AuditResult([], [], [], {}, 0.0, []).chart()
    assert [t.get_text() for ax in empty.figure.axes for t in ax.texts] == ["no findings", "no findings"]


def bar_labels(ax) -> list[str]:
    """The labels the findings chart writes beside one panel's bars, bottom to top."""
    return [t.get_text() for t in sorted(ax.texts, key=lambda t: t.get_position()[1])]


def test_the_findings_chart_at_hundreds_of_functions_shows_the_most_affected_and_says_how_many_it_leaves_out():
    from runbook_lib.audit_result import CHART_FUNCTIONS, AuditResult

    records = [{"rule": "keyword-assignment", "function": f"fn-{i:03d}"} for i in range(300)]
    records += [{"rule": "aws-access-key", "function": "fn-worst"}] * 5 + [{"rule": "github-token", "function": "fn-2nd"}] * 3
    by_rule, by_function = AuditResult([], records, [], {}, 0.0, []).chart().figure.axes
    labels = bar_labels(by_function)
    assert len(labels) == CHART_FUNCTIONS and labels[-2:] == ["fn-2nd", "fn-worst"]  # the most at the top
    assert [p.get_width() for p in by_function.patches][-2:] == [3, 5]  # each bar beside its own label
    assert by_function.get_title() == f"Findings by function (top {CHART_FUNCTIONS} of 302)"
    assert by_rule.get_title() == "Findings by rule"  # all three rules drawn: nothing left out, nothing said
    assert bar_labels(by_rule) == ["github-token", "aws-access-key", "keyword-assignment"]
    few = AuditResult([], records[:3], [], {}, 0.0, []).chart().figure.axes[1]
    assert few.get_title() == "Findings by function" and len(bar_labels(few)) == 3


def test_the_findings_chart_shortens_a_long_name_and_keeps_both_panels_inside_the_figure():
    from runbook_lib.audit_result import AuditResult
    from runbook_lib.charts import LABEL_CHARACTERS

    long_name = "orders-" + "x" * 57  # a 64-character Lambda name
    records = [{"rule": "keyword-assignment", "function": long_name}, {"rule": "keyword-assignment", "function": "short"}]
    chart = AuditResult([], records, [], {}, 0.0, []).chart()
    by_rule, by_function = chart.figure.axes
    shown = bar_labels(by_function)
    assert len(shown) == 2 and long_name not in shown
    shortened = [s for s in shown if s.endswith("…")]
    assert len(shortened) == 1 and len(shortened[0]) == LABEL_CHARACTERS and long_name.startswith(shortened[0][:-1])
    renderer = chart.figure.canvas.get_renderer()
    for ax in (by_rule, by_function):  # the labels start inside the figure, the panels do not overlap
        left = min(t.get_window_extent(renderer).x0 for t in ax.texts)
        assert left >= 0
    assert by_rule.get_position().x1 < by_function.get_position().x0
    assert min(t.get_window_extent(renderer).x0 for t in by_function.texts) > by_rule.get_position().x1 * 1100

# -- concurrency -------------------------------------------------------------------------
def plant_population(session, packages: Packages, count: int = 12) -> None:
    """``fn-00``..: every third shares a package holding a key and an unreadable nested zip, every
    fourth a password in its variables, the rest their own clean package."""
    shared = {"lib/creds.py": f'ID = "{PLANTED_KEY}"\n', "vendor/inner.zip": "not a zip"}
    for i in range(count):
        files = shared if i % 3 == 0 else {"app.py": f"def handler(e, c):\n    return {i}\n"}
        env = {"API_KEY": PLANTED_PASSWORD} if i % 4 == 0 else {}
        packages.create(session, "us-east-1", f"fn-{i:02d}", files=files, env=env)


def comparable(result) -> tuple:
    """Everything an audit reports except how long it took."""
    summary = {k: v for k, v in result.summary.items() if k not in ("elapsed_seconds", "functions_per_second")}
    return (result.finding_records, result.third_party_records, [g.to_dict() for g in result.gaps],
            [f.row() for f in result.functions], summary)


def test_a_concurrent_audit_reports_what_a_sequential_one_does_in_the_same_order(aws_env):
    import time

    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    plant_population(session, packages)

    def late_first(url, limit):  # the packages of later functions arrive first; two cannot be fetched
        number = int(url.rsplit("fn-", 1)[1][:2])
        time.sleep(0.004 * (12 - number))
        if number in (5, 10):
            raise RunbookError("download of the package failed: HTTP 403")
        return packages.download(url, limit)

    def fn_00_slow(params, **_):  # so another user of the shared package reaches it first
        if params["url_path"].endswith("fn-00"):
            time.sleep(0.1)

    sequential = Audit(moto_target(session), scanner=real_scanner(), downloader=late_first,
                       max_workers=1).run()
    functions = [f.function for f in sequential.functions]
    assert functions == [f"fn-{i:02d}" for i in range(12)]
    assert {f["function"] for f in sequential.finding_records if f["location"] == "code"} == {
        "fn-00", "fn-03", "fn-06", "fn-09"}
    assert {f["function"] for f in sequential.finding_records if f["location"] == "environment"} == {
        "fn-00", "fn-04", "fn-08"}
    skipped = [g for g in sequential.gaps if g.status == "file-not-scanned"]
    assert [g.subject for g in skipped] == ["fn-00:$LATEST vendor/inner.zip"]  # once, under the first user
    assert "package" not in skipped[0].to_dict()
    assert [(g.subject, g.call) for g in sequential.gaps if g.status == "error"] == [
        ("fn-05:$LATEST", "download"), ("fn-10:$LATEST", "download")]
    session.events.register("before-call.lambda.GetFunction", fn_00_slow)
    for workers in (4, 8):
        assert comparable(Audit(moto_target(session), scanner=real_scanner(), downloader=late_first,
                                max_workers=workers).run()) == comparable(sequential)


def deny_get_function(session, name: str) -> None:
    """GetFunction on ``name`` answers AccessDeniedException (a before-call hook short-circuits the call)."""
    from urllib.parse import unquote

    from botocore.awsrequest import AWSResponse

    def refuse(params, **_):  # params: the serialised request; the function's name or ARN ends its path
        if unquote(params["url_path"]).split("?")[0].rstrip("/").split("/")[-1].split(":")[-1] == name:
            error = {"Code": "AccessDeniedException", "Message": f"not authorized to perform: lambda:GetFunction on {name}"}
            return AWSResponse("https://lambda", 403, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    session.events.register("before-call.lambda.GetFunction", refuse)


def test_an_aws_error_on_one_function_is_its_coverage_row_and_the_others_are_still_audited(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    plant_population(session, packages, count=8)
    deny_get_function(session, "fn-03")
    result = Audit(moto_target(session), scanner=real_scanner(), downloader=packages.download,
                   max_workers=4).run()
    assert [(g.subject, g.call, g.status) for g in result.gaps if g.status != "file-not-scanned"] == [
        ("fn-03", "GetFunction", "denied")]
    code = dict(zip(result.inventory["function"], result.inventory["code"]))
    assert code.pop("fn-03") == "denied" and set(code.values()) == {"scanned"} and len(code) == 7
    flagged = {(f["function"], f["location"]) for f in result.finding_records}
    assert {("fn-00", "code"), ("fn-06", "code"), ("fn-04", "environment")} <= flagged
    assert ("fn-03", "code") not in flagged  # its package was never read: a gap, not a clean result
    checks = {c.id: c for c in result.checks()}
    assert checks["audit-coverage-complete"].status == "FAIL" and "fn-03" in checks["audit-coverage-complete"].reason


def test_an_unexpected_error_reading_one_package_is_its_coverage_row_and_names_only_the_errors_type(aws_env):
    session = boto3.session.Session(region_name="us-east-1")
    packages = Packages()
    plant_population(session, packages, count=4)

    def broken_for_fn_01(url, limit):
        if url.endswith("fn-01.zip"):
            raise ValueError(f"bad data near {PLANTED_PASSWORD}")
        return packages.download(url, limit)

    result = Audit(moto_target(session), scanner=real_scanner(), downloader=broken_for_fn_01, max_workers=4).run()
    errors = [g for g in result.gaps if g.status == "error"]
    assert [(g.subject, g.reason) for g in errors] == [("fn-01:$LATEST", "reading the package failed: ValueError")]
    assert not any(PLANTED_PASSWORD in json.dumps(g.to_dict()) for g in result.gaps)
    assert {f["function"] for f in result.finding_records if f["location"] == "code"} == {"fn-00", "fn-03"}
