"""Tests of line confirmation: each assignment form, each call, each token check, both sides."""

import base64
import json

import pytest

from runbook_lib.scan_lines import (AUTH_LOOKBEHIND, DATA_URI_LOOKBACK, SHAPE_NEEDS_RANDOM, authorization_ok,
                                    aws_rule_for_key, b64_bytes, basic_pair, call_candidates, classify, unbraced,
                                    cli_candidates, define_or_sql_candidates, encoded_key_ok, jwk_private_ok, jwt_header_ok,
                                    keyword_candidates, token_ok, unescape, unquoted_candidates, xml_candidates)

PW = "Tq7!vR2m#Lx9"
TOKEN = "Xk29vLq7Pw03Zr58"
AWS_SECRET = "q8Jz3kLm9Xw2PbTv7RaN/5cYdE1fHgU0iOsKjLe+"


def test_unescape_decodes_the_escapes_of_a_literal():
    assert unescape(r"a\nb\tc\"d\'e\\f") == "a\nb\tc\"d'e\\f"
    assert unescape(r"keep \x41 and \u0041") == r"keep \x41 and \u0041"
    assert unescape("plain") == "plain"


@pytest.mark.parametrize("key,value,rule", [
    ("aws_secret_access_key", AWS_SECRET, "aws-secret-access-key"),
    ("AWS_SECRET", AWS_SECRET, "aws-secret-access-key"),
    ("SecretAccessKey", AWS_SECRET, "aws-secret-access-key"),           # the name alone, no "aws"
    ("awsSecretKey", AWS_SECRET, "aws-secret-access-key"),
    ("aws_secret_access_key", AWS_SECRET[:39], None),                 # 39 characters: not the shape
    ("aws_secret_access_key", AWS_SECRET + "x", None),                # 41
    ("secret", AWS_SECRET, None),                                     # no aws in the name
    ("aws_session_token", "A" * 100, "aws-session-token"),
    ("SecurityToken", "A" * 100, "aws-session-token"),
    ("aws_session_token", "A" * 99, None),
])
def test_aws_rules_by_name_and_shape(key, value, rule):
    assert aws_rule_for_key(key, value) == rule


def test_classify_by_name_class_and_value():
    assert classify("DB_PASSWORD", f"  {PW} ") == "keyword-assignment"
    assert classify("aws_secret_access_key", f" {AWS_SECRET} ") == "aws-secret-access-key"
    assert classify("TABLE_NAME", TOKEN) is None and classify("DB_PASSWORD", "changeme") is None


@pytest.mark.parametrize("line,found", [
    (f'DB_PASSWORD = "{PW}"', [("keyword-assignment", PW)]),
    (f"password: str = '{PW}'", [("keyword-assignment", PW)]),
    (f'const token = `{TOKEN}`;', [("keyword-assignment", TOKEN)]),
    # both the assignment and the pair form read a JSON member; the buffer scan keeps one
    (f'"client_secret": "{TOKEN}"', [("keyword-assignment", TOKEN)] * 2),
    (f'props.setProperty("password", "{PW}")', [("keyword-assignment", PW)]),
    (f'os.environ.get("DB_PASSWORD", "{PW}")', [("keyword-assignment", PW)]),
    (f'f(password, "{PW}")', []),                                     # an argument list, not a pair
    (f'f(x, "a"); password = "{PW}"', [("keyword-assignment", PW)]),  # ... and the assignment after it
    (f'"password"("{PW}")', []),                                      # a call on a string: not an assignment
    (f'password = f"{{prefix}}{PW}"', []),                            # an f-string template
    (f'password = f"{{x!r}}-{PW}"', []),                              # an f-string whatever its braces
    (f'password = F"{{x!r}}-{PW}"', []),
    (f'password = "{{x!r}}-{PW}"', [("keyword-assignment", "{x!r}-" + PW)]),  # braces without f: a value
    (f'password = rb"{PW}"', [("keyword-assignment", PW)]),
    (f'password = "{PW[:6]}\\"{PW[6:]}"', [("keyword-assignment", PW[:6] + '"' + PW[6:])]),  # unescaped
    (f'DSN = "Server=db;User Id=app;Password={PW}"', [("keyword-assignment", PW)]),  # connection string
    (f'TABLE = "orders"', []),
])
def test_keyword_candidates_in_code(line, found):
    assert keyword_candidates(line, config=False) == found


