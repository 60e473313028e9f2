"""The operator policies: valid IAM JSON, cover what the code needs, and really suffice.

The lab test runs the whole runbook (test plan, implementation, validation, backout)
through the same library calls the notebooks make, with IAM enforcement on, as two IAM
users holding only ``policies/auditor.json`` and ``policies/implementer.json``; then it
takes single statements away and checks the error names the call, the resource and the
permission.
"""

import contextlib
import json

import boto3
import botocore.exceptions
import pytest

from runbook_lib import policies
from runbook_lib.checks import CheckLog
from runbook_lib.context import NotebookContext
from runbook_lib.exceptions import AwsCallError, InputError
from runbook_lib.ledger import Ledger
from runbook_lib.session import Target

ALLOWED_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
#: Calls the runbook makes that a shipped policy denies on purpose (policies.OPTIONAL). None in the
#: enforced lab run: the live probe follows the role's trust policy, and orders-api-role trusts
#: only Lambda, so validation does not try the sts:AssumeRole the auditor lacks.
EXPECTED_DENIALS: set = set()


# -- the documents --------------------------------------------------------------------------------
@pytest.mark.parametrize("part", policies.PARTS)
def test_policy_is_valid_iam_json(part):
    document = policies.load_policy(part)
    assert document["Version"] == "2012-10-17"
    sids = [s.get("Sid") for s in policies.statements(document)]
    assert all(sids) and len(set(sids)) == len(sids), "every statement needs a unique Sid"
    for statement in policies.statements(document):
        assert set(statement) <= ALLOWED_KEYS, statement["Sid"]
        assert statement["Effect"] == "Allow" and statement.get("Action") and statement.get("Resource")
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(":" in a and a == a.strip() for a in actions), statement["Sid"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r == "*" or r.startswith("arn:aws:") for r in resources), statement["Sid"]
    # a managed policy holds at most 6,144 characters, whitespace aside
    assert len("".join(policies.policy_path(part).read_text().split())) < 6144


@pytest.mark.parametrize("part", policies.PARTS)
def test_policy_covers_every_action_the_code_needs(part):
    needed = policies.required_actions(part)
    assert len(needed) > 15
    assert policies.uncovered_actions(policies.load_policy(part), needed) == []


def test_required_actions_come_from_the_steps_and_the_calls():
    implementer = set(policies.required_actions("implementer"))
    assert {"iam:CreatePolicy", "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
            "lambda:TagResource", "iam:DetachRolePolicy"} <= implementer
    auditor = set(policies.required_actions("auditor"))
    assert {"lambda:GetFunction", "cloudtrail:LookupEvents", "logs:FilterLogEvents"} <= auditor
    assert "sts:AssumeRole" in policies.required_actions("auditor", include_optional=True)
    assert "sts:AssumeRole" not in auditor


def test_uncovered_actions_reports_what_is_missing():
    document = policies.without_statement(policies.load_policy("implementer"), "TheRunbookPolicy")
    missing = policies.uncovered_actions(document, policies.required_actions("implementer"))
    assert "iam:CreatePolicy" in missing and "iam:DeletePolicy" in missing
    assert policies.uncovered_actions({"Statement": [{"Effect": "Allow", "Action": "lambda:Get*"}]},
                                      ["lambda:GetFunction", "lambda:EnableReplication*"]) == \
        ["lambda:EnableReplication*"]


def test_auditor_is_read_only():
    assert policies.non_read_actions(policies.load_policy("auditor")) == []
    assert policies.non_read_actions(policies.load_policy("implementer"))  # the check can fail


def test_implementer_is_scoped_by_name_prefixes():
    by_sid = {s["Sid"]: s for s in policies.statements(policies.load_policy("implementer"))}
    assert by_sid["SecretsUnderTheRunbookPrefix"]["Resource"] == "arn:aws:secretsmanager:*:*:secret:lambda/*"
    assert by_sid["TheRunbookPolicy"]["Resource"] == "arn:aws:iam::*:policy/LambdaSecretsManagerPolicy-*"
    assert by_sid["DedicatedRoleUnderTheRunbookPrefix"]["Resource"] == "arn:aws:iam::*:role/LambdaSecretsRunbook-*"
    # attaching any other managed policy to a role (privilege escalation) is not allowed
    assert by_sid["AttachOnlyTheRunbookPolicy"]["Condition"]["ArnLike"]["iam:PolicyARN"].endswith(
        "policy/LambdaSecretsManagerPolicy-*")
    for sid in ("ManageRunbookKeys", "RemoveRunbookFunctions"):
        assert by_sid[sid]["Condition"]["StringEquals"]["aws:ResourceTag/managed-by"] == "lambda-secrets-runbook"


