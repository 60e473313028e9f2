"""Detection rules: what a secret looks like, and what merely looks like one.

Three kinds of rule feed :mod:`runbook_lib.scanning`:

* **token formats** (:data:`TOKEN_RULES`): a fixed prefix or shape that only a credential
  has (``AKIA…``, ``ghp_…``, ``xoxb-…``, a PEM private key block). Each has a cheap
  *prefilter* expression, compiled with all the others into one multi-pattern database,
  and a *confirm* expression run in Python on the line where the prefilter hit.
* **keyword assignments**: ``password = "…"``, ``API_KEY: …``, ``"client_secret": "…"``.
  :func:`key_class` (:mod:`runbook_lib.secret_names`) decides from the name whether it
  names a secret (``DB_PASSWORD``) or only *refers* to one (``SECRET_ARN``, ``secretName``,
  ``TOKEN_TTL``); :func:`is_secret_value`
  decides from the value whether it is a real literal (not a placeholder, reference,
  ARN, URL, UUID, number, path or plain word), with a character-class / entropy test.
* **credentials in URLs and connection strings** (``postgres://user:pw@host``).

Every rule has an id, a title and a remediation class: AWS credentials are removed in
favour of the execution role's temporary credentials (``remove-use-role``); everything
else moves to Secrets Manager (``move-to-secrets-manager``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass

# the name test lives in secret_names; rules is where the scanner reads every rule from
from .lazy_regex import LazyPattern
from .secret_names import KEY, PASSWORD, SECRET, key_class, split_words, words_as_written  # noqa: F401
from .token_formats import TOKEN_RULES, TokenRule  # noqa: F401  (the catalog's token formats)


REMOVE_USE_ROLE = "remove-use-role"
MOVE_TO_SECRETS_MANAGER = "move-to-secrets-manager"
REMEDIATION_TEXT = {
    REMOVE_USE_ROLE: "remove: use the execution role's temporary credentials",
    MOVE_TO_SECRETS_MANAGER: "move to AWS Secrets Manager and read it at run time",
}


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    remediation: str = MOVE_TO_SECRETS_MANAGER


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("aws-access-key-id", "AWS access key id", REMOVE_USE_ROLE),
    Rule("aws-secret-access-key", "AWS secret access key", REMOVE_USE_ROLE),
    Rule("aws-session-token", "AWS session token", REMOVE_USE_ROLE),
    Rule("private-key", "private key block"),
    Rule("github-token", "GitHub token"),
    Rule("gitlab-token", "GitLab token"),
    Rule("slack-token", "Slack token"),
    Rule("slack-webhook", "Slack incoming webhook URL"),
    Rule("stripe-secret-key", "Stripe secret or restricted key"),
    Rule("google-api-key", "Google API key"),
    Rule("sendgrid-api-key", "SendGrid API key"),
    Rule("twilio-api-key", "Twilio API key"),
    Rule("npm-token", "npm access token"),
    Rule("pypi-token", "PyPI upload token"),
    Rule("openai-api-key", "OpenAI API key"),
    Rule("anthropic-api-key", "Anthropic API key"),
    Rule("mailgun-api-key", "Mailgun API key"),
    Rule("mailchimp-api-key", "Mailchimp API key"),
    Rule("shopify-token", "Shopify access token"),
    Rule("azure-storage-key", "Azure storage account or shared access key"),
    Rule("azure-client-secret", "Azure AD (Entra ID) client secret"),
    Rule("azure-devops-pat", "Azure DevOps personal access token"),
    Rule("google-oauth-credential", "Google OAuth client secret, access or refresh token"),
    Rule("aws-bedrock-api-key", "Amazon Bedrock API key", REMOVE_USE_ROLE),
    Rule("amazon-mws-token", "Amazon MWS auth token"),
    Rule("cli-credential", "credential passed as a command-line option"),
    Rule("jwt", "JSON Web Token"),
    Rule("authorization-header", "credential in an Authorization header"),
    Rule("url-credentials", "credentials inside a URL or connection string"),
    Rule("url-query-credential", "credential in a URL query string"),
    Rule("keyword-assignment", "hardcoded value of a secret-named setting"),
    Rule("high-entropy-env-value", "random-looking token in an environment variable"),
)}


#: The shortest value each class of name accepts (:func:`is_secret_value`): a password 4 characters,
#: a generated token 8, a bare ``key`` 16. The keyword prefilters (:mod:`runbook_lib.keyword_prefilters`)
#: ask for no less, so a shorter literal never reaches Python.
MIN_VALUE_LENGTH = {PASSWORD: 4, SECRET: 8, KEY: 16}

DEFINE_OR_SQL = LazyPattern(
    r"""#\s*define\s+(?P<key>\w{1,80})\s+(?P<q>["'])(?P<v>(?:(?!(?P=q))[^\\\n]|\\.){1,1024})(?P=q)"""
    r"""|(?i:identified\s+by|set\s+password\b[^=\n]{0,80}=)\s*(?i:password\s*\(\s*)?(?P<q2>["'])(?P<v2>[^"'\n]{1,256})(?P=q2)""")
