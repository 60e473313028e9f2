"""Residue sweep against moto in-process: versions, aliases, fingerprint matching, the two checks."""

import json
import secrets


from runbook_lib import functions, residue
from runbook_lib.checks import FAIL, PASS, SKIP, WARN
from runbook_lib.implementation import Implementation
from runbook_lib.records import AccessKey, Rotation
from runbook_lib.scanning import Scanner
from moto_world import FUNCTION


def publish_old_versions(world, count=2):
    """Versions published while the secrets sat in the environment (each differs, so each is new)."""
    lam = world.client("lambda")
    versions = []
    for i in range(count):
        env = dict(world.env, LOG_LEVEL=f"LEVEL{i}")
        functions.update_configuration(lam, FUNCTION, variables=env)
        versions.append(lam.publish_version(FunctionName=FUNCTION)["Version"])
    # $LATEST differs from the last version, so the implementation's snapshot is a new version
    functions.update_configuration(lam, FUNCTION, variables=world.env)
    return versions


def implement(world):
    Implementation(world.target, world.ledger, function_name=FUNCTION, change_ticket="CHG-1", apply=True,
                   fingerprinter=world.fingerprinter, strategy="reference").apply()
    return world.ledger.snapshot(FUNCTION).version


def sweep(world):
    lam, sm = world.client("lambda"), world.client("secretsmanager")
    migrated = residue.migrated_fingerprints(lam, sm, world.ledger, FUNCTION, world.fingerprinter)
    snap = world.ledger.snapshot(FUNCTION)
    return residue.sweep_function(lam, FUNCTION, migrated, Scanner(fingerprinter=world.fingerprinter),
                                  world.fingerprinter, snapshot_version=snap.version if snap else "")


def leaks(world, text: str) -> bool:
    return any(value in text for value in (world.env["PARTNER_API_KEY"], world.env["DB_PASSWORD"]))


def test_list_versions_is_one_paged_call_with_environments(world):
    old = publish_old_versions(world)
    configs = residue.list_versions(world.client("lambda"), FUNCTION)
    assert [c["Version"] for c in configs] == old == ["1", "2"]
    assert all(set(world.env) - {"LOG_LEVEL"} <= set(functions.environment(c)) for c in configs)


def test_aliases_list_their_version_and_weighted_routing(world):
    lam = world.client("lambda")
    one, two = publish_old_versions(world)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=one,
                     RoutingConfig={"AdditionalVersionWeights": {two: 0.1}})
    lam.create_alias(FunctionName=FUNCTION, Name="beta", FunctionVersion=two)
    assert residue.list_aliases(lam, FUNCTION) == {"live": ["1", "2"], "beta": ["2"]}


def test_old_versions_and_snapshot_hold_migrated_values_and_fail_the_check(world):
    publish_old_versions(world)
    snapshot = implement(world)
    world.client("lambda").create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    result = sweep(world)
    assert [(v.version, v.migrated, v.snapshot) for v in result.versions] == [
        ("1", ["DB_PASSWORD", "PARTNER_API_KEY"], False), ("2", ["DB_PASSWORD", "PARTNER_API_KEY"], False),
        (snapshot, ["DB_PASSWORD", "PARTNER_API_KEY"], True)]
    assert result.versions[0].aliases == ["live"] and result.versions[1].aliases == []
    check = residue.residue_check(result, "validation", "03_functional_validation")
    assert check.status == FAIL
    assert "version 1:" in check.reason and "version 2:" in check.reason and "(alias live)" in check.reason
    assert check.controls == ["IA-5(7)", "SC-28"]
    assert leaks(world, json.dumps(check.evidence) + check.reason + result.frame().to_csv()) is False


def test_after_implementation_only_the_snapshot_holds_values_and_warns(world):
    snapshot = implement(world)
    result = sweep(world)
    assert [v.version for v in result.holding()] == [snapshot] and result.others() == []
    check = residue.residue_check(result, "validation", "03_functional_validation")
    assert check.status == WARN and f"backout snapshot (version {snapshot})" in check.reason