def test_keyword_candidates_in_configuration_add_unquoted_values():
    assert keyword_candidates(f"DB_PASSWORD={PW}", config=True) == [("keyword-assignment", PW)]
    assert keyword_candidates(f"DB_PASSWORD={PW}", config=False) == []
    # in configuration a quoted connection string is read by the unquoted pass, not twice
    assert keyword_candidates(f'DSN: "Password={PW};"', config=True) == [("keyword-assignment", PW)]


@pytest.mark.parametrize("text,found", [
    (f"DB_PASSWORD={PW}", [("keyword-assignment", PW)]),
    (f"db.password: {PW} # note", [("keyword-assignment", PW)]),
    (f"a=1&token={TOKEN}&b=2", [("keyword-assignment", TOKEN)]),
    ("DB_PASSWORD=${DB_PASSWORD}", []), ("TABLE=orders", []), (f"DB_PASSWORD= {{x}}", []),
])
def test_unquoted_candidates(text, found):
    assert unquoted_candidates(text) == found


@pytest.mark.parametrize("line,found", [
    (f'ftp.login("deploy", "{PW}")', [("keyword-assignment", PW)]),
    (f'requests.get(url, auth=("svc", "{PW}"))', [("keyword-assignment", PW)]),
    (f'HTTPBasicAuth("svc", "{PW}")', [("keyword-assignment", PW)]),
    ('ftp.login("deploy", "changeme")', []),
    (f'hmac.new(b"{TOKEN}", msg, sha256)', [("keyword-assignment", TOKEN)]),
    (f'hmac.new(b"{TOKEN[:10]}", msg, sha256)', [("keyword-assignment", TOKEN[:10])]),  # a secret, not a bare key
    (f'jwt.encode(payload, "{TOKEN}", algorithm="HS256")', [("keyword-assignment", TOKEN)]),
    ('jwt.encode(payload, key, algorithm="HS256")', []),
    (f'connect_db("{PW}")', []),
])
def test_call_candidates(line, found):
    assert call_candidates(line) == found


@pytest.mark.parametrize("line,found", [
    (f"<password>{PW}</password>", [("keyword-assignment", PW)]),
    (f'<add key="ApiSecret" value="{TOKEN}" />', [("keyword-assignment", TOKEN)]),
    ('<add key="PartnerBaseUrl" value="https://api.example.com" />', []),
    (f"<name>{PW}</name>", []),
])
def test_xml_candidates(line, found):
    assert xml_candidates(line) == found


def _jwt(header: dict) -> str:
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{head}.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_jwt_header_must_name_alg_or_typ():
    assert jwt_header_ok(_jwt({"alg": "HS256"})) and jwt_header_ok(_jwt({"typ": "JWT"}))
    assert not jwt_header_ok(_jwt({"kid": "1"}))
    payload_only = _jwt({"kid": "1"}).replace("eyJzdWIiOiIxMjM0NTY3ODkwIn0", "eyJ0eXAiOiJKV1QifQ")  # {"typ":..}
    assert not jwt_header_ok(payload_only)            # only the header counts, not the payload
    for header in (b'{"alg"}', b'{"alg":1}', b'{"alg":12}'):  # 10, 12 and 14 characters of base64
        head = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
        assert jwt_header_ok(head + ".eyJ4IjoxfQ.c2ln"), head
    assert not jwt_header_ok("eyJ!!!.x.y")            # not base64: no header
    assert not jwt_header_ok("eyJh" + "A")            # a length no padding repairs


