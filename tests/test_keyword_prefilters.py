"""Tests of the keyword prefilters: what they no longer send to Python, and that no assignment is lost."""

import random
import re
import string

import pytest

from runbook_lib import keyword_prefilters as K
from runbook_lib import rules as R
from runbook_lib.scan_buffer import BufferScan, select_candidates
from runbook_lib.scan_lines import classify
from runbook_lib.scan_prefilter import FAMILY_ASSIGN, Prefilter, shared_prefilter
from runbook_lib.scanning import Scanner
from runbook_lib.secret_names import KEY_QUALIFIERS, key_class

QUOTED = re.compile(K.KEYWORD_QUOTED_PREFILTER.encode(), re.IGNORECASE)
UNQUOTED = re.compile(K.KEYWORD_UNQUOTED_PREFILTER.encode(), re.IGNORECASE)
#: Real-looking values of exactly each class's shortest length (generated for these tests).
PASSWORD_4, SECRET_8, KEY_16 = "Xk2!", "Xk29vLq7", "Xk29vLq7Pw03Zr58"


def quoted_hit(line: str) -> bool:
    return QUOTED.search(line.encode()) is not None


def found(text: str, path: str = "app.py") -> list[tuple[str, str]]:
    return [(f.rule, f.redacted) for f in Scanner().scan_text(text, path)]


@pytest.mark.parametrize("name, value", [("pw", PASSWORD_4), ("DB_PASSWORD", PASSWORD_4), ("api_key", SECRET_8),
                                         ("authToken", SECRET_8), ("session_key", SECRET_8), ("sessionKey", SECRET_8),
                                         ("app__key", SECRET_8), ("key", KEY_16), ("KEY_1", KEY_16),
                                         ("_key", KEY_16), ("$key", KEY_16)])
def test_a_value_of_its_class_shortest_length_is_hit_and_reported_one_shorter_is_not_hit(name, value):
    line = f'{name} = "{value}"\n'
    assert quoted_hit(line) and [rule for rule, _ in found(line)] == ["keyword-assignment"]
    assert classify(name, value) == "keyword-assignment"
    assert not quoted_hit(f'{name} = "{value[:-1]}"\n')
    assert UNQUOTED.search(f"{name}={value}\n".encode()) and not UNQUOTED.search(f"{name}={value[:-1]}\n".encode())


@pytest.mark.parametrize("line", ['      "limit_key": "MaxResults",', '      "result_key": "Items"',
                                  '{ "target": "Key", "source": "requestParameters" }', 'data.key = "Xk29vLq7Pw03Zr58"',
                                  'myKey = "Xk29vLq7Pw03Zr58"', '"Key": "source"', 'token = "Xk29vLq"',
                                  'password = "ab"'])
def test_what_no_class_of_name_can_report_is_not_hit(line):
    assert not quoted_hit(line + "\n")
    assert found(line + "\n") == []


def test_a_qualified_key_and_a_bare_key_beside_the_names_they_are_not():
    text = (f'"session_key": "{SECRET_8}",\n"limit_key": "{KEY_16}Zq",\n'
            f'"key": "{KEY_16}",\n"key": "requestParam",\n')
    assert [line for line, _ in enumerate(text.splitlines()) if quoted_hit(text.splitlines()[line])] == [0, 2]
    assert [f.line for f in Scanner().scan_text(text, "x.json")] == [1, 3]


def test_an_escaped_quote_in_a_short_literal_is_hit_as_it_stands():
    assert quoted_hit('password = "\\"abc"') and quoted_hit('token = "ab\\"cdefgh"')
    assert [rule for rule, _ in found('password = "\\"b9!x"\n')] == ["keyword-assignment"]
    assert quoted_hit("token = 'Xk29\\'vLq'") and not quoted_hit("token = 'Xk29vLq'")


def test_backtick_literals_and_a_backtick_first_in_quotes():
    assert quoted_hit(f"api_key = `{SECRET_8}`") and not quoted_hit(f"api_key = `{SECRET_8[:-1]}`")
    assert quoted_hit(f'api_key = "`{SECRET_8}"') and not quoted_hit('api_key = " Xk29vLq7"')


def test_no_shorter_value_passes_the_value_test_of_its_class():
    rng = random.Random(19)
    alphabet = string.ascii_letters + string.digits + "!#%+/=_-"
    for strength, shortest in R.MIN_VALUE_LENGTH.items():
        for _ in range(3000):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, shortest - 1)))
            assert not R.is_secret_value(value, strength), (strength, len(value))
    assert R.is_secret_value(PASSWORD_4, R.PASSWORD) and R.is_secret_value(SECRET_8, R.SECRET)
    assert R.is_secret_value(KEY_16, R.KEY)


