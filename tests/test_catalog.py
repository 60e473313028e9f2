"""The check catalog: one declaration per check, and records built only from it."""

import pytest

from runbook_lib import catalog
from runbook_lib.catalog import FAIL, PASS, WARN, CheckSpec, Verdict


@pytest.fixture()
def one_spec(monkeypatch):
    declared = CheckSpec(id="demo-check", title="A demo", proves="that the demo holds", controls=("AC-6",),
                         phases=("validation",), evidence_file="demo.json", permissions=("iam:GetRole",))
    monkeypatch.setattr(catalog, "_SPECS", {"demo-check": declared})
    return declared


def test_make_check_takes_title_controls_and_file_from_the_spec(one_spec):
    check = catalog.make_check("demo-check", "validation", Verdict(FAIL, "it does not hold", {"n": 1}),
                               notebook="03_functional_validation", evidence={"target": "lab"})
    assert (check.title, check.controls, check.evidence_file) == ("A demo", ["AC-6"], "demo.json")
    assert check.evidence == {"target": "lab", "n": 1} and check.notebook == "03_functional_validation"


def test_a_verdict_may_name_another_evidence_file(one_spec):
    check = catalog.make_check("demo-check", "validation", Verdict(PASS, "held", evidence_file=""))
    assert check.evidence_file == ""


def test_a_check_outside_its_declared_phases_is_refused(one_spec):
    with pytest.raises(ValueError, match="does not run in phase backout"):
        catalog.make_check("demo-check", "backout", Verdict(PASS))


def test_an_undeclared_check_is_a_key_error_naming_it(one_spec):
    with pytest.raises(KeyError, match="'nope' is not in the catalog"):
        catalog.make_check("nope", "validation", Verdict(PASS))


@pytest.mark.parametrize("status", [FAIL, WARN, "SKIP"])
def test_a_verdict_other_than_pass_needs_its_reason(status):
    with pytest.raises(ValueError, match="needs a reason"):
        Verdict(status)


def test_spec_metadata_is_validated():
    with pytest.raises(ValueError, match="unknown controls"):
        CheckSpec(id="x", title="t", proves="p", controls=("XX-1",), phases=("validation",))
    with pytest.raises(ValueError, match="required"):
        CheckSpec(id="x", title="t", proves="", controls=("AC-6",), phases=("validation",))