def test_unknown_part_is_an_input_error():
    with pytest.raises(InputError, match="part"):
        policies.load_policy("admin")
    with pytest.raises(KeyError):
        policies.without_statement(policies.load_policy("auditor"), "NoSuchSid")


# -- the lab, IAM enforced, as users holding only these policies ------------------------------------
class Operators:
    """The two operator users of an enforcing lab, and a way to change what they hold."""

    def __init__(self, lab):
        self.lab, self.iam = lab, lab.client("iam")
        self.sessions, self.attached = {}, {}
        for part in policies.PARTS:
            user = f"runbook-{part}"
            self.iam.create_user(UserName=user)
            self.attached[part] = self._attach(user, f"runbook-{part}", policies.load_policy(part))
            key = self.iam.create_access_key(UserName=user)["AccessKey"]
            self.sessions[part] = boto3.Session(aws_access_key_id=key["AccessKeyId"],
                                                aws_secret_access_key=key["SecretAccessKey"],
                                                region_name=lab.region)

    def _attach(self, user, name, document):
        arn = self.iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        self.iam.attach_user_policy(UserName=user, PolicyArn=arn)
        return arn

    def target(self, part):
        return Target.from_parameters("lab", region=self.lab.region, endpoint_url=self.lab.endpoint_url,
                                      session=self.sessions[part])

    @contextlib.contextmanager
    def without(self, part, sid):
        """``part``'s user holds its policy minus statement ``sid`` inside the block."""
        user = f"runbook-{part}"
        self.iam.detach_user_policy(UserName=user, PolicyArn=self.attached[part])
        reduced = self._attach(user, f"runbook-{part}-without-{sid}",
                               policies.without_statement(policies.load_policy(part), sid))
        try:
            yield
        finally:
            self.iam.detach_user_policy(UserName=user, PolicyArn=reduced)
            self.iam.attach_user_policy(UserName=user, PolicyArn=self.attached[part])


@pytest.fixture(scope="module")
def enforcing_lab():
    from runbook_lib.lab import Lab

    with Lab(seed=True, enforce_iam=True) as running:
        yield running, Operators(running)


def _context(operators, part, run_dir, notebook, phase, function_name, create=True):
    """What ``start_notebook`` builds, with the operator user's session instead of the environment."""
    target = operators.target(part)
    identity = target.caller_identity()
    ledger = Ledger.open(run_dir, create=create)
    ledger.bind(target="lab", account=identity["account"], region=target.region, function_name=function_name)
    return NotebookContext(notebook, phase, target, identity, run_dir, ledger, CheckLog(run_dir, notebook, phase))


def _errors_by_runbook_users(lab):
    out = []
    for page in lab.client("cloudtrail").get_paginator("lookup_events").paginate():
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            user = (record.get("userIdentity") or {}).get("userName", "")
            if user.startswith("runbook-") and record.get("errorCode"):
                out.append((user, record["eventName"], record["errorCode"]))
    return out


