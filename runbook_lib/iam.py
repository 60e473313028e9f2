"""IAM: the one-secret read policy, a dedicated execution role, and legacy access keys.

The policy ``LambdaSecretsManagerPolicy-<function>`` allows ``secretsmanager:GetSecretValue``
on exactly the secret's ARN (plus ``kms:Decrypt`` with ``kms:ViaService`` when the secret
uses a customer managed key). Before it is created, its document goes through the
library's least-privilege lint and, where the endpoint offers it, IAM Access Analyzer's
``ValidatePolicy``.

A dedicated role trusts only ``lambda.amazonaws.com`` (plus ``edgelambda.amazonaws.com``
for Lambda@Edge), with an ``aws:SourceAccount`` condition for Lambda, logs only to the
function's own log group, and carries copies of the previous role's other grants so the
function keeps working.

Access keys are matched by fingerprint (the scanner's keyed hash of the key id found in
code), never by printing or comparing the key id in the open.
"""

from __future__ import annotations

import json
import urllib.parse

from .exceptions import AwsCallError, ChangeRefused
from .iam_analysis import lint_policy_document
from .redaction import redact
from .session import aws_call, error_code

POLICY_PREFIX = "LambdaSecretsManagerPolicy-"
ROLE_PREFIX = "LambdaSecretsRunbook-"
#: The permissions boundary every role the runbook creates carries (``policies/runbook-role-boundary.json``,
#: created by an administrator under this name; the implementer may create roles only with it).
BOUNDARY_POLICY_NAME = "LambdaSecretsRunbookRoleBoundary"
LOGGING_POLICY_NAME = "basic-logging"
COPIED_POLICY_PREFIX = "copied-"
MAX_POLICY_VERSIONS = 5


def policy_name(function_name: str) -> str:
    return (POLICY_PREFIX + function_name)[:128]


def dedicated_role_name(function_name: str) -> str:
    return (ROLE_PREFIX + function_name)[:64]


def policy_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:policy/{name}"


def role_name_from_arn(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def _doc(value) -> dict:
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value) if value.lstrip().startswith("%7B") else value)
    return value


# -- documents ---------------------------------------------------------------------------
def secret_read_policy(secret_arn: str, kms_key_arn: str | None = None, region: str = "") -> dict:
    """GetSecretValue on exactly one secret; Decrypt on its customer managed key via Secrets Manager."""
    statements = [{"Sid": "ReadThisFunctionsSecret", "Effect": "Allow",
                   "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]
    if kms_key_arn:
        statements.append({"Sid": "DecryptItsKeyOnlyViaSecretsManager", "Effect": "Allow",
                           "Action": "kms:Decrypt", "Resource": kms_key_arn,
                           "Condition": {"StringEquals": {
                               "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}})
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy(account: str, edge: bool) -> dict:
    """Only Lambda (and Lambda@Edge when asked) may assume the role."""
    services = ["lambda.amazonaws.com"] + (["edgelambda.amazonaws.com"] if edge else [])
    statement = {"Effect": "Allow", "Principal": {"Service": services}, "Action": "sts:AssumeRole"}
    if not edge:
        # Lambda passes aws:SourceAccount when it assumes an execution role; Lambda@Edge
        # replicas assume it from other regions without it, so edge gets no condition.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def logging_policy(partition: str, region: str, account: str, function_name: str, edge: bool) -> dict:
    """CloudWatch Logs for the function's own log group (all regions for edge replicas)."""
    where = "*" if edge else region
    group = f"arn:{partition}:logs:{where}:{account}:log-group:/aws/lambda/"
    groups = [f"{group}{function_name}:*"] + ([f"{group}us-east-1.{function_name}:*"] if edge else [])
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CreateItsLogGroup", "Effect": "Allow", "Action": "logs:CreateLogGroup",
         "Resource": [g[:-2] for g in groups]},
        {"Sid": "WriteItsLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": groups}]}


def validate_document(doc: dict, analyzer=None) -> tuple[list[str], str]:
    """Lint locally, then ask Access Analyzer; returns (problems, note about the analyzer).

    Access Analyzer findings of type ERROR or SECURITY_WARNING count as problems. An
    endpoint without Access Analyzer (the lab) is said so in the note, not hidden.
    """
    problems = lint_policy_document(doc)
    if analyzer is None:
        return problems, "Access Analyzer not asked (no client)"
    try:
        response = analyzer.validate_policy(policyDocument=json.dumps(doc), policyType="IDENTITY_POLICY")
    except Exception as exc:  # noqa: BLE001 - classified below; never hides a real problem
        code = error_code(exc) or type(exc).__name__
        text = str(exc)
        if code in ("404", "NotImplemented", "UnknownOperationException", "InvalidAction") \
                or "not yet implemented" in text.lower() or "not implemented" in text.lower():
            return problems, "Access Analyzer ValidatePolicy is not implemented by this endpoint: local lint only"
        return problems, f"Access Analyzer ValidatePolicy unavailable ({code}): local lint only"
    findings = [f for f in response.get("findings", [])
                if f.get("findingType") in ("ERROR", "SECURITY_WARNING")]
    problems += [f"Access Analyzer {f['findingType']}: {f.get('issueCode', '')}" for f in findings]
    return problems, f"Access Analyzer ValidatePolicy: {len(response.get('findings', []))} finding(s)"


# -- policies ----------------------------------------------------------------------------
def get_policy(iam, arn: str) -> dict | None:
    try:
        with aws_call("GetPolicy", arn, "iam:GetPolicy"):
            return iam.get_policy(PolicyArn=arn)["Policy"]
    except AwsCallError as exc:
        if exc.code in ("NoSuchEntity", "NoSuchEntityException"):
            return None
        raise


def policy_tags(iam, arn: str) -> dict:
    with aws_call("ListPolicyTags", arn, "iam:ListPolicyTags"):
        return {t["Key"]: t["Value"] for t in iam.list_policy_tags(PolicyArn=arn).get("Tags", [])}


def default_document(iam, policy: dict) -> dict:
    with aws_call("GetPolicyVersion", policy["Arn"], "iam:GetPolicyVersion"):
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    return _doc(version["PolicyVersion"]["Document"])


def create_policy(iam, name: str, doc: dict, tags: dict, description: str) -> str:
    with aws_call("CreatePolicy", name, "iam:CreatePolicy + iam:TagPolicy"):
        return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc), Description=description,
                                 Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])["Policy"]["Arn"]


