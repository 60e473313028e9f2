"""``no-secrets-in-code``: the baseline on a fabricated audit, validation on fabricated package scans."""

from audit_factory import finding, gap, result
from evidence_factory import healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.no_secrets_in_code import judge_baseline, judge_validation

LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:shared:1"


# -- baseline ---------------------------------------------------------------------------------
def test_baseline_code_and_layer_findings_fail():
    verdict = judge_baseline(result([finding("orders-api", "code", "app.py:2"),
                                     finding("orders-api", "layer", "cfg.json:7", layer="shared:1"),
                                     finding("orders-api", "environment", "K")]))
    assert verdict.status == FAIL
    assert verdict.reason == "2 secrets in code packages and layers of 1 function: orders-api (app.py:2, shared:1 cfg.json:7)"
    assert verdict.evidence["findings"] == 2


def test_baseline_clean_with_a_failing_gap_warns():
    verdict = judge_baseline(result([], [gap("denied")]))
    assert verdict.status == WARN and verdict.reason.startswith("no secret found in the code packages and layers "
                                                                "that could be read; not everything")


def test_baseline_clean_passes_with_what_was_read():
    verdict = judge_baseline(result([], [gap("file-not-scanned")], downloads=3))
    assert (verdict.status, verdict.reason) == (PASS, "3 packages and layers of 2 functions scanned: no secret")


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


# -- whole verdicts --------------------------------------------------------------------------------
def test_whole_baseline_verdicts():
    found = [finding(f"fn-{i}", "code", "app.py:1") for i in range(8)]
    verdict = judge_baseline(result(found))
    assert verdict == Verdict(FAIL, "8 secrets in code packages and layers of 8 functions: fn-0 (app.py:1); "
                                    "fn-1 (app.py:1); fn-2 (app.py:1); fn-3 (app.py:1); fn-4 (app.py:1); "
                                    "fn-5 (app.py:1); and 2 more",
                              {"findings": 8, "functions": [f"fn-{i} (app.py:1)" for i in range(8)]})
    assert judge_baseline(result([], [gap("denied")])).evidence == {"findings": 0, "functions": []}
    assert judge_baseline(result([], downloads=3)) == Verdict(
        PASS, "3 packages and layers of 2 functions scanned: no secret", {"findings": 0, "functions": []})


def test_baseline_lists_at_most_fifty_functions_in_its_evidence():
    found = [finding(f"fn-{i:02}", "code", "a.py:1") for i in range(51)]
    assert len(judge_baseline(result(found)).evidence["functions"]) == 50


CODE = {"files_scanned": 3, "bytes_scanned": 2048, "skipped": [], "findings": []}


def test_whole_validation_verdicts():
    base = {"code_sha256": "new-sha", "package_type": "Zip", "code_changed_since_snapshot": True}
    assert judge_validation(healthy()) == Verdict(
        PASS, "3 file(s) of the deployed package and 0 layer(s) scanned: no secret",
        {**base, **CODE, "layers": []}, evidence_file="")
    finding_row = {"path": "app.py", "line": 3, "rule": "aws-access-key-id"}
    dirty = healthy(code={**CODE, "findings": [finding_row]})
    assert judge_validation(dirty) == Verdict(FAIL, "1 finding(s) in the deployed package: app.py",
                                              {**base, **CODE, "findings": [finding_row], "layers": []},
                                              evidence_file="")
    layer = {"layer": LAYER, "files_scanned": 1, "findings": [{"path": "c"}], "skipped": []}
    warned = judge_validation(healthy(layers=[layer]))
    assert (warned.evidence, warned.evidence_file) == ({**base, **CODE, "layers": [layer]}, "")
    unread = healthy(errors={"code": "HTTPError"})
    assert judge_validation(unread) == Verdict(FAIL, "The deployed code package could not be read: HTTPError", base,
                                               evidence_file="")
    unconfigured = judge_validation(healthy(errors={"function": "denied"}, config={}, snapshot_code_sha256=""))
    assert unconfigured == Verdict(FAIL, "The function's configuration could not be read: denied",
                                   {"code_sha256": "", "package_type": "Zip"}, evidence_file="")


def test_whole_verdict_of_a_container_image():
    ev = healthy(code=None)
    ev.config["PackageType"] = "Image"
    assert judge_validation(ev) == Verdict(
        SKIP, "the function is a container image: scan the image in its registry (no zip package to download)",
        {"code_sha256": "new-sha", "package_type": "Image", "code_changed_since_snapshot": True}, evidence_file="")


def test_the_same_code_as_the_snapshot_is_recorded_as_unchanged():
    assert judge_validation(healthy(snapshot_code_sha256="new-sha")).evidence["code_changed_since_snapshot"] is False


def test_at_most_three_unread_layers_or_skipped_files_are_named():
    ev = healthy(layers=[{"layer": f"l{i}", "error": "denied"} for i in range(4)])
    ev.code["skipped"] = [{"path": f"f{i}"} for i in range(4)] + [{"reason": "no path"}]
    assert judge_validation(ev).reason == ("layer(s) not read: l0 (denied); l1 (denied); l2 (denied); and 1 more; "
                                           "5 file(s) of the package were not scanned: f0, f1, f2, and 2 more")
    two = healthy(layers=[dict(layer, layer=name) for name in ("a", "b")
                          for layer in [{"files_scanned": 1, "findings": [{"path": "c"}], "skipped": []}]])
    assert judge_validation(two).reason.startswith("the function's own package is clean, but layer(s) a, b hold")


# -- third-party files: someone else's published code ------------------------------------------
def third_party(name, location, where, package="aws-lambda-powertools", version="3.2.0"):
    return {**finding(name, location, where), "package": package, "package_version": version,
            "ecosystem": "python", "verified": True}


def test_baseline_findings_only_in_unmodified_dependencies_warn_naming_package_and_version():
    verdict = judge_baseline(result([third_party("orders-api", "code", "aws_lambda_powertools/x.py:9")]))
    assert verdict.status == WARN
    assert verdict.reason.startswith("1 finding(s) only in unmodified third-party files: aws-lambda-powertools 3.2.0 (")
    assert verdict.evidence["third_party"] == 1 and verdict.evidence["findings"] == 0


def test_baseline_first_party_findings_still_fail_beside_third_party_ones():
    verdict = judge_baseline(result([third_party("orders-api", "code", "lib.py:1"), finding("orders-api", "code", "app.py:2")]))
    assert verdict.status == FAIL and verdict.evidence["third_party"] == 1 and verdict.evidence["findings"] == 1


def test_validation_third_party_findings_warn_and_do_not_fail():
    row = {"path": "aws_lambda_powertools-3.2.0.dist-info/METADATA", "line": 4, "rule": "github-token",
           "package": "aws-lambda-powertools", "package_version": "3.2.0", "ecosystem": "python", "verified": True}
    ev = healthy()
    ev.code["third_party"] = [row]
    verdict = judge_validation(ev)
    assert verdict.status == WARN
    assert verdict.reason == ("1 finding(s) in unmodified third-party files, not the team's code: aws-lambda-powertools "
                              "3.2.0 (aws_lambda_powertools-3.2.0.dist-info/METADATA:4)")
