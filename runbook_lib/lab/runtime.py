"""Lambda for the lab: Invoke runs the deployed code, the control plane behaves as Lambda's.

moto stores functions but cannot run them without Docker. The lab core calls
:meth:`LambdaRuntime.invoke` for every ``Invoke``: the function is read from moto's
Lambda backend in this process, its execution role assumed through moto's STS backend
(session name = function name, after the trust check Lambda itself does), and its code
run in an :class:`~.environment.ExecutionEnvironment`: Python (``python3.8`` to
``python3.14``) and Node.js (``nodejs18.x``, ``nodejs20.x``, ``nodejs22.x``) zip packages,
with only their package, their layers and the runtime's SDK importable. START/END/REPORT
and the function's output go to CloudWatch Logs when its role may write them
(:mod:`.function_logs`).

One execution environment per function version, reused while the function's code and
configuration are unchanged, so module-level state survives between invocations as in a
warm Lambda environment. Concurrent invocations of one version wait for each other.

:meth:`LambdaRuntime.control_plane` wraps the Lambda calls the runtime judges before moto
answers them: the runtime identifier against AWS's schedule (:mod:`.runtimes`), and the
``Pending``/``InProgress`` states (:mod:`.function_states`).

Errors that happen before the code runs (function not found, a role Lambda cannot
assume, a runtime the lab cannot run, a payload that is not JSON, a function still
Pending) come back as an :class:`InvokeResult` with the AWS status code and
``error_code`` set, never as an exception.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

from . import function_logs, function_states, runtimes
from .environment import (ExecutionEnvironment, FunctionSpec, Refusal, check_trust, load_spec,
                          trust_allows_lambda)
from .worker import EXITED, TIMEOUT, now_ms

__all__ = ["InvokeResult", "LambdaRuntime", "trust_allows_lambda"]

TAIL_BYTES = 4096
MAX_LOG_BYTES_PER_INVOKE = 1 << 20
MAX_ENVIRONMENTS = 12
#: Lambda calls :meth:`LambdaRuntime.control_plane` judges before moto answers them.
CONTROL_OPERATIONS = ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration",
                      "PublishVersion", "DeleteFunction")
#: Init failures Lambda itself reports (their message starts "RequestId: <id> Error: ...").
_LAMBDA_INIT_ERRORS = ("Runtime.ExitError", "Runtime.InvalidEntrypoint", "Sandbox.Timedout")


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


def _refused(refusal: Refusal, request_id: str) -> InvokeResult:
    return InvokeResult(refusal.status, refusal.body(), error_code=refusal.code, request_id=request_id)


def _check_runnable(spec: FunctionSpec) -> None:
    if spec.package_type != "Zip" or runtimes.family(spec.runtime) is None:
        raise Refusal(502, "InvalidRuntimeException",
                      f"The lab runs {runtimes.PYTHON_RUNTIMES[0]} to {runtimes.PYTHON_RUNTIMES[-1]} and "
                      f"{', '.join(runtimes.NODEJS_RUNTIMES)} zip packages; {spec.name} is "
                      f"{spec.runtime or spec.package_type} and cannot be invoked here.")


def _event_text(payload: bytes | str | None) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload or ""
    if text.strip():
        try:
            json.loads(text)
        except ValueError:
            # the payload is never echoed: it may carry a secret
            raise Refusal(400, "InvalidRequestContentException", "Could not parse request body into json") from None
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


def _stamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class ControlGate:
    """One judged Lambda call: ``refusal`` (``(code, message, status)``), else moto answers
    and :meth:`answered` is told its status."""

    def __init__(self, runtime: "LambdaRuntime", operation: str, key: tuple):
        self.runtime, self.operation, self.key = runtime, operation, key
        self.refusal: tuple[str, str, int] | None = None
        self.previous: FunctionSpec | None = None
        self.qualified = False
        self._prior = None
        self._started = False

    @property
    def arn(self) -> str:
        account, region, name = self.key
        return f"arn:aws:lambda:{region}:{account}:function:{name}"

    def begin(self) -> None:
        """A create or update starts its transition before moto answers, so that the
        answer itself shows ``Pending``/``InProgress`` as Lambda's does."""
        states = self.runtime.states
        if self.operation == "CreateFunction":
            self._prior, self._started = states.created(self.key, self.arn), True
        elif self.operation in ("UpdateFunctionCode", "UpdateFunctionConfiguration") and self.previous:
            self._prior, self._started = states.updated(self.key, self.arn, self.previous), True

    def answered(self, status: int) -> None:
        """moto answered with ``status``: a failed create or update leaves no transition."""
        if status >= 300:
            if self._started:
                self.runtime.states.restore(self.key, self._prior)
        elif self.operation == "DeleteFunction" and not self.qualified:  # not just a version
            self.runtime.states.deleted(self.key)


