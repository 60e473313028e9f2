"""Tests of the value rules: every filter of runbook_lib.rules on each side of its boundary.

Where a boundary is a number (a length, an entropy), the test builds values on both sides
and asserts the measured figure too, so a reader sees where the line is.
"""

from __future__ import annotations

import pytest

from runbook_lib import rules as R
from runbook_lib.rules import (KEY, PASSWORD, SECRET, char_classes, is_placeholder, is_random_token, is_reference,
                               is_secret_value, is_uuid, looks_generated, not_a_value_reason, placeholder_words,
                               shannon_entropy)

TOKEN16 = "Xk29vLq7Pw03Zr58"  # generated for these tests: 16 distinct characters, 3 classes


def shaped(counts: list[int], alphabet: str) -> str:
    """A value with exactly these character multiplicities (entropy under the test's control)."""
    return "".join(ch * n for ch, n in zip(alphabet, counts))


# ------------------------------------------------------------------ measures

@pytest.mark.parametrize("value,bits", [("", 0.0), ("aaaa", 0.0), ("ab", 1.0), ("abcd", 2.0), ("aabb", 1.0),
                                        ("abcdefgh", 3.0), (TOKEN16, 4.0)])
def test_shannon_entropy_in_bits_per_character(value, bits):
    assert shannon_entropy(value) == pytest.approx(bits)


@pytest.mark.parametrize("value,classes", [("", 0), ("abc", 1), ("ABC", 1), ("123", 1), ("-_!", 1),
                                           ("aB", 2), ("a1", 2), ("a-", 2), ("aB1", 3), ("aB1!", 4)])
def test_char_classes_counts_lower_upper_digit_other(value, classes):
    assert char_classes(value) == classes


# ------------------------------------------------------------------ placeholders

@pytest.mark.parametrize("value", [
    "changeme", "CHANGEME", " dummy ", "", "none", "your_password", "notasecret",   # known stand-ins
    "abab", "aaaaaaaa", "xx",                                                   # two distinct characters or fewer
    "<api-key>", "${DB_PASSWORD}", "$(cat key)", "{{ secret }}", "{password}", "%(pw)s", "%s", "$DB_PASSWORD",
    "%PASSWORD%", "[API KEY]", "xxx", "***", "...", "---", "#{secret}", "@TOKEN@",   # templates and masks, whole
])
def test_whole_value_stand_ins_are_placeholders(value):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", [
    # a filler word anywhere: start, middle, end, any separator or case
    "change_me", "CHANGE-ME", "ChangeMe", "changeme-api-key", "sk_live_change_me", "api-key-change_me",
    "token.changeme.value", "xoxb-CHANGE_ME-1234", "replace-me", "ReplaceMe", "api_placeholder_key",
    "token-REDACTED", "TODO-set-me", "fixme_token", "token tbd", "change-it",
    # a first word that marks a stand-in
    "your-api-key", "YOUR_TOKEN_1", "yourApiKeyHere", "my_token", "insert-token", "enter_password",
    "put-key", "replace_with_key", "add-token", "test_key_123", "example-token", "sample_secret",
    "dummy-value-1", "fake_token", "your_api_key_2024", "Your_Api_Key_2024", "test_key_1234567",
    "test_Abc9Def_Ghij",                            # one digit inside letters: not yet random
    "my-2Ab-c5De-FgHk9",                            # the filler is not joined to the rest: ``my2A`` is not counted
    # a last word that marks one
    "token_here", "api-key-here", "xoxb-your-token-here", "token-goes-here", "TOKEN GOES HERE",
    "secret_example", "key-sample", "password_dummy", "token-fake",
    # a masked stretch
    "sk_live_XXXXXXXXXXXXXXXX", "AKIAXXXX", "AKIA****", "ghp_****", "pw-###", "AKIAXXXXXXXXXXXXXXXX",
    "aB3dXXXXeF5g",                                 # the mask splits the value: short words either side
])
def test_marked_values_are_placeholders(value):
    assert is_placeholder(value), value


