"""The checks of a run in the formats CI and security tooling read: OCSF, ASFF and JUnit XML.

``runbook run`` and ``runbook audit`` write, beside ``checks.json``:

* ``checks.ocsf.json``: one OCSF **Detection Finding** (``class_uid`` 2004, activity Create) per
  check, shaped like Prowler's ``json-ocsf`` output (``status_code`` PASS/FAIL/WARN/SKIP, the
  evidence line as ``status_detail`` and ``message``, NIST SP 800-53 controls under
  ``unmapped.compliance``);
* ``checks.asff.json``: the same checks in the AWS Security Finding Format, the ``Findings``
  list of Security Hub's ``BatchImportFindings`` (``aws securityhub batch-import-findings
  --findings file://checks.asff.json``);
* ``checks.junit.xml``: one ``testcase`` per check. FAIL is a ``failure`` (when it gates the
  run: a baseline FAIL of ``runbook run`` describes the account before the change and, like the
  exit code, fails nothing), WARN passes with a ``system-out`` note starting ``WARN -``,
  SKIP is ``skipped``; every testcase's ``system-out`` holds its evidence line.

They are built from check records only (names, ARNs, counts, redacted previews), never from a
value, and every text passes :func:`runbook_lib.render.visible`, so no control character can
make the XML invalid or a terminal act.

Examples
--------
>>> context = ExportContext(account="123456789012", region="us-east-1", target="lab",  # doctest: +SKIP
...                         function_name="orders-api", version="0.1.0", time="2026-12-01T10:00:00Z")
>>> write_exports(run_dir, checks, context, gating_ids)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .check_summary import evidence_summary
from .checks import FAIL, PASS, SKIP, WARN, Check
from .render import visible

OCSF_FILE, ASFF_FILE, JUNIT_FILE = "checks.ocsf.json", "checks.asff.json", "checks.junit.xml"
EXPORT_FILES = (OCSF_FILE, ASFF_FILE, JUNIT_FILE)
PRODUCT = "lambda-secrets-runbook"
OCSF_VERSION = "1.4.0"
DETECTION_FINDING, FINDINGS_CATEGORY, CREATE = 2004, 2, 1
ASFF_SCHEMA_VERSION = "2018-10-08"
ASFF_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/NIST 800-53 Controls"
#: A check's status as a severity: a failed control is high, a warning medium, the rest informational.
SEVERITY = {FAIL: (4, "High", "HIGH"), WARN: (3, "Medium", "MEDIUM"),
            PASS: (1, "Informational", "INFORMATIONAL"), SKIP: (1, "Informational", "INFORMATIONAL")}
COMPLIANCE = {PASS: "PASSED", FAIL: "FAILED", WARN: "WARNING", SKIP: "NOT_AVAILABLE"}
#: Security Hub's limits (BatchImportFindings refuses longer values).
ASFF_TITLE_LIMIT, ASFF_DESCRIPTION_LIMIT = 256, 1024


@dataclass(frozen=True)
class ExportContext:
    """Where the checks were made: account, region, target, function, tool version, finish time."""

    account: str
    region: str
    target: str
    function_name: str
    version: str
    time: str  # UTC, ISO 8601 with Z

    @property
    def epoch_ms(self) -> int:
        moment = _dt.datetime.strptime(self.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
        return int(moment.timestamp() * 1000)

    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"


def finding_uid(check: Check, context: ExportContext) -> str:
    """Stable across re-runs of the same check on the same function: a SIEM updates, not duplicates."""
    subject = context.function_name or "account"
    return f"{PRODUCT}/{context.account}/{context.region}/{subject}/{check.phase}/{check.id}"


def _resource(context: ExportContext) -> dict:
    if context.function_name:
        return {"uid": context.function_arn(), "name": context.function_name, "type": "AwsLambdaFunction",
                "region": context.region, "cloud_partition": "aws"}
    return {"uid": f"AWS::::Account:{context.account}", "name": context.account, "type": "AwsAccount",
            "region": context.region, "cloud_partition": "aws"}


def ocsf_finding(check: Check, context: ExportContext, proves: str = "") -> dict:
    """One OCSF Detection Finding (class 2004) for ``check``."""
    severity_id, severity, _ = SEVERITY[check.status]
    line = evidence_summary(check)
    return {
        "activity_id": CREATE, "activity_name": "Create",
        "category_uid": FINDINGS_CATEGORY, "category_name": "Findings",
        "class_uid": DETECTION_FINDING, "class_name": "Detection Finding",
        "type_uid": DETECTION_FINDING * 100 + CREATE, "type_name": "Detection Finding: Create",
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "New", "status_code": check.status, "status_detail": line, "message": line,
        "time": context.epoch_ms, "time_dt": context.time,
        "metadata": {"version": OCSF_VERSION, "event_code": check.id, "profiles": ["cloud"],
                     "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": context.version},
                     "tenant_uid": context.account},
        "finding_info": {"uid": finding_uid(check, context), "title": visible(check.title),
                         "desc": visible(proves or check.title), "types": [check.phase],
                         "created_time": context.epoch_ms, "created_time_dt": context.time},
        "cloud": {"provider": "aws", "region": context.region,
                  "account": {"uid": context.account, "type": "AWS Account", "type_id": 10}},
        "resources": [_resource(context)],
        "unmapped": {"compliance": {"NIST-800-53-Revision-5": list(check.controls)}, "phase": check.phase,
                     "notebook": check.notebook, "evidence_file": check.evidence_file, "target": context.target},
    }


def _cut(text: str, limit: int) -> str:
    # Security Hub refuses longer values; the whole line stays in checks.json and the OCSF file
    return text if len(text) <= limit else text[: limit - 30] + "… (whole text: checks.json)"


def asff_finding(check: Check, context: ExportContext, proves: str = "") -> dict:
    """One finding of ``BatchImportFindings`` for ``check`` (Security Hub's required fields and more)."""
    label = SEVERITY[check.status][2]
    resource = _resource(context)
    return {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": finding_uid(check, context),
        "ProductArn": f"arn:aws:securityhub:{context.region}:{context.account}:product/{context.account}/default",
        "GeneratorId": f"{PRODUCT}/{check.id}",
        "AwsAccountId": context.account,
        "Types": [ASFF_TYPE],
        "CreatedAt": context.time, "UpdatedAt": context.time,
        "Severity": {"Label": label},
        "Title": _cut(visible(f"{check.title} ({check.phase}: {check.status})"), ASFF_TITLE_LIMIT),
        "Description": _cut(evidence_summary(check), ASFF_DESCRIPTION_LIMIT),
        "Resources": [{"Type": resource["type"], "Id": resource["uid"], "Partition": "aws",
                       "Region": context.region}],
        "Compliance": {"Status": COMPLIANCE[check.status],
                       "RelatedRequirements": [f"NIST.800-53.r5 {c}" for c in check.controls]},
        "RecordState": "ACTIVE",
        "ProductFields": {"Phase": check.phase, "Notebook": check.notebook or "-",
                          "EvidenceFile": check.evidence_file or "-", "Target": context.target,
                          "Proves": _cut(visible(proves or check.title), ASFF_DESCRIPTION_LIMIT)},
    }


def junit_xml(checks: Sequence[Check], gating_ids: set[tuple[str, str]]) -> bytes:
    """``testsuites`` with one ``testsuite`` per phase and one ``testcase`` per check."""
    root = ET.Element("testsuites", name=PRODUCT)
    phases: dict[str, list[Check]] = {}
    for check in checks:
        phases.setdefault(check.phase, []).append(check)
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for phase, group in phases.items():
        suite = ET.SubElement(root, "testsuite", name=phase)
        counts = {"tests": len(group), "failures": 0, "skipped": 0}
        for check in group:
            outcome = _testcase(suite, check, (check.phase, check.id) in gating_ids)
            if outcome:
                counts[outcome] += 1
        suite.attrib.update({k: str(v) for k, v in counts.items()})
        suite.set("errors", "0")
        for key in totals:
            totals[key] += counts[key]
    root.attrib.update({k: str(v) for k, v in totals.items()})
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _testcase(suite: ET.Element, check: Check, gating: bool) -> str | None:
    """Add the testcase of ``check``; the counter it adds to besides ``tests`` (``failures``, ``skipped``)."""
    case = ET.SubElement(suite, "testcase", name=check.id, classname=f"{PRODUCT}.{check.phase}")
    line = evidence_summary(check)
    # "PASS: text" would read as a password setting to a secret scanner (the leak guard's): a dash
    note = [f"{check.status} - {line}", f"controls: {', '.join(check.controls)}",
            f"evidence: {check.evidence_file or (check.notebook + '.ipynb' if check.notebook else '-')}"]
    counted = None
    if check.status == FAIL and gating:
        ET.SubElement(case, "failure", message=visible(check.reason), type="FAIL").text = line
        counted = "failures"
    elif check.status == FAIL:
        note[0] = f"FAIL in the {check.phase} (before the change), does not gate this run - {line}"
    elif check.status == SKIP:
        ET.SubElement(case, "skipped", message=visible(check.reason))
        counted = "skipped"
    ET.SubElement(case, "system-out").text = "\n".join(note)
    return counted


def write_exports(run_dir: Path, checks: Iterable[Check], context: ExportContext,
                  gating_ids: set[tuple[str, str]], proves: dict[str, str] | None = None) -> list[Path]:
    """Write the three files into ``run_dir``; return their paths."""
    checks = list(checks)
    proves = proves or {}
    ocsf = [ocsf_finding(c, context, proves.get(c.id, "")) for c in checks]
    asff = [asff_finding(c, context, proves.get(c.id, "")) for c in checks]
    paths = [Path(run_dir) / name for name in EXPORT_FILES]
    paths[0].write_text(json.dumps(ocsf, indent=2) + "\n")
    paths[1].write_text(json.dumps(asff, indent=2) + "\n")
    paths[2].write_bytes(junit_xml(checks, gating_ids) + b"\n")
    return paths
