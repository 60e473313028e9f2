"""Least-privilege analysis of IAM policies: a lint for one document, and a role's effective grants.

:func:`lint_policy_document` checks one identity policy before it is created (the
implementation calls it on ``LambdaSecretsManagerPolicy-<function>``): no ``*`` action,
no wildcard action or resource on Secrets Manager or KMS, no ``Allow`` with
``NotAction``/``NotResource``, KMS only through Secrets Manager (``kms:ViaService``).

:func:`analyse_role` reads every policy of a role (attached managed policies at their
default version, inline policies) and works out what it grants on Secrets Manager and
KMS; :func:`least_privilege_problems` says why those grants are more than "read exactly
this one secret". Asking AWS the same question (the policy simulator, a live probe as
the role) is :mod:`runbook_lib.access_probes`; who else can read a secret, with its
resource policy, is :mod:`runbook_lib.secret_readers`.

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
from typing import Any

from .session import aws_call

POLICY_VERSION = "2012-10-17"
#: Services whose grants this runbook restricts to exactly one secret (and its key).
SCOPED_SERVICES = ("secretsmanager", "kms")
#: Managed policies that grant far more than one secret; any of them on the role fails.
ADMIN_POLICY_NAMES = frozenset({
    "AdministratorAccess", "PowerUserAccess", "SecretsManagerReadWrite", "IAMFullAccess",
    "AWSKeyManagementServicePowerUser", "ReadOnlyAccess", "ViewOnlyAccess",
    "AWSLambda_FullAccess", "AWSLambdaFullAccess", "AWSSecretsManagerClientReadOnlyAccess",
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
        problems.extend(_lint_statement(stmt, index))
    return problems


def _lint_statement(stmt: Any, index: int) -> list[str]:
    """The problems of one statement of an identity policy."""
    name = f"statement {stmt.get('Sid') or index}" if isinstance(stmt, dict) else f"statement {index}"
    if not isinstance(stmt, dict):
        return [f"{name}: not a JSON object"]
    effect = stmt.get("Effect")
    if effect not in ("Allow", "Deny"):
        return [f"{name}: Effect {effect!r} is neither Allow nor Deny"]
    problems = []
    if "Principal" in stmt or "NotPrincipal" in stmt:
        problems.append(f"{name}: an identity policy must not name a Principal")
    if effect == "Deny":
        return problems  # a Deny can only take permissions away
    for key, what in (("NotAction", "every action"), ("NotResource", "every resource")):
        if key in stmt:
            problems.append(f"{name}: Allow with {key} grants {what} not listed")
    actions = [str(a) for a in _as_list(stmt.get("Action"))]
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
        problems += [f"{name}: wildcard resource {resource} for {label} actions"
                     for resource in (str(r) for r in _as_list(stmt.get("Resource"))) if _resource_wildcard(resource)]
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


# -- a role ---------------------------------------------------------------------------------
@dataclass
class PolicyStatement:
    """One statement of one of the role's policies, normalised."""

    policy: str          # "managed:<arn>" or "inline:<name>"
    sid: str
    effect: str
    actions: list
    resources: list
    not_action: bool = False
    not_resource: bool = False
    condition: dict = field(default_factory=dict)

    def covers_service(self, service: str) -> bool:
        """Whether this statement may allow or deny some action of ``service``."""
        if self.not_action:
            # NotAction covers every action it does not name; only "service:*" excludes a service.
            return not any(a == "*" or a.lower() == f"{service}:*" for a in self.actions)
        return any(a == "*" or _service(a) == service for a in self.actions)

    def matches(self, action: str, resource: str) -> bool:
        """Whether this statement applies to ``action`` on ``resource`` (conditions aside)."""
        action_hit = any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions)
        resource_hit = any(fnmatch.fnmatchcase(resource, r) for r in self.resources)
        return (action_hit != self.not_action) and (resource_hit != self.not_resource)


