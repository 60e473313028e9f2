"""Evidence of a function at work: invocations, its log events, CloudTrail records, trails.

Every function here takes its boto3 client as an argument and returns plain data; the
files it writes (:func:`write_evidence`) hold names, times, counts, ARNs, redacted
previews and fingerprints, never a value. Log messages are kept in memory only, for
the checks that search them; what reaches ``log_excerpt.json`` goes through
:func:`redact_line`.

CloudTrail delivers events to ``LookupEvents`` minutes after the call on AWS (the lab
answers at once), so :func:`lookup_secret_events` polls until the expected event is
there or ``wait_seconds`` have passed.

Examples
--------
>>> response_shape({"statusCode": 200, "body": '{"orders": 3, "partner": "accepted"}'})
{'body': {'orders': 'int', 'partner': 'str'}, 'statusCode': 'int'}
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

from .redaction import Fingerprinter, redact
from .session import aws_call

#: Log line the reference handler writes when it fetched the secret (it never holds the value).
#: No check requires it: the fetch is proven by CloudTrail; log lines are extra evidence only
#: (``retrieval_log_pattern``), so a function logging its own words passes alike.
RETRIEVAL_LOG_LINE = "secret retrieved from Secrets Manager"
#: Lines Lambda itself writes for each invocation; they carry no handler output.
PLATFORM_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START",
                     "INIT_REPORT", "EXTENSION", "TELEMETRY")
#: A deployment package larger than this is not downloaded (Lambda's own unzipped limit).
MAX_CODE_BYTES = 262_144_000
#: Columns of the CloudTrail table, in the order an auditor reads them.
CLOUDTRAIL_COLUMNS = ["eventTime", "eventName", "userIdentity type", "ARN", "session issuer",
                      "source IP", "request secret id", "userAgent", "errorCode"]


def utc(ts: _dt.datetime | None = None) -> _dt.datetime:
    """An aware UTC datetime (now by default)."""
    if ts is None:
        return _dt.datetime.now(_dt.timezone.utc)
    return ts if ts.tzinfo else ts.replace(tzinfo=_dt.timezone.utc)


def iso(ts: _dt.datetime) -> str:
    return utc(ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> _dt.datetime:
    """A datetime from an ISO string, epoch milliseconds or a datetime."""
    if isinstance(value, _dt.datetime):
        return utc(value)
    if isinstance(value, (int, float)):
        return _dt.datetime.fromtimestamp(value / 1000, _dt.timezone.utc)
    return utc(_dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))


# -- response shape -----------------------------------------------------------------------
def response_shape(payload: Any) -> Any:
    """The structure of a response without its values: key -> type name, nested.

    JSON text inside a string (an API Gateway style ``body``) is parsed and shaped too,
    so a changed body is caught; a list is shaped by its first element.

    Examples
    --------
    >>> response_shape([{"a": 1.5}, {"a": 2.0}])
    [{'a': 'float'}]
    >>> response_shape("plain text")
    'str'
    """
    if isinstance(payload, dict):
        return {str(k): response_shape(v) for k, v in sorted(payload.items(), key=lambda kv: str(kv[0]))}
    if isinstance(payload, list):
        return [response_shape(payload[0])] if payload else []
    if isinstance(payload, str):
        text = payload.strip()
        if text[:1] in ("{", "["):
            try:
                return response_shape(json.loads(text))
            except ValueError:
                pass
        return "str"
    if payload is None:
        return "null"
    return type(payload).__name__


def shape_differences(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where two shapes differ, as JSON paths (empty list: same shape)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            elif key not in expected:
                out.append(f"{path}.{key}: not in baseline")
            else:
                out.extend(shape_differences(expected[key], actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if expected and actual:
            return shape_differences(expected[0], actual[0], f"{path}[0]")
        return []
    if expected != actual:
        describe = lambda s: type(s).__name__ if isinstance(s, (dict, list)) else s  # noqa: E731
        return [f"{path}: {describe(expected)} in baseline, {describe(actual)} now"]
    return []


# -- invocations --------------------------------------------------------------------------
def invoke_function(lam, function_name: str, payload: Any, count: int,
                    progress: Callable[[int, int, str], None] | None = None,
                    qualifier: str = "") -> list[dict]:
    """Invoke ``function_name`` ``count`` times, one after the other (a warm environment).

    Returns
    -------
    list of dict
        Per invocation: index, start, end (ISO), duration_ms, status_code, function_error,
        executed_version, request_id, http_status (the response's ``statusCode`` when it
        has one), response_shape and response_bytes. The response itself is not kept: a
        function's output is not evidence and could hold anything.
    """
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    out = []
    for index in range(1, count + 1):
        start = utc()
        kwargs = {"FunctionName": function_name, "InvocationType": "RequestResponse", "Payload": body}
        if qualifier:
            kwargs["Qualifier"] = qualifier
        with aws_call("Invoke", function_name, "lambda:InvokeFunction"):
            response = lam.invoke(**kwargs)
        raw = response["Payload"].read()
        end = utc()
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", "replace")
        http_status = decoded.get("statusCode") if isinstance(decoded, dict) else None
        out.append({
            "index": index, "start": iso(start), "end": iso(end),
            "duration_ms": round((end - start).total_seconds() * 1000, 1),
            "status_code": response.get("StatusCode"),
            "function_error": response.get("FunctionError", ""),
            "executed_version": response.get("ExecutedVersion", ""),
            "request_id": response.get("ResponseMetadata", {}).get("RequestId", ""),
            "http_status": http_status if isinstance(http_status, int) else None,
            "response_shape": response_shape(decoded),
            "response_bytes": len(raw),
        })
        if progress:
            progress(index, count, function_name)
    return out


def invocation_failures(invocations: Iterable[dict]) -> list[str]:
    """Why invocations did not succeed (empty list: all succeeded)."""
    out = []
    for inv in invocations:
        if inv["status_code"] != 200:
            out.append(f"invocation {inv['index']}: Invoke status {inv['status_code']}")
        elif inv["function_error"]:
            out.append(f"invocation {inv['index']}: FunctionError {inv['function_error']}")
        elif inv["http_status"] is not None and inv["http_status"] >= 400:
            out.append(f"invocation {inv['index']}: the function answered statusCode {inv['http_status']}")
    return out


# -- CloudWatch Logs ----------------------------------------------------------------------
def fetch_log_events(logs, log_group: str, start: _dt.datetime, end: _dt.datetime,
                     limit: int = 10_000) -> tuple[list[dict], bool]:
    """Log events of ``log_group`` between ``start`` and ``end`` (in memory only).

    Returns
    -------
    (events, truncated)
        events: ``{"stream", "timestamp" (ms), "message"}`` in time order; truncated is
        True when ``limit`` stopped the read (the checks say so).
    """
    events: list[dict] = []
    kwargs = {"logGroupName": log_group, "startTime": int(utc(start).timestamp() * 1000),
              "endTime": int(utc(end).timestamp() * 1000)}
    truncated = False
    with aws_call("FilterLogEvents", log_group, "logs:FilterLogEvents"):
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for event in page.get("events", []):
                    events.append({"stream": event.get("logStreamName", ""),
                                   "timestamp": event.get("timestamp", 0),
                                   "message": event.get("message", "")})
                if len(events) >= limit:
                    truncated = True
                    break
        except logs.exceptions.ResourceNotFoundException:
            return [], False
    events.sort(key=lambda e: (e["timestamp"], e["stream"]))
    return events[:limit], truncated


def start_request_id(message: str) -> str | None:
    """The request id of a Lambda START line, text (``START RequestId: <id> ...``) or JSON log format
    (``{"type": "platform.start", "record": {"requestId": <id>}}``); ``None`` for any other line."""
    if message.startswith("START RequestId:"):
        words = message.split()
        return words[2] if len(words) > 2 else ""
    if message.lstrip().startswith("{") and "platform.start" in message:
        try:
            doc = json.loads(message)
        except ValueError:
            return None
        if isinstance(doc, dict) and doc.get("type") == "platform.start":
            return str((doc.get("record") or {}).get("requestId", ""))
    return None


def execution_environments(events: Iterable[dict], request_ids: Iterable[str] = ()) -> list[str]:
    """Log streams that served invocations: one stream per execution environment.

    With ``request_ids`` (the invocations' own), only the streams whose START line names
    one of them: an earlier environment that logs inside the time window (a baseline
    invocation seconds before) is not one that served these invocations. No START line,
    no environment: a stream is never counted on a guess.
    """
    wanted = {r for r in request_ids if r}
    streams = set()
    for event in events:
        request_id = start_request_id(event["message"])
        if request_id is not None and (not wanted or request_id in wanted):
            streams.add(event["stream"])
    return sorted(streams)


def secret_leaves(secret_string: str | None, secret_binary: bytes | None = None) -> list[str]:
    """The values inside a secret: each leaf of a JSON object, else the whole string."""
    if secret_binary is not None and secret_string is None:
        try:
            secret_string = bytes(secret_binary).decode("utf-8")
        except UnicodeDecodeError:
            return [base64.b64encode(bytes(secret_binary)).decode()]
    if not secret_string:
        return []
    try:
        doc = json.loads(secret_string)
    except ValueError:
        return [secret_string]
    leaves: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            leaves.append(node)
        elif node is not None and not isinstance(node, bool):
            leaves.append(str(node))
    walk(doc)
    if not isinstance(doc, (dict, list)):
        leaves = [secret_string]
    return leaves


def redact_line(message: str, values: Iterable[str], fingerprinter: Fingerprinter,
                limit: int = 300) -> str:
    """A log message with every known value replaced by its redacted preview and fingerprint."""
    text = message.rstrip("\n")
    for value in sorted(values, key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, f"[{redact(value)} {fingerprinter(value)}]")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- CloudTrail ---------------------------------------------------------------------------
def lookup_events(cloudtrail, event_name: str, start: _dt.datetime, end: _dt.datetime,
                  limit: int = 5000) -> list[dict]:
    """``LookupEvents`` by event name in a time range; each event's CloudTrailEvent parsed."""
    out = []
    with aws_call("LookupEvents", event_name, "cloudtrail:LookupEvents"):
        pages = cloudtrail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}],
            StartTime=utc(start), EndTime=utc(end))
        for page in pages:
            for event in page.get("Events", []):
                try:
                    detail = json.loads(event.get("CloudTrailEvent") or "{}")
                except ValueError:
                    detail = {}
                detail.setdefault("eventName", event.get("EventName", ""))
                detail.setdefault("eventTime", iso(event["EventTime"]) if event.get("EventTime") else "")
                detail.setdefault("eventId", event.get("EventId", ""))
                out.append(detail)
                if len(out) >= limit:
                    return out
    return out


