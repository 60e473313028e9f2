import json

import pytest

from runbook_lib.exceptions import InputError
from runbook_lib.manifest import verify_manifest, write_manifest


@pytest.fixture
def run_folder(tmp_path):
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "a.json").write_text("[]\n")
    (tmp_path / "summary.md").write_text("# summary\n")
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    write_manifest(tmp_path)
    return tmp_path


def test_manifest_lists_every_artifact_with_hash_and_size(run_folder):
    doc = json.loads((run_folder / "manifest.json").read_text())
    paths = {f["path"]: f for f in doc["files"]}
    assert set(paths) == {"checks/a.json", "summary.md", "chart.png"}
    assert paths["summary.md"]["size"] == len("# summary\n")
    assert all(len(f["sha256"]) == 64 for f in doc["files"])


def test_untouched_folder_verifies(run_folder):
    assert verify_manifest(run_folder) == []


def test_edited_artifact_is_reported_changed(run_folder):
    (run_folder / "summary.md").write_text("# summary\n")  # same content: still fine
    assert verify_manifest(run_folder) == []
    (run_folder / "summary.md").write_text("# summary, edited\n")
    assert [str(d) for d in verify_manifest(run_folder)] == ["changed: summary.md"]


def test_same_size_edit_is_caught_by_hash(run_folder):
    (run_folder / "checks" / "a.json").write_text("{}\n")
    assert [d.problem for d in verify_manifest(run_folder)] == ["changed"]


def test_missing_and_added_files_are_reported(run_folder):
    (run_folder / "chart.png").unlink()
    (run_folder / "extra.txt").write_text("x")
    assert sorted(str(d) for d in verify_manifest(run_folder)) == [
        "missing: chart.png", "unexpected: extra.txt"]


def test_folder_without_manifest_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        verify_manifest(tmp_path)
