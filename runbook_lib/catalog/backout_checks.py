"""The backout's checks: ``backout-complete``, ``function-restored``, ``no-orphans``.

Each judges evidence the backout collected from AWS and its ledger (see
:meth:`runbook_lib.backout.Backout.checks`); none makes a call of its own.
"""

from __future__ import annotations

from . import FAIL, PASS, SKIP, CheckSpec, Verdict

SPECS = (
    CheckSpec(id="backout-complete", title="Everything the implementation did is undone",
              proves="Every resource record of the ledger is marked undone after its live state was read back "
                     "(deleted, detached, restored, scheduled for deletion); only the snapshot and edge versions, "
                     "and deactivated keys not asked back, are kept on purpose.",
              controls=("CM-3", "CP-10"), phases=("backout",)),
    CheckSpec(id="function-restored",
              title="The function equals its pre-change snapshot (configuration, code hash, behaviour)",
              proves="GetFunctionConfiguration of $LATEST equals the snapshot version in every field the runbook "
                     "changed (by its ledger; the environment compared exactly, the code by CodeSha256), and, when "
                     "the test plan recorded a response shape, one invocation answers with that shape.",
              controls=("CP-10",), phases=("backout",),
              permissions=("lambda:GetFunctionConfiguration", "lambda:InvokeFunction")),
    CheckSpec(id="no-orphans", title="No resource created by this run remains, except in its deletion window",
              proves="Every resource the ledger says the runbook created or adopted is gone (or in its deletion "
                     "window, dated), and no secret, role or policy tagged for the function is unknown to "
                     "the ledger (ListSecrets by tag, the runbook's deterministic names).",
              controls=("CM-3",), phases=("backout",),
              permissions=("secretsmanager:ListSecrets", "iam:GetRole", "iam:ListRoleTags", "iam:GetPolicy",
                           "iam:ListPolicyTags")),
)


def backout_complete(recorded: int, left: list[str], left_alone: list[str], evidence: dict) -> Verdict:
    """``left``: records still active; ``left_alone``: what the plan blocked, with the reasons."""
    if not recorded:
        return Verdict(SKIP, "the ledger records no change")
    if left:
        reason = "not undone: " + "; ".join(left) + ("; left alone: " + "; ".join(left_alone) if left_alone else "")
        return Verdict(FAIL, reason, evidence)
    return Verdict(PASS, "", evidence)


def function_restored(snapshot_version: str | None, differences: list[str], compared: list[str],
                      invocation: dict | None = None) -> Verdict:
    """``invocation``: None when not compared, else ``failure`` (text) and ``status`` (the response fields)."""
    if snapshot_version is None:
        return Verdict(SKIP, "no snapshot in the ledger")
    evidence = {"snapshot_version": snapshot_version, "compared": compared, "differences": differences}
    if not compared:
        return Verdict(FAIL, "nothing was compared with the snapshot", evidence)
    if differences:
        return Verdict(FAIL, "differs from the snapshot: " + ", ".join(differences), evidence)
    if invocation is None:
        return Verdict(PASS, "", {**evidence, "invocation": "not compared (no baseline response shape)"})
    evidence["invocation"] = invocation.get("status", {})
    if invocation.get("failure"):
        return Verdict(FAIL, invocation["failure"], evidence)
    return Verdict(PASS, "", evidence)


def no_orphans(remaining: list[str], in_deletion_window: list[str]) -> Verdict:
    evidence = {"in_deletion_window": in_deletion_window, "remaining": remaining}
    if remaining:
        return Verdict(FAIL, "; ".join(remaining), evidence)
    return Verdict(PASS, "", evidence)