def event_row(event: dict) -> dict:
    """One CloudTrail event as a flat row with :data:`CLOUDTRAIL_COLUMNS` (no values held)."""
    identity = event.get("userIdentity") or {}
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {})
    params = event.get("requestParameters") or {}
    return {
        "eventTime": str(event.get("eventTime", "")),
        "eventName": event.get("eventName", ""),
        "userIdentity type": identity.get("type", ""),
        "ARN": identity.get("arn", ""),
        "session issuer": issuer.get("arn", ""),
        "source IP": event.get("sourceIPAddress", ""),
        "request secret id": params.get("secretId", "") if isinstance(params, dict) else "",
        "userAgent": event.get("userAgent", ""),
        "errorCode": event.get("errorCode", ""),
        "invokedBy": identity.get("invokedBy", ""),
        "eventId": event.get("eventId", ""),
    }


def json_document(text: Any) -> dict | None:
    """A policy document from its JSON text (``None`` for no document); malformed text is a ValueError."""
    if not text:
        return None
    doc = json.loads(text) if isinstance(text, (str, bytes)) else text
    if not isinstance(doc, dict):
        raise ValueError("the policy document is not a JSON object")
    return doc


def secret_id_matches(secret_id: str, secret_arn: str, secret_name: str) -> bool:
    """Whether a request's ``secretId`` names the secret (ARN, partial ARN or name)."""
    if not secret_id:
        return False
    return secret_id in (secret_arn, secret_name) or (
        secret_id.startswith("arn:") and secret_arn.startswith(secret_id))