@dataclass
class RoleAnalysis:
    """What a role's policies grant on Secrets Manager and KMS, and what could not be read."""

    role_name: str
    role_arn: str = ""
    role_id: str = ""                                      # GetRole's RoleId: aws:userid is "<role id>:<session>"
    trust_policy: dict = field(default_factory=dict)       # who may assume the role
    managed_policies: list = field(default_factory=list)   # {name, arn, aws_managed, version}
    inline_policies: list = field(default_factory=list)    # names
    statements: list = field(default_factory=list)         # PolicyStatement on secretsmanager/kms
    lint: dict = field(default_factory=dict)               # policy -> problems
    permissions_boundary: str = ""
    unreadable: list = field(default_factory=list)         # {policy, reason}

    def add_document(self, policy: str, doc: Any) -> "RoleAnalysis":
        """Add one policy document (``managed:<arn>`` or ``inline:<name>``): its scoped statements and lint."""
        doc = _load(doc)
        self.statements.extend(s for s in _statements(policy, doc)
                               if any(s.covers_service(svc) for svc in SCOPED_SERVICES))
        problems = lint_policy_document(doc)
        if problems:
            self.lint[policy] = problems
        return self

    def grants(self, service: str) -> list[PolicyStatement]:
        return [s for s in self.statements if s.effect == "Allow" and s.covers_service(service)]

    def to_dict(self) -> dict:
        return {"role_name": self.role_name, "role_arn": self.role_arn, "role_id": self.role_id,
                "trust_policy": self.trust_policy, "managed_policies": self.managed_policies, "inline_policies": self.inline_policies,
                "permissions_boundary": self.permissions_boundary,
                "statements": [asdict(s) for s in self.statements],
                "lint": self.lint, "unreadable": self.unreadable}


def _statements(policy: str, doc: dict) -> list[PolicyStatement]:
    out = []
    for index, stmt in enumerate(_as_list(doc.get("Statement")), start=1):
        if not isinstance(stmt, dict):
            continue
        not_action = "NotAction" in stmt
        not_resource = "NotResource" in stmt
        out.append(PolicyStatement(
            policy=policy, sid=str(stmt.get("Sid") or index), effect=str(stmt.get("Effect")),
            actions=[str(a) for a in _as_list(stmt.get("NotAction" if not_action else "Action"))],
            resources=[str(r) for r in _as_list(stmt.get("NotResource" if not_resource else "Resource"))],
            not_action=not_action, not_resource=not_resource, condition=stmt.get("Condition") or {}))
    return out


def _paginate(client, method: str, key: str, **kwargs) -> list:
    return [item for page in client.get_paginator(method).paginate(**kwargs) for item in page[key]]


def analyse_role(iam, role_name: str, policy_cache: dict | None = None) -> RoleAnalysis:
    """Read every policy of ``role_name`` and keep the statements touching secretsmanager or kms.

    Parameters
    ----------
    iam:
        boto3 IAM client.
    role_name:
        An execution role (name, not ARN).
    policy_cache:
        ``{policy ARN: (version, document)}`` shared across roles, so a managed policy
        attached to many roles (the other functions of a region) is read once.

    Notes
    -----
    A policy that cannot be read is listed in ``unreadable`` with the reason (coverage),
    and an AWS managed policy is still judged by its name.
    """
    with aws_call("GetRole", role_name, "iam:GetRole"):
        role = iam.get_role(RoleName=role_name)["Role"]
    trust = role.get("AssumeRolePolicyDocument") or {}
    analysis = RoleAnalysis(role_name=role_name, role_arn=role["Arn"], role_id=role.get("RoleId", ""),
                            trust_policy=_load(trust) if trust else {},
                            permissions_boundary=(role.get("PermissionsBoundary") or {}).get(
                                "PermissionsBoundaryArn", ""))
    with aws_call("ListAttachedRolePolicies", role_name, "iam:ListAttachedRolePolicies"):
        attached = _paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role_name)
    cache = {} if policy_cache is None else policy_cache
    for item in attached:
        arn = item["PolicyArn"]
        record = {"name": item["PolicyName"], "arn": arn, "aws_managed": ":aws:policy/" in arn, "version": ""}
        analysis.managed_policies.append(record)
        try:
            if arn not in cache:
                cache[arn] = _managed_document(iam, arn)
        except Exception as exc:  # noqa: BLE001 - recorded as coverage, judged by name below
            analysis.unreadable.append({"policy": arn, "reason": str(exc)})
            continue
        record["version"], doc = cache[arn]
        analysis.add_document(f"managed:{arn}", doc)
    with aws_call("ListRolePolicies", role_name, "iam:ListRolePolicies"):
        names = _paginate(iam, "list_role_policies", "PolicyNames", RoleName=role_name)
    for name in names:
        analysis.inline_policies.append(name)
        try:
            with aws_call("GetRolePolicy", f"{role_name}/{name}", "iam:GetRolePolicy"):
                doc = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        except Exception as exc:  # noqa: BLE001
            analysis.unreadable.append({"policy": f"inline:{name}", "reason": str(exc)})
            continue
        analysis.add_document(f"inline:{name}", doc)
    return analysis