def update_policy(iam, arn: str, doc: dict) -> str:
    """New default version; the oldest non-default version goes first when IAM's limit of 5 is reached."""
    with aws_call("ListPolicyVersions", arn, "iam:ListPolicyVersions"):
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    old = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
    if len(versions) >= MAX_POLICY_VERSIONS and old:
        with aws_call("DeletePolicyVersion", arn, "iam:DeletePolicyVersion"):
            iam.delete_policy_version(PolicyArn=arn, VersionId=old[0]["VersionId"])
    with aws_call("CreatePolicyVersion", arn, "iam:CreatePolicyVersion"):
        return iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc),
                                         SetAsDefault=True)["PolicyVersion"]["VersionId"]


def attached_policy_arns(iam, role_name: str) -> list[str]:
    out = []
    with aws_call("ListAttachedRolePolicies", role_name, "iam:ListAttachedRolePolicies"):
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
            out += [p["PolicyArn"] for p in page["AttachedPolicies"]]
    return out


def attach(iam, role_name: str, arn: str) -> None:
    with aws_call("AttachRolePolicy", role_name, "iam:AttachRolePolicy"):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)


def detach(iam, role_name: str, arn: str) -> None:
    try:
        with aws_call("DetachRolePolicy", role_name, "iam:DetachRolePolicy"):
            iam.detach_role_policy(RoleName=role_name, PolicyArn=arn)
    except AwsCallError as exc:
        if exc.code not in ("NoSuchEntity", "NoSuchEntityException"):
            raise


def policy_attachments(iam, arn: str) -> list[str]:
    """Roles the policy is attached to (users and groups refuse deletion too, so they are named)."""
    with aws_call("ListEntitiesForPolicy", arn, "iam:ListEntitiesForPolicy"):
        response = iam.list_entities_for_policy(PolicyArn=arn)
    return ([r["RoleName"] for r in response.get("PolicyRoles", [])]
            + [f"user/{u['UserName']}" for u in response.get("PolicyUsers", [])]
            + [f"group/{g['GroupName']}" for g in response.get("PolicyGroups", [])])


def delete_policy(iam, arn: str) -> None:
    """Delete non-default versions, then the policy (it must already be detached)."""
    with aws_call("ListPolicyVersions", arn, "iam:ListPolicyVersions"):
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    for version in versions:
        if not version["IsDefaultVersion"]:
            with aws_call("DeletePolicyVersion", arn, "iam:DeletePolicyVersion"):
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    with aws_call("DeletePolicy", arn, "iam:DeletePolicy"):
        iam.delete_policy(PolicyArn=arn)


