"""Authenticate a request as AWS does, before anything else looks at it.

AWS answers a request only when its access key exists and is active, the session token
(for temporary credentials) is the one issued with that key and has not expired, and the
Signature Version 4 signature verifies with the key's secret. The lab checks the same,
always (not only with IAM enforcement): the signature is recomputed with botocore's own
signer (:class:`botocore.auth.SigV4Auth`, the S3 variant for S3, their query-string
variants for presigned URLs) over the request as it arrived, restricted to the headers
the client says it signed.

Keys come from moto's in-process backends: an IAM user's access key (``Active`` or
``Inactive``; a deleted key is simply unknown) or a role session from ``AssumeRole`` (with
its token and expiry). :func:`authenticate` returns ``None`` or an :class:`AuthFailure`;
:func:`failure_error` turns one into the error the service itself answers.

Examples
--------
>>> failure = authenticate(environ, body)               # doctest: +SKIP
>>> failure.kind if failure else "ok"                   # doctest: +SKIP
'unknown-key'
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from .operations import ApiCall, raw_path

UNKNOWN_KEY = "unknown-key"          # no such key, a deleted key or an inactive one
INVALID_TOKEN = "invalid-token"      # session key without its token, or a token of another key
EXPIRED_TOKEN = "expired-token"
BAD_SIGNATURE = "bad-signature"
SIGNATURE_EXPIRED = "signature-expired"  # clock skew beyond 15 minutes, or a presigned URL past its expiry
MALFORMED = "malformed"              # an Authorization header that is not SigV4
UNSUPPORTED = "unsupported"          # Signature Version 2 (S3's legacy presigned URLs): not verified
#: How far a request's timestamp may be from the lab's clock (AWS allows 15 minutes).
MAX_SKEW = timedelta(minutes=15)
_SIGV4_HEADER = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                           r"\s*Signature=([0-9a-f]{64})\s*$")
_INVALID = "The security token included in the request is invalid."
_EXPIRED = "The security token included in the request is expired"
_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method. Consult the service documentation "
             "for details.")


@dataclass(frozen=True)
class Credential:
    """What the lab knows about one access key."""

    access_key_id: str
    secret_access_key: str
    active: bool
    session_token: str | None = None
    expires: datetime | None = None


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is not authenticated (``kind`` is one of the module constants)."""

    kind: str
    access_key_id: str
    detail: str = ""


@dataclass(frozen=True)
class Signed:
    """The SigV4 parts of one request (from its Authorization header or a presigned URL)."""

    access_key_id: str
    scope: tuple[str, str, str]  # date, region, service
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    token: str | None
    presigned: bool
    expires_seconds: int | None = None
    version: int = 4


def credential_for(access_key_id: str) -> Credential | None:
    """The key's secret, status, and for a role session its token and expiry (``None``: unknown)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for by_partition in list(sts_backends.values()):
        for backend in list(by_partition.values()):
            session = backend.get_assumed_role_from_access_key(access_key_id)
            if session is not None:
                expires = session.expiration
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=timezone.utc)
                return Credential(access_key_id, session.secret_access_key, True, session.session_token, expires)
    for by_partition in list(iam_backends.values()):
        for backend in list(by_partition.values()):
            key = backend.access_keys.get(access_key_id)
            if key is not None and key.user_name:
                return Credential(access_key_id, key.secret_access_key, key.status == "Active")
    return None


def parse_signed(environ: dict) -> Signed | None:
    """The request's SigV4 signature parts; ``None`` when it carries no AWS signature at all."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if authorization.startswith("AWS ") or ("AWSAccessKeyId" in query and "Signature" in query):
        key = authorization[4:].split(":", 1)[0] if authorization.startswith("AWS ") else query["AWSAccessKeyId"]
        return Signed(key, ("", "", ""), (), "", "", None, not authorization, None, version=2)
    if authorization:
        match = _SIGV4_HEADER.match(authorization.strip())
        if not match:
            return Signed("", ("", "", ""), (), "", "", None, False)  # malformed
        credential, headers, signature = match.groups()
        timestamp = environ.get("HTTP_X_AMZ_DATE") or _from_http_date(environ.get("HTTP_DATE", ""))
        return Signed(*_scope(credential), tuple(headers.split(";")), signature, timestamp,
                      environ.get("HTTP_X_AMZ_SECURITY_TOKEN"), False)
    if "X-Amz-Signature" not in query and "X-Amz-Credential" not in query:
        return None
    try:
        expires = int(query.get("X-Amz-Expires", "0"))
    except ValueError:
        expires = -1
    return Signed(*_scope(query.get("X-Amz-Credential", "")), tuple(query.get("X-Amz-SignedHeaders", "").split(";")),
                  query.get("X-Amz-Signature", ""), query.get("X-Amz-Date", ""),
                  query.get("X-Amz-Security-Token"), True, expires)


