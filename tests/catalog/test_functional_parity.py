"""``functional-parity`` on fabricated shapes: every outcome, exact reasons."""

from evidence_factory import SHAPE, healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, Verdict
from runbook_lib.catalog.functional_parity import judge


def test_same_shape_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "5 responses have the baseline's shape")
    assert verdict.evidence == {"baseline_shape": SHAPE, "shapes_now": [SHAPE]}


def test_a_missing_key_fails_naming_its_path():
    ev = healthy(baseline={"response_shape": {"statusCode": "int", "body": {"orders": "int", "partner": "str"}}})
    verdict = judge(ev)
    assert verdict.status == FAIL
    assert verdict.reason.startswith("invocation 1: $.body.partner: missing; invocation 2: $.body.partner: missing")
    assert verdict.reason.endswith("; and 0 more") is False


def test_one_changed_response_among_equal_ones():
    ev = healthy()
    ev.invocations[2]["response_shape"] = {"statusCode": "str", "body": {"orders": "int"}}
    verdict = judge(ev)
    assert (verdict.status, verdict.reason) == (FAIL, "invocation 3: $.statusCode: int in baseline, str now")
    assert len(verdict.evidence["shapes_now"]) == 2


def test_no_baseline_skips_and_says_why():
    verdict = judge(healthy(baseline={"baseline_status": "not-invoked: Invoke denied"}))
    assert verdict.status == SKIP
    assert verdict.reason == ("the test plan recorded no baseline response shape (run it with function_name and "
                              "invoke_baseline=True); its baseline invocation: not-invoked: Invoke denied")
    assert judge(healthy(baseline={})).reason.endswith("invoke_baseline=True)")


def test_no_invocation_is_no_evidence():
    verdict = judge(healthy(invocations=[]))
    assert (verdict.status, verdict.reason) == (FAIL, "no invocation was made: there is no response to compare "
                                                      "with the baseline")


def test_whole_verdicts_and_at_most_five_differences():
    ev = healthy()
    assert judge(ev) == Verdict(PASS, "5 responses have the baseline's shape",
                                {"baseline_shape": SHAPE, "shapes_now": [SHAPE]})
    for inv in ev.invocations:
        inv["response_shape"] = {"statusCode": "int"}
    verdict = judge(ev)
    assert verdict.reason.startswith("invocation 1: ") and "more" not in verdict.reason
    assert len(verdict.reason.split("; ")) == 5
    assert verdict.evidence == {"baseline_shape": SHAPE, "shapes_now": [{"statusCode": "int"}]}
    six = healthy()
    six.invocations = six.invocations + [dict(six.invocations[0], index=6)]
    for inv in six.invocations:
        inv["response_shape"] = {"statusCode": "int"}
    assert judge(six).reason.endswith("; and 1 more")
    assert judge(healthy(baseline={})).evidence_file == ""
