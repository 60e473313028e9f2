import dataclasses
import json
import typing

import pytest

from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.ledger import Ledger
from runbook_lib.records import Policy, Record, Secret, Snapshot


def test_new_ledger_is_written_at_once(tmp_path):
    Ledger.open(tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "ledger.json").read_text())
    assert doc["format"] == 1 and doc["entries"] == []


def test_records_are_typed_persisted_and_replaced_per_resource(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.put(Secret(resource="arn:secret:1", name="lambda/fn/config", kms_key="aws/secretsmanager"))
    ledger.put(ledger.secret().replace(writes=2))
    reread = Ledger.open(tmp_path)
    [secret] = reread.records(Secret)
    assert isinstance(secret, Secret)
    assert (secret.name, secret.kms_key, secret.writes) == ("lambda/fn/config", "aws/secretsmanager", 2)
    assert reread.latest("secret").resource == "arn:secret:1"


def test_snapshot_accessor_defaults_to_the_runs_function(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.bind(function_name="orders-api")
    for name in ("other-fn", "orders-api"):
        ledger.put(Snapshot(resource=name, version="3", version_arn=f"arn:{name}:3", code_sha256="h",
                            role="arn:role", moved_variables=["DB_PASSWORD"]))
    assert ledger.snapshot().resource == "orders-api"
    assert ledger.snapshot("other-fn").version_arn == "arn:other-fn:3"
    assert ledger.snapshot("absent") is None


def test_undone_records_are_not_active(tmp_path):
    ledger = Ledger.open(tmp_path)
    policy = ledger.put(Policy(resource="arn:policy", step="iam"))
    ledger.undo(policy, "deleted")
    assert ledger.latest(Policy) is None
    assert ledger.records(Policy)[0].undone.endswith("deleted")
    # recording the same resource again after backout starts a new active record
    ledger.put(Policy(resource="arn:policy", step="iam"))
    assert len(ledger.records(Policy, active_only=True)) == 1 and len(ledger.records(Policy)) == 2


def _write_entries(tmp_path, *entries):
    (tmp_path / "ledger.json").write_text(json.dumps({"format": 1, "entries": list(entries)}))


def test_unknown_record_kind_is_refused_naming_the_file(tmp_path):
    _write_entries(tmp_path, {"kind": "mystery", "resource": "x", "action": "created", "data": {}})
    with pytest.raises(InputError, match=r"ledger.json: unknown ledger record kind 'mystery'"):
        Ledger.open(tmp_path)


@pytest.mark.parametrize("data, message", [
    ({"alias": "alias/k", "colour": "red"}, "unknown field.*colour"),
    ({}, r"missing field\(s\) alias"),
    ({"alias": 7}, "field alias is int, expected str"),
])
def test_malformed_record_is_refused_naming_record_and_field(tmp_path, data, message):
    _write_entries(tmp_path, {"kind": "kms_key", "resource": "arn:key", "action": "created", "data": data})
    with pytest.raises(InputError, match=r"ledger.json: kms_key record 'arn:key': " + message):
        Ledger.open(tmp_path)


def test_bad_action_and_wrong_list_type_are_refused(tmp_path):
    _write_entries(tmp_path, {"kind": "role", "resource": "arn:role", "action": "stolen", "data": {"name": "r"}})
    with pytest.raises(InputError, match="action 'stolen' is not one of created, changed, adopted"):
        Ledger.open(tmp_path)
    _write_entries(tmp_path, {"kind": "snapshot", "resource": "fn", "action": "created", "data": {
        "version": "1", "version_arn": "a", "code_sha256": "h", "role": "r", "moved_variables": "DB"}})
    with pytest.raises(InputError, match="field moved_variables is str, expected list"):
        Ledger.open(tmp_path)


def test_a_boolean_is_not_accepted_for_an_integer_field(tmp_path):
    _write_entries(tmp_path, {"kind": "secret", "resource": "arn:s", "action": "created",
                              "data": {"name": "n", "writes": True}})
    with pytest.raises(InputError, match="field writes is bool, expected int"):
        Ledger.open(tmp_path)


def test_every_kind_round_trips_through_the_file(tmp_path):
    from runbook_lib import records

    ledger = Ledger.open(tmp_path)
    for kind, cls in records.KINDS.items():
        hints = typing.get_type_hints(cls)
        required = [f.name for f in dataclasses.fields(cls) if f.name not in Record.ENVELOPE
                    and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        assert all(hints[name] is str for name in required), f"{kind}: required fields are names and ARNs"
        ledger.put(cls(resource=f"r-{kind}", **{name: f"{kind}-{name}" for name in required}))
    reread = Ledger.open(tmp_path)
    assert [r.to_json() for r in reread.records()] == [r.to_json() for r in ledger.records()]
    assert {r.kind for r in reread.records()} == set(records.KINDS)


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


def test_intents_are_pending_until_resolved_and_survive_a_reopen(tmp_path):
    from runbook_lib.records import Intent
    ledger = Ledger.open(tmp_path)
    pending = ledger.put(Intent(resource="secret:tok", step="secret", creates="secret", name="lambda/f/config",
                                token="tok", details={"variables": ["DB_PASSWORD"]}))
    [again] = Ledger.open(tmp_path).pending_intents()
    assert again == pending and again.details == {"variables": ["DB_PASSWORD"]}
    ledger.resolve(pending, "reconciled: nothing was made")
    assert Ledger.open(tmp_path).pending_intents() == []
    assert Ledger.open(tmp_path).records(Intent)[0].undone.endswith("reconciled: nothing was made")


@pytest.mark.parametrize("kind, data, message", [
    ("intent", {"creates": "secret", "name": "n", "token": "t", "details": []}, "field details is list, expected dict"),
    ("intent", {"creates": "secret", "name": "n"}, r"missing field\(s\) token"),
    ("function_config", {"snapshot_version": "1", "changed_fields": "Environment"},
     "field changed_fields is str, expected list"),
])
def test_intent_and_changed_fields_are_read_strictly(tmp_path, kind, data, message):
    _write_entries(tmp_path, {"kind": kind, "resource": "r", "action": "created", "data": data})
    with pytest.raises(InputError, match=message):
        Ledger.open(tmp_path)


def test_the_lock_is_taken_from_the_file_as_another_process_left_it(tmp_path):
    mine = Ledger.open(tmp_path)
    other = Ledger.open(tmp_path)  # opened before the first one took the lock
    mine.acquire("run-a")
    assert other.lock_holder() == "run-a", "read from the file, not from memory"
    with pytest.raises(ChangeRefused, match="runbook unlock RUN_DIR"):
        other.acquire("run-b")
    mine.put(Policy(resource="arn:policy", step="iam"))
    mine.release("run-a")
    other.acquire("run-b")
    assert other.latest(Policy) is not None, "taking the lock reloads what the other process wrote"
    other.release(None)  # no owner: nothing happens
    assert Ledger.open(tmp_path).lock_holder() == "run-b"
