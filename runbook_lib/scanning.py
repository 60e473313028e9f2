"""Find secrets in environment variables, files, directories and zip archives.

The engine never lets a value out: a :class:`Finding` holds a location, a rule, a
redacted preview (:func:`~runbook_lib.redaction.redact`) and a keyed fingerprint
(:class:`~runbook_lib.redaction.Fingerprinter`), and nothing from which the value could
be read back. Exceptions and skip reasons name paths and sizes, never content.

How a buffer is scanned: one multi-pattern database (Hyperscan, block mode) holds the
prefilter of every rule (:mod:`runbook_lib.rules`) and runs once over the whole file;
only the lines where it reports a hit are decoded and confirmed in Python. Without
Hyperscan the same prefilters run one by one with :mod:`re` (correct, several times slower).

Examples
--------
>>> scanner = Scanner()
>>> [f.rule for f in scanner.scan_text('DB_PASSWORD = "pa55-w0rd!x"\\n', "app.py")]
['keyword-assignment']
>>> scanner.scan_environment({"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x"})
[]
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from . import rules as R
from .allowlist import Allowlist, allowlist_entry, has_inline_marker
from .exceptions import InputError
from .redaction import Fingerprinter, redact


try:  # the compiled prefilter; the fallback is correct but slower
    import hyperscan
except ImportError:  # pragma: no cover - hyperscan is a dependency
    hyperscan = None

CODE_SUFFIXES = {".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts",
                 ".go", ".rb", ".php", ".cs", ".scala", ".groovy", ".swift", ".rs", ".c", ".cc",
                 ".cpp", ".h", ".hpp", ".m", ".dart", ".lua", ".pl", ".r", ".vue", ".svelte"}
ZIP_SUFFIXES = {".zip", ".jar", ".whl", ".war"}
SKIP_DIRS = {".git", ".hg", ".svn"}
_BINARY_SNIFF = 8192
_LONG_LINE = 4096


@dataclass(frozen=True)
class Finding:
    """One secret found: where, which rule, what to do; never the value.

    ``path`` + ``line`` locate a finding in a file (``archive.zip!member/path`` inside a
    zip); ``variable`` names an environment variable (``json_key`` the key path when the
    variable held JSON). ``redacted`` and ``fingerprint`` stand for the value.
    """

    rule: str
    title: str
    remediation: str
    redacted: str
    fingerprint: str
    path: str | None = None
    line: int | None = None
    variable: str | None = None
    json_key: str | None = None

    def to_dict(self) -> dict:
        """``path`` + ``line`` (code) or ``variable`` (+ ``json_key``), then rule and value stand-ins."""
        order = ("path", "line", "variable", "json_key", "rule", "title", "remediation", "redacted", "fingerprint")
        data = asdict(self)
        return {k: data[k] for k in order if data[k] is not None}

    @property
    def location(self) -> str:
        if self.variable is not None:
            return self.variable + (f" ({self.json_key})" if self.json_key else "")
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.title} [{self.rule}] {self.redacted} {self.fingerprint}"


@dataclass
class ScanReport:
    """Findings of a file/directory/zip scan, what was read, and what was skipped and why."""

    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0
    skipped: list[dict] = field(default_factory=list)
    allowlisted: int = 0

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def merge(self, other: "ScanReport") -> "ScanReport":
        self.findings.extend(other.findings)
        self.files_scanned += other.files_scanned
        self.bytes_scanned += other.bytes_scanned
        self.skipped.extend(other.skipped)
        self.allowlisted += other.allowlisted
        return self


@dataclass(frozen=True)
class ZipLimits:
    """Bounds for reading an archive in memory.

    Defaults fit a Lambda deployment package (250 MB unzipped, code plus layers) with
    headroom, and stop a zip bomb long before it fills memory.
    """

    max_members: int = 50_000
    max_total_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 200  # uncompressed/compressed above this, for members over 1 MB
    max_depth: int = 1  # zips inside the zip: scanned one level down


# ------------------------------------------------------------------ prefilter

_FAMILY_TOKEN, _FAMILY_KEYWORD, _FAMILY_XML, _FAMILY_CALL = "token", "keyword", "xml", "call"
_FAMILY_ASSIGN = "assign"  # keyword prefilters with a start offset: confirmed by one anchored match


class _Prefilter:
    """All rule prefilters in one compiled database; reports (end offset, pattern id)."""

    def __init__(self):
        self.families: list[tuple[str, object]] = []
        patterns: list[tuple[str, bool, bool]] = []  # expression, caseless, config-only
        for token_rule in R.TOKEN_RULES:
            self.families.append((_FAMILY_TOKEN, token_rule))
            patterns.append((token_rule.prefilter, token_rule.caseless, False))
        self.families.append((_FAMILY_ASSIGN, None))
        patterns.append((R.KEYWORD_QUOTED_PREFILTER, True, False))
        self.families.append((_FAMILY_ASSIGN, None))
        patterns.append((R.KEYWORD_UNQUOTED_PREFILTER, True, True))
        self.families.append((_FAMILY_XML, None))
        patterns.append((R.KEYWORD_XML_PREFILTER, True, False))
        self.families.append((_FAMILY_KEYWORD, None))
        patterns.append((R.KEYWORD_CONNSTR_PREFILTER, True, False))
        self.families.append((_FAMILY_CALL, None))
        patterns.append((R.CALL_PREFILTER, True, False))
        self.engine = "hyperscan" if hyperscan is not None else "re"
        self._dbs = {}
        self._prototypes = {}
        # a hyperscan scratch space serves one scan at a time: one per thread, cloned on demand
        self._local = threading.local()
        for config in (False, True):
            chosen = [(i, p) for i, p in enumerate(patterns) if config or not p[2]]
            if hyperscan is not None:
                db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                db.compile(expressions=[p[0].encode() for _, p in chosen], ids=[i for i, _ in chosen],
                           elements=len(chosen),
                           flags=[hyperscan.HS_FLAG_CASELESS if p[1] else 0 for _, p in chosen])
                self._dbs[config] = db
                self._prototypes[config] = hyperscan.Scratch(db)
            else:
                self._dbs[config] = [(i, re.compile(p[0].encode(), re.IGNORECASE if p[1] else 0))
                                     for i, p in chosen]

    def _scratch(self, config: bool):
        spaces = getattr(self._local, "spaces", None)
        if spaces is None:
            spaces = self._local.spaces = {}
        if config not in spaces:
            spaces[config] = self._prototypes[config].clone()
        return spaces[config]

    def hits(self, data: bytes, config: bool) -> list[tuple[int, int, int]]:
        """Sorted (end, pattern id, start); start is only meaningful with the ``re`` fallback."""
        found: list[tuple[int, int, int]] = []
        db = self._dbs[config]
        if hyperscan is not None:
            def on_match(pattern_id, start, end, flags, context):
                found.append((end, pattern_id, start))
            db.scan(data, match_event_handler=on_match, scratch=self._scratch(config))
        else:
            for pattern_id, regex in db:
                found.extend((m.end(), pattern_id, m.start()) for m in regex.finditer(data))
        found.sort()
        return found


_PREFILTER: _Prefilter | None = None


def _prefilter() -> _Prefilter:
    global _PREFILTER
    if _PREFILTER is None:
        _PREFILTER = _Prefilter()
    return _PREFILTER


def engine_name() -> str:
    """``"hyperscan"`` or ``"re"`` (the slower fallback)."""
    return _prefilter().engine


# ------------------------------------------------------------------ confirmation

_CONFIRM = {t.rule: re.compile(t.confirm) for t in R.TOKEN_RULES}
_PRIORITY = {t.rule: i for i, t in enumerate(R.TOKEN_RULES)}
_PRIORITY.update({"aws-secret-access-key": 1, "keyword-assignment": 90, "high-entropy-env-value": 95})
_AWS_SECRET_NEAR = re.compile(r"""(?:["'`]|[=:]\s*)(?P<v>[A-Za-z0-9/+]{40})(?:["'`]|\s*$)""")
_AWS_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9/+]{40}$")
_B64_BODY = re.compile(rb"[A-Za-z0-9+/=]{16,}")
_NAME_TOKEN = re.compile(rb"[A-Za-z_$@][\w.$@-]*")
_DATA_URI = re.compile(r"base64,[A-Za-z0-9+/=]*$")
_ESCAPES = {"\\n": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\\\": "\\"}


@dataclass
class _Candidate:
    offset: int  # byte offset of the line start in the buffer (0 for env values)
    rule: str
    value: str
    line_text: str


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r"\\[nt\"'\\]", lambda m: _ESCAPES[m.group(0)], value)


def _aws_rule_for_key(key: str, value: str) -> str | None:
    words = R.split_words(key)
    joined = "".join(words)
    if ("secretaccesskey" in joined or ("aws" in words and "secret" in joined)) and _AWS_SECRET_SHAPE.match(value):
        return "aws-secret-access-key"
    if ("sessiontoken" in joined or "securitytoken" in joined) and len(value) >= 100:
        return "aws-session-token"
    return None


def _keyword_candidates(line: str, config: bool) -> list[tuple[str, str]]:
    """(rule, value) for each secret-named assignment with a real literal on ``line``."""
    out: list[tuple[str, str]] = []
    for regex in (R.ASSIGN_QUOTED, R.ASSIGN_PAIR):
        for m in regex.finditer(line):
            op, key = m.group("op"), m.group("key")
            if (op == "," and not m.group("kq")) or (op == "(" and m.group("kq")):
                continue
            value = _unescape(m.group("v"))
            if "f" in m.group("pre").lower() and "{" in value:
                continue
            rule = _classify(key, value)
            if rule:
                out.append((rule, value))
            elif not config and "=" in value:  # a connection string inside a literal
                out.extend(_unquoted_candidates(value))
    if config:
        out.extend(_unquoted_candidates(line))
    return out


def _unquoted_candidates(text: str) -> list[tuple[str, str]]:
    out = []
    for m in R.ASSIGN_UNQUOTED.finditer(text):
        rule = _classify(m.group("key"), m.group("v"))
        if rule:
            out.append((rule, m.group("v")))
    return out


def _call_candidates(line: str) -> list[tuple[str, str]]:
    out = []
    for m in R.LOGIN_CALL.finditer(line):
        if R.is_secret_value(m.group("v"), R.PASSWORD):
            out.append(("keyword-assignment", m.group("v")))
    for m in R.SIGNING_CALL.finditer(line):
        for lit in R.QUOTED_LITERAL.finditer(m.group("args")):
            if R.is_secret_value(lit.group("v"), R.SECRET):
                out.append(("keyword-assignment", lit.group("v")))
    return out


def _classify(key: str, value: str) -> str | None:
    strength = R.key_class(key)
    if strength is None:
        return None
    value = value.strip()
    aws = _aws_rule_for_key(key, value)
    if aws:
        return aws
    if R.is_secret_value(value, strength):
        return "keyword-assignment"
    return None


def _token_ok(rule: str, value: str, line: str, start: int) -> bool:
    if R.is_placeholder(value) or "EXAMPLEKEY" in value.upper() and rule != "aws-access-key-id":
        return False
    if _DATA_URI.search(line[max(0, start - 2048):start]):
        return False  # inside a base64 data URI (an embedded image)
    if rule == "url-credentials":
        return not (R.is_placeholder(value) or R._REFERENCE_RE.search(value) or value.startswith(("$", "%", "{"))
                    or value.lower() in ("password", "pass", "passwd", "pwd", "secret", "token"))
    if rule in ("authorization-header", "url-query-credential"):
        return R.not_a_value_reason(value) is None and R.looks_generated(value, 16 if rule == "authorization-header" else 8)
    if rule == "jwt":
        import base64
        head = value.split(".", 1)[0]
        try:
            decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        except ValueError:
            return False
        return b'"alg"' in decoded or b'"typ"' in decoded
    return True


class _BufferScan:
    """Confirmation of prefilter hits in one buffer."""

    def __init__(self, data: bytes, config: bool):
        self.data = data
        self.config = config
        self.candidates: list[_Candidate] = []

    def line_bounds(self, end: int) -> tuple[int, int]:
        data = self.data
        start = data.rfind(b"\n", 0, end) + 1
        stop = data.find(b"\n", end)
        if stop < 0:
            stop = len(data)
        return start, stop

    def line_text(self, start: int, stop: int, end: int) -> tuple[str, int]:
        if stop - start > _LONG_LINE:  # minified files: look around the hit, not the whole line
            lo, hi = max(start, end - _LONG_LINE // 2), min(stop, end + _LONG_LINE // 2)
            return self.data[lo:hi].decode("utf-8", "replace"), lo
        return self.data[start:stop].decode("utf-8", "replace"), start

    def run(self, hits: list[tuple[int, int, int]], families) -> None:
        seen: set[tuple[int, object]] = set()
        for end, pattern_id, hit_start in hits:
            family, token_rule = families[pattern_id]
            start, stop = self.line_bounds(end - 1 if end else 0)
            if family == _FAMILY_ASSIGN:
                self.confirm_assignment(start, stop, hit_start, end, seen)
                continue
            key = (start, family if family != _FAMILY_TOKEN else token_rule.rule)
            if key in seen:
                continue
            seen.add(key)
            text, _ = self.line_text(start, stop, end)
            if family == _FAMILY_TOKEN:
                self.confirm_token(token_rule.rule, text, start, stop)
            elif family in (_FAMILY_KEYWORD, _FAMILY_CALL):
                found = _keyword_candidates(text, self.config) if family == _FAMILY_KEYWORD else _call_candidates(text)
                for rule, value in found:
                    self.candidates.append(_Candidate(start, rule, value, text))
            else:
                for m in R.ASSIGN_XML.finditer(text):
                    key_name, value = (m.group("key"), m.group("v")) if m.group("key") else (m.group("key2"), m.group("v2"))
                    rule = _classify(key_name, value)
                    if rule:
                        self.candidates.append(_Candidate(start, rule, value, text))

    def confirm_assignment(self, start: int, stop: int, hit_start: int, end: int, seen: set) -> None:
        """Anchored matches at the secret-named names just before the hit (no scan of the whole line)."""
        data = self.data
        window_start = max(start, end - 200)
        for name_match in _NAME_TOKEN.finditer(data, window_start, end):
            if R.key_class(name_match.group().decode("utf-8", "replace")) is None:
                continue
            key_start = name_match.start()
            if key_start > start and data[key_start - 1] in b":/=\\":
                continue  # inside a value (an ARN, a URL, a path), not a name
            if (key_start, "assign") in seen:
                continue
            seen.add((key_start, "assign"))
            if key_start > start and data[key_start - 1] in b"\"'`":
                key_start -= 1
            self.match_assignment(data[key_start:min(stop, key_start + 2048)].decode("utf-8", "replace"),
                                  start, stop, end)

    def match_assignment(self, text: str, start: int, stop: int, end: int) -> None:
        regexes = (R.ASSIGN_QUOTED, R.ASSIGN_PAIR, R.ASSIGN_UNQUOTED) if self.config else (R.ASSIGN_QUOTED, R.ASSIGN_PAIR)
        for regex in regexes:
            m = regex.match(text)
            if not m:
                continue
            op = m.group("op")
            if regex is not R.ASSIGN_UNQUOTED:
                if (op == "," and not m.group("kq")) or (op == "(" and m.group("kq")):
                    continue
                value = _unescape(m.group("v"))
                if "f" in m.group("pre").lower() and "{" in value:
                    continue
            else:
                value = m.group("v")
            rule = _classify(m.group("key"), value)
            if rule:
                line_text, _ = self.line_text(start, stop, end)
                self.candidates.append(_Candidate(start, rule, value, line_text))
                return

    def confirm_token(self, rule: str, text: str, start: int, stop: int) -> None:
        if rule == "private-key":
            value = self.private_key_block(start)
            if value:
                self.candidates.append(_Candidate(start, rule, value, text))
            return
        for m in _CONFIRM[rule].finditer(text):
            value = m.group("v")
            if not _token_ok(rule, value, text, m.start("v")):
                continue
            self.candidates.append(_Candidate(start, rule, value, text))
            if rule == "aws-access-key-id":
                self.aws_secret_near(start, stop)

    def private_key_block(self, start: int) -> str | None:
        """The whole PEM block from the BEGIN line, if it has a real body (not just a header)."""
        chunk = self.data[start:start + 16384]
        head = re.search(rb"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----", chunk)
        if not head:
            return None
        end = re.search(rb"-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----", chunk[head.end():])
        body = chunk[head.end(): head.end() + end.start()] if end else chunk[head.end(): head.end() + 4096]
        body = body.replace(b"\\n", b"\n").replace(b"\\r", b"")
        body_chars = sum(len(run) for run in _B64_BODY.findall(body))
        if body_chars < 64:
            return None
        block = chunk[head.start(): head.end() + (end.end() if end else len(body))]
        return block.decode("utf-8", "replace")

    def aws_secret_near(self, start: int, stop: int) -> None:
        """A 40-character secret key within a few lines of an access key id, whatever its name."""
        data = self.data
        lo = start
        for _ in range(4):
            lo = data.rfind(b"\n", 0, max(lo - 1, 0)) + 1 if lo > 0 else 0
        hi = stop
        for _ in range(4):
            nxt = data.find(b"\n", hi + 1)
            hi = len(data) if nxt < 0 else nxt
        pos = lo
        for raw in data[lo:hi].split(b"\n"):
            text = raw.decode("utf-8", "replace")
            for m in _AWS_SECRET_NEAR.finditer(text):
                value = m.group("v")
                if R.char_classes(value) >= 3 and R.shannon_entropy(value) >= 4.0:
                    self.candidates.append(_Candidate(pos, "aws-secret-access-key", value, text))
            pos += len(raw) + 1


def _select(candidates: list[_Candidate]) -> list[_Candidate]:
    """One candidate per value per line, the most specific rule winning."""
    by_line: dict[int, list[_Candidate]] = {}
    for c in candidates:
        by_line.setdefault(c.offset, []).append(c)
    chosen: list[_Candidate] = []
    for offset in sorted(by_line):
        kept: list[_Candidate] = []
        for c in sorted(by_line[offset], key=lambda c: _PRIORITY.get(c.rule, 50)):
            if any(c.value in k.value or k.value in c.value for k in kept):
                continue
            kept.append(c)
        chosen.extend(kept)
    return chosen


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_SNIFF]


def _is_config(path: str) -> bool:
    suffix = os.path.splitext(path.rsplit("!", 1)[-1])[1].lower()
    return suffix not in CODE_SUFFIXES


# ------------------------------------------------------------------ scanner


class Scanner:
    """The detection engine.

    Parameters
    ----------
    fingerprinter:
        Keyed hash for findings (default: a new :class:`Fingerprinter`, keyed from
        ``RUNBOOK_FINGERPRINT_KEY`` or at random).
    allowlist:
        An :class:`~runbook_lib.allowlist.Allowlist`, a path to an allowlist file, or
        an iterable of entries. Allowlisted findings are counted, not reported.
    zip_limits:
        Bounds for archives (:class:`ZipLimits`).
    """

    def __init__(self, fingerprinter: Fingerprinter | None = None, allowlist=None,
                 zip_limits: ZipLimits | None = None):
        self.fingerprinter = fingerprinter or Fingerprinter()
        if allowlist is None or isinstance(allowlist, Allowlist):
            self.allowlist = allowlist
        elif isinstance(allowlist, (str, Path)):
            self.allowlist = Allowlist.from_file(allowlist)
        else:
            self.allowlist = Allowlist(allowlist)
        self.zip_limits = zip_limits or ZipLimits()
        self.allowlisted = 0
        self._entries: dict[str, str] = {}  # fingerprint -> allowlist entry (a hash)
        self._prefilter = _prefilter()

    def __repr__(self) -> str:
        return f"Scanner(engine={self._prefilter.engine!r}, allowlist={self.allowlist!r})"

    @property
    def engine(self) -> str:
        return self._prefilter.engine

    def allowlist_entry(self, finding: Finding) -> str | None:
        """The ``sha256:`` allowlist entry for a finding of this scanner (a hash, not the value)."""
        return self._entries.get(finding.fingerprint)

    # -- building findings

    def _finding(self, rule_id: str, value: str, line_text: str = "", **where) -> Finding | None:
        if has_inline_marker(line_text):
            self.allowlisted += 1
            return None
        fingerprint = self.fingerprinter(value)
        entry = allowlist_entry(value)
        if self.allowlist is not None and self.allowlist.allows(entry, fingerprint):
            self.allowlisted += 1
            return None
        self._entries[fingerprint] = entry
        rule = R.RULES[rule_id]
        return Finding(rule=rule.id, title=rule.title, remediation=rule.remediation,
                       redacted=redact(value), fingerprint=fingerprint, **where)

    def _candidates(self, data: bytes, config: bool) -> list[_Candidate]:
        hits = self._prefilter.hits(data, config)
        if not hits:
            return []
        scan = _BufferScan(data, config)
        scan.run(hits, self._prefilter.families)
        return _select(scan.candidates)

    # -- entry points

    def scan_bytes(self, data: bytes, path: str) -> list[Finding]:
        """Findings in one text buffer; ``path`` labels them (and picks code vs config parsing)."""
        candidates = self._candidates(data, _is_config(path))
        findings: list[Finding] = []
        line, counted_to = 1, 0
        seen: set[tuple[int, str, str]] = set()
        for c in sorted(candidates, key=lambda c: c.offset):
            line += data.count(b"\n", counted_to, c.offset)
            counted_to = c.offset
            finding = self._finding(c.rule, c.value, c.line_text, path=path, line=line)
            if finding and (line, finding.rule, finding.fingerprint) not in seen:
                seen.add((line, finding.rule, finding.fingerprint))
                findings.append(finding)
        return findings

    def scan_text(self, text: str, path: str) -> list[Finding]:
        """Findings in ``text``, each with ``path`` and a 1-based ``line``."""
        return self.scan_bytes(text.encode("utf-8", "surrogateescape"), path)

    def scan_environment(self, variables: Mapping[str, object]) -> list[Finding]:
        """Findings in a name -> value map (Lambda ``Environment.Variables``).

        JSON objects and arrays in values are parsed and their leaves scanned too.
        """
        findings: list[Finding] = []
        for name in sorted(variables):
            value = variables[name]
            value = value if isinstance(value, str) else json.dumps(value)
            seen: set[str] = set()
            for rule, leaf, json_key in self._env_candidates(name, value):
                finding = self._finding(rule, leaf, variable=name, json_key=json_key)
                if finding and finding.fingerprint not in seen:
                    seen.add(finding.fingerprint)
                    findings.append(finding)
        return findings

    def _env_candidates(self, name: str, value: str, json_key: str | None = None, depth: int = 0):
        stripped = value.strip()
        if depth < 8 and stripped[:1] in ("{", "[") and len(stripped) < 4 * 1024 * 1024:
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, (dict, list)):
                out = []
                for leaf_key, leaf_path, leaf in _json_leaves(parsed):
                    out.extend(self._leaf_candidates(leaf_key or name, leaf,
                                                     _join_key(json_key, leaf_path), depth, neutral_ok=False))
                return out
        return self._leaf_candidates(name, value, json_key, depth, neutral_ok=True)

    def _leaf_candidates(self, key: str, value: str, json_key: str | None, depth: int, neutral_ok: bool):
        value = value.strip()
        if not value:
            return []
        if value[:1] in ("{", "[") and depth < 8:
            nested = self._env_candidates(key, value, json_key, depth + 1)
            if nested or value[:1] == "[":
                return nested
        found: list[tuple[str, str, str | None]] = []
        rule = _classify(key, value)
        if rule:
            found.append((rule, value, json_key))
        for c in self._candidates(value.encode("utf-8", "surrogateescape"), config=True):
            if not any(c.value in v or v in c.value for _, v, _ in found) or c.rule != "keyword-assignment":
                found.append((c.rule, c.value, json_key))
        if not found and neutral_ok and R.key_class(key) is None and _neutral_name_ok(key) and R.is_random_token(value):
            found.append(("high-entropy-env-value", value, json_key))
        # the most specific rule per value
        best: dict[str, tuple[str, str, str | None]] = {}
        for item in found:
            old = best.get(item[1])
            if old is None or _PRIORITY.get(item[0], 50) < _PRIORITY.get(old[0], 50):
                best[item[1]] = item
        return list(best.values())

    def scan_zip(self, data: bytes, label: str = "") -> ScanReport:
        """Scan an archive in memory, member by member, within :attr:`zip_limits`.

        Raises
        ------
        InputError
            ``data`` is not a readable zip archive.
        """
        before = self.allowlisted
        report = self._zip_report(data, label)
        report.allowlisted = self.allowlisted - before
        return report

    def _zip_report(self, data: bytes, label: str) -> ScanReport:
        report = ScanReport()
        budget = {"members": self.zip_limits.max_members, "bytes": self.zip_limits.max_total_bytes}
        self._scan_zip_into(data, label or "archive.zip", report, budget, depth=0, top=not label)
        return report

    def _scan_zip_into(self, data: bytes, label: str, report: ScanReport, budget: dict, depth: int,
                       top: bool = False) -> None:
        limits = self.zip_limits
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise InputError("zip", f"{label}: not a readable zip archive ({type(exc).__name__})") from None
        with archive:
            for index, info in enumerate(members):
                if info.is_dir():
                    continue
                member_path = info.filename if top else f"{label}!{info.filename}"
                if budget["members"] <= 0:
                    rest = sum(1 for m in members[index:] if not m.is_dir())
                    report.skip(label, f"member limit {limits.max_members} reached; {rest} more members not scanned")
                    return
                budget["members"] -= 1
                reason = self._zip_member_refusal(info, budget["bytes"])
                if reason:
                    report.skip(member_path, reason)
                    continue
                try:
                    content = _read_bounded(archive, info, min(limits.max_file_bytes, budget["bytes"]))
                except _TooLarge:
                    report.skip(member_path, "actual size exceeds the limit (declared size was wrong)")
                    budget["bytes"] = 0 if info.file_size <= limits.max_file_bytes else budget["bytes"]
                    continue
                except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
                    report.skip(member_path, f"unreadable member ({type(exc).__name__})")
                    continue
                budget["bytes"] -= len(content)
                if content[:4] == b"PK\x03\x04" or info.filename.lower().endswith(tuple(ZIP_SUFFIXES)):
                    if depth >= limits.max_depth:
                        report.skip(member_path, f"nested archive deeper than {limits.max_depth} level(s)")
                        continue
                    try:
                        self._scan_zip_into(content, member_path, report, budget, depth + 1)
                    except InputError:
                        report.skip(member_path, "nested archive is not a readable zip")
                    continue
                self._scan_content(content, member_path, report)

    def _zip_member_refusal(self, info: zipfile.ZipInfo, bytes_left: int) -> str | None:
        limits = self.zip_limits
        if info.flag_bits & 0x1:
            return "encrypted member"
        if info.file_size > limits.max_file_bytes:
            return f"declared size {info.file_size} bytes exceeds the per-file limit {limits.max_file_bytes}"
        if info.file_size > bytes_left:
            return f"total uncompressed limit {limits.max_total_bytes} bytes reached"
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            return f"compression ratio above {limits.max_ratio}:1 (zip bomb guard)"
        return None

    def _scan_content(self, content: bytes, path: str, report: ScanReport) -> None:
        if _is_binary(content):
            report.skip(path, "binary")
            return
        report.files_scanned += 1
        report.bytes_scanned += len(content)
        report.findings.extend(self.scan_bytes(content, path))

    def scan_path(self, path: str | Path) -> ScanReport:
        """Scan a file, a directory (recursively) or a zip archive on disk.

        Raises
        ------
        InputError
            ``path`` does not exist or cannot be read.
        """
        root = Path(path)
        report = ScanReport()
        before = self.allowlisted
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames.sort()
                for skipped in [d for d in dirnames if d in SKIP_DIRS]:
                    report.skip(str(Path(dirpath, skipped)), "version-control metadata")
                dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
                for name in sorted(filenames):
                    self._scan_file(Path(dirpath, name), report, must_exist=False)
        elif root.exists():
            self._scan_file(root, report, must_exist=True)
        else:
            raise InputError("path", f"{path} does not exist")
        report.allowlisted = self.allowlisted - before
        return report

    def _scan_file(self, file: Path, report: ScanReport, must_exist: bool) -> None:
        label = str(file)
        try:
            if file.is_symlink() and not must_exist:
                report.skip(label, "symbolic link (not followed)")
                return
            if not file.is_file():
                report.skip(label, "not a regular file")
                return
            size = file.stat().st_size
            is_zip = file.suffix.lower() in ZIP_SUFFIXES
            limit = self.zip_limits.max_total_bytes if is_zip else self.zip_limits.max_file_bytes
            if size > limit:
                report.skip(label, f"size {size} bytes exceeds the limit {limit}")
                return
            data = file.read_bytes()
        except OSError as exc:
            if must_exist:
                raise InputError("path", f"cannot read {label}: {exc.strerror or type(exc).__name__}") from None
            report.skip(label, f"unreadable ({exc.strerror or type(exc).__name__})")
            return
        if is_zip or data[:4] == b"PK\x03\x04":
            try:
                report.merge(self._zip_report(data, label))
            except InputError:
                if must_exist:
                    raise
                report.skip(label, "not a readable zip archive")
            return
        self._scan_content(data, label, report)


