"""The lab's control plane under ``/_lab/``: never an AWS call, never in CloudTrail.

| path | what |
|---|---|
| ``GET /_lab/health`` | status, settings, event count, runtime and partner API state |
| ``GET/POST /_lab/config`` | the run-time settings (:mod:`.settings`) |
| ``GET/POST /_lab/faults`` | injected throttling and denials |
| ``GET /_lab/unevaluated`` | policy conditions the lab could not evaluate (and failed closed on) |
| ``GET /_lab/code/<token>/...`` | the code package a ``GetFunction``/``GetLayerVersion`` Location names |
| ``/_lab/partner/...`` | the seeded partner API |
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable
from urllib.parse import unquote

from .errors import Response, json_response
from .policy_language import unevaluated

CODE_PATH = re.compile(r"^/_lab/code/([^/]+)/(function|layer)/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")


def control(lab: Any, environ: dict, path: str, read_body: Callable[[dict], bytes]) -> Response:
    """Answer one control-plane request for ``lab`` (a :class:`~.server.LabServer`)."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if path.startswith("/_lab/code/") and method in ("GET", "HEAD"):
        return download(lab, path)
    if path == "/_lab/health" and method == "GET":
        return json_response(200, lab.health())
    if path == "/_lab/unevaluated" and method == "GET":
        return json_response(200, {"unevaluated": unevaluated()})
    if path == "/_lab/faults":
        return _settable(method, lab.fault_report, lab.set_faults, environ, read_body)
    if path == "/_lab/config":
        return _settable(method, lab.config, lab.configure, environ, read_body)
    if path.startswith("/_lab/partner/") or path == "/_lab/partner":
        partner = lab.partner
        if partner is None:
            return json_response(503, {"message": f"the lab's partner API is missing: {lab.partner_error}"})
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        status, out_headers, body = partner.handle(method, path, headers, read_body(environ))
        return int(status), list(dict(out_headers or {}).items()), body or b""
    return json_response(404, {"message": f"unknown lab path {path}"})


def _settable(method: str, get: Callable[[], dict], put: Callable[[dict], dict], environ: dict,
              read_body: Callable[[dict], bytes]) -> Response:
    if method == "GET":
        return json_response(200, get())
    if method == "POST":
        try:
            return json_response(200, put(json.loads(read_body(environ) or b"{}")))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return json_response(400, {"message": str(exc).strip("'\"")})
    return json_response(405, {"message": "use GET or POST"})


def download(lab: Any, path: str) -> Response:
    """The exact zip of a function version or layer version, for the lab's own Location URLs."""
    match = CODE_PATH.match(path)
    if not match or match.group(1) != lab.code_token:
        return json_response(404, {"message": "no such code package"})
    _, kind, account, region, name, version = (unquote(g) for g in match.groups())
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account][region]
    try:
        if kind == "function":
            data = backend.get_function(name, None if version == "$LATEST" else version).code_bytes
        else:
            data = backend.get_layer_version(name, version).code_bytes
    except Exception:  # removed since the Location was handed out
        return json_response(404, {"message": f"{kind} {name}:{version} not found"})
    return 200, [("Content-Type", "application/zip")], data
