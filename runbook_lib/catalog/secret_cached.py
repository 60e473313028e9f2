"""``secret-cached``: the function fetches its secret once per execution environment (validation).

Counted on CloudTrail alone: the function's attributed, successful ``GetSecretValue`` calls.
At least one since the deployment (else there is nothing to show caching of), and inside
the invocation window no more than one per execution environment per cache TTL. The
environments are the function's log streams that served the invocations (their ``START``
lines); where the logs could not be read the check says so (WARN). Retrieval log lines and
calls outside the window are not counted.
"""

from __future__ import annotations

from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="secret-cached",
    title="The secret is fetched once per execution environment",
    proves=("CloudTrail holds at least one successful GetSecretValue by the function's role session since the "
            "deployment, and inside the invocation window no more than one per execution environment (the log "
            "streams that served the invocations) per cache TTL, for more invocations than that."),
    controls=("IA-5",),
    phases=("validation",),
    evidence_file="cloudtrail_events.json",
    permissions=("cloudtrail:LookupEvents", "logs:FilterLogEvents", "secretsmanager:DescribeSecret"),
)


def judge(ev) -> Verdict:
    missing = unavailable(ev, "function", "secret", "cloudtrail")
    if missing:
        return missing
    if not ev.secret:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID", evidence_file="")
    since, in_window = ev.fetches_since_deployment(), ev.fetches_in_window()
    evidence = {"invocations": len(ev.invocations), "fetches_since_deployment": len(since),
                "get_secret_value_calls": len(in_window), "cache_ttl_seconds": ev.cache_ttl_seconds,
                "window": ev.window.to_dict()}
    if not since:
        return Verdict(FAIL, f"no successful GetSecretValue by {ev.expected_session_arn} since "
                             f"{evidence['window']['read_from']}: there is no fetch to show caching of", evidence)
    if "logs" in ev.errors:
        return Verdict(WARN, f"execution environments unknown, CloudWatch Logs could not be read ({ev.errors['logs']}): "
                             f"{len(in_window)} fetch(es) in the window for {len(ev.invocations)} invocations",
                       evidence)
    environments = ev.environments_in_window()
    allowed = ev.fetch_allowance(len(environments))
    evidence.update(execution_environments=len(environments), log_streams=environments, allowed_fetches=allowed)
    if not environments:
        return Verdict(WARN, "no log stream shows the invocations' START lines: execution environments unknown "
                             f"({len(in_window)} fetch(es) in the window for {len(ev.invocations)} invocations)",
                       evidence)
    if len(in_window) > allowed:
        return Verdict(FAIL, f"{len(in_window)} fetches for {len(ev.invocations)} invocations on {len(environments)} "
                             f"execution environment(s) (at most {allowed} with caching): the secret is fetched on "
                             "every call instead of cached", evidence)
    if len(ev.invocations) <= allowed:
        return Verdict(WARN, f"{len(ev.invocations)} invocation(s) on {len(environments)} execution environment(s) "
                             f"cannot tell caching from fetching on every call: invoke more than {allowed} times",
                       evidence)
    return Verdict(PASS, f"{len(in_window)} fetch(es) in the window for {len(ev.invocations)} invocations on "
                         f"{len(environments)} execution environment(s) (at most {allowed}); {len(since)} since "
                         "the deployment (CloudTrail)", evidence)
