"""Bad input: a one-line error naming the parameter, raised before any change; exit 2 via the CLI.

Also concurrency: a second run against a function another run is changing refuses.
Library entry points against the shared seeded lab (nothing here changes it), plus a few
through ``runbook_lib.cli.main``.
"""

import io
import json
import os
import threading
import zipfile

import pytest

from runbook_lib import cli, runner
from runbook_lib.backout import Backout
from runbook_lib.context import start_notebook
from runbook_lib.exceptions import ChangeRefused, InputError, RunbookError
from runbook_lib.change.locks import LOCK_TAG, LockOwner, acquire_function_lock, release_function_lock
from runbook_lib.implementation import Implementation
from runbook_lib.ledger import Ledger
from runbook_lib.session import Target
from runbook_lib.validation import Validation


def _target(lab):
    return Target.from_parameters("lab", region=lab.region, endpoint_url=lab.endpoint_url, session=lab.session())


def _state(lab):
    """What a change would touch: the function's configuration and the secrets."""
    name = lab.seed_info["function_name"]
    config = lab.client("lambda").get_function_configuration(FunctionName=name)
    secrets = [s["Name"] for s in lab.client("secretsmanager").list_secrets()["SecretList"]]
    tags = lab.client("lambda").list_tags(Resource=config["FunctionArn"]).get("Tags", {})
    return config["CodeSha256"], config["LastModified"], sorted(config["Environment"]["Variables"]), secrets, tags


def lab_env(lab):
    return {k: v for k, v in lab.env.items() if k != "AWS_ENDPOINT_URL"}


def _one_line(error, parameter):
    text = str(error)
    return len(text.splitlines()) == 1 and text.startswith(f"{parameter}: ") and error.exit_code == 2


@pytest.fixture
def unchanged(seeded_lab):
    before = _state(seeded_lab)
    yield seeded_lab
    assert _state(seeded_lab) == before, "a refused input changed the lab"


def _implementation(lab, run_dir, **kw):
    kw.setdefault("function_name", lab.seed_info["function_name"])
    return Implementation(_target(lab), Ledger.open(run_dir), **kw)


def test_unknown_function(unchanged, tmp_path):
    with pytest.raises(InputError) as caught:
        _implementation(unchanged, tmp_path, function_name="no-such-function", change_ticket="CHG", apply=True)
    assert _one_line(caught.value, "function_name") and "no-such-function" in str(caught.value)


def test_unknown_region():
    with pytest.raises(InputError) as caught:
        Target.from_parameters("aws", region="mars-north-1")
    assert _one_line(caught.value, "region") and "mars-north-1" in str(caught.value)


def test_apply_without_change_ticket(unchanged, tmp_path):
    for ticket in ("", "   "):
        with pytest.raises(InputError) as caught:
            _implementation(unchanged, tmp_path, change_ticket=ticket, apply=True)
        assert _one_line(caught.value, "change_ticket")
    with pytest.raises(InputError, match="^change_ticket: "):
        Backout(_target(unchanged), Ledger.open(tmp_path), function_name="orders-api", apply=True)


@pytest.mark.parametrize("payload", ["{not json", "[1, 2", b"\xff"])
def test_malformed_payload(unchanged, tmp_path, payload):
    ledger = Ledger.open(tmp_path)
    with pytest.raises(InputError) as caught:
        Validation(_target(unchanged), ledger, tmp_path, function_name="orders-api", payload=payload)
    assert _one_line(caught.value, "payload")


