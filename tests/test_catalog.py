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


def test_every_declared_check_is_unique_and_complete():
    specs = catalog.specs()
    assert len({s.id for s in specs}) == len(specs) and len(specs) >= 25
    for declared in specs:
        assert declared.title and declared.proves and declared.controls and declared.phases, declared.id


def test_every_permission_a_check_needs_is_granted_by_a_shipped_policy():
    """As cloud-custodian tests its actions: what a check's evidence needs, the operator policies grant."""
    import fnmatch
    import json
    from pathlib import Path

    granted = []
    for path in (Path(__file__).resolve().parents[1] / "policies").glob("*.json"):
        for statement in json.loads(path.read_text())["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement.get("Action", [])
                granted += [actions] if isinstance(actions, str) else actions
    from runbook_lib.policies import OPTIONAL

    left_out_on_purpose = {action for reasons in OPTIONAL.values() for action in reasons}
    missing = sorted({p for s in catalog.specs() for p in s.permissions if p not in left_out_on_purpose
                      and not any(fnmatch.fnmatchcase(p.lower(), g.lower()) for g in granted)})
    assert missing == [], f"declared by checks, granted by no policy in policies/ (nor in policies.OPTIONAL): {missing}"