def test_token_ok_placeholders_and_example_keys():
    assert not token_ok("github-token", "ghp_" + "x" * 36, "", 0)
    assert not token_ok("stripe-secret-key", "sk_live_EXAMPLEKEY1234567890ab", "", 0)
    assert token_ok("aws-access-key-id", "AKIAEXAMPLEKEY123456", "", 0)   # AWS's own check covers its docs key
    assert token_ok("github-token", "ghp_" + TOKEN * 2 + "abcd", "", 0)


def test_token_ok_inside_a_data_uri_only_when_the_uri_is_still_open():
    line = "data:image/png;base64," + "A" * 100 + TOKEN
    start = line.index(TOKEN)
    assert not token_ok("github-token", TOKEN, line, start)
    assert token_ok("github-token", TOKEN, line.replace(",", ", "), start)       # the base64 run was broken
    far = "base64," + "A" * DATA_URI_LOOKBACK + TOKEN
    assert token_ok("github-token", TOKEN, far, far.index(TOKEN))                # the opening is too far back
    near = "base64," + "A" * (DATA_URI_LOOKBACK - 8) + TOKEN
    assert not token_ok("github-token", TOKEN, near, near.index(TOKEN))


@pytest.mark.parametrize("value,ok", [
    (PW, True), ("${DB_PASSWORD}", False), ("$PW", False), ("%PW%", False), ("{pw}", False),
    ("$pw9!x", False), ("%pw9!x", False), ("{pw9!x", False), ("p$w9!x", True), ("p%w9{x", True),
    ("password", False), ("PASS", False), ("pwd", False), ("token", False), ("passwd", False),  # the field's name
    ("ssm:/app/db", False),
    # a literal in a URL is its password whatever it looks like; instructions, masks, samples are not
    ("secret", True), ("myPassword", True), ("hunter2", True), ("admin", True),
    ("your_password", False), ("changeme", False), ("password-here", False), ("***", False), ("xx", False),
    ("pa" + "EXAMPLE", False), ("#{pw}", False), ("<pw>", False), ("ENC(Xk29vLq7Pw03)", False),
])
def test_token_ok_url_passwords(value, ok):
    assert token_ok("url-credentials", value, "", 0) is ok


def test_token_ok_authorization_and_query_values_must_look_generated():
    assert token_ok("authorization-header", TOKEN, "", 0)
    assert not token_ok("authorization-header", TOKEN[:15], "", 0)          # 16 needed in a header
    assert token_ok("url-query-credential", TOKEN[:8], "", 0)              # 8 in a query string
    assert not token_ok("url-query-credential", TOKEN[:7], "", 0)
    assert not token_ok("url-query-credential", "3600abcdef", "", 0)              # short hex: not generated
    assert not token_ok("url-query-credential", "https://x.example.com/cb", "", 0)  # a reason: a URL


def test_token_ok_jwt_needs_a_header():
    assert token_ok("jwt", _jwt({"alg": "HS256"}), "", 0) and not token_ok("jwt", _jwt({"x": 1}), "", 0)


# ---------------------------------------------------------------- contexts and families added for peer recall

@pytest.mark.parametrize("line,found", [
    (f'var apiToken string = "{TOKEN}"', [("keyword-assignment", TOKEN)]),       # Go, typed
    (f'const token = `{TOKEN}`;', [("keyword-assignment", TOKEN)]),              # no type: still the name
    (f'$apiToken .= "{TOKEN}";', [("keyword-assignment", TOKEN)]),               # PHP append
    (f'API_TOKEN ?= "{TOKEN}"', [("keyword-assignment", TOKEN)]),                # Makefile
    (f'API_TOKEN ::= "{TOKEN}"', [("keyword-assignment", TOKEN)]),
    (f'API_TOKEN :::= "{TOKEN}"', [("keyword-assignment", TOKEN)]),
    (f'if token == "{TOKEN}" {{', [("keyword-assignment", TOKEN)]),              # a comparison with a literal
    (f'var mode string = "{TOKEN}"', []),                                        # a neutral name
])
def test_keyword_candidates_in_more_syntaxes(line, found):
    assert keyword_candidates(line, config=False)[:1] == found


