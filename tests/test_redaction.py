import hashlib
import hmac

import pytest

from runbook_lib.exceptions import InputError
from runbook_lib.redaction import KEY_ENV, Fingerprinter, redact


def test_redact_shows_at_most_four_characters_and_the_length():
    assert redact("AKIAIOSFODNN7EXAMPLE") == "AKIA…(20)"
    assert redact("Pa55word!x") == "Pa…(10)"
    assert redact("short") == "…(5)"
    assert redact(b"bytes-value-0123456789") == "byte…(22)"


@pytest.mark.parametrize("length,expected", [
    (0, "…(0)"), (1, "…(1)"), (8, "…(8)"), (9, "…(9)"),          # under 10: nothing shown
    (10, "ab…(10)"), (11, "ab…(11)"), (15, "ab…(15)"),             # 10-15: two characters
    (16, "abcd…(16)"), (17, "abcd…(17)"), (40, "abcd…(40)"),       # 16 and more: four
])
def test_redact_preview_at_each_length_around_the_thresholds(length, expected):
    assert redact("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[:length]) == expected


def test_redact_counts_characters_not_bytes_and_survives_invalid_utf8():
    assert redact("pässwörd-éé") == "pä…(11)"
    # bytes that are not UTF-8 are previewed, not raised on (a message must not fail on a value)
    assert redact(b"\xff\xfe" + b"x" * 14) == "\ufffd\ufffdxx…(16)"


def test_fingerprints_match_equal_values_only_under_one_key():
    a, b = Fingerprinter(b"1" * 32), Fingerprinter(b"2" * 32)
    assert a("s3cr3t-value") == a("s3cr3t-value")
    assert a("s3cr3t-value") != a("s3cr3t-valuf")
    assert a("s3cr3t-value") != b("s3cr3t-value")
    assert a("x").startswith("fp:") and len(a("x")) == 3 + 16


def test_fingerprint_is_the_truncated_hmac_sha256_of_the_utf8_bytes():
    key = b"k" * 32
    expected = "fp:" + hmac.new(key, "pässwort".encode("utf-8"), hashlib.sha256).hexdigest()[:16]
    assert Fingerprinter(key)("pässwort") == expected
    assert Fingerprinter(key)("pässwort".encode("utf-8")) == expected  # bytes and str agree


def test_runner_key_is_shared_through_the_environment(monkeypatch):
    key = Fingerprinter.new_key_hex()
    monkeypatch.setenv(KEY_ENV, key)
    assert Fingerprinter()("v") == Fingerprinter(bytes.fromhex(key))("v")


def test_without_a_shared_key_each_fingerprinter_has_its_own_random_32_byte_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    first, second = Fingerprinter(), Fingerprinter()
    assert first("v") != second("v")
    assert len(first._key) == 32  # noqa: SLF001 - the key's size is the guarantee under test
    monkeypatch.setenv(KEY_ENV, "")  # set but empty: the same as unset
    assert len(Fingerprinter()._key) == 32  # noqa: SLF001


@pytest.mark.parametrize("bad", ["not-hex", "abcd"])  # not hex; hex but 2 bytes
def test_a_shared_key_that_is_not_a_hex_key_is_refused_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv(KEY_ENV, bad)
    with pytest.raises(InputError, match=f"^{KEY_ENV}: needs a hex key of at least 16 bytes") as caught:
        Fingerprinter()
    assert bad not in str(caught.value)


def test_a_key_file_keys_the_fingerprinter_like_the_variable(tmp_path, monkeypatch):
    key = Fingerprinter.new_key_hex()
    (tmp_path / "key").write_text(key + "\n")
    monkeypatch.setenv(KEY_ENV, key)
    assert Fingerprinter.from_key_file(tmp_path / "key")("v") == Fingerprinter()("v")
    (tmp_path / "short").write_text("ab" * 8)  # 8 bytes: too short to key an HMAC that gates secrets
    with pytest.raises(InputError, match="^--fingerprint-key-file .*short: needs a hex key"):
        Fingerprinter.from_key_file(tmp_path / "short")
    with pytest.raises(InputError, match="^--fingerprint-key-file: cannot read .*missing"):
        Fingerprinter.from_key_file(tmp_path / "missing")


def test_new_key_hex_is_32_random_bytes_in_hex():
    key = Fingerprinter.new_key_hex()
    assert len(key) == 64 and bytes.fromhex(key) and key != Fingerprinter.new_key_hex()


def test_fingerprinter_repr_hides_the_key():
    assert repr(Fingerprinter(b"k" * 32)) == "Fingerprinter(key=<hidden>)"