class LambdaRuntime:
    """Runs Invoke for the lab and judges its Lambda control calls; one instance per lab process.

    Parameters
    ----------
    endpoint_url:
        The lab's URL, given to functions as ``AWS_ENDPOINT_URL``.
    on_assume_role:
        Optional ``callback(account_id=, region=, role_arn=, session_name=,
        access_key_id=)`` called when the runtime assumes an execution role (cold
        start), so the lab can record Lambda's ``AssumeRole`` in CloudTrail.
    state_seconds:
        How long a function stays ``Pending`` after create and ``InProgress`` after an
        update (:attr:`states`; changeable at run time); None: the default.
    hook_moto:
        Make moto's configuration answers show those states (the lab process only).
    """

    def __init__(self, endpoint_url: str, *, on_assume_role: Callable | None = None,
                 state_seconds: float | None = None, hook_moto: bool = False):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.states = function_states.FunctionStates(
            function_states.DEFAULT_SECONDS if state_seconds is None else state_seconds)
        # moto's Lambda models cost 0.25 s to import: hooked at the first call that can
        # start a transition, before which there is no state to show
        self._hook_moto = hook_moto
        self._on_assume_role = on_assume_role
        self._environments: dict[tuple, ExecutionEnvironment] = {}
        self._lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._events = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lab-lambda-event")
        self._closed = False

    # ------------------------------------------------------------------ control plane
    @staticmethod
    def guards(operation: str) -> bool:
        """Whether :meth:`control_plane` judges this Lambda operation."""
        return operation in CONTROL_OPERATIONS

    @contextmanager
    def control_plane(self, *, account_id: str, region: str, operation: str,
                      params: dict) -> Iterator[ControlGate]:
        """Judge a Lambda control call before moto answers it; guarded calls of the lab run
        one at a time, so of two updates sent at once the second sees the first.

        Examples
        --------
        >>> with runtime.control_plane(account_id=a, region=r, operation=op, params=p) as gate:  # doctest: +SKIP
        ...     if gate.refusal is None:
        ...         gate.answered(moto_status)
        """
        name = function_states.function_name_of(str(params.get("FunctionName", "")))
        gate = ControlGate(self, operation, (account_id, region, name))
        unqualified = str(params.get("FunctionName", "")).split(":function:")[-1]
        gate.qualified = bool(params.get("Qualifier")) or ":" in unqualified
        with self._control_lock:
            if self._hook_moto:
                function_states.install(self.states)
                self._hook_moto = False
            gate.refusal = self._judge(gate, params)
            if gate.refusal is None:
                gate.begin()
            yield gate

    def _judge(self, gate: ControlGate, params: dict) -> tuple[str, str, int] | None:
        operation = gate.operation
        if operation == "CreateFunction":
            if (params.get("PackageType") or "Zip") == "Zip" and not (params.get("Runtime") and params.get("Handler")):
                return ("InvalidParameterValueException", "Runtime and Handler are mandatory parameters "
                        "for functions created with deployment packages.", 400)
            return runtimes.lifecycle_refusal(params["Runtime"], creating=True) if params.get("Runtime") else None
        if operation == "DeleteFunction":
            return None
        conflict = self.states.conflict(gate.key, operation)
        if conflict:
            return ("ResourceConflictException", conflict, 409)
        if operation == "PublishVersion":
            return None
        try:
            gate.previous = load_spec(*gate.key, None)
        except Refusal:  # no such function: moto answers that
            return None
        runtime = params.get("Runtime") or gate.previous.runtime
        return runtimes.lifecycle_refusal(runtime, creating=False) if runtime else None

    # ------------------------------------------------------------------ invoke
    def invoke(self, *, account_id: str, region: str, function_name: str,
               qualifier: str | None = None, payload: bytes = b"",
               invocation_type: str = "RequestResponse", log_type: str = "None") -> InvokeResult:
        """Invoke a function as Lambda's Invoke API does; never raises for AWS errors."""
        request_id = str(uuid.uuid4())
        try:
            if self._closed:
                raise Refusal(503, "ServiceException", "The lab is stopping.")
            if invocation_type not in ("RequestResponse", "Event", "DryRun"):
                raise Refusal(400, "InvalidParameterValueException", f"Unsupported InvocationType: {invocation_type}")
            spec = self._spec_to_run(account_id, region, function_name, qualifier)
            event = _event_text(payload)
            if invocation_type == "DryRun":
                return InvokeResult(204, executed_version=spec.version, request_id=request_id)
            _check_runnable(spec)
            check_trust(spec)
            if invocation_type == "Event":
                self._events.submit(self._invoke_quietly, spec, request_id, event)
                return InvokeResult(202, executed_version=spec.version, request_id=request_id)
            return self._invoke(spec, request_id, event, tail=log_type == "Tail")
        except Refusal as refusal:
            return _refused(refusal, request_id)

    def _spec_to_run(self, account_id: str, region: str, function_name: str,
                     qualifier: str | None) -> FunctionSpec:
        spec = load_spec(account_id, region, function_name, qualifier)
        if spec.version != "$LATEST":
            return spec
        key = (account_id, region, spec.name)
        conflict = self.states.conflict(key, "Invoke")
        if conflict:
            raise Refusal(409, "ResourceConflictException", conflict)
        previous = self.states.serving(key)  # an update in progress: the previous code runs
        return dataclasses.replace(previous, invoked_arn=spec.invoked_arn) if previous else spec

    def environments(self) -> list[dict]:
        """The warm environments: function, version, worker pid, invocations, log stream."""
        with self._lock:
            envs = list(self._environments.values())
        return [{"function_name": e.spec.name, "version": e.spec.version,
                 "pid": e.worker.pid if e.alive else None, "invocations": e.invocations,
                 "log_stream": e.stream, "task_root": str(e.task_root) if e.root else None}
                for e in envs]

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

    def _environment_for(self, spec: FunctionSpec) -> ExecutionEnvironment:
        stale = []
        with self._lock:
            env = self._environments.get(spec.key)
            if env is not None and not env.current(spec):
                stale.append(self._environments.pop(spec.key))
                env = None
            if env is None:
                env = ExecutionEnvironment(spec, self.endpoint_url, self._on_assume_role)
                self._environments[spec.key] = env
                if len(self._environments) > MAX_ENVIRONMENTS:
                    oldest = min(self._environments.values(), key=lambda e: e.last_used)
                    stale.append(self._environments.pop(oldest.spec.key))
        for old in stale:
            old.retired = True
            threading.Thread(target=_stop_when_free, args=(old,), daemon=True).start()
        return env

    def _invoke_quietly(self, spec: FunctionSpec, request_id: str, event: str) -> None:
        try:
            self._invoke(spec, request_id, event, tail=False)
        except Exception:  # an async invocation has nobody to answer; its log says enough
            pass

    def _invoke(self, spec: FunctionSpec, request_id: str, event: str, tail: bool) -> InvokeResult:
        while True:
            env = self._environment_for(spec)
            with env.lock:
                if env.retired:
                    continue
                return self._invoke_locked(env, spec, request_id, event, tail)

    def _invoke_locked(self, env: ExecutionEnvironment, spec: FunctionSpec, request_id: str,
                       event: str, tail: bool) -> InvokeResult:
        lines: list[tuple[int, bytes]] = []
        cold = not env.alive
        init_error = self._cold_start(env, lines) if cold else None
        lines.append((now_ms(), f"START RequestId: {request_id} Version: {spec.version}".encode()))
        duration, status = 0.0, ""
        if init_error is not None:
            if init_error["errorType"] in _LAMBDA_INIT_ERRORS:
                init_error = dict(init_error, errorMessage=f"RequestId: {request_id} {init_error['errorMessage']}")
                lines.append((now_ms(), f"{init_error['errorMessage']}\n{init_error['errorType']}".encode()))
            payload, function_error = json.dumps(init_error).encode(), "Unhandled"
            memory = env.max_memory_mb()
            env.stop()
            status = f"\tStatus: error\tError Type: {init_error['errorType']}"
        else:
            reply, duration = env.run(request_id, event, spec.invoked_arn, lines)
            memory = env.max_memory_mb()
            payload, function_error = self._outcome(env, spec, request_id, reply, lines)
            if reply == TIMEOUT:
                status = "\tStatus: timeout"
        lines.append((now_ms(), f"END RequestId: {request_id}".encode()))
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                  f"Billed Duration: {max(1, math.ceil(duration))} ms\t"
                  f"Memory Size: {spec.memory} MB\tMax Memory Used: {memory} MB")
        if cold and init_error is None:
            report += f"\tInit Duration: {env.init_ms:.2f} ms"
        lines.append((now_ms(), (report + status).encode()))
        events = _decode(lines)
        function_logs.deliver(account_id=spec.account_id, region=spec.region, group=spec.log_group,
                              stream=env.stream, access_key_id=env.session.access_key_id, events=events)
        log_result = None
        if tail:  # the Invoke answer's own copy: Lambda returns it whatever the role may log
            text = "".join(message + "\n" for _, message in events).encode()
            log_result = base64.b64encode(text[-TAIL_BYTES:]).decode()
        return InvokeResult(200, payload, function_error=function_error, log_result=log_result,
                            executed_version=spec.version, request_id=request_id)

    @staticmethod
    def _cold_start(env: ExecutionEnvironment, lines: list) -> dict | None:
        env.stop()
        try:
            init_error = env.start(lines)
        except Refusal:
            env.stop()
            raise
        if init_error is not None:
            lines.append((now_ms(), (f"INIT_REPORT Init Duration: {env.init_ms:.2f} ms\tPhase: init\t"
                                     f"Status: error\tError Type: {init_error['errorType']}").encode()))
        return init_error

    @staticmethod
    def _outcome(env: ExecutionEnvironment, spec: FunctionSpec, request_id: str, reply,
                 lines: list) -> tuple[bytes, str | None]:
        if reply == TIMEOUT:
            env.stop()
            message = f"Task timed out after {spec.timeout:.2f} seconds"
            lines.append((now_ms(), f"{_stamp(now_ms())} {request_id} {message}".encode()))
            return _error_payload("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}"), "Unhandled"
        if reply == EXITED:
            why = env.exit_reason()
            env.stop()
            message = f"RequestId: {request_id} Error: Runtime exited with error: {why}"
            lines.append((now_ms(), f"{message}\nRuntime.ExitError".encode()))
            return _error_payload("Runtime.ExitError", message), "Unhandled"
        if "error" in reply:
            return json.dumps(reply["error"]).encode(), "Unhandled"
        return reply["payload"].encode(), None


def _stop_when_free(env: ExecutionEnvironment) -> None:
    with env.lock:
        env.stop()
