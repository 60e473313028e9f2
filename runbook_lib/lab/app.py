"""The lab's WSGI application: moto's server wrapped with what moto lacks.

For each request :class:`LabApp` does, in order:

1. ``/_lab/...`` control plane (:mod:`.control`): served there, never recorded in
   CloudTrail, never passed to moto; moto's own ``/moto-api`` (an unsigned reset and data
   dump) is not served at all;
2. resolve the AWS call (:mod:`.operations`) and the caller (:mod:`.identity`);
3. authenticate it, always (:mod:`.credentials`): an unknown, inactive or deleted key, a
   session token that is not the key's or has expired, or a signature that does not verify
   is answered with the service's own error; an unsigned call is refused unless AWS serves
   it unsigned;
4. injected faults; ``AssumeRole`` against the role's trust policy, always (:mod:`.trust`);
   with IAM enforcement on, every policy type (:mod:`.iam_enforcement`) and the KMS use
   Secrets Manager makes for the caller (:mod:`.kms_enforcement`);
5. ``cloudtrail:LookupEvents`` from the event store (throttled as AWS does),
   ``lambda:Invoke`` by the Lambda runtime, ``iam:SimulatePrincipalPolicy`` by the lab's own
   policy evaluation (:mod:`.simulator`), everything else by moto; GetFunction and
   GetLayerVersion code Locations are rewritten to the lab's own download URL, and
   environment variables under a customer managed key are hidden from a caller who may
   not decrypt them;
6. record the call as a CloudTrail event (:mod:`.cloudtrail`), refused calls too, data
   events (Invoke, DynamoDB items, S3 objects) not, as AWS's event history.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import quote

from . import cloudtrail, credentials, iam_enforcement, kms_enforcement, operations, simulator, trust
from .control import control
from .errors import (Response, aws_error, header, is_html, json_response, missing_authentication, not_implemented,
                     parse_error, throttled, with_length)
from .identity import Caller, resolve_caller, unknown_caller
from .request_keys import Arrival
from .resources import resources_for

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
                401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
                502: "Bad Gateway", 503: "Service Unavailable"}
_LOCATION_OPS = {("lambda", "GetFunction"), ("lambda", "GetLayerVersion"),
                 ("lambda", "GetLayerVersionByArn"), ("lambda", "PublishLayerVersion")}
#: Operations AWS serves without a signature.
UNSIGNED_OPERATIONS = {("sts", "AssumeRoleWithWebIdentity"), ("sts", "AssumeRoleWithSAML")}


class LabApp:
    """WSGI application around moto's ``DomainDispatcherApplication``.

    Parameters
    ----------
    lab:
        The owning :class:`~runbook_lib.lab.server.LabServer`; read for ``enforce_iam``,
        ``events``, ``lookup_throttle``, ``code_token``, ``endpoint_url``, ``account_id``,
        ``region``, ``runtime``, ``runtime_error``, ``partner`` and ``health()``.
    moto_app:
        moto's WSGI application.
    """

    def __init__(self, lab: Any, moto_app: Callable):
        self.lab = lab
        self.moto_app = moto_app

    # ------------------------------------------------------------------ WSGI entry
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_lab/") or path == "/_lab":
            return _respond(start_response, *control(self.lab, environ, path, _read_body))
        if path.startswith("/moto-api"):  # moto's own unsigned dashboard, reset and data dump: not AWS
            return _respond(start_response, *json_response(404, {
                "message": "not an AWS API; the lab's control plane is /_lab/"}))
        body = _read_body(environ)
        head = environ.get("REQUEST_METHOD", "").upper() == "HEAD"
        call = operations.resolve(environ, body)
        if call is None:  # no signature and nothing that names an AWS call
            return _respond(start_response, *missing_authentication(None))
        status, headers, payload = self._serve(environ, body, call)
        return _respond(start_response, status, headers, payload, head)

    def _serve(self, environ: dict, body: bytes, call: operations.ApiCall) -> Response:
        when = datetime.now(timezone.utc)
        caller = resolve_caller(call.access_key_id) if call.access_key_id else unknown_caller()
        arrival = Arrival(source_ip=environ.get("REMOTE_ADDR") or "127.0.0.1",
                          user_agent=environ.get("HTTP_USER_AGENT", ""), referer=environ.get("HTTP_REFERER", ""),
                          secure=environ.get("wsgi.url_scheme") == "https", when=when)
        arns = resources_for(call, caller.account_id or self.lab.account_id)
        refused = self._refusal(environ, body, call, caller, arrival, arns)
        if refused is not None:
            self._record(call, caller, arrival, refused[0], refused[1], arns, parse_error(refused[1], refused[2]))
            return refused
        status, headers, payload = self._dispatch(environ, body, call, caller)
        if status < 300:
            headers, payload = self._after(call, caller, arrival, headers, payload)
        error = parse_error(headers, payload) if status >= 400 else None
        if status < 300 and call.operation.startswith(("Create", "Publish")):  # the new ARN exists now
            arns = resources_for(call, caller.account_id or self.lab.account_id)
        self._record(call, caller, arrival, status, headers, arns, error)
        return status, headers, payload

    # ------------------------------------------------------------------ refusals, in AWS's order
    def _refusal(self, environ: dict, body: bytes, call: operations.ApiCall, caller: Caller,
                 arrival: Arrival, arns: list[str]) -> Response | None:
        if not call.access_key_id:
            if (call.service, call.operation) in UNSIGNED_OPERATIONS:
                return self._assume_role_refusal(call, caller, arrival)
            return missing_authentication(call)
        failure = credentials.authenticate(environ, body, arrival.when)
        if failure is not None:
            return aws_error(call, *credentials.failure_error(call, failure))
        fault = self.lab.fault_for(call.operation) if getattr(self.lab, "faults", None) else None
        if fault:
            return injected_fault(call, caller, fault, arns)
        if call.service == "sts" and call.operation in trust.ASSUME_OPERATIONS:
            return self._assume_role_refusal(call, caller, arrival)
        if self.lab.enforce_iam and caller.enforceable:
            decision = iam_enforcement.authorize(caller, call, arrival)
            if not decision.allowed:
                return aws_error(call, "AccessDenied", decision.message(caller), 403)
        if call.service == "secretsmanager":
            return self._secrets_kms_refusal(call, caller, arrival)
        return None

    def _assume_role_refusal(self, call: operations.ApiCall, caller: Caller, arrival: Arrival) -> Response | None:
        problem = trust.check_assume_role(caller, call, arrival, self.lab.enforce_iam)
        return aws_error(call, *problem) if problem else None

    def _secrets_kms_refusal(self, call: operations.ApiCall, caller: Caller, arrival: Arrival) -> Response | None:
        # enforcement off: only the key's state is judged, and no policy is evaluated for nothing
        use = kms_enforcement.secrets_manager_kms(caller, call, arrival,
                                                  judge=self.lab.enforce_iam and caller.enforceable)
        if use is None:
            return None
        self._record_kms_use(use, caller, arrival, call.region)
        refusal = kms_enforcement.secrets_manager_refusal(use)
        return aws_error(call, refusal[0], refusal[1], 400) if refusal else None

    # ------------------------------------------------------------------ serving
    def _dispatch(self, environ: dict, body: bytes, call: operations.ApiCall, caller: Caller) -> Response:
        if call.service == "cloudtrail" and call.operation == "LookupEvents":
            return self._lookup_events(call, caller)
        if call.service == "lambda" and call.operation == "Invoke":
            return self._invoke(call, caller, body)
        if call.service == "iam" and call.operation == "SimulatePrincipalPolicy":
            return simulator.simulate_principal_policy(call)
        if call.service == "lambda" and call.operation == "GetLayerVersionByArn":
            return self._layer_version_by_arn(call)
        if call.service == "lambda" and self.lab.runtime is not None and self.lab.runtime.guards(call.operation):
            return self._judged_lambda_call(call, caller, environ, body)
        status, headers, payload = self._moto(environ, body)
        if status == 500 and is_html(headers):
            return not_implemented(call)
        return status, headers, payload

    def _after(self, call: operations.ApiCall, caller: Caller, arrival: Arrival, headers: list,
               payload: bytes) -> tuple[list, bytes]:
        """What the lab adds to a successful answer before the caller sees it."""
        if (call.service, call.operation) in _LOCATION_OPS:
            headers, payload = self._rewrite_location(call, headers, payload)
        if call.service == "lambda" and call.operation in kms_enforcement.LAMBDA_CONFIG_OPERATIONS \
                and self.lab.enforce_iam and caller.enforceable:
            payload, uses = kms_enforcement.hide_environment(caller, call, payload, arrival)
            for use in uses:
                self._record_kms_use(use, caller, arrival, call.region)
            headers = with_length(headers, len(payload))
        if call.service == "sts" and call.operation == "AssumeRole":
            trust.remember(call, payload)
        return headers, payload

    def _moto(self, environ: dict, body: bytes) -> Response:
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def start(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        try:
            result = self.moto_app(environ, start)
        except Exception:  # no moto backend for the service: the caller turns this into a 501
            return 500, [("Content-Type", "text/html")], b"moto raised"
        try:
            chunks = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        chunks = b"".join(captured.get("written", [])) + chunks
        status = int(captured["status"].split(" ", 1)[0])
        return status, list(captured["headers"]), chunks

    # ------------------------------------------------------------------ CloudTrail
    def _record(self, call: operations.ApiCall, caller: Caller, arrival: Arrival, status: int,
                headers: list, arns: list[str], error: tuple[str, str] | None) -> None:
        if cloudtrail.is_data_event(call):  # event history keeps management events only
            return
        request_id = header(headers, "x-amzn-RequestId") or header(headers, "x-amz-request-id") \
            or str(uuid.uuid4())
        if error and error[0] == "AccessDeniedException":  # CloudTrail's word for a denial, in every protocol
            error = ("AccessDenied", error[1])
        outcome = cloudtrail.Outcome(status, *(error or (None, None)))
        event = cloudtrail.build_event(
            call, caller, outcome, when=arrival.when or datetime.now(timezone.utc), source_ip=arrival.source_ip,
            user_agent=arrival.user_agent, request_id=request_id, resource_arns=arns,
            account_id=self.lab.account_id)
        self.lab.events.add(event, caller, arrival.when)

    def _record_kms_use(self, use: "kms_enforcement.KmsUse", caller: Caller, arrival: Arrival, region: str) -> None:
        """The KMS event AWS records when a service uses a key for the caller."""
        call = operations.ApiCall("kms", use.action.split(":", 1)[1], {
            "KeyId": use.key_arn, "EncryptionContext": use.encryption_context,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, region, model=operations.MODELS.model("kms"))
        error = None if use.decision.allowed else ("AccessDenied", use.decision.message(caller))
        outcome = cloudtrail.Outcome(200 if error is None else 400, *(error or (None, None)))
        event = cloudtrail.build_event(
            call, caller, outcome, when=arrival.when or datetime.now(timezone.utc), source_ip=arrival.source_ip,
            user_agent=arrival.user_agent, request_id=str(uuid.uuid4()), resource_arns=[use.key_arn],
            account_id=self.lab.account_id, invoked_by=f"{use.service}.amazonaws.com")
        self.lab.events.add(event, caller, arrival.when)

    def _lookup_events(self, call: operations.ApiCall, caller: Caller) -> Response:
        if not self.lab.lookup_throttle.allow(caller.account_id or self.lab.account_id, call.region):
            return throttled(call, "Rate exceeded")
        try:
            answer = self.lab.events.lookup(call.params or {})
        except cloudtrail.LookupError_ as exc:
            return aws_error(call, exc.code, str(exc), 400)
        return 200, [("Content-Type", "application/x-amz-json-1.1"),
                     ("x-amzn-RequestId", str(uuid.uuid4()))], json.dumps(answer).encode()

    # ------------------------------------------------------------------ Lambda
    def _invoke(self, call: operations.ApiCall, caller: Caller, payload: bytes) -> Response:
        runtime = self.lab.runtime
        if runtime is None:
            return aws_error(call, "ServiceException",
                             f"the lab's Lambda runtime is missing: {self.lab.runtime_error}", 500)
        params = call.params or {}
        try:
            result = runtime.invoke(
                account_id=caller.account_id or self.lab.account_id, region=call.region,
                function_name=params.get("FunctionName", ""), qualifier=params.get("Qualifier"),
                payload=payload, invocation_type=params.get("InvocationType") or "RequestResponse",
                log_type=params.get("LogType") or "None")
        except Exception as exc:  # the runtime's errors carry an AWS code when it knows one
            code = getattr(exc, "error_code", None) or getattr(exc, "code", None) or "ServiceException"
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None) \
                or (500 if code == "ServiceException" else 400)
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return aws_error(call, str(code), message, int(status))
        if callable(getattr(result, "headers", None)):  # the runtime knows Lambda's headers
            headers = list(result.headers().items())
        else:
            headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4())),
                       ("X-Amz-Executed-Version", str(result.executed_version or "$LATEST"))]
            if result.function_error:
                headers.append(("X-Amz-Function-Error", result.function_error))
            if result.log_result:
                headers.append(("X-Amz-Log-Result", result.log_result))
        return int(result.status_code), headers, result.payload or b""

    def _judged_lambda_call(self, call: operations.ApiCall, caller: Caller, environ: dict,
                            body: bytes) -> Response:
        """A call the runtime judges first (runtime identifier, Pending/InProgress), then moto."""
        with self.lab.runtime.control_plane(account_id=caller.account_id or self.lab.account_id,
                                            region=call.region, operation=call.operation,
                                            params=call.params or {}) as gate:
            if gate.refusal is not None:
                return aws_error(call, *gate.refusal)
            status, headers, payload = self._moto(environ, body)
            gate.answered(status)
        return status, headers, payload

    def _layer_version_by_arn(self, call: operations.ApiCall) -> Response:
        """GetLayerVersionByArn, which moto does not implement."""
        from moto.awslambda.models import lambda_backends

        arn = (call.params or {}).get("Arn", "")
        parts = arn.split(":")
        if len(parts) != 8 or parts[5] != "layer":
            return aws_error(call, "InvalidParameterValueException", f"invalid layer version ARN {arn}", 400)
        try:
            layer = lambda_backends[parts[4]][parts[3]].get_layer_version(parts[6], parts[7])
        except Exception:  # moto raises its own not-found error types
            layer = None
        if layer is None:
            return aws_error(call, "ResourceNotFoundException", f"layer version {arn} not found", 404)
        return 200, [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))], \
            json.dumps(layer.get_layer_version()).encode()

    def _rewrite_location(self, call: operations.ApiCall, headers: list,
                          payload: bytes) -> tuple[list, bytes]:
        try:
            document = json.loads(payload)
        except ValueError:
            return headers, payload
        base = f"{self.lab.endpoint_url}/_lab/code/{self.lab.code_token}"
        if call.operation == "GetFunction":
            config = document.get("Configuration") or {}
            code = document.get("Code") or {}
            arn = config.get("FunctionArn", "")
            if "Location" not in code or not arn:
                return headers, payload
            parts = arn.split(":")
            code["Location"] = "/".join([base, "function", parts[4], parts[3],
                                         quote(config.get("FunctionName", parts[6]), safe=""),
                                         quote(config.get("Version") or "$LATEST", safe="")])
        else:
            content = document.get("Content") or {}
            arn = document.get("LayerVersionArn", "")
            if "Location" not in content or not arn:
                return headers, payload
            parts = arn.split(":")
            content["Location"] = "/".join([base, "layer", parts[4], parts[3],
                                            quote(parts[6], safe=""), parts[7]])
        body = json.dumps(document).encode()
        return with_length(headers, len(body)), body


def injected_fault(call: operations.ApiCall, caller: Caller, kind: str, arns: list[str]) -> Response:
    """The error an injected fault answers ``call`` with, in the caller's protocol."""
    if kind == "throttle":
        return throttled(call, "Rate exceeded (injected by the lab)")
    action = iam_enforcement.iam_action(call)
    return aws_error(call, "AccessDenied", f"User: {caller.arn} is not authorized to perform: {action} on "
                     f"resource: {arns[0] if arns else '*'} (denied by a lab fault)", 403)


# ---------------------------------------------------------------------- helpers
def _read_body(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            return stream.read(int(length))
        except ValueError:
            return b""
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _respond(start_response: Callable, status: int, headers: list, body: bytes,
             head: bool = False) -> list[bytes]:
    headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    if not head:  # a HEAD answer's Content-Length describes the object, not this empty body
        headers = with_length(headers, len(body))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Status')}", headers)
    return [body]
