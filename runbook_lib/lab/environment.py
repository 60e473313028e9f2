"""One Lambda execution environment in the lab: its folders, its variables, its process.

An environment is a private folder laid out as Lambda's sandbox is::

    <env>/var/task      the function's package (LAMBDA_TASK_ROOT), as zipped: file modes kept
    <env>/opt           its layers, extracted in order (later layers overwrite earlier ones)
    <env>/var/runtime   the lab's bootstrap and lab-runtime.json (LAMBDA_RUNTIME_DIR)

and one process started with the runtime's start-up command, behind the function's
``AWS_LAMBDA_EXEC_WRAPPER`` when it sets one (``/opt/`` and ``/var/task/`` at the start
of the wrapper path name the environment's folders). When the lab runs as root the
process runs as an unprivileged user (:data:`~.runtimes.SANDBOX_UID`), so the task root
and ``/opt`` are read-only to the function and a file the package does not make
world-readable cannot be read, as on Lambda.

Nothing here points into the project: the environment lives in a temporary folder, the
SDK in the folder ``make lab-runtimes`` filled.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import runtimes
from .worker import EXITED, TIMEOUT, WorkerProcess, now_ms

HERE = Path(__file__).resolve().parent
INIT_TIMEOUT_S = 10.0
SESSION_SECONDS = 12 * 3600
TRUSTED_SERVICES = ("lambda.amazonaws.com", "edgelambda.amazonaws.com")
_BOOTSTRAP_FILES = {"python": {"python_bootstrap.py": "bootstrap.py"},
                    "nodejs": {"node_bootstrap.mjs": "index.mjs", "node_esm_paths.mjs": "esm_paths.mjs"}}


class Refusal(Exception):
    """An AWS error answered before any code runs: ``status``, ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> bytes:
        # "__type" as moto's own errors carry it, so botocore finds the code even when
        # the x-amzn-ErrorType header is not forwarded
        return json.dumps({"Type": "User", "Message": self.message, "__type": self.code}).encode()


@dataclass(frozen=True)
class FunctionSpec:
    """What one invocation needs from moto's function model (read once per invoke)."""

    account_id: str
    region: str
    name: str
    version: str
    invoked_arn: str
    handler: str
    runtime: str
    package_type: str
    role: str
    timeout: int
    memory: int
    env: tuple
    code_sha: str
    last_modified: str
    layers: tuple  # ((arn, sha256), ...)
    code: bytes = field(repr=False, compare=False)
    layer_code: tuple = field(repr=False, compare=False)

    @property
    def key(self) -> tuple:
        return (self.account_id, self.region, self.name, self.version)

    @property
    def fingerprint(self) -> tuple:
        return (self.code_sha, self.last_modified, self.env, self.handler, self.runtime,
                self.role, self.timeout, self.memory, self.layers)

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


def load_spec(account_id: str, region: str, function_name: str, qualifier: str | None) -> FunctionSpec:
    """The function as moto holds it now; :class:`Refusal` when it or a layer does not exist."""
    from moto.awslambda.utils import get_backend
    from moto.core.exceptions import JsonRESTError

    backend = get_backend(account_id, region)
    try:
        fn = backend.get_function(function_name, qualifier or None)
    except JsonRESTError as exc:  # moto's ResourceNotFoundException and friends
        raise Refusal(exc.code, exc.error_type, exc.message) from None
    layers, layer_code = [], []
    for layer in fn.layers or []:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None:
            raise Refusal(404, "ResourceNotFoundException", f"Layer version {layer['Arn']} does not exist.")
        layers.append((version.arn, version.code_sha_256))
        layer_code.append(version.code_bytes)
    base_arn = f"arn:aws:lambda:{region}:{account_id}:function:{fn.function_name}"
    if ":" in function_name.split(":function:")[-1]:
        qualifier = function_name.rsplit(":", 1)[1]
    return FunctionSpec(
        account_id=account_id, region=region, name=fn.function_name, version=str(fn.version),
        invoked_arn=f"{base_arn}:{qualifier}" if qualifier else base_arn,
        handler=fn.handler or "", runtime=fn.run_time or "",
        package_type=fn.package_type or "Zip", role=fn.role, timeout=int(fn.timeout),
        memory=int(fn.memory_size), env=tuple(sorted((fn.environment_vars or {}).items())),
        code_sha=fn.code_sha_256, last_modified=str(fn.last_modified),
        layers=tuple(layers), code=getattr(fn, "code_bytes", b""), layer_code=tuple(layer_code))


