"""The operator policies: valid IAM JSON, cover what the code needs, lint clean, and really suffice.

The lab test runs the whole runbook (test plan, implementation, validation, backout, then a
second implementation and its close-out) through the same library calls the notebooks make,
with IAM enforcement on, as two IAM users holding only the ``auditor`` and ``implementer``
policies, after an administrator approved the function and attached the per-change grant;
then it takes single statements away and checks the error names the call, the resource and
the permission. ``tests/test_escalation.py`` is the other side: what the policies refuse.
"""

import json
import warnings

import botocore.exceptions
import pytest

from runbook_lib import policies
from runbook_lib.checks import CheckLog
from runbook_lib.context import NotebookContext
from runbook_lib.exceptions import AwsCallError, InputError
from runbook_lib.ledger import Ledger
from tests.operators import Operators, errors_by, unevaluated_in_policies

ALLOWED_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
#: Calls the runbook makes that a shipped policy denies on purpose (policies.OPTIONAL). None in the
#: enforced lab run: the live probe follows the role's trust policy, and orders-api-role trusts
#: only Lambda, so validation does not try the sts:AssumeRole the auditor lacks.
EXPECTED_DENIALS: set = set()


# -- the documents --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", policies.SHIPPED)
def test_policy_is_valid_iam_json(name):
    document = policies.load_document(name)
    assert document["Version"] == "2012-10-17"
    sids = [s.get("Sid") for s in policies.statements(document)]
    assert all(sids) and len(set(sids)) == len(sids), "every statement needs a unique Sid"
    for statement in policies.statements(document):
        assert set(statement) <= ALLOWED_KEYS, statement["Sid"]
        assert statement["Effect"] in ("Allow", "Deny") and statement.get("Action") and statement.get("Resource")
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(":" in a and a == a.strip() for a in actions), statement["Sid"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r == "*" or r.startswith("arn:aws:") for r in resources), statement["Sid"]
    # a managed policy holds at most 6,144 characters, whitespace aside
    assert len("".join(policies.policy_path(name).read_text().split())) < 6144


def test_the_parts_union_their_files_and_unknown_names_are_input_errors():
    implementer = policies.load_policy("implementer")
    assert len(implementer["Statement"]) == sum(len(policies.statements(policies.load_document(n)))
                                                for n in policies.POLICY_FILES["implementer"])
    for bad in (lambda: policies.load_policy("admin"), lambda: policies.load_document("implementer-admin")):
        with pytest.raises(InputError, match="part"):
            bad()


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
    # what no standing policy holds is needed by the code, and left to the per-change grant
    every = set(policies.required_actions("implementer", include_optional=True))
    assert {"lambda:UpdateFunctionCode", "iam:UpdateAccessKey"} <= every - implementer


def test_uncovered_actions_reports_what_is_missing():
    document = policies.without_statement(policies.load_policy("implementer"), "CreateTheReadPolicy")
    missing = policies.uncovered_actions(document, policies.required_actions("implementer"))
    assert "iam:CreatePolicy" in missing and "iam:TagPolicy" in missing
    assert policies.uncovered_actions({"Statement": [{"Effect": "Allow", "Action": "lambda:Get*"}]},
                                      ["lambda:GetFunction", "lambda:EnableReplication*"]) == \
        ["lambda:EnableReplication*"]


def test_auditor_is_read_only():
    assert policies.non_read_actions(policies.load_policy("auditor")) == []
    assert policies.non_read_actions(policies.load_policy("implementer"))  # the check can fail


