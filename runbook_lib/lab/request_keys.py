"""The request context: every condition key a request carries, as AWS would fill it.

:func:`request_context` builds it once per call from the caller, the request's parameters
and how it arrived; :meth:`RequestContext.for_resource` adds what depends on the resource
(``aws:ResourceTag/*``, ``aws:ResourceAccount``). A key is in one of three states:

- present, with its values (``aws:PrincipalArn``, ``aws:SourceIp``, ``aws:CurrentTime``,
  ``aws:RequestTag/team``, ``secretsmanager:SecretId``, ``iam:PolicyARN``...);
- absent, because AWS would not set it on this request either: a VPC endpoint key on a
  call that came through none, ``aws:SourceAccount`` on a direct call, ``kms:ViaService``
  when no service acts for the caller, a key of another service;
- unknown: a key the lab cannot fill for this request (a key of the call's own service it
  does not compute, an unlisted global key, the tags of a resource type it cannot read).
  Looking it up raises :class:`~.policy_language.UnknownKey`, and the policy statement
  using it fails closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .identity import ASSUMED_ROLE, IAM_USER, Caller
from .operations import ApiCall
from .policy_language import UnknownKey

#: Global keys AWS does not set on a request that reached the lab the way it did.
GLOBAL_ABSENT = frozenset({
    "aws:sourcevpc", "aws:sourcevpce", "aws:vpcsourceip", "aws:sourcearn", "aws:sourceaccount",
    "aws:sourceorgid", "aws:sourceorgpaths", "aws:multifactorauthage", "aws:federatedprovider",
    "aws:principalservicename", "aws:principalservicenameslist", "aws:ec2instancesourcevpc",
    "aws:ec2instancesourceprivateipv4", "aws:sourceidentity", "aws:referer", "aws:tagkeys",
    "aws:calledvia", "aws:calledviafirst", "aws:calledvialast",
})
#: Prefixes of key families a request may simply not carry (a tag that is not there).
ABSENT_FAMILIES = ("aws:requesttag/", "aws:principaltag/")
#: Keys of one service that AWS sets on calls to *other* services too: the lab cannot fill them.
CROSS_SERVICE_UNKNOWN = frozenset({"lambda:sourcefunctionarn", "ec2:sourceinstancearn",
                                   "glue:roleassumedby", "glue:credentialissuingservice", "ec2:roledelivery"})
#: Aliases of ``aws:ResourceTag/`` that services define for their own resources.
RESOURCE_TAG_PREFIXES = ("aws:resourcetag/", "secretsmanager:resourcetag/", "iam:resourcetag/")


@dataclass
class Arrival:
    """How the request reached the lab (what ``aws:SourceIp`` and friends are made of)."""

    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    referer: str = ""
    secure: bool = False
    when: datetime | None = None


@dataclass
class RequestContext:
    """The condition keys of one request (names lower-cased).

    Parameters
    ----------
    values:
        Keys present, with their values.
    services:
        Prefixes whose keys the lab is responsible for on this request (the call's own
        service, the action's): an uncomputed key of theirs is unknown, not absent.
    absent:
        Keys known to be absent even though they belong to those services.
    resource_tags:
        Tags of the resource, ``None`` when unreadable (``aws:ResourceTag/*`` unknown).
    """

    values: dict[str, list[str]]
    services: frozenset = frozenset()
    absent: frozenset = frozenset()
    resource_tags: dict | None = field(default_factory=dict)

    def lookup(self, key: str) -> list[str] | None:
        """The key's values, ``None`` when absent; raises :class:`UnknownKey` when unknowable."""
        name = key.lower()
        if name in self.values:
            return self.values[name]
        if name.startswith(RESOURCE_TAG_PREFIXES):
            if self.resource_tags is None:
                raise UnknownKey(key)
            tag = name.split("/", 1)[1]
            found = [v for k, v in self.resource_tags.items() if k.lower() == tag]
            return found or None
        if name in self.absent or name in GLOBAL_ABSENT or name.startswith(ABSENT_FAMILIES):
            return None
        prefix = name.split(":", 1)[0]
        if prefix == "aws" or name in CROSS_SERVICE_UNKNOWN or prefix in self.services:
            raise UnknownKey(key)
        return None  # another service's key: not part of this request

    def with_values(self, extra: dict[str, Any], services: tuple[str, ...] = ()) -> "RequestContext":
        """A copy with more keys (``kms:EncryptionContext:...``, ``iam:PassedToService``...)."""
        values = dict(self.values)
        values.update({k.lower(): _strings(v) for k, v in extra.items() if v is not None})
        return RequestContext(values, self.services | frozenset(services), self.absent, self.resource_tags)

    def for_resource(self, arn: str, tags: dict | None) -> "RequestContext":
        """A copy for one resource: its tags and ``aws:ResourceAccount``."""
        values = dict(self.values)
        parts = arn.split(":")
        if len(parts) > 4 and parts[4]:
            values["aws:resourceaccount"] = [parts[4]]
        return RequestContext(values, self.services, self.absent, tags)


def _strings(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, set)):
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


def request_context(caller: Caller, call: ApiCall, arrival: Arrival | None = None,
                    action_prefix: str = "") -> RequestContext:
    """The context of ``call`` made by ``caller`` (lower-cased key names)."""
    arrival = arrival or Arrival()
    when = arrival.when or datetime.now(timezone.utc)
    values = principal_keys(caller)
    values.update({
        "aws:requestedregion": [call.region], "aws:sourceip": [arrival.source_ip],
        "aws:securetransport": ["true" if arrival.secure else "false"],
        "aws:currenttime": [when.strftime("%Y-%m-%dT%H:%M:%SZ")], "aws:epochtime": [str(int(when.timestamp()))],
        "aws:viaawsservice": ["false"], "aws:principalisawsservice": ["false"],
        "aws:useragent": [arrival.user_agent],
    })
    if arrival.referer:
        values["aws:referer"] = [arrival.referer]
    values.update(_org_keys(caller.account_id, "aws:principalorgid", "aws:principalorgpaths"))
    tags = request_tags(call.params or {})
    if tags:
        values.update({f"aws:requesttag/{k.lower()}": [v] for k, v in tags.items()})
        values["aws:tagkeys"] = list(tags)
    removed = untag_keys(call)
    if removed is not None:  # an Untag call: AWS sets aws:TagKeys to the keys it removes
        values["aws:tagkeys"] = removed
    service_values, absent = service_keys(caller, call)
    values.update(service_values)
    services = frozenset(p for p in (call.service, action_prefix) if p)
    return RequestContext(values, services, frozenset(absent | principal_absent(caller)))


def principal_absent(caller: Caller) -> set[str]:
    """Keys AWS leaves out for this kind of principal (MFA and token keys with long-term keys)."""
    if caller.kind == IAM_USER:
        return {"aws:tokenissuetime", "aws:multifactorauthpresent"}
    return {"aws:username"}


def principal_keys(caller: Caller) -> dict[str, list[str]]:
    """``aws:Principal*``, ``aws:userid``, ``aws:username``, MFA and token keys of ``caller``."""
    principal = caller.role_arn if caller.kind == ASSUMED_ROLE else caller.arn
    values = {"aws:principalarn": [principal], "aws:principalaccount": [caller.account_id],
              "aws:principaltype": [caller.kind], "aws:userid": [caller.principal_id]}
    if caller.kind == IAM_USER:
        values["aws:username"] = [caller.user_name]
    if caller.kind == ASSUMED_ROLE:
        values["aws:multifactorauthpresent"] = ["false"]
        if caller.session_created is not None:
            values["aws:tokenissuetime"] = [caller.session_created.strftime("%Y-%m-%dT%H:%M:%SZ")]
        if caller.source_identity:
            values["aws:sourceidentity"] = [caller.source_identity]
    for key, value in principal_tags(caller).items():
        values[f"aws:principaltag/{key.lower()}"] = [value]
    return values


def principal_tags(caller: Caller) -> dict[str, str]:
    """The caller's tags: a user's, or a role's overridden by the session's own tags."""
    from moto.iam.models import iam_backends

    tags: dict[str, str] = {}
    try:
        backend = iam_backends[caller.account_id]["aws"]
        if caller.kind == IAM_USER:
            tags = {t["Key"]: t["Value"] for t in backend.list_user_tags(caller.user_name)}
        elif caller.kind == ASSUMED_ROLE:
            role_tags = backend.get_role(caller.role_name).tags or []
            items = role_tags.values() if isinstance(role_tags, dict) else role_tags
            tags = {t["Key"]: t["Value"] for t in items}
    except Exception:  # the principal is gone: no tags
        tags = {}
    tags.update(caller.session_tags or {})
    return tags


def request_tags(params: dict) -> dict[str, str]:
    """The tags a request asks to set, whatever the service's shape for them."""
    for name in ("Tags", "TagList", "TagsList", "tags", "Tagging"):
        value = params.get(name)
        if name == "Tagging" and isinstance(value, dict):
            value = value.get("TagSet")
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        if isinstance(value, list):
            out = {}
            for item in value:
                if isinstance(item, dict):
                    key = item.get("Key", item.get("TagKey", item.get("key")))
                    if key is not None:
                        out[str(key)] = str(item.get("Value", item.get("TagValue", item.get("value", ""))))
            return out
    return {}


def untag_keys(call: ApiCall) -> list[str] | None:
    """The tag keys an ``Untag*`` call removes (``None``: not an untag call)."""
    keys = (call.params or {}).get("TagKeys")
    if not call.operation.startswith("Untag") or not isinstance(keys, list):
        return None
    return [str(k) for k in keys]


def _org_keys(account: str, id_key: str, paths_key: str) -> dict[str, list[str]]:
    from moto.organizations.models import organizations_backends

    for by_partition in list(organizations_backends.values()):
        backend = by_partition.get("aws") if hasattr(by_partition, "get") else None
        org = getattr(backend, "org", None)
        if org is None:
            continue
        members = {a.id for a in backend.accounts} | {org.master_account_id}
        if account in members:
            root = next((ou.id for ou in backend.ou if ou.id.startswith("r-")), "")
            return {id_key: [org.id], paths_key: [f"{org.id}/{root}/"]} if root else {id_key: [org.id]}
    return {}


# --------------------------------------------------------------------------- service keys
def service_keys(caller: Caller, call: ApiCall) -> tuple[dict[str, list[str]], set[str]]:
    """Keys of the call's own service that the lab fills, and those it knows are absent."""
    builder = _SERVICE_KEYS.get(call.service)
    if builder is None:
        return {}, set()
    values, absent = builder(caller, call, call.params or {})
    return {k: _strings(v) for k, v in values.items() if v is not None}, absent


def _pick(params: dict, mapping: dict[str, str]) -> dict[str, Any]:
    return {key: params.get(member) for key, member in mapping.items() if params.get(member) is not None}


def _secretsmanager(caller, call, params):
    values = _pick(params, {"secretsmanager:secretid": "SecretId", "secretsmanager:name": "Name",
                            "secretsmanager:description": "Description", "secretsmanager:kmskeyid": "KmsKeyId",
                            "secretsmanager:versionid": "VersionId", "secretsmanager:versionstage": "VersionStage",
                            "secretsmanager:recoverywindowindays": "RecoveryWindowInDays",
                            "secretsmanager:forcedeletewithoutrecovery": "ForceDeleteWithoutRecovery",
                            "secretsmanager:blockpublicpolicy": "BlockPublicPolicy"})
    absent = {"secretsmanager:secretid", "secretsmanager:name", "secretsmanager:description",
              "secretsmanager:kmskeyid", "secretsmanager:versionid", "secretsmanager:versionstage",
              "secretsmanager:recoverywindowindays", "secretsmanager:forcedeletewithoutrecovery",
              "secretsmanager:blockpublicpolicy"} - set(values)
    return values, absent


def _kms(caller, call, params):
    values: dict[str, Any] = {"kms:calleraccount": caller.account_id}
    context = params.get("EncryptionContext") or {}
    if isinstance(context, dict) and context:
        values.update({f"kms:encryptioncontext:{k.lower()}": v for k, v in context.items()})
        values["kms:encryptioncontextkeys"] = list(context)
    values.update(_pick(params, {"kms:keyspec": "KeySpec", "kms:keyusage": "KeyUsage", "kms:keyorigin": "Origin",
                                 "kms:encryptionalgorithm": "EncryptionAlgorithm",
                                 "kms:bypasspolicylockoutsafetycheck": "BypassPolicyLockoutSafetyCheck"}))
    key_id = str(params.get("KeyId") or "")
    if key_id.startswith("alias/") or ":alias/" in key_id:
        values["kms:requestalias"] = key_id.split(":")[-1]
    absent = {"kms:viaservice", "kms:encryptioncontextkeys", "kms:requestalias", "kms:grantisforawsresource",
              "kms:keyspec", "kms:keyusage", "kms:keyorigin", "kms:encryptionalgorithm",
              "kms:bypasspolicylockoutsafetycheck"} - set(values)
    return values, absent


def _iam(caller, call, params):
    values: dict[str, Any] = _pick(params, {"iam:policyarn": "PolicyArn", "iam:awsservicename": "AWSServiceName"})
    operation = call.operation
    if operation in ("CreateRole", "CreateUser", "PutRolePermissionsBoundary", "PutUserPermissionsBoundary"):
        if params.get("PermissionsBoundary"):
            values["iam:permissionsboundary"] = params["PermissionsBoundary"]
    elif operation in _BOUNDARY_OF_ENTITY:
        boundary = _entity_boundary(caller.account_id, params)
        if boundary:
            values["iam:permissionsboundary"] = boundary
    absent = {"iam:policyarn", "iam:awsservicename", "iam:permissionsboundary", "iam:passedtoservice",
              "iam:associatedresourcearn"} - set(values)
    return values, absent


_BOUNDARY_OF_ENTITY = {"AttachRolePolicy", "AttachUserPolicy", "DetachRolePolicy", "DetachUserPolicy",
                       "PutRolePolicy", "PutUserPolicy", "DeleteRolePolicy", "DeleteUserPolicy",
                       "DeleteRolePermissionsBoundary", "DeleteUserPermissionsBoundary"}


def _entity_boundary(account: str, params: dict) -> str:
    from .resources import iam_entity

    kind, name = ("role", params.get("RoleName")) if params.get("RoleName") else ("user", params.get("UserName"))
    entity = iam_entity(kind, name or "", account)
    return getattr(entity, "permissions_boundary_arn", None) or "" if entity is not None else ""


def _lambda(caller, call, params):
    values: dict[str, Any] = {}
    if isinstance(params.get("Layers"), list):
        values["lambda:layer"] = params["Layers"]
    values.update(_pick(params, {"lambda:principal": "Principal", "lambda:functionurlauthtype": "AuthType"}))
    vpc = params.get("VpcConfig") or {}
    if isinstance(vpc, dict):
        values.update(_pick(vpc, {"lambda:subnetids": "SubnetIds", "lambda:securitygroupids": "SecurityGroupIds"}))
    absent = {"lambda:layer", "lambda:principal", "lambda:functionurlauthtype", "lambda:subnetids",
              "lambda:securitygroupids", "lambda:codesigningconfigarn"} - set(values)
    if not vpc:
        absent.add("lambda:vpcids")
    return values, absent


def _sts(caller, call, params):
    values = _pick(params, {"sts:externalid": "ExternalId", "sts:rolesessionname": "RoleSessionName",
                            "sts:sourceidentity": "SourceIdentity", "sts:durationseconds": "DurationSeconds"})
    if isinstance(params.get("TransitiveTagKeys"), list):
        values["sts:transitivetagkeys"] = params["TransitiveTagKeys"]
    absent = {"sts:externalid", "sts:rolesessionname", "sts:sourceidentity", "sts:durationseconds",
              "sts:transitivetagkeys"} - set(values)
    return values, absent


def _dynamodb(caller, call, params):
    values = _pick(params, {"dynamodb:select": "Select", "dynamodb:returnvalues": "ReturnValues",
                            "dynamodb:returnconsumedcapacity": "ReturnConsumedCapacity"})
    absent = {"dynamodb:select", "dynamodb:returnvalues", "dynamodb:returnconsumedcapacity"} - set(values)
    return values, absent


def _s3(caller, call, params):
    values = _pick(params, {"s3:prefix": "Prefix", "s3:delimiter": "Delimiter", "s3:max-keys": "MaxKeys",
                            "s3:x-amz-acl": "ACL", "s3:x-amz-server-side-encryption": "ServerSideEncryption",
                            "s3:versionid": "VersionId"})
    absent = {"s3:prefix", "s3:delimiter", "s3:max-keys", "s3:x-amz-acl", "s3:x-amz-server-side-encryption",
              "s3:versionid"} - set(values)
    return values, absent


def _ec2(caller, call, params):
    return {"ec2:region": call.region}, set()


_SERVICE_KEYS: dict[str, Callable] = {
    "secretsmanager": _secretsmanager, "kms": _kms, "iam": _iam, "lambda": _lambda, "sts": _sts,
    "dynamodb": _dynamodb, "s3": _s3, "ec2": _ec2,
}


def now_context_values() -> dict[str, list[str]]:
    """``aws:CurrentTime`` and ``aws:EpochTime`` for a request made now."""
    when = datetime.now(timezone.utc)
    return {"aws:currenttime": [when.strftime("%Y-%m-%dT%H:%M:%SZ")], "aws:epochtime": [str(int(time.time()))]}
