"""``cloudtrail-attribution``: CloudTrail names the function's own role session as the reader (validation)."""

from __future__ import annotations

from . import FAIL, PASS, SKIP, CheckSpec, Verdict
from .common import listed, unavailable

SPEC = CheckSpec(
    id="cloudtrail-attribution",
    title="CloudTrail attributes GetSecretValue to the function's own role",
    proves=("CloudTrail event history attributes successful GetSecretValue calls on the secret to "
            "assumed-role/<role>/<function> from a Lambda execution environment (userAgent exec-env/AWS_Lambda_ "
            "or invokedBy lambda); every other identity that read the secret is named."),
    controls=("AU-2", "AU-12", "AC-6"),
    phases=("validation",),
    evidence_file="cloudtrail_events.json",
    permissions=("cloudtrail:LookupEvents", "secretsmanager:DescribeSecret", "lambda:GetFunction"),
)

MATCHED_KEYS = ("eventTime", "eventName", "userIdentity type", "ARN", "session issuer", "source IP",
                "request secret id", "userAgent")


def judge(ev) -> Verdict:
    missing = unavailable(ev, "function", "secret", "cloudtrail")
    if missing:
        return missing
    if not ev.secret:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID", evidence_file="")
    attributed = ev.fetches_since_deployment()
    others = sorted({r["ARN"] or r["userIdentity type"] for r in ev.trail_rows if not ev.attributed(r)})
    evidence = {"secret_arn": ev.secret_arn, "expected_identity": ev.expected_session_arn,
                "window": ev.window.to_dict(), "polling": ev.trail_polling, "events_on_secret": len(ev.trail_rows),
                "by_the_function": len(attributed),
                "by_the_function_in_invocation_window": len(ev.fetches_in_window()),
                "other_identities": others, "matched": [{k: r.get(k, "") for k in MATCHED_KEYS} for r in attributed[:10]]}
    if not attributed:
        reason = (f"no successful GetSecretValue on the secret by {ev.expected_session_arn} from Lambda since "
                  f"{evidence['window']['read_from']}")
        if ev.target == "aws" and ev.trail_polling.get("waited_seconds", 0) < 60:
            reason += " (CloudTrail delivers events minutes late on AWS: raise trail_wait_seconds)"
        if others:
            reason += f"; calls by: {listed(others, 3, ', ')}"
        return Verdict(FAIL, reason, evidence)
    return Verdict(PASS, f"{len(attributed)} GetSecretValue by {ev.expected_session_arn} from Lambda "
                         f"({evidence['by_the_function_in_invocation_window']} in the invocation window)"
                         + (f"; other callers: {listed(others, 3, ', ')}" if others else ""), evidence)
