"""Name the AWS operation behind an HTTP request, from botocore's service models.

The lab sees raw HTTP. CloudTrail events, IAM enforcement and the Lambda hooks need
to know *which* API call that was: the service (SigV4 signing name), the operation,
its parameters, the region and the caller's access key id. Every protocol says it
differently, so the answer is read from botocore's models, not from a table kept here:

- ``json``: the ``X-Amz-Target`` header (``secretsmanager.GetSecretValue``);
- ``query``/``ec2``: the ``Action`` form field (IAM, STS);
- ``rest-json``/``rest-xml``: HTTP method + the operation's ``requestUri`` template
  (Lambda, CloudFront, S3), most specific template first;
- ``smithy-rpc-v2-cbor``: ``/service/<name>/operation/<Op>`` (parameters not decoded).

Parameters are returned raw (they may hold secret values): callers that write them
anywhere must sanitise them first (see :mod:`runbook_lib.lab.cloudtrail`).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

#: Signing names whose botocore model has another name, or that several models share.
SIGNING_NAME_MODELS: dict[str, tuple[str, ...]] = {
    "dynamodb": ("dynamodb", "dynamodbstreams"),
    "monitoring": ("cloudwatch",),
    "email": ("ses", "sesv2"),
    "states": ("stepfunctions",),
    "elasticloadbalancing": ("elbv2", "elb"),
    "s3": ("s3", "s3control"),
    "execute-api": ("apigateway",),
    "es": ("es", "opensearch"),
    "access-analyzer": ("accessanalyzer",),
}

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass
class ApiCall:
    """One resolved AWS request.

    Attributes
    ----------
    service:
        SigV4 signing name (``secretsmanager``, ``lambda``...); also the CloudTrail
        event source prefix and, for most services, the IAM action prefix.
    operation:
        botocore operation name (``GetSecretValue``); empty when not resolved.
    params:
        Raw request parameters keyed by botocore member names. May hold secrets.
    region, access_key_id:
        From the SigV4 credential scope; empty for unsigned requests.
    protocol:
        botocore protocol used to parse the request.
    model:
        botocore ``ServiceModel`` (``None`` when the service is unknown).
    """

    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    region: str = ""
    access_key_id: str = ""
    protocol: str = ""
    model: Any = None

    @property
    def operation_model(self):
        if self.model is None or not self.operation:
            return None
        try:
            return self.model.operation_model(self.operation)
        except Exception:  # botocore raises OperationNotFoundError
            return None


class _Models:
    """Lazily loaded botocore service models and their REST routing tables."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session = None
        self._models: dict[str, Any] = {}
        self._routes: dict[str, list[tuple]] = {}

    def model(self, name: str):
        with self._lock:
            if name not in self._models:
                if self._session is None:
                    from .botocore_data import botocore_session

                    self._session = botocore_session()
                try:
                    self._models[name] = self._session.get_service_model(name)
                except Exception:  # unknown service name
                    self._models[name] = None
            return self._models[name]

    def candidates(self, signing_name: str) -> list:
        names = SIGNING_NAME_MODELS.get(signing_name, (signing_name,))
        return [m for m in (self.model(n) for n in names) if m is not None]

    def routes(self, model) -> list[tuple]:
        key = model.service_name
        with self._lock:
            if key not in self._routes:
                self._routes[key] = _build_routes(model)
            return self._routes[key]


MODELS = _Models()


def parse_credential(authorization: str) -> tuple[str, str, str]:
    """Return ``(access_key_id, region, service)`` from a SigV4 Authorization header."""
    match = _CREDENTIAL_RE.search(authorization or "")
    if not match:
        return "", "", ""
    return match.group(1), match.group(3), match.group(4)


def resolve(environ: dict, body: bytes) -> ApiCall | None:
    """Resolve a WSGI request to an :class:`ApiCall`; ``None`` when it is not an AWS call.

    Parameters
    ----------
    environ:
        WSGI environ of the request.
    body:
        The request body, already read.
    """
    access_key, region, service = parse_credential(environ.get("HTTP_AUTHORIZATION", ""))
    query = environ.get("QUERY_STRING", "")
    if not access_key:  # presigned URL
        values = parse_qs(query)
        credential = (values.get("X-Amz-Credential") or [""])[0]
        parts = credential.split("/")
        if len(parts) == 5:
            access_key, region, service = parts[0], parts[2], parts[3]
        elif values.get("AWSAccessKeyId") or environ.get("HTTP_AUTHORIZATION", "").startswith("AWS "):
            # S3's legacy Signature Version 2 (the only service still taking it)
            authorization = environ.get("HTTP_AUTHORIZATION", "")
            access_key = (values.get("AWSAccessKeyId") or [authorization[4:].split(":", 1)[0]])[0]
            service = "s3"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    content_type = environ.get("CONTENT_TYPE", "")
    form = _form(body, content_type, query)
    if not service:
        if target:
            service = target.split(".", 1)[0].split("_", 1)[0].lower()
        elif "Action" in form:
            service = "sts" if form["Action"][0].startswith("AssumeRoleWith") else ""
        if not service:
            return None
    call = ApiCall(service=service, operation="", region=region or "us-east-1",
                   access_key_id=access_key)
    path = raw_path(environ)
    for model in MODELS.candidates(service):
        if _resolve_with(model, call, environ, body, form, target, path):
            call.model = model
            return call
    if target:
        call.operation = target.rsplit(".", 1)[-1]
    elif "Action" in form:
        call.operation = form["Action"][0]
    return call


