"""The runner: dated run folder, parameters routing, artifacts, exit codes 0/1/2.

Uses tiny stand-in notebooks (written by a fixture) against a real moto server on a
loopback port, so the runner's own behaviour is tested in seconds; the real notebooks
run against the lab in test_notebooks.py.
"""

import json

import nbformat
import pytest

from conftest import free_port
from runbook_lib import cli, runner
from runbook_lib.exceptions import InputError
from runbook_lib.manifest import verify_manifest

PHASES = {"01_test_plan": "baseline", "02_implementation": "change",
          "03_functional_validation": "validation", "04_backout": "backout"}


@pytest.fixture
def stand_in_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, phase in PHASES.items():
        params = "\n".join([
            'target: str = "lab"  # lab or aws',
            'region: str = "us-east-1"  # region',
            'profile: str = ""  # profile',
            'endpoint_url: str = ""  # endpoint',
            'run_dir: str = "."  # run folder',
            'function_name: str = ""  # function',
            'apply: bool = False  # change things',
            'change_ticket: str = ""  # ticket',
            f'{phase}_outcome: str = "pass"  # pass, fail or raise',
            'planted: str = ""  # a value the stand-in handles as a secret',
        ])
        body = "\n".join([
            "from runbook_lib.checks import CheckLog",
            f"log = CheckLog(run_dir, {name!r}, {phase!r})",
            f"if {phase}_outcome == 'raise':",
            "    raise RuntimeError('stand-in failure')",
            f"ok = {phase}_outcome == 'pass'",
            f"log.add('{phase}-check', 'stand-in', 'PASS' if ok else 'FAIL',",
            "        reason='' if ok else 'stand-in failed', controls=['AU-2'])",
            "print('function', function_name, 'apply', apply, 'ticket', change_ticket)",
            "import json, pathlib",
            "from runbook_lib.redaction import Fingerprinter",
            "if planted:",
            "    pathlib.Path(run_dir, 'findings.json').write_text(json.dumps([{'fingerprint': Fingerprinter()(planted)}]))",
        ])
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), cell, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def _options(tmp_path, endpoint, notebooks, **kw):
    kw.setdefault("target", "lab")
    return runner.RunOptions(region="us-east-1", endpoint_url=endpoint,
                             out=tmp_path / "runs", notebooks_dir=notebooks, **kw)


@pytest.fixture(autouse=True)
def _moto_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_full_run_makes_the_documented_folder_and_exits_0(tmp_path, moto_endpoint, stand_in_notebooks):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks,
                                          function_name="orders-api"))
    assert outcome.exit_code == 0, outcome.reason
    run_dir = outcome.run_dir
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.endswith("-lab")
    names = sorted(p.name for p in run_dir.iterdir())
    for stem in PHASES:
        assert f"{stem}.ipynb" in names and f"{stem}.html" in names
    for artifact in ("checks.json", "summary.md", "manifest.json", "run.json"):
        assert artifact in names
    checks = json.loads((run_dir / "checks.json").read_text())
    assert [c["phase"] for c in checks] == ["baseline", "change", "validation", "backout", "validation"]
    assert checks[-1]["id"] == "no-secret-in-artifacts" and checks[-1]["status"] == "PASS"
    assert verify_manifest(run_dir) == []
    # the lab applies by default under the lab ticket, and the function is passed through
    executed = (run_dir / "02_implementation.ipynb").read_text()
    assert "apply True ticket lab-demo" in executed and "function orders-api" in executed
    # no absolute path of the machine in the archived notebooks
    assert str(tmp_path) not in executed


def test_failed_validation_check_exits_1_but_baseline_findings_do_not(tmp_path, moto_endpoint,
                                                                      stand_in_notebooks):
    outcome = runner.run_runbook(_options(
        tmp_path, moto_endpoint, stand_in_notebooks,
        parameters={"baseline_outcome": "fail", "validation_outcome": "fail"}))
    assert outcome.exit_code == 1
    assert "validation-check" in outcome.reason and "baseline-check" not in outcome.reason
    summary = (outcome.run_dir / "summary.md").read_text()
    assert "| validation-check | stand-in | validation | FAIL |" in summary


