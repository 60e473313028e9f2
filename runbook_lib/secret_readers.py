"""Who can read a secret: a role session's identity policies plus the secret's resource policy.

Pure functions over documents already read (no AWS call here), so every decision can be
tested on fabricated policies. A Lambda function calls AWS as the session
``assumed-role/<role>/<function>``: its ``aws:userid`` is ``<role id>:<function>`` and its
``aws:PrincipalArn`` is the role's ARN. :func:`read_decision` evaluates one such caller the
way AWS does inside one account: an explicit Deny in either policy wins; otherwise an Allow
in the identity policies **or** in the resource policy suffices.

What this module cannot evaluate (a condition key or operator it does not know,
``NotPrincipal``) makes the decision ``unknown``, never ``allowed`` or ``denied`` by guess.
Permission boundaries and SCPs are not evaluated (they can only take permissions away).

Examples
--------
>>> caller = Caller("arn:aws:iam::111122223333:role/shared", "AROAEXAMPLE", "orders-api")
>>> caller.userid
'AROAEXAMPLE:orders-api'
>>> condition_holds({"StringEquals": {"aws:userid": "AROAEXAMPLE:orders-api"}}, caller.context())
True
>>> condition_holds({"StringNotEquals": {"aws:userid": "AROAEXAMPLE:orders-api"}}, caller.context())
False
>>> condition_holds({"Bool": {"aws:SecureTransport": "true"}}, caller.context()) is None
True
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Iterable

READ_ACTION = "secretsmanager:GetSecretValue"
ALLOWED, DENIED, UNKNOWN = "allowed", "denied", "unknown"

#: Condition operators evaluated here; the value says how: (compare, negated, ignore case).
_OPERATORS = {
    "stringequals": ("equals", False, False), "stringnotequals": ("equals", True, False),
    "stringequalsignorecase": ("equals", False, True), "stringnotequalsignorecase": ("equals", True, True),
    "stringlike": ("like", False, False), "stringnotlike": ("like", True, False),
    "arnequals": ("equals", False, False), "arnnotequals": ("equals", True, False),
    "arnlike": ("like", False, False), "arnnotlike": ("like", True, False),
}


@dataclass(frozen=True)
class Caller:
    """A function's role session: role ARN, role id (``GetRole``'s ``RoleId``) and session name."""

    role_arn: str
    role_id: str
    session: str

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4] if self.role_arn.count(":") >= 5 else ""

    @property
    def userid(self) -> str:
        return f"{self.role_id}:{self.session}"

    @property
    def session_arn(self) -> str:
        partition = self.role_arn.split(":")[1] if self.role_arn.count(":") >= 2 else "aws"
        return f"arn:{partition}:sts::{self.account}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session}"

    def context(self) -> dict:
        """The request context keys AWS sets for this session (lower-cased names)."""
        return {"aws:userid": self.userid, "aws:principalarn": self.role_arn,
                "aws:principalaccount": self.account, "aws:principaltype": "AssumedRole"}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _value_matches(kind: str, pattern: str, value: str, ignore_case: bool) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if kind == "like":
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def condition_holds(condition: Any, context: dict) -> bool | None:
    """Whether a policy ``Condition`` block holds for ``context``; ``None`` when it cannot be told.

    Every operator and every key must hold (AND); a key holds when the context value matches
    one of its values (OR), or, for a negated operator, none of them. ``...IfExists``,
    ``ForAnyValue:``/``ForAllValues:``, ``Null``, ``Bool``, numeric, date and IP operators and
    keys missing from ``context`` are not evaluated: ``None``.
    """
    if not condition:
        return True
    if not isinstance(condition, dict):
        return None
    verdict: bool | None = True
    for operator, keys in condition.items():
        rule = _OPERATORS.get(str(operator).lower())
        if rule is None or not isinstance(keys, dict):
            verdict = None
            continue
        kind, negated, ignore_case = rule
        for key, values in keys.items():
            actual = context.get(str(key).lower())
            if actual is None:
                verdict = None
                continue
            hit = any(_value_matches(kind, str(v), str(actual), ignore_case) for v in _as_list(values))
            if hit == negated:
                return False
    return verdict


def principal_names(statement: dict) -> list[str]:
    """The principals a resource policy statement names (``service:<name>`` for services)."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS"))] + [
            f"service:{s}" for s in _as_list(principal.get("Service"))]
    return [str(principal)] if principal else []


