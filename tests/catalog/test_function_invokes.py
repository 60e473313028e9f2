"""``function-invokes`` on fabricated invocations: every outcome, exact reasons."""

from evidence_factory import healthy

from runbook_lib.catalog import FAIL, PASS
from runbook_lib.catalog.function_invokes import SPEC, judge


def test_all_invocations_succeeded():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "5 of 5 invocations answered 200 without a FunctionError "
                                                      "(longest 15.0 ms)")
    assert verdict.evidence["status_codes"] == [200] and verdict.evidence["function_errors"] == 0
    assert verdict.evidence["invocations"] == 5


def test_a_function_error_fails_naming_the_invocation():
    ev = healthy()
    ev.invocations[1]["function_error"] = "Unhandled"
    verdict = judge(ev)
    assert (verdict.status, verdict.reason) == (FAIL, "invocation 2: FunctionError Unhandled")
    assert verdict.evidence["function_errors"] == 1


def test_http_400_fails_and_399_passes():
    ev = healthy()
    ev.invocations[0]["http_status"] = 399
    assert judge(ev).status == PASS
    ev.invocations[0]["http_status"] = 400
    assert judge(ev).reason == "invocation 1: the function answered statusCode 400"


def test_an_invoke_status_other_than_200_fails():
    ev = healthy()
    ev.invocations[4]["status_code"] = 202
    assert (judge(ev).status, judge(ev).reason) == (FAIL, "invocation 5: Invoke status 202")


def test_more_than_five_failures_are_counted():
    ev = healthy()
    ev.invocations = ev.invocations + [dict(i, index=i["index"] + 5) for i in ev.invocations]
    for inv in ev.invocations:
        inv["function_error"] = "Handled"
    assert judge(ev).reason.endswith("; invocation 5: FunctionError Handled; and 5 more")


def test_no_invocation_is_no_evidence():
    verdict = judge(healthy(invocations=[]))
    assert (verdict.status, verdict.reason) == (FAIL, "no invocation was made: nothing shows the function works")


def test_spec():
    assert (SPEC.id, SPEC.controls, SPEC.evidence_file) == ("function-invokes", ("CM-3",), "invocations.json")


def test_whole_verdict_of_a_pass():
    ev = healthy()
    assert judge(ev).evidence == {"invocations": 5, "window": ev.window.to_dict(), "status_codes": [200],
                                  "function_errors": 0, "max_duration_ms": 15.0}