@pytest.mark.parametrize("line,found", [
    (f'#define SERVICE_API_KEY "{TOKEN}"', [("keyword-assignment", TOKEN)]),
    ('#define API_KEY_HEADER "X-Api-Key"', []),                                   # about a key, not one
    (f'#define BUILD_ID "{TOKEN}"', []),                                         # a neutral name
    (f"CREATE USER 'app'@'%' IDENTIFIED BY '{PW}';", [("keyword-assignment", PW)]),
    (f"ALTER USER app IDENTIFIED BY PASSWORD('{PW}')", [("keyword-assignment", PW)]),
    (f"SET PASSWORD FOR 'app'@'%' = '{PW}';", [("keyword-assignment", PW)]),
    ("CREATE USER 'app'@'%' IDENTIFIED BY 'changeme';", []),                     # a placeholder
])
def test_define_or_sql_candidates(line, found):
    assert define_or_sql_candidates(line) == found


@pytest.mark.parametrize("line,found", [
    (f'curl -u "deploy:{PW}" https://x', [("cli-credential", PW)]),
    (f"curl --user 'deploy:{PW}' https://x", [("cli-credential", PW)]),
    (f'curl -u deploy:{PW} https://x', [("cli-credential", PW)]),
    (f'curl -u "{PW}:" https://x', [("cli-credential", PW)]),                    # an API key as the user
    ('curl -u "$USER:$PASSWORD" https://x', []),                                  # variables
    ('curl -u <user:password> https://x', []),                                   # a template
    (f'curl --user "{{{PW}}}":"{{{PW}}}" https://x', [("cli-credential", PW)]),  # a value pasted into a {{…}} template
    ('curl --user "{apikey}":"{password}" https://x', []),                       # the template itself
    ('curl --user "x:{my_api_key}" https://x', []),
    ('docker run -u 1000:1000 image', []),                                        # uid:gid
    (f"gpg --batch --passphrase '{PW}' -d f.gpg", [("cli-credential", PW)]),
    (f"curl --oauth2-bearer {TOKEN} https://x", [("cli-credential", TOKEN)]),
    (f'curl -H "X-Api-Key: {TOKEN}" https://x', [("cli-credential", TOKEN)]),     # a secret-named header
    (f"curl --header 'PRIVATE-TOKEN: {TOKEN}' https://x", [("cli-credential", TOKEN)]),
    (f'curl -H "Content-Type: {TOKEN}" https://x', []),                           # a neutral header
    ('curl -H "X-Api-Key: $API_KEY" https://x', []),                             # a variable
    ('curl -H "X-Api-Key: changeme" https://x', []),
    (f"openssl rsa -passin pass:{PW} -in k.pem", [("cli-credential", PW)]),
    ("openssl rsa -passin env:KEY_PASS -in k.pem", []),
    ("tool --password-file /run/secrets/pw", []),
])
def test_cli_candidates(line, found):
    assert cli_candidates(line) == found


UUID = "3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47"


@pytest.mark.parametrize("key,found", [
    ("ATLAS_PRIVATE_KEY", "keyword-assignment"), ("HEROKU_API_KEY", "keyword-assignment"),
    ("client_secret", "keyword-assignment"), ("DB_PASSWORD", "keyword-assignment"),
    ("KMS_KEY", None), ("key", None),                                   # key names: an id
    ("ClientToken", None), ("LifecycleActionToken", None), ("update_token", None),  # token names: an id
    ("SECRET_ARN", None), ("region", None),
])
def test_uuid_values_by_name(key, found):
    assert classify(key, UUID) == found


@pytest.mark.parametrize("value,expected", [
    ("{" + TOKEN + "}", TOKEN),               # a generated value in braces: the braces go
    ("{apikey}", "{apikey}"),                 # a name in braces: a template, kept whole
    ("{" + TOKEN + "$}", "{" + TOKEN + "$}"),  # a variable inside
    ("{" + TOKEN, "{" + TOKEN),               # not closed
    (TOKEN + "}", TOKEN + "}"),               # not opened
    ("{}", "{}"),
    ("", ""),
    (TOKEN, TOKEN),
])
def test_unbraced(value, expected):
    assert unbraced(value) == expected


