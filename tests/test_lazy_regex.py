"""Tests of :mod:`runbook_lib.lazy_regex` and of what the scanner leaves to compile on first use."""

import re
import subprocess
import sys

from runbook_lib.lazy_regex import LazyPattern


def test_a_lazy_pattern_compiles_once_on_first_use_and_answers_as_the_pattern():
    digits = LazyPattern(rb"(?P<n>\d+)", re.ASCII)
    assert not digits.is_compiled and "compiled" not in repr(digits)
    assert [m.group("n") for m in digits.finditer(b"a1b22")] == [b"1", b"22"]
    compiled = digits.compiled
    assert digits.is_compiled and compiled is digits.compiled and compiled.flags & re.ASCII
    assert digits.groupindex == {"n": 1} and digits.match(b"x") is None and "compiled" in repr(digits)
    assert LazyPattern("a", re.IGNORECASE).fullmatch("A")
    plain = LazyPattern("a")
    assert plain.flags == 0 and plain.compiled.flags == re.compile("a").flags and plain.fullmatch("A") is None
    assert repr(LazyPattern(r"\d")) == "LazyPattern('\\\\d')"
    assert repr(digits) == "LazyPattern(b'(?P<n>\\\\d+)', compiled)"


def test_a_scan_start_compiles_no_token_confirmation_nor_rare_form_until_a_hit_needs_it():
    probe = (
        "from runbook_lib import rules as R, scan_buffer as B\n"
        "from runbook_lib.scanning import Scanner\n"
        "lazy = [R.DEFINE_OR_SQL, R.CLI_CREDENTIAL, R.LOGIN_CALL, R.ASSIGN_XML, B._PEM_BEGIN, B._AWS_SECRET_NEAR]\n"
        "assert B.confirm_pattern.cache_info().currsize == 0 and not any(p.is_compiled for p in lazy)\n"
        "Scanner().scan_text('token = \"x\"\\n', 'a.py')\n"
        "assert B.confirm_pattern.cache_info().currsize == 0 and not any(p.is_compiled for p in lazy)\n"
        "found = Scanner().scan_text('k = \"' + 'AKIA' + 'QX7Z2MWB4HNPLK3D\"\\n', 'a.py')\n"
        "assert [f.rule for f in found] == ['aws-access-key-id'], found\n"
        "assert B.confirm_pattern.cache_info().currsize == 1 and B._AWS_SECRET_NEAR.is_compiled\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
