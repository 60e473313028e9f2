"""``exposed-credentials-rotated``: every exposed credential was replaced at its source (validation, close-out).

Judges the exposure rows of :func:`runbook_lib.residue.exposure`: one per migrated variable
(rotated when close-out put a new value or the secret's value differs from the exposed one,
by fingerprint) and per hardcoded access key (rotated once IAM says it is inactive or gone).
"""

from __future__ import annotations

from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict

SPEC = CheckSpec(
    id="exposed-credentials-rotated",
    title="Every exposed credential was replaced at its source",
    proves=("Every value the change moved out of the function was replaced (the secret's current value differs "
            "from the exposed one, by fingerprint, or close-out put a new one), and every hardcoded access key is "
            "inactive or deleted (ListAccessKeys)."),
    controls=("IA-5(1)", "IA-5"),
    phases=("validation", "closeout"),
    evidence_file="",
    permissions=("lambda:GetFunctionConfiguration", "secretsmanager:GetSecretValue", "iam:ListUsers",
                 "iam:ListAccessKeys"),
)


def judge(rows, unavailable: str = "") -> Verdict:
    """``rows`` from :func:`runbook_lib.residue.exposure`; ``unavailable``: why they could not be read."""
    if rows is None:
        return Verdict(FAIL, unavailable or "the exposed credentials could not be read")
    if not rows:
        return Verdict(SKIP, "the ledger records no migrated value or hardcoded key")
    evidence = {"credentials": rows}
    pending = [r for r in rows if not r["rotated"]]
    if pending:
        return Verdict(WARN, "exposed and not yet replaced at the source: "
                             + "; ".join(f"{r['item']} ({r['how']})" for r in pending)
                             + " - moving a value hides it, it does not un-expose it", evidence)
    return Verdict(PASS, f"{len(rows)} exposed credential(s) replaced: "
                         + "; ".join(f"{r['item']} ({r['how']})" for r in rows), evidence)
