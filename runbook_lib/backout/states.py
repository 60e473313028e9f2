"""One line of live state per ledger record: the backout's before/after table and its orphan search."""

from __future__ import annotations

from .. import edge, functions, iam, secret_grant, secrets_store, wrapper
from ..change import access_keys
from ..exceptions import AwsCallError, InputError, RunbookError
from ..records import Record
from ..session import aws_call

FUNCTION_KINDS = ("function_config", "function_code", "function_state")


def describe(ctx, record: Record) -> str:
    """What the account shows now for the resource ``record`` names (names and states, never values)."""
    describer = _DESCRIBERS.get(record.kind)
    return describer(ctx, record) if describer else "-"


def states(ctx) -> dict:
    """``{(kind, resource): state}`` for every record of the ledger; an unreadable one says why."""
    out = {}
    for record in ctx.ledger.records():
        if record.kind == "intent":
            continue  # bookkeeping, not a resource
        try:
            out[(record.kind, record.resource)] = describe(ctx, record)
        except RunbookError as exc:
            out[(record.kind, record.resource)] = f"unreadable: {exc.message}"
    return out


def _function(ctx, record) -> str:
    if not ctx.function_exists():
        return "gone"
    live = ctx.live()
    return (f"CodeSha256 {live['CodeSha256']}, handler {live.get('Handler')}, variables "
            f"{', '.join(sorted(functions.environment(live)))}")


def _version(ctx, record) -> str:
    try:
        functions.get_configuration(ctx.lam, ctx.function_name, str(record.version))
        return f"version {record.version} exists"
    except InputError:
        return f"version {record.version} gone"


def _secret(ctx, record) -> str:
    secret = secrets_store.describe_secret(ctx.sm, record.resource)
    if secret is None:
        return "gone"
    return f"scheduled for deletion {secret['DeletedDate']}" if secret.get("DeletedDate") else "active"


def _policy(ctx, record) -> str:
    policy = iam.get_policy(ctx.iam, record.resource)
    return "gone" if policy is None else f"exists, attached {policy.get('AttachmentCount', 0)} time(s)"


def _attachment(ctx, record) -> str:
    attached = iam.get_role(ctx.iam, record.role) and record.policy_arn in iam.attached_policy_arns(ctx.iam, record.role)
    return "attached" if attached else "detached"


def _role(ctx, record) -> str:
    return "exists" if iam.get_role(ctx.iam, iam.role_name_from_arn(record.resource)) else "gone"


def _key(ctx, record) -> str:
    meta = secrets_store.describe_key(ctx.kms, record.resource)
    if meta is None:
        return "gone"
    return meta.get("KeyState", "") + (f" until {meta['DeletionDate']}" if meta.get("DeletionDate") else "")


def _association(ctx, record) -> str:
    config, _ = edge.get_distribution_config(ctx.cf, record.resource)
    return f"viewer-request -> {edge.viewer_request_arn(config) or 'none'}"


def _access_key(ctx, record) -> str:
    key = access_keys.key_of(ctx, record)
    return key["status"] if key else "gone"


def _wrapper_layer(ctx, record) -> str:
    if wrapper.get_version(ctx.lam, record.resource) is None:
        return "gone"
    config = functions.get_configuration(ctx.lam, ctx.function_name) or {}
    return f"exists, used by {ctx.function_name}" if wrapper.function_uses(config, record.resource) \
        else "exists, unused"


def _secret_policy(ctx, record) -> str:
    secret = secrets_store.describe_secret(ctx.sm, record.resource)
    if secret is None:
        return "gone"
    if secret.get("DeletedDate"):
        return f"scheduled for deletion with the secret ({secret['DeletedDate']})"
    ours = secret_grant.runbook_statements(secret_grant.get_resource_policy(ctx.sm, record.resource))
    return f"{len(ours)} runbook statement(s) on the secret" if ours else "gone"


def _created_function(ctx, record) -> str:
    return "exists" if functions.exists(ctx.lam, record.name or record.resource) else "gone"


_DESCRIBERS = {**{kind: _function for kind in FUNCTION_KINDS}, "snapshot": _version, "edge_version": _version,
               "secret": _secret, "policy": _policy, "policy_attachment": _attachment, "role": _role,
               "kms_key": _key, "edge_association": _association, "access_key": _access_key,
               "function": _created_function, "wrapper_layer": _wrapper_layer, "secret_policy": _secret_policy}


# -- resources tagged for the function that this ledger does not name ----------------------------------
def unrecorded(ctx) -> list[str]:
    """Resources the runbook made for this function (tagged) that this ledger never recorded."""
    known = {r.resource for r in ctx.ledger.records()}
    found = []
    try:
        with aws_call("ListSecrets", "secrets tagged for " + ctx.function_name, "secretsmanager:ListSecrets"):
            pages = ctx.sm.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "tag-key", "Values": ["managed-by"]}], IncludePlannedDeletion=True)
            for page in pages:
                for s in page["SecretList"]:
                    if ctx.managed(secrets_store.tags_dict(s.get("Tags"))) and s["ARN"] not in known \
                            and not s.get("DeletedDate"):
                        found.append(f"secret {s['ARN']}: tagged for this function, not in this ledger")
    except AwsCallError as exc:
        found.append(f"could not list secrets: {exc.message}")
    return found + _unrecorded_by_name(ctx, known)


def _unrecorded_by_name(ctx, known: set[str]) -> list[str]:
    """The role and policy the runbook names deterministically for this function.

    (A key has no name before its alias; an interrupted key create is found by its token tag.)
    """
    found = []
    try:
        role = iam.get_role(ctx.iam, iam.dedicated_role_name(ctx.function_name))
        if role and role["Arn"] not in known and ctx.managed(iam.role_tags(ctx.iam, role["RoleName"])):
            found.append(f"role {role['Arn']}: tagged for this function, not in this ledger")
        if ctx.function_exists():
            arn = iam.policy_arn(ctx.partition, ctx.account, iam.policy_name(ctx.function_name))
            if arn not in known and iam.get_policy(ctx.iam, arn) and ctx.managed(iam.policy_tags(ctx.iam, arn)):
                found.append(f"policy {arn}: tagged for this function, not in this ledger")
    except AwsCallError as exc:
        found.append(f"could not look up the runbook's role or policy: {exc.message}")
    return found
