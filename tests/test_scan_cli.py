"""Tests of ``runbook scan``: output shapes, exit codes, env JSON shapes, no value printed."""

from __future__ import annotations

import argparse
import io
import json
import zipfile

import pytest

from runbook_lib import scan_cli

PASSWORD = "Tq7!vR2m#Lx9"
TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"


def run(argv, capsys):
    parser = argparse.ArgumentParser()
    scan_cli.add_arguments(parser)
    code = scan_cli.main(parser.parse_args([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def package(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", f'DB_PASSWORD = "{PASSWORD}"\nTABLE = "orders"\n')
    path = tmp_path / "function.zip"
    path.write_bytes(buf.getvalue())
    return path


def test_json_output_and_exit_1(package, capsys):
    code, out, err = run(["--format", "json", package], capsys)
    assert code == 1
    rows = json.loads(out)
    assert [(r["path"], r["line"], r["rule"], r["remediation"]) for r in rows] == [
        (f"{package}!app.py", 1, "keyword-assignment", "move-to-secrets-manager")]
    assert set(rows[0]) >= {"path", "line", "rule", "remediation", "redacted", "fingerprint"}
    assert (PASSWORD in out + err) is False


def test_table_output_exits_1_on_findings_like_every_format(package, capsys):
    code, out, _ = run([package], capsys)
    assert code == 1 and "keyword-assignment" in out and "1 finding(s)" in out
    assert (PASSWORD in out) is False
    assert "keyed for this run only" in out  # no key given: the table says the fingerprints do not compare
    code, _, _ = run(["--fail-on-findings", package], capsys)
    assert code == 1


def test_clean_tree_exits_0(tmp_path, capsys):
    (tmp_path / "app.py").write_text('TABLE = "orders"\n')
    code, out, _ = run(["--format", "json", tmp_path], capsys)
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize("shape", ["plain", "get-function-configuration", "get-function"])
def test_env_json_shapes(tmp_path, capsys, shape):
    variables = {"PARTNER_API_KEY": TOKEN, "TABLE_NAME": "orders"}
    doc = {"plain": variables,
           "get-function-configuration": {"FunctionName": "f", "Environment": {"Variables": variables}},
           "get-function": {"Configuration": {"Environment": {"Variables": variables}}}}[shape]
    path = tmp_path / "env.json"
    path.write_text(json.dumps(doc))
    code, out, _ = run(["--format", "json", "--env-json", path], capsys)
    rows = json.loads(out)
    assert code == 1 and [(r["variable"], r["rule"]) for r in rows] == [("PARTNER_API_KEY", "github-token")]
    assert "path" not in rows[0] and (TOKEN in out) is False


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    code, out, err = run([tmp_path / "missing"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    bad = tmp_path / "env.json"
    bad.write_text('{"DB_PASSWORD": "' + PASSWORD + '"')  # truncated JSON
    code, out, err = run(["--env-json", bad], capsys)
    assert code == 2 and err.startswith("runbook: --env-json") and (PASSWORD in err) is False
    zip_path = tmp_path / "broken.zip"
    zip_path.write_bytes(b"PK\x03\x04" + PASSWORD.encode() * 4)
    code, _, err = run([zip_path], capsys)
    assert code == 2 and (PASSWORD in err) is False
    code, _, err = run([], capsys)
    assert code == 2


def test_print_allowlist_entries_then_allowlist_silences(package, tmp_path, capsys):
    code, out, _ = run(["--print-allowlist-entries", package], capsys)
    assert out.startswith("sha256:") and (PASSWORD in out) is False
    allow = tmp_path / "allow.txt"
    allow.write_text(out)
    code, out, _ = run(["--format", "json", "--allowlist", allow, package], capsys)
    assert code == 0 and json.loads(out) == []


def test_hostile_member_names_are_shown_not_obeyed(tmp_path, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("\x1b[2J\x1b]0;owned\x07app\rOK.py", f'DB_PASSWORD = "{PASSWORD}"\n')
    path = tmp_path / "function.zip"
    path.write_bytes(buf.getvalue())
    code, out, err = run([path], capsys)
    assert code == 1 and "keyword-assignment" in out
    assert not any(ch in out + err for ch in "\x1b\x07\r")
    assert "\\x1b[2J\\x1b]0;owned\\x07app\\x0dOK.py" in out
    code, out, _ = run(["--format", "json", path], capsys)
    assert "\x1b" not in out and json.loads(out)[0]["path"].endswith("\x1b[2J\x1b]0;owned\x07app\rOK.py")