def test_values_are_matched_by_fingerprint_not_by_name(world):
    """A version whose PARTNER_API_KEY holds another value is a scanner finding, not a migrated value."""
    lam = world.client("lambda")
    other = dict(world.env, PARTNER_API_KEY="pk_" + secrets.token_urlsafe(24), DB_PASSWORD="x")
    functions.update_configuration(lam, FUNCTION, variables=other)
    lam.publish_version(FunctionName=FUNCTION)
    functions.update_configuration(lam, FUNCTION, variables=world.env)
    implement(world)
    [first, snap] = sweep(world).versions
    assert first.migrated == [] and [f["variable"] for f in first.findings] == ["PARTNER_API_KEY"]
    assert snap.snapshot and snap.migrated == ["DB_PASSWORD", "PARTNER_API_KEY"]
    assert residue.residue_check(sweep(world), "validation", "x").status == FAIL


def test_secret_previous_stage_keeps_the_exposed_value_matched_after_rotation(world):
    publish_old_versions(world, count=1)
    implement(world)
    sm = world.client("secretsmanager")
    arn = world.ledger.secret().resource
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"PARTNER_API_KEY": "new-" + secrets.token_hex(8),
                                                               "DB_PASSWORD": "new-" + secrets.token_hex(8)}))
    # without the snapshot (deleted at close-out) the secret's AWSPREVIOUS still identifies the old values
    world.ledger.put(world.ledger.snapshot(FUNCTION).replace(deleted_by_closeout=True))
    migrated = residue.migrated_fingerprints(world.client("lambda"), sm, world.ledger, FUNCTION, world.fingerprinter)
    assert sorted(migrated.values()) == ["DB_PASSWORD", "DB_PASSWORD", "PARTNER_API_KEY", "PARTNER_API_KEY"]
    first = sweep(world).versions[0]
    assert first.migrated == ["DB_PASSWORD", "PARTNER_API_KEY"]


def test_no_versions_passes_and_missing_sweep_skips():
    empty = residue.Sweep("f")
    assert residue.residue_check(empty, "validation", "x").status == PASS
    assert residue.residue_check(None, "validation", "x").status == SKIP
    assert residue.residue_check(None, "validation", "x", unavailable="denied").status == FAIL


def test_exposure_and_rotation_check(world):
    implement(world)
    lam, sm, iam = (world.client(s) for s in ("lambda", "secretsmanager", "iam"))
    rows = residue.exposure(world.ledger, FUNCTION, lam, sm, iam, world.fingerprinter)
    assert [(r["item"], r["rotated"]) for r in rows] == [
        ("DB_PASSWORD", False), ("PARTNER_API_KEY", False),
        (world.ledger.records(AccessKey)[0].resource, True)]  # deactivated by the implementation (lab)
    check = residue.rotation_check(rows, "validation", "x")
    assert check.status == WARN and "DB_PASSWORD" in check.reason and "PARTNER_API_KEY" in check.reason
    assert check.controls == ["IA-5(1)", "IA-5"]
    # a value replaced outside the runbook counts too: the secret's value differs from the exposed one
    arn = world.ledger.secret().resource
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"PARTNER_API_KEY": "n-" + secrets.token_hex(8),
                                                               "DB_PASSWORD": world.env["DB_PASSWORD"]}))
    rows = residue.exposure(world.ledger, FUNCTION, lam, sm, iam, world.fingerprinter)
    assert {r["item"]: r["rotated"] for r in rows}["PARTNER_API_KEY"] is True
    world.ledger.put(Rotation(resource=arn, action="changed", step="rotate", variables=["DB_PASSWORD"]))
    assert residue.rotation_check(residue.exposure(world.ledger, FUNCTION, lam, sm, iam, world.fingerprinter),
                                  "validation", "x").status == PASS
    assert residue.rotation_check([], "validation", "x").status == SKIP
