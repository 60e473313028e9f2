"""Implementation steps against moto in-process: plan, apply, re-run, failure and resume, bad input.

The moto world (the ``world`` fixture of ``conftest.py``, ``build_world``: table ``orders``, legacy IAM user with an access
key, role ``orders-api-role``, function ``orders-api`` with two secrets in its environment
and the legacy key in its code, a ledger whose baseline holds the test plan's findings
fingerprinted with a fixed key) lives in ``moto_world.py``.
"""

import contextlib
import io
import json
import zipfile

import botocore.exceptions
import pytest

from runbook_lib import functions
from runbook_lib.exceptions import AwsCallError, ChangeRefused, InputError
from runbook_lib.handlers import REFERENCE_HANDLER
from runbook_lib.implementation import Implementation
from runbook_lib.ledger import Ledger
from runbook_lib.records import AccessKey, EdgeAssociation, KmsKey, Snapshot
from runbook_lib.session import Target

from moto_world import FUNCTION, REGION


SECRET_VARS = ("PARTNER_API_KEY", "DB_PASSWORD")


def make(world, **kw):
    kw.setdefault("change_ticket", "CHG-1")
    kw.setdefault("apply", bool(kw["change_ticket"]))
    return Implementation(world.target, world.ledger, function_name=FUNCTION,
                          fingerprinter=world.fingerprinter, **kw)


def test_plan_only_changes_nothing(world):
    before = world.state()
    rows = make(world, change_ticket="").plan()
    assert before == world.state()
    actions = {r.step: r.action for r in rows}
    assert actions["snapshot"] == "create" and actions["secret"] == "create" and actions["policy"] == "create"
    assert actions["function"] == "update" and actions["access-keys"] == "update"
    assert world.ledger.records() == []


def test_apply_moves_secrets_scopes_policy_deploys_handler_and_deactivates_key(world):
    impl = make(world)
    results = impl.apply()
    assert [r.status for r in results] == ["applied"] * len(results)
    lam, sm, iam = (world.client(s) for s in ("lambda", "secretsmanager", "iam"))
    config = lam.get_function_configuration(FunctionName=FUNCTION)
    env = config["Environment"]["Variables"]
    secret = sm.describe_secret(SecretId="lambda/orders-api/config")
    # no secret variable left, every other variable kept exactly, SECRET_ID = the secret's ARN
    assert not set(SECRET_VARS) & set(env)
    assert bool(env == {**{k: v for k, v in world.env.items() if k not in SECRET_VARS},
                        "SECRET_ID": secret["ARN"]}) is True
    assert config["Handler"] == REFERENCE_HANDLER
    package = functions.build_reference_package(secret["ARN"], REGION)
    assert config["CodeSha256"] == functions.code_sha256(package)
    # the secret holds exactly the migrated values (compared without printing them)
    stored = json.loads(sm.get_secret_value(SecretId=secret["ARN"])["SecretString"])
    assert bool(stored == {k: world.env[k] for k in SECRET_VARS}) is True
    tags = {t["Key"]: t["Value"] for t in secret["Tags"]}
    assert tags == {"managed-by": "lambda-secrets-runbook", "function": FUNCTION, "change-ticket": "CHG-1"}
    # policy: GetSecretValue on exactly that ARN, attached to the function's role
    arn = f"arn:aws:iam::123456789012:policy/LambdaSecretsManagerPolicy-{FUNCTION}"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["Statement"] == [{"Sid": "ReadThisFunctionsSecret", "Effect": "Allow",
                                 "Action": "secretsmanager:GetSecretValue", "Resource": secret["ARN"]}]
    attached = iam.list_attached_role_policies(RoleName="orders-api-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    # hardcoded key deactivated (lab target), the other user's key untouched
    assert [k["Status"] for k in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]] == ["Inactive"]
    assert [k["Status"] for k in iam.list_access_keys(UserName="someone-else")["AccessKeyMetadata"]] == ["Active"]
    # ledger: snapshot with names only, never a value
    snap = world.ledger.snapshot(FUNCTION)
    assert sorted(snap.moved_variables) == sorted(SECRET_VARS)
    text = world.ledger.path.read_text()
    assert bool(any(world.env[k] in text for k in SECRET_VARS) or world.key_id in text) is False
    kinds = {e.kind for e in world.ledger.records()}
    assert {"snapshot", "secret", "policy", "policy_attachment", "function_config", "function_code",
            "function_state", "access_key"} <= kinds
    evidence = world.ledger.latest(AccessKey).evidence
    assert "--status Inactive" in evidence and world.key_id not in evidence
    checks = impl.checks()
    assert {c.status for c in checks} == {"PASS"}, [(c.id, c.reason) for c in checks]
    assert any("orders-legacy-ci" in line for line in impl.owner_actions())


