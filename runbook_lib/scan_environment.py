"""Candidates in environment variables: the name judged with the value, JSON opened up.

A Lambda function's ``Environment.Variables`` is a name -> string map. A value is judged
under its own name (:func:`~runbook_lib.scan_lines.classify`), scanned as text for token
formats and ``key=value`` pairs, and, when it holds a JSON object or array, opened up so
each leaf is judged under its nearest key (``json_key`` says where: ``db.password``). A
long random token under a neutral name is ``high-entropy-env-value``.

The buffer scan is passed in (``scan_text``), so this module needs no scanner.

Examples
--------
>>> environment_candidates("CONFIG", '{"db": {"password": "Tq7!vR2m#Lx9"}}', lambda text: [])
[('keyword-assignment', 'Tq7!vR2m#Lx9', 'db.password')]
"""

from __future__ import annotations

import json
import re
from typing import Callable, Iterator

from . import rules as R
from .scan_buffer import RULE_PRIORITY, Candidate
from .scan_lines import classify

#: Scans a value as configuration text: ``text -> [Candidate]``.
TextScan = Callable[[str], "list[Candidate]"]
#: JSON nested deeper than this, or values longer than :data:`MAX_JSON_CHARS`, are not parsed.
MAX_DEPTH = 8
MAX_JSON_CHARS = 4 * 1024 * 1024

_NEUTRAL_NAME_EXCLUDED = re.compile(
    r"(?i)(^|_)(sha|hash|digest|checksum|etag|commit|revision|rev|build|version|id|arn|name|url|uri|"
    r"path|bucket|key_id|region|endpoint|host|image|tag|salt_id|trace|request)(_|$)")


def neutral_name_ok(name: str) -> bool:
    """Whether a random token under ``name`` may be a secret (not a hash, id, version, ...)."""
    return not _NEUTRAL_NAME_EXCLUDED.search(name)


def json_leaves(node, key: str | None = None, path: str = "") -> Iterator[tuple[str | None, str, str]]:
    """(nearest key, path, string value) of every string leaf of a parsed JSON value."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from json_leaves(v, str(k), f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from json_leaves(v, key, f"{path}[{i}]")
    elif isinstance(node, str):
        yield key, path, node


def join_key(outer: str | None, inner: str) -> str:
    """``outer.inner`` (``outer[0]`` for an array), or ``inner`` at the top level."""
    if not outer:
        return inner
    return f"{outer}{inner}" if inner.startswith("[") else f"{outer}.{inner}"


def environment_candidates(name: str, value: str, scan_text: TextScan, json_key: str | None = None,
                           depth: int = 0, neutral_ok: bool = True) -> list[tuple[str, str, str | None]]:
    """(rule, value, json key) of each secret in the variable ``name``.

    ``neutral_ok`` says whether a random token under a neutral name counts: for the
    variable's own value, not for a JSON leaf (a leaf is judged by its key), however deep.
    """
    stripped = value.strip()
    if depth < MAX_DEPTH and stripped[:1] in ("{", "[") and len(stripped) < MAX_JSON_CHARS:
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            out = []
            for leaf_key, leaf_path, leaf in json_leaves(parsed):
                out.extend(leaf_candidates(leaf_key or name, leaf, scan_text, join_key(json_key, leaf_path),
                                           depth, neutral_ok=False))
            return out
    return leaf_candidates(name, value, scan_text, json_key, depth, neutral_ok)


def leaf_candidates(key: str, value: str, scan_text: TextScan, json_key: str | None, depth: int,
                    neutral_ok: bool) -> list[tuple[str, str, str | None]]:
    """The secrets of one string under ``key``: by name, by content, or as a random token."""
    value = value.strip()
    if not value:
        return []
    if value[:1] in ("{", "[") and depth < MAX_DEPTH:
        # JSON inside the string: its leaves; not JSON: judged one level down exactly as here
        return environment_candidates(key, value, scan_text, json_key, depth + 1, neutral_ok)
    found: list[tuple[str, str, str | None]] = []
    rule = classify(key, value)
    if rule:
        found.append((rule, value, json_key))
    for c in scan_text(value):
        if not any(c.value in v or v in c.value for _, v, _ in found) or c.rule != "keyword-assignment":
            found.append((c.rule, c.value, json_key))
    if not found and neutral_ok and R.key_class(key) is None and neutral_name_ok(key) and R.is_random_token(value):
        found.append(("high-entropy-env-value", value, json_key))
    return most_specific(found)


def most_specific(found: list[tuple[str, str, str | None]]) -> list[tuple[str, str, str | None]]:
    """One entry per value: the rule with the lowest :data:`RULE_PRIORITY` (first seen on a tie)."""
    best: dict[str, tuple[str, str, str | None]] = {}
    for item in found:
        old = best.get(item[1])
        if old is None or RULE_PRIORITY[item[0]] < RULE_PRIORITY[old[0]]:
            best[item[1]] = item
    return list(best.values())
