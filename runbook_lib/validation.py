"""Functional validation: prove the migrated function works, who fetched its secret, that nothing leaked.

:class:`Validation` is the notebook's one entry point. It invokes the function N times
on a warm environment (:meth:`Validation.invoke`), reads what that left behind: log
events, CloudTrail ``GetSecretValue`` records, the role's policies, the secret's
encryption, the trail (:meth:`Validation.collect`), then judges each check
(:meth:`Validation.run_checks`). Evidence files land in the run folder:
``invocations.json``, ``cloudtrail_events.json``, ``log_excerpt.json`` (redacted),
``iam_analysis.json`` and the PNG chart; none holds a secret value.

The same code runs against the lab and AWS. Where AWS itself differs it is a
parameter, not a branch: CloudTrail's delivery delay (``trail_wait_seconds``: -1 means
0 on the lab, 900 on AWS) and whether the role can be assumed for a live probe (the
lab's administrator may assume any role; on AWS only when the role's trust allows it).

Examples
--------
>>> v = Validation(target, ledger, run_dir, "orders-api", invocations=5)   # doctest: +SKIP
>>> v.invoke(); v.collect()                                                 # doctest: +SKIP
>>> checks = v.run_checks()                                                 # doctest: +SKIP
>>> print(v.summary())                                                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import evidence, iam_analysis
from .checks import FAIL, PASS, SKIP, WARN, Check
from .evidence import RETRIEVAL_LOG_LINE, iso, parse_time, response_shape, utc  # noqa: F401 - re-export
from .exceptions import AwsCallError, InputError, RunbookError
from .redaction import Fingerprinter, redact
from .session import aws_call

NOTEBOOK = "03_functional_validation"
PHASE = "validation"
#: Default CloudTrail wait per target: the lab records events at once, AWS delivers them late.
DEFAULT_TRAIL_WAIT = {"lab": 0, "aws": 900}
#: Clock and CloudTrail's one-second event times: a call is "in the window" within this slack.
WINDOW_SLACK = _dt.timedelta(seconds=2)
#: How far before the invocations the logs and CloudTrail are read when the new code was
#: deployed earlier (an environment warmed up by the implementation fetched the secret then).
MAX_LOOKBACK = _dt.timedelta(hours=1)
#: Values shorter than this are not searched in logs (they would match by chance).
MIN_VALUE_LENGTH = 6
EXCERPT_LINES = 200
#: Check ids in the order they run.
CHECK_IDS = ("function-invokes", "functional-parity", "no-secrets-in-environment",
             "no-secrets-in-code", "secret-retrieved-at-runtime", "no-secret-in-logs",
             "cloudtrail-attribution", "secret-cached", "least-privilege", "secret-encrypted",
             "audit-logging", "edge-association")


class _Values:
    """The secret's leaf values, in memory only; nothing about it prints them."""

    __slots__ = ("items",)

    def __init__(self, items: list[str]):
        self.items = items

    def __repr__(self) -> str:
        return f"<{len(self.items)} secret values hidden>"


@dataclass
class Summary:
    target: str
    function_name: str
    window_start: str
    window_end: str
    counts: dict

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        label = ("embedded LAB - simulated account, NOT production evidence" if self.target == "lab"
                 else "AWS account")
        c = self.counts
        return (f"Functional validation of {self.function_name} on target {self.target} ({label})\n"
                f"invocation window: {self.window_start} .. {self.window_end}\n"
                f"checks: {c.get(PASS, 0)} passed, {c.get(FAIL, 0)} failed, {c.get(WARN, 0)} warned, "
                f"{c.get(SKIP, 0)} skipped")


