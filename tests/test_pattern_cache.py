"""Tests of :mod:`runbook_lib.pattern_cache`: hit, miss, corrupt file, key mismatch, unwritable folder."""

from __future__ import annotations

import os
from pathlib import Path

import hyperscan
import pytest

from runbook_lib import pattern_cache
from runbook_lib.pattern_cache import MAGIC, cache_file, cache_folder, compiled_database, database_key
from runbook_lib.scan_prefilter import Prefilter

EXPRESSIONS, IDS, FLAGS = [b"AKIA[0-9A-Z]{16}", b"ghp_[A-Za-z0-9]{36}"], [3, 7], [0, hyperscan.HS_FLAG_CASELESS]
MODE = hyperscan.HS_MODE_BLOCK
TEXT = b"x AKIAIOSFODNN7ABCDEFG y GHP_" + b"a" * 36


def hits(database) -> list[tuple[int, int]]:
    found = []
    database.scan(TEXT, match_event_handler=lambda i, start, end, flags, ctx: found.append((i, end)),
                  scratch=hyperscan.Scratch(database))
    return sorted(found)


@pytest.fixture
def compiles(monkeypatch):
    """Counts real compilations."""
    calls = []
    real = hyperscan.Database.compile

    class Counting(hyperscan.Database):
        def compile(self, *args, **kwargs):
            calls.append(kwargs.get("expressions"))
            return real(self, *args, **kwargs)

    monkeypatch.setattr(hyperscan, "Database", Counting)
    return calls


def test_the_folder_follows_xdg_cache_home_else_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "lambda-secrets-runbook"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "lambda-secrets-runbook"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_folder() == tmp_path / "home" / ".cache" / "lambda-secrets-runbook"


def test_the_suite_never_writes_to_the_real_home_cache():
    assert not str(cache_folder()).startswith(os.path.expanduser("~/.cache"))


def test_a_miss_compiles_and_stores_then_a_hit_loads_without_compiling(tmp_path, compiles):
    first = compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert len(compiles) == 1 and cache_file(database_key(EXPRESSIONS, IDS, FLAGS, MODE), tmp_path).is_file()
    second = compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert len(compiles) == 1  # loaded, not compiled
    assert hits(second) == hits(first) == [(3, 22), (7, 65)]
    assert [p.name for p in tmp_path.iterdir()] == [cache_file(database_key(EXPRESSIONS, IDS, FLAGS, MODE)).name]


@pytest.mark.parametrize("changed", [
    (EXPRESSIONS[:1] + [b"ghp_[A-Za-z0-9]{35}"], IDS, FLAGS, MODE),  # a pattern
    (EXPRESSIONS, [3, 8], FLAGS, MODE),  # an id
    (EXPRESSIONS, IDS, [0, 0], MODE),  # a flag
    (EXPRESSIONS[::-1], IDS[::-1], FLAGS[::-1], MODE),  # the order
])
def test_the_key_is_the_exact_patterns_ids_flags_and_order(changed):
    assert database_key(*changed) != database_key(EXPRESSIONS, IDS, FLAGS, MODE)
    assert database_key(EXPRESSIONS, IDS, FLAGS, MODE) == database_key(list(EXPRESSIONS), IDS, FLAGS, MODE)


def test_the_key_changes_with_the_hyperscan_version(monkeypatch):
    before = database_key(EXPRESSIONS, IDS, FLAGS, MODE)
    monkeypatch.setattr(hyperscan, "__version__", "0.0.0-other")
    assert database_key(EXPRESSIONS, IDS, FLAGS, MODE) != before


def _stored(tmp_path) -> Path:
    compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    return cache_file(database_key(EXPRESSIONS, IDS, FLAGS, MODE), tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "flipped payload byte", "empty", "not ours", "payload only"])
def test_a_corrupt_file_is_never_loaded_and_is_replaced(tmp_path, compiles, damage):
    path = _stored(tmp_path)
    blob = path.read_bytes()
    head = len(MAGIC) + 64
    path.write_bytes({"truncated": blob[:-100], "flipped payload byte": blob[:-50] + bytes([blob[-50] ^ 1]) + blob[-49:],
                      "empty": b"", "not ours": b"GIF89a" + blob[6:], "payload only": blob[head:]}[damage])
    database = compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert len(compiles) == 2 and hits(database) == [(3, 22), (7, 65)]
    assert path.read_bytes() == blob  # compiled again and rewritten whole


