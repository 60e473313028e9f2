"""What the check modules share: a missing source as a verdict, and short lists for reasons.

Not a check (no ``SPEC``): the catalog loads it like any module of the package and finds
nothing to declare.

Examples
--------
>>> listed(["a", "b", "c"], limit=2)
'a; b; and 1 more'
"""

from __future__ import annotations

from . import FAIL, Verdict

#: How each evidence source is named when it is missing (keys of ``ValidationEvidence.errors``).
SOURCE_LABELS = {
    "function": "The function's configuration",
    "code": "The deployed code package",
    "secret": "The secret",
    "secret_policy": "The secret's resource policy",
    "key": "The secret's KMS key",
    "logs": "CloudWatch Logs",
    "cloudtrail": "CloudTrail",
    "log_values": "The secret (to compare by fingerprint)",
    "role": "The role's policies",
    "functions": "The region's functions",
    "probe": "The policy simulator and live probe",
    "trails": "The trails",
    "edge": "The distribution",
    "residue": "The function's published versions",
    "exposure": "The exposed credentials",
}


def unavailable(ev, *sources: str, evidence_file: str | None = None) -> Verdict | None:
    """A FAIL naming the first of ``sources`` that collection could not read; ``None`` if all were read."""
    for source in sources:
        if source in ev.errors:
            return Verdict(FAIL, f"{SOURCE_LABELS[source]} could not be read: {ev.errors[source]}",
                           evidence_file=evidence_file)
    return None


def listed(items, limit: int = 5, separator: str = "; ") -> str:
    """``items`` joined, at most ``limit`` of them, then how many more."""
    items = list(items)
    more = len(items) - limit
    return separator.join(str(i) for i in items[:limit]) + (f"{separator}and {more} more" if more > 0 else "")


def function_label(finding: dict, accounts: int = 1, regions: int = 1) -> str:
    """``function[:version]``, after ``account/region/`` when the findings span accounts or regions.

    Examples
    --------
    >>> function_label({"account": "111", "region": "eu-west-1", "function": "a", "version": "3"}, accounts=2)
    '111/eu-west-1/a:3'
    """
    name = finding["function"] + ("" if finding.get("version", "$LATEST") == "$LATEST" else f":{finding['version']}")
    if accounts > 1:
        return f"{finding.get('account', '?')}/{finding.get('region', '?')}/{name}"
    return f"{finding.get('region', '?')}/{name}" if regions > 1 else name


def where_by_function(findings: list[dict]) -> dict[str, list[str]]:
    """``{"function" or "function:version": [where, ...]}`` of audit findings, in order.

    When the findings span more than one account (or region), each function is named with
    its account and region (:func:`function_label`): a name alone could be in any of them.
    """
    out: dict[str, list[str]] = {}
    accounts = len({f.get("account") for f in findings})
    regions = len({(f.get("account"), f.get("region")) for f in findings})
    for f in findings:
        label = function_label(f, accounts, regions)
        where = f["where"] if f["location"] != "layer" else f"{f['layer']} {f['where']}"
        out.setdefault(label, [])
        if where not in out[label]:
            out[label].append(where)
    return out


def where_list(findings: list[dict], limit: int) -> list[str]:
    return [f"{fn} ({', '.join(w)})" for fn, w in list(where_by_function(findings).items())[:limit]]


def gap_list(gaps, limit: int = 6) -> str:
    """Coverage gaps as ``subject in account/region: reason``, at most ``limit``."""
    items = []
    for g in gaps:
        where = "/".join(p for p in (g.account, g.region) if p)
        items.append(f"{g.subject}{' in ' + where if where else ''}: {g.reason}")
    return listed(items, limit)