CLI_CREDENTIAL = LazyPattern(
    r"""(?:^|\s)(?:-u|--user)\s+["']?(?P<u>[^\s"':]{0,64})["']?:["']?(?P<v>[^\s"']{0,256})"""
    r"""|(?:^|\s)(?:--(?:passphrase|password|oauth2-bearer|api-key|token|secret|client-secret|registration-token))"""
    r"""[\s=]\s*(?P<q2>["']?)(?P<v2>[^\s"']{1,512})(?P=q2)"""
    r"""|(?:^|\s)-pass(?:in|out)\s+(?P<q3>["']?)pass:(?P<v3>[^\s"']{1,256})(?P=q3)"""
    r"""|(?:^|\s)(?:-H|--header)\s+["']?(?P<h>[A-Za-z][\w-]{0,80})\s*:\s*(?P<v4>[^\s"']{1,512})""")


# ---------------------------------------------------------------- key names: runbook_lib.secret_names

# ---------------------------------------------------------------- values

_PLACEHOLDER_EXACT = {
    "", "none", "null", "nil", "undefined", "true", "false", "yes", "no", "on", "off", "changeme",
    "change_me", "change-me", "changeit", "replace_me", "replaceme", "replace-me", "todo", "tbd",
    "fixme", "dummy", "example", "sample", "test", "testing", "placeholder", "secret", "password",
    "passwd", "token", "apikey", "api_key", "your_password", "yourpassword", "redacted", "hidden",
    "masked", "fake", "foo", "bar", "baz", "foobar", "n/a", "na", "required", "optional", "string",
    "str", "text", "default", "sensitive", "input", "field", "value", "unknown", "enabled",
    "disabled", "boolean", "integer", "number", "object", "array", "secure", "securestring",
    "notasecret", "not-a-secret", "not_a_secret", "xxxx", "bearer", "basic", "private", "public",
    "empty", "blank", "unset", "user", "username", "admin_password", "mypassword", "my_password",
    "mysecret", "my_secret", "secretkey", "secret_key", "pass", "pwd", "root", "admin", "guest",
    "json", "yaml", "env", "dev", "prod", "staging", "local", "utf-8", "utf8", "sha256", "hmac",
}
#: A whole value that is a template or a mask: ``<api-key>``, ``${X}``, ``{{x}}``, ``%(x)s``, ``***``.
_PLACEHOLDER_TEMPLATE = re.compile(
    r"^(?:<[^<>]*>|\$\{[^}]*\}|\$\([^)]*\)|\{\{.*\}\}|\{[^{}]*\}|%\([^)]*\)[sd]|%s|\$[A-Z_][A-Z0-9_]*"
    r"|%[A-Z_]+%|\[[A-Z_ -]+\]|x{3,}|\*{3,}|\.{3,}|[-_#]{3,}|#{.*}|@[A-Z_]+@)$",
    re.IGNORECASE,
)
#: A masked stretch inside a value: ``sk_live_XXXX``, ``AKIA****``. Eight x's in a row never
#: come out of a generator (about 1 in 10^12 per position of a base64 token): a redacted value.
_MASK_RUN = re.compile(r"x{4,}|\*{3,}|#{3,}", re.IGNORECASE)
_REDACTED_RUN = re.compile(r"x{8,}", re.IGNORECASE)
_PLACEHOLDER_SEPARATORS = re.compile(r"[-_ .:/]+")
#: Letters-only parts made of words (``yourApiKey``, ``ChangeMe``) are split into them; other
#: letter runs (``gtvTBD``, ``MyPHESwlo``: random) stay one word, so no filler hides in them.
_CAMEL_WORDS = re.compile(r"[a-z]+(?:[A-Z][a-z]+)+|(?:[A-Z][a-z]+)+")
#: Words that make a value a stand-in wherever they stand: start, middle or end.
#: ``k2q``: digits inside letters, as generators write them and people do not (``Key2024``).
_DIGITS_BETWEEN_LETTERS = re.compile(r"[A-Za-z][0-9]+(?=[A-Za-z])")
_FILLER_ANYWHERE = {"changeme", "changeit", "replaceme", "placeholder", "redacted", "todo", "tbd", "fixme"}
#: ... only as its first word (``your-api-key``, ``test_token_1``) ...
_FILLER_FIRST = {"your", "my", "insert", "enter", "put", "replace", "add", "test", "example", "sample",
                 "dummy", "fake"}
