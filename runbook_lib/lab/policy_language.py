"""The IAM policy language: statements, wildcards, policy variables and condition operators.

One statement is judged against an action, a resource and a request context, with three
possible answers: it applies, it does not, or the lab cannot tell (a condition key or
operator it cannot evaluate, a policy variable it cannot fill). An unjudgeable statement
*fails closed*: an ``Allow`` that depends on it does not match, a ``Deny`` that depends on
it applies, and :func:`report_unevaluable` says so once per policy and key on the lab's
log (``runbook lab: ...``), so a policy the lab only half understands is never read as
granting anything.

Covered: ``Effect``, ``Action``/``NotAction``, ``Resource``/``NotResource``,
``Principal``/``NotPrincipal`` (resource-based policies), ``Condition`` with every
operator family (``String*``, ``Numeric*``, ``Date*``, ``Bool``, ``BinaryEquals``,
``IpAddress``/``NotIpAddress``, ``Arn*``, ``Null``), ``...IfExists`` and the
``ForAnyValue:``/``ForAllValues:`` set operators, and policy variables (``${aws:username}``,
``${aws:PrincipalTag/team}``, ``${*}``, defaults as ``${key, 'value'}``) in ``Resource``
and condition values of ``2012-10-17`` policies.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable

ALLOW, DENY, NEUTRAL = "Allow", "Deny", "Neutral"
#: Grants of a resource-based policy, strongest first: the principal's own ARN (or ``*``),
#: the role a session belongs to, the principal's whole account (delegation to IAM).
DIRECT, ROLE, ACCOUNT = "direct", "role", "account"
_GRANT_ORDER = {DIRECT: 3, ROLE: 2, ACCOUNT: 1}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class UnknownKey(Exception):
    """The lab cannot tell the value of a condition key (or policy variable) for this request."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


#: A request context: ``lookup(key)`` gives the key's values, ``None`` when the request has
#: no such key, and raises :class:`UnknownKey` when the lab cannot know.
Lookup = Callable[[str], "list[str] | None"]


@dataclass(frozen=True)
class Policy:
    """A policy document and the words the lab's log and messages use for it."""

    label: str
    document: dict


@dataclass(frozen=True)
class Principal:
    """Who is asking, as a resource-based policy's ``Principal`` element sees it."""

    arn: str                # user ARN or assumed-role session ARN
    account: str
    role_arn: str = ""      # for a role session: the role's ARN


@dataclass(frozen=True)
class Verdict:
    """Outcome of a set of policies: effect, the strongest grant (resource policies), and
    the keys that could not be judged."""

    effect: str
    grant: str | None = None
    unknown: tuple[str, ...] = ()


# --------------------------------------------------------------------------- reporting
_reported: set[tuple[str, str]] = set()
_report_lock = threading.Lock()
_unevaluated: list[dict] = []


def report_unevaluable(label: str, key: str) -> None:
    """Say once, on the lab's log, that ``label`` uses ``key`` the lab cannot evaluate."""
    with _report_lock:
        if (label, key) in _reported:
            return
        _reported.add((label, key))
        _unevaluated.append({"policy": label, "key": key})
    print(f"runbook lab: cannot evaluate {key} in {label}: an Allow that depends on it does not "
          "match, a Deny that depends on it applies", file=sys.stderr, flush=True)


def unevaluated() -> list[dict]:
    """Every ``{"policy", "key"}`` reported so far (what ``GET /_lab/unevaluated`` shows)."""
    with _report_lock:
        return [dict(item) for item in _unevaluated]


