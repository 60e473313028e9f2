"""Tests of the allowlist: entries are hashes, the file format is strict, the marker is exact."""

import hashlib

import pytest

from runbook_lib.allowlist import INLINE_MARKER, Allowlist, allowlist_entry, has_inline_marker
from runbook_lib.exceptions import InputError

SHA = "sha256:" + "a" * 64
FP = "fp:" + "0123456789abcdef"


def test_entry_is_the_unkeyed_sha256_of_the_utf8_value():
    assert allowlist_entry("pässwort") == "sha256:" + hashlib.sha256("pässwort".encode("utf-8")).hexdigest()
    # a lone surrogate (undecodable bytes read with surrogateescape) still gets an entry
    assert allowlist_entry("x\udcff").startswith("sha256:")


def test_file_entries_comments_and_blank_lines():
    allowlist = Allowlist([f"# reviewed 2026-01-01", "", f"  {SHA}  # sample token", FP])
    assert len(allowlist) == 2 and repr(allowlist) == "Allowlist(2 entries)"
    assert allowlist.allows(SHA, "fp:none") and allowlist.allows("sha256:other", FP)
    assert not allowlist.allows("sha256:other", "fp:none")


@pytest.mark.parametrize("entry", [
    "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:" + "A" * 64, "sha256:" + "g" * 64,
    "fp:" + "0" * 15, "fp:" + "0" * 17, "md5:" + "0" * 32, "a" * 64, "hunter2",
])
def test_entries_of_the_wrong_shape_are_refused_with_their_number(entry):
    with pytest.raises(InputError) as info:
        Allowlist(["# header", "", entry])
    assert info.value.parameter == "allowlist"
    assert str(info.value) == "allowlist: entry 3 is not sha256:<64 hex> or fp:<16 hex>"
    assert entry not in str(info.value) or len(entry) < 8  # a line may be a value pasted by mistake


def test_only_the_first_hash_mark_starts_a_comment():
    assert len(Allowlist([f"{SHA} # one # two"])) == 1
    with pytest.raises(InputError):
        Allowlist([f"not-a-hash # {SHA}"])  # a hash in the comment does not make an entry


def test_from_file_reads_utf8_and_a_missing_file_is_one_line(tmp_path):
    path = tmp_path / "allow.txt"
    path.write_text(f"# revisé\n{SHA}\n", encoding="utf-8")
    assert Allowlist.from_file(path).allows(SHA, "")
    with pytest.raises(InputError) as info:
        Allowlist.from_file(tmp_path / "missing.txt")
    assert info.value.parameter == "allowlist"
    assert str(info.value) == f"allowlist: cannot read {tmp_path / 'missing.txt'}: No such file or directory"


def test_inline_marker_must_be_written_out():
    assert has_inline_marker(f'x = "v"  # {INLINE_MARKER}')
    assert has_inline_marker(f"const x = 'v'; // {INLINE_MARKER}")
    assert not has_inline_marker('x = "v"  # runbook: allow')
    assert not has_inline_marker('x = "v"  # runbook allow-secret')


def test_from_file_reads_utf8_whatever_the_locale(tmp_path):
    import locale

    path = tmp_path / "allow.txt"
    path.write_text(f"# revisé le 2026-01-01\n{SHA}\n", encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale (outside Python's UTF-8 mode)
    try:
        assert Allowlist.from_file(path).allows(SHA, "")
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_an_error_without_a_message_is_named_by_its_type(tmp_path, monkeypatch):
    from pathlib import Path

    def unreadable(self, *args, **kwargs):
        raise PermissionError()  # no errno, no strerror: only its type says what happened

    monkeypatch.setattr(Path, "read_text", unreadable)
    with pytest.raises(InputError) as info:
        Allowlist.from_file(tmp_path / "allow.txt")
    assert str(info.value) == f"allowlist: cannot read {tmp_path / 'allow.txt'}: PermissionError"
