"""``audit-coverage-complete``: the test plan read everything it was asked to (baseline)."""

from __future__ import annotations

from ..inventory import FAILING_STATUSES, WARNING_STATUSES
from ..wording import counted
from . import FAIL, PASS, WARN, CheckSpec, Verdict
from .common import gap_list

SPEC = CheckSpec(
    id="audit-coverage-complete",
    title="Every function, package and layer asked for was read",
    proves=("Every account, region, function, code package and layer the audit was asked for answered its read "
            "calls (ListFunctions, GetFunction, GetLayerVersion, the downloads): no denied, failed, unknown or "
            "missing item in coverage.json."),
    controls=("SI-4",),
    phases=("baseline",),
    evidence_file="coverage.json",
    permissions=("lambda:ListFunctions", "lambda:GetFunction", "lambda:ListAliases", "lambda:GetLayerVersion",
                 "ec2:DescribeRegions", "cloudfront:ListDistributions"),
)

SUMMARY_KEYS = ("accounts", "regions", "functions_seen", "functions_fully_scanned", "functions_code_not_scanned",
                "functions_partial", "gaps_failing", "gaps_warning")


def judge_baseline(result) -> Verdict:
    """FAIL on a denied/error/not-found/unknown-region row; WARN when something was only not scanned."""
    summary = result.summary
    evidence = {k: summary[k] for k in SUMMARY_KEYS}
    failing = [g for g in result.gaps if g.status in FAILING_STATUSES]
    warning = [g for g in result.gaps if g.status in WARNING_STATUSES]
    if failing:
        return Verdict(FAIL, f"{counted(len(failing), 'item')} could not be read: {gap_list(failing)}", evidence)
    if warning:
        return Verdict(WARN, f"{counted(len(warning), 'item')} not scanned: {gap_list(warning)}", evidence)
    return Verdict(PASS, f"{counted(summary['functions_seen'], 'function')} in "
                         f"{counted(summary['regions'], 'region')} of {counted(summary['accounts'], 'account')} "
                         "fully read", evidence)
