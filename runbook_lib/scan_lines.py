"""Python confirmation of one line: is the prefilter's hit a real secret, and which rule?

The prefilter (:mod:`runbook_lib.scan_prefilter`) only says *where* something may be. The
functions here take the text of that line and return ``(rule, value)`` pairs for what is
really there: a secret-named assignment with a real literal (:func:`classify`), a login or
signing call with a literal credential (:func:`call_candidates`), a token whose shape and
context hold up (:func:`token_ok`). Values stay inside the engine: callers turn them into
redacted previews and fingerprints.

Examples
--------
>>> keyword_candidates('DB_PASSWORD = "pa55-w0rd!x"', config=False)
[('keyword-assignment', 'pa55-w0rd!x')]
>>> classify("SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x") is None
True
"""

from __future__ import annotations

import base64
import re

from . import rules as R
from .token_formats import has_full_structure

_AWS_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9/+]{40}$")
_DATA_URI = re.compile(r"base64,[A-Za-z0-9+/=]*$")
_ESCAPE = re.compile(r"\\[nt\"'\\]")
_ESCAPES = {"\\n": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\\\": "\\"}
#: How far back a hit looks for an open ``base64,`` data URI (an embedded image).
DATA_URI_LOOKBACK = 2048


def unescape(value: str) -> str:
    r"""The string a quoted literal stands for: ``\n``, ``\t``, ``\"``, ``\'``, ``\\`` decoded."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value)


def aws_rule_for_key(key: str, value: str) -> str | None:
    """``aws-secret-access-key`` / ``aws-session-token`` when the name and value's shape say so."""
    words = R.split_words(key)
    joined = "".join(words)
    if ("secretaccesskey" in joined or ("aws" in words and "secret" in joined)) and _AWS_SECRET_SHAPE.match(value):
        return "aws-secret-access-key"
    if ("sessiontoken" in joined or "securitytoken" in joined) and len(value) >= 100:
        return "aws-session-token"
    return None


def classify(key: str, value: str) -> str | None:
    """The rule for ``key = value`` if the name names a secret and the value is a real one."""
    strength = R.key_class(key)
    if strength is None:
        return None
    value = value.strip()
    aws = aws_rule_for_key(key, value)
    if aws:
        return aws
    if R.is_secret_value(value, strength) or uuid_credential(key, strength, value):
        return "keyword-assignment"
    return None


def uuid_credential(key: str, strength: str | None, value: str) -> bool:
    """A UUID under a password, secret or ``<qualifier> key`` name: MongoDB Atlas and Heroku
    API keys are UUIDs. Under ``key`` (``KMS_KEY``) and ``token`` names (``ClientToken``,
    ``LifecycleActionToken``, ``update_token``) a UUID is an id."""
    words = R.split_words(key)
    return strength in (R.PASSWORD, R.SECRET) and words[-1:] != ["token"] and R.is_uuid(value)


def literal_value(match: re.Match) -> str | None:
    """The value of a quoted-assignment match, or ``None`` when the match is not an assignment.

    ``f(x, "v")`` is an argument list, not a pair, unless the name is quoted; ``"key"(`` is
    not a call; an f-string with ``{`` is a template.
    """
    op = match.group("op")
    if (op == "," and not match.group("kq")) or (op == "(" and match.group("kq")):
        return None
    value = unescape(match.group("v"))
    if "f" in match.group("pre").lower() and "{" in value:
        return None
    return value


def keyword_candidates(line: str, config: bool) -> list[tuple[str, str]]:
    """(rule, value) for each secret-named assignment with a real literal on ``line``."""
    out: list[tuple[str, str]] = []
    for regex in (R.ASSIGN_QUOTED, R.ASSIGN_PAIR):
        for m in regex.finditer(line):
            value = literal_value(m)
            if value is None:
                continue
            rule = classify(m.group("key"), value)
            if rule:
                out.append((rule, value))
            elif not config and "=" in value:  # a connection string inside a literal
                out.extend(unquoted_candidates(value))
    if config:
        out.extend(unquoted_candidates(line))
    return out


def unquoted_candidates(text: str) -> list[tuple[str, str]]:
    """(rule, value) for each ``KEY=value`` / ``key: value`` with a real unquoted value; in a
    connection string, its password whatever it looks like (``Password=secret;``)."""
    out = []
    for m in R.ASSIGN_UNQUOTED.finditer(text):
        rule = classify(m.group("key"), m.group("v"))
        if rule is None and R.connection_string_password(m.group("key"), m.group("v"), text):
            rule = "keyword-assignment"
        if rule:
            out.append((rule, m.group("v")))
    return out


def call_candidates(line: str) -> list[tuple[str, str]]:
    """A password passed to a login call; a literal key passed to a signing function."""
    out = []
    for m in R.LOGIN_CALL.finditer(line):
        if R.is_secret_value(m.group("v"), R.PASSWORD):
            out.append(("keyword-assignment", m.group("v")))
    for m in R.SIGNING_CALL.finditer(line):
        for lit in R.QUOTED_LITERAL.finditer(m.group("args")):
            if R.is_secret_value(lit.group("v"), R.SECRET):
                out.append(("keyword-assignment", lit.group("v")))
    return out


def define_or_sql_candidates(line: str) -> list[tuple[str, str]]:
    """``#define API_TOKEN "v"`` under a secret name; SQL's ``IDENTIFIED BY 'v'`` / ``SET PASSWORD = 'v'``."""
    out = []
    for m in R.DEFINE_OR_SQL.finditer(line):
        if m.group("key"):
            rule = classify(m.group("key"), unescape(m.group("v")))
            if rule:
                out.append((rule, unescape(m.group("v"))))
        elif R.is_secret_value(m.group("v2"), R.PASSWORD):
            out.append(("keyword-assignment", m.group("v2")))
    return out


def unbraced(value: str) -> str:
    """``{Xk29vLq7Pw03}`` -> ``Xk29vLq7Pw03``: a generated value pasted into a ``{apikey}`` template.

    Documentation writes ``--user "{apikey}"``; a user who pastes a key in keeps the braces.
    Braces around a name (``{password}``, ``{API_KEY}``) stay a template.
    """
    inner = value[1:-1]
    if value[:1] == "{" and value[-1:] == "}" and not any(c in inner for c in "{}$%") and R.looks_generated(inner):
        return inner
    return value


def cli_candidates(line: str) -> list[tuple[str, str]]:
    """A credential given to a command-line option: ``curl -u user:pw``, ``--passphrase X``, ``-passin pass:X``."""
    out = []
    for m in R.CLI_CREDENTIAL.finditer(line):
        if m.group("h") is not None:  # ``curl -H "X-Api-Key: v"``: the header's name and value, as an assignment
            if classify(m.group("h"), m.group("v4")):
                out.append(("cli-credential", m.group("v4")))
            continue
        value = unbraced(next(v for v in (m.group("v"), m.group("v2"), m.group("v3")) if v is not None) or m.group("u"))
        if "<" in m.group(0) or value.startswith(("$", "%", "{", "@")) or not R.is_secret_value(value, R.PASSWORD):
            continue  # a variable, a template, a file (``@creds.txt``): not the credential itself
        out.append(("cli-credential", value))
    return out


def xml_candidates(line: str) -> list[tuple[str, str]]:
    """``<password>v</password>`` and ``key="ApiKey" value="v"`` with a real value."""
    out = []
    for m in R.ASSIGN_XML.finditer(line):
        key, value = (m.group("key"), m.group("v")) if m.group("key") else (m.group("key2"), m.group("v2"))
        rule = classify(key, value)
        if rule:
            out.append((rule, value))
    return out


#: Token formats whose shape alone is weak (a short or common prefix): the value must also look generated.
SHAPE_NEEDS_RANDOM = {"stripe-secret-key", "gitlab-token", "sendgrid-api-key", "mailgun-api-key",
                      "google-oauth-credential", "azure-client-secret", "azure-storage-key", "twilio-api-key"}


#: Token formats that embed account or team numbers (``xoxb-123456789012-…``): a run of digits is an id there.
STRUCTURED_IDS = {"aws-access-key-id", "slack-token"}


def token_ok(rule: str, value: str, line: str, start: int) -> bool:
    """Whether a token-format match at ``start`` of ``line`` is a real credential."""
    if _DATA_URI.search(line[max(0, start - DATA_URI_LOOKBACK):start]):
        return False  # inside a base64 data URI (an embedded image)
    if rule == "url-credentials":  # a literal in a URL is its password, whatever it looks like
        return R.literal_credential_reason(value) is None
    if R.is_placeholder(value) or R.is_public_sample(value) or is_documentation_sample(rule, value):
        return False
    if rule == "authorization-header":
        return R.not_a_value_reason(value) is None and authorization_ok(value, line, start)
    if rule == "url-query-credential":
        return R.not_a_value_reason(value) is None and R.looks_generated(value, 8)
    if rule == "jwt":
        return jwt_header_ok(value)
    if rule == "private-key":  # the base64-encoded forms; a PEM header is confirmed by its block
        return encoded_key_ok(value)
    if rule not in STRUCTURED_IDS and R.has_filler_run(value) and not has_full_structure(rule, value):
        return False  # ``AIzaaaaaaa…``, a short ``sk-ant-api03-abc123xyz-…klmnopqrstu…``: typed by hand
    return rule not in SHAPE_NEEDS_RANDOM or R.looks_generated(value)


_AUTH_SCHEME = re.compile(r"(?i)\b(?P<scheme>basic|bearer|token|negotiate|ntlm)\s+$")
_AUTH_HEADER = re.compile(r"(?i)authorization[\"']?\s*[:=,]\s*[\"']?(?:basic|bearer|token|negotiate|ntlm)\s+$")
#: How far before a value its scheme and header name are looked for.
AUTH_LOOKBEHIND = 64
#: NTLM's messages: 1 (negotiate) and 2 (challenge) carry no credential, 3 (authenticate) the response.
NTLM_SIGNATURE, NTLM_AUTHENTICATE = b"NTLMSSP\x00", 3
#: A GSS-API initial token (``0x60``, Kerberos or SPNEGO) or an SPNEGO response (``0xa1``), at least this long.
GSS_FIRST_BYTES, GSS_MIN_BYTES = (b"\x60", b"\xa1"), 32


def authorization_ok(value: str, line: str, start: int) -> bool:
    """Whether the value of an Authorization scheme at ``start`` of ``line`` is a credential.

    ``Basic``: the ``user:password`` it encodes, its password judged as a literal
    (:func:`~runbook_lib.rules.literal_credential_reason`; ``user:password`` itself is not one), or
    the user when there is no password (an API key as the user). ``Negotiate``/``NTLM``: a Kerberos or
    SPNEGO token, or an NTLM authenticate message (negotiate and challenge messages carry none).
    Otherwise a generated-looking value: 16 characters after a bare scheme word, 8 inside an
    ``Authorization`` header, where the value can only be the credential.
    """
    before = line[max(0, start - AUTH_LOOKBEHIND):start]
    scheme = _AUTH_SCHEME.search(before)
    word = scheme.group("scheme").lower() if scheme else ""
    decoded = b64_bytes(value)
    if word == "basic" and decoded is not None:
        pair = basic_pair(decoded)
        if pair is not None:
            user, password = pair
            return R.literal_credential_reason(password) is None if password else R.looks_generated(user)
    if word in ("negotiate", "ntlm") and decoded is not None:
        if decoded.startswith(NTLM_SIGNATURE):
            return decoded[8:9] == bytes([NTLM_AUTHENTICATE])
        if decoded[:1] in GSS_FIRST_BYTES and len(decoded) >= GSS_MIN_BYTES:
            return True
    return R.looks_generated(value, 8 if _AUTH_HEADER.search(before) else 16)


def b64_bytes(value: str) -> bytes | None:
    """``value`` decoded as standard base64 (padding optional), or ``None`` when it is not base64."""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        return None


def basic_pair(decoded: bytes) -> tuple[str, str] | None:
    """(user, password) of a Basic credential's decoded bytes, or ``None`` when they are not ``user:password`` text."""
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if ":" not in text or not text.isprintable():
        return None
    user, _, password = text.partition(":")
    return user, password


def is_documentation_sample(rule: str, value: str) -> bool:
    """``EXAMPLE`` in a token marks a documentation sample; AWS's end in it (``AKIAIOSFODNN7EXAMPLE``).

    Inside an access key id it can be a planted test key (``AKIA…EXAMPLE7…``), which is reported.
    """
    if rule == "aws-access-key-id":
        return value.endswith("EXAMPLE")
    return "EXAMPLE" in value.upper() and "EXAMPLE" in value


def encoded_key_ok(value: str) -> bool:
    """A base64 PEM block that decodes to a private key header and a body, or an OpenSSH key body."""
    if value.startswith("b3BlbnNzaC1rZXktdjE"):
        return len(value) >= 64
    try:
        decoded = base64.b64decode(value[: len(value) // 4 * 4] or "", validate=False)
    except ValueError:
        return False
    return b"PRIVATE KEY" in decoded[:80] and len(decoded) >= 64 + decoded.find(b"KEY-----")


_JWK_KTY = re.compile(r'"kty"\s*:\s*"(?P<kty>RSA|EC|OKP|oct)"')


def jwk_private_ok(member: str, value: str, jwk: str) -> bool:
    """Whether ``"member": "value"`` is the private part of the JSON Web Key ``jwk`` (its object's text).

    A JWK is a private key when it has ``d`` (RSA, EC and OKP keys: the private exponent or
    scalar) or, a symmetric ``oct`` key, ``k``; a public JWK has neither. The value must look
    generated (key material in base64url), not be a placeholder or a documentation sample.
    """
    kty = _JWK_KTY.search(jwk)
    if kty is None or (member == "k") != (kty.group("kty") == "oct"):
        return False
    return R.not_a_value_reason(value) is None and R.looks_generated(value, 20)


def jwt_header_ok(value: str) -> bool:
    """A JWT's first part decodes to a JSON header naming ``alg`` or ``typ``."""
    head = value.partition(".")[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except ValueError:
        return False
    if value.endswith("."):  # unsigned: only a header that says so (``"alg":"none"``)
        return re.search(rb'"alg"\s*:\s*"none"', decoded, re.IGNORECASE) is not None
    return b'"alg"' in decoded or b'"typ"' in decoded
