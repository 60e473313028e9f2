"""``no-secrets-in-environment``: the baseline on a fabricated audit, validation on fabricated evidence."""

from audit_factory import finding, gap, result
from evidence_factory import healthy

from runbook_lib.catalog import FAIL, PASS, WARN, Verdict
from runbook_lib.catalog.no_secrets_in_environment import SPEC, judge_baseline, judge_validation


# -- baseline ---------------------------------------------------------------------------------
def test_baseline_findings_fail_listing_function_version_and_variable():
    verdict = judge_baseline(result([finding("orders-api", "environment", "DB_PASSWORD"),
                                     finding("orders-api", "environment", "API_KEY", version="3"),
                                     finding("orders-api", "code", "app.py:2")]))
    assert verdict.status == FAIL
    assert verdict.reason == ("2 secrets in environment variables of 1 function: orders-api (DB_PASSWORD); "
                              "orders-api:3 (API_KEY)")
    assert verdict.evidence == {"findings": 2, "functions": ["orders-api (DB_PASSWORD)", "orders-api:3 (API_KEY)"]}
    assert verdict.evidence_file is None  # the spec's: findings.json


def test_baseline_findings_and_a_failing_gap_say_both():
    verdict = judge_baseline(result([finding("a", "environment", "X")], [gap("denied")]))
    assert verdict.reason == ("1 secret in environment variables of 1 function: a (X); not everything could be "
                              "read (1 gap, see audit-coverage-complete)")


def test_baseline_more_than_six_functions_are_counted():
    found = [finding(f"fn-{i}", "environment", "K") for i in range(8)]
    assert judge_baseline(result(found)).reason.endswith("fn-5 (K); and 2 more")


def test_baseline_clean_but_unread_warns():
    verdict = judge_baseline(result([], [gap("error")]))
    assert (verdict.status, verdict.reason) == (WARN, "no secret found in the environment variables that could be "
                                                      "read; not everything could be read (1 gap, see "
                                                      "audit-coverage-complete)")


def test_baseline_not_scanned_rows_do_not_warn_this_check():
    verdict = judge_baseline(result([], [gap("not-scanned")]))
    assert (verdict.status, verdict.reason) == (PASS, "the environment variables of 2 functions ($LATEST and every "
                                                      "published version) hold no secret")


# -- validation -------------------------------------------------------------------------------
def test_validation_clean_environment_passes():
    verdict = judge_validation(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "2 variable(s) of orders-api scanned, none holds a secret; "
                                                      "2 moved variable(s) gone")
    assert verdict.evidence["left_behind"] == [] and verdict.evidence_file == ""


def test_validation_a_moved_variable_left_behind_fails():
    ev = healthy()
    ev.config["Environment"]["Variables"]["DB_PASSWORD"] = "x"
    verdict = judge_validation(ev)
    assert (verdict.status, verdict.reason) == (FAIL, "migrated variable(s) still set: DB_PASSWORD")
    assert verdict.evidence["left_behind"] == ["DB_PASSWORD"]


def test_validation_a_scanner_finding_fails_and_both_reasons_are_given():
    ev = healthy(environment_findings=[{"rule": "aws-access-key-id", "variable": "LEGACY", "redacted": "AKIA…(20)"},
                                       {"rule": "generic-secret", "variable": None, "redacted": "x…(9)"}])
    ev.config["Environment"]["Variables"]["PARTNER_API_KEY"] = "x"
    verdict = judge_validation(ev)
    assert verdict.reason == ("migrated variable(s) still set: PARTNER_API_KEY; 2 finding(s) in the environment: "
                              "LEGACY, generic-secret")


def test_validation_unreadable_configuration_fails():
    verdict = judge_validation(healthy(errors={"function": "GetFunction on orders-api failed: AccessDenied"}))
    assert (verdict.status, verdict.reason) == (FAIL, "The function's configuration could not be read: "
                                                      "GetFunction on orders-api failed: AccessDenied")


def test_spec_controls_are_the_union_of_both_phases():
    assert SPEC.controls == ("IA-5", "IA-5(7)", "SC-28") and SPEC.evidence_file == "findings.json"


# -- whole verdicts --------------------------------------------------------------------------------
def test_whole_baseline_verdicts_of_a_warning_and_a_pass():
    assert judge_baseline(result([], [gap("error")])) == Verdict(
        WARN, "no secret found in the environment variables that could be read; not everything could be read "
              "(1 gap, see audit-coverage-complete)", {"findings": 0, "functions": []})
    assert judge_baseline(result([])) == Verdict(
        PASS, "the environment variables of 2 functions ($LATEST and every published version) hold no secret",
        {"findings": 0, "functions": []})
    found = [finding(f"fn-{i:02}", "environment", "K") for i in range(51)]
    verdict = judge_baseline(result(found))
    assert len(verdict.evidence["functions"]) == 50 and verdict.reason.endswith("fn-05 (K); and 45 more")


def test_whole_validation_verdicts():
    variables = ["SECRET_ID", "TABLE_NAME"]
    assert judge_validation(healthy()) == Verdict(
        PASS, "2 variable(s) of orders-api scanned, none holds a secret; 2 moved variable(s) gone",
        {"variables": variables, "moved_by_implementation": ["DB_PASSWORD", "PARTNER_API_KEY"], "left_behind": [],
         "findings": []}, evidence_file="")
    ev = healthy()
    ev.config["Environment"]["Variables"].update(DB_PASSWORD="x", PARTNER_API_KEY="y")
    assert judge_validation(ev) == Verdict(
        FAIL, "migrated variable(s) still set: DB_PASSWORD, PARTNER_API_KEY",
        {"variables": ["DB_PASSWORD", "PARTNER_API_KEY"] + variables,
         "moved_by_implementation": ["DB_PASSWORD", "PARTNER_API_KEY"], "left_behind": ["DB_PASSWORD", "PARTNER_API_KEY"],
         "findings": []}, evidence_file="")
    assert judge_validation(healthy(errors={"function": "denied"})) == Verdict(
        FAIL, "The function's configuration could not be read: denied", evidence_file="")


def test_baseline_findings_of_several_accounts_name_each_functions_account_and_region():
    other = {**finding("orders-api", "environment", "API_KEY"), "account": "222233334444", "region": "eu-west-1"}
    verdict = judge_baseline(result([finding("orders-api", "environment", "DB_PASSWORD"), other]))
    assert verdict.reason == ("2 secrets in environment variables of 2 functions: "
                              "123456789012/us-east-1/orders-api (DB_PASSWORD); 222233334444/eu-west-1/orders-api "
                              "(API_KEY)")


def test_baseline_findings_of_one_account_in_two_regions_name_the_region():
    other = {**finding("orders-api", "environment", "API_KEY"), "region": "eu-west-1"}
    verdict = judge_baseline(result([finding("orders-api", "environment", "DB_PASSWORD"), other]))
    assert verdict.reason.endswith("of 2 functions: us-east-1/orders-api (DB_PASSWORD); eu-west-1/orders-api (API_KEY)")
