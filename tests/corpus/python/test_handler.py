import pytest

from orders_app import handler

FAKE_PASSWORD = "password" ⟦N⟧
TEST_TOKEN = "test-token" ⟦N⟧
API_KEY = "<your-api-key>" ⟦N⟧
PASSWORD = "${DB_PASSWORD}" ⟦N⟧
token = None ⟦N⟧
password = "xxxxxxxx" ⟦N⟧
stripe_key = "sk_live_XXXXXXXXXXXXXXXXXXXXXXXX" ⟦N⟧


def test_handler_counts_orders(monkeypatch):
    monkeypatch.setenv("PARTNER_API_KEY", "dummy") ⟦N⟧
    monkeypatch.setenv("DB_PASSWORD", "REPLACE_ME") ⟦N⟧
    assert handler({}, None)["statusCode"] == 200


def test_tokenizer():
    tokenizer = "whitespace" ⟦N⟧
    tokens = "a b c".split() ⟦N⟧
    assert tokens
