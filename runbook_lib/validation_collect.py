"""Validation's collection: every AWS call validation makes, into one :class:`ValidationEvidence`.

:func:`collect` runs the sources in order (the function and its code, the secret and its
key, CloudWatch Logs, CloudTrail, the secret's values against the logs, then who can read
the secret, the trails, the edge association and the residue: :mod:`runbook_lib.validation_access`).
A source that fails with a :class:`~runbook_lib.exceptions.RunbookError` becomes one line in
``evidence.errors``; the others still run, and the checks say what is missing.

The evidence files (``cloudtrail_events.json``, ``log_excerpt.json``, ``iam_analysis.json``)
are written here; none holds a value: the secret's values are read once, compared with the
log messages in memory, and dropped (:func:`scan_log_values`).

Examples
--------
>>> collection = Collection(target, ledger, scanner, fingerprinter)      # doctest: +SKIP
>>> ev = new_evidence(collection, "orders-api", invocations, window_start, window_end)  # doctest: +SKIP
>>> collect(collection, ev); ev.errors                                   # doctest: +SKIP
{}
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import evidence
from .evidence import iso, parse_time, utc
from .exceptions import AwsCallError, RunbookError
from .records import FunctionCode, FunctionConfig
from .redaction import Fingerprinter, redact
from .session import aws_call
from .validation_evidence import WINDOW_SLACK, SecretValues, ValidationEvidence, Window, read_start

#: Values shorter than this are not searched in logs (they would match by chance).
MIN_VALUE_LENGTH = 6
EXCERPT_LINES = 200
#: Logs are polled this long at most for the invocations' END lines.
MAX_LOG_WAIT_SECONDS = 120
WITHHELD = "[withheld: the scanner flagged this line]"


@dataclass
class Collection:
    """What collection needs: the target's clients, the ledger, the scanner, and how long to wait."""

    target: object
    ledger: object
    scanner: object
    fingerprinter: Fingerprinter
    run_dir: Path = Path(".")
    trail_wait_seconds: float = 0
    poll_seconds: float = 30
    live_probe: bool | None = None
    policy_cache: dict = field(default_factory=dict)
    code_location: str = field(default="", repr=False)  # pre-signed: it holds a session token

    def client(self, service: str):
        return self.target.client(service)

    def write(self, ev: ValidationEvidence, name: str, doc: dict) -> str:
        evidence.write_evidence(self.run_dir, name, {"target": ev.target, "function_name": ev.function_name,
                                                     **doc})
        return name


def deployed_at(ledger, function_name: str) -> _dt.datetime | None:
    """When the implementation last changed the function's code or configuration (the ledger's records)."""
    times = []
    for kind in (FunctionCode, FunctionConfig):
        record = ledger.latest(kind, function_name)
        if record is not None:
            try:
                times.append(parse_time(record.at))
            except ValueError:
                continue
    return max(times) if times else None


def new_evidence(collection: Collection, function_name: str, invocations: list, start: _dt.datetime,
                 end: _dt.datetime, retrieval_log_pattern: str = "", cache_ttl_seconds: float = -1
                 ) -> ValidationEvidence:
    """The evidence object of one validation, with what the ledger (not AWS) says."""
    ledger = collection.ledger
    window = Window(start, end, read_start(start, deployed_at(ledger, function_name)))
    snapshot = ledger.snapshot(function_name)
    secret = ledger.secret()
    return ValidationEvidence(
        target=collection.target.name, function_name=function_name, region=collection.target.region,
        window=window, invocations=list(invocations), retrieval_log_pattern=retrieval_log_pattern,
        cache_ttl_seconds=cache_ttl_seconds, baseline=dict(ledger.baseline),
        moved_variables=list(snapshot.moved_variables) if snapshot else [],
        snapshot_code_sha256=snapshot.code_sha256 if snapshot else "",
        ledger_kms_key=secret.kms_key if secret else "")


def run_sources(ev: ValidationEvidence, sources) -> None:
    """Run ``(name, step)`` pairs; a step's RunbookError is recorded as ``ev.errors[name]``."""
    for name, step in sources:
        try:
            step()
        except RunbookError as exc:
            ev.errors[name] = str(exc)


