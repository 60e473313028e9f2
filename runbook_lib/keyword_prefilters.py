"""The prefilter expressions of the keyword rules: where a secret-named setting may be assigned.

Each expression here is compiled with the token formats' into the one multi-pattern database of
:mod:`runbook_lib.scan_prefilter`; a hit only says where Python should look, and
:mod:`runbook_lib.scan_buffer` confirms it. A prefilter may report more than is there, never
less: every assignment the confirmation reports must leave a hit of its own.

The assignment prefilters are written per class of name (:func:`~runbook_lib.secret_names.key_class`)
so that a hit needs a literal as long as the shortest value that class accepts
(:data:`~runbook_lib.rules.MIN_VALUE_LENGTH`): a ``pass`` name a 4-character literal, a
``token`` or ``<qualifier> key`` name 8, a bare ``key`` 16. The bulk of what a tree of JSON
service models holds (``"limit_key": "MaxResults"``, ``{"target": "Key", "source": …}``) then
never reaches Python: ``limit_key`` is no qualified key and ``"source"`` is too short for a bare one.

Examples
--------
>>> import re
>>> quoted = re.compile(KEYWORD_QUOTED_PREFILTER.encode(), re.IGNORECASE)
>>> bool(quoted.search(b'api_key = "Xk29vLq7"')), bool(quoted.search(b'api_key = "Xk29"'))
(True, False)
>>> bool(quoted.search(b'"limit_key": "MaxResults"')), bool(quoted.search(b'pw = "Xk2!"'))
(False, True)
"""

from __future__ import annotations

from .rules import MIN_VALUE_LENGTH
from .secret_names import KEY, KEY_QUALIFIERS, PASSWORD, SECRET

#: Every keyword a secret name may hold, in one alternation (``#define`` names, whose values are not counted).
NAME_KEYWORD = (r"(pass|pwd|pw|secret|token|api.?key|credential|creds?"
                r"|auth|private.?key|access.?key|signing.?key|encryption.?key|master.?key|client.?key|key)")
#: The keywords by the class of name they can make. A ``key`` word names a secret only after a
#: qualifier (``api_key``, ``sessionKey``; the separators of :func:`~runbook_lib.secret_names.split_words`)
#: or as the whole name (``key``, ``_key``, ``KEY_1``: nothing but ``_``, ``$``, ``@`` before it).
KEYWORDS_BY_CLASS = {
    PASSWORD: r"(pass|pwd|pw)",
    SECRET: (r"(secret|token|credential|creds?|auth|(" + "|".join(sorted(KEY_QUALIFIERS))
             + r")([_.$@-]{0,8}|.)key)"),
    KEY: r"(^|[^\w.$@-])([_$@][_.$@-]{0,6})?key",
}
#: How far past the opening quote an assignment hit may end (the longest literal a hit reads, and an escape).
LITERAL_LOOKAHEAD = max(MIN_VALUE_LENGTH.values()) + 2

#: Between the name's keyword and the literal: the rest of the name, a type annotation, the operator,
#: a ``x || `` / ``x ?? `` fallback, a string prefix (``r``, ``b``, ``f``).
_NAME_TO_QUOTE = (r"[\w.$@-]{0,48}[\"'`]?\]?\s{0,4}(:[\w\[\]., |]{0,40}|\s(string|\[\]byte)\s{0,4})?"
                  r"(:{1,3}=|[.?+]=|=>|==?|:|,|\()\s{0,4}([\w.$\[\]]{1,80}\s{0,2}(\|\||\?\?)\s{0,2})?[rbuf]{0,2}")
_NAME_TO_VALUE = r"[\w.$@-]{0,48}[\"']?\s{0,4}(=|:)[ \t]{0,4}"


def quoted_literal(length: int) -> str:
    """A quoted literal of at least ``length`` characters as written (escapes count double, never less).

    Its first character is no space and no quote (a backtick inside ``"…"`` or ``'…'`` is); the
    rest runs to its own quote. An escaped quote before ``length`` characters is accepted as it
    stands: the count is not worth a miss.
    """
    literals = []
    for quote in ('"', "'", "`"):
        first = r"[^\s\"'`]" if quote == "`" else r"([^\s\"'`]|`)"
        rest = rf"([^{quote}\n]{{{length - 1}}}|[^{quote}\n]{{0,{length - 2}}}\\{quote})"
        literals.append(rf"{quote}({first}{rest}|\\{quote})")
    return "(" + "|".join(literals) + ")"


