"""Faults: throttling, AccessDenied in the middle of a change, a dying kernel, a stopping lab.

Throttling and denials are injected by the lab (``Lab.inject_faults``), answered in the
caller's protocol. The runner faults use tiny stand-in notebooks, as tests/test_runner.py does.
"""

import contextlib
import json
import time
from pathlib import Path

import nbformat
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_lib import runner
from runbook_lib.exceptions import AwsCallError, ChangeRefused, LabError
from runbook_lib.change.locks import LOCK_TAG
from runbook_lib.implementation import Implementation
from runbook_lib.ledger import Ledger
from runbook_lib.session import Target

NO_RETRY = Config(retries={"total_max_attempts": 1})


def _target(lab):
    return Target.from_parameters("lab", region=lab.region, endpoint_url=lab.endpoint_url, session=lab.session())


# -- the lab's fault injection ----------------------------------------------------------------------
def test_throttle_is_answered_in_each_protocol_and_counted(lab):
    lab.inject_faults(throttle={"operation": "ListFunctions", "every": 1})
    try:
        lab.inject_faults(throttle={"operation": "ListFunctions", "every": 1},
                          deny={"operation": "ListSecrets"})
        with pytest.raises(ClientError) as lam:
            lab.client("lambda", config=NO_RETRY).list_functions()
        with pytest.raises(ClientError) as sm:
            lab.client("secretsmanager", config=NO_RETRY).list_secrets()
        lab.inject_faults(throttle={"operation": "ListUsers", "every": 2})
        iam = lab.client("iam", config=NO_RETRY)
        iam.list_users()  # the first of every two passes
        with pytest.raises(ClientError) as query:
            iam.list_users()
        report = lab.faults()
    finally:
        lab.clear_faults()
    assert (lam.value.response["Error"]["Code"], lam.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("TooManyRequestsException", 429)
    assert sm.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "ListSecrets" in sm.value.response["Error"]["Message"]
    assert query.value.response["Error"]["Code"] == "Throttling"
    assert report == {"throttle": {"operation": "ListUsers", "every": 2, "seen": 2, "injected": 1}}
    assert lab.faults() == {}
    lab.client("lambda", config=NO_RETRY).list_functions()  # cleared: answered again


def test_bad_fault_requests_are_refused(lab):
    for faults in ({"explode": {"operation": "GetFunction"}}, {"throttle": {"every": 2}},
                   {"throttle": {"operation": "GetFunction", "every": 0}}):
        with pytest.raises(LabError, match="HTTP 400"):
            lab.inject_faults(**faults)
    assert lab.faults() == {}


def test_the_audit_slows_down_and_completes_under_throttling(seeded_lab):
    from runbook_lib.audit import Audit

    def audit():
        result = Audit(_target(seeded_lab), regions=[seeded_lab.region]).run()
        checks = {c.id: c.status for c in result.checks()}
        found = sorted((f["rule"], str(f.get("function")), str(f.get("path")), str(f.get("line")),
                        str(f.get("variable"))) for f in result.findings.to_dict("records"))
        return checks, found

    calm_checks, calm_findings = audit()
    seeded_lab.inject_faults(throttle={"operation": "GetFunction", "every": 2})
    try:
        throttled_checks, throttled_findings = audit()
    finally:
        report = seeded_lab.clear_faults()
    assert report["throttle"]["injected"] >= 2, report
    assert throttled_checks["audit-coverage-complete"] == "PASS"
    assert throttled_checks == calm_checks
    assert bool(throttled_findings == calm_findings) is True


# -- AccessDenied in the middle of the implementation --------------------------------------------------
@pytest.fixture(scope="module")
def own_lab():
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running


def _kinds(ledger):
    return sorted({r.kind for r in ledger.records(active_only=True)})


def _denied_midway(lab, run_dir):
    """Apply with PutResourcePolicy denied: the secret exists, it has no grant, the function is untouched."""
    target = _target(lab)
    name = lab.seed_info["function_name"]
    ledger = Ledger.open(run_dir)
    lab.inject_faults(deny={"operation": "PutResourcePolicy"})
    try:
        with pytest.raises(AwsCallError) as caught:
            Implementation(target, ledger, function_name=name, change_ticket="CHG-F", apply=True,
                           strategy="reference").apply()
    finally:
        lab.clear_faults()
    return target, name, Ledger.open(run_dir), caught.value


def test_access_denied_midway_leaves_an_exact_ledger_and_resume_completes(own_lab, tmp_path):
    lam = own_lab.client("lambda")
    name = own_lab.seed_info["function_name"]
    seeded_env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    target, name, ledger, error = _denied_midway(own_lab, tmp_path / "run")
    assert (error.operation, error.permission, error.access_denied) == (
        "PutResourcePolicy", "secretsmanager:PutResourcePolicy", True)
    assert _kinds(ledger) == ["secret", "snapshot"]
    # exactly what exists: the ledger's secret is live without a grant, the function is untouched
    sm = own_lab.client("secretsmanager")
    assert sm.describe_secret(SecretId=ledger.secret().resource)["ARN"] == ledger.secret().resource
    assert not sm.get_resource_policy(SecretId=ledger.secret().resource).get("ResourcePolicy")
    live = lam.get_function_configuration(FunctionName=name)
    assert bool(live["Environment"]["Variables"] == seeded_env) is True
    # the locks were released on the way out
    assert ledger.lock_holder() is None
    assert LOCK_TAG not in lam.list_tags(Resource=live["FunctionArn"]).get("Tags", {})
    assert any("apply stopped: PutResourcePolicy" in e["message"] for e in ledger.doc["events"])

    # the permission is granted: the same run folder resumes where it stopped
    resumed = Implementation(target, ledger, function_name=name, change_ticket="CHG-F", apply=True,
                             strategy="reference")
    actions = {r.step: r.action for r in resumed.plan()}
    assert actions["snapshot"] == "none" and actions["secret"] == "none"
    resumed.apply()
    assert {c.status for c in resumed.checks()} == {"PASS"}
    assert "secret_policy" in _kinds(ledger) and "function_config" in _kinds(ledger)

    from runbook_lib.backout import Backout
    backout = Backout(target, ledger, change_ticket="CHG-F-B", apply=True)
    backout.apply()
    assert {c.status for c in backout.checks(invoke=False)} == {"PASS"}


def test_backout_after_a_denied_implementation_cleans_up_what_exists(own_lab, tmp_path):
    from runbook_lib.backout import Backout

    target, name, ledger, _ = _denied_midway(own_lab, tmp_path / "run")
    secret_arn = ledger.secret().resource
    backout = Backout(target, ledger, change_ticket="CHG-F-B2", apply=True)
    rows = {r.step: r.action for r in backout.plan()}
    assert rows["secret"] == "delete" and rows["function"] == "none" and rows["grant"] == "none"
    backout.apply()
    checks = {c.id: c.status for c in backout.checks(invoke=False)}
    assert checks == {"backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
    assert own_lab.client("secretsmanager").describe_secret(SecretId=secret_arn).get("DeletedDate")


# -- the runner: a dying kernel, a stopping lab ----------------------------------------------------------
def _stand_ins(folder, second_cells):
    """01_test_plan (one passing check) and 02_implementation (``second_cells`` after its parameters)."""
    folder.mkdir()
    params = "\n".join(['target: str = "lab"  # t', 'region: str = "us-east-1"  # r', 'profile: str = ""  # p',
                        'endpoint_url: str = ""  # e', 'run_dir: str = "."  # d', 'function_name: str = ""  # f',
                        'apply: bool = False  # a', 'change_ticket: str = ""  # c', 'lab_pid: int = 0  # pid'])
    first = ("from runbook_lib.checks import Check, CheckLog\n"
             "CheckLog(run_dir, '01_test_plan', 'baseline').put(Check(id='baseline-check', title='stand-in', "
             "phase='baseline', status='PASS', controls=['AU-2']))")
    for name, cells in (("01_test_plan", [first]), ("02_implementation", second_cells)):
        nb = nbformat.v4.new_notebook()
        parameters = nbformat.v4.new_code_cell(params)
        parameters.metadata["tags"] = ["parameters"]
        nb.cells = [parameters] + [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def _run(tmp_path, endpoint, notebooks, **parameters):
    options = runner.RunOptions(target="lab", region="us-east-1", endpoint_url=endpoint, out=tmp_path / "runs",
                                notebooks_dir=notebooks, backout=False, parameters=parameters)
    return runner.run_runbook(options, names=[runner.TEST_PLAN, runner.IMPLEMENTATION])


def test_a_kernel_dying_mid_notebook_exits_2_names_notebook_and_cell_and_keeps_the_output(
        tmp_path, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    notebooks = _stand_ins(tmp_path / "notebooks", ["print('before the crash')", "import os\nos._exit(1)",
                                                    "print('never')"])
    outcome = _run(tmp_path, moto_endpoint, notebooks)
    assert outcome.exit_code == 2
    assert outcome.reason.startswith("02_implementation cell 4"), outcome.reason
    assert len(outcome.reason.splitlines()) == 1
    assert {n.name: n.status for n in outcome.notebooks} == {"01_test_plan": "ok", "02_implementation": "failed"}
    kept = outcome.run_dir / "02_implementation.ipynb"
    assert kept.exists() and "before the crash" in kept.read_text()
    summary = (outcome.run_dir / "summary.md").read_text()
    assert "| 02_implementation | failed |" in summary and "02_implementation cell 4" in summary
    assert json.loads((outcome.run_dir / "run.json").read_text())["exit_code"] == 2


def test_the_lab_stopping_mid_run_is_a_one_line_error_and_exit_2(tmp_path, monkeypatch):
    from runbook_lib.lab import Lab

    # SIGTERM, and SIGKILL if the lab still answers 10 s later (a loaded machine once outlasted a
    # 10 s wait, and the next notebook reached a lab that had not stopped yet)
    stop_the_lab = ("import os, signal, time, urllib.request\n"
                    "os.kill(lab_pid, signal.SIGTERM)\n"
                    "deadline = time.monotonic() + 10\n"
                    "for _ in range(1200):\n"
                    "    try:\n"
                    "        urllib.request.urlopen(endpoint_url + '/_lab/health', timeout=1)\n"
                    "        time.sleep(0.05)\n"
                    "    except OSError:\n"
                    "        break\n"
                    "    if time.monotonic() > deadline:\n"
                    "        try:\n"
                    "            os.kill(lab_pid, signal.SIGKILL)\n"
                    "        except ProcessLookupError:\n"
                    "            pass\n"
                    "else:\n"
                    "    raise RuntimeError('the lab still answers')")
    call_it = ("from runbook_lib.session import Target\n"
               "Target.from_parameters(target, region, profile, endpoint_url).caller_identity()")
    notebooks = _stand_ins(tmp_path / "notebooks", [stop_the_lab, call_it])
    lab = Lab(seed=False).start()
    try:
        for key, value in lab.env.items():
            monkeypatch.setenv(key, value)
        started = time.monotonic()
        outcome = _run(tmp_path, lab.endpoint_url, notebooks, lab_pid=str(lab._process.pid))
    finally:
        lab.stop()
    assert outcome.exit_code == 2
    assert outcome.reason.startswith("02_implementation cell 4: LabError: GetCallerIdentity on sts: cannot reach")
    assert "is the lab still running?" in outcome.reason and len(outcome.reason.splitlines()) == 1
    assert (outcome.run_dir / "02_implementation.ipynb").exists()
    assert time.monotonic() - started < 240


# -- crash windows: a process killed between an AWS call and its ledger write --------------------------
CRASH_AFTER_CREATE_SECRET = """
import os, sys
from runbook_lib import secrets_store
from runbook_lib.implementation import Implementation
from runbook_lib.ledger import Ledger
from runbook_lib.session import Target

real_create = secrets_store.create_secret


def create_then_die(*args, **kwargs):
    real_create(*args, **kwargs)
    os._exit(9)  # the process dies after CreateSecret answered, before the ledger write


secrets_store.create_secret = create_then_die
run_dir, name, secret_name = sys.argv[1:4]
target = Target.from_parameters("lab", region=os.environ["AWS_DEFAULT_REGION"],
                                endpoint_url=os.environ["AWS_ENDPOINT_URL"])
ledger = Ledger.open(run_dir)
ledger.bind(target="lab", function_name=name)
Implementation(target, ledger, name, secret_name=secret_name, change_ticket="CHG-CRASH", apply=True,
               strategy="reference").apply()
"""


@pytest.fixture(scope="module")
def crash_lab():
    """A seeded lab of these tests' own; each test ends with the function backed out."""
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running


def _function_state(lab):
    lam = lab.client("lambda")
    config = lam.get_function_configuration(FunctionName=lab.seed_info["function_name"])
    tags = lam.list_tags(Resource=config["FunctionArn"]).get("Tags", {})
    return {"code": config["CodeSha256"], "handler": config["Handler"], "role": config["Role"],
            "env": config["Environment"]["Variables"], "lock": tags.get(LOCK_TAG)}


def _live_secrets(lab):
    """Secrets tagged for the function that are not in a deletion window."""
    listed = lab.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return sorted(s["Name"] for s in listed if not s.get("DeletedDate")
                  and {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("function") == lab.seed_info["function_name"])


def test_killed_right_after_create_secret_backout_reconciles_and_leaves_nothing(crash_lab, tmp_path):
    import os
    import subprocess
    import sys

    from runbook_lib.backout import Backout
    from runbook_lib.change.unlock import release
    from runbook_lib.steps import ADOPT

    name, run_dir, secret_name = crash_lab.seed_info["function_name"], tmp_path / "run", "lambda/orders-api/crash"
    before = _function_state(crash_lab)
    died = subprocess.run([sys.executable, "-c", CRASH_AFTER_CREATE_SECRET, str(run_dir), name, secret_name],
                          env={**os.environ, **crash_lab.env}, capture_output=True, timeout=180)
    assert died.returncode == 9, died.stderr.decode()[-2000:]
    ledger = Ledger.open(run_dir)
    [pending] = ledger.pending_intents()
    assert (pending.creates, pending.name) == ("secret", secret_name) and ledger.secret() is None
    orphan = crash_lab.client("secretsmanager").describe_secret(SecretId=secret_name)
    assert pending.token in orphan["VersionIdsToStages"], "the secret exists, made with the intent's token"

    target = _target(crash_lab)
    with pytest.raises(ChangeRefused) as locked:
        Backout(target, ledger, change_ticket="CHG-B", apply=True).apply()
    assert "whose process is gone: release it with `runbook unlock RUN_DIR`" in str(locked.value)
    assert release(run_dir, target)[0].startswith("released the ledger lock of apply of run run (pid ")
    assert _function_state(crash_lab)["lock"] is None, "the dead run's lock tag went too"

    backout = Backout(target, Ledger.open(run_dir), change_ticket="CHG-B", apply=True)
    [reconcile] = [r for r in backout.plan() if r.step == "reconcile"]
    assert (reconcile.action, reconcile.resource) == (ADOPT, orphan["ARN"])
    backout.apply()
    checks = {c.id: c for c in backout.checks(invoke=False)}
    assert {cid: c.status for cid, c in checks.items()} == {
        "backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}, checks
    assert any(orphan["ARN"] in line for line in checks["no-orphans"].evidence["in_deletion_window"])
    assert secret_name not in _live_secrets(crash_lab) and Ledger.open(run_dir).pending_intents() == []
    assert bool(_function_state(crash_lab) == before) is True


@contextlib.contextmanager
def _runbook_run_mid_apply(lab, runs: Path, monkeypatch):
    """``runbook run`` against ``lab`` in a subprocess; yields it and its kernel's pid once that kernel changes the function.

    UpdateFunctionConfiguration is throttled meanwhile, so the kernel sits mid-apply (code
    deployed or being deployed, configuration not yet) long enough to be killed there.
    """
    import subprocess
    import sys

    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    lab.inject_faults(throttle={"operation": "UpdateFunctionConfiguration", "every": 1})
    try:
        run = subprocess.Popen([sys.executable, "-m", "runbook_lib.cli", "run", "--endpoint-url", lab.endpoint_url,
                                "--function", lab.seed_info["function_name"], "--no-backout", "--out", str(runs),
                                "-p", "strategy", "reference"],  # the demo's code change: a lab it did not start
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield run, _kernel_changing_the_function(runs, timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
            run.communicate(timeout=300)
    finally:
        lab.clear_faults()


def test_a_kernel_killed_mid_apply_is_unlocked_and_backed_out_headless(crash_lab, tmp_path, monkeypatch, capsys):
    import os
    import signal

    from runbook_lib import cli
    from runbook_lib.change.locks import LockOwner

    url = crash_lab.endpoint_url
    before = _function_state(crash_lab)
    with _runbook_run_mid_apply(crash_lab, tmp_path / "runs", monkeypatch) as (run, kernel):
        os.kill(kernel, signal.SIGKILL)
        out, err = run.communicate(timeout=300)
    run_dir = Path(out.strip().splitlines()[0])
    assert run.returncode == 2 and "02_implementation" in err, err[-2000:]
    held = LockOwner.parse(Ledger.open(run_dir).lock_holder())
    assert held.pid == kernel and held.alive() is False and _function_state(crash_lab)["lock"] == held.token()
    [pending] = Ledger.open(run_dir).pending_intents()
    assert pending.creates == "function_state", "killed while a change of the function was under way"

    backout = ["backout", str(run_dir), "--endpoint-url", url, "--apply", "-p", "change_ticket", "CHG-B"]
    assert cli.main(backout) == 2
    assert "release it with `runbook unlock RUN_DIR`" in capsys.readouterr().err
    assert cli.main(["unlock", str(run_dir), "--endpoint-url", url]) == 0
    released = capsys.readouterr().out
    assert "released the ledger lock" in released and f"released the lock tag {LOCK_TAG}" in released
    cli.main(backout)  # its exit code is the run's: the implementation notebook died in this run
    notebooks = {n["name"]: n["status"] for n in json.loads((run_dir / "run.json").read_text())["notebooks"]}
    assert notebooks["04_backout"] == "ok", capsys.readouterr().err
    checks = {c["id"]: c["status"] for c in json.loads((run_dir / "checks.json").read_text()) if c["phase"] == "backout"}
    assert checks == {"backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
    assert _live_secrets(crash_lab) == [] and Ledger.open(run_dir).pending_intents() == []
    assert bool(_function_state(crash_lab) == before) is True


def _kernel_changing_the_function(runs: Path, timeout: float) -> int:
    """The pid of the kernel whose implementation holds its lock and has started on the function."""
    from runbook_lib.change.locks import LockOwner

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in runs.glob("*/ledger.json"):
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                continue
            if doc.get("lock") and "function_code" in {e["kind"] for e in doc.get("entries", [])}:
                return LockOwner.parse(doc["lock"]).pid
        time.sleep(0.05)
    raise AssertionError("the implementation never reached the function")


def _files_of(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_killed_runner_leaves_an_unsigned_folder_that_unlock_sign_makes_backoutable(
        crash_lab, tmp_path, monkeypatch, capsys):
    """kill -9 of `runbook run` and its kernel mid-apply: no manifest, both locks held, the function half changed.

    `runbook backout` refuses the unsigned folder and names the way on; `runbook unlock` releases
    the locks but signs nothing; `runbook unlock --sign` is the operator's word; then backout
    restores the function and removes everything, and the folder verifies.
    """
    import os
    import signal

    from runbook_lib import cli
    from runbook_lib.manifest import verify_run

    name, url = crash_lab.seed_info["function_name"], crash_lab.endpoint_url
    before = _function_state(crash_lab)
    with _runbook_run_mid_apply(crash_lab, tmp_path / "runs", monkeypatch) as (run, kernel):
        run.kill()  # the runner first, so nothing is left to finish and sign the folder
        run.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # it may have seen its parent go and left already
            os.kill(kernel, signal.SIGKILL)
    [run_dir] = (tmp_path / "runs").iterdir()
    assert not (run_dir / "manifest.json").exists() and Ledger.open(run_dir).lock_holder()
    assert _function_state(crash_lab)["lock"] == Ledger.open(run_dir).lock_holder()

    backout = ["backout", str(run_dir), "--endpoint-url", url, "--apply", "-p", "change_ticket", "CHG-B"]
    left = _files_of(run_dir)
    assert cli.main(backout) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to back out: the folder was never signed (no manifest.json" in err[0]
    assert "`runbook unlock RUN_DIR --sign`" in err[0] and "nothing was run" in err[0]
    assert _files_of(run_dir) == left, "the refused backout wrote into the folder"

    assert cli.main(["unlock", str(run_dir), "--endpoint-url", url]) == 0
    said = capsys.readouterr().out
    assert "released the ledger lock" in said and f"released the lock tag {LOCK_TAG}" in said
    assert "`runbook unlock RUN_DIR --sign`" in said and not (run_dir / "manifest.json").exists()
    assert f"its ledger records, for backout to undo: snapshot {name}; " in said and f"function_code {name}" in said
    assert cli.main(["unlock", str(run_dir), "--endpoint-url", url, "--sign"]) == 0
    assert f"signed {run_dir} as it stands with ed25519:" in capsys.readouterr().out
    assert verify_run(run_dir).ok

    assert cli.main(backout) == 0, capsys.readouterr().err
    checks = {c["id"]: c["status"] for c in json.loads((run_dir / "checks.json").read_text()) if c["phase"] == "backout"}
    assert checks == {"backout-complete": "PASS", "function-restored": "PASS", "no-orphans": "PASS"}
    assert _live_secrets(crash_lab) == [] and Ledger.open(run_dir).pending_intents() == []
    assert bool(_function_state(crash_lab) == before) is True
    assert verify_run(run_dir).ok, "the backout signed the folder again"
    journal = [e["message"] for e in Ledger.open(run_dir).doc["events"] if e["notebook"] == "unlock"]
    assert any("as it stands" in line for line in journal), "the folder says who vouched for it"
