"""The operator policies shipped in ``policies/`` and the IAM actions each part of the runbook needs.

Two parts, two policies:

- ``auditor`` (``policies/auditor.json``): the test plan and functional validation. Read
  calls only, plus ``lambda:InvokeFunction`` (the baseline and validation invocations) and
  ``secretsmanager:GetSecretValue`` on ``lambda/*`` secrets (validation searches the logs
  for the secret's values, in memory).
- ``implementer`` (``policies/implementer.json``): implementation and backout.

:func:`required_actions` derives what a part needs from the code itself: the
``permissions`` every :class:`~runbook_lib.steps.Step` of implementation and backout
declares, plus the permission named by every ``aws_call(...)`` in the modules of that
part (found by reading their source, so a new call cannot be forgotten here), minus
:data:`OPTIONAL` (features the shipped policy leaves out on purpose, each with a reason).
:func:`uncovered_actions` says which of them a policy does not allow; the tests keep it
empty.

Examples
--------
>>> uncovered_actions(load_policy("auditor"), required_actions("auditor"))  # doctest: +SKIP
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

#: Modules whose calls each part makes (besides the Steps' declared permissions).
PART_MODULES = {
    "auditor": ("context", "session", "audit", "inventory", "residue", "validation", "validation_collect",
                "validation_access", "evidence", "iam_analysis", "access_probes"),
    "implementer": ("context", "session", "change", "implementation", "backout", "closeout", "residue", "functions",
                    "secrets_store", "iam", "edge"),
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
    },
}
#: Actions that only read, by their verb (the auditor may hold nothing else, save the two below).
READ_VERBS = ("Get", "List", "Describe", "Lookup", "Filter", "Simulate")
AUDITOR_NON_READ = {"lambda:InvokeFunction": "baseline and validation invocations",
                    "secretsmanager:GetSecretValue": "validation searches the logs for the secret's values"}

_PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Za-z*]+$")


def policy_path(part: str) -> Path:
    if part not in PARTS:
        raise InputError("part", f"{part!r} is not one of {', '.join(PARTS)}")
    return POLICY_DIR / f"{part}.json"


def load_policy(part: str) -> dict:
    """The shipped policy document of ``part`` (``auditor`` or ``implementer``)."""
    path = policy_path(part)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_file("part", path) from None


def statements(document: dict) -> list[dict]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def without_statement(document: dict, sid: str) -> dict:
    """A copy of ``document`` without the statement ``sid`` (for the tests that remove one)."""
    kept = [s for s in statements(document) if s.get("Sid") != sid]
    if len(kept) == len(statements(document)):
        raise KeyError(f"no statement {sid}")
    return {**document, "Statement": kept}


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
