"""Tests of the name test: which names name a secret, how strictly, and which only refer to one."""

import pytest

from runbook_lib.secret_names import KEY, PASSWORD, SECRET, key_class, name_class, split_words, words_as_written


@pytest.mark.parametrize("name,words", [
    ("dbPassword", ["db", "password"]), ("DB_PASSWORD", ["db", "password"]), ("db.password", ["db", "password"]),
    ("APIKey", ["api", "key"]), ("key2", ["key", "2"]), ("", []), ("__", []),
])
def test_split_words(name, words):
    assert split_words(name) == words


def test_words_as_written_keeps_case():
    assert words_as_written("yourApiKey") == ["your", "Api", "Key"]


@pytest.mark.parametrize("name", ["DB_PASSWORD", "dbPasswd", "passphrase", "PASS", "db_pwd", "pw", "mysql-pass",
                                  "PASSWORD_2", "password_value", "password_str", "pass_v", "Passwordless_pass"])
def test_password_names(name):
    assert name_class(name) == PASSWORD


@pytest.mark.parametrize("name", ["CLIENT_SECRET", "github_token", "apikey", "API_KEY", "private_key",
                                  "accessKey", "signing_key", "encryption_key", "master_key", "client_key",
                                  "app_key", "license_key", "hmac_key", "webhook_key", "session_key",
                                  "partner_key", "service_key", "shared_key", "admin_key", "auth_key",
                                  "AUTH", "creds", "credentials", "bearer", "auth_token", "secretKey",
                                  "SERVICE_TOKEN_1", "TOKEN_VALUE"])
def test_secret_names(name):
    assert name_class(name) == SECRET


def test_a_bare_key_is_the_strictest_class():
    assert name_class("key") == KEY and name_class("KEY_2") == KEY
    assert name_class("s3_key") is None and name_class("TagKey") is None and name_class("limit_key") is None


@pytest.mark.parametrize("name", [
    "SECRET_ARN", "secretName", "TOKEN_TTL", "PASSWORD_MIN_LENGTH", "token_url", "password_policy",
    "KMS_KEY_ID", "apiKeyId", "ClientToken", "next_token", "pageToken", "csrf_token", "is_secret",
    "change_password", "request_token", "get_secret", "fetchToken", "rotate_password", "tokenizer",
    "secretary", "tokens", "passwordless", "orders_table", "", "2", "v", "publicToken", "STRIPE_PUBLISHABLE_KEY",
])
def test_names_that_refer_to_a_secret_or_are_not_one(name):
    assert name_class(name) is None


def test_a_trailing_number_or_value_word_is_not_the_head_noun():
    assert name_class("SECRET_ARN_2") is None           # still an ARN
    assert name_class("secret_value") == SECRET         # the value of a secret
    assert name_class("value") is None                  # a lone `value` is kept, and names nothing


def test_a_verb_first_only_counts_before_another_word():
    assert name_class("get") is None and name_class("get_token") is None
    assert name_class("token_get") == SECRET


def test_the_first_password_word_wins_over_a_secret_word():
    assert name_class("token_password") == PASSWORD and name_class("password_token") == PASSWORD
    assert name_class("tokenizer_password") == PASSWORD  # a skipped word does not stop the search


def test_key_class_is_name_class_cached():
    assert key_class("DB_PASSWORD") == name_class("DB_PASSWORD") == PASSWORD
    assert key_class("SECRET_ARN") is None
    assert key_class.cache_info().maxsize == 8192


@pytest.mark.parametrize("name", ["secret_name_v", "secret_name_str", "secret_name_string", "secret_name_value",
                                  "secret_name_val", "secretNameValue2"])
def test_trailing_words_are_dropped_before_the_head_noun_is_read(name):
    assert name_class(name) is None


def test_a_qualified_key_needs_its_qualifier_before_it():
    assert name_class("admin_key") == SECRET and name_class("key_admin") is None
    assert name_class("aws_client_token") is None and name_class("client_token_secret") == SECRET
