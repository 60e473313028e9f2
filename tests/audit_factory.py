"""Fabricated audit results for the baseline checks: functions, findings and coverage gaps, no AWS."""

from runbook_lib.audit_result import AuditResult, FunctionScan
from runbook_lib.inventory import Gap

ACCOUNT, REGION = "123456789012", "us-east-1"


def function(name: str) -> FunctionScan:
    return FunctionScan(ACCOUNT, REGION, name, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", "python3.12",
                        "Zip", "", f"arn:aws:iam::{ACCOUNT}:role/r", 100, [], [], code="scanned")


def finding(name: str, location: str, where: str, version: str = "$LATEST", layer: str = "") -> dict:
    return {"account": ACCOUNT, "region": REGION, "function": name, "version": version, "location": location,
            "where": where, "layer": layer, "rule": "generic-secret", "title": "t", "remediation": "r",
            "redacted": "ab…(20)", "fingerprint": "fp:1", "edge_candidate": False}


def result(findings=(), gaps=(), names=("orders-api", "inventory-sync"), include_code=True, include_layers=True,
           downloads=2) -> AuditResult:
    return AuditResult([function(n) for n in names], list(findings), list(gaps), {"ListFunctions": 1}, 0.5,
                       [(ACCOUNT, REGION)], include_code, include_layers, downloads)


def gap(status: str, subject: str = "orders-api", reason: str = "GetFunction failed: AccessDenied") -> Gap:
    return Gap(ACCOUNT, REGION, subject, "GetFunction", status, reason, "lambda:GetFunction")
