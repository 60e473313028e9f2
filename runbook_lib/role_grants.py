"""What a dedicated role copies from the role it replaces: the grants this function needs, no other secret.

A role shared by several functions holds grants for all of them, another function's secret
among them. The dedicated role gets copies of the old role's inline policies with every
secret read (``GetSecretValue``, ``BatchGetSecretValue``) narrowed to the secrets this
function references (secret ARNs and names in its remaining environment variables); a
statement left with no resource is dropped. Managed policies stay attached, and one inline
``Deny`` (:data:`DENY_POLICY_NAME`) takes away every secret read outside those references and
the function's own secret, so no copied or attached grant reads another function's secret.
Every drop is said in words, for the plan.

Examples
--------
>>> doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
...        "Resource": ["arn:aws:secretsmanager:us-east-1:1:secret:lambda/other/config-AbCdEf"]}]}
>>> copied, dropped = narrowed_copy("shared", doc, [])
>>> copied is None, dropped[0].startswith("shared: statement 1 dropped")
(True, True)
"""

from __future__ import annotations

import fnmatch
import re

SECRET_READS = ("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue")
DENY_POLICY_NAME = "deny-other-secrets"
_SECRET_ARN = re.compile(r"^arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_SECRET_NAME = re.compile(r"^[\w/+=.@-]{1,512}$")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])


def reads_secrets(statement: dict) -> bool:
    """True when an Allow statement's actions include a secret read (NotAction: unless it lists them)."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        excluded = _as_list(statement["NotAction"])
        return not all(any(fnmatch.fnmatchcase(read.lower(), a.lower()) for a in excluded) for read in SECRET_READS)
    return any(fnmatch.fnmatchcase(read.lower(), str(a).lower()) for a in _as_list(statement.get("Action"))
               for read in SECRET_READS)


def secret_references(environment: dict, partition: str, region: str, account: str) -> list[str]:
    """ARN patterns of the secrets the function's variables name: secret ARNs, and names under ``*SECRET*``."""
    prefix = f"arn:{partition}:secretsmanager:{region}:{account}:secret:"
    found = []
    for name, value in sorted(environment.items()):
        value = str(value)
        if _SECRET_ARN.match(value):
            found.append(value)
        elif "SECRET" in name.upper() and _SECRET_NAME.match(value) and not value.startswith("arn:"):
            found.append(f"{prefix}{value}-??????")
    return sorted(set(found))


def _covered(resource: str, references: list[str]) -> list[str]:
    """The references a resource pattern covers (a reference's ``?`` stands for any character)."""
    def probe(reference: str) -> str:
        return reference.replace("?", "A")
    return [r for r in references if fnmatch.fnmatchcase(probe(r), resource) or resource == r]


#: Actions a statement may hold and still be narrowed to this function's secrets.
_NARROWABLE = {a.lower() for a in SECRET_READS} | {"secretsmanager:describesecret"}


def _narrow_statement(statement: dict, references: list[str]) -> tuple[dict | None, list[str]]:
    """The statement with its secret resources limited to ``references`` (None: nothing left); what was taken.

    A statement that grants more than secret reads (``secretsmanager:*``, ``*``, other services) is
    kept as it is: the role's Deny takes its secret reads away.
    """
    if "NotAction" in statement or "NotResource" in statement:
        return None, ["an Allow with NotAction or NotResource reads secrets it does not name"]
    if any(str(a).lower() not in _NARROWABLE for a in _as_list(statement.get("Action"))):
        return statement, [f"grants more than secret reads: kept, its secret reads outside this function's "
                           f"secrets are denied by {DENY_POLICY_NAME}"]
    kept, dropped = [], []
    for resource in _as_list(statement.get("Resource")):
        covered = _covered(resource, references)
        if any(fnmatch.fnmatchcase(resource, r) for r in references):
            kept.append(resource)  # names one of this function's secrets (or exactly one reference)
        elif not covered:
            dropped.append(f"{resource} dropped")
        else:
            kept += covered
            dropped.append(f"{resource} narrowed to {', '.join(covered)}")
    if not kept:
        return None, dropped
    unique = sorted(set(kept))
    return {**statement, "Resource": unique if len(unique) > 1 else unique[0]}, dropped


def narrowed_copy(policy_name: str, document: dict, references: list[str]) -> tuple[dict | None, list[str]]:
    """A copy of one inline policy for the dedicated role, and one line per statement or resource dropped."""
    statements = _as_list(document.get("Statement"))
    kept, lines = [], []
    for index, statement in enumerate(statements, start=1):
        label = f"{policy_name}: statement {statement.get('Sid') or index}"
        if not reads_secrets(statement):
            kept.append(statement)
            continue
        narrowed, why = _narrow_statement(statement, references)
        if narrowed is None:
            lines.append(f"{label} dropped ({'; '.join(why)}): it reads no secret this function uses")
            continue
        kept.append(narrowed)
        lines += [f"{label}: {w}" for w in why]
    if not kept:
        return None, lines
    return {**document, "Statement": kept}, lines


def deny_other_secrets(allowed: list[str]) -> dict:
    """Deny every secret read except on ``allowed`` (ARN patterns): no grant of the role reads another secret."""
    statement = {"Sid": "ReadNoSecretButThisFunctions", "Effect": "Deny", "Action": list(SECRET_READS)}
    if allowed:
        statement["NotResource"] = sorted(set(allowed))
    else:
        statement["Resource"] = "*"
    return {"Version": "2012-10-17", "Statement": [statement]}