def principal_matches(statement: dict, caller: Caller) -> bool | None:
    """Whether a resource policy statement's ``Principal`` covers the caller.

    ``"*"``, the role's ARN and the session's ARN name it. An account (``123...`` or
    ``arn:...:root``) in an Allow only delegates to the account's identity policies
    (``False``: the statement grants nothing by itself); in a Deny it covers every
    principal of that account. ``NotPrincipal`` is not evaluated (``None``).
    """
    if "NotPrincipal" in statement:
        return None
    names = principal_names(statement)
    if "*" in names or caller.role_arn in names or caller.session_arn in names:
        return True
    account_named = any(n == caller.account or (n.startswith("arn:") and n.endswith(f"::{caller.account}:root"))
                        for n in names)
    return bool(account_named and statement.get("Effect") == "Deny")


def _action_hit(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _as_list(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _as_list(statement.get("Action")))


def _resource_hit(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(fnmatch.fnmatchcase(resource, str(r)) for r in _as_list(statement["NotResource"]))
    return any(fnmatch.fnmatchcase(resource, str(r)) for r in _as_list(statement.get("Resource")))


def resource_statements(policy: Any) -> list[dict]:
    """The statements of a secret's resource policy (a dict, or ``None`` when it has none)."""
    if not isinstance(policy, dict):
        return []
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]


def _applies(statement: dict, caller: Caller, secret_arn: str, identity: bool) -> bool | None:
    """Whether one statement applies to the caller's GetSecretValue on the secret (None: cannot tell)."""
    if not (_action_hit(statement, READ_ACTION) and _resource_hit(statement, secret_arn)):
        return False
    named = True if identity else principal_matches(statement, caller)
    if named is False:
        return False
    holds = condition_holds(statement.get("Condition"), caller.context())
    if holds is False:
        return False
    return True if (named and holds) else None


def identity_statements(analysis) -> list[dict]:
    """A :class:`~runbook_lib.iam_analysis.RoleAnalysis`'s statements as policy-document statements."""
    out = []
    for stmt in getattr(analysis, "statements", []):
        doc = {"Sid": stmt.sid, "Effect": stmt.effect, ("NotAction" if stmt.not_action else "Action"): stmt.actions,
               ("NotResource" if stmt.not_resource else "Resource"): stmt.resources, "_policy": stmt.policy}
        if stmt.condition:
            doc["Condition"] = stmt.condition
        out.append(doc)
    return out


@dataclass(frozen=True)
class Decision:
    """Whether a caller may read the secret, and which statements decided it."""

    outcome: str
    because: tuple = ()

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "because": list(self.because)}


def read_decision(identity: Iterable[dict], resource_policy: Any, caller: Caller, secret_arn: str) -> Decision:
    """AWS's same-account evaluation of ``caller``'s GetSecretValue on ``secret_arn``.

    Parameters
    ----------
    identity:
        The role's statements (:func:`identity_statements`).
    resource_policy:
        The secret's resource policy document, or ``None``.
    """
    found: dict[tuple[str, bool | None], list[str]] = {}
    labelled = [(s, True, s.get("_policy", "identity policy")) for s in identity]
    labelled += [(s, False, "resource policy") for s in resource_statements(resource_policy)]
    for index, (statement, is_identity, where) in enumerate(labelled, start=1):
        applies = _applies(statement, caller, secret_arn, is_identity)
        if applies is False:
            continue
        label = f"{where} statement {statement.get('Sid') or index}"
        found.setdefault((str(statement.get("Effect")), applies), []).append(label)
    if ("Deny", True) in found:
        return Decision(DENIED, tuple(found[("Deny", True)]))
    if ("Allow", True) in found:
        doubt = found.get(("Deny", None), [])
        return Decision(UNKNOWN if doubt else ALLOWED, tuple(found[("Allow", True)] + doubt))
    if ("Allow", None) in found:
        return Decision(UNKNOWN, tuple(found[("Allow", None)] + found.get(("Deny", None), [])))
    return Decision(DENIED, ("no statement allows it",))


def broad_resource_grants(resource_policy: Any, role_arn: str, secret_arn: str) -> list[str]:
    """Allow statements of the secret's resource policy naming a principal other than the function's role."""
    problems = []
    for index, statement in enumerate(resource_statements(resource_policy), start=1):
        if statement.get("Effect") != "Allow" or not (_action_hit(statement, READ_ACTION)
                                                     and _resource_hit(statement, secret_arn)):
            continue
        others = [n for n in principal_names(statement) if n != role_arn]
        if others or "NotPrincipal" in statement:
            problems.append(f"the secret's resource policy statement {statement.get('Sid') or index} lets "
                            f"{', '.join(others) or 'every principal but those listed'} read it")
    return problems