class Validation:
    """The validation of one migrated function: invoke, collect, judge.

    Parameters
    ----------
    target:
        :class:`~runbook_lib.session.Target` (lab or aws).
    ledger:
        The run's :class:`~runbook_lib.ledger.Ledger` (what the implementation did).
    run_dir:
        Run folder for the evidence files.
    function_name:
        The migrated function; empty means the ledger's ``function_name``.
    invocations:
        Invocations on a warm execution environment.
    payload:
        Event sent to the function (JSON text or a dict).
    trail_wait_seconds:
        How long to poll CloudTrail for the function's GetSecretValue; -1: target default.
    scanner:
        A :class:`runbook_lib.scanning.Scanner`; default one built with the run's fingerprinter.
    fingerprinter:
        Default: the run's (``RUNBOOK_FINGERPRINT_KEY``).
    live_probe:
        Assume the role and read the secret and a decoy as it; ``None``: when the target
        allows it (the lab; on AWS when the role trusts an AWS principal).
    """

    def __init__(self, target, ledger, run_dir, function_name: str = "", invocations: int = 5,
                 payload: Any = "{}", trail_wait_seconds: float = -1, scanner=None,
                 fingerprinter: Fingerprinter | None = None, live_probe: bool | None = None,
                 poll_seconds: float = 30, progress: Callable | None = None):
        self.target = target
        self.ledger = ledger
        self.run_dir = Path(run_dir)
        self.function_name = function_name or ledger.context.get("function_name", "")
        if not self.function_name:
            raise InputError("function_name", "no function given and none in the run's ledger: "
                             "pass the migrated function's name")
        if int(invocations) < 1:
            raise InputError("invocations", "must be at least 1")
        self.count = int(invocations)
        if isinstance(payload, (str, bytes)):
            try:
                payload = json.loads(payload or "{}")
            except ValueError as exc:
                raise InputError("payload", f"not valid JSON ({exc.__class__.__name__})") from None
        self.payload = payload
        wait = float(trail_wait_seconds)
        self.trail_wait_seconds = DEFAULT_TRAIL_WAIT.get(target.name, 900) if wait < 0 else wait
        self.fingerprinter = fingerprinter or Fingerprinter()
        self._scanner = scanner
        self.live_probe = live_probe
        self.poll_seconds = poll_seconds
        self.progress = progress
        self.invocations: list[dict] = []
        self.window_start: _dt.datetime | None = None
        self.window_end: _dt.datetime | None = None
        self.collected = False
        self.function: dict = {}
        self.secret: dict = {}
        self.role_name = ""
        self.log_events: list[dict] = []
        self.logs_truncated = False
        self.trail_rows: list[dict] = []
        self.trail_polling: dict = {}
        self.analysis: iam_analysis.RoleAnalysis | None = None
        self.value_scan: dict = {}
        self.collect_errors: dict = {}
        self.checks: list[Check] = []

    # -- helpers ---------------------------------------------------------------------------
    @property
    def scanner(self):
        if self._scanner is None:
            from .scanning import Scanner
            self._scanner = Scanner(fingerprinter=self.fingerprinter)
        return self._scanner

    def _client(self, service: str):
        return self.target.client(service)

    @property
    def config(self) -> dict:
        return self.function.get("Configuration", {})

    @property
    def account(self) -> str:
        arn = self.config.get("FunctionArn", "")
        return arn.split(":")[4] if arn.count(":") >= 5 else self.ledger.context.get("account", "")

    @property
    def partition(self) -> str:
        arn = self.config.get("FunctionArn", "arn:aws:")
        return arn.split(":")[1] or "aws"

    @property
    def since(self) -> _dt.datetime:
        """Start of the log and CloudTrail reads: the new code's deployment, or the window start."""
        start = self.window_start or utc()
        entry = self.ledger.find("function_code")
        if entry is not None:
            try:
                deployed = parse_time(entry.at)
            except ValueError:
                return start
            if start - MAX_LOOKBACK <= deployed < start:
                return deployed
            if deployed < start - MAX_LOOKBACK:
                return start - MAX_LOOKBACK
        return start

    def _in_window(self, when: str | _dt.datetime) -> bool:
        moment = parse_time(when)
        return self.window_start - WINDOW_SLACK <= moment <= self.window_end + WINDOW_SLACK

    def _expected_session_arn(self) -> str:
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.function_name}"

    def _attributed(self, row: dict) -> bool:
        return (row["ARN"] == self._expected_session_arn() and evidence.from_lambda(row)
                and not row["errorCode"])

    def _write(self, name: str, doc: dict) -> str:
        doc = {"target": self.target.name, "function_name": self.function_name, **doc}
        evidence.write_evidence(self.run_dir, name, doc)
        return name

    def _window(self) -> dict:
        return {"start": iso(self.window_start) if self.window_start else "",
                "end": iso(self.window_end) if self.window_end else "",
                "read_from": iso(self.since) if self.window_start else ""}

    # -- 1. invoke ---------------------------------------------------------------------------
    def invoke(self):
        """Invoke the function N times, record the window, write ``invocations.json``.

        Returns
        -------
        pandas.DataFrame
            One row per invocation (no response values: their shape only).
        """
        import pandas as pd

        self._read_function()
        self.window_start = utc()
        self.invocations = evidence.invoke_function(self._client("lambda"), self.function_name,
                                                    self.payload, self.count, progress=self.progress)
        self.window_end = utc()
        self._write("invocations.json", {"window": self._window(), "count": self.count,
                                         "payload_shape": response_shape(self.payload),
                                         "invocations": self.invocations})
        columns = ["index", "start", "duration_ms", "status_code", "function_error", "http_status",
                   "executed_version"]
        return pd.DataFrame([{c: i[c] for c in columns} for i in self.invocations], columns=columns)

    def _read_function(self) -> None:
        with aws_call("GetFunction", self.function_name, "lambda:GetFunction"):
            self.function = self._client("lambda").get_function(FunctionName=self.function_name)
        self.function.pop("ResponseMetadata", None)
        self.role_name = self.config.get("Role", "").rsplit("/", 1)[-1]

    # -- 2. collect --------------------------------------------------------------------------
    def collect(self) -> dict:
        """Read logs, CloudTrail, the secret and the role; write the evidence files.

        Returns
        -------
        dict
            What was read (counts) and what could not be read, per source.
        """
        if not self.invocations:
            raise InputError("invocations", "call invoke() before collect()")
        self._read_function()
        steps = (("secret", self._collect_secret), ("logs", self._collect_logs),
                 ("cloudtrail", self._collect_cloudtrail), ("log_values", self._scan_log_values),
                 ("iam", self._collect_iam))
        self.collect_errors = {}
        for name, step in steps:
            try:
                step()
            except RunbookError as exc:
                self.collect_errors[name] = str(exc)
        self._write_log_excerpt()
        self.collected = True
        return {"log_events": len(self.log_events), "cloudtrail_events": len(self.trail_rows),
                "role": self.role_name, "secret": self.secret.get("ARN", ""),
                "errors": self.collect_errors}

    def _secret_arn(self) -> str:
        entry = self.ledger.find("secret")
        if entry is not None:
            return entry.resource
        env = (self.config.get("Environment") or {}).get("Variables") or {}
        return env.get("SECRET_ID", "")

    def _collect_secret(self) -> None:
        secret_id = self._secret_arn()
        self.secret = {}
        if not secret_id:
            return
        with aws_call("DescribeSecret", secret_id, "secretsmanager:DescribeSecret"):
            described = self._client("secretsmanager").describe_secret(SecretId=secret_id)
        described.pop("ResponseMetadata", None)
        self.secret = described

    def _collect_logs(self) -> None:
        import time

        group = f"/aws/lambda/{self.function_name}"
        log_wait = min(self.trail_wait_seconds, 120)
        began = time.monotonic()
        while True:
            events, truncated = evidence.fetch_log_events(
                self._client("logs"), group, self.since - WINDOW_SLACK, utc() + WINDOW_SLACK)
            ends = sum(1 for e in events if e["message"].startswith("END RequestId:")
                       and self._in_window(parse_time(e["timestamp"])))
            if ends >= self.count or time.monotonic() - began >= log_wait:
                break
            time.sleep(min(5, self.poll_seconds))
        self.log_events, self.logs_truncated = events, truncated

    def _collect_cloudtrail(self) -> None:
        if not self.secret:
            return
        self.trail_rows, self.trail_polling = evidence.lookup_secret_events(
            self._client("cloudtrail"), self.secret["ARN"], self.secret.get("Name", ""),
            self.since - WINDOW_SLACK, self.window_end + _dt.timedelta(minutes=1),
            wait_seconds=self.trail_wait_seconds,
            found=lambda rows: any(self._attributed(r) for r in rows), poll_seconds=self.poll_seconds)
        rows = [{**r, "attributed": self._attributed(r), "in_invocation_window": self._in_window(r["eventTime"])}
                for r in self.trail_rows if r.get("eventTime")]
        self._write("cloudtrail_events.json", {
            "window": self._window(), "secret_arn": self.secret["ARN"],
            "expected_identity": self._expected_session_arn(), "polling": self.trail_polling,
            "events": rows})

    def _scan_log_values(self) -> None:
        """Search the log messages for the secret's values (in memory) and for scanner findings."""
        values = _Values([])
        if self.secret:
            with aws_call("GetSecretValue", self.secret["ARN"], "secretsmanager:GetSecretValue"):
                answer = self._client("secretsmanager").get_secret_value(SecretId=self.secret["ARN"])
            values = _Values(evidence.secret_leaves(answer.get("SecretString"), answer.get("SecretBinary")))
            del answer
        searched = [v for v in dict.fromkeys(values.items) if len(v) >= MIN_VALUE_LENGTH]
        hits: dict[str, dict] = {}
        for event in self.log_events:
            for value in searched:
                if value in event["message"]:
                    hit = hits.setdefault(self.fingerprinter(value), {"preview": redact(value), "events": 0,
                                                                      "streams": set()})
                    hit["events"] += 1
                    hit["streams"].add(event["stream"])
        findings = []
        by_stream: dict[str, list[str]] = {}
        for event in self.log_events:
            by_stream.setdefault(event["stream"], []).append(event["message"].rstrip("\n"))
        for stream, lines in by_stream.items():
            for finding in self.scanner.scan_text("\n".join(lines), path=f"{stream}"):
                findings.append({k: v for k, v in finding.to_dict().items()
                                 if k in ("rule", "title", "redacted", "fingerprint", "path", "line")})
        self._values = values
        self.value_scan = {
            "values_in_secret": len(values.items), "values_searched": len(searched),
            "values_too_short_to_search": len(values.items) - len(searched),
            "secret_fingerprints": sorted({self.fingerprinter(v) for v in values.items}),
            "hits": [{"fingerprint": fp, "preview": h["preview"], "events": h["events"],
                      "streams": sorted(h["streams"])} for fp, h in sorted(hits.items())],
            "scanner_findings": findings,
        }

    def _write_log_excerpt(self) -> None:
        values = getattr(self, "_values", _Values([])).items
        flagged = {(f["path"], f.get("line")) for f in self.value_scan.get("scanner_findings", [])}
        lines, line_no = [], {}
        for event in self.log_events:
            stream = event["stream"]
            first = line_no.get(stream, 0) + 1
            line_no[stream] = first + event["message"].rstrip("\n").count("\n")
            if any((stream, n) in flagged for n in range(first, line_no[stream] + 1)):
                message = "[withheld: the scanner flagged this line]"
            else:
                message = evidence.redact_line(event["message"], values, self.fingerprinter)
            lines.append({"time": iso(parse_time(event["timestamp"])), "stream": stream, "message": message})
        self._excerpt = lines
        self._write("log_excerpt.json", {
            "window": self._window(), "log_group": f"/aws/lambda/{self.function_name}",
            "events": len(self.log_events), "truncated": self.logs_truncated,
            "streams": sorted({e["stream"] for e in self.log_events}),
            "value_scan": self.value_scan, "lines": lines[-EXCERPT_LINES:]})
        # The values are needed only for this pass: drop them.
        self._values = _Values([])

    def _collect_iam(self) -> None:
        if not self.role_name:
            return
        self.analysis = iam_analysis.analyse_role(self._client("iam"), self.role_name)

    # -- tables and chart ---------------------------------------------------------------------
    def log_table(self):
        """The redacted log lines of the run as a DataFrame (time, stream, message)."""
        import pandas as pd

        rows = getattr(self, "_excerpt", [])[-EXCERPT_LINES:]
        return pd.DataFrame(rows, columns=["time", "stream", "message"])

    def cloudtrail_table(self):
        """GetSecretValue events on the secret as a DataFrame (who, from where, when)."""
        frame = evidence.cloudtrail_frame(self.trail_rows)
        frame["by the function"] = [self._attributed(r) for r in self.trail_rows]
        return frame

    def cache_chart(self, path: str | Path | None = None):
        """PNG of invocations vs the function's GetSecretValue calls (written to the run folder)."""
        path = Path(path) if path else self.run_dir / "secret_cache.png"
        rows = [r for r in self.trail_rows if self._attributed(r) and self._in_window(r["eventTime"])]
        chart = evidence.cache_chart(self.invocations, rows, path,
                                     title=f"{self.function_name}: invocations vs GetSecretValue "
                                           f"({self.target.name})")
        self.chart_path = chart.path
        return chart

    # -- 3. checks ------------------------------------------------------------------------------
    def _check(self, id: str, title: str, status: str, reason: str = "", evidence: dict | None = None,
               controls=(), evidence_file: str = "") -> Check:
        return Check(id=id, title=title, phase=PHASE, status=status, reason=reason,
                     evidence={"target": self.target.name, **(evidence or {})}, controls=list(controls),
                     notebook=NOTEBOOK, evidence_file=evidence_file)

    def run_checks(self) -> list[Check]:
        """Every check, in :data:`CHECK_IDS` order; invokes and collects first if not done."""
        if not self.invocations:
            self.invoke()
        if not self.collected:
            self.collect()
        self.checks = []
        for check_id in CHECK_IDS:
            method = getattr(self, "check_" + check_id.replace("-", "_"))
            try:
                check = method()
            except RunbookError as exc:
                check = self._check(check_id, TITLES[check_id], FAIL,
                                    f"could not be evaluated: {exc}", controls=CONTROL_MAP[check_id])
            self.checks.append(check)
        return self.checks

    def _unavailable(self, check_id: str, source: str, what: str) -> Check | None:
        """A FAIL when the data a check rests on could not be read during collect()."""
        if source in self.collect_errors:
            return self._check(check_id, TITLES[check_id], FAIL,
                               f"{what} could not be read: {self.collect_errors[source]}",
                               controls=CONTROL_MAP[check_id])
        return None

    def check_function_invokes(self) -> Check:
        cid = "function-invokes"
        failures = evidence.invocation_failures(self.invocations)
        ev = {"invocations": len(self.invocations), "window": self._window(),
              "status_codes": sorted({i["status_code"] for i in self.invocations}),
              "function_errors": sum(1 for i in self.invocations if i["function_error"]),
              "max_duration_ms": max(i["duration_ms"] for i in self.invocations)}
        if failures:
            return self._check(cid, TITLES[cid], FAIL, "; ".join(failures[:5]), ev, CONTROL_MAP[cid],
                               "invocations.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "invocations.json")

    def check_functional_parity(self) -> Check:
        cid = "functional-parity"
        baseline = self.ledger.baseline.get("response_shape")
        if baseline is None:
            return self._check(cid, TITLES[cid], SKIP, "the test plan recorded no baseline response shape "
                               "(run it with function_name and invoke_baseline=True)",
                               controls=CONTROL_MAP[cid])
        differences = []
        for inv in self.invocations:
            for diff in evidence.shape_differences(baseline, inv["response_shape"]):
                differences.append(f"invocation {inv['index']}: {diff}")
        ev = {"baseline_shape": baseline, "shapes_now": _unique([i["response_shape"] for i in self.invocations])}
        if differences:
            return self._check(cid, TITLES[cid], FAIL, "; ".join(differences[:5]), ev, CONTROL_MAP[cid],
                               "invocations.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "invocations.json")

    def _moved_variables(self) -> list[str]:
        entry = self.ledger.find("snapshot")
        names = (entry.data.get("moved_variables") if entry else None) or []
        return list(names.keys()) if isinstance(names, dict) else list(names)

    def check_no_secrets_in_environment(self) -> Check:
        cid = "no-secrets-in-environment"
        env = (self.config.get("Environment") or {}).get("Variables") or {}
        moved = self._moved_variables()
        left = sorted(n for n in moved if n in env)
        findings = [_finding(f) for f in self.scanner.scan_environment(dict(env))]
        ev = {"variables": sorted(env), "moved_by_implementation": moved, "left_behind": left,
              "findings": findings}
        reasons = []
        if left:
            reasons.append(f"migrated variable(s) still set: {', '.join(left)}")
        if findings:
            reasons.append(f"{len(findings)} finding(s) in the environment: "
                           + ", ".join(sorted({f['variable'] or f['rule'] for f in findings})))
        if reasons:
            return self._check(cid, TITLES[cid], FAIL, "; ".join(reasons), ev, CONTROL_MAP[cid])
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid])

    def check_no_secrets_in_code(self) -> Check:
        cid = "no-secrets-in-code"
        code = self.function.get("Code") or {}
        ev: dict = {"code_sha256": self.config.get("CodeSha256", ""),
                    "package_type": self.config.get("PackageType", "Zip")}
        snapshot = self.ledger.find("snapshot")
        if snapshot is not None and snapshot.data.get("code_sha256"):
            ev["code_changed_since_snapshot"] = snapshot.data["code_sha256"] != ev["code_sha256"]
        if ev["package_type"] == "Image" or not code.get("Location"):
            return self._check(cid, TITLES[cid], SKIP, "the function is a container image: scan the image "
                               "in its registry (no zip package to download)", ev, CONTROL_MAP[cid])
        report = self._scan_package(code["Location"], self.function_name)
        ev.update(report)
        layer_findings = []
        for layer in self.config.get("Layers") or []:
            arn = layer.get("Arn", "")
            with aws_call("GetLayerVersionByArn", arn, "lambda:GetLayerVersion"):
                content = self._client("lambda").get_layer_version_by_arn(Arn=arn).get("Content") or {}
            if content.get("Location"):
                layer_report = self._scan_package(content["Location"], arn)
                layer_findings.append({"layer": arn, **layer_report})
        ev["layers"] = layer_findings
        if report["findings"]:
            return self._check(cid, TITLES[cid], FAIL, f"{len(report['findings'])} finding(s) in the "
                               "deployed package: " + ", ".join(sorted({f['path'] or '' for f in report['findings']})),
                               ev, CONTROL_MAP[cid])
        dirty = [layer["layer"] for layer in layer_findings if layer["findings"]]
        if dirty:
            return self._check(cid, TITLES[cid], WARN, "the function's own package is clean, but layer(s) "
                               f"{', '.join(dirty)} hold findings: layers are shared, migrate them in their own "
                               "change", ev, CONTROL_MAP[cid])
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid])

    def _scan_package(self, location: str, label: str) -> dict:
        try:
            data = evidence.download_code(location)
        except (OSError, ValueError) as exc:
            raise AwsCallError("GetFunction (code download)", label, type(exc).__name__,
                               str(exc)[:200], permission="lambda:GetFunction") from None
        report = self.scanner.scan_zip(data, label=label)
        return {"files_scanned": report.files_scanned, "bytes_scanned": report.bytes_scanned,
                "skipped": report.skipped, "findings": [_finding(f) for f in report.findings]}

    def _window_events(self) -> list[dict]:
        return [e for e in self.log_events if self._in_window(parse_time(e["timestamp"]))]

    def check_secret_retrieved_at_runtime(self) -> Check:
        cid = "secret-retrieved-at-runtime"
        missing = self._unavailable(cid, "logs", "CloudWatch Logs")
        if missing:
            return missing
        retrieved = [e for e in self.log_events if RETRIEVAL_LOG_LINE in e["message"]]
        in_window = [e for e in retrieved if self._in_window(parse_time(e["timestamp"]))]
        ev = {"log_group": f"/aws/lambda/{self.function_name}", "window": self._window(),
              "log_line": RETRIEVAL_LOG_LINE, "events_read": len(self.log_events),
              "retrieval_lines": len(retrieved), "retrieval_lines_in_invocation_window": len(in_window),
              "first_retrieval": iso(parse_time(retrieved[0]["timestamp"])) if retrieved else "",
              "streams": sorted({e["stream"] for e in retrieved})}
        if not retrieved:
            return self._check(cid, TITLES[cid], FAIL, f"no log line '{RETRIEVAL_LOG_LINE}' since "
                               f"{ev['window']['read_from']}: the function does not fetch its secret at run "
                               "time (or logs nothing about it)", ev, CONTROL_MAP[cid], "log_excerpt.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "log_excerpt.json")

    def check_no_secret_in_logs(self) -> Check:
        cid = "no-secret-in-logs"
        missing = (self._unavailable(cid, "secret", "The secret")
                   or self._unavailable(cid, "logs", "CloudWatch Logs")
                   or self._unavailable(cid, "log_values", "The secret (to compare by fingerprint)"))
        if missing:
            return missing
        if not self.secret:
            return self._check(cid, TITLES[cid], SKIP, "no secret in the ledger or SECRET_ID: nothing to "
                               "compare the logs with", controls=CONTROL_MAP[cid])
        scan = self.value_scan
        ev = {"events_scanned": len(self.log_events), "truncated": self.logs_truncated,
              "streams": sorted({e["stream"] for e in self.log_events}), "window": self._window(),
              **{k: scan[k] for k in ("values_in_secret", "values_searched", "values_too_short_to_search",
                                      "secret_fingerprints", "hits", "scanner_findings")}}
        reasons = []
        if scan["hits"]:
            reasons.append(f"{sum(h['events'] for h in scan['hits'])} log event(s) hold a value of the secret "
                           f"({', '.join(h['fingerprint'] for h in scan['hits'])})")
        if scan["scanner_findings"]:
            reasons.append(f"{len(scan['scanner_findings'])} scanner finding(s) in the logs: "
                           + ", ".join(sorted({f['rule'] for f in scan['scanner_findings']})))
        if reasons:
            return self._check(cid, TITLES[cid], FAIL, "; ".join(reasons), ev, CONTROL_MAP[cid], "log_excerpt.json")
        if self.logs_truncated:
            return self._check(cid, TITLES[cid], WARN, "the log read stopped at its limit: later events were "
                               "not searched", ev, CONTROL_MAP[cid], "log_excerpt.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "log_excerpt.json")

    def check_cloudtrail_attribution(self) -> Check:
        cid = "cloudtrail-attribution"
        missing = self._unavailable(cid, "secret", "The secret") or self._unavailable(cid, "cloudtrail", "CloudTrail")
        if missing:
            return missing
        if not self.secret:
            return self._check(cid, TITLES[cid], SKIP, "no secret in the ledger or SECRET_ID",
                               controls=CONTROL_MAP[cid])
        expected = self._expected_session_arn()
        attributed = [r for r in self.trail_rows if self._attributed(r)]
        others = sorted({r["ARN"] or r["userIdentity type"] for r in self.trail_rows if not self._attributed(r)})
        ev = {"secret_arn": self.secret["ARN"], "expected_identity": expected, "window": self._window(),
              "polling": self.trail_polling, "events_on_secret": len(self.trail_rows),
              "by_the_function": len(attributed),
              "by_the_function_in_invocation_window": sum(1 for r in attributed if self._in_window(r["eventTime"])),
              "other_identities": others,
              "matched": [{k: r[k] for k in ("eventTime", "eventName", "userIdentity type", "ARN",
                                             "session issuer", "source IP", "request secret id", "userAgent")}
                          for r in attributed[:10]]}
        if not attributed:
            reason = (f"no GetSecretValue on the secret by {expected} from Lambda since "
                      f"{ev['window']['read_from']}")
            if self.trail_polling.get("waited_seconds", 0) < 60 and self.target.name == "aws":
                reason += " (CloudTrail delivers events minutes late on AWS: raise trail_wait_seconds)"
            if others:
                reason += f"; calls by: {', '.join(others[:3])}"
            return self._check(cid, TITLES[cid], FAIL, reason, ev, CONTROL_MAP[cid], "cloudtrail_events.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "cloudtrail_events.json")

    def check_secret_cached(self) -> Check:
        cid = "secret-cached"
        missing = (self._unavailable(cid, "secret", "The secret") or self._unavailable(cid, "cloudtrail", "CloudTrail")
                   or self._unavailable(cid, "logs", "CloudWatch Logs"))
        if missing:
            return missing
        if not self.secret:
            return self._check(cid, TITLES[cid], SKIP, "no secret in the ledger or SECRET_ID",
                               controls=CONTROL_MAP[cid])
        window_events = self._window_events()
        environments = evidence.execution_environments(
            window_events, [i.get("request_id", "") for i in self.invocations])
        calls = [r for r in self.trail_rows if self._attributed(r) and self._in_window(r["eventTime"])]
        retrievals = [e for e in window_events if RETRIEVAL_LOG_LINE in e["message"]]
        limit = max(len(environments), 1)
        ev = {"invocations": len(self.invocations), "execution_environments": len(environments),
              "log_streams": environments, "get_secret_value_calls": len(calls),
              "retrieval_log_lines": len(retrievals), "window": self._window(),
              "chart": getattr(self, "chart_path", None) and Path(self.chart_path).name}
        if len(calls) > limit or len(retrievals) > limit:
            return self._check(cid, TITLES[cid], FAIL, f"{max(len(calls), len(retrievals))} fetches for "
                               f"{len(self.invocations)} invocations on {limit} execution environment(s): "
                               "the secret is fetched on every call instead of cached",
                               ev, CONTROL_MAP[cid], "cloudtrail_events.json")
        if not calls and not retrievals:
            ev["note"] = ("no fetch inside the window: the environment was already warm and had fetched the "
                          "secret earlier (see cloudtrail-attribution)")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "cloudtrail_events.json")

    def _key_info(self) -> dict:
        """The secret's KMS key: AWS managed (default) or customer managed, and its rotation."""
        if getattr(self, "_key_cache", None) is not None:
            return self._key_cache
        key_id = self.secret.get("KmsKeyId", "")
        info = {"kms_key_id": key_id or "alias/aws/secretsmanager (default)", "key_manager": "AWS",
                "key_arn": "", "key_state": "", "key_rotation_enabled": None}
        if key_id and key_id != "alias/aws/secretsmanager":
            kms = self._client("kms")
            with aws_call("DescribeKey", key_id, "kms:DescribeKey"):
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            info.update(key_arn=meta["Arn"], key_manager=meta.get("KeyManager", "CUSTOMER"),
                        key_state=meta.get("KeyState", ""))
            if info["key_manager"] == "CUSTOMER":
                with aws_call("GetKeyRotationStatus", key_id, "kms:GetKeyRotationStatus"):
                    info["key_rotation_enabled"] = kms.get_key_rotation_status(KeyId=meta["KeyId"])[
                        "KeyRotationEnabled"]
        self._key_cache = info
        return info

    def check_least_privilege(self) -> Check:
        cid = "least-privilege"
        missing = self._unavailable(cid, "secret", "The secret") or self._unavailable(cid, "iam", "The role's policies")
        if missing:
            return missing
        if not self.secret or self.analysis is None:
            return self._check(cid, TITLES[cid], SKIP, "no secret in the ledger or SECRET_ID, or no role "
                               "on the function", controls=CONTROL_MAP[cid])
        secret_arn = self.secret["ARN"]
        key = self._key_info()
        cmk = key["key_arn"] if key["key_manager"] == "CUSTOMER" else ""
        problems = iam_analysis.least_privilege_problems(self.analysis, secret_arn, kms_key_arn=cmk)
        decoy = self._decoy_arn()
        simulation = iam_analysis.simulate_secret_access(self._client("iam"), self.analysis.role_arn,
                                                         secret_arn, decoy)
        if simulation["available"] and not simulation["as_expected"]:
            problems.append("policy simulator: " + ", ".join(f"{r}={d}" for r, d in simulation["decisions"].items()))
        probe = self._live_probe(secret_arn, decoy)
        if probe.get("performed"):
            if probe["own_secret"] != "allowed":
                problems.append(f"live probe: the role cannot read its own secret ({probe['own_secret']})")
            if probe["decoy"] == "allowed":
                problems.append("live probe: the role read a secret it must not read")
        doc = {"role": self.analysis.to_dict(), "secret_arn": secret_arn, "kms_key": key,
               "secretsmanager_kms_grants": iam_analysis.effective_grants(self.analysis),
               "problems": problems, "simulation": simulation, "live_probe": probe}
        self._write("iam_analysis.json", doc)
        ev = {"role_arn": self.analysis.role_arn, "secret_arn": secret_arn,
              "managed_policies": [p["name"] for p in self.analysis.managed_policies],
              "inline_policies": self.analysis.inline_policies,
              "grants": iam_analysis.effective_grants(self.analysis), "problems": problems,
              "simulation": simulation, "live_probe": probe}
        if problems:
            return self._check(cid, TITLES[cid], FAIL, "; ".join(problems[:5]), ev, CONTROL_MAP[cid],
                               "iam_analysis.json")
        if self.analysis.unreadable:
            return self._check(cid, TITLES[cid], WARN, "could not read: " + ", ".join(
                u["policy"] for u in self.analysis.unreadable), ev, CONTROL_MAP[cid], "iam_analysis.json")
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid], "iam_analysis.json")

    def _decoy_arn(self) -> str:
        return iam_analysis.decoy_secret_arn(self.partition, self.target.region, self.account)

    def _probe_allowed(self) -> tuple[bool, str]:
        if self.live_probe is not None:
            return self.live_probe, "live_probe parameter"
        with aws_call("GetRole", self.role_name, "iam:GetRole"):
            trust = self._client("iam").get_role(RoleName=self.role_name)["Role"].get("AssumeRolePolicyDocument", {})
        if iam_analysis.trusts_aws_principal(trust):
            return True, "the role's trust policy allows an AWS principal"
        return False, ("the role trusts only AWS services: a live probe would need a trust this change must "
                       "not add (the policy simulator answers instead)")

    def _live_probe(self, secret_arn: str, decoy: str) -> dict:
        allowed, why = self._probe_allowed()
        if not allowed:
            return {"performed": False, "reason": why}
        return {"reason": why, **iam_analysis.probe_secret_access(self.target, self.analysis.role_arn,
                                                                  secret_arn, decoy)}

    def check_secret_encrypted(self) -> Check:
        cid = "secret-encrypted"
        missing = self._unavailable(cid, "secret", "The secret")
        if missing:
            return missing
        if not self.secret:
            return self._check(cid, TITLES[cid], SKIP, "no secret in the ledger or SECRET_ID",
                               controls=CONTROL_MAP[cid])
        key = self._key_info()
        entry = self.ledger.find("secret")
        ev = {"secret_arn": self.secret["ARN"], **key,
              "ledger_kms_key": entry.data.get("kms_key", "") if entry else "",
              "rotation_enabled": bool(self.secret.get("RotationEnabled")),
              "rotation_rules": self.secret.get("RotationRules", {}),
              "last_rotated": str(self.secret.get("LastRotatedDate", "") or "")}
        if key["key_state"] and key["key_state"] != "Enabled":
            return self._check(cid, TITLES[cid], FAIL, f"the secret's KMS key is {key['key_state']}: "
                               "the secret cannot be decrypted", ev, CONTROL_MAP[cid])
        warnings = []
        if not ev["rotation_enabled"]:
            warnings.append("automatic rotation is not enabled on the secret: the migrated values stay "
                            "valid until rotated at their source (close-out)")
        if key["key_rotation_enabled"] is False:
            warnings.append("yearly rotation of the customer managed key is off")
        if warnings:
            return self._check(cid, TITLES[cid], WARN, "; ".join(warnings), ev, CONTROL_MAP[cid])
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid])

    def check_audit_logging(self) -> Check:
        cid = "audit-logging"
        rows = evidence.audit_trails(self._client("cloudtrail"))
        qualifying = [r for r in rows if r["multi_region"] and r["is_logging"] and r["management_read_events"]]
        qualifying.sort(key=lambda r: not r["organization_trail"])
        ev = {"trails": rows, "qualifying": [r["name"] for r in qualifying],
              "organization_trail": bool(qualifying and qualifying[0]["organization_trail"])}
        if not qualifying:
            why = [f"{r['name']}: " + (r["unreadable"] if "unreadable" in r else ", ".join(
                w for w, bad in (("not multi-region", not r["multi_region"]), ("not logging", not r["is_logging"]),
                                 ("no management read events", not r["management_read_events"])) if bad))
                   for r in rows]
            return self._check(cid, TITLES[cid], FAIL, "no multi-region trail is logging management read "
                               "events" + (f" ({'; '.join(why)})" if why else ": no trail at all"),
                               ev, CONTROL_MAP[cid])
        if not ev["organization_trail"]:
            ev["note"] = "no organization trail: an account trail can be stopped from inside the account"
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid])

    def check_edge_association(self) -> Check:
        cid = "edge-association"
        entry = self.ledger.find("edge_association")
        if entry is None:
            return self._check(cid, TITLES[cid], SKIP, "the implementation used no Lambda@Edge association",
                               controls=CONTROL_MAP[cid])
        distribution = entry.data.get("distribution_id") or entry.resource
        version_arn = entry.data.get("version_arn", "")
        with aws_call("GetDistributionConfig", distribution, "cloudfront:GetDistributionConfig"):
            config = self._client("cloudfront").get_distribution_config(Id=distribution)["DistributionConfig"]
        behaviours = [("default", config.get("DefaultCacheBehavior") or {})] + [
            (b.get("PathPattern", ""), b) for b in (config.get("CacheBehaviors") or {}).get("Items") or []]
        associations = [{"behaviour": name, "event_type": a.get("EventType"), "function_arn": a.get("LambdaFunctionARN")}
                        for name, b in behaviours
                        for a in (b.get("LambdaFunctionAssociations") or {}).get("Items") or []]
        ev = {"distribution_id": distribution, "expected_version_arn": version_arn, "associations": associations}
        match = [a for a in associations if a["event_type"] == "viewer-request" and a["function_arn"] == version_arn]
        if not match:
            return self._check(cid, TITLES[cid], FAIL, f"no viewer-request association of {version_arn} on "
                               f"distribution {distribution}", ev, CONTROL_MAP[cid])
        return self._check(cid, TITLES[cid], PASS, "", ev, CONTROL_MAP[cid])

    # -- residue and rotation (not in CHECK_IDS: they judge the close-out, see residue.py) ---------
    def residue_checks(self) -> list[Check]:
        """``no-secret-residue`` and ``exposed-credentials-rotated``, phase validation.

        ``no-secret-residue`` scans every published version's environment (one paged
        ListVersionsByFunction): WARN while only the backout snapshot holds the old values
        (expected until close-out), FAIL when any other version does.
        ``exposed-credentials-rotated`` WARNs with the list of exposed credentials until
        each has been replaced at its source.
        """
        from . import residue

        lam, sm = self._client("lambda"), self._client("secretsmanager")
        snap = self.ledger.find("snapshot", self.function_name)
        version = "" if not snap or snap.data.get("deleted_by_closeout") else str(snap.data["version"])
        try:
            migrated = residue.migrated_fingerprints(lam, sm, self.ledger, self.function_name, self.fingerprinter)
            sweep = residue.sweep_function(lam, self.function_name, migrated, self.scanner, self.fingerprinter,
                                           snapshot_version=version)
            found = residue.residue_check(sweep, PHASE, NOTEBOOK)
        except RunbookError as exc:
            found = residue.residue_check(None, PHASE, NOTEBOOK, unavailable=f"could not be evaluated: {exc}")
        try:
            rows = residue.exposure(self.ledger, self.function_name, lam, sm, self._client("iam"), self.fingerprinter)
            rotated = residue.rotation_check(rows, PHASE, NOTEBOOK)
        except RunbookError as exc:
            rotated = Check("exposed-credentials-rotated", residue.ROTATED_TITLE, PHASE, FAIL,
                            reason=f"could not be evaluated: {exc}", controls=residue.ROTATED_CONTROLS,
                            notebook=NOTEBOOK)
        return [found, rotated]

    # -- 4. summary --------------------------------------------------------------------------------
    def summary(self) -> Summary:
        """Passed/failed/warned/skipped, the invocation window and the target, for the notebook's top."""
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in (PASS, FAIL, WARN, SKIP)}
        window = self._window()
        return Summary(self.target.name, self.function_name, window["start"], window["end"], counts)


