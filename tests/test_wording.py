"""Counts in words (runbook_lib.wording)."""

import pytest

from runbook_lib.wording import counted, plural


@pytest.mark.parametrize("noun, expected", [("function", "functions"), ("policy", "policies"), ("key", "keys"),
                                            ("address", "addresses"), ("box", "boxes"), ("match", "matches")])
def test_plural(noun, expected):
    assert plural(noun) == expected


@pytest.mark.parametrize("n, expected", [(0, "0 secrets"), (1, "1 secret"), (2, "2 secrets")])
def test_counted(n, expected):
    assert counted(n, "secret") == expected


def test_counted_takes_an_irregular_plural():
    assert counted(2, "child", "children") == "2 children"
    assert counted(1, "child", "children") == "1 child"
