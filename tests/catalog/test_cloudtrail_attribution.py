"""``cloudtrail-attribution``: the function's own role session, from Lambda; other callers named."""

from evidence_factory import ACCOUNT, OPERATOR_ARN, ROLE, SESSION_ARN, healthy, trail_row

from runbook_lib.catalog import FAIL, PASS, SKIP
from runbook_lib.catalog.cloudtrail_attribution import judge


def test_the_functions_session_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, f"1 GetSecretValue by {SESSION_ARN} from Lambda (1 in the "
                                                      "invocation window)")
    assert verdict.evidence["matched"][0]["ARN"] == SESSION_ARN and verdict.evidence["other_identities"] == []


def test_other_callers_are_named_on_a_pass():
    verdict = judge(healthy(trail_rows=[trail_row(-30), trail_row(2, arn=OPERATOR_ARN)]))
    assert verdict.reason == (f"1 GetSecretValue by {SESSION_ARN} from Lambda (0 in the invocation window); "
                              f"other callers: {OPERATOR_ARN}")


def test_only_other_identities_fail_naming_them():
    verdict = judge(healthy(trail_rows=[trail_row(1, arn=OPERATOR_ARN), trail_row(2, agent="aws-cli/2")]))
    assert verdict.status == FAIL
    assert verdict.reason == (f"no successful GetSecretValue on the secret by {SESSION_ARN} from Lambda since "
                              f"2026-01-01T09:59:00.000Z; calls by: {OPERATOR_ARN}, {SESSION_ARN}")


def test_another_session_of_the_same_role_is_named_not_attributed():
    shared = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/reports-api"
    verdict = judge(healthy(trail_rows=[trail_row(1), trail_row(2, arn=shared)]))
    assert (verdict.status, verdict.reason) == (PASS, f"1 GetSecretValue by {SESSION_ARN} from Lambda (1 in the "
                                                      f"invocation window); other callers: {shared}")
    assert verdict.evidence["by_the_function"] == 1


def test_a_denied_call_by_the_function_is_not_attribution():
    verdict = judge(healthy(trail_rows=[trail_row(1, error="AccessDeniedException")]))
    assert verdict.status == FAIL and verdict.evidence["by_the_function"] == 0


def test_on_aws_a_short_wait_says_to_wait_longer():
    verdict = judge(healthy(target="aws", trail_rows=[], trail_polling={"waited_seconds": 10}))
    assert verdict.reason.endswith("(CloudTrail delivers events minutes late on AWS: raise trail_wait_seconds)")
    assert "raise trail_wait_seconds" not in judge(healthy(trail_rows=[], trail_polling={"waited_seconds": 10})).reason
    assert "raise" not in judge(healthy(target="aws", trail_rows=[], trail_polling={"waited_seconds": 60})).reason


def test_missing_cloudtrail_fails_and_no_secret_skips():
    assert judge(healthy(errors={"cloudtrail": "throttled"})).reason == "CloudTrail could not be read: throttled"
    assert judge(healthy(errors={"function": "gone"})).status == FAIL
    assert judge(healthy(secret={})).status == SKIP
