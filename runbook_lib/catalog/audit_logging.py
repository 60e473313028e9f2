"""``audit-logging``: a multi-region trail is logging management read events (validation)."""

from __future__ import annotations

from . import FAIL, PASS, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="audit-logging",
    title="A multi-region trail logs management read events",
    proves=("CloudTrail has a multi-region trail that is logging and whose event selectors include management "
            "read events, so GetSecretValue is recorded (DescribeTrails, GetTrailStatus, GetEventSelectors); "
            "an organization trail is preferred."),
    controls=("AU-2", "AU-12"),
    phases=("validation",),
    evidence_file="",
    permissions=("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"),
)


def shortfall(row: dict) -> str:
    if "unreadable" in row:
        return f"{row['name']}: {row['unreadable']}"
    missing = [what for what, bad in (("not multi-region", not row["multi_region"]),
                                      ("not logging", not row["is_logging"]),
                                      ("no management read events", not row["management_read_events"])) if bad]
    return f"{row['name']}: {', '.join(missing)}"


def judge(ev) -> Verdict:
    missing = unavailable(ev, "trails")
    if missing:
        return missing
    rows = ev.trails
    qualifying = sorted((r for r in rows if r["multi_region"] and r["is_logging"] and r["management_read_events"]),
                        key=lambda r: not r["organization_trail"])
    evidence = {"trails": rows, "qualifying": [r["name"] for r in qualifying],
                "organization_trail": bool(qualifying and qualifying[0]["organization_trail"])}
    if not qualifying:
        why = [shortfall(r) for r in rows]
        return Verdict(FAIL, "no multi-region trail is logging management read events"
                       + (f" ({'; '.join(why)})" if why else ": no trail at all"), evidence)
    best = qualifying[0]
    if not evidence["organization_trail"]:
        evidence["note"] = "no organization trail: an account trail can be stopped from inside the account"
    return Verdict(PASS, f"trail {best['name']} ({'organization' if best['organization_trail'] else 'account'} "
                         "trail) is multi-region, logging, with management read events", evidence)
