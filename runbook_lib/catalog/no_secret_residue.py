"""``no-secret-residue``: no published version of the function holds a migrated value (validation, close-out).

Judges a :class:`~runbook_lib.residue.Sweep` (one paged ``ListVersionsByFunction``, each
version's variables scanned and matched to the migrated values by fingerprint): WARN while
only the backout snapshot holds them (expected until close-out), FAIL when another version
does or a version could not be read.
"""

from __future__ import annotations

from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict

SPEC = CheckSpec(
    id="no-secret-residue",
    title="No published version of the function holds a migrated secret value",
    proves=("No published version of the function other than the backout snapshot holds a migrated value or a "
            "scanner finding in its environment variables (ListVersionsByFunction; values matched by fingerprint)."),
    controls=("IA-5(7)", "SC-28"),
    phases=("validation", "closeout"),
    evidence_file="",
    permissions=("lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:GetFunctionConfiguration",
                 "secretsmanager:GetSecretValue"),
)


def held(version) -> str:
    return ", ".join(version.migrated + [f["variable"] for f in version.findings])


def judge(sweep, unavailable: str = "") -> Verdict:
    """``sweep`` from :func:`runbook_lib.residue.sweep_function`; ``unavailable``: why it could not be made."""
    if sweep is None:
        return Verdict(FAIL, unavailable) if unavailable else Verdict(SKIP, "no function to sweep")
    evidence = sweep.to_dict()
    others, holding = sweep.others(), sweep.holding()
    if others:
        listed = "; ".join(f"version {v.version}: {held(v)}" + (f" (alias {', '.join(v.aliases)})" if v.aliases else "")
                           for v in others)
        return Verdict(FAIL, f"{len(others)} published version(s) besides the backout snapshot hold secret values: "
                             f"{listed}; delete them (close-out)", evidence)
    if sweep.errors:
        return Verdict(FAIL, "could not read every version: " + "; ".join(sweep.errors), evidence)
    if holding:
        return Verdict(WARN, f"only the backout snapshot (version {sweep.snapshot_version}) holds the old values "
                             f"({held(holding[0])}): expected until close-out deletes it", evidence)
    return Verdict(PASS, f"{len(sweep.versions)} published version(s) swept: none holds a migrated value or a "
                         "secret", evidence)
