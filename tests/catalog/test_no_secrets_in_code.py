"""``no-secrets-in-code``: the baseline on a fabricated audit, validation on fabricated package scans."""

from audit_factory import finding, gap, result
from evidence_factory import healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN
from runbook_lib.catalog.no_secrets_in_code import judge_baseline, judge_validation

LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:shared:1"


# -- baseline ---------------------------------------------------------------------------------
def test_baseline_code_and_layer_findings_fail():
    verdict = judge_baseline(result([finding("orders-api", "code", "app.py:2"),
                                     finding("orders-api", "layer", "cfg.json:7", layer="shared:1"),
                                     finding("orders-api", "environment", "K")]))
    assert verdict.status == FAIL
    assert verdict.reason == "2 secrets in code packages and layers of 1 functions: orders-api (app.py:2, shared:1 cfg.json:7)"
    assert verdict.evidence["findings"] == 2


def test_baseline_clean_with_a_failing_gap_warns():
    verdict = judge_baseline(result([], [gap("denied")]))
    assert verdict.status == WARN and verdict.reason.startswith("no secret found in the code packages and layers "
                                                                "that could be read; not everything")


def test_baseline_clean_passes_with_what_was_read():
    verdict = judge_baseline(result([], [gap("file-not-scanned")], downloads=3))
    assert (verdict.status, verdict.reason) == (PASS, "3 package(s) and layer(s) of 2 functions scanned: no secret")


def test_baseline_skips_when_nothing_was_downloaded():
    verdict = judge_baseline(result(include_code=False, include_layers=False))
    assert (verdict.status, verdict.reason) == (SKIP, "include_code and include_layers are False: packages were not read")
    assert verdict.evidence_file == ""
    assert judge_baseline(result(include_code=False, include_layers=True)).status == PASS


# -- validation -------------------------------------------------------------------------------
def test_validation_clean_package_passes():
    verdict = judge_validation(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "3 file(s) of the deployed package and 0 layer(s) scanned: "
                                                      "no secret")
    assert verdict.evidence["code_changed_since_snapshot"] is True and verdict.evidence["package_type"] == "Zip"


def test_validation_a_finding_in_the_package_fails():
    ev = healthy(code={"files_scanned": 1, "bytes_scanned": 9, "skipped": [],
                       "findings": [{"path": "app.py", "line": 3, "rule": "aws-access-key-id"},
                                    {"path": None, "line": 1, "rule": "generic-secret"}]})
    verdict = judge_validation(ev)
    assert (verdict.status, verdict.reason) == (FAIL, "2 finding(s) in the deployed package: , app.py")


def test_validation_a_finding_in_a_layer_only_warns():
    verdict = judge_validation(healthy(layers=[{"layer": LAYER, "files_scanned": 1, "findings": [{"path": "c"}],
                                                "skipped": []}]))
    assert verdict.status == WARN
    assert verdict.reason == (f"the function's own package is clean, but layer(s) {LAYER} hold findings: layers are "
                              "shared, migrate them in their own change")


def test_validation_an_unreadable_layer_and_skipped_files_warn():
    ev = healthy(layers=[{"layer": LAYER, "error": "GetLayerVersion failed: AccessDenied"}])
    ev.code["skipped"] = [{"path": "big.bin", "reason": "too large"}]
    verdict = judge_validation(ev)
    assert verdict.reason == (f"layer(s) not read: {LAYER} (GetLayerVersion failed: AccessDenied); "
                              "1 file(s) of the package were not scanned: big.bin")


def test_validation_container_image_skips():
    ev = healthy(code=None)
    ev.config["PackageType"] = "Image"
    verdict = judge_validation(ev)
    assert verdict.status == SKIP and verdict.reason.startswith("the function is a container image")


def test_validation_unreadable_package_fails_with_the_error():
    verdict = judge_validation(healthy(errors={"code": "GetFunction (code download) on orders-api failed: HTTPError"}))
    assert (verdict.status, verdict.reason) == (FAIL, "The deployed code package could not be read: GetFunction "
                                                      "(code download) on orders-api failed: HTTPError")
    assert verdict.evidence["code_sha256"] == "new-sha"
