"""``functional-parity``: the responses have the shape the test plan recorded before the change (validation)."""

from __future__ import annotations

from ..evidence import shape_differences
from . import FAIL, PASS, SKIP, CheckSpec, Verdict
from .common import listed

SPEC = CheckSpec(
    id="functional-parity",
    title="Responses have the baseline's shape",
    proves=("Every validation response has the keys and value types of the response the test plan recorded "
            "before the change (ledger baseline response_shape; JSON bodies parsed), values never compared."),
    controls=("CM-3",),
    phases=("validation",),
    evidence_file="invocations.json",
    permissions=("lambda:InvokeFunction",),
)


def unique(items: list) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def judge(ev) -> Verdict:
    baseline = ev.baseline.get("response_shape")
    if baseline is None:
        status = ev.baseline.get("baseline_status")
        return Verdict(SKIP, "the test plan recorded no baseline response shape (run it with function_name and "
                             "invoke_baseline=True)" + (f"; its baseline invocation: {status}" if status else ""),
                       evidence_file="")
    if not ev.invocations:
        return Verdict(FAIL, "no invocation was made: there is no response to compare with the baseline")
    differences = [f"invocation {inv['index']}: {diff}" for inv in ev.invocations
                   for diff in shape_differences(baseline, inv["response_shape"])]
    evidence = {"baseline_shape": baseline, "shapes_now": unique([i["response_shape"] for i in ev.invocations])}
    if differences:
        return Verdict(FAIL, listed(differences, 5), evidence)
    return Verdict(PASS, f"{len(ev.invocations)} responses have the baseline's shape", evidence)