def test_second_apply_is_a_no_op(world):
    make(world).apply()
    before = world.state()
    impl = make(world, change_ticket="CHG-2")
    assert {r.action for r in impl.plan()} == {"none"}
    results = impl.apply()
    assert {r.status for r in results} == {"unchanged"}
    assert world.state() == before


def test_apply_without_ticket_stops_before_any_change(world):
    before = world.state()
    with pytest.raises(InputError, match="change ticket"):
        make(world, change_ticket="", apply=True)
    impl = make(world, change_ticket="")
    with pytest.raises(InputError, match="built with apply=False"):
        impl.apply()
    assert world.state() == before and world.ledger.records() == []


def test_access_denied_at_create_policy_leaves_an_exact_ledger_and_rerun_completes(world):
    iam = world.client("iam")

    def deny(**kwargs):
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "CreatePolicy")
    iam.meta.events.register("before-call.iam.CreatePolicy", deny)
    with pytest.raises(AwsCallError) as info:
        make(world).apply()
    assert info.value.code == "AccessDenied" and "iam:CreatePolicy" in str(info.value)
    ledger = Ledger.open(world.run_dir)  # re-read from disk: what another process would see
    assert {r.kind for r in ledger.records(active_only=True)} == {"snapshot", "secret"}
    assert ledger.pending_intents() == [], "AWS refused CreatePolicy: nothing to reconcile"
    assert world.client("secretsmanager").describe_secret(SecretId=ledger.secret().resource)
    assert any("apply stopped: CreatePolicy" in e["message"] for e in ledger.doc["events"])
    assert "lambda-secrets-runbook-lock" not in world.client("lambda").list_tags(
        Resource=world.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"])["Tags"]
    iam.meta.events.unregister("before-call.iam.CreatePolicy", deny)
    impl = make(world)
    assert {r.step: r.action for r in impl.plan()}["snapshot"] == "none"
    results = impl.apply()
    assert [r.status for r in results][:2] == ["unchanged", "unchanged"]
    assert {r.action for r in make(world).plan()} == {"none"}
    assert len(world.ledger.records(Snapshot)) == 1


def test_unknown_function_bad_kms_bad_code_and_foreign_ledger_are_input_errors(world, tmp_path):
    with pytest.raises(InputError, match="function_name: function 'nope' not found"):
        Implementation(world.target, world.ledger, function_name="nope")
    with pytest.raises(InputError, match="kms_key"):
        make(world, kms_key="my-key")
    with pytest.raises(InputError, match="kms_key: .*does not exist"):
        make(world, kms_key="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    with pytest.raises(InputError, match="role_mode"):
        make(world, role_mode="shared")
    not_zip = tmp_path / "pkg.zip"
    not_zip.write_text("hello")
    with pytest.raises(InputError, match="not a zip"):
        make(world, code_path=str(not_zip))
    wrong = tmp_path / "wrong.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", "def handler(e, c): pass\n")
    wrong.write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="lacks the handler module app.py"):
        make(world, code_path=str(wrong))
    foreign = Ledger.open(tmp_path / "other-run")
    foreign.bind(function_name="other-function")
    with pytest.raises(InputError, match="run_dir: this run's ledger is for function_name 'other-function'"):
        Implementation(world.target, foreign, function_name=FUNCTION)
    assert world.ledger.records() == [] and foreign.records() == []


def test_code_path_is_deployed_and_handler_kept(world, tmp_path):
    package = tmp_path / "refactored.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "import os\ndef handler(event, context):\n    return os.environ['SECRET_ID']\n")
    package.write_bytes(buf.getvalue())
    make(world, code_path=str(package)).apply()
    config = world.client("lambda").get_function_configuration(FunctionName=FUNCTION)
    assert config["Handler"] == "app.handler"
    assert config["CodeSha256"] == functions.code_sha256(package.read_bytes())


