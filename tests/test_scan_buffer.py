"""Tests of buffer confirmation: lines around hits, assignments at names, PEM blocks, AWS pairs."""

import pytest

from runbook_lib.scan_buffer import (AWS_SECRET_LINES, LONG_LINE, NAME_WINDOW, PEM_MAX_BLOCK, PEM_MIN_BODY,
                                     PEM_NO_END_BODY, RULE_PRIORITY, BufferScan, decode,
                                     Candidate, select_candidates)
from runbook_lib.scan_prefilter import shared_prefilter

PW = "Tq7!vR2m#Lx9"
AKIA = "AKIA" + "QX7Z2MWB4HNPLK3D"
AWS_SECRET = "q8Jz3kLm9Xw2PbTv7RaN/5cYdE1fHgU0iOsKjLe+"
BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" * 2


def confirm(text: str, config: bool = False) -> list[tuple[int, str, str]]:
    data = text.encode()
    scan = BufferScan(data, config)
    scan.run(shared_prefilter().hits(data, config), shared_prefilter().families)
    return [(c.offset, c.rule, c.value) for c in select_candidates(scan.candidates)]


def test_line_bounds_and_text():
    scan = BufferScan(b"one\ntwo\nthree", config=False)
    assert scan.line_bounds(0) == (0, 3) and scan.line_bounds(5) == (4, 7) and scan.line_bounds(10) == (8, 13)
    assert scan.line_bounds(3) == (0, 3)  # the newline belongs to its line
    assert scan.line_text(4, 7, 5) == "two"


