"""Lambda Invoke for the lab: runs a deployed Python zip package in a warm worker process.

moto stores functions but cannot run them without Docker. The lab core calls
:meth:`LambdaRuntime.invoke` for every ``Invoke``; this module reads the function from
moto's Lambda backend in the same process, assumes its execution role through moto's
STS backend (session name = function name, after the trust check Lambda itself does),
runs the handler in :mod:`runbook_lib.lab.worker` with Lambda's environment, and writes
START/END/REPORT and the handler's output to moto's CloudWatch Logs backend.

One execution environment (worker) per function version, reused while the function's
code and configuration are unchanged, so module-level state survives between
invocations as in a warm Lambda environment. Concurrent invocations of one version
wait for each other.

Errors that happen before the code runs (function not found, a role Lambda cannot
assume, a runtime the lab cannot run, a payload that is not JSON) come back as an
:class:`InvokeResult` with the AWS status code and ``error_code`` set, never as an
exception; :meth:`InvokeResult.headers` gives the response headers for either case.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from runbook_lib.lab import worker as _worker

TRUSTED_SERVICES = ("lambda.amazonaws.com", "edgelambda.amazonaws.com")
INIT_TIMEOUT_S = 10.0
TAIL_BYTES = 4096
MAX_LOG_BYTES_PER_INVOKE = 1 << 20
MAX_ENVIRONMENTS = 12
SESSION_SECONDS = 12 * 3600
WORKER_PATH = Path(_worker.__file__).resolve()


@dataclass
class InvokeResult:
    """What Invoke answers.

    Attributes
    ----------
    status_code:
        200 (RequestResponse), 202 (Event), 204 (DryRun), or the AWS error status.
    payload:
        The handler's JSON, Lambda's error JSON (with ``function_error``), or for a
        refused call ``{"Type": "User", "Message": ...}``.
    function_error:
        ``"Unhandled"`` when the function ran and failed (exception, timeout, exit).
    log_result:
        Base64 of the last 4 KB of the invocation's log (``LogType=Tail`` only).
    executed_version:
        ``$LATEST`` or the version number that ran.
    error_code:
        For refused calls: the AWS error code (``ResourceNotFoundException``, ...), to
        be sent as ``x-amzn-ErrorType``.
    """

    status_code: int
    payload: bytes = b""
    function_error: str | None = None
    log_result: str | None = None
    executed_version: str = "$LATEST"
    error_code: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def headers(self) -> dict[str, str]:
        """HTTP response headers as Lambda's Invoke sends them."""
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": self.request_id}
        if self.error_code:
            headers["x-amzn-ErrorType"] = self.error_code
            return headers
        if self.status_code == 200:
            headers["X-Amz-Executed-Version"] = self.executed_version
        if self.function_error:
            headers["X-Amz-Function-Error"] = self.function_error
        if self.log_result is not None:
            headers["X-Amz-Log-Result"] = self.log_result
        return headers


class _Refusal(Exception):
    """An AWS error answered before any code runs."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def result(self, request_id: str) -> InvokeResult:
        # "__type" as moto's own errors carry it, so botocore finds the code even when
        # the x-amzn-ErrorType header (InvokeResult.headers) is not forwarded
        body = json.dumps({"Type": "User", "Message": self.message,
                           "__type": self.code}).encode()
        return InvokeResult(self.status, body, error_code=self.code, request_id=request_id)


@dataclass(frozen=True)
class _FunctionSpec:
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


def _load_spec(account_id: str, region: str, function_name: str,
               qualifier: str | None) -> _FunctionSpec:
    from moto.awslambda.utils import get_backend
    from moto.core.exceptions import JsonRESTError

    backend = get_backend(account_id, region)
    try:
        fn = backend.get_function(function_name, qualifier or None)
    except JsonRESTError as exc:  # moto's ResourceNotFoundException and friends
        raise _Refusal(exc.code, exc.error_type, exc.message) from None
    layers, layer_code = [], []
    for layer in fn.layers or []:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None:
            raise _Refusal(404, "ResourceNotFoundException",
                           f"Layer version {layer['Arn']} does not exist.")
        layers.append((version.arn, version.code_sha_256))
        layer_code.append(version.code_bytes)
    name = fn.function_name
    base_arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    if ":" in function_name.split(":function:")[-1]:
        qualifier = function_name.rsplit(":", 1)[1]
    return _FunctionSpec(
        account_id=account_id, region=region, name=name, version=str(fn.version),
        invoked_arn=f"{base_arn}:{qualifier}" if qualifier else base_arn,
        handler=fn.handler or "", runtime=fn.run_time or "",
        package_type=fn.package_type or "Zip", role=fn.role, timeout=int(fn.timeout),
        memory=int(fn.memory_size), env=tuple(sorted((fn.environment_vars or {}).items())),
        code_sha=fn.code_sha_256, last_modified=str(fn.last_modified),
        layers=tuple(layers), code=getattr(fn, "code_bytes", b""), layer_code=tuple(layer_code))


def _check_runnable(spec: _FunctionSpec) -> None:
    if spec.package_type != "Zip" or not spec.runtime.startswith("python3"):
        raise _Refusal(502, "InvalidRuntimeException",
                       f"The lab runs python3.x zip packages only; {spec.name} is "
                       f"{spec.runtime or spec.package_type} and cannot be invoked here.")


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


def _check_trust(spec: _FunctionSpec) -> None:
    """Refuse as Lambda does when the execution role is gone or does not trust Lambda."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    refused = _Refusal(400, "InvalidParameterValueException",
                       "The role defined for the function cannot be assumed by Lambda.")
    try:
        role = iam_backends[spec.account_id][get_partition(spec.region)].get_role_by_arn(spec.role)
    except Exception:
        raise refused from None
    if not trust_allows_lambda(role.assume_role_policy_document):
        raise refused


