"""A grant only this function can use: the secret's resource policy, pinned to the function's role session.

Lambda names the execution role's session after the function, so the function's calls carry
``aws:userid`` = ``<role id>:<function>``. The runbook puts two statements on the secret
(AWS's clients, the caching client and Powertools included, need ``DescribeSecret`` besides
``GetSecretValue``)::

    Allow  GetSecretValue, DescribeSecret  to the role, when aws:userid is <role id>:<function>
    Deny   GetSecretValue                  to anyone whose aws:PrincipalArn is the role,
                                           when aws:userid is not <role id>:<function>

so another function sharing the role, or anyone assuming it, cannot read the secret however
the role's identity policies read. No identity policy is created and nothing is attached to
the role. Statements of others on the same secret are kept; backout removes only these two.

A customer managed key must let the same session decrypt through Secrets Manager:
:func:`key_decrypt_problem` reads a named key's policy (and, when it delegates to IAM, the
role's policies) and says why it does not, failing closed on conditions it cannot judge.

Examples
--------
>>> doc = function_read_policy("arn:aws:iam::1:role/r", "AROAEXAMPLE", "orders-api")
>>> [s["Sid"] for s in doc["Statement"]]
['LambdaSecretsRunbookReadByFunction', 'LambdaSecretsRunbookOnlyThisFunction']
>>> lint_secret_policy(doc)
[]
"""

from __future__ import annotations

import fnmatch
import json

from .exceptions import AwsCallError
from .session import aws_call, error_code

READ_SID = "LambdaSecretsRunbookReadByFunction"
ONLY_SID = "LambdaSecretsRunbookOnlyThisFunction"
RUNBOOK_SIDS = (READ_SID, ONLY_SID)
READ_ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
VERSION = "2012-10-17"


def session_userid(role_id: str, function_name: str) -> str:
    """``aws:userid`` of the function's calls: the role's unique id and the session name Lambda gives."""
    return f"{role_id}:{function_name}"


def function_read_statements(role_arn: str, role_id: str, function_name: str) -> list[dict]:
    """The runbook's two statements, exactly the shape validation's ``least-privilege`` recognises."""
    userid = session_userid(role_id, function_name)
    return [
        {"Sid": READ_SID, "Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": list(READ_ACTIONS),
         "Resource": "*", "Condition": {"StringEquals": {"aws:userid": userid}}},
        {"Sid": ONLY_SID, "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue",
         "Resource": "*", "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn},
                                        "StringNotEquals": {"aws:userid": userid}}},
    ]


def function_read_policy(role_arn: str, role_id: str, function_name: str, current: dict | None = None) -> dict:
    """``current`` with the runbook's statements put in (others' statements kept, in their order)."""
    others = [s for s in _statements(current) if s.get("Sid") not in RUNBOOK_SIDS]
    return {"Version": VERSION, "Statement": others + function_read_statements(role_arn, role_id, function_name)}


def without_runbook_statements(current: dict | None) -> dict | None:
    """``current`` minus the runbook's statements; None when nothing else is left."""
    others = [s for s in _statements(current) if s.get("Sid") not in RUNBOOK_SIDS]
    return {"Version": (current or {}).get("Version", VERSION), "Statement": others} if others else None


def runbook_statements(current: dict | None) -> list[dict]:
    return [s for s in _statements(current) if s.get("Sid") in RUNBOOK_SIDS]


def _statements(doc: dict | None) -> list[dict]:
    statements = (doc or {}).get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])