def test_a_file_that_does_not_hold_its_key_is_not_trusted(tmp_path, compiles):
    """Another rule set's (valid) database under this key's name: its key inside says so, it is not used."""
    other = ([b"nothing-like-it"], [0], [0], MODE)
    compiled_database(*other, tmp_path)
    mine = cache_file(database_key(EXPRESSIONS, IDS, FLAGS, MODE), tmp_path)
    cache_file(database_key(*other), tmp_path).rename(mine)
    database = compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert len(compiles) == 2 and hits(database) == [(3, 22), (7, 65)]


def test_a_database_hyperscan_refuses_is_compiled_again(tmp_path, compiles, monkeypatch):
    _stored(tmp_path)

    def refuse(payload, mode):
        raise hyperscan.DatabasePlatformError("built for another platform")

    monkeypatch.setattr(hyperscan, "loadb", refuse)
    assert hits(compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)) == [(3, 22), (7, 65)]
    assert len(compiles) == 2


def test_an_unwritable_or_impossible_folder_still_compiles(tmp_path, compiles):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")  # mkdir under a file fails (ENOTDIR) whoever runs the test, root included
    database = compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, blocked / "cache")
    assert hits(database) == [(3, 22), (7, 65)] and len(compiles) == 1
    assert pattern_cache.store(database_key(EXPRESSIONS, IDS, FLAGS, MODE), database, blocked / "cache") is None
    assert blocked.read_text() == "x"


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch, compiles):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pattern_cache.os, "replace", full_disk)
    compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_only_the_newest_files_are_kept(tmp_path):
    for n in range(pattern_cache.KEEP_FILES + 3):
        compiled_database([f"pattern{n}".encode()], [0], [0], MODE, tmp_path)
        os.utime(cache_file(database_key([f"pattern{n}".encode()], [0], [0], MODE), tmp_path), (n, n))
    kept = {p.name for p in tmp_path.glob("hyperscan-*.db")}
    newest = {cache_file(database_key([f"pattern{n}".encode()], [0], [0], MODE)).name
              for n in range(3, pattern_cache.KEEP_FILES + 3)}
    assert kept == newest  # the three oldest went


def test_the_prefilter_uses_the_cache_and_finds_the_same_hits(tmp_path, monkeypatch, compiles):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = b'password = "Xk29vLq7Pw03Zr58"\nAKIAIOSFODNN7ABCDEFG\n'
    fresh = Prefilter()
    assert len(compiles) == 2 and len(list((tmp_path / "lambda-secrets-runbook").glob("*.db"))) == 2
    cached = Prefilter()
    assert len(compiles) == 2  # both databases (code, configuration) loaded
    for config in (False, True):
        assert cached.hits(data, config) == fresh.hits(data, config) != []


def test_the_cache_holds_patterns_never_scanned_content(tmp_path, monkeypatch):
    """A planted value, scanned and found, is nowhere in the cache folder."""
    from runbook_lib import scan_prefilter
    from runbook_lib.scanning import Scanner

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(scan_prefilter, "_SHARED", None)  # this scanner compiles into tmp_path
    planted = "Zq8vLq7Pw03Zr58Xk29!"
    (tmp_path / "app.py").write_text(f'DB_PASSWORD = "{planted}"\n')
    assert [f.rule for f in Scanner().scan_path(tmp_path / "app.py").findings] == ["keyword-assignment"]
    stored = list((tmp_path / "lambda-secrets-runbook").iterdir())
    assert len(stored) == 2
    for path in stored:
        blob = path.read_bytes()
        assert planted.encode() not in blob and planted[:8].encode() not in blob


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_file_others_could_write_is_not_loaded(tmp_path, compiles, where):
    path = _stored(tmp_path)
    (path if where == "file" else tmp_path).chmod(0o666 if where == "file" else 0o777)
    assert hits(compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)) == [(3, 22), (7, 65)]
    assert len(compiles) == 2
    if where == "folder":  # nor is anything written there again
        assert pattern_cache.store(database_key(EXPRESSIONS, IDS, FLAGS, MODE), hyperscan.Database(), tmp_path) is None


def test_a_file_of_another_user_is_not_loaded(tmp_path, compiles, monkeypatch):
    _stored(tmp_path)
    monkeypatch.setattr(pattern_cache.os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    compiled_database(EXPRESSIONS, IDS, FLAGS, MODE, tmp_path)
    assert len(compiles) == 2
