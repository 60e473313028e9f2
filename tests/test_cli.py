"""The command line: every printed line is one terminal-safe line; ``runbook key``."""

import datetime
import json
import logging

import pytest

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


# -- what each command says about itself ---------------------------------------------------------
def _subcommands():
    parser = cli.build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


def test_every_subcommand_has_a_description_line(capsys):
    commands = _subcommands()
    assert {"run", "audit", "backout", "closeout", "unlock", "verify", "key", "scan", "lab", "lab-runtimes"} <= set(
        commands)
    for name, parser in commands.items():
        assert parser.description and parser.description.startswith(f"runbook {name}: "), name
        assert len(parser.description.splitlines()) == 1
        parser.print_help()
        assert parser.description in " ".join(capsys.readouterr().out.split()), name


@pytest.mark.parametrize("argv, level", [(["key"], logging.INFO), (["-q", "key"], logging.WARNING),
                                          (["key", "-q"], logging.WARNING), (["-v", "key"], logging.DEBUG),
                                          (["key", "--verbose"], logging.DEBUG)])
def test_quiet_and_verbose_set_how_much_the_runner_says(argv, level, capsys):
    from runbook_lib.execution import LOG

    try:
        assert cli.main(argv) == 0
        assert LOG.level == level
    finally:
        cli.set_verbosity(0)


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["-q", "-v", "key"])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_verbose_on_the_lab_logs_every_request(monkeypatch):
    seen = {}
    parser = cli.build_parser()
    [lab] = [p for n, p in _subcommands().items() if n == "lab"]
    assert any("--verbose" in a.option_strings for a in lab._actions)
    monkeypatch.setattr(cli, "build_parser", lambda command=None: parser)
    parser._subparsers._group_actions[0].choices["lab"].set_defaults(handler=lambda args: seen.update(
        verbose=args.verbose) or 0)
    try:
        assert cli.main(["-v", "lab"]) == 0
    finally:
        cli.set_verbosity(0)
    assert seen == {"verbose": True}


def test_quiet_leaves_out_the_run_folder_line(capsys, tmp_path):
    assert cli._report(Outcome(0, "every check passed", tmp_path), quiet=True) == 0
    assert capsys.readouterr().out == "runbook: every check passed\n"
    assert cli._report(Outcome(0, "every check passed", tmp_path)) == 0
    assert capsys.readouterr().out == f"{tmp_path}\nrunbook: every check passed\n"


def test_an_audit_folder_is_named_as_an_audit(monkeypatch, tmp_path):
    seen = {}

    def run_runbook(options, **kwargs):
        seen.update(kwargs, apply=options.apply, backout=options.backout)
        return Outcome(0, "ok", None)

    monkeypatch.setattr(runner, "run_runbook", run_runbook)
    assert cli.main(["audit"]) == 0
    assert seen["folder_label"] == "audit" and seen["names"] == [runner.TEST_PLAN]
    assert (seen["apply"], seen["backout"]) == (False, False)
    stamp = datetime.datetime(2026, 11, 21, 19, 30, tzinfo=datetime.timezone.utc)
    assert runner.new_run_dir(tmp_path, "lab", stamp, label="audit").name == "20261121T193000Z-lab-audit"
    assert runner.new_run_dir(tmp_path, "lab", stamp, label="audit").name == "20261121T193000Z-lab-audit-2"
    assert runner.new_run_dir(tmp_path, "lab", stamp).name == "20261121T193000Z-lab"


@pytest.mark.parametrize("command, verb", [("backout", "back out"), ("closeout", "close out")])
def test_a_later_command_on_a_stopped_lab_run_says_what_happened_and_what_to_do(monkeypatch, tmp_path, capsys,
                                                                                 command, verb):
    (tmp_path / "ledger.json").write_text(json.dumps({"context": {"target": "lab", "region": "us-east-1"}}))
    monkeypatch.setattr(runner, "verify_before_running", lambda run_dir, options, purpose: None)
    assert cli.main([command, str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"there is nothing left to {verb}" in line and "`runbook lab` in another terminal" in line
    assert f"`runbook {command} RUN_DIR --endpoint-url URL`" in line and "--no-backout" in line
    assert "same state" not in line


# -- start-up: a command imports what it needs -------------------------------------------------
def test_scan_imports_neither_boto3_nor_the_other_commands_modules(tmp_path):
    import subprocess
    import sys

    (tmp_path / "app.py").write_text('TABLE = "orders"\n')
    probe = ("import sys\nfrom runbook_lib import cli\ncode = cli.main(['scan', sys.argv[1], '--format', 'json'])\n"
             "loaded = [m for m in ('boto3', 'botocore', 'runbook_lib.change.unlock', 'runbook_lib.lab', 'logging',"
             " 'runbook_lib.runner', 'runbook_lib.execution', 'multiprocessing', 'pathspec', 'papermill') if m in sys.modules]\nprint(code, loaded, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]" and done.stderr.strip() == "0 []", done.stderr


def test_the_chosen_command_is_the_first_word_that_is_not_an_option():
    assert cli.chosen_command(["-q", "scan", "x", "--format", "json"]) == "scan"
    assert cli.chosen_command(["--version"]) is None and cli.chosen_command([]) is None
    only_scan = {name: parser for name, parser in cli.build_parser("scan")._subparsers._group_actions[0]
                 .choices.items()}
    assert any("--env-json" in a.option_strings for a in only_scan["scan"]._actions)
    assert not any("--into" in a.option_strings for a in only_scan["lab-runtimes"]._actions)  # not imported
    everything = _subcommands()  # build_parser() with no command: every module, as --help needs
    assert any("--family" in a.option_strings for a in everything["lab-runtimes"]._actions)
