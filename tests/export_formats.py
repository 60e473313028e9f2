"""What OCSF, Security Hub and JUnit consumers require, as assertions the export tests share.

OCSF: the required attributes of the Detection Finding class (2004) and of the objects it
holds, as the OCSF schema declares them (``base_event``: activity_id, category_uid,
class_uid, metadata, severity_id, time, type_uid; ``finding``: finding_info;
``finding_info``: uid; ``metadata``: product, version). ASFF: the fields
``BatchImportFindings`` requires of every finding, with their types and limits.
"""

from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

OCSF_REQUIRED = {"activity_id": int, "category_uid": int, "class_uid": int, "metadata": dict,
                 "severity_id": int, "time": int, "type_uid": int, "finding_info": dict}
ASFF_REQUIRED = {"SchemaVersion": str, "Id": str, "ProductArn": str, "GeneratorId": str, "AwsAccountId": str,
                 "Types": list, "CreatedAt": str, "UpdatedAt": str, "Severity": dict, "Title": str,
                 "Description": str, "Resources": list}


def assert_ocsf_detection_finding(doc: dict) -> None:
    for name, kind in OCSF_REQUIRED.items():
        assert isinstance(doc.get(name), kind) and not isinstance(doc.get(name), bool), name
    assert doc["class_uid"] == 2004 and doc["category_uid"] == 2
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
    assert doc["activity_id"] in (0, 1, 2, 3, 99) and doc["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99)
    assert isinstance(doc["finding_info"].get("uid"), str) and doc["finding_info"]["uid"]
    assert isinstance(doc["metadata"].get("product"), dict) and isinstance(doc["metadata"].get("version"), str)
    assert doc["time"] > 1_500_000_000_000  # epoch milliseconds (timestamp_t), not seconds


def assert_asff_finding(doc: dict) -> None:
    for name, kind in ASFF_REQUIRED.items():
        assert isinstance(doc.get(name), kind) and doc[name], name
    assert doc["SchemaVersion"] == "2018-10-08"
    assert doc["ProductArn"].startswith("arn:aws:securityhub:") and len(doc["AwsAccountId"]) == 12
    assert doc["Severity"].get("Label") in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
    assert all(t.count("/") <= 2 and t.split("/")[0] in (
        "Software and Configuration Checks", "TTPs", "Effects", "Unusual Behaviors", "Sensitive Data Identifications")
        for t in doc["Types"])
    for stamp in (doc["CreatedAt"], doc["UpdatedAt"]):
        _dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    assert len(doc["Title"]) <= 256 and len(doc["Description"]) <= 1024 and len(doc["Id"]) <= 512
    for resource in doc["Resources"]:
        assert isinstance(resource.get("Type"), str) and isinstance(resource.get("Id"), str)


def junit_cases(data: bytes) -> dict[str, ET.Element]:
    """``{"<suite>/<case>": testcase}`` of a JUnit XML document, its counters checked."""
    root = ET.fromstring(data)
    assert root.tag == "testsuites"
    cases = {}
    for suite in root.findall("testsuite"):
        found = suite.findall("testcase")
        assert int(suite.get("tests")) == len(found)
        assert int(suite.get("failures")) == sum(1 for c in found if c.find("failure") is not None)
        assert int(suite.get("skipped")) == sum(1 for c in found if c.find("skipped") is not None)
        cases.update({f"{suite.get('name')}/{c.get('name')}": c for c in found})
    assert int(root.get("tests")) == len(cases)
    return cases


def assert_exports(run_dir: Path, checks: list[dict]) -> dict:
    """The OCSF, ASFF and JUnit files: one entry per check, each as its consumers require; JUnit's cases."""
    ocsf = json.loads((run_dir / "checks.ocsf.json").read_text())
    asff = json.loads((run_dir / "checks.asff.json").read_text())
    for doc in ocsf:
        assert_ocsf_detection_finding(doc)
    for doc in asff:
        assert_asff_finding(doc)
    cases = junit_cases((run_dir / "checks.junit.xml").read_bytes())
    assert [d["status_code"] for d in ocsf] == [c["status"] for c in checks] == [
        {"PASSED": "PASS", "FAILED": "FAIL", "WARNING": "WARN", "NOT_AVAILABLE": "SKIP"}[d["Compliance"]["Status"]]
        for d in asff]
    assert sorted(cases) == sorted(f"{c['phase']}/{c['id']}" for c in checks)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {"checks.ocsf.json", "checks.asff.json", "checks.junit.xml"} <= {f["path"] for f in manifest["files"]}
    return cases
