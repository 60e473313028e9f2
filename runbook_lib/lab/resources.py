"""What a call acts on, as IAM sees it: resource ARNs, their tags and their own policies.

:func:`resources_for` names the ARNs AWS authorises a call against (a secret's full ARN
with its random suffix, the KMS key behind an alias, a table's index, a qualified Lambda
ARN...). :func:`resource_tags` reads a resource's tags from moto (``aws:ResourceTag/*``),
:func:`resource_policies` its resource-based policy (a secret's ``PutResourcePolicy``
document, a KMS key policy, an S3 bucket policy). Both say ``None`` when the lab cannot
read that kind of resource, so a condition on it fails closed instead of passing.
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import unquote

from .operations import ApiCall
from .policy_language import Policy

#: The AWS managed key of Secrets Manager, as every account has it: any principal of the
#: account may use it through Secrets Manager (its real key policy, in substance).
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"


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


def load_document(document: Any) -> dict:
    """A policy document from moto's storage (JSON text, URL-encoded JSON, bytes or a dict).

    Text is parsed once (:func:`parsed_document`): the answer is shared and must not be
    changed by the caller.
    """
    if isinstance(document, dict):
        return document
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")
    return parsed_document(document) if isinstance(document, str) else {}


@functools.lru_cache(maxsize=1024)
def parsed_document(text: str) -> dict:
    """The policy document in ``text`` (``{}`` when it is not one), parsed once per text.

    Every request under enforcement reads the caller's policies, the resource's and the
    key's from moto, which keeps them as text. The cache is keyed by that text: an edited
    inline policy, a new default version, a new key or bucket policy is new text, and a
    detached policy is no longer read at all, so a change takes effect on the next call
    without anything to invalidate.
    """
    try:
        value = json.loads(text if text.lstrip().startswith("{") else unquote(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- ARNs per service
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
    secret = _secret(account, region, secret_id)
    if secret is not None:
        return secret.arn
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _secret(account: str, region: str, secret_id: str):
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return secretsmanager_backends[account][region].secrets.get(secret_id)
    except Exception:  # an account or region moto has no backend for
        return None


def _kms(call, account, region, params) -> list[str]:
    key_id = params.get("KeyId") or params.get("TargetKeyId")
    alias = params.get("AliasName")
    arns = [f"arn:aws:kms:{region}:{account}:{alias}"] if alias and call.operation.endswith("Alias") else []
    if not key_id and alias and call.operation == "DeleteAlias":
        key_id = alias
    if key_id:
        arns.append(key_arn(account, region, key_id) or
                    (f"arn:aws:kms:{region}:{account}:{key_id}" if key_id.startswith("alias/") else key_id))
    return arns


def key_arn(account: str, region: str, key_id: str) -> str | None:
    """The key ARN behind a key id, key ARN, alias name or alias ARN (``None``: not found)."""
    key = kms_key(account, region, key_id)
    return key.arn if key is not None else None


def kms_key(account: str, region: str, key_id: str):
    """moto's key model behind any identifier (``None``: no such key)."""
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        account, region = parts[4], parts[3]
    try:
        backend = kms_backends[account][region]
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:  # unknown alias or key: moto reports NotFound itself
        return None


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
    return [function_arn(account, region, name, params.get("Qualifier"))]


def function_arn(account: str, region: str, name: str, qualifier: str | None = None) -> str:
    """A function's ARN from a name, partial or full ARN; qualified when a version or alias is
    named, since AWS authorises such a call against the qualified ARN."""
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
    return f"{base}:{qualifier}" if qualifier else base


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
    if call.operation == "CreateServiceLinkedRole" and params.get("AWSServiceName"):
        service = params["AWSServiceName"]
        return [f"arn:aws:iam::{account}:role/aws-service-role/{service}/*"]
    return []


def _iam_path(kind: str, name: str, account: str) -> str:
    entity = iam_entity(kind, name, account)
    return getattr(entity, "path", None) or "/"


def iam_entity(kind: str, name: str, account: str):
    """moto's user or role object (``None`` when it does not exist)."""
    from moto.iam.models import iam_backends

    try:
        backend = iam_backends[account]["aws"]
        return backend.get_role(name) if kind == "role" else backend.get_user(name) if kind == "user" else None
    except Exception:  # not there (yet)
        return None


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