def _assume_execution_role(spec: _FunctionSpec):
    """Temporary credentials of the execution role, session name = function name."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    _check_trust(spec)
    return sts_backends[spec.account_id][get_partition(spec.region)].assume_role(
        region_name=spec.region, role_session_name=spec.name, role_arn=spec.role,
        policy=None, duration=SESSION_SECONDS, external_id=None)


_logs_lock = threading.Lock()


def _write_logs(spec: _FunctionSpec, stream: str, events: list[tuple[int, str]]) -> None:
    from moto.logs.models import logs_backends

    if not events:
        return
    backend = logs_backends[spec.account_id][spec.region]
    ordered, last = [], 0
    for stamp, message in events:
        last = max(last, stamp)
        ordered.append({"timestamp": last, "message": message})
    with _logs_lock:
        backend.ensure_log_group(spec.log_group)
        if stream not in backend.groups[spec.log_group].streams:
            backend.create_log_stream(spec.log_group, stream)
        backend.put_log_events(spec.log_group, stream, ordered)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _stamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _extract(data: bytes, target: Path) -> None:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            root = target.resolve()
            for member in archive.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise zipfile.BadZipFile("member outside the package root")
            archive.extractall(target)
    except zipfile.BadZipFile:
        raise _Refusal(502, "InvalidZipFileException",
                       "Lambda was unable to unzip the deployment package.") from None


class _Environment:
    """One execution environment: a worker for one function version, its role session."""

    def __init__(self, spec: _FunctionSpec, endpoint_url: str,
                 on_assume_role: Callable | None):
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.on_assume_role = on_assume_role
        self.lock = threading.Lock()
        self.worker: _worker.WorkerProcess | None = None
        self.workdir: Path | None = None
        self.stream = ""
        self.expires = 0.0
        self.invocations = 0
        self.init_ms = 0.0
        self.retired = False
        self.last_used = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.worker is not None and self.worker.alive

    def current(self, spec: _FunctionSpec) -> bool:
        fresh = self.expires == 0 or time.time() < self.expires - 300
        return fresh and spec.fingerprint == self.spec.fingerprint

    def start(self, lines: list) -> dict | None:
        """Assume the role, unpack code and layers, start the worker; returns an init error."""
        spec = self.spec
        session = _assume_execution_role(spec)
        self.expires = time.time() + SESSION_SECONDS
        if self.on_assume_role is not None:
            self.on_assume_role(account_id=spec.account_id, region=spec.region,
                                role_arn=spec.role, session_name=spec.name,
                                access_key_id=session.access_key_id)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"lab-lambda-{spec.name}-"))
        task, opt = self.workdir / "task", self.workdir / "opt"
        task.mkdir()
        opt.mkdir()
        _extract(spec.code, task)
        for layer in spec.layer_code:  # later layers override earlier ones, as in /opt
            _extract(layer, opt)
        day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
        self.stream = f"{day}/[{spec.version}]{uuid.uuid4().hex}"
        self.worker = _worker.WorkerProcess(self._environ(session, task), str(task), str(opt))
        short = spec.runtime.removeprefix("python")
        lines.append((_now_ms(), f"INIT_START Runtime Version: python:{short}.lab".encode()))
        reply = self.worker.wait_ready(INIT_TIMEOUT_S, lines)
        if not isinstance(reply, dict):
            return {"errorType": "Runtime.ExitError", "stackTrace": [],
                    "errorMessage": "Error: Runtime exited before the handler was ready"}
        self.init_ms = reply.get("init_ms", 0.0)
        return reply.get("error") if reply.get("op") == "init_error" else None

    def _environ(self, session, task: Path) -> dict[str, str]:
        spec = self.spec
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "LANG": "C.UTF-8", "TZ": ":UTC",
               # keep the operator's ~/.aws out of the function, as on Lambda
               "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials")}
        env.update(dict(spec.env))
        env.update({
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region,
            "AWS_ACCESS_KEY_ID": session.access_key_id,
            "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
            "AWS_SESSION_TOKEN": session.session_token,
            # the function's calls must reach the lab whatever its own variables say
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "LAMBDA_TASK_ROOT": str(task), "LAMBDA_RUNTIME_DIR": str(WORKER_PATH.parent),
        })
        return env

    def run(self, request_id: str, event: str, invoked_arn: str,
            lines: list) -> tuple[dict | str, float]:
        """One invocation on the warm worker: (reply, TIMEOUT or EXITED; duration in ms)."""
        self.invocations += 1
        self.last_used = time.monotonic()
        return self.worker.invoke(request_id, event, invoked_arn, self.spec.timeout, lines)

    def max_memory_mb(self) -> int:
        return self.worker.max_memory_mb() if self.worker is not None else 0

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _event_text(payload: bytes | str | None) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload or ""
    if text.strip():
        try:
            json.loads(text)
        except ValueError:
            # the payload is never echoed: it may carry a secret
            raise _Refusal(400, "InvalidRequestContentException",
                           "Could not parse request body into json") from None
    return text


def _decode(lines: list[tuple[int, bytes]]) -> list[tuple[int, str]]:
    events, size = [], 0
    for stamp, line in lines:
        size += len(line)
        if size > MAX_LOG_BYTES_PER_INVOKE:
            events.append((stamp, "[lab] output truncated: more than 1 MB in one invocation"))
            break
        events.append((stamp, line.decode("utf-8", "replace").replace("\r", "\n")))
    return events


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class LambdaRuntime:
    """Runs Invoke for the lab; one instance per lab process.

    Parameters
    ----------
    endpoint_url:
        The lab's URL, given to functions as ``AWS_ENDPOINT_URL``.
    on_assume_role:
        Optional ``callback(account_id=, region=, role_arn=, session_name=,
        access_key_id=)`` called when the runtime assumes an execution role (cold
        start), so the lab can record Lambda's ``AssumeRole`` in CloudTrail.
    """

    def __init__(self, endpoint_url: str, *, on_assume_role: Callable | None = None):
        self.endpoint_url = endpoint_url.rstrip("/")
        self._on_assume_role = on_assume_role
        self._environments: dict[tuple, _Environment] = {}
        self._lock = threading.Lock()
        self._events = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lab-lambda-event")
        self._closed = False

    def invoke(self, *, account_id: str, region: str, function_name: str,
               qualifier: str | None = None, payload: bytes = b"",
               invocation_type: str = "RequestResponse", log_type: str = "None") -> InvokeResult:
        """Invoke a function as Lambda's Invoke API does; never raises for AWS errors."""
        request_id = str(uuid.uuid4())
        try:
            if self._closed:
                raise _Refusal(503, "ServiceException", "The lab is stopping.")
            if invocation_type not in ("RequestResponse", "Event", "DryRun"):
                raise _Refusal(400, "InvalidParameterValueException",
                               f"Unsupported InvocationType: {invocation_type}")
            spec = _load_spec(account_id, region, function_name, qualifier)
            event = _event_text(payload)
            if invocation_type == "DryRun":
                return InvokeResult(204, executed_version=spec.version, request_id=request_id)
            _check_runnable(spec)
            _check_trust(spec)
            if invocation_type == "Event":
                self._events.submit(self._invoke_quietly, spec, request_id, event)
                return InvokeResult(202, executed_version=spec.version, request_id=request_id)
            return self._invoke(spec, request_id, event, tail=log_type == "Tail")
        except _Refusal as refusal:
            return refusal.result(request_id)

    def environments(self) -> list[dict]:
        """The warm environments: function, version, worker pid, invocations, log stream."""
        with self._lock:
            envs = list(self._environments.values())
        return [{"function_name": e.spec.name, "version": e.spec.version,
                 "pid": e.worker.pid if e.alive else None, "invocations": e.invocations,
                 "log_stream": e.stream} for e in envs]

    def shutdown(self) -> None:
        """Stop every worker; later invocations are refused."""
        self._closed = True
        self._events.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            envs = list(self._environments.values())
            self._environments.clear()
        for env in envs:
            env.retired = True
            worker = env.worker
            if worker is not None:  # wakes an invocation in progress
                worker.signal_kill()
            if env.lock.acquire(timeout=5):
                try:
                    env.stop()
                finally:
                    env.lock.release()

    def _environment_for(self, spec: _FunctionSpec) -> _Environment:
        stale = []
        with self._lock:
            env = self._environments.get(spec.key)
            if env is not None and not env.current(spec):
                stale.append(self._environments.pop(spec.key))
                env = None
            if env is None:
                env = _Environment(spec, self.endpoint_url, self._on_assume_role)
                self._environments[spec.key] = env
                if len(self._environments) > MAX_ENVIRONMENTS:
                    oldest = min(self._environments.values(), key=lambda e: e.last_used)
                    stale.append(self._environments.pop(oldest.spec.key))
        for old in stale:
            old.retired = True
            threading.Thread(target=_stop_when_free, args=(old,), daemon=True).start()
        return env

    def _invoke_quietly(self, spec: _FunctionSpec, request_id: str, event: str) -> None:
        try:
            self._invoke(spec, request_id, event, tail=False)
        except Exception:  # an async invocation has nobody to answer; its log says enough
            pass

    def _invoke(self, spec: _FunctionSpec, request_id: str, event: str,
                tail: bool) -> InvokeResult:
        while True:
            env = self._environment_for(spec)
            with env.lock:
                if env.retired:
                    continue
                return self._invoke_locked(env, spec, request_id, event, tail)

    def _invoke_locked(self, env: _Environment, spec: _FunctionSpec, request_id: str,
                       event: str, tail: bool) -> InvokeResult:
        lines: list[tuple[int, bytes]] = []
        cold = not env.alive
        error = None
        if cold:
            env.stop()
            try:
                error = env.start(lines)
            except _Refusal:
                env.stop()
                raise
        lines.append((_now_ms(), f"START RequestId: {request_id} Version: {spec.version}".encode()))
        duration, status = 0.0, ""
        if error is not None:
            payload, function_error = json.dumps(error).encode(), "Unhandled"
            lines.append((_now_ms(), f"[ERROR] {error['errorType']}: {error['errorMessage']}".encode()))
            memory = env.max_memory_mb()
            env.stop()
            status = f"\tStatus: error\tError Type: {error['errorType']}"
        else:
            reply, duration = env.run(request_id, event, spec.invoked_arn, lines)
            memory = env.max_memory_mb()
            payload, function_error = self._outcome(env, spec, request_id, reply, lines)
            if reply == _worker.TIMEOUT:
                status = "\tStatus: timeout"
        lines.append((_now_ms(), f"END RequestId: {request_id}".encode()))
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                  f"Billed Duration: {max(1, math.ceil(duration))} ms\t"
                  f"Memory Size: {spec.memory} MB\tMax Memory Used: {memory} MB")
        if cold:
            report += f"\tInit Duration: {env.init_ms:.2f} ms"
        lines.append((_now_ms(), (report + status).encode()))
        events = _decode(lines)
        _write_logs(spec, env.stream, events)
        log_result = None
        if tail:
            text = "".join(message + "\n" for _, message in events).encode()
            log_result = base64.b64encode(text[-TAIL_BYTES:]).decode()
        return InvokeResult(200, payload, function_error=function_error, log_result=log_result,
                            executed_version=spec.version, request_id=request_id)

    @staticmethod
    def _outcome(env: _Environment, spec: _FunctionSpec, request_id: str, reply,
                 lines: list) -> tuple[bytes, str | None]:
        if reply == _worker.TIMEOUT:
            env.stop()
            message = f"Task timed out after {spec.timeout:.2f} seconds"
            lines.append((_now_ms(), f"{_stamp(_now_ms())} {request_id} {message}".encode()))
            return _error_payload("Sandbox.Timedout",
                                  f"RequestId: {request_id} Error: {message}"), "Unhandled"
        if reply == _worker.EXITED:
            code = env.worker.exit_code() if env.worker is not None else None
            env.stop()
            why = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
            message = f"RequestId: {request_id} Error: Runtime exited with error: {why}"
            lines.append((_now_ms(), f"{message}\nRuntime.ExitError".encode()))
            return _error_payload("Runtime.ExitError", message), "Unhandled"
        if "error" in reply:
            return json.dumps(reply["error"]).encode(), "Unhandled"
        return reply["payload"].encode(), None


def _stop_when_free(env: _Environment) -> None:
    with env.lock:
        env.stop()