def collect(collection: Collection, ev: ValidationEvidence) -> ValidationEvidence:
    """Every source, in order; then the evidence files."""
    from . import validation_access as access

    c = collection
    run_sources(ev, (("function", lambda: read_function(c, ev)), ("code", lambda: scan_code(c, ev)),
                     ("secret", lambda: read_secret(c, ev)), ("secret_policy", lambda: read_secret_policy(c, ev)),
                     ("key", lambda: read_key(c, ev)),
                     ("logs", lambda: read_logs(c, ev)), ("cloudtrail", lambda: read_cloudtrail(c, ev)),
                     ("log_values", lambda: scan_log_values(c, ev))))
    access.collect_access(c, ev)
    write_files(c, ev)
    return ev


# -- the function and its code ------------------------------------------------------------------
def read_function(c: Collection, ev: ValidationEvidence) -> None:
    """GetFunction: configuration (the environment scanned at once) and the code's location."""
    with aws_call("GetFunction", ev.function_name, "lambda:GetFunction"):
        answer = c.client("lambda").get_function(FunctionName=ev.function_name)
    ev.config = answer.get("Configuration") or {}
    c.code_location = (answer.get("Code") or {}).get("Location", "")
    ev.environment_findings = [finding_row(f) for f in c.scanner.scan_environment(ev.environment)]


def finding_row(finding) -> dict:
    doc = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
    return {k: doc.get(k) for k in ("rule", "title", "redacted", "fingerprint", "path", "line", "variable")}


def scan_code(c: Collection, ev: ValidationEvidence) -> None:
    """Download and scan the deployed package and each layer (in memory); a layer error stays with the layer."""
    if "function" in ev.errors:
        raise RunbookError("the function's configuration could not be read (see function)")
    if ev.config.get("PackageType", "Zip") == "Image":
        ev.code = None
        return
    if not c.code_location:
        raise RunbookError(f"GetFunction on {ev.function_name} returned no Code.Location for its zip package")
    ev.code = scan_package(c, c.code_location, ev.function_name)
    ev.layers = []
    for layer in ev.config.get("Layers") or []:
        arn = layer.get("Arn", "")
        try:
            name, number = arn.rsplit(":", 1)
            with aws_call("GetLayerVersion", arn, "lambda:GetLayerVersion"):
                content = c.client("lambda").get_layer_version(LayerName=name, VersionNumber=int(number))
            location = (content.get("Content") or {}).get("Location", "")
            if not location:
                raise RunbookError(f"GetLayerVersion on {arn} returned no Content.Location")
            ev.layers.append({"layer": arn, **scan_package(c, location, arn)})
        except (RunbookError, ValueError) as exc:
            ev.layers.append({"layer": arn, "error": str(exc)})


def scan_package(c: Collection, location: str, label: str) -> dict:
    try:
        data = evidence.download_code(location)
    except (OSError, ValueError) as exc:  # never the URL: it is pre-signed
        raise AwsCallError("GetFunction (code download)", label, type(exc).__name__,
                           str(exc).split("http")[0][:200], permission="lambda:GetFunction") from None
    report = c.scanner.scan_zip(data, label=label)
    return {"files_scanned": report.files_scanned, "bytes_scanned": report.bytes_scanned,
            "skipped": list(report.skipped or []), "findings": [finding_row(f) for f in report.findings],
            "third_party": [{**finding_row(t.finding), **t.package.to_dict()} for t in report.third_party]}


# -- the secret and its key ------------------------------------------------------------------------
def secret_id(c: Collection, ev: ValidationEvidence) -> str:
    record = c.ledger.secret()
    return record.resource if record is not None else ev.environment.get("SECRET_ID", "")