def test_a_long_line_is_read_around_the_hit_only():
    data = b"a" * (LONG_LINE + 1000) + b"\n"
    scan = BufferScan(data, config=False)
    assert len(scan.line_text(0, LONG_LINE + 1000, 3000)) == LONG_LINE
    assert scan.line_text(0, LONG_LINE + 1000, 10) == "a" * (10 + LONG_LINE // 2)
    exact = BufferScan(b"a" * LONG_LINE, config=False)
    assert exact.line_text(0, LONG_LINE, LONG_LINE) == "a" * LONG_LINE


def test_a_minified_line_still_yields_its_secret_with_the_right_offset():
    text = "x" * 20_000 + f';var password="{PW}";' + "y" * 20_000 + "\n" + f'token = "{PW}"\n'
    assert confirm(text) == [(0, "keyword-assignment", PW), (text.index("token"), "keyword-assignment", PW)]


def test_assignment_forms_and_offsets():
    text = f'x = 1\nDB_PASSWORD = "{PW}"\n  "password": "{PW}2",\n'
    assert confirm(text) == [(6, "keyword-assignment", PW), (text.index('  "pass'), "keyword-assignment", PW + "2")]
    assert confirm(f"DB_PASSWORD={PW}\n", config=True) == [(0, "keyword-assignment", PW)]
    assert confirm(f"DB_PASSWORD={PW}\n", config=False) == []


def test_names_inside_values_are_not_assignments():
    assert confirm(f'url = "https://h/password=x"; path = "/etc/token=y"\n') == []
    assert confirm(f'ref = "arn:aws:secret:password = {PW}"\n') == []


def test_names_far_before_the_hit_are_not_looked_at():
    near = "DB_PASSWORD" + " " * 4 + f'= "{PW}"'
    assert confirm(near + "\n") == [(0, "keyword-assignment", PW)]
    assert NAME_WINDOW == 200


def test_a_quoted_name_is_matched_with_its_quote():
    # "password", "value": a pair only when the name is quoted
    assert confirm(f'conf.set("password", "{PW}")\n') == [(0, "keyword-assignment", PW)]
    assert confirm(f'conf.set(password, "{PW}")\n') == []


def test_fstring_and_call_forms():
    assert confirm(f'password = f"{{x}}{PW}"\n') == []
    assert confirm(f'ftp.login("deploy", "{PW}")\n') == [(0, "keyword-assignment", PW)]
    assert confirm(f"<password>{PW}</password>\n") == [(0, "keyword-assignment", PW)]
    assert confirm(f'DSN = "Server=db;Password={PW};"\n') == [(0, "keyword-assignment", PW)]


def test_private_key_needs_a_body():
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{BODY}\n-----END RSA PRIVATE KEY-----\n"
    assert confirm(block) == [(0, "private-key", block.rstrip("\n"))]
    short = f"-----BEGIN PRIVATE KEY-----\n{'A' * (PEM_MIN_BODY - 1)}\n-----END PRIVATE KEY-----\n"
    assert confirm(short) == []
    enough = short.replace("A" * (PEM_MIN_BODY - 1), "A" * PEM_MIN_BODY)
    assert [r for _, r, _ in confirm(enough)] == ["private-key"]
    assert confirm('BEGIN = "-----BEGIN PRIVATE KEY-----"\n') == []


def test_private_key_in_an_escaped_string_and_without_an_end():
    escaped = f'KEY = "-----BEGIN PRIVATE KEY-----\\n{BODY}\\n-----END PRIVATE KEY-----"\n'
    assert [r for _, r, _ in confirm(escaped)] == ["private-key"]
    no_end = f"-----BEGIN EC PRIVATE KEY-----\n{BODY}\n"
    found = confirm(no_end)
    assert [r for _, r, _ in found] == ["private-key"] and found[0][2].startswith("-----BEGIN EC PRIVATE KEY-----")


def _pair(gap: int) -> str:
    return f'key = "{AKIA}"\n' + "x = 1\n" * gap + f'other = "{AWS_SECRET}"\n'


def test_aws_secret_near_an_access_key_id_within_four_lines():
    assert AWS_SECRET_LINES == 4
    near = confirm(_pair(AWS_SECRET_LINES - 1))
    assert [r for _, r, _ in near] == ["aws-access-key-id", "aws-secret-access-key"]
    assert near[1][0] == _pair(AWS_SECRET_LINES - 1).index("other")
    assert [r for _, r, _ in confirm(_pair(AWS_SECRET_LINES))] == ["aws-access-key-id"]
    before = f'other = "{AWS_SECRET}"\n' + "x = 1\n" * (AWS_SECRET_LINES - 1) + f'key = "{AKIA}"\n'
    assert [r for _, r, _ in confirm(before)] == ["aws-secret-access-key", "aws-access-key-id"]
    low_entropy = _pair(0).replace(AWS_SECRET, "ab" * 20)
    assert [r for _, r, _ in confirm(low_entropy)] == ["aws-access-key-id"]


def test_a_token_is_reported_once_per_line_and_rule():
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    assert confirm(f'a = "{token}"; b = "{token}"\n') == [(0, "github-token", token)]


def test_select_keeps_the_most_specific_rule_per_value_and_line():
    candidates = [Candidate(0, "keyword-assignment", AKIA, ""), Candidate(0, "aws-access-key-id", AKIA, ""),
                  Candidate(0, "keyword-assignment", "other", ""), Candidate(5, "keyword-assignment", AKIA, ""),
                  Candidate(0, "high-entropy-env-value", "x" + AKIA, "")]
    assert [(c.offset, c.rule, c.value) for c in select_candidates(candidates)] == [
        (0, "aws-access-key-id", AKIA), (0, "keyword-assignment", "other"), (5, "keyword-assignment", AKIA)]
    assert RULE_PRIORITY["aws-access-key-id"] < RULE_PRIORITY["aws-secret-access-key"] < RULE_PRIORITY[
        "keyword-assignment"] < RULE_PRIORITY["high-entropy-env-value"]


@pytest.mark.parametrize("text", ["", "\n\n", "no secrets here\n"])
def test_nothing_to_confirm(text):
    assert confirm(text) == []


def test_bytes_that_are_not_utf8_never_stop_a_scan():
    assert decode(b"ok \xff\xfe") == "ok \ufffd\ufffd"
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    lines = [f'\xff password = "{PW}"', f'\xff t = "{token}"', f"\xff key = '{AKIA}' \xff",
             f'\xff other = "{AWS_SECRET}"', f"\xff-----BEGIN PRIVATE KEY-----\xff", BODY, "-----END PRIVATE KEY-----",
             "\xff" + "x" * LONG_LINE + f' token = "{token}"']
    data = "\n".join(lines).encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff")
    data = data.replace(b"\xc3\xbf", b"\xff")  # the \xff characters as raw invalid bytes
    scan = BufferScan(data, config=False)
    scan.run(shared_prefilter().hits(data, False), shared_prefilter().families)
    rules = sorted({c.rule for c in select_candidates(scan.candidates)})
    assert rules == ["aws-access-key-id", "aws-secret-access-key", "github-token", "keyword-assignment",
                     "private-key"]


def test_two_token_rules_on_one_line_and_a_repeated_hit_before_others():
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    text = f'a = "{AKIA}"; b = "{token}"; c = "{token}"\npassword = "{PW}"\n'
    assert [r for _, r, _ in confirm(text)] == ["aws-access-key-id", "github-token", "keyword-assignment"]


def test_a_token_on_a_minified_line():
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    assert confirm("x" * (3 * LONG_LINE) + f'"{token}"' + "y" * LONG_LINE + "\n") == [(0, "github-token", token)]


def test_each_token_is_checked_on_its_own():
    fake_jwt = "eyJraWQiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    assert confirm(f'jwt = "{fake_jwt}"\n') == []  # no alg/typ in its header: not a token
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    text = f'a = "ghp_{"x" * 36}"; b = "{token}"\n'  # the first is a placeholder, the second is not
    assert confirm(text) == [(0, "github-token", token)]


def test_unquoted_values_are_not_read_in_code():
    assert confirm(f'token = {PW}; password = "changeme"\n', config=False) == []
    assert confirm(f"token = Xk29vLq7Pw03Zr58; password = 'x'\n", config=True) == [
        (0, "keyword-assignment", "Xk29vLq7Pw03Zr58")]


def test_aws_secret_window_counts_empty_lines_as_lines():
    above = f'other = "{AWS_SECRET}"\n' + "\n" * AWS_SECRET_LINES + f'key = "{AKIA}"\n'
    assert [r for _, r, _ in confirm(above)] == ["aws-access-key-id"]
    above_in = f'other = "{AWS_SECRET}"\n' + "\n" * (AWS_SECRET_LINES - 1) + f'key = "{AKIA}"\n'
    assert [r for _, r, _ in confirm(above_in)] == ["aws-secret-access-key", "aws-access-key-id"]
    below = f'key = "{AKIA}"\n' + "\n" * AWS_SECRET_LINES + f'other = "{AWS_SECRET}"\n'
    assert [r for _, r, _ in confirm(below)] == ["aws-access-key-id"]
    below_in = f'key = "{AKIA}"\n' + "\n" * (AWS_SECRET_LINES - 1) + f'other = "{AWS_SECRET}"'  # no final newline
    found = confirm(below_in)
    assert [r for _, r, _ in found] == ["aws-access-key-id", "aws-secret-access-key"]
    assert found[1][0] == below_in.index("other")


@pytest.mark.parametrize("secret,found", [
    (AWS_SECRET, True),
    ("q8jz3klm9xw2pbtv7ran/5cyde1fhgu0iosk" + "jle+", True),    # lower, digit, symbol: three classes
    ("q8jz3klm9xw2pbtv7ran05cyde1fhgu0ioskjle1", False),           # two classes
    ("abcdefghijklmnopABCDEFGHIJKLMNOP12345678", True),            # 40 distinct: 5.3 bits
    ("aabbccddeeffgghhAABBCCDDEEFFGGHH11223344", True),            # 20 distinct twice: 4.32 bits, 3 classes
    ("aaabbbcccdddeeeAAABBBCCCDDD11122334455//", False),           # 15 distinct: 3.88 bits
])
def test_aws_secret_near_needs_three_classes_and_four_bits(secret, found):
    from runbook_lib.rules import char_classes, shannon_entropy

    rules = [r for _, r, _ in confirm(f'key = "{AKIA}"\nother = "{secret}"\n')]
    assert ("aws-secret-access-key" in rules) is found, (char_classes(secret), shannon_entropy(secret))


def test_private_key_span_limits():
    head = "-----BEGIN PRIVATE KEY-----\n"
    end = "\n-----END PRIVATE KEY-----"
    filler = PEM_MAX_BLOCK - len(head) - len(end)
    fits = head + ("A" * 63 + "\n") * (filler // 64) + "A" * (filler % 64) + end
    assert len(fits) == PEM_MAX_BLOCK
    assert confirm(fits + "\n")[0][2] == fits  # the END line ends at the last byte looked at
    one_more = fits.replace("\nA", "\nAA", 1)
    block = confirm(one_more + "\n")[0][2]  # END out of reach: the header and 4096 bytes of body
    assert len(block) == len("-----BEGIN PRIVATE KEY-----") + PEM_NO_END_BODY


def test_private_key_body_counts_escaped_newlines_as_breaks():
    head, end = "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"
    escaped_63 = f'K = "{head}\\n{"A" * 63}\\n{end}"\n'
    assert confirm(escaped_63) == []  # \n is a break, its "n" is not a body character
    split_by_cr = f'K = "{head}\\n{"A" * 50}\\r{"B" * 14}\\n{end}"\n'
    assert [r for _, r, _ in confirm(split_by_cr)] == ["private-key"]  # \r is dropped: one run of 64
    cr_then_lf = f'K = "{head}\\n{"A" * 60}\\r\\n{end}"\n'
    assert confirm(cr_then_lf) == []


def raw_candidates(text: str, config: bool = False) -> list[tuple[int, str]]:
    """Every candidate the hits produced, before :func:`select_candidates` keeps one per value."""
    data = text.encode()
    scan = BufferScan(data, config)
    scan.run(shared_prefilter().hits(data, config), shared_prefilter().families)
    return [(c.offset, c.value) for c in scan.candidates]


def test_line_bounds_when_the_buffer_starts_with_a_newline():
    scan = BufferScan(b"\nabc", config=False)
    assert scan.line_bounds(0) == (0, 0)  # the empty first line ends at its own newline
    assert scan.line_bounds(1) == (1, 4)
    assert confirm(f'\npassword = "{PW}"\n') == [(1, "keyword-assignment", PW)]


def test_a_line_of_exactly_long_line_bytes_far_into_the_buffer_is_read_whole():
    data = b"\n" * (2 * LONG_LINE) + b"a" * LONG_LINE
    scan = BufferScan(data, config=False)
    start, stop = scan.line_bounds(len(data) - 1)
    assert (start, stop) == (2 * LONG_LINE, 3 * LONG_LINE)
    assert scan.line_text(start, stop, stop) == "a" * LONG_LINE  # its length counts, not its offset


def test_aws_secret_on_the_last_line_without_a_newline():
    text = f'key = "{AKIA}"\nother: {AWS_SECRET}'
    assert confirm(text) == [(0, "aws-access-key-id", AKIA), (text.index("other"), "aws-secret-access-key", AWS_SECRET)]


def test_a_name_at_the_start_of_the_buffer_is_a_name_whatever_the_last_byte():
    # the byte before offset 0 is no byte: a buffer ending in "/" or a quote changes nothing
    assert confirm(f'password = "{PW}"  # see http://h/') == [(0, "keyword-assignment", PW)]
    assert confirm(f'password = "{PW}"') == [(0, "keyword-assignment", PW)]


def test_a_name_inside_a_url_path_is_not_an_assignment_and_names_after_it_still_are():
    assert confirm("url: https://h/password=Xk29vLq7Pw03Zr58\n", config=True) == []
    text = f'x = "arn:aws:secretsmanager:r:1:secret:db"; password = "{PW}"\n'
    assert confirm(text) == [(0, "keyword-assignment", PW)]


def test_each_name_and_each_token_line_is_confirmed_once():
    # the second hit's window holds the first name again: it is not matched twice
    assert raw_candidates(f'password = "{PW}"; token = "{PW}2"\n') == [(0, PW), (0, PW + "2")]
    # two access key ids on a line: two hits, the line confirmed once for the rule
    other = AKIA[:-1] + "E"
    assert raw_candidates(f'a = "{AKIA}"; b = "{other}"\n') == [(0, AKIA), (0, other)]


def test_an_unquoted_value_is_read_when_the_quoted_form_is_a_template():
    # in configuration "password: X = f'{user}'" is no quoted assignment, but password: X is one
    assert confirm('password: Xk29vLq7Pw03Zr58 = f"{user}"\n', config=True) == [
        (0, "keyword-assignment", "Xk29vLq7Pw03Zr58")]


def test_a_short_key_block_does_not_borrow_the_body_of_the_next_block():
    text = ("-----BEGIN PRIVATE KEY-----\nshort\n-----END PRIVATE KEY-----\n"
            f"-----BEGIN CERTIFICATE-----\n{BODY}\n-----END CERTIFICATE-----\n")
    assert confirm(text) == []


def test_in_configuration_a_keyword_hit_reads_its_whole_line_unquoted_pairs_included():
    # the first name is too long for a prefilter hit of its own (its keyword is more than 48
    # characters before the "="): the connection-string hit later on the line finds it
    name = "password_for_the_reporting_database_replica_in_eu_west"
    assert confirm(f"{name}=Xk29vLq7Pw03Zr58 password=(x)\n", config=True) == [
        (0, "keyword-assignment", "Xk29vLq7Pw03Zr58")]
    assert confirm(f"{name}=Xk29vLq7Pw03Zr58\n", config=True) == []  # alone: a known limit (docs/scanner.md)


def test_xml_element_over_three_lines():
    text = f"<config>\n  <apiToken>\n    {PW}Zr58\n  </apiToken>\n</config>\n"
    assert confirm(text) == [(text.index(f"    {PW}"), "keyword-assignment", PW + "Zr58")]
    unclosed = f"<config>\n  <apiToken>\n    {PW}Zr58\n  </other>\n"
    assert confirm(unclosed) == []
    neutral = f"<config>\n  <mode>\n    {PW}Zr58\n  </mode>\n"
    assert confirm(neutral) == []
    first_line = f"    {PW}Zr58\n  </apiToken>\n"
    assert confirm(first_line) == []


def test_a_key_value_line_inside_a_json_string():
    text = '{"config.env": "DEPLOY_TOKEN=' + PW.replace("!", "x").replace("#", "y") + 'Zr58\\nLOG_LEVEL=info"}'
    found = confirm(text, config=True)
    assert [(rule, value) for _, rule, value in found] == [("keyword-assignment", "Tq7xvR2myLx9Zr58")]


def test_a_second_confirm_group_carries_the_value():
    session = "_gitlab_session=" + "k29vlq7pw03zr58tq7vr2mlx9wbn4hd2"
    assert confirm(f'cookie = "{session}"') [0][1:] == ("gitlab-token", "k29vlq7pw03zr58tq7vr2mlx9wbn4hd2")
    npmrc = "//registry.npmjs.org/:_authToken=3f2a9c1e-7b4d-4e8a-9c0f-1d2e3f4a5b6c\n"
    assert confirm(npmrc, config=True) == [(0, "npm-token", "3f2a9c1e-7b4d-4e8a-9c0f-1d2e3f4a5b6c")]


# base64url key material generated for these tests (43 characters: a P-256 scalar's length)
JWK_D = "Xk29vLq7Pw03Zr58Tq7vR2mLx9WbN4hD2cYdE1fHgU0"


def test_a_jwk_private_member_is_confirmed_with_its_object_over_lines():
    one_line = '{"kty":"EC","crv":"P-256","x":"' + JWK_D[::-1] + '","d":"' + JWK_D + '"}\n'
    assert confirm(one_line) == [(0, "private-key", JWK_D)]
    pretty = '{\n  "kty": "EC",\n  "crv": "P-256",\n  "d": "' + JWK_D + '"\n}\n'
    assert confirm(pretty) == [(pretty.index('  "d"'), "private-key", JWK_D)]
    assert confirm('{"kty":"oct","k":"' + JWK_D + '"}') == [(0, "private-key", JWK_D)]   # a symmetric key


@pytest.mark.parametrize("text", [
    '{"kty":"EC","crv":"P-256","x":"' + JWK_D + '"}',                 # a public JWK: no d
    '{"kty":"oct","d":"' + JWK_D + '"}',                              # d is not an oct key's member
    '{"kty":"RSA","k":"' + JWK_D + '"}',                              # k is only an oct key's
    '{"d":"' + JWK_D + '"}',                                          # no kty: not a JWK
    '{"kty":"EC"}, {"d":"' + JWK_D + '"}',                            # kty of another object
    '"kty":"EC","d":"' + JWK_D + '"}',                                # no opening brace
    '{"kty":"EC","d":"' + JWK_D + '"',                                # no closing brace
    '{"kty":"EC","d":"' + "x" * 43 + '"}',                            # a placeholder
])
def test_not_a_jwk_private_member(text):
    assert confirm(text) == []


def test_a_jwk_object_is_looked_for_within_its_span():
    from runbook_lib.scan_buffer import JSON_OBJECT_SPAN
    pad = " " * (JSON_OBJECT_SPAN - len('"kty":"EC",') - 1)
    near = '{"kty":"EC",' + pad + '"d":"' + JWK_D + '"}'                    # the brace just inside the span
    assert confirm(near) == [(0, "private-key", JWK_D)]
    assert confirm('{"kty":"EC",' + pad + ' "d":"' + JWK_D + '"}') == []    # one byte too far
    after = '{"kty":"EC","d":"' + JWK_D + '"' + " " * (JSON_OBJECT_SPAN - 1) + "}"
    assert confirm(after) == [(0, "private-key", JWK_D)]
    assert confirm(after[:-1] + " }") == []


# ---------------------------------------------------------------- survivors of the mutation re-run

def test_jwk_members_are_read_on_their_own_line_and_object():
    two = '{"kty":"EC","d":"' + JWK_D + '"}\n{"kty":"EC","d":"' + JWK_D[::-1] + '"}\n'
    assert confirm(two) == [(0, "private-key", JWK_D), (two.index("\n") + 1, "private-key", JWK_D[::-1])]
    after = '{"kty":"EC","d":"' + JWK_D + '"}\n{"x":1}\n'                  # a later object's brace is not its own
    assert confirm(after) == [(0, "private-key", JWK_D)]
    inner = '{"crv":{},"kty":"EC","d":"' + JWK_D + '"}'                    # a brace before the member is not its end
    assert confirm(inner) == [(0, "private-key", JWK_D)]
    assert confirm('{"d":"' + JWK_D + '"}, {"kty":"EC"}') == []             # the next object's kty is not its own
    both = '{"kty":"oct","d":"' + JWK_D + '","k":"' + JWK_D[::-1] + '"}'    # d rejected, then k read
    assert confirm(both) == [(0, "private-key", JWK_D[::-1])]
    loose = '"d":"' + JWK_D + '", {"kty":"EC","d":"' + JWK_D[::-1] + '"}'   # no object around the first
    assert confirm(loose) == [(0, "private-key", JWK_D[::-1])]


@pytest.mark.parametrize("text,found", [
    ("<password>\nXk29vLq7Pw03Zr58\n</password>\n", True),             # a value without indentation
    ("<password>\n  Xk29vLq7Pw03Zr58\n</password>", True),             # the closing tag ends the buffer
    ("<password>\n  Xk29vLq7Pw03Zr58\n\n</password>\n", False),        # not on the next line
    ("<password>\n  changeme\n</password>\n", False),                  # a placeholder
])
def test_xml_blocks_at_their_edges(text, found):
    value = text.split("\n")[1].strip()
    assert confirm(text) == ([(text.index("\n") + 1, "keyword-assignment", value)] if found else [])


def test_two_line_families_on_one_line_are_both_confirmed():
    line = f'login("ops", "{PW}")  # or: curl -u deploy:Zr58!Tq7vR2m https://x\n'
    assert sorted(rule for _, rule, _ in confirm(line)) == ["cli-credential", "keyword-assignment"]


def run_with(data: bytes, memo: set, config: bool = False) -> list[tuple[int, str, str]]:
    scan = BufferScan(data, config, memo)
    scan.run(shared_prefilter().hits(data, config), shared_prefilter().families)
    return [(c.offset, c.rule, c.value) for c in select_candidates(scan.candidates)]


def test_a_window_that_confirmed_nothing_is_not_judged_again_in_any_buffer(monkeypatch):
    judged = []
    original = BufferScan.match_assignment
    monkeypatch.setattr(BufferScan, "match_assignment", lambda self, *a: judged.append(a) or original(self, *a))
    memo: set = set()
    line = b'      "token": "MaxResultsPage",\n'
    assert run_with(line * 3, memo) == [] and len(judged) == 1 and len(memo) == 1
    assert run_with(b"x = 1\n" + line, memo) == [] and len(judged) == 1  # another file, the same line: not judged
    assert run_with(line, set()) == [] and len(judged) == 2  # a scanner of its own judges it
    assert run_with(line, memo, config=True) == [] and len(judged) == 3  # configuration reads more: judged apart


def test_a_window_that_confirmed_a_secret_is_judged_in_every_buffer():
    memo: set = set()
    line = f'      "token": "{PW}Zq",\n'.encode()
    for _ in range(3):
        assert run_with(line, memo) == [(0, "keyword-assignment", PW + "Zq")]
    assert memo == set()


def test_a_window_with_a_name_judged_for_an_earlier_hit_is_not_remembered():
    memo: set = set()
    line = f'password = "{PW}", token = "MaxResultsPage"\n'.encode()
    assert run_with(line, memo) == [(0, "keyword-assignment", PW)]
    assert memo == set()  # the token hit's window holds `password`, judged (and reported) for the first hit
    assert run_with(line, memo) == [(0, "keyword-assignment", PW)]


def test_only_short_rests_of_line_are_remembered_and_the_memo_is_bounded(monkeypatch):
    from runbook_lib import scan_buffer

    memo: set = set()
    long_line = b'token = "MaxResultsPage"' + b" " * scan_buffer.MEMO_SPAN + b"\n"
    assert run_with(long_line, memo) == [] and memo == set()
    monkeypatch.setattr(scan_buffer, "MEMO_ENTRIES", 2)
    for n in range(3):
        run_with(f'token{n} = "MaxResultsPage"\n'.encode(), memo)
    assert len(memo) == 1  # full at two: emptied, then the third window kept


def test_the_memo_key_holds_the_byte_before_a_window_that_starts_inside_the_line():
    scan = BufferScan(b"aa=password: x\n", config=False)
    assert scan.memo_key(0, 14, 14, 3) == (False, True, 11, b"=password: x")
    assert scan.memo_key(0, 14, 14, 0) == (False, False, 14, b"aa=password: x")
    assert scan.memo_key(0, 14, 14, 3) != BufferScan(b"aa password: x\n", config=False).memo_key(0, 14, 14, 3)


def test_a_short_line_after_a_long_one_is_remembered_and_a_rest_of_exactly_memo_span_bytes_too():
    from runbook_lib import scan_buffer

    memo: set = set()
    line = b'token = "MaxResultsPage"\n'
    assert run_with(b"#" * 300 + b"\n" + line, memo) == [] and len(memo) == 1  # the rest of its own line counts
    exact = b'token = "MaxResultsPage"'
    exact += b" " * (scan_buffer.MEMO_SPAN - len(exact)) + b"\n"
    memo.clear()
    assert run_with(exact, memo) == [] and len(memo) == 1


def test_the_name_window_reaches_back_past_the_literal_lookahead():
    from runbook_lib.keyword_prefilters import LITERAL_LOOKAHEAD

    text = "DB_PASSWORD =" + " " * (NAME_WINDOW - 13) + f'"{PW}"\n'
    data = text.encode()
    end = text.index('"') + LITERAL_LOOKAHEAD  # as far into the literal as a hit may end
    assert end > NAME_WINDOW
    scan = BufferScan(data, config=False)
    scan.confirm_assignment(0, len(data) - 1, end, set())
    assert [(c.rule, c.value) for c in scan.candidates] == [("keyword-assignment", PW)]
