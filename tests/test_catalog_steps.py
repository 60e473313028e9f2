"""The change, backout and close-out checks of the catalog: declared once, every outcome judged."""

import pytest

from runbook_lib import catalog
from runbook_lib.backout import STEP_ORDER as BACKOUT_STEPS
from runbook_lib.catalog import FAIL, PASS, SKIP, WARN
from runbook_lib.catalog.backout_checks import backout_complete, function_restored, no_orphans
from runbook_lib.catalog.step_assertion import judge
from runbook_lib.closeout import STEP_ORDER as CLOSEOUT_STEPS
from runbook_lib.implementation import STEP_ORDER as IMPLEMENTATION_STEPS


def test_every_step_has_its_check_declared_once():
    ids = {s.id for s in catalog.specs()}
    assert {f"change-{s.name}" for s in IMPLEMENTATION_STEPS} | {"change-applied"} <= ids
    assert {f"closeout-{s.name}" for s in CLOSEOUT_STEPS} <= ids
    assert {"backout-complete", "function-restored", "no-orphans"} <= ids
    assert all(catalog.spec(f"change-{s.name}").phases == ("change",) for s in IMPLEMENTATION_STEPS)
    assert {s.name for s in BACKOUT_STEPS} == {"edge", "access-keys", "function", "wrapper-layer", "grant", "policy",
                                               "role", "secret", "kms-key", "remove"}


@pytest.mark.parametrize("args, status, reason", [
    (("", "policy not attached"), FAIL, "policy not attached"),
    (("",), FAIL, "the step's assertion returned no evidence"),
    (("2 keys listed", "", "hardcoded keys listed for their owner"), WARN, "hardcoded keys listed for their owner"),
    (("version 3 keeps the pre-change code",), PASS, ""),
])
def test_a_step_assertion_is_judged_from_its_read_back(args, status, reason):
    verdict = judge(*args)
    assert (verdict.status, verdict.reason) == (status, reason)
    if status == PASS:
        assert verdict.evidence == {"detail": args[0]}


def test_step_checks_take_title_and_controls_from_the_catalog():
    check = catalog.make_check("change-secret", "change", judge("arn:secret holds 2 variable(s)"), notebook="02")
    assert (check.title, check.controls, check.status) == (
        "Create or update the secret with the migrated variables", ["SC-28", "IA-5"], PASS)
    with pytest.raises(ValueError, match="does not run in phase backout"):
        catalog.make_check("closeout-versions", "backout", judge("x"))


def test_backout_complete_outcomes():
    assert backout_complete(0, [], [], {}).status == SKIP
    failed = backout_complete(3, ["secret arn:s"], ["arn:p: lacks the runbook's tags"], {"undone": []})
    assert failed.status == FAIL and failed.reason == "not undone: secret arn:s; left alone: arn:p: lacks the runbook's tags"
    assert backout_complete(3, [], [], {"undone": ["x"]}).status == PASS


def test_function_restored_outcomes():
    assert function_restored(None, [], []).status == SKIP
    assert function_restored("3", [], []).reason == "nothing was compared with the snapshot"
    differs = function_restored("3", ["Environment"], ["Environment", "code"])
    assert differs.status == FAIL and differs.reason == "differs from the snapshot: Environment"
    quiet = function_restored("3", [], ["Environment", "code"])
    assert quiet.status == PASS and quiet.evidence["invocation"] == "not compared (no baseline response shape)"
    broken = function_restored("3", [], ["Environment"], {"failure": "response shape differs from the baseline",
                                                          "status": {"status_code": 200}})
    assert broken.status == FAIL and broken.evidence["invocation"] == {"status_code": 200}
    assert function_restored("3", [], ["Environment"], {"failure": "", "status": {"status_code": 200}}).status == PASS


def test_no_orphans_outcomes():
    left = no_orphans(["secret arn:s: active"], [])
    assert left.status == FAIL and left.reason == "secret arn:s: active"
    clean = no_orphans([], ["secret arn:s: scheduled for deletion 2026-12-08"])
    assert clean.status == PASS and clean.evidence["in_deletion_window"]
