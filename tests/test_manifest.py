"""The signed manifest: every file covered, and forged, re-hashed or re-signed folders fail."""

import base64
import datetime
import hashlib
import json
import os
import re
import threading
import time
import tracemalloc

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from runbook_lib import __version__, manifest
from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.manifest import sha256_file, verify_manifest, verify_run, write_manifest
from runbook_lib.signing import SigningKey, load_signing_key
from test_signing import as_another_user, shared_tmp, write_key  # noqa: F401 (shared_tmp is a fixture)


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
    assert [str(d) for d in result["d"]] == ["symlink: 04_backout.ipynb (a run folder holds regular files only)",
                                             "special file: pipe (a run folder holds regular files only)"]
    with pytest.raises(ChangeRefused, match="not signed: symlink: 04_backout.ipynb") as refused:
        write_manifest(run_folder, key)
    assert refused.value.resource == str(run_folder)


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
    inside = load_signing_key(write_key(run_folder / "key.pem"))
    with pytest.raises(InputError, match="inside the run folder"):
        write_manifest(run_folder, inside)


def test_the_manifest_is_readable_like_the_other_artifacts(run_folder):
    assert oct((run_folder / "manifest.json").stat().st_mode & 0o777) == oct(
        (run_folder / "summary.md").stat().st_mode & 0o777)
    assert [p.name for p in run_folder.glob(".manifest-*")] == []


def _rewrite(folder, doc, **dumps):
    (folder / "manifest.json").write_text(json.dumps(doc, **dumps))


def test_each_signature_problem_is_named_on_the_manifest_and_says_why(run_folder, key, other_key):
    fp = key.public.fingerprint
    doc = _doc(run_folder)
    _rewrite(run_folder, {k: v for k, v in doc.items() if k != "signature"})
    assert [str(d) for d in verify_manifest(run_folder)] == [
        "not signed: manifest.json (hashes alone prove nothing: anyone can re-hash)"]
    _rewrite(run_folder, dict(doc, signature="!!not base64!!"))
    assert [str(d) for d in verify_manifest(run_folder)] == ["malformed signature: manifest.json"]
    _rewrite(run_folder, dict(doc, signer=dict(doc["signer"], fingerprint=other_key.public.fingerprint)))
    assert [str(d) for d in verify_manifest(run_folder)] == [
        "bad signature: manifest.json (the recorded fingerprint is not its key's)"]
    _rewrite(run_folder, dict(doc, created="2000-01-01T00:00:00Z"))
    assert [str(d) for d in verify_manifest(run_folder)] == [
        f"bad signature: manifest.json (changed after {fp} signed it)"]
    _rewrite(run_folder, doc)
    assert [str(d) for d in verify_manifest(run_folder, trusted=[])] == [
        f"untrusted signer: manifest.json (signed by {fp}; no trusted key is known: pass --trusted-key "
        "PUBFILE|FINGERPRINT)"]
    others = sorted(["ed25519:" + "b" * 32, "ed25519:" + "a" * 32])
    assert [str(d) for d in verify_manifest(run_folder, trusted=reversed(others))] == [
        f"untrusted signer: manifest.json (signed by {fp}, trusted: {others[0]}, {others[1]})"]


@pytest.mark.parametrize("field", ["signature", "public_key"])
def test_a_signature_or_key_with_characters_outside_base64_is_malformed_not_accepted(run_folder, field):
    doc = _doc(run_folder)
    holder = doc if field == "signature" else doc["signer"]
    holder[field] = holder[field][:10] + "*\n" + holder[field][10:]  # lenient decoding would drop them
    _rewrite(run_folder, doc)
    result = verify_run(run_folder)
    assert [str(d) for d in result.differences] == ["malformed signature: manifest.json"]
    assert result.signer == "" and result.trusted is False


def test_an_edit_that_keeps_the_size_is_still_changed(run_folder):
    summary = run_folder / "summary.md"
    before = summary.stat().st_size
    summary.write_text(summary.read_text().replace("FAIL", "PASS"))
    assert summary.stat().st_size == before
    assert [str(d) for d in verify_manifest(run_folder)] == ["changed: summary.md"]


def test_your_own_key_named_by_option_is_the_trusted_signer(run_folder, tmp_path):
    ci_key = load_signing_key(write_key(tmp_path / "ci.pem"))
    write_manifest(run_folder, ci_key)
    assert [d.problem for d in verify_run(run_folder).differences] == ["untrusted signer"]  # not the per-user key
    result = verify_run(run_folder, signing_key=ci_key.path)
    assert result.ok and result.trusted is True and result.signer == ci_key.public.fingerprint
    assert result.run_dir == run_folder and result.public_key == ci_key.public.b64


