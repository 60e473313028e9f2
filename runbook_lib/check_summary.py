"""One line of evidence for every check, PASS included: who, what, how many, how proven.

Built here, in one place, from the check itself: its reason when the check function wrote
one (a PASS reason is already its evidence summary), else from its evidence record, each
field in a few words (a list by its items when they fit in a line, else by its count).
When the evidence names how the verdict was proven (``proven_by``, as ``least-privilege``
records it) and the line does not say so yet, it is added. Every table, summary and export
of checks shows this line, so no row is blank and none is cut.

Examples
--------
>>> from runbook_lib.checks import Check
>>> evidence_summary(Check("function-restored", "t", "backout", "PASS", evidence={
...     "snapshot_version": "1", "compared": ["Environment", "Handler"], "differences": []}))
'snapshot version: 1; compared (2): Environment, Handler; differences: none'
"""

from __future__ import annotations

from .render import visible

#: Evidence keys that say nothing about this check on their own (the target is in every header).
SKIPPED_KEYS = frozenset({"target"})
#: A list is written out item by item up to this many characters, else counted.
LIST_LIMIT = 240


def _label(key: str) -> str:
    return key.replace("_", " ")


def _scalar(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _field(key: str, value) -> str | None:
    label = _label(key)
    if isinstance(value, dict):
        parts = [f"{_label(k)} {_scalar(v)}" for k, v in value.items() if not isinstance(v, (dict, list))]
        return f"{label}: {', '.join(parts)}" if parts else f"{label}: {len(value)} field(s)"
    if isinstance(value, (list, tuple)):
        if not value:
            return f"{label}: none"
        if all(isinstance(v, (str, int, float)) for v in value):
            items = ", ".join(str(v) for v in value)
            if len(items) <= LIST_LIMIT:
                return f"{label} ({len(value)}): {items}"
        return f"{label}: {len(value)}"
    if key == "detail":
        return _scalar(value)
    return f"{label}: {_scalar(value)}"


def summarise_evidence(evidence: dict) -> str:
    """The evidence record of a check in one line (``"no evidence recorded"`` when there is none)."""
    parts = [_field(k, v) for k, v in evidence.items() if k not in SKIPPED_KEYS]
    parts = [p for p in parts if p]
    return "; ".join(parts) if parts else "no evidence recorded"


def evidence_summary(check) -> str:
    """The one line a table row, ``summary.md`` and the CI/SIEM exports show for ``check``."""
    line = check.reason or summarise_evidence(check.evidence)
    proven_by = check.evidence.get("proven_by")
    if proven_by and "proven by" not in line:
        methods = proven_by if isinstance(proven_by, str) else ", ".join(str(m) for m in proven_by)
        line = f"{line}; proven by {methods}"
    return visible(" ".join(line.split()))