@pytest.mark.parametrize("other", [{"account": "999999999999"}, {"function_name": "inventory-sync"}])
def test_run_dir_whose_ledger_belongs_to_another_account_or_function(unchanged, tmp_path, other,
                                                                     monkeypatch):
    ledger = Ledger.open(tmp_path)
    ledger.bind(target="lab", region="us-east-1", **other)
    key = next(iter(other))
    with pytest.raises(InputError) as caught:
        _implementation(unchanged, tmp_path, change_ticket="CHG", apply=True)
    assert _one_line(caught.value, "run_dir") and repr(other[key]) in str(caught.value)
    # every notebook binds its context first: the other notebooks refuse the run folder as well
    for key_value in lab_env(unchanged).items():
        monkeypatch.setenv(*key_value)
    with pytest.raises(InputError, match="^run_dir: this run's ledger is for "):
        start_notebook("04_backout", "backout", target="lab", region=unchanged.region, profile="",
                       endpoint_url=unchanged.endpoint_url, run_dir=str(tmp_path), function_name="orders-api",
                       create_ledger=False)
    assert not Ledger.open(tmp_path).records()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"def handler(event, context):\n    return 1\n", "is not a zip file"),
    (_zip({"other.py": "x = 1\n"}), "lacks the handler module app.py"),
])
def test_code_path_not_a_zip_or_without_the_handler(unchanged, tmp_path, content, message):
    path = tmp_path / "package.zip"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        _implementation(unchanged, tmp_path / "run", code_path=str(path), use_reference_handler=False,
                        change_ticket="CHG", apply=True)
    assert _one_line(caught.value, "code_path") and message in str(caught.value)
    with pytest.raises(InputError, match="does not exist"):
        _implementation(unchanged, tmp_path / "run", code_path=str(tmp_path / "missing.zip"))


# -- through the command line ---------------------------------------------------------------------------
def test_cli_unknown_region_exits_2_with_one_line(capsys):
    code = cli.main(["audit", "--target", "aws", "--region", "mars-north-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("runbook: region: unknown region")


def test_cli_malformed_parameter_exits_2_before_anything_runs(tmp_path, capsys):
    code = cli.main(["run", "--out", str(tmp_path / "runs"), "-p", "invocations", "five"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["runbook: invocations: expects an integer, got 'five'"]
    assert not (tmp_path / "runs").exists()


def test_cli_aws_apply_without_ticket_exits_2(tmp_path, capsys):
    code = cli.main(["run", "--target", "aws", "--region", "us-east-1", "--apply", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "change_ticket" in err[0]
    assert list(tmp_path.iterdir()) == []


# -- concurrency: one change at a time per function --------------------------------------------------------
@pytest.fixture(scope="module")
def own_lab():
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running


def test_second_run_refuses_while_another_holds_the_function(own_lab, tmp_path):
    lam = own_lab.client("lambda")
    name = own_lab.seed_info["function_name"]
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    holder = LockOwner.this_process("apply", "run-a").token()  # alive: this very process
    acquire_function_lock(lam, arn, holder)
    try:
        before = _state(own_lab)
        second = _implementation(own_lab, tmp_path / "run-b", change_ticket="CHG-B", apply=True)
        with pytest.raises(ChangeRefused) as caught:
            second.apply()
        message = str(caught.value)
        assert f"the lock tag {LOCK_TAG} is held by apply of run run-a (pid {os.getpid()}" in message
        assert "which is still running: wait for it to finish" in message and len(message.splitlines()) == 1
        assert _state(own_lab) == before
        assert second.ledger.records() == [] and second.ledger.lock_holder() is None
    finally:
        release_function_lock(lam, arn, holder)
    assert LOCK_TAG not in lam.list_tags(Resource=arn).get("Tags", {})


def test_two_runs_at_once_one_changes_the_other_refuses(own_lab, tmp_path):
    name = own_lab.seed_info["function_name"]
    runs = [_implementation(own_lab, tmp_path / f"run-{i}", change_ticket=f"CHG-{i}", apply=True) for i in (1, 2)]
    start = threading.Barrier(2)
    outcomes = [None, None]

    def apply(index):
        start.wait()
        try:
            runs[index].apply()
            outcomes[index] = "applied"
        except RunbookError as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=apply, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(o if o == "applied" else type(o).__name__ for o in outcomes) == ["ChangeRefused", "applied"], \
        [str(o) for o in outcomes]
    winner = runs[outcomes.index("applied")]
    loser = runs[1 - outcomes.index("applied")]
    assert {c.status for c in winner.checks()} == {"PASS"}
    assert loser.ledger.records() == [], "the refused run changed something"
    Backout(_target(own_lab), winner.ledger, change_ticket="CHG-B", apply=True).apply()
    assert name in str(json.dumps(winner.ledger.context))