@pytest.mark.parametrize("value", [
    # the marker is beside a generated-looking word: a real value (never hidden)
    f"changeme-{TOKEN16}", f"{TOKEN16}_here", f"your-{TOKEN16}", f"sk_live_change_me_{TOKEN16}",
    f"test-{TOKEN16}", f"{TOKEN16}-example", "aB3xxxxQ9zLm2Kpw", "Tq7!vR2m#Lx9_here", "Tq7!***vR2m#Lx9",
    # a filler glued to other characters is not a filler word
    "Changeme2024!", "changeme123", "herecomes9Xk", "mydogMax#2019",
    # first-word fillers elsewhere, last-word fillers elsewhere
    "api-your-key9!", "Summer-Here-2024!", "here-Tq7!vR2m", "token-test-9!vR",
    # letter runs that are not words (random) are not split into fillers
    "gtvTBD-seBmtLQXm", "MyPHESwloUKy_^R7X?^w", "mY-mb5_upVzUPm34xoPs1b9cnV7PgY7Q",
    # below the mask lengths
    "AKIAXXX9vLq7Pw03", "Tq7!**vR2m", "pw-##-Tq7!",
    # a generated value cut into short words by separators, a filler first: random together
    "my-Xk2_q9L-vR2m_Lx9w", "Add_v7Qk-2mRx_9tLw", "my-Ab3cDe_f5GhJk",   # the last: two digits inside letters
    "Xk29vLq7Pw03Zr58",
])
def test_real_values_are_not_placeholders(value):
    assert not is_placeholder(value), value


def test_a_mask_is_no_part_of_the_words_beside_it():
    # "abc1234" is too short to look generated; the masked stretch does not lengthen it
    assert is_placeholder("abc1234****") and is_placeholder("sk_live_abc1234XXXX")
    assert not is_placeholder("abc1234Xk29vLq7****")  # a generated-looking word before the mask


def test_eight_xs_mean_redacted_whatever_surrounds_them():
    assert is_placeholder("Atza|IQEBLjAsAhRFiXuWpUXuRvQ9PZL3GMFcYevydwIUFAHZwXZXXXXXXXXJnrulxKDHwy87oGKPzn")
    assert not is_placeholder("Atza|IQEBLjAsAhRFiXuWpUXuRvQ9PZL3GMFcYevydwIUFAHZwXZXXXXXXXJnrulxKDHwy87oGKPzn")


@pytest.mark.parametrize("value,words", [
    ("your-api-key", ["your", "api", "key"]), ("yourApiKeyHere", ["your", "Api", "Key", "Here"]),
    ("CHANGE_ME", ["CHANGEME"]), ("change me now", ["changeme", "now"]), ("goes.here", ["goeshere"]),
    ("Changeme2024!", ["Changeme2024!"]), ("gtvTBD-x", ["gtvTBD", "x"]), ("a//b", ["a", "b"]), ("", []),
    ("replace_me_me", ["replaceme", "me"]),
])
def test_placeholder_words(value, words):
    assert placeholder_words(value) == words


# ------------------------------------------------------------------ references and other non-values

@pytest.mark.parametrize("value", [
    "${DB_PASSWORD}", "prefix-{{resolve:secretsmanager:db}}", "$(aws ssm get)", "%(password)s", "!Ref DbPassword",
    "!Sub '${Pw}'", "!GetAtt Db.Password", "!ImportValue shared-pw", "{{resolve:ssm:/app/pw}}",
    "arn://x", "ssm://app/pw", "secretsmanager://db", "vault://secret/db", "env://PW", "file://pw.txt",
    "aws-sm://db", "awssm://db", "sm://db", "arn:aws:secretsmanager:us-east-1:1:secret:x", "ssm:/app/pw",
    "env:DB_PASSWORD", "file:/run/pw", "secretsmanager:db",
])
def test_references_point_at_a_secret(value):
    assert is_reference(value)