def read_secret(c: Collection, ev: ValidationEvidence) -> None:
    """DescribeSecret of the ledger's secret (else the function's ``SECRET_ID``); no value is read."""
    wanted = secret_id(c, ev)
    if not wanted:
        return
    sm = c.client("secretsmanager")
    with aws_call("DescribeSecret", wanted, "secretsmanager:DescribeSecret"):
        described = sm.describe_secret(SecretId=wanted)
    described.pop("ResponseMetadata", None)
    ev.secret = described


def read_secret_policy(c: Collection, ev: ValidationEvidence) -> None:
    """The secret's resource policy (``None``: it has none): it may grant reads too."""
    if "secret" in ev.errors:
        raise RunbookError("the secret could not be read (see secret)")
    if not ev.secret:
        return
    with aws_call("GetResourcePolicy", ev.secret_arn, "secretsmanager:GetResourcePolicy"):
        policy = c.client("secretsmanager").get_resource_policy(SecretId=ev.secret_arn).get("ResourcePolicy")
    try:
        ev.secret_policy = evidence.json_document(policy)
    except ValueError as exc:
        raise RunbookError(f"the resource policy of {ev.secret_arn} is not a JSON object "
                           f"({type(exc).__name__})") from None


def read_key(c: Collection, ev: ValidationEvidence) -> None:
    """The secret's KMS key: AWS managed (default) or customer managed, its state and rotation."""
    if "secret" in ev.errors:
        raise RunbookError("the secret could not be read (see secret)")
    key_id = ev.secret.get("KmsKeyId", "")
    ev.key = {"kms_key_id": key_id or "alias/aws/secretsmanager (default)", "key_manager": "AWS",
              "key_arn": "", "key_state": "", "key_rotation_enabled": None}
    if not ev.secret or not key_id or key_id == "alias/aws/secretsmanager":
        return
    kms = c.client("kms")
    with aws_call("DescribeKey", key_id, "kms:DescribeKey"):
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    ev.key.update(key_arn=meta["Arn"], key_manager=meta.get("KeyManager", "CUSTOMER"),
                  key_state=meta.get("KeyState", ""))
    if ev.key["key_manager"] == "CUSTOMER":
        with aws_call("GetKeyRotationStatus", key_id, "kms:GetKeyRotationStatus"):
            ev.key["key_rotation_enabled"] = kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]


