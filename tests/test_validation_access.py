"""Validation's access collection: the region's functions and roles, the probe's trust rule, edge, trails."""

import json

import boto3
import pytest
from evidence_factory import FUNCTION, REGION, T0, at, invocations
from moto import mock_aws

from runbook_lib import access_probes, validation_access
from runbook_lib.exceptions import RunbookError
from runbook_lib.ledger import Ledger
from runbook_lib.records import EdgeAssociation, Secret
from runbook_lib.redaction import Fingerprinter
from runbook_lib.scanning import Scanner
from runbook_lib.session import Target
from runbook_lib.validation_access import (iam_document, live_probe, read_edge, read_function_roles, read_role,
                                          read_trails)
from runbook_lib.validation_collect import Collection, new_evidence, read_function, read_secret

FP = Fingerprinter(b"a" * 32)
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "lambda.amazonaws.com"}}]}


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        target = Target("lab", REGION, session=boto3.session.Session(region_name=REGION))
        secret = target.client("secretsmanager").create_secret(Name=f"lambda/{FUNCTION}/config",
                                                               SecretString="{}")["ARN"]
        ledger = Ledger.open(tmp_path / "run")
        ledger.put(Secret(resource=secret, name=f"lambda/{FUNCTION}/config"))
        yield target, ledger


def role(target, name, trust=LAMBDA_TRUST, policy=None):
    iam = target.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return arn


def function(target, name, role_arn):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return 1\n")
    target.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role_arn,
                                            Handler="app.handler", Code={"ZipFile": buf.getvalue()})


def evidence_for(target, ledger, **kw):
    c = Collection(target, ledger, Scanner(fingerprinter=FP), FP, run_dir=ledger.path.parent, **kw)
    ev = new_evidence(c, FUNCTION, invocations(2), T0, at(5))
    read_function(c, ev)
    read_secret(c, ev)
    return c, ev


def test_the_regions_functions_are_listed_with_their_roles_each_role_read_once(aws):
    target, ledger = aws
    secret = ledger.secret().resource
    shared = role(target, "shared-role", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret}]})
    other = role(target, "other-role", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    for name, arn in ((FUNCTION, shared), ("reports-api", shared), ("billing", other), ("billing-2", other)):
        function(target, name, arn)
    c, ev = evidence_for(target, ledger)
    read_role(c, ev)
    read_function_roles(c, ev)
    assert ev.functions == [{"function": "billing", "role": other}, {"function": "billing-2", "role": other},
                            {"function": "reports-api", "role": shared}]
    assert list(ev.role_analyses) == [other] and ev.role_analyses[other].role_id.startswith("AROA")
    assert ev.role.role_arn == shared and ev.role_errors == {}
    from runbook_lib.catalog.least_privilege import judge
    verdict = judge(ev)
    assert verdict.status == "FAIL"
    assert ("the secret can be read by 3 other function(s): billing (role other-role), billing-2 (role other-role), "
            "reports-api (role shared-role)") in verdict.reason


def test_a_role_that_cannot_be_read_is_recorded_not_raised(aws, monkeypatch):
    target, ledger = aws
    mine, other = role(target, "mine"), role(target, "other")
    function(target, FUNCTION, mine)
    function(target, "billing", other)
    c, ev = evidence_for(target, ledger)
    original = validation_access.iam_analysis.analyse_role

    def refuse_other(iam, name, policy_cache=None):
        if name == "other":
            raise RunbookError("GetRole on other failed: AccessDenied (needs iam:GetRole)")
        return original(iam, name, policy_cache=policy_cache)

    monkeypatch.setattr(validation_access.iam_analysis, "analyse_role", refuse_other)
    read_function_roles(c, ev)
    assert ev.role_errors == {other: "GetRole on other failed: AccessDenied (needs iam:GetRole)"}


def test_no_secret_no_listing_and_no_function_no_role(aws):
    target, ledger = aws
    function(target, FUNCTION, role(target, "mine"))
    c, ev = evidence_for(target, ledger)
    ev.secret = {}
    read_function_roles(c, ev)
    assert ev.functions == []
    ev.errors["function"] = "denied"
    with pytest.raises(RunbookError, match="could not be read"):
        read_role(c, ev)


def test_the_probe_follows_the_trust_policy(aws, monkeypatch):
    target, ledger = aws
    operator = target.caller_identity()["arn"]
    function(target, FUNCTION, role(target, "mine"))
    calls = []
    monkeypatch.setattr(access_probes, "probe_secret_access",
                        lambda *a: calls.append(a) or {"performed": True, "own_secret": "allowed"})
    c, ev = evidence_for(target, ledger)
    read_role(c, ev)
    result = live_probe(c, ev, "decoy")
    assert result == {"performed": False, "reason": f"the role's trust policy does not name the operator ({operator}): "
                                                    "a probe would need a trust this change must not add"}
    ev.role.trust_policy = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                           "Principal": {"AWS": operator}}]}
    assert live_probe(c, ev, "decoy") == {"reason": "the role's trust policy names the operator", "performed": True,
                                          "own_secret": "allowed"}
    c.live_probe = False
    assert live_probe(c, ev, "decoy") == {"performed": False, "reason": "live_probe=False"}
    c.live_probe = True
    ev.role.trust_policy = LAMBDA_TRUST
    assert live_probe(c, ev, "decoy")["reason"] == "live_probe=True" and len(calls) == 2