def extract(data: bytes, target: Path) -> None:
    """Unzip as Lambda does: file modes as zipped (0644/0755 when the zip records none),
    symbolic links kept, nothing written outside ``target``."""
    root = target.resolve()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                _extract_member(archive, info, root)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise Refusal(502, "InvalidZipFileException", "Lambda was unable to unzip the deployment package.") from None


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    destination = root / info.filename
    _make_dirs(destination.parent, root)
    if not destination.parent.resolve().is_relative_to(root):  # through a link placed earlier
        raise zipfile.BadZipFile("member outside the package root")
    unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
    if info.is_dir():
        _make_dirs(destination, root)
        return
    if destination.is_symlink() or destination.exists():
        destination.unlink()  # a later layer overwrites an earlier one's file
    if stat.S_ISLNK(unix_mode):
        os.symlink(archive.read(info).decode(), destination)
        return
    with archive.open(info) as source, open(destination, "wb") as out:
        shutil.copyfileobj(source, out)
    os.chmod(destination, (unix_mode & 0o777) if unix_mode & 0o777 else 0o644)


def _make_dirs(folder: Path, root: Path) -> None:
    missing = []
    while folder != root and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        os.chmod(path, 0o755)  # whatever the lab's umask
    if not folder.resolve().is_relative_to(root):
        raise zipfile.BadZipFile("member outside the package root")