@pytest.mark.parametrize("value", [TOKEN16, "Ref DbPassword", "my-arn:thing", "xssm:/app", "{resolve}", "$ notvar"])
def test_values_that_are_not_references(value):
    assert not is_reference(value)


@pytest.mark.parametrize("value,reason", [
    ("", "empty"), ("   ", "empty"), ("changeme", "placeholder"), ("${X}", "placeholder"),
    ("prefix${X}", "reference"), ("arn:aws:kms:us-east-1:1:key/x", "reference"),
    ("3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47", "uuid"), ("3600", "number"), ("-1.5e3", "number"), ("30s", "number"),
    ("0x1F", "number"), (".25", "number"), ("https://api.example.com/v1", "url"), ("/etc/app/key.pem", "path"),
    ("./key", "path"), ("~/.ssh/id", "path"), ("C:\\keys\\a", "path"), ("client.p12", "path"),
    ("Bearer {token}", "template"), ("{user}:{pw}", "template"), ("sha512-" + "Ab1+" * 10, "hash"),
    ("md5:abc123", "hash"), ("ops@example.com", "email"), ("data:image/png;base64,AAAA", "data-uri"),
    ("2024-01-31", "date"), ("2024-01-31T10:00:00Z", "date"), ("2024-01-31 10:00:00+01:00", "date"),
    ("Tq7!vR2m...", "placeholder"), ("Tq7!vR2m\u2026", "placeholder"), ("Tq7vR2mEXAMPLE", "placeholder"),
])
def test_not_a_value_reasons(value, reason):
    assert not_a_value_reason(value) == reason


@pytest.mark.parametrize("value", [
    TOKEN16, "Tq7!vR2m#Lx9", "3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c4", "36005x", "0x1G", "http:/x", "key.pem.bak",
    "sha1024-abc", "ops@example", "2024-01-3", "Tq7vR2mexample", "Tq7!vR2m..x",
])
def test_real_values_have_no_reason(value):
    assert not_a_value_reason(value) is None


# ------------------------------------------------------------------ generated-looking

def test_looks_generated_length_boundaries():
    assert looks_generated("Xk29vLq7") and not looks_generated("Xk29vLq")          # 8 / 7 at the default 8
    assert looks_generated(TOKEN16, 16) and not looks_generated(TOKEN16[:15], 16)
    assert not looks_generated("Xk29 vLq7Pw03")                                     # a space: words


@pytest.mark.parametrize("value", ["my-app-prod", "access_logs.s3.enabled", "handleRequestNow",
                                   "HandleRequestNow", "eu-west-1-blue", "orders.api.v2", "GetSecretValue"])
def test_identifiers_and_slugs_are_not_generated(value):
    assert not looks_generated(value)


def test_word_parts_casing():
    assert not looks_generated("ABCDEFGHIJKL-MNOPQRSTUVW")   # an upper-case constant: words
    assert looks_generated("abCdEf-ghij")                     # two capitals in six letters: not a word


def test_slug_shape_needs_few_digits_and_word_parts():
    assert not looks_generated("ab1-cd2-ef")              # 2 digits: at most 10 // 4
    assert not looks_generated("ab1-cd2-ef3x")            # 3 digits: at most 12 // 4
    assert looks_generated("ab1-cd2-ef3")                 # 3 digits: more than 11 // 4, not a slug
    assert not looks_generated("abc-def-gh1")             # 1 digit: a slug
    assert looks_generated("aBcD-eFgH-iJkL")              # parts with scattered case: not words


def test_hex_needs_16_characters_and_3_bits():
    assert looks_generated("0123456789abcdef") and not looks_generated("0123456789abcde")
    assert shannon_entropy("0011223344556677") == 3.0 and looks_generated("0011223344556677")
    assert shannon_entropy("0011223344556600") < 3.0 and not looks_generated("0011223344556600")


