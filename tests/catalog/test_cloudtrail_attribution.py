"""``cloudtrail-attribution``: the function's own role session, from Lambda; other callers named."""

from evidence_factory import ACCOUNT, OPERATOR_ARN, ROLE, SECRET_ARN, SESSION_ARN, healthy, trail_row

from runbook_lib.catalog import FAIL, PASS, SKIP, Verdict
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


# -- whole verdicts --------------------------------------------------------------------------------
def matched(row: dict) -> dict:
    return {k: row.get(k, "") for k in ("eventTime", "eventName", "userIdentity type", "ARN", "session issuer",
                                        "source IP", "request secret id", "userAgent")}


def test_whole_verdict_of_a_pass_with_another_caller():
    own, other = trail_row(-30), trail_row(2, arn=OPERATOR_ARN)
    ev = healthy(trail_rows=[own, other])
    assert judge(ev) == Verdict(
        PASS, f"1 GetSecretValue by {SESSION_ARN} from Lambda (0 in the invocation window); other callers: "
              f"{OPERATOR_ARN}",
        {"secret_arn": SECRET_ARN, "expected_identity": SESSION_ARN, "window": ev.window.to_dict(),
         "polling": ev.trail_polling, "events_on_secret": 2, "by_the_function": 1,
         "by_the_function_in_invocation_window": 0, "other_identities": [OPERATOR_ARN], "matched": [matched(own)]})
    assert matched(own)["ARN"] == SESSION_ARN and matched(own)["source IP"] == "10.0.0.1"


def test_at_most_ten_matched_rows_and_an_identity_without_arn_is_named_by_its_type():
    rows = [trail_row(1 + i / 10) for i in range(12)]
    anonymous = trail_row(2, arn="")
    anonymous["ARN"], anonymous["userIdentity type"] = "", "AWSService"
    verdict = judge(healthy(trail_rows=rows + [anonymous]))
    assert verdict.evidence["matched"] == [matched(r) for r in rows[:10]]
    assert verdict.evidence["by_the_function"] == 12 and verdict.evidence["other_identities"] == ["AWSService"]


def test_more_than_three_other_callers_are_counted_not_listed():
    others = [trail_row(1, arn=f"arn:aws:iam::{ACCOUNT}:user/u{i}") for i in range(5)]
    verdict = judge(healthy(trail_rows=others))
    assert verdict.reason.endswith(f"; calls by: arn:aws:iam::{ACCOUNT}:user/u0, arn:aws:iam::{ACCOUNT}:user/u1, "
                                   f"arn:aws:iam::{ACCOUNT}:user/u2, and 2 more")
    assert verdict.evidence_file is None


def test_on_aws_the_wait_hint_needs_a_wait_under_sixty_seconds_and_no_polling_record_counts_as_none():
    hint = "(CloudTrail delivers events minutes late on AWS: raise trail_wait_seconds)"
    assert judge(healthy(target="aws", trail_rows=[], trail_polling={})).reason.endswith(hint)
    assert judge(healthy(target="aws", trail_rows=[], trail_polling={"waited_seconds": 59.9})).reason.endswith(hint)


def test_each_missing_source_fails_and_a_skip_has_no_evidence_file():
    assert judge(healthy(errors={"function": "gone"})) == Verdict(FAIL, "The function's configuration could not be "
                                                                        "read: gone")
    assert judge(healthy(errors={"secret": "gone"})) == Verdict(FAIL, "The secret could not be read: gone")
    assert judge(healthy(secret={})) == Verdict(SKIP, "no secret in the ledger or SECRET_ID", evidence_file="")


def test_the_whole_reason_on_aws_and_more_than_three_callers_on_a_pass():
    assert judge(healthy(target="aws", trail_rows=[], trail_polling={})).reason == (
        f"no successful GetSecretValue on the secret by {SESSION_ARN} from Lambda since 2026-01-01T09:59:00.000Z "
        "(CloudTrail delivers events minutes late on AWS: raise trail_wait_seconds)")
    others = [trail_row(2, arn=f"arn:aws:iam::{ACCOUNT}:user/u{i}") for i in range(5)]
    assert judge(healthy(trail_rows=[trail_row(1)] + others)).reason.endswith(
        f"other callers: arn:aws:iam::{ACCOUNT}:user/u0, arn:aws:iam::{ACCOUNT}:user/u1, "
        f"arn:aws:iam::{ACCOUNT}:user/u2, and 2 more")
