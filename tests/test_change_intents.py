"""Intents before creates, write-ahead records, and reconciliation by token and tag (moto in-process)."""

import json

import pytest

from moto_world import FUNCTION
from runbook_lib import functions, iam, secrets_store
from runbook_lib.change import finders
from runbook_lib.change.context import ChangeContext
from runbook_lib.change.intents import ReconcileStep, intent, made_nothing, write_ahead
from runbook_lib.exceptions import AwsCallError, ChangeRefused, LabError
from runbook_lib.records import Intent, PolicyAttachment, Secret
from runbook_lib.steps import ADOPT, NONE

TOKEN = "0b6c4c0e-7a51-5b8e-9b0e-3f8f1d2a4c11"


def refused(code="AccessDenied"):
    return AwsCallError("CreateSecret", "lambda/x", code, permission="secretsmanager:CreateSecret")


@pytest.mark.parametrize("exc, nothing", [
    (refused("AccessDenied"), True), (refused("ThrottlingException"), True), (refused("ResourceExistsException"), True),
    (refused("ReadTimeoutError"), False), (refused("ConnectionClosedError"), False),
    (refused("InternalServiceError"), False), (refused("ServiceUnavailable"), False),
    (LabError("cannot reach the lab"), False), (KeyboardInterrupt(), False),
])
def test_only_an_aws_refusal_proves_nothing_was_made(exc, nothing):
    assert made_nothing(exc) is nothing


def test_an_intent_is_written_before_the_call_and_resolved_after_it(tmp_path):
    from runbook_lib.ledger import Ledger
    ledger = Ledger.open(tmp_path)
    seen = []
    with intent(ledger, "secret", "lambda/f/config", TOKEN, "secret", {"variables": ["A"]}):
        seen = [(i.creates, i.name, i.token, i.details) for i in Ledger.open(tmp_path).pending_intents()]
    assert seen == [("secret", "lambda/f/config", TOKEN, {"variables": ["A"]})], "on disk before the call"
    [done] = ledger.records(Intent)
    assert ledger.pending_intents() == [] and done.undone.endswith("made and recorded (secret lambda/f/config)")


def test_a_refused_create_closes_its_intent_and_a_lost_answer_keeps_it(tmp_path):
    from runbook_lib.ledger import Ledger
    ledger = Ledger.open(tmp_path)
    with pytest.raises(AwsCallError):
        with intent(ledger, "secret", "a", TOKEN, "secret"):
            raise refused("AccessDenied")
    assert ledger.pending_intents() == []
    assert "nothing made: CreateSecret refused (AccessDenied)" in ledger.records(Intent)[0].undone
    for error in (refused("ReadTimeoutError"), SystemExit(9)):
        with pytest.raises(type(error)):
            with intent(ledger, "secret", "b", f"token-{type(error).__name__}", "secret"):
                raise error
    assert [i.name for i in Ledger.open(tmp_path).pending_intents()] == ["b", "b"]


def test_write_ahead_takes_a_refused_change_back(tmp_path):
    from runbook_lib.ledger import Ledger
    ledger = Ledger.open(tmp_path)
    first = PolicyAttachment(resource="role|arn:p", role="role", policy_arn="arn:p", step="policy")
    with write_ahead(ledger, first):
        assert ledger.latest(PolicyAttachment, "role|arn:p") == first
    with pytest.raises(AwsCallError):
        with write_ahead(ledger, first.replace(step="again")):
            raise refused()
    assert ledger.latest(PolicyAttachment, "role|arn:p").step == "policy", "the earlier record is back"
    other = PolicyAttachment(resource="role|arn:q", role="role", policy_arn="arn:q", step="policy")
    with pytest.raises(AwsCallError):
        with write_ahead(ledger, other):
            raise refused()
    assert ledger.latest(PolicyAttachment, "role|arn:q") is None
    assert "not made: CreateSecret refused (AccessDenied)" in ledger.records(PolicyAttachment)[-1].undone
    with pytest.raises(SystemExit):
        with write_ahead(ledger, other.replace(step="crash")):
            raise SystemExit(9)
    assert ledger.latest(PolicyAttachment, "role|arn:q").step == "crash", "a crash keeps the record"


# -- finders and the reconcile step -----------------------------------------------------------------
@pytest.fixture()
def ctx(world):
    return ChangeContext(world.target, world.ledger, FUNCTION, "CHG-1", fingerprinter=world.fingerprinter)


def pending(ctx, creates, name, token=TOKEN, **details):
    return ctx.ledger.put(Intent(resource=f"{creates}:{token}", step=creates, creates=creates, name=name,
                                 token=token, details=details))


