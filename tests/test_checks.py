import json

import pytest

from runbook_lib.checks import FAIL, PASS, WARN, CheckLog, load_checks


def test_checklog_writes_each_notebook_file_and_load_merges_in_order(tmp_path):
    a = CheckLog(tmp_path, "01_test_plan", "baseline")
    a.add("no-secrets-in-environment", "env", FAIL, reason="2 findings", controls=["IA-5", "SC-28"])
    b = CheckLog(tmp_path, "03_functional_validation", "validation")
    b.add("secret-encrypted", "kms", WARN, reason="rotation off", controls=["SC-28"])
    b.add("secret-encrypted", "kms", PASS, controls=["SC-28"])  # same id replaces
    assert [c.id for c in load_checks(tmp_path)] == ["no-secrets-in-environment", "secret-encrypted"]
    assert json.loads((tmp_path / "checks" / "03_functional_validation.json").read_text())[0]["status"] == PASS
    assert b.counts()[PASS] == 1 and a.failed[0].reason == "2 findings"


def test_non_pass_needs_a_reason_and_controls_must_be_known(tmp_path):
    log = CheckLog(tmp_path, "nb", "validation")
    with pytest.raises(ValueError, match="needs a reason"):
        log.add("x", "x", FAIL)
    with pytest.raises(ValueError, match="unknown controls"):
        log.add("x", "x", PASS, controls=["XX-1"])


def test_tables_render(tmp_path):
    log = CheckLog(tmp_path, "nb", "validation")
    log.add("a", "A", PASS, controls=["AC-6"])
    log.add("b", "B", FAIL, reason="r", controls=["AC-6", "AU-2"])
    html = log.frame().to_html()
    assert "#f8d7da" in html and "#d4edda" in html
    from runbook_lib.checks import controls_table
    frame = controls_table(log.checks).data
    assert frame.set_index("control").loc["AC-6", "status"] == FAIL
