"""May principal P do action A on resource R? IAM's answer, for the lab's calls.

Every policy type AWS combines for a request in one account, with AWS's rules:

- identity-based policies (a user's inline, attached and group policies; a role's inline
  and attached policies), the principal's **permissions boundary**, and the **session
  policies** passed to ``AssumeRole`` (inline ``Policy`` and managed ``PolicyArns``);
- the resource's own policy: a secret's resource policy (``PutResourcePolicy``), a KMS
  key policy, an S3 bucket policy, a role's trust policy for ``AssumeRole``.

An explicit ``Deny`` in any of them wins. In the resource's own account a resource-based
policy that names the principal's ARN (or ``*``) allows on its own; one that names the
role of a session allows within the session policies and boundary; one that names the
account delegates to IAM, where the identity policies (within boundary and session
policies) must allow. Across accounts both sides must allow. A KMS key is the exception
AWS makes: its key policy must allow, directly or by delegating to the account.

Condition keys come from :mod:`.request_keys`, resource ARNs and policies from
:mod:`.resources`, the policy language from :mod:`.policy_language`; whatever cannot be
judged fails closed. Calls that need more than one permission on AWS are checked for all
of them (``iam:PassRole`` with ``iam:PassedToService`` when a function is given a role,
``lambda:GetLayerVersion`` for its layers, the tagging permission when a resource is
created with tags). A member account's principals are bound by the organisation's service
control policies (:mod:`.service_control`). Lambda function and layer policies and resource
control policies are not evaluated.

The public entry points: :func:`authorize` (a call the lab received), :func:`decide`
(one action on one resource for a known caller) and :func:`principal_may` (the same from a
principal ARN, for the Lambda runtime's own checks).

Examples
--------
>>> principal_may("arn:aws:iam::123456789012:role/orders-api-role", "logs:PutLogEvents",
...               "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/orders-api:log-stream:s"
...               ).allowed                                              # doctest: +SKIP
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .identity import ASSUMED_ROLE, IAM_USER, Caller
from .operations import ApiCall
from .policy_language import (ACCOUNT, ALLOW, DENY, DIRECT, NEUTRAL, ROLE, Policy, Principal, Verdict,
                              any_match, evaluate_policies, statement_applies)
from .request_keys import Arrival, RequestContext
from .request_keys import request_context as _full_context
from .resources import load_document, resource_policies, resource_tags, resources_for, secret_arn

__all__ = ["ACTION_PREFIX", "ACTION_NAME", "ALWAYS_ALLOWED", "ALLOW", "DENY", "NEUTRAL", "Decision",
           "iam_action", "authorize", "decide", "principal_may", "evaluate", "request_context",
           "policy_documents", "resources_for", "secret_arn", "trust_allows", "role_trusts_service"]

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
_WHERE = {"identity": "an identity-based policy", "resource": "a resource-based policy",
          "boundary": "a permissions boundary", "session": "a session policy", "scp": "a service control policy"}
_NONE = {"identity": "identity-based policy", "resource": "resource-based policy",
         "boundary": "permissions boundary", "session": "session policy", "scp": "service control policy"}


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
    source:
        Which policy type decided a denial: ``identity``, ``resource``, ``boundary``, ``session``.
    """

    allowed: bool
    action: str
    resource: str
    explicit: bool = False
    source: str = "identity"
    plain: bool = False

    def message(self, caller: Caller) -> str:
        """AWS's AccessDenied message for this decision."""
        head = f"User: {caller.arn} is not authorized to perform: {self.action} on resource: {self.resource}"
        if self.plain:
            return head
        if self.explicit:
            return f"{head} with an explicit deny in {_WHERE[self.source]}"
        return f"{head} because no {_NONE[self.source]} allows the {self.action} action"


def iam_action(call: ApiCall) -> str:
    """``service:Action`` IAM name of ``call``."""
    prefix = ACTION_PREFIX.get(call.service, call.service)
    name = ACTION_NAME.get((call.service, call.operation), call.operation)
    return f"{prefix}:{name}"


# --------------------------------------------------------------------------- entry points
def authorize(caller: Caller, call: ApiCall, arrival: Arrival | None = None) -> Decision:
    """Authorise ``call`` made by ``caller`` (IAM users and role sessions only)."""
    action = iam_action(call)
    if not caller.enforceable or action in ALWAYS_ALLOWED:
        return Decision(True, action, "*")
    context = _full_context(caller, call, arrival, action.split(":", 1)[0])
    decision = Decision(True, action, "*")
    for resource in resources_for(call, caller.account_id):
        decision = decide(caller, action, resource, context)
        if not decision.allowed:
            return decision
    for implied, resource, extra in implied_permissions(caller, call):
        prefix = implied.split(":", 1)[0]
        result = decide(caller, implied, resource, context.with_values(extra, (prefix,)))
        if not result.allowed:
            return result
    return decision


