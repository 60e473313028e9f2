import json

import pytest

from runbook_lib.checks import FAIL, PASS, WARN, Check, CheckLog, load_checks


def test_checklog_writes_each_notebook_file_and_load_merges_in_order(tmp_path):
    a = CheckLog(tmp_path, "01_test_plan", "baseline")
    a.put(Check("no-secrets-in-environment", "env", "baseline", FAIL, reason="2 findings", controls=["IA-5", "SC-28"]))
    b = CheckLog(tmp_path, "03_functional_validation", "validation")
    b.put(Check("secret-encrypted", "kms", "validation", WARN, reason="rotation off", controls=["SC-28"]))
    b.put(Check("secret-encrypted", "kms", "validation", PASS, controls=["SC-28"]))  # same id replaces
    assert [c.id for c in load_checks(tmp_path)] == ["no-secrets-in-environment", "secret-encrypted"]
    assert json.loads((tmp_path / "checks" / "03_functional_validation.json").read_text())[0]["status"] == PASS
    assert b.counts()[PASS] == 1 and a.failed[0].reason == "2 findings"


def test_non_pass_needs_a_reason_and_controls_must_be_known(tmp_path):
    with pytest.raises(ValueError, match="needs a reason"):
        Check("x", "x", "validation", FAIL)
    with pytest.raises(ValueError, match="unknown controls"):
        Check("x", "x", "validation", PASS, controls=["XX-1"])


def test_tables_render(tmp_path):
    log = CheckLog(tmp_path, "nb", "validation")
    log.put(Check("a", "A", "validation", PASS, controls=["AC-6"]))
    log.put(Check("b", "B", "validation", FAIL, reason="r", controls=["AC-6", "AU-2"]))
    html = log.frame().to_html()
    assert "#f8d7da" in html and "#d4edda" in html
    from runbook_lib.checks import controls_table
    frame = controls_table(log.checks).data
    assert frame.set_index("control").loc["AC-6", "status"] == FAIL


def test_extend_keeps_each_check_as_built_and_refuses_another_phase(tmp_path):
    from runbook_lib.checks import Check

    log = CheckLog(tmp_path, "03_functional_validation", "validation")
    built = Check("least-privilege", "The role can read exactly this one secret", "validation", WARN,
                  reason="static only", evidence={"target": "lab"}, controls=["AC-6"], notebook="",
                  evidence_file="iam_analysis.json")
    log.extend([built])
    [kept] = load_checks(tmp_path)
    assert (kept.phase, kept.title, kept.controls, kept.evidence_file, kept.notebook) == (
        "validation", built.title, ["AC-6"], "iam_analysis.json", "03_functional_validation")
    baseline = Check("no-secrets-in-environment", "env", "baseline", FAIL, reason="2 findings", controls=["IA-5"])
    with pytest.raises(ValueError, match="check no-secrets-in-environment is of phase baseline, this log "
                                         r"\(03_functional_validation\) holds phase validation"):
        log.extend([baseline])
    assert [c.id for c in load_checks(tmp_path)] == ["least-privilege"]


def test_put_keeps_the_notebook_a_check_names(tmp_path):
    from runbook_lib.checks import Check

    log = CheckLog(tmp_path, "99_leak_guard", "validation")
    check = log.put(Check("x", "X", "validation", PASS, notebook="03_functional_validation"))
    assert check.notebook == "03_functional_validation"