def test_audit_fails_on_a_baseline_finding(tmp_path, moto_endpoint, stand_in_notebooks):
    options = _options(tmp_path, moto_endpoint, stand_in_notebooks, apply=False, backout=False,
                       parameters={"baseline_outcome": "fail"})
    outcome = runner.run_runbook(options, names=[runner.TEST_PLAN], include_baseline=True)
    assert outcome.exit_code == 1
    assert sorted(p.name for p in outcome.run_dir.glob("*.ipynb")) == ["01_test_plan.ipynb"]


def test_notebook_exception_exits_2_names_the_cell_and_keeps_the_output(tmp_path, moto_endpoint,
                                                                        stand_in_notebooks):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks,
                                          parameters={"change_outcome": "raise"}))
    assert outcome.exit_code == 2
    assert outcome.reason.startswith("02_implementation cell")
    assert "RuntimeError: stand-in failure" in outcome.reason
    assert (outcome.run_dir / "02_implementation.ipynb").exists()
    statuses = {n.name: n.status for n in outcome.notebooks}
    assert statuses == {"01_test_plan": "ok", "02_implementation": "failed",
                        "03_functional_validation": "skipped", "04_backout": "skipped"}
    assert verify_manifest(outcome.run_dir) == []


def test_unknown_parameter_is_an_error_before_anything_runs(tmp_path, moto_endpoint, stand_in_notebooks):
    with pytest.raises(InputError, match="no_such_thing: no notebook declares"):
        runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks,
                                    parameters={"no_such_thing": "1"}))
    assert not (tmp_path / "runs").exists()


def test_aws_apply_without_ticket_exits_2_before_running(tmp_path, stand_in_notebooks, capsys, monkeypatch):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    code = cli.main(["run", "--target", "aws", "--region", "us-east-1", "--apply"])
    assert code == 2
    assert "change_ticket" in capsys.readouterr().err


def test_unreachable_endpoint_exits_2_with_one_line(tmp_path, stand_in_notebooks, capsys, monkeypatch):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    code = cli.main(["audit", "--target", "aws", "--region", "us-east-1",
                     "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "cannot reach" in err[0]


def test_coerce_parameter_follows_declared_types():
    assert runner.coerce_parameter("n", "5", {"inferred_type_name": "int"}) == 5
    assert runner.coerce_parameter("b", "false", {"inferred_type_name": "bool"}) is False
    assert runner.coerce_parameter("l", '["a", "b"]', {"inferred_type_name": "list"}) == ["a", "b"]
    assert runner.coerce_parameter("l", "a,b", {"inferred_type_name": "list"}) == ["a", "b"]
    with pytest.raises(InputError, match="expects an integer"):
        runner.coerce_parameter("n", "five", {"inferred_type_name": "int"})


def test_verify_command_detects_tampering(tmp_path, moto_endpoint, stand_in_notebooks, capsys):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks, backout=False))
    assert cli.main(["verify", str(outcome.run_dir)]) == 0
    summary = outcome.run_dir / "summary.md"
    summary.write_text(summary.read_text() + "\nall good, trust me\n")
    assert cli.main(["verify", str(outcome.run_dir)]) == 1
    assert "changed: summary.md" in capsys.readouterr().err


def test_a_value_passed_as_a_papermill_parameter_is_caught_by_the_leak_guard(
        tmp_path, moto_endpoint, stand_in_notebooks):
    planted = "Xk29-vLq7-Pw03-Zr58"
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks, backout=False,
                                          parameters={"planted": planted}))
    assert outcome.exit_code == 1
    assert "no-secret-in-artifacts" in outcome.reason
    leak = [c for c in outcome.checks if c.id == "no-secret-in-artifacts"][0]
    assert any(h.startswith("01_test_plan.ipynb:") for h in leak.evidence["hits"])
    assert (planted in json.dumps(leak.evidence) + outcome.reason) is False
