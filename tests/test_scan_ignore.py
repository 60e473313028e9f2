"""Tests of :mod:`runbook_lib.scan_ignore`: .gitignore files and --exclude patterns, at their boundaries."""

from __future__ import annotations

from pathlib import Path

import pathspec

from runbook_lib.scan_ignore import PathFilter
from runbook_lib.scanning import Scanner

PASSWORD = "Tq7!vR2m#Lx9"
LINE = f'DB_PASSWORD = "{PASSWORD}"\n'


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def scanned(root: Path, **options) -> tuple[list[str], dict[str, str]]:
    report = Scanner().scan_path(root, PathFilter(**options))
    found = sorted(Path(f.path).relative_to(root).as_posix() for f in report.findings)
    skipped = {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in report.skipped}
    return found, skipped


def test_gitignore_of_the_folder_and_of_a_subfolder_apply_below_their_own_directory(tmp_path):
    root = tree(tmp_path, {".gitignore": "build/\n*.log\n", "app.py": LINE, "build/out.py": LINE,
                           "debug.log": LINE, "pkg/.gitignore": "local.py\n", "pkg/local.py": LINE,
                           "pkg/ok.py": LINE, "local.py": LINE})
    found, skipped = scanned(root)
    assert found == ["app.py", "local.py", "pkg/ok.py"]  # pkg's rule does not reach the root's local.py
    assert skipped == {"build": f"ignored by {root.as_posix()}/.gitignore",
                       "debug.log": f"ignored by {root.as_posix()}/.gitignore",
                       "pkg/local.py": f"ignored by {root.as_posix()}/pkg/.gitignore"}


def test_a_negated_pattern_keeps_a_file_and_no_gitignore_scans_everything(tmp_path):
    root = tree(tmp_path, {".gitignore": "*.env\n!keep.env\n", "a.env": LINE, "keep.env": LINE})
    assert scanned(root)[0] == ["keep.env"]
    assert scanned(root, gitignore=False) == (["a.env", "keep.env"], {})


def test_exclude_patterns_are_relative_to_the_scanned_folder_and_repeatable(tmp_path):
    root = tree(tmp_path / "src", {"vendor/lib.py": LINE, "app.min.js": LINE, "app.py": LINE,
                                   "deep/vendor/x.py": LINE})
    found, skipped = scanned(root, exclude=["/vendor/", "*.min.js"])
    assert found == ["app.py", "deep/vendor/x.py"]  # an anchored pattern matches at the folder's top only
    assert skipped == {"vendor": "excluded by --exclude", "app.min.js": "excluded by --exclude"}


def test_a_named_file_matching_an_exclude_is_skipped_and_others_are_scanned(tmp_path):
    tree(tmp_path, {"a.py": LINE, "b.py": LINE})
    rules = PathFilter(exclude=["a.py"])
    assert rules.excludes_named(tmp_path / "a.py") and not rules.excludes_named(tmp_path / "b.py")
    report = Scanner().scan_path(tmp_path / "a.py", rules)
    assert report.findings == [] and report.skipped == [{"path": str(tmp_path / "a.py"),
                                                         "reason": "excluded by --exclude"}]
    assert len(Scanner().scan_path(tmp_path / "b.py", rules).findings) == 1
    assert PathFilter().excludes_named(tmp_path / "a.py") is False  # no pattern excludes nothing


def test_an_unreadable_gitignore_excludes_nothing(tmp_path):
    root = tree(tmp_path, {"app.py": LINE})
    (root / ".gitignore").mkdir()  # a folder where the file should be: cannot be read as patterns
    assert scanned(root)[0] == ["app.py"]


def test_a_path_is_judged_by_its_own_ancestors_gitignore_files_only(tmp_path, monkeypatch):
    """Many folders without a .gitignore cost nothing: each file consults only the specs above it."""
    files = {f"d{i}/f{j}.py": LINE for i in range(30) for j in range(5)}
    root = tree(tmp_path, {**files, ".gitignore": "*.log\n", "d3/.gitignore": "f1.py\n", "d3/x.log": LINE})
    calls = []
    real = pathspec.GitIgnoreSpec.match_file
    monkeypatch.setattr(pathspec.GitIgnoreSpec, "match_file", lambda self, f: calls.append(f) or real(self, f))
    rules = PathFilter()
    report = Scanner().scan_path(root, rules)
    found = [Path(f.path).relative_to(root).as_posix() for f in report.findings]
    skipped = {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in report.skipped}
    assert rules.ignore_files == [root / ".gitignore", root / "d3" / ".gitignore"]  # the 29 empty folders: none
    assert len(found) == 149 and "d3/f1.py" not in found
    assert skipped == {"d3/f1.py": f"ignored by {root.as_posix()}/d3/.gitignore",
                       "d3/x.log": f"ignored by {root.as_posix()}/.gitignore"}
    # the root's 31 entries and the 152 files below by the root's spec, d3's entries not excluded by it by
    # d3's own (6); the 29 folders without a .gitignore add nothing (before: every folder entered was asked)
    assert len(calls) == 31 + 152 + 6


def test_the_outermost_gitignore_that_excludes_a_path_is_named(tmp_path):
    root = tree(tmp_path, {".gitignore": "*.tmp\n", "sub/.gitignore": "*.tmp\n", "sub/a.tmp": LINE})
    assert scanned(root)[1] == {"sub/a.tmp": f"ignored by {root.as_posix()}/.gitignore"}


def test_judges_once_a_pattern_is_known_and_a_listing_without_gitignore_is_not_read(tmp_path, monkeypatch):
    assert not PathFilter().judges and PathFilter(exclude=["*.log"]).judges
    tree(tmp_path, {".gitignore": "*.log\n", "pkg/app.py": LINE})
    rules = PathFilter()
    rules.enter(tmp_path / "pkg", names=["app.py"])
    assert not rules.judges  # pkg listed no .gitignore: nothing read
    rules.enter(tmp_path, names=[".gitignore", "pkg"])
    assert rules.judges and rules.ignore_files == [tmp_path / ".gitignore"]
    assert rules.reason(tmp_path / "x.log", tmp_path, False) == f"ignored by {tmp_path.as_posix()}/.gitignore"
    unlisted = PathFilter()
    unlisted.enter(tmp_path)  # no listing given: the file is looked for
    assert unlisted.judges
    off = PathFilter(gitignore=False)
    off.enter(tmp_path, names=[".gitignore"])
    assert not off.judges