# -- CloudWatch Logs and CloudTrail ---------------------------------------------------------------------
def read_logs(c: Collection, ev: ValidationEvidence, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Log events since the deployment, polled until every invocation's END line is there."""
    group = f"/aws/lambda/{ev.function_name}"
    wait = min(c.trail_wait_seconds, MAX_LOG_WAIT_SECONDS)
    began = clock()
    while True:
        events, truncated = evidence.fetch_log_events(c.client("logs"), group, ev.window.read_from - WINDOW_SLACK,
                                                      utc() + WINDOW_SLACK)
        ends = sum(1 for e in events if e["message"].startswith("END RequestId:") and ev.window.contains(e["timestamp"]))
        if ends >= len(ev.invocations) or clock() - began >= wait:
            break
        sleep(min(5, c.poll_seconds))
    ev.log_events, ev.logs_truncated = events, truncated


def read_cloudtrail(c: Collection, ev: ValidationEvidence) -> None:
    """GetSecretValue events on the secret since the deployment, polled for the function's own."""
    if "secret" in ev.errors:
        raise RunbookError("the secret could not be read (see secret)")
    if not ev.secret:
        return
    ev.trail_rows, ev.trail_polling = evidence.lookup_secret_events(
        c.client("cloudtrail"), ev.secret_arn, ev.secret.get("Name", ""), ev.window.read_from - WINDOW_SLACK,
        ev.window.end + _dt.timedelta(minutes=1), wait_seconds=c.trail_wait_seconds,
        found=lambda rows: any(ev.attributed(r) for r in rows), poll_seconds=c.poll_seconds)


# -- the secret's values against the logs ---------------------------------------------------------------
def scan_log_values(c: Collection, ev: ValidationEvidence) -> None:
    """Search the log messages for the secret's values (in memory) and with the scanner; redact the excerpt.

    The operator reads the secret once, after the CloudTrail lookup (so it does not muddy the
    table); the values are dropped before this returns.
    """
    values = SecretValues()
    try:
        if ev.secret:
            with aws_call("GetSecretValue", ev.secret_arn, "secretsmanager:GetSecretValue"):
                answer = c.client("secretsmanager").get_secret_value(SecretId=ev.secret_arn)
            values = SecretValues(evidence.secret_leaves(answer.get("SecretString"), answer.get("SecretBinary")))
            del answer
        findings = scanner_findings(c, ev)
        ev.value_scan = value_hits(ev, values, c.fingerprinter)
        ev.value_scan["scanner_findings"] = findings
    finally:
        ev.excerpt = excerpt_lines(ev, values, c.fingerprinter)
        values.items.clear()


def value_hits(ev: ValidationEvidence, values: SecretValues, fingerprinter: Fingerprinter) -> dict:
    searched = [v for v in dict.fromkeys(values.items) if len(v) >= MIN_VALUE_LENGTH]
    hits: dict[str, dict] = {}
    for event in ev.log_events:
        for value in searched:
            if value in event["message"]:
                hit = hits.setdefault(fingerprinter(value), {"preview": redact(value), "events": 0, "streams": set()})
                hit["events"] += 1
                hit["streams"].add(event["stream"])
    return {"values_in_secret": len(values.items), "values_searched": len(searched),
            "values_too_short_to_search": len(values.items) - len(searched),
            "secret_fingerprints": sorted({fingerprinter(v) for v in values.items}),
            "hits": [{"fingerprint": fp, "preview": h["preview"], "events": h["events"],
                      "streams": sorted(h["streams"])} for fp, h in sorted(hits.items())]}


def scanner_findings(c: Collection, ev: ValidationEvidence) -> list[dict]:
    by_stream: dict[str, list[str]] = {}
    for event in ev.log_events:
        by_stream.setdefault(event["stream"], []).append(event["message"].rstrip("\n"))
    return [{k: v for k, v in finding.to_dict().items()
             if k in ("rule", "title", "redacted", "fingerprint", "path", "line")}
            for stream, lines in by_stream.items() for finding in c.scanner.scan_text("\n".join(lines), path=stream)]


def excerpt_lines(ev: ValidationEvidence, values: SecretValues, fingerprinter: Fingerprinter) -> list[dict]:
    """The log lines as they may be shown: values replaced by preview + fingerprint, flagged lines withheld."""
    flagged = {(f["path"], f.get("line")) for f in ev.value_scan.get("scanner_findings", [])}
    lines, line_no = [], {}
    for event in ev.log_events:
        stream = event["stream"]
        first = line_no.get(stream, 0) + 1
        line_no[stream] = first + event["message"].rstrip("\n").count("\n")
        if any((stream, n) in flagged for n in range(first, line_no[stream] + 1)):
            message = WITHHELD
        else:
            message = evidence.redact_line(event["message"], values.items, fingerprinter)
        lines.append({"time": iso(parse_time(event["timestamp"])), "stream": stream, "message": message})
    return lines


# -- evidence files -----------------------------------------------------------------------------------------
def write_files(c: Collection, ev: ValidationEvidence) -> None:
    window = ev.window.to_dict()
    if ev.secret:
        rows = [{**r, "attributed": ev.attributed(r), "in_invocation_window": ev.window.contains(r["eventTime"])}
                for r in ev.trail_rows if r.get("eventTime")]
        c.write(ev, "cloudtrail_events.json", {"window": window, "secret_arn": ev.secret_arn,
                                               "expected_identity": ev.expected_session_arn,
                                               "polling": ev.trail_polling, "events": rows})
    c.write(ev, "log_excerpt.json", {
        "window": window, "log_group": f"/aws/lambda/{ev.function_name}", "events": len(ev.log_events),
        "truncated": ev.logs_truncated, "streams": sorted({e["stream"] for e in ev.log_events}),
        "retrieval_log_pattern": ev.retrieval_log_pattern, "value_scan": ev.value_scan,
        "lines": ev.excerpt[-EXCERPT_LINES:]})