#: ... only as its last word (``xoxb-token-here``, ``token-goes-here``, ``key_example``).
_FILLER_LAST = {"here", "goeshere", "example", "sample", "dummy", "fake"}
#: Two words read as one filler: ``CHANGE_ME``, ``replace-me``, ``goes here``.
#: A last word glued to ``HERE``/``Here`` as written (``RANDOMSTRINGHERE``, ``KeyGoesHere``), not ``somewhere``.
_HERE_LAST = re.compile(r"^(?:[A-Z]{2,}HERE|(?:[A-Z][a-z]+)+Here)$")
_FILLER_PAIRS = {("change", "me"), ("replace", "me"), ("change", "it"), ("goes", "here")}
_REFERENCE_RE = re.compile(
    r"\$\{|\{\{|\$\(|%\(|!Ref\b|!Sub\b|!GetAtt\b|!ImportValue\b|\bresolve:(?:secretsmanager|ssm)"
    r"|^(?:arn|ssm|secretsmanager|vault|env|file|aws-sm|awssm|sm)://|^(?:arn|ssm|env|file|secretsmanager):",
    re.IGNORECASE,
)
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?[smhdkKMG%]?$|^0x[0-9a-fA-F]+$")
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_PATH_RE = re.compile(r"^(?:/|\./|\.\./|~/|[A-Za-z]:\\)|\.(?:pem|key|crt|cer|json|ya?ml|txt|env|ini|cfg|"
                      r"conf|properties|p12|pfx|jks|der|pub|csv|py|js|ts|html|log)$", re.IGNORECASE)
