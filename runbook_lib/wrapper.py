"""The runbook's exec-wrapper layer: build it, publish it once per function, find it.

Strategy ``wrapper`` changes no code. The function gets one more layer,
``lambda-secrets-runbook-wrapper-<function>``, holding ``lambda-secrets-runbook/exec-wrapper`` and its
two fetchers (``runbook_lib/handlers/wrapper/``), and two variables: ``SECRET_ID`` (the
secret's ARN) and ``AWS_LAMBDA_EXEC_WRAPPER`` (the wrapper's path under ``/opt``). At init
the wrapper fetches the secret once with the function's own role, puts exactly its keys into
the runtime's environment and execs the runtime, so the code reads ``os.environ`` /
``process.env`` as before. A wrapper the function already had (an observability agent's) is
kept in :data:`NEXT_WRAPPER_VARIABLE` and run after ours.

The layer's content is deterministic: its CodeSha256 (in the version's description) tells
whether a published version is this build, so re-runs reuse one version. Each function has a
layer of its own: backout deletes it once the function no longer uses it, without listing the
region's functions (``lambda:ListFunctions`` returns every function's environment, and the
implementer's policy does not hold it), and no other change can swap the code a function's
wrapper runs. Layers carry no tags: a version is the runbook's by its name and description.

Examples
--------
>>> data = build_layer()
>>> sorted(layer_files())
['lambda-secrets-runbook/exec-wrapper', 'lambda-secrets-runbook/fetch_secret.cjs', 'lambda-secrets-runbook/fetch_secret.py']
>>> wrapped_environment({"LOG_LEVEL": "INFO"}, "arn:...:secret:x", previous_wrapper="/opt/otel-instrument")
{'LOG_LEVEL': 'INFO', 'SECRET_ID': 'arn:...:secret:x', 'AWS_LAMBDA_EXEC_WRAPPER': '/opt/lambda-secrets-runbook/exec-wrapper', 'LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER': '/opt/otel-instrument'}
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

from .exceptions import AwsCallError
from .handlers import HANDLERS_DIR
from .session import aws_call

#: A function's layer is ``<LAYER_BASE>-<function name>`` (Lambda's names: 140 characters, functions' 64).
LAYER_BASE = "lambda-secrets-runbook-wrapper"
#: Every layer the runbook publishes is named so (a prefix the operator policy can scope).
LAYER_PREFIX = "lambda-secrets-runbook-"
FOLDER = "lambda-secrets-runbook"
WRAPPER_PATH = f"/opt/{FOLDER}/exec-wrapper"
WRAPPER_VARIABLE = "AWS_LAMBDA_EXEC_WRAPPER"
NEXT_WRAPPER_VARIABLE = "LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER"
SECRET_VARIABLE = "SECRET_ID"
#: Lambda's limit of layers per function.
MAX_LAYERS = 5
DESCRIPTION_PREFIX = "lambda-secrets-runbook exec wrapper"
SOURCE_DIR = HANDLERS_DIR / "wrapper"
_SOURCES = {"exec-wrapper": 0o755, "fetch_secret.py": 0o644, "fetch_secret.cjs": 0o644}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

#: Variables the wrapper never takes from a secret (the fetchers hold the same list; a test keeps
#: the three equal): Lambda's reserved ones, and those that decide how the runtime starts.
RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", WRAPPER_VARIABLE,
    NEXT_WRAPPER_VARIABLE, SECRET_VARIABLE, "PATH", "LD_LIBRARY_PATH", "LD_PRELOAD",
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "NODE_PATH", "NODE_OPTIONS", "AWS_ENDPOINT_URL",
})
PERMISSIONS = ("lambda:ListLayerVersions", "lambda:GetLayerVersion", "lambda:PublishLayerVersion")


# -- the layer's content ------------------------------------------------------------------------
def layer_files() -> dict[str, bytes]:
    """``{path in the layer: bytes}``: the wrapper and its fetchers under :data:`FOLDER`."""
    return {f"{FOLDER}/{name}": (SOURCE_DIR / name).read_bytes() for name in _SOURCES}


def build_layer() -> bytes:
    """The layer's zip: fixed timestamps and order, the wrapper executable (Lambda keeps zip modes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, mode in _SOURCES.items():
            info = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=_ZIP_TIME)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (SOURCE_DIR / name).read_bytes())
    return buffer.getvalue()


