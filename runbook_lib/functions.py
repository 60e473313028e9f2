"""Lambda functions: read, snapshot, reconfigure, package, deploy, restore.

Everything the implementation and backout do to a function goes through here, with
one rule: ``UpdateFunctionConfiguration`` replaces the whole environment map, so every
call passes the complete map the function should end with (never a partial one), and
every change is followed by the ``function_updated`` waiter before the next call.

Deployment packages are built deterministically (fixed timestamps and order), so the
CodeSha256 of a package the runbook would deploy can be compared with the live one to
plan ``none`` on a re-run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.request
import zipfile
from pathlib import Path

from botocore.exceptions import WaiterError

from .exceptions import AwsCallError, ChangeRefused, InputError
from .handlers import HANDLERS_DIR, PACKAGE_CONFIG_FILE, REFERENCE_HANDLER, REFERENCE_MODULE  # noqa: F401
from .session import aws_call, error_code
from .waits import attempts_for, poll_seconds

#: Configuration fields a snapshot can restore (besides code); the rest Lambda manages itself.
RESTORED_FIELDS = ("Handler", "Role", "Runtime", "Timeout", "MemorySize", "Description")
#: The fields the runbook's change may set (``code``: the deployment package). A published
#: version's Description is the one given to PublishVersion, not the function's: never restored
#: from a version, never compared with one.
CHANGEABLE_FIELDS = ("Environment", "Handler", "Role", "Layers", "Timeout", "MemorySize", "code")
MAX_DIRECT_UPLOAD = 50 * 1024 * 1024
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# -- reading -----------------------------------------------------------------------------
def get_configuration(lam, function_name: str, qualifier: str | None = None) -> dict:
    """``GetFunctionConfiguration``; an unknown function is an :class:`InputError`."""
    kwargs = {"FunctionName": function_name}
    if qualifier:
        kwargs["Qualifier"] = qualifier
    try:
        with aws_call("GetFunctionConfiguration", function_name, "lambda:GetFunctionConfiguration"):
            return lam.get_function_configuration(**kwargs)
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":
            where = f"version {qualifier} of " if qualifier else ""
            raise InputError("function_name", f"{where}function {function_name!r} not found in "
                             "this account and region") from None
        raise


def environment(config: dict) -> dict:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def layer_arns(config: dict) -> list[str]:
    return [layer["Arn"] for layer in config.get("Layers") or []]


def arn_parts(function_arn: str) -> dict:
    """``partition``, ``region`` and ``account`` of a function ARN."""
    parts = function_arn.split(":")
    return {"partition": parts[1], "region": parts[3], "account": parts[4]}


#: Fields of :func:`state_marker` compared for drift (LastModified alone can miss a change made
#: within the same second on some endpoints, so names, handler and role are compared too).
DRIFT_FIELDS = ("code_sha256", "last_modified", "variable_names", "handler", "role")


def state_marker(config: dict) -> dict:
    """What identifies a function's state for drift detection (names and hashes, never values)."""
    return {"code_sha256": config.get("CodeSha256", ""), "last_modified": config.get("LastModified", ""),
            "variable_names": sorted(environment(config)), "handler": config.get("Handler", ""),
            "role": config.get("Role", "")}


def restorable_config(config: dict) -> dict:
    """The parts of a configuration a backout restores (no values printed from it, ever)."""
    out = {k: config.get(k) for k in RESTORED_FIELDS if config.get(k) is not None}
    out["Environment"] = environment(config)
    out["Layers"] = layer_arns(config)
    return out


