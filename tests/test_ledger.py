import json

import pytest

from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.ledger import Ledger


def test_new_ledger_is_written_at_once(tmp_path):
    Ledger.open(tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "ledger.json").read_text())
    assert doc["format"] == 1 and doc["entries"] == []


def test_record_is_persisted_and_merged_per_resource(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.record("secret", "arn:secret:1", "created", "secret", {"kms_key": "aws/secretsmanager"})
    ledger.record("secret", "arn:secret:1", "created", "secret", {"version": "v1"})
    reread = Ledger.open(tmp_path)
    [entry] = reread.entries("secret")
    assert entry.data == {"kms_key": "aws/secretsmanager", "version": "v1"}
    assert reread.find("secret").resource == "arn:secret:1"


def test_undone_entries_are_not_active(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.record("policy", "arn:policy", "created", "iam")
    ledger.mark_undone("policy", "arn:policy", "deleted")
    assert ledger.find("policy") is None
    assert ledger.entries("policy")[0].undone.endswith("deleted")
    # recording the same resource again after backout starts a new active entry
    ledger.record("policy", "arn:policy", "created", "iam")
    assert len(ledger.entries("policy", active_only=True)) == 1


def test_bind_refuses_another_account_or_function(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.bind(account="111111111111", function_name="orders-api")
    ledger.bind(account="111111111111", function_name="")  # empty never overrides
    with pytest.raises(InputError, match="for account '111111111111', not '222222222222'"):
        Ledger.open(tmp_path).bind(account="222222222222")
    with pytest.raises(InputError, match="function_name"):
        ledger.bind(function_name="billing")


def test_missing_ledger_when_not_creating_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="no ledger.json in"):
        Ledger.open(tmp_path / "nothing", create=False)


def test_corrupt_ledger_is_a_clear_error(tmp_path):
    (tmp_path / "ledger.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Ledger.open(tmp_path)


def test_lock_refuses_a_second_owner(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.acquire("run-a")
    ledger.acquire("run-a")  # re-entrant for its owner
    with pytest.raises(ChangeRefused, match="locked by run-a"):
        Ledger.open(tmp_path).acquire("run-b")
    ledger.release("run-a")
    Ledger.open(tmp_path).acquire("run-b")