def test_long_values_need_3_5_bits_and_varied_classes():
    above = shaped([2] * 8 + [1] * 4, "abcdefgh12AB")       # 20 chars, 12 symbols
    below = shaped([2] * 9 + [1] * 2, "abcdefghi1A")        # 20 chars, 11 symbols
    assert len(above) == len(below) == 20
    assert shannon_entropy(above) >= 3.5 > shannon_entropy(below)
    assert looks_generated(above) and not looks_generated(below)


def test_long_values_with_three_classes_need_no_digit():
    value = shaped([2] * 8 + [1] * 4, "abcdefghAB!#")       # lower, upper, symbol; 3.52 bits; few capitals
    assert len(value) == 20 and looks_generated(value)


def test_long_values_with_two_classes():
    lower_digit = "kqzvwxjplmnbrtyhgfd7"           # two classes, a digit: enough
    lower_upper = "kqzvwxjplmnbrtyhgfdS"           # two classes, 4.32 bits >= 4.2: enough
    low_entropy_mixed = shaped([2] * 9 + [1] * 5, "abcdefghiJKLMN")  # 23 chars, mixed case, 3.7 bits
    mixed_high = shaped([2] * 6 + [1] * 12, "abcdefGHIJKLMNOPQR")    # 24 chars, mixed case, 3.92 bits
    assert looks_generated(lower_digit) and looks_generated(lower_upper)
    assert 3.5 <= shannon_entropy(low_entropy_mixed) < 3.8 and not looks_generated(low_entropy_mixed)
    assert 3.8 <= shannon_entropy(mixed_high) < 4.2 and looks_generated(mixed_high)
    one_class = "kqzvwxjplmnbrtyhgfdsa"
    assert not looks_generated(one_class)


def test_short_values_need_2_8_bits_two_classes_and_a_digit_or_a_third_class():
    assert looks_generated("abcdefg1") and looks_generated("ab!cDefg")     # a digit; a third class
    assert not looks_generated("abcdefgh") and not looks_generated("abc!defg")  # one class; two, no digit
    assert shannon_entropy("aabcdefg1") < 3.0 and looks_generated("aabcdefg1")
    assert shannon_entropy("aabbcdefg1") < 2.8 + 0.5 and looks_generated("aabbcdefg1")
    assert shannon_entropy("aabbccdd1") < 2.8 and not looks_generated("aabbccdd1")
    assert looks_generated("abcdefGH") and not looks_generated("abcdefgH")  # case mix: 2 of 8 is a quarter
    assert looks_generated("abcdefgHIj")                                    # 2 of 10: 10 // 4 is 2
    assert not looks_generated("aabbcCDD")                                  # mixed but under 3 bits


def test_values_exactly_on_an_entropy_line_pass_it():
    # every line is ">=": a value at exactly 3.5, 3.8 or 4.2 bits counts as above it. The
    # multiplicities make the entropy an exact binary fraction (3.5) or a sum whose float
    # rounding lands on the line itself, which the first assert of each case checks.
    three_classes = shaped([1] * 8 + [4] * 6, "aB3cD5eFgHiJkL")                             # 32 chars
    assert shannon_entropy(three_classes) == 3.5 and looks_generated(three_classes)
    lower_symbols = shaped([1] * 18 + [5] * 12 + [16, 16, 25, 25], "abcdefghijklmnopqrstuvwxyz!#$%&*+=")
    assert shannon_entropy(lower_symbols) == 4.2 and char_classes(lower_symbols) == 2  # 160 chars, no digit
    assert looks_generated(lower_symbols)
    just_under = shaped([1] * 18 + [5] * 12 + [16, 16, 24, 26], "abcdefghijklmnopqrstuvwxyz!#$%&*+=")
    assert 4.19 < shannon_entropy(just_under) < 4.2 and not looks_generated(just_under)
    mixed_case = shaped([1] * 28 + [2] * 11 + [5] * 4 + [40, 50],
                        "aBcDeFgHiJkLmNoPqRsTuVwXyZAbCdEfGhIjKlMnOpQrStUvWxYz")               # 160 letters
    assert shannon_entropy(mixed_case) == 3.8 and char_classes(mixed_case) == 2 and looks_generated(mixed_case)


