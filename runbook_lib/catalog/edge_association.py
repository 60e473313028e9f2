"""``edge-association``: the Lambda@Edge viewer-request trigger points to the published version (validation)."""

from __future__ import annotations

from . import FAIL, PASS, SKIP, CheckSpec, Verdict
from .common import unavailable

SPEC = CheckSpec(
    id="edge-association",
    title="Lambda@Edge viewer-request trigger points to the published version",
    proves=("The CloudFront distribution the implementation changed has a viewer-request association with the "
            "function version it published (GetDistributionConfig)."),
    controls=("CM-3",),
    phases=("validation",),
    evidence_file="",
    permissions=("cloudfront:GetDistributionConfig",),
)


def judge(ev) -> Verdict:
    if ev.edge is None:
        return Verdict(SKIP, "the implementation used no Lambda@Edge association")
    missing = unavailable(ev, "edge")
    if missing:
        return missing
    edge = ev.edge
    expected, distribution = edge["expected_version_arn"], edge["distribution_id"]
    match = [a for a in edge["associations"] if a["event_type"] == "viewer-request" and a["function_arn"] == expected]
    if not match:
        return Verdict(FAIL, f"no viewer-request association of {expected} on distribution {distribution}", edge)
    return Verdict(PASS, f"distribution {distribution} runs {expected} on viewer-request "
                         f"({', '.join(a['behaviour'] for a in match)} behaviour)", edge)