def test_ask_aws_reports_the_simulator_and_the_probe(aws):
    target, ledger = aws
    function(target, FUNCTION, role(target, "mine"))
    c, ev = evidence_for(target, ledger)
    validation_access.ask_aws(c, ev)
    assert ev.simulation == {} and ev.probe == {}   # no role analysis yet: nothing to ask
    read_role(c, ev)
    validation_access.ask_aws(c, ev)
    assert ev.simulation["available"] in (True, False) and ev.probe["performed"] is False


def test_edge_from_the_ledger_and_the_distribution(aws):
    target, ledger = aws
    c, ev = evidence_for_no_function(target, ledger)
    read_edge(c, ev)
    assert ev.edge is None
    cf = target.client("cloudfront")
    behaviour = {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0,
                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}}
    distribution = cf.create_distribution(DistributionConfig={
        "CallerReference": "r", "Comment": "", "Enabled": True, "DefaultCacheBehavior": behaviour,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "example.com",
                                              "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                     "OriginProtocolPolicy": "https-only"}}]}})
    ledger.put(EdgeAssociation(resource=distribution["Distribution"]["Id"], version_arn="arn:fn:3"))
    read_edge(c, ev)
    assert ev.edge == {"distribution_id": distribution["Distribution"]["Id"], "expected_version_arn": "arn:fn:3",
                       "associations": []}
    ledger.put(EdgeAssociation(resource="ENOSUCH", version_arn="arn:fn:4"))
    with pytest.raises(RunbookError, match="GetDistributionConfig on ENOSUCH failed"):
        read_edge(c, ev)
    assert ev.edge["expected_version_arn"] == "arn:fn:4"   # what was expected stays in the evidence


def evidence_for_no_function(target, ledger):
    c = Collection(target, ledger, Scanner(fingerprinter=FP), FP, run_dir=ledger.path.parent)
    return c, new_evidence(c, FUNCTION, invocations(1), T0, at(1))


def test_trails_are_read(aws):
    target, ledger = aws
    target.client("s3").create_bucket(Bucket="trail-bucket")
    ct = target.client("cloudtrail")
    ct.create_trail(Name="org-trail", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    ct.start_logging(Name="org-trail")
    c, ev = evidence_for_no_function(target, ledger)
    read_trails(c, ev)
    assert [(t["name"], t["multi_region"], t["is_logging"]) for t in ev.trails] == [("org-trail", True, True)]


def test_iam_document_holds_policies_and_decisions_not_values(aws):
    target, ledger = aws
    c, ev = evidence_for_no_function(target, ledger)
    ev.errors = {"role": "denied", "logs": "not an access source"}
    doc = iam_document(ev)
    assert doc["role"] is None and doc["secretsmanager_kms_grants"] == [] and doc["unavailable"] == {"role": "denied"}
    assert set(doc) == {"secret_arn", "role", "kms_key", "secretsmanager_kms_grants", "secret_resource_policy",
                        "simulation", "live_probe", "functions_in_region", "other_roles", "roles_not_read",
                        "unavailable"}