# -- the project's own lint (where Secrets Manager's ValidateResourcePolicy is not answered) ---------
def lint_secret_policy(doc: dict) -> list[str]:
    """What makes a secret's resource policy broader than one named principal (empty: nothing).

    Every ``Allow`` must name principals by ARN (not ``*``, not an account, which would
    delegate to every identity policy of it), list its actions without wildcards, and be
    pinned to one session by ``aws:userid``; a ``NotPrincipal`` or ``NotAction`` allow is refused.
    """
    problems = [] if doc.get("Version") == VERSION else [f"Version is {doc.get('Version')!r}, expected {VERSION}"]
    for index, statement in enumerate(_statements(doc), start=1):
        name = f"statement {statement.get('Sid') or index}"
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{name}: Effect {statement.get('Effect')!r}")
            continue
        if statement["Effect"] == "Deny":
            continue
        if "NotPrincipal" in statement or "NotAction" in statement:
            problems.append(f"{name}: an Allow with NotPrincipal or NotAction grants what it does not name")
        principals = _as_list((statement.get("Principal") or {}).get("AWS")) \
            if isinstance(statement.get("Principal"), dict) else _as_list(statement.get("Principal"))
        for principal in principals or ["(none)"]:
            if principal == "*" or not str(principal).startswith("arn:") or str(principal).endswith(":root"):
                problems.append(f"{name}: principal {principal} is not one role or user")
        for action in _as_list(statement.get("Action")):
            if "*" in action or "?" in action:
                problems.append(f"{name}: wildcard action {action}")
        if "aws:userid" not in (statement.get("Condition") or {}).get("StringEquals", {}):
            problems.append(f"{name}: not pinned to one session (no StringEquals aws:userid)")
    return problems


# -- the secret's resource policy in AWS -------------------------------------------------------------
def get_resource_policy(sm, secret_arn: str) -> dict | None:
    with aws_call("GetResourcePolicy", secret_arn, "secretsmanager:GetResourcePolicy"):
        text = sm.get_resource_policy(SecretId=secret_arn).get("ResourcePolicy")
    return json.loads(text) if text else None


def validate(sm, secret_arn: str, doc: dict) -> tuple[list[str], str]:
    """Secrets Manager's ``ValidateResourcePolicy`` where the endpoint answers it, the lint always.

    Returns (problems, note saying which validations ran).
    """
    problems = lint_secret_policy(doc)
    try:
        response = sm.validate_resource_policy(SecretId=secret_arn, ResourcePolicy=json.dumps(doc))
    except Exception as exc:  # noqa: BLE001 - classified: an unanswered call is said so, a refusal is a problem
        code = error_code(exc) or type(exc).__name__
        if code in ("NotImplemented", "404", "UnknownOperationException", "InvalidAction"):
            return problems, "ValidateResourcePolicy is not answered by this endpoint: the runbook's own lint only"
        if code == "MalformedPolicyDocumentException":
            return problems + [f"ValidateResourcePolicy: {code}"], "ValidateResourcePolicy refused the document"
        return problems, f"ValidateResourcePolicy unavailable ({code}): the runbook's own lint only"
    errors = [e for e in response.get("ValidationErrors", []) if e]
    problems += [f"ValidateResourcePolicy: {e.get('CheckName', '')} {e.get('ErrorMessage', '')}".strip()
                 for e in errors]
    if not response.get("PolicyValidationPassed", not errors):
        problems.append("ValidateResourcePolicy: the policy did not pass")
    return problems, "ValidateResourcePolicy passed and the runbook's own lint" if not problems else \
        "ValidateResourcePolicy and the runbook's own lint"


def put_resource_policy(sm, secret_arn: str, doc: dict) -> None:
    """``PutResourcePolicy`` with ``BlockPublicPolicy``: Secrets Manager refuses a policy that would be public."""
    with aws_call("PutResourcePolicy", secret_arn, "secretsmanager:PutResourcePolicy"):
        sm.put_resource_policy(SecretId=secret_arn, ResourcePolicy=json.dumps(doc), BlockPublicPolicy=True)


def delete_resource_policy(sm, secret_arn: str) -> None:
    try:
        with aws_call("DeleteResourcePolicy", secret_arn, "secretsmanager:DeleteResourcePolicy"):
            sm.delete_resource_policy(SecretId=secret_arn)
    except AwsCallError as exc:
        if exc.code != "ResourceNotFoundException":
            raise


# -- a customer managed key: may the function's session decrypt through Secrets Manager? -------------
SATISFIABLE_KEYS = ("kms:viaservice", "kms:calleraccount", "aws:userid", "aws:principalarn",
                    "kms:encryptioncontext:secretarn")


