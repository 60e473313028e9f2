"""Tests of :mod:`runbook_lib.check_summary`: every check row carries one line of evidence."""

from __future__ import annotations

from runbook_lib.check_summary import evidence_summary, summarise_evidence
from runbook_lib.checks import Check


def check(status="PASS", reason="", **evidence):
    return Check("x", "t", "backout", status, reason or ("" if status == "PASS" else "why"), evidence, ["CM-3"])


def test_a_reason_is_the_line_and_a_pass_without_one_is_summarised_from_its_evidence():
    assert evidence_summary(check("FAIL", "2 secrets in orders-api")) == "2 secrets in orders-api"
    line = evidence_summary(check(undone=["secret a: deleted " + "x" * 300, "policy b"],
                                  kept_on_purpose=["snapshot orders-api"], remaining=[], target="lab"))
    assert line == "undone: 2; kept on purpose (1): snapshot orders-api; remaining: none"  # too long: counted


def test_scalars_dicts_and_booleans_read_as_words():
    assert summarise_evidence({"invocation": {"status_code": 200, "function_error": "", "deep": {}},
                               "truncated": False, "count": 3, "first": None}) == (
        "invocation: status code 200, function error none; truncated: no; count: 3; first: none")
    assert summarise_evidence({"nested": {"a": [1]}}) == "nested: 1 field(s)"
    assert summarise_evidence({"rows": [{"a": 1}]}) == "rows: 1"
    assert summarise_evidence({}) == summarise_evidence({"target": "lab"}) == "no evidence recorded"


def test_how_it_was_proven_is_added_unless_the_line_says_it():
    assert evidence_summary(check(reason="role r reads one secret", proven_by=["static analysis",
                                                                                "policy simulator"])) == (
        "role r reads one secret; proven by static analysis, policy simulator")
    said = check("WARN", "proven by static analysis only", proven_by=["static analysis"])
    assert evidence_summary(said) == "proven by static analysis only"


def test_the_line_is_one_line_with_control_characters_visible():
    assert evidence_summary(check("FAIL", "a\nb\x1b[2J")) == "a b\\x1b[2J"