def test_auditor_reads_only_the_runbook_secrets_and_invokes_only_approved_functions():
    by_sid = {s["Sid"]: s for s in policies.statements(policies.load_policy("auditor"))}
    values = by_sid["ReadTheRunbookSecretValues"]
    assert values["Action"] == "secretsmanager:GetSecretValue"
    assert values["Condition"] == {"StringEquals": {"aws:ResourceTag/managed-by": "lambda-secrets-runbook"}}
    invoke = by_sid["InvokeApprovedFunctions"]
    assert invoke["Condition"] == {"StringEquals": {f"aws:ResourceTag/{policies.APPROVAL_TAG[0]}": "true"}}
    non_read = [(s["Sid"], a) for s in by_sid.values() for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                                 else s["Action"]) if a in policies.AUDITOR_NON_READ]
    assert sorted(non_read) == [("InvokeApprovedFunctions", "lambda:InvokeFunction"),
                                ("ReadTheRunbookSecretValues", "secretsmanager:GetSecretValue")]


@pytest.mark.parametrize("name", policies.SHIPPED)
def test_every_shipped_policy_is_lint_clean(name):
    assert policies.lint(policies.load_document(name)) == []


def test_the_parts_are_lint_clean_together():
    for part in policies.PARTS:
        assert policies.lint(policies.load_policy(part)) == []


@pytest.mark.parametrize("statement, rule", [
    ({"Action": "lambda:UpdateFunctionCode", "Resource": "*"}, "standing-grant"),
    ({"Action": "iam:Update*", "Resource": "*", "Condition": {"StringEquals": {"aws:TagKeys": "x"}}}, "standing-grant"),
    ({"Action": "iam:UpdateAccessKey", "Resource": "arn:aws:iam::*:user/*"}, "standing-grant"),
    ({"Action": "kms:TagResource", "Resource": "*"}, "tagging"),
    ({"Action": "lambda:TagResource", "Resource": "*",
      "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["lambda-secrets-runbook:*"]}}}, "tagging"),
    ({"Action": "iam:UntagRole", "Resource": "*", "Condition": {"StringEquals": {"aws:TagKeys": "a"}}}, "tagging"),
    ({"Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/x"}, "pass-role"),
    ({"Action": "iam:CreateRole", "Resource": "arn:aws:iam::*:role/LambdaSecretsRunbook-*"}, "unbounded-role"),
    ({"Action": "secretsmanager:DeleteSecret", "Resource": "arn:aws:secretsmanager:*:*:secret:*"}, "delete"),
    ({"Action": "kms:ScheduleKeyDeletion", "Resource": "*"}, "delete"),
])
def test_the_lint_finds_each_way_a_statement_can_be_abused(statement, rule):
    document = {"Statement": [{"Sid": "S", "Effect": "Allow", **statement}]}
    problems = policies.lint(document)
    assert {p.split(":", 1)[0] for p in problems} == {rule}, problems
    assert problems[0].startswith(f"{rule}: S: ") and rule in policies.LINT_RULES
    # the same statement as a Deny narrows, never widens: nothing to report
    assert policies.lint({"Statement": [{"Sid": "S", "Effect": "Deny", **statement}]}) == []


def test_the_lint_accepts_the_safe_forms_of_those_statements():
    document = {"Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": "lambda:TagResource", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [policies.LOCK_TAG_KEY]}}},
        {"Sid": "B", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Sid": "C", "Effect": "Allow", "Action": "lambda:DeleteLayerVersion",
         "Resource": "arn:aws:lambda:*:*:layer:lambda-secrets-runbook-*:*"},
        {"Sid": "D", "Effect": "Allow", "Action": "kms:DeleteAlias", "Resource": "arn:aws:kms:*:*:key/*"},
        {"Sid": "E", "Effect": "Deny", "Action": "kms:DeleteAlias", "Resource": "arn:aws:kms:*:*:key/*",
         "Condition": {"StringNotEquals": {"aws:ResourceTag/managed-by": "lambda-secrets-runbook"}}},
    ]}
    assert policies.lint(document) == []
    unguarded = {"Statement": document["Statement"][:4]}
    assert policies.lint(unguarded) == ["delete: D: deletes on arn:aws:kms:*:*:key/* without a condition"]


#: What parliament must never report on a shipped policy.
FORBIDDEN_FINDINGS = ("PRIVILEGE_ESCALATION", "CREDENTIALS_EXPOSURE", "RESOURCE_MISMATCH")


