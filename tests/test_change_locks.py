"""Locks: the owner token, telling a live holder from a dead one, and `runbook unlock RUN_DIR`."""

import os
import socket
import subprocess
import sys

import pytest

from moto_world import FUNCTION
from runbook_lib import cli
from runbook_lib.change import locks
from runbook_lib.change.context import ChangeContext
from runbook_lib.change.locks import LOCK_TAG, LockOwner
from runbook_lib.change.unlock import release
from runbook_lib.exceptions import ChangeRefused
from runbook_lib.ledger import Ledger
from runbook_lib.manifest import verify_manifest, write_manifest


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def owner(**changes) -> LockOwner:
    me = LockOwner.this_process("apply", "20261201T100000Z-lab")
    return LockOwner(**{**me.__dict__, **changes})


def test_the_owner_token_round_trips_and_fits_a_lambda_tag():
    me = LockOwner.this_process("apply", "my run#1")
    token = me.token()
    assert LockOwner.parse(token) == me and me.run == "my-run-1" and me.pid == os.getpid()
    assert len(token) <= 256 and all(c.isalnum() or c in " _.:/=+-@" for c in token)
    for foreign in ("apply:run:123:1", "", None, "apply run=x host=h pid=notanumber started=1"):
        assert LockOwner.parse(foreign) is None


def test_alive_dead_reused_pid_and_another_host():
    assert owner().alive() is True
    assert owner(pid=dead_pid()).alive() is False
    assert owner(started=owner().started - 3600).alive() is False, "same pid, another process: not the holder"
    assert owner(host="somewhere-else").alive() is None


@pytest.mark.parametrize("token, says", [
    (owner().token(), "which is still running: wait for it to finish"),
    (owner(pid=dead_pid()).token(), "whose process is gone: release it with `runbook unlock RUN_DIR`"),
    (owner(host="ci-7").token(), "on another host: run `runbook unlock RUN_DIR` there"),
    ("apply:run:1:2", "which this runbook cannot check: release it with `runbook unlock RUN_DIR --force`"),
])
def test_a_refusal_names_the_holder_and_what_to_do(token, says):
    note = locks.holder_note(token, "the run's ledger lock")
    assert says in note and "\n" not in note


def test_unlock_releases_only_a_dead_holders_lock(tmp_path):
    ledger = Ledger.open(tmp_path)
    ledger.acquire(owner().token())
    with pytest.raises(ChangeRefused, match="still running: wait for it to finish; nothing was released"):
        locks.unlock(Ledger.open(tmp_path))
    assert Ledger.open(tmp_path).lock_holder() == owner().token()
    ledger.release(owner().token())
    for token, force in ((owner(host="ci-7").token(), False), ("apply:run:1:2", False)):
        ledger.acquire(token)
        with pytest.raises(ChangeRefused, match="--force"):
            locks.unlock(Ledger.open(tmp_path), force=force)
        assert locks.unlock(Ledger.open(tmp_path), force=True)[0].startswith("released the ledger lock of")
        assert Ledger.open(tmp_path).lock_holder() is None
    dead = owner(pid=dead_pid()).token()
    ledger.acquire(dead)
    assert locks.unlock(Ledger.open(tmp_path)) == [f"released the ledger lock of {LockOwner.parse(dead).describe()}"]
    assert locks.unlock(Ledger.open(tmp_path)) == ["no lock held by this run: nothing to release"]


def test_unlock_releases_the_function_tag_of_the_same_dead_run_only(world):
    lam = world.client("lambda")
    arn = lam.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    run = world.ledger.path.parent.name
    other_run = owner(pid=dead_pid(), run="another-run").token()
    lam.tag_resource(Resource=arn, Tags={LOCK_TAG: other_run})
    assert locks.unlock(world.ledger, lam, FUNCTION) == ["no lock held by this run: nothing to release"]
    assert lam.list_tags(Resource=arn)["Tags"][LOCK_TAG] == other_run, "another run folder's lock is its own"
    dead = owner(pid=dead_pid(), run=run).token()
    world.ledger.acquire(dead)
    lam.tag_resource(Resource=arn, Tags={LOCK_TAG: dead})
    done = locks.unlock(Ledger.open(world.run_dir), lam, FUNCTION)
    assert done[0].startswith("released the ledger lock") and done[1].startswith(f"released the lock tag {LOCK_TAG}")
    assert LOCK_TAG not in lam.list_tags(Resource=arn)["Tags"] and Ledger.open(world.run_dir).lock_holder() is None


def test_holding_takes_both_locks_and_gives_them_back(world):
    ctx = ChangeContext(world.target, world.ledger, FUNCTION)
    lam = world.client("lambda")
    arn = lam.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    with locks.holding(ctx, "apply") as token:
        assert LockOwner.parse(token).pid == os.getpid() and LockOwner.parse(token).host == socket.gethostname()
        assert Ledger.open(world.run_dir).lock_holder() == token == lam.list_tags(Resource=arn)["Tags"][LOCK_TAG]
        with pytest.raises(ChangeRefused, match="ledger lock is held by apply of run run .*still running"):
            with locks.holding(ChangeContext(world.target, Ledger.open(world.run_dir), FUNCTION), "backout"):
                pass
    assert Ledger.open(world.run_dir).lock_holder() is None and LOCK_TAG not in lam.list_tags(Resource=arn)["Tags"]


def test_runbook_unlock_on_a_stopped_lab_run_releases_the_ledger_lock_and_refreshes_the_manifest(tmp_path, capsys):
    ledger = Ledger.open(tmp_path / "run")
    ledger.bind(target="lab", region="us-east-1", function_name=FUNCTION)
    ledger.acquire(owner(pid=dead_pid(), run="run").token())
    write_manifest(tmp_path / "run")
    env = {k: os.environ.pop(k) for k in ("AWS_ENDPOINT_URL",) if k in os.environ}
    try:
        code = cli.main(["unlock", str(tmp_path / "run")])
    finally:
        os.environ.update(env)
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].startswith("runbook: released the ledger lock of apply of run run (pid ")
    assert "lock tag was not checked: the run's lab has stopped" in out[1]
    assert Ledger.open(tmp_path / "run").lock_holder() is None
    assert any("released the ledger lock" in e["message"] for e in Ledger.open(tmp_path / "run").doc["events"])
    assert verify_manifest(tmp_path / "run") == []
    ledger = Ledger.open(tmp_path / "run")
    ledger.acquire(owner().token())
    assert cli.main(["unlock", str(tmp_path / "run")]) == 2
    assert "still running" in capsys.readouterr().err
    with pytest.raises(ChangeRefused, match="still running"):
        release(tmp_path / "run", None, force=True)  # force never releases a live holder