# --------------------------------------------------------------------------- evaluation
def evaluate_policies(policies: Iterable[Policy | dict], action: str, resource: str, lookup: Lookup,
                      principal: Principal | None = None) -> Verdict:
    """``Allow``, ``Deny`` (explicit) or ``Neutral`` for ``action`` on ``resource``.

    With ``principal``, the policies are resource-based: a statement applies only to the
    principals its ``Principal``/``NotPrincipal`` names, and the verdict carries the
    strongest grant (:data:`DIRECT`, :data:`ROLE`, :data:`ACCOUNT`) of the Allows that matched.
    """
    allowed, grant, unknown = False, None, []
    for policy in policies:
        if isinstance(policy, dict):
            policy = Policy("a policy", policy)
        version = str(policy.document.get("Version", "2008-10-17"))
        for statement in _statements(policy.document):
            kind = _principal_grant(statement, principal) if principal is not None else DIRECT
            if kind is None:
                continue
            try:
                applies = statement_applies(statement, action, resource, lookup, version)
            except UnknownKey as exc:
                report_unevaluable(policy.label, exc.key)
                unknown.append(exc.key)
                applies = statement.get("Effect") == "Deny"  # fail closed both ways
            if not applies:
                continue
            if statement.get("Effect") == "Deny":
                return Verdict(DENY, None, tuple(unknown))
            if statement.get("Effect") == "Allow":
                allowed = True
                if grant is None or _GRANT_ORDER[kind] > _GRANT_ORDER[grant]:
                    grant = kind
    return Verdict(ALLOW if allowed else NEUTRAL, grant if allowed else None, tuple(unknown))


def _statements(document: dict) -> list[dict]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    statements = [statements] if isinstance(statements, dict) else statements
    return [s for s in statements if isinstance(s, dict)]


def statement_applies(statement: dict, action: str, resource: str, lookup: Lookup,
                      version: str = "2012-10-17") -> bool:
    """Whether ``statement`` covers the request (:class:`UnknownKey` when the lab cannot tell)."""
    if "NotAction" in statement:
        if any_match(statement["NotAction"], action, ignore_case=True):
            return False
    elif not any_match(statement.get("Action", []), action, ignore_case=True):
        return False
    variables = version == "2012-10-17"
    if "NotResource" in statement:
        if _resource_match(statement["NotResource"], resource, lookup, variables):
            return False
    elif "Resource" in statement and not _resource_match(statement["Resource"], resource, lookup, variables):
        return False
    return conditions_hold(statement.get("Condition") or {}, lookup, variables)


def _resource_match(patterns: Any, resource: str, lookup: Lookup, variables: bool) -> bool:
    for pattern in _as_list(patterns):
        pattern = substitute(pattern, lookup) if variables else pattern
        if pattern is not None and arn_like(resource, pattern):
            return True
    return False


def _principal_grant(statement: dict, principal: Principal) -> str | None:
    if "NotPrincipal" in statement:
        return None if _principal_named(statement["NotPrincipal"], principal) else DIRECT
    return _principal_named(statement.get("Principal"), principal)


def _principal_named(element: Any, principal: Principal) -> str | None:
    if element == "*":
        return DIRECT
    if not isinstance(element, dict):
        return None
    best = None
    for value in _as_list(element.get("AWS")):
        kind = None
        if value == "*" or value in (principal.arn,):
            kind = DIRECT
        elif principal.role_arn and value == principal.role_arn:
            kind = ROLE
        elif value in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            kind = ACCOUNT
        if kind and (best is None or _GRANT_ORDER[kind] > _GRANT_ORDER[best]):
            best = kind
    return best


