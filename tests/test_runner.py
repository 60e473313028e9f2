"""The runner: dated run folder, parameters routing, artifacts, exit codes 0/1/2, archived runs as data.

Uses tiny stand-in notebooks (written by a fixture) against a real moto server on a
loopback port, so the runner's own behaviour is tested in seconds; the real notebooks
run against the lab in test_notebooks.py.
"""

import getpass
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import free_port
from export_formats import assert_exports
from runbook_lib import cli, runner
from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.manifest import verify_manifest, verify_run, write_manifest
from runbook_lib.signing import SigningKey, load_signing_key

PHASES = {"01_test_plan": "baseline", "02_implementation": "change",
          "03_functional_validation": "validation", "04_backout": "backout", "05_closeout": "closeout"}
PLANTED = ("runbook_lib/__init__.py", "json.py", "pandas.py", "boto3.py")


def _stand_in(name: str, phase: str) -> nbformat.NotebookNode:
    params = "\n".join([
        'target: str = "lab"  # lab or aws',
        'region: str = "us-east-1"  # region',
        'profile: str = ""  # profile',
        'endpoint_url: str = ""  # endpoint',
        'run_dir: str = "."  # run folder',
        'function_name: str = ""  # function',
        'apply: bool = False  # change things',
        'change_ticket: str = ""  # ticket',
        f'{phase}_outcome: str = "pass"  # pass, fail, raise or traceback',
        'planted: str = ""  # a value the stand-in handles as a secret',
        'plant_modules: str = ""  # marker file: the test plan plants modules that append to it when imported',
        'runner_pid: int = 0  # the runner to send a Ctrl-C to',
    ])
    body = "\n".join([
        "from runbook_lib.checks import Check, CheckLog",
        "import pathlib",
        "if plant_modules:",
        "    import json, pandas, boto3  # in a later kernel, the planted files must not be what these are",
        f"    if {phase!r} == 'baseline':",
        "        (pathlib.Path(run_dir) / 'runbook_lib').mkdir()",
        f"        for planted_name in {PLANTED!r}:",
        "            (pathlib.Path(run_dir) / planted_name).write_text(",
        "                f'open({plant_modules!r}, \"a\").write(__name__ + \" ran\\\\n\")\\n')",
        "from runbook_lib.ledger import Ledger",
        f"if {phase!r} == 'baseline':",
        "    Ledger.open(run_dir).bind(target=target, region=region, function_name=function_name)",
        f"log = CheckLog(run_dir, {name!r}, {phase!r})",
        f"if {phase}_outcome == 'raise':",
        "    raise RuntimeError('stand-in failure')",
        f"if {phase}_outcome == 'interrupt':  # Ctrl-C on the runner while this cell runs",
        "    import os, signal, time",
        "    os.kill(runner_pid, signal.SIGINT)  # the runner, named by the test (a forked kernel's parent is the fork server)",
        "    time.sleep(60)",
        f"if {phase}_outcome == 'traceback':  # raised deep in runbook_lib, quoting an absolute path",
        "    Ledger.open(pathlib.Path(run_dir).resolve() / 'nowhere', create=False)",
        f"ok = {phase}_outcome == 'pass'",
        f"log.put(Check('{phase}-check', 'stand-in', '{phase}', 'PASS' if ok else 'FAIL',",
        "          reason='' if ok else 'stand-in failed', controls=['AU-2']))",
        "print('function', function_name, 'apply', apply, 'ticket', change_ticket, 'run_dir', run_dir)",
        "import json as _json",
        "from runbook_lib.redaction import Fingerprinter",
        "if planted:",
        "    pathlib.Path(run_dir, 'findings.json').write_text(_json.dumps([{'fingerprint': Fingerprinter()(planted)}]))",
    ])
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def stand_in_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, phase in PHASES.items():
        nbformat.write(_stand_in(name, phase), str(folder / f"{name}.ipynb"))
    return folder


def _options(tmp_path, endpoint, notebooks, **kw):
    kw.setdefault("target", "lab")
    return runner.RunOptions(region="us-east-1", endpoint_url=endpoint,
                             out=tmp_path / "runs", notebooks_dir=notebooks, **kw)


