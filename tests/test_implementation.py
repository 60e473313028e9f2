"""Implementation steps against moto in-process: plan, apply, re-run, failure and resume, bad input.

Most tests here drive strategy ``reference`` on the world's function (its code holds hardcoded
keys, like the lab's demo); strategy ``wrapper`` and ``package`` have tests of their own below
and in ``test_implementation_lab.py``.

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
    kw.setdefault("strategy", "reference")
    return Implementation(world.target, world.ledger, function_name=FUNCTION,
                          fingerprinter=world.fingerprinter, **kw)


def test_plan_only_changes_nothing(world):
    before = world.state()
    rows = make(world, change_ticket="").plan()
    assert before == world.state()
    actions = {r.step: r.action for r in rows}
    assert actions["snapshot"] == "create" and actions["secret"] == "create" and actions["grant"] == "create"
    assert actions["function"] == "update" and actions["access-keys"] == "update"
    assert "wrapper-layer" not in actions and actions["code"] == "none"  # the reference handler replaces the code
    assert world.ledger.records() == []


def test_apply_moves_secrets_scopes_policy_deploys_handler_and_deactivates_key(world):
    impl = make(world)
    results = impl.apply()
    assert {r.step: r.status for r in results} == {
        "snapshot": "applied", "secret": "applied", "grant": "applied", "function": "applied",
        "code": "unchanged", "access-keys": "applied"}  # the code step changes nothing in AWS
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
    # the grant: the secret's resource policy, pinned to the function's role session; no identity policy
    role = iam.get_role(RoleName="orders-api-role")["Role"]
    doc = json.loads(sm.get_resource_policy(SecretId=secret["ARN"])["ResourcePolicy"])
    userid = f"{role['RoleId']}:{FUNCTION}"
    assert doc["Statement"] == [
        {"Sid": "LambdaSecretsRunbookReadByFunction", "Effect": "Allow", "Principal": {"AWS": role["Arn"]},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": userid}}},
        {"Sid": "LambdaSecretsRunbookOnlyThisFunction", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": role["Arn"]}, "StringNotEquals": {"aws:userid": userid}}}]
    assert iam.list_attached_role_policies(RoleName="orders-api-role")["AttachedPolicies"] == []
    # no identity policy created: the only customer managed policy is the administrator's role boundary
    assert [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]] == ["LambdaSecretsRunbookRoleBoundary"]
    # hardcoded key deactivated (lab target), the other user's key untouched
    assert [k["Status"] for k in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]] == ["Inactive"]
    assert [k["Status"] for k in iam.list_access_keys(UserName="someone-else")["AccessKeyMetadata"]] == ["Active"]
    # ledger: snapshot with names only, never a value
    snap = world.ledger.snapshot(FUNCTION)
    assert sorted(snap.moved_variables) == sorted(SECRET_VARS)
    text = world.ledger.path.read_text()
    assert bool(any(world.env[k] in text for k in SECRET_VARS) or world.key_id in text) is False
    kinds = {e.kind for e in world.ledger.records()}
    assert {"snapshot", "secret", "secret_policy", "function_config", "function_code",
            "function_state", "access_key"} <= kinds and not {"policy", "policy_attachment"} & kinds
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


def test_access_denied_at_put_resource_policy_leaves_an_exact_ledger_and_rerun_completes(world):
    sm = world.client("secretsmanager")

    def deny(**kwargs):
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutResourcePolicy")
    sm.meta.events.register("before-call.secretsmanager.PutResourcePolicy", deny)
    with pytest.raises(AwsCallError) as info:
        make(world).apply()
    assert info.value.code == "AccessDeniedException" and "secretsmanager:PutResourcePolicy" in str(info.value)
    ledger = Ledger.open(world.run_dir)  # re-read from disk: what another process would see
    assert {r.kind for r in ledger.records(active_only=True)} == {"snapshot", "secret"}
    assert ledger.pending_intents() == [], "AWS refused PutResourcePolicy: nothing to reconcile"
    assert world.client("secretsmanager").describe_secret(SecretId=ledger.secret().resource)
    assert any("apply stopped: PutResourcePolicy" in e["message"] for e in ledger.doc["events"])
    assert "lambda-secrets-runbook-lock" not in world.client("lambda").list_tags(
        Resource=world.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"])["Tags"]
    sm.meta.events.unregister("before-call.secretsmanager.PutResourcePolicy", deny)
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
        make(world, code_path=str(not_zip), strategy="auto")
    wrong = tmp_path / "wrong.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", "def handler(e, c): pass\n")
    wrong.write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="lacks the handler module app.py"):
        make(world, code_path=str(wrong), strategy="package")
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
    impl = make(world, code_path=str(package), strategy="auto")
    assert impl.strategy.name == "package"
    impl.apply()
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
    assert set(inline) == {"basic-logging", "copied-orders-read", "deny-other-secrets"}
    # the old role is left as it was: nothing attached to it
    assert iam.list_attached_role_policies(RoleName="orders-api-role")["AttachedPolicies"] == []
    key_arn = world.ledger.latest(KmsKey).resource
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    decrypt = policy["Statement"][1]
    assert decrypt["Principal"] == {"AWS": role["Arn"]} and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:CallerAccount": "123456789012",
        "aws:userid": f"{role['RoleId']}:{FUNCTION}"}
    assert decrypt["Condition"]["StringLike"] == {
        "kms:EncryptionContext:SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
                                           "lambda/orders-api/config-??????"}
    secret = sm.describe_secret(SecretId="lambda/orders-api/config")
    assert kms.describe_key(KeyId=secret["KmsKeyId"])["KeyMetadata"]["Arn"] == key_arn
    grant = json.loads(sm.get_resource_policy(SecretId=secret["ARN"])["ResourcePolicy"])["Statement"][0]
    assert grant["Principal"] == {"AWS": role["Arn"]}
    assert grant["Condition"]["StringEquals"]["aws:userid"] == f"{role['RoleId']}:{FUNCTION}"
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
    assert {"secretsmanager:PutResourcePolicy", "secretsmanager:CreateSecret", "lambda:UpdateFunctionConfiguration",
            "lambda:PublishVersion", "iam:UpdateAccessKey"} <= set(perms)
    assert not {"iam:CreatePolicy", "iam:AttachRolePolicy"} & set(perms), "no identity policy, nothing attached"
    assert "lambda:ListFunctions" not in perms, "the overview lists the role's functions only where it may"
    assert {"lambda:PublishLayerVersion", "lambda:ListLayerVersions"} <= set(make(world, strategy="wrapper",
                                                                                   apply=False).permissions())


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

    impl = Implementation(target, ledger, function_name=name, change_ticket="CHG-LAB", apply=True,
                          strategy=own_lab.seed_info["strategy"])
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
    assert {r.action for r in Implementation(target, ledger, function_name=name, strategy="reference").plan()} \
        == {"none"}

    backout = Backout(target, ledger, change_ticket="CHG-LAB-B", apply=True)
    backout.apply()
    restored = lam.get_function_configuration(FunctionName=name)
    assert restored["CodeSha256"] == seeded["CodeSha256"] and restored["Handler"] == seeded["Handler"]
    assert bool(restored["Environment"]["Variables"] == seeded_env) is True
    assert {c.status for c in backout.checks(invoke=False)} == {"PASS"}

    # Lambda@Edge: dedicated role (trusts edgelambda), no environment variables, viewer-request
    distribution = own_lab.seed_info["distribution_id"]
    edge_ledger = Ledger.open(tmp_path / "edge-run")
    edge_impl = Implementation(target, edge_ledger, function_name=name, role_mode="dedicated", strategy="reference",
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
    from runbook_lib import secret_grant
    from runbook_lib.backout import Backout
    from runbook_lib.records import Secret, SecretPolicy
    # the earlier run made the secret and put its resource policy, then died
    with crash_after(secret_grant, "put_resource_policy"), pytest.raises(SystemExit):
        make(world).apply()
    fresh = Ledger.open(tmp_path / "fresh-run")  # its run folder is lost: a new run starts from nothing
    fresh.set_baseline(findings=world.ledger.baseline["findings"])
    impl = Implementation(world.target, fresh, function_name=FUNCTION, change_ticket="CHG-2", apply=True,
                          fingerprinter=world.fingerprinter, strategy="reference")
    secret_arn = world.ledger.secret().resource
    adopted = {(r.step, r.resource) for r in impl.plan() if r.action == "adopt"}
    assert adopted == {("secret", secret_arn), ("grant", secret_arn)}
    impl.apply()
    secret, grant = fresh.secret(), fresh.latest(SecretPolicy)
    assert (secret.action, secret.name, sorted(secret.variables), secret.kms_key) == (
        "adopted", "lambda/orders-api/config", sorted(SECRET_VARS), "aws/secretsmanager")
    assert (grant.action, grant.resource, grant.function) == ("adopted", secret.resource, FUNCTION)
    backout = Backout(world.target, fresh, change_ticket="CHG-3", apply=True)
    backout.apply()
    assert {c.id: c.status for c in backout.checks(invoke=False)} == {
        "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
    sm = world.client("secretsmanager")
    assert sm.describe_secret(SecretId=secret.resource).get("DeletedDate")
    assert len(fresh.records(Secret)) == 1


def test_the_ledger_records_which_fields_the_change_sets(world):
    from runbook_lib.records import FunctionConfig
    make(world).apply()
    assert world.ledger.latest(FunctionConfig, FUNCTION).changed_fields == ["Environment", "Handler", "code"]
    make(world, role_mode="dedicated", change_ticket="CHG-2").apply()
    assert world.ledger.latest(FunctionConfig, FUNCTION).changed_fields == ["Environment", "Handler", "Role", "code"]


# -- strategy wrapper, shared and dedicated roles, named keys (moto) ------------------------------------
def test_wrapper_keeps_the_code_and_shows_hardcoded_secrets_as_a_blocked_advisory_with_file_and_line(world):
    lam = world.client("lambda")
    before = lam.get_function_configuration(FunctionName=FUNCTION)
    impl = make(world, strategy="wrapper")
    rows = {r.step: r for r in impl.plan()}
    assert rows["code"].action == "blocked" and rows["code"].advisory and ".py:" in (rows["code"].resource + rows["code"].reason)
    assert rows["wrapper-layer"].action == "create" and rows["grant"].action == "create"
    impl.apply()  # the advisory blocks nothing else
    after = lam.get_function_configuration(FunctionName=FUNCTION)
    assert after["CodeSha256"] == before["CodeSha256"]
    env = after["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/lambda-secrets-runbook/exec-wrapper"
    assert not set(SECRET_VARS) & set(env)
    assert [layer["Arn"].split(":")[6] for layer in after["Layers"]] == [f"lambda-secrets-runbook-wrapper-{FUNCTION}"]


def test_wrapper_with_five_layers_already_is_one_line_and_nothing_changes(world):
    lam = world.client("lambda")
    arns = [lam.publish_layer_version(LayerName=f"team-layer-{i}", Content={"ZipFile": world.code})["LayerVersionArn"]
            for i in range(5)]
    lam.update_function_configuration(FunctionName=FUNCTION, Layers=arns)
    before = world.state()
    with pytest.raises(InputError) as raised:
        make(world, strategy="wrapper").plan()
    assert "5 layers, Lambda's limit of 5" in str(raised.value) and "\n" not in str(raised.value)
    assert world.state() == before


def test_the_plan_names_every_function_on_the_execution_role(world):
    lam = world.client("lambda")
    role = lam.get_function_configuration(FunctionName=FUNCTION)["Role"]
    lam.create_function(FunctionName="billing-api", Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": world.code})
    text = "\n".join(f"{r.step} {r.resource} {r.action} {r.reason}" for r in make(world).plan())
    assert "billing-api" in text


def test_dedicated_role_drops_another_functions_secret_and_says_so(world):
    iam = world.client("iam")
    theirs = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:lambda/billing-api/config-XyZ123"
    iam.put_role_policy(RoleName="orders-api-role", PolicyName="billing-secret", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                 "Resource": theirs}]}))
    impl = make(world, role_mode="dedicated")
    text = "\n".join(f"{r.step} {r.resource} {r.action} {r.reason}" for r in impl.plan())
    assert "billing-secret: statement 1 dropped" in text
    impl.apply()
    role = world.client("lambda").get_function_configuration(FunctionName=FUNCTION)["Role"].rsplit("/", 1)[1]
    documents = [json.dumps(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
                 for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
    assert not [d for d in documents if theirs in d and '"Allow"' in d]


def test_a_named_key_that_does_not_let_the_function_decrypt_blocks_the_grant(world):
    kms = world.client("kms")
    key = kms.create_key(Description="team key")["KeyMetadata"]["Arn"]  # default policy: the account's IAM decides
    before = world.state()
    rows = {r.step: r for r in make(world, kms_key=key, apply=False, change_ticket="").plan()}
    assert rows["grant"].action == "blocked" and "does not let" in rows["grant"].reason
    assert "\n" not in rows["grant"].reason and world.state() == before
