"""The lab's WSGI application: moto's server wrapped with what moto lacks.

For each request :class:`LabApp` does, in order:

1. ``/_lab/...`` control plane (health, config, code download, partner API): served
   here, never recorded in CloudTrail, never passed to moto;
2. resolve the AWS call (:mod:`.operations`) and the caller (:mod:`.identity`);
3. IAM enforcement when switched on (:mod:`.iam_enforcement`): a denial is answered
   with the protocol's AccessDenied error;
4. ``cloudtrail:LookupEvents`` from the event store, ``lambda:Invoke`` by the Lambda
   runtime, everything else by moto; GetFunction/GetLayerVersion code Locations are
   rewritten to the lab's own download URL;
5. record the call as a CloudTrail event (:mod:`.cloudtrail`).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import quote, unquote

from . import cloudtrail, iam_enforcement, operations
from .identity import Caller, resolve_caller, unknown_caller

Response = tuple[int, list[tuple[str, str]], bytes]

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
                403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_CODE_RE = re.compile(r"^/_lab/code/([^/]+)/(function|layer)/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
_LOCATION_OPS = {("lambda", "GetFunction"), ("lambda", "GetLayerVersion"),
                 ("lambda", "GetLayerVersionByArn"), ("lambda", "PublishLayerVersion")}


class LabApp:
    """WSGI application around moto's ``DomainDispatcherApplication``.

    Parameters
    ----------
    lab:
        The owning :class:`~runbook_lib.lab.server.LabServer`; read for ``enforce_iam``,
        ``events``, ``code_token``, ``endpoint_url``, ``account_id``, ``region``,
        ``runtime``, ``runtime_error``, ``partner`` and ``health()``.
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
            status, headers, body = self._control(environ, path)
            return _respond(start_response, status, headers, body)
        if path.startswith("/moto-api"):
            return self.moto_app(environ, start_response)
        body = _read_body(environ)
        when = datetime.now(timezone.utc)
        call = operations.resolve(environ, body)
        head = environ.get("REQUEST_METHOD", "").upper() == "HEAD"
        if call is None:
            status, headers, payload = self._moto(environ, body)
            if status == 500 and _is_html(headers):
                status, headers, payload = _not_implemented(None)
            return _respond(start_response, status, headers, payload, head)
        caller = resolve_caller(call.access_key_id) if call.access_key_id else unknown_caller()
        arns = iam_enforcement.resources_for(call, caller.account_id or self.lab.account_id)
        error: tuple[str, str] | None = None
        fault = self.lab.fault_for(call.operation) if getattr(self.lab, "faults", None) else None
        if fault:
            status, headers, payload = injected_fault(call, caller, fault, arns)
            self._record(call, caller, environ, when, status, headers, arns, parse_error(headers, payload))
            return _respond(start_response, status, headers, payload)
        if self.lab.enforce_iam and caller.enforceable:
            decision = iam_enforcement.authorize(caller, call)
            if not decision.allowed:
                message = decision.message(caller)
                status, headers, payload = aws_error(call, "AccessDenied", message, 403)
                self._record(call, caller, environ, when, status, headers, arns,
                             ("AccessDenied", message))
                return _respond(start_response, status, headers, payload)
        if call.service == "cloudtrail" and call.operation == "LookupEvents":
            status, headers, payload = self._lookup_events(call)
        elif call.service == "lambda" and call.operation == "Invoke":
            status, headers, payload = self._invoke(call, caller, body)
        elif call.service == "lambda" and call.operation == "GetLayerVersionByArn":
            status, headers, payload = self._layer_version_by_arn(call)
        elif call.service == "lambda" and self.lab.runtime is not None and self.lab.runtime.guards(call.operation):
            status, headers, payload = self._judged_lambda_call(call, caller, environ, body)
        else:
            status, headers, payload = self._moto(environ, body)
            if status == 500 and _is_html(headers):
                status, headers, payload = _not_implemented(call)
        if status < 300 and (call.service, call.operation) in _LOCATION_OPS:
            headers, payload = self._rewrite_location(call, headers, payload)
        if status >= 400:
            error = parse_error(headers, payload)
        elif call.operation.startswith(("Create", "Publish")):  # the new resource's ARN exists now
            arns = iam_enforcement.resources_for(call, caller.account_id or self.lab.account_id)
        self._record(call, caller, environ, when, status, headers, arns, error)
        return _respond(start_response, status, headers, payload, head)

    # ------------------------------------------------------------------ moto
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
    def _record(self, call: operations.ApiCall, caller: Caller, environ: dict, when: datetime,
                status: int, headers: list, arns: list[str], error: tuple[str, str] | None) -> None:
        request_id = _header(headers, "x-amzn-RequestId") or _header(headers, "x-amz-request-id") \
            or str(uuid.uuid4())
        outcome = cloudtrail.Outcome(status, *(error or (None, None)))
        event = cloudtrail.build_event(
            call, caller, outcome, when=when,
            source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
            user_agent=environ.get("HTTP_USER_AGENT", ""), request_id=request_id,
            resource_arns=arns, account_id=self.lab.account_id)
        self.lab.events.add(event, caller, when)

    def _lookup_events(self, call: operations.ApiCall) -> Response:
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

    # ------------------------------------------------------------------ code download
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
        return _with_length(headers, len(body)), body

    def _download(self, path: str) -> Response:
        match = _CODE_RE.match(path)
        if not match or match.group(1) != self.lab.code_token:
            return _json(404, {"message": "no such code package"})
        _, kind, account, region, name, version = (unquote(g) for g in match.groups())
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[account][region]
        try:
            if kind == "function":
                data = backend.get_function(name, None if version == "$LATEST" else version).code_bytes
            else:
                data = backend.get_layer_version(name, version).code_bytes
        except Exception:  # removed since the Location was handed out
            return _json(404, {"message": f"{kind} {name}:{version} not found"})
        return 200, [("Content-Type", "application/zip")], data

    # ------------------------------------------------------------------ control plane
    def _control(self, environ: dict, path: str) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith("/_lab/code/") and method in ("GET", "HEAD"):
            return self._download(path)
        if path == "/_lab/health" and method == "GET":
            return _json(200, self.lab.health())
        if path == "/_lab/faults":
            if method == "GET":
                return _json(200, self.lab.fault_report())
            if method == "POST":
                try:
                    return _json(200, self.lab.set_faults(json.loads(_read_body(environ) or b"{}")))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    return _json(400, {"message": str(exc)})
            return _json(405, {"message": "use GET or POST"})
        if path == "/_lab/config":
            if method == "GET":
                return _json(200, self.lab.config())
            if method == "POST":
                try:
                    update = json.loads(_read_body(environ) or b"{}")
                    return _json(200, self.lab.configure(update))
                except (ValueError, TypeError, KeyError) as exc:
                    return _json(400, {"message": str(exc)})
            return _json(405, {"message": "use GET or POST"})
        if path.startswith("/_lab/partner/") or path == "/_lab/partner":
            partner = self.lab.partner
            if partner is None:
                return _json(503, {"message": f"the lab's partner API is missing: {self.lab.partner_error}"})
            headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                       if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["Content-Type"] = environ["CONTENT_TYPE"]
            status, out_headers, body = partner.handle(method, path, headers, _read_body(environ))
            return int(status), list(dict(out_headers or {}).items()), body or b""
        return _json(404, {"message": f"unknown lab path {path}"})


