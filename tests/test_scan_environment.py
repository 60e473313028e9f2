"""Tests of environment-variable candidates: names, JSON values, nesting limits, random tokens."""

import json

import pytest

from runbook_lib.scan_buffer import Candidate
from runbook_lib.scan_environment import (MAX_DEPTH, MAX_JSON_CHARS, environment_candidates, join_key, json_leaves,
                                          leaf_candidates, most_specific, neutral_name_ok)
from runbook_lib.scanning import Scanner

PW = "Tq7!vR2m#Lx9"
RANDOM = "Xk29vLq7Pw03Zr58Tq6MbN4c"  # 24 characters, 3 classes: a random token under a neutral name
AKIA = "AKIA" + "QX7Z2MWB4HNPLK3D"


def text_scan(text: str) -> list[Candidate]:
    return Scanner()._text_candidates(text)  # noqa: SLF001 - the scan the Scanner hands in


def nothing(text: str) -> list[Candidate]:
    return []


@pytest.mark.parametrize("name", ["BUILD_SHA", "GIT_COMMIT", "IMAGE_TAG", "S3_BUCKET", "key_id", "TRACE",
                                  "APP_VERSION", "version", "REQUEST_ID", "DB_HOST", "salt_id", "ETAG"])
def test_names_whose_random_values_are_not_secrets(name):
    assert not neutral_name_ok(name)


@pytest.mark.parametrize("name", ["PARTNER_CONFIG", "SHARED", "HASHED_X_Y"[:0] + "HASHING", "IDENTITY", "BUILDER",
                                  "PARTNER_CFG"])
def test_neutral_names_may_hold_a_random_secret(name):
    assert neutral_name_ok(name)


def test_json_leaves_and_keys():
    doc = {"db": {"password": "a", "port": 5432, "hosts": ["h1", {"token": "t"}]}, "flag": True, "none": None}
    assert list(json_leaves(doc)) == [("password", "db.password", "a"), ("hosts", "db.hosts[0]", "h1"),
                                      ("token", "db.hosts[1].token", "t")]
    assert list(json_leaves(["x"])) == [(None, "[0]", "x")]
    assert join_key(None, "a") == "a" and join_key("", "a") == "a" and join_key("o", "a") == "o.a"
    assert join_key("o", "[0]") == "o[0]" and join_key("o", "[0].k") == "o[0].k"


def test_a_value_under_its_own_name():
    assert environment_candidates("DB_PASSWORD", f"  {PW}  ", nothing) == [("keyword-assignment", PW, None)]
    assert environment_candidates("DB_PASSWORD", "   ", nothing) == []
    assert environment_candidates("TABLE_NAME", "orders", nothing) == []


def test_json_objects_and_arrays_are_opened_and_their_keys_named():
    env = json.dumps({"db": {"password": PW}, "retries": 3})
    assert environment_candidates("CONFIG", env, nothing) == [("keyword-assignment", PW, "db.password")]
    # a leaf without a key of its own is judged under the variable's name
    assert environment_candidates("DB_PASSWORDS", json.dumps([PW]), nothing) == [("keyword-assignment", PW, "[0]")]
    # JSON inside a JSON string, one level further down
    inner = json.dumps({"cfg": json.dumps({"password": PW})})
    assert environment_candidates("CONFIG", inner, nothing) == [("keyword-assignment", PW, "cfg.password")]


def _nested(levels: int) -> str:
    value = PW
    for _ in range(levels):
        value = json.dumps({"password": value})
    return value


def test_json_nesting_and_size_limits():
    path = ".".join(["password"] * MAX_DEPTH)
    assert environment_candidates("CONFIG", _nested(MAX_DEPTH), nothing) == [("keyword-assignment", PW, path)]
    # one level more: the innermost JSON is not opened (and as a value it reads as a {template})
    assert environment_candidates("CONFIG", _nested(MAX_DEPTH + 1), nothing) == []
    big = json.dumps({"password": PW, "pad": "x" * MAX_JSON_CHARS})
    assert environment_candidates("CONFIG", big, nothing) == []  # too large to parse: one string
    assert MAX_JSON_CHARS == 4 * 1024 * 1024


def test_what_is_not_json_is_a_string():
    assert environment_candidates("DB_PASSWORD", "{" + PW, nothing) == [("keyword-assignment", "{" + PW, None)]
    # an array that does not parse is a string like any other
    assert environment_candidates("DB_PASSWORD", "[not json", nothing) == [("keyword-assignment", "[not json", None)]
    assert environment_candidates("TABLE_NAME", "[not json", nothing) == []
    assert environment_candidates("CONFIG", '"a string"', nothing) == []


def test_text_inside_a_value_is_scanned():
    found = environment_candidates("PARTNER_SETTINGS", f"region=eu;password={PW};debug=1", text_scan)
    assert found == [("keyword-assignment", PW, None)]
    found = environment_candidates("NOTE", f"use {AKIA} for now", text_scan)
    assert found == [("aws-access-key-id", AKIA, None)]


