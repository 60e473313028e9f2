"""Asking AWS whether a role can read a secret: IAM's policy simulator and a live probe.

The static analysis (:mod:`runbook_lib.iam_analysis`) reads policies; these two ask AWS
itself. :func:`simulate_secret_access` calls ``iam:SimulatePrincipalPolicy`` (the secret,
``*`` and a decoy), where the endpoint offers it. :func:`probe_secret_access` assumes the
role and reads the secret (must be allowed) and a decoy (must be denied); it is tried only
when the role's trust policy names the operator (:func:`trust_names_caller`), on every
target alike, since a change must not widen a role's trust to be tested.

Examples
--------
>>> trust = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
...                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
>>> trust_names_caller(trust, "arn:aws:iam::123456789012:user/auditor")
False
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from .secret_readers import principal_names
from .session import aws_call, error_code, new_session


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _load(doc: Any) -> dict:
    return json.loads(doc) if isinstance(doc, (str, bytes)) else (doc or {})


# -- IAM's policy simulator ---------------------------------------------------------------
_UNAVAILABLE = {"NotImplemented", "InvalidAction", "UnknownOperationException", "ResponseParserError",
                "UnsupportedOperation", "404"}


def simulate_secret_access(iam, role_arn: str, secret_arn: str, decoy_arn: str,
                           resource_policy: dict | None = None, userid: str = "") -> dict:
    """``iam:SimulatePrincipalPolicy`` for GetSecretValue on the secret, on ``*`` and on a decoy.

    The role's identity-based policies, boundary and SCPs are simulated; ``userid``
    (``<role id>:<function>``) is given as ``aws:userid``. AWS simulates a resource policy
    only for an IAM user as the caller (``CallerArn`` is required with ``ResourcePolicy``
    when the source is a role, and can only be a user), so the secret's resource policy
    (``resource_policy``) is not sent: when it is what grants the function the secret, the
    secret's own decision is left to the static analysis, and the answer says so.

    Returns
    -------
    dict
        ``{"available": True, "decisions": {resource: EvalDecision}, "as_expected": bool}``
        (and a ``note`` when the secret's read rests on its resource policy);
        ``{"available": False, "reason": ...}`` when the endpoint has no simulator or the
        caller may not use it.
    """
    decisions = {}
    context = [{"ContextKeyName": "aws:userid", "ContextKeyValues": [userid], "ContextKeyType": "string"}]
    extra: dict = {"ContextEntries": context} if userid else {}
    for resource in (secret_arn, "*", decoy_arn):
        try:
            result = iam.simulate_principal_policy(
                PolicySourceArn=role_arn, ActionNames=["secretsmanager:GetSecretValue"],
                ResourceArns=[resource], **extra)["EvaluationResults"]
        except Exception as exc:  # noqa: BLE001 - a missing simulator is coverage, not a failure
            code = error_code(exc) or type(exc).__name__
            reason = ("this endpoint has no policy simulator" if code in _UNAVAILABLE
                      else f"SimulatePrincipalPolicy failed: {code} (needs iam:SimulatePrincipalPolicy)")
            return {"available": False, "reason": reason, "code": code}
        decisions[resource] = result[0]["EvalDecision"] if result else "unknown"
    by_resource_policy = resource_policy is not None and decisions[secret_arn] != "allowed"
    as_expected = ((decisions[secret_arn] == "allowed" or by_resource_policy)
                   and decisions["*"] != "allowed" and decisions[decoy_arn] != "allowed")
    answer = {"available": True, "decisions": decisions, "as_expected": as_expected}
    if by_resource_policy:
        answer["note"] = ("the role's policies do not grant the secret: its resource policy does, which AWS's "
                          "simulator evaluates only for an IAM user as the caller (static analysis)")
    return answer


# -- a live probe as the role ----------------------------------------------------------------
PROBE_SESSION = "runbook-least-privilege-probe"


def decoy_secret_arn(partition: str, region: str, account: str) -> str:
    """A secret ARN nobody uses, for a denial test.

    IAM decides before Secrets Manager looks the secret up, so a request for it is
    ``AccessDenied`` when IAM denies, and ``ResourceNotFound`` only when IAM allowed it.
    """
    suffix = "".join(secrets.choice(string.ascii_letters) for _ in range(6))
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:runbook-decoy-{secrets.token_hex(4)}-{suffix}"


def trust_names_caller(trust: Any, caller_arn: str) -> bool:
    """Whether a role's trust policy lets ``caller_arn`` (the operator) ask to assume it.

    The caller is named by ``"*"``, its own ARN, its account (id or ``:root``, which
    delegates to its identity policies) or, for an assumed-role session, its role's ARN.
    Conditions are not judged here: ``sts:AssumeRole`` itself decides.
    """
    trust = _load(trust) if trust else {}
    parts = caller_arn.split(":")
    account = parts[4] if len(parts) > 5 else ""
    names = {caller_arn, account, f"arn:{parts[1] if len(parts) > 1 else 'aws'}:iam::{account}:root"}
    if len(parts) > 5 and parts[5].startswith("assumed-role/"):
        names.add(f"arn:{parts[1]}:iam::{account}:role/{parts[5].split('/')[1]}")
    for stmt in _as_list(trust.get("Statement")):
        if not (isinstance(stmt, dict) and stmt.get("Effect") == "Allow"):
            continue
        actions = [str(a).lower() for a in _as_list(stmt.get("Action"))]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        aws = set(principal_names(stmt))
        if "*" in aws or names & aws:
            return True
    return False


def probe_secret_access(target, role_arn: str, secret_arn: str, decoy_arn: str) -> dict:
    """Assume the role and read the secret (must be allowed) and a decoy (must be AccessDenied).

    Returns
    -------
    dict
        ``performed``, ``own_secret`` and ``decoy`` (``"allowed"`` or the error code),
        ``denial_shown``; a ``note`` when the endpoint does not enforce IAM. The secret's
        value is dropped unread.
    """
    from .exceptions import AwsCallError

    try:
        with aws_call("AssumeRole", role_arn, "sts:AssumeRole"):
            creds = target.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=PROBE_SESSION,
                                                     DurationSeconds=900)["Credentials"]
    except AwsCallError as exc:
        return {"performed": False, "error": str(exc)}
    session = new_session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"], region_name=target.region)
    sm = target.with_session(session).client("secretsmanager")
    results = {}
    for label, arn in (("own_secret", secret_arn), ("decoy", decoy_arn)):
        try:
            sm.get_secret_value(SecretId=arn)
            results[label] = "allowed"
        except Exception as exc:  # noqa: BLE001 - the error code is the result
            results[label] = error_code(exc) or type(exc).__name__
    denied = results["decoy"] in ("AccessDenied", "AccessDeniedException")
    out = {"performed": True, "session": PROBE_SESSION, "decoy_arn": decoy_arn, **results, "denial_shown": denied}
    if not denied and results["decoy"] != "allowed":
        out["note"] = (f"the decoy answered {results['decoy']}, not AccessDenied: this endpoint does not "
                       "enforce IAM, so the denial rests on the static analysis")
    return out
