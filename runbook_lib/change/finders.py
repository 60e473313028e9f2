"""What an interrupted create left behind, found by token and tag; and the records that describe it.

Each ``find_<kind>`` answers one pending :class:`~runbook_lib.records.Intent`: the
resource that create made, as the typed record the step would have written, or None when
nothing was made. The ``*_record`` builders are the same ones the steps use, so a
reconciled record holds exactly what backout needs, like one written in the normal course.

How each kind is recognised as this run's (never by name alone):

========================  ==========================================================
secret                    the name, the runbook's tags, and the intent's token among its
                          version ids (``ClientRequestToken`` becomes the version id)
kms_key                   the token tag :data:`TOKEN_TAG` (the key has no name until its
                          alias is created, the step after)
role, policy              the deterministic name and ARN, and the runbook's tags for the function
snapshot, edge_version    the token in the published version's description
wrapper_layer             the token in the layer version's description
function_state            the function's live state equals the one the intent expected
========================  ==========================================================
"""

from __future__ import annotations

from typing import Callable

from .. import functions, iam, secrets_store, wrapper
from ..records import (CREATED, EdgeVersion, FunctionState, Intent, KmsKey, Policy, Record, Role, Secret, Snapshot,
                       WrapperLayer)
from ..session import aws_call

#: The tag that carries an intent's token on a resource whose id AWS assigns and that has no token.
TOKEN_TAG = "runbook-token"
PERMISSIONS = ("secretsmanager:DescribeSecret", "iam:GetRole", "iam:ListRoleTags", "iam:GetPolicy",
               "iam:ListPolicyTags", "kms:ListKeys", "kms:ListResourceTags", "lambda:ListVersionsByFunction",
               "lambda:GetFunctionConfiguration", "lambda:ListLayerVersions")


# -- records, as the steps write them --------------------------------------------------------------
def snapshot_record(function_name: str, version: dict, details: dict, step: str, action: str = CREATED) -> Snapshot:
    """The backout snapshot, from the published version's configuration and the names that move."""
    return Snapshot(resource=function_name, action=action, step=step,
                    version=str(version["Version"]), version_arn=version["FunctionArn"],
                    code_sha256=version["CodeSha256"], role=version["Role"], handler=version.get("Handler", ""),
                    last_modified=details.get("last_modified", ""),
                    variable_names=sorted(functions.environment(version)),
                    moved_variables=list(details.get("moved_variables", [])),
                    removed_variables=list(details.get("removed_variables", [])))


def secret_record(arn: str, name: str, kms_key: str, variables: list[str], step: str, action: str = CREATED,
                  writes: int = 1) -> Secret:
    return Secret(resource=arn, action=action, step=step, name=name, kms_key=kms_key or secrets_store.AWS_MANAGED_KEY,
                  variables=list(variables), writes=writes)


def role_record(arn: str, name: str, previous_role: str, step: str, action: str = CREATED) -> Role:
    return Role(resource=arn, action=action, step=step, name=name, previous_role=previous_role)


def policy_record(arn: str, name: str, secret: str, step: str, action: str = CREATED, validation: str = "") -> Policy:
    return Policy(resource=arn, action=action, step=step, name=name, secret=secret, validation=validation)


def key_record(arn: str, alias: str, role: str, step: str, action: str = CREATED) -> KmsKey:
    return KmsKey(resource=arn, action=action, step=step, alias=alias, role=role)


def layer_record(version: dict, step: str, action: str = CREATED) -> WrapperLayer:
    """A version of the runbook's wrapper layer (its CodeSha256: this build's, checked by the step)."""
    name, _ = wrapper.layer_name_and_version(version["LayerVersionArn"])
    return WrapperLayer(resource=version["LayerVersionArn"], action=action, step=step, name=name,
                        version=str(version["Version"]), code_sha256=wrapper.layer_sha256())


# -- finders ------------------------------------------------------------------------------------------
def find_secret(ctx, pending: Intent) -> Record | None:
    secret = secrets_store.describe_secret(ctx.sm, pending.name)
    if secret is None or not ctx.managed(secrets_store.tags_dict(secret.get("Tags"))):
        return None
    if pending.token not in (secret.get("VersionIdsToStages") or {}):
        return None
    return secret_record(secret["ARN"], secret["Name"], secret.get("KmsKeyId") or secrets_store.AWS_MANAGED_KEY,
                         pending.details.get("variables", []), pending.step)


def find_role(ctx, pending: Intent) -> Record | None:
    role = iam.get_role(ctx.iam, pending.name)
    if role is None or not ctx.managed(iam.role_tags(ctx.iam, pending.name)):
        return None
    return role_record(role["Arn"], pending.name, pending.details.get("previous_role", ""), pending.step)


def find_policy(ctx, pending: Intent) -> Record | None:
    arn = pending.details.get("arn", "")
    if not arn or iam.get_policy(ctx.iam, arn) is None or not ctx.managed(iam.policy_tags(ctx.iam, arn)):
        return None
    return policy_record(arn, pending.name, pending.details.get("secret", ""), pending.step)


def find_kms_key(ctx, pending: Intent) -> Record | None:
    with aws_call("ListKeys", "keys of the account", "kms:ListKeys"):
        keys = [k for page in ctx.kms.get_paginator("list_keys").paginate() for k in page.get("Keys", [])]
    for key in keys:
        if secrets_store.key_tags(ctx.kms, key["KeyArn"]).get(TOKEN_TAG) == pending.token:
            return key_record(key["KeyArn"], pending.name, pending.details.get("role", ""), pending.step)
    return None


def find_snapshot(ctx, pending: Intent) -> Record | None:
    version = functions.find_version(ctx.lam, pending.name, pending.token)
    return snapshot_record(pending.name, version, pending.details, pending.step) if version else None


def find_edge_version(ctx, pending: Intent) -> Record | None:
    version = functions.find_version(ctx.lam, pending.name, pending.token)
    if version is None:
        return None
    return EdgeVersion(resource=version["FunctionArn"], step=pending.step, version=str(version["Version"]))


def find_function_state(ctx, pending: Intent) -> Record | None:
    """The function in the state the interrupted change expected (fields it did not know left aside)."""
    live = functions.state_marker(ctx.live())
    if any(value and live.get(key) != value for key, value in pending.details.items()):
        return None
    return FunctionState(resource=pending.name, action="changed", step=pending.step, **live)


def find_wrapper_layer(ctx, pending: Intent) -> Record | None:
    version = wrapper.find_version(ctx.lam, ctx.function_name, token=pending.token)
    return layer_record(version, pending.step) if version else None


FINDERS: dict[str, Callable] = {
    "secret": find_secret, "role": find_role, "policy": find_policy, "kms_key": find_kms_key,
    "snapshot": find_snapshot, "edge_version": find_edge_version, "function_state": find_function_state,
    "wrapper_layer": find_wrapper_layer,
}


def find(ctx, pending: Intent) -> Record | None:
    """What ``pending`` made, or None; an intent of a kind no finder knows is a programming error."""
    return FINDERS[pending.creates](ctx, pending)
