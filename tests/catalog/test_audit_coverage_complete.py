"""``audit-coverage-complete`` on fabricated coverage: every outcome, exact reasons."""

from audit_factory import gap, result

from runbook_lib.catalog import FAIL, PASS, WARN, Verdict
from runbook_lib.catalog.audit_coverage_complete import judge_baseline


def test_everything_read_passes():
    verdict = judge_baseline(result())
    assert (verdict.status, verdict.reason) == (PASS, "2 functions in 1 region of 1 account fully read")
    assert verdict.evidence["gaps_failing"] == 0 and verdict.evidence["functions_seen"] == 2


def test_a_failing_row_fails_naming_it():
    verdict = judge_baseline(result(gaps=[gap("not-scanned", "big"), gap("denied")]))
    assert verdict.status == FAIL
    assert verdict.reason == "1 item could not be read: orders-api in 123456789012/us-east-1: GetFunction failed: AccessDenied"


def test_only_not_scanned_rows_warn():
    verdict = judge_baseline(result(gaps=[gap("file-not-scanned", "pkg big.bin", "too large")]))
    assert (verdict.status, verdict.reason) == (WARN, "1 item not scanned: pkg big.bin in "
                                                      "123456789012/us-east-1: too large")


def test_notes_and_disabled_regions_do_not_count():
    assert judge_baseline(result(gaps=[gap("note"), gap("region-not-enabled")])).status == PASS


def test_every_failing_status_fails():
    for status in ("denied", "error", "not-found", "unknown-region"):
        assert judge_baseline(result(gaps=[gap(status)])).status == FAIL, status


def test_whole_verdicts_carry_the_coverage_summary():
    failing = result([], [gap("denied")])
    expected = {k: failing.summary[k] for k in ("accounts", "regions", "functions_seen", "functions_fully_scanned",
                                                "functions_code_not_scanned", "functions_partial", "gaps_failing",
                                                "gaps_warning")}
    assert judge_baseline(failing) == Verdict(FAIL, "1 item could not be read: orders-api in 123456789012/us-east-1: "
                                                    "GetFunction failed: AccessDenied", expected)
    warning = result([], [gap("not-scanned")])
    assert judge_baseline(warning).evidence == {**expected, "gaps_failing": 0, "gaps_warning": 1,
                                                "functions_fully_scanned": warning.summary["functions_fully_scanned"],
                                                "functions_code_not_scanned":
                                                    warning.summary["functions_code_not_scanned"],
                                                "functions_partial": warning.summary["functions_partial"]}
    assert expected["gaps_failing"] == 1 and expected["accounts"] == 1 and expected["functions_seen"] == 2


def test_more_than_six_gaps_are_counted():
    gaps = [gap("denied", subject=f"fn-{i}") for i in range(8)]
    assert judge_baseline(result([], gaps)).reason.endswith("; and 2 more")