def test_token_ok_rejects_documentation_public_and_typed_samples():
    assert not token_ok("aws-access-key-id", "AKIAIOSFODNN7" + "EXAMPLE", "", 0)     # AWS's documentation key
    assert token_ok("aws-access-key-id", "AKIAQ3EXAMPLE7PLANT", "", 0)               # EXAMPLE inside: planted
    assert not token_ok("npm-token", "npm_" + "Xk29vLq7Pw03Zr58Tq7vR2mLx9WbN" + "EXAMPLE", "", 0)
    assert token_ok("npm-token", "npm_" + "Xk29vLq7Pw03Zr58Tq7vR2mLx9WbNexampl", "", 0)  # lower case: letters
    assert not token_ok("google-api-key", "AIza" + "a" * 35, "", 0)                     # repeated filler
    assert not token_ok("openai-api-key", "sk-" + "1234567" + "Xk29vLq7Pw03Zr58Tq", "", 0)   # sequential filler
    assert token_ok("openai-api-key", "sk-" + "12345" + "Xk29vLq7Pw03Zr58Tq7v", "", 0)       # five steps: random enough
    assert not token_ok("google-api-key", "AIzaSyabcdefghijklmnopqrstuvwxyz1234567", "", 0)  # a Firebase sample
    assert not token_ok("slack-token", "xoxe.xoxp-1-RANDOMSTRINGHERE", "", 0)


def test_token_ok_weak_shapes_need_a_random_value():
    assert "stripe-secret-key" in SHAPE_NEEDS_RANDOM and "aws-access-key-id" not in SHAPE_NEEDS_RANDOM
    assert token_ok("stripe-secret-key", "sk_live_" + TOKEN, "", 0)
    assert not token_ok("stripe-secret-key", "sk_live_" + "productionkey", "", 0)  # a word
    assert token_ok("gitlab-token", "glrt-" + TOKEN + "abcd", "", 0)


def test_encoded_private_keys_decode_to_a_key():
    body = base64.b64encode(bytes(range(256))).decode()
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"
    encoded = base64.b64encode(pem.encode()).decode()
    assert encoded_key_ok(encoded) and token_ok("private-key", encoded, "", 0)
    header_only = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\n-----END").decode()
    assert not encoded_key_ok(header_only)                                       # no body
    public = base64.b64encode(f"-----BEGIN PUBLIC KEY-----\n{body}\n".encode()).decode()
    assert not encoded_key_ok(public)                                            # a public key
    assert encoded_key_ok("b3BlbnNzaC1rZXktdjE" + "A" * 45) and not encoded_key_ok("b3BlbnNzaC1rZXktdjE" + "A" * 40)


def test_unsigned_jwt_only_with_alg_none():
    head_none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    head_hs = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    assert jwt_header_ok(head_none + ".eyJzdWIiOiIxMjM0In0.")
    assert not jwt_header_ok(head_hs + ".eyJzdWIiOiIxMjM0In0.")                  # a signed header, signature cut


# a typed body with a step run (``klmnopqrstu``) in Anthropic's and Azure DevOps' exact structures
ANTHROPIC_BODY = "abc123xyz-456def789ghij-klmnopqrstuvwx-3456yza789bcde-1234fghijklmnopby56aaaogaopaaaabc123xyz"
ADO_PAT = "Xk29vLq7Pw03Zr58Tq7vR2mLx9WbN4abcdefghWbN4Tq7vR2mLx9" + "JQQJ" + "Xk29vLq7Pw03Zr58Tq7v" + "AZDO" + "Xk29"