def from_lambda(row: dict) -> bool:
    """Whether a call was made from a Lambda execution environment."""
    return "exec-env/AWS_Lambda_" in row["userAgent"] or row["invokedBy"] == "lambda.amazonaws.com"


def lookup_secret_events(cloudtrail, secret_arn: str, secret_name: str, start: _dt.datetime,
                         end: _dt.datetime, wait_seconds: float = 0,
                         found: Callable[[list[dict]], bool] | None = None,
                         poll_seconds: float = 30, sleep: Callable[[float], None] = time.sleep,
                         clock: Callable[[], float] = time.monotonic) -> tuple[list[dict], dict]:
    """GetSecretValue events on one secret in a time range, polling for delivery.

    Parameters
    ----------
    found:
        Predicate on the rows so far; polling stops when it holds (default: any row).
    wait_seconds:
        How long to keep polling when ``found`` does not hold yet (0: look once).

    Returns
    -------
    (rows, polling)
        rows as :func:`event_row`, oldest first; polling is ``{"attempts", "waited_seconds",
        "satisfied"}`` for the evidence.
    """
    found = found or bool
    began = clock()
    attempts = 0
    while True:
        attempts += 1
        rows = [event_row(e) for e in lookup_events(cloudtrail, "GetSecretValue", start, end)]
        rows = [r for r in rows if secret_id_matches(r["request secret id"], secret_arn, secret_name)]
        rows.sort(key=lambda r: r["eventTime"])
        satisfied = bool(found(rows))
        waited = clock() - began
        if satisfied or waited >= wait_seconds:
            return rows, {"attempts": attempts, "waited_seconds": round(waited, 1), "satisfied": satisfied}
        sleep(min(poll_seconds, max(wait_seconds - waited, 0.1)))