def session_facts(role_arn: str, role_id: str, function_name: str, region: str, secret_pattern: str,
                  key_arn: str = "") -> dict:
    """The condition values a decrypt by Secrets Manager for the function's session carries."""
    account = role_arn.split(":")[4]
    return {"key_arn": key_arn, "kms:viaservice": f"secretsmanager.{region}.amazonaws.com", "kms:calleraccount": account,
            "aws:userid": session_userid(role_id, function_name), "aws:principalarn": role_arn,
            "kms:encryptioncontext:secretarn": secret_pattern}


def _condition_holds(condition: dict, facts: dict) -> bool | None:
    """True/False when every condition is decided by ``facts``; None when one is not."""
    for operator, pairs in (condition or {}).items():
        base = operator.replace("ForAnyValue:", "").replace("ForAllValues:", "").replace("IfExists", "")
        for key, values in pairs.items():
            key = key.lower()
            if key not in SATISFIABLE_KEYS or base not in ("StringEquals", "StringLike", "ArnEquals", "ArnLike"):
                return None
            wanted = [str(v) for v in _as_list(values)]
            have = facts[key]
            if key == "kms:encryptioncontext:secretarn":
                # the secret's ARN ends in 6 random characters: a pattern is decided only if it covers them all
                if not any(w == have or fnmatch.fnmatchcase(have, w) for w in wanted):
                    return None
                continue
            if not any(fnmatch.fnmatchcase(have, w) if base.endswith("Like") else have == w for w in wanted):
                return False
    return True


def _principal_kind(statement: dict, role_arn: str, account: str) -> str:
    """``direct`` (names the role or everyone), ``account`` (delegates to IAM) or ``other``."""
    principal = statement.get("Principal")
    names = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
    if "*" in names or role_arn in names:
        return "direct"
    if account in names or f"arn:aws:iam::{account}:root" in names or any(
            str(n).startswith("arn:") and str(n).endswith(f"::{account}:root") for n in names):
        return "account"
    return "other"


def allows_decrypt(statements: list[dict], facts: dict, key_arn: str = "") -> tuple[bool, bool]:
    """(an Allow of kms:Decrypt holds, an applicable Deny or an undecidable condition was seen).

    ``key_arn``: for identity policies, whose ``Resource`` must cover the key (a key policy's is the key).
    """
    allowed, doubtful = False, False
    for statement in statements:
        actions = _as_list(statement.get("Action"))
        if not any(fnmatch.fnmatchcase("kms:Decrypt", str(a)) for a in actions):
            continue
        if key_arn and not any(fnmatch.fnmatchcase(key_arn, str(r)) for r in _as_list(statement.get("Resource"))):
            continue
        holds = _condition_holds(statement.get("Condition") or {}, facts)
        if statement.get("Effect") == "Deny":
            doubtful = doubtful or holds is not False
        elif holds is None:
            doubtful = True
        elif holds:
            allowed = True
    return allowed, doubtful


def key_decrypt_problem(key_policy: dict, role_statements: list[dict], facts: dict) -> str:
    """Why the key does not let the function's session decrypt via Secrets Manager ("" when it does)."""
    role_arn, account = facts["aws:principalarn"], facts["kms:calleraccount"]
    key_statements = _statements(key_policy)
    direct = [s for s in key_statements if _principal_kind(s, role_arn, account) == "direct"]
    delegated = [s for s in key_statements if _principal_kind(s, role_arn, account) == "account"]
    allowed, doubtful = allows_decrypt(direct, facts)
    delegates, doubt_delegated = allows_decrypt(delegated, facts)
    doubtful = doubtful or doubt_delegated
    if not allowed and delegates:
        allowed, doubt_iam = allows_decrypt(role_statements, facts, facts["key_arn"])
        doubtful = doubtful or doubt_iam
    if doubtful:
        return ("its policy has a statement on kms:Decrypt with a Deny or a condition the runbook cannot "
                "judge for this session: check it by hand, or use kms_key=create")
    if not allowed:
        return (f"its policy does not let {role_arn} (session {facts['aws:userid']}) use kms:Decrypt via "
                f"{facts['kms:viaservice']}: add a key policy statement allowing it (kms:ViaService, aws:userid), "
                "or use kms_key=create")
    return ""
