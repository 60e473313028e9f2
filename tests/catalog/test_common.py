"""What the check modules share, and the catalog as a whole: every check declared once, healthy evidence passes."""

import pytest
from evidence_factory import healthy

from runbook_lib import catalog, policies
from runbook_lib.catalog import FAIL, PASS
from runbook_lib.catalog.common import SOURCE_LABELS, gap_list, listed, unavailable
from runbook_lib.inventory import Gap
from runbook_lib.validation import CHECK_IDS, CHECKS, RESIDUE_CHECKS

#: Actions a check's evidence needs that the shipped auditor policy leaves out, and why.
NOT_IN_AUDITOR = {"kms:Decrypt": "only for environments under a customer managed key: grant it on that key",
                  **policies.OPTIONAL["auditor"]}


def test_listed_cuts_at_the_limit_and_counts_the_rest():
    assert listed(["a", "b", "c"], limit=2) == "a; b; and 1 more"
    assert listed(["a", "b"], limit=2) == "a; b"
    assert listed(["a", "b", "c"], limit=3, separator=", ") == "a, b, c"
    assert listed([], limit=2) == ""


def test_the_default_limits_are_five_items_and_six_gaps():
    assert listed("abcdef") == "a; b; c; d; e; and 1 more"
    gaps = [Gap("", "", f"fn-{i}", "", "error", "x") for i in range(7)]
    assert gap_list(gaps).endswith("fn-5: x; and 1 more")


def test_the_catalog_loads_every_check_module_and_refuses_an_id_declared_twice(monkeypatch):
    monkeypatch.setattr(catalog, "_SPECS", {})
    ids = [s.id for s in catalog.specs()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    # the checks of this family; the change engine's modules add theirs beside them
    assert set(CHECK_IDS) | {"no-secrets-in-environment", "no-secrets-in-code", "audit-coverage-complete",
                             "no-secret-in-artifacts"} <= set(ids)
    assert catalog.spec("secret-cached").evidence_file == "cloudtrail_events.json"
    real_import = catalog.importlib.import_module

    def twice(name):
        module = real_import(name)
        if name.endswith(".secret_cached"):
            return type("Twice", (), {"SPECS": [module.SPEC], "SPEC": module.SPEC})
        return module

    monkeypatch.setattr(catalog, "_SPECS", {})
    monkeypatch.setattr(catalog.importlib, "import_module", twice)
    with pytest.raises(ValueError, match="check secret-cached is declared twice: in secret_cached and secret_cached"):
        catalog.specs()


def test_gap_list_names_where_and_why():
    gaps = [Gap("111", "us-east-1", "fn", "GetFunction", "denied", "no"), Gap("", "", "ghost", "", "not-found", "gone")]
    assert gap_list(gaps) == "fn in 111/us-east-1: no; ghost: gone"
    assert gap_list(gaps, limit=1) == "fn in 111/us-east-1: no; and 1 more"


def test_unavailable_names_the_first_missing_source():
    ev = healthy(errors={"logs": "FilterLogEvents failed", "cloudtrail": "LookupEvents failed"})
    verdict = unavailable(ev, "secret", "cloudtrail", "logs")
    assert (verdict.status, verdict.reason) == (FAIL, "CloudTrail could not be read: LookupEvents failed")
    assert verdict.evidence_file is None
    assert unavailable(ev, "secret", "function") is None
    assert unavailable(ev, "logs", evidence_file="").evidence_file == ""
    assert set(SOURCE_LABELS) >= {"function", "code", "secret", "secret_policy", "key", "logs", "cloudtrail",
                                  "log_values", "role", "functions", "probe", "trails", "edge", "residue", "exposure"}


def test_every_validation_check_is_declared_for_validation_and_passes_on_healthy_evidence():
    ev = healthy()
    statuses = {module.SPEC.id: judge(ev).status for module, judge in CHECKS}
    assert statuses == {cid: PASS for cid in CHECK_IDS}
    assert len(CHECK_IDS) == len(set(CHECK_IDS)) == 14
    assert [m.SPEC.id for m, _ in RESIDUE_CHECKS] == ["no-secret-residue", "exposed-credentials-rotated"]
    for check_id in CHECK_IDS:
        assert "validation" in catalog.spec(check_id).phases


def test_one_spec_one_set_of_controls_for_the_baseline_and_validation():
    for check_id in ("no-secrets-in-environment", "no-secrets-in-code"):
        assert catalog.spec(check_id).phases == ("baseline", "validation")
    assert catalog.spec("no-secrets-in-environment").controls == ("IA-5", "IA-5(7)", "SC-28")
    assert set(catalog.spec("no-secret-residue").phases) == set(catalog.spec("exposed-credentials-rotated").phases) \
        == {"validation", "closeout"}
    assert catalog.spec("no-secret-in-artifacts").evidence_file == "checks/99_leak_guard.json"


@pytest.mark.parametrize("check", [s for s in catalog.specs() if {"baseline", "validation"} & set(s.phases)],
                         ids=lambda s: s.id)
def test_the_auditor_policy_grants_what_each_check_needs(check):
    missing = policies.uncovered_actions(policies.load_policy("auditor"), check.permissions)
    assert [a for a in missing if a not in NOT_IN_AUDITOR] == []


def test_healthy_evidence_repr_hides_messages_and_values():
    ev = healthy()
    ev.log_events.append({"stream": "s", "timestamp": 0, "message": "token=planted-value-123"})
    assert "planted-value-123" not in repr(ev)
    assert repr(ev) == ("<ValidationEvidence orders-api on lab: 5 invocations, 16 log events, 1 CloudTrail events, "
                        "unavailable: none>")


def test_a_spec_needs_every_field_and_known_phases_and_a_verdict_a_known_status():
    fields = {"id": "x", "title": "t", "proves": "p", "controls": ("AC-6",), "phases": ("validation",)}
    for name in fields:
        with pytest.raises(ValueError, match="id, title, proves, controls and phases are required"):
            catalog.CheckSpec(**{**fields, name: "" if isinstance(fields[name], str) else ()})
    with pytest.raises(ValueError, match=r"unknown controls \[\] or phases \['later'\]"):
        catalog.CheckSpec(**{**fields, "phases": ("validation", "later")})
    with pytest.raises(ValueError, match="verdict status 'OK' not in"):
        catalog.Verdict("OK", "fine")


def test_a_check_is_built_under_its_own_id():
    check = catalog.make_check("secret-cached", "validation", catalog.Verdict(PASS, "cached"))
    assert (check.id, check.phase, check.status, check.reason) == ("secret-cached", "validation", PASS, "cached")