def test_every_qualifier_of_a_secret_key_is_in_the_prefilter():
    for qualifier in sorted(KEY_QUALIFIERS):
        name = f"{qualifier}Key"
        assert key_class(name) == R.SECRET and quoted_hit(f'{name} = "{SECRET_8}"'), qualifier
        assert key_class(f"{qualifier}_id_key") is None and not quoted_hit(f'{qualifier}_id_key = "{SECRET_8}"')


NAMES = ["password", "pw", "DB_PASS", "api_key", "apiKey", "session_key", "x_app_key", "key", "KEY", "_key", "Key_2",
         "limit_key", "result_key", "output_token", "next_token", "authToken", "client_secret", "secretKey", "creds",
         "token", "my.private-key", "data.key", "TagKey", "KeyId", "hmac..key"]
FORMS = ['{n} = "{v}"', '"{n}": "{v}",', "'{n}': '{v}'", '{n}: "{v}"', '"{n}", "{v}"', "{n}={v}", "{n}: {v}",
         'const {n} = `{v}`;', '{n} := "{v}"', 'x = {{"{n}": "{v}", "other": "{v}"}}']


def random_values(rng: random.Random, count: int) -> list[str]:
    classes = [string.ascii_lowercase, string.ascii_letters, string.ascii_letters + string.digits,
               string.ascii_letters + string.digits + "!#%+/=_-"]
    return ["".join(rng.choice(rng.choice(classes)) for _ in range(rng.randint(1, 24))) for _ in range(count)]


@pytest.mark.parametrize("config", [False, True], ids=["code", "config"])
def test_the_prefilter_hits_every_assignment_that_confirmation_would_report(config):
    """The oracle judges every name on each line (an assignment hit at the line's end); the real
    prefilter's assignment hits must give exactly the same candidates."""
    rng = random.Random(20261201 + config)
    prefilter = shared_prefilter()
    reported = 0
    for value in random_values(rng, 400):
        for name in NAMES:
            line = rng.choice(FORMS).format(n=name, v=value)
            data = line.encode() + b"\n"
            oracle = BufferScan(data, config)
            oracle.confirm_assignment(0, len(data) - 1, len(data) - 1, set())
            real = BufferScan(data, config)
            hits = [h for h in prefilter.hits(data, config) if prefilter.families[h[1]][0] == FAMILY_ASSIGN]
            real.run(hits, prefilter.families)
            expected = {(c.rule, c.value) for c in select_candidates(oracle.candidates)}
            assert {(c.rule, c.value) for c in select_candidates(real.candidates)} == expected, line
            reported += bool(expected)
    assert reported > 300  # the lines hold real assignments too, not only rejections


def test_the_re_fallback_compiles_the_same_prefilters():
    engine = Prefilter(use_hyperscan=False)
    lines = [f'api_key = "{SECRET_8}"', '"limit_key": "MaxResults"', f'key = "{KEY_16}"', f'key = "{SECRET_8}"',
             f"pw={PASSWORD_4}", "pw=Xk2"]

    def assign_hit(prefilter, line, config):
        return any(prefilter.families[p][0] == FAMILY_ASSIGN for _, p, _ in prefilter.hits(line.encode(), config))

    for config in (False, True):
        assert [assign_hit(engine, line, config) for line in lines] \
            == [assign_hit(shared_prefilter(), line, config) for line in lines] \
            == [True, False, True, False, config, False]
    assert K.LITERAL_LOOKAHEAD == max(R.MIN_VALUE_LENGTH.values()) + 2


@pytest.mark.parametrize("length", [4, 5, 9])
def test_a_literal_expression_for_each_length(length):
    literal = re.compile(K.quoted_literal(length))
    value = "Xk29vLq7Pw03Zr58"[:length]
    for quote in "\"'`":
        assert literal.fullmatch(f"{quote}{value}"), (quote, length)
        assert not literal.match(f"{quote}{value[:-1]}{quote}"), (quote, length)
        assert not literal.match(f"{quote} {value}") and not literal.match(f"{quote}{value[:-1]}\n")
        assert literal.fullmatch(f"{quote}\\{quote}") and literal.fullmatch(f"{quote}a\\{quote}")
        # an escaped quote ends the count only before the literal is long enough
        assert literal.fullmatch(f"{quote}X{'a' * (length - 2)}\\{quote}")
        assert not literal.fullmatch(f"{quote}X{'a' * length}\\{quote}")
    assert literal.fullmatch(f'"`{value[:-1]}') and literal.fullmatch(f"'`{value[:-1]}")
    assert not literal.match(f"``{value}") and not literal.match(f"\"'{value}") and not literal.match(f"'\"{value}")
    assert literal.fullmatch(f"\"{value[0]}'{value[2:]}")  # the other quotes inside the literal count
    unquoted = re.compile(K.unquoted_value(length))
    assert unquoted.fullmatch(value) and not unquoted.match(value[:-1] + ";")
    for first in "\"'`{[(|> ":
        assert not unquoted.match(first + value)
    assert unquoted.fullmatch("a" + "\\" * (length - 1)) and not unquoted.match("a" * (length - 1) + ",")
