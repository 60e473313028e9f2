"""The operator policies shipped in ``policies/``, the IAM actions each part of the runbook needs,
and the project's policy lint.

Two parts, each a set of managed policies (one document is limited to 6,144 characters):

- ``auditor`` (``policies/auditor.json``): the test plan and functional validation. Read
  calls only, plus ``lambda:InvokeFunction`` on functions an administrator approved (the
  baseline and validation invocations) and ``secretsmanager:GetSecretValue`` on the
  runbook's own secrets (validation searches the logs for the secret's values, in memory).
- ``implementer`` (``policies/implementer.json`` for functions, secrets, keys and layers,
  ``implementer-iam.json`` for roles and today's read policy, ``implementer-edge.json`` for
  Lambda@Edge): implementation, backout and close-out.

``policies/runbook-role-boundary.json`` is the permissions boundary every role the runbook
creates must carry (``iam:PermissionsBoundary``); an administrator creates it as the managed
policy :data:`BOUNDARY_POLICY_NAME`. A function is approved for change by an administrator
with the tag :data:`APPROVAL_TAG`, which the implementer can never set or remove.

:func:`required_actions` derives what a part needs from the code itself: the
``permissions`` every :class:`~runbook_lib.steps.Step` of implementation and backout
declares, plus the permission named by every ``aws_call(...)`` in the modules of that
part (found by reading their source, so a new call cannot be forgotten here), minus
:data:`OPTIONAL` (what the shipped policies leave out on purpose, each with a reason).
:func:`uncovered_actions` says which of them a policy does not allow; the tests keep it
empty. :func:`lint` says why a document could be abused (:data:`LINT_RULES`).
:func:`change_grant` is the one per-change grant an administrator attaches for what no
standing policy holds (deploying code to one function, deactivating one user's keys).

Examples
--------
>>> uncovered_actions(load_policy("auditor"), required_actions("auditor"))  # doctest: +SKIP
[]
>>> lint(load_policy("implementer"))                                         # doctest: +SKIP
[]
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

from .exceptions import InputError
from .resources import missing_file, policies_dir

POLICY_DIR = policies_dir()
PARTS = ("auditor", "implementer")
#: The managed policies (files in ``policies/``) each part is made of.
POLICY_FILES = {"auditor": ("auditor",), "implementer": ("implementer", "implementer-iam", "implementer-edge")}
#: The permissions boundary of the roles the runbook creates.
BOUNDARY = "runbook-role-boundary"
BOUNDARY_POLICY_NAME = "LambdaSecretsRunbookRoleBoundary"
#: Every document shipped in ``policies/``.
SHIPPED = POLICY_FILES["auditor"] + POLICY_FILES["implementer"] + (BOUNDARY,)
#: The tag an administrator sets on a function (and, for today's read policy, its role) to approve
#: it for change; the implementer can neither set nor remove it.
APPROVAL_TAG = ("lambda-secrets-runbook:approved", "true")
#: Tag keys the runbook writes on what it creates (``managed-by``, ``function``, ``change-ticket``,
#: the KMS key's ``runbook-token``) and on the function it changes (its lock).
RUNBOOK_TAG_KEYS = ("managed-by", "function", "change-ticket", "runbook-token")
LOCK_TAG_KEY = "lambda-secrets-runbook-lock"

#: Modules whose calls each part makes (besides the Steps' declared permissions).
PART_MODULES = {
    "auditor": ("context", "session", "audit", "inventory", "residue", "validation", "validation_collect",
                "validation_access", "evidence", "iam_analysis", "access_probes"),
    "implementer": ("context", "session", "change", "implementation", "backout", "closeout", "residue", "functions",
                    "secrets_store", "iam", "edge", "wrapper", "secret_grant"),
}
#: Calls the implementer makes outside its Steps: the run lock (tag on the function), the
#: orphan search and the invocation of backout's checks.
IMPLEMENTER_EXTRA = ("lambda:ListTags", "lambda:TagResource", "lambda:UntagResource",
                     "secretsmanager:ListSecrets", "lambda:InvokeFunction")
#: Actions the code names but the shipped policies leave out, and why.
OPTIONAL = {
    "auditor": {
        "organizations:ListAccounts": "organization-wide audit (accounts=['organization']): grant it in the "
                                      "management account only",
        "sts:AssumeRole": "member accounts (assume_role_name) and the live least-privilege probe: grant it on "
                          "the audit role of each member account only; the probe then reports 'not performed' "
                          "and the policy simulator and static analysis decide",
    },
    "implementer": {
        "sts:AssumeRole": "not used by implementation or backout",
        "lambda:UpdateFunctionCode": "deploying code runs it as the function's role (parliament: "
                                     "EditExistingLambdaFunctionWithRole): granted per change, for one function, "
                                     "by change_grant(function_arn)",
        "iam:UpdateAccessKey": "it re-activates any disabled key as well (parliament: CREDENTIALS_EXPOSURE): the "
                               "key's owner or an administrator deactivates it, or grants it per change for one "
                               "user by change_grant(function_arn, key_users=[...])",
        "lambda:ListFunctions": "it returns every function's environment variables, secrets included: the "
                                "plan's overview then says the role's other functions were not listed (the "
                                "secret's resource policy admits only this function's session either way)",
        "iam:CreatePolicyVersion": "a new version of any runbook policy could grant anything (parliament: "
                                   "CreateNewPolicyVersion); a policy whose document changed is deleted and "
                                   "created again by an administrator, and the secret's resource policy "
                                   "(real-functions) replaces it",
    },
}
#: Actions that only read, by their verb (the auditor may hold nothing else, save the two below).
READ_VERBS = ("Get", "List", "Describe", "Lookup", "Filter", "Simulate")
AUDITOR_NON_READ = {"lambda:InvokeFunction": "baseline and validation invocations",
                    "secretsmanager:GetSecretValue": "validation searches the logs for the secret's values"}

_PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Za-z*]+$")


def policy_path(name: str) -> Path:
    """The file of one shipped document (``implementer-iam``, ``runbook-role-boundary``...)."""
    if name not in SHIPPED:
        raise InputError("part", f"{name!r} is not one of {', '.join(SHIPPED)}")
    return POLICY_DIR / f"{name}.json"


def load_document(name: str) -> dict:
    """One shipped document, as its file holds it."""
    path = policy_path(name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_file("part", path) from None


def load_policy(part: str) -> dict:
    """Everything ``part`` (``auditor`` or ``implementer``) holds, as one document (its files' statements)."""
    if part not in PARTS:
        raise InputError("part", f"{part!r} is not one of {', '.join(PARTS)}")
    return {"Version": "2012-10-17",
            "Statement": [s for name in POLICY_FILES[part] for s in statements(load_document(name))]}


def statements(document: dict) -> list[dict]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def without_statement(document: dict, sid: str) -> dict:
    """A copy of ``document`` without the statement ``sid`` (for the tests that remove one)."""
    kept = [s for s in statements(document) if s.get("Sid") != sid]
    if len(kept) == len(statements(document)):
        raise KeyError(f"no statement {sid}")
    return {**document, "Statement": kept}


def change_grant(function_arn: str, key_users: tuple[str, ...] | list[str] = ()) -> dict:
    """The per-change grant an administrator attaches next to ``implementer`` for one change.

    ``lambda:UpdateFunctionCode`` on exactly ``function_arn`` (the ``package`` and ``reference``
    strategies, and backout of a code change), and ``iam:UpdateAccessKey`` on exactly the IAM
    users named in ``key_users`` (the hardcoded keys found in that function's code). Nothing
    else: no standing policy holds either action, because each can be abused on any resource
    it names. Detach it when the change is closed out.

    Examples
    --------
    >>> change_grant("arn:aws:lambda:us-east-1:123456789012:function:orders-api",
    ...              ["orders-legacy-ci"])["Statement"][1]["Resource"]
    ['arn:aws:iam::123456789012:user/orders-legacy-ci']
    """
    parts = function_arn.split(":")
    if len(parts) != 7 or parts[:3] != ["arn", parts[1], "lambda"] or parts[5] != "function" or "*" in function_arn:
        raise InputError("function_arn", f"{function_arn!r} is not one function's unqualified ARN "
                         "(arn:aws:lambda:<region>:<account>:function:<name>)")
    grants = [{"Sid": "DeployCodeToThisFunction", "Effect": "Allow", "Action": "lambda:UpdateFunctionCode",
               "Resource": function_arn}]
    users = sorted(set(key_users))
    if any(not re.fullmatch(r"[\w+=,.@-]{1,64}", u) for u in users):
        raise InputError("key_users", f"{users} must be IAM user names")
    if users:
        grants.append({"Sid": "DeactivateTheseUsersKeys", "Effect": "Allow", "Action": "iam:UpdateAccessKey",
                       "Resource": [f"arn:{parts[1]}:iam::{parts[4]}:user/{u}" for u in users]})
    return {"Version": "2012-10-17", "Statement": grants}


# -- what the code needs -----------------------------------------------------------------------
def _modules(module_name: str) -> list:
    """``runbook_lib.<module_name>`` and, for a package, every module in it."""
    module = importlib.import_module(f"runbook_lib.{module_name}")
    found = [module]
    if hasattr(module, "__path__"):
        found += [importlib.import_module(info.name)
                  for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}.")]
    return found


def aws_call_permissions(module_name: str) -> set[str]:
    """Every permission string given to ``aws_call(...)`` in ``runbook_lib.<module_name>`` (a package: all of it)."""
    tree = ast.Module(body=[node for module in _modules(module_name)
                            for node in ast.parse(inspect.getsource(module)).body], type_ignores=[])
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "aws_call"):
            continue
        candidates = list(node.args[2:3]) + [k.value for k in node.keywords if k.arg == "permission"]
        for value in candidates:
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and _PERMISSION.match(value.value):
                found.add(value.value)
    return found


