"""``exposed-credentials-rotated`` on fabricated exposure rows (the rows themselves: tests/test_residue.py)."""

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.exposed_credentials_rotated import judge


def row(item, rotated, how):
    return {"item": item, "kind": "k", "exposed in": "e", "rotated": rotated, "how": how}


def test_every_credential_replaced_passes():
    verdict = judge([row("DB_PASSWORD", True, "new secret version put by close-out"), row("key", True, "key is deleted")])
    assert (verdict.status, verdict.reason) == (PASS, "2 exposed credential(s) replaced: DB_PASSWORD (new secret "
                                                      "version put by close-out); key (key is deleted)")


def test_one_pending_warns_with_what_to_do():
    verdict = judge([row("DB_PASSWORD", False, "replace it at its source"), row("key", True, "key is Inactive")])
    assert (verdict.status, verdict.reason) == (WARN, "exposed and not yet replaced at the source: DB_PASSWORD "
                                                      "(replace it at its source) - moving a value hides it, it does "
                                                      "not un-expose it")
    assert verdict.evidence == {"credentials": [row("DB_PASSWORD", False, "replace it at its source"),
                                                row("key", True, "key is Inactive")]}


def test_nothing_exposed_skips_and_unreadable_fails():
    assert (judge([]).status, judge([]).reason) == (SKIP, "the ledger records no migrated value or hardcoded key")
    assert (judge(None, "could not be evaluated: ListUsers denied").status,
            judge(None, "could not be evaluated: ListUsers denied").reason) == (FAIL, "could not be evaluated: "
                                                                                      "ListUsers denied")
    assert judge(None).reason == "the exposed credentials could not be read"


def test_whole_verdicts_carry_the_rows():
    rows = [row("DB_PASSWORD", True, "new secret version put by close-out"), row("key", True, "key is deleted")]
    assert judge(rows) == Verdict(PASS, "2 exposed credential(s) replaced: DB_PASSWORD (new secret version put by "
                                        "close-out); key (key is deleted)", {"credentials": rows})
    pending = [row("A", False, "rotate at the source"), row("B", False, "deactivate the key")]
    assert judge(pending) == Verdict(WARN, "exposed and not yet replaced at the source: A (rotate at the source); B "
                                           "(deactivate the key) - moving a value hides it, it does not un-expose it",
                                     {"credentials": pending})
