"""The signed manifest: every file covered, and forged, re-hashed or re-signed folders fail."""

import base64
import hashlib
import json
import os
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from runbook_lib import manifest
from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.manifest import sha256_file, verify_manifest, verify_run, write_manifest
from runbook_lib.signing import SigningKey, load_signing_key


@pytest.fixture
def key():
    return load_signing_key()  # the session's per-user key (conftest keeps it out of the real home)


@pytest.fixture
def other_key(tmp_path):
    return SigningKey(ed25519.Ed25519PrivateKey.generate(), tmp_path / "elsewhere.pem")


@pytest.fixture
def run_folder(tmp_path, key):
    folder = tmp_path / "run"
    (folder / "checks").mkdir(parents=True)
    (folder / "checks" / "a.json").write_text('[{"status": "FAIL"}]\n')
    (folder / "summary.md").write_text("| x | FAIL |\n")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (folder / ".lock").write_text("held\n")
    (folder / ".ledger-abc.tmp").write_text("{}\n")
    (folder / ".hidden").write_text("x\n")
    write_manifest(folder, key)
    return folder


def _doc(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_manifest_covers_every_file_hidden_ones_included(run_folder, key):
    doc = _doc(run_folder)
    paths = {f["path"]: f for f in doc["files"]}
    assert set(paths) == {"checks/a.json", "summary.md", "chart.png", ".lock", ".ledger-abc.tmp", ".hidden"}
    assert paths["summary.md"]["size"] == len("| x | FAIL |\n")
    assert paths["summary.md"]["sha256"] == sha256_file(run_folder / "summary.md")
    assert doc["signer"] == {"algorithm": "ed25519", "public_key": key.public.b64,
                             "fingerprint": key.public.fingerprint}
    assert key.public.verify(base64.b64decode(doc["signature"]), manifest.signed_bytes(doc))


def test_untouched_folder_verifies_and_names_its_trusted_signer(run_folder, key):
    result = verify_run(run_folder)
    assert result.ok and result.differences == []
    assert result.signer == key.public.fingerprint and result.trusted is True and result.files == 6


@pytest.mark.parametrize("name", ["summary.md", ".lock", ".ledger-abc.tmp", "checks/a.json"])
def test_an_edited_file_is_changed_even_a_hidden_one(run_folder, name):
    (run_folder / name).write_text((run_folder / name).read_text().replace("FAIL", "PASS") + " ")
    assert [str(d) for d in verify_manifest(run_folder)] == [f"changed: {name}"]


def test_missing_and_added_files_are_reported(run_folder):
    (run_folder / "chart.png").unlink()
    (run_folder / "extra.txt").write_text("x")
    (run_folder / "runbook_lib").mkdir()
    (run_folder / "runbook_lib" / "__init__.py").write_text("import os\n")
    assert sorted(str(d) for d in verify_manifest(run_folder)) == [
        "missing: chart.png", "unexpected: extra.txt", "unexpected: runbook_lib/__init__.py"]


def test_a_forged_folder_rehashed_in_its_manifest_fails_on_the_signature(run_folder, key):
    (run_folder / "checks" / "a.json").write_text('[{"status": "PASS"}]\n')
    doc = _doc(run_folder)
    for entry in doc["files"]:
        path = run_folder / entry["path"]
        entry["sha256"], entry["size"] = sha256_file(path), path.stat().st_size
    (run_folder / "manifest.json").write_text(json.dumps(doc, indent=2))
    [difference] = verify_manifest(run_folder)
    assert difference.problem == "bad signature" and key.public.fingerprint in difference.detail


def test_a_folder_resigned_with_another_key_fails_unless_that_key_is_trusted(run_folder, other_key):
    (run_folder / "summary.md").write_text("| x | PASS |\n")
    write_manifest(run_folder, other_key)
    result = verify_run(run_folder)
    assert [d.problem for d in result.differences] == ["untrusted signer"]
    assert result.signer == other_key.public.fingerprint and result.trusted is False
    assert other_key.public.fingerprint in str(result.differences[0])
    assert verify_run(run_folder, trusted=[other_key.public.fingerprint]).ok


def test_a_signature_with_no_trusted_key_known_fails(run_folder):
    [difference] = verify_manifest(run_folder, trusted=[])
    assert difference.problem == "untrusted signer" and "--trusted-key" in difference.detail


@pytest.mark.parametrize("drop", ["signature", "signer"])
def test_an_unsigned_manifest_fails(run_folder, drop):
    doc = _doc(run_folder)
    doc.pop(drop)
    (run_folder / "manifest.json").write_text(json.dumps(doc))
    assert [d.problem for d in verify_manifest(run_folder)] == ["not signed"]


def test_a_swapped_public_key_or_a_garbled_signature_fails(run_folder, other_key):
    doc = _doc(run_folder)
    doc["signer"]["public_key"] = other_key.public.b64
    (run_folder / "manifest.json").write_text(json.dumps(doc))
    assert [d.problem for d in verify_manifest(run_folder)] == ["bad signature"]
    doc = _doc(run_folder)
    doc["signature"] = "!!not base64!!"
    (run_folder / "manifest.json").write_text(json.dumps(doc))
    assert [d.problem for d in verify_manifest(run_folder)] == ["malformed signature"]


def test_a_symlink_or_a_fifo_in_the_folder_fails_and_is_never_signed(run_folder, key, tmp_path):
    (run_folder / "04_backout.ipynb").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(run_folder / "pipe")
    result = {}
    worker = threading.Thread(target=lambda: result.update(d=verify_manifest(run_folder)), daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "verify blocked on a FIFO"
    assert sorted((d.path, d.problem) for d in result["d"]) == [("04_backout.ipynb", "symlink"),
                                                                ("pipe", "special file")]
    with pytest.raises(ChangeRefused, match="not signed: symlink: 04_backout.ipynb"):
        write_manifest(run_folder, key)


def test_a_later_manifest_names_the_one_it_replaced(run_folder, key):
    first = (run_folder / "manifest.json").read_bytes()
    (run_folder / "04_backout.ipynb").write_text("{}")
    doc = write_manifest(run_folder, key)
    assert doc["previous_manifest"] == {"sha256": hashlib.sha256(first).hexdigest(),
                                        "signer": key.public.fingerprint}
    assert verify_manifest(run_folder) == []


def test_folder_without_manifest_or_with_a_broken_one_is_a_clear_input_error(tmp_path, run_folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        verify_manifest(tmp_path / "empty")
    with pytest.raises(InputError, match="is not a folder"):
        verify_manifest(tmp_path / "nowhere")
    (run_folder / "manifest.json").write_text('{"files": [{"path": 1}]}')
    with pytest.raises(InputError, match="is not a valid manifest"):
        verify_manifest(run_folder)


def test_a_key_inside_the_folder_is_refused(run_folder):
    from test_signing import write_key

    inside = load_signing_key(write_key(run_folder / "key.pem"))
    with pytest.raises(InputError, match="inside the run folder"):
        write_manifest(run_folder, inside)


def test_the_manifest_is_readable_like_the_other_artifacts(run_folder):
    assert oct((run_folder / "manifest.json").stat().st_mode & 0o777) == oct(
        (run_folder / "summary.md").stat().st_mode & 0o777)
    assert [p.name for p in run_folder.glob(".manifest-*")] == []
