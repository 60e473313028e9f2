"""The compiled multi-pattern prefilter: every rule's cheap expression, one pass per buffer.

One Hyperscan database (block mode) holds the prefilter of every rule of
:mod:`runbook_lib.rules`; a scan reports ``(end offset, pattern id, start)`` for each hit
and :mod:`runbook_lib.scan_buffer` confirms the hit's line in Python. Without the
``hyperscan`` package the same expressions run one by one with :mod:`re` (correct, several
times slower; :func:`engine_name` says which engine runs).

Two databases are compiled: one for code files and one for configuration files, which
also holds the prefilter of unquoted ``KEY=value`` assignments. Compiled databases are kept
on disk (:mod:`runbook_lib.pattern_cache`), keyed by the exact patterns, so a new process
loads them instead of compiling them again.

Examples
--------
>>> prefilter = shared_prefilter()
>>> [prefilter.families[pattern][0] for _, pattern, _ in prefilter.hits(b'token = "x1"', config=False)]
['assign']
"""

from __future__ import annotations

import re
import threading

from . import keyword_prefilters as K
from . import rules as R
from .pattern_cache import compiled_database

try:  # the compiled prefilter; the fallback is correct but slower
    import hyperscan
except ImportError:  # pragma: no cover - hyperscan is a dependency
    hyperscan = None

#: How a hit is confirmed: a token format, a keyword on the line, an XML element, a call.
FAMILY_TOKEN, FAMILY_KEYWORD, FAMILY_XML, FAMILY_CALL = "token", "keyword", "xml", "call"
#: ``#define``/SQL statements, command-line options, an XML element whose value has a line of its own.
FAMILY_DEFINE, FAMILY_CLI, FAMILY_XML_BLOCK = "define", "cli", "xml-block"
#: Keyword prefilters with a start offset: confirmed by one anchored match at the name.
FAMILY_ASSIGN = "assign"


def _patterns() -> tuple[list[tuple[str, object]], list[tuple[str, bool, bool]]]:
    """(family, token rule) per pattern id, and (expression, caseless, config-only) per pattern id."""
    families: list[tuple[str, object]] = []
    patterns: list[tuple[str, bool, bool]] = []
    for token_rule in R.TOKEN_RULES:
        families.append((FAMILY_TOKEN, token_rule))
        patterns.append((token_rule.prefilter, token_rule.caseless, False))
    for family, expression, config_only in (
            (FAMILY_ASSIGN, K.KEYWORD_QUOTED_PREFILTER, False),
            (FAMILY_ASSIGN, K.KEYWORD_UNQUOTED_PREFILTER, True),
            (FAMILY_XML, K.KEYWORD_XML_PREFILTER, False),
            (FAMILY_KEYWORD, K.KEYWORD_CONNSTR_PREFILTER, False),
            (FAMILY_CALL, K.CALL_PREFILTER, False),
            (FAMILY_DEFINE, K.DEFINE_OR_SQL_PREFILTER, False),
            (FAMILY_CLI, K.CLI_PREFILTER, False),
            (FAMILY_XML_BLOCK, K.KEYWORD_XML_BLOCK_PREFILTER, False)):
        families.append((family, None))
        patterns.append((expression, True, config_only))
    return families, patterns


class Prefilter:
    """All rule prefilters in one compiled database; reports (end offset, pattern id, start).

    Parameters
    ----------
    use_hyperscan:
        Compile with Hyperscan (default when it is installed); ``False`` uses :mod:`re`.
    """

    def __init__(self, use_hyperscan: bool | None = None):
        self.use_hyperscan = hyperscan is not None if use_hyperscan is None else use_hyperscan
        self.families, patterns = _patterns()
        self.engine = "hyperscan" if self.use_hyperscan else "re"
        self._dbs = {}
        self._prototypes = {}
        # a hyperscan scratch space serves one scan at a time: one per thread, cloned on demand
        self._local = threading.local()
        for config in (False, True):
            chosen = [(i, p) for i, p in enumerate(patterns) if config or not p[2]]
            if self.use_hyperscan:
                db = compiled_database([p[0].encode() for _, p in chosen], [i for i, _ in chosen],
                                       [hyperscan.HS_FLAG_CASELESS if p[1] else 0 for _, p in chosen],
                                       hyperscan.HS_MODE_BLOCK)
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
        if self.use_hyperscan:
            def on_match(pattern_id, start, end, flags, context):
                found.append((end, pattern_id, start))
            db.scan(data, match_event_handler=on_match, scratch=self._scratch(config))
        else:
            for pattern_id, regex in db:
                found.extend((m.end(), pattern_id, m.start()) for m in regex.finditer(data))
        found.sort()
        return found


_SHARED: Prefilter | None = None


def shared_prefilter() -> Prefilter:
    """The process's one compiled prefilter (compiling takes a while; every scanner shares it)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Prefilter()
    return _SHARED


def engine_name() -> str:
    """``"hyperscan"`` or ``"re"`` (the slower fallback)."""
    return shared_prefilter().engine