def decide(caller: Caller, action: str, resource: str, context: RequestContext, *,
           resource_policy: list[Policy] | None = None, resource_policy_required: bool = False,
           identity_enforced: bool = True) -> Decision:
    """Whether ``caller`` may do ``action`` on ``resource``, every policy type combined.

    Parameters
    ----------
    resource_policy:
        The resource-based policy to use (default: the resource's own, read from moto).
    resource_policy_required:
        The resource policy must allow (KMS keys, trust policies); otherwise it may add to
        the identity policies.
    identity_enforced:
        ``False`` judges the resource-based policy alone (identity policies taken as allowing),
        as the lab does for trust policies when IAM enforcement is off.
    """
    context = context.for_resource(resource, resource_tags(resource) if resource != "*" else {})
    is_kms_key = resource.startswith("arn:aws:kms:") and ":key/" in resource and action.startswith("kms:")
    policies = resource_policy if resource_policy is not None else (resource_policies(resource) or [])
    required = resource_policy_required or is_kms_key
    verdicts = _identity_verdicts(caller, action, resource, context) if identity_enforced else {}
    for source in ("identity", "boundary", "session"):
        if verdicts.get(source) is not None and verdicts[source].effect == DENY:
            return Decision(False, action, resource, True, source)
    ceiling = _service_control(caller, action, resource, context) if identity_enforced else None
    if ceiling is not None:
        return ceiling
    principal = Principal(caller.arn, caller.account_id, caller.role_arn if caller.kind == ASSUMED_ROLE else "")
    on_resource = evaluate_policies(policies, action, resource, context.lookup, principal) if policies \
        else Verdict(NEUTRAL)
    if on_resource.effect == DENY:
        return Decision(False, action, resource, True, "resource")
    grant = on_resource.grant if on_resource.effect == ALLOW else None
    same_account = _account_of(resource, caller.account_id) == caller.account_id
    failing = _first_failing(verdicts)  # identity path: identity, then boundary, then session
    limits = next((s for s in ("boundary", "session") if verdicts.get(s) is not None
                   and verdicts[s].effect != ALLOW), None)
    if required and grant is None:
        return Decision(False, action, resource, False, "resource")
    if same_account and grant == DIRECT:
        return Decision(True, action, resource)
    if same_account and grant == ROLE:
        return Decision(limits is None, action, resource, False, limits or "identity")
    if failing is not None:
        return Decision(False, action, resource, False, failing)
    if not same_account and grant is None:
        return Decision(False, action, resource, False, "resource")
    return Decision(True, action, resource)


def _identity_verdicts(caller: Caller, action: str, resource: str, context: RequestContext) -> dict:
    out: dict[str, Verdict | None] = {
        "identity": evaluate_policies(identity_policies(caller), action, resource, context.lookup)}
    boundary = boundary_policy(caller)
    out["boundary"] = evaluate_policies([boundary], action, resource, context.lookup) if boundary else None
    sessions = session_policies(caller)
    out["session"] = evaluate_policies(sessions, action, resource, context.lookup) if sessions else None
    return out


def _service_control(caller: Caller, action: str, resource: str, context: RequestContext) -> Decision | None:
    """The organisation's SCPs: a denial when a level denies or allows nothing (``None``: passes)."""
    from .service_control import scp_levels

    levels = scp_levels(caller.account_id)
    verdicts = [evaluate_policies(level, action, resource, context.lookup) for level in levels or []]
    if any(v.effect == DENY for v in verdicts):
        return Decision(False, action, resource, True, "scp")
    if any(v.effect != ALLOW for v in verdicts):
        return Decision(False, action, resource, False, "scp")
    return None


def _first_failing(verdicts: dict) -> str | None:
    for source in ("identity", "boundary", "session"):
        verdict = verdicts.get(source)
        if verdict is not None and verdict.effect != ALLOW:
            return source
    return None


def _account_of(resource: str, default: str) -> str:
    parts = resource.split(":")
    return parts[4] if len(parts) > 4 and parts[4] and parts[4] != "*" and parts[0] == "arn" else default