def test_dedicated_role_and_created_kms_key(world):
    impl = make(world, role_mode="dedicated", kms_key="create")
    impl.apply()
    lam, iam, kms, sm = (world.client(s) for s in ("lambda", "iam", "kms", "secretsmanager"))
    role_name = f"LambdaSecretsRunbook-{FUNCTION}"
    role = iam.get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert lam.get_function_configuration(FunctionName=FUNCTION)["Role"] == role["Arn"]
    boundary = "arn:aws:iam::123456789012:policy/LambdaSecretsRunbookRoleBoundary"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    inline = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert set(inline) == {"basic-logging", "copied-orders-read"}
    # the old role is left as it was: no secret policy attached to it
    assert iam.list_attached_role_policies(RoleName="orders-api-role")["AttachedPolicies"] == []
    key_arn = world.ledger.latest(KmsKey).resource
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    decrypt = policy["Statement"][1]
    assert decrypt["Principal"] == {"AWS": role["Arn"]} and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"
    secret = sm.describe_secret(SecretId="lambda/orders-api/config")
    assert kms.describe_key(KeyId=secret["KmsKeyId"])["KeyMetadata"]["Arn"] == key_arn
    pol_arn = f"arn:aws:iam::123456789012:policy/LambdaSecretsManagerPolicy-{FUNCTION}"
    doc = iam.get_policy_version(PolicyArn=pol_arn, VersionId="v1")["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["Statement"][1]["Resource"] == key_arn
    assert {r.action for r in make(world, role_mode="dedicated", kms_key="create").plan()} == {"none"}


def test_dedicated_role_without_the_boundary_blocks_before_any_change(world):
    iam = world.client("iam")
    iam.delete_policy(PolicyArn="arn:aws:iam::123456789012:policy/LambdaSecretsRunbookRoleBoundary")
    before = world.state()
    row = next(r for r in make(world, role_mode="dedicated").plan() if r.step == "role")
    assert row.action == "blocked" and "LambdaSecretsRunbookRoleBoundary does not exist" in row.reason
    assert "policies/runbook-role-boundary.json" in row.reason
    with pytest.raises(ChangeRefused):
        make(world, role_mode="dedicated").apply()
    assert world.state() == before


def test_a_dedicated_role_with_another_boundary_fails_its_assertion(world):
    impl = make(world, role_mode="dedicated")
    impl.apply()
    world.client("iam").put_role_permissions_boundary(
        RoleName=f"LambdaSecretsRunbook-{FUNCTION}", PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
    role_step = next(s for s in impl.steps if s.name == "role")
    with pytest.raises(ChangeRefused, match="permissions boundary is arn:aws:iam::aws:policy/ReadOnlyAccess"):
        role_step.verify()


def test_existing_secret_not_made_by_the_runbook_blocks_before_any_change(world):
    world.client("secretsmanager").create_secret(Name="lambda/orders-api/config", SecretString="{}")
    before = world.state()
    impl = make(world)
    assert any(r.action == "blocked" and r.step == "secret" for r in impl.plan())
    with pytest.raises(ChangeRefused, match="not created by this runbook"):
        impl.apply()
    assert world.state() == before


def test_without_baseline_findings_the_scanner_picks_the_variables(world, tmp_path):
    world.ledger.doc["baseline"] = {}
    world.ledger.save()
    impl = make(world)
    moved, _ = impl.change.variables()
    assert set(SECRET_VARS) <= set(moved) and "TABLE_NAME" not in moved


def test_permissions_are_declared(world):
    perms = make(world).permissions()
    assert {"iam:CreatePolicy", "secretsmanager:CreateSecret", "lambda:UpdateFunctionConfiguration",
            "lambda:PublishVersion", "iam:UpdateAccessKey"} <= set(perms)


# -- against the seeded lab (a real runtime, code download, CloudFront associations) -----------
@pytest.fixture(scope="module")
def own_lab():
    """A seeded lab of this module's own: these tests change the baseline."""
    from runbook_lib.lab import Lab
    with Lab(seed=True) as running:
        yield running


def test_lab_round_trip_implement_invoke_backout_and_edge(own_lab, tmp_path):
    from runbook_lib.backout import Backout
    from runbook_lib.evidence import invoke_function
    target = Target.from_parameters("lab", region=own_lab.region, endpoint_url=own_lab.endpoint_url,
                                    session=own_lab.session())
    lam, sm, iam = (target.client(s) for s in ("lambda", "secretsmanager", "iam"))
    name = own_lab.seed_info["function_name"]
    seeded = lam.get_function_configuration(FunctionName=name)
    seeded_env = seeded["Environment"]["Variables"]
    ledger = Ledger.open(tmp_path / "run")  # no test plan findings: the scanner works them out

    impl = Implementation(target, ledger, function_name=name, change_ticket="CHG-LAB", apply=True)
    impl.apply()
    config = lam.get_function_configuration(FunctionName=name)
    env = config["Environment"]["Variables"]
    assert not set(own_lab.seed_info["secret_env_vars"]) & set(env) and env["SECRET_ID"].startswith("arn:")
    stored = json.loads(sm.get_secret_value(SecretId=env["SECRET_ID"])["SecretString"])
    assert bool(stored == {k: seeded_env[k] for k in own_lab.seed_info["secret_env_vars"]}) is True
    keys = iam.list_access_keys(UserName=own_lab.seed_info["legacy_user"])["AccessKeyMetadata"]
    assert [k["Status"] for k in keys] == ["Inactive"]
    [result] = invoke_function(lam, name, {}, 1)
    assert result["status_code"] == 200 and not result["function_error"] and result["http_status"] == 200
    assert {r.action for r in Implementation(target, ledger, function_name=name).plan()} == {"none"}

    backout = Backout(target, ledger, change_ticket="CHG-LAB-B", apply=True)
    backout.apply()
    restored = lam.get_function_configuration(FunctionName=name)
    assert restored["CodeSha256"] == seeded["CodeSha256"] and restored["Handler"] == seeded["Handler"]
    assert bool(restored["Environment"]["Variables"] == seeded_env) is True
    assert {c.status for c in backout.checks(invoke=False)} == {"PASS"}

    # Lambda@Edge: dedicated role (trusts edgelambda), no environment variables, viewer-request
    distribution = own_lab.seed_info["distribution_id"]
    edge_ledger = Ledger.open(tmp_path / "edge-run")
    edge_impl = Implementation(target, edge_ledger, function_name=name, role_mode="dedicated",
                               edge_distribution_id=distribution, change_ticket="CHG-EDGE", apply=True)
    edge_impl.change.wait_delay = 1
    edge_impl.apply()
    assert "Environment" not in lam.get_function_configuration(FunctionName=name) or not \
        lam.get_function_configuration(FunctionName=name)["Environment"].get("Variables")
    cf = target.client("cloudfront")
    behaviour = cf.get_distribution_config(Id=distribution)["DistributionConfig"]["DefaultCacheBehavior"]
    items = behaviour["LambdaFunctionAssociations"].get("Items", [])
    version_arn = edge_ledger.latest(EdgeAssociation, distribution).version_arn
    assert [(i["EventType"], i["LambdaFunctionARN"]) for i in items] == [("viewer-request", version_arn)]
    edge_backout = Backout(target, edge_ledger, change_ticket="CHG-EDGE-B", apply=True)
    edge_backout.apply()
    behaviour = cf.get_distribution_config(Id=distribution)["DistributionConfig"]["DefaultCacheBehavior"]
    assert not behaviour["LambdaFunctionAssociations"].get("Items")
    assert bool(lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == seeded_env) is True


# -- the library is the gate ---------------------------------------------------------------------------
def test_apply_is_refused_unless_built_with_apply_true_and_nothing_changes(world):
    impl = make(world, apply=False)  # a ticket, but a plan-only object
    before, ledger_before = world.state(), world.ledger.path.read_text()
    with pytest.raises(InputError) as refused:
        impl.apply()
    message = str(refused.value)
    assert message.startswith("apply: this Implementation was built with apply=False (plan only)")
    assert "nothing was changed" in message and len(message.splitlines()) == 1
    assert world.state() == before and world.ledger.path.read_text() == ledger_before


# -- crash windows and adoption --------------------------------------------------------------------------
@contextlib.contextmanager
def crash_after(module, name):
    """Inside the block, ``module.name`` does its AWS call, then dies before its caller writes the ledger."""
    real = getattr(module, name)

    def call_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise SystemExit("killed between the AWS call and the ledger write")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, call_then_die)
        yield


def tagged_secrets(world):
    listed = world.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return [s["ARN"] for s in listed if {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("function") == FUNCTION]


def test_a_rerun_after_a_crash_after_create_secret_records_that_secret_and_makes_no_second(world):
    from runbook_lib import secrets_store
    with crash_after(secrets_store, "create_secret"), pytest.raises(SystemExit):
        make(world).apply()
    [orphan] = tagged_secrets(world)
    ledger = Ledger.open(world.run_dir)
    assert ledger.secret() is None and [i.creates for i in ledger.pending_intents()] == ["secret"]
    assert ledger.lock_holder() is None, "an exception unwinds the locks (only a kill leaves them)"
    impl = make(world)
    assert [(r.step, r.action, r.resource) for r in impl.plan() if r.step == "reconcile"] == [
        ("reconcile", "adopt", orphan)]
    impl.apply()
    assert tagged_secrets(world) == [orphan], "reconciled by its token, not made again"
    assert world.ledger.secret().resource == orphan and world.ledger.secret().action == "created"
    assert world.ledger.pending_intents() == [] and {c.status for c in impl.checks()} == {"PASS"}


def test_a_fresh_run_adopts_what_an_earlier_run_left_with_what_backout_needs(world, tmp_path):
    from runbook_lib import iam as iam_lib
    from runbook_lib.backout import Backout
    from runbook_lib.records import Policy, PolicyAttachment, Secret
    # the earlier run made the secret, the policy and its attachment, then died
    with crash_after(iam_lib, "attach"), pytest.raises(SystemExit):
        make(world).apply()
    fresh = Ledger.open(tmp_path / "fresh-run")  # its run folder is lost: a new run starts from nothing
    fresh.set_baseline(findings=world.ledger.baseline["findings"])
    impl = Implementation(world.target, fresh, function_name=FUNCTION, change_ticket="CHG-2", apply=True,
                          fingerprinter=world.fingerprinter)
    adopted = {(r.step, r.resource.rsplit(":", 1)[-1].split("|")[0]) for r in impl.plan() if r.action == "adopt"}
    assert adopted == {("secret", world.ledger.secret().resource.rsplit(":", 1)[-1]),
                       ("policy", "policy/LambdaSecretsManagerPolicy-orders-api"), ("policy", "orders-api-role")}
    impl.apply()
    secret, policy = fresh.secret(), fresh.latest(Policy)
    assert (secret.action, secret.name, sorted(secret.variables), secret.kms_key) == (
        "adopted", "lambda/orders-api/config", sorted(SECRET_VARS), "aws/secretsmanager")
    assert (policy.action, policy.secret) == ("adopted", secret.resource)
    assert fresh.latest(PolicyAttachment).action == "adopted"
    backout = Backout(world.target, fresh, change_ticket="CHG-3", apply=True)
    backout.apply()
    assert {c.id: c.status for c in backout.checks(invoke=False)} == {
        "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
    assert world.client("secretsmanager").describe_secret(SecretId=secret.resource).get("DeletedDate")
    assert not [p for p in world.client("iam").list_policies(Scope="Local")["Policies"]
                if p["PolicyName"] == "LambdaSecretsManagerPolicy-orders-api"]
    assert len(fresh.records(Secret)) == 1


def test_the_ledger_records_which_fields_the_change_sets(world):
    from runbook_lib.records import FunctionConfig
    make(world).apply()
    assert world.ledger.latest(FunctionConfig, FUNCTION).changed_fields == ["Environment", "Handler", "code"]
    make(world, role_mode="dedicated", change_ticket="CHG-2").apply()
    assert world.ledger.latest(FunctionConfig, FUNCTION).changed_fields == ["Environment", "Handler", "Role", "code"]