# --------------------------------------------------------------------------- wildcards
def any_match(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    """Whether any of ``patterns`` (``*`` and ``?`` wildcards) matches ``value``."""
    return any(glob(str(p), ignore_case).match(value) for p in _as_list(patterns))


@lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def arn_like(value: str, pattern: str) -> bool:
    """ARN matching as IAM does it: the five colon-separated fields before the resource are
    matched one by one (a ``*`` there cannot spill into the next field), the resource part
    as a whole. ``*`` alone matches anything."""
    if pattern == "*":
        return True
    if not pattern.startswith("arn:") or not value.startswith("arn:"):
        return bool(glob(pattern).match(value))
    left, right = value.split(":", 5), pattern.split(":", 5)
    if len(left) != 6 or len(right) != 6:
        return bool(glob(pattern).match(value))
    return all(glob(p).match(v) for v, p in zip(left, right))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- policy variables
def substitute(text: Any, lookup: Lookup) -> str | None:
    """``text`` with its policy variables filled in; ``None`` when one has no value.

    Raises :class:`UnknownKey` for a variable the lab cannot fill.
    """
    text = str(text)
    if "${" not in text:
        return text
    missing = False

    def fill(match: re.Match) -> str:
        nonlocal missing
        inner = match.group(1).strip()
        if inner in ("*", "?", "$"):
            return inner
        key, _, default = inner.partition(",")
        values = lookup(key.strip())
        if values:
            return values[0]
        default = default.strip()
        if default[:1] == "'" and default[-1:] == "'" and len(default) >= 2:
            return default[1:-1]
        missing = True
        return ""

    filled = _VARIABLE.sub(fill, text)
    return None if missing else filled


# --------------------------------------------------------------------------- conditions
def conditions_hold(conditions: dict, lookup: Lookup, variables: bool = True) -> bool:
    """Whether every condition holds (:class:`UnknownKey` when one cannot be judged and none
    is false: a false condition decides the block whatever the others say)."""
    if not isinstance(conditions, dict):
        raise UnknownKey("a Condition element that is not an object")
    unknown: UnknownKey | None = None
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            raise UnknownKey(f"operator {operator} without a key block")
        for key, expected in block.items():
            try:
                if not condition(operator, key, _as_list(expected), lookup, variables):
                    return False
            except UnknownKey as exc:
                unknown = unknown or exc
    if unknown is not None:
        raise unknown
    return True


def condition(operator: str, key: str, expected: list, lookup: Lookup, variables: bool = True) -> bool:
    """One ``operator: {key: expected}`` condition."""
    quantifier, _, base = operator.rpartition(":")
    if quantifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnknownKey(f"operator {operator}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base[:-len("IfExists")] if if_exists else base
    actual = lookup(key)
    if base == "Null":
        return (not actual) == (str(expected[0]).lower() == "true") if expected else False
    test, negated = _operator(base)
    if test is None:
        raise UnknownKey(f"operator {operator}")
    values = [v for v in (_expected_value(e, lookup, variables, base) for e in expected) if v is not None]
    if not actual:
        if if_exists:
            return True
        return quantifier == "ForAllValues" or (negated and quantifier != "ForAnyValue")

    def one(value: str) -> bool:
        hit = any(test(value, e) for e in values)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return all(one(v) for v in actual)
    if quantifier == "ForAnyValue":
        return any(one(v) for v in actual)
    hit = any(any(test(v, e) for e in values) for v in actual)
    return not hit if negated else hit


def _expected_value(value: Any, lookup: Lookup, variables: bool, base: str) -> str | None:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if variables and base.startswith(("String", "Arn")):
        return substitute(text, lookup)
    return text


def _operator(base: str) -> tuple[Callable[[str, str], bool] | None, bool]:
    if base in _NEGATED:
        return _TESTS[_NEGATED[base]], True
    return _TESTS.get(base), False


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UnknownKey(f"the number {text!r}") from None


def _date(text: str) -> float:
    text = str(text).strip()
    try:
        return float(text)  # epoch seconds
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UnknownKey(f"the date {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _in_network(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise UnknownKey(f"the address {value!r} or network {network!r}") from None


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": lambda v, e: bool(glob(e).match(v)),
    "NumericEquals": lambda v, e: _number(v) == _number(e),
    "NumericLessThan": lambda v, e: _number(v) < _number(e),
    "NumericLessThanEquals": lambda v, e: _number(v) <= _number(e),
    "NumericGreaterThan": lambda v, e: _number(v) > _number(e),
    "NumericGreaterThanEquals": lambda v, e: _number(v) >= _number(e),
    "DateEquals": lambda v, e: _date(v) == _date(e),
    "DateLessThan": lambda v, e: _date(v) < _date(e),
    "DateLessThanEquals": lambda v, e: _date(v) <= _date(e),
    "DateGreaterThan": lambda v, e: _date(v) > _date(e),
    "DateGreaterThanEquals": lambda v, e: _date(v) >= _date(e),
    "Bool": lambda v, e: v.lower() == e.lower(),
    "BinaryEquals": lambda v, e: v == e,
    "IpAddress": _in_network,
    "ArnEquals": lambda v, e: v == e,
    "ArnLike": arn_like,
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals",
            "NotIpAddress": "IpAddress", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