def _parliament(document: dict) -> list[tuple[str, str]]:
    from parliament import analyze_policy_string

    analysed = analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return [(f.issue, json.dumps(f.location.get("type") or f.location.get("actions") or f.detail, default=str))
            for f in analysed.findings]


@pytest.mark.parametrize("name", [f"{n}.json" for n in policies.SHIPPED] + [f"part {p}" for p in policies.PARTS])
def test_parliament_finds_no_escalation_credentials_exposure_or_resource_mismatch(name):
    """Each file, and each part's files together (an escalation can span two statements)."""
    document = policies.load_policy(name[5:]) if name.startswith("part ") else policies.load_document(name[:-5])
    findings = _parliament(document)
    assert [f for f in findings if f[0] in FORBIDDEN_FINDINGS] == []
    others = sorted({f"{issue} {where}" for issue, where in findings})
    if others:  # reported, not failed: each is explained in docs/permissions.md
        warnings.warn(f"parliament on {name}: {'; '.join(others)}", stacklevel=1)


def test_parliament_does_report_what_the_change_grant_holds():
    """The grant holds exactly what no standing policy may: parliament says so, and the test can fail."""
    grant = policies.change_grant("arn:aws:lambda:us-east-1:123456789012:function:orders-api", ["orders-legacy-ci"])
    issues = {issue for issue, _ in _parliament(grant)}
    assert {"PRIVILEGE_ESCALATION", "CREDENTIALS_EXPOSURE"} <= issues
    assert [f for f in _parliament(grant) if f[0] == "PRIVILEGE_ESCALATION"] == [
        ("PRIVILEGE_ESCALATION", '"EditExistingLambdaFunctionWithRole"')]


def test_change_grant_names_one_function_and_the_key_users_only():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    grant = policies.change_grant(arn, ["orders-legacy-ci", "orders-legacy-ci"])
    assert [(s["Action"], s["Resource"]) for s in grant["Statement"]] == [
        ("lambda:UpdateFunctionCode", arn),
        ("iam:UpdateAccessKey", ["arn:aws:iam::123456789012:user/orders-legacy-ci"])]
    assert [s["Sid"] for s in policies.change_grant(arn)["Statement"]] == ["DeployCodeToThisFunction"]
    for bad in ("arn:aws:lambda:us-east-1:123456789012:function:*", f"{arn}:3", "orders-api"):
        with pytest.raises(InputError, match="function_arn"):
            policies.change_grant(bad)
    with pytest.raises(InputError, match="key_users"):
        policies.change_grant(arn, ["*"])


def test_unknown_part_is_an_input_error():
    with pytest.raises(InputError, match="part"):
        policies.load_policy("admin")
    with pytest.raises(KeyError):
        policies.without_statement(policies.load_policy("auditor"), "NoSuchSid")


# -- the lab, IAM enforced, as users holding only these policies ------------------------------------
@pytest.fixture(scope="module")
def enforcing_lab():
    from runbook_lib.lab import Lab

    with Lab(seed=True, enforce_iam=True) as running:
        operators = Operators(running)
        operators.approve(running.seed_info["function_name"])
        yield running, operators


def _context(operators, part, run_dir, notebook, phase, function_name, create=True):
    """What ``start_notebook`` builds, with the operator user's session instead of the environment."""
    target = operators.target(part)
    identity = target.caller_identity()
    ledger = Ledger.open(run_dir, create=create)
    ledger.bind(target="lab", account=identity["account"], region=target.region, function_name=function_name)
    return NotebookContext(notebook, phase, target, identity, run_dir, ledger, CheckLog(run_dir, notebook, phase))


def _implement(operators, run_dir, name, ticket):
    from runbook_lib.implementation import Implementation

    ctx = _context(operators, "implementer", run_dir, "02_implementation", "change", name)
    impl = Implementation(ctx.target, ctx.ledger, function_name=name, change_ticket=ticket, apply=True)
    impl.apply()
    assert {c.id: c.status for c in impl.checks()} == {f"change-{s.name}": "PASS" for s in impl.steps}