def _scope(credential: str) -> tuple[str, tuple[str, str, str]]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return "", ("", "", "")
    return parts[0], (parts[1], parts[2], parts[3])


def _from_http_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError):
        return ""


def authenticate(environ: dict, body: bytes, now: datetime | None = None) -> AuthFailure | None:
    """``None`` when the request is signed by a valid credential, else why it is not.

    An unsigned request also returns ``None``: whether the operation may be called
    unsigned is the caller's decision (``AssumeRoleWithWebIdentity`` may).
    """
    signed = parse_signed(environ)
    if signed is None:
        return None
    if signed.version != 4:
        return AuthFailure(UNSUPPORTED, signed.access_key_id, "Signature Version 2 is not verified by the lab")
    if not signed.access_key_id or not signed.timestamp:
        return AuthFailure(MALFORMED, signed.access_key_id, "not a complete Signature Version 4 signature")
    credential = credential_for(signed.access_key_id)
    if credential is None or not credential.active:
        return AuthFailure(UNKNOWN_KEY, signed.access_key_id,
                           "unknown access key" if credential is None else "inactive access key")
    if credential.session_token is not None or signed.token is not None:
        if credential.session_token is None or not hmac.compare_digest(signed.token or "", credential.session_token):
            return AuthFailure(INVALID_TOKEN, signed.access_key_id, "session token does not belong to the key")
    now = now or datetime.now(timezone.utc)
    if credential.expires is not None and credential.expires <= now:
        return AuthFailure(EXPIRED_TOKEN, signed.access_key_id, f"expired at {credential.expires.isoformat()}")
    skew = _skew(signed, now)
    if skew:
        return AuthFailure(SIGNATURE_EXPIRED, signed.access_key_id, skew)
    if not hmac.compare_digest(expected_signature(environ, body, signed, credential), signed.signature):
        return AuthFailure(BAD_SIGNATURE, signed.access_key_id, "signature does not verify")
    return None


