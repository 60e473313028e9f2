"""Tests of buffer confirmation: lines around hits, assignments at names, PEM blocks, AWS pairs."""

import pytest

from runbook_lib.scan_buffer import (AWS_SECRET_LINES, LONG_LINE, NAME_WINDOW, PEM_MIN_BODY, RULE_PRIORITY, BufferScan,
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
