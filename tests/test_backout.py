"""Backout against moto in-process: round trip, idempotence, drift, ownership, mode=remove."""


import pytest

from runbook_lib.backout import Backout
from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.implementation import Implementation
from runbook_lib.records import FunctionCreated, KmsKey, Secret
from moto_world import FUNCTION

POLICY_ARN = f"arn:aws:iam::123456789012:policy/LambdaSecretsManagerPolicy-{FUNCTION}"


def implement(world, **kw):
    kw.setdefault("strategy", "reference")
    Implementation(world.target, world.ledger, function_name=FUNCTION, change_ticket="CHG-1", apply=True,
                   fingerprinter=world.fingerprinter, **kw).apply()


def backout(world, **kw):
    kw.setdefault("change_ticket", "CHG-2")
    kw.setdefault("apply", bool(kw["change_ticket"]))
    return Backout(world.target, world.ledger, **kw)


def live(world):
    config = world.client("lambda").get_function_configuration(FunctionName=FUNCTION)
    return {k: config.get(k) for k in ("CodeSha256", "Handler", "Role", "Environment", "Timeout", "MemorySize")}


def test_round_trip_restores_function_and_removes_what_was_created(world):
    before = live(world)
    implement(world, role_mode="dedicated", kms_key="create")
    assert live(world) != before
    b = backout(world)
    plan = {r.step: r for r in b.plan()}
    assert plan["function"].action == "update" and "WARNING" in plan["function"].reason
    assert plan["function"].source.startswith("ledger snapshot created")
    b.apply()
    assert bool(live(world) == before) is True, "configuration and code hash equal the snapshot"
    iam, sm, kms = world.client("iam"), world.client("secretsmanager"), world.client("kms")
    names = [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert f"LambdaSecretsManagerPolicy-{FUNCTION}" not in names
    assert f"LambdaSecretsRunbook-{FUNCTION}" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    secret = sm.describe_secret(SecretId=world.ledger.records(Secret)[0].resource)
    assert secret.get("DeletedDate"), "secret scheduled for deletion, restorable in the window"
    sm.restore_secret(SecretId=secret["ARN"])  # restorable indeed
    sm.delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=7)
    key = kms.describe_key(KeyId=world.ledger.records(KmsKey)[0].resource)["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    # the access key stays inactive unless asked
    assert iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    checks = {c.id: c for c in b.checks(invoke=False)}
    assert {c.status for c in checks.values()} == {"PASS"}, [(c.id, c.reason) for c in checks.values()]
    assert checks["no-orphans"].evidence["in_deletion_window"]
    table = b.before_after()
    row = table[table.kind == "secret"].iloc[0]
    assert row.before == "active" and row.after.startswith("scheduled for deletion")
    # second backout: nothing to do
    again = backout(world)
    assert {r.action for r in again.plan()} == {"none"}
    assert {r.status for r in again.apply()} == {"unchanged"}
    text = world.ledger.path.read_text()
    assert bool(any(world.env[k] in text for k in ("PARTNER_API_KEY", "DB_PASSWORD"))) is False


def test_reimplement_after_backout_restores_the_secret(world):
    implement(world)
    backout(world).apply()
    implement(world)
    sm = world.client("secretsmanager")
    secret = sm.describe_secret(SecretId="lambda/orders-api/config")
    assert not secret.get("DeletedDate")
    assert "SECRET_ID" in live(world)["Environment"]["Variables"]


def test_function_changed_outside_the_runbook_is_left_alone_with_a_reason(world):
    implement(world)
    lam = world.client("lambda")
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {**env, "NEW": "1"}})
    changed = live(world)
    b = backout(world)
    row = {r.step: r for r in b.plan()}["function"]
    assert row.action == "blocked" and "changed outside the runbook" in row.reason
    results = {r.step: r for r in b.apply()}
    assert results["function"].status == "blocked" and "changed outside" in results["function"].detail
    assert live(world) == changed, "the function was not overwritten"
    # the other steps still ran: the grant is off the secret, the secret scheduled for deletion
    sm = world.client("secretsmanager")
    secret = sm.describe_secret(SecretId=world.ledger.records(Secret)[0].resource)
    assert secret.get("DeletedDate") and results["grant"].status == "applied"
    checks = {c.id: c for c in b.checks(invoke=False)}
    reason = checks["backout-complete"].reason
    assert checks["backout-complete"].status == "FAIL" and "function_config" in reason and "outside" in reason


