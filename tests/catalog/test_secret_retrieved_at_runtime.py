"""``secret-retrieved-at-runtime``: proven by CloudTrail, whatever the function logs."""

from evidence_factory import (ACCOUNT, LAMBDA_AGENT, OPERATOR_ARN, ROLE, SECRET_ARN, SESSION_ARN, healthy, log_event,
                              trail_row)
from evidence_factory import FUNCTION as FUNCTION_NAME

from runbook_lib.catalog import FAIL, PASS, SKIP, Verdict
from runbook_lib.catalog.secret_retrieved_at_runtime import judge


def test_a_successful_fetch_by_the_function_passes_without_any_log_line():
    verdict = judge(healthy())
    assert verdict.status == PASS
    assert verdict.reason == (f"1 successful GetSecretValue by {SESSION_ARN} since the deployment, first at "
                              "2026-01-01T10:00:01.000Z (CloudTrail)")
    assert verdict.evidence["log_lines"] == {"pattern": "", "lines": 0}


def test_a_denied_call_is_not_a_fetch():
    verdict = judge(healthy(trail_rows=[trail_row(1, error="AccessDeniedException")]))
    assert verdict.status == FAIL
    assert verdict.reason == (f"no successful GetSecretValue on the secret by {SESSION_ARN} from Lambda since "
                              "2026-01-01T09:59:00.000Z: the function does not fetch its secret at run time "
                              "(1 attempt(s) denied: AccessDeniedException)")
    assert verdict.evidence["denied_attempts"] == [{"eventTime": "2026-01-01T10:00:01Z",
                                                    "errorCode": "AccessDeniedException"}]


def test_another_identity_or_a_call_outside_lambda_is_not_the_function():
    for row in (trail_row(1, arn=OPERATOR_ARN), trail_row(1, agent="aws-cli/2.15"),
                trail_row(1, arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/other-role/{FUNCTION_NAME}")):
        assert judge(healthy(trail_rows=[row])).status == FAIL


def test_a_fetch_by_another_function_sharing_the_role_is_not_this_functions():
    """Same role, another session name: Lambda names the session after the function, so it is someone else."""
    shared = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/reports-api"
    verdict = judge(healthy(trail_rows=[trail_row(1, arn=shared)]))
    assert verdict.status == FAIL
    assert verdict.reason.startswith(f"no successful GetSecretValue on the secret by {SESSION_ARN} from Lambda")
    assert verdict.evidence["fetches_since_deployment"] == 0


def test_invoked_by_lambda_counts_as_from_lambda():
    row = trail_row(1, agent="custom-runtime/1.0")
    row["invokedBy"] = "lambda.amazonaws.com"
    assert judge(healthy(trail_rows=[row])).status == PASS


def test_a_fetch_before_the_deployment_does_not_count_and_one_at_it_does():
    assert judge(healthy(trail_rows=[trail_row(-63)])).status == FAIL   # deployed at -60 s, 2 s slack
    assert judge(healthy(trail_rows=[trail_row(-61)])).status == PASS
    assert judge(healthy(trail_rows=[trail_row(8)])).status == FAIL     # after the window (5 s + 2 s slack)
    assert judge(healthy(trail_rows=[trail_row(6)])).status == PASS


def test_retrieval_log_lines_are_extra_evidence_never_a_requirement():
    ev = healthy(retrieval_log_pattern=r"loaded partner config")
    ev.log_events.append(log_event(1.5, "[INFO] loaded partner config"))
    ev.log_events.append(log_event(-30, "[INFO] loaded partner config"))
    verdict = judge(ev)
    assert verdict.status == PASS
    assert verdict.evidence["log_lines"] == {"pattern": "loaded partner config", "lines": 2,
                                             "lines_in_invocation_window": 1, "streams": [ev.log_events[0]["stream"]]}
    assert judge(healthy(retrieval_log_pattern="never printed")).status == PASS
    lines_only = healthy(retrieval_log_pattern="loaded", trail_rows=[])
    lines_only.log_events.append(log_event(1.5, "loaded"))
    assert judge(lines_only).status == FAIL  # a log line alone proves nothing


def test_logs_unavailable_do_not_fail_the_check_and_are_noted():
    verdict = judge(healthy(retrieval_log_pattern="x", errors={"logs": "denied"}))
    assert verdict.status == PASS and verdict.evidence["log_lines"]["lines"] is None


def test_missing_cloudtrail_or_secret_fails_with_the_reason():
    verdict = judge(healthy(errors={"cloudtrail": "LookupEvents on GetSecretValue failed: AccessDenied"}))
    assert (verdict.status, verdict.reason) == (FAIL, "CloudTrail could not be read: LookupEvents on GetSecretValue "
                                                      "failed: AccessDenied")
    assert judge(healthy(errors={"secret": "DescribeSecret failed"})).reason == ("The secret could not be read: "
                                                                                 "DescribeSecret failed")


def test_no_secret_skips():
    verdict = judge(healthy(secret={}))
    assert (verdict.status, verdict.reason) == (SKIP, "no secret in the ledger or SECRET_ID: nothing the function "
                                                      "should fetch")


def test_the_user_agent_marker_is_what_lambda_sets():
    assert "exec-env/AWS_Lambda_" in LAMBDA_AGENT


# -- whole verdicts --------------------------------------------------------------------------------
def base_evidence(ev, fetches=1, first="2026-01-01T10:00:01.000Z", denied=(), log_lines=None) -> dict:
    return {"secret_arn": SECRET_ARN, "expected_identity": SESSION_ARN, "window": ev.window.to_dict(),
            "polling": ev.trail_polling, "fetches_since_deployment": fetches, "first_fetch": first,
            "denied_attempts": list(denied), "log_lines": log_lines or {"pattern": "", "lines": 0}}


def test_whole_verdict_of_a_pass_counts_every_fetch_and_names_the_first():
    ev = healthy(trail_rows=[trail_row(-30), trail_row(2), trail_row(3, error="ThrottlingException")])
    assert judge(ev) == Verdict(
        PASS, f"2 successful GetSecretValue by {SESSION_ARN} since the deployment, first at 2026-01-01T09:59:30.000Z "
              "(CloudTrail)",
        base_evidence(ev, fetches=2, first="2026-01-01T09:59:30.000Z",
                      denied=[{"eventTime": "2026-01-01T10:00:03Z", "errorCode": "ThrottlingException"}]))


def test_whole_verdict_of_a_failure_lists_at_most_ten_denied_attempts():
    ev = healthy(trail_rows=[trail_row(1 + i / 10, error="AccessDeniedException") for i in range(12)])
    verdict = judge(ev)
    assert verdict.status == FAIL and verdict.evidence_file is None
    assert verdict.reason.endswith("(12 attempt(s) denied: AccessDeniedException)")
    assert len(verdict.evidence["denied_attempts"]) == 10
    assert verdict.evidence == base_evidence(ev, fetches=0, first="", denied=verdict.evidence["denied_attempts"])


def test_unreadable_logs_are_noted_in_the_log_line_evidence():
    ev = healthy(retrieval_log_pattern="loaded", errors={"logs": "denied"})
    assert judge(ev).evidence["log_lines"] == {"pattern": "loaded", "lines": None,
                                               "note": "CloudWatch Logs could not be read"}


def test_a_missing_function_configuration_fails_and_a_skip_has_no_evidence_file():
    assert judge(healthy(errors={"function": "GetFunction failed"})) == Verdict(
        FAIL, "The function's configuration could not be read: GetFunction failed")
    assert judge(healthy(secret={})).evidence_file == ""
