"""``secret-cached``: CloudTrail fetches per execution environment; adversarial windows, logs and TTLs."""

import pytest
from evidence_factory import SESSION_ARN, STREAM, healthy, invocation_logs, log_event, trail_row

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.secret_cached import judge


def test_one_fetch_for_five_invocations_on_one_environment_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "1 fetch(es) in the window for 5 invocations on 1 execution "
                                                      "environment(s) (at most 1); 1 since the deployment (CloudTrail)")
    assert verdict.evidence["log_streams"] == [STREAM] and verdict.evidence["allowed_fetches"] == 1


def test_a_fetch_on_every_call_fails():
    verdict = judge(healthy(trail_rows=[trail_row(i) for i in range(1, 6)]))
    assert verdict.status == FAIL
    assert verdict.reason == ("5 fetches for 5 invocations on 1 execution environment(s) (at most 1 with caching): "
                              "the secret is fetched on every call instead of cached")


def test_two_fetches_on_one_environment_fail_and_on_two_pass():
    two = [trail_row(1), trail_row(3)]
    assert judge(healthy(trail_rows=two)).status == FAIL
    ev = healthy(trail_rows=two)
    ev.log_events = invocation_logs(ev.invocations[:2], "stream-a") + invocation_logs(ev.invocations[2:], "stream-b")
    verdict = judge(ev)
    assert verdict.status == PASS and verdict.evidence["execution_environments"] == 2


def test_fetches_before_the_window_prove_a_warm_environment_and_are_not_counted_in_it():
    verdict = judge(healthy(trail_rows=[trail_row(-40), trail_row(-39), trail_row(-38)]))
    assert (verdict.status, verdict.reason) == (PASS, "0 fetch(es) in the window for 5 invocations on 1 execution "
                                                      "environment(s) (at most 1); 3 since the deployment (CloudTrail)")


def test_calls_after_the_window_do_not_count():
    rows = [trail_row(1)] + [trail_row(30 + i) for i in range(4)]
    assert judge(healthy(trail_rows=rows)).status == PASS


def test_retrieval_log_lines_do_not_count():
    ev = healthy()
    ev.log_events = invocation_logs(ev.invocations, extra=("secret retrieved from Secrets Manager",))
    assert judge(ev).status == PASS
    assert judge(healthy(trail_rows=[])).status == FAIL  # lines without a CloudTrail fetch prove nothing


def test_other_identities_and_denied_calls_do_not_count_as_fetches():
    rows = [trail_row(1, error="AccessDeniedException")] + [trail_row(2, arn="arn:aws:iam::123456789012:user/x")]
    verdict = judge(healthy(trail_rows=rows))
    assert verdict.status == FAIL and verdict.reason.endswith("there is no fetch to show caching of")


def test_a_ttl_allows_one_more_fetch_per_ttl_in_the_window():
    rows = [trail_row(1), trail_row(3), trail_row(5)]
    assert judge(healthy(trail_rows=rows, cache_ttl_seconds=2)).status == PASS  # 1 + floor(5 / 2) = 3
    verdict = judge(healthy(trail_rows=rows, cache_ttl_seconds=2.6))              # 1 + floor(5 / 2.6) = 2
    assert verdict.status == FAIL and "(at most 2 with caching)" in verdict.reason


def test_no_fetch_since_the_deployment_fails():
    verdict = judge(healthy(trail_rows=[trail_row(-200)]))
    assert (verdict.status, verdict.reason) == (FAIL, "no successful GetSecretValue by "
                                                      "arn:aws:sts::123456789012:assumed-role/orders-api-role/orders-api "
                                                      "since 2026-01-01T09:59:00.000Z: there is no fetch to show caching of")


def test_unreadable_logs_warn_instead_of_guessing_the_environments():
    verdict = judge(healthy(errors={"logs": "FilterLogEvents denied"}))
    assert (verdict.status, verdict.reason) == (WARN, "execution environments unknown, CloudWatch Logs could not be "
                                                      "read (FilterLogEvents denied): 1 fetch(es) in the window for 5 "
                                                      "invocations")


