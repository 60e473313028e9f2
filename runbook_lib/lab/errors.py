"""AWS-shaped error answers, in the protocol of the call they answer.

Every refusal the lab makes (a denied call, a bad signature, a throttled lookup, an
operation moto lacks) goes through :func:`aws_error`, so a client sees the same error
code, HTTP status and body layout it would see from AWS, and botocore parses it the
same way. :func:`parse_error` reads any of them back for the CloudTrail record.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from .operations import ApiCall

Response = tuple[int, list[tuple[str, str]], bytes]

#: Throttling error per protocol family: the codes botocore's retry handler knows.
THROTTLE = {"rest-json": ("TooManyRequestsException", 429), "json": ("ThrottlingException", 400),
            "ec2": ("RequestLimitExceeded", 503)}


def aws_error(call: ApiCall, code: str, message: str, status: int) -> Response:
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
        body: dict = {"__type": error_type, "message": message, "Message": message}
        if protocol == "rest-json":
            body = {"Type": "User" if status < 500 else "Service", "message": message}
        return status, [("Content-Type", "application/x-amz-json-1.1" if protocol == "json"
                         else "application/json"), ("x-amzn-RequestId", request_id),
                        ("x-amzn-ErrorType", code)], json.dumps(body).encode()
    text = xml_escape(message)
    kind = "Sender" if status < 500 else "Receiver"
    if call.service == "s3":
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
               f"<Message>{text}</Message><RequestId>{request_id}</RequestId></Error>")
    elif protocol == "ec2":
        xml = (f"<Response><Errors><Error><Code>{code}</Code><Message>{text}</Message></Error></Errors>"
               f"<RequestID>{request_id}</RequestID></Response>")
    else:
        xml = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
               f"<Message>{text}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()


def not_implemented(call: ApiCall | None) -> Response:
    """moto raised (typically NotImplementedError): answer as AWS answers an operation it does
    not offer, with a 501 that botocore does not retry, instead of a bare 500 it retries."""
    if call is None:
        body = json.dumps({"__type": "NotImplemented",
                           "message": "the embedded lab does not implement this operation"}).encode()
        return 501, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "NotImplemented")], body
    return aws_error(call, "NotImplemented",
                     f"the embedded lab does not implement {call.service}:{call.operation}", 501)


def throttled(call: ApiCall, message: str) -> Response:
    """The protocol's throttling error (one botocore retries with back-off)."""
    code, status = THROTTLE.get(call.protocol or "json", ("Throttling", 400))
    return aws_error(call, code, message, status)


def missing_authentication(call: ApiCall | None) -> Response:
    """An unsigned request to an operation AWS only serves signed."""
    if call is None:
        body = json.dumps({"__type": "MissingAuthenticationTokenException",
                           "message": "Missing Authentication Token"}).encode()
        return 403, [("Content-Type", "application/json"),
                     ("x-amzn-ErrorType", "MissingAuthenticationTokenException")], body
    if call.service == "s3":  # anonymous S3 access: the lab has no public bucket
        return aws_error(call, "AccessDenied", "Access Denied", 403)
    if call.protocol in ("query", "ec2"):
        return aws_error(call, "MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    return aws_error(call, "MissingAuthenticationTokenException", "Missing Authentication Token",
                     400 if call.protocol == "json" else 403)


def parse_error(headers: list, payload: bytes) -> tuple[str, str]:
    """``(code, message)`` of an AWS error response, whatever its protocol."""
    code = (header(headers, "x-amzn-ErrorType") or "").split(":", 1)[0]
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


def is_html(headers: Any) -> bool:
    items = headers.items() if isinstance(headers, dict) else headers
    return any(k.lower() == "content-type" and "text/html" in v for k, v in items)


def header(headers: list, name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def with_length(headers: list, length: int) -> list:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return kept + [("Content-Length", str(length))]


def json_response(status: int, document: Any) -> Response:
    return status, [("Content-Type", "application/json")], json.dumps(document).encode()


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
