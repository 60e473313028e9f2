"""``function-invokes``: the migrated function answers every validation invocation (validation)."""

from __future__ import annotations

from ..evidence import invocation_failures
from . import FAIL, PASS, CheckSpec, Verdict
from .common import listed

SPEC = CheckSpec(
    id="function-invokes",
    title="The function is invoked successfully N times",
    proves=("Lambda answered every validation Invoke with StatusCode 200, no FunctionError, and no response "
            "statusCode of 400 or more (invocations.json)."),
    controls=("CM-3",),
    phases=("validation",),
    evidence_file="invocations.json",
    permissions=("lambda:InvokeFunction",),
)


def judge(ev) -> Verdict:
    invocations = ev.invocations
    if not invocations:
        return Verdict(FAIL, "no invocation was made: nothing shows the function works")
    failures = invocation_failures(invocations)
    evidence = {"invocations": len(invocations), "window": ev.window.to_dict(),
                "status_codes": sorted({i["status_code"] for i in invocations}),
                "function_errors": sum(1 for i in invocations if i["function_error"]),
                "max_duration_ms": max(i["duration_ms"] for i in invocations)}
    if failures:
        return Verdict(FAIL, listed(failures, 5), evidence)
    return Verdict(PASS, f"{len(invocations)} of {len(invocations)} invocations answered 200 without a "
                         f"FunctionError (longest {evidence['max_duration_ms']} ms)", evidence)