def _resolve_with(model, call: ApiCall, environ: dict, body: bytes, form: dict,
                  target: str, path: str) -> bool:
    if target:
        prefix, _, operation = target.rpartition(".")
        if model.metadata.get("targetPrefix") != prefix or operation not in model.operation_names:
            return False
        call.operation, call.protocol = operation, "json"
        call.params = _json(body)
        return True
    if "Action" in form and model.protocol in ("query", "ec2") or (
            "Action" in form and "query" in (model.metadata.get("protocols") or ())):
        operation = form["Action"][0]
        if operation not in model.operation_names:
            return False
        call.operation, call.protocol = operation, "ec2" if model.protocol == "ec2" else "query"
        call.params = nest_query({k: v[0] for k, v in form.items()
                                  if k not in ("Action", "Version")})
        return True
    cbor = re.match(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$", path)
    if cbor and cbor.group(1) in model.operation_names:
        call.operation, call.protocol = cbor.group(1), "smithy-rpc-v2-cbor"
        return True
    if model.protocol not in ("rest-json", "rest-xml"):
        return False
    method = environ.get("REQUEST_METHOD", "GET").upper()
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    for route in MODELS.routes(model):
        route_method, pattern, required_query, operation, _score = route
        if route_method != method:
            continue
        match = pattern.match(path)
        if not match or any(k not in query or (v and query[k][0] != v)
                            for k, v in required_query.items()):
            continue
        call.operation, call.protocol = operation, model.protocol
        call.params = _rest_params(model.operation_model(operation), match, query,
                                   environ, body, model.protocol)
        return True
    return False


def _build_routes(model) -> list[tuple]:
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        required = {}
        for item in filter(None, query.split("&")):
            key, _, value = item.partition("=")
            if key != "x-id":
                required[key] = value
        regex, literal = "", 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                label = piece[1:-1]
                greedy = label.endswith("+")
                group = "g_" + re.sub(r"\W", "_", label.rstrip("+"))
                regex += f"(?P<{group}>.+)" if greedy else f"(?P<{group}>[^/]+)"
            else:
                regex += re.escape(piece)
                literal += len(piece)
        pattern = re.compile("^" + regex.rstrip("/") + "/?$")
        routes.append((http.get("method", "GET").upper(), pattern, required, name,
                       (len(required), literal)))
    routes.sort(key=lambda r: r[4], reverse=True)
    return routes


def _rest_params(op, match, query: dict, environ: dict, body: bytes, protocol: str) -> dict:
    shape = op.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    groups = {k[2:]: unquote(v) for k, v in match.groupdict().items()}
    payload = shape.serialization.get("payload")
    body_members = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        key = re.sub(r"\W", "_", wire)
        if location == "uri" and key in groups:
            params[name] = groups[key]
        elif location == "querystring":
            if member.type_name == "list" and wire in query:
                params[name] = query[wire]
            elif wire in query:
                params[name] = query[wire][0]
        elif location == "header":
            value = environ.get("HTTP_" + wire.upper().replace("-", "_"))
            if value is not None:
                params[name] = value
        elif location is None and name != payload:
            body_members[name] = member
    if payload and body:
        member = shape.members[payload]
        if member.type_name == "structure":
            params[payload] = (_json(body) if protocol == "rest-json"
                               else _xml_to_params(body, member))
        # blob/string payloads (Invoke's event, S3 objects) are never kept
    elif body_members and body:
        document = _json(body) if protocol == "rest-json" else _xml_to_params(body, shape)
        params.update({k: v for k, v in document.items() if k in body_members})
    return params


def _xml_to_params(body: bytes, shape) -> dict:
    try:
        import xmltodict

        document = xmltodict.parse(body, process_namespaces=False)
    except Exception:
        return {}
    root = next(iter(document.values()), None) if document else None
    value = _from_xml(root, shape)
    return value if isinstance(value, dict) else {}


def _from_xml(node: Any, shape) -> Any:
    if node is None or shape is None:
        return node
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(node, dict):
            return {}
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in node:
                out[name] = _from_xml(node[wire], member)
        return out
    if kind == "list":
        item = shape.member
        if shape.serialization.get("flattened"):
            items = node
        else:
            wrapper = item.serialization.get("name", "member")
            items = node.get(wrapper) if isinstance(node, dict) else None
        if items is None:
            return []
        if not isinstance(items, list):
            items = [items]
        return [_from_xml(i, item) for i in items]
    if kind == "boolean":
        return str(node).lower() == "true"
    if kind in ("integer", "long"):
        try:
            return int(node)
        except (TypeError, ValueError):
            return node
    if isinstance(node, dict):  # maps and unknown shapes: keep text only
        return node.get("#text")
    return node


def nest_query(flat: dict[str, str]) -> dict:
    """Turn query-protocol keys (``Tags.member.1.Key``) into nested dicts and lists."""
    root: dict = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if set(node) == {"member"} and isinstance(node["member"], dict):
        node = node["member"]
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _form(body: bytes, content_type: str, query: str) -> dict:
    values = parse_qs(query, keep_blank_values=True)
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        try:
            values.update(parse_qs(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            pass
    return values


def _json(body: bytes) -> dict:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def raw_path(environ: dict) -> str:
    """The request path as the client sent it (percent-encoding kept): what SigV4 signed."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        raw = raw.split("?", 1)[0]
        if "://" in raw:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        return raw
    from urllib.parse import quote

    return quote(environ.get("PATH_INFO", "/"), safe="/:@!$&'()*+,;=-._~")