def test_whole_runbook_runs_as_auditor_and_implementer_with_iam_enforced(enforcing_lab, tmp_path):
    from runbook_lib.audit import Audit, baseline_invocation
    from runbook_lib.backout import Backout
    from runbook_lib.implementation import Implementation
    from runbook_lib.validation import Validation

    lab, operators = enforcing_lab
    assert lab.health()["enforce_iam"] is True
    name = lab.seed_info["function_name"]
    run_dir = tmp_path / "run"

    ctx = _context(operators, "auditor", run_dir, "01_test_plan", "baseline", name)
    assert ctx.identity["arn"].endswith(":user/runbook-auditor")
    result = Audit(ctx.target, regions=[ctx.target.region]).run()
    assert baseline_invocation(ctx.target, name, ctx.ledger)["baseline_status"] == "ok"
    result.write(run_dir)
    result.record(ctx.ledger, name)
    audit_checks = {c.id: c.status for c in result.checks()}
    assert audit_checks["audit-coverage-complete"] == "PASS"
    assert audit_checks["no-secrets-in-environment"] == "FAIL"  # the seeded baseline, found

    ctx = _context(operators, "implementer", run_dir, "02_implementation", "change", name)
    impl = Implementation(ctx.target, ctx.ledger, function_name=name, change_ticket="CHG-IAM", apply=True)
    impl.apply()
    assert {c.status for c in impl.checks()} == {"PASS"}

    ctx = _context(operators, "auditor", run_dir, "03_functional_validation", "validation", name)
    validation = Validation(ctx.target, ctx.ledger, run_dir, function_name=name)
    validation.invoke()
    validation.collect()
    checks = {c.id: c for c in validation.run_checks()}
    failed = {cid: c.reason for cid, c in checks.items() if c.status == "FAIL"}
    assert failed == {}
    # the auditor may use the policy simulator (the lab's, from its own evaluation); the role trusts only Lambda
    assert checks["least-privilege"].status == "PASS" and "policy simulator" in checks["least-privilege"].reason
    assert checks["no-secret-in-logs"].status == "PASS" and checks["exposed-credentials-rotated"].status == "WARN"

    ctx = _context(operators, "implementer", run_dir, "04_backout", "backout", name, create=False)
    # as the backout notebook does by default: the restored code needs the key the change deactivated
    backout = Backout(ctx.target, ctx.ledger, change_ticket="CHG-IAM-B", apply=True, reactivate_access_keys=True)
    backout.apply()
    assert {c.id: c.status for c in backout.checks()} == {
        "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}

    denied = {(u, op) for u, op, code in _errors_by_runbook_users(lab) if "Denied" in code}
    assert denied == EXPECTED_DENIALS


def _fresh_implementation(operators, tmp_path, lab):
    from runbook_lib.implementation import Implementation

    name = lab.seed_info["function_name"]
    ctx = _context(operators, "implementer", tmp_path / "reduced", "02_implementation", "change", name)
    return Implementation(ctx.target, ctx.ledger, function_name=name, change_ticket="CHG-R", apply=True)


@pytest.mark.parametrize("sid, operation, resource, permission", [
    ("ReadAndChangeTheFunction", "GetFunctionConfiguration", "orders-api", "lambda:GetFunctionConfiguration"),
    ("SecretsUnderTheRunbookPrefix", "DescribeSecret", "lambda/orders-api/config", "secretsmanager:DescribeSecret"),
    ("TheRunbookPolicy", "GetPolicy", "policy/LambdaSecretsManagerPolicy-orders-api", "iam:GetPolicy"),
])
def test_implementer_without_one_statement_gets_a_named_permission_error(enforcing_lab, tmp_path, sid,
                                                                         operation, resource, permission):
    lab, operators = enforcing_lab
    with operators.without("implementer", sid):
        with pytest.raises(AwsCallError) as caught:
            _fresh_implementation(operators, tmp_path, lab).plan()
    error = caught.value
    assert (error.operation, error.permission, error.access_denied) == (operation, permission, True)
    assert resource in error.resource
    assert f"{operation} on " in str(error) and f"(needs {permission})" in str(error)
    assert len(str(error).splitlines()) == 1


def test_auditor_without_invoke_records_the_named_denial_as_baseline_status(enforcing_lab, tmp_path):
    from runbook_lib.audit import baseline_invocation

    lab, operators = enforcing_lab
    name = lab.seed_info["function_name"]
    ctx = _context(operators, "auditor", tmp_path / "reduced", "01_test_plan", "baseline", name)
    with operators.without("auditor", "InvokeForBaselineAndValidation"):
        status = baseline_invocation(ctx.target, name, ctx.ledger)["baseline_status"]
    assert status.startswith(f"not-invoked: Invoke on {name} failed: AccessDenied")
    assert "(needs lambda:InvokeFunction)" in status
    assert ctx.ledger.baseline["baseline_status"] == status


def test_auditor_without_code_reads_reports_the_gap_by_permission(enforcing_lab):
    from runbook_lib.audit import Audit

    lab, operators = enforcing_lab
    with operators.without("auditor", "ReadFunctionsAndTheirCode"):
        result = Audit(operators.target("auditor"), regions=[lab.region]).run()
    checks = {c.id: c for c in result.checks()}
    coverage = checks["audit-coverage-complete"]
    assert coverage.status != "PASS"
    text = json.dumps(result.coverage.to_dict("records")) + coverage.reason
    assert "lambda:GetFunction" in text


# -- what the lab's IAM enforcement needed to evaluate these policies ----------------------------------
def _call(service, operation, params):
    from runbook_lib.lab.operations import ApiCall

    return ApiCall(service, operation, params, "us-east-1")


def test_lab_authorises_lambda_tag_calls_on_the_function_arn():
    from runbook_lib.lab import iam_enforcement

    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    for operation in ("ListTags", "TagResource", "UntagResource"):
        assert iam_enforcement.resources_for(_call("lambda", operation, {"Resource": arn}), "123456789012") == [arn]


def test_lab_authorises_simulate_principal_policy_on_the_principal():
    from runbook_lib.lab import iam_enforcement

    role = "arn:aws:iam::123456789012:role/orders-api-role"
    call = _call("iam", "SimulatePrincipalPolicy", {"PolicySourceArn": role})
    assert iam_enforcement.resources_for(call, "123456789012") == [role]


def test_lab_evaluates_iam_policy_arn_condition_on_attach():
    from runbook_lib.lab import iam_enforcement
    from runbook_lib.lab.identity import IAM_USER, Caller

    caller = Caller(IAM_USER, "arn:aws:iam::123456789012:user/runbook-implementer", "123456789012",
                    "AKIAEXAMPLE", "AIDAEXAMPLE", "runbook-implementer")
    statement = next(s for s in policies.statements(policies.load_policy("implementer"))
                     if s["Sid"] == "AttachOnlyTheRunbookPolicy")
    role = "arn:aws:iam::123456789012:role/orders-api-role"
    verdicts = {}
    for policy in ("LambdaSecretsManagerPolicy-orders-api", "AdministratorAccess"):
        call = _call("iam", "AttachRolePolicy", {"RoleName": "orders-api-role",
                                                 "PolicyArn": f"arn:aws:iam::123456789012:policy/{policy}"})
        context = iam_enforcement.request_context(caller, call)
        verdicts[policy] = iam_enforcement.evaluate([{"Statement": [statement]}], "iam:AttachRolePolicy", role,
                                                    context)
    assert verdicts == {"LambdaSecretsManagerPolicy-orders-api": "Allow", "AdministratorAccess": "Neutral"}


def test_lab_authorises_qualified_lambda_calls_on_the_qualified_arn():
    from runbook_lib.lab import iam_enforcement

    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    resolve = iam_enforcement.resources_for
    assert resolve(_call("lambda", "DeleteFunction", {"FunctionName": "orders-api"}), "123456789012") == [arn]
    assert resolve(_call("lambda", "DeleteFunction", {"FunctionName": "orders-api", "Qualifier": "3"}),
                   "123456789012") == [f"{arn}:3"]
    assert resolve(_call("lambda", "GetFunction", {"FunctionName": f"{arn}:live"}), "123456789012") == [f"{arn}:live"]
    assert resolve(_call("lambda", "Invoke", {"FunctionName": "orders-api:2"}), "123456789012") == [f"{arn}:2"]


def test_implementer_deletes_a_published_version_but_never_the_function(enforcing_lab):
    """CloseOutDeletePublishedVersionsOnly: qualified ARNs only; the function stays."""
    lab, operators = enforcing_lab
    admin_lambda = lab.client("lambda")
    function = "inventory-sync"  # a seeded decoy the other tests leave alone
    version = admin_lambda.publish_version(FunctionName=function)["Version"]
    lam = operators.target("implementer").client("lambda")
    lam.delete_function(FunctionName=function, Qualifier=version)
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        lam.delete_function(FunctionName=function)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert admin_lambda.get_function(FunctionName=function)["Configuration"]["FunctionName"] == function
    versions = [v["Version"] for v in admin_lambda.list_versions_by_function(FunctionName=function)["Versions"]]
    assert version not in versions