# -- roles -------------------------------------------------------------------------------
def get_role(iam, name: str) -> dict | None:
    try:
        with aws_call("GetRole", name, "iam:GetRole"):
            return iam.get_role(RoleName=name)["Role"]
    except AwsCallError as exc:
        if exc.code in ("NoSuchEntity", "NoSuchEntityException"):
            return None
        raise


def role_tags(iam, name: str) -> dict:
    with aws_call("ListRoleTags", name, "iam:ListRoleTags"):
        return {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name).get("Tags", [])}


def trusted_services(role: dict) -> set[str]:
    doc = _doc(role.get("AssumeRolePolicyDocument") or {})
    out = set()
    for stmt in doc.get("Statement", []):
        if stmt.get("Effect") != "Allow":
            continue
        service = (stmt.get("Principal") or {}).get("Service", []) if isinstance(stmt.get("Principal"), dict) else []
        out |= set([service] if isinstance(service, str) else service)
    return out


def inline_policies(iam, role_name: str) -> dict[str, dict]:
    out = {}
    with aws_call("ListRolePolicies", role_name, "iam:ListRolePolicies + iam:GetRolePolicy"):
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
            for name in page["PolicyNames"]:
                out[name] = _doc(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
    return out


def boundary_arn(partition: str, account: str) -> str:
    """The ARN of the permissions boundary of the runbook's roles in ``account``."""
    return policy_arn(partition, account, BOUNDARY_POLICY_NAME)


def create_role(iam, name: str, trust: dict, tags: dict, description: str, boundary: str) -> str:
    """CreateRole with its tags and the permissions boundary ``boundary`` (a managed policy ARN)."""
    with aws_call("CreateRole", name, "iam:CreateRole + iam:TagRole"):
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                               Description=description[:1000], PermissionsBoundary=boundary,
                               Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])["Role"]["Arn"]


def put_inline(iam, role_name: str, name: str, doc: dict) -> None:
    with aws_call("PutRolePolicy", role_name, "iam:PutRolePolicy"):
        iam.put_role_policy(RoleName=role_name, PolicyName=name[:128], PolicyDocument=json.dumps(doc))


def delete_role(iam, name: str) -> None:
    """Detach managed policies, delete inline ones, then the role."""
    for arn in attached_policy_arns(iam, name):
        detach(iam, name, arn)
    for policy in inline_policies(iam, name):
        with aws_call("DeleteRolePolicy", name, "iam:DeleteRolePolicy"):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    with aws_call("DeleteRole", name, "iam:DeleteRole"):
        iam.delete_role(RoleName=name)


# -- access keys -------------------------------------------------------------------------
def find_access_keys(iam, fingerprints: set[str], fingerprinter) -> list[dict]:
    """IAM access keys whose id has one of ``fingerprints``: ``user``, ``key_id`` (in memory), ``status``.

    ``key_id`` is needed to call UpdateAccessKey; show it only through :func:`redact`.
    """
    matches = []
    if not fingerprints:
        return matches
    with aws_call("ListUsers + ListAccessKeys", "iam users", "iam:ListUsers + iam:ListAccessKeys"):
        for page in iam.get_paginator("list_users").paginate():
            for user in page["Users"]:
                for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                    if fingerprinter(key["AccessKeyId"]) in fingerprints:
                        matches.append({"user": user["UserName"], "key_id": key["AccessKeyId"],
                                        "status": key["Status"]})
    return matches


def access_key_status(iam, user: str, key_id: str) -> str | None:
    with aws_call("ListAccessKeys", user, "iam:ListAccessKeys"):
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            if key["AccessKeyId"] == key_id:
                return key["Status"]
    return None


def set_access_key_status(iam, user: str, key_id: str, status: str) -> str:
    """UpdateAccessKey; returns the equivalent CLI line as evidence, with the key id redacted."""
    if status not in ("Active", "Inactive"):
        raise ChangeRefused(user, f"unknown access key status {status!r}")
    with aws_call("UpdateAccessKey", f"{user} {redact(key_id)}", "iam:UpdateAccessKey"):
        iam.update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
    return f"aws iam update-access-key --user-name {user} --access-key-id {redact(key_id)} --status {status}"