TITLES = {
    "function-invokes": "The function is invoked successfully N times",
    "functional-parity": "Responses have the baseline's shape",
    "no-secrets-in-environment": "No secret in the function's environment variables",
    "no-secrets-in-code": "No secret in the deployed code package",
    "secret-retrieved-at-runtime": "The function fetches its secret from Secrets Manager at run time",
    "no-secret-in-logs": "No secret value in the function's logs",
    "cloudtrail-attribution": "CloudTrail attributes GetSecretValue to the function's own role",
    "secret-cached": "The secret is fetched once per execution environment",
    "least-privilege": "The role can read exactly this one secret",
    "secret-encrypted": "The secret is encrypted with KMS; rotation reported",
    "audit-logging": "A multi-region trail logs management read events",
    "edge-association": "Lambda@Edge viewer-request trigger points to the published version",
}

CONTROL_MAP = {
    "function-invokes": ["CM-3"],
    "functional-parity": ["CM-3"],
    "no-secrets-in-environment": ["IA-5", "IA-5(7)", "SC-28"],
    "no-secrets-in-code": ["IA-5", "IA-5(7)"],
    "secret-retrieved-at-runtime": ["IA-5", "IA-7"],
    "no-secret-in-logs": ["IA-5", "SC-28"],
    "cloudtrail-attribution": ["AU-2", "AU-12", "AC-6"],
    "secret-cached": ["IA-5"],
    "least-privilege": ["AC-6"],
    "secret-encrypted": ["SC-28", "SC-12"],
    "audit-logging": ["AU-2", "AU-12"],
    "edge-association": ["CM-3"],
}


def _finding(finding) -> dict:
    doc = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
    return {k: doc.get(k) for k in ("rule", "title", "redacted", "fingerprint", "path", "line", "variable")}


def _unique(items: list) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