def audit_trails(cloudtrail) -> list[dict]:
    """Every trail visible from this region (shadow trails included), with its status and selectors.

    A trail whose status or selectors cannot be read (an organization trail seen from a
    member account) gets an ``unreadable`` reason instead of hiding the others.
    """
    from .exceptions import AwsCallError

    with aws_call("DescribeTrails", "cloudtrail", "cloudtrail:DescribeTrails"):
        trails = cloudtrail.describe_trails(includeShadowTrails=True).get("trailList", [])
    rows = []
    for trail in trails:
        arn = trail.get("TrailARN") or trail.get("Name")
        row = {"name": trail.get("Name"), "arn": arn, "home_region": trail.get("HomeRegion", ""),
               "multi_region": bool(trail.get("IsMultiRegionTrail")),
               "organization_trail": bool(trail.get("IsOrganizationTrail")),
               "is_logging": False, "management_read_events": False, "data_event_selectors": []}
        try:
            with aws_call("GetTrailStatus", arn, "cloudtrail:GetTrailStatus"):
                row["is_logging"] = bool(cloudtrail.get_trail_status(Name=arn).get("IsLogging"))
            with aws_call("GetEventSelectors", arn, "cloudtrail:GetEventSelectors"):
                selectors = cloudtrail.get_event_selectors(TrailName=arn)
            row["management_read_events"], row["data_event_selectors"] = management_reads(selectors)
        except AwsCallError as exc:
            row["unreadable"] = str(exc)
        rows.append(row)
    return rows


def management_reads(selectors: dict) -> tuple[bool, list]:
    """Whether a trail's selectors include management read events, and its data-event selectors."""
    reads, data = False, []
    if not selectors.get("EventSelectors") and not selectors.get("AdvancedEventSelectors"):
        return True, []  # a trail without selectors logs all management events (AWS's default)
    for sel in selectors.get("EventSelectors") or []:
        if sel.get("IncludeManagementEvents", True) and sel.get("ReadWriteType", "All") in ("All", "ReadOnly"):
            reads = True
        for resource in sel.get("DataResources") or []:
            data.append({"type": resource.get("Type"), "values": resource.get("Values", [])})
    for sel in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors") or []}
        category = (fields.get("eventCategory") or {}).get("Equals") or []
        read_only = fields.get("readOnly")
        if "Management" in category and (read_only is None or "true" in (read_only.get("Equals") or ["true"])):
            reads = True
        if "Data" in category:
            data.append({"name": sel.get("Name", ""), "resources_type":
                         (fields.get("resources.type") or {}).get("Equals", [])})
    return reads, data


def cloudtrail_frame(rows: Iterable[dict]):
    """The CloudTrail rows as a pandas DataFrame with :data:`CLOUDTRAIL_COLUMNS`."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c, "") for c in CLOUDTRAIL_COLUMNS} for r in rows],
                        columns=CLOUDTRAIL_COLUMNS)


# -- code package -------------------------------------------------------------------------
def download_code(location: str, limit: int = MAX_CODE_BYTES, timeout: float = 60) -> bytes:
    """The deployment package at GetFunction's ``Code.Location`` (a pre-signed URL)."""
    with urllib.request.urlopen(location, timeout=timeout) as response:  # noqa: S310 - URL from AWS
        data = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"package larger than {limit} bytes")
    return data


# -- files ------------------------------------------------------------------------------------
def write_evidence(run_dir: str | Path, name: str, doc: Any) -> Path:
    """Write one evidence document as JSON in the run folder and return its path."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path
