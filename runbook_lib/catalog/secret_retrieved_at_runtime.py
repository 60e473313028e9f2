"""``secret-retrieved-at-runtime``: the function fetched its secret from Secrets Manager (validation).

Proven by CloudTrail, whatever the runtime or the code: a ``GetSecretValue`` on the secret
by the function's own role session (``assumed-role/<role>/<function>``), from Lambda, since
the new code or configuration was deployed, **without an errorCode** (a denied call is not a
fetch). Log lines matching ``retrieval_log_pattern`` are extra evidence; their absence is
never a failure.
"""

from __future__ import annotations

import re

from ..evidence import iso, parse_time
from . import FAIL, PASS, SKIP, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="secret-retrieved-at-runtime",
    title="The function fetches its secret from Secrets Manager at run time",
    proves=("CloudTrail holds a successful GetSecretValue on the secret by the function's own role session "
            "(assumed-role/<role>/<function>, from Lambda) since the change was deployed."),
    controls=("IA-5", "IA-7"),
    phases=("validation",),
    evidence_file="cloudtrail_events.json",
    permissions=("cloudtrail:LookupEvents", "secretsmanager:DescribeSecret", "lambda:GetFunction"),
)


def log_lines(ev) -> dict:
    """What the optional ``retrieval_log_pattern`` found in the logs (counts only)."""
    if not ev.retrieval_log_pattern:
        return {"pattern": "", "lines": 0}
    if "logs" in ev.errors:
        return {"pattern": ev.retrieval_log_pattern, "lines": None, "note": "CloudWatch Logs could not be read"}
    pattern = re.compile(ev.retrieval_log_pattern)
    found = [e for e in ev.log_events if pattern.search(e["message"])]
    return {"pattern": ev.retrieval_log_pattern, "lines": len(found),
            "lines_in_invocation_window": sum(1 for e in found if ev.window.contains(e["timestamp"])),
            "streams": sorted({e["stream"] for e in found})}


def judge(ev) -> Verdict:
    missing = unavailable(ev, "function", "secret", "cloudtrail")
    if missing:
        return missing
    if not ev.secret:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID: nothing the function should fetch",
                       evidence_file="")
    fetches = ev.fetches_since_deployment()
    denied = [r for r in ev.trail_rows if ev.by_the_function(r) and r.get("errorCode")]
    evidence = {"secret_arn": ev.secret_arn, "expected_identity": ev.expected_session_arn,
                "window": ev.window.to_dict(), "polling": ev.trail_polling, "fetches_since_deployment": len(fetches),
                "first_fetch": iso(parse_time(fetches[0]["eventTime"])) if fetches else "",
                "denied_attempts": [{"eventTime": r["eventTime"], "errorCode": r["errorCode"]} for r in denied[:10]],
                "log_lines": log_lines(ev)}
    if not fetches:
        reason = (f"no successful GetSecretValue on the secret by {ev.expected_session_arn} from Lambda since "
                  f"{evidence['window']['read_from']}: the function does not fetch its secret at run time")
        if denied:
            reason += f" ({len(denied)} attempt(s) denied: {denied[0]['errorCode']})"
        return Verdict(FAIL, reason, evidence)
    return Verdict(PASS, f"{len(fetches)} successful GetSecretValue by {ev.expected_session_arn} since the "
                         f"deployment, first at {evidence['first_fetch']} (CloudTrail)", evidence)
