"""Locks: the owner token, telling a live holder from a dead one, and `runbook unlock RUN_DIR`."""

import json
import os
import socket
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from moto_world import FUNCTION
from runbook_lib import cli
from runbook_lib.change import locks
from runbook_lib.change.context import ChangeContext
from runbook_lib.change.locks import LOCK_TAG, LockOwner
from runbook_lib.change.unlock import release
from runbook_lib.exceptions import ChangeRefused
from runbook_lib.ledger import Ledger
from runbook_lib.manifest import verify_manifest, verify_run, write_manifest
from runbook_lib.signing import SigningKey, load_signing_key


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


# the tokens are made in the test, not at collection: they hold this process's pid, and parallel
# workers must collect the same test ids
@pytest.mark.parametrize("holder, says", [
    ("running", "which is still running: wait for it to finish"),
    ("dead", "whose process is gone: release it with `runbook unlock RUN_DIR`"),
    ("other host", "on another host: run `runbook unlock RUN_DIR` there"),
    ("unreadable", "which this runbook cannot check: release it with `runbook unlock RUN_DIR --force`"),
])
def test_a_refusal_names_the_holder_and_what_to_do(holder, says):
    token = {"running": lambda: owner().token(), "dead": lambda: owner(pid=dead_pid()).token(),
             "other host": lambda: owner(host="ci-7").token(), "unreadable": lambda: "apply:run:1:2"}[holder]()
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


# -- unlock and the folder's signature -----------------------------------------------------------
def dead_run(folder, signed=True):
    """A run folder whose ledger lock is held by a process that is gone; signed like `runbook run` leaves it."""
    ledger = Ledger.open(folder)
    ledger.bind(target="lab", region="us-east-1", function_name=FUNCTION)
    ledger.acquire(owner(pid=dead_pid(), run=folder.name).token())
    (folder / "02_implementation.ipynb").write_text("{}\n")
    if signed:
        write_manifest(folder)
    return folder


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unlock_signs_a_signed_folder_again_with_the_given_key(tmp_path):
    ci = SigningKey(ed25519.Ed25519PrivateKey.generate(), tmp_path / "ci.pem")
    folder = tmp_path / "run"
    dead_run(folder, signed=False)
    write_manifest(folder, ci)
    with pytest.raises(ChangeRefused, match="untrusted signer") as refused:
        release(folder, None, sign=True)
    assert "nothing was released" in str(refused.value) and Ledger.open(folder).lock_holder()
    mine = tmp_path / "mine.pem"
    mine.write_bytes(load_signing_key().path.read_bytes())
    mine.chmod(0o600)
    lines = release(folder, None, signing_key=mine, trusted_keys=[ci.public.fingerprint])
    assert lines[0].startswith("released the ledger lock") and not any("--sign" in line for line in lines)
    result = verify_run(folder)
    assert result.ok and result.signer == load_signing_key().public.fingerprint
    assert json.loads((folder / "manifest.json").read_text())["previous_manifest"]["signer"] == ci.public.fingerprint


def test_an_unsigned_folder_is_released_but_signed_only_with_sign(tmp_path):
    """A runner killed before it finished left no manifest: `runbook backout` refuses until the operator vouches."""
    folder = dead_run(tmp_path / "run", signed=False)
    lines = release(folder, None)
    assert lines[0].startswith("released the ledger lock") and Ledger.open(folder).lock_holder() is None
    assert "is never signed (no manifest.json: its runner stopped before finishing it)" in lines[1]
    assert "`runbook unlock RUN_DIR --sign`" in lines[1] and "04_backout.ipynb" in lines[1]
    assert lines[2] == "its ledger records nothing for backout to undo"
    assert not (folder / "manifest.json").exists(), "nobody vouched for the folder: it stays unsigned"
    assert release(folder, None, sign=True)[:2] == [
        "no lock held by this run: nothing to release",
        f"signed {folder} as it stands with {load_signing_key().public.fingerprint}: it was never signed "
        "(no manifest.json: its runner stopped before finishing it)"]
    assert verify_run(folder).ok
    assert "signed" in Ledger.open(folder).doc["events"][-1]["message"], "the journal says who vouched, when"
    signed = files_of(folder)
    assert release(folder, None, sign=True)[0] == "no lock held by this run: nothing to release"
    assert files_of(folder) == signed, "a folder that verifies is not signed again for nothing"


