"""The command line: every printed line is one terminal-safe line; ``runbook key``."""

from runbook_lib import cli, runner
from runbook_lib.archive import Outcome
from runbook_lib.signing import load_signing_key


def test_a_reason_from_aws_cannot_drive_the_terminal(capsys, tmp_path):
    outcome = Outcome(2, "02_implementation cell 4: AwsCallError: \x1b[2J\x1b[32mall PASS\x1b[0m\rok", tmp_path)
    assert cli._report(outcome) == 2
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err + captured.out and "\r" not in captured.err
    assert "\\x1b[2J\\x1b[32mall PASS" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_errors_are_one_escaped_line(capsys, monkeypatch):
    def fail(*_):
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/\x1b[2Jnotebooks")
    monkeypatch.setattr(runner, "run_runbook", fail)
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["runbook: /nowhere/\\x1b[2Jnotebooks: No such file or directory"]


def test_key_prints_the_fingerprint_and_the_public_pem(capsys):
    assert cli.main(["key"]) == 0
    captured = capsys.readouterr()
    key = load_signing_key()
    assert key.public.fingerprint in captured.err
    assert captured.out == key.public.pem() and captured.out.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in captured.out + captured.err


def test_an_unusable_signing_key_stops_a_run_before_anything_starts(tmp_path, capsys):
    code = cli.main(["audit", "--signing-key", str(tmp_path / "nope.pem"), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("runbook: --signing-key: no key file at")
    assert not (tmp_path / "runs").exists()
