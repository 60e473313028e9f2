"""Tests of Finding and ScanReport: the shapes every consumer of the scanner reads."""

from runbook_lib.scan_results import Finding, ScanReport

CODE = Finding("jwt", "JSON Web Token", "move-to-secrets-manager", "eyJh…(120)", "fp:0123456789abcdef",
               path="pkg.zip!app.py", line=7)
ENV = Finding("keyword-assignment", "hardcoded value", "move-to-secrets-manager", "Tq…(12)", "fp:1",
              variable="CONFIG", json_key="db.password")


def test_to_dict_of_a_code_finding_in_order_without_empty_fields():
    assert list(CODE.to_dict().items()) == [
        ("path", "pkg.zip!app.py"), ("line", 7), ("rule", "jwt"), ("title", "JSON Web Token"),
        ("remediation", "move-to-secrets-manager"), ("redacted", "eyJh…(120)"), ("fingerprint", "fp:0123456789abcdef")]


def test_to_dict_of_an_environment_finding():
    assert list(ENV.to_dict())[:4] == ["variable", "json_key", "rule", "title"]
    assert "path" not in ENV.to_dict() and "line" not in ENV.to_dict()


def test_location_and_str():
    assert CODE.location == "pkg.zip!app.py:7"
    assert ENV.location == "CONFIG (db.password)"
    assert Finding("r", "t", "m", "…(3)", "fp:2", variable="DB_PASSWORD").location == "DB_PASSWORD"
    assert str(CODE) == "pkg.zip!app.py:7: JSON Web Token [jwt] eyJh…(120) fp:0123456789abcdef"


def test_report_skip_and_merge_add_everything_up():
    first = ScanReport(findings=[CODE], files_scanned=2, bytes_scanned=100, allowlisted=1)
    first.skip("a.bin", "binary")
    second = ScanReport(findings=[ENV], files_scanned=3, bytes_scanned=50, allowlisted=2)
    second.skip("b.zip", "encrypted member")
    assert first.merge(second) is first
    assert first.findings == [CODE, ENV] and first.files_scanned == 5 and first.bytes_scanned == 150
    assert first.allowlisted == 3
    assert first.skipped == [{"path": "a.bin", "reason": "binary"}, {"path": "b.zip", "reason": "encrypted member"}]
    assert ScanReport().findings == [] and ScanReport().skipped == [] and ScanReport().allowlisted == 0
