"""Resource-level IAM authorisation for requests signed by IAM users and role sessions.

moto's own enforcement checks every non-S3/IAM/STS action against resource ``*``, so a
policy scoped to one secret ARN denies everything. Here each call is authorised with
its real resource ARN (Secrets Manager's full ARN with suffix, the KMS key ARN, the
DynamoDB table ARN, the Lambda function ARN, the log group ARN...), against the
caller's identity-based policies: inline, attached managed and group policies for a
user; the role's policies (and the session policy, if any) for a role session.

Evaluation follows AWS's order: an explicit ``Deny`` wins, then an ``Allow``, else an
implicit deny. ``Action``/``NotAction``, ``Resource``/``NotResource`` with ``*``/``?``
wildcards and the condition operators ``String*``, ``Arn*``, ``Bool`` and ``Null``
(with ``...IfExists`` and ``ForAnyValue:``/``ForAllValues:``) are supported on the
keys the lab can know (``aws:PrincipalArn``, ``aws:PrincipalAccount``,
``aws:RequestedRegion``, ``aws:username``, ``aws:userid``, ``aws:SourceIp``,
``aws:SecureTransport``, and ``iam:PolicyARN`` on calls that name a managed policy). Keys set only by a service acting for the caller
(``aws:SourceAccount``, ``kms:ViaService``) are absent, as on a direct call: the lab
does not invent the KMS Decrypt that Secrets Manager would make on AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from .identity import ASSUMED_ROLE, IAM_USER, Caller
from .operations import ApiCall

#: IAM action prefix when it differs from the signing name.
ACTION_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
#: IAM action name when it differs from the operation name.
ACTION_NAME = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "GetLayerVersionByArn"): "GetLayerVersion",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("s3", "ListObjectsV2"): "ListBucket", ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadObject"): "GetObject", ("s3", "HeadBucket"): "ListBucket",
    ("s3", "CopyObject"): "PutObject", ("s3", "DeleteObjects"): "DeleteObject",
    ("s3", "ListBuckets"): "ListAllMyBuckets",
}
#: Calls AWS never denies on identity policy.
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}

ALLOW, DENY, NEUTRAL = "Allow", "Deny", "Neutral"


@dataclass(frozen=True)
class Decision:
    """Outcome of authorising one call.

    Attributes
    ----------
    allowed:
        Whether the call may proceed.
    action, resource:
        The first action/resource pair that was denied (or the last one checked).
    explicit:
        ``True`` when an explicit ``Deny`` statement matched.
    """

    allowed: bool
    action: str
    resource: str
    explicit: bool = False

    def message(self, caller: Caller) -> str:
        """AWS's AccessDenied message for this decision."""
        why = ("with an explicit deny in an identity-based policy" if self.explicit
               else f"because no identity-based policy allows the {self.action} action")
        return (f"User: {caller.arn} is not authorized to perform: {self.action} "
                f"on resource: {self.resource} {why}")


def iam_action(call: ApiCall) -> str:
    """``service:Action`` IAM name of ``call``."""
    prefix = ACTION_PREFIX.get(call.service, call.service)
    name = ACTION_NAME.get((call.service, call.operation), call.operation)
    return f"{prefix}:{name}"


def authorize(caller: Caller, call: ApiCall) -> Decision:
    """Authorise ``call`` made by ``caller`` (IAM users and role sessions only)."""
    action = iam_action(call)
    if not caller.enforceable or action in ALWAYS_ALLOWED:
        return Decision(True, action, "*")
    documents = policy_documents(caller)
    session_documents = [_load(caller.session_policy)] if caller.session_policy else []
    context = request_context(caller, call)
    decision = Decision(True, action, "*")
    for resource in resources_for(call, caller.account_id):
        verdict = evaluate(documents, action, resource, context)
        if verdict == ALLOW and session_documents:
            session = evaluate(session_documents, action, resource, context)
            verdict = session if session != ALLOW else ALLOW
        if verdict != ALLOW:
            return Decision(False, action, resource, explicit=verdict == DENY)
        decision = Decision(True, action, resource)
    return decision


