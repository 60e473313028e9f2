"""``iam:SimulatePrincipalPolicy``, answered by the lab's own policy evaluation.

moto has no policy simulator; the lab answers from the same evaluation that decides its calls
(:func:`.iam_enforcement.decide`), so a simulated decision is what a call would get with IAM
enforcement on. AWS's rules for the request hold: ``PolicySourceArn`` names an existing user or
role, ``CallerArn`` can only be an IAM user, and ``CallerArn`` is required when a
``ResourcePolicy`` is given and the source is not a user (the policy's ``Principal`` needs a
value); without ``ResourcePolicy`` only the principal's identity-based policies, its permissions
boundary and the organisation's SCPs are evaluated, as AWS does. ``ContextEntries`` override the
principal's own keys; a condition the lab cannot evaluate fails closed (the decision is a denial)
and is listed in ``MissingContextValues``.

What the lab cannot simulate is refused as ``NotImplemented`` (a group as the source, a
``CallerArn`` other than the source user, added or boundary policy documents, resource owners,
paging), never answered approximately.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .errors import Response, aws_error, xml_escape
from .iam_enforcement import boundary_policy, caller_from_arn, decide, identity_policies, principal_keys_for
from .operations import ApiCall
from .policy_language import Policy, Principal, evaluate_policies
from .request_keys import RequestContext, principal_absent

#: Parameters AWS accepts that the lab does not simulate: refused, not ignored.
UNSIMULATED = ("PolicyInputList", "PermissionsBoundaryPolicyInputList", "ResourceOwner",
               "ResourceHandlingOption", "Marker")
_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"


def simulate_principal_policy(call: ApiCall) -> Response:
    """The ``SimulatePrincipalPolicy`` response (or AWS's error) for ``call``."""
    params = call.params
    problem = _refusal(params)
    if problem is not None:
        return aws_error(call, *problem)
    caller = caller_from_arn(params["PolicySourceArn"])
    if caller is None:
        return aws_error(call, "NoSuchEntity", f"{params['PolicySourceArn']} cannot be found.", 404)
    resource_policy = params.get("ResourcePolicy")
    try:
        policies = [Policy("the simulated resource policy", json.loads(resource_policy))] if resource_policy else []
    except ValueError:
        return aws_error(call, "MalformedPolicyDocument", "ResourcePolicy is not valid JSON.", 400)
    entries = _context_entries(params.get("ContextEntries"))
    results = [_evaluate(caller, action, resource, entries, policies)
               for action in _as_list(params.get("ActionNames"))
               for resource in _as_list(params.get("ResourceArns")) or ["*"]]
    return _response(results)


def _refusal(params: dict) -> tuple[str, str, int] | None:
    source = str(params.get("PolicySourceArn") or "")
    if not _as_list(params.get("ActionNames")):
        return "ValidationError", "ActionNames must name at least one action.", 400
    if not source.startswith("arn:") or source.count(":") < 5:
        return "InvalidInput", f"PolicySourceArn {source!r} is not a valid ARN.", 400
    unsimulated = [name for name in UNSIMULATED if params.get(name)]
    if unsimulated:
        return "NotImplemented", f"the lab's policy simulator does not take {', '.join(unsimulated)}", 501
    resource = source.split(":", 5)[5]
    if resource.startswith("group/"):
        return "NotImplemented", "the lab's policy simulator takes a user or a role, not a group", 501
    caller_arn = str(params.get("CallerArn") or "")
    if caller_arn and ":user/" not in caller_arn:
        return "InvalidInput", ("CallerArn can only be the ARN of an IAM user, not an assumed role, federated user "
                                "or service principal."), 400
    if params.get("ResourcePolicy") and not caller_arn and not resource.startswith("user/"):
        return "InvalidInput", ("CallerArn is required when ResourcePolicy is given and PolicySourceArn is not the "
                                "ARN of an IAM user."), 400
    if caller_arn and caller_arn != source:
        return "NotImplemented", "the lab's policy simulator takes CallerArn only when it is the source user", 501
    return None


def _context_entries(entries: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in _as_list(entries):
        name = str(entry.get("ContextKeyName") or "")
        if name:
            out[name] = [str(v) for v in _as_list(entry.get("ContextKeyValues"))]
    return out


def _evaluate(caller, action: str, resource: str, entries: dict, policies: list[Policy]) -> dict:
    base = RequestContext(principal_keys_for(caller), frozenset({action.split(":", 1)[0]}),
                          frozenset(principal_absent(caller))).with_values(entries)
    decision = decide(caller, action, resource, base, resource_policy=policies)
    unknown = _unknown_keys(caller, action, resource, base, policies)
    if decision.allowed:
        verdict = "allowed"
    else:
        verdict = "explicitDeny" if decision.explicit else "implicitDeny"
    return {"action": action, "resource": resource, "decision": verdict, "missing": unknown}


def _unknown_keys(caller, action: str, resource: str, context: RequestContext, policies: list[Policy]) -> list[str]:
    """The condition keys the evaluation could not judge (AWS's ``MissingContextValues``)."""
    lookup = context.for_resource(resource, {}).lookup
    sets = [identity_policies(caller)] + [[b] for b in [boundary_policy(caller)] if b is not None]
    unknown = [key for policy_set in sets for key in evaluate_policies(policy_set, action, resource, lookup).unknown]
    if policies:
        principal = Principal(caller.arn, caller.account_id, caller.role_arn)
        unknown += evaluate_policies(policies, action, resource, lookup, principal).unknown
    return sorted(set(unknown))


def _response(results: list[dict]) -> Response:
    members = "".join(
        "<member>"
        f"<EvalActionName>{xml_escape(r['action'])}</EvalActionName>"
        f"<EvalResourceName>{xml_escape(r['resource'])}</EvalResourceName>"
        f"<EvalDecision>{r['decision']}</EvalDecision>"
        "<MatchedStatements/>"
        "<MissingContextValues>" + "".join(f"<member>{xml_escape(k)}</member>" for k in r["missing"])
        + "</MissingContextValues>"
        "</member>" for r in results)
    request_id = str(uuid.uuid4())
    xml = (f'<SimulatePrincipalPolicyResponse xmlns="{_XMLNS}"><SimulatePrincipalPolicyResult>'
           f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
           f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
           "</ResponseMetadata></SimulatePrincipalPolicyResponse>")
    return 200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()


def _as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]