def test_no_start_line_of_these_invocations_warns():
    ev = healthy()
    ev.log_events = [log_event(1, "START RequestId: someone-else Version: $LATEST")]
    verdict = judge(ev)
    assert (verdict.status, verdict.reason) == (WARN, "no log stream shows the invocations' START lines: execution "
                                                      "environments unknown (1 fetch(es) in the window for 5 "
                                                      "invocations)")


def test_a_start_line_outside_the_window_is_not_an_environment_of_it():
    ev = healthy()
    ev.log_events = [log_event(-20, "START RequestId: req-1 Version: $LATEST")]
    assert judge(ev).status == WARN


def test_too_few_invocations_cannot_show_caching():
    ev = healthy()
    ev.invocations = ev.invocations[:1]
    verdict = judge(ev)
    assert (verdict.status, verdict.reason) == (WARN, "1 invocation(s) on 1 execution environment(s) cannot tell "
                                                      "caching from fetching on every call: invoke more than 1 times")
    ev.invocations = healthy().invocations[:2]
    assert judge(ev).status == PASS


def test_missing_cloudtrail_fails_and_no_secret_skips():
    assert judge(healthy(errors={"cloudtrail": "denied"})).reason == "CloudTrail could not be read: denied"
    assert judge(healthy(secret={})).status == SKIP


# -- whole verdicts: status, reason, every evidence key and the evidence file --------------------
WINDOW = healthy().window.to_dict()


def counts(invocations=5, since=1, in_window=1, ttl=0.0) -> dict:
    return {"invocations": invocations, "fetches_since_deployment": since, "get_secret_value_calls": in_window,
            "cache_ttl_seconds": ttl, "window": WINDOW}


def test_whole_verdict_of_a_pass():
    assert judge(healthy()) == Verdict(
        PASS, "1 fetch(es) in the window for 5 invocations on 1 execution environment(s) (at most 1); 1 since the "
              "deployment (CloudTrail)",
        {**counts(), "execution_environments": 1, "log_streams": [STREAM], "allowed_fetches": 1})


def test_whole_verdicts_of_each_failure_and_warning():
    every_call = judge(healthy(trail_rows=[trail_row(i) for i in range(1, 6)]))
    assert every_call.evidence == {**counts(in_window=5, since=5), "execution_environments": 1,
                                   "log_streams": [STREAM], "allowed_fetches": 1}
    assert every_call.evidence_file is None
    assert judge(healthy(trail_rows=[])) == Verdict(
        FAIL, f"no successful GetSecretValue by {SESSION_ARN} since {WINDOW['read_from']}: there is no fetch to show "
              "caching of", counts(since=0, in_window=0))
    assert judge(healthy(errors={"logs": "denied"})) == Verdict(
        WARN, "execution environments unknown, CloudWatch Logs could not be read (denied): 1 fetch(es) in the window "
              "for 5 invocations", counts())
    no_start = healthy(log_events=[])
    assert judge(no_start).evidence == {**counts(), "execution_environments": 0, "log_streams": [],
                                        "allowed_fetches": 0}
    few = healthy()
    few.invocations = few.invocations[:1]
    assert judge(few).evidence == {**counts(invocations=1), "execution_environments": 1, "log_streams": [STREAM],
                                   "allowed_fetches": 1}


@pytest.mark.parametrize("source, label", [("function", "The function's configuration"), ("secret", "The secret"),
                                           ("cloudtrail", "CloudTrail")])
def test_each_missing_source_fails_naming_it(source, label):
    assert judge(healthy(errors={source: "AccessDenied"})) == Verdict(FAIL, f"{label} could not be read: AccessDenied")


def test_no_secret_skips_with_no_evidence_file():
    assert judge(healthy(secret={})) == Verdict(SKIP, "no secret in the ledger or SECRET_ID", evidence_file="")
