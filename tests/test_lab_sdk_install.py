"""``runbook lab-runtimes`` (runbook_lib.lab.sdk_install): the SDKs the lab's runtimes offer, from the shipped manifests."""

import subprocess
import sys

import pytest

from runbook_lib import cli
from runbook_lib.lab import sdk_install
from runbook_lib.lab.runtimes import launcher


def test_the_manifests_are_the_shipped_ones():
    manifests = sdk_install.sdk_manifests()
    assert {p.name for p in manifests.iterdir()} >= {"python-requirements.txt", "package.json", "package-lock.json"}


class _Recorder:
    def __init__(self, returncode=0, stderr=""):
        self.calls, self.returncode, self.stderr = [], returncode, stderr

    def __call__(self, command, **kwargs):
        self.calls.append((command, kwargs))
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)


def test_python_sdk_is_pip_installed_into_the_lab_home_and_marked(monkeypatch, tmp_path, capsys):
    recorder = _Recorder()
    monkeypatch.setattr(sdk_install.subprocess, "run", recorder)
    (tmp_path / "python").mkdir()
    (tmp_path / "python" / "stale.py").write_text("")  # a half-installed folder never counts
    assert cli.main(["lab-runtimes", "--family", "python", "--into", str(tmp_path)]) == 0
    [(command, _)] = recorder.calls
    assert command[:3] == [sys.executable, "-m", "pip"] and "--no-deps" in command
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert command[-1] == str(sdk_install.sdk_manifests() / "python-requirements.txt")
    assert (tmp_path / "python" / ".installed").is_file() and not (tmp_path / "python" / "stale.py").exists()
    assert capsys.readouterr().out == f"runbook: python: boto3 installed in {tmp_path / 'python'}\n"


def test_a_failed_install_exits_1_naming_it_and_leaves_no_marker(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sdk_install.subprocess, "run", _Recorder(1, "x\nERROR: No matching distribution found\n"))
    assert cli.main(["lab-runtimes", "--family", "python", "--into", str(tmp_path)]) == 1
    assert capsys.readouterr().err == ("runbook: pip install of the Python runtime SDK failed: ERROR: No matching "
                                       "distribution found\n")
    assert not (tmp_path / "python" / ".installed").exists()


def test_nodejs_sdk_is_npm_ci_of_the_lock_file(monkeypatch, tmp_path):
    recorder = _Recorder()
    monkeypatch.setattr(sdk_install.subprocess, "run", recorder)
    monkeypatch.setattr(sdk_install.shutil, "which", lambda name: "/usr/bin/npm")
    assert cli.main(["lab-runtimes", "--family", "nodejs", "--into", str(tmp_path)]) == 0
    [(command, kwargs)] = recorder.calls
    assert command[:2] == ["/usr/bin/npm", "ci"] and kwargs["cwd"] == tmp_path / "nodejs"
    assert (tmp_path / "nodejs" / "package-lock.json").read_bytes() == (
        sdk_install.sdk_manifests() / "package-lock.json").read_bytes()
    assert (tmp_path / "nodejs" / ".installed").is_file()


def test_without_npm_the_python_sdk_still_installs_and_the_exit_says_one_failed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sdk_install.subprocess, "run", _Recorder())
    monkeypatch.setattr(sdk_install.shutil, "which", lambda name: None)
    assert cli.main(["lab-runtimes", "--into", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "python: boto3 installed" in captured.out
    assert captured.err.startswith("runbook: npm not found: the lab will not run Node.js functions")


def test_the_lab_says_to_run_the_command_when_an_sdk_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNBOOK_LAB_RUNTIMES", str(tmp_path))
    problem = launcher("python").problem
    assert "is missing from" in problem and problem.endswith("run `runbook lab-runtimes`")