def principal_may(principal_arn: str, action: str, resource: str,
                  context: dict[str, Any] | None = None) -> Decision:
    """May the principal ``principal_arn`` do ``action`` on ``resource``?

    ``principal_arn`` is an IAM user, a role (judged as a session of it with no session
    policy), or an assumed-role session ARN; ``context`` adds condition keys (names as in
    policies). A principal that does not exist may do nothing.
    """
    caller = caller_from_arn(principal_arn)
    if caller is None:
        return Decision(False, action, resource)
    from .request_keys import principal_absent

    base = RequestContext(principal_keys_for(caller), frozenset({action.split(":", 1)[0]}),
                          frozenset(principal_absent(caller)))
    return decide(caller, action, resource, base.with_values(context or {}))


def caller_from_arn(arn: str) -> Caller | None:
    """A :class:`Caller` for a user, role or assumed-role ARN of an existing principal."""
    from .resources import iam_entity

    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None
    account, resource = parts[4], parts[5]
    if resource.startswith("user/"):
        user = iam_entity("user", resource.rsplit("/", 1)[-1], account)
        return Caller(IAM_USER, user.arn, account, "", user.id, user.name) if user is not None else None
    if resource.startswith(("role/", "assumed-role/")):
        role_name = resource.split("/")[1] if resource.startswith("assumed-role/") else resource.rsplit("/", 1)[-1]
        session = resource.split("/")[2] if resource.startswith("assumed-role/") else "lab-check"
        role = iam_entity("role", role_name, account)
        if role is None:
            return None
        return Caller(ASSUMED_ROLE, f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}", account, "",
                      f"{role.id}:{session}", session, role_name=role_name, role_arn=role.arn, role_id=role.id,
                      session_name=session)
    return None


def principal_keys_for(caller: Caller) -> dict[str, list[str]]:
    from .request_keys import now_context_values, principal_keys

    return {**principal_keys(caller), **now_context_values(), "aws:viaawsservice": ["false"]}


# --------------------------------------------------------------------------- the principal's policies
def identity_policies(caller: Caller) -> list[Policy]:
    """Identity-based policies of ``caller`` read from moto's IAM backend, with their names."""
    from moto.iam.models import iam_backends

    backend = iam_backends[caller.account_id]["aws"]
    found: list[Policy] = []
    try:
        if caller.kind == IAM_USER:
            name = caller.user_name
            found += [Policy(f"inline policy {p} of user {name}", load_document(backend.get_user_policy(name, p)
                                                                                 .get("policy_document", "")))
                      for p in backend.list_user_policies(name)]
            found += [_managed(p) for p in backend.list_attached_user_policies(name)[0]]
            for group in backend.get_groups_for_user(name):
                found += [Policy(f"inline policy {p} of group {group.name}",
                                 load_document(backend.get_group_policy(group.name, p).get("policy_document", "")))
                          for p in backend.list_group_policies(group.name)]
                found += [_managed(p) for p in backend.list_attached_group_policies(group.name)[0]]
        elif caller.kind == ASSUMED_ROLE:
            name = caller.role_name
            found += [Policy(f"inline policy {p} of role {name}", load_document(backend.get_role_policy(name, p)[1]))
                      for p in backend.list_role_policies(name)]
            found += [_managed(p) for p in backend.list_attached_role_policies(name)[0]]
    except Exception:  # the user or role is gone: no policy grants anything
        return []
    return [p for p in found if p.document]


def _managed(policy: Any) -> Policy:
    arn = getattr(policy, "arn", "a managed policy")
    for version in getattr(policy, "versions", None) or []:
        if version.is_default:
            return Policy(f"managed policy {arn}", load_document(version.document))
    return Policy(f"managed policy {arn}", load_document(getattr(policy, "document", "") or ""))


def policy_documents(caller: Caller) -> list[dict]:
    """The identity-based policy documents of ``caller`` (without their names)."""
    return [p.document for p in identity_policies(caller)]


def boundary_policy(caller: Caller) -> Policy | None:
    """The permissions boundary of the user or role (an empty policy when its ARN names none)."""
    from .resources import iam_entity

    kind, name = ("user", caller.user_name) if caller.kind == IAM_USER else ("role", caller.role_name)
    entity = iam_entity(kind, name, caller.account_id)
    arn = getattr(entity, "permissions_boundary_arn", None) if entity is not None else None
    if not arn:
        return None
    return _managed_by_arn(caller.account_id, arn, "permissions boundary")


def session_policies(caller: Caller) -> list[Policy]:
    """The session policies of a role session: inline ``Policy`` and managed ``PolicyArns``."""
    if caller.kind != ASSUMED_ROLE:
        return []
    found = [Policy(f"the session policy of {caller.arn}", load_document(caller.session_policy))] \
        if caller.session_policy else []
    found += [_managed_by_arn(caller.account_id, arn, "session policy") for arn in caller.session_policy_arns]
    return found