_IDENT_WORDS_RE = re.compile(r"^[A-Za-z]+(?:[-_./: ][A-Za-z]+)+$|^[a-z]+(?:[A-Z][a-z]+)+$|^[A-Z][a-z]+(?:[A-Z][a-z]+)+$")
_TEMPLATE_RE = re.compile(r"\{(?:[A-Za-z_][\w.]*|\d*)\}|%\(\w+\)[sdr]|^%[sd]$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_LOCKFILE_HASH_RE = re.compile(r"^(?:sha(?:1|256|384|512)|md5)[-:][A-Za-z0-9+/=]+$", re.IGNORECASE)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
#: Dotted/dashed identifiers (``access_logs.s3.enabled``, ``my-app-prod``): short parts joined.
_SHORT_PARTS_RE = re.compile(r"^[A-Za-z0-9]{1,12}(?:[-_./:][A-Za-z0-9]{1,12})+$")
#: Jasypt's ``ENC(...)``, SOPS' ``ENC[AES256_GCM,...]``: ciphertext that only its key opens.
_ENCRYPTED_RE = re.compile(r"^(?:ENC\(.*\)|ENC\[[A-Z0-9_]+,.*\]|!vault\s*\|?.*|\$ANSIBLE_VAULT;.*)$", re.DOTALL)
_EMAIL_RE = re.compile(r"^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")


#: One part of a slug or dotted name: a word in one of the usual casings, or digits.
_WORD_PART_RE = re.compile(r"^(?:[a-z0-9]+|[A-Z0-9]+|[A-Za-z][a-z0-9]+(?:[A-Z][a-z0-9]+)*)$")


def _word_parts(value: str) -> bool:
    """``my-app-prod``, ``access_logs.s3.enabled``: every part word-shaped. A random
    base64url token split by its own ``-``/``_`` has parts with scattered case."""
    return all(_word_part(part) for part in re.split(r"[-_./:]", value) if part)


def _word_part(part: str) -> bool:
    # camelCase words capitalise one letter in several; random letters about one in two
    return bool(_WORD_PART_RE.match(part)) and (
        part.isupper() or part.islower() or sum(c.isupper() for c in part) <= max(1, len(part) // 4))


#: Values published as samples, public by construction: the Google API keys of the Firebase
#: SDKs' examples (as gitleaks lists them). Kept as the first 128 bits of their SHA-256 so
#: this file holds no key-shaped string; checked for token formats only.
PUBLIC_SAMPLE_SHA256 = frozenset({
    "0b476bdf9acf2123d547b5ae76f1e598",
    "2037abcaffb2b77785da716cf7ccff4f",
    "27a9a42931dff7eb2f8434e20a9bce97",
    "37f8f09bdf12c2f2eae4ead7273a62dd",
    "3a8b61d0f636b007840c0d40ba12bcf4",
    "3f370c9dd8225c63b5c77de1f785edc9",
    "49f777db995e8260da7ca9ffdf0c08d6",
    "4c98242dcadc8b29005c6b4aad526552",
    "8731261cb72d86267a32a532ebd3df42",
    "a19f89ab3555eac10c40741f6df79ecf",
    "a6c814bc555ae62c7bd8b58ec07bf559",
    "dc0fcf046c61640cbd1e8b999ada3262",
    "e4a5542bb7fd7b67e943c71ad29c34b5",
    "ea9bb1082cf95663f5faca23b8b15ef2",
    "eb540d2b6ee2a0a47c5779bc8a014178",
    "f56e323494a6ffc2064e7a955908957d",
})
#: Six of one character in a row, or six steps up the alphabet or the digits (``aaaaaa``,
#: ``abcdef``, ``123456``): fillers typed by hand. A random base62 token holds either
#: about once in ten million characters.
_REPEAT_RUN = re.compile(r"(.)\1{5}")
FILLER_RUN = 6
#: An alphabet written out (base64 tables, ``keyStr``): ten steps in a row.
ALPHABET_RUN = 10


def is_public_sample(value: str) -> bool:
    """A value published as a sample (:data:`PUBLIC_SAMPLE_SHA256`)."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32] in PUBLIC_SAMPLE_SHA256


def has_filler_run(value: str, run_length: int = FILLER_RUN, repeats: bool = True) -> bool:
    """Whether ``value`` holds a typed filler: a character six times (``repeats``), or
    ``run_length`` steps up the alphabet or the digits (``abcdef``, ``123456``)."""
    if repeats and _REPEAT_RUN.search(value):
        return True
    run = 1
    for prev, cur in zip(value, value[1:]):
        step = (prev.isalnum() and cur.isalnum() and prev.isdigit() == cur.isdigit()
                and ord(cur.lower()) - ord(prev.lower()) == 1)
        run = run + 1 if step else 1
        if run >= run_length:
            return True
    return False


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s own character distribution."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def char_classes(value: str) -> int:
    return (any(c.islower() for c in value) + any(c.isupper() for c in value)
            + any(c.isdigit() for c in value) + any(not c.isalnum() for c in value))


def placeholder_words(value: str) -> list[str]:
    """The words of ``value`` as written: split at separators, camelCase parts also at case
    changes (``yourApiKey``), filler pairs joined (``CHANGE_ME`` -> ``CHANGEME``)."""
    words: list[str] = []
    for part in _PLACEHOLDER_SEPARATORS.split(value):
        if _CAMEL_WORDS.fullmatch(part):
            words.extend(words_as_written(part))
        elif part:
            words.append(part)  # digits or symbols glued on: ``Changeme2024!`` is one word, not a filler
    joined: list[str] = []
    for word in words:
        if joined and (joined[-1].lower(), word.lower()) in _FILLER_PAIRS:
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def is_placeholder(value: str) -> bool:
    """Whether ``value`` stands in for a secret instead of being one.

    A placeholder is a known stand-in (``changeme``, ``dummy``), a template or mask as the
    whole value (``<api-key>``, ``${X}``, ``****``), or a value marked by a filler word --
    anywhere (``sk_live_CHANGE_ME``, ``api-placeholder-key``), first (``your-api-key``) or
    last (``xoxb-token-here``) -- or by a masked stretch (``sk_live_XXXX``); eight x's in a row
    mark a redacted value whatever surrounds them (``Atza|IQEB...XXXXXXXXJnr...``). A marked
    value with a generated-looking word beside the marker (``changeme-Xk29vLq7Pw03``) is a
    real value, and so is a filler glued to other characters (``Changeme2024!``).
    """
    v = value.strip()
    if (v.lower() in _PLACEHOLDER_EXACT or len(set(v)) <= 2 or _PLACEHOLDER_TEMPLATE.match(v)
            or _REDACTED_RUN.search(v)):
        return True
    words = placeholder_words(_MASK_RUN.sub(" ", v))
    lower = [w.lower() for w in words]
    masked = _MASK_RUN.search(v) is not None
    marked = (masked or any(w in _FILLER_ANYWHERE for w in lower)
              or bool(lower) and (lower[0] in _FILLER_FIRST or lower[-1] in _FILLER_LAST
                                  or _HERE_LAST.search(words[-1]) is not None))
    # filler words are dictionary words, never generated-looking: only the others can be,
    # alone or, cut short by separators, together (``my-Xk2_q9L-vR2m_Lx9w``: mixed case and
    # digits; ``your_api_key_2024`` stays a placeholder); a mask's sides are not joined
    rest = "".join(w for w, low in zip(words, lower) if low not in _FILLER_ANYWHERE | _FILLER_FIRST | _FILLER_LAST)
    random_rest = not masked and len(_DIGITS_BETWEEN_LETTERS.findall(rest)) >= 2 and looks_generated(rest)
    return marked and not random_rest and not any(looks_generated(w) for w in words)


#: Words that only name the field a value fills: ``user:password@host``, ``Password=pwd;``.
_FIELD_WORDS = {"password", "passwd", "pwd", "pass", "token", "apikey", "api_key", "api-key", "key"}
#: Words that tell a reader what to write (``your_password``, ``enter-password-here``), not a value.
_INSTRUCTION_FIRST = {"your", "insert", "enter", "put", "replace", "add"}
#: A connection string around a ``Password=``: another of its members, ended by ``;``.
CONNECTION_STRING = LazyPattern(
    r"(?i)(?:^|[;\"'\s(])(?:server|data source|host|hostname|address|addr|user id|userid|uid|user|username"
    r"|database|initial catalog|dbname|provider|driver|dsn|port)\s*=[^;\n]{0,256};")
#: The members of a connection string that hold its password.
CONNECTION_PASSWORD_KEYS = {"password", "pwd", "passwd"}


def literal_credential_reason(value: str) -> str | None:
    """Why a password written into a connection string or a URL is not a credential, or ``None``.

    There a literal is the credential the string carries whatever it looks like: ``secret`` in
    ``Password=secret;`` or ``https://user:secret@host``, ``myPassword`` in ``Pwd=myPassword;``.
    It is not one when it is empty or a mask (``***``, ``xx``), a template or a variable (``${X}``,
    ``#{x}``, ``%(x)s``, ``<password>``, ``{password}``, ``$PW``, ``%PW%``), a reference (``ssm:…``),
    the field's own name (``user:password@host``), an instruction to the reader (``your_password``,
    ``changeme``, ``…-here``; unless a word beside it looks generated), a documentation sample
    (``EXAMPLE``, ``...``) or ciphertext (``ENC(…)``).

    >>> literal_credential_reason("secret"), literal_credential_reason("{password}")
    (None, 'template')
    """
    v = value.strip()
    if len(set(v)) <= 2 or _MASK_RUN.search(v):
        return "empty"
    if (_PLACEHOLDER_TEMPLATE.match(v) or _TEMPLATE_RE.search(v) or "#{" in v
            or v.startswith(("$", "%", "{", "<"))):
        return "template"
    if is_reference(v):
        return "reference"
    if v.lower() in _FIELD_WORDS:
        return "field-name"
    words = placeholder_words(v)
    lower = [w.lower() for w in words]
    instruction = (lower[0] in _INSTRUCTION_FIRST or lower[-1] in ("here", "goeshere")
                   or any(w in _FILLER_ANYWHERE for w in lower))
    if instruction and not any(looks_generated(w) for w in words):
        return "placeholder"
    return sample_or_ciphertext(v)


def connection_string_password(key: str, value: str, text: str) -> bool:
    """Whether ``key=value`` is the password member of a connection string in ``text`` with a literal
    value (:func:`literal_credential_reason`): ``Server=db;User Id=app;Password=secret;``."""
    return (key.lower() in CONNECTION_PASSWORD_KEYS and CONNECTION_STRING.search(text) is not None
            and literal_credential_reason(value) is None)


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value.strip()))


def is_reference(value: str) -> bool:
    """A pointer to a secret rather than one: ``${X}``, ``!Ref``, ``{{resolve:...}}``, ``ssm:``, ``arn:``."""
    return bool(_REFERENCE_RE.search(value))


def not_a_value_reason(value: str) -> str | None:
    """Why ``value`` cannot be a hardcoded secret (a reason word), or ``None``."""
    v = value.strip()
    if not v:
        return "empty"
    if is_placeholder(v):
        return "placeholder"
    if is_reference(v):
        return "reference"
    if _UUID_RE.match(v):
        return "uuid"
    if _NUMBER_RE.match(v):
        return "number"
    if _URL_RE.match(v):
        return "url"
    if _PATH_RE.search(v):
        return "path"
    if _TEMPLATE_RE.search(v):
        return "template"
    if _LOCKFILE_HASH_RE.match(v):
        return "hash"
    if _EMAIL_RE.match(v):
        return "email"
    if v.startswith("data:"):
        return "data-uri"
    if _DATE_RE.match(v):
        return "date"
    return sample_or_ciphertext(v)


def sample_or_ciphertext(value: str) -> str | None:
    """``"placeholder"`` for a documentation sample (``EXAMPLE``, ``...``, ``…``), ``"encrypted"`` for
    ciphertext only its key opens (``ENC(…)``, SOPS, Ansible vault), else ``None``."""
    if "EXAMPLE" in value or "..." in value or "\u2026" in value:
        return "placeholder"
    if _ENCRYPTED_RE.match(value):
        return "encrypted"
    return None


def looks_generated(value: str, min_length: int = 8) -> bool:
    """Character-class / entropy test: a generated token rather than a word or an identifier."""
    v = value
    if len(v) < min_length or " " in v:
        return False
    if _IDENT_WORDS_RE.match(v) and _word_parts(v):
        return False
    if _SHORT_PARTS_RE.match(v) and sum(c.isdigit() for c in v) <= len(v) // 4 and _word_parts(v):
        return False
    classes = char_classes(v)
    entropy = shannon_entropy(v)
    if _HEX_RE.match(v):
        return len(v) >= 16 and entropy >= 3.0
    has_digit = any(c.isdigit() for c in v)
    # identifiers (camelCase, PascalCase) capitalise a few letters; random letters about half
    upper = sum(c.isupper() for c in v)
    case_mixed = min(upper, sum(c.islower() for c in v)) >= len(v) // 4
    if len(v) >= 20:
        return entropy >= 3.5 and (classes >= 3 or (classes >= 2 and (
            has_digit or entropy >= 4.2 or (case_mixed and entropy >= 3.8))))
    return entropy >= 2.8 and classes >= 2 and (has_digit or classes >= 3 or (case_mixed and entropy >= 3.0))


def is_secret_value(value: str, strength: str) -> bool:
    """Whether ``value`` is a real literal for a name of class ``strength`` (see :func:`key_class`)."""
    v = value.strip()
    if not_a_value_reason(v):
        return False
    if strength == PASSWORD:
        if len(v) < 6 and not any(not c.isalpha() for c in v):
            return False
        if len(v) < MIN_VALUE_LENGTH[PASSWORD] or (" " in v and len(v.split()) > 2) or (_IDENT_WORDS_RE.match(v) and _word_parts(v)):
            return False
        if v.isalpha() and re.search(r"(?i)passw|secret", v):
            return False  # "mynewpassword": a description of a password, not one
        return True
    if has_filler_run(v, ALPHABET_RUN, repeats=False):
        return False  # ``keyStr = "ABCDEFGHIJKLMNOP…"``: an alphabet constant, not a key
    if strength == SECRET:
        return looks_generated(v, MIN_VALUE_LENGTH[SECRET])
    return looks_generated(v, MIN_VALUE_LENGTH[KEY]) and shannon_entropy(v) >= 3.3


def is_random_token(value: str) -> bool:
    """Strict test for values under neutral names: long, varied, high entropy, not a hash."""
    v = value.strip()
    if len(v) < 20 or len(v) > 1024 or not_a_value_reason(v) or any(c.isspace() for c in v):
        return False
    if _HEX_RE.match(v) or (_IDENT_WORDS_RE.match(v) and _word_parts(v)):
        return False  # hex is what commit ids, digests and build hashes look like
    classes = char_classes(v)
    digits = sum(c.isdigit() for c in v)
    return shannon_entropy(v) >= 4.0 and classes >= 3 and digits >= 2


#: Assignment in code: key (optionally quoted, optionally annotated), operator, quoted literal.
ASSIGN_QUOTED = re.compile(
    r"""(?<![\w.$@-])(?P<kq>["'`]?)(?P<key>[A-Za-z_$@][\w.$@-]{0,80})(?P=kq)\]?\s*"""
    r"""(?P<op>:\s*[A-Za-z_][\w\[\]., |]{0,40}?\s*=(?!=)|[ \t]+(?:string|\[\]byte)[ \t]*=(?!=)"""
    r"""|:{1,3}=|[.?+]=|=>|==?|:|,|\()\s*"""
    r"""(?:[\w.$\[\]]{1,80}\s*(?:\|\||\?\?)\s*)?"""
    r"""(?P<pre>[rbuRBUfF]{0,2})(?P<q>["'`])(?P<v>(?:(?!(?P=q))[^\\\n]|\\.){0,1024})(?P=q)"""
)
#: Assignment in configuration (.env, YAML, properties, INI): unquoted value up to a separator.
ASSIGN_UNQUOTED = re.compile(
    r"""(?<![\w.$@-])(?P<kq>["']?)(?P<key>[A-Za-z_$@][\w.$@-]{0,80})(?P=kq)\s*(?P<op>=|:)[ \t]*"""
    r"""(?P<v>[^\s"'`;,&<>{}\[\]()|#\\](?:[^\s"'`;,&<>\\]|\\(?![nrt])){0,1023})(?=$|[\s;,&<>]|\\[nrt])"""
)
XML_OPEN_LINE = LazyPattern(r"^\s*<(?P<key>[\w.:-]{1,80})>\s*$")
XML_VALUE_LINE = LazyPattern(r"^\s*(?P<v>[^<\s][^<]{0,1023}?)\s*$")
ASSIGN_XML = LazyPattern(
    r"""<(?P<key>[\w.:-]{1,80})>(?P<v>[^<\n]{1,1024})</(?P=key)>"""
    r"""|key="(?P<key2>[^"]{1,80})"\s+value="(?P<v2>[^"\n]{0,1024})\""""
)

#: ``"key", "value"`` pairs: ``setProperty("password", "...")``, ``os.environ.get("X", "default")``.
ASSIGN_PAIR = re.compile(
    r"""(?<![\w.$@-])(?P<kq>["'])(?P<key>[A-Za-z_$@][\w.$@-]{0,80})(?P=kq)\s*(?P<op>,|=>|:)\s*"""
    r"""(?P<pre>[rbuRBUfF]{0,2})(?P<q>["'`])(?P<v>(?:(?!(?P=q))[^\\\n]|\\.){0,1024})(?P=q)"""
)
#: ``login("user", "password")``, ``auth=("user", "password")``: the second literal is a password.
LOGIN_CALL = LazyPattern(
    r"""(?:(?:login|authenticate|connect|basic_?auth|HTTPBasicAuth|sign_?in)\s*\(|\bauth\s*=\s*\(?)\s*"""
    r"""["'][^"'\n]{1,64}["']\s*,\s*(?P<q>["'])(?P<v>[^"'\n]{1,256})(?P=q)""", re.IGNORECASE)
#: Functions whose key argument is a secret: any generated-looking literal among their arguments.
SIGNING_CALL = LazyPattern(r"""(?:hmac\.new|hmac\.HMAC|jwt\.(?:encode|decode|sign|verify)|createHmac|SecretKeySpec)\s*\((?P<args>[^)\n]{0,300})""")
QUOTED_LITERAL = LazyPattern(r"""[bB]?(?P<q>["'`])(?P<v>[^"'`\n]{1,512})(?P=q)""")
