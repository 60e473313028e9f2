"""CloudTrail event history for the lab: record every API call, serve ``LookupEvents``.

moto does not implement ``LookupEvents``. The lab's WSGI layer hands every AWS call it
serves (including those made by running Lambda functions with their role's session
credentials) to :class:`EventStore.record`, which keeps a CloudTrail-shaped event:
``eventVersion``, ``userIdentity``, ``eventTime``, ``eventSource``, ``eventName``,
``awsRegion``, ``sourceIPAddress``, ``userAgent``, ``requestParameters``,
``responseElements``, ``errorCode``/``errorMessage``, ``requestID``, ``eventID``,
``readOnly``, ``resources``, ``eventType``, ``managementEvent``, ``recipientAccountId``.

Request parameters never hold a secret value: members botocore marks ``sensitive``
(SecretString, SecretBinary, Environment variables, ZipFile, KMS Plaintext, passwords)
and members with secret-like names become ``HIDDEN_DUE_TO_SECURITY_REASONS``; blobs are
dropped. Keys are lowerCamelCase like AWS (``secretId``), map keys kept as sent.

Event history behaves as AWS's: it holds management events only (a Lambda ``Invoke``, a
DynamoDB item call, an S3 object call are data events: :func:`is_data_event`);
``LookupEvents`` takes one lookup attribute, at most 50 results, a ``NextToken`` only
with the parameters that produced it, and two calls per second per account and region
(:class:`LookupThrottle`); and events can be held back for a delivery delay
(``EventStore.delay_seconds``) to rehearse AWS's minutes of latency.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .identity import Caller
from .operations import ApiCall

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
MAX_EVENTS = 50_000
MAX_RESULTS = 50
#: AWS's LookupEvents limit: two requests per second per account and region.
LOOKUPS_PER_SECOND = 2
#: Data events: logged by trails that select them, never in event history.
DATA_EVENTS = {
    "lambda": {"Invoke", "InvokeAsync", "InvokeWithResponseStream"},
    "dynamodb": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query",
                 "Scan", "TransactGetItems", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement",
                 "ExecuteTransaction", "GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"},
    "s3": {"GetObject", "PutObject", "DeleteObject", "DeleteObjects", "HeadObject", "CopyObject", "ListObjects",
           "ListObjectsV2", "ListObjectVersions", "GetObjectAcl", "PutObjectAcl", "GetObjectTagging",
           "PutObjectTagging", "DeleteObjectTagging", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
           "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "RestoreObject", "SelectObjectContent",
           "GetObjectAttributes", "GetObjectRetention", "PutObjectRetention", "GetObjectLegalHold",
           "PutObjectLegalHold", "GetObjectTorrent"},
}
#: Member names hidden whatever the model says (query-protocol params are untyped).
_SENSITIVE_NAME = re.compile(
    r"(?i)^(secretstring|secretbinary|zipfile|plaintext|privatekey|secretaccesskey|"
    r"sessiontoken|.*password.*|apikey|variables|payload|body)$")
#: DynamoDB item values are data, not request metadata: hidden, keys and names kept.
_DYNAMODB_VALUES = re.compile(r"^(Item|Items|ExpressionAttributeValues|AttributeUpdates)$")
_READ_ONLY = re.compile(r"^(Get|List|Describe|Lookup|Head|BatchGet|Scan|Query|Select|Search|"
                        r"Check|Filter|Test|Validate|Simulate|Decode|Generate|Preview|Estimate)")
_RESOURCE_KEYS = {
    "SecretId": "AWS::SecretsManager::Secret", "Name": None, "FunctionName": "AWS::Lambda::Function",
    "TableName": "AWS::DynamoDB::Table", "RoleName": "AWS::IAM::Role", "UserName": "AWS::IAM::User",
    "PolicyArn": "AWS::IAM::Policy", "KeyId": "AWS::KMS::Key", "LayerName": "AWS::Lambda::LayerVersion",
    "logGroupName": "AWS::Logs::LogGroup", "Id": None, "Bucket": "AWS::S3::Bucket",
    "RoleArn": "AWS::IAM::Role", "TrailName": "AWS::CloudTrail::Trail",
}
_SERVICE_TYPES = {"secretsmanager": "AWS::SecretsManager::Secret", "cloudtrail": "AWS::CloudTrail::Trail",
                  "cloudfront": "AWS::CloudFront::Distribution", "iam": "AWS::IAM::Policy"}
_LOOKUP_KEYS = {
    "EventId": lambda e: [e["EventId"]],
    "EventName": lambda e: [e["EventName"]],
    "EventSource": lambda e: [e["EventSource"]],
    "ReadOnly": lambda e: [e["ReadOnly"]],
    "Username": lambda e: [e["username"]] if e["username"] else [],
    "AccessKeyId": lambda e: [e["AccessKeyId"]],
    "ResourceName": lambda e: [r["ResourceName"] for r in e["resources"]],
    "ResourceType": lambda e: [r["ResourceType"] for r in e["resources"] if r.get("ResourceType")],
}


def is_data_event(call: ApiCall) -> bool:
    """Whether AWS counts ``call`` as a data event (never shown by event history)."""
    return call.operation in DATA_EVENTS.get(call.service, ())


def event_source(service: str) -> str:
    """``secretsmanager`` -> ``secretsmanager.amazonaws.com``."""
    return f"{service}.amazonaws.com"


def request_parameters(call: ApiCall) -> dict | None:
    """CloudTrail ``requestParameters`` of ``call``: no secret value, no blob."""
    if not call.params:
        return None
    op = call.operation_model
    shape = op.input_shape if op is not None else None
    value = _sanitize(call.params, shape, "", call.service == "dynamodb")
    return value or None


def _sanitize(value: Any, shape: Any, name: str = "", dynamodb: bool = False) -> Any:
    metadata = getattr(shape, "metadata", {}) or {}
    kind = getattr(shape, "type_name", None)
    if metadata.get("sensitive") or _SENSITIVE_NAME.match(name or "") or (
            dynamodb and _DYNAMODB_VALUES.match(name or "")):
        return HIDDEN
    if kind == "blob":
        return None
    if isinstance(value, dict):
        if kind == "map":
            return {k: _sanitize(v, shape.value, "", dynamodb) for k, v in value.items()}
        members = getattr(shape, "members", {}) if kind == "structure" else {}
        out = {}
        for key, item in value.items():
            if kind == "structure" and key not in members:
                continue
            clean = _sanitize(item, members.get(key), key, dynamodb)
            if clean is not None:
                out[_lower_camel(key)] = clean
        return out
    if isinstance(value, list):
        member = getattr(shape, "member", None)
        return [_sanitize(v, member, "", dynamodb) for v in value]
    if isinstance(value, bytes):
        return None
    return value


def _lower_camel(key: str) -> str:
    if not key or not key[0].isupper() or key.isupper():  # DynamoDB's "S", "BOOL" stay as sent
        return key
    # A leading acronym is lowered whole, as AWS does: "KMSKeyId" -> "kmsKeyId".
    match = re.match(r"^[A-Z]+(?=[A-Z][a-z]|$|\d)", key)
    if match and len(match.group(0)) > 1:
        head = match.group(0)
        return head.lower() + key[len(head):]
    return key[0].lower() + key[1:]


def hidden_values(params: Any, shape: Any = None, name: str = "") -> list[str]:
    """Every string value :func:`request_parameters` hides (to scrub error messages)."""
    found: list[str] = []
    metadata = getattr(shape, "metadata", {}) or {}
    if (metadata.get("sensitive") or _SENSITIVE_NAME.match(name or "") or _DYNAMODB_VALUES.match(name or "")) \
            and params:
        _strings(params, found)
        return found
    if isinstance(params, dict):
        kind = getattr(shape, "type_name", None)
        members = getattr(shape, "members", {}) if kind == "structure" else {}
        for key, item in params.items():
            sub = shape.value if kind == "map" else members.get(key)
            found += hidden_values(item, sub, "" if kind == "map" else key)
    elif isinstance(params, list):
        for item in params:
            found += hidden_values(item, getattr(shape, "member", None))
    return found


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str) and len(value) >= 4:
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def resources(call: ApiCall, caller_account: str, arns: list[str] | None = None) -> list[dict]:
    """Event ``resources`` (``ARN``, ``accountId``, ``type``): the ARNs authorised plus names."""
    entries: list[dict] = []
    params = call.params or {}
    for arn in arns or []:
        if arn and arn != "*" and "?" not in arn:
            entries.append({"ARN": arn, "accountId": caller_account,
                            "type": _type_of(params) or _SERVICE_TYPES.get(call.service, "")})
    if not entries:
        for key, kind in _RESOURCE_KEYS.items():
            value = params.get(key)
            if isinstance(value, str) and value:
                entries.append({"ARN": value, "accountId": caller_account,
                                "type": kind or _SERVICE_TYPES.get(call.service, "")})
                break
    return entries


def _type_of(params: dict) -> str:
    for key, kind in _RESOURCE_KEYS.items():
        if key in params and kind:
            return kind
    return ""


@dataclass
class Outcome:
    """What the lab answered: HTTP status and, for a failure, the AWS error."""

    status: int
    error_code: str | None = None
    error_message: str | None = None


def build_event(call: ApiCall, caller: Caller, outcome: Outcome, *, when: datetime,
                source_ip: str, user_agent: str, request_id: str,
                resource_arns: list[str] | None = None, account_id: str = "123456789012",
                invoked_by: str = "") -> dict:
    """One CloudTrail record (the JSON AWS puts in ``CloudTrailEvent``).

    ``invoked_by`` names the service that made the call for the caller (the ``kms:Decrypt``
    Secrets Manager makes for ``GetSecretValue``): it becomes ``userIdentity.invokedBy``,
    ``sourceIPAddress`` and ``userAgent``, as AWS records such calls.
    """
    recipient = caller.account_id or account_id
    message = outcome.error_message
    if message:
        for value in hidden_values(call.params, getattr(call.operation_model, "input_shape", None)):
            message = message.replace(value, HIDDEN)
    event = {
        "eventVersion": "1.09",
        "userIdentity": caller.user_identity(),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source(call.service),
        "eventName": call.operation or "Unknown",
        "awsRegion": call.region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request_parameters(call),
        "responseElements": None,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": bool(_READ_ONLY.match(call.operation or "")),
        "resources": resources(call, recipient, resource_arns),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": recipient,
        "eventCategory": "Management",
    }
    if invoked_by:
        event["userIdentity"]["invokedBy"] = invoked_by
        event["sourceIPAddress"] = event["userAgent"] = invoked_by
    if outcome.error_code:
        event["errorCode"] = outcome.error_code
        event["errorMessage"] = message or ""
    if not event["resources"]:
        del event["resources"]
    return event


class EventStore:
    """Thread-safe, bounded, newest-first CloudTrail event history.

    ``delay_seconds`` holds each event back from ``LookupEvents`` for that long after it
    was recorded (AWS delivers in minutes; 0 shows it at once). The setting in force at
    lookup time counts, so lowering it releases what it held.
    """

    def __init__(self, max_events: int = MAX_EVENTS, delay_seconds: float = 0.0):
        self._lock = threading.Lock()
        self._events: list[dict] = []  # oldest first
        self._sequence = 0
        self._max = max_events
        self.delay_seconds = float(delay_seconds)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def add(self, event: dict, caller: Caller, when: datetime | None = None) -> None:
        """Store ``event`` (from :func:`build_event`) made by ``caller`` at ``when``."""
        if when is None:
            when = datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=timezone.utc)
        lookup_resources = []
        for entry in event.get("resources", []):
            lookup_resources.append({"ResourceType": entry.get("type") or None, "ResourceName": entry["ARN"]})
            short = entry["ARN"].split(":")[-1].split("/")[-1]
            if entry["ARN"].startswith("arn:") and short and short != entry["ARN"]:
                lookup_resources.append({"ResourceType": entry.get("type") or None, "ResourceName": short})
        for key in ("secretId", "functionName", "tableName", "roleName", "userName", "name"):
            value = (event.get("requestParameters") or {}).get(key)
            if isinstance(value, str) and all(value != r["ResourceName"] for r in lookup_resources):
                lookup_resources.append({"ResourceType": None, "ResourceName": value})
        with self._lock:
            self._sequence += 1
            # only what LookupEvents filters on, plus the record as JSON (kept compact)
            self._events.append({"seq": self._sequence, "time": when.timestamp(),
                                 "recorded_at": time.time(),
                                 "EventId": event["eventID"], "EventName": event["eventName"],
                                 "EventSource": event["eventSource"],
                                 "ReadOnly": str(event["readOnly"]).lower(),
                                 "AccessKeyId": event["userIdentity"].get("accessKeyId", ""),
                                 "username": caller.user_name, "resources": lookup_resources,
                                 "json": json.dumps(event, separators=(",", ":"))})
            if len(self._events) > self._max:
                del self._events[: len(self._events) - self._max]

    def events(self) -> list[dict]:
        """All stored events, newest first (copies of the CloudTrail records)."""
        with self._lock:
            return [json.loads(e["json"]) for e in reversed(self._events)]

    def lookup(self, params: dict) -> dict:
        """Answer a ``LookupEvents`` request (parameters as sent by boto3)."""
        attributes = _attributes(params)
        start, end = _epoch(params.get("StartTime")), _epoch(params.get("EndTime"))
        if start is not None and end is not None and start > end:
            raise LookupError_("InvalidTimeRangeException", "Start time must be before end time")
        limit = params.get("MaxResults") or MAX_RESULTS
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            raise LookupError_("InvalidMaxResultsException",
                               f"MaxResults must be between 1 and {MAX_RESULTS}")
        binding = _binding(params)
        before = _token_position(params.get("NextToken"), binding)
        released_before = time.time() - self.delay_seconds
        with self._lock:
            snapshot = list(reversed(self._events))
        page, more = [], False
        for entry in snapshot:
            if before is not None and entry["seq"] >= before or entry["recorded_at"] > released_before:
                continue
            if start is not None and entry["time"] < start or end is not None and entry["time"] > end:
                continue
            if any(a.get("AttributeValue") not in _LOOKUP_KEYS[a["AttributeKey"]](entry)
                   for a in attributes):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(entry)
        answer: dict[str, Any] = {"Events": [_lookup_event(e) for e in page]}
        if more:
            token = json.dumps({"before": page[-1]["seq"], "for": binding}).encode()
            answer["NextToken"] = base64.urlsafe_b64encode(token).decode()
        return answer


def _attributes(params: dict) -> list[dict]:
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise LookupError_("InvalidLookupAttributesException",
                           "LookupAttributes can contain only one lookup attribute")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in _LOOKUP_KEYS:
            raise LookupError_("InvalidLookupAttributesException",
                               f"Invalid attribute key: {attribute.get('AttributeKey')}")
    return attributes


def _binding(params: dict) -> str:
    """What a NextToken is bound to: every parameter but the token and the page size."""
    bound = {k: str(v) if k in ("StartTime", "EndTime") else v for k, v in params.items()
             if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(bound, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token_position(token: Any, binding: str) -> int | None:
    if not token:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(str(token).encode()).decode())
        position, bound = int(document["before"]), document["for"]
    except (ValueError, KeyError, TypeError):
        raise LookupError_("InvalidNextTokenException", "Invalid NextToken") from None
    if bound != binding:
        raise LookupError_("InvalidNextTokenException",
                           "The NextToken was issued for other parameters of this request")
    return position


class LookupThrottle:
    """LookupEvents' rate limit: at most :data:`LOOKUPS_PER_SECOND` per account and region
    in any one-second window (a refused call does not count)."""

    def __init__(self, per_second: int = LOOKUPS_PER_SECOND, clock=time.monotonic):
        self.per_second, self._clock = per_second, clock
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str], list[float]] = {}

    def allow(self, account: str, region: str) -> bool:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._calls.get((account, region), []) if now - t < 1.0]
            if len(recent) >= self.per_second:
                self._calls[(account, region)] = recent
                return False
            recent.append(now)
            self._calls[(account, region)] = recent
            return True


class LookupError_(Exception):
    """A ``LookupEvents`` request AWS would reject (code, message)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _lookup_event(entry: dict) -> dict:
    item = {key: entry[key] for key in ("EventId", "EventName", "ReadOnly", "AccessKeyId", "EventSource")}
    item.update({"EventTime": entry["time"], "Resources": entry["resources"],
                 "CloudTrailEvent": entry["json"]})
    if entry["username"]:
        item["Username"] = entry["username"]
    return item


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
