"""``no-secret-in-logs``: no value of the secret, and no other credential, in the function's logs (validation).

Collection reads the secret once as the operator and compares its values with every log
message since the deployment, in memory; the evidence holds counts, streams, fingerprints
and redacted previews only. The scanner also reads the logs: a credential it finds that is
not one of the secret's values (a foreign credential) fails the check too.
"""

from __future__ import annotations

from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="no-secret-in-logs",
    title="No secret value in the function's logs",
    proves=("No CloudWatch Logs event of the function since the deployment holds a value of the secret "
            "(compared in memory) or any credential the secret scanner detects, and the read was not truncated."),
    controls=("IA-5", "SC-28"),
    phases=("validation",),
    evidence_file="log_excerpt.json",
    permissions=("logs:FilterLogEvents", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
)

SCAN_KEYS = ("values_in_secret", "values_searched", "values_too_short_to_search", "secret_fingerprints", "hits")


def foreign_findings(scan: dict) -> list[dict]:
    """Scanner findings whose value is not one of the secret's (by fingerprint)."""
    own = set(scan.get("secret_fingerprints", []))
    return [f for f in scan.get("scanner_findings", []) if f.get("fingerprint") not in own]


def judge(ev) -> Verdict:
    missing = unavailable(ev, "secret", "logs", "log_values")
    if missing:
        return missing
    if not ev.secret:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID: nothing to compare the logs with",
                       evidence_file="")
    scan = ev.value_scan
    foreign = foreign_findings(scan)
    evidence = {"events_scanned": len(ev.log_events), "truncated": ev.logs_truncated,
                "streams": sorted({e["stream"] for e in ev.log_events}), "window": ev.window.to_dict(),
                **{k: scan.get(k) for k in SCAN_KEYS}, "scanner_findings": scan.get("scanner_findings", []),
                "foreign_credentials": foreign}
    reasons = []
    if scan.get("hits"):
        reasons.append(f"{sum(h['events'] for h in scan['hits'])} log event(s) hold a value of the secret "
                       f"({', '.join(h['fingerprint'] for h in scan['hits'])})")
    if foreign:
        reasons.append(f"{len(foreign)} credential(s) that are not the secret's in the logs: "
                       + ", ".join(sorted({f['rule'] for f in foreign})))
    elif scan.get("scanner_findings"):
        reasons.append(f"{len(scan['scanner_findings'])} scanner finding(s) of the secret's values in the logs")
    if reasons:
        return Verdict(FAIL, "; ".join(reasons), evidence)
    if ev.logs_truncated:
        return Verdict(WARN, "the log read stopped at its limit: later events were not searched", evidence)
    if not ev.log_events:
        return Verdict(WARN, f"no log event of the function since {ev.window.to_dict()['read_from']}: "
                             "nothing was searched (log delivery may lag)", evidence)
    if not scan.get("values_searched"):
        return Verdict(WARN, f"none of the secret's {scan.get('values_in_secret', 0)} value(s) is long enough to "
                             "search for: the logs were searched by the scanner only", evidence)
    return Verdict(PASS, f"{len(ev.log_events)} log event(s) in {len(evidence['streams'])} stream(s) searched for "
                         f"{scan['values_searched']} value(s) of the secret and by the scanner: none found", evidence)
