"""Least-privilege analysis of IAM policies: a lint for one document, and a role's effective grants.

:func:`lint_policy_document` checks one identity policy before it is created (the
implementation calls it on ``LambdaSecretsManagerPolicy-<function>``): no ``*`` action,
no wildcard action or resource on Secrets Manager or KMS, no ``Allow`` with
``NotAction``/``NotResource``, KMS only through Secrets Manager (``kms:ViaService``).

:func:`analyse_role` reads every policy of a role (attached managed policies at their
default version, inline policies) and works out what it grants on Secrets Manager and
KMS; :func:`least_privilege_problems` says why those grants are more than "read exactly
this one secret". :func:`simulate_secret_access` asks IAM's policy simulator the same
question where the endpoint offers it.

Examples
--------
>>> lint_policy_document({"Version": "2012-10-17", "Statement": [
...     {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})
['statement 1: wildcard action secretsmanager:* on secretsmanager', 'statement 1: wildcard resource * for secretsmanager actions']
"""

from __future__ import annotations

import fnmatch
import json
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .session import aws_call, error_code

POLICY_VERSION = "2012-10-17"
#: Services whose grants this runbook restricts to exactly one secret (and its key).
SCOPED_SERVICES = ("secretsmanager", "kms")
#: Managed policies that grant far more than one secret; any of them on the role fails.
ADMIN_POLICY_NAMES = frozenset({
    "AdministratorAccess", "PowerUserAccess", "SecretsManagerReadWrite", "IAMFullAccess",
    "AWSKeyManagementServicePowerUser", "ReadOnlyAccess", "ViewOnlyAccess",
    "AWSLambda_FullAccess", "AWSLambdaFullAccess",
})
#: Secrets Manager actions a function needs to read its secret; anything else is a write or a list.
SECRET_READ_ACTIONS = frozenset({"secretsmanager:getsecretvalue", "secretsmanager:describesecret"})
KMS_READ_ACTIONS = frozenset({"kms:decrypt"})
#: Secret ARNs end with "-" and 6 random characters; "-??????" is the documented way to match them.
SECRET_SUFFIX_PATTERN = "-??????"


# -- one document -------------------------------------------------------------------------
def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _load(doc: Any) -> dict:
    if isinstance(doc, (bytes, str)):
        text = doc.decode() if isinstance(doc, bytes) else doc
        # GetPolicyVersion / GetRolePolicy return URL-encoded JSON on the wire; boto3 decodes
        # it, but a document copied from elsewhere may still be encoded.
        if text.lstrip().startswith("%7B"):
            text = urllib.parse.unquote(text)
        return json.loads(text)
    return doc


def _service(action: str) -> str:
    return action.split(":", 1)[0].lower() if ":" in action else action.lower()


def _scoped(action: str) -> bool:
    return action == "*" or _service(action) in SCOPED_SERVICES


def _resource_wildcard(resource: str) -> bool:
    """True when a resource pattern matches more than one named resource."""
    if resource == "*":
        return True
    trimmed = resource[: -len(SECRET_SUFFIX_PATTERN)] if resource.endswith(SECRET_SUFFIX_PATTERN) else resource
    return "*" in trimmed or "?" in trimmed


def lint_policy_document(doc: Any) -> list[str]:
    """Problems that make an identity policy more than least privilege (empty list: none).

    Parameters
    ----------
    doc:
        The policy document as a dict or JSON text.

    Returns
    -------
    list of str
        One line per problem, naming the statement (1-based, or its ``Sid``); never empty
        for ``Action: "*"``, a wildcard action or resource on secretsmanager/kms, an
        ``Allow`` with ``NotAction``/``NotResource``, or KMS without ``kms:ViaService``.
    """
    try:
        doc = _load(doc)
    except (ValueError, TypeError) as exc:
        return [f"policy is not valid JSON ({type(exc).__name__})"]
    if not isinstance(doc, dict):
        return ["policy document is not a JSON object"]
    problems = []
    if doc.get("Version") != POLICY_VERSION:
        problems.append(f"Version is {doc.get('Version')!r}, expected {POLICY_VERSION!r} "
                        "(older versions do not support policy variables)")
    statements = _as_list(doc.get("Statement"))
    if not statements:
        problems.append("policy has no Statement")
    for index, stmt in enumerate(statements, start=1):
        name = f"statement {stmt.get('Sid') or index}" if isinstance(stmt, dict) else f"statement {index}"
        if not isinstance(stmt, dict):
            problems.append(f"{name}: not a JSON object")
            continue
        effect = stmt.get("Effect")
        if effect not in ("Allow", "Deny"):
            problems.append(f"{name}: Effect {effect!r} is neither Allow nor Deny")
            continue
        if "Principal" in stmt or "NotPrincipal" in stmt:
            problems.append(f"{name}: an identity policy must not name a Principal")
        if effect == "Deny":
            continue  # a Deny can only take permissions away
        if "NotAction" in stmt:
            problems.append(f"{name}: Allow with NotAction grants every action not listed")
        if "NotResource" in stmt:
            problems.append(f"{name}: Allow with NotResource grants every resource not listed")
        actions = [str(a) for a in _as_list(stmt.get("Action"))]
        resources = [str(r) for r in _as_list(stmt.get("Resource"))]
        if "Action" in stmt and not actions:
            problems.append(f"{name}: empty Action")
        for action in actions:
            if action == "*":
                problems.append(f"{name}: wildcard action * (every action of every service)")
            elif _scoped(action) and ("*" in action or "?" in action):
                problems.append(f"{name}: wildcard action {action} on {_service(action)}")
        scoped_services = sorted({_service(a) for a in actions if _scoped(a) and a != "*"})
        if scoped_services or "*" in actions:
            label = "/".join(scoped_services) or "all"
            for resource in resources:
                if _resource_wildcard(resource):
                    problems.append(f"{name}: wildcard resource {resource} for {label} actions")
        if "kms" in scoped_services and not _has_via_service(stmt.get("Condition")):
            problems.append(f"{name}: kms actions without a kms:ViaService condition "
                            "(the key must be usable only through Secrets Manager)")
    return problems


def _has_via_service(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator_values in condition.values():
        if isinstance(operator_values, dict) and any(k.lower() == "kms:viaservice" for k in operator_values):
            return True
    return False
