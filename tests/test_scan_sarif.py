"""Tests of :mod:`runbook_lib.scan_sarif`: ``runbook scan --format sarif`` is SARIF 2.1.0 by the official schema."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import jsonschema
import pytest

from runbook_lib import rules as R
from runbook_lib import scan_cli
from runbook_lib.scan_sarif import FINGERPRINT_KEY, artifact_uri, sarif_log
from runbook_lib.scan_results import Finding

from test_scan_cli import PASSWORD, TOKEN, run  # the same command line and planted values as the CLI's tests

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with a secret in a file, one in a zip member and a gitignored one; run from its parent."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(f'TABLE = "orders"\nDB_PASSWORD = "{PASSWORD}"\n')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lib/conf.py", f'TOKEN = "{TOKEN}"\n')
    (root / "dist").mkdir()
    (root / "dist" / "function.zip").write_bytes(buf.getvalue())
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "x.py").write_text(f'DB_PASSWORD = "{PASSWORD}"\n')
    monkeypatch.chdir(tmp_path)
    return Path("repo")


def test_sarif_of_a_scan_validates_against_the_official_schema(project, capsys):
    code, out, err = run(["--format", "sarif", project], capsys)
    assert code == 1
    log = json.loads(out)
    jsonschema.validate(log, SCHEMA)
    run_ = log["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == list(R.RULES)
    results = {r["ruleId"]: r for r in run_["results"]}
    assert set(results) == {"keyword-assignment", "github-token"}
    code_result = results["keyword-assignment"]["locations"][0]["physicalLocation"]
    assert code_result == {"artifactLocation": {"uri": "repo/src/app.py"}, "region": {"startLine": 2}}
    member = results["github-token"]["locations"][0]
    assert member["physicalLocation"]["artifactLocation"]["uri"] == "repo/dist/function.zip"
    assert member["logicalLocations"][0]["fullyQualifiedName"] == "lib/conf.py:1"
    for r in run_["results"]:
        assert r["level"] == "error" and r["partialFingerprints"][FINGERPRINT_KEY].startswith("fp:")
        assert run_["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    notes = [n["message"]["text"] for n in run_["invocations"][0]["toolExecutionNotifications"]]
    assert notes == ["skipped repo/ignored: ignored by repo/.gitignore"]
    assert PASSWORD not in out + err and TOKEN not in out + err


def test_every_rule_has_help_text_and_a_severity():
    log = sarif_log([], {"skipped": []}, "0.1.0")
    jsonschema.validate(log, SCHEMA)
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["help"]["text"].startswith(rule["shortDescription"]["text"])
        assert ("role" in rule["help"]["text"]) and 0 < float(rule["properties"]["security-severity"]) <= 10
    assert log["runs"][0]["results"] == []


def test_environment_findings_are_logical_locations_in_the_env_file(tmp_path, capsys):
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"PARTNER": json.dumps({"api": {"token": TOKEN}})}))
    code, out, _ = run(["--format", "sarif", "--env-json", env], capsys)
    log = json.loads(out)
    jsonschema.validate(log, SCHEMA)
    location = log["runs"][0]["results"][0]["locations"][0]
    assert code == 1 and location["logicalLocations"][0]["fullyQualifiedName"] == "PARTNER.api.token"
    assert location["physicalLocation"]["artifactLocation"]["uri"] == env.as_uri()
    alone = sarif_log([Finding("jwt", "JSON Web Token", R.MOVE_TO_SECRETS_MANAGER, "eyJh…(90)", "fp:1",
                               variable="V")], {"skipped": []}, "0.1.0")
    jsonschema.validate(alone, SCHEMA)  # no env file named: no physical location, still valid
    assert "physicalLocation" not in alone["runs"][0]["results"][0]["locations"][0]


def test_a_clean_scan_exits_0_with_an_empty_result_list(tmp_path, capsys):
    (tmp_path / "app.py").write_text('TABLE = "orders"\n')
    code, out, _ = run(["--format", "sarif", tmp_path], capsys)
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []


def test_artifact_uris_are_relative_slash_paths_or_file_uris():
    assert artifact_uri("src/my app.py") == "src/my%20app.py"
    assert artifact_uri("/abs/x.py") == "file:///abs/x.py"


@pytest.mark.parametrize("fmt", ["table", "json", "sarif"])
def test_findings_exit_1_in_every_format(project, capsys, fmt):
    assert run(["--format", fmt, project], capsys)[0] == 1
    assert run(["--format", fmt, "--exclude", "src/", "--exclude", "dist/", project], capsys)[0] == 0


def test_fingerprints_are_stable_with_a_key_and_differ_per_run_without(project, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RUNBOOK_FINGERPRINT_KEY", raising=False)
    key = tmp_path / "fp.key"
    key.write_text("ab" * 32)

    def fingerprints(*extra):
        out = run(["--format", "json", *extra, project], capsys)[1]
        return sorted(r["fingerprint"] for r in json.loads(out))

    assert fingerprints("--fingerprint-key-file", key) == fingerprints("--fingerprint-key-file", key)
    assert fingerprints() != fingerprints()
    monkeypatch.setenv("RUNBOOK_FINGERPRINT_KEY", "ab" * 32)  # the variable keys as the file does
    assert fingerprints() == fingerprints("--fingerprint-key-file", key)
    table = run([project], capsys)[1]
    assert "keyed for this run only" not in table


def test_a_bad_key_file_is_one_line_exit_2(project, tmp_path, capsys):
    bad = tmp_path / "bad.key"
    bad.write_text(PASSWORD)
    code, out, err = run(["--fingerprint-key-file", bad, project], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "needs a hex key" in err
    assert PASSWORD not in err


ROOT = Path(__file__).resolve().parents[1]


def test_the_pre_commit_hook_runs_runbook_scan_on_the_staged_files(tmp_path, capsys):
    import yaml

    from runbook_lib import cli

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "runbook-scan" and hook["language"] == "python"
    program, *arguments = hook["entry"].split()
    assert program == "runbook"
    (tmp_path / "bad.py").write_text(f'DB_PASSWORD = "{PASSWORD}"\n')
    (tmp_path / "good.py").write_text('TABLE = "orders"\n')
    assert cli.main(arguments + [str(tmp_path / "good.py")]) == 0
    assert cli.main(arguments + [str(tmp_path / "good.py"), str(tmp_path / "bad.py")]) == 1
    assert PASSWORD not in "".join(capsys.readouterr())


def test_the_action_scans_writes_valid_sarif_uploads_it_and_fails_on_findings(project, tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    steps = {step.get("id") or step.get("name"): step for step in action["runs"]["steps"]}
    assert action["runs"]["using"] == "composite"
    upload = next(s for s in action["runs"]["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}" and "always()" in upload["if"]
    scan = steps["scan"]
    assert "runbook scan --format sarif" in scan["run"]
    output = tmp_path / "github_output"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "SCAN_PATHS": f"{project}", "SCAN_EXCLUDE": "dist/", "SARIF_FILE": str(tmp_path / "out.sarif"),
           "RUNBOOK_FINGERPRINT_KEY": "ab" * 32, "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(["bash", "-c", scan["run"]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr  # findings do not stop the job before the upload
    assert output.read_text().strip() == "exit-code=1"
    log = json.loads((tmp_path / "out.sarif").read_text())
    jsonschema.validate(log, SCHEMA)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["keyword-assignment"]  # dist/ excluded
    assert "exit 1" in steps["Fail on findings"]["run"] and steps["Fail on findings"]["if"] == (
        "${{ steps.scan.outputs.exit-code == '1' }}")
