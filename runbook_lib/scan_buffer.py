"""From prefilter hits in one buffer to candidates: the lines decoded, the hits confirmed.

:class:`BufferScan` takes the sorted hits of :meth:`~runbook_lib.scan_prefilter.Prefilter.hits`
over a whole file and decodes only the lines they fall on (around the hit on very long
lines). Each hit is confirmed by its family: a token format by its confirm expression and
:func:`~runbook_lib.scan_lines.token_ok`; a keyword assignment by one anchored match at
each secret-named name just before the hit; a PEM header by its block having a body; an
AWS access key id also looks for its secret key a few lines around it.
:func:`select_candidates` keeps one candidate per value per line, the most specific rule.

Examples
--------
>>> from runbook_lib.scan_prefilter import shared_prefilter
>>> data = b'password = "Xk29vLq7Pw03Zr58"\\n'
>>> scan = BufferScan(data, config=False)
>>> scan.run(shared_prefilter().hits(data, False), shared_prefilter().families)
>>> [(c.offset, c.rule) for c in select_candidates(scan.candidates)]
[(0, 'keyword-assignment')]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import rules as R
from .keyword_prefilters import LITERAL_LOOKAHEAD
from .lazy_regex import LazyPattern
from .scan_lines import (call_candidates, classify, cli_candidates, define_or_sql_candidates, jwk_private_ok,
                         keyword_candidates, literal_value, token_ok, xml_candidates)
from .scan_prefilter import (FAMILY_ASSIGN, FAMILY_CALL, FAMILY_CLI, FAMILY_DEFINE, FAMILY_KEYWORD, FAMILY_TOKEN,
                             FAMILY_XML_BLOCK)

#: Line confirmation per prefilter family (token formats and assignments have their own paths).
LINE_CONFIRM = {FAMILY_CALL: call_candidates, FAMILY_DEFINE: define_or_sql_candidates,
                FAMILY_CLI: cli_candidates}

#: Lines longer than this (minified files) are decoded around the hit only.
LONG_LINE = 4096
#: How far before a keyword hit's literal the secret-named names are looked for (the hit itself
#: ends up to :data:`~runbook_lib.keyword_prefilters.LITERAL_LOOKAHEAD` bytes into the literal).
NAME_WINDOW = 200
#: How far past the name an assignment is matched (a value is at most 1024 characters).
ASSIGNMENT_SPAN = 2048
#: Assignment windows up to this many bytes to the end of their line are remembered when they confirm
#: nothing (generated JSON repeats ``"input_token": "NextToken",`` thousands of times), this many at most.
MEMO_SPAN, MEMO_ENTRIES = 256, 4096
#: How many lines above and below an access key id its secret key is looked for.
AWS_SECRET_LINES = 4
#: How far from a member its object's braces are looked for (a 4096-bit RSA JWK is about 3.2 KB).
JSON_OBJECT_SPAN = 8192
#: Lower wins when two rules match one value: token formats first, keyword rules last.
#: Every rule a candidate can carry is here (a missing one is a KeyError, not a guess).
RULE_PRIORITY = {t.rule: i for i, t in enumerate(R.TOKEN_RULES)}
RULE_PRIORITY.update({"aws-secret-access-key": 1, "cli-credential": 85, "keyword-assignment": 90,
                      "high-entropy-env-value": 95})
_AWS_SECRET_NEAR = LazyPattern(r"""(?:["'`]|[=:]\s*)(?P<v>[A-Za-z0-9/+]{40})(?:["'`]|\s*$)""")
_B64_BODY = LazyPattern(rb"[A-Za-z0-9+/=]{16,}")
_NAME_TOKEN = re.compile(rb"[A-Za-z_$@][\w.$@-]*")
_PEM_BEGIN = LazyPattern(rb"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = LazyPattern(rb"-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
#: A PEM block needs this many base64 characters of body to be a key, not a bare header.
PEM_MIN_BODY = 64
#: A PEM block is looked for this far from its BEGIN line; without an END line in that
#: span, this much body after the header stands for the key.
PEM_MAX_BLOCK, PEM_NO_END_BODY = 16384, 4096


@functools.lru_cache(maxsize=None)
def confirm_pattern(token_rule: R.TokenRule) -> re.Pattern:
    """A token format's confirm expression, compiled the first time one of its hits is confirmed."""
    return re.compile(token_rule.confirm)


@functools.lru_cache(maxsize=None)
def confirm_bytes_pattern(token_rule: R.TokenRule) -> re.Pattern:
    """The same over bytes, for members of a JSON object (matched in the buffer, the object around them read)."""
    return re.compile(token_rule.confirm.encode())


def decode(raw: bytes) -> str:
    """Text of a slice of the buffer; bytes that are not UTF-8 become U+FFFD, never an error."""
    return raw.decode("utf-8", "replace")


@dataclass
class Candidate:
    """A confirmed value on a line, before it becomes a :class:`~runbook_lib.scan_results.Finding`."""

    offset: int  # byte offset of the line start in the buffer (0 for env values)
    rule: str
    value: str
    line_text: str


class BufferScan:
    """Confirmation of prefilter hits in one buffer; results in :attr:`candidates`."""

    def __init__(self, data: bytes, config: bool, nothing_at: set | None = None):
        self.data = data
        self.config = config
        self.candidates: list[Candidate] = []
        #: Assignment windows that confirmed nothing (:meth:`memo_key`); a scanner shares one across buffers.
        self.nothing_at = set() if nothing_at is None else nothing_at

    def line_bounds(self, end: int) -> tuple[int, int]:
        """(start, stop) of the line holding byte ``end``; ``stop`` at its newline or the end."""
        data = self.data
        start = data.rfind(b"\n", 0, end) + 1
        stop = data.find(b"\n", end)
        if stop < 0:
            stop = len(data)
        return start, stop

    def line_text(self, start: int, stop: int, end: int) -> str:
        """The decoded line, or on a very long line the :data:`LONG_LINE` bytes around ``end``."""
        if stop - start > LONG_LINE:  # minified files: look around the hit, not the whole line
            lo, hi = max(start, end - LONG_LINE // 2), min(stop, end + LONG_LINE // 2)
            return decode(self.data[lo:hi])
        return decode(self.data[start:stop])

    def run(self, hits: list[tuple[int, int, int]], families) -> None:
        """Confirm each hit once per line and family (per rule for token formats)."""
        seen: set[tuple[int, object]] = set()
        for end, pattern_id, _ in hits:
            family, token_rule = families[pattern_id]
            start, stop = self.line_bounds(end - 1)  # a hit is never empty: end >= 1
            if family == FAMILY_ASSIGN:
                self.confirm_assignment(start, stop, end, seen)
                continue
            key = (start, family if family != FAMILY_TOKEN else token_rule)
            if key in seen:
                continue
            seen.add(key)
            text = self.line_text(start, stop, end)
            if family == FAMILY_TOKEN:
                self.confirm_token(token_rule, text, start, stop)
                continue
            if family == FAMILY_XML_BLOCK:
                found = self.xml_block(start, stop, text)
            elif family == FAMILY_KEYWORD:
                found = keyword_candidates(text, self.config)
            elif family in LINE_CONFIRM:
                found = LINE_CONFIRM[family](text)
            else:
                found = xml_candidates(text)
            self.candidates.extend(Candidate(start, rule, value, text) for rule, value in found)

    def confirm_assignment(self, start: int, stop: int, end: int, seen: set) -> None:
        """Anchored matches at the secret-named names just before the hit (no scan of the whole line)."""
        data = self.data
        window_start = max(start, end - NAME_WINDOW - LITERAL_LOOKAHEAD)
        memo_key = self.memo_key(start, stop, end, window_start)
        if memo_key in self.nothing_at:
            return
        found_before, skipped = len(self.candidates), False
        for name_match in _NAME_TOKEN.finditer(data, window_start, end):
            if R.key_class(decode(name_match.group())) is None:
                continue
            key_start = name_match.start()
            if key_start > start and data[key_start - 1] in b":/=\\":
                continue  # inside a value (an ARN, a URL, a path), not a name
            if (key_start, FAMILY_ASSIGN) in seen:
                skipped = True  # judged for an earlier hit: what this window holds is not all known here
                continue
            seen.add((key_start, FAMILY_ASSIGN))
            quoted = key_start > start and data[key_start - 1] in b"\"'`"
            # a quoted name (``"password": …``), else the name alone (``"TOKEN=v\n…"`` inside a string)
            inside = quoted and data[name_match.end():name_match.end() + 1] == b"="  # ``"TOKEN=v…``: no closing quote
            for begin in ((key_start - 1, key_start) if inside else (key_start - quoted,)):
                if self.match_assignment(decode(data[begin:min(stop, begin + ASSIGNMENT_SPAN)]), start, stop, end):
                    break
        if memo_key is not None and not skipped and len(self.candidates) == found_before:
            if len(self.nothing_at) >= MEMO_ENTRIES:
                self.nothing_at.clear()
            self.nothing_at.add(memo_key)

    def memo_key(self, start: int, stop: int, end: int, window_start: int) -> tuple | None:
        """Everything :meth:`confirm_assignment` reads for a hit ending at ``end``, for a short rest of line.

        The names are looked for in ``[window_start, end)``, a name's first byte is judged by the
        byte before it (so that byte is part of the key, when the window does not start the line),
        and an assignment reads at most to the end of the line. Nothing else is read: the same
        key confirms the same, in any file.
        """
        if stop - window_start > MEMO_SPAN:
            return None
        before = window_start > start
        return self.config, before, end - window_start, self.data[window_start - before:stop]

    def xml_block(self, start: int, stop: int, text: str) -> list[tuple[str, str]]:
        """``<password>`` / value / ``</password>`` on three lines: the value's line is ``text``."""
        data = self.data
        above = data.rfind(b"\n", 0, max(start - 1, 0)) + 1 if start else start
        below_end = data.find(b"\n", stop + 1)
        opening = R.XML_OPEN_LINE.match(decode(data[above:max(start - 1, above)]))
        value = R.XML_VALUE_LINE.match(text)
        closing = decode(data[stop + 1: below_end if below_end >= 0 else len(data)]).strip()
        if not (start and opening and value and closing == f"</{opening.group('key')}>"):
            return []
        rule = classify(opening.group("key"), value.group("v"))
        return [(rule, value.group("v"))] if rule else []

    def match_assignment(self, text: str, start: int, stop: int, end: int) -> bool:
        """The first assignment form that matches at the start of ``text`` with a real value."""
        regexes = (R.ASSIGN_QUOTED, R.ASSIGN_PAIR, R.ASSIGN_UNQUOTED) if self.config else (R.ASSIGN_QUOTED, R.ASSIGN_PAIR)
        for regex in regexes:
            m = regex.match(text)
            if not m:
                continue
            value = m.group("v") if regex is R.ASSIGN_UNQUOTED else literal_value(m)
            if value is None:
                continue
            rule = classify(m.group("key"), value)
            if rule:
                self.candidates.append(Candidate(start, rule, value, self.line_text(start, stop, end)))
                return True
        return False

    def confirm_token(self, token_rule: R.TokenRule, text: str, start: int, stop: int) -> None:
        """Each confirmed match of a token format on the line (a PEM header: its whole block)."""
        rule = token_rule.rule
        if token_rule.block:
            value = self.private_key_block(start)
            if value:
                self.candidates.append(Candidate(start, rule, value, text))
            return
        if token_rule.json_member:
            self.json_members(token_rule, text, start, stop)
            return
        for m in confirm_pattern(token_rule).finditer(text):
            value = m.group("v") if m.group("v") is not None else m.group("s")
            if not token_ok(rule, value, text, m.start("v")):
                continue
            self.candidates.append(Candidate(start, rule, value, text))
            if rule == "aws-access-key-id":
                self.aws_secret_near(start, stop)

    def json_members(self, token_rule: R.TokenRule, text: str, start: int, stop: int) -> None:
        """Each member on the line whose JSON object (its nearest braces) confirms it: a JWK's ``d``."""
        data = self.data
        for m in confirm_bytes_pattern(token_rule).finditer(data, start, stop):
            opening = data.rfind(b"{", max(0, m.start() - JSON_OBJECT_SPAN), m.start())
            closing = data.find(b"}", m.end(), m.end() + JSON_OBJECT_SPAN)
            if opening < 0 or closing < 0:
                continue
            member, value = decode(m.group("m")), decode(m.group("v"))
            if jwk_private_ok(member, value, decode(data[opening:closing])):  # the members, braces aside
                self.candidates.append(Candidate(start, token_rule.rule, value, text))

    def private_key_block(self, start: int) -> str | None:
        """The whole PEM block from the BEGIN line, if it has a real body (not just a header)."""
        chunk = self.data[start:start + PEM_MAX_BLOCK]
        head = _PEM_BEGIN.search(chunk)
        if not head:
            return None
        end = _PEM_END.search(chunk[head.end():])
        body = chunk[head.end(): head.end() + end.start()] if end else chunk[head.end(): head.end() + PEM_NO_END_BODY]
        body = body.replace(b"\\n", b"\n").replace(b"\\r", b"")
        body_chars = sum(len(run) for run in _B64_BODY.findall(body))
        if body_chars < PEM_MIN_BODY:
            return None
        block = chunk[head.start(): head.end() + (end.end() if end else len(body))]
        return decode(block)

    def aws_secret_near(self, start: int, stop: int) -> None:
        """A 40-character secret key within a few lines of an access key id, whatever its name."""
        data = self.data
        lo = start
        for _ in range(AWS_SECRET_LINES):  # the start of the line above, four times (0 stays 0)
            lo = data.rfind(b"\n", 0, max(lo - 1, 0)) + 1
        hi = stop
        for _ in range(AWS_SECRET_LINES):  # the end of the line below, four times
            nxt = data.find(b"\n", hi + 1)
            hi = len(data) if nxt == -1 else nxt
        pos = lo
        for raw in data[lo:hi].split(b"\n"):
            text = decode(raw)
            for m in _AWS_SECRET_NEAR.finditer(text):
                value = m.group("v")
                if R.char_classes(value) >= 3 and R.shannon_entropy(value) >= 4.0:
                    self.candidates.append(Candidate(pos, "aws-secret-access-key", value, text))
            pos += len(raw) + 1


def select_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per value per line, the most specific rule winning."""
    by_line: dict[int, list[Candidate]] = {}
    for c in candidates:
        by_line.setdefault(c.offset, []).append(c)
    chosen: list[Candidate] = []
    for offset in sorted(by_line):
        kept: list[Candidate] = []
        for c in sorted(by_line[offset], key=lambda c: RULE_PRIORITY[c.rule]):
            if any(c.value in k.value or k.value in c.value for k in kept):
                continue
            kept.append(c)
        chosen.extend(kept)
    return chosen