@pytest.mark.parametrize("rule,value,ok", [
    ("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY + "AA", True),        # the whole structure
    ("anthropic-api-key", "sk-ant-admin01-" + ANTHROPIC_BODY + "AA", True),
    ("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY + "BB", False),       # not its fixed end
    ("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY[:-1] + "AA", False),  # one short
    ("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY + "kAA", False),      # one long
    ("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY[:61] + "AA", False),  # a loose shape
    ("azure-devops-pat", ADO_PAT, True),
    ("azure-devops-pat", ADO_PAT.replace("JQQJ", "JQQK"), False),                # (the shape rule's own match fails)
    ("openai-api-key", "sk-" + "1234567" + "Xk29vLq7Pw03Zr58Tq", False),         # no full structure: the filler judges
])
def test_a_full_vendor_structure_is_not_judged_as_a_filler(rule, value, ok):
    assert len(ANTHROPIC_BODY) == 93 and len(ADO_PAT) == 84
    assert token_ok(rule, value, "", 0) is ok


def test_a_full_structure_still_rejects_placeholders_and_samples():
    assert not token_ok("anthropic-api-key", "sk-ant-api03-" + "x" * 93 + "AA", "", 0)       # redacted
    assert not token_ok("anthropic-api-key", "sk-ant-api03-" + ANTHROPIC_BODY[:-7] + "EXAMPLE" + "AA", "", 0)


@pytest.mark.parametrize("line,config,found", [
    ('DSN = "Server=db;User Id=app;Password=secret;"', False, [("keyword-assignment", "secret")]),
    ("Provider=SQLNCLI;Server=db;Uid=app;Pwd=myPassword;", True, [("keyword-assignment", "myPassword")]),
    ('conn.Open("Provider=SQLOLEDB.1;User ID=u; " & "Password =bill_user;Data Source=db;")', True,
     [("keyword-assignment", "bill_user")]),
    ("Server=db;User Id=app;Password=${DB_PASSWORD};", True, []),                    # a variable
    ("Server=db;User Id=app;Password=<password>;", True, []),                        # a template
    ("Server=db;User Id=app;Password=password;", True, []),                          # the field's name
    ("db_password=secret", True, []),                                                # no connection string: the name's test
    ("text << \"Password=#{password}, \"", False, []),
])
def test_connection_string_passwords_are_literals_whatever_they_look_like(line, config, found):
    assert keyword_candidates(line, config=config) == found


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


NTLM_AUTH = _b64(b"NTLMSSP\x00\x03\x00\x00\x00" + bytes(range(7, 120)))
NTLM_NEGOTIATE = _b64(b"NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2" + b"\x00" * 16)
KERBEROS = _b64(b"\x60\x82\x05\xc9\x06\x06\x2b\x06\x01\x05\x05\x02" + bytes(range(20)))   # 32 bytes


@pytest.mark.parametrize("scheme_and_value,ok", [
    ("Basic " + _b64(b"bob:hunter2"), True),                  # a short Basic pair in a header
    ("Basic " + _b64(b"deploy:" + PW.encode()), True),
    ("Basic " + _b64(b"user:password"), False),               # the syntax written out
    ("Basic " + _b64(b"me:your_password"), False),
    ("Basic " + _b64(TOKEN.encode() + b":"), True),           # an API key as the user, no password
    ("Basic " + _b64(b"apikey:"), False),                     # ... a word as the user
    ("Basic " + _b64(b"a\x01b:c" + PW.encode()), True),       # not printable: judged as a token (generated-looking)
    ("NTLM " + NTLM_AUTH, True),                              # the authenticate message carries the response
    ("NTLM " + NTLM_NEGOTIATE, False),                        # negotiate: no credential in it
    ("Negotiate " + NTLM_NEGOTIATE, False),
    ("Negotiate " + KERBEROS, True),                          # a Kerberos / SPNEGO token
    ("Negotiate " + _b64(b"\x60" + b"\x00" * 31), True),      # a GSS-API token by its structure, however plain
    ("Negotiate " + _b64(b"\x60" + b"\x00" * 30), False),     # 31 bytes: too short for one, and not generated
    ("Negotiate " + _b64(b"\xa1" + b"\x00" * 31), True),      # an SPNEGO response
    ("Negotiate " + _b64(b"\x30" + b"\x00" * 31), False),
    ("Bearer " + TOKEN[:8], True),                            # 8 characters inside an Authorization header
    ("Bearer " + TOKEN[:7], False),
    ("Bearer ACCESS_TOKEN", False),                           # a name, not a value
])
def test_authorization_values_by_scheme(scheme_and_value, ok):
    line = f'curl -H "Authorization: {scheme_and_value}" https://x'
    value = scheme_and_value.split(" ", 1)[1]
    assert authorization_ok(value, line, line.index(value)) is ok


def test_authorization_values_outside_a_header_need_16_characters():
    line = f"token {TOKEN}"
    assert authorization_ok(TOKEN, line, line.index(TOKEN))
    line = f"token {TOKEN[:15]}"
    assert not authorization_ok(TOKEN[:15], line, line.index(TOKEN[:15]))
    far = "Authorization: Bearer " + " " * AUTH_LOOKBEHIND    # the header name too far back: a bare scheme word
    assert not authorization_ok(TOKEN[:8], far + TOKEN[:8], len(far))


def test_the_authorization_header_is_looked_for_64_characters_back():
    assert AUTH_LOOKBEHIND == 64
    edge = "Authorization: Bearer" + " " * 43                  # the header name starts 64 characters back
    assert authorization_ok(TOKEN[:8], edge + TOKEN[:8], len(edge))
    beyond = "Authorization: Bearer" + " " * 44                # 65: outside
    assert not authorization_ok(TOKEN[:8], beyond + TOKEN[:8], len(beyond))


def test_b64_bytes_and_basic_pairs():
    assert b64_bytes(_b64(b"bob:hunter2").rstrip("=")) == b"bob:hunter2"     # padding optional
    assert b64_bytes("not base64!") is None and b64_bytes("abc.def") is None
    assert basic_pair(b"bob:hun:ter2") == ("bob", "hun:ter2")                  # the first colon splits
    assert basic_pair(b"no colon") is None and basic_pair(b"\xff\xfe:x") is None and basic_pair(b"a:\tb") is None


JWK_D = "Xk29vLq7Pw03Zr58Tq7vR2mLx9WbN4hD2cYdE1fHgU0"


@pytest.mark.parametrize("member,value,jwk,ok", [
    ("d", JWK_D, '{"kty":"RSA","n":"x","e":"AQAB"}', True),
    ("d", JWK_D, '{"kty": "EC"}', True), ("d", JWK_D, '{"kty":"OKP"}', True), ("k", JWK_D, '{"kty":"oct"}', True),
    ("k", JWK_D, '{"kty":"EC"}', False), ("d", JWK_D, '{"kty":"oct"}', False),
    ("d", JWK_D, '{"kty":"DSA"}', False), ("d", JWK_D, '{"type":"EC"}', False),
    ("d", "x" * 43, '{"kty":"EC"}', False),                                   # redacted
    ("d", JWK_D[:20] + "EXAMPLE" + JWK_D[:16], '{"kty":"EC"}', False),        # a documentation sample
    ("d", JWK_D[:19], '{"kty":"EC"}', False), ("d", JWK_D[:20], '{"kty":"EC"}', True),   # 20 characters
    ("d", "privateExponentValueHere", '{"kty":"RSA"}', False),                # words
])
def test_jwk_private_members(member, value, jwk, ok):
    assert jwk_private_ok(member, value, jwk) is ok


# ---------------------------------------------------------------- survivors of the mutation re-run

def test_authorization_at_the_start_of_a_line_and_schemes_on_their_own_paths():
    line = "Authorization: Bearer " + TOKEN[:8]                 # the header name at index 0
    assert authorization_ok(TOKEN[:8], line, line.index(TOKEN[:8]))
    pair = _b64(b"user:password")                                # a Bearer value is not decoded as a pair
    line = "Authorization: Bearer " + pair
    assert authorization_ok(pair, line, line.index(pair))
    gss = _b64(b"\x60" + b"\x00" * 31)                           # a Basic value is not read as a GSS token
    line = "Authorization: Basic " + gss
    assert not authorization_ok(gss, line, line.index(gss))
    plain_auth = _b64(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\x00" * 40)    # an NTLM authenticate message, however plain
    random_negotiate = _b64(b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(range(97, 137)))
    for scheme in ("NTLM", "ntlm", "Negotiate"):
        line = f"Authorization: {scheme} {plain_auth}"
        assert authorization_ok(plain_auth, line, line.index(plain_auth))
        line = f"Authorization: {scheme} {random_negotiate}"
        assert not authorization_ok(random_negotiate, line, line.index(random_negotiate))


def test_b64_bytes_is_strict():
    assert b64_bytes("YWJj.ZGVm") is None and b64_bytes("YWJj ZGVm") is None        # not the alphabet
    assert b64_bytes("YWJjZGVm") == b"abcdef"


@pytest.mark.parametrize("line,found", [
    (f'curl -H "X-Api-Key: {TOKEN}" -u deploy:{PW} https://x', [("cli-credential", TOKEN), ("cli-credential", PW)]),
    (f'curl -u "$USER:$PASSWORD" --oauth2-bearer {TOKEN} https://x', [("cli-credential", TOKEN)]),
    ('curl -u "u:$pw9!x" https://x', []), ('curl -u "u:%pw9!x" https://x', []),   # by their first characters
    ('curl -u "u:{pw9!x" https://x', []), ('curl -u "u:@Xk29!vLq" https://x', []),
    ('curl -u "u:p$w9!x" https://x', [("cli-credential", "p$w9!x")]),
])
def test_cli_candidates_go_on_after_a_rejected_match(line, found):
    assert cli_candidates(line) == found


def _encoded(decoded: bytes) -> str:
    return base64.b64encode(decoded).decode()


def test_encoded_key_boundaries():
    head = b"-----BEGIN RSA PRIVATE KEY-----\n"                    # KEY----- at 23
    assert head.find(b"KEY-----") == 23
    at_87 = head + b"A" * (87 - len(head))                          # exactly 64 past KEY-----
    assert encoded_key_ok(_encoded(at_87)) and not encoded_key_ok(_encoded(at_87[:-1]))
    assert not encoded_key_ok(_encoded(head + b"A" * (80 - len(head))))   # 80 bytes: short of 87
    late = b"-----BEGIN" + b"X" * 59 + b"PRIVATE KEY" + b"A" * 100    # PRIVATE KEY ends at byte 80
    assert encoded_key_ok(_encoded(late)) and not encoded_key_ok(_encoded(late[:10] + b"X" + late[10:]))
    cut = _encoded(at_87 + b"AAAA")[:-2]                            # a value not a multiple of 4: its prefix is read
    assert len(cut) % 4 and encoded_key_ok(cut)
    assert not encoded_key_ok("LS0tLS1CRUdJTi" + "AAA===")         # 17 data characters: not decodable
    wrapped = "\n".join(_encoded(at_87 + b"AAA")[i:i + 24] for i in range(0, 120, 24))   # 120 + 4 line breaks
    assert len(wrapped) == 124 and encoded_key_ok(wrapped)        # decoded leniently: line breaks are skipped


def test_token_ok_lower_case_example_is_letters_and_private_key_forms_decode():
    assert token_ok("github-token", "ghp_" + "Xk29vLq7Pw03Zr58Tq7vR2mLx9W" + "example" + "z2", "", 0)
    body = base64.b64encode(bytes(range(256))).decode()
    public = base64.b64encode(f"-----BEGIN PUBLIC KEY-----\n{body}\n".encode()).decode()
    assert not token_ok("private-key", public, "", 0)


def test_unsigned_jwt_header_in_any_case():
    head = base64.urlsafe_b64encode(b'{"alg":"NONE"}').decode().rstrip("=")
    assert jwt_header_ok(head + ".eyJzdWIiOiIxMjM0In0.")