def test_secret_found_by_name_tag_and_token_only(ctx):
    tags = secrets_store.runbook_tags(FUNCTION, "CHG-1")
    arn = secrets_store.create_secret(ctx.sm, "lambda/orders-api/config", {"A": "1"}, None, tags, TOKEN, "d")
    record = finders.find(ctx, pending(ctx, "secret", "lambda/orders-api/config", variables=["A"]))
    assert isinstance(record, Secret) and (record.resource, record.variables, record.action) == (arn, ["A"], "created")
    other = "1f0e0f6c-0000-5000-8000-000000000000"
    assert finders.find(ctx, pending(ctx, "secret", "lambda/orders-api/config", token=other)) is None
    secrets_store.create_secret(ctx.sm, "lambda/untagged", {"A": "1"}, None, {}, other, "d")
    assert finders.find(ctx, pending(ctx, "secret", "lambda/untagged", token=other)) is None
    assert finders.find(ctx, pending(ctx, "secret", "lambda/absent")) is None


def test_role_policy_key_versions_and_state_are_found(ctx):
    role_arn = iam.create_role(ctx.iam, "LambdaSecretsRunbook-orders-api", iam.trust_policy("123456789012", False),
                               ctx.tags, "d", iam.boundary_arn("aws", "123456789012"))
    assert finders.find(ctx, pending(ctx, "role", "LambdaSecretsRunbook-orders-api", previous_role="r")).resource == role_arn
    policy_arn = iam.create_policy(ctx.iam, "LambdaSecretsManagerPolicy-orders-api",
                                   iam.secret_read_policy("arn:aws:secretsmanager:us-east-1:123456789012:secret:s"),
                                   ctx.tags, "d")
    found = finders.find(ctx, pending(ctx, "policy", "LambdaSecretsManagerPolicy-orders-api", arn=policy_arn,
                                      secret="arn:s"))
    assert (found.resource, found.secret) == (policy_arn, "arn:s")
    key_arn = secrets_store.create_key(ctx.kms, "alias/x", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}]},
        {**ctx.tags, finders.TOKEN_TAG: TOKEN}, "d")
    assert finders.find(ctx, pending(ctx, "kms_key", "alias/x", role="r")).resource == key_arn
    assert finders.find(ctx, pending(ctx, "kms_key", "alias/x", token="another")) is None
    published = functions.publish_version(ctx.lam, FUNCTION, f"lambda-secrets-runbook snapshot {TOKEN} before CHG-1")
    snap = finders.find(ctx, pending(ctx, "snapshot", FUNCTION, moved_variables=["DB_PASSWORD"]))
    assert (snap.version, snap.moved_variables, snap.code_sha256) == (
        published["Version"], ["DB_PASSWORD"], published["CodeSha256"])
    assert finders.find(ctx, pending(ctx, "edge_version", FUNCTION)).version == published["Version"]
    assert finders.find(ctx, pending(ctx, "snapshot", FUNCTION, token="absent")) is None
    live = functions.state_marker(ctx.live())
    assert finders.find(ctx, pending(ctx, "function_state", FUNCTION, code_sha256=live["code_sha256"],
                                     handler=live["handler"])).code_sha256 == live["code_sha256"]
    assert finders.find(ctx, pending(ctx, "function_state", FUNCTION, handler="other.handler")) is None


def test_reconcile_plans_without_writing_then_records_and_resolves(ctx):
    step = ReconcileStep(ctx)
    assert not step.pending() and [r.reason for r in step.plan()] == ["no interrupted create in the ledger"]
    tags = secrets_store.runbook_tags(FUNCTION, "CHG-1")
    arn = secrets_store.create_secret(ctx.sm, "lambda/orders-api/config", {"A": "1"}, None, tags, TOKEN, "d")
    pending(ctx, "secret", "lambda/orders-api/config", variables=["A"])
    pending(ctx, "role", "LambdaSecretsRunbook-orders-api", token="t2")
    before = json.loads(ctx.ledger.path.read_text())
    rows = {r.action: r for r in step.plan()}
    assert rows[ADOPT].resource == arn and "made " + arn in rows[ADOPT].reason
    assert rows[NONE].resource == "LambdaSecretsRunbook-orders-api" and "made nothing" in rows[NONE].reason
    assert json.loads(ctx.ledger.path.read_text()) == before, "a plan writes nothing"
    with pytest.raises(ChangeRefused, match="2 interrupted create"):
        step.verify()
    step.apply()
    assert ctx.ledger.secret().resource == arn and ctx.ledger.pending_intents() == []
    assert step.verify() == "2 interrupted create(s) reconciled"
    undone = sorted(i.undone.split(" ", 1)[1] for i in ctx.ledger.records(Intent))
    assert undone == [f"reconciled: found {arn} (token {TOKEN})", "reconciled: nothing was made"]
