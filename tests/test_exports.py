"""Tests of :mod:`runbook_lib.exports`: OCSF Detection Findings, ASFF and JUnit XML of a run's checks."""

from __future__ import annotations

import json

from export_formats import assert_asff_finding, assert_ocsf_detection_finding, junit_cases

from runbook_lib.checks import Check
from runbook_lib.exports import (ASFF_FILE, JUNIT_FILE, OCSF_FILE, ExportContext, asff_finding, ocsf_finding,
                                 write_exports)

CONTEXT = ExportContext(account="123456789012", region="eu-west-1", target="aws", function_name="orders-api",
                        version="0.1.0", time="2026-12-01T10:00:00Z")
CHECKS = [
    Check("no-secrets-in-environment", "No secret in environment variables", "baseline", "FAIL",
          "2 secrets in orders-api (DB_PASSWORD, PARTNER_API_KEY)", {"functions": 1}, ["IA-5"]),
    Check("change-secret", "Secret created", "change", "PASS", "", {"detail": "secret lambda/orders-api/config"},
          ["IA-5", "SC-28"], notebook="02_implementation"),
    Check("least-privilege", "The role reads one secret", "validation", "WARN", "proven by static analysis only",
          {"proven_by": ["static analysis"]}, ["AC-6"], evidence_file="iam_analysis.json"),
    Check("edge-association", "Edge", "validation", "SKIP", "no Lambda@Edge association", {}, ["CM-3"]),
    Check("no-secret-in-logs", "Logs hold no secret", "validation", "FAIL", "1 hit in /aws/lambda/orders-api",
          {}, ["AU-2"]),
]
GATING = {(c.phase, c.id) for c in CHECKS if c.phase != "baseline"}  # as `runbook run` gates


def test_every_check_is_an_ocsf_detection_finding_with_its_status_and_evidence_line():
    docs = [ocsf_finding(c, CONTEXT) for c in CHECKS]
    for doc in docs:
        assert_ocsf_detection_finding(doc)
    assert [d["status_code"] for d in docs] == ["FAIL", "PASS", "WARN", "SKIP", "FAIL"]
    assert [d["severity_id"] for d in docs] == [4, 1, 3, 1, 4]
    assert docs[1]["status_detail"] == "secret lambda/orders-api/config"  # a PASS carries its evidence too
    assert docs[0]["time"] == 1796119200000 and docs[0]["cloud"]["account"]["uid"] == "123456789012"
    assert docs[0]["resources"][0]["uid"] == "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"
    assert docs[0]["unmapped"]["compliance"] == {"NIST-800-53-Revision-5": ["IA-5"]}
    assert len({d["finding_info"]["uid"] for d in docs}) == len(docs)  # baseline and validation stay apart


def test_every_check_is_an_asff_finding_security_hub_accepts():
    docs = [asff_finding(c, CONTEXT, proves="what a PASS proves") for c in CHECKS]
    for doc in docs:
        assert_asff_finding(doc)
    assert [d["Compliance"]["Status"] for d in docs] == ["FAILED", "PASSED", "WARNING", "NOT_AVAILABLE", "FAILED"]
    assert docs[0]["ProductArn"] == "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
    assert docs[2]["Compliance"]["RelatedRequirements"] == ["NIST.800-53.r5 AC-6"]
    assert docs[0]["Resources"][0] == {"Type": "AwsLambdaFunction", "Partition": "aws", "Region": "eu-west-1",
                                       "Id": "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"}


def test_an_audit_of_no_one_function_names_the_account_and_long_text_fits_security_hubs_limits():
    account_wide = ExportContext(**{**CONTEXT.__dict__, "function_name": ""})
    long = Check("audit-coverage-complete", "t" * 300, "baseline", "FAIL", "r" * 2000, {}, ["AU-2"])
    doc = asff_finding(long, account_wide)
    assert_asff_finding(doc)
    assert doc["Resources"][0]["Id"] == "AWS::::Account:123456789012" and doc["Description"].endswith("checks.json)")
    assert ocsf_finding(long, account_wide)["status_detail"] == "r" * 2000  # OCSF keeps the whole line


def test_junit_fails_gating_fails_only_warns_in_system_out_and_skips_skips():
    cases = junit_cases(__import__("runbook_lib.exports", fromlist=["junit_xml"]).junit_xml(CHECKS, GATING))
    assert sorted(cases) == ["baseline/no-secrets-in-environment", "change/change-secret",
                             "validation/edge-association", "validation/least-privilege",
                             "validation/no-secret-in-logs"]
    assert cases["validation/no-secret-in-logs"].find("failure").get("message") == "1 hit in /aws/lambda/orders-api"
    baseline = cases["baseline/no-secrets-in-environment"]
    assert baseline.find("failure") is None and "does not gate this run" in baseline.find("system-out").text
    warn = cases["validation/least-privilege"]
    assert warn.find("failure") is None and warn.find("system-out").text.startswith("WARN - proven by static")
    assert cases["validation/edge-association"].find("skipped").get("message") == "no Lambda@Edge association"
    assert cases["change/change-secret"].find("system-out").text.startswith("PASS - secret lambda/orders-api")
    audit = junit_cases(__import__("runbook_lib.exports", fromlist=["junit_xml"]).junit_xml(
        CHECKS, {(c.phase, c.id) for c in CHECKS}))  # `runbook audit`: the baseline gates
    assert audit["baseline/no-secrets-in-environment"].find("failure") is not None


def test_control_characters_from_aws_names_cannot_break_the_xml(tmp_path):
    hostile = Check("no-secrets-in-code", "t", "validation", "FAIL", "member \x1b[2J\x00app\rx.py", {}, ["IA-5"])
    write_exports(tmp_path, [hostile], CONTEXT, {("validation", "no-secrets-in-code")})
    case = junit_cases((tmp_path / JUNIT_FILE).read_bytes())["validation/no-secrets-in-code"]
    assert case.find("failure").get("message") == "member \\x1b[2J\\x00app\\x0dx.py"
    assert "\x1b" not in (tmp_path / OCSF_FILE).read_text() + (tmp_path / ASFF_FILE).read_text()


def test_write_exports_writes_three_parseable_files(tmp_path):
    paths = write_exports(tmp_path, CHECKS, CONTEXT, GATING)
    assert [p.name for p in paths] == [OCSF_FILE, ASFF_FILE, JUNIT_FILE]
    assert len(json.loads(paths[0].read_text())) == len(json.loads(paths[1].read_text())) == len(CHECKS)
    assert len(junit_cases(paths[2].read_bytes())) == len(CHECKS)


def test_the_leak_guards_scanner_finds_nothing_in_the_exports_of_ordinary_checks(tmp_path):
    from runbook_lib.leak_guard import guard_scanner

    passes = [Check("change-snapshot", "Snapshot", "change", "PASS", "", {"detail": "version 1 (CodeSha256 abc=)"},
                    ["CP-10"]),
              Check("function-restored", "Restored", "backout", "PASS", "", {"snapshot_version": "1"}, ["CP-10"])]
    scanner = guard_scanner()
    for path in write_exports(tmp_path, CHECKS + passes, CONTEXT, GATING):
        assert scanner.scan_text(path.read_text(), path.name) == [], path.name
