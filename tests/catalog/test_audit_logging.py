"""``audit-logging`` on fabricated trails."""

from evidence_factory import healthy

from runbook_lib.catalog import FAIL, PASS, Verdict
from runbook_lib.catalog.audit_logging import judge


def trail(name="org-trail", **changes):
    return {"name": name, "arn": f"arn:aws:cloudtrail:us-east-1:123456789012:trail/{name}", "home_region": "us-east-1",
            "multi_region": True, "organization_trail": True, "is_logging": True, "management_read_events": True,
            "data_event_selectors": [], **changes}


def test_a_logging_organization_trail_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "trail org-trail (organization trail) is multi-region, logging, "
                                                      "with management read events")
    assert verdict.evidence["organization_trail"] is True and "note" not in verdict.evidence


def test_an_organization_trail_is_preferred_and_an_account_trail_is_noted():
    verdict = judge(healthy(trails=[trail("acct", organization_trail=False), trail("org")]))
    assert verdict.reason.startswith("trail org (organization trail)") and verdict.evidence["qualifying"] == ["org", "acct"]
    verdict = judge(healthy(trails=[trail("acct", organization_trail=False)]))
    assert verdict.reason.startswith("trail acct (account trail)") and "can be stopped" in verdict.evidence["note"]


def test_each_shortfall_is_named():
    rows = [trail("a", multi_region=False), trail("b", is_logging=False), trail("c", management_read_events=False),
            {**trail("d", is_logging=False), "unreadable": "GetTrailStatus denied"}]
    verdict = judge(healthy(trails=rows))
    assert verdict.status == FAIL
    assert verdict.reason == ("no multi-region trail is logging management read events (a: not multi-region; "
                              "b: not logging; c: no management read events; d: GetTrailStatus denied)")


def test_no_trail_at_all_fails():
    assert judge(healthy(trails=[])).reason == "no multi-region trail is logging management read events: no trail at all"


def test_unreadable_trails_fail_with_the_reason():
    verdict = judge(healthy(errors={"trails": "DescribeTrails denied"}))
    assert (verdict.status, verdict.reason) == (FAIL, "The trails could not be read: DescribeTrails denied")


def test_whole_verdicts_carry_the_trails():
    account = [trail("acct", organization_trail=False)]
    assert judge(healthy(trails=account)) == Verdict(
        PASS, "trail acct (account trail) is multi-region, logging, with management read events",
        {"trails": account, "qualifying": ["acct"], "organization_trail": False,
         "note": "no organization trail: an account trail can be stopped from inside the account"})
    stopped = [trail("a", is_logging=False, multi_region=False)]
    assert judge(healthy(trails=stopped)) == Verdict(
        FAIL, "no multi-region trail is logging management read events (a: not multi-region, not logging)",
        {"trails": stopped, "qualifying": [], "organization_trail": False})
    assert judge(healthy(trails=[])) == Verdict(FAIL, "no multi-region trail is logging management read events: no "
                                                      "trail at all",
                                                {"trails": [], "qualifying": [], "organization_trail": False})
