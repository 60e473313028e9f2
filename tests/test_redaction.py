from runbook_lib.redaction import KEY_ENV, Fingerprinter, redact


def test_redact_shows_at_most_four_characters_and_the_length():
    assert redact("AKIAIOSFODNN7EXAMPLE") == "AKIA…(20)"
    assert redact("Pa55word!x") == "Pa…(10)"
    assert redact("short") == "…(5)"
    assert redact(b"bytes-value-0123456789") == "byte…(22)"


def test_fingerprints_match_equal_values_only_under_one_key():
    a, b = Fingerprinter(b"1" * 32), Fingerprinter(b"2" * 32)
    assert a("s3cr3t-value") == a("s3cr3t-value")
    assert a("s3cr3t-value") != a("s3cr3t-valuf")
    assert a("s3cr3t-value") != b("s3cr3t-value")
    assert a("x").startswith("fp:") and len(a("x")) == 3 + 16


def test_runner_key_is_shared_through_the_environment(monkeypatch):
    key = Fingerprinter.new_key_hex()
    monkeypatch.setenv(KEY_ENV, key)
    assert Fingerprinter()("v") == Fingerprinter(bytes.fromhex(key))("v")


def test_fingerprinter_repr_hides_the_key():
    assert "hidden" in repr(Fingerprinter(b"k" * 32)) and "kkkk" not in repr(Fingerprinter(b"k" * 32))