def trust_allows_lambda(policy_document: str | dict) -> bool:
    """Whether a role trust policy lets Lambda (or Lambda@Edge) call sts:AssumeRole."""
    doc = policy_document
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            from urllib.parse import unquote
            doc = json.loads(unquote(doc))
    statements = doc.get("Statement", [])
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = _as_list(statement.get("Action"))
        if not any(a.lower() in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal", {})
        services = ["*"] if principal == "*" else _as_list(
            principal.get("Service") if isinstance(principal, dict) else None)
        if not any(s == "*" or s in TRUSTED_SERVICES for s in services):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def check_trust(spec: FunctionSpec) -> None:
    """Refuse as Lambda does when the execution role is gone or does not trust Lambda."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    refused = Refusal(400, "InvalidParameterValueException",
                      "The role defined for the function cannot be assumed by Lambda.")
    try:
        role = iam_backends[spec.account_id][get_partition(spec.region)].get_role_by_arn(spec.role)
    except Exception:
        raise refused from None
    if not trust_allows_lambda(role.assume_role_policy_document):
        raise refused


def assume_execution_role(spec: FunctionSpec):
    """Temporary credentials of the execution role, session name = function name."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    check_trust(spec)
    return sts_backends[spec.account_id][get_partition(spec.region)].assume_role(
        region_name=spec.region, role_session_name=spec.name, role_arn=spec.role,
        policy=None, duration=SESSION_SECONDS, external_id=None)


class ExecutionEnvironment:
    """One execution environment: folders, process and role session for one function version.

    Parameters
    ----------
    spec:
        The function version it runs.
    endpoint_url:
        The lab's URL (the function's ``AWS_ENDPOINT_URL``).
    on_assume_role:
        Optional callback told about the role session of each cold start.
    """

    def __init__(self, spec: FunctionSpec, endpoint_url: str, on_assume_role: Callable | None = None):
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.on_assume_role = on_assume_role
        self.lock = threading.Lock()  # one invocation at a time, as in a Lambda environment
        self.worker: WorkerProcess | None = None
        self.root: Path | None = None
        self.stream = ""
        self.session = None
        self.expires = 0.0
        self.invocations = 0
        self.init_ms = 0.0
        self.retired = False
        self.last_used = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.worker is not None and self.worker.alive

    @property
    def task_root(self) -> Path:
        return self.root / "var" / "task"

    @property
    def opt(self) -> Path:
        return self.root / "opt"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "var" / "runtime"

    def current(self, spec: FunctionSpec) -> bool:
        fresh = self.expires == 0 or time.time() < self.expires - 300
        return fresh and spec.fingerprint == self.spec.fingerprint

    def start(self, lines: list) -> dict | None:
        """Assume the role, lay out the folders, start the runtime; returns an init error.

        Raises :class:`Refusal` when the role cannot be assumed, the package cannot be
        unzipped or this machine lacks what the runtime needs.
        """
        spec = self.spec
        launcher = runtimes.launcher(runtimes.family(spec.runtime))
        if launcher.problem:
            raise Refusal(502, "InvalidRuntimeException", launcher.problem)
        self.session = assume_execution_role(spec)
        self.expires = time.time() + SESSION_SECONDS
        if self.on_assume_role is not None:
            self.on_assume_role(account_id=spec.account_id, region=spec.region, role_arn=spec.role,
                                session_name=spec.name, access_key_id=self.session.access_key_id)
        self._lay_out(launcher)
        day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
        self.stream = f"{day}/[{spec.version}]{uuid.uuid4().hex}"
        env = self.environ(launcher)
        version = runtimes.language_version(spec.runtime)
        lines.append((now_ms(), f"INIT_START Runtime Version: {launcher.family}:{version}.lab".encode()))
        command = launcher.command(self.runtime_dir)
        wrapper = env.get("AWS_LAMBDA_EXEC_WRAPPER")
        if wrapper:
            command = [self.lab_path(wrapper)] + command
        started = time.monotonic()
        try:
            self.worker = WorkerProcess(command, env, str(self.task_root), launcher.user,
                                        lambda fd: self._write_config(launcher, fd))
        except OSError as exc:  # the wrapper is missing or cannot be executed
            why = (exc.strerror or str(exc)).lower()
            return _init_failure("Runtime.InvalidEntrypoint", f"Error: fork/exec {wrapper}: {why}")
        reply = self.worker.wait_ready(INIT_TIMEOUT_S, lines)
        self.init_ms = (time.monotonic() - started) * 1000
        if reply == TIMEOUT:
            return _init_failure("Sandbox.Timedout", f"Error: init did not finish within {INIT_TIMEOUT_S:g} s")
        if reply == EXITED:
            code = self.worker.exit_code()
            why = ("Runtime exited without providing a reason" if code == 0
                   else f"Runtime exited with error: {_exit_reason(code)}")
            return _init_failure("Runtime.ExitError", f"Error: {why}")
        return reply.get("error") if reply.get("op") == "init_error" else None

    def _lay_out(self, launcher: runtimes.Launcher) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"lab-lambda-{self.spec.name}-"))
        os.chmod(self.root, 0o755)  # the sandbox user must reach its task root
        for folder in (self.task_root, self.opt, self.runtime_dir):
            folder.mkdir(parents=True)
            os.chmod(folder, 0o755)
            os.chmod(folder.parent, 0o755)
        extract(self.spec.code, self.task_root)
        for layer in self.spec.layer_code:  # later layers override earlier ones, as in /opt
            extract(layer, self.opt)
        for source, name in _BOOTSTRAP_FILES[launcher.family].items():
            shutil.copyfile(HERE / source, self.runtime_dir / name)
            os.chmod(self.runtime_dir / name, 0o644)
        if launcher.family == "python":
            link_sdk(launcher.sdk, self.runtime_dir)

    def _write_config(self, launcher: runtimes.Launcher, reply_fd: int) -> None:
        config = {"reply_fd": reply_fd, "opt": str(self.opt), "runtime": self.spec.runtime,
                  "sdk": str(launcher.sdk)}
        path = self.runtime_dir / "lab-runtime.json"
        path.write_text(json.dumps(config))
        os.chmod(path, 0o644)

    def lab_path(self, path: str) -> str:
        """``/opt/...`` and ``/var/task/...`` as this environment's folders."""
        for prefix, real in (("/opt", self.opt), ("/var/task", self.task_root)):
            if path == prefix or path.startswith(prefix + "/"):
                return str(real) + path[len(prefix):]
        return path

    def environ(self, launcher: runtimes.Launcher) -> dict[str, str]:
        """The process environment, as Lambda builds it: defaults the function may
        override, then its variables, then the reserved ones it may not."""
        spec, session = self.spec, self.session
        name, value = runtimes.search_path(spec.runtime, self.runtime_dir, launcher.sdk, self.task_root)
        env = {"PATH": f"/usr/local/bin:/usr/bin:/bin:{self.opt}/bin", "LANG": "en_US.UTF-8",
               "TZ": ":UTC", name: value,
               "LD_LIBRARY_PATH": ":".join(["/lib64", "/usr/lib64", str(self.runtime_dir),
                                            f"{self.runtime_dir}/lib", str(self.task_root),
                                            f"{self.task_root}/lib", f"{self.opt}/lib"]),
               # keep the operator's ~/.aws out of the function, as on Lambda
               "AWS_CONFIG_FILE": str(self.root / "no-aws-config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "no-aws-credentials")}
        env.update(dict(spec.env))
        env.update({
            "_HANDLER": spec.handler, "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group, "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region,
            "AWS_ACCESS_KEY_ID": session.access_key_id, "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
            "AWS_SESSION_TOKEN": session.session_token,
            # the function's calls must reach the lab whatever its own variables say
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "LAMBDA_TASK_ROOT": str(self.task_root), "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
        })
        return env

    def run(self, request_id: str, event: str, invoked_arn: str, lines: list) -> tuple[dict | str, float]:
        """One invocation on the warm process: (reply, TIMEOUT or EXITED; duration in ms)."""
        self.invocations += 1
        self.last_used = time.monotonic()
        return self.worker.invoke(request_id, event, invoked_arn, self.spec.timeout, lines,
                                  trace_id=trace_header())

    def exit_reason(self) -> str:
        code = self.worker.exit_code() if self.worker is not None else None
        return _exit_reason(code)

    def max_memory_mb(self) -> int:
        return self.worker.max_memory_mb() if self.worker is not None else 0

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def link_sdk(sdk: Path, runtime_dir: Path) -> None:
    """The runtime's boto3 in ``LAMBDA_RUNTIME_DIR`` (on ``PYTHONPATH``), as ``/var/runtime`` holds it on AWS.

    On Lambda any process started with the runtime's interpreter imports boto3 (an exec
    wrapper's helper, a subprocess); the lab starts its interpreter with ``-S``, so without
    these links only the bootstrap, which adds the SDK folder itself, could.
    """
    for entry in sorted(sdk.iterdir()):
        if not entry.name.startswith(".") and entry.name not in ("bin", "__pycache__"):
            (runtime_dir / entry.name).symlink_to(entry)


def trace_header() -> str:
    """A new ``_X_AMZN_TRACE_ID`` in X-Ray's format, unsampled (the lab has no X-Ray).

    Examples
    --------
    >>> trace_header()  # doctest: +SKIP
    'Root=1-6745a1b2-0f1e2d3c4b5a69788796a5b4;Parent=1a2b3c4d5e6f7a8b;Sampled=0'
    """
    return (f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=0")


def _exit_reason(code: int | None) -> str:
    return f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"


def _init_failure(error_type: str, message: str) -> dict:
    # what Lambda itself reports; the runtime prefixes "RequestId: <id> " to the message
    return {"errorType": error_type, "errorMessage": message}
