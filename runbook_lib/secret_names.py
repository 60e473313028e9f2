"""Secret-named keys: whether a name names a secret, refers to one, or is something else.

``DB_PASSWORD``, ``dbPassword`` and ``db.password`` all split to ``db password`` and name a
password; ``SECRET_ARN``, ``secretName`` and ``TOKEN_TTL`` are *about* a secret (their head
noun says so); ``get_secret`` starts with a verb; ``tokenizer`` is not about secrets at all.
:func:`key_class` also says how strict the value test must be for the name.

Examples
--------
>>> split_words("dbPassword"), key_class("DB_PASSWORD"), key_class("SECRET_ARN")
(['db', 'password'], 'password', None)
>>> key_class("PARTNER_API_KEY"), key_class("key"), key_class("S3Key")
('secret', 'key', None)
"""

from __future__ import annotations

import functools
import re

_WORD_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
#: Substrings that make a word secret-named, unless the word is one of ``_NOT_SECRET_WORDS``.
_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credential")
_PASSWORD_SUBSTRINGS = ("password", "passwd", "passphrase")
_SECRET_WORDS = {"pass", "pwd", "pw", "auth", "creds", "cred", "bearer", "apikey", "privatekey",
                 "accesskey", "secretkey", "signingkey", "clientsecret", "authtoken"}
_NOT_SECRET_WORDS = {"tokenizer", "tokenize", "tokenized", "tokenization", "tokenizers", "secretary",
                     "passwordless", "tokens"}
#: Words after the head noun that say nothing about it: ``SECRET_ARN_2``, ``token_value``.
_TRAILING_WORDS = {"v", "str", "string", "value", "val"}
#: ``<qualifier> key`` names a secret key (``secret`` and ``auth`` are secret words themselves).
KEY_QUALIFIERS = {"api", "private", "access", "signing", "encryption", "master", "client", "app", "license",
                  "hmac", "webhook", "session", "partner", "service", "shared", "admin"}
#: The head noun says the name is *about* a secret, not the secret: ``SECRET_ARN``, ``secretName``.
_NAME_LIKE_LAST = {
    "name", "names", "arn", "arns", "id", "ids", "ttl", "length", "len", "size", "url", "urls", "uri",
    "path", "paths", "file", "filename", "files", "dir", "type", "types", "kind", "mode", "field",
    "fields", "header", "env", "var", "variable", "param", "parameter", "prefix", "suffix", "version",
    "region", "ref", "endpoint", "expiry", "expires", "expiration", "expire", "timeout", "duration",
    "seconds", "secs", "minutes", "ms", "count", "max", "min", "limit", "policy", "rotation",
    "enabled", "disabled", "required", "provider", "method", "scheme", "format", "location", "store",
    "manager", "client", "service", "label", "description", "desc", "hint", "help", "message", "msg",
    "error", "regex", "re", "pattern", "validator", "template", "placeholder", "hash", "digest",
    "checksum", "sha", "algorithm", "alg", "encoding", "index", "idx", "flag", "mask", "style",
    "class", "attr", "attribute", "column", "col", "table", "input", "prompt", "text", "title",
    "schema", "spec", "options", "settings", "list", "map", "dict", "cache", "usage", "scope",
    "scopes", "audience", "issuer", "lifetime", "age", "period", "interval", "retries", "attempts",
    "source", "sources", "arg", "args", "key_id", "keyid", "status", "state", "policies", "role",
    "user", "username", "login", "account", "email", "host", "port", "bucket", "topic", "queue",
    "stage", "group", "parser", "generator", "handler", "callback", "fn", "func", "function",
    "response", "request", "result", "valid", "verified", "set", "exists", "changed", "reset",
    "used", "last", "date", "time", "at", "created", "updated", "rotated", "age", "id_token_hint",
}
#: Words anywhere in the name that make it not a secret (pagination tokens, CSRF form names...).
_NAME_LIKE_ANY = {"next", "page", "pagination", "continuation", "marker", "csrf", "xsrf", "is", "has",
                  "use", "show", "hide", "toggle", "confirm", "forgot", "reset", "min", "max",
                  "token_type", "lexer", "syntax", "ast", "parse", "cancellation", "idempotency",
                  "sync", "resume", "push", "device", "sequence", "output", "input", "change", "request",
                  "public", "publishable"}
_VERB_FIRST = {"get", "fetch", "load", "read", "resolve", "lookup", "describe", "retrieve", "rotate",
               "create", "delete", "remove", "validate", "verify", "check", "generate", "gen", "make",
               "new", "from", "decode", "encode", "encrypt", "decrypt", "hash", "is", "has", "to",
               "parse", "render", "print", "log", "format", "update", "put", "list", "find", "mask",
               "redact", "compare", "random", "issue", "refresh", "revoke", "request", "require",
               "assert", "expect", "should", "with", "build", "sign", "get_secret"}


def words_as_written(text: str) -> list[str]:
    """``dbPassword`` -> ``['db', 'Password']``: words at separators and case changes, case kept."""
    return _WORD_SPLIT.findall(text)


def split_words(name: str) -> list[str]:
    """``dbPassword`` / ``DB_PASSWORD`` / ``db.password`` -> ``['db', 'password']``."""
    return [w.lower() for w in _WORD_SPLIT.findall(name)]


PASSWORD, SECRET, KEY = "password", "secret", "key"


def name_class(name: str) -> str | None:
    """Whether ``name`` names a secret, and how strict the value test must be.

    Returns ``"password"`` (short human values count), ``"secret"`` (value must look
    generated), ``"key"`` (a bare ``key``: value must look strongly random) or ``None``.
    :func:`key_class` is the same test with a cache (the scanner asks about the same names
    over and over).
    """
    words = split_words(name)
    if not words:
        return None
    while len(words) > 1 and (words[-1].isdigit() or words[-1] in _TRAILING_WORDS):
        words = words[:-1]
    last = words[-1]
    if last in _NAME_LIKE_LAST or any(w in _NAME_LIKE_ANY for w in words):
        return None
    if words[0] in _VERB_FIRST:  # (no verb is a secret word on its own)
        return None
    if words[-2:] == ["client", "token"]:
        return None  # ClientToken is AWS's idempotency token
    found = None
    for i, w in enumerate(words):
        if w in _NOT_SECRET_WORDS:
            continue
        if any(s in w for s in _PASSWORD_SUBSTRINGS) or w in ("pass", "pwd", "pw"):
            return PASSWORD
        if any(s in w for s in _SECRET_SUBSTRINGS) or w in _SECRET_WORDS:
            found = SECRET
        elif w == "key" and i > 0 and words[i - 1] in KEY_QUALIFIERS:
            found = SECRET
        elif w == "key" and found is None and len(words) == 1:
            found = KEY  # a bare `key`; `limit_key`, `S3Key`, `TagKey` name keys of other kinds
    return found


#: :func:`name_class`, cached: the names of a code base repeat.
key_class = functools.lru_cache(maxsize=8192)(name_class)