def test_untagged_resources_are_never_deleted(world):
    implement(world)
    sm = world.client("secretsmanager")
    arn = world.ledger.secret().resource
    sm.untag_resource(SecretId=arn, TagKeys=["managed-by"])
    b = backout(world)
    blocked = {r.step for r in b.plan() if r.action == "blocked"}
    assert blocked == {"secret", "grant"}
    with pytest.raises(ChangeRefused, match="lacks the runbook's tags"):
        b.apply(raise_on_blocked=True)
    assert not sm.describe_secret(SecretId=arn).get("DeletedDate")
    assert "LambdaSecretsRunbookReadByFunction" in sm.get_resource_policy(SecretId=arn)["ResourcePolicy"]
    # the function itself was restored: its step was not blocked
    assert "SECRET_ID" not in live(world)["Environment"]["Variables"]


def test_the_ledger_of_an_older_run_backs_out_its_identity_policy(world):
    """Runs before the resource-policy grant attached LambdaSecretsManagerPolicy-<fn>: their backout still works."""
    import json

    from runbook_lib.records import Policy, PolicyAttachment
    implement(world)
    iam = world.client("iam")
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                        "Resource": world.ledger.secret().resource}]}
    iam.create_policy(PolicyName=POLICY_ARN.rsplit("/", 1)[-1], PolicyDocument=json.dumps(document),
                      Tags=[{"Key": "managed-by", "Value": "lambda-secrets-runbook"}, {"Key": "function", "Value": FUNCTION}])
    iam.attach_role_policy(RoleName="orders-api-role", PolicyArn=POLICY_ARN)
    world.ledger.put(Policy(resource=POLICY_ARN, step="policy", name="LambdaSecretsManagerPolicy-orders-api",
                            secret=world.ledger.secret().resource))
    world.ledger.put(PolicyAttachment(resource=f"orders-api-role|{POLICY_ARN}", step="policy", role="orders-api-role",
                                      policy_arn=POLICY_ARN))
    b = backout(world)
    rows = {(r.step, r.resource): r.action for r in b.plan() if r.step == "policy"}
    assert rows == {("policy", f"orders-api-role|{POLICY_ARN}"): "delete", ("policy", POLICY_ARN): "delete"}
    b.apply()
    assert iam.list_attached_role_policies(RoleName="orders-api-role")["AttachedPolicies"] == []
    assert POLICY_ARN not in [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert {c.status for c in b.checks(invoke=False)} == {"PASS"}


def test_mode_remove_deletes_only_functions_the_runbook_created(world):
    lam = world.client("lambda")
    role = lam.get_function_configuration(FunctionName=FUNCTION)["Role"]
    created = lam.create_function(FunctionName="runbook-made", Runtime="python3.12", Role=role,
                                  Handler="app.handler", Code={"ZipFile": world.code},
                                  Tags={"managed-by": "lambda-secrets-runbook", "function": FUNCTION})
    untagged = lam.create_function(FunctionName="not-ours", Runtime="python3.12", Role=role,
                                   Handler="app.handler", Code={"ZipFile": world.code})
    implement(world)
    world.ledger.put(FunctionCreated(resource=created["FunctionArn"], step="test", name="runbook-made"))
    world.ledger.put(FunctionCreated(resource=untagged["FunctionArn"], step="test", name="not-ours"))
    b = backout(world, mode="remove")
    rows = {r.resource: r for r in b.plan() if r.step == "remove"}
    assert rows[created["FunctionArn"]].action == "delete"
    assert rows[untagged["FunctionArn"]].action == "blocked"
    assert rows[FUNCTION].action == "none"
    b.apply()
    assert [r.resource for r in b.refused] == [untagged["FunctionArn"]]
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "runbook-made" not in names and "not-ours" in names and FUNCTION in names


def test_reactivate_access_keys_only_when_asked(world):
    implement(world)
    backout(world).apply()
    iam = world.client("iam")
    assert iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    b = backout(world, reactivate_access_keys=True)
    assert [r.action for r in b.plan() if r.step == "access-keys"] == ["update"]
    b.apply()
    assert iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"][0]["Status"] == "Active"


def test_partial_failure_is_rerunnable(world):
    implement(world)
    sm = world.client("secretsmanager")
    calls = []

    def fail_once(**kwargs):
        if not calls:
            calls.append(1)
            import botocore.exceptions
            raise botocore.exceptions.ClientError({"Error": {"Code": "Throttling", "Message": "x"}}, "DeleteSecret")
    sm.meta.events.register("before-call.secrets-manager.DeleteSecret", fail_once)
    with pytest.raises(Exception, match="DeleteSecret"):
        backout(world).apply()
    assert "SECRET_ID" not in live(world)["Environment"]["Variables"]  # function restored before the failure
    b = backout(world)
    assert [r.action for r in b.plan() if r.action != "none"] == ["delete"]
    b.apply()
    assert {c.status for c in b.checks(invoke=False)} == {"PASS"}


def test_input_errors(world):
    with pytest.raises(InputError, match="force"):
        backout(world, secret_recovery_days=0)
    with pytest.raises(InputError, match="7-30"):
        backout(world, secret_recovery_days=3)
    with pytest.raises(InputError, match="mode"):
        backout(world, mode="nuke")
    with pytest.raises(InputError, match="change ticket"):
        backout(world, change_ticket="", apply=True)
    with pytest.raises(InputError, match="names no function"):
        backout(world)
    implement(world)
    with pytest.raises(InputError, match="ledger is for function_name"):
        backout(world, function_name="inventory-sync")


def test_apply_is_refused_unless_built_with_apply_true_and_nothing_changes(world):
    implement(world)
    b = backout(world, apply=False)
    before, ledger_before = world.state(), world.ledger.path.read_text()
    with pytest.raises(InputError, match=r"^apply: this Backout was built with apply=False \(plan only\)"):
        b.apply()
    assert world.state() == before and world.ledger.path.read_text() == ledger_before


def test_function_restored_compares_only_what_the_runbook_changed(world):
    """A run stopped after its snapshot never touched the function: the version's Description is not a difference."""
    import botocore.exceptions

    sm = world.client("secretsmanager")

    def deny(**kwargs):
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CreateSecret")
    sm.meta.events.register("before-call.secrets-manager.CreateSecret", deny)
    with pytest.raises(Exception, match="CreateSecret"):
        implement(world)
    sm.meta.events.unregister("before-call.secrets-manager.CreateSecret", deny)
    lam = world.client("lambda")
    snapshot = world.ledger.snapshot(FUNCTION)
    version = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier=snapshot.version)
    assert version["Description"] != lam.get_function_configuration(FunctionName=FUNCTION).get("Description", "")
    b = backout(world)
    b.apply()
    restored = {c.id: c for c in b.checks(invoke=False)}["function-restored"]
    assert restored.status == "PASS" and restored.evidence["compared"] == ["Environment", "code"]