def unquoted_value(length: int) -> str:
    """An unquoted configuration value of at least ``length`` characters (``.env``, YAML, INI)."""
    return rf"[^\s\"'`{{\[(|>][^\s\"'`;,&<>]{{{length - 1}}}"


#: Keyword assignments with a quoted literal (code and configuration): name, operator, literal.
KEYWORD_QUOTED_PREFILTER = "|".join(
    f"{KEYWORDS_BY_CLASS[c]}{_NAME_TO_QUOTE}{quoted_literal(MIN_VALUE_LENGTH[c])}" for c in (PASSWORD, SECRET, KEY))
#: Keyword assignments with an unquoted value (configuration files only).
KEYWORD_UNQUOTED_PREFILTER = "|".join(
    f"{KEYWORDS_BY_CLASS[c]}{_NAME_TO_VALUE}{unquoted_value(MIN_VALUE_LENGTH[c])}" for c in (PASSWORD, SECRET, KEY))
#: ``Password=...;`` inside a connection string held in a quoted literal (code files too).
KEYWORD_CONNSTR_PREFILTER = r"(^|[;\"'\s&?])(password|pwd|passwd)\s{0,2}=\s{0,2}[^\s\"'`;&]"
#: Credentials passed positionally to a login call or a signing function.
CALL_PREFILTER = (r"((login|authenticate|connect|basic_?auth|HTTPBasicAuth|sign_?in)\s{0,2}\(|auth\s{0,2}=\s{0,2}\(?)"
                  r"\s{0,2}[\"'][^\"'\n]{1,64}[\"']\s{0,2},\s{0,2}[\"']"
                  r"|(hmac\.new|hmac\.HMAC|jwt\.(encode|decode|sign|verify)|createHmac|SecretKeySpec)\s{0,2}\(")
#: ``#define API_TOKEN "..."``; SQL's ``IDENTIFIED BY '...'`` and ``SET PASSWORD ... = '...'``.
DEFINE_OR_SQL_PREFILTER = (r"#\s{0,4}define\s{1,4}[\w]{0,48}" + NAME_KEYWORD + r"\w{0,48}\s{1,8}[\"']"
                           r"|identified\s{1,4}by\s{1,4}(password\s{0,2}\(\s{0,2})?[\"']"
                           r"|set\s{1,4}password\b[^=\n]{0,80}=\s{0,4}(password\s{0,2}\(\s{0,2})?[\"']")
#: Command-line options that take a credential (``curl -u user:pw``, ``--passphrase X``, ``-passin pass:X``).
CLI_PREFILTER = (r"(^|\s)(-u|--user)\s{1,4}[\"']?[^\s\"':]{0,64}[\"']?:[\"']?[^\s$]"
                 r"|(^|\s)--(passphrase|password|oauth2-bearer|api-key|token|secret|client-secret|registration-token)[\s=]\s{0,3}[\"']?[^\s\"'$<{-]"
                 r"|(^|\s)-pass(in|out)\s{1,4}[\"']?pass:[^\s\"'$]"
                 r"|(^|\s)(-H|--header)\s{1,4}[\"']?[\w-]{0,40}(key|token|secret|auth|pass)[\w-]{0,40}\s{0,2}:\s{0,2}[^\s\"'$<{]")
KEYWORD_XML_PREFILTER = (r"(<[\w.:-]{0,40}(passw|secret|token|apikey|api_key)[\w.:-]{0,40}>[^<\s]"
                         r"|key=\"[\w.:-]{0,40}(passw|secret|token|apikey|api_?key)[\w.:-]{0,40}\"\s+value=\"[^\"])")
#: ``<password>`` on its own line, the value on the next (confirmed with the lines around it).
KEYWORD_XML_BLOCK_PREFILTER = (r"<[\w.:-]{0,40}(passw|secret|token|apikey|api_key)[\w.:-]{0,40}>[ \t]{0,8}\r?\n"
                               r"[ \t]{0,40}[^<\s]")