# --------------------------------------------------------------------------- tags
def resource_tags(arn: str) -> dict[str, str] | None:
    """The tags of the resource ``arn`` names (``{}``: none, or it does not exist yet;
    ``None``: the lab cannot read tags of this kind of resource)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or arn == "*":
        return None
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    reader = _TAG_READERS.get(service)
    if reader is None:
        return None
    try:
        return reader(arn, account, region, resource)
    except Exception:  # the resource is gone or was never made: no tags
        return {}


def _pairs(items: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    if isinstance(items, dict):
        return {k: (v.get(value, "") if isinstance(v, dict) else str(v)) for k, v in items.items()}
    return {i.get(key, ""): i.get(value, "") for i in items or [] if isinstance(i, dict)}


def _secret_tags(arn, account, region, resource):
    secret = _secret(account, region, arn)
    return _pairs(secret.tags) if secret is not None else {}


def _kms_tags(arn, account, region, resource):
    from moto.kms.models import kms_backends

    if not resource.startswith("key/"):
        return None  # an alias has no tags of its own
    return dict(kms_backends[account][region].tagger.get_tag_dict_for_resource(resource.split("/", 1)[1]))


def _lambda_tags(arn, account, region, resource):
    from moto.awslambda.utils import get_backend

    if not resource.startswith("function:"):
        return None
    name = resource.split(":")[1]
    return dict(get_backend(account, region).get_function(name).tags or {})


def _iam_tags(arn, account, region, resource):
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind == "role":
        return _pairs(backend.get_role(name).tags)
    if kind == "user":
        return _pairs(backend.list_user_tags(name))
    if kind == "policy":
        return _pairs(getattr(backend.get_policy(arn), "tags", {}) or {})
    return None


def _dynamodb_tags(arn, account, region, resource):
    from moto.dynamodb.models import dynamodb_backends

    if not resource.startswith("table/") or "/index/" in resource:
        return None
    return _pairs(dynamodb_backends[account][region].get_table(resource.split("/")[1]).tags)


def _logs_tags(arn, account, region, resource):
    from moto.logs.models import logs_backends

    if not resource.startswith("log-group:") or ":log-stream:" in resource:
        return None
    group = resource[len("log-group:"):]
    group = group[:-2] if group.endswith(":*") else group
    return dict(logs_backends[account][region].groups[group].tags or {})


def _cloudfront_tags(arn, account, region, resource):
    from moto.cloudfront.models import cloudfront_backends

    if not resource.startswith("distribution/"):
        return None
    return _pairs(cloudfront_backends[account]["global"].list_tags_for_resource(arn).get("Tags"))


_TAG_READERS = {"secretsmanager": _secret_tags, "kms": _kms_tags, "lambda": _lambda_tags, "iam": _iam_tags,
                "dynamodb": _dynamodb_tags, "logs": _logs_tags, "cloudfront": _cloudfront_tags}


# --------------------------------------------------------------------------- resource-based policies
def resource_policies(arn: str) -> list[Policy] | None:
    """The resource-based policy of ``arn`` (``[]``: it has none; ``None``: not a kind of
    resource whose policy the lab reads, so only identity policies decide)."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None
    service, region, account = parts[2], parts[3], parts[4]
    if service == "secretsmanager":
        secret = _secret(account, region, arn)
        policy = getattr(secret, "policy", None)
        return [Policy(f"the resource policy of {arn}", load_document(policy))] if policy else []
    if service == "kms" and parts[5].startswith("key/"):
        key = kms_key(account, region, arn)
        return [Policy(f"the key policy of {arn}", load_document(key.policy))] if key is not None else []
    if service == "s3":
        return _bucket_policy(parts[5].split("/", 1)[0])
    return None


def _bucket_policy(bucket: str) -> list[Policy]:
    from moto.s3.models import s3_backends

    for by_partition in list(s3_backends.values()):
        backend = by_partition.get("aws")
        found = backend.buckets.get(bucket) if backend is not None else None
        if found is not None and found.policy:
            return [Policy(f"the bucket policy of arn:aws:s3:::{bucket}", load_document(found.policy))]
    return []


def aws_managed_secrets_key_policy(account: str, region: str) -> Policy:
    """The key policy of ``aws/secretsmanager``: the account's principals, via Secrets Manager."""
    return Policy("the key policy of the AWS managed key aws/secretsmanager", {
        "Version": "2012-10-17", "Statement": [{
            "Sid": "AllowAccessThroughSecretsManagerForAllPrincipalsInTheAccount", "Effect": "Allow",
            "Principal": {"AWS": "*"}, "Resource": "*",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey",
                       "kms:GenerateDataKey*"],
            "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                           "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}}]})