def layer_sha256() -> str:
    """Lambda's CodeSha256 of :func:`build_layer` (base64 of the SHA-256)."""
    return base64.b64encode(hashlib.sha256(build_layer()).digest()).decode()


def build_id() -> str:
    """A short, stable name of this build (hex of the content hash), put in the version's description."""
    return hashlib.sha256(build_layer()).hexdigest()[:16]


def description(token: str) -> str:
    return f"{DESCRIPTION_PREFIX} build {build_id()} token {token}"


def is_runbook_layer(version_arn: str) -> bool:
    """True for a version ARN of a layer the runbook publishes (by its name)."""
    parts = version_arn.split(":")
    return len(parts) >= 7 and parts[5] == "layer" and parts[6].startswith(LAYER_PREFIX)


def layer_name_and_version(version_arn: str) -> tuple[str, str]:
    parts = version_arn.split(":")
    return parts[6], parts[7] if len(parts) > 7 else ""


# -- the function's configuration with the wrapper ----------------------------------------------
def wrapped_environment(kept: dict, secret_arn: str, previous_wrapper: str = "") -> dict:
    """``kept`` plus ``SECRET_ID``, the wrapper, and the wrapper it runs next (when there was one)."""
    env = {**kept, SECRET_VARIABLE: secret_arn, WRAPPER_VARIABLE: WRAPPER_PATH}
    if previous_wrapper and previous_wrapper != WRAPPER_PATH:
        env[NEXT_WRAPPER_VARIABLE] = previous_wrapper
    return env


def previous_wrapper(environment: dict) -> str:
    """The wrapper the function ran before the runbook's (``""``: none), from its live variables."""
    current = environment.get(WRAPPER_VARIABLE, "")
    if current == WRAPPER_PATH:
        return environment.get(NEXT_WRAPPER_VARIABLE, "")
    return current


def wrapped_layers(layer_arns: list[str], wrapper_arn: str) -> list[str]:
    """The function's layers with every runbook wrapper version replaced by ``wrapper_arn``, last."""
    return [arn for arn in layer_arns if not is_runbook_layer(arn)] + [wrapper_arn]


# -- the layer in AWS ---------------------------------------------------------------------------
def layer_name(function_name: str) -> str:
    """The name of ``function_name``'s wrapper layer."""
    return f"{LAYER_BASE}-{function_name}"


def find_version(lam, function_name: str, *, build: str = "", token: str = "") -> dict | None:
    """The newest version of the function's layer whose description names ``build`` (or ``token``)."""
    marker = f"build {build}" if build else f"token {token}"
    name = layer_name(function_name)
    with aws_call("ListLayerVersions", name, "lambda:ListLayerVersions"):
        pages = lam.get_paginator("list_layer_versions").paginate(LayerName=name)
        versions = [v for page in pages for v in page.get("LayerVersions", [])]
    for version in sorted(versions, key=lambda v: int(v["Version"]), reverse=True):
        text = version.get("Description") or ""
        if text.startswith(DESCRIPTION_PREFIX) and marker in text:
            return version
    return None


def get_version(lam, version_arn: str) -> dict | None:
    """``GetLayerVersion`` of a version ARN, or None when the version is gone."""
    name, version = layer_name_and_version(version_arn)
    try:
        with aws_call("GetLayerVersion", version_arn, "lambda:GetLayerVersion"):
            return lam.get_layer_version(LayerName=name, VersionNumber=int(version))
    except AwsCallError as exc:
        if exc.code in ("ResourceNotFoundException", "NotFoundException"):
            return None
        raise


def publish(lam, function_name: str, token: str) -> dict:
    """``PublishLayerVersion`` of :func:`build_layer` as the function's layer, its build and ``token`` described."""
    name = layer_name(function_name)
    with aws_call("PublishLayerVersion", name, "lambda:PublishLayerVersion"):
        return lam.publish_layer_version(LayerName=name, Description=description(token)[:256],
                                         Content={"ZipFile": build_layer()},
                                         LicenseInfo="lambda-secrets-runbook")


def delete_version(lam, version_arn: str) -> None:
    name, version = layer_name_and_version(version_arn)
    with aws_call("DeleteLayerVersion", version_arn, "lambda:DeleteLayerVersion"):
        lam.delete_layer_version(LayerName=name, VersionNumber=int(version))


def function_uses(config: dict, version_arn: str) -> bool:
    """Whether the function configuration ``config`` (its ``$LATEST``) has ``version_arn`` among its layers."""
    return any(layer.get("Arn") == version_arn for layer in config.get("Layers") or [])