def request_context(caller: Caller, call: ApiCall) -> dict[str, list[str]]:
    """Condition keys the lab can evaluate for ``call`` (lower-cased names)."""
    principal = caller.role_arn if caller.kind == ASSUMED_ROLE else caller.arn
    context = {
        "aws:principalarn": [principal],
        "aws:principalaccount": [caller.account_id],
        "aws:principaltype": [caller.kind],
        "aws:requestedregion": [call.region],
        "aws:userid": [caller.principal_id],
        "aws:securetransport": ["false"],
        "aws:sourceip": ["127.0.0.1"],
    }
    if caller.kind == IAM_USER:
        context["aws:username"] = [caller.user_name]
    if call.service == "iam" and (call.params or {}).get("PolicyArn"):  # Attach/DetachRolePolicy...
        context["iam:policyarn"] = [call.params["PolicyArn"]]
    return context


# --------------------------------------------------------------------------- policies

def policy_documents(caller: Caller) -> list[dict]:
    """Identity-based policy documents of ``caller`` read from moto's IAM backend."""
    from moto.iam.models import iam_backends

    backend = iam_backends[caller.account_id]["aws"]
    raw: list[Any] = []
    try:
        if caller.kind == IAM_USER:
            name = caller.user_name
            raw += [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
            raw += backend.list_attached_user_policies(name)[0]
            for group in backend.get_groups_for_user(name):
                raw += [backend.get_group_policy(group.name, p)
                        for p in backend.list_group_policies(group.name)]
                raw += backend.list_attached_group_policies(group.name)[0]
        elif caller.kind == ASSUMED_ROLE:
            name = caller.role_name
            raw += [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
            raw += backend.list_attached_role_policies(name)[0]
    except Exception:  # the user or role is gone: no policy grants anything
        return []
    return [d for d in (_document(p) for p in raw) if d]


def _document(policy: Any) -> dict | None:
    if isinstance(policy, str):
        return _load(policy)
    if isinstance(policy, dict):
        return _load(policy.get("policy_document") or policy.get("PolicyDocument") or "")
    versions = getattr(policy, "versions", None)
    if versions:  # a managed policy: its default version
        for version in versions:
            if version.is_default:
                return _load(version.document)
    document = getattr(policy, "document", None)
    return _load(document) if document else None


def _load(document: Any) -> dict:
    if isinstance(document, dict):
        return document
    try:
        from urllib.parse import unquote

        text = document if document.lstrip().startswith("{") else unquote(document)
        value = json.loads(text)
        return value if isinstance(value, dict) else {}
    except (ValueError, AttributeError):
        return {}


def evaluate(documents: Iterable[dict], action: str, resource: str,
             context: dict[str, list[str]] | None = None) -> str:
    """``Allow``, ``Deny`` (explicit) or ``Neutral`` for ``action`` on ``resource``."""
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        for statement in statements:
            if not _statement_applies(statement, action, resource, context or {}):
                continue
            if statement.get("Effect") == "Deny":
                return DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return ALLOW if allowed else NEUTRAL


def _statement_applies(statement: dict, action: str, resource: str,
                       context: dict[str, list[str]]) -> bool:
    if "NotAction" in statement:
        if _any_match(statement["NotAction"], action, ignore_case=True):
            return False
    elif not _any_match(statement.get("Action", []), action, ignore_case=True):
        return False
    if "NotResource" in statement:
        if _any_match(statement["NotResource"], resource):
            return False
    elif "Resource" in statement and not _any_match(statement["Resource"], resource):
        return False
    return conditions_hold(statement.get("Condition") or {}, context)


def _any_match(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(_glob(p, ignore_case).match(value) for p in patterns)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


# --------------------------------------------------------------------------- conditions

def conditions_hold(conditions: dict, context: dict[str, list[str]]) -> bool:
    """Whether every condition block holds for ``context`` (unknown operators: no)."""
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            return False
        for key, expected in block.items():
            expected = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            if not _condition(operator, context.get(key.lower()), expected):
                return False
    return True


def _condition(operator: str, actual: list[str] | None, expected: list[str]) -> bool:
    quantifier = ""
    if ":" in operator:
        quantifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[:-len("IfExists")] if if_exists else operator
    if base == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    negated = "Not" in base
    if actual is None:
        return if_exists or negated or quantifier == "ForAllValues"
    test = _OPERATORS.get(base.replace("Not", ""))
    if test is None:
        return False

    def one(value: str) -> bool:
        hit = any(test(value, e) for e in expected)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


_OPERATORS = {
    "StringEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": lambda v, e: bool(_glob(e, False).match(v)),
    "ArnEquals": lambda v, e: v == e,
    "ArnLike": lambda v, e: bool(_glob(e, False).match(v)),
    "Bool": lambda v, e: v.lower() == e.lower(),
}


# --------------------------------------------------------------------------- resources

def resources_for(call: ApiCall, account_id: str) -> list[str]:
    """Resource ARNs AWS authorises ``call`` against (``["*"]`` where AWS uses ``*``)."""
    resolver = _RESOLVERS.get(call.service)
    arns: list[str] = []
    if resolver is not None:
        try:
            arns = resolver(call, account_id, call.region, call.params or {})
        except Exception:  # a malformed request: moto answers it with the right error
            arns = []
    return arns or ["*"]


def _secretsmanager(call, account, region, params) -> list[str]:
    secret_id = params.get("SecretId") or params.get("Name")
    if not secret_id:
        return []
    arn = secret_arn(account, region, secret_id)
    if call.operation == "CreateSecret" and arn.endswith(f":secret:{secret_id}"):  # not made yet
        return [f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}-??????"]
    return [arn]


def secret_arn(account: str, region: str, secret_id: str) -> str:
    """Full ARN (with the random suffix) of a secret given by name or ARN."""
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    if secret is not None:
        return secret.arn
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _kms(call, account, region, params) -> list[str]:
    key_id = params.get("KeyId") or params.get("TargetKeyId")
    if not key_id:
        alias = params.get("AliasName")
        return [f"arn:aws:kms:{region}:{account}:{alias}"] if alias else []
    from moto.kms.models import kms_backends

    try:
        key_id = kms_backends[account][region].any_id_to_key_id(key_id)
    except Exception:  # unknown alias: authorise on the alias, moto reports NotFound
        return [f"arn:aws:kms:{region}:{account}:{key_id}" if key_id.startswith("alias/")
                else key_id]
    return [f"arn:aws:kms:{region}:{account}:key/{key_id}"]


def _dynamodb(call, account, region, params) -> list[str]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"

    if isinstance(params.get("RequestItems"), dict):
        return [table(name) for name in params["RequestItems"]]
    if isinstance(params.get("TransactItems"), list):
        names = []
        for item in params["TransactItems"]:
            for body in (item or {}).values():
                if isinstance(body, dict) and body.get("TableName"):
                    names.append(table(body["TableName"]))
        return names
    name = params.get("TableName") or params.get("ResourceArn")
    if not name:
        return []
    arn = table(name)
    if params.get("IndexName") and call.operation in ("Query", "Scan"):
        arn += f"/index/{params['IndexName']}"
    return [arn]


def _lambda(call, account, region, params) -> list[str]:
    layer = params.get("LayerName")
    if layer:
        base = layer if layer.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:layer:{layer}"
        version = params.get("VersionNumber")
        return [f"{base}:{version}" if version and not base.count(":") > 6 else base]
    if params.get("Arn") and ":layer:" in params["Arn"]:
        return [params["Arn"]]
    name = params.get("FunctionName")
    if not name and str(params.get("Resource", "")).startswith("arn:"):  # ListTags, TagResource...
        name = params["Resource"]
    if not name:
        return []
    # As on AWS, a call with a qualifier (a version or alias) is authorised against the
    # qualified ARN: a policy can allow deleting versions without allowing the function.
    qualifier = params.get("Qualifier")
    if name.startswith("arn:"):
        parts = name.split(":")
        qualifier = qualifier or (parts[7] if len(parts) > 7 else None)
        base = ":".join(parts[:7])
    else:
        if ":" in name:  # "account:function:name" partial ARN or "name:qualifier"
            parts = name.split(":")
            if len(parts) >= 3 and parts[1] == "function":
                name, qualifier = parts[2], qualifier or (parts[3] if len(parts) > 3 else None)
            else:
                name, qualifier = parts[0], qualifier or parts[1]
        base = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return [f"{base}:{qualifier}" if qualifier else base]


def _logs(call, account, region, params) -> list[str]:
    group = params.get("logGroupName")
    if not group and params.get("logGroupIdentifier"):
        group = params["logGroupIdentifier"].split(":log-group:")[-1]
    if not group:
        return [f"arn:aws:logs:{region}:{account}:log-group:*"]
    base = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    stream = params.get("logStreamName")
    if stream and call.operation in ("PutLogEvents", "GetLogEvents"):
        return [f"{base}:log-stream:{stream}"]
    return [f"{base}:*"]


def _iam(call, account, region, params) -> list[str]:
    for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"),
                      ("InstanceProfileName", "instance-profile")):
        name = params.get(key)
        if name:
            path = (params.get("Path") or "/") if call.operation.startswith("Create") \
                else _iam_path(kind, name, account)
            return [f"arn:aws:iam::{account}:{kind}{path}{name}"]
    if params.get("PolicyArn"):
        return [params["PolicyArn"]]
    if params.get("PolicySourceArn"):  # SimulatePrincipalPolicy: authorised on the principal
        return [params["PolicySourceArn"]]
    if call.operation == "CreatePolicy" and params.get("PolicyName"):
        return [f"arn:aws:iam::{account}:policy{params.get('Path', '/')}{params['PolicyName']}"]
    return []


def _iam_path(kind: str, name: str, account: str) -> str:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    try:
        if kind == "role":
            return backend.get_role(name).path
        if kind == "user":
            return backend.get_user(name).path
    except Exception:  # not there yet: AWS would authorise on the default path
        pass
    return "/"


def _sts(call, account, region, params) -> list[str]:
    return [params["RoleArn"]] if params.get("RoleArn") else []


def _cloudtrail(call, account, region, params) -> list[str]:
    name = params.get("Name") or params.get("TrailName") or params.get("ResourceId")
    if not name:
        return []
    return [name if name.startswith("arn:") else f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"]


def _cloudfront(call, account, region, params) -> list[str]:
    dist = params.get("Id") or params.get("DistributionId")
    return [f"arn:aws:cloudfront::{account}:distribution/{dist}"] if dist else []


def _s3(call, account, region, params) -> list[str]:
    bucket = params.get("Bucket")
    if not bucket:
        return []
    key = params.get("Key")
    return [f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"]


_RESOLVERS = {
    "secretsmanager": _secretsmanager, "kms": _kms, "dynamodb": _dynamodb,
    "lambda": _lambda, "logs": _logs, "iam": _iam, "sts": _sts,
    "cloudtrail": _cloudtrail, "cloudfront": _cloudfront, "s3": _s3,
}


# --------------------------------------------------------------------------- trust

def role_trusts_service(role_arn_or_name: str, service: str,
                        account_id: str = "123456789012") -> bool:
    """Whether the role's trust policy lets ``service`` (``lambda.amazonaws.com``) assume it.

    moto's own trust check crashes (TypeError) on a ``Service`` principal; this one
    reads ``Principal.Service`` (string or list, ``*`` wildcards) and honours
    ``Deny`` statements and the conditions above.
    """
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    try:
        role = (backend.get_role_by_arn(role_arn_or_name) if role_arn_or_name.startswith("arn:")
                else backend.get_role(role_arn_or_name))
    except Exception:  # no such role: nothing trusts anyone
        return False
    return trust_allows(_load(role.assume_role_policy_document), service)


def trust_allows(document: dict, service: str, action: str = "sts:AssumeRole") -> bool:
    """Evaluate a trust policy ``document`` for a service principal."""
    allowed = False
    statements = document.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        if not _any_match(statement.get("Action", []), action, ignore_case=True):
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else principal
        if not (principal == "*" or _any_match(services, service)):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
