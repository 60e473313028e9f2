"""``no-secrets-in-environment``: no secret in Lambda environment variables (baseline and validation).

The baseline judges the audit of every function asked for (:class:`~runbook_lib.audit_result.AuditResult`:
``ListFunctions`` pages hold the variables of ``$LATEST`` and of every published version);
validation judges the migrated function's live configuration (``GetFunction``) scanned again,
and whether a variable the implementation moved is still set.
"""

from __future__ import annotations

from ..inventory import FAILING_STATUSES
from ..wording import counted
from . import FAIL, PASS, WARN, CheckSpec, Verdict
from .common import listed, unavailable, where_list

SPEC = CheckSpec(
    id="no-secrets-in-environment",
    title="No secret in Lambda environment variables",
    proves=("The secret scanner finds no secret in the environment variables Lambda returns for the functions "
            "(ListFunctions with every published version in the baseline; GetFunction of the migrated function "
            "in validation), and no variable the implementation moved to Secrets Manager is still set."),
    controls=("IA-5", "IA-5(7)", "SC-28"),
    phases=("baseline", "validation"),
    evidence_file="findings.json",
    permissions=("lambda:ListFunctions", "lambda:GetFunction", "kms:Decrypt"),
)


def gap_note(result) -> str:
    failing = [g for g in result.gaps if g.status in FAILING_STATUSES]
    return (f"; not everything could be read ({counted(len(failing), 'gap')}, see audit-coverage-complete)"
            if failing else "")


def judge_baseline(result) -> Verdict:
    """The audit's environment findings (every version), and whether everything could be read."""
    found = [f for f in result.finding_records if f["location"] == "environment"]
    evidence = {"findings": len(found), "functions": where_list(found, limit=50)}
    note = gap_note(result)
    if found:
        functions = len({(f.get("account"), f.get("region"), f["function"]) for f in found})
        return Verdict(FAIL, f"{counted(len(found), 'secret')} in environment variables of "
                             f"{counted(functions, 'function')}: "
                             f"{listed(where_list(found, limit=len(found)), limit=6)}{note}", evidence)
    if note:
        return Verdict(WARN, "no secret found in the environment variables that could be read" + note, evidence)
    seen = len(result.functions)
    return Verdict(PASS, f"the environment variables of {counted(seen, 'function')} ($LATEST and every published version) "
                         "hold no secret", evidence)


def judge_validation(ev) -> Verdict:
    """The migrated function's live variables: none moved left behind, no scanner finding."""
    missing = unavailable(ev, "function", evidence_file="")
    if missing:
        return missing
    env = ev.environment
    left = sorted(n for n in ev.moved_variables if n in env)
    evidence = {"variables": sorted(env), "moved_by_implementation": list(ev.moved_variables),
                "left_behind": left, "findings": ev.environment_findings}
    reasons = []
    if left:
        reasons.append(f"migrated variable(s) still set: {', '.join(left)}")
    if ev.environment_findings:
        reasons.append(f"{len(ev.environment_findings)} finding(s) in the environment: "
                       + ", ".join(sorted({f['variable'] or f['rule'] for f in ev.environment_findings})))
    if reasons:
        return Verdict(FAIL, "; ".join(reasons), evidence, evidence_file="")
    return Verdict(PASS, f"{len(env)} variable(s) of {ev.function_name} scanned, none holds a secret; "
                         f"{len(ev.moved_variables)} moved variable(s) gone", evidence, evidence_file="")