def test_a_round_trip_leaves_the_functions_own_description_alone(world):
    lam = world.client("lambda")
    lam.update_function_configuration(FunctionName=FUNCTION, Description="orders API, team payments")
    implement(world)
    b = backout(world)
    b.apply()
    assert lam.get_function_configuration(FunctionName=FUNCTION)["Description"] == "orders API, team payments"
    restored = {c.id: c for c in b.checks(invoke=False)}["function-restored"]
    assert restored.status == "PASS" and restored.evidence["compared"] == ["Environment", "Handler", "code"]


def test_an_unreconciled_interrupted_create_fails_the_checks(world):
    from runbook_lib.records import Intent
    implement(world)
    world.ledger.put(Intent(resource="secret:t", step="secret", creates="secret", name="lambda/orders-api/other",
                            token="t"))
    checks = {c.id: c for c in backout(world, apply=False).checks(invoke=False)}
    assert checks["backout-complete"].status == "FAIL" and "intent secret:t" in checks["backout-complete"].reason
    assert "interrupted secret of lambda/orders-api/other: not reconciled" in checks["no-orphans"].reason


def test_a_dead_runs_lock_is_refused_with_the_way_out(world):
    import subprocess
    import sys

    from runbook_lib.change.locks import LockOwner
    implement(world)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = LockOwner.this_process("apply", world.run_dir.name).__dict__ | {"pid": child.pid}
    world.ledger.acquire(LockOwner(**dead).token())
    before = world.state()
    with pytest.raises(ChangeRefused) as refused:
        backout(world).apply()
    assert "whose process is gone: release it with `runbook unlock RUN_DIR`, then try again" in str(refused.value)
    assert world.state() == before


def test_backout_closes_an_interrupted_change_that_made_nothing(world):
    """A kill before UpdateFunctionConfiguration went through: its intent made nothing, backout still closes it.

    The reconcile plan row is ``none`` (only the ledger changes): the engine must apply it anyway,
    or the backout stops on "interrupted create(s) still unresolved".
    """
    from runbook_lib.records import Intent
    implement(world)
    world.ledger.put(Intent(resource="function_state:t", step="function", creates="function_state", name=FUNCTION,
                            token="t", details={"handler": "never.reached"}))
    b = backout(world)
    assert [(r.step, r.action) for r in b.plan() if r.step == "reconcile"] == [("reconcile", "none")]
    b.apply()
    assert world.ledger.pending_intents() == []
    [closed] = [i for i in world.ledger.records(Intent) if i.token == "t"]
    assert closed.undone.endswith("reconciled: nothing was made")
    assert {c.id: c.status for c in b.checks(invoke=False)} == {
        "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
