"""``sts:AssumeRole`` as AWS decides it: the role's trust policy and the caller's permission.

moto hands out credentials for any role ARN, even one that does not exist. AWS checks the
target role's trust policy, a resource-based policy naming who may assume it: in the
role's own account a trust policy naming the caller's ARN is enough, one naming the
account delegates to the caller's identity policies; across accounts both must allow.
Session tags need ``sts:TagSession`` and a source identity ``sts:SetSourceIdentity``, on
both sides. The lab checks the trust policy always (the administrator's ``*`` policy does
not make it trusted) and the identity side when IAM enforcement is on. Duration limits
are checked as AWS does (the role's ``MaxSessionDuration``, one hour for role chaining).

What the call asked for beyond what moto keeps (tags, ``PolicyArns``, ``SourceIdentity``)
is remembered for the new session (:func:`remember`).
"""

from __future__ import annotations

import json
import re

from .iam_enforcement import Decision, decide
from .identity import ASSUMED_ROLE, Caller, SessionExtras, remember_session
from .operations import ApiCall
from .request_keys import Arrival, request_context, request_tags
from .resources import load_document

ASSUME_OPERATIONS = ("AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")
CHAINED_MAX_SECONDS = 3600


def check_assume_role(caller: Caller, call: ApiCall, arrival: Arrival | None,
                      enforce_identity: bool) -> tuple[str, str, int] | None:
    """``None`` when the call may go on, else ``(code, message, status)`` of AWS's refusal."""
    params = call.params or {}
    role_arn = str(params.get("RoleArn", ""))
    if call.operation != "AssumeRole":
        return ("AccessDenied", f"the lab does not verify the identity tokens or assertions of "
                f"{call.operation}: not authorized to perform sts:{call.operation} on resource: {role_arn}", 403)
    role = _role(role_arn)
    actions = ["sts:AssumeRole"] + (["sts:TagSession"] if params.get("Tags") else []) + \
        (["sts:SetSourceIdentity"] if params.get("SourceIdentity") else [])
    if role is None:
        return "AccessDenied", Decision(False, actions[0], role_arn, plain=True).message(caller), 403
    trust = [_trust_policy(role)]
    context = request_context(caller, call, arrival, "sts")
    for action in actions:
        decision = decide(caller, action, role_arn, context, resource_policy=trust,
                          resource_policy_required=True, identity_enforced=enforce_identity)
        if not decision.allowed:
            return "AccessDenied", Decision(False, action, role_arn, plain=True).message(caller), 403
    return _duration_problem(caller, role, params)


def _role(role_arn: str):
    from moto.iam.models import iam_backends

    match = re.match(r"^arn:aws:iam::(\d{12}):role/", role_arn)
    if not match:
        return None
    try:
        return iam_backends[match.group(1)]["aws"].get_role_by_arn(role_arn)
    except Exception:  # no such role: AWS answers AccessDenied, not NotFound
        return None


def _trust_policy(role):
    from .policy_language import Policy

    return Policy(f"the trust policy of {role.arn}", load_document(role.assume_role_policy_document))


def _duration_problem(caller: Caller, role, params: dict) -> tuple[str, str, int] | None:
    try:
        duration = int(params.get("DurationSeconds") or 3600)
    except (TypeError, ValueError):
        return None  # moto answers the validation error
    if caller.kind == ASSUMED_ROLE and duration > CHAINED_MAX_SECONDS:
        return ("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit "
                "for roles assumed by role chaining.", 400)
    maximum = int(getattr(role, "max_session_duration", None) or 3600)
    if duration > maximum:
        return "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", 400
    return None


def remember(call: ApiCall, payload: bytes) -> None:
    """After a successful ``AssumeRole``: keep its tags, policy ARNs and source identity."""
    params = call.params or {}
    match = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", payload or b"")
    if not match:
        try:
            match_key = json.loads(payload)["Credentials"]["AccessKeyId"]
        except (ValueError, KeyError, TypeError):
            return
    else:
        match_key = match.group(1).decode()
    arns = tuple(str(p.get("arn", "")) for p in params.get("PolicyArns") or [] if isinstance(p, dict))
    remember_session(match_key, SessionExtras(tags=request_tags(params), policy_arns=arns,
                                              source_identity=str(params.get("SourceIdentity") or "")))