def test_a_key_value_at_exactly_3_3_bits_passes():
    hex_key = shaped([1] * 5 + [4] + [5] * 6 + [8, 8] + [25], "0123456789abcdef")          # 80 hex digits
    assert shannon_entropy(hex_key) == 3.3 and looks_generated(hex_key, 16) and is_secret_value(hex_key, KEY)


# ------------------------------------------------------------------ value test by name class

@pytest.mark.parametrize("value,ok", [
    ("abcde", False), ("abcdef", True), ("abc1", True), ("ab1", False), ("a!b", False),
    ("two words1", True), ("three words here1", False), ("my-app-prod", False), ("Winter2024!", True),
    ("mynewpassword", False), ("topsecret", False), ("Mypassw0rd!", True), ("changeme", False),
])
def test_password_values(value, ok):
    assert is_secret_value(value, PASSWORD) is ok


def test_secret_and_key_values():
    assert is_secret_value("Xk29vLq7", SECRET) and not is_secret_value("Xk29vLq", SECRET)
    assert is_secret_value(TOKEN16, KEY) and not is_secret_value("Xk29vLq7Pw03Zr5", KEY)
    weak = shaped([3, 2, 2, 2, 2, 2, 2, 1], "gH1jK2mN")      # 16 chars, generated-looking, 2.95 bits
    assert looks_generated(weak, 16) and shannon_entropy(weak) < 3.3 and not is_secret_value(weak, KEY)
    assert not is_secret_value("${X}", SECRET) and not is_secret_value("${X}", KEY)


def test_is_uuid():
    assert is_uuid("3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47") and is_uuid(" 3F2B8C1E-9D4A-4E7B-8C2F-1A6D5E9B0C47 ")
    assert not is_uuid("3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c4") and not is_uuid("x3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47")
    assert not is_secret_value("3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47", SECRET)  # by value alone: an id


# ------------------------------------------------------------------ random tokens under neutral names

RANDOM20 = "Xk29vLq7Pw03Zr58Tq6M"


def test_random_token_length_bounds():
    assert is_random_token(RANDOM20) and not is_random_token(RANDOM20[:19])
    long_token = (RANDOM20 * 52)[:1024]
    assert is_random_token(long_token) and not is_random_token(long_token + "X")


@pytest.mark.parametrize("value", [
    "Xk29vLq7 Pw03Zr58Tq6M", "Xk29vLq7\tPw03Zr58Tq6M",               # whitespace
    "0123456789abcdef0123456789abcdef",                               # hex: commit ids, digests
    "https://Xk29vLq7Pw03Zr58Tq6M",                                    # a URL (a reason)
    "handleRequestForOrdersNowPlease",                                 # an identifier
    "kqzvwxjplmnbrtyhgfdsaKQZ9",                                      # 3 classes, one digit
    "kqzvwxjplmnbrtyhgfds12",                                         # 2 classes
])
def test_not_random_tokens(value):
    assert not is_random_token(value)


def test_random_token_at_exactly_four_bits_and_mixed_case_hex():
    exact = "0123456789ABCDef" * 2                       # 16 symbols twice: 4.0 bits exactly
    assert shannon_entropy(exact) == 4.0 and not is_random_token(exact)  # hex, even in mixed case
    exact_mixed = "0123456789ABCDgh" * 2
    assert shannon_entropy(exact_mixed) == 4.0 and is_random_token(exact_mixed)