def config_differences(live: dict, wanted: dict, fields: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Names of the restorable fields that differ (``Environment`` compared exactly, by name only in output).

    ``fields`` limits the comparison (names of :data:`CHANGEABLE_FIELDS`; ``code`` compares
    the CodeSha256); default: every restorable field, code aside.
    """
    live_r, wanted_r = restorable_config(live), restorable_config(wanted)
    names = RESTORED_FIELDS + ("Layers", "Environment") if fields is None else tuple(fields)
    diffs = [k for k in RESTORED_FIELDS + ("Layers", "Environment") if k in names
             and (k in ("Layers", "Environment") or wanted_r.get(k) is not None) and live_r.get(k) != wanted_r.get(k)]
    if "code" in names and live.get("CodeSha256") != wanted.get("CodeSha256"):
        diffs.append("code")
    return diffs


# -- waiting and changing ----------------------------------------------------------------
def wait_updated(lam, function_name: str, delay: int = 2, max_attempts: int = 150,
                 first_delay: float = 0.25, first_attempts: int = 8) -> None:
    """Block until the last update finished (``function_updated`` waiter).

    Polls every ``first_delay`` seconds for the first ``first_attempts`` polls (most zip
    updates finish within a second), then every ``delay`` seconds. On a loopback endpoint
    (the lab) the first polls come every :data:`runbook_lib.waits.LOOPBACK_POLL_SECONDS`,
    as many more of them as keep the same first stretch of time.
    """
    fast = poll_seconds(lam, first_delay)
    first_attempts, first_delay = attempts_for(first_delay, first_attempts, fast), fast
    with aws_call("GetFunctionConfiguration (waiter function_updated)", function_name,
                  "lambda:GetFunctionConfiguration"):
        waiter = lam.get_waiter("function_updated")
        try:
            waiter.wait(FunctionName=function_name,
                        WaiterConfig={"Delay": first_delay, "MaxAttempts": first_attempts})
            return
        except WaiterError as exc:
            if "Max attempts exceeded" not in str(exc):
                raise
        waiter.wait(FunctionName=function_name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts})


def publish_version(lam, function_name: str, description: str) -> dict:
    with aws_call("PublishVersion", function_name, "lambda:PublishVersion"):
        return lam.publish_version(FunctionName=function_name, Description=description[:256])


def update_configuration(lam, function_name: str, *, variables: dict | None = None,
                         role: str | None = None, handler: str | None = None,
                         layers: list[str] | None = None, timeout: int | None = None,
                         memory: int | None = None, runtime: str | None = None,
                         description: str | None = None, role_retry_seconds: int = 60) -> dict:
    """One ``UpdateFunctionConfiguration`` with the complete environment map, then wait.

    A role created seconds ago may not be assumable by Lambda yet (IAM is eventually
    consistent); that one error is retried for up to ``role_retry_seconds``.
    """
    kwargs: dict = {"FunctionName": function_name}
    if variables is not None:
        kwargs["Environment"] = {"Variables": dict(variables)}
    for key, value in (("Role", role), ("Handler", handler), ("Layers", layers), ("Timeout", timeout),
                       ("MemorySize", memory), ("Runtime", runtime), ("Description", description)):
        if value is not None:
            kwargs[key] = value
    deadline = time.monotonic() + role_retry_seconds
    while True:
        try:
            with aws_call("UpdateFunctionConfiguration", function_name,
                          "lambda:UpdateFunctionConfiguration" + (" + iam:PassRole" if role else "")):
                result = lam.update_function_configuration(**kwargs)
            break
        except AwsCallError as exc:
            assumable = "cannot be assumed" in str(exc)
            if not (role and exc.code == "InvalidParameterValueException" and assumable
                    and time.monotonic() < deadline):
                raise
            time.sleep(5)
    wait_updated(lam, function_name)
    return result


def deploy_zip(lam, function_name: str, data: bytes) -> dict:
    """``UpdateFunctionCode`` with the package bytes, then wait."""
    if len(data) > MAX_DIRECT_UPLOAD:
        raise InputError("code_path", f"package is {len(data)} bytes; direct upload allows "
                         f"{MAX_DIRECT_UPLOAD}: upload it to S3 and deploy from there")
    with aws_call("UpdateFunctionCode", function_name, "lambda:UpdateFunctionCode"):
        result = lam.update_function_code(FunctionName=function_name, ZipFile=data)
    wait_updated(lam, function_name)
    return result


# -- packages ----------------------------------------------------------------------------
def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 of the package."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _deterministic_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    return buffer.getvalue()


def build_reference_package(secret_id: str, region: str, environment_defaults: dict | None = None) -> bytes:
    """The reference handler plus ``runbook_config.json`` (secret ARN, region, non-secret settings).

    ``environment_defaults`` carries the non-secret variables of a Lambda@Edge function,
    which cannot have environment variables; it must never hold a secret value.
    """
    config = {"SECRET_ID": secret_id, "region": region, "environment": dict(environment_defaults or {})}
    source = (HANDLERS_DIR / f"{REFERENCE_MODULE}.py").read_bytes()
    return _deterministic_zip({f"{REFERENCE_MODULE}.py": source,
                               PACKAGE_CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()})


def handler_module_path(handler: str) -> str:
    """``pkg.mod.handler`` -> ``pkg/mod.py`` (the file a Python package must contain)."""
    return handler_files(handler, "python3.12")[0]


def handler_files(handler: str, runtime: str) -> list[str]:
    """The package members that can hold ``handler``'s module for ``runtime``, as its runtime looks for them.

    Python: ``pkg.mod.fn`` (or ``pkg/mod.fn``) is ``pkg/mod.py`` or ``pkg/mod/__init__.py``.
    Node.js: ``lib/api.routes.get`` is ``lib/api`` + ``.js``, ``.mjs`` or ``.cjs`` (the module is
    the last path part up to its first dot, the rest is the export path). Ruby: ``file.fn`` is
    ``file.rb``. OS-only runtimes: an executable ``bootstrap`` at the root. Other runtimes
    (Java, .NET): no member is required (their handlers name classes, not files).
    """
    if runtime.startswith("provided"):
        return ["bootstrap"]
    if runtime.startswith("nodejs"):
        folder, _, base = handler.rpartition("/")
        module = (f"{folder}/" if folder else "") + base.split(".", 1)[0]
        return [module + ext for ext in (".js", ".mjs", ".cjs")]
    module = handler.rsplit(".", 1)[0] if "." in handler else handler
    if runtime.startswith("ruby"):
        return [module + ".rb"]
    if runtime.startswith("python"):
        path = module.replace(".", "/")
        return [path + ".py", path + "/__init__.py"]
    return []


def read_code_package(path: str, handler: str, runtime: str = "python3.12") -> bytes:
    """Read and check a deployment package: a readable zip that holds the handler's module for ``runtime``."""
    if ".." in handler.split("/") or handler.startswith("/"):
        raise InputError("code_path", f"the handler {handler} points outside the package")
    file = Path(path)
    if not file.is_file():
        raise InputError("code_path", f"{path} does not exist or is not a file")
    data = file.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InputError("code_path", f"{path} is not a zip file (Lambda needs a .zip package)")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        broken = zf.testzip()
    if broken:
        raise InputError("code_path", f"{path}: member {broken} is corrupt")
    wanted = handler_files(handler, runtime)
    if wanted and not names & set(wanted):
        raise InputError("code_path", f"{path} lacks the handler module {' or '.join(wanted)} for {runtime} "
                         f"(the function's handler is {handler})")
    return data


def download_code(location: str, timeout: int = 60) -> bytes:
    """Fetch a package from the pre-signed ``Code.Location`` URL that GetFunction returns."""
    try:
        with urllib.request.urlopen(location, timeout=timeout) as response:  # noqa: S310 - AWS URL
            return response.read()
    except OSError as exc:
        raise AwsCallError("GetFunction (code download)", location.split("?")[0], type(exc).__name__,
                           "could not download the package", permission="lambda:GetFunction") from None


def version_code(lam, function_name: str, version: str) -> bytes:
    """The deployment package of one published version, checked against its CodeSha256."""
    with aws_call("GetFunction", f"{function_name}:{version}", "lambda:GetFunction"):
        response = lam.get_function(FunctionName=function_name, Qualifier=version)
    data = download_code(response["Code"]["Location"])
    expected = response["Configuration"]["CodeSha256"]
    if code_sha256(data) != expected:
        raise ChangeRefused(f"{function_name}:{version}", "downloaded package does not match the "
                            "version's CodeSha256; not deploying it")
    return data


def restore_version(lam, function_name: str, version: str,
                    fields: tuple[str, ...] | list[str] = CHANGEABLE_FIELDS) -> None:
    """Put ``fields`` of ``$LATEST`` back to a published version's: its code, then its configuration.

    Only the fields named are written (the ones the change set), so a field the runbook never
    touched keeps whatever the function's owner gave it.
    """
    snapshot = get_configuration(lam, function_name, version)
    live = get_configuration(lam, function_name)
    if "code" in fields and live.get("CodeSha256") != snapshot.get("CodeSha256"):
        deploy_zip(lam, function_name, version_code(lam, function_name, version))
    wanted = restorable_config(snapshot)
    chosen = {key: value for key, value in (("variables", wanted["Environment"]), ("role", wanted.get("Role")),
                                            ("handler", wanted.get("Handler")), ("layers", wanted["Layers"]),
                                            ("timeout", wanted.get("Timeout")), ("memory", wanted.get("MemorySize")))
              if _FIELD_OF[key] in fields}
    if chosen:
        update_configuration(lam, function_name, **chosen)


_FIELD_OF = {"variables": "Environment", "role": "Role", "handler": "Handler", "layers": "Layers",
             "timeout": "Timeout", "memory": "MemorySize"}


def find_version(lam, function_name: str, marker: str) -> dict | None:
    """The published version whose description holds ``marker`` (a runbook token), or None."""
    with aws_call("ListVersionsByFunction", function_name, "lambda:ListVersionsByFunction"):
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
            for version in page.get("Versions", []):
                if version.get("Version") != "$LATEST" and marker in (version.get("Description") or ""):
                    return version
    return None


def function_tags(lam, function_arn: str) -> dict:
    with aws_call("ListTags", function_arn, "lambda:ListTags"):
        return lam.list_tags(Resource=function_arn).get("Tags", {})


def delete_function(lam, function_name: str) -> None:
    try:
        with aws_call("DeleteFunction", function_name, "lambda:DeleteFunction"):
            lam.delete_function(FunctionName=function_name)
    except AwsCallError as exc:
        if exc.code != "ResourceNotFoundException":
            raise


def exists(lam, function_name: str) -> bool:
    try:
        lam.get_function_configuration(FunctionName=function_name)
        return True
    except Exception as exc:  # noqa: BLE001 - anything but "not found" is re-raised below
        if error_code(exc) == "ResourceNotFoundException":
            return False
        with aws_call("GetFunctionConfiguration", function_name, "lambda:GetFunctionConfiguration"):
            raise



def functions_using_role(lam, role_arn: str) -> list[str]:
    """Names of every function of the region whose execution role is ``role_arn``: one paged ListFunctions."""
    names = []
    with aws_call("ListFunctions", "functions of the region", "lambda:ListFunctions"):
        for page in lam.get_paginator("list_functions").paginate():
            names += [f["FunctionName"] for f in page.get("Functions", []) if f.get("Role") == role_arn]
    return sorted(names)