def _skew(signed: Signed, now: datetime) -> str:
    try:
        moment = datetime.strptime(signed.timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return f"unreadable request time {signed.timestamp!r}"
    if signed.presigned:
        if signed.expires_seconds is None or signed.expires_seconds < 0 or \
                moment + timedelta(seconds=signed.expires_seconds) < now:
            return "Request has expired"
        return ""
    if abs(now - moment) > MAX_SKEW:
        return (f"Signature expired: {signed.timestamp} is now earlier than "
                f"{(now - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')}")
    return ""


def expected_signature(environ: dict, body: bytes, signed: Signed, credential: Credential) -> str:
    """The signature botocore's signer computes for this request with the key's secret."""
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.compat import HTTPHeaders
    from botocore.credentials import Credentials

    date, region, service = signed.scope
    if signed.presigned:
        base = S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth
    else:
        base = S3SigV4Auth if service == "s3" else SigV4Auth
    headers = HTTPHeaders()
    for name in signed.signed_headers:
        value = _header_value(environ, name)
        if value is not None:
            headers[name] = value
    signer = base(Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token),
                  service, region)
    signer.headers_to_sign = lambda request: headers  # exactly what the client signed
    query = environ.get("QUERY_STRING", "")
    if signed.presigned:  # the canonical query string excludes the signature itself
        query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    url = f"http://{environ.get('HTTP_HOST', '')}{raw_path(environ)}" + (f"?{query}" if query else "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=url, data=body or b"")
    for name in signed.signed_headers:
        if name.lower() == "x-amz-content-sha256" and name in headers:
            request.headers["X-Amz-Content-SHA256"] = headers[name]
    request.context["timestamp"] = signed.timestamp
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def _header_value(environ: dict, name: str) -> str | None:
    lowered = name.lower()
    if lowered == "content-type":
        return environ.get("CONTENT_TYPE")
    if lowered == "content-length":
        return environ.get("CONTENT_LENGTH")
    if lowered == "host":
        return environ.get("HTTP_HOST")
    return environ.get("HTTP_" + lowered.upper().replace("-", "_"))


# --------------------------------------------------------------------------- the service's answer

#: Per protocol: (code, status) for an invalid key or token, a bad signature, an expired token.
_CODES = {
    "query": {UNKNOWN_KEY: ("InvalidClientTokenId", 403), BAD_SIGNATURE: ("SignatureDoesNotMatch", 403),
              EXPIRED_TOKEN: ("ExpiredToken", 403), MALFORMED: ("IncompleteSignature", 400)},
    "ec2": {UNKNOWN_KEY: ("AuthFailure", 401), BAD_SIGNATURE: ("AuthFailure", 401),
            EXPIRED_TOKEN: ("RequestExpired", 400), MALFORMED: ("AuthFailure", 401)},
    "json": {UNKNOWN_KEY: ("UnrecognizedClientException", 400), BAD_SIGNATURE: ("InvalidSignatureException", 400),
             EXPIRED_TOKEN: ("ExpiredTokenException", 400), MALFORMED: ("IncompleteSignatureException", 400)},
    "rest-json": {UNKNOWN_KEY: ("UnrecognizedClientException", 403),
                  BAD_SIGNATURE: ("InvalidSignatureException", 403),
                  EXPIRED_TOKEN: ("ExpiredTokenException", 403), MALFORMED: ("IncompleteSignatureException", 403)},
    "s3": {UNKNOWN_KEY: ("InvalidAccessKeyId", 403), BAD_SIGNATURE: ("SignatureDoesNotMatch", 403),
           EXPIRED_TOKEN: ("ExpiredToken", 400), MALFORMED: ("AuthorizationHeaderMalformed", 400)},
}
#: rest-xml services other than S3 (CloudFront) answer in the query protocol's words.
_PROTOCOL_FAMILY = {"rest-xml": "query", "smithy-rpc-v2-cbor": "json"}


def failure_error(call: ApiCall, failure: AuthFailure) -> tuple[str, str, int]:
    """``(code, message, HTTP status)`` the service answers ``failure`` with, AWS's wording."""
    family = "s3" if call.service == "s3" else _PROTOCOL_FAMILY.get(call.protocol, call.protocol or "json")
    codes = _CODES.get(family, _CODES["json"])
    if failure.kind == UNSUPPORTED:
        if family == "s3":  # what S3 answers in regions that take Signature Version 4 only
            return ("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                    "Please use AWS4-HMAC-SHA256.", 400)
        failure = AuthFailure(MALFORMED, failure.access_key_id, failure.detail)
    kind = {INVALID_TOKEN: UNKNOWN_KEY, SIGNATURE_EXPIRED: BAD_SIGNATURE}.get(failure.kind, failure.kind)
    code, status = codes[kind]
    if family == "s3":
        message = {UNKNOWN_KEY: "The AWS Access Key Id you provided does not exist in our records.",
                   BAD_SIGNATURE: "The request signature we calculated does not match the signature you "
                                  "provided. Check your key and signing method.",
                   EXPIRED_TOKEN: "The provided token has expired.",
                   MALFORMED: "The authorization header is malformed."}[kind]
        if failure.kind == INVALID_TOKEN:
            code, message = "InvalidToken", "The provided token is malformed or otherwise invalid."
        if failure.kind == SIGNATURE_EXPIRED:
            code, message = ("AccessDenied", "Request has expired") if "expired" in failure.detail.lower() \
                and "Signature" not in failure.detail else ("RequestTimeTooSkewed", failure.detail)
        return code, message, status
    if family == "ec2" and kind in (UNKNOWN_KEY, BAD_SIGNATURE, MALFORMED):
        return code, "AWS was not able to validate the provided access credentials", status
    message = {UNKNOWN_KEY: _INVALID, BAD_SIGNATURE: _MISMATCH, EXPIRED_TOKEN: _EXPIRED,
               MALFORMED: "Authorization header requires a complete Signature Version 4 signature."}[kind]
    if failure.kind == SIGNATURE_EXPIRED:
        message = failure.detail
    return code, message, status