def step_permissions() -> set[str]:
    """The ``permissions`` declared by every Step class of the change engine, implementation, backout and close-out."""
    from .steps import Step

    found = set()
    for module in [m for name in ("change", "implementation", "backout", "closeout") for m in _modules(name)]:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Step) and cls.__module__ == module.__name__:
                found |= set(cls.permissions)
    return found


def required_actions(part: str, include_optional: bool = False) -> list[str]:
    """IAM actions ``part`` needs, derived from the code (see the module docstring)."""
    policy_path(part)
    needed: set[str] = set()
    for name in PART_MODULES[part]:
        needed |= aws_call_permissions(name)
    if part == "implementer":
        needed |= step_permissions() | set(IMPLEMENTER_EXTRA)
    needed.discard("sts:GetCallerIdentity")  # never denied by IAM
    if not include_optional:
        needed -= set(OPTIONAL[part])
    return sorted(needed)


# -- what a policy allows ------------------------------------------------------------------------
def allowed_action_patterns(document: dict) -> list[str]:
    """The ``Action`` patterns of the Allow statements of ``document``."""
    patterns = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        patterns += [actions] if isinstance(actions, str) else list(actions)
    return patterns


def _matches(pattern: str, action: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def uncovered_actions(document: dict, actions) -> list[str]:
    """The ``actions`` no Allow statement of ``document`` names (resources aside).

    A wildcard in a needed action (``lambda:EnableReplication*``) is covered only by the
    same pattern or a wider one.
    """
    patterns = allowed_action_patterns(document)
    return sorted(a for a in actions if not any(p == a or _matches(p, a) for p in patterns))


def non_read_actions(document: dict) -> list[str]:
    """Allowed actions whose verb is not a read (and not a documented exception)."""
    out = []
    for pattern in allowed_action_patterns(document):
        verb = pattern.split(":", 1)[-1]
        if "*" in verb or (not verb.startswith(READ_VERBS) and pattern not in AUDITOR_NON_READ):
            out.append(pattern)
    return sorted(out)


# -- the policy lint: what could be abused ------------------------------------------------------------
#: Actions no standing policy of the runbook may allow (directly or through a wildcard), and why.
NEVER_STANDING = {
    "lambda:UpdateFunctionCode": "runs any code as the function's role",
    "lambda:CreateFunction": "runs any code as any role it may pass",
    "iam:UpdateAccessKey": "re-activates any disabled key",
    "iam:CreateAccessKey": "mints credentials of another user",
    "iam:CreatePolicyVersion": "rewrites a policy to grant anything",
    "iam:SetDefaultPolicyVersion": "switches a policy to a broader version",
    "iam:PutRolePermissionsBoundary": "replaces a role's boundary",
    "iam:DeleteRolePermissionsBoundary": "removes a role's boundary",
    "iam:UpdateAssumeRolePolicy": "lets anyone assume a role",
    "iam:PutUserPolicy": "grants a user anything",
    "iam:AttachUserPolicy": "grants a user anything",
    "iam:AddUserToGroup": "grants a user a group's permissions",
    "iam:CreateLoginProfile": "sets another user's console password",
    "iam:UpdateLoginProfile": "sets another user's console password",
    "sts:AssumeRole": "becomes another role",
}
#: What :func:`lint` reports, rule by rule.
LINT_RULES = {
    "standing-grant": "allows an action no standing policy may hold (NEVER_STANDING)",
    "tagging": "tags or untags without limiting the tag keys (ForAllValues aws:TagKeys), or may write the "
               "approval tag: tagging would unlock what the tags guard",
    "pass-role": "iam:PassRole without iam:PassedToService",
    "unbounded-role": "iam:CreateRole without iam:PermissionsBoundary",
    "delete": "deletes without a condition, outside the runbook's own names",
}
#: Name parts of what only the runbook creates: an unconditioned delete may name them.
RUNBOOK_NAMES = ("lambda-secrets-runbook", "LambdaSecretsRunbook-", "LambdaSecretsManagerPolicy-")
_TAGGING = re.compile(r"^(Un)?tag(Resource|Role|Policy|User|Key)?$", re.IGNORECASE)
_DELETING = ("Delete", "Detach", "Remove", "ScheduleKeyDeletion")


def _listed(value) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def lint(document: dict) -> list[str]:
    """Why ``document`` could be abused: one line per problem, ``rule: Sid: what`` (empty: none found).

    The rules (:data:`LINT_RULES`) judge the Allow statements: a Deny narrows, never widens,
    so it is never a problem itself. An unconditioned delete is accepted on the runbook's own
    names, or where a Deny of the same document refuses it unless the resource's tags say so.
    """
    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "(no Sid)")
        actions = _listed(statement.get("Action"))
        condition = statement.get("Condition") or {}
        problems += [f"standing-grant: {sid}: {action} ({why})" for action, why in NEVER_STANDING.items()
                     if any(_matches(pattern, action) for pattern in actions)]
        verbs = {a.split(":", 1)[-1] for a in actions}
        if any(_TAGGING.match(v) or v == "*" for v in verbs):
            problems += [f"tagging: {sid}: {why}" for why in _tagging_problems(condition)]
        if any(_matches(a, "iam:PassRole") for a in actions) and not _condition_keys(condition, "iam:PassedToService"):
            problems.append(f"pass-role: {sid}: may pass roles to any service")
        if any(_matches(a, "iam:CreateRole") for a in actions) and \
                not _condition_keys(condition, "iam:PermissionsBoundary"):
            problems.append(f"unbounded-role: {sid}: creates roles without a permissions boundary")
        deleting = [a for a in actions if a.split(":", 1)[-1].startswith(_DELETING) or a.endswith(":*")]
        open_ended = [r for r in _listed(statement.get("Resource")) if not any(n in r for n in RUNBOOK_NAMES)
                      and not all(_guarded(document, a, r) for a in deleting)]
        if deleting and not condition and open_ended:
            problems.append(f"delete: {sid}: deletes on {', '.join(open_ended)} without a condition")
    return problems