def _validate(operators, run_dir, name):
    from runbook_lib.validation import Validation

    ctx = _context(operators, "auditor", run_dir, "03_functional_validation", "validation", name)
    validation = Validation(ctx.target, ctx.ledger, run_dir, function_name=name)
    validation.invoke()
    validation.collect()
    checks = {c.id: c for c in validation.run_checks()}
    assert {cid: c.reason for cid, c in checks.items() if c.status == "FAIL"} == {}
    # the auditor may use the policy simulator (the lab's, from its own evaluation); the role trusts only Lambda
    assert checks["least-privilege"].status == "PASS" and "policy simulator" in checks["least-privilege"].reason
    assert checks["no-secret-in-logs"].status == "PASS"


def test_whole_runbook_runs_as_auditor_and_implementer_with_iam_enforced(enforcing_lab, tmp_path):
    from runbook_lib.audit import Audit, baseline_invocation
    from runbook_lib.backout import Backout

    lab, operators = enforcing_lab
    assert lab.health()["enforce_iam"] is True
    name, legacy_user = lab.seed_info["function_name"], lab.seed_info["legacy_user"]
    function_arn = lab.seed_info["function_arn"]
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

    # the administrator grants what no standing policy holds, for this change only
    with operators.granted(function_arn, [legacy_user]):
        _implement(operators, run_dir, name, "CHG-IAM")
        _validate(operators, run_dir, name)
        ctx = _context(operators, "implementer", run_dir, "04_backout", "backout", name, create=False)
        # as the backout notebook does by default: the restored code needs the key the change deactivated
        backout = Backout(ctx.target, ctx.ledger, change_ticket="CHG-IAM-B", apply=True,
                          reactivate_access_keys=True)
        backout.apply()
        assert {c.id: c.status for c in backout.checks()} == {
            "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}

    denied = {(u, op) for u, op, code in errors_by(lab) if "Denied" in code}
    assert denied == EXPECTED_DENIALS
    assert unevaluated_in_policies(lab) == []


def test_an_accepted_change_is_closed_out_under_the_policies(tmp_path):
    """The second half of the runbook, in a lab of its own (close-out leaves the function migrated)."""
    from runbook_lib.audit import Audit
    from runbook_lib.closeout import Closeout
    from runbook_lib.lab import Lab

    with Lab(seed=True, enforce_iam=True) as lab:
        operators = Operators(lab)
        name, legacy_user = lab.seed_info["function_name"], lab.seed_info["legacy_user"]
        operators.approve(name)
        run_dir = tmp_path / "accepted"
        ctx = _context(operators, "auditor", run_dir, "01_test_plan", "baseline", name)
        Audit(ctx.target, regions=[ctx.target.region]).run().record(ctx.ledger, name)
        with operators.granted(lab.seed_info["function_arn"], [legacy_user]):
            _implement(operators, run_dir, name, "CHG-IAM-2")
            _validate(operators, run_dir, name)
            ctx = _context(operators, "implementer", run_dir, "05_closeout", "closeout", name, create=False)
            closing = Closeout(ctx.target, ctx.ledger, change_ticket="CHG-IAM-C", apply=True)
            closing.apply()
            checks = {c.id: c.status for c in closing.checks()}
        # no rotate_from file: the moved values are still the exposed ones, which close-out says
        assert {cid: status for cid, status in checks.items() if status != "PASS"} == {
            "exposed-credentials-rotated": "WARN"}
        assert {"closeout-versions", "closeout-access-keys", "no-secret-residue"} <= set(checks)
        versions = lab.client("lambda").list_versions_by_function(FunctionName=name)["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST"]  # the snapshot holding the values is gone
        denied = {(u, op) for u, op, code in errors_by(lab) if "Denied" in code}
        assert denied == EXPECTED_DENIALS
        assert unevaluated_in_policies(lab) == []


def _fresh_implementation(operators, tmp_path, lab):
    from runbook_lib.implementation import Implementation

    name = lab.seed_info["function_name"]
    ctx = _context(operators, "implementer", tmp_path / "reduced", "02_implementation", "change", name)
    return Implementation(ctx.target, ctx.ledger, function_name=name, change_ticket="CHG-R", apply=True)


@pytest.mark.parametrize("sid, operation, resource, permission", [
    ("ReadApprovedFunctions", "GetFunctionConfiguration", "orders-api", "lambda:GetFunctionConfiguration"),
    ("DescribeSecretsByName", "DescribeSecret", "lambda/orders-api/config", "secretsmanager:DescribeSecret"),
    ("ReadExecutionRoles", "GetPolicy", "policy/LambdaSecretsManagerPolicy-orders-api", "iam:GetPolicy"),
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
    with operators.without("auditor", "InvokeApprovedFunctions"):
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
                     if s["Sid"] == "AttachTheReadPolicyToApprovedRoles")
    role = "arn:aws:iam::123456789012:role/orders-api-role"
    verdicts = {}
    for policy in ("LambdaSecretsManagerPolicy-orders-api", "AdministratorAccess"):
        for tags in ({policies.APPROVAL_TAG[0]: "true"}, {}):
            call = _call("iam", "AttachRolePolicy", {"RoleName": "orders-api-role",
                                                     "PolicyArn": f"arn:aws:iam::123456789012:policy/{policy}"})
            context = iam_enforcement.request_context(caller, call).for_resource(role, tags)
            verdicts[policy, bool(tags)] = iam_enforcement.evaluate([{"Statement": [statement]}],
                                                                    "iam:AttachRolePolicy", role, context)
    assert verdicts == {("LambdaSecretsManagerPolicy-orders-api", True): "Allow",
                        ("LambdaSecretsManagerPolicy-orders-api", False): "Neutral",
                        ("AdministratorAccess", True): "Neutral", ("AdministratorAccess", False): "Neutral"}


def test_lab_authorises_qualified_lambda_calls_on_the_qualified_arn():
    from runbook_lib.lab import iam_enforcement

    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    resolve = iam_enforcement.resources_for
    assert resolve(_call("lambda", "DeleteFunction", {"FunctionName": "orders-api"}), "123456789012") == [arn]
    assert resolve(_call("lambda", "DeleteFunction", {"FunctionName": "orders-api", "Qualifier": "3"}),
                   "123456789012") == [f"{arn}:3"]
    assert resolve(_call("lambda", "GetFunction", {"FunctionName": f"{arn}:live"}), "123456789012") == [f"{arn}:live"]
    assert resolve(_call("lambda", "Invoke", {"FunctionName": "orders-api:2"}), "123456789012") == [f"{arn}:2"]


def test_implementer_deletes_a_published_version_of_an_approved_function_but_never_the_function(enforcing_lab):
    """DeleteVersionsOfApprovedFunctions: qualified ARNs of approved functions only; the function stays."""
    lab, operators = enforcing_lab
    admin_lambda = lab.client("lambda")
    function = "inventory-sync"  # a seeded decoy the other tests leave alone
    lam = operators.target("implementer").client("lambda")
    version = admin_lambda.publish_version(FunctionName=function)["Version"]
    with pytest.raises(botocore.exceptions.ClientError) as unapproved:
        lam.delete_function(FunctionName=function, Qualifier=version)
    assert unapproved.value.response["Error"]["Code"] == "AccessDeniedException"
    operators.approve(function, role=False)
    try:
        lam.delete_function(FunctionName=function, Qualifier=version)
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            lam.delete_function(FunctionName=function)
    finally:
        admin_lambda.untag_resource(Resource=admin_lambda.get_function_configuration(
            FunctionName=function)["FunctionArn"], TagKeys=[policies.APPROVAL_TAG[0]])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert admin_lambda.get_function(FunctionName=function)["Configuration"]["FunctionName"] == function
    versions = [v["Version"] for v in admin_lambda.list_versions_by_function(FunctionName=function)["Versions"]]
    assert version not in versions