def _managed_by_arn(account: str, arn: str, role: str) -> Policy:
    from moto.iam.models import iam_backends

    try:
        return _managed(iam_backends[account]["aws"].get_policy(arn))
    except Exception:  # a policy ARN that names nothing allows nothing
        return Policy(f"the {role} {arn} (not found)", {"Version": "2012-10-17", "Statement": []})


# --------------------------------------------------------------------------- more than one permission
def implied_permissions(caller: Caller, call: ApiCall) -> list[tuple[str, str, dict]]:
    """The other permissions AWS checks for ``call``: ``(action, resource, extra condition keys)``."""
    from .resources import function_arn

    params, account, region = call.params or {}, caller.account_id, call.region
    out: list[tuple[str, str, dict]] = []
    if call.service == "lambda" and call.operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        function = function_arn(account, region, str(params.get("FunctionName", "")))
        if params.get("Role"):
            out.append(("iam:PassRole", str(params["Role"]), {"iam:PassedToService": "lambda.amazonaws.com",
                                                              "iam:AssociatedResourceArn": function}))
        out += [("lambda:GetLayerVersion", str(layer), {}) for layer in params.get("Layers") or []]
        if call.operation == "CreateFunction" and params.get("Tags"):
            out.append(("lambda:TagResource", function, {}))
    tagged = {("secretsmanager", "CreateSecret"): "secretsmanager:TagResource", ("kms", "CreateKey"): "kms:TagResource",
              ("iam", "CreateRole"): "iam:TagRole", ("iam", "CreatePolicy"): "iam:TagPolicy",
              ("iam", "CreateUser"): "iam:TagUser"}.get((call.service, call.operation))
    if tagged and params.get("Tags"):
        out += [(tagged, resource, {}) for resource in resources_for(call, account)]
    return out


# --------------------------------------------------------------------------- compatibility helpers
def request_context(caller: Caller, call: ApiCall, arrival: Arrival | None = None) -> RequestContext:
    """Condition keys of ``call`` made by ``caller`` (see :mod:`.request_keys`)."""
    return _full_context(caller, call, arrival, iam_action(call).split(":", 1)[0])


def evaluate(documents: Iterable[dict | Policy], action: str, resource: str,
             context: RequestContext | dict[str, list[str]] | None = None) -> str:
    """``Allow``, ``Deny`` (explicit) or ``Neutral`` for ``action`` on ``resource``.

    ``context`` is a :class:`~.request_keys.RequestContext` or a plain ``{key: values}``
    (keys not in it are absent when AWS could leave them out, unknown otherwise).
    """
    if not isinstance(context, RequestContext):
        context = RequestContext({k.lower(): v for k, v in (context or {}).items()})
    return evaluate_policies(documents, action, resource, context.lookup).effect


# --------------------------------------------------------------------------- service trust
def role_trusts_service(role_arn_or_name: str, service: str, account_id: str = "123456789012") -> bool:
    """Whether the role's trust policy lets ``service`` (``lambda.amazonaws.com``) assume it.

    moto's own trust check crashes (TypeError) on a ``Service`` principal; this one
    reads ``Principal.Service`` (string or list, ``*`` wildcards) and honours
    ``Deny`` statements.
    """
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    try:
        role = (backend.get_role_by_arn(role_arn_or_name) if role_arn_or_name.startswith("arn:")
                else backend.get_role(role_arn_or_name))
    except Exception:  # no such role: nothing trusts anyone
        return False
    return trust_allows(load_document(role.assume_role_policy_document), service)


def trust_allows(document: dict, service: str, action: str = "sts:AssumeRole") -> bool:
    """Evaluate a trust policy ``document`` for a service principal (conditions fail closed)."""
    allowed = False
    statements = document.get("Statement", [])
    context = RequestContext({"aws:principalservicename": [service]}, frozenset({"sts"}))
    for statement in [statements] if isinstance(statements, dict) else statements:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else principal
        if not (principal == "*" or any_match(services, service)):
            continue
        try:
            applies = statement_applies(statement, action, "*", context.lookup)
        except Exception:  # an unjudgeable condition: an Allow does not match, a Deny applies
            applies = statement.get("Effect") == "Deny"
        if not applies:
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


__all__ += ["ACCOUNT", "DIRECT", "ROLE", "identity_policies", "boundary_policy", "session_policies",
            "implied_permissions", "caller_from_arn"]