def test_the_signature_covers_canonical_json_an_auditor_can_rebuild(tmp_path, key):
    assert manifest.signed_bytes({"signature": "x", "b": [1, "é"], "a": {"y": None, "x": 2.5}}) == (
        b'{"a":{"x":2.5,"y":null},"b":[1,"\\u00e9"]}')
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "résumé.md").write_text("x")
    doc = write_manifest(folder, key)
    # Verified without runbook_lib: sorted keys, no spaces, non-ASCII escaped.
    unsigned = {k: v for k, v in json.loads((folder / "manifest.json").read_text()).items() if k != "signature"}
    rebuilt = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode("ascii")
    ed25519.Ed25519PublicKey.from_public_bytes(key.public.raw).verify(base64.b64decode(doc["signature"]), rebuilt)
    # A JSON tool that re-wrote the file in another key order changed nothing that is signed.
    _rewrite(folder, dict(reversed(list(json.loads((folder / "manifest.json").read_text()).items()))))
    assert verify_manifest(folder) == []
    _rewrite(folder, doc, sort_keys=True, ensure_ascii=False)
    assert verify_manifest(folder) == []


@pytest.fixture
def far_from_utc(monkeypatch):
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local time is never taken for UTC
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_manifest_says_what_made_it_and_when_in_utc(run_folder, key, far_from_utc):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    doc = write_manifest(run_folder, key)
    after = datetime.datetime.now(datetime.timezone.utc)
    assert (doc["tool"], doc["version"], doc["format"], doc["algorithm"]) == (
        "lambda-secrets-runbook", __version__, 2, "sha256")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created"])
    created = datetime.datetime.strptime(doc["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert before <= created <= after
    # What is on disk is that document, indented so a person can read and diff it.
    assert (run_folder / "manifest.json").read_text() == json.dumps(doc, indent=2) + "\n"


@pytest.mark.parametrize("content", ['{"files": [], "signer": {}}', "not json", "[1, 2]"])
def test_a_replaced_manifest_with_no_signer_is_named_by_its_hash_alone(run_folder, key, content):
    (run_folder / "manifest.json").write_text(content)
    doc = write_manifest(run_folder, key)
    assert doc["previous_manifest"] == {"sha256": hashlib.sha256(content.encode()).hexdigest(), "signer": ""}


@pytest.mark.parametrize("content", [
    "not json", "[]", "{}", '{"files": 5}', '{"files": ["summary.md"]}',
    '{"files": [{"path": 1, "sha256": "ab", "size": 1}]}',
    '{"files": [{"path": "a", "sha256": null, "size": 1}]}',
    '{"files": [{"path": "a", "sha256": "ab", "size": "1"}]}',
    '{"files": [{"path": "a", "sha256": "ab"}]}'])
def test_a_manifest_that_is_not_a_list_of_path_hash_and_size_is_an_input_error(run_folder, content):
    (run_folder / "manifest.json").write_text(content)
    with pytest.raises(InputError) as error:
        verify_run(run_folder)
    assert error.value.parameter == "RUN_DIR"
    assert str(error.value) == f"RUN_DIR: {run_folder / 'manifest.json'} is not a valid manifest"


def test_a_folder_that_is_not_a_run_says_what_to_pass(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as error:
        verify_run(tmp_path / "empty")
    assert str(error.value) == f"RUN_DIR: no manifest.json in {tmp_path / 'empty'}: is this a run folder?"
    with pytest.raises(InputError) as error:
        verify_run(tmp_path / "nowhere")
    assert str(error.value) == f"RUN_DIR: {tmp_path / 'nowhere'} is not a folder: pass the folder of an archived run"


def test_an_unreadable_folder_inside_is_named_and_never_signed_as_if_empty(shared_tmp, key):
    folder = shared_tmp / "run"
    (folder / "checks").mkdir(parents=True)
    (folder / "checks" / "a.json").write_text("[]\n")
    (folder / "summary.md").write_text("x\n")
    write_manifest(folder, key)
    (folder / "checks").chmod(0)
    with as_another_user():
        result = verify_run(folder, trusted=[key.public.fingerprint])
        with pytest.raises(ChangeRefused) as refused:
            write_manifest(folder, key)
    assert [str(d) for d in result.differences] == ["unreadable: checks (Permission denied)",
                                                    "missing: checks/a.json"]
    assert str(refused.value) == f"{folder}: not signed: unreadable: checks (Permission denied)"


def test_hashing_never_reads_through_a_link_and_holds_one_block_at_a_time(tmp_path):
    target = tmp_path / "outside.json"
    target.write_bytes(b"{}")
    (tmp_path / "link.json").symlink_to(target)
    with pytest.raises(OSError):  # a file swapped for a link after the scan is not followed
        sha256_file(tmp_path / "link.json")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 16) * 512)  # 32 MiB
    tracemalloc.start()
    try:
        digest = sha256_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(big.read_bytes()).hexdigest()
    assert peak < big.stat().st_size // 4  # block by block, never the whole file


def test_hashing_works_where_the_system_has_no_o_nofollow(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_NOFOLLOW")  # Windows: no such flag, and no symlink to follow by accident
    (tmp_path / "a.txt").write_bytes(b"evidence")
    assert sha256_file(tmp_path / "a.txt") == hashlib.sha256(b"evidence").hexdigest()