def _guarded(document: dict, action: str, resource: str) -> bool:
    """Whether a Deny of ``document`` refuses ``action`` on ``resource`` unless the resource's tags say so."""
    return any(s.get("Effect") == "Deny" and resource in _listed(s.get("Resource"))
               and any(_matches(p, action) for p in _listed(s.get("Action")))
               and any(k.lower().startswith("aws:resourcetag/") for block in (s.get("Condition") or {}).values()
                       if isinstance(block, dict) for k in block)
               for s in statements(document))


def _condition_keys(condition: dict, key: str) -> list:
    """The values ``condition`` tests ``key`` against (any operator), lower-cased key names."""
    return [v for block in condition.values() if isinstance(block, dict)
            for k, values in block.items() if k.lower() == key.lower() for v in _listed(values)]


def _tagging_problems(condition: dict) -> list[str]:
    limited = [v for operator, block in condition.items() if operator.startswith("ForAllValues:String")
               and isinstance(block, dict) for k, values in block.items() if k.lower() == "aws:tagkeys"
               for v in _listed(values)]
    if not limited:
        return ["tag keys not limited (ForAllValues:StringEquals aws:TagKeys)"]
    if any(_matches(v, APPROVAL_TAG[0]) for v in limited):
        return [f"may write the approval tag {APPROVAL_TAG[0]}"]
    return []