class _TooLarge(Exception):
    pass


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read a member, stopping as soon as it passes ``limit`` whatever its header claims."""
    chunks, total = [], 0
    with archive.open(info) as fh:
        while True:
            chunk = fh.read(1024 * 1024)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise _TooLarge()
            chunks.append(chunk)
    return b"".join(chunks)


def _json_leaves(node, key: str | None = None, path: str = ""):
    """(nearest key, path, string value) of every scalar leaf of a parsed JSON value."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_leaves(v, str(k), f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_leaves(v, key, f"{path}[{i}]")
    elif isinstance(node, str):
        yield key, path, node


def _join_key(outer: str | None, inner: str) -> str:
    return f"{outer}.{inner}" if outer else inner


_NEUTRAL_NAME_EXCLUDED = re.compile(
    r"(?i)(^|_)(sha|hash|digest|checksum|etag|commit|revision|rev|build|version|id|arn|name|url|uri|"
    r"path|bucket|key_id|region|endpoint|host|image|tag|salt_id|trace|request)(_|$)")


def _neutral_name_ok(name: str) -> bool:
    return not _NEUTRAL_NAME_EXCLUDED.search(name)


def scan_many(scanner: Scanner, paths: Iterable[str | Path]) -> ScanReport:
    """One report over several paths."""
    report = ScanReport()
    for path in paths:
        report.merge(scanner.scan_path(path))
    return report