def test_a_folder_changed_after_its_signature_is_signed_over_only_with_sign(tmp_path):
    """A `runbook backout` killed half-way: the ledger changed after the run's signature."""
    folder = dead_run(tmp_path / "run")
    (folder / "04_backout.ipynb").write_text("{}\n")
    lines = release(folder, None)
    assert "is not as signed (unexpected: 04_backout.ipynb" in lines[1] and not verify_run(folder).ok
    Ledger.open(folder).acquire(owner(pid=dead_pid(), run="run").token())
    lines = release(folder, None, sign=True)
    assert lines[0].startswith("released the ledger lock") and lines[1].startswith(f"signed {folder} as it stands")
    assert verify_run(folder).ok


@pytest.mark.parametrize("forgery", ["re-hashed", "symlink"])
def test_sign_never_signs_over_a_forged_manifest_or_a_symlink(tmp_path, forgery):
    folder = dead_run(tmp_path / "run", signed=forgery == "re-hashed")
    if forgery == "re-hashed":
        doc = json.loads((folder / "manifest.json").read_text())
        doc["files"] = doc["files"][1:]
        (folder / "manifest.json").write_text(json.dumps(doc))
    else:
        (folder / "04_backout.ipynb").symlink_to(tmp_path / "outside")
    before = files_of(folder)
    with pytest.raises(ChangeRefused, match="not signed over: .*(bad signature|symlink).*nothing was released"):
        release(folder, None, sign=True)
    assert files_of(folder) == before
    lines = release(folder, None)  # the dead holder's lock still goes; the folder is not signed over
    assert lines[0].startswith("released the ledger lock") and "--sign" not in lines[1]
    assert "`runbook verify RUN_DIR` lists every difference; a folder a colleague signed runs with" in lines[1]
    assert files_of(folder).get("manifest.json") == before.get("manifest.json"), "not signed over"


def test_an_unusable_signing_key_stops_unlock_before_anything_is_released(tmp_path, capsys):
    folder = dead_run(tmp_path / "run")
    before = files_of(folder)
    assert cli.main(["unlock", str(folder), "--signing-key", str(tmp_path / "nope.pem")]) == 2
    assert capsys.readouterr().err.startswith("runbook: --signing-key: no key file at")
    assert files_of(folder) == before


@pytest.mark.parametrize("target_name, settle", [("lab", locks.LAB_LOCK_SETTLE_SECONDS), ("aws", locks.LOCK_SETTLE_SECONDS)])
def test_a_competitor_writing_during_the_settle_window_is_caught_and_the_lab_window_is_short(
        world, monkeypatch, target_name, settle):
    lam = world.client("lambda")
    arn = lam.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    competitor = owner(pid=dead_pid() + 1, what="backout").token()
    slept = []

    def competitor_writes(seconds):  # the other run read "free" too and wrote while this one settled
        slept.append(seconds)
        lam.tag_resource(Resource=arn, Tags={LOCK_TAG: competitor})

    monkeypatch.setattr(locks.time, "sleep", competitor_writes)
    monkeypatch.setattr(world.target, "name", target_name)
    ctx = ChangeContext(world.target, world.ledger, FUNCTION)
    with pytest.raises(ChangeRefused, match="took the lock on this function at the same time"):
        with locks.holding(ctx, "apply"):
            pytest.fail("the change ran although another run overwrote the lock")
    assert slept == [settle] and locks.LAB_LOCK_SETTLE_SECONDS < locks.LOCK_SETTLE_SECONDS == 1.0
    assert lam.list_tags(Resource=arn)["Tags"][LOCK_TAG] == competitor  # the winner's tag is left alone