# ---------------------------------------------------------------------- AWS-shaped errors

def _not_implemented(call: "operations.ApiCall | None") -> Response:
    """moto raised (typically NotImplementedError): answer as AWS answers an operation it does
    not offer, with a 501 that botocore does not retry, instead of a bare 500 it retries."""
    if call is None:
        body = json.dumps({"__type": "NotImplemented",
                           "message": "the embedded lab does not implement this operation"}).encode()
        return 501, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "NotImplemented")], body
    return aws_error(call, "NotImplemented",
                     f"the embedded lab does not implement {call.service}:{call.operation}", 501)


#: Throttling error per protocol family: the codes botocore's retry handler knows.
_THROTTLE = {"rest-json": ("TooManyRequestsException", 429), "json": ("ThrottlingException", 400)}


def injected_fault(call: operations.ApiCall, caller: Caller, kind: str, arns: list[str]) -> Response:
    """The error an injected fault answers ``call`` with, in the caller's protocol."""
    if kind == "throttle":
        code, status = _THROTTLE.get(call.protocol or "json", ("Throttling", 400))
        return aws_error(call, code, "Rate exceeded (injected by the lab)", status)
    action = iam_enforcement.iam_action(call)
    return aws_error(call, "AccessDenied", f"User: {caller.arn} is not authorized to perform: {action} on "
                     f"resource: {arns[0] if arns else '*'} (denied by a lab fault)", 403)


def _is_html(headers) -> bool:
    items = headers.items() if isinstance(headers, dict) else headers
    return any(k.lower() == "content-type" and "text/html" in v for k, v in items)


def aws_error(call: operations.ApiCall, code: str, message: str, status: int) -> Response:
    """An AWS error response in ``call``'s protocol (AccessDenied is named per protocol)."""
    protocol = call.protocol or "json"
    request_id = str(uuid.uuid4())
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        if code == "AccessDenied":
            code = "AccessDeniedException"
            status = 400 if protocol == "json" else 403
        error_type = code
        if call.service == "dynamodb" and protocol == "json":
            error_type = f"com.amazonaws.dynamodb.v20120810#{code}"
        body = {"__type": error_type, "message": message, "Message": message}
        if protocol == "rest-json":
            body = {"Type": "User" if status < 500 else "Service", "message": message}
        return status, [("Content-Type", "application/x-amz-json-1.1" if protocol == "json"
                         else "application/json"), ("x-amzn-RequestId", request_id),
                        ("x-amzn-ErrorType", code)], json.dumps(body).encode()
    text = _xml_escape(message)
    kind = "Sender" if status < 500 else "Receiver"
    if call.service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                f"<Message>{text}</Message><RequestId>{request_id}</RequestId></Error>")
    else:
        body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
                f"<Message>{text}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode()


def parse_error(headers: list, payload: bytes) -> tuple[str, str]:
    """``(code, message)`` of an AWS error response, whatever its protocol."""
    code = (_header(headers, "x-amzn-ErrorType") or "").split(":", 1)[0]
    message = ""
    text = payload.decode("utf-8", "replace") if payload else ""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = {}
        if isinstance(document, dict):
            code = code or str(document.get("__type") or document.get("code") or "")
            message = str(document.get("message") or document.get("Message") or "")
    elif "<" in text:
        found = re.search(r"<Code>([^<]*)</Code>", text)
        code = code or (found.group(1) if found else "")
        found = re.search(r"<Message>([^<]*)</Message>", text)
        message = found.group(1) if found else ""
    code = code.rsplit("#", 1)[-1] or "InternalFailure"
    return code, message


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


def _header(headers: list, name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def _with_length(headers: list, length: int) -> list:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return kept + [("Content-Length", str(length))]


def _json(status: int, document: Any) -> Response:
    return status, [("Content-Type", "application/json")], json.dumps(document).encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _respond(start_response: Callable, status: int, headers: list, body: bytes,
             head: bool = False) -> list[bytes]:
    headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    if not head:  # a HEAD answer's Content-Length describes the object, not this empty body
        headers = _with_length(headers, len(body))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Status')}", headers)
    return [body]