def test_random_token_entropy_classes_and_digits():
    assert is_random_token("kqzvwxjplmnbrtyhgfdsaKQ92")                 # 3 classes, two digits
    assert is_random_token("kqzvwxjplmnbrtyhgfdsa-Q92")
    low = shaped([2] * 14, "abcdefghijkLM1")[:-1] + "2"                 # 28 chars, 15 symbols, ~3.8 bits
    assert shannon_entropy(low) < 4.0 and not is_random_token(low)


def test_rule_catalog_remediations():
    assert {r.remediation for r in R.RULES.values()} == {R.REMOVE_USE_ROLE, R.MOVE_TO_SECRETS_MANAGER}
    assert [r.id for r in R.RULES.values() if r.remediation == R.REMOVE_USE_ROLE] == [
        "aws-access-key-id", "aws-secret-access-key", "aws-session-token", "aws-bedrock-api-key"]
    assert all(t.rule in R.RULES for t in R.TOKEN_RULES)


def test_filler_runs_repeats_and_steps():
    assert R.has_filler_run("ab" + "q" * 6) and not R.has_filler_run("ab" + "q" * 5)
    assert R.has_filler_run("x-abcdef-y") and not R.has_filler_run("x-abcde-y")
    assert R.has_filler_run("k123456") and not R.has_filler_run("k12345z6")
    assert not R.has_filler_run("9abcde")                        # a digit then letters: no step
    assert R.has_filler_run("ABCdef") and not R.has_filler_run("ab!cdef")
    assert not R.has_filler_run("qqqqqqqq", repeats=False) and R.has_filler_run("abcdefghij", 10, repeats=False)


def test_alphabet_constants_are_not_keys():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    assert not R.is_secret_value(alphabet, R.KEY) and not R.is_secret_value(alphabet, R.SECRET)
    assert R.is_secret_value("ABCDEFGHI" + "Xk29vLq7Pw03Zr58", R.SECRET)      # nine steps: not an alphabet
    assert R.is_secret_value("abcdefghijkl7!", R.PASSWORD)                   # passwords are judged as passwords


def test_public_samples_by_hash():
    assert R.is_public_sample("AIzaSyabcdefghijklmnopqrstuvwxyz1234567")
    assert not R.is_public_sample("AIzaSyabcdefghijklmnopqrstuvwxyz1234568")


@pytest.mark.parametrize("value", ["ENC(Xk29vLq7Pw03Zr58==)", "ENC[AES256_GCM,data:Xk29vLq7,iv:abc]",
                                   "$ANSIBLE_VAULT;1.1;AES256"])
def test_encrypted_values_are_not_secrets(value):
    assert R.not_a_value_reason(value) == "encrypted"


def test_a_last_word_glued_to_here_is_a_placeholder():
    assert R.is_placeholder("xoxp-1-RANDOMSTRINGHERE") and R.is_placeholder("sk_live_YourKeyGoesHere")
    assert not R.is_placeholder("Somewhere7!x") and not R.is_placeholder("Xk29vLq7Pw03HERE")


def test_full_structures_match_the_whole_value_only():
    from runbook_lib.token_formats import FULL_STRUCTURES, has_full_structure
    body = "Xk29vLq7Pw03Zr58" * 5 + "Tq7vR2mLx9WbN"                      # 93 characters
    assert has_full_structure("anthropic-api-key", "sk-ant-api03-" + body + "AA")
    assert has_full_structure("anthropic-api-key", "sk-ant-admin01-" + body + "AA")
    assert not has_full_structure("anthropic-api-key", "sk-ant-api03-" + body + "AAx")     # fullmatch, not a prefix
    assert not has_full_structure("anthropic-api-key", "x" + "sk-ant-api03-" + body + "AA")
    assert not has_full_structure("anthropic-api-key", "sk-ant-api3-" + body + "AA")       # two version digits
    assert not has_full_structure("github-token", "ghp_" + body[:36])                      # no structure listed
    assert set(FULL_STRUCTURES) == {"anthropic-api-key", "azure-devops-pat"}