def _managed_document(iam, arn: str) -> tuple[str, Any]:
    with aws_call("GetPolicy", arn, "iam:GetPolicy"):
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    with aws_call("GetPolicyVersion", arn, "iam:GetPolicyVersion"):
        doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return version, doc


def _resource_is(resource: str, arn: str) -> bool:
    if resource == arn:
        return True
    return resource.endswith(SECRET_SUFFIX_PATTERN) and not _resource_wildcard(resource) \
        and fnmatch.fnmatchcase(arn, resource)


def least_privilege_problems(analysis: RoleAnalysis, secret_arn: str,
                             kms_key_arn: str = "", check_read: bool = True) -> list[str]:
    """Why the role's grants are more (or less) than reading exactly ``secret_arn``.

    Parameters
    ----------
    analysis:
        From :func:`analyse_role`.
    secret_arn:
        The one secret the role may read.
    kms_key_arn:
        The secret's customer managed key, whose ``kms:Decrypt`` the role may hold;
        empty when the secret uses the AWS managed key (then no KMS grant is needed).
    check_read:
        Also report when no identity policy grants the read. ``False`` when the caller
        decides the read itself (it may be granted by the secret's resource policy).

    Returns
    -------
    list of str
        Empty when least privilege holds.
    """
    problems = []
    for record in analysis.managed_policies:
        if record["aws_managed"] and record["name"] in ADMIN_POLICY_NAMES:
            problems.append(f"admin managed policy {record['name']} attached")
    for policy, lint in analysis.lint.items():
        problems.extend(f"{policy}: {p}" for p in lint if "Version" not in p)
    reads_secret = False
    for stmt in analysis.grants("secretsmanager"):
        where = f"{stmt.policy} statement {stmt.sid}"
        if stmt.not_action or stmt.not_resource:
            continue  # already reported by the lint
        for action in stmt.actions:
            if action != "*" and _service(action) != "secretsmanager":
                continue
            if action.lower() not in SECRET_READ_ACTIONS:
                problems.append(f"{where}: grants {action} (more than reading the secret)")
        for resource in stmt.resources:
            if not _resource_is(resource, secret_arn):
                problems.append(f"{where}: secretsmanager grant on {resource}, not only the secret")
        if any(_resource_is(r, secret_arn) for r in stmt.resources) and stmt.matches(
                "secretsmanager:GetSecretValue", secret_arn):
            reads_secret = True
    for stmt in analysis.grants("kms"):
        where = f"{stmt.policy} statement {stmt.sid}"
        if stmt.not_action or stmt.not_resource:
            continue
        for action in stmt.actions:
            if action != "*" and _service(action) == "kms" and action.lower() not in KMS_READ_ACTIONS:
                problems.append(f"{where}: grants {action} (more than decrypting the secret)")
        for resource in stmt.resources:
            if not kms_key_arn or resource != kms_key_arn:
                problems.append(f"{where}: kms grant on {resource}, not only the secret's key")
    if check_read and not reads_secret:
        problems.append(f"no policy of role {analysis.role_name} allows secretsmanager:GetSecretValue "
                        "on the secret: the function cannot read it")
    return list(dict.fromkeys(problems))


def effective_grants(analysis: RoleAnalysis) -> list[dict]:
    """The Allow statements on secretsmanager/kms as small rows (for evidence and tables)."""
    rows = []
    for stmt in analysis.statements:
        rows.append({"policy": stmt.policy, "sid": stmt.sid, "effect": stmt.effect,
                     ("not_actions" if stmt.not_action else "actions"): stmt.actions,
                     ("not_resources" if stmt.not_resource else "resources"): stmt.resources,
                     "conditions": sorted(stmt.condition)})
    return rows