def test_a_keyword_hit_inside_the_value_does_not_repeat_the_names_own():
    found = leaf_candidates("DB_PASSWORD", f"password={PW}", text_scan, None, 0, neutral_ok=True)
    assert found == [("keyword-assignment", f"password={PW}", None)]


def test_random_tokens_only_under_neutral_names_outside_json():
    assert environment_candidates("PARTNER_CONFIG", RANDOM, nothing) == [("high-entropy-env-value", RANDOM, None)]
    assert environment_candidates("BUILD_SHA", RANDOM, nothing) == []
    assert environment_candidates("PARTNER_CONFIG", RANDOM[:19], nothing) == []
    assert environment_candidates("CONFIG", json.dumps({"blob": RANDOM}), nothing) == []  # JSON leaves: by name only
    assert environment_candidates("SERVICE_TOKEN", RANDOM, nothing) == [("keyword-assignment", RANDOM, None)]
    # a name about a secret (not a secret name) is neutral: a random token under it is still reported
    assert environment_candidates("TOKEN_TTL", RANDOM, nothing) == [("high-entropy-env-value", RANDOM, None)]


def test_most_specific_rule_per_value_first_seen_on_a_tie():
    found = [("keyword-assignment", "v", None), ("aws-access-key-id", "v", None), ("jwt", "w", "k"),
             ("high-entropy-env-value", "w", "k"), ("keyword-assignment", "u", "first"),
             ("keyword-assignment", "u", "second"), ("high-entropy-env-value", "t", None)]
    assert most_specific(found) == [("aws-access-key-id", "v", None), ("jwt", "w", "k"),
                                    ("keyword-assignment", "u", "first"), ("high-entropy-env-value", "t", None)]
    with pytest.raises(KeyError):
        most_specific([("a", "v", None), ("not-a-rule", "v", None)])  # a rule without a priority is a bug


def test_a_json_array_inside_a_json_string_is_opened_and_named_like_any_array():
    env = json.dumps({"passwords": json.dumps([PW])})
    assert environment_candidates("CONFIG", env, nothing) == [("keyword-assignment", PW, "passwords[0]")]
    # an array that holds no string is no value at all, not the string "[1234,5678,91011]"
    assert environment_candidates("CONFIG", json.dumps({"passwords": "[1234,5678,91011]"}), nothing) == []


def test_a_leaf_that_only_looks_like_json_keeps_its_key_path():
    env = json.dumps({"db": {"password": "{" + PW}})
    assert environment_candidates("CONFIG", env, nothing) == [("keyword-assignment", "{" + PW, "db.password")]


def test_a_json_leaf_is_judged_by_its_key_however_it_starts():
    # a random token under a neutral key is not reported inside JSON, with or without a bracket
    for leaf in (RANDOM, "{" + RANDOM, "[" + RANDOM):
        assert environment_candidates("CONFIG", json.dumps({"blob": leaf}), nothing) == [], leaf
    # the variable's own value is: a bracket does not hide it
    assert environment_candidates("PARTNER_CONFIG", "{" + RANDOM, nothing) == [
        ("high-entropy-env-value", "{" + RANDOM, None)]
    # and at the deepest level opened, a bracketed leaf is still a leaf
    leaf = json.dumps({"blob": "{" + RANDOM})
    for _ in range(MAX_DEPTH - 1):
        leaf = json.dumps({"cfg": leaf})
    assert environment_candidates("CONFIG", leaf, nothing) == []


def _json_of_length(length: int) -> str:
    base = json.dumps({"password": PW, "pad": ""})
    value = json.dumps({"password": PW, "pad": "x" * (length - len(base))})
    assert len(value) == length
    return value


def test_json_is_parsed_up_to_one_character_under_the_limit():
    assert environment_candidates("CONFIG", _json_of_length(MAX_JSON_CHARS - 1), nothing) == [
        ("keyword-assignment", PW, "password")]
    assert environment_candidates("CONFIG", _json_of_length(MAX_JSON_CHARS), nothing) == []


def test_a_keyword_value_holding_a_token_already_found_is_not_reported_again():
    found = environment_candidates("NOTE", f"{AKIA}\npassword={AKIA}x9", text_scan)
    assert found == [("aws-access-key-id", AKIA, None)]


def test_json_in_a_leaf_is_its_leaves_not_a_string():
    # a password member holding a JSON object is the object's leaves, as at the top level
    inner = json.dumps({"user": "app", "db": {"port": 5432}})
    assert environment_candidates("CONFIG", json.dumps({"password": inner}), nothing) == []
    assert environment_candidates("DB_PASSWORD", inner, nothing) == []
    inner = json.dumps({"user": "app", "db": {"password": PW}})
    assert environment_candidates("CONFIG", json.dumps({"password": inner}), nothing) == [
        ("keyword-assignment", PW, "password.db.password")]
