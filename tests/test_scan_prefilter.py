"""Tests of the compiled prefilter: both engines, both databases, one per process."""

import sys
import threading
from pathlib import Path

import pytest

from runbook_lib import rules as R
from runbook_lib.scan_buffer import BufferScan, select_candidates
from runbook_lib.scan_prefilter import (FAMILY_ASSIGN, FAMILY_CALL, FAMILY_CLI, FAMILY_DEFINE, FAMILY_KEYWORD, FAMILY_TOKEN,
                                        FAMILY_XML, FAMILY_XML_BLOCK, Prefilter,
                                        engine_name, shared_prefilter)

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
import corpus  # noqa: E402



# built in each test, not at import: a prefilter made once would hide changes to how it is built
def re_engine() -> Prefilter:
    return Prefilter(use_hyperscan=False)


def hyperscan_engine() -> Prefilter:
    return Prefilter(use_hyperscan=True)


ENGINES = pytest.mark.parametrize("make", [hyperscan_engine, re_engine], ids=["hyperscan", "re"])


def test_one_shared_hyperscan_prefilter():
    assert shared_prefilter() is shared_prefilter()
    assert engine_name() == "hyperscan" == shared_prefilter().engine
    assert re_engine().engine == "re" and hyperscan_engine().engine == "hyperscan" and Prefilter().engine == "hyperscan"


@ENGINES
def test_a_pattern_per_token_rule_then_the_keyword_families(make):
    families = make().families
    assert [f for f, _ in families[:len(R.TOKEN_RULES)]] == [FAMILY_TOKEN] * len(R.TOKEN_RULES)
    assert [rule.rule for _, rule in families[:len(R.TOKEN_RULES)]] == [t.rule for t in R.TOKEN_RULES]
    assert [f for f, _ in families[len(R.TOKEN_RULES):]] == [FAMILY_ASSIGN, FAMILY_ASSIGN, FAMILY_XML,
                                                            FAMILY_KEYWORD, FAMILY_CALL, FAMILY_DEFINE,
                                                            FAMILY_CLI, FAMILY_XML_BLOCK]


@ENGINES
def test_unquoted_assignments_only_in_the_configuration_database(make):
    prefilter = make()
    line = b"DB_PASSWORD=Tq7vR2mLx9\n"
    unquoted = len(R.TOKEN_RULES) + 1
    assert unquoted in {pattern for _, pattern, _ in prefilter.hits(line, config=True)}
    assert unquoted not in {pattern for _, pattern, _ in prefilter.hits(line, config=False)}


@ENGINES
def test_hits_are_sorted_by_end_and_caseless_where_the_rule_says(make):
    prefilter = make()
    data = b'x = 1\nAUTHORIZATION: BEARER abcdefghijklmnop1234\nkey = "' + b"AKIA" + b"QX7Z2MWB4HNPLK3D" + b'"\n'
    hits = prefilter.hits(data, config=False)
    assert hits == sorted(hits) and hits
    rules = {prefilter.families[p][1].rule for _, p, _ in hits if prefilter.families[p][0] == FAMILY_TOKEN}
    assert {"authorization-header", "aws-access-key-id"} <= rules
    assert "aws-access-key-id" not in {prefilter.families[p][1].rule for _, p, _ in prefilter.hits(
        data.replace(b"AKIA", b"akia"), config=False) if prefilter.families[p][0] == FAMILY_TOKEN}


def _confirmed(prefilter, data: bytes, config: bool):
    scan = BufferScan(data, config)
    scan.run(prefilter.hits(data, config), prefilter.families)
    return [(c.offset, c.rule, c.value) for c in select_candidates(scan.candidates)]


def test_the_re_fallback_confirms_the_same_candidates_on_the_corpus():
    fallback, compiled, compared = re_engine(), hyperscan_engine(), 0
    for labelled in corpus.load_files():
        data = labelled.text.encode()
        config = not labelled.rel.endswith((".py", ".js", ".ts", ".java"))
        expected = _confirmed(compiled, data, config)
        assert _confirmed(fallback, data, config) == expected, labelled.rel
        compared += len(expected)
    assert compared >= 70  # the corpus files hold 74 secrets: they were compared, not an empty list


def test_each_thread_gets_its_own_scratch_space():
    prefilter, data, errors, counts = Prefilter(), b'password = "Xk29vLq7Pw03Zr58"\n' * 200, [], []

    def work():
        try:
            counts.extend(len(prefilter.hits(data, config=c)) for c in (False, True) * 20)
        except Exception as exc:  # pragma: no cover - the failure under test
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(counts[0::2])) == 1 and counts[0] > 0


@ENGINES
def test_every_family_is_in_the_code_database_and_caseless(make):
    prefilter = make()
    first = len(R.TOKEN_RULES)
    lines = {first: b'PASSWORD = "Tq7vR2mLx9"', first + 2: b"<Password>Tq7vR2mLx9</Password>",
             first + 3: b'DSN = "SERVER=db;PASSWORD=Tq7vR2mLx9"', first + 4: b'FTP.LOGIN("deploy", "Tq7vR2mLx9")'}
    for pattern, line in lines.items():
        assert pattern in {p for _, p, _ in prefilter.hits(line, config=False)}, line
        assert pattern in {p for _, p, _ in prefilter.hits(line, config=True)}, line


def test_the_shared_prefilter_is_built_on_first_use(monkeypatch):
    from runbook_lib import scan_prefilter

    monkeypatch.setattr(scan_prefilter, "_SHARED", None)
    first = shared_prefilter()
    assert isinstance(first, Prefilter) and shared_prefilter() is first


def test_a_thread_keeps_its_scratch_spaces():
    prefilter = hyperscan_engine()
    code, config = prefilter._scratch(False), prefilter._scratch(True)  # noqa: SLF001 - reuse is the point
    assert prefilter._scratch(False) is code and prefilter._scratch(True) is config and code is not config