@pytest.mark.parametrize("value,reason", [
    ("secret", None), ("myPassword", None), ("specialbill_user", None), (" hunter2 ", None), ("abc", None),
    ("changeme-Xk29vLq7Pw03", None),                                 # a generated word beside the instruction
    ("", "empty"), ("xx", "empty"), ("abab", "empty"), ("pa****", "empty"), ("pw-xxxx", "empty"),
    ("${DB_PASSWORD}", "template"), ("#{datastore['DBPASSWORD']}", "template"), ("a#{pw}", "template"),
    ("%(password)s", "template"), ("<password>", "template"), ("{password}", "template"), ("x{0}y", "template"),
    ("$PW", "template"), ("%PW%", "template"), ("{pw9", "template"), ("<pw9", "template"),
    ("$pw!9", "template"), ("%pw!9", "template"), ("a#{datastore['x']}", "template"),   # by their first characters
    ("ssm:/app/db", "reference"), ("arn:aws:secretsmanager:us-east-1:1:secret:db", "reference"),
    ("password", "field-name"), ("PWD", "field-name"), ("api-key", "field-name"), ("Token", "field-name"),
    ("passwd", "field-name"), ("pass", "field-name"), ("pw", "empty"), ("apikey", "field-name"),
    ("api_key", "field-name"), ("key", "field-name"),
    ("insert-pw", "placeholder"), ("put_secret", "placeholder"), ("replace-pw", "placeholder"),
    ("add_pw", "placeholder"),
    ("your_password", "placeholder"), ("enter-pw", "placeholder"), ("password-here", "placeholder"),
    ("KeyGoesHere", "placeholder"), ("db-changeme-now", "placeholder"),
    ("pw" + "EXAMPLE", "placeholder"), ("pw...", "placeholder"), ("pw\u2026", "placeholder"),
    ("ENC(Xk29vLq7Pw03)", "encrypted"),
])
def test_literal_credential_reasons(value, reason):
    assert R.literal_credential_reason(value) == reason


@pytest.mark.parametrize("key,value,text,found", [
    ("Password", "secret", "Server=db;User Id=app;Password=secret;", True),
    ("pwd", "myPassword", "Provider=SQLNCLI;Uid=u;Pwd=myPassword;", True),
    ("PASSWD", "secret", "host=db; passwd=secret", True),
    ("Password", "secret", "Data Source=10.0.0.1,1433;Password=secret", True),
    ("Password", "secret", "Password=secret;", False),                          # no other member: not a connection string
    ("Password", "secret", "Server=db Password=secret", False),                  # a member not ended by ``;``
    ("Passphrase", "secret", "Server=db;Passphrase=secret;", False),             # not a password member
    ("Password", "{password}", "Server=db;Password={password};", False),         # a template
    ("Password", "password", "Server=db;Password=password;", False),             # the field's name
])
def test_connection_string_passwords(key, value, text, found):
    assert R.connection_string_password(key, value, text) is found


def test_public_sample_check_takes_any_text():
    assert R.is_public_sample("\udcff" * 39) is False          # an undecodable byte as the scanner reads it: no error


def test_samples_and_ciphertext_are_judged_alike_in_values_and_in_literal_credentials():
    from runbook_lib.rules import literal_credential_reason, not_a_value_reason, sample_or_ciphertext

    cases = {"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "placeholder", "Xk29...Lq7": "placeholder",
             "Xk29\u2026Lq7": "placeholder", "ENC(Xk29vLq7Pw03Zr58==)": "encrypted",
             "ENC[AES256_GCM,data:Xk29vLq7,iv:Pw03]": "encrypted", "Xk29vLq7Pw03Zr58!": None}
    for value, reason in cases.items():
        assert sample_or_ciphertext(value) == reason, value
        assert literal_credential_reason(value) == reason, value
        assert not_a_value_reason(value) == reason, value
