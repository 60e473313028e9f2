"""Fabricated evidence for the catalog's checks: a healthy validation every check passes, then one change.

``healthy()`` is what a good migration leaves behind (5 invocations on one warm environment,
one fetch by the function's role session, a role reading exactly the secret, a logging
organization trail, no residue...). Each test changes one thing and asserts the exact
status and reason. Nothing here calls AWS.
"""

import datetime as dt

from runbook_lib import residue
from runbook_lib.evidence import event_row, iso
from runbook_lib.iam_analysis import RoleAnalysis
from runbook_lib.validation_evidence import ValidationEvidence, Window

ACCOUNT, REGION, FUNCTION, ROLE = "123456789012", "us-east-1", "orders-api", "orders-api-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
ROLE_ID = "AROAORDERSAPIROLE0001"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{FUNCTION}"
OPERATOR_ARN = f"arn:aws:iam::{ACCOUNT}:user/auditor"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:lambda/{FUNCTION}/config-AbCdEf"
OTHER_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:lambda/other/config-XyZabc"
DECOY_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/decoy-role"
LAMBDA_AGENT = "Boto3/1.34 md/Botocore#1.34 ua/2.0 exec-env/AWS_Lambda_python3.12"
T0 = dt.datetime(2026, 1, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
STREAM = "2026/01/01/[$LATEST]0123456789abcdef"
SHAPE = {"statusCode": "int", "body": {"orders": "int"}}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "lambda.amazonaws.com"}}]}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def window(seconds: float = 5, deployed_before: float = 60) -> Window:
    return Window(T0, at(seconds), at(-deployed_before))


def invocations(count: int = 5) -> list[dict]:
    return [{"index": i, "start": iso(at(i)), "end": iso(at(i + 0.01)), "duration_ms": 10.0 + i,
             "status_code": 200, "function_error": "", "executed_version": "$LATEST", "request_id": f"req-{i}",
             "http_status": 200, "response_shape": SHAPE, "response_bytes": 20} for i in range(1, count + 1)]


def log_event(seconds: float, message: str, stream: str = STREAM) -> dict:
    return {"stream": stream, "timestamp": int(at(seconds).timestamp() * 1000), "message": message}


def invocation_logs(invs: list[dict], stream: str = STREAM, extra: tuple = ()) -> list[dict]:
    events = []
    for inv in invs:
        second = inv["index"]
        events += [log_event(second, f"START RequestId: {inv['request_id']} Version: $LATEST", stream)]
        events += [log_event(second + 0.001, line, stream) for line in extra]
        events += [log_event(second + 0.005, f"END RequestId: {inv['request_id']}", stream),
                   log_event(second + 0.006, f"REPORT RequestId: {inv['request_id']} Duration: 5 ms", stream)]
    return events


def trail_row(seconds: float, arn: str = SESSION_ARN, agent: str = LAMBDA_AGENT, error: str = "",
              secret_id: str = SECRET_ARN) -> dict:
    event = {"eventTime": at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": "GetSecretValue",
             "userIdentity": {"type": "AssumedRole" if ":assumed-role/" in arn else "IAMUser", "arn": arn},
             "userAgent": agent, "requestParameters": {"secretId": secret_id}, "sourceIPAddress": "10.0.0.1"}
    if error:
        event["errorCode"] = error
    return event_row(event)


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def analysis(documents: dict | None = None, role_arn: str = ROLE_ARN, role_id: str = ROLE_ID,
             managed: list | None = None, unreadable: list | None = None, trust: dict | None = None) -> RoleAnalysis:
    """A role analysis built from documents (``{"inline:read": {...}}``), as ``analyse_role`` builds it."""
    out = RoleAnalysis(role_name=role_arn.rsplit("/", 1)[-1], role_arn=role_arn, role_id=role_id,
                       trust_policy=trust or TRUST_LAMBDA, managed_policies=list(managed or []),
                       unreadable=list(unreadable or []))
    for label, doc in (documents if documents is not None else
                       {"inline:read": policy(allow("secretsmanager:GetSecretValue", SECRET_ARN))}).items():
        if label.startswith("inline:"):
            out.inline_policies.append(label.split(":", 1)[1])
        out.add_document(label, doc)
    return out


def healthy(**changes) -> ValidationEvidence:
    """Evidence of a good migration: every validation check PASSes on it."""
    invs = invocations()
    ev = ValidationEvidence(
        target="lab", function_name=FUNCTION, region=REGION, window=window(), invocations=invs,
        config={"FunctionArn": FUNCTION_ARN, "Role": ROLE_ARN, "CodeSha256": "new-sha", "PackageType": "Zip",
                "Environment": {"Variables": {"SECRET_ID": SECRET_ARN, "TABLE_NAME": "orders"}}},
        baseline={"response_shape": SHAPE, "baseline_status": "ok"},
        moved_variables=["DB_PASSWORD", "PARTNER_API_KEY"], snapshot_code_sha256="old-sha",
        code={"files_scanned": 3, "bytes_scanned": 2048, "skipped": [], "findings": []},
        secret={"ARN": SECRET_ARN, "Name": f"lambda/{FUNCTION}/config", "RotationEnabled": True,
                "RotationRules": {"AutomaticallyAfterDays": 30}},
        ledger_kms_key="aws/secretsmanager",
        key={"kms_key_id": "alias/aws/secretsmanager (default)", "key_manager": "AWS", "key_arn": "",
             "key_state": "", "key_rotation_enabled": None},
        log_events=invocation_logs(invs),
        value_scan={"values_in_secret": 2, "values_searched": 2, "values_too_short_to_search": 0,
                    "secret_fingerprints": ["fp:aaaa", "fp:bbbb"], "hits": [], "scanner_findings": []},
        trail_rows=[trail_row(1)], trail_polling={"attempts": 1, "waited_seconds": 0.0, "satisfied": True},
        role=analysis(),
        simulation={"available": True, "as_expected": True,
                    "decisions": {SECRET_ARN: "allowed", "*": "implicitDeny", "decoy": "implicitDeny"}},
        probe={"performed": False, "reason": "the role's trust policy does not name the operator"},
        functions=[{"function": "inventory-sync", "role": DECOY_ROLE_ARN}],
        role_analyses={DECOY_ROLE_ARN: analysis({"inline:logs": policy(allow("logs:PutLogEvents", "*"))},
                                                role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001")},
        trails=[{"name": "org-trail", "arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail",
                 "home_region": REGION, "multi_region": True, "organization_trail": True, "is_logging": True,
                 "management_read_events": True, "data_event_selectors": []}],
        edge={"distribution_id": "E2EXAMPLE", "expected_version_arn": f"{FUNCTION_ARN}:3",
              "associations": [{"behaviour": "default", "event_type": "viewer-request",
                                "function_arn": f"{FUNCTION_ARN}:3"}]},
        sweep=residue.Sweep(FUNCTION, versions=[residue.VersionResidue("2", f"{FUNCTION_ARN}:2")]),
        exposure=[{"item": "DB_PASSWORD", "kind": "environment variable moved to Secrets Manager",
                   "exposed in": "the function's configuration and its published versions", "rotated": True,
                   "how": "new secret version put by close-out"}])
    for name, value in changes.items():
        setattr(ev, name, value)
    return ev
