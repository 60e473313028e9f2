"""``edge-association`` on fabricated distribution configurations."""

from evidence_factory import FUNCTION_ARN, healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, Verdict
from runbook_lib.catalog.edge_association import judge


def edge(*associations, expected=f"{FUNCTION_ARN}:3"):
    return {"distribution_id": "E2EXAMPLE", "expected_version_arn": expected,
            "associations": [{"behaviour": b, "event_type": t, "function_arn": a} for b, t, a in associations]}


def test_the_viewer_request_association_of_the_version_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, f"distribution E2EXAMPLE runs {FUNCTION_ARN}:3 on "
                                                      "viewer-request (default behaviour)")


def test_an_older_version_or_another_event_type_fails():
    for ev in (healthy(edge=edge(("default", "viewer-request", f"{FUNCTION_ARN}:2"))),
               healthy(edge=edge(("default", "origin-request", f"{FUNCTION_ARN}:3"))), healthy(edge=edge())):
        verdict = judge(ev)
        assert (verdict.status, verdict.reason) == (FAIL, f"no viewer-request association of {FUNCTION_ARN}:3 on "
                                                          "distribution E2EXAMPLE")


def test_a_path_behaviour_counts():
    verdict = judge(healthy(edge=edge(("/api/*", "viewer-request", f"{FUNCTION_ARN}:3"))))
    assert verdict.status == PASS and verdict.reason.endswith("(/api/* behaviour)")


def test_no_association_in_the_ledger_skips_and_an_unreadable_distribution_fails():
    assert (judge(healthy(edge=None)).status, judge(healthy(edge=None)).reason) == (
        SKIP, "the implementation used no Lambda@Edge association")
    verdict = judge(healthy(errors={"edge": "GetDistributionConfig denied"}))
    assert (verdict.status, verdict.reason) == (FAIL, "The distribution could not be read: GetDistributionConfig denied")


def test_whole_verdicts_carry_the_distribution_record():
    passing = edge(("default", "viewer-request", f"{FUNCTION_ARN}:3"), ("/api/*", "viewer-request", f"{FUNCTION_ARN}:3"))
    assert judge(healthy(edge=passing)) == Verdict(
        PASS, f"distribution E2EXAMPLE runs {FUNCTION_ARN}:3 on viewer-request (default, /api/* behaviour)", passing)
    failing = edge(("default", "viewer-request", f"{FUNCTION_ARN}:2"))
    assert judge(healthy(edge=failing)) == Verdict(
        FAIL, f"no viewer-request association of {FUNCTION_ARN}:3 on distribution E2EXAMPLE", failing)