def _snapshot(folder: Path) -> dict:
    """Every file of a folder with its content hash and modification time."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


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
    for stem in list(PHASES)[:4]:
        assert f"{stem}.ipynb" in names and f"{stem}.html" in names
    for artifact in ("checks.json", "summary.md", "manifest.json", "run.json", "ledger.json"):
        assert artifact in names
    checks = json.loads((run_dir / "checks.json").read_text())
    assert [c["phase"] for c in checks] == ["baseline", "change", "validation", "backout", "validation"]
    assert checks[-1]["id"] == "no-secret-in-artifacts" and checks[-1]["status"] == "PASS"
    assert all(c["summary"] for c in checks)  # every row, PASS included, has its evidence line
    assert_exports(run_dir, checks)
    assert verify_manifest(run_dir) == []
    assert outcome.signer == load_signing_key().public.fingerprint and outcome.public_key
    # the lab applies by default under the lab ticket, and the function is passed through
    executed = (run_dir / "02_implementation.ipynb").read_text()
    assert "apply True ticket lab-demo" in executed and "function orders-api" in executed
    # the kernel reached the run folder by its own name, from a folder outside it
    assert f"run_dir {run_dir.name}" in executed
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
    cases = assert_exports(outcome.run_dir, json.loads((outcome.run_dir / "checks.json").read_text()))
    assert cases["validation/validation-check"].find("failure") is not None  # JUnit fails as the exit code does
    assert cases["baseline/baseline-check"].find("failure") is None


def test_audit_fails_on_a_baseline_finding(tmp_path, moto_endpoint, stand_in_notebooks):
    options = _options(tmp_path, moto_endpoint, stand_in_notebooks, apply=False, backout=False,
                       parameters={"baseline_outcome": "fail"})
    outcome = runner.run_runbook(options, names=[runner.TEST_PLAN], include_baseline=True)
    assert outcome.exit_code == 1
    assert sorted(p.name for p in outcome.run_dir.glob("*.ipynb")) == ["01_test_plan.ipynb"]
    cases = assert_exports(outcome.run_dir, json.loads((outcome.run_dir / "checks.json").read_text()))
    assert cases["baseline/baseline-check"].find("failure") is not None  # an audit's baseline gates


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


def test_a_failed_runs_traceback_names_no_absolute_path_or_user(tmp_path, moto_endpoint, stand_in_notebooks):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks,
                                          parameters={"change_outcome": "traceback"}))
    assert outcome.exit_code == 2 and "InputError" in outcome.reason
    notebook = (outcome.run_dir / "02_implementation.ipynb").read_text()
    page = (outcome.run_dir / "02_implementation.html").read_text()
    assert "ledger.py" in notebook and "nowhere" in notebook  # the traceback is kept, only shortened
    machine = [str(Path.home()) + "/", str(Path.cwd()), str(tmp_path), sys.prefix, getpass.getuser() + "/",
               str(Path(runner.__file__).resolve().parent)]
    for text, name in ((notebook, "notebook"), (page, "HTML"), (outcome.reason, "reason"),
                       ((outcome.run_dir / "summary.md").read_text(), "summary")):
        assert [m for m in machine if m in text] == [], f"the {name} names this machine"
    for path in (p for p in outcome.run_dir.rglob("*") if p.is_file()):  # every artifact of the failed run
        data = path.read_bytes()
        assert [m for m in machine if m.encode() in data] == [], f"{path.name} names this machine"


def test_ctrl_c_still_finishes_and_signs_the_folder(tmp_path, moto_endpoint, stand_in_notebooks):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks,
                                          parameters={"change_outcome": "interrupt", "runner_pid": os.getpid()}))
    assert outcome.exit_code == 2 and outcome.reason.startswith("02_implementation cell 3: interrupted")
    assert {n.name: n.status for n in outcome.notebooks}["03_functional_validation"] == "skipped"
    assert (outcome.run_dir / "02_implementation.html").is_file()
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


@pytest.mark.parametrize("where", ["a file", "under a file", "unwritable"])
def test_a_bad_out_is_one_line_and_exit_2(tmp_path, moto_endpoint, stand_in_notebooks, capsys, monkeypatch, where):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    out = {"a file": tmp_path / "passwd", "under a file": tmp_path / "passwd" / "runs",
           "unwritable": Path("/proc/runbook-runs")}[where]
    code = cli.main(["audit", "--target", "aws", "--region", "us-east-1", "--endpoint-url", moto_endpoint,
                     "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("runbook: --out: "), err
    assert (tmp_path / "passwd").read_text() == "root:x:0:0\n"


def test_verify_command_detects_tampering_and_names_the_signer(tmp_path, moto_endpoint, stand_in_notebooks, capsys):
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks, backout=False))
    assert cli.main(["verify", str(outcome.run_dir)]) == 0
    assert f"signed by {outcome.signer} (a trusted key)" in capsys.readouterr().out
    assert cli.main(["verify", str(outcome.run_dir), "--trusted-key", "ed25519:" + "0" * 32]) == 1
    assert "NOT a trusted key" in capsys.readouterr().err
    summary = outcome.run_dir / "summary.md"
    summary.write_text(summary.read_text().replace("FAIL", "PASS") + "\nall good, trust me\n")
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


# -- runner-owned parameters --------------------------------------------------------------
@pytest.mark.parametrize("command", ["run", "audit", "backout", "closeout"])
@pytest.mark.parametrize("name, option", [("run_dir", "--out"), ("target", "--target"),
                                          ("region", "--region"), ("profile", "--profile"),
                                          ("endpoint_url", "--endpoint-url")])
def test_runner_owned_parameters_cannot_be_set_with_p(tmp_path, stand_in_notebooks, capsys, monkeypatch,
                                                      command, name, option):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    (other_run / "ledger.json").write_text('{"format": 1, "context": {"target": "lab"}}\n')
    before = _snapshot(tmp_path)
    where = [str(other_run)] if command in ("backout", "closeout") else ["--out", str(tmp_path / "runs")]
    code = cli.main([command, *where, "-p", name, str(other_run), "-p", "change_ticket", "CHG-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"runbook: -p {name}: is set by the runner")
    assert option in err[0]
    assert _snapshot(tmp_path) == before, "something was written"


# -- archived runs are data ---------------------------------------------------------------------
def test_planted_modules_never_run_in_run_backout_or_closeout(tmp_path, moto_endpoint, stand_in_notebooks):
    marker = tmp_path / "planted-code-ran.txt"
    kept = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks, backout=False,
                                       parameters={"plant_modules": str(marker)}))
    assert kept.exit_code == 0, kept.reason
    run_dir = kept.run_dir
    assert all((run_dir / name).is_file() for name in PLANTED)  # planted during the run, so signed with it
    assert not marker.exists(), marker.read_text()
    for later, notebook in ((runner.run_backout, "04_backout"), (runner.run_closeout, "05_closeout")):
        outcome = later(run_dir, runner.RunOptions(endpoint_url=moto_endpoint, notebooks_dir=stand_in_notebooks,
                                                   parameters={"plant_modules": str(marker)}))
        assert outcome.exit_code == 0, outcome.reason
        assert (run_dir / f"{notebook}.ipynb").is_file()
        assert not marker.exists(), f"planted module ran: {marker.read_text()}"
    assert verify_manifest(run_dir) == []


def _tamper(run_dir: Path, how: str, other_key: SigningKey) -> str:
    """Change an archived folder the way an attacker would; return the expected first difference."""
    summary = run_dir / "summary.md"
    if how == "edited":
        summary.write_text(summary.read_text() + "all good\n")
        return "changed: summary.md"
    if how == "planted module":
        (run_dir / "boto3.py").write_text("import os\n")
        return "unexpected: boto3.py"
    if how == "planted lock":
        (run_dir / ".lock").write_text("")
        return "unexpected: .lock"
    if how == "re-hashed":
        summary.write_text(summary.read_text().replace("FAIL", "PASS"))
        doc = json.loads((run_dir / "manifest.json").read_text())
        for entry in doc["files"]:
            path = run_dir / entry["path"]
            entry["sha256"], entry["size"] = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
        (run_dir / "manifest.json").write_text(json.dumps(doc))
        return "bad signature: manifest.json"
    if how == "re-signed":
        summary.write_text(summary.read_text().replace("FAIL", "PASS"))
        write_manifest(run_dir, other_key)
        return "untrusted signer: manifest.json"
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc.pop("signature")
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    return "not signed: manifest.json"


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory, moto_endpoint):
    """A run that kept its change (no backout) and has a failed validation check, signed."""
    folder = tmp_path_factory.mktemp("signed")
    notebooks = folder / "notebooks"
    notebooks.mkdir()
    for name, phase in PHASES.items():
        nbformat.write(_stand_in(name, phase), str(notebooks / f"{name}.ipynb"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        outcome = runner.run_runbook(_options(folder, moto_endpoint, notebooks, backout=False,
                                              parameters={"validation_outcome": "fail"}))
    assert outcome.exit_code == 1 and verify_manifest(outcome.run_dir) == []
    return outcome.run_dir


@pytest.fixture
def kept_run(signed_run, tmp_path):
    """A fresh copy of :func:`signed_run` for one test to change (a copy verifies like the original)."""
    copy = tmp_path / signed_run.name
    shutil.copytree(signed_run, copy)
    assert verify_manifest(copy) == []
    return copy


@pytest.mark.parametrize("how", ["edited", "planted module", "planted lock", "re-hashed", "re-signed", "unsigned"])
@pytest.mark.parametrize("command", ["backout", "closeout"])
def test_a_tampered_folder_is_refused_before_anything_runs(kept_run, moto_endpoint, stand_in_notebooks, tmp_path,
                                                           capsys, monkeypatch, how, command):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    other_key = SigningKey(ed25519.Ed25519PrivateKey.generate(), tmp_path / "attacker.pem")
    expected = _tamper(kept_run, how, other_key)
    before = _snapshot(kept_run)
    code = cli.main([command, str(kept_run), "--endpoint-url", moto_endpoint, "--apply",
                     "-p", "change_ticket", "CHG-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"refusing to {command[:-3]} out: {expected}" in err[0] and "nothing was run" in err[0]
    assert _snapshot(kept_run) == before, "the refused command wrote into the folder"
    assert not (kept_run / f"{'04_backout' if command == 'backout' else '05_closeout'}.ipynb").exists()


def test_a_folder_signed_by_another_key_runs_once_that_key_is_trusted(kept_run, moto_endpoint, stand_in_notebooks,
                                                                      tmp_path):
    colleague = SigningKey(ed25519.Ed25519PrivateKey.generate(), tmp_path / "ci.pem")
    write_manifest(kept_run, colleague)
    options = dict(endpoint_url=moto_endpoint, notebooks_dir=stand_in_notebooks)
    with pytest.raises(ChangeRefused, match="untrusted signer"):
        runner.run_backout(kept_run, runner.RunOptions(**options))
    outcome = runner.run_backout(kept_run, runner.RunOptions(**options, trusted_keys=[colleague.public.fingerprint]))
    assert outcome.exit_code == 0, outcome.reason  # the backout's own checks decide; the validation FAIL stays listed
    assert "1 check of earlier commands in this folder not counted" not in outcome.reason
    assert "checks of earlier commands in this folder not counted" in outcome.reason
    result = verify_run(kept_run)
    assert result.ok and result.signer == load_signing_key().public.fingerprint  # re-signed by whoever backed out
    previous = json.loads((kept_run / "manifest.json").read_text())["previous_manifest"]
    assert previous["signer"] == colleague.public.fingerprint


def test_a_kernel_never_starts_in_the_run_folder(tmp_path, moto_endpoint, stand_in_notebooks):
    probe = stand_in_notebooks / "01_test_plan.ipynb"
    nb = nbformat.read(str(probe), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os, sys\nprint('cwd-is-run-folder', os.path.samefile(os.getcwd(), run_dir))\n"
        "print('cwd-on-path', any(p in ('', '.', os.getcwd()) for p in sys.path))"))
    nbformat.write(nb, str(probe))
    outcome = runner.run_runbook(_options(tmp_path, moto_endpoint, stand_in_notebooks, backout=False),
                                 names=[runner.TEST_PLAN])
    executed = (outcome.run_dir / "01_test_plan.ipynb").read_text()
    assert "cwd-is-run-folder False" in executed
    if sys.version_info >= (3, 11):  # PYTHONSAFEPATH
        assert "cwd-on-path False" in executed


def test_the_seeds_strategy_goes_only_to_the_seeded_function_unless_one_is_asked_for():
    from runbook_lib.runner import seeded_strategy

    seed = {"function_name": "orders-api", "strategy": "reference"}
    assert seeded_strategy(seed, "orders-api", {}) == {"strategy": "reference"}
    assert seeded_strategy(seed, "team-fn", {}) == {}
    assert seeded_strategy(seed, "orders-api", {"strategy": "wrapper"}) == {}
    assert seeded_strategy({}, "orders-api", {}) == {}
    assert seeded_strategy(seed, "orders-api", {}, declared=False) == {}  # runbook audit: the test plan alone


def test_allowlist_is_checked_before_anything_runs(tmp_path):
    from runbook_lib.exceptions import InputError
    from runbook_lib.runner import allowlist_parameter

    good = tmp_path / "allow.txt"
    good.write_text("# fixtures\nsha256:" + "a" * 64 + "\n")
    assert allowlist_parameter(str(good)) == {"allowlist_path": str(good)}
    assert allowlist_parameter("") == {}
    bad = tmp_path / "bad.txt"
    bad.write_text("not-an-entry\n")
    with pytest.raises(InputError):
        allowlist_parameter(str(bad))


def test_each_later_command_exits_on_what_it_did_not_on_an_earlier_refusal(kept_run, moto_endpoint,
                                                                          stand_in_notebooks, capsys, monkeypatch):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    where = [str(kept_run), "--endpoint-url", moto_endpoint]
    assert cli.main(["backout", *where, "-p", "backout_outcome", "raise"]) == 2  # refused in the notebook
    assert "04_backout cell" in capsys.readouterr().err
    assert cli.main(["closeout", *where]) == 0  # a plan: says so, and the refused backout does not decide it
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("runbook: plan only, nothing was changed (--apply -p change_ticket ID")
    assert cli.main(["closeout", *where, "--apply", "-p", "change_ticket", "CHG-1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("runbook: nothing to do: the ledger records no change")
    assert "every check passed (2 checks: 2 PASS, 0 WARN, 0 SKIP)" in out[-1]
    run = json.loads((kept_run / "run.json").read_text())
    assert run["exit_code"] == 0 and {n["name"]: n["status"] for n in run["notebooks"]}["04_backout"] == "failed"
    assert cli.main(["closeout", *where, "-p", "closeout_outcome", "fail"]) == 1
    assert "1 check of 2 failed: closeout-check (05_closeout)" in capsys.readouterr().err


def test_quiet_prints_only_the_final_line(kept_run, moto_endpoint, stand_in_notebooks, capfd, monkeypatch):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    try:
        assert cli.main(["-q", "closeout", str(kept_run), "--endpoint-url", moto_endpoint]) == 0
    finally:
        cli.set_verbosity(0)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out.count("\n") == 1 and captured.out.startswith("runbook: plan only")


def test_verbose_prints_each_cells_output_as_debug_lines(kept_run, moto_endpoint, stand_in_notebooks, capfd,
                                                          monkeypatch):
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", stand_in_notebooks)
    try:
        assert cli.main(["closeout", str(kept_run), "--endpoint-url", moto_endpoint, "-v"]) == 0
    finally:
        cli.set_verbosity(0)
    err = capfd.readouterr().err
    assert "[runbook] 05_closeout: running" in err
    assert "[runbook] 05_closeout: function" in err  # the stand-in's print, as papermill logged it
    cell_lines = [line for line in err.splitlines() if line.startswith("[runbook] 05_closeout: ")]
    assert cell_lines and not [line for line in cell_lines if str(kept_run.resolve()) in line]


def test_a_lab_run_without_the_runtime_sdks_stops_before_anything_with_the_command_to_run(tmp_path, monkeypatch,
                                                                                           capsys):
    monkeypatch.setenv("RUNBOOK_LAB_RUNTIMES", str(tmp_path / "not-installed"))
    assert cli.main(["run", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    [line] = [line for line in err if line.startswith("runbook: ")]  # the error (a first-use key may be announced)
    assert not [line for line in err if "starting the embedded lab" in line]
    assert line.startswith("runbook: the lab's python runtime SDK (boto3 for Python) is missing from ")
    assert line.endswith("run `runbook lab-runtimes`; nothing was run")
    assert not (tmp_path / "runs").exists()


def test_an_audit_of_the_runners_own_lab_runs_the_test_plan_alone(tmp_path, capsys):
    # the seed's demo strategy is for the change notebooks; the test plan does not declare it
    code = cli.main(["audit", "--target", "lab", "--out", str(tmp_path / "runs")])
    assert code == 1, capsys.readouterr().err  # the seeded baseline's findings fail an audit
    [run_dir] = (tmp_path / "runs").iterdir()
    assert run_dir.name.endswith("-lab-audit")
    assert [n["name"] for n in json.loads((run_dir / "run.json").read_text())["notebooks"]] == ["01_test_plan"]


def test_the_runners_lab_stops_while_the_folder_is_finished_and_before_the_run_returns():
    import threading
    import time

    events = []

    class SlowToStop:
        def stop(self):
            time.sleep(0.3)
            events.append(("stopped", threading.current_thread().name))

    with runner.stopping_in_background(SlowToStop()):
        events.append("finishing the folder")
    assert events == ["finishing the folder", ("stopped", "lab-stop")]
    with runner.stopping_in_background(None):  # an endpoint of the caller's: nothing of ours to stop
        events.append("no lab")
    assert events[-1] == "no lab"
